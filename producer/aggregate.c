/* aggregate.c -- folds task results into one merged report (see
 * aggregate.h). Pure: no I/O. Results are deduplicated by task id and by
 * test id; tests a task could not finish become "error" with the task's
 * reason, unless a later task (a retry) brings a real result for them. */
#include "aggregate.h"

#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xmalloc.h"

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
	unsigned tasks;	   /* distinct tasks seen */
	unsigned lost;	   /* tasks that failed with no test to blame */
	double start;	   /* min start of its tasks, when tasks > 0 */
	double end;	   /* max end of its tasks */
};

struct agg_test {
	struct report_test t; /* owns its strings */
	size_t phase;	      /* index into aggregator.phases */
	int synthetic; /* made from "unfinished": a retry may replace it */
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
	unsigned tasks_expected;
	unsigned duplicates;
	unsigned lost;
	int cancelled;
	double set_started, set_finished; /* 0 = not set */
	double min_start, max_end;	  /* over task results, when ntasks */
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
	for (i = 0; i < a->nphases; i++)
		free(a->phases[i].name);
	free(a->phases);
	for (i = 0; i < a->ntasks; i++)
		free(a->task_ids[i]);
	free(a->task_ids);
	strmap_release(&a->task_map);
	for (i = 0; i < a->ntests; i++)
		report_test_release(&a->tests[i].t);
	free(a->tests);
	strmap_release(&a->test_map);
	for (i = 0; i < a->nissues; i++)
		issue_release(&a->issues[i]);
	free(a->issues);
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

static void fill_from_task(struct report_test *t, const struct task_result *r,
			   const char *phase)
{
	t->suite = xstrdup(r->suite != NULL ? r->suite : "default");
	t->phase = xstrdup(phase);
	t->task = xstrdup(r->task);
	t->worker = dup_or_null(r->worker);
	t->attempts = r->attempt > 0 ? r->attempt : 1;
}

/* Clears a synthetic record for its replacement; keeps the id (the key of
 * test_map) and returns the old message (caller owns) for retried_for. */
static char *test_reset_keep_id(struct agg_test *at)
{
	char *id = at->t.id;
	char *msg = at->t.message;
	uint32_t attempts = at->t.attempts;

	at->t.id = NULL;
	at->t.message = NULL;
	report_test_release(&at->t);
	memset(&at->t, 0, sizeof(at->t));
	at->t.id = id;
	at->t.attempts = attempts;
	return msg;
}

/* Returns the record to fill for test id: a new one, or the synthetic one
 * a real result replaces (*replaced set). NULL = ignore this entry. */
static struct agg_test *test_slot(struct aggregator *a, const char *id,
				  int synthetic, int *replaced)
{
	struct agg_test *at;
	size_t idx;

	*replaced = 0;
	if (strmap_get(&a->test_map, id, &idx)) {
		at = &a->tests[idx];
		if (!at->synthetic) {
			/* A real result is final. A second real one is a
			 * duplicate; an "unfinished" mention after it is a
			 * retry's leftover and carries nothing new. */
			if (!synthetic)
				a->duplicates++;
			return NULL;
		}
		*replaced = 1;
		return at;
	}
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

static uint32_t next_attempts(uint32_t previous, const struct task_result *r)
{
	uint32_t att = r->attempt > 0 ? r->attempt : 1;

	return att > previous ? att : previous + 1;
}

static void add_result(struct aggregator *a, const struct task_result *r,
		       size_t phase, const struct test_result *tr)
{
	struct agg_test *at;
	char *old_msg = NULL;
	uint32_t old_attempts = 0;
	int replaced;

	if (tr->id == NULL)
		return;
	at = test_slot(a, tr->id, 0, &replaced);
	if (at == NULL)
		return;
	if (replaced) {
		old_attempts = at->t.attempts;
		old_msg = test_reset_keep_id(at);
	}
	fill_from_task(&at->t, r, a->phases[phase].name);
	at->phase = phase;
	at->synthetic = 0;
	at->t.outcome =
	    tr->outcome < OUTCOME_COUNT ? tr->outcome : OUTCOME_ERROR;
	at->t.duration_s = tr->duration_s >= 0 ? tr->duration_s : 0;
	at->t.message = dup_or_null(tr->message);
	at->t.details = dup_or_null(tr->details);
	at->t.file = dup_or_null(tr->file);
	at->t.line = tr->line;
	if (replaced) {
		/* The earlier attempt could not finish this test (crash,
		 * timeout, lost worker): say why it was retried. */
		at->t.retried_for = old_msg;
		at->t.attempts = next_attempts(old_attempts, r);
	}
}

static void add_unfinished(struct aggregator *a, const struct task_result *r,
			   size_t phase, const char *id)
{
	struct agg_test *at;
	uint32_t old_attempts = 0;
	int replaced;

	at = test_slot(a, id, 1, &replaced);
	if (at == NULL)
		return;
	if (replaced) {
		/* Unfinished again on a later attempt: the latest reason
		 * is the one to report. */
		old_attempts = at->t.attempts;
		free(test_reset_keep_id(at));
	}
	fill_from_task(&at->t, r, a->phases[phase].name);
	at->phase = phase;
	at->synthetic = 1;
	at->t.outcome = OUTCOME_ERROR;
	at->t.message = unfinished_reason(r, id);
	if (r->running != NULL && strcmp(r->running, id) == 0 &&
	    (r->status == TASK_CRASHED || r->status == TASK_TIMEOUT))
		at->t.details = dup_or_null(r->output);
	if (replaced)
		at->t.attempts = next_attempts(old_attempts, r);
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

void aggregator_add(struct aggregator *a, const struct task_result *r)
{
	struct agg_phase *p;
	size_t phase, idx, i;
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
	a->task_ids[a->ntasks] = xstrdup(r->task);
	strmap_put(&a->task_map, a->task_ids[a->ntasks], a->ntasks);

	phase = phase_get(a, r->phase != NULL ? r->phase : "default");
	p = &a->phases[phase];
	start = r->started_at;
	end = r->started_at + (r->duration_s > 0 ? r->duration_s : 0);
	if (p->tasks == 0 || start < p->start)
		p->start = start;
	if (p->tasks == 0 || end > p->end)
		p->end = end;
	p->tasks++;
	if (a->ntasks == 0 || start < a->min_start)
		a->min_start = start;
	if (a->ntasks == 0 || end > a->max_end)
		a->max_end = end;
	a->ntasks++;

	for (i = 0; i < r->ntests; i++)
		add_result(a, r, phase, &r->tests[i]);
	for (i = 0; i < r->nunfinished; i++)
		if (r->unfinished[i] != NULL)
			add_unfinished(a, r, phase, r->unfinished[i]);

	if (r->status != TASK_COMPLETED || r->nunfinished > 0)
		add_issue(a, r, p->name);
	/* A failed task that names no test would otherwise vanish from the
	 * counts: the run cannot be called passed. */
	if (r->status != TASK_COMPLETED && r->status != TASK_CANCELLED &&
	    r->ntests == 0 && r->nunfinished == 0) {
		p->lost++;
		a->lost++;
	}
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
	const struct agg_test *at;
	size_t rank;
};

static int sort_item_cmp(const void *x, const void *y)
{
	const struct sort_item *a = x, *b = y;

	if (a->rank != b->rank)
		return a->rank < b->rank ? -1 : 1;
	return strcmp(a->at->t.id, b->at->t.id);
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

static void copy_test(struct report_test *dst, const struct report_test *src)
{
	dst->id = xstrdup(src->id);
	dst->suite = dup_or_null(src->suite);
	dst->phase = dup_or_null(src->phase);
	dst->task = dup_or_null(src->task);
	dst->outcome = src->outcome;
	dst->attempts = src->attempts;
	dst->duration_s = src->duration_s;
	dst->message = dup_or_null(src->message);
	dst->details = dup_or_null(src->details);
	dst->retried_for = dup_or_null(src->retried_for);
	dst->worker = dup_or_null(src->worker);
	dst->file = dup_or_null(src->file);
	dst->line = src->line;
}

static const char *phase_status(const struct aggregator *a,
				const struct agg_phase *p, unsigned bad)
{
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
	size_t i;

	rep->run = xstrdup(a->run);
	rep->tasks_expected = a->tasks_expected;
	rep->tasks_seen = (unsigned)a->ntasks;

	/* Tests, sorted by phase order then id. */
	items = xcalloc(a->ntests ? a->ntests : 1, sizeof(*items));
	bad = xcalloc(a->nphases ? a->nphases : 1, sizeof(*bad));
	for (i = 0; i < a->ntests; i++) {
		const struct agg_test *at = &a->tests[i];

		items[i].at = at;
		items[i].rank = phase_rank(a, at->phase);
		rep->totals[at->t.outcome]++;
		rep->ntotal++;
		if (at->t.outcome == OUTCOME_FAILED ||
		    at->t.outcome == OUTCOME_ERROR)
			bad[at->phase]++;
	}
	qsort(items, a->ntests, sizeof(*items), sort_item_cmp);
	rep->tests = xcalloc(a->ntests ? a->ntests : 1, sizeof(*rep->tests));
	rep->ntests = a->ntests;
	for (i = 0; i < a->ntests; i++)
		copy_test(&rep->tests[i], &items[i].at->t);

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
		rp->duration_s =
		    p->tasks > 0 && p->end > p->start ? p->end - p->start : 0;
	}

	/* Issues, in arrival order. */
	rep->issues =
	    xcalloc(a->nissues ? a->nissues : 1, sizeof(*rep->issues));
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

	rep->started_at = a->set_started > 0 ? a->set_started
					     : (a->ntasks ? a->min_start : 0);
	rep->finished_at = a->set_finished > 0 ? a->set_finished
					       : (a->ntasks ? a->max_end : 0);
	if (rep->finished_at < rep->started_at)
		rep->finished_at = rep->started_at;

	if (a->cancelled)
		rep->status = xstrdup("cancelled");
	else if ((a->tasks_expected > 0 && a->ntasks < a->tasks_expected) ||
		 a->lost > 0)
		rep->status = xstrdup("error");
	else if (rep->totals[OUTCOME_FAILED] > 0 ||
		 rep->totals[OUTCOME_ERROR] > 0)
		rep->status = xstrdup("failed");
	else
		rep->status = xstrdup("passed");

	free(order);
	free(bad);
	free(items);
	return rep;
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
