/* worker.c -- the worker daemon's loop (see worker.h; the parts and the
 * life of an entry are in worker_internal.h): connections, queue reads,
 * the backlog, slots and their jobs, promotion of due retries, groups and
 * heartbeat, signals and drain. */
#include "warm.h"
#include "worker_internal.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "keys.h"
#include "log.h"
#include "scripts.h"
#include "xmalloc.h"

/* --- small helpers --- */

void worker_timer_ms(struct event *ev, unsigned ms)
{
	struct timeval tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	event_add(ev, &tv);
}

double worker_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

const redisReply *worker_entry_task(const redisReply *fields)
{
	const redisReply *m = NULL;
	size_t i;

	if (fields->type != REDIS_REPLY_ARRAY)
		return NULL;
	for (i = 0; i + 1 < fields->elements; i += 2) {
		const redisReply *k = fields->element[i];

		if (k->type == REDIS_REPLY_STRING && k->len == 1 &&
		    k->str[0] == 'm' &&
		    fields->element[i + 1]->type == REDIS_REPLY_STRING)
			m = fields->element[i + 1];
	}
	return m;
}

unsigned long long worker_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (unsigned long long)ts.tv_sec * 1000ULL +
	       (unsigned long long)ts.tv_nsec / 1000000ULL;
}

double worker_since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) +
	       (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

unsigned worker_busy_slots(const struct worker *w)
{
	unsigned i, n = 0;

	for (i = 0; i < w->o->slots; i++) {
		if (w->slots[i].job)
			n++;
	}
	return n;
}

static struct slot *free_slot(struct worker *w)
{
	unsigned i;

	for (i = 0; i < w->o->slots; i++) {
		if (!w->slots[i].job)
			return &w->slots[i];
	}
	return NULL;
}

void worker_mark_busy(struct worker *w)
{
	clock_gettime(CLOCK_MONOTONIC, &w->last_busy);
}

unsigned worker_lease_ms(const struct worker *w)
{
	return w->o->lease_s * 1000u;
}

/* Replies that mean "Redis cannot serve us right now": handled like a
 * lost connection (reconnect with backoff, then retry). */
int worker_busy_error(const char *s)
{
	static const char *const codes[] = {
	    "LOADING",	  "BUSY",     "OOM",	    "READONLY",
	    "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN"};
	size_t i, n;

	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		n = strlen(codes[i]);
		if (strncmp(s, codes[i], n) == 0 && (s[n] == ' ' || !s[n]))
			return 1;
	}
	return 0;
}

int worker_noscript(const redisReply *r)
{
	return r && r->type == REDIS_REPLY_ERROR &&
	       strncmp(r->str, "NOSCRIPT", 8) == 0;
}

/* Sends EVALSHA sha nkeys args... argv holds the keys then the arguments
 * (n in all); lens may be NULL. Returns rconn_command's result. */
int worker_eval(struct worker *w, const char *sha, int nkeys, int n,
		const char **argv, const size_t *lens, rconn_fn fn, void *priv,
		unsigned deadline_ms)
{
	const char **av = xcalloc((size_t)n + 3, sizeof(*av));
	size_t *al = xcalloc((size_t)n + 3, sizeof(*al));
	char nk[16];
	int i, rc;

	snprintf(nk, sizeof(nk), "%d", nkeys);
	av[0] = "EVALSHA";
	av[1] = sha;
	av[2] = nk;
	for (i = 0; i < n; i++) {
		av[i + 3] = argv[i];
		al[i + 3] = lens ? lens[i] : strlen(argv[i]);
	}
	for (i = 0; i < 3; i++)
		al[i] = strlen(av[i]);
	rc = rconn_command(w->cmd, fn, priv, deadline_ms, n + 3, av, al);
	free(al);
	free(av);
	return rc;
}

static void sweep_warn(void *arg, const char *msg)
{
	(void)arg;
	log_warn("%s", msg);
}

void worker_sweep_dead(struct worker *w)
{
	unsigned n = job_sweep_dead(sweep_warn, w);

	if (n > 0)
		log_info("removed %u temporary folders of dead workers", n);
}

static void on_script_loaded(struct rconn *c, redisReply *r, void *priv)
{
	(void)c;
	(void)priv;
	if (r && r->type == REDIS_REPLY_ERROR)
		log_warn("SCRIPT LOAD: %s", r->str);
}

/* Commands on one connection run in order, so every EVALSHA sent after
 * these finds its script (a restarted Redis means a new connection). */
void worker_load_scripts(struct worker *w)
{
	const char *scripts[3] = {script_complete, script_renew,
				  script_promote};
	const char *argv[3];
	size_t i;

	argv[0] = "SCRIPT";
	argv[1] = "LOAD";
	for (i = 0; i < 3; i++) {
		argv[2] = scripts[i];
		rconn_command(w->cmd, on_script_loaded, NULL, 0, 3, argv, NULL);
	}
}

/* An error reply to a command that will be retried: reconnect first when
 * Redis is busy or read-only, reload the scripts when they are missing. */
void worker_error_reply(struct worker *w, const redisReply *r)
{
	if (worker_noscript(r))
		worker_load_scripts(w);
	else if (worker_busy_error(r->str))
		rconn_drop(w->cmd, r->str);
}

void worker_ack_and_delete(struct worker *w, const char *stream, const char *id)
{
	const char *ack[4] = {"XACK", stream, KEYS_GROUP, id};
	const char *del[3] = {"XDEL", stream, id};

	if (rconn_command(w->cmd, NULL, NULL, 0, 4, ack, NULL) < 0 ||
	    rconn_command(w->cmd, NULL, NULL, 0, 3, del, NULL) < 0)
		log_warn("queue %s entry %s: redis not connected; it stays "
			 "pending",
			 stream, id);
}

/* --- slots and jobs --- */

static void on_progress(struct rconn *c, redisReply *r, void *priv)
{
	(void)c;
	(void)priv;
	if (r && r->type == REDIS_REPLY_ERROR)
		log_debug("progress event: %s", r->str);
}

/* The progress event for the console and the attempt's partial results
 * for a reaper: fire and forget, pipelined. */
static void gate_release(struct slot *s);

static void on_job_event(void *arg, struct job *j,
			 const struct runner_event *ev)
{
	struct slot *s = arg;
	struct worker *w = s->w;
	const struct task *t = job_task(j);
	struct progress p;
	const char *argv[5];
	size_t lens[5];
	char *buf, *key, *field, ttl[16];
	size_t len;
	int stale;

	gate_release(s); /* its first test started */
	if (!rconn_is_ready(w->cmd) || s->kill != KILL_NONE)
		return; /* informational, or no longer ours */
	/* After a stall (SIGSTOP, a frozen VM) the lease may be gone and a
	 * reaper may have closed the attempt: write no partial results until
	 * a renewal says the entry is still ours. */
	stale = worker_since(&w->renewed) * 1000.0 >
		(double)worker_lease_ms(w) * 2 / 3;
	memset(&p, 0, sizeof(p));
	p.run = t->run;
	p.task = t->id;
	p.attempt = t->attempt;
	p.worker = s->label;
	p.test = ev->test.id;
	p.finished = ev->kind == EVENT_FINISH;
	p.outcome = ev->test.outcome;
	p.duration_s = ev->test.duration_s;
	proto_encode_progress(&p, &buf, &len);
	key = key_results(w->o->prefix, t->run);
	argv[0] = "XADD";
	argv[1] = key;
	argv[2] = "*";
	argv[3] = "m";
	argv[4] = buf;
	lens[0] = 4;
	lens[1] = strlen(key);
	lens[2] = 1;
	lens[3] = 1;
	lens[4] = len;
	rconn_command(w->cmd, on_progress, NULL, 0, 5, argv, lens);
	free(key);
	free(buf);
	if (stale)
		return;

	argv[0] = "HSET";
	argv[1] = s->partial_key;
	if (ev->kind == EVENT_FINISH) {
		field = xasprintf("r:%s", ev->test.id);
		proto_encode_test_result(&ev->test, &buf, &len);
	} else {
		field = xstrdup("running");
		buf = xstrdup(ev->test.id);
		len = strlen(buf);
	}
	argv[2] = field;
	argv[3] = buf;
	lens[0] = 4;
	lens[1] = strlen(s->partial_key);
	lens[2] = strlen(field);
	lens[3] = len;
	rconn_command(w->cmd, NULL, NULL, 0, 4, argv, lens);
	free(field);
	free(buf);
	if (!s->partial_ttl_set) {
		/* Only a safety net: complete deletes the hash. */
		snprintf(ttl, sizeof(ttl), "%d", PARTIAL_TTL_S);
		argv[0] = "EXPIRE";
		argv[1] = s->partial_key;
		argv[2] = ttl;
		if (rconn_command(w->cmd, NULL, NULL, 0, 3, argv, NULL) == 0)
			s->partial_ttl_set = 1;
	}
}

static void on_job_warn(void *arg, struct job *j, const char *msg)
{
	struct slot *s = arg;

	(void)j;
	log_warn("%s: %s", s->label, msg);
}

/* --- the start gate ---
 *
 * Runners that start together share the CPUs: with more slots than CPUs,
 * every one of them is slow to reach its first test. Through the gate at
 * most start_gate start at once, in the order they were read (the queue's:
 * longest first), so the first ones run at full speed and the plan can
 * give them the most work (docs/scheduling.md, "Start gate"). */

static int gated_runner(const char *runner)
{
	return runner && (strcmp(runner, "pytest") == 0 ||
			  strcmp(runner, "playwright") == 0);
}

/* s's runner is past its start-up: its place goes to the next. */
static void gate_release(struct slot *s)
{
	struct worker *w = s->w;

	if (!s->starting)
		return;
	s->starting = 0;
	w->starting--;
	event_del(s->gate_ev);
	if (w->backlog && !w->closing)
		event_active(w->gate_kick, 0, 0);
}

static void on_gate_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	gate_release(arg);
}

static void on_gate_kick(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	(void)fd;
	(void)what;
	worker_start_backlog(w);
	worker_maybe_read(w);
}

static void on_job_done(void *arg, struct job *j)
{
	struct slot *s = arg;

	(void)j;
	gate_release(s);
	/* The job cannot be freed inside its own callback. */
	event_active(s->release, 0, 0);
}

static void slot_free(struct slot *s)
{
	gate_release(s);
	job_free(s->job);
	s->job = NULL;
	free(s->stream);
	s->stream = NULL;
	free(s->entry_id);
	s->entry_id = NULL;
	free(s->partial_key);
	s->partial_key = NULL;
	s->partial_ttl_set = 0;
	runinfo_put(s->ri);
	s->ri = NULL;
	s->kill = KILL_NONE;
	worker_mark_busy(s->w);
}

static unsigned count_failed(const struct task_result *r)
{
	unsigned n = 0;
	size_t i;

	for (i = 0; i < r->ntests; i++) {
		if (r->tests[i].outcome == OUTCOME_FAILED ||
		    r->tests[i].outcome == OUTCOME_ERROR)
			n++;
	}
	return n;
}

/* The attempt in slot s ended: close it and free the slot. */
static void on_slot_release(evutil_socket_t fd, short what, void *arg)
{
	struct slot *s = arg;
	struct worker *w = s->w;
	struct task_result *r;
	const struct task *t;
	struct completion *c;
	struct verdict v;

	(void)fd;
	(void)what;
	if (!s->job || !job_is_done(s->job))
		return;
	r = job_result(s->job);
	t = job_task(s->job);
	if (s->kill == KILL_LEASE) {
		log_warn("task %s/%s attempt %u: lease lost to another worker; "
			 "dropped without a record",
			 t->run, t->id, t->attempt);
		slot_free(s);
	} else {
		classify_attempt(t, r, &s->ri->rp,
				 s->kill == KILL_DRAIN ? CLOSE_DRAINED
						       : CLOSE_NORMAL,
				 job_timeout(s->job), &v);
		log_info("task %s/%s attempt %u: %s, %zu tests, %u failed, "
			 "%zu unfinished, %zu retried%s%s%s%s, %.2f s%s%s",
			 r->run, r->task, r->attempt,
			 task_status_name(r->status), r->ntests,
			 count_failed(r), r->nunfinished, r->nretrying,
			 r->retry_reason ? " (" : "",
			 r->retry_reason ? r->retry_reason : "",
			 r->retry_reason ? ")" : "",
			 v.dead ? ", 1 dead-lettered" : "", r->duration_s,
			 r->message ? ": " : "", r->message ? r->message : "");
		c = completion_new(w, s->stream, s->entry_id, t, r, &v,
				   &s->ri->rp);
		completion_take_artifacts(c, job_artifacts(s->job), t);
		c->from_slot = 1;
		verdict_release(&v);
		slot_free(s);
		completion_submit(c);
	}
	if (w->stopping) {
		worker_check_drained(w);
		return;
	}
	worker_start_backlog(w);
	worker_maybe_read(w);
}

/* --- the backlog --- */

void backlog_free(struct backlog *b)
{
	free(b->stream);
	free(b->entry_id);
	task_release(&b->task);
	runinfo_put(b->ri);
	free(b);
}

/* Unlinks b (found by walking from *pp) from the backlog. */
void backlog_unlink(struct worker *w, struct backlog **pp, struct backlog *prev)
{
	struct backlog *b = *pp;

	*pp = b->next;
	if (w->backlog_tail == b)
		w->backlog_tail = prev;
	b->next = NULL;
}

static void take_entry(struct worker *w, const char *stream,
		       const redisReply *entry)
{
	const redisReply *id, *fields, *m;
	struct backlog *b;
	struct task task;
	char err[512];

	if (entry->type != REDIS_REPLY_ARRAY || entry->elements < 2 ||
	    entry->element[0]->type != REDIS_REPLY_STRING) {
		log_error("queue %s: malformed XREADGROUP entry; ignored",
			  stream);
		return;
	}
	id = entry->element[0];
	fields = entry->element[1];
	m = worker_entry_task(fields);
	if (!m) {
		log_error("queue %s entry %s: no task field \"m\"; dropping "
			  "it",
			  stream, id->str);
		worker_ack_and_delete(w, stream, id->str);
		return;
	}
	if (proto_decode_task(m->str, m->len, &task, err, sizeof(err)) < 0) {
		log_error("queue %s entry %s: %s; dropping it", stream, id->str,
			  err);
		worker_ack_and_delete(w, stream, id->str);
		return;
	}
	b = xcalloc(1, sizeof(*b));
	b->stream = xstrdup(stream);
	b->entry_id = xstrndup(id->str, id->len);
	b->task = task;
	b->ri = runinfo_get(w, task.run);
	if (w->backlog_tail)
		w->backlog_tail->next = b;
	else
		w->backlog = b;
	w->backlog_tail = b;
}

void worker_start_backlog(struct worker *w)
{
	static const struct job_hooks hooks = {on_job_event, on_job_warn,
					       on_job_done};
	struct backlog *b;
	struct slot *s;
	int gated;

	while (!w->stopping && w->backlog) {
		b = w->backlog;
		if (!b->ri->ready)
			break; /* on_runinfo starts it */
		if (b->ri->cancelled) {
			backlog_unlink(w, &w->backlog, NULL);
			log_info("task %s/%s: run cancelled; not started",
				 b->task.run, b->task.id);
			completion_submit(
			    completion_cancelled(w, b->stream, b->entry_id,
						 &b->task, w->slots[0].label));
			backlog_free(b);
			continue;
		}
		gated = w->o->start_gate > 0 && gated_runner(b->task.runner);
		if (gated && w->starting >= w->o->start_gate)
			break; /* gate_release starts it */
		s = free_slot(w);
		if (!s)
			break;
		backlog_unlink(w, &w->backlog, NULL);
		log_info("task %s/%s attempt %u: starting in slot %u (%s, "
			 "%zu tests)",
			 b->task.run, b->task.id, b->task.attempt, s->index,
			 b->task.runner ? b->task.runner : "?", b->task.ntests);
		s->stream = b->stream;
		s->entry_id = b->entry_id;
		s->ri = b->ri;
		s->partial_key =
		    key_partial(w->o->prefix, b->task.run, b->task.id);
		b->stream = b->entry_id = NULL;
		b->ri = NULL;
		worker_mark_busy(w);
		if (gated) {
			struct timeval tv = {WORKER_GATE_MAX_MS / 1000,
					     (WORKER_GATE_MAX_MS % 1000) * 1000};

			s->starting = 1;
			w->starting++;
			event_add(s->gate_ev, &tv);
		}
		s->job = job_start(w->base, &s->conf, &b->task, &hooks, s);
		backlog_free(b);
	}
}

/* Drain: whatever was read and not started goes back at once. */
static void handback_backlog(struct worker *w)
{
	struct backlog *b;
	struct completion *c;

	while (w->backlog) {
		b = w->backlog;
		backlog_unlink(w, &w->backlog, NULL);
		if (b->ri->cancelled)
			c = completion_cancelled(w, b->stream, b->entry_id,
						 &b->task, w->slots[0].label);
		else
			c = completion_handback(w, b->stream, b->entry_id,
						&b->task, &b->ri->rp,
						w->slots[0].label);
		log_info("task %s/%s: handed back unstarted", b->task.run,
			 b->task.id);
		completion_submit(c);
		backlog_free(b);
	}
}

/* --- queue reads --- */

static int idle_check(struct worker *w)
{
	double idle;

	if (w->o->exit_when_idle_s < 0 || worker_busy_slots(w) > 0 ||
	    w->backlog || w->completions || w->reclaims || w->delayed_left != 0)
		return 0;
	/* Something happened since the read that came back empty was sent
	 * (a follow-up promoted, a task closed): read once more. */
	if (w->last_busy.tv_sec > w->read_sent.tv_sec ||
	    (w->last_busy.tv_sec == w->read_sent.tv_sec &&
	     w->last_busy.tv_nsec >= w->read_sent.tv_nsec))
		return 0;
	idle = worker_since(&w->last_busy);
	if (idle + 0.001 < (double)w->o->exit_when_idle_s)
		return 0;
	log_info("idle for %.0f s: exiting", idle);
	w->stopping = 1;
	worker_check_drained(w);
	return 1;
}

static void on_read(struct rconn *c, redisReply *r, void *priv)
{
	struct worker *w = priv;
	size_t i, j, n = 0;

	(void)c;
	w->reading = 0;
	if (w->closing || !r)
		return; /* lost: the ready hook reads again */
	if (r->type == REDIS_REPLY_ERROR) {
		if (strncmp(r->str, "NOGROUP", 7) == 0) {
			log_warn("queue group missing (redis restarted "
				 "empty?): creating it again");
			w->groups_ok = 0;
			worker_timer_ms(w->group_retry, 0);
		} else {
			log_warn("XREADGROUP: %s", r->str);
			worker_timer_ms(w->read_retry, READ_RETRY_MS);
		}
		return;
	}
	if (r->type == REDIS_REPLY_ARRAY) {
		for (i = 0; i < r->elements; i++) {
			const redisReply *s = r->element[i];

			if (s->type != REDIS_REPLY_ARRAY || s->elements < 2 ||
			    s->element[0]->type != REDIS_REPLY_STRING ||
			    s->element[1]->type != REDIS_REPLY_ARRAY)
				continue;
			n += s->element[1]->elements;
			for (j = 0; j < s->element[1]->elements; j++)
				take_entry(w, s->element[0]->str,
					   s->element[1]->element[j]);
		}
	}
	if (w->stopping) {
		handback_backlog(w);
		worker_check_drained(w);
		return;
	}
	if (n == 0 && idle_check(w))
		return;
	worker_start_backlog(w);
	worker_maybe_read(w);
}

void worker_maybe_read(struct worker *w)
{
	const char **argv;
	char count[16], block[16];
	unsigned nfree;
	size_t i, argc = 0, nq = w->o->nqueues;

	if (w->stopping || w->reading || !w->groups_ok || w->backlog ||
	    !w->rd || !rconn_is_ready(w->rd))
		return;
	/* Records waiting to go out hold the next reads back. */
	if (w->ncompletions > 2 * (size_t)w->o->slots + 8)
		return;
	nfree = w->o->slots - worker_busy_slots(w);
	if (nfree == 0)
		return;
	snprintf(count, sizeof(count), "%u", nfree);
	snprintf(block, sizeof(block), "%u", WORKER_BLOCK_MS);
	argv = xcalloc(9 + 2 * nq, sizeof(*argv));
	argv[argc++] = "XREADGROUP";
	argv[argc++] = "GROUP";
	argv[argc++] = KEYS_GROUP;
	argv[argc++] = w->consumer;
	argv[argc++] = "COUNT";
	argv[argc++] = count;
	argv[argc++] = "BLOCK";
	argv[argc++] = block;
	argv[argc++] = "STREAMS";
	for (i = 0; i < nq; i++)
		argv[argc++] = w->queues[i].stream;
	for (i = 0; i < nq; i++)
		argv[argc++] = ">";
	if (rconn_command(w->rd, on_read, w, READ_DEADLINE_MS, (int)argc, argv,
			  NULL) == 0) {
		w->reading = 1;
		clock_gettime(CLOCK_MONOTONIC, &w->read_sent);
	}
	free(argv);
}

static void on_read_retry(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	worker_maybe_read(arg);
}

/* --- promotion of due follow-ups --- */

static void on_delayed_count(struct rconn *c, redisReply *r, void *priv)
{
	struct worker *w = priv;

	(void)c;
	if (!w->closing && r && r->type == REDIS_REPLY_INTEGER)
		w->delayed_left = r->integer;
}

static void on_promoted(struct rconn *c, redisReply *r, void *priv)
{
	struct worker *w = priv;

	(void)c;
	w->promoting = 0;
	if (w->closing || !r)
		return;
	if (r->type == REDIS_REPLY_ERROR) {
		log_warn("promote: %s", r->str);
		worker_error_reply(w, r);
		return;
	}
	if (r->type == REDIS_REPLY_INTEGER && r->integer > 0) {
		log_debug("promoted %lld due retries", r->integer);
		worker_mark_busy(w);
		if (r->integer >= PROMOTE_BATCH && !w->stopping)
			worker_timer_ms(w->promote_ev, 0);
	}
}

static void on_promote_timer(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	const char *argv[4], *zc[2];
	char now[32], batch[16];

	(void)fd;
	(void)what;
	if (w->stopping || w->promoting || !rconn_is_ready(w->cmd))
		return;
	snprintf(now, sizeof(now), "%llu", worker_now_ms());
	snprintf(batch, sizeof(batch), "%d", PROMOTE_BATCH);
	argv[0] = w->delayed_key;
	argv[1] = now;
	argv[2] = batch;
	argv[3] = w->o->prefix;
	if (worker_eval(w, w->sha_promote, 1, 4, argv, NULL, on_promoted, w,
			0) == 0)
		w->promoting = 1;
	if (w->o->exit_when_idle_s >= 0) {
		/* Idle exit waits for retries still to come. */
		zc[0] = "ZCARD";
		zc[1] = w->delayed_key;
		rconn_command(w->cmd, on_delayed_count, w, 0, 2, zc, NULL);
	}
}

/* --- startup: groups, heartbeat --- */

static void on_group(struct rconn *c, redisReply *r, void *priv)
{
	struct worker *w = priv;

	(void)c;
	if (w->closing)
		return;
	if (w->groups_pending > 0)
		w->groups_pending--;
	if (!r) {
		w->groups_failed = 1;
	} else if (r->type == REDIS_REPLY_ERROR &&
		   strncmp(r->str, "BUSYGROUP", 9) != 0) {
		log_error("XGROUP CREATE: %s", r->str);
		w->groups_failed = 1;
	}
	if (w->groups_pending > 0)
		return;
	if (w->groups_failed) {
		worker_timer_ms(w->group_retry, GROUP_RETRY_MS);
		return;
	}
	w->groups_ok = 1;
	worker_maybe_read(w);
}

static void create_groups(struct worker *w)
{
	const char *argv[6];
	size_t i;

	if (w->groups_ok || w->groups_pending > 0 || !rconn_is_ready(w->cmd))
		return;
	w->groups_failed = 0;
	for (i = 0; i < w->o->nqueues; i++) {
		argv[0] = "XGROUP";
		argv[1] = "CREATE";
		argv[2] = w->queues[i].stream;
		argv[3] = KEYS_GROUP;
		argv[4] = "0";
		argv[5] = "MKSTREAM";
		if (rconn_command(w->cmd, on_group, w, 0, 6, argv, NULL) == 0)
			w->groups_pending++;
		else
			w->groups_failed = 1;
	}
	if (w->groups_pending == 0 && w->groups_failed)
		worker_timer_ms(w->group_retry, GROUP_RETRY_MS);
}

static void on_group_retry(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	create_groups(arg);
}

/* HSET <prefix>:workers <consumer> "<unix time> <queue,queue,...>": the
 * producer warns about queues no live worker serves; and HSET
 * <prefix>:workers:cap <consumer> "<slots> <start gate>" for its plan
 * (docs/protocol.md). */
static void send_heartbeat(struct worker *w)
{
	const char *argv[4];
	struct buf value;
	size_t i;

	buf_init(&value, 0);
	buf_printf(&value, "%.0f ", worker_now());
	for (i = 0; i < w->o->nqueues; i++)
		buf_printf(&value, "%s%s", i ? "," : "", w->o->queues[i]);
	argv[0] = "HSET";
	argv[1] = w->workers_key;
	argv[2] = w->consumer;
	argv[3] = value.data;
	rconn_command(w->cmd, NULL, NULL, 0, 4, argv, NULL);
	/* What the producer plans with: slots and start gate. */
	buf_reset(&value);
	buf_printf(&value, "%u %u", w->o->slots, w->o->start_gate);
	argv[1] = w->caps_key;
	argv[3] = value.data;
	rconn_command(w->cmd, NULL, NULL, 0, 4, argv, NULL);
	buf_release(&value);
}

static void on_heartbeat(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	(void)fd;
	(void)what;
	if (!w->exiting && rconn_is_ready(w->cmd))
		send_heartbeat(w);
}

static void on_exit_done(struct rconn *c, redisReply *r, void *priv)
{
	struct worker *w = priv;

	(void)c;
	(void)r;
	if (!w->closing)
		event_base_loopbreak(w->base);
}

static void begin_exit(struct worker *w)
{
	const char *argv[3];

	if (w->exiting)
		return;
	w->exiting = 1;
	argv[0] = "HDEL";
	argv[1] = w->caps_key;
	argv[2] = w->consumer;
	rconn_command(w->cmd, NULL, NULL, 0, 3, argv, NULL);
	argv[1] = w->workers_key;
	if (rconn_command(w->cmd, on_exit_done, w, EXIT_WAIT_MS, 3, argv,
			  NULL) < 0) {
		event_base_loopbreak(w->base);
		return;
	}
	worker_timer_ms(w->exit_timer, EXIT_WAIT_MS);
}

static void on_exit_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopbreak(((struct worker *)arg)->base);
}

void worker_check_drained(struct worker *w)
{
	if (!w->stopping || w->exiting || worker_busy_slots(w) > 0 ||
	    w->backlog)
		return;
	if (w->completions || w->reclaims) {
		/* Records still going out; not forever if redis is away. */
		if (!event_pending(w->handback_ev, EV_TIMEOUT, NULL))
			worker_timer_ms(w->handback_ev, HANDBACK_WAIT_MS);
		return;
	}
	begin_exit(w);
}

static void on_handback_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	(void)fd;
	(void)what;
	if (w->exiting || worker_busy_slots(w) > 0)
		return;
	if (w->completions) {
		log_warn("%zu records could not be handed back (redis "
			 "unreachable?); their tasks stay pending for another "
			 "worker",
			 w->ncompletions);
		w->exit_code = 1;
	}
	begin_exit(w);
}

static void cmd_ready(void *arg, struct rconn *c)
{
	struct worker *w = arg;
	struct completion *co;
	struct runinfo *p;

	if (w->cmd_down) {
		log_info("redis %s: connected again", rconn_name(c));
		w->reap_after_ms = worker_now_ms() + worker_lease_ms(w);
	}
	w->cmd_down = 0;
	worker_load_scripts(w);
	if (w->exiting) {
		w->exiting = 0;
		begin_exit(w);
		return;
	}
	create_groups(w);
	send_heartbeat(w);
	for (p = w->runs; p; p = p->next) {
		if (!p->ready)
			runinfo_fetch(p);
	}
	for (co = w->completions; co; co = co->next)
		completion_publish(co);
	/* Our leases ran on while Redis was away: renew them now. */
	lease_on_renew(-1, 0, w);
}

static void cmd_lost(void *arg, struct rconn *c, const char *why)
{
	struct worker *w = arg;

	if (!w->cmd_down)
		log_warn("redis %s: %s; reconnecting", rconn_name(c), why);
	else
		log_debug("redis %s: %s", rconn_name(c), why);
	w->cmd_down = 1;
	w->groups_pending = 0;
}

static void rd_ready(void *arg, struct rconn *c)
{
	struct worker *w = arg;

	if (w->rd_down)
		log_info("redis %s: connected again", rconn_name(c));
	w->rd_down = 0;
	worker_maybe_read(w);
}

static void rd_lost(void *arg, struct rconn *c, const char *why)
{
	struct worker *w = arg;

	if (!w->rd_down)
		log_warn("redis %s: %s; reconnecting", rconn_name(c), why);
	else
		log_debug("redis %s: %s", rconn_name(c), why);
	w->rd_down = 1;
	w->reading = 0;
}

/* --- children and signals --- */

static struct slot *slot_by_pid(struct worker *w, pid_t pid)
{
	unsigned i;

	for (i = 0; i < w->o->slots; i++) {
		if (w->slots[i].job && job_pid(w->slots[i].job) == pid)
			return &w->slots[i];
	}
	return NULL;
}

static void on_sigchld(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct slot *s;
	siginfo_t si;
	int st;

	(void)fd;
	(void)what;
	for (;;) {
		memset(&si, 0, sizeof(si));
		if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 ||
		    si.si_pid == 0)
			break;
		s = slot_by_pid(w, si.si_pid);
		if (s) {
			job_reap(s->job);
		} else {
			/* A warm pytest zygote, or an orphan that was
			 * reparented to us (subreaper). */
			while (waitpid(si.si_pid, &st, 0) < 0 && errno == EINTR)
				;
			warm_reaped(w->o->runners.warm, si.si_pid, st);
		}
	}
}

/* The drain period is over: what still runs is killed and handed back. */
static void on_grace(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	unsigned i, n = 0;

	(void)fd;
	(void)what;
	for (i = 0; i < w->o->slots; i++) {
		struct slot *s = &w->slots[i];

		if (!s->job || job_is_done(s->job))
			continue;
		n++;
		if (s->kill == KILL_NONE)
			s->kill = KILL_DRAIN;
		job_cancel(s->job, 0);
	}
	if (n > 0)
		log_warn("grace period over: killed %u tasks; handing back "
			 "their unfinished tests",
			 n);
	worker_check_drained(w);
}

static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
	struct worker *w = arg;
	unsigned n;

	(void)what;
	if (w->stopping) {
		log_warn("second %s: exiting now", strsignal((int)sig));
		w->exit_code = 1;
		event_base_loopbreak(w->base);
		return;
	}
	w->stopping = 1;
	/* No more deliveries: a blocked read is simply abandoned (an entry
	 * delivered in that instant is reclaimed after the lease). */
	rconn_free(w->rd);
	w->rd = NULL;
	w->reading = 0;
	event_del(w->reap_ev);
	event_del(w->promote_ev);
	handback_backlog(w);
	n = worker_busy_slots(w);
	if (n == 0) {
		log_info("%s: no tasks running, exiting", strsignal((int)sig));
		worker_check_drained(w);
		return;
	}
	log_info("%s: draining %u running tasks (up to %u s)",
		 strsignal((int)sig), n, w->o->grace_s);
	worker_timer_ms(w->grace, w->o->grace_s * 1000);
}

/* --- setup and teardown --- */

static void worker_release(struct worker *w)
{
	struct backlog *b, *next;
	struct runinfo *p, *pn;
	unsigned i;
	size_t q;

	/* Connections first: pending callbacks see w->closing and do
	 * nothing. */
	w->closing = 1;
	rconn_free(w->rd);
	rconn_free(w->cmd);
	rconn_free(w->sub);
	for (i = 0; w->slots && i < w->o->slots; i++) {
		struct slot *s = &w->slots[i];
		char err[512];

		job_free(s->job);
		/* However the worker ends but SIGKILL: nothing left in
		 * $TMPDIR. */
		if (slotdir_release(&s->dir, err, sizeof(err)) < 0)
			log_warn("%s: %s", s->label, err);
		free(s->stream);
		free(s->entry_id);
		free(s->partial_key);
		if (s->release)
			event_free(s->release);
		if (s->gate_ev)
			event_free(s->gate_ev);
		free(s->label);
	}
	free(w->slots);
	for (b = w->backlog; b; b = next) {
		next = b->next;
		b->ri = NULL;
		backlog_free(b);
	}
	while (w->completions) {
		struct completion *c = w->completions;

		completion_unlink(c);
		completion_free(c);
	}
	while (w->reclaims)
		lease_reclaim_free(w->reclaims);
	for (p = w->runs; p; p = pn) {
		pn = p->next;
		runinfo_free(p);
	}
	for (q = 0; w->queues && q < w->o->nqueues; q++)
		free(w->queues[q].stream);
	free(w->queues);
	if (w->ev_term)
		event_free(w->ev_term);
	if (w->ev_int)
		event_free(w->ev_int);
	if (w->ev_chld)
		event_free(w->ev_chld);
	if (w->heartbeat)
		event_free(w->heartbeat);
	if (w->grace)
		event_free(w->grace);
	if (w->exit_timer)
		event_free(w->exit_timer);
	if (w->read_retry)
		event_free(w->read_retry);
	if (w->group_retry)
		event_free(w->group_retry);
	if (w->renew_ev)
		event_free(w->renew_ev);
	if (w->reap_ev)
		event_free(w->reap_ev);
	if (w->promote_ev)
		event_free(w->promote_ev);
	if (w->handback_ev)
		event_free(w->handback_ev);
	if (w->gate_kick)
		event_free(w->gate_kick);
	free(w->workers_key);
	free(w->caps_key);
	free(w->delayed_key);
	free(w->dead_key);
	free(w->control_key);
	free(w->reaper_label);
	free(w->consumer);
	if (w->base)
		event_base_free(w->base);
}

int worker_run(const struct worker_opts *o)
{
	static const struct rconn_hooks cmd_hooks = {cmd_ready, cmd_lost};
	static const struct rconn_hooks rd_hooks = {rd_ready, rd_lost};
	static const struct rconn_hooks sub_hooks = {runinfo_control_ready,
						     runinfo_control_lost};
	struct worker w;
	struct timeval hb = {WORKER_HEARTBEAT_S, 0}, renew, promote;
	char *where, *cmd_name, *rd_name, *sub_name;
	unsigned i, lease = o->lease_s ? o->lease_s : WORKER_LEASE_S;
	size_t q;
	struct worker_opts opts = *o;

	opts.lease_s = lease;
	memset(&w, 0, sizeof(w));
	w.o = &opts;
	w.base = event_base_new();
	if (!w.base) {
		log_error("cannot create the event loop");
		return 1;
	}
	w.consumer = xasprintf("%s-%ld", o->name, (long)getpid());
	w.reaper_label = xasprintf("%s/reaper", o->name);
	w.workers_key = key_workers(o->prefix);
	w.caps_key = key_worker_caps(o->prefix);
	w.delayed_key = key_delayed(o->prefix);
	w.dead_key = key_dead(o->prefix);
	w.control_key = key_control(o->prefix);
	w.queues = xcalloc(o->nqueues, sizeof(*w.queues));
	for (q = 0; q < o->nqueues; q++) {
		w.queues[q].w = &w;
		w.queues[q].stream = key_queue(o->prefix, o->queues[q]);
	}
	w.slots = xcalloc(o->slots, sizeof(*w.slots));
	for (i = 0; i < o->slots; i++) {
		struct slot *s = &w.slots[i];

		s->w = &w;
		s->index = i + 1;
		s->label = xasprintf("%s/slot-%u", o->name, i + 1);
		s->conf.worker = s->label;
		s->conf.consumer = w.consumer;
		s->conf.slot = i + 1;
		slotdir_init(&s->dir, w.consumer, i + 1);
		s->conf.dir = &s->dir;
		s->conf.plugin_dir = o->plugin_dir;
		s->conf.artifacts = &o->artifacts;
		s->conf.runners = &o->runners;
		s->conf.timeout_s = o->timeout_s;
		s->conf.grace_s = o->grace_s < WORKER_KILL_DELAY_S
				      ? o->grace_s
				      : WORKER_KILL_DELAY_S;
		s->release = event_new(w.base, -1, 0, on_slot_release, s);
		s->gate_ev = evtimer_new(w.base, on_gate_timeout, s);
	}
	w.gate_kick = event_new(w.base, -1, 0, on_gate_kick, &w);
	backoff_init(&w.rng, 1, 1);
	w.ev_term = evsignal_new(w.base, SIGTERM, on_stop_signal, &w);
	w.ev_int = evsignal_new(w.base, SIGINT, on_stop_signal, &w);
	w.ev_chld = evsignal_new(w.base, SIGCHLD, on_sigchld, &w);
	w.heartbeat = event_new(w.base, -1, EV_PERSIST, on_heartbeat, &w);
	w.grace = evtimer_new(w.base, on_grace, &w);
	w.exit_timer = evtimer_new(w.base, on_exit_timer, &w);
	w.read_retry = evtimer_new(w.base, on_read_retry, &w);
	w.group_retry = evtimer_new(w.base, on_group_retry, &w);
	w.renew_ev = event_new(w.base, -1, EV_PERSIST, lease_on_renew, &w);
	w.reap_ev = evtimer_new(w.base, lease_on_reap, &w);
	w.promote_ev = event_new(w.base, -1, EV_PERSIST, on_promote_timer, &w);
	w.handback_ev = evtimer_new(w.base, on_handback_timeout, &w);
	w.delayed_left = -1; /* unknown */
	event_add(w.ev_term, NULL);
	event_add(w.ev_int, NULL);
	event_add(w.ev_chld, NULL);
	event_add(w.heartbeat, &hb);
	renew.tv_sec = (time_t)(lease * 1000u / 3u / 1000u);
	renew.tv_usec = (suseconds_t)(lease * 1000u / 3u % 1000u) * 1000;
	event_add(w.renew_ev, &renew);
	promote.tv_sec = 0;
	promote.tv_usec = PROMOTE_MS * 1000;
	event_add(w.promote_ev, &promote);
	lease_arm_reaper(&w);
	worker_mark_busy(&w);
	clock_gettime(CLOCK_MONOTONIC, &w.renewed);
	sha1_hex(script_complete, strlen(script_complete), w.sha_complete);
	sha1_hex(script_renew, strlen(script_renew), w.sha_renew);
	sha1_hex(script_promote, strlen(script_promote), w.sha_promote);

	where = redis_url_display(&o->url);
	log_info("worker %s: %u slots, queues %s%s, redis %s, lease %u s, "
		 "start gate %u",
		 w.consumer, o->slots, o->queues[0],
		 o->nqueues > 1 ? " ..." : "", where, lease, o->start_gate);
	log_debug("pytest: %s ..., plugin dir %s", o->runners.pytest[0],
		  o->plugin_dir ? o->plugin_dir : "(none)");
	cmd_name = xasprintf("%s (commands)", where);
	rd_name = xasprintf("%s (queue reads)", where);
	sub_name = xasprintf("%s (control channel)", where);
	w.cmd = rconn_new(w.base, &o->url, cmd_name, &cmd_hooks, &w);
	w.rd = rconn_new(w.base, &o->url, rd_name, &rd_hooks, &w);
	w.sub = rconn_new(w.base, &o->url, sub_name, &sub_hooks, &w);
	worker_sweep_dead(&w);
	event_base_dispatch(w.base);
	if (w.exit_code == 0 && (worker_busy_slots(&w) > 0 || w.completions))
		w.exit_code = 1;
	log_info("worker %s: exiting (status %d)", w.consumer, w.exit_code);
	i = (unsigned)w.exit_code;
	worker_release(&w);
	/* Folders of workers killed while this one ran, whose entries
	 * another worker may have reclaimed. */
	job_sweep_dead(NULL, NULL);
	free(cmd_name);
	free(rd_name);
	free(sub_name);
	free(where);
	return (int)i;
}
