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
#include "xmalloc.h"

#define FOLLOW_BLOCK_MS "1000"
#define FOLLOW_COUNT "500"
#define FOLLOW_PAGE 1000
#define FOLLOW_REDRAW_MS 100
#define FOLLOW_PLAIN_MS 30000
#define FOLLOW_CHECK_MS 1000
#define FOLLOW_RECONNECT_MS 60000
#define FOLLOW_MAX_ID 64

/* Live counts of one task from its progress events, until its result
 * replaces them. */
struct follow_task {
	char *id;
	unsigned done;
	unsigned failed;
	int finished; /* its result has been counted */
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
	int ended;
	double ended_at;
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
	char tests[64], tasks[64];

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
	if (o->progress == FOLLOW_PROGRESS_TTY) {
		fprintf(o->progress_out, "\r[ %s | %u failed | %s ]\033[K",
			tests, st->tests_failed, tasks);
		st->drawn = 1;
	} else {
		fprintf(o->progress_out, "testfleet: %s | %u failed | %s\n",
			tests, st->tests_failed, tasks);
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
	struct follow_task *t;

	if (!p->finished)
		return;
	t = follow_task_get(st, p->task);
	if (t->finished)
		return;
	t->done++;
	st->tests_done++;
	if (p->outcome == OUTCOME_FAILED || p->outcome == OUTCOME_ERROR) {
		t->failed++;
		st->tests_failed++;
	}
}

static void follow_result(struct follow_state *st, const struct task_result *r)
{
	struct follow_task *t = follow_task_get(st, r->task);
	unsigned failed = 0;
	size_t i;

	aggregator_add(st->agg, r);
	if (t->finished)
		return;
	/* The result is authoritative: replace the live counts. */
	st->tests_done -= t->done;
	st->tests_failed -= t->failed;
	for (i = 0; i < r->ntests; i++)
		if (r->tests[i].outcome == OUTCOME_FAILED ||
		    r->tests[i].outcome == OUTCOME_ERROR)
			failed++;
	/* Unfinished tests are reported as errors. */
	failed += (unsigned)r->nunfinished;
	st->tests_done += (unsigned)(r->ntests + r->nunfinished);
	st->tests_failed += failed;
	st->tasks_done++;
	t->finished = 1;
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
			char *end;
			double t = strtod(v->str, &end);

			st->ended = 1;
			st->ended_at = end != v->str && isfinite(t) ? t : 0;
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

	for (i = 0; i < arr->elements && !st->ended; i++)
		follow_entry(st, arr->element[i]);
	return arr->elements;
}

/* Replaces *c with a new connection, trying for up to a minute. */
static enum follow_end follow_reconnect(redisContext **c,
					const struct follow_opts *o,
					struct follow_state *st, char *err,
					size_t errlen)
{
	long long deadline = follow_now_ms() + FOLLOW_RECONNECT_MS;
	char why[512];

	follow_clear_line(st);
	log_warn("lost the connection to redis (%s); reconnecting",
		 (*c)->errstr[0] ? (*c)->errstr : "connection lost");
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
			struct timespec ts = {0, 200 * 1000000L};

			nanosleep(&ts, NULL);
		}
	}
}

enum follow_end follow_run(redisContext **c, const struct follow_opts *o,
			   struct aggregator *agg, double *ended_at, char *err,
			   size_t errlen)
{
	struct follow_state st;
	char *key = key_results(o->prefix, o->run);
	long long last_check = follow_now_ms();
	enum follow_end ret = FOLLOW_ERROR;

	memset(&st, 0, sizeof(st));
	st.o = o;
	st.agg = agg;
	st.key = key;
	snprintf(st.last_id, sizeof(st.last_id), "0-0");
	*ended_at = 0;
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
		r = redisCommandArgv(*c, 8, argv, NULL);
		if (r == NULL) {
			ret = follow_reconnect(c, o, &st, err, errlen);
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
		if (st.ended) {
			*ended_at = st.ended_at;
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
		  struct aggregator *agg, int *ended, double *ended_at,
		  char *err, size_t errlen)
{
	struct follow_state st;
	char *key = key_results(prefix, run);
	char start[FOLLOW_MAX_ID + 2];
	int ret = -1;

	memset(&st, 0, sizeof(st));
	st.agg = agg;
	st.key = key;
	snprintf(start, sizeof(start), "-");
	*ended = 0;
	*ended_at = 0;
	for (;;) {
		const char *argv[6] = {"XRANGE", key,	  start,
				       "+",	 "COUNT", "1000"};
		redisReply *r = redisCommandArgv(c, 6, argv, NULL);
		size_t n;

		if (r == NULL) {
			snprintf(err, errlen, "redis: XRANGE %s: %s", key,
				 c->errstr[0] ? c->errstr : "connection lost");
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
		if (st.ended || n < FOLLOW_PAGE)
			break;
		/* The next page starts after the last entry (exclusive
		 * ranges: Redis 6.2 and later). */
		snprintf(start, sizeof(start), "(%s", st.last_id);
	}
	*ended = st.ended;
	*ended_at = st.ended_at;
	ret = 0;
out:
	follow_state_release(&st);
	free(key);
	return ret;
}
