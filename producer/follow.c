/* follow.c -- following and replaying a results stream (see follow.h). */
#include "follow.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keys.h"
#include "log.h"
#include "proto.h"
#include "redisconn.h"
#include "run.h"
#include "shard.h"
#include "xmalloc.h"

#define FOLLOW_BLOCK_MS "1000"
#define FOLLOW_COUNT "500"
#define FOLLOW_PAGE 1000
#define FOLLOW_REDRAW_MS 100
#define FOLLOW_PLAIN_MS 30000
#define FOLLOW_CHECK_MS 1000
#define FOLLOW_RECONNECT_MS 60000
#define FOLLOW_RETRY_MS 200
#define FOLLOW_MAX_ID 64

/* Live counts of one task from its progress events, until its result
 * replaces them. */
struct follow_task {
	char *id;
	unsigned done;
	unsigned failed;
	int finished; /* its result has been counted */
	/* From the plan's estimates, when known: */
	int known;
	int started;	 /* a progress event or its result came */
	unsigned ntests; /* tests it was planned with */
	double est;	 /* its estimate */
	double left;	 /* the part of it not done yet */
};

/* What the follower knows between entries: counters for the progress
 * line and an open-addressing table of tasks by id. */
struct follow_state {
	const struct follow_opts *o;
	struct aggregator *agg;
	const char *key;
	struct follow_task *tasks;
	size_t ntasks;
	size_t cap; /* power of two */
	unsigned tests_done;
	unsigned tests_failed;
	unsigned tasks_done;
	unsigned malformed;
	int drawn; /* a progress line is on the terminal */
	long long last_draw;
	unsigned shown[3]; /* the counts last drawn */
	int have_eta;	   /* estimates were given */
	double left;	   /* sum of the tasks' left */
	size_t unstarted;  /* known tasks not started yet */
	struct follow_ending end;
	char last_id[FOLLOW_MAX_ID];
};

static long long follow_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t follow_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	while (*s != '\0') {
		h ^= (unsigned char)*s++;
		h *= 1099511628211ULL;
	}
	return h;
}

static struct follow_task *follow_task_get(struct follow_state *st,
					   const char *id)
{
	size_t i, mask;

	if ((st->ntasks + 1) * 2 > st->cap) {
		struct follow_task *old = st->tasks;
		size_t oldcap = st->cap, k;

		st->cap = st->cap ? st->cap * 2 : 64;
		st->tasks = xcalloc(st->cap, sizeof(*st->tasks));
		for (k = 0; k < oldcap; k++) {
			if (old[k].id == NULL)
				continue;
			i = follow_hash(old[k].id) & (st->cap - 1);
			while (st->tasks[i].id != NULL)
				i = (i + 1) & (st->cap - 1);
			st->tasks[i] = old[k];
		}
		free(old);
	}
	mask = st->cap - 1;
	i = follow_hash(id) & mask;
	while (st->tasks[i].id != NULL) {
		if (strcmp(st->tasks[i].id, id) == 0)
			return &st->tasks[i];
		i = (i + 1) & mask;
	}
	st->tasks[i].id = xstrdup(id);
	st->ntasks++;
	return &st->tasks[i];
}

static void follow_state_release(struct follow_state *st)
{
	size_t i;

	for (i = 0; i < st->cap; i++)
		free(st->tasks[i].id);
	free(st->tasks);
	st->tasks = NULL;
}

static void follow_clear_line(struct follow_state *st)
{
	if (st->drawn && st->o != NULL && st->o->progress_out != NULL) {
		fputs("\r\033[K", st->o->progress_out);
		fflush(st->o->progress_out);
	}
	st->drawn = 0;
}

static void follow_draw(struct follow_state *st, int force)
{
	const struct follow_opts *o = st->o;
	long long now = follow_now_ms();
	char tests[64], tasks[64], eta[64];

	if (o == NULL || o->progress == FOLLOW_PROGRESS_NONE ||
	    o->progress_out == NULL)
		return;
	if (o->progress == FOLLOW_PROGRESS_TTY && !force &&
	    (now - st->last_draw < FOLLOW_REDRAW_MS ||
	     (st->drawn && st->shown[0] == st->tests_done &&
	      st->shown[1] == st->tests_failed &&
	      st->shown[2] == st->tasks_done)))
		return;
	/* Plain lines only every 30 s: a log needs no first or last one
	 * (the report follows). */
	if (o->progress == FOLLOW_PROGRESS_PLAIN &&
	    now - st->last_draw < FOLLOW_PLAIN_MS)
		return;
	st->last_draw = now;
	st->shown[0] = st->tests_done;
	st->shown[1] = st->tests_failed;
	st->shown[2] = st->tasks_done;
	if (o->tests_total > 0)
		snprintf(tests, sizeof(tests), "%u/%u tests", st->tests_done,
			 o->tests_total);
	else
		snprintf(tests, sizeof(tests), "%u tests", st->tests_done);
	if (o->tasks_total > 0)
		snprintf(tasks, sizeof(tasks), "%u/%u tasks", st->tasks_done,
			 o->tasks_total);
	else
		snprintf(tasks, sizeof(tasks), "%u tasks", st->tasks_done);
	eta[0] = '\0';
	if (st->have_eta) {
		char d[32];
		double left = st->left > 0 ? st->left : 0;

		shard_format_duration(
		    (left + (double)st->unstarted *
				(o->startup_s > 0 ? o->startup_s
						  : SHARD_STARTUP_S)) /
			(o->slots ? o->slots : 1),
		    d, sizeof(d));
		snprintf(eta, sizeof(eta), " | ~%s left", d);
	}
	if (o->progress == FOLLOW_PROGRESS_TTY) {
		fprintf(o->progress_out, "\r[ %s | %u failed | %s%s ]\033[K",
			tests, st->tests_failed, tasks, eta);
		st->drawn = 1;
	} else {
		fprintf(o->progress_out, "testfleet: %s | %u failed | %s%s\n",
			tests, st->tests_failed, tasks, eta);
	}
	fflush(o->progress_out);
}

static void follow_skip(struct follow_state *st, const char *id,
			const char *why)
{
	follow_clear_line(st);
	st->malformed++;
	log_warn("skipping malformed entry %s in %s: %s", id, st->key, why);
}

static void follow_progress_event(struct follow_state *st,
				  const struct progress *p)
{
	struct follow_task *t = follow_task_get(st, p->task);

	if (t->known && !t->started) {
		t->started = 1;
		st->unstarted--;
	}
	if (!p->finished || t->finished)
		return;
	if (t->known && t->ntests > 0) {
		double share = t->est / t->ntests;

		if (share > t->left)
			share = t->left;
		t->left -= share;
		st->left -= share;
	}
	t->done++;
	st->tests_done++;
	if (p->outcome == OUTCOME_FAILED || p->outcome == OUTCOME_ERROR) {
		t->failed++;
		st->tests_failed++;
	}
}

/* A set of borrowed strings, for the "retrying" list of one record. */
struct follow_set {
	const char **slots;
	size_t mask;
};

static void follow_set_init(struct follow_set *set, char *const *v, size_t n)
{
	size_t cap = 16, i, k;

	while (cap < 2 * n)
		cap *= 2;
	set->slots = xcalloc(cap, sizeof(*set->slots));
	set->mask = cap - 1;
	for (i = 0; i < n; i++) {
		if (v[i] == NULL)
			continue;
		k = follow_hash(v[i]) & set->mask;
		while (set->slots[k] != NULL &&
		       strcmp(set->slots[k], v[i]) != 0)
			k = (k + 1) & set->mask;
		set->slots[k] = v[i];
	}
}

static int follow_set_has(const struct follow_set *set, const char *s)
{
	size_t k = follow_hash(s) & set->mask;

	while (set->slots[k] != NULL) {
		if (strcmp(set->slots[k], s) == 0)
			return 1;
		k = (k + 1) & set->mask;
	}
	return 0;
}

/* The tests a record settles, for the progress line: its results and its
 * unfinished tests (errors), but not the tests it hands to a follow-up --
 * those count when their last attempt reports. */
static void follow_count(const struct task_result *r, unsigned *done,
			 unsigned *failed)
{
	struct follow_set retrying;
	size_t i;

	*done = 0;
	*failed = 0;
	follow_set_init(&retrying, r->retrying, r->nretrying);
	for (i = 0; i < r->ntests; i++) {
		if (r->tests[i].id == NULL ||
		    (r->nretrying > 0 &&
		     follow_set_has(&retrying, r->tests[i].id)))
			continue;
		(*done)++;
		if (r->tests[i].outcome == OUTCOME_FAILED ||
		    r->tests[i].outcome == OUTCOME_ERROR)
			(*failed)++;
	}
	for (i = 0; i < r->nunfinished; i++) {
		if (r->unfinished[i] == NULL ||
		    (r->nretrying > 0 &&
		     follow_set_has(&retrying, r->unfinished[i])))
			continue;
		(*done)++;
		(*failed)++;
	}
	free(retrying.slots);
}

static void follow_result(struct follow_state *st, const struct task_result *r)
{
	struct follow_task *t = follow_task_get(st, r->task);
	unsigned done, failed;

	aggregator_add(st->agg, r);
	if (t->finished)
		return;
	if (t->known) {
		st->left -= t->left;
		t->left = 0;
		if (!t->started) {
			t->started = 1;
			st->unstarted--;
		}
	}
	/* The result is authoritative: replace the live counts. */
	st->tests_done -= t->done;
	st->tests_failed -= t->failed;
	follow_count(r, &done, &failed);
	st->tests_done += done;
	st->tests_failed += failed;
	st->tasks_done++;
	t->finished = 1;
}

/* An "end" entry: end=<time>[, reason=<why>] in any order. */
static void follow_end_entry(struct follow_state *st, const redisReply *fv)
{
	size_t i;

	st->end.ended = 1;
	for (i = 0; i + 1 < fv->elements; i += 2) {
		const redisReply *f = fv->element[i], *v = fv->element[i + 1];

		if (f->type != REDIS_REPLY_STRING ||
		    v->type != REDIS_REPLY_STRING)
			continue;
		if (f->len == 3 && memcmp(f->str, "end", 3) == 0) {
			char *endp;
			double t = strtod(v->str, &endp);

			st->end.at = endp != v->str && isfinite(t) ? t : 0;
		} else if (f->len == 6 && memcmp(f->str, "reason", 6) == 0) {
			size_t n = v->len < sizeof(st->end.reason) - 1
				       ? v->len
				       : sizeof(st->end.reason) - 1;
			size_t k;

			memcpy(st->end.reason, v->str, n);
			st->end.reason[n] = '\0';
			/* One line of text for the console. */
			for (k = 0; k < n; k++)
				if ((unsigned char)st->end.reason[k] < 0x20)
					st->end.reason[k] = ' ';
		}
	}
}

/* Handles one stream entry: [id, [field, value, ...]]. */
static void follow_entry(struct follow_state *st, const redisReply *e)
{
	const redisReply *id, *fv;
	char err[512];
	size_t i;

	if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
	    e->element[0]->type != REDIS_REPLY_STRING) {
		follow_skip(st, "?", "not a stream entry");
		return;
	}
	id = e->element[0];
	fv = e->element[1];
	if (id->len < sizeof(st->last_id)) {
		memcpy(st->last_id, id->str, id->len);
		st->last_id[id->len] = '\0';
	}
	if (fv->type != REDIS_REPLY_ARRAY || fv->elements % 2 != 0) {
		follow_skip(st, id->str, "no field list");
		return;
	}
	for (i = 0; i + 1 < fv->elements; i += 2) {
		const redisReply *f = fv->element[i], *v = fv->element[i + 1];
		enum proto_kind kind;

		if (f->type != REDIS_REPLY_STRING ||
		    v->type != REDIS_REPLY_STRING)
			continue;
		if (f->len == 3 && memcmp(f->str, "end", 3) == 0) {
			follow_end_entry(st, fv);
			return;
		}
		if (f->len != 1 || f->str[0] != 'm')
			continue;
		if (proto_peek_kind(v->str, v->len, &kind, err, sizeof(err)) <
		    0) {
			follow_skip(st, id->str, err);
			return;
		}
		if (kind == PROTO_TASK_RESULT) {
			struct task_result r;

			if (proto_decode_task_result(v->str, v->len, &r, err,
						     sizeof(err)) < 0) {
				follow_skip(st, id->str, err);
				return;
			}
			follow_result(st, &r);
			task_result_release(&r);
		} else if (kind == PROTO_PROGRESS) {
			struct progress p;

			if (proto_decode_progress(v->str, v->len, &p, err,
						  sizeof(err)) < 0) {
				follow_skip(st, id->str, err);
				return;
			}
			follow_progress_event(st, &p);
			progress_release(&p);
		} else {
			follow_skip(st, id->str, "a task, not a result");
		}
		return;
	}
	follow_skip(st, id->str, "neither an \"m\" nor an \"end\" field");
}

/* Handles the entries of an XREAD or XRANGE reply; stops at "end".
 * Returns the number of entries seen. */
static size_t follow_entries(struct follow_state *st, const redisReply *arr)
{
	size_t i;

	for (i = 0; i < arr->elements && !st->end.ended; i++)
		follow_entry(st, arr->element[i]);
	return arr->elements;
}

/* Error replies a server gives while it cannot serve yet (loading its
 * AOF after a restart, a long script): worth waiting for. */
static int follow_transient_reply(const redisReply *r)
{
	static const char *const prefixes[] = {"LOADING", "BUSY", "MASTERDOWN",
					       "TRYAGAIN"};
	size_t i;

	if (r->str == NULL)
		return 0;
	for (i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (strncmp(r->str, prefixes[i], strlen(prefixes[i])) == 0)
			return 1;
	return 0;
}

/* Replaces *c with a new connection, trying for up to a minute. what
 * says why ("Connection reset by peer", "LOADING ..."). */
static enum follow_end follow_reconnect(redisContext **c,
					const struct follow_opts *o,
					struct follow_state *st,
					const char *what, char *err,
					size_t errlen)
{
	long long deadline = follow_now_ms() + FOLLOW_RECONNECT_MS;
	char why[512];

	follow_clear_line(st);
	log_warn("lost the connection to redis (%s); reconnecting", what);
	for (;;) {
		redisContext *nc;

		if (o->stop != NULL && *o->stop)
			return FOLLOW_STOPPED;
		if (o->check != NULL && o->check(o->check_arg, err, errlen) < 0)
			return FOLLOW_ERROR;
		nc = redisconn_open_retry(o->url, o->timeout_ms, 2000, why,
					  sizeof(why));
		if (nc != NULL) {
			redisFree(*c);
			*c = nc;
			log_info("reconnected; resuming after entry %s",
				 st->last_id);
			return FOLLOW_DONE;
		}
		if (follow_now_ms() >= deadline) {
			snprintf(err, errlen, "%s", why);
			return FOLLOW_ERROR;
		}
		{
			struct timespec ts = {0, FOLLOW_RETRY_MS * 1000000L};

			nanosleep(&ts, NULL);
		}
	}
}

/* Registers every planned task with its estimate. */
static void follow_load_estimates(struct follow_state *st,
				  const struct run_estimates *e)
{
	size_t i;

	if (e == NULL || e->n == 0)
		return;
	for (i = 0; i < e->n; i++) {
		struct follow_task *t = follow_task_get(st, e->tasks[i]);

		if (t->known)
			continue;
		t->known = 1;
		t->ntests = e->ntests[i];
		t->est = t->left = e->est_s[i];
		st->left += t->left;
		st->unstarted++;
	}
	st->have_eta = 1;
}

static double follow_unix_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

enum follow_end follow_run(redisContext **c, const struct follow_opts *o,
			   struct aggregator *agg, struct follow_ending *end,
			   char *err, size_t errlen)
{
	struct follow_state st;
	char *key = key_results(o->prefix, o->run);
	long long last_check = follow_now_ms();
	enum follow_end ret = FOLLOW_ERROR;
	int timed_out = 0;

	memset(&st, 0, sizeof(st));
	memset(end, 0, sizeof(*end));
	st.o = o;
	st.agg = agg;
	st.key = key;
	follow_load_estimates(&st, o->estimates);
	snprintf(st.last_id, sizeof(st.last_id), "0-0");
	st.last_draw = follow_now_ms();
	follow_draw(&st, 1);
	for (;;) {
		const char *argv[8] = {"XREAD", "BLOCK",      FOLLOW_BLOCK_MS,
				       "COUNT", FOLLOW_COUNT, "STREAMS",
				       key,	st.last_id};
		redisReply *r;
		long long now;

		if (o->stop != NULL && *o->stop) {
			ret = FOLLOW_STOPPED;
			goto out;
		}
		now = follow_now_ms();
		if (o->check != NULL && now - last_check >= FOLLOW_CHECK_MS) {
			last_check = now;
			if (o->check(o->check_arg, err, errlen) < 0) {
				ret = FOLLOW_ERROR;
				goto out;
			}
		}
		/* The run timeout: cancel, then read on to the "end" entry
		 * the cancel writes. A connection error is retried on the
		 * next turn, after the reconnect below. */
		if (o->deadline > 0 && !timed_out &&
		    follow_unix_now() >= o->deadline) {
			char why[512];

			if (run_cancel(*c, o->prefix, o->run, "run-timeout",
				       why, sizeof(why)) >= 0)
				timed_out = 1;
			else if ((*c)->err == 0)
				log_warn("%s", why);
		}
		r = redisCommandArgv(*c, 8, argv, NULL);
		if (r == NULL || (r->type == REDIS_REPLY_ERROR &&
				  follow_transient_reply(r))) {
			char what[256];

			snprintf(what, sizeof(what), "%s",
				 r != NULL	   ? r->str
				 : (*c)->errstr[0] ? (*c)->errstr
						   : "connection lost");
			if (r != NULL)
				freeReplyObject(r);
			ret = follow_reconnect(c, o, &st, what, err, errlen);
			if (ret != FOLLOW_DONE)
				goto out;
			continue;
		}
		if (r->type == REDIS_REPLY_ERROR) {
			snprintf(err, errlen, "redis: XREAD %s: %s", key,
				 r->str ? r->str : "error");
			freeReplyObject(r);
			ret = FOLLOW_ERROR;
			goto out;
		}
		/* [[key, [entry, ...]]], or nil when the block timed out. */
		if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
		    r->element[0]->type == REDIS_REPLY_ARRAY &&
		    r->element[0]->elements == 2 &&
		    r->element[0]->element[1]->type == REDIS_REPLY_ARRAY)
			follow_entries(&st, r->element[0]->element[1]);
		freeReplyObject(r);
		if (st.end.ended) {
			*end = st.end;
			ret = FOLLOW_DONE;
			goto out;
		}
		follow_draw(&st, 0);
	}
out:
	if (ret == FOLLOW_DONE)
		follow_draw(&st, 1);
	follow_clear_line(&st);
	follow_state_release(&st);
	free(key);
	return ret;
}

int follow_replay(redisContext *c, const char *prefix, const char *run,
		  struct aggregator *agg, struct follow_ending *end, char *err,
		  size_t errlen)
{
	struct follow_state st;
	char *key = key_results(prefix, run);
	char start[FOLLOW_MAX_ID + 2];
	int ret = -1;

	memset(&st, 0, sizeof(st));
	memset(end, 0, sizeof(*end));
	st.agg = agg;
	st.key = key;
	snprintf(start, sizeof(start), "-");
	for (;;) {
		const char *argv[6] = {"XRANGE", key,	  start,
				       "+",	 "COUNT", "1000"};
		redisReply *r = redisCommandArgv(c, 6, argv, NULL);
		size_t n;

		if (r == NULL) {
			snprintf(err, errlen, "redis: XRANGE %s: %s", key,
				 redisconn_why(c, NULL));
			goto out;
		}
		if (r->type != REDIS_REPLY_ARRAY) {
			snprintf(err, errlen, "redis: XRANGE %s: %s", key,
				 r->type == REDIS_REPLY_ERROR && r->str
				     ? r->str
				     : "unexpected reply");
			freeReplyObject(r);
			goto out;
		}
		n = follow_entries(&st, r);
		freeReplyObject(r);
		if (st.end.ended || n < FOLLOW_PAGE)
			break;
		/* The next page starts after the last entry (exclusive
		 * ranges: Redis 6.2 and later). */
		snprintf(start, sizeof(start), "(%s", st.last_id);
	}
	*end = st.end;
	ret = 0;
out:
	follow_state_release(&st);
	free(key);
	return ret;
}
