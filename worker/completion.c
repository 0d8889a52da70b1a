/* completion.c -- the records of the worker on their way out (see
 * worker_internal.h): each closes one attempt with the complete script
 * (record, ack, follow-ups, dead letter in one step), kept in memory and
 * sent again after a reconnect or a busy Redis until Redis answers. */
#include "worker_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keys.h"
#include "log.h"
#include "xmalloc.h"

/* delay = random(0, min(cap, base * 2^(attempt - 1))): full jitter. */
static unsigned long long retry_delay_ms(struct worker *w,
					 const struct policy *rp,
					 uint32_t failed_attempt)
{
	if (rp->backoff_base_ms == 0)
		return 0;
	w->rng.base_ms = rp->backoff_base_ms;
	w->rng.cap_ms = rp->backoff_cap_ms;
	w->rng.attempt = failed_attempt > 0 ? failed_attempt - 1 : 0;
	return backoff_next(&w->rng);
}

/* --- completions --- */

void completion_free(struct completion *c)
{
	size_t i;

	if (c->retry)
		event_free(c->retry);
	free(c->what);
	free(c->stream);
	free(c->entry_id);
	free(c->task_id);
	free(c->k_results);
	free(c->k_done);
	free(c->k_run);
	free(c->k_partial);
	free(c->record);
	free(c->dead);
	for (i = 0; i < c->nfollow; i++) {
		free(c->fu_due[i]);
		free(c->fu_queue[i]);
		free(c->fu_task[i]);
	}
	free(c->fu_due);
	free(c->fu_queue);
	free(c->fu_task);
	free(c->fu_len);
	for (i = 0; i < c->narts; i++) {
		free(c->art_field[i]);
		free(c->art_data[i]);
	}
	free(c->k_arts);
	free(c->art_field);
	free(c->art_data);
	free(c->art_len);
	free(c);
}

void completion_take_artifacts(struct completion *c, struct artifacts *a,
			       const struct task *t)
{
	size_t i, n = 0;

	for (i = 0; i < a->n; i++)
		n += a->v[i].data != NULL;
	if (n == 0)
		return;
	c->k_arts = key_artifacts(c->w->o->prefix, t->run);
	c->art_field = xcalloc(n, sizeof(*c->art_field));
	c->art_data = xcalloc(n, sizeof(*c->art_data));
	c->art_len = xcalloc(n, sizeof(*c->art_len));
	for (i = 0; i < a->n; i++) {
		struct artifact_file *f = &a->v[i];

		if (f->data == NULL)
			continue;
		c->art_field[c->narts] =
		    artifacts_field(t->id, t->attempt, f->rec.path);
		c->art_data[c->narts] = f->data;
		c->art_len[c->narts] = (size_t)f->rec.size;
		f->data = NULL;
		c->narts++;
	}
}

static void on_artifacts_stored(struct rconn *conn, redisReply *r, void *priv)
{
	(void)conn;
	(void)priv;
	if (r && r->type == REDIS_REPLY_ERROR)
		log_warn("artifacts not stored in Redis: %s", r->str);
}

/* HSET and EXPIRE of the inline artifacts, queued right before the
 * script so they go in the same write (no extra round trip). Sent again
 * with every try of the script: HSET of the same bytes is idempotent. */
static void completion_store_artifacts(struct completion *c)
{
	const char **argv;
	size_t *lens, i, n = 0;
	char ttl[32];
	const char *ex[3];
	size_t exl[3];

	if (c->narts == 0)
		return;
	argv = xcalloc(2 + 2 * c->narts, sizeof(*argv));
	lens = xcalloc(2 + 2 * c->narts, sizeof(*lens));
	argv[n] = "HSET", lens[n++] = 4;
	argv[n] = c->k_arts, lens[n++] = strlen(c->k_arts);
	for (i = 0; i < c->narts; i++) {
		argv[n] = c->art_field[i], lens[n++] = strlen(c->art_field[i]);
		argv[n] = c->art_data[i], lens[n++] = c->art_len[i];
	}
	if (rconn_command(c->w->cmd, on_artifacts_stored, NULL, 0, (int)n,
			  argv, lens) == 0) {
		snprintf(ttl, sizeof(ttl), "%lld", KEYS_ARTIFACTS_TTL_S);
		ex[0] = "EXPIRE", ex[1] = c->k_arts, ex[2] = ttl;
		for (i = 0; i < 3; i++)
			exl[i] = strlen(ex[i]);
		rconn_command(c->w->cmd, on_artifacts_stored, NULL, 0, 3, ex,
			      exl);
	}
	free(lens);
	free(argv);
}

void completion_unlink(struct completion *c)
{
	struct worker *w = c->w;

	if (c->prev)
		c->prev->next = c->next;
	else
		w->completions = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->next = c->prev = NULL;
	w->ncompletions--;
}

static void on_completion_retry(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	completion_publish(arg);
}

/* Builds the completion of attempt t closed as record r with verdict v
 * (all borrowed). rp gives the backoff of delayed follow-ups. */
struct completion *completion_new(struct worker *w, const char *stream,
				  const char *entry_id, const struct task *t,
				  const struct task_result *r,
				  const struct verdict *v,
				  const struct policy *rp)
{
	struct completion *c = xcalloc(1, sizeof(*c));
	unsigned long long now = worker_now_ms(), due;
	size_t i;

	c->w = w;
	c->what = xasprintf("task %s/%s attempt %u", t->run, t->id, t->attempt);
	c->stream = xstrdup(stream);
	c->entry_id = xstrdup(entry_id);
	c->task_id = xstrdup(t->id);
	c->k_results = key_results(w->o->prefix, t->run);
	c->k_done = key_done(w->o->prefix, t->run);
	c->k_run = key_run(w->o->prefix, t->run);
	c->k_partial = key_partial(w->o->prefix, t->run, t->id);
	proto_encode_task_result(r, &c->record, &c->record_len);
	if (v && v->dead)
		proto_encode_task(v->dead, &c->dead, &c->dead_len);
	c->tests = v ? v->tests : 0;
	c->failed = v ? v->failed : 0;
	c->nfollow = v ? v->nfollowups : 0;
	if (c->nfollow > 0) {
		c->fu_due = xcalloc(c->nfollow, sizeof(*c->fu_due));
		c->fu_queue = xcalloc(c->nfollow, sizeof(*c->fu_queue));
		c->fu_task = xcalloc(c->nfollow, sizeof(*c->fu_task));
		c->fu_len = xcalloc(c->nfollow, sizeof(*c->fu_len));
	}
	for (i = 0; i < c->nfollow; i++) {
		const struct followup *f = &v->followups[i];

		due = now;
		if (f->delayed && rp)
			due += retry_delay_ms(w, rp, t->attempt);
		c->fu_due[i] = xasprintf("%llu", due);
		c->fu_queue[i] =
		    xstrdup(f->task.queue && f->task.queue[0] ? f->task.queue
							      : "default");
		proto_encode_task(&f->task, &c->fu_task[i], &c->fu_len[i]);
	}
	c->retry = evtimer_new(w->base, on_completion_retry, c);
	backoff_init(&c->backoff, PUBLISH_BACKOFF_BASE_MS,
		     PUBLISH_BACKOFF_CAP_MS);
	return c;
}

void completion_submit(struct completion *c)
{
	struct worker *w = c->w;

	c->next = w->completions;
	if (c->next)
		c->next->prev = c;
	w->completions = c;
	w->ncompletions++;
	completion_publish(c);
}

/* The completion is over (published, refused, or dropped). */
void completion_done(struct completion *c)
{
	struct worker *w = c->w;

	completion_unlink(c);
	completion_free(c);
	worker_mark_busy(w);
	if (w->stopping) {
		worker_check_drained(w);
		return;
	}
	worker_start_backlog(w);
	worker_maybe_read(w);
}

static void on_completed(struct rconn *conn, redisReply *r, void *priv)
{
	struct completion *c = priv;
	struct worker *w = c->w;
	uint32_t ms;

	(void)conn;
	c->publishing = 0;
	if (w->closing)
		return;
	if (c->dropped) {
		completion_done(c);
		return;
	}
	if (!r)
		return; /* published again when redis is back */
	if (r->type == REDIS_REPLY_ERROR) {
		worker_error_reply(w, r);
		if (worker_noscript(r)) {
			completion_publish(c);
			return;
		}
		if (worker_busy_error(r->str))
			return; /* the ready hook publishes */
		ms = backoff_next(&c->backoff);
		log_warn("%s: publishing the record failed: %s; retrying in "
			 "%u ms",
			 c->what, r->str, ms);
		worker_timer_ms(c->retry, ms);
		return;
	}
	if (r->type != REDIS_REPLY_INTEGER) {
		ms = backoff_next(&c->backoff);
		log_warn("%s: unexpected reply to the complete script; "
			 "retrying in %u ms",
			 c->what, ms);
		worker_timer_ms(c->retry, ms);
		return;
	}
	switch (r->integer) {
	case 1:
		log_debug("%s: recorded", c->what);
		break;
	case 0:
		log_info("%s: already completed elsewhere; this record was "
			 "dropped as a duplicate",
			 c->what);
		break;
	case 2:
		log_info("%s: run cancelled; acked without a record", c->what);
		break;
	default:
		log_warn("%s: the entry is no longer ours (lease lost); "
			 "record dropped",
			 c->what);
		break;
	}
	completion_done(c);
}

/* TESTFLEET_FAULT: die like a killed worker (the runners follow by
 * PR_SET_PDEATHSIG). */
/* How long a worker under TESTFLEET_FAULT=exit-before-complete or
 * exit-after-complete waits between flushing what it sent and dying: dying
 * with replies unread resets the connection, and Redis may drop what it
 * has not read yet. */
#define FAULT_SETTLE_US (200 * 1000)

static void fault_exit(const char *when)
{
	log_warn("TESTFLEET_FAULT: exiting %s the complete script", when);
	_exit(137);
}

void completion_publish(struct completion *c)
{
	struct worker *w = c->w;
	const char **argv;
	size_t *lens;
	char now[32], tests[16], failed[16], nf[24];
	size_t i, n = 0, cap;
	int rc;

	if (c->publishing || c->dropped || w->closing ||
	    !rconn_is_ready(w->cmd))
		return; /* the ready hook publishes */
	if (c->from_slot && !w->fault_fired &&
	    w->o->fault == WORKER_FAULT_EXIT_BEFORE_COMPLETE) {
		/* What was sent before (the last tests' progress) lands,
		 * as for exit-after-complete below. */
		if (rconn_flush(w->cmd, 2000) < 0)
			log_warn("TESTFLEET_FAULT: could not flush the "
				 "commands before");
		usleep(FAULT_SETTLE_US);
		fault_exit("before sending");
	}
	cap = 18 + 3 * c->nfollow;
	argv = xcalloc(cap, sizeof(*argv));
	lens = xcalloc(cap, sizeof(*lens));
	snprintf(now, sizeof(now), "%.3f", worker_now());
	snprintf(tests, sizeof(tests), "%u", c->tests);
	snprintf(failed, sizeof(failed), "%u", c->failed);
	snprintf(nf, sizeof(nf), "%zu", c->nfollow);
#define ARG(s) (lens[n] = strlen(s), argv[n++] = (s))
#define BIN(s, l) (lens[n] = (l), argv[n++] = (s))
	ARG(c->stream);
	ARG(c->k_results);
	ARG(c->k_done);
	ARG(c->k_run);
	ARG(w->delayed_key);
	ARG(c->k_partial);
	ARG(w->dead_key);
	ARG(KEYS_GROUP);
	ARG(c->entry_id);
	ARG(c->task_id);
	ARG(w->consumer);
	BIN(c->record, c->record_len);
	ARG(now);
	ARG(tests);
	ARG(failed);
	ARG(w->control_key);
	if (c->dead)
		BIN(c->dead, c->dead_len);
	else
		ARG("");
	ARG(nf);
	for (i = 0; i < c->nfollow; i++) {
		ARG(c->fu_due[i]);
		ARG(c->fu_queue[i]);
		BIN(c->fu_task[i], c->fu_len[i]);
	}
#undef ARG
#undef BIN
	completion_store_artifacts(c);
	/* A large record takes longer to send: a second per MiB on top. */
	rc = worker_eval(
	    w, w->sha_complete, 7, (int)n, argv, lens, on_completed, c,
	    PUBLISH_DEADLINE_MS + (unsigned)(c->record_len >> 20) * 1000);
	free(lens);
	free(argv);
	if (rc < 0)
		return;
	c->publishing = 1;
	if (c->from_slot && !w->fault_fired &&
	    w->o->fault == WORKER_FAULT_EXIT_AFTER_COMPLETE) {
		if (rconn_flush(w->cmd, 2000) < 0)
			log_warn("TESTFLEET_FAULT: could not flush the "
				 "command");
		/* Dying with replies unread resets the connection, and
		 * Redis may drop the script unread: give it the time to
		 * run it, then die without reading the reply. */
		usleep(FAULT_SETTLE_US);
		fault_exit("after sending");
	}
}

/* A record for an attempt that never ran because its run is cancelled:
 * the script acks it away (reply 2). */
struct completion *completion_cancelled(struct worker *w, const char *stream,
					const char *entry_id,
					const struct task *t,
					const char *worker_label)
{
	struct task_result r;
	struct completion *c;

	memset(&r, 0, sizeof(r));
	r.run = t->run;
	r.task = t->id;
	r.attempt = t->attempt;
	r.worker = (char *)worker_label;
	r.suite = t->suite;
	r.phase = t->phase;
	r.status = TASK_CANCELLED;
	r.exit_code = -1;
	r.started_at = worker_now();
	r.message = "run cancelled";
	r.unfinished = t->tests;
	r.nunfinished = t->ntests;
	r.retried_for = t->retried_for;
	r.rerun = t->rerun;
	c = completion_new(w, stream, entry_id, t, &r, NULL, NULL);
	return c;
}

/* The attempt is handed back unrun (drain): its tests go to a follow-up
 * due now, at the same attempt. */
struct completion *completion_handback(struct worker *w, const char *stream,
				       const char *entry_id,
				       const struct task *t,
				       const struct policy *rp,
				       const char *worker_label)
{
	struct task_result r;
	struct verdict v;
	struct completion *c;
	size_t i;

	memset(&r, 0, sizeof(r));
	r.run = xstrdup(t->run);
	r.task = xstrdup(t->id);
	r.attempt = t->attempt;
	r.worker = xstrdup(worker_label);
	r.suite = xstrdup(t->suite);
	r.phase = xstrdup(t->phase);
	r.status = TASK_CANCELLED;
	r.exit_code = -1;
	r.started_at = worker_now();
	if (t->ntests > 0) {
		r.unfinished = xcalloc(t->ntests, sizeof(*r.unfinished));
		for (i = 0; i < t->ntests; i++)
			r.unfinished[i] = xstrdup(t->tests[i]);
		r.nunfinished = t->ntests;
	}
	classify_attempt(t, &r, rp, CLOSE_DRAINED, 0, &v);
	c = completion_new(w, stream, entry_id, t, &r, &v, rp);
	verdict_release(&v);
	task_result_release(&r);
	return c;
}
