/* tfbench.c -- the Redis side of the benchmark (bench/README.md). It queues
 * tasks of the "command" runner exactly as the producer queues its pytest
 * tasks (run hash, pipelined XADD of msgpack tasks), waits for a run to
 * finish, samples dispatch latency one task at a time, and times sharding
 * plus enqueueing of a large run through the producer's own modules
 * (shard.c, run.c), and lists a run's task results for the makespan's
 * breakdown. It prints "key=value" lines for bench/run and asserts
 * nothing: a benchmark prints figures.
 *
 *   tfbench enqueue -r URL -R RUN -n N [-P PREFIX] -- ARGV...
 *   tfbench wait    -r URL -R RUN [-P PREFIX] [-t SEC]
 *   tfbench latency -r URL -R RUN -n N -o STAMPFILE [--min-ms A --max-ms B]
 *                   -- STAMP-ARGV...   (STAMPFILE is read after the run)
 *   tfbench scale   -r URL -n N [--files F] [--slots S] [--shard MODE]
 *   tfbench tasks   -r URL -R RUN [-P PREFIX]   (the run's task results)
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "buf.h"
#include "keys.h"
#include "policy.h"
#include "proto.h"
#include "redisconn.h"
#include "redisurl.h"
#include "run.h"
#include "shard.h"
#include "xmalloc.h"

/* Tasks XADDed before their replies are read, as in producer/run.c. */
#define BENCH_PIPELINE 512
#define BENCH_MAX_TASKS 10000000UL
#define BENCH_STAMP_LINE 512
#define BENCH_POLL_MS 20

struct bench_opts {
	const char *url;
	const char *prefix;
	const char *run;
	const char *stamp_file;
	const char *shard;
	unsigned long n;
	unsigned long files;
	unsigned long slots;
	unsigned long min_ms;
	unsigned long max_ms;
	unsigned long timeout_s;
	char **argv; /* after "--" */
	size_t nargv;
};

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long long real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_ms(unsigned long ms)
{
	struct timespec ts = {(time_t)(ms / 1000),
			      (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int parse_ulong(const char *opt, const char *s, unsigned long max,
		       unsigned long *out, char *err, size_t errlen)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (s[0] == '\0' || s[0] == '-' || *end != '\0' || errno != 0 ||
	    v > max) {
		snprintf(err, errlen,
			 "%s: expected a number up to %lu, got \"%s\"", opt,
			 max, s);
		return -1;
	}
	*out = v;
	return 0;
}

/* Runs one command; returns the reply or NULL with "redis: CMD: why" in
 * err (connection errors and error replies alike). */
static redisReply *bench_cmd(redisContext *c, int argc, const char **argv,
			     const size_t *lens, char *err, size_t errlen)
{
	redisReply *r = redisCommandArgv(c, argc, argv, lens);

	if (r == NULL) {
		snprintf(err, errlen, "redis: %s: %s", argv[0],
			 c->errstr[0] ? c->errstr : "connection lost");
		return NULL;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		snprintf(err, errlen, "redis: %s: %s", argv[0],
			 r->str ? r->str : "error");
		freeReplyObject(r);
		return NULL;
	}
	return r;
}

/* One command whose reply is not needed. */
static int bench_do(redisContext *c, int argc, const char **argv, char *err,
		    size_t errlen)
{
	redisReply *r = bench_cmd(c, argc, argv, NULL, err, errlen);

	if (r == NULL)
		return -1;
	freeReplyObject(r);
	return 0;
}

static redisContext *bench_connect(const char *url, char *err, size_t errlen)
{
	struct redis_url u;
	redisContext *c;

	if (redis_url_parse(url, &u, err, errlen) < 0)
		return NULL;
	c = redisconn_open(&u, 60000, err, errlen);
	redis_url_release(&u);
	return c;
}

/* The group (BUSYGROUP ignored), the run hash as producer/run.c writes it
 * (so the complete script counts the run down and ends it) and the run's
 * entry in <prefix>:runs. */
static int bench_create_run(redisContext *c, const struct bench_opts *o,
			    unsigned long ntasks, char *err, size_t errlen)
{
	char *queue = key_queue(o->prefix, "default");
	char *runkey = key_run(o->prefix, o->run);
	char *runs = key_runs(o->prefix);
	char *policy[POLICY_NFIELDS] = {NULL};
	char created[32], total[24], cwd[4096];
	const char *argv[64];
	struct policy defaults;
	struct timespec ts;
	redisReply *r = NULL;
	int argc = 0, ret = -1;
	size_t i;

	argv[0] = "XGROUP";
	argv[1] = "CREATE";
	argv[2] = queue;
	argv[3] = KEYS_GROUP;
	argv[4] = "0";
	argv[5] = "MKSTREAM";
	r = redisCommandArgv(c, 6, argv, NULL);
	if (r == NULL ||
	    (r->type == REDIS_REPLY_ERROR &&
	     (r->str == NULL || strncmp(r->str, "BUSYGROUP", 9) != 0))) {
		const char *why = "error";

		if (r == NULL)
			why = c->errstr;
		else if (r->str != NULL)
			why = r->str;
		snprintf(err, errlen, "redis: XGROUP CREATE %s: %s", queue,
			 why);
		goto out;
	}
	policy_init(&defaults);
	policy_fields(&defaults, policy);
	policy_release(&defaults);
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(created, sizeof(created), "%lld.%03ld", (long long)ts.tv_sec,
		 ts.tv_nsec / 1000000);
	snprintf(total, sizeof(total), "%lu", ntasks);
	if (getcwd(cwd, sizeof(cwd)) == NULL)
		snprintf(cwd, sizeof(cwd), "/");
	argv[argc++] = "HSET";
	argv[argc++] = runkey;
#define FIELD(k, v)                                                            \
	do {                                                                   \
		argv[argc++] = (k);                                            \
		argv[argc++] = (v);                                            \
	} while (0)
	FIELD("status", "running");
	FIELD("created_at", created);
	FIELD("tasks_total", total);
	FIELD("tests_total", total);
	FIELD("tasks_done", "0");
	FIELD("tests_done", "0");
	FIELD("tests_failed", "0");
	FIELD("cwd", cwd);
	FIELD("args", "tfbench");
	FIELD("queues", "default");
	FIELD("phases", "default:1");
	FIELD("suites", "default");
	for (i = 0; i < POLICY_NFIELDS; i++)
		FIELD(policy_field_names[i], policy[i]);
	FIELD("timeout", "0");
	FIELD("run_timeout", "0");
#undef FIELD
	if (bench_do(c, argc, argv, err, errlen) < 0)
		goto out;
	argv[0] = "ZADD";
	argv[1] = runs;
	argv[2] = created;
	argv[3] = o->run;
	if (bench_do(c, 4, argv, err, errlen) < 0)
		goto out;
	ret = 0;
out:
	if (r != NULL)
		freeReplyObject(r);
	for (i = 0; i < POLICY_NFIELDS; i++)
		free(policy[i]);
	free(runs);
	free(runkey);
	free(queue);
	return ret;
}

/* Task seq of the run: the "command" runner with the given argv and one
 * test id, so the worker records one passed test from the exit status.
 * Caller frees *msg. */
static void bench_encode(const struct bench_opts *o, unsigned long seq,
			 char *tid, size_t tidlen, char **msg, size_t *len)
{
	char *tests[1] = {"noop"};
	struct task t;

	snprintf(tid, tidlen, "t%05lu", seq);
	memset(&t, 0, sizeof(t));
	t.run = (char *)o->run;
	t.id = tid;
	t.attempt = 1;
	t.suite = "default";
	t.phase = "default";
	t.runner = "command";
	t.queue = "default";
	t.tests = tests;
	t.ntests = 1;
	t.argv = o->argv;
	t.nargv = o->nargv;
	proto_encode_task(&t, msg, len);
}

static int bench_read_replies(redisContext *c, size_t n, char *err,
			      size_t errlen)
{
	int ret = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		redisReply *r = NULL;

		if (redisGetReply(c, (void **)&r) != REDIS_OK || r == NULL) {
			snprintf(err, errlen, "redis: XADD: %s",
				 c->errstr[0] ? c->errstr : "connection lost");
			return -1;
		}
		if (r->type == REDIS_REPLY_ERROR && ret == 0) {
			snprintf(err, errlen, "redis: XADD: %s",
				 r->str ? r->str : "error");
			ret = -1;
		}
		freeReplyObject(r);
	}
	return ret;
}

static int cmd_enqueue(const struct bench_opts *o, char *err, size_t errlen)
{
	redisContext *c = NULL;
	char *queue = key_queue(o->prefix, "default");
	size_t pending = 0;
	unsigned long i;
	double t0, t1;
	int ret = -1;

	if (o->n == 0 || o->nargv == 0) {
		snprintf(err, errlen, "enqueue: needs -n N and -- ARGV");
		goto out;
	}
	c = bench_connect(o->url, err, errlen);
	if (c == NULL)
		goto out;
	t0 = mono_now();
	if (bench_create_run(c, o, o->n, err, errlen) < 0)
		goto out;
	for (i = 1; i <= o->n; i++) {
		const char *argv[5] = {"XADD", queue, "*", "m", NULL};
		size_t lens[5] = {4, strlen(queue), 1, 1, 0};
		char tid[24], *msg = NULL;
		size_t len = 0;
		int rc;

		bench_encode(o, i, tid, sizeof(tid), &msg, &len);
		argv[4] = msg;
		lens[4] = len;
		rc = redisAppendCommandArgv(c, 5, argv, lens);
		free(msg);
		if (rc != REDIS_OK) {
			snprintf(err, errlen, "redis: XADD: %s", c->errstr);
			goto out;
		}
		if (++pending == BENCH_PIPELINE) {
			if (bench_read_replies(c, pending, err, errlen) < 0)
				goto out;
			pending = 0;
		}
	}
	if (pending > 0 && bench_read_replies(c, pending, err, errlen) < 0)
		goto out;
	t1 = mono_now();
	printf("enqueue_tasks=%lu\nenqueue_s=%.6f\n", o->n, t1 - t0);
	ret = 0;
out:
	if (c != NULL)
		redisFree(c);
	free(queue);
	return ret;
}

/* Reads status and finished_at of the run hash. */
static int bench_run_state(redisContext *c, const char *runkey, char *status,
			   size_t statuslen, double *finished, char *err,
			   size_t errlen)
{
	const char *argv[4] = {"HMGET", runkey, "status", "finished_at"};
	redisReply *r = bench_cmd(c, 4, argv, NULL, err, errlen);
	int ret = -1;

	if (r == NULL)
		return -1;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
		snprintf(err, errlen, "redis: HMGET %s: unexpected reply",
			 runkey);
		goto out;
	}
	status[0] = '\0';
	if (r->element[0]->type == REDIS_REPLY_STRING)
		snprintf(status, statuslen, "%s", r->element[0]->str);
	*finished = 0;
	if (r->element[1]->type == REDIS_REPLY_STRING)
		*finished = strtod(r->element[1]->str, NULL);
	ret = 0;
out:
	freeReplyObject(r);
	return ret;
}

static int cmd_wait(const struct bench_opts *o, char *err, size_t errlen)
{
	redisContext *c = NULL;
	char *runkey = key_run(o->prefix, o->run);
	char status[64];
	double t0 = mono_now(), finished = 0;
	unsigned long polls = 0;
	int ret = -1;

	c = bench_connect(o->url, err, errlen);
	if (c == NULL)
		goto out;
	for (;;) {
		polls++;
		if (bench_run_state(c, runkey, status, sizeof(status),
				    &finished, err, errlen) < 0)
			goto out;
		if (strcmp(status, "running") != 0 && status[0] != '\0')
			break;
		if (o->timeout_s > 0 &&
		    mono_now() - t0 > (double)o->timeout_s) {
			snprintf(err, errlen,
				 "wait: run %s still %s after %lu s", o->run,
				 status[0] ? status : "absent", o->timeout_s);
			goto out;
		}
		sleep_ms(BENCH_POLL_MS);
	}
	printf("status=%s\nfinished_at=%.3f\npolls=%lu\nwaited_s=%.3f\n",
	       status, finished, polls, mono_now() - t0);
	ret = 0;
out:
	if (c != NULL)
		redisFree(c);
	free(runkey);
	return ret;
}

/* Blocks until the results stream has an entry after *last (updated). */
static int bench_next_result(redisContext *c, const char *results, char *last,
			     size_t lastlen, char *err, size_t errlen)
{
	for (;;) {
		const char *argv[6] = {"XREAD",	  "BLOCK", "30000",
				       "STREAMS", results, last};
		redisReply *r = bench_cmd(c, 6, argv, NULL, err, errlen);
		redisReply *entries;

		if (r == NULL)
			return -1;
		if (r->type == REDIS_REPLY_NIL) {
			freeReplyObject(r);
			snprintf(err, errlen,
				 "latency: no result for 30 s (is the worker "
				 "running with --allow-command?)");
			return -1;
		}
		if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
		    r->element[0]->elements < 2) {
			freeReplyObject(r);
			snprintf(err, errlen, "redis: XREAD: unexpected reply");
			return -1;
		}
		entries = r->element[0]->element[1];
		if (entries->elements > 0) {
			redisReply *e = entries->element[entries->elements - 1];

			snprintf(last, lastlen, "%s", e->element[0]->str);
			freeReplyObject(r);
			return 0;
		}
		freeReplyObject(r);
	}
}

struct stamp {
	char task[32];
	long long ns;
};

/* Reads "task ns" lines; returns how many were read into v (at most max),
 * or -1 with a message. */
static long bench_read_stamps(const char *path, struct stamp *v, size_t max,
			      char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	char line[BENCH_STAMP_LINE];
	long n = 0;

	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	while ((size_t)n < max && fgets(line, sizeof(line), f) != NULL) {
		char *sp = strchr(line, ' '), *end;
		size_t tl;

		if (sp == NULL)
			continue;
		tl = (size_t)(sp - line);
		if (tl == 0 || tl >= sizeof(v[n].task))
			continue;
		memcpy(v[n].task, line, tl);
		v[n].task[tl] = '\0';
		errno = 0;
		v[n].ns = strtoll(sp + 1, &end, 10);
		if (errno != 0 || end == sp + 1)
			continue;
		n++;
	}
	fclose(f);
	return n;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted v[0..n). */
static double percentile(const double *v, size_t n, double p)
{
	size_t rank = (size_t)ceil(p / 100.0 * (double)n);

	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return v[rank - 1];
}

static int cmd_latency(const struct bench_opts *o, char *err, size_t errlen)
{
	redisContext *c = NULL;
	char *queue = key_queue(o->prefix, "default");
	char *results = key_results(o->prefix, o->run);
	long long *sent = NULL;
	struct stamp *stamps = NULL;
	double *lat = NULL, sum = 0;
	char last[64] = "0-0";
	unsigned long i, span;
	size_t nlat = 0;
	long nstamps, k;
	uint64_t rng = 0x9e3779b97f4a7c15ULL ^ (uint64_t)real_ns();
	int ret = -1;

	if (o->n == 0 || o->nargv == 0 || o->stamp_file == NULL) {
		snprintf(err, errlen,
			 "latency: needs -n N, -o STAMPFILE and -- ARGV");
		goto out;
	}
	if (o->max_ms < o->min_ms) {
		snprintf(err, errlen, "latency: --max-ms below --min-ms");
		goto out;
	}
	c = bench_connect(o->url, err, errlen);
	if (c == NULL)
		goto out;
	if (bench_create_run(c, o, o->n, err, errlen) < 0)
		goto out;
	sent = xcalloc(o->n, sizeof(*sent));
	span = o->max_ms - o->min_ms + 1;
	for (i = 1; i <= o->n; i++) {
		const char *argv[5] = {"XADD", queue, "*", "m", NULL};
		size_t lens[5] = {4, strlen(queue), 1, 1, 0};
		char tid[24], *msg = NULL;
		size_t len = 0;
		redisReply *r;

		/* Spaced out so the worker is idle, blocked in XREADGROUP,
		 * when the task arrives. */
		rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
		sleep_ms(o->min_ms + (unsigned long)((rng >> 33) % span));
		bench_encode(o, i, tid, sizeof(tid), &msg, &len);
		argv[4] = msg;
		lens[4] = len;
		sent[i - 1] = real_ns();
		r = bench_cmd(c, 5, argv, lens, err, errlen);
		free(msg);
		if (r == NULL)
			goto out;
		freeReplyObject(r);
		/* Wait for its result: one task at a time. */
		if (bench_next_result(c, results, last, sizeof(last), err,
				      errlen) < 0)
			goto out;
	}
	stamps = xcalloc(o->n, sizeof(*stamps));
	nstamps = bench_read_stamps(o->stamp_file, stamps, o->n, err, errlen);
	if (nstamps < 0)
		goto out;
	lat = xcalloc(o->n, sizeof(*lat));
	for (k = 0; k < nstamps; k++) {
		char *end;
		unsigned long seq;

		if (stamps[k].task[0] != 't')
			continue;
		errno = 0;
		seq = strtoul(stamps[k].task + 1, &end, 10);
		if (errno != 0 || *end != '\0' || seq < 1 || seq > o->n)
			continue;
		lat[nlat] = (double)(stamps[k].ns - sent[seq - 1]) / 1000.0;
		sum += lat[nlat];
		nlat++;
	}
	if (nlat == 0) {
		snprintf(err, errlen, "latency: no stamps in %s",
			 o->stamp_file);
		goto out;
	}
	qsort(lat, nlat, sizeof(*lat), cmp_double);
	printf("latency_samples=%zu\nlatency_min_us=%.1f\nlatency_p50_us=%.1f\n"
	       "latency_p90_us=%.1f\nlatency_p99_us=%.1f\n"
	       "latency_max_us=%.1f\nlatency_mean_us=%.1f\n",
	       nlat, lat[0], percentile(lat, nlat, 50),
	       percentile(lat, nlat, 90), percentile(lat, nlat, 99),
	       lat[nlat - 1], sum / (double)nlat);
	ret = 0;
out:
	free(lat);
	free(stamps);
	free(sent);
	if (c != NULL)
		redisFree(c);
	free(results);
	free(queue);
	return ret;
}

/* Shards n synthetic ids ("tests/test_f007.py::test_00042", files of equal
 * size, no history) with the producer's shard.c and creates the run with its
 * run.c: the producer's work between discovery and following. */
static int cmd_scale(const struct bench_opts *o, char *err, size_t errlen)
{
	struct shard_plan plan;
	struct shard_mode mode;
	struct run_batch batch;
	struct run_phase_decl phase = {.name = "default", .required = 1};
	struct run_spec spec;
	redisContext *c = NULL;
	char **ids = NULL, *id = NULL, cwd[4096];
	unsigned long files = o->files ? o->files : 1, per, i;
	double t0, t1, t2;
	int ret = -1, have_plan = 0;

	if (o->n == 0) {
		snprintf(err, errlen, "scale: needs -n N");
		goto out;
	}
	if (shard_mode_parse(o->shard ? o->shard : "auto", &mode, err, errlen) <
	    0)
		goto out;
	c = bench_connect(o->url, err, errlen);
	if (c == NULL)
		goto out;
	if (getcwd(cwd, sizeof(cwd)) == NULL)
		snprintf(cwd, sizeof(cwd), "/");
	per = (o->n + files - 1) / files;
	ids = xcalloc(o->n, sizeof(*ids));
	for (i = 0; i < o->n; i++)
		ids[i] = xasprintf("tests/test_f%04lu.py::test_%05lu", i / per,
				   i % per);
	id = run_id_new();
	t0 = mono_now();
	shard_plan_build(ids, NULL, o->n, (unsigned)o->slots, mode, &plan);
	have_plan = 1;
	t1 = mono_now();
	memset(&batch, 0, sizeof(batch));
	batch.suite = "default";
	batch.phase = "default";
	batch.queue = "default";
	batch.cwd = cwd;
	batch.ids = ids;
	batch.plan = &plan;
	memset(&spec, 0, sizeof(spec));
	spec.prefix = o->prefix;
	spec.id = id;
	spec.cwd = cwd;
	spec.args = "tfbench scale";
	spec.batches = &batch;
	spec.nbatches = 1;
	spec.phases = &phase;
	spec.nphases = 1;
	if (run_create(c, &spec, err, errlen) < 0)
		goto out;
	t2 = mono_now();
	printf("scale_tests=%lu\nscale_tasks=%zu\nscale_shard_s=%.6f\n"
	       "scale_enqueue_s=%.6f\nscale_total_s=%.6f\n",
	       o->n, plan.ntasks, t1 - t0, t2 - t1, t2 - t0);
	ret = 0;
out:
	if (have_plan)
		shard_plan_release(&plan);
	if (ids != NULL) {
		for (i = 0; i < o->n; i++)
			free(ids[i]);
		free(ids);
	}
	free(id);
	if (c != NULL)
		redisFree(c);
	return ret;
}

/* Prints one line per task result of the run's results stream: "task
 * <id> <attempt> <worker> <start> <dur> <ntests> <sum of test durations>"
 * (times in seconds), read in pages of 1000 entries. */
static int cmd_tasks(const struct bench_opts *o, char *err, size_t errlen)
{
	redisContext *c = NULL;
	char *results = key_results(o->prefix, o->run);
	char start[80] = "-";
	int ret = -1;

	c = bench_connect(o->url, err, errlen);
	if (c == NULL)
		goto out;
	for (;;) {
		const char *argv[6] = {"XRANGE", results, start,
				       "+",	 "COUNT", "1000"};
		redisReply *r = bench_cmd(c, 6, argv, NULL, err, errlen);
		size_t i, n;

		if (r == NULL)
			goto out;
		if (r->type != REDIS_REPLY_ARRAY) {
			freeReplyObject(r);
			snprintf(err, errlen,
				 "redis: XRANGE: unexpected reply");
			goto out;
		}
		n = r->elements;
		for (i = 0; i < n; i++) {
			redisReply *e = r->element[i], *f;
			struct task_result tr;
			enum proto_kind kind;
			char derr[256];
			size_t k;

			if (e->type != REDIS_REPLY_ARRAY || e->elements < 2)
				continue;
			/* The next page starts after this id (XRANGE with
			 * "(" is exclusive). */
			snprintf(start, sizeof(start), "(%s",
				 e->element[0]->str);
			f = e->element[1];
			for (k = 0; k + 1 < f->elements; k += 2) {
				const redisReply *key = f->element[k];
				const redisReply *val = f->element[k + 1];
				double sum = 0;
				size_t t;

				if (key->len != 1 || key->str[0] != 'm' ||
				    proto_peek_kind(val->str, val->len, &kind,
						    derr, sizeof(derr)) < 0 ||
				    kind != PROTO_TASK_RESULT ||
				    proto_decode_task_result(val->str, val->len,
							     &tr, derr,
							     sizeof(derr)) < 0)
					continue;
				for (t = 0; t < tr.ntests; t++)
					sum += tr.tests[t].duration_s;
				printf("task %s %u %s %.6f %.6f %zu %.6f\n",
				       tr.task, tr.attempt, tr.worker,
				       tr.started_at, tr.duration_s, tr.ntests,
				       sum);
				task_result_release(&tr);
			}
		}
		freeReplyObject(r);
		if (n < 1000)
			break;
	}
	ret = 0;
out:
	if (c != NULL)
		redisFree(c);
	free(results);
	return ret;
}

static void usage(FILE *f)
{
	fputs(
	    "usage: tfbench enqueue -r URL -R RUN -n N [-P PREFIX] -- ARGV...\n"
	    "       tfbench wait -r URL -R RUN [-P PREFIX] [-t SEC]\n"
	    "       tfbench latency -r URL -R RUN -n N -o STAMPFILE "
	    "[--min-ms A] [--max-ms B] -- ARGV...\n"
	    "       tfbench scale -r URL -n N [--files F] [--slots S] "
	    "[--shard MODE]\n"
	    "       tfbench tasks -r URL -R RUN [-P PREFIX]\n",
	    f);
}

enum { OPT_MIN_MS = 256, OPT_MAX_MS, OPT_FILES, OPT_SLOTS, OPT_SHARD };

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"redis", required_argument, NULL, 'r'},
	    {"prefix", required_argument, NULL, 'P'},
	    {"run", required_argument, NULL, 'R'},
	    {"count", required_argument, NULL, 'n'},
	    {"out", required_argument, NULL, 'o'},
	    {"timeout", required_argument, NULL, 't'},
	    {"min-ms", required_argument, NULL, OPT_MIN_MS},
	    {"max-ms", required_argument, NULL, OPT_MAX_MS},
	    {"files", required_argument, NULL, OPT_FILES},
	    {"slots", required_argument, NULL, OPT_SLOTS},
	    {"shard", required_argument, NULL, OPT_SHARD},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	struct bench_opts o;
	const char *cmd;
	char err[1024] = "";
	int ch, rc = 2;

	memset(&o, 0, sizeof(o));
	o.prefix = KEYS_DEFAULT_PREFIX;
	o.files = 500;
	o.slots = 8;
	o.min_ms = 5;
	o.max_ms = 20;
	o.timeout_s = 600;
	if (argc < 2 || argv[1][0] == '-') {
		usage(stderr);
		return 2;
	}
	cmd = argv[1];
	optind = 2;
	while ((ch = getopt_long(argc, argv, "+r:P:R:n:o:t:h", longopts,
				 NULL)) != -1) {
		int bad = 0;

		switch (ch) {
		case 'r':
			o.url = optarg;
			break;
		case 'P':
			o.prefix = optarg;
			break;
		case 'R':
			o.run = optarg;
			break;
		case 'o':
			o.stamp_file = optarg;
			break;
		case OPT_SHARD:
			o.shard = optarg;
			break;
		case 'n':
			bad = parse_ulong("-n", optarg, BENCH_MAX_TASKS, &o.n,
					  err, sizeof(err));
			break;
		case 't':
			bad = parse_ulong("-t", optarg, 86400, &o.timeout_s,
					  err, sizeof(err));
			break;
		case OPT_MIN_MS:
			bad = parse_ulong("--min-ms", optarg, 60000, &o.min_ms,
					  err, sizeof(err));
			break;
		case OPT_MAX_MS:
			bad = parse_ulong("--max-ms", optarg, 60000, &o.max_ms,
					  err, sizeof(err));
			break;
		case OPT_FILES:
			bad = parse_ulong("--files", optarg, BENCH_MAX_TASKS,
					  &o.files, err, sizeof(err));
			break;
		case OPT_SLOTS:
			bad = parse_ulong("--slots", optarg, 100000, &o.slots,
					  err, sizeof(err));
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
		if (bad) {
			fprintf(stderr, "tfbench: %s\n", err);
			return 2;
		}
	}
	o.argv = argv + optind;
	o.nargv = (size_t)(argc - optind);
	if (o.url == NULL || (strcmp(cmd, "scale") != 0 && o.run == NULL)) {
		fprintf(stderr, "tfbench: %s: needs -r URL%s\n", cmd,
			strcmp(cmd, "scale") != 0 ? " and -R RUN" : "");
		return 2;
	}
	if (strcmp(cmd, "enqueue") == 0)
		rc = cmd_enqueue(&o, err, sizeof(err));
	else if (strcmp(cmd, "wait") == 0)
		rc = cmd_wait(&o, err, sizeof(err));
	else if (strcmp(cmd, "latency") == 0)
		rc = cmd_latency(&o, err, sizeof(err));
	else if (strcmp(cmd, "scale") == 0)
		rc = cmd_scale(&o, err, sizeof(err));
	else if (strcmp(cmd, "tasks") == 0)
		rc = cmd_tasks(&o, err, sizeof(err));
	else {
		fprintf(stderr, "tfbench: unknown command \"%s\"\n", cmd);
		usage(stderr);
		return 2;
	}
	if (rc < 0) {
		fprintf(stderr, "tfbench: %s\n", err);
		return 1;
	}
	return 0;
}
