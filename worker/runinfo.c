/* runinfo.c -- what the worker knows of each run (see
 * worker_internal.h): its policy, read once with one HMGET and cached
 * (bounded, least recently used out), and whether it is cancelled, kept up
 * to date by the "cancel <run>" notices of the control channel. */
#include "worker_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "log.h"
#include "xmalloc.h"

/* HMGET <run hash> status, then the policy fields (policy.h). */
int runinfo_send_hmget(struct worker *w, const char *run, rconn_fn fn,
		       void *priv)
{
	const char *argv[3 + POLICY_NFIELDS];
	char *key = key_run(w->o->prefix, run);
	size_t i;
	int rc;

	argv[0] = "HMGET";
	argv[1] = key;
	argv[2] = "status";
	for (i = 0; i < POLICY_NFIELDS; i++)
		argv[3 + i] = policy_field_names[i];
	rc = rconn_command(w->cmd, fn, priv, 0, (int)(3 + POLICY_NFIELDS), argv,
			   NULL);
	free(key);
	return rc;
}

/* Fills rp (initialised by the caller) from the HMGET reply; missing
 * fields keep their defaults, bad ones too (with a warning). */
void runinfo_parse(const redisReply *r, const char *run, struct policy *rp,
		   int *cancelled)
{
	const redisReply *v;
	char err[256];
	size_t i;

	*cancelled = 0;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 1 + POLICY_NFIELDS)
		return;
	v = r->element[0];
	if (v->type == REDIS_REPLY_STRING && strcmp(v->str, "cancelled") == 0)
		*cancelled = 1;
	for (i = 0; i < POLICY_NFIELDS; i++) {
		v = r->element[1 + i];
		if (v->type != REDIS_REPLY_STRING)
			continue;
		if (policy_set_field(rp, policy_field_names[i], v->str, v->len,
				     err, sizeof(err)) < 0)
			log_warn("run %s: %s; using the default", run, err);
	}
	if (rp->backoff_cap_ms < rp->backoff_base_ms)
		rp->backoff_cap_ms = rp->backoff_base_ms;
}

/* --- run policies --- */

struct runinfo *runinfo_find(struct worker *w, const char *run)
{
	struct runinfo *p;

	for (p = w->runs; p; p = p->next) {
		if (strcmp(p->run, run) == 0)
			return p;
	}
	return NULL;
}

void runinfo_free(struct runinfo *p)
{
	policy_release(&p->rp);
	free(p->run);
	free(p);
}

/* Drops the least recently used unused entries beyond the cache size. */
static void runinfo_evict(struct worker *w)
{
	struct runinfo **pp, **victim;

	while (w->nruns > POLICY_CACHE) {
		victim = NULL;
		for (pp = &w->runs; *pp; pp = &(*pp)->next) {
			if ((*pp)->refs == 0 && !(*pp)->fetching &&
			    (!victim || (*pp)->used < (*victim)->used))
				victim = pp;
		}
		if (!victim)
			return; /* all in use: over the bound for a while */
		{
			struct runinfo *p = *victim;

			*victim = p->next;
			runinfo_free(p);
			w->nruns--;
		}
	}
}

static void on_runinfo(struct rconn *c, redisReply *r, void *priv)
{
	struct runinfo *p = priv;
	struct worker *w = p->w;
	int cancelled;

	(void)c;
	p->fetching = 0;
	if (w->closing || !r)
		return; /* fetched again when redis is back */
	if (r->type == REDIS_REPLY_ERROR) {
		if (worker_busy_error(r->str)) {
			rconn_drop(w->cmd, r->str);
			return;
		}
		log_warn("run %s: reading its policy: %s; using the defaults",
			 p->run, r->str);
	} else {
		policy_release(&p->rp);
		policy_init(&p->rp);
		runinfo_parse(r, p->run, &p->rp, &cancelled);
		if (cancelled && !p->cancelled)
			log_info("run %s is cancelled", p->run);
		p->cancelled |= cancelled;
	}
	p->ready = 1;
	if (p->cancelled)
		runinfo_cancel_tasks(w, p);
	worker_start_backlog(w);
	worker_maybe_read(w);
}

void runinfo_fetch(struct runinfo *p)
{
	if (p->fetching || !rconn_is_ready(p->w->cmd))
		return;
	if (runinfo_send_hmget(p->w, p->run, on_runinfo, p) == 0)
		p->fetching = 1;
}

/* The policy of run, with a reference for the caller; read from Redis the
 * first time (until then it is not ready). */
struct runinfo *runinfo_get(struct worker *w, const char *run)
{
	struct runinfo *p = runinfo_find(w, run);

	if (!p) {
		p = xcalloc(1, sizeof(*p));
		p->w = w;
		p->run = xstrdup(run);
		policy_init(&p->rp);
		p->next = w->runs;
		w->runs = p;
		w->nruns++;
		runinfo_fetch(p);
	}
	p->refs++;
	p->used = ++w->clock;
	runinfo_evict(w);
	return p;
}

void runinfo_put(struct runinfo *p)
{
	if (p && p->refs > 0)
		p->refs--;
}

/* --- cancel --- */

/* Kills the running attempts of a cancelled run (their records are acked
 * away by the script) and drops its waiting entries. */
void runinfo_cancel_tasks(struct worker *w, struct runinfo *ri)
{
	struct backlog **pp, *b, *prev = NULL;
	unsigned i, n = 0;

	for (i = 0; i < w->o->slots; i++) {
		struct slot *s = &w->slots[i];

		if (!s->job || s->ri != ri || s->kill != KILL_NONE ||
		    job_is_done(s->job))
			continue;
		s->kill = KILL_CANCEL;
		job_cancel(s->job, CANCEL_KILL_MS);
		n++;
	}
	if (n > 0)
		log_info("run %s cancelled: stopping %u running tasks", ri->run,
			 n);
	pp = &w->backlog;
	while (*pp) {
		b = *pp;
		if (b->ri != ri) {
			prev = b;
			pp = &b->next;
			continue;
		}
		backlog_unlink(w, pp, prev);
		completion_submit(completion_cancelled(
		    w, b->stream, b->entry_id, &b->task, w->slots[0].label));
		backlog_free(b);
	}
}

static void runinfo_cancel(struct worker *w, const char *run)
{
	struct runinfo *p = runinfo_find(w, run);

	if (!p)
		return; /* not seen here: its first HMGET will say so */
	if (!p->cancelled)
		log_info("run %s is cancelled", run);
	p->cancelled = 1;
	runinfo_cancel_tasks(w, p);
}

static void runinfo_on_control(struct rconn *c, redisReply *r, void *priv)
{
	struct worker *w = priv;
	const redisReply *kind, *msg;
	char run[256];

	(void)c;
	if (w->closing || r->type != REDIS_REPLY_ARRAY || r->elements < 3)
		return;
	kind = r->element[0];
	msg = r->element[2];
	if (kind->type != REDIS_REPLY_STRING || strcmp(kind->str, "message") ||
	    msg->type != REDIS_REPLY_STRING)
		return;
	if (msg->len > 7 && msg->len - 7 < sizeof(run) &&
	    memcmp(msg->str, "cancel ", 7) == 0) {
		memcpy(run, msg->str + 7, msg->len - 7);
		run[msg->len - 7] = '\0';
		runinfo_cancel(w, run);
	} else {
		log_debug("control: ignoring \"%.60s\"", msg->str);
	}
}

void runinfo_control_ready(void *arg, struct rconn *c)
{
	struct worker *w = arg;
	struct runinfo *p;

	if (w->sub_down)
		log_info("redis %s: connected again", rconn_name(c));
	w->sub_down = 0;
	if (rconn_subscribe(c, w->control_key, runinfo_on_control, w) < 0)
		rconn_drop(c, "cannot subscribe");
	/* Notices sent while we were away are lost: read again the status
	 * of every run we hold work of. */
	if (w->sub_seen) {
		for (p = w->runs; p; p = p->next) {
			if (p->refs > 0 && !p->cancelled)
				runinfo_fetch(p);
		}
	}
	w->sub_seen = 1;
}

void runinfo_control_lost(void *arg, struct rconn *c, const char *why)
{
	struct worker *w = arg;

	if (!w->sub_down)
		log_warn("redis %s: %s; reconnecting", rconn_name(c), why);
	w->sub_down = 1;
}
