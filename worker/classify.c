/* classify.c -- closing a task attempt: final results, follow-ups, dead
 * letters (see classify.h and docs/delivery.md). */
#include "classify.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xmalloc.h"

/* The first transient pattern in text (may be NULL), or NULL. */
static const char *transient_in(const struct policy *p, const char *text)
{
	return text ? policy_match(p, text, strlen(text)) : NULL;
}

/* --- small helpers --- */

struct strv {
	char **v;
	size_t n;
};

static void strv_add(struct strv *s, const char *str)
{
	s->v = xreallocarray(s->v, s->n + 1, sizeof(*s->v));
	s->v[s->n++] = xstrdup(str);
}

static void strv_release(struct strv *s)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

/* Moves every string of from to the end of to. */
static void strv_move_all(struct strv *to, struct strv *from)
{
	size_t i;

	if (from->n == 0)
		return;
	to->v = xreallocarray(to->v, to->n + from->n, sizeof(*to->v));
	for (i = 0; i < from->n; i++)
		to->v[to->n++] = from->v[i];
	free(from->v);
	from->v = NULL;
	from->n = 0;
}

/* Removes s from v; returns 1 if it was there. */
static int strv_remove(struct strv *v, const char *s)
{
	size_t i;

	for (i = 0; i < v->n; i++) {
		if (strcmp(v->v[i], s) == 0) {
			free(v->v[i]);
			memmove(&v->v[i], &v->v[i + 1],
				(v->n - i - 1) * sizeof(*v->v));
			v->n--;
			return 1;
		}
	}
	return 0;
}

static int strs_have(char *const *v, size_t n, const char *s)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (strcmp(v[i], s) == 0)
			return 1;
	}
	return 0;
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static char **strs_copy(char *const *v, size_t n)
{
	char **out;
	size_t i;

	if (n == 0)
		return NULL;
	out = xcalloc(n, sizeof(*out));
	for (i = 0; i < n; i++)
		out[i] = xstrdup(v[i]);
	return out;
}

static void strs_free(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void task_copy(struct task *dst, const struct task *src)
{
	size_t i;

	memset(dst, 0, sizeof(*dst));
	dst->run = dup_or_null(src->run);
	dst->id = dup_or_null(src->id);
	dst->attempt = src->attempt;
	dst->suite = dup_or_null(src->suite);
	dst->phase = dup_or_null(src->phase);
	dst->runner = dup_or_null(src->runner);
	dst->queue = dup_or_null(src->queue);
	dst->cwd = dup_or_null(src->cwd);
	dst->mark = dup_or_null(src->mark);
	dst->kexpr = dup_or_null(src->kexpr);
	dst->grep = dup_or_null(src->grep);
	dst->grep_invert = dup_or_null(src->grep_invert);
	dst->timeout_s = src->timeout_s;
	dst->tests = strs_copy(src->tests, src->ntests);
	dst->ntests = src->ntests;
	dst->argv = strs_copy(src->argv, src->nargv);
	dst->nargv = src->nargv;
	if (src->nenv > 0) {
		dst->env = xcalloc(src->nenv, sizeof(*dst->env));
		for (i = 0; i < src->nenv; i++) {
			dst->env[i].key = dup_or_null(src->env[i].key);
			dst->env[i].value = dup_or_null(src->env[i].value);
		}
	}
	dst->nenv = src->nenv;
	dst->reruns = src->reruns;
	dst->rerun = src->rerun;
	dst->retried_for = dup_or_null(src->retried_for);
	dst->keep_artifacts = src->keep_artifacts;
}

static int is_failure(enum outcome o)
{
	return o == OUTCOME_FAILED || o == OUTCOME_ERROR;
}

/* "SIGSEGV", or "signal 77". Caller frees. */
static char *signal_name(int sig)
{
	const char *abbrev = sigabbrev_np(sig);

	return abbrev ? xasprintf("SIG%s", abbrev)
		      : xasprintf("signal %d", sig);
}

/* --- the verdict under construction --- */

struct closing {
	const struct task *t;
	struct task_result *r;
	const struct policy *p;
	uint32_t attempt;
	int can_retry; /* attempt < max_attempts */
	/* Final results; synth[i] marks the ones made here. */
	struct test_result *finals;
	int *synth;
	size_t nfinals;
	struct strv unfinished;
	struct strv culprit; /* the test that was running, alone */
	char *culprit_why;
	struct strv others; /* transient and innocent bystanders */
	char *others_why;
	struct strv drained; /* handed back at once, same attempt */
	struct verdict *v;
};

static void add_final(struct closing *c, struct test_result *tr, int synth)
{
	c->finals =
	    xreallocarray(c->finals, c->nfinals + 1, sizeof(*c->finals));
	c->synth = xreallocarray(c->synth, c->nfinals + 1, sizeof(*c->synth));
	c->finals[c->nfinals] = *tr;
	c->synth[c->nfinals] = synth;
	c->nfinals++;
	memset(tr, 0, sizeof(*tr));
}

/* A final "error" result for id, made by the worker. */
static void add_error(struct closing *c, const char *id, char *message)
{
	struct test_result tr;

	memset(&tr, 0, sizeof(tr));
	tr.id = xstrdup(id);
	tr.outcome = OUTCOME_ERROR;
	tr.message = message;
	tr.details = dup_or_null(c->r->output);
	add_final(c, &tr, 1);
}

static void set_why(char **slot, const char *why)
{
	if (!*slot)
		*slot = xstrdup(why);
}

/* The unfinished tests go to the "others" follow-up when attempts are left;
 * otherwise they stay unfinished (final). */
static void retry_unfinished(struct closing *c, const char *why)
{
	if (!c->can_retry || c->unfinished.n == 0)
		return;
	set_why(&c->others_why, why);
	strv_move_all(&c->others, &c->unfinished);
}

/* The running test X is to blame (a crash, an exit in the middle of it, a
 * SIGKILL, a lost worker): X goes alone to a follow-up, or, alone already
 * and out of attempts, is dead-lettered with an error result (dead_fmt, a
 * format with the attempt number) or, with dead_fmt NULL, left unfinished;
 * the tests that never ran go together to another. Isolating X is
 * progress, so the others are retried even past max_attempts; without a
 * test to blame they are bound by it. */
static void blame_running(struct closing *c, const char *why,
			  const char *dead_fmt)
{
	const char *x = c->r->running;
	char *msg;

	if (!x || !strs_have(c->unfinished.v, c->unfinished.n, x) ||
	    !strs_have(c->t->tests, c->t->ntests, x)) {
		retry_unfinished(c, why);
		return;
	}
	if (c->t->ntests == 1 && !c->can_retry && !dead_fmt)
		return; /* stays unfinished: a final error */
	strv_remove(&c->unfinished, x);
	if (c->t->ntests == 1 && !c->can_retry) {
		msg = xasprintf(dead_fmt, c->attempt);
		add_error(c, x, msg);
		c->v->dead = xcalloc(1, sizeof(*c->v->dead));
		task_copy(c->v->dead, c->t);
	} else {
		strv_add(&c->culprit, x);
		set_why(&c->culprit_why, why);
	}
	if (c->unfinished.n > 0) {
		msg = xasprintf("%s while running %s", why, x);
		set_why(&c->others_why, msg);
		free(msg);
		strv_move_all(&c->others, &c->unfinished);
	}
}

static void add_followup(struct closing *c, struct strv *tests, const char *why,
			 uint32_t attempt, int delayed, int rerun,
			 uint32_t reruns)
{
	struct verdict *v = c->v;
	struct followup *f;

	v->followups = xreallocarray(v->followups, v->nfollowups + 1,
				     sizeof(*v->followups));
	f = &v->followups[v->nfollowups++];
	memset(f, 0, sizeof(*f));
	task_copy(&f->task, c->t);
	free(f->task.id);
	f->task.id = xasprintf("%s.%zu", c->t->id, v->nfollowups);
	strs_free(f->task.tests, f->task.ntests);
	f->task.tests = strs_copy(tests->v, tests->n);
	f->task.ntests = tests->n;
	f->task.attempt = attempt;
	free(f->task.retried_for);
	f->task.retried_for = dup_or_null(why);
	f->task.rerun = rerun;
	f->task.reruns = reruns;
	f->delayed = delayed;
}

/* Per-test transient failures. */
static void transient_results(struct closing *c)
{
	struct task_result *r = c->r;
	const char *pat;
	size_t i;

	for (i = 0; i < r->ntests; i++) {
		struct test_result *tr = &r->tests[i];

		pat = NULL;
		if (is_failure(tr->outcome)) {
			pat = transient_in(c->p, tr->message);
			if (!pat)
				pat = transient_in(c->p, tr->details);
		}
		if (pat && c->can_retry) {
			strv_add(&c->others, tr->id);
			set_why(&c->others_why, pat);
			test_result_release(tr);
			continue;
		}
		add_final(c, tr, 0);
	}
	free(r->tests);
	r->tests = NULL;
	r->ntests = 0;
}

static void by_status(struct closing *c, enum close_mode mode,
		      unsigned timeout_s, size_t nresults)
{
	struct task_result *r = c->r;
	const char *pat;
	char *why, *sig, *fmt;

	switch (r->status) {
	case TASK_COMPLETED:
		if (r->running) {
			/* It exited in the middle of a test. */
			why = xasprintf("exited the runner (status %d)",
					r->exit_code);
			fmt = xasprintf("crashed the runner %%u times (exit "
					"status %d) (dead-lettered)",
					r->exit_code);
			blame_running(c, why, fmt);
			free(fmt);
			free(why);
			break;
		}
		if (nresults == 0) {
			pat = transient_in(c->p, r->output);
			if (!pat)
				pat = transient_in(c->p, r->message);
			if (pat)
				retry_unfinished(c, pat);
		}
		break;
	case TASK_CRASHED:
		sig = signal_name(r->term_signal);
		if (r->term_signal == SIGKILL) {
			/* Not by us (ours are "timeout" or "cancelled"):
			 * most likely the out-of-memory killer. Transient,
			 * but the running test goes alone, so the others
			 * get to run; out of attempts it is an error, not
			 * a dead letter. */
			why = xasprintf("runner killed by %s", sig);
			blame_running(c, why, NULL);
		} else {
			why = xasprintf("crashed the runner (%s)", sig);
			fmt = xasprintf("crashed the runner %%u times (%s) "
					"(dead-lettered)",
					sig);
			blame_running(c, why, fmt);
			free(fmt);
		}
		free(why);
		free(sig);
		break;
	case TASK_TIMEOUT:
		if (r->running &&
		    strs_have(c->unfinished.v, c->unfinished.n, r->running) &&
		    strs_have(c->t->tests, c->t->ntests, r->running)) {
			strv_remove(&c->unfinished, r->running);
			add_error(c, r->running,
				  xasprintf("timed out after %us", timeout_s));
			if (c->unfinished.n > 0) {
				why = xasprintf("task timed out while running "
						"%s",
						r->running);
				set_why(&c->others_why, why);
				free(why);
				strv_move_all(&c->others, &c->unfinished);
			}
		} else {
			why = xasprintf("task timed out after %us", timeout_s);
			retry_unfinished(c, why);
			free(why);
		}
		break;
	case TASK_LOST:
		blame_running(c, "worker lost",
			      "worker lost %u times while running this test "
			      "(dead-lettered)");
		break;
	case TASK_CANCELLED:
		if (mode == CLOSE_DRAINED) {
			strv_move_all(&c->drained, &c->unfinished);
			r->status = TASK_LOST;
			free(r->message);
			r->message = xstrdup("worker drained: unfinished "
					     "tests handed back");
		}
		break;
	case TASK_ERROR:
	case TASK_STATUS_COUNT:
		break;
	}
}

/* --retries: the tests that failed for themselves run again, at once. The
 * budget is the task's (the producer sets it per suite), not the run's. */
static void reruns(struct closing *c)
{
	const struct task *t = c->t;
	uint32_t budget = t->reruns;
	struct strv failed = {NULL, 0};
	size_t i;

	if (budget == 0)
		return;
	for (i = 0; i < c->nfinals; i++) {
		if (!c->synth[i] && is_failure(c->finals[i].outcome))
			strv_add(&failed, c->finals[i].id);
	}
	if (failed.n > 0)
		add_followup(c, &failed, NULL, c->attempt + 1, 0, 1,
			     budget - 1);
	strv_release(&failed);
}

void classify_attempt(const struct task *t, struct task_result *r,
		      const struct policy *p, enum close_mode mode,
		      unsigned timeout_s, struct verdict *out)
{
	struct closing c;
	struct strv retrying = {NULL, 0};
	size_t i, nresults = r->ntests;

	memset(out, 0, sizeof(*out));
	memset(&c, 0, sizeof(c));
	c.t = t;
	c.r = r;
	c.p = p;
	c.v = out;
	c.attempt = t->attempt ? t->attempt : 1;
	c.can_retry = c.attempt < (p->max_attempts ? p->max_attempts : 1);
	if (!r->retried_for)
		r->retried_for = dup_or_null(t->retried_for);
	r->rerun = t->rerun;
	c.unfinished.v = r->unfinished;
	c.unfinished.n = r->nunfinished;
	r->unfinished = NULL;
	r->nunfinished = 0;

	if (r->status == TASK_ERROR ||
	    (r->status == TASK_CANCELLED && mode != CLOSE_DRAINED)) {
		/* Permanent, or the run is cancelled: as it is. */
		for (i = 0; i < r->ntests; i++)
			add_final(&c, &r->tests[i], 0);
		free(r->tests);
		r->tests = NULL;
		r->ntests = 0;
	} else {
		transient_results(&c);
		by_status(&c, mode, timeout_s, nresults);
		if (c.culprit.n > 0)
			add_followup(&c, &c.culprit, c.culprit_why,
				     c.attempt + 1, 1, t->rerun, t->reruns);
		if (c.others.n > 0)
			add_followup(&c, &c.others, c.others_why, c.attempt + 1,
				     1, t->rerun, t->reruns);
		if (c.drained.n > 0)
			add_followup(&c, &c.drained, "worker drained",
				     c.attempt, 0, t->rerun, t->reruns);
		reruns(&c);
	}

	r->tests = c.finals;
	r->ntests = c.nfinals;
	r->unfinished = c.unfinished.v;
	r->nunfinished = c.unfinished.n;
	strv_move_all(&retrying, &c.culprit);
	strv_move_all(&retrying, &c.others);
	strv_move_all(&retrying, &c.drained);
	r->retrying = retrying.v;
	r->nretrying = retrying.n;
	free(r->retry_reason);
	r->retry_reason = NULL;
	if (c.culprit_why)
		r->retry_reason = xstrdup(c.culprit_why);
	else if (c.others_why)
		r->retry_reason = xstrdup(c.others_why);
	else if (retrying.n > 0)
		r->retry_reason = xstrdup("worker drained");

	if (!t->rerun) {
		out->tests = (unsigned)(r->ntests + r->nunfinished);
		out->failed = (unsigned)r->nunfinished;
		for (i = 0; i < r->ntests; i++) {
			if (is_failure(r->tests[i].outcome))
				out->failed++;
		}
	}
	free(c.synth);
	free(c.culprit_why);
	free(c.others_why);
}

void verdict_release(struct verdict *v)
{
	size_t i;

	for (i = 0; i < v->nfollowups; i++)
		task_release(&v->followups[i].task);
	free(v->followups);
	if (v->dead) {
		task_release(v->dead);
		free(v->dead);
	}
	memset(v, 0, sizeof(*v));
}
