/* aggregate.c -- folds task results into one merged report (see
 * aggregate.h). Pure: no I/O.
 *
 * A result record is one attempt of some tests (docs/delivery.md, "Tasks
 * and attempts"). Records are deduplicated by task id. For each test the
 * aggregator keeps the best result so far -- the one from the record with
 * the highest attempt, the later record on a tie -- and what the other
 * records said about it: the highest attempt seen, whether a record handed
 * it to a follow-up (its "retrying" list) after that best result, an
 * earlier real failure (for flaky), and why it was retried. The outcome is
 * decided when the report is built, so the order of folding only matters
 * for ties. */
#include "aggregate.h"

#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xmalloc.h"

#define AGG_RETRY_NEVER_RAN "retry never ran"

/* An open-addressing map from a borrowed string to an index. */
struct strmap {
	const char **keys;
	size_t *vals;
	size_t cap; /* a power of two, or 0 */
	size_t len;
};

struct agg_phase {
	char *name;
	int required;
	int declared;
	unsigned decl_seq; /* order of aggregator_phase() calls */
	unsigned tasks;	   /* distinct records seen */
	unsigned lost;	   /* records that failed with no test to blame */
	double start;	   /* min start of its records, when has_times */
	double end;	   /* max end of its records */
	int has_times;
	int timed_out;	    /* aggregator_phase_timeout */
	unsigned timeout_s; /* its timeout, for the message */
	char *first_suite;  /* suite of its first record (for the issue) */
	int has_planned;    /* aggregator_phase_planned */
	unsigned planned;
};

/* Everything the records said about one test. */
struct agg_test {
	/* The best result so far (owns its strings; retried_for is the
	 * record's). Without one (has_result 0): id, and suite, phase, task
	 * and worker of the latest record that handed the test on. */
	struct report_test t;
	size_t phase; /* index into aggregator.phases, of t */
	int has_result;
	int synthetic;	   /* the best result is an "unfinished" error */
	int best_rerun;	   /* the best result's record is a --retries rerun */
	uint32_t best_att; /* attempt and record number of the best result */
	size_t best_seq;
	uint32_t max_att;   /* highest attempt of any record naming the test */
	int has_retry;	    /* some record listed it in "retrying" */
	uint32_t retry_att; /* attempt and record number of the latest one */
	size_t retry_seq;
	char *retry_reason; /* that record's retry_reason */
	char *prior_reason; /* message of a superseded "unfinished" error */
	int failed_before;  /* a real failed/error result was superseded */
	uint32_t fail_att;  /* the lowest attempt of such a result */
	char *fail_msg;	    /* text of the latest such result */
	char *fail_details;
	uint32_t rerun_att; /* highest attempt of a rerun record naming it */
};

struct aggregator {
	char *run;
	struct agg_phase *phases;
	size_t nphases;
	unsigned ndeclared;
	char **task_ids;
	size_t ntasks, tasks_cap;
	struct strmap task_map;
	struct agg_test *tests;
	size_t ntests, tests_cap;
	struct strmap test_map;
	struct report_task_issue *issues;
	size_t nissues, issues_cap;
	struct report_artifact *arts;
	size_t narts, arts_cap;
	struct report_task_time *times;
	size_t ntimes, times_cap;
	unsigned tasks_expected;
	unsigned duplicates;
	unsigned lost;
	int cancelled;
	double set_started, set_finished; /* 0 = not set */
	double min_start, max_end;	  /* over records, when has_times */
	int has_times;
};

static uint64_t str_hash(const char *s)
{
	uint64_t h = 14695981039346656037ull;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	return h;
}

static void strmap_release(struct strmap *m)
{
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof(*m));
}

/* Returns 1 and sets *val when key is present, else 0. */
static int strmap_get(const struct strmap *m, const char *key, size_t *val)
{
	size_t i;

	if (m->cap == 0)
		return 0;
	i = (size_t)str_hash(key) & (m->cap - 1);
	while (m->keys[i] != NULL) {
		if (strcmp(m->keys[i], key) == 0) {
			*val = m->vals[i];
			return 1;
		}
		i = (i + 1) & (m->cap - 1);
	}
	return 0;
}

static void strmap_insert(const char **keys, size_t *vals, size_t cap,
			  const char *key, size_t val)
{
	size_t i = (size_t)str_hash(key) & (cap - 1);

	while (keys[i] != NULL)
		i = (i + 1) & (cap - 1);
	keys[i] = key;
	vals[i] = val;
}

/* key is borrowed and must outlive the map; it must not be present. */
static void strmap_put(struct strmap *m, const char *key, size_t val)
{
	if ((m->len + 1) * 2 > m->cap) {
		size_t ncap = m->cap ? m->cap * 2 : 64;
		const char **nkeys = xcalloc(ncap, sizeof(*nkeys));
		size_t *nvals = xcalloc(ncap, sizeof(*nvals));
		size_t i;

		for (i = 0; i < m->cap; i++)
			if (m->keys[i] != NULL)
				strmap_insert(nkeys, nvals, ncap, m->keys[i],
					      m->vals[i]);
		free(m->keys);
		free(m->vals);
		m->keys = nkeys;
		m->vals = nvals;
		m->cap = ncap;
	}
	strmap_insert(m->keys, m->vals, m->cap, key, val);
	m->len++;
}

static char *dup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

/* The first line of s (without the newline), or NULL for NULL or "". */
static char *first_line(const char *s)
{
	size_t n;

	if (s == NULL)
		return NULL;
	n = strcspn(s, "\r\n");
	if (n == 0)
		return NULL;
	return xstrndup(s, n);
}

static const char *signal_name(int sig)
{
	static const struct {
		int num;
		const char *name;
	} names[] = {
	    {SIGHUP, "SIGHUP"},	  {SIGINT, "SIGINT"},	{SIGQUIT, "SIGQUIT"},
	    {SIGILL, "SIGILL"},	  {SIGTRAP, "SIGTRAP"}, {SIGABRT, "SIGABRT"},
	    {SIGBUS, "SIGBUS"},	  {SIGFPE, "SIGFPE"},	{SIGKILL, "SIGKILL"},
	    {SIGUSR1, "SIGUSR1"}, {SIGSEGV, "SIGSEGV"}, {SIGUSR2, "SIGUSR2"},
	    {SIGPIPE, "SIGPIPE"}, {SIGALRM, "SIGALRM"}, {SIGTERM, "SIGTERM"},
	    {SIGXCPU, "SIGXCPU"}, {SIGXFSZ, "SIGXFSZ"}, {SIGSYS, "SIGSYS"},
	};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].num == sig)
			return names[i].name;
	return NULL;
}

/* "runner killed by signal 11 (SIGSEGV)" or "runner crashed (exit 70)". */
static char *crash_reason(const struct task_result *r)
{
	const char *name;

	if (r->term_signal <= 0)
		return xasprintf("runner crashed (exit %d)", r->exit_code);
	name = signal_name(r->term_signal);
	if (name == NULL)
		return xasprintf("runner killed by signal %d", r->term_signal);
	return xasprintf("runner killed by signal %d (%s)", r->term_signal,
			 name);
}

/* "task timed out after 300s" (one decimal when not a whole second). */
static char *timeout_reason(const struct task_result *r)
{
	double d = r->duration_s;

	if (!(d >= 0) || d > 1e9)
		return xstrdup("task timed out");
	if (fabs(d - round(d)) < 0.05)
		return xasprintf("task timed out after %.0fs", d);
	return xasprintf("task timed out after %.1fs", d);
}

/* The one-line reason of a test the task lists as unfinished. */
static char *unfinished_reason(const struct task_result *r, const char *test)
{
	char *base, *msg;
	int is_running = r->running != NULL && strcmp(r->running, test) == 0;

	switch (r->status) {
	case TASK_CRASHED:
		base = crash_reason(r);
		if (is_running)
			msg = xasprintf("%s while running this test", base);
		else if (r->running != NULL && r->running[0] != '\0')
			msg =
			    xasprintf("%s while running %s", base, r->running);
		else
			msg = xstrdup(base);
		free(base);
		return msg;
	case TASK_TIMEOUT:
		base = timeout_reason(r);
		if (is_running)
			msg = xasprintf("%s (this test was running)", base);
		else
			msg = xstrdup(base);
		free(base);
		return msg;
	case TASK_ERROR:
		msg = first_line(r->message);
		if (msg == NULL)
			msg = xasprintf("runner error (exit %d)", r->exit_code);
		return msg;
	case TASK_CANCELLED:
		return xstrdup("cancelled");
	case TASK_LOST:
		return xstrdup(is_running
				   ? "worker lost while running this test"
				   : "worker lost");
	case TASK_COMPLETED:
	default:
		return xasprintf("no result from the runner (exit %d)",
				 r->exit_code);
	}
}

/* The one-line reason of a task that did not complete normally. */
static char *task_reason(const struct task_result *r)
{
	char *base, *msg;

	msg = first_line(r->message);
	if (msg != NULL)
		return msg;
	switch (r->status) {
	case TASK_CRASHED:
	case TASK_TIMEOUT:
		base = r->status == TASK_CRASHED ? crash_reason(r)
						 : timeout_reason(r);
		if (r->running != NULL && r->running[0] != '\0') {
			msg =
			    xasprintf("%s while running %s", base, r->running);
			free(base);
			return msg;
		}
		return base;
	case TASK_ERROR:
		return xasprintf("runner error (exit %d)", r->exit_code);
	case TASK_CANCELLED:
		return xstrdup("cancelled");
	case TASK_LOST:
		if (r->running != NULL && r->running[0] != '\0')
			return xasprintf("worker lost while running %s",
					 r->running);
		return xstrdup("worker lost");
	case TASK_COMPLETED:
	default:
		return xasprintf("no result from the runner for %zu test%s "
				 "(exit %d)",
				 r->nunfinished, r->nunfinished == 1 ? "" : "s",
				 r->exit_code);
	}
}

static const char *status_name(enum task_status s)
{
	const char *name = task_status_name(s);

	return name != NULL ? name : "unknown";
}

struct aggregator *aggregator_new(const char *run)
{
	struct aggregator *a = xcalloc(1, sizeof(*a));

	a->run = xstrdup(run != NULL ? run : "");
	return a;
}

static void report_test_release(struct report_test *t)
{
	free(t->id);
	free(t->suite);
	free(t->phase);
	free(t->task);
	free(t->message);
	free(t->details);
	free(t->retried_for);
	free(t->worker);
	free(t->file);
}

static void agg_test_release(struct agg_test *at)
{
	report_test_release(&at->t);
	free(at->retry_reason);
	free(at->prior_reason);
	free(at->fail_msg);
	free(at->fail_details);
}

static void issue_release(struct report_task_issue *i)
{
	free(i->task);
	free(i->status);
	free(i->message);
	free(i->output);
	free(i->suite);
	free(i->phase);
	free(i->worker);
}

void aggregator_free(struct aggregator *a)
{
	size_t i;

	if (a == NULL)
		return;
	for (i = 0; i < a->nphases; i++) {
		free(a->phases[i].name);
		free(a->phases[i].first_suite);
	}
	free(a->phases);
	for (i = 0; i < a->ntasks; i++)
		free(a->task_ids[i]);
	free(a->task_ids);
	strmap_release(&a->task_map);
	for (i = 0; i < a->ntests; i++)
		agg_test_release(&a->tests[i]);
	free(a->tests);
	strmap_release(&a->test_map);
	for (i = 0; i < a->nissues; i++)
		issue_release(&a->issues[i]);
	free(a->issues);
	for (i = 0; i < a->narts; i++)
		report_artifact_release(&a->arts[i]);
	free(a->arts);
	for (i = 0; i < a->ntimes; i++)
		free(a->times[i].suite);
	free(a->times);
	free(a->run);
	free(a);
}

/* Phases are few: a linear search keeps this simple. */
static size_t phase_get(struct aggregator *a, const char *name)
{
	size_t i;

	for (i = 0; i < a->nphases; i++)
		if (strcmp(a->phases[i].name, name) == 0)
			return i;
	a->phases =
	    xreallocarray(a->phases, a->nphases + 1, sizeof(*a->phases));
	memset(&a->phases[a->nphases], 0, sizeof(a->phases[0]));
	a->phases[a->nphases].name = xstrdup(name);
	a->phases[a->nphases].required = 1;
	return a->nphases++;
}

void aggregator_phase(struct aggregator *a, const char *name, int required)
{
	size_t i = phase_get(a, name); /* may move a->phases */
	struct agg_phase *p = &a->phases[i];

	p->required = required != 0;
	if (!p->declared) {
		p->declared = 1;
		p->decl_seq = a->ndeclared++;
	}
}

void aggregator_phase_timeout(struct aggregator *a, const char *name,
			      unsigned timeout_s)
{
	struct agg_phase *p = &a->phases[phase_get(a, name)];

	p->timed_out = 1;
	p->timeout_s = timeout_s;
}

void aggregator_phase_planned(struct aggregator *a, const char *name,
			      unsigned tasks)
{
	struct agg_phase *p = &a->phases[phase_get(a, name)];

	p->has_planned = 1;
	p->planned = tasks;
}

void aggregator_expect_tasks(struct aggregator *a, unsigned tasks)
{
	a->tasks_expected = tasks;
}

void aggregator_set_times(struct aggregator *a, double started_at,
			  double finished_at)
{
	a->set_started = started_at;
	a->set_finished = finished_at;
}

void aggregator_set_cancelled(struct aggregator *a)
{
	a->cancelled = 1;
}

unsigned aggregator_duplicates(const struct aggregator *a)
{
	return a->duplicates;
}

static int is_bad(enum outcome o)
{
	return o == OUTCOME_FAILED || o == OUTCOME_ERROR;
}

/* (att_a, seq_a) comes at or after (att_b, seq_b): the attempt first, the
 * order of records on a tie. */
static int at_or_after(uint32_t att_a, size_t seq_a, uint32_t att_b,
		       size_t seq_b)
{
	if (att_a != att_b)
		return att_a > att_b;
	return seq_a >= seq_b;
}

/* The record for test id, made (with only its id) when new. */
static struct agg_test *test_get(struct aggregator *a, const char *id)
{
	struct agg_test *at;
	size_t idx;

	if (strmap_get(&a->test_map, id, &idx))
		return &a->tests[idx];
	if (a->ntests == a->tests_cap) {
		a->tests_cap = a->tests_cap ? a->tests_cap * 2 : 64;
		a->tests =
		    xreallocarray(a->tests, a->tests_cap, sizeof(*a->tests));
	}
	at = &a->tests[a->ntests];
	memset(at, 0, sizeof(*at));
	at->t.id = xstrdup(id);
	strmap_put(&a->test_map, at->t.id, a->ntests);
	a->ntests++;
	return at;
}

/* Empties t but for its id (the key of test_map). */
static void test_clear_keep_id(struct agg_test *at)
{
	char *id = at->t.id;

	at->t.id = NULL;
	report_test_release(&at->t);
	memset(&at->t, 0, sizeof(at->t));
	at->t.id = id;
}

/* Where a test was: suite, phase, task and worker of record r. */
static void test_place(struct aggregator *a, struct agg_test *at,
		       const struct task_result *r, size_t phase)
{
	at->t.suite = xstrdup(r->suite != NULL ? r->suite : "default");
	at->t.phase = xstrdup(a->phases[phase].name);
	at->t.task = xstrdup(r->task);
	at->t.worker = dup_or_null(r->worker);
	at->phase = phase;
}

/* Every mention counts towards attempts and reruns. */
static void test_mentioned(struct agg_test *at, const struct task_result *r,
			   uint32_t att)
{
	if (att > at->max_att)
		at->max_att = att;
	if (r->rerun && att > at->rerun_att)
		at->rerun_att = att;
}

static void test_note_failure(struct agg_test *at, uint32_t att,
			      const char *msg, const char *details)
{
	if (!at->failed_before || att < at->fail_att)
		at->fail_att = att;
	at->failed_before = 1;
	free(at->fail_msg);
	free(at->fail_details);
	at->fail_msg = dup_or_null(msg);
	at->fail_details = dup_or_null(details);
}

/* A result of record r (number seq, attempt att) for test id: a real one
 * (tr, whose id is id), or an "unfinished" error (tr NULL). */
static void test_result_in(struct aggregator *a, const struct task_result *r,
			   size_t phase, uint32_t att, size_t seq,
			   const char *id, const struct test_result *tr)
{
	struct agg_test *at = test_get(a, id);
	int synthetic = tr == NULL;

	test_mentioned(at, r, att);
	if (at->has_result && !synthetic && !at->synthetic &&
	    at->best_att == att)
		a->duplicates++;
	if (at->has_result &&
	    !at_or_after(att, seq, at->best_att, at->best_seq)) {
		/* An older attempt arriving late: it can only tell that the
		 * test failed before. */
		if (!synthetic && is_bad(tr->outcome))
			test_note_failure(at, att, tr->message, tr->details);
		return;
	}
	if (at->has_result) {
		/* The best result is superseded: keep what it tells. */
		if (at->synthetic) {
			free(at->prior_reason);
			at->prior_reason = at->t.message;
			at->t.message = NULL;
		} else if (is_bad(at->t.outcome)) {
			test_note_failure(at, at->best_att, at->t.message,
					  at->t.details);
		}
	}
	test_clear_keep_id(at);
	test_place(a, at, r, phase);
	at->has_result = 1;
	at->synthetic = synthetic;
	at->best_att = att;
	at->best_seq = seq;
	at->best_rerun = r->rerun != 0;
	at->t.attempts = att;
	at->t.retried_for = dup_or_null(r->retried_for);
	if (synthetic) {
		at->t.outcome = OUTCOME_ERROR;
		at->t.message = unfinished_reason(r, id);
		if (r->running != NULL && strcmp(r->running, id) == 0 &&
		    (r->status == TASK_CRASHED || r->status == TASK_TIMEOUT))
			at->t.details = dup_or_null(r->output);
		return;
	}
	at->t.outcome =
	    tr->outcome < OUTCOME_COUNT ? tr->outcome : OUTCOME_ERROR;
	at->t.duration_s = tr->duration_s >= 0 ? tr->duration_s : 0;
	at->t.message = dup_or_null(tr->message);
	at->t.details = dup_or_null(tr->details);
	at->t.file = dup_or_null(tr->file);
	at->t.line = tr->line;
}

/* Record r handed the test to a follow-up task. */
static void test_retrying_in(struct aggregator *a, const struct task_result *r,
			     size_t phase, uint32_t att, size_t seq,
			     const char *id)
{
	struct agg_test *at = test_get(a, id);

	test_mentioned(at, r, att);
	if (at->has_retry &&
	    !at_or_after(att, seq, at->retry_att, at->retry_seq))
		return;
	at->has_retry = 1;
	at->retry_att = att;
	at->retry_seq = seq;
	free(at->retry_reason);
	at->retry_reason = dup_or_null(r->retry_reason);
	if (!at->has_result) {
		test_clear_keep_id(at);
		test_place(a, at, r, phase);
	}
}

static void add_artifacts(struct aggregator *a, const struct task_result *r)
{
	size_t i;

	for (i = 0; i < r->nartifacts; i++) {
		const struct artifact *s = &r->artifacts[i];
		struct report_artifact *d;

		if (s->path == NULL)
			continue;
		if (a->narts == a->arts_cap) {
			a->arts_cap = a->arts_cap ? a->arts_cap * 2 : 16;
			a->arts = xreallocarray(a->arts, a->arts_cap,
						sizeof(*a->arts));
		}
		d = &a->arts[a->narts++];
		memset(d, 0, sizeof(*d));
		d->task = xstrdup(r->task);
		d->attempt = r->attempt > 0 ? r->attempt : 1;
		d->path = xstrdup(s->path);
		d->size = s->size;
		d->url = dup_or_null(s->url);
		d->error = dup_or_null(s->error);
	}
}

/* A record that completed with a result for every test it ran: its
 * timing, for the start-up the history learns. */
static void add_time(struct aggregator *a, const struct task_result *r)
{
	struct report_task_time *d;
	double tests = 0;
	size_t i;

	if (r->status != TASK_COMPLETED || r->ntests == 0 ||
	    r->nunfinished > 0 || r->nretrying > 0 || !(r->started_at > 0) ||
	    !isfinite(r->started_at) || !(r->duration_s >= 0) ||
	    !isfinite(r->duration_s))
		return;
	for (i = 0; i < r->ntests; i++)
		if (r->tests[i].duration_s > 0 &&
		    isfinite(r->tests[i].duration_s))
			tests += r->tests[i].duration_s;
	if (a->ntimes == a->times_cap) {
		a->times_cap = a->times_cap ? a->times_cap * 2 : 16;
		a->times =
		    xreallocarray(a->times, a->times_cap, sizeof(*a->times));
	}
	d = &a->times[a->ntimes++];
	d->suite = xstrdup(r->suite != NULL ? r->suite : "default");
	d->started_at = r->started_at;
	d->duration_s = r->duration_s;
	d->tests_s = tests;
}

static void add_issue(struct aggregator *a, const struct task_result *r,
		      const char *phase)
{
	struct report_task_issue *i;

	if (a->nissues == a->issues_cap) {
		a->issues_cap = a->issues_cap ? a->issues_cap * 2 : 8;
		a->issues =
		    xreallocarray(a->issues, a->issues_cap, sizeof(*a->issues));
	}
	i = &a->issues[a->nissues++];
	i->task = xstrdup(r->task);
	i->status = xstrdup(status_name(r->status));
	i->message = task_reason(r);
	i->output = dup_or_null(r->output);
	i->suite = xstrdup(r->suite != NULL ? r->suite : "default");
	i->phase = xstrdup(phase);
	i->worker = dup_or_null(r->worker);
}

/* Whether record r is worth a line of its own in the report: it did not
 * complete, or left tests without a result. A record that handed all its
 * unfinished work to follow-ups is not: the last attempt tells the
 * story. Neither is a lost worker's record whose tests all finished. */
static int record_is_issue(const struct task_result *r)
{
	if (r->nunfinished > 0)
		return 1;
	if (r->nretrying > 0 || r->status == TASK_COMPLETED)
		return 0;
	if (r->status == TASK_LOST && r->ntests > 0)
		return 0;
	return 1;
}

void aggregator_add(struct aggregator *a, const struct task_result *r)
{
	struct agg_phase *p;
	size_t phase, idx, i, seq;
	uint32_t att;
	double start, end;

	if (r == NULL || r->task == NULL)
		return;
	if (strmap_get(&a->task_map, r->task, &idx)) {
		a->duplicates++;
		return;
	}
	if (a->ntasks == a->tasks_cap) {
		a->tasks_cap = a->tasks_cap ? a->tasks_cap * 2 : 64;
		a->task_ids = xreallocarray(a->task_ids, a->tasks_cap,
					    sizeof(*a->task_ids));
	}
	seq = a->ntasks;
	a->task_ids[seq] = xstrdup(r->task);
	strmap_put(&a->task_map, a->task_ids[seq], seq);
	a->ntasks++;
	add_artifacts(a, r);
	add_time(a, r);
	att = r->attempt > 0 ? r->attempt : 1;

	phase = phase_get(a, r->phase != NULL ? r->phase : "default");
	p = &a->phases[phase];
	p->tasks++;
	if (p->first_suite == NULL && r->suite != NULL)
		p->first_suite = xstrdup(r->suite);
	/* A lost worker's record may carry no start time. */
	if (r->started_at > 0 && isfinite(r->started_at)) {
		start = r->started_at;
		end = start + (r->duration_s > 0 && isfinite(r->duration_s)
				   ? r->duration_s
				   : 0);
		if (!p->has_times || start < p->start)
			p->start = start;
		if (!p->has_times || end > p->end)
			p->end = end;
		p->has_times = 1;
		if (!a->has_times || start < a->min_start)
			a->min_start = start;
		if (!a->has_times || end > a->max_end)
			a->max_end = end;
		a->has_times = 1;
	}

	/* Within a record a real result beats an "unfinished" mention, and
	 * a "retrying" mention beats both (the test is pending). */
	for (i = 0; i < r->nunfinished; i++)
		if (r->unfinished[i] != NULL)
			test_result_in(a, r, phase, att, seq, r->unfinished[i],
				       NULL);
	for (i = 0; i < r->ntests; i++)
		if (r->tests[i].id != NULL)
			test_result_in(a, r, phase, att, seq, r->tests[i].id,
				       &r->tests[i]);
	for (i = 0; i < r->nretrying; i++)
		if (r->retrying[i] != NULL)
			test_retrying_in(a, r, phase, att, seq, r->retrying[i]);

	if (record_is_issue(r))
		add_issue(a, r, a->phases[phase].name);
	/* A failed record that names no test would otherwise vanish from
	 * the counts: the run cannot be called passed. */
	if (r->status != TASK_COMPLETED && r->status != TASK_CANCELLED &&
	    r->ntests == 0 && r->nunfinished == 0 && r->nretrying == 0) {
		a->phases[phase].lost++;
		a->lost++;
	}
}

/* The test as the report shows it, into out. Returns 0, or -1 when the
 * test is left out: handed to a retry that never ran, in a cancelled
 * run. */
static int final_test(const struct aggregator *a, const struct agg_test *at,
		      struct report_test *out)
{
	const struct report_test *t = &at->t;
	int pending =
	    at->has_retry &&
	    (!at->has_result || at_or_after(at->retry_att, at->retry_seq,
					    at->best_att, at->best_seq));

	memset(out, 0, sizeof(*out));
	if (!at->has_result) {
		if (a->cancelled)
			return -1;
		/* The run ended and the follow-up never reported. */
		out->id = xstrdup(t->id);
		out->suite = dup_or_null(t->suite);
		out->phase = dup_or_null(t->phase);
		out->task = dup_or_null(t->task);
		out->worker = dup_or_null(t->worker);
		out->outcome = OUTCOME_ERROR;
		out->attempts = at->max_att > 0 ? at->max_att : 1;
		out->message = xstrdup(AGG_RETRY_NEVER_RAN);
		out->retried_for = dup_or_null(at->retry_reason);
		return 0;
	}
	out->id = xstrdup(t->id);
	out->suite = dup_or_null(t->suite);
	out->phase = dup_or_null(t->phase);
	out->task = dup_or_null(t->task);
	out->outcome = t->outcome;
	out->attempts = at->max_att > 0 ? at->max_att : 1;
	out->duration_s = t->duration_s;
	out->message = dup_or_null(t->message);
	out->details = dup_or_null(t->details);
	out->worker = dup_or_null(t->worker);
	out->file = dup_or_null(t->file);
	out->line = t->line;
	/* Flaky: failed, then passed on a --retries rerun. */
	if (t->outcome == OUTCOME_PASSED && at->failed_before &&
	    at->rerun_att > at->fail_att && at->rerun_att <= at->best_att) {
		out->outcome = OUTCOME_FLAKY;
		if (out->message == NULL) {
			out->message = dup_or_null(at->fail_msg);
			free(out->details);
			out->details = dup_or_null(at->fail_details);
		}
	}
	/* retried_for: the transient reason this attempt exists for. A
	 * record without one (an older worker) gets the reason of the
	 * attempt that handed the test on; a rerun has none. */
	if (out->attempts > 1) {
		if (t->retried_for != NULL)
			out->retried_for = xstrdup(t->retried_for);
		else if (!at->best_rerun && at->prior_reason != NULL)
			out->retried_for = xstrdup(at->prior_reason);
		else if (!at->best_rerun && !pending && at->has_retry)
			out->retried_for = dup_or_null(at->retry_reason);
	}
	return 0;
}

/* Report order of phase i: declared phases first, in declaration order,
 * then phases only seen in results, in order of appearance. */
static size_t phase_rank(const struct aggregator *a, size_t i)
{
	const struct agg_phase *p = &a->phases[i];

	if (p->declared)
		return p->decl_seq;
	return a->ndeclared + i;
}

struct sort_item {
	struct report_test t; /* moved into the report after sorting */
	size_t phase;
	size_t rank;
};

static int sort_item_cmp(const void *x, const void *y)
{
	const struct sort_item *a = x, *b = y;

	if (a->rank != b->rank)
		return a->rank < b->rank ? -1 : 1;
	return strcmp(a->t.id, b->t.id);
}

struct phase_item {
	size_t index;
	size_t rank;
};

static int phase_item_cmp(const void *x, const void *y)
{
	const struct phase_item *a = x, *b = y;

	if (a->rank != b->rank)
		return a->rank < b->rank ? -1 : 1;
	return 0;
}

static const char *phase_status(const struct aggregator *a,
				const struct agg_phase *p, unsigned bad)
{
	if (p->timed_out)
		return "failed";
	if (p->tasks == 0)
		return a->cancelled ? "cancelled" : "skipped";
	if (bad > 0)
		return "failed";
	if (p->lost > 0)
		return "error";
	return "passed";
}

struct report *aggregator_report(const struct aggregator *a)
{
	struct report *rep = xcalloc(1, sizeof(*rep));
	struct sort_item *items = NULL;
	struct phase_item *order = NULL;
	unsigned *bad = NULL;
	size_t i, n = 0, ntimed = 0;
	int required_failed = 0;

	rep->run = xstrdup(a->run);
	rep->tasks_expected = a->tasks_expected;
	rep->tasks_seen = (unsigned)a->ntasks;

	/* Tests, decided now, sorted by phase order then id. */
	items = xcalloc(a->ntests ? a->ntests : 1, sizeof(*items));
	bad = xcalloc(a->nphases ? a->nphases : 1, sizeof(*bad));
	for (i = 0; i < a->ntests; i++) {
		const struct agg_test *at = &a->tests[i];
		struct sort_item *it = &items[n];

		if (final_test(a, at, &it->t) < 0)
			continue;
		it->phase = at->phase;
		it->rank = phase_rank(a, at->phase);
		rep->totals[it->t.outcome]++;
		rep->ntotal++;
		if (is_bad(it->t.outcome))
			bad[at->phase]++;
		n++;
	}
	qsort(items, n, sizeof(*items), sort_item_cmp);
	rep->tests = xcalloc(n ? n : 1, sizeof(*rep->tests));
	rep->ntests = n;
	for (i = 0; i < n; i++)
		rep->tests[i] = items[i].t;

	/* Phases, in report order (ranks are distinct). */
	order = xcalloc(a->nphases ? a->nphases : 1, sizeof(*order));
	for (i = 0; i < a->nphases; i++) {
		order[i].index = i;
		order[i].rank = phase_rank(a, i);
	}
	qsort(order, a->nphases, sizeof(*order), phase_item_cmp);
	rep->phases =
	    xcalloc(a->nphases ? a->nphases : 1, sizeof(*rep->phases));
	rep->nphases = a->nphases;
	for (i = 0; i < a->nphases; i++) {
		size_t pi = order[i].index;
		const struct agg_phase *p = &a->phases[pi];
		struct report_phase *rp = &rep->phases[i];

		rp->name = xstrdup(p->name);
		rp->status = xstrdup(phase_status(a, p, bad[pi]));
		rp->required = p->required;
		rp->tasks = p->tasks;
		rp->has_planned = p->has_planned;
		rp->planned = p->planned;
		rp->duration_s =
		    p->has_times && p->end > p->start ? p->end - p->start : 0;
		/* Only a required phase's failure fails the run. */
		if (p->required && strcmp(rp->status, "failed") == 0)
			required_failed = 1;
	}

	/* Issues, in arrival order, then the phases that timed out. */
	for (i = 0; i < a->nphases; i++)
		ntimed += a->phases[i].timed_out != 0;
	rep->issues = xcalloc(a->nissues + ntimed + 1, sizeof(*rep->issues));
	rep->nissues = a->nissues;
	for (i = 0; i < a->nissues; i++) {
		const struct report_task_issue *s = &a->issues[i];
		struct report_task_issue *d = &rep->issues[i];

		d->task = xstrdup(s->task);
		d->status = xstrdup(s->status);
		d->message = dup_or_null(s->message);
		d->output = dup_or_null(s->output);
		d->suite = dup_or_null(s->suite);
		d->phase = dup_or_null(s->phase);
		d->worker = dup_or_null(s->worker);
	}
	for (i = 0; i < a->nphases; i++) {
		const struct agg_phase *p = &a->phases[order[i].index];
		struct report_task_issue *d;

		if (!p->timed_out)
			continue;
		d = &rep->issues[rep->nissues++];
		d->task = xasprintf("phase %s", p->name);
		d->status = xstrdup("timeout");
		if (p->timeout_s > 0)
			d->message = xasprintf("phase timed out after %us; its "
					       "unfinished tasks were dropped",
					       p->timeout_s);
		else
			d->message = xstrdup("phase timed out; its unfinished "
					     "tasks were dropped");
		d->suite = dup_or_null(p->first_suite);
		d->phase = xstrdup(p->name);
	}

	rep->started_at = a->set_started > 0
			      ? a->set_started
			      : (a->has_times ? a->min_start : 0);
	rep->finished_at = a->set_finished > 0
			       ? a->set_finished
			       : (a->has_times ? a->max_end : 0);
	if (rep->finished_at < rep->started_at)
		rep->finished_at = rep->started_at;

	rep->artifacts =
	    a->narts ? xcalloc(a->narts, sizeof(*rep->artifacts)) : NULL;
	rep->nartifacts = a->narts;
	for (i = 0; i < a->narts; i++) {
		const struct report_artifact *s = &a->arts[i];
		struct report_artifact *d = &rep->artifacts[i];

		d->task = xstrdup(s->task);
		d->attempt = s->attempt;
		d->path = xstrdup(s->path);
		d->size = s->size;
		d->url = dup_or_null(s->url);
		d->error = dup_or_null(s->error);
		d->file = dup_or_null(s->file);
	}

	rep->times = a->ntimes ? xcalloc(a->ntimes, sizeof(*rep->times)) : NULL;
	rep->ntimes = a->ntimes;
	for (i = 0; i < a->ntimes; i++) {
		rep->times[i] = a->times[i];
		rep->times[i].suite = xstrdup(a->times[i].suite);
	}

	if (a->cancelled)
		rep->status = xstrdup("cancelled");
	else if ((a->tasks_expected > 0 && a->ntasks < a->tasks_expected) ||
		 a->lost > 0)
		rep->status = xstrdup("error");
	else if (required_failed)
		rep->status = xstrdup("failed");
	else
		rep->status = xstrdup("passed");

	free(order);
	free(bad);
	free(items);
	return rep;
}

void report_artifact_release(struct report_artifact *x)
{
	free(x->task);
	free(x->path);
	free(x->url);
	free(x->error);
	free(x->file);
	free(x->fetch_error);
	memset(x, 0, sizeof(*x));
}

void report_free(struct report *r)
{
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < r->ntests; i++)
		report_test_release(&r->tests[i]);
	free(r->tests);
	for (i = 0; i < r->nphases; i++) {
		free(r->phases[i].name);
		free(r->phases[i].status);
	}
	free(r->phases);
	for (i = 0; i < r->nissues; i++)
		issue_release(&r->issues[i]);
	free(r->issues);
	for (i = 0; i < r->nartifacts; i++)
		report_artifact_release(&r->artifacts[i]);
	free(r->artifacts);
	for (i = 0; i < r->ntimes; i++)
		free(r->times[i].suite);
	free(r->times);
	free(r->status);
	free(r->run);
	free(r);
}

int report_exit_code(const struct report *r)
{
	if (r == NULL || r->status == NULL)
		return 3;
	if (strcmp(r->status, "passed") == 0)
		return 0;
	if (strcmp(r->status, "failed") == 0)
		return 1;
	if (strcmp(r->status, "cancelled") == 0)
		return 4;
	return 3;
}
