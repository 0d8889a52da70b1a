/* worker.c -- the worker daemon's loop: queue reads, slots, result
 * publishing, heartbeat, signals and drain (see worker.h). */
#include "worker.h"

#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backoff.h"
#include "job.h"
#include "keys.h"
#include "log.h"
#include "proto.h"
#include "rconn.h"
#include "scripts.h"
#include "sha1.h"
#include "xmalloc.h"

#define READ_DEADLINE_MS (WORKER_BLOCK_MS + 10000)
#define READ_RETRY_MS 1000
#define GROUP_RETRY_MS 1000
#define EXIT_WAIT_MS 3000 /* for the heartbeat HDEL on the way out */
#define PUBLISH_DEADLINE_MS 15000
#define PUBLISH_BACKOFF_BASE_MS 200
#define PUBLISH_BACKOFF_CAP_MS 10000

struct worker;

/* A task read from a queue, waiting for a free slot. */
struct backlog {
	struct backlog *next;
	char *stream;
	char *entry_id;
	struct task task;
};

struct slot {
	struct worker *w;
	unsigned index; /* from 1 */
	char *label;	/* "name/slot-N" */
	struct job_conf conf;
	struct job *job; /* NULL when the slot is free */
	char *stream;	 /* queue stream key of the entry */
	char *entry_id;
	char *result; /* the encoded result, once done */
	size_t result_len;
	unsigned tests;
	unsigned failed;
	int publishing;	     /* script in flight */
	int use_eval;	     /* NOSCRIPT seen: send the body */
	int abandoned;	     /* killed by the drain: never published */
	struct event *retry; /* publish retry, or deferred release */
	struct backoff backoff;
};

struct worker {
	const struct worker_opts *o;
	struct event_base *base;
	struct rconn *cmd; /* commands, scripts, heartbeat */
	struct rconn *rd;  /* the blocking XREADGROUP only */
	char *consumer;	   /* "name-pid" */
	char **streams;	   /* queue stream keys */
	char *workers_key;
	int groups_ok;
	unsigned groups_pending;
	int groups_failed;
	int reading;
	int cmd_down; /* for logging transitions only */
	int rd_down;
	struct slot *slots;
	struct backlog *backlog;
	struct backlog *backlog_tail;
	char sha[SHA1_HEX_LEN + 1]; /* of script_complete, for EVALSHA */
	struct event *ev_term;
	struct event *ev_int;
	struct event *ev_chld;
	struct event *heartbeat;
	struct event *grace;
	struct event *exit_timer;
	struct event *read_retry;
	struct event *group_retry;
	int stopping;
	int exiting;
	int exit_code;
	struct timespec last_busy;
};

static void maybe_read(struct worker *w);
static void start_backlog(struct worker *w);
static void publish(struct slot *s);
static void check_drained(struct worker *w);

static void timer_ms(struct event *ev, unsigned ms)
{
	struct timeval tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	event_add(ev, &tv);
}

static double now_unix(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static unsigned busy_slots(const struct worker *w)
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

static void mark_busy(struct worker *w)
{
	clock_gettime(CLOCK_MONOTONIC, &w->last_busy);
}

/* --- queue entries --- */

static void ack_and_delete(struct worker *w, const char *stream, const char *id)
{
	const char *ack[4] = {"XACK", stream, KEYS_GROUP, id};
	const char *del[3] = {"XDEL", stream, id};

	if (rconn_command(w->cmd, NULL, NULL, 0, 4, ack, NULL) < 0 ||
	    rconn_command(w->cmd, NULL, NULL, 0, 3, del, NULL) < 0)
		log_warn("queue %s entry %s: redis not connected; it stays "
			 "pending",
			 stream, id);
}

static void take_entry(struct worker *w, const char *stream,
		       const redisReply *entry)
{
	const redisReply *id, *fields, *m = NULL;
	struct backlog *b;
	struct task task;
	char err[512];
	size_t i;

	if (entry->type != REDIS_REPLY_ARRAY || entry->elements < 2 ||
	    entry->element[0]->type != REDIS_REPLY_STRING) {
		log_error("queue %s: malformed XREADGROUP entry; ignored",
			  stream);
		return;
	}
	id = entry->element[0];
	fields = entry->element[1];
	if (fields->type == REDIS_REPLY_ARRAY) {
		for (i = 0; i + 1 < fields->elements; i += 2) {
			const redisReply *k = fields->element[i];

			if (k->type == REDIS_REPLY_STRING && k->len == 1 &&
			    k->str[0] == 'm' &&
			    fields->element[i + 1]->type == REDIS_REPLY_STRING)
				m = fields->element[i + 1];
		}
	}
	if (!m) {
		log_error("queue %s entry %s: no task field \"m\"; dropping "
			  "it",
			  stream, id->str);
		ack_and_delete(w, stream, id->str);
		return;
	}
	if (proto_decode_task(m->str, m->len, &task, err, sizeof(err)) < 0) {
		log_error("queue %s entry %s: %s; dropping it", stream, id->str,
			  err);
		ack_and_delete(w, stream, id->str);
		return;
	}
	b = xcalloc(1, sizeof(*b));
	b->stream = xstrdup(stream);
	b->entry_id = xstrndup(id->str, id->len);
	b->task = task;
	if (w->backlog_tail)
		w->backlog_tail->next = b;
	else
		w->backlog = b;
	w->backlog_tail = b;
}

static void backlog_free(struct backlog *b)
{
	free(b->stream);
	free(b->entry_id);
	task_release(&b->task);
	free(b);
}

static void idle_check(struct worker *w)
{
	struct timespec now;
	double idle;

	if (w->o->exit_when_idle_s < 0 || busy_slots(w) > 0 || w->backlog)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	idle = (double)(now.tv_sec - w->last_busy.tv_sec) +
	       (double)(now.tv_nsec - w->last_busy.tv_nsec) / 1e9;
	if (idle + 0.001 < (double)w->o->exit_when_idle_s)
		return;
	log_info("idle for %.0f s: exiting", idle);
	w->stopping = 1;
	check_drained(w);
}

static void on_read(struct rconn *c, redisReply *r, void *priv)
{
	struct worker *w = priv;
	size_t i, j, n = 0;

	(void)c;
	w->reading = 0;
	if (!r)
		return; /* lost: the ready hook reads again */
	if (r->type == REDIS_REPLY_ERROR) {
		if (strncmp(r->str, "NOGROUP", 7) == 0) {
			log_warn("queue group missing (redis restarted "
				 "empty?): creating it again");
			w->groups_ok = 0;
			timer_ms(w->group_retry, 0);
		} else {
			log_warn("XREADGROUP: %s", r->str);
			timer_ms(w->read_retry, READ_RETRY_MS);
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
			if (w->stopping)
				continue;
			for (j = 0; j < s->element[1]->elements; j++)
				take_entry(w, s->element[0]->str,
					   s->element[1]->element[j]);
		}
	}
	if (w->stopping) {
		if (n > 0)
			log_info("stopping: leaving %zu delivered tasks "
				 "pending",
				 n);
		return;
	}
	if (n == 0)
		idle_check(w);
	start_backlog(w);
	maybe_read(w);
}

static void maybe_read(struct worker *w)
{
	const char **argv;
	char count[16], block[16];
	unsigned nfree;
	size_t i, argc = 0, nq = w->o->nqueues;

	if (w->stopping || w->reading || !w->groups_ok || w->backlog ||
	    !w->rd || !rconn_is_ready(w->rd))
		return;
	nfree = w->o->slots - busy_slots(w);
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
		argv[argc++] = w->streams[i];
	for (i = 0; i < nq; i++)
		argv[argc++] = ">";
	if (rconn_command(w->rd, on_read, w, READ_DEADLINE_MS, (int)argc, argv,
			  NULL) == 0)
		w->reading = 1;
	free(argv);
}

static void on_read_retry(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	maybe_read(arg);
}

/* --- slots and jobs --- */

static void on_progress(struct rconn *c, redisReply *r, void *priv)
{
	(void)c;
	(void)priv;
	if (r && r->type == REDIS_REPLY_ERROR)
		log_debug("progress event: %s", r->str);
}

static void on_job_event(void *arg, struct job *j,
			 const struct runner_event *ev)
{
	struct slot *s = arg;
	struct worker *w = s->w;
	const struct task *t = job_task(j);
	struct progress p;
	const char *argv[5];
	size_t lens[5];
	char *buf, *key;
	size_t len;

	memset(&p, 0, sizeof(p));
	p.run = t->run;
	p.task = t->id;
	p.attempt = t->attempt;
	p.worker = s->label;
	p.test = ev->test.id;
	p.finished = ev->kind == EVENT_FINISH;
	p.outcome = ev->test.outcome;
	p.duration_s = ev->test.duration_s;
	if (!rconn_is_ready(w->cmd))
		return; /* progress is informational: drop it */
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
}

static void on_job_warn(void *arg, struct job *j, const char *msg)
{
	struct slot *s = arg;

	(void)j;
	log_warn("%s: %s", s->label, msg);
}

static void slot_release(struct slot *s)
{
	job_free(s->job);
	s->job = NULL;
	free(s->stream);
	s->stream = NULL;
	free(s->entry_id);
	s->entry_id = NULL;
	free(s->result);
	s->result = NULL;
	s->result_len = 0;
	s->tests = s->failed = 0;
	s->publishing = 0;
	s->use_eval = 0;
	s->abandoned = 0;
	event_del(s->retry);
	backoff_reset(&s->backoff);
	mark_busy(s->w);
}

static void on_job_done(void *arg, struct job *j)
{
	struct slot *s = arg;
	struct task_result *r = job_result(j);
	size_t i;

	if (s->abandoned) {
		/* Not published: the entry stays pending for another
		 * worker. Released outside the job's own callback. */
		timer_ms(s->retry, 0);
		return;
	}
	s->tests = (unsigned)r->ntests;
	s->failed = 0;
	for (i = 0; i < r->ntests; i++) {
		if (r->tests[i].outcome == OUTCOME_FAILED ||
		    r->tests[i].outcome == OUTCOME_ERROR)
			s->failed++;
	}
	proto_encode_task_result(r, &s->result, &s->result_len);
	log_info("task %s/%s attempt %u: %s, %zu tests, %u failed, "
		 "%zu unfinished, %.2f s%s%s",
		 r->run, r->task, r->attempt, task_status_name(r->status),
		 r->ntests, s->failed, r->nunfinished, r->duration_s,
		 r->message ? ": " : "", r->message ? r->message : "");
	publish(s);
}

static void start_backlog(struct worker *w)
{
	static const struct job_hooks hooks = {on_job_event, on_job_warn,
					       on_job_done};
	struct backlog *b;
	struct slot *s;

	while (!w->stopping && w->backlog) {
		s = free_slot(w);
		if (!s)
			break;
		b = w->backlog;
		w->backlog = b->next;
		if (!w->backlog)
			w->backlog_tail = NULL;
		log_info("task %s/%s attempt %u: starting in slot %u (%s, "
			 "%zu tests)",
			 b->task.run, b->task.id, b->task.attempt, s->index,
			 b->task.runner ? b->task.runner : "?", b->task.ntests);
		s->stream = b->stream;
		s->entry_id = b->entry_id;
		b->stream = b->entry_id = NULL;
		mark_busy(w);
		s->job = job_start(w->base, &s->conf, &b->task, &hooks, s);
		backlog_free(b);
	}
}

/* --- publishing --- */

static void on_published(struct rconn *c, redisReply *r, void *priv)
{
	struct slot *s = priv;
	struct worker *w = s->w;
	const struct task *t = job_task(s->job);
	uint32_t ms;

	(void)c;
	s->publishing = 0;
	if (s->abandoned && (!r || r->type == REDIS_REPLY_ERROR)) {
		/* The drain is over: leave the entry pending. */
		slot_release(s);
		check_drained(w);
		return;
	}
	if (!r)
		return; /* lost: published again when redis is back */
	if (r->type == REDIS_REPLY_ERROR) {
		if (strncmp(r->str, "NOSCRIPT", 8) == 0 && !s->use_eval) {
			s->use_eval = 1;
			publish(s);
			return;
		}
		ms = backoff_next(&s->backoff);
		log_warn("task %s/%s: publishing the result failed: %s; "
			 "retrying in %u ms",
			 t->run, t->id, r->str, ms);
		timer_ms(s->retry, ms);
		return;
	}
	if (r->type == REDIS_REPLY_INTEGER && r->integer == 0)
		log_info("task %s/%s: already completed elsewhere; this "
			 "result was dropped as a duplicate",
			 t->run, t->id);
	slot_release(s);
	if (w->stopping) {
		check_drained(w);
		return;
	}
	start_backlog(w);
	maybe_read(w);
}

static void publish(struct slot *s)
{
	struct worker *w = s->w;
	const struct task *t;
	char att[16], now[32], tests[16], failed[16];
	char *k_results, *k_done, *k_run;
	const char *argv[15];
	size_t lens[15];
	int argc = 0, i, rc;

	if (!s->job || !s->result || s->publishing || s->abandoned)
		return;
	if (!rconn_is_ready(w->cmd))
		return; /* the ready hook publishes */
	t = job_task(s->job);
	k_results = key_results(w->o->prefix, t->run);
	k_done = key_done(w->o->prefix, t->run);
	k_run = key_run(w->o->prefix, t->run);
	snprintf(att, sizeof(att), "%u", t->attempt);
	snprintf(now, sizeof(now), "%.3f", now_unix());
	snprintf(tests, sizeof(tests), "%u", s->tests);
	snprintf(failed, sizeof(failed), "%u", s->failed);
	if (!s->use_eval) {
		argv[argc++] = "EVALSHA";
		argv[argc++] = w->sha;
	} else {
		argv[argc++] = "EVAL";
		argv[argc++] = script_complete;
	}
	argv[argc++] = "4";
	argv[argc++] = s->stream;
	argv[argc++] = k_results;
	argv[argc++] = k_done;
	argv[argc++] = k_run;
	argv[argc++] = KEYS_GROUP;
	argv[argc++] = s->entry_id;
	argv[argc++] = t->id;
	argv[argc++] = att;
	argv[argc++] = s->result; /* binary: length below */
	argv[argc++] = now;
	argv[argc++] = tests;
	argv[argc++] = failed;
	for (i = 0; i < argc; i++)
		lens[i] = i == 11 ? s->result_len : strlen(argv[i]);
	/* A large result takes longer to send: a second per MiB on top. */
	rc = rconn_command(w->cmd, on_published, s,
			   PUBLISH_DEADLINE_MS +
			       (unsigned)(s->result_len >> 20) * 1000,
			   argc, argv, lens);
	if (rc == 0)
		s->publishing = 1;
	free(k_results);
	free(k_done);
	free(k_run);
}

static void on_slot_retry(evutil_socket_t fd, short what, void *arg)
{
	struct slot *s = arg;
	struct worker *w = s->w;

	(void)fd;
	(void)what;
	if (s->abandoned && s->job && job_is_done(s->job) && !s->publishing) {
		slot_release(s);
		check_drained(w);
		return;
	}
	publish(s);
}

/* --- startup: groups, script, heartbeat --- */

static void on_group(struct rconn *c, redisReply *r, void *priv)
{
	struct worker *w = priv;

	(void)c;
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
		timer_ms(w->group_retry, GROUP_RETRY_MS);
		return;
	}
	w->groups_ok = 1;
	maybe_read(w);
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
		argv[2] = w->streams[i];
		argv[3] = KEYS_GROUP;
		argv[4] = "0";
		argv[5] = "MKSTREAM";
		if (rconn_command(w->cmd, on_group, w, 0, 6, argv, NULL) == 0)
			w->groups_pending++;
		else
			w->groups_failed = 1;
	}
	if (w->groups_pending == 0 && w->groups_failed)
		timer_ms(w->group_retry, GROUP_RETRY_MS);
}

static void on_group_retry(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	create_groups(arg);
}

static void send_heartbeat(struct worker *w)
{
	const char *argv[4];
	char now[32];

	snprintf(now, sizeof(now), "%.0f", now_unix());
	argv[0] = "HSET";
	argv[1] = w->workers_key;
	argv[2] = w->consumer;
	argv[3] = now;
	rconn_command(w->cmd, NULL, NULL, 0, 4, argv, NULL);
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
	event_base_loopbreak(w->base);
}

static void begin_exit(struct worker *w)
{
	const char *argv[3];

	if (w->exiting)
		return;
	w->exiting = 1;
	argv[0] = "HDEL";
	argv[1] = w->workers_key;
	argv[2] = w->consumer;
	if (rconn_command(w->cmd, on_exit_done, w, EXIT_WAIT_MS, 3, argv,
			  NULL) < 0) {
		event_base_loopbreak(w->base);
		return;
	}
	timer_ms(w->exit_timer, EXIT_WAIT_MS);
}

static void on_exit_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopbreak(((struct worker *)arg)->base);
}

static void check_drained(struct worker *w)
{
	if (w->stopping && busy_slots(w) == 0)
		begin_exit(w);
}

static void cmd_ready(void *arg, struct rconn *c)
{
	struct worker *w = arg;
	unsigned i;

	if (w->cmd_down)
		log_info("redis %s: connected again", rconn_name(c));
	w->cmd_down = 0;
	if (w->exiting) {
		w->exiting = 0;
		begin_exit(w);
		return;
	}
	create_groups(w);
	send_heartbeat(w);
	for (i = 0; i < w->o->slots; i++)
		publish(&w->slots[i]);
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
	maybe_read(w);
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
			/* An orphan that was reparented to us (subreaper). */
			while (waitpid(si.si_pid, &st, 0) < 0 && errno == EINTR)
				;
		}
	}
}

static void on_grace(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct slot *s;
	unsigned i, n = 0;

	(void)fd;
	(void)what;
	for (i = 0; i < w->o->slots; i++) {
		s = &w->slots[i];
		if (!s->job)
			continue;
		n++;
		s->abandoned = 1;
		if (!job_is_done(s->job))
			job_cancel(s->job, 1);
		else if (!s->publishing)
			timer_ms(s->retry, 0);
	}
	if (n > 0) {
		log_warn("grace period over: killed %u tasks; they stay "
			 "pending for another worker",
			 n);
		w->exit_code = 1;
	}
	check_drained(w);
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
	/* No more deliveries: a blocked read is simply abandoned. */
	rconn_free(w->rd);
	w->rd = NULL;
	w->reading = 0;
	n = busy_slots(w);
	if (n == 0) {
		log_info("%s: no tasks running, exiting", strsignal((int)sig));
		begin_exit(w);
		return;
	}
	log_info("%s: draining %u running tasks (up to %u s)",
		 strsignal((int)sig), n, w->o->grace_s);
	timer_ms(w->grace, w->o->grace_s * 1000);
}

/* --- setup and teardown --- */

static void worker_release(struct worker *w)
{
	struct backlog *b, *next;
	unsigned i;
	size_t q;

	/* Connections first: pending callbacks still see live slots. */
	rconn_free(w->rd);
	rconn_free(w->cmd);
	for (i = 0; w->slots && i < w->o->slots; i++) {
		struct slot *s = &w->slots[i];

		job_free(s->job);
		free(s->stream);
		free(s->entry_id);
		free(s->result);
		if (s->retry)
			event_free(s->retry);
		free(s->label);
	}
	free(w->slots);
	for (b = w->backlog; b; b = next) {
		next = b->next;
		backlog_free(b);
	}
	for (q = 0; w->streams && q < w->o->nqueues; q++)
		free(w->streams[q]);
	free(w->streams);
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
	free(w->workers_key);
	free(w->consumer);
	if (w->base)
		event_base_free(w->base);
}

int worker_run(const struct worker_opts *o)
{
	static const struct rconn_hooks cmd_hooks = {cmd_ready, cmd_lost};
	static const struct rconn_hooks rd_hooks = {rd_ready, rd_lost};
	struct worker w;
	struct timeval hb = {WORKER_HEARTBEAT_S, 0};
	char *where, *cmd_name, *rd_name;
	unsigned i;
	size_t q;

	memset(&w, 0, sizeof(w));
	w.o = o;
	w.base = event_base_new();
	if (!w.base) {
		log_error("cannot create the event loop");
		return 1;
	}
	w.consumer = xasprintf("%s-%ld", o->name, (long)getpid());
	w.workers_key = key_workers(o->prefix);
	w.streams = xcalloc(o->nqueues, sizeof(*w.streams));
	for (q = 0; q < o->nqueues; q++)
		w.streams[q] = key_queue(o->prefix, o->queues[q]);
	w.slots = xcalloc(o->slots, sizeof(*w.slots));
	for (i = 0; i < o->slots; i++) {
		struct slot *s = &w.slots[i];

		s->w = &w;
		s->index = i + 1;
		s->label = xasprintf("%s/slot-%u", o->name, i + 1);
		s->conf.worker = s->label;
		s->conf.consumer = w.consumer;
		s->conf.slot = i + 1;
		s->conf.plugin_dir = o->plugin_dir;
		s->conf.runners = &o->runners;
		s->conf.timeout_s = o->timeout_s;
		s->conf.grace_s = o->grace_s;
		s->retry = evtimer_new(w.base, on_slot_retry, s);
		backoff_init(&s->backoff, PUBLISH_BACKOFF_BASE_MS,
			     PUBLISH_BACKOFF_CAP_MS);
	}
	w.ev_term = evsignal_new(w.base, SIGTERM, on_stop_signal, &w);
	w.ev_int = evsignal_new(w.base, SIGINT, on_stop_signal, &w);
	w.ev_chld = evsignal_new(w.base, SIGCHLD, on_sigchld, &w);
	w.heartbeat = event_new(w.base, -1, EV_PERSIST, on_heartbeat, &w);
	w.grace = evtimer_new(w.base, on_grace, &w);
	w.exit_timer = evtimer_new(w.base, on_exit_timer, &w);
	w.read_retry = evtimer_new(w.base, on_read_retry, &w);
	w.group_retry = evtimer_new(w.base, on_group_retry, &w);
	event_add(w.ev_term, NULL);
	event_add(w.ev_int, NULL);
	event_add(w.ev_chld, NULL);
	event_add(w.heartbeat, &hb);
	mark_busy(&w);
	sha1_hex(script_complete, strlen(script_complete), w.sha);

	where = redis_url_display(&o->url);
	log_info("worker %s: %u slots, queues %s%s, redis %s", w.consumer,
		 o->slots, o->queues[0], o->nqueues > 1 ? " ..." : "", where);
	log_debug("pytest: %s ..., plugin dir %s", o->runners.pytest[0],
		  o->plugin_dir ? o->plugin_dir : "(none)");
	cmd_name = xasprintf("%s (commands)", where);
	rd_name = xasprintf("%s (queue reads)", where);
	w.cmd = rconn_new(w.base, &o->url, cmd_name, &cmd_hooks, &w);
	w.rd = rconn_new(w.base, &o->url, rd_name, &rd_hooks, &w);
	event_base_dispatch(w.base);
	if (w.exit_code == 0 && busy_slots(&w) > 0)
		w.exit_code = 1;
	log_info("worker %s: exiting (status %d)", w.consumer, w.exit_code);
	worker_release(&w);
	free(cmd_name);
	free(rd_name);
	free(where);
	return w.exit_code;
}
