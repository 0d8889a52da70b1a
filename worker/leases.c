/* leases.c -- leases (see worker_internal.h): renewing the entries this
 * worker holds, and the reaper, which claims entries idle past the lease
 * (XAUTOCLAIM), reads what their lost worker left (partial results) and
 * closes them with a "lost" record. */
#include "worker_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "log.h"
#include "runner.h"
#include "xmalloc.h"

/* --- leases --- */

static int entry_is(const char *stream, const char *id, const char *s2,
		    const char *id2)
{
	return s2 && id2 && strcmp(id, id2) == 0 && strcmp(stream, s2) == 0;
}

/* Another worker owns this entry now (or it is gone): stop what we do
 * with it, without a record. */
static void lease_lost(struct worker *w, const char *stream, const char *id)
{
	struct backlog **pp, *b, *prev = NULL;
	struct completion *c, *next;
	unsigned i;

	for (i = 0; i < w->o->slots; i++) {
		struct slot *s = &w->slots[i];

		if (!s->job || !entry_is(stream, id, s->stream, s->entry_id))
			continue;
		if (s->kill == KILL_LEASE)
			return;
		log_warn("task %s/%s: lease lost (entry %s); killing it",
			 job_task(s->job)->run, job_task(s->job)->id, id);
		s->kill = KILL_LEASE;
		job_cancel(s->job, 0);
		return;
	}
	for (pp = &w->backlog; *pp; prev = *pp, pp = &(*pp)->next) {
		b = *pp;
		if (!entry_is(stream, id, b->stream, b->entry_id))
			continue;
		log_warn("task %s/%s: lease lost before it started; dropped",
			 b->task.run, b->task.id);
		backlog_unlink(w, pp, prev);
		backlog_free(b);
		return;
	}
	for (c = w->completions; c; c = next) {
		next = c->next;
		if (!entry_is(stream, id, c->stream, c->entry_id))
			continue;
		log_warn("%s: lease lost before its record went out; "
			 "dropped",
			 c->what);
		c->dropped = 1;
		if (!c->publishing)
			completion_done(c);
		return;
	}
}

static void on_renewed(struct rconn *c, redisReply *r, void *priv)
{
	struct queue *q = priv;
	struct worker *w = q->w;
	size_t i;

	(void)c;
	q->renewing = 0;
	if (w->closing || !r)
		return;
	if (r->type == REDIS_REPLY_ERROR) {
		log_warn("renewing leases on %s: %s", q->stream, r->str);
		worker_error_reply(w, r);
		return;
	}
	if (r->type != REDIS_REPLY_ARRAY)
		return;
	clock_gettime(CLOCK_MONOTONIC, &w->renewed);
	for (i = 0; i < r->elements; i++) {
		if (r->element[i]->type == REDIS_REPLY_STRING)
			lease_lost(w, q->stream, r->element[i]->str);
	}
}

static void ids_push(const char ***v, size_t *n, size_t *cap, const char *id)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		*v = xreallocarray(*v, *cap, sizeof(**v));
	}
	(*v)[(*n)++] = id;
}

/* Every entry this worker holds, per queue: running, waiting to start,
 * and waiting for its record to go out. Returns 1 when there were some. */
static int renew_queue(struct worker *w, struct queue *q)
{
	const char **argv = NULL;
	size_t n = 0, cap = 0;
	struct backlog *b;
	struct completion *c;
	unsigned i;

	ids_push(&argv, &n, &cap, q->stream);
	ids_push(&argv, &n, &cap, KEYS_GROUP);
	ids_push(&argv, &n, &cap, w->consumer);
	for (i = 0; i < w->o->slots; i++) {
		struct slot *s = &w->slots[i];

		if (s->job && s->kill != KILL_LEASE &&
		    strcmp(s->stream, q->stream) == 0)
			ids_push(&argv, &n, &cap, s->entry_id);
	}
	for (b = w->backlog; b; b = b->next) {
		if (strcmp(b->stream, q->stream) == 0)
			ids_push(&argv, &n, &cap, b->entry_id);
	}
	for (c = w->completions; c; c = c->next) {
		if (!c->dropped && strcmp(c->stream, q->stream) == 0)
			ids_push(&argv, &n, &cap, c->entry_id);
	}
	if (n > 3 && worker_eval(w, w->sha_renew, 1, (int)n, argv, NULL,
				 on_renewed, q, 0) == 0)
		q->renewing = 1;
	free(argv);
	return n > 3;
}

void lease_on_renew(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	size_t i;
	int held = 0;

	(void)fd;
	(void)what;
	if (w->exiting || !rconn_is_ready(w->cmd))
		return;
	for (i = 0; i < w->o->nqueues; i++) {
		if (w->queues[i].renewing)
			held = 1;
		else
			held |= renew_queue(w, &w->queues[i]);
	}
	if (!held)
		clock_gettime(CLOCK_MONOTONIC, &w->renewed);
}

/* --- the reaper --- */

static int holds_entry(struct worker *w, const char *stream, const char *id)
{
	struct backlog *b;
	struct completion *c;
	struct reclaim *rc;
	unsigned i;

	for (i = 0; i < w->o->slots; i++) {
		if (w->slots[i].job && entry_is(stream, id, w->slots[i].stream,
						w->slots[i].entry_id))
			return 1;
	}
	for (b = w->backlog; b; b = b->next) {
		if (entry_is(stream, id, b->stream, b->entry_id))
			return 1;
	}
	for (c = w->completions; c; c = c->next) {
		if (entry_is(stream, id, c->stream, c->entry_id))
			return 1;
	}
	for (rc = w->reclaims; rc; rc = rc->next) {
		if (entry_is(stream, id, rc->stream, rc->entry_id))
			return 1;
	}
	return 0;
}

void lease_reclaim_free(struct reclaim *rc)
{
	struct worker *w = rc->w;
	size_t i;

	if (rc->prev)
		rc->prev->next = rc->next;
	else if (w->reclaims == rc)
		w->reclaims = rc->next;
	if (rc->next)
		rc->next->prev = rc->prev;
	free(rc->stream);
	free(rc->entry_id);
	task_release(&rc->task);
	policy_release(&rc->rp);
	for (i = 0; i < rc->ndone; i++)
		test_result_release(&rc->done[i]);
	free(rc->done);
	free(rc->running);
	free(rc);
}

/* Both replies are in: close the lost attempt with a "lost" record. */
static void reclaim_finish(struct reclaim *rc)
{
	struct worker *w = rc->w;
	const struct task *t = &rc->task;
	struct task_result r;
	struct completion *c;
	struct verdict v;
	size_t i;

	if (rc->failed) {
		log_debug("task %s/%s: reclaim interrupted; the entry stays "
			  "pending",
			  t->run, t->id);
		lease_reclaim_free(rc);
		worker_check_drained(w);
		return;
	}
	if (rc->cancelled) {
		c = completion_cancelled(w, rc->stream, rc->entry_id, t,
					 w->reaper_label);
		completion_submit(c);
		lease_reclaim_free(rc);
		return;
	}
	memset(&r, 0, sizeof(r));
	r.run = xstrdup(t->run);
	r.task = xstrdup(t->id);
	r.attempt = t->attempt;
	r.worker = xstrdup(w->reaper_label);
	r.suite = xstrdup(t->suite);
	r.phase = xstrdup(t->phase);
	r.status = TASK_LOST;
	r.exit_code = -1;
	r.started_at = worker_now();
	r.message =
	    xasprintf("worker lost: no lease renewal for %u s", w->o->lease_s);
	r.tests = rc->done;
	r.ntests = rc->ndone;
	rc->done = NULL;
	rc->ndone = 0;
	if (rc->running) {
		for (i = 0; i < r.ntests; i++) {
			if (strcmp(r.tests[i].id, rc->running) == 0)
				break;
		}
		if (i == r.ntests) {
			r.running = rc->running;
			rc->running = NULL;
		}
	}
	r.unfinished = runner_unfinished(t->tests, t->ntests, r.tests, r.ntests,
					 0, &r.nunfinished);
	classify_attempt(t, &r, &rc->rp, CLOSE_NORMAL,
			 t->timeout_s ? t->timeout_s : w->o->timeout_s, &v);
	log_warn("task %s/%s attempt %u: reclaimed from a lost worker: %zu "
		 "tests finished, %zu retried%s",
		 t->run, t->id, t->attempt, r.ntests, r.nretrying,
		 v.dead ? ", dead-lettered" : "");
	c = completion_new(w, rc->stream, rc->entry_id, t, &r, &v, &rc->rp);
	verdict_release(&v);
	task_result_release(&r);
	lease_reclaim_free(rc);
	completion_submit(c);
}

static void reclaim_reply_done(struct reclaim *rc)
{
	if (--rc->pending == 0)
		reclaim_finish(rc);
}

static void on_reclaim_policy(struct rconn *c, redisReply *r, void *priv)
{
	struct reclaim *rc = priv;

	(void)c;
	if (rc->w->closing)
		return;
	if (!r || (r->type == REDIS_REPLY_ERROR && worker_busy_error(r->str)))
		rc->failed = 1;
	else if (r->type == REDIS_REPLY_ARRAY)
		runinfo_parse(r, rc->task.run, &rc->rp, &rc->cancelled);
	reclaim_reply_done(rc);
}

static void on_reclaim_partial(struct rconn *c, redisReply *r, void *priv)
{
	struct reclaim *rc = priv;
	struct test_result tr;
	char err[256];
	size_t i;

	(void)c;
	if (rc->w->closing)
		return;
	if (!r || r->type != REDIS_REPLY_ARRAY) {
		if (!r ||
		    (r->type == REDIS_REPLY_ERROR && worker_busy_error(r->str)))
			rc->failed = 1;
		reclaim_reply_done(rc);
		return;
	}
	for (i = 0; i + 1 < r->elements; i += 2) {
		const redisReply *k = r->element[i], *v = r->element[i + 1];

		if (k->type != REDIS_REPLY_STRING ||
		    v->type != REDIS_REPLY_STRING)
			continue;
		if (strcmp(k->str, "running") == 0) {
			free(rc->running);
			rc->running = xstrndup(v->str, v->len);
			continue;
		}
		if (k->len < 3 || memcmp(k->str, "r:", 2) != 0)
			continue;
		if (proto_decode_test_result(v->str, v->len, &tr, err,
					     sizeof(err)) < 0) {
			log_warn("task %s/%s: partial result %.200s: %s",
				 rc->task.run, rc->task.id, k->str, err);
			continue;
		}
		rc->done =
		    xreallocarray(rc->done, rc->ndone + 1, sizeof(*rc->done));
		rc->done[rc->ndone++] = tr;
	}
	reclaim_reply_done(rc);
}

/* A claimed entry of a lost worker: read what it left, then close it. */
static void reclaim_start(struct worker *w, const char *stream,
			  const redisReply *entry)
{
	const redisReply *id = entry->element[0], *fields = entry->element[1];
	const redisReply *m = worker_entry_task(fields);
	struct reclaim *rc;
	const char *argv[2];
	char err[512], *key;

	if (!m) {
		log_warn("queue %s entry %s: reclaimed without a task; "
			 "dropping it",
			 stream, id->str);
		worker_ack_and_delete(w, stream, id->str);
		return;
	}
	rc = xcalloc(1, sizeof(*rc));
	if (proto_decode_task(m->str, m->len, &rc->task, err, sizeof(err)) <
	    0) {
		log_error("queue %s entry %s: reclaimed: %s; dropping it",
			  stream, id->str, err);
		worker_ack_and_delete(w, stream, id->str);
		free(rc);
		return;
	}
	rc->w = w;
	rc->stream = xstrdup(stream);
	rc->entry_id = xstrndup(id->str, id->len);
	policy_init(&rc->rp);
	rc->next = w->reclaims;
	if (rc->next)
		rc->next->prev = rc;
	w->reclaims = rc;
	rc->pending = 2;
	if (runinfo_send_hmget(w, rc->task.run, on_reclaim_policy, rc) < 0) {
		rc->failed = 1;
		rc->pending--;
	}
	key = key_partial(w->o->prefix, rc->task.run, rc->task.id);
	argv[0] = "HGETALL";
	argv[1] = key;
	if (rconn_command(w->cmd, on_reclaim_partial, rc, 0, 2, argv, NULL) <
	    0) {
		rc->failed = 1;
		rc->pending--;
	}
	free(key);
	if (rc->pending == 0)
		reclaim_finish(rc);
}

static void send_autoclaim(struct queue *q, const char *cursor);

static void on_autoclaim(struct rconn *c, redisReply *r, void *priv)
{
	struct queue *q = priv;
	struct worker *w = q->w;
	const redisReply *entries, *e;
	char cursor[64];
	size_t i, claimed = 0;

	(void)c;
	q->reaping = 0;
	if (w->closing || !r)
		return;
	if (r->type == REDIS_REPLY_ERROR) {
		if (strncmp(r->str, "NOGROUP", 7) != 0)
			log_warn("XAUTOCLAIM %s: %s", q->stream, r->str);
		worker_error_reply(w, r);
		return;
	}
	if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
	    r->element[0]->type != REDIS_REPLY_STRING ||
	    r->element[0]->len >= sizeof(cursor))
		return;
	memcpy(cursor, r->element[0]->str, r->element[0]->len);
	cursor[r->element[0]->len] = '\0';
	/* Redis 7: entries deleted while pending, already out of the
	 * pending list; acked and deleted again to be sure. */
	if (r->elements >= 3 && r->element[2]->type == REDIS_REPLY_ARRAY) {
		for (i = 0; i < r->element[2]->elements; i++) {
			e = r->element[2]->element[i];
			if (e->type == REDIS_REPLY_STRING)
				worker_ack_and_delete(w, q->stream, e->str);
		}
	}
	entries = r->element[1];
	for (i = 0; entries->type == REDIS_REPLY_ARRAY && i < entries->elements;
	     i++) {
		e = entries->element[i];
		if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
		    e->element[0]->type != REDIS_REPLY_STRING)
			continue;
		if (e->element[1]->type == REDIS_REPLY_NIL) {
			/* Redis 6.2: deleted while pending. */
			worker_ack_and_delete(w, q->stream, e->element[0]->str);
			continue;
		}
		if (holds_entry(w, q->stream, e->element[0]->str))
			continue; /* ours after a stall: the claim renewed it */
		reclaim_start(w, q->stream, e);
		claimed++;
	}
	if (strcmp(cursor, "0-0") != 0 && !w->stopping)
		send_autoclaim(q, cursor);
}

static void send_autoclaim(struct queue *q, const char *cursor)
{
	struct worker *w = q->w;
	const char *argv[8];
	char idle[24], count[16];

	snprintf(idle, sizeof(idle), "%u", worker_lease_ms(w));
	snprintf(count, sizeof(count), "%d", REAP_COUNT);
	argv[0] = "XAUTOCLAIM";
	argv[1] = q->stream;
	argv[2] = KEYS_GROUP;
	argv[3] = w->consumer;
	argv[4] = idle;
	argv[5] = cursor;
	argv[6] = "COUNT";
	argv[7] = count;
	if (rconn_command(w->cmd, on_autoclaim, q, 0, 8, argv, NULL) == 0)
		q->reaping = 1;
}

/* Every lease/2, give or take 20 %, so a fleet started together spreads
 * its reapers out. */
void lease_arm_reaper(struct worker *w)
{
	unsigned base = worker_lease_ms(w) / 2, spread = base / 5;

	w->rng.base_ms = 2 * spread > 0 ? 2 * spread : 1;
	w->rng.cap_ms = w->rng.base_ms;
	w->rng.attempt = 0;
	worker_timer_ms(w->reap_ev, base - spread + backoff_next(&w->rng));
}

void lease_on_reap(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	size_t i;

	(void)fd;
	(void)what;
	if (w->stopping)
		return;
	lease_arm_reaper(w);
	/* A worker killed on this host leaves its tests' subprocesses and
	 * folders behind (its runner died by PR_SET_PDEATHSIG, their
	 * children did not): clean them up without waiting for Redis. */
	worker_sweep_dead(w);
	if (!rconn_is_ready(w->cmd) || !w->groups_ok ||
	    worker_now_ms() < w->reap_after_ms)
		return;
	for (i = 0; i < w->o->nqueues; i++) {
		if (!w->queues[i].reaping)
			send_autoclaim(&w->queues[i], "0-0");
	}
}
