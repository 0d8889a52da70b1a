/* run.c -- creating a run in Redis and reading it back (see run.h). */
#include "run.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "history.h"
#include "keys.h"
#include "redisconn.h"
#include "scripts.h"
#include "xmalloc.h"

/* Tasks XADDed before their replies are read: large enough to hide the
 * round trips, small enough to bound hiredis's output buffer. */
#define RUN_PIPELINE 512

char *run_id_new(void)
{
	static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	uint32_t rnd[4];
	char stamp[32], tail[5];
	struct timespec ts;
	struct tm tm;
	size_t i;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M", &tm);
	if (getrandom(rnd, sizeof(rnd), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(rnd)) {
		/* No entropy yet (early boot): the clock and the pid will do
		 * for a name that only has to differ from its neighbours. */
		uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);

		for (i = 0; i < 4; i++) {
			x = x * 6364136223846793005ULL + 1442695040888963407ULL;
			rnd[i] = (uint32_t)(x >> 33);
		}
	}
	/* % 36 of a 32-bit value: a bias of one part in 10^8. */
	for (i = 0; i < 4; i++)
		tail[i] = alphabet[rnd[i] % 36];
	tail[4] = '\0';
	return xasprintf("%s-%s", stamp, tail);
}

/* Runs one command; returns the reply, or NULL with "redis: CMD KEY: why"
 * in err (connection errors and error replies alike). */
static redisReply *run_cmd(redisContext *c, int argc, const char **argv,
			   const size_t *argvlen, char *err, size_t errlen)
{
	redisReply *r = redisCommandArgv(c, argc, argv, argvlen);

	if (r == NULL) {
		snprintf(err, errlen, "redis: %s %s: %s", argv[0],
			 argc > 1 ? argv[1] : "",
			 c->errstr[0] ? c->errstr : "connection lost");
		return NULL;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		snprintf(err, errlen, "redis: %s %s: %s", argv[0],
			 argc > 1 ? argv[1] : "", r->str ? r->str : "error");
		freeReplyObject(r);
		return NULL;
	}
	return r;
}

int run_exists(redisContext *c, const char *prefix, const char *id, char *err,
	       size_t errlen)
{
	char *key = key_run(prefix, id);
	const char *argv[2] = {"EXISTS", key};
	redisReply *r = run_cmd(c, 2, argv, NULL, err, errlen);
	int ret = -1;

	if (r != NULL) {
		ret = r->type == REDIS_REPLY_INTEGER && r->integer > 0;
		freeReplyObject(r);
	}
	free(key);
	return ret;
}

/* XGROUP CREATE <queue> workers 0 MKSTREAM, BUSYGROUP being success. */
static int run_create_group(redisContext *c, const char *prefix,
			    const char *queue, char *err, size_t errlen)
{
	char *key = key_queue(prefix, queue);
	const char *argv[6] = {"XGROUP",   "CREATE", key,
			       KEYS_GROUP, "0",	     "MKSTREAM"};
	redisReply *r = redisCommandArgv(c, 6, argv, NULL);
	int ret = -1;

	if (r == NULL) {
		snprintf(err, errlen, "redis: XGROUP CREATE %s: %s", key,
			 c->errstr[0] ? c->errstr : "connection lost");
		goto out;
	}
	if (r->type == REDIS_REPLY_ERROR &&
	    (r->str == NULL || strncmp(r->str, "BUSYGROUP", 9) != 0)) {
		snprintf(err, errlen, "redis: XGROUP CREATE %s: %s", key,
			 r->str ? r->str : "error");
		goto out;
	}
	ret = 0;
out:
	if (r != NULL)
		freeReplyObject(r);
	free(key);
	return ret;
}

/* Distinct queues of the batches, comma-separated. */
static char *run_queues(const struct run_spec *s)
{
	struct buf b;
	size_t i, j;

	buf_init(&b, 0);
	for (i = 0; i < s->nbatches; i++) {
		int dup = 0;

		for (j = 0; j < i; j++)
			dup |= strcmp(s->batches[j].queue,
				      s->batches[i].queue) == 0;
		if (dup)
			continue;
		if (b.len > 0)
			buf_appendstr(&b, ",");
		buf_appendstr(&b, s->batches[i].queue);
	}
	return buf_detach(&b, NULL);
}

static char *run_phases_field(const struct run_spec *s)
{
	struct buf b;
	size_t i;

	buf_init(&b, 0);
	for (i = 0; i < s->nphases; i++)
		buf_printf(&b, "%s%s:%d", i ? "," : "", s->phases[i].name,
			   s->phases[i].required ? 1 : 0);
	return buf_detach(&b, NULL);
}

static char *run_suites_field(const struct run_spec *s)
{
	struct buf b;
	size_t i;

	buf_init(&b, 0);
	for (i = 0; i < s->nbatches; i++)
		buf_printf(&b, "%s%s", i ? "," : "", s->batches[i].suite);
	return buf_detach(&b, NULL);
}

char *run_key_estimates(const char *prefix, const char *run)
{
	char *base = key_run(prefix, run);
	char *key = xasprintf("%s:est", base);

	free(base);
	return key;
}

/* Reads n pipelined replies; the first error wins but all are read so
 * the connection stays in step. */
static int run_read_replies(redisContext *c, size_t n, const char *key,
			    char *err, size_t errlen)
{
	int ret = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		redisReply *r = NULL;

		if (redisGetReply(c, (void **)&r) != REDIS_OK || r == NULL) {
			snprintf(err, errlen, "redis: queueing to %s: %s", key,
				 c->errstr[0] ? c->errstr : "connection lost");
			return -1;
		}
		if (r->type == REDIS_REPLY_ERROR && ret == 0) {
			snprintf(err, errlen, "redis: queueing to %s: %s", key,
				 r->str ? r->str : "error");
			ret = -1;
		}
		freeReplyObject(r);
	}
	return ret;
}

/* The estimates of the tasks queued so far, waiting for their HSET:
 * task id, value, task id, value, ... (owned). */
struct run_est_batch {
	char *items[2 * RUN_PIPELINE];
	size_t n; /* items used */
};

/* Appends "HSET <key> <items>" to the pipeline and empties the batch.
 * Returns 1 when a command was appended, 0 for an empty batch, -1 on
 * error. */
static int run_est_flush(redisContext *c, const char *key,
			 struct run_est_batch *b, char *err, size_t errlen)
{
	const char *argv[2 + 2 * RUN_PIPELINE];
	size_t lens[2 + 2 * RUN_PIPELINE];
	size_t i;
	int rc;

	if (b->n == 0)
		return 0;
	argv[0] = "HSET";
	argv[1] = key;
	for (i = 0; i < b->n; i++)
		argv[i + 2] = b->items[i];
	for (i = 0; i < b->n + 2; i++)
		lens[i] = strlen(argv[i]);
	rc = redisAppendCommandArgv(c, (int)b->n + 2, argv, lens);
	for (i = 0; i < b->n; i++)
		free(b->items[i]);
	b->n = 0;
	if (rc != REDIS_OK) {
		snprintf(err, errlen, "redis: HSET %s: %s", key,
			 c->errstr[0] ? c->errstr : "cannot queue");
		return -1;
	}
	return 1;
}

static int run_enqueue(redisContext *c, const struct run_spec *s, char *err,
		       size_t errlen)
{
	size_t b, t, pending = 0, seq = 0;
	char *key = NULL, *last_key = NULL;
	char *estkey = run_key_estimates(s->prefix, s->id);
	struct run_est_batch est;
	int ret = -1, rc;

	memset(&est, 0, sizeof(est));
	for (b = 0; b < s->nbatches; b++) {
		const struct run_batch *bt = &s->batches[b];

		free(key);
		key = key_queue(s->prefix, bt->queue);
		for (t = 0; t < bt->plan->ntasks; t++) {
			const struct shard_task *st = &bt->plan->tasks[t];
			struct task task;
			char tid[24];
			char *msg = NULL;
			size_t len = 0, i;
			const char *argv[5];
			size_t argvlen[5];

			memset(&task, 0, sizeof(task));
			snprintf(tid, sizeof(tid), "t%05zu", ++seq);
			task.run = (char *)s->id;
			task.id = tid;
			task.attempt = 1;
			task.suite = (char *)bt->suite;
			task.phase = (char *)bt->phase;
			task.runner = "pytest";
			task.queue = (char *)bt->queue;
			task.cwd = (char *)bt->cwd;
			task.mark = (char *)bt->mark;
			task.kexpr = (char *)bt->kexpr;
			task.timeout_s = bt->timeout_s;
			task.reruns = bt->reruns;
			task.env = (struct kv *)bt->env;
			task.nenv = bt->nenv;
			task.ntests = st->ntests;
			task.tests = xcalloc(st->ntests, sizeof(char *));
			for (i = 0; i < st->ntests; i++)
				task.tests[i] = bt->ids[st->tests[i]];
			proto_encode_task(&task, &msg, &len);
			free(task.tests);
			argv[0] = "XADD";
			argvlen[0] = 4;
			argv[1] = key;
			argvlen[1] = strlen(key);
			argv[2] = "*";
			argvlen[2] = 1;
			argv[3] = "m";
			argvlen[3] = 1;
			argv[4] = msg;
			argvlen[4] = len;
			rc = redisAppendCommandArgv(c, 5, argv, argvlen);
			free(msg);
			if (rc != REDIS_OK) {
				snprintf(err, errlen, "redis: XADD %s: %s", key,
					 c->errstr[0] ? c->errstr
						      : "cannot queue");
				goto out;
			}
			pending++;
			free(last_key);
			last_key = xstrdup(key);
			est.items[est.n++] = xstrdup(tid);
			est.items[est.n++] =
			    xasprintf("%.6f %zu", st->estimate_s, st->ntests);
			if (est.n == 2 * RUN_PIPELINE) {
				rc =
				    run_est_flush(c, estkey, &est, err, errlen);
				if (rc < 0)
					goto out;
				pending += (size_t)rc;
			}
			if (pending >= RUN_PIPELINE) {
				if (run_read_replies(c, pending, key, err,
						     errlen) < 0)
					goto out;
				pending = 0;
			}
		}
	}
	rc = run_est_flush(c, estkey, &est, err, errlen);
	if (rc < 0)
		goto out;
	pending += (size_t)rc;
	if (pending > 0 &&
	    run_read_replies(c, pending, last_key, err, errlen) < 0)
		goto out;
	ret = 0;
out:
	for (t = 0; t < est.n; t++)
		free(est.items[t]);
	free(last_key);
	free(key);
	free(estkey);
	return ret;
}

int run_create(redisContext *c, const struct run_spec *s, char *err,
	       size_t errlen)
{
	char *runkey = key_run(s->prefix, s->id);
	char *runs = key_runs(s->prefix);
	char *queues = run_queues(s);
	char *phases = run_phases_field(s);
	char *suites = run_suites_field(s);
	char created[32], tasks[24], tests[24], tmo[24], run_tmo[24];
	char slots[24], estimate[32], eta[32];
	char *policy[POLICY_NFIELDS];
	struct policy defaults;
	const char *argv[64];
	struct timespec ts;
	size_t ntasks = 0, ntests = 0, i;
	double total_est = 0;
	redisReply *r;
	int argc = 0, ret = -1;

	policy_init(&defaults);
	policy_fields(s->policy != NULL ? s->policy : &defaults, policy);
	policy_release(&defaults);

	for (i = 0; i < s->nbatches; i++) {
		ntasks += s->batches[i].plan->ntasks;
		for (size_t t = 0; t < s->batches[i].plan->ntasks; t++) {
			ntests += s->batches[i].plan->tasks[t].ntests;
			total_est += s->batches[i].plan->tasks[t].estimate_s;
		}
	}
	for (i = 0; i < s->nbatches; i++) {
		size_t j;
		int dup = 0;

		for (j = 0; j < i; j++)
			dup |= strcmp(s->batches[j].queue,
				      s->batches[i].queue) == 0;
		if (!dup && run_create_group(c, s->prefix, s->batches[i].queue,
					     err, errlen) < 0)
			goto out;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(created, sizeof(created), "%lld.%03ld", (long long)ts.tv_sec,
		 ts.tv_nsec / 1000000);
	snprintf(tasks, sizeof(tasks), "%zu", ntasks);
	snprintf(tests, sizeof(tests), "%zu", ntests);
	snprintf(tmo, sizeof(tmo), "%u", s->timeout_s);
	snprintf(run_tmo, sizeof(run_tmo), "%u", s->run_timeout_s);
	snprintf(slots, sizeof(slots), "%u", s->slots ? s->slots : 1);
	snprintf(estimate, sizeof(estimate), "%.3f", total_est);
	snprintf(eta, sizeof(eta), "%.3f", s->eta_s);
	argv[argc++] = "HSET";
	argv[argc++] = runkey;
#define RUN_FIELD(k, v)                                                        \
	do {                                                                   \
		argv[argc++] = (k);                                            \
		argv[argc++] = (v);                                            \
	} while (0)
	RUN_FIELD("status", "running");
	RUN_FIELD("created_at", created);
	RUN_FIELD("tasks_total", tasks);
	RUN_FIELD("tests_total", tests);
	RUN_FIELD("tasks_done", "0");
	RUN_FIELD("tests_done", "0");
	RUN_FIELD("tests_failed", "0");
	RUN_FIELD("cwd", s->cwd);
	RUN_FIELD("args", s->args);
	RUN_FIELD("queues", queues);
	RUN_FIELD("phases", phases);
	RUN_FIELD("suites", suites);
	for (i = 0; i < POLICY_NFIELDS; i++)
		RUN_FIELD(policy_field_names[i], policy[i]);
	RUN_FIELD("timeout", tmo);
	RUN_FIELD("run_timeout", run_tmo);
	RUN_FIELD("slots", slots);
	RUN_FIELD("estimate_s", estimate);
	RUN_FIELD("eta_s", eta);
	if (s->history != NULL && s->history[0] != '\0')
		RUN_FIELD(HISTORY_RUN_FIELD, s->history);
#undef RUN_FIELD
	/* The hash (with tasks_total) exists before the first task can
	 * complete, so the completion script always sees the total. */
	r = run_cmd(c, argc, argv, NULL, err, errlen);
	if (r == NULL)
		goto out;
	freeReplyObject(r);
	argv[0] = "ZADD";
	argv[1] = runs;
	argv[2] = created;
	argv[3] = s->id;
	r = run_cmd(c, 4, argv, NULL, err, errlen);
	if (r == NULL)
		goto out;
	freeReplyObject(r);
	if (run_enqueue(c, s, err, errlen) < 0)
		goto out;
	ret = 0;
out:
	for (i = 0; i < POLICY_NFIELDS; i++)
		free(policy[i]);
	free(suites);
	free(phases);
	free(queues);
	free(runs);
	free(runkey);
	return ret;
}

int run_cancel(redisContext *c, const char *prefix, const char *run,
	       const char *reason, char *err, size_t errlen)
{
	char *runkey = key_run(prefix, run);
	char *results = key_results(prefix, run);
	char *control = key_control(prefix);
	char now[32];
	const char *argv[6];
	struct timespec ts;
	redisReply *r;
	int ret = -1;

	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(now, sizeof(now), "%lld.%03ld", (long long)ts.tv_sec,
		 ts.tv_nsec / 1000000);
	argv[0] = runkey;
	argv[1] = results;
	argv[2] = now;
	argv[3] = reason;
	argv[4] = control;
	argv[5] = run;
	r = redisconn_script(c, script_cancel, 2, 6, argv, NULL);
	if (r == NULL) {
		snprintf(err, errlen, "redis: cancel %s: %s", run,
			 c->errstr[0] ? c->errstr : "connection lost");
		goto out;
	}
	if (r->type != REDIS_REPLY_INTEGER) {
		snprintf(err, errlen, "redis: cancel %s: %s", run,
			 r->type == REDIS_REPLY_ERROR && r->str
			     ? r->str
			     : "unexpected reply");
		goto out;
	}
	ret = r->integer == 1 ? 1 : 0;
out:
	if (r != NULL)
		freeReplyObject(r);
	free(control);
	free(results);
	free(runkey);
	return ret;
}

static unsigned run_uint(const char *s)
{
	char *end;
	unsigned long v;

	if (s == NULL)
		return 0;
	v = strtoul(s, &end, 10);
	return end == s || v > 0xffffffffUL ? 0 : (unsigned)v;
}

static double run_double(const char *s)
{
	char *end;
	double v;

	if (s == NULL)
		return 0;
	v = strtod(s, &end);
	return end == s || !isfinite(v) ? 0 : v;
}

const char *run_info_get(const struct run_info *ri, const char *field)
{
	size_t i;

	for (i = 0; i < ri->nfields; i++)
		if (strcmp(ri->fields[i].key, field) == 0)
			return ri->fields[i].value;
	return NULL;
}

int run_load(redisContext *c, const char *prefix, const char *id,
	     struct run_info *out, char *err, size_t errlen)
{
	char *key = key_run(prefix, id);
	const char *argv[2] = {"HGETALL", key};
	redisReply *r;
	size_t i;
	int ret = -1;

	memset(out, 0, sizeof(*out));
	r = run_cmd(c, 2, argv, NULL, err, errlen);
	if (r == NULL)
		goto out;
	if (r->type != REDIS_REPLY_ARRAY || r->elements % 2 != 0) {
		snprintf(err, errlen, "redis: HGETALL %s: unexpected reply",
			 key);
		goto out;
	}
	if (r->elements == 0) {
		ret = 1;
		goto out;
	}
	out->id = xstrdup(id);
	out->nfields = r->elements / 2;
	out->fields = xcalloc(out->nfields, sizeof(*out->fields));
	for (i = 0; i < out->nfields; i++) {
		redisReply *k = r->element[2 * i], *v = r->element[2 * i + 1];

		out->fields[i].key =
		    k->str ? xstrndup(k->str, k->len) : xstrdup("");
		out->fields[i].value =
		    v->str ? xstrndup(v->str, v->len) : xstrdup("");
	}
	out->status =
	    xstrdup(run_info_get(out, "status") ? run_info_get(out, "status")
						: "unknown");
	out->created_at = run_double(run_info_get(out, "created_at"));
	out->finished_at = run_double(run_info_get(out, "finished_at"));
	out->tasks_total = run_uint(run_info_get(out, "tasks_total"));
	out->tasks_done = run_uint(run_info_get(out, "tasks_done"));
	out->tests_total = run_uint(run_info_get(out, "tests_total"));
	out->tests_done = run_uint(run_info_get(out, "tests_done"));
	out->tests_failed = run_uint(run_info_get(out, "tests_failed"));
	if (run_info_get(out, "phases") != NULL)
		run_phases_parse(run_info_get(out, "phases"), &out->phases,
				 &out->nphases);
	ret = 0;
out:
	if (r != NULL)
		freeReplyObject(r);
	free(key);
	if (ret != 0)
		run_info_release(out);
	return ret;
}

void run_info_release(struct run_info *ri)
{
	size_t i;

	for (i = 0; i < ri->nfields; i++) {
		free(ri->fields[i].key);
		free(ri->fields[i].value);
	}
	free(ri->fields);
	run_phases_free(ri->phases, ri->nphases);
	free(ri->status);
	free(ri->id);
	memset(ri, 0, sizeof(*ri));
}

void run_phases_parse(const char *s, struct run_phase_decl **out, size_t *n)
{
	struct run_phase_decl *v = NULL;
	size_t cnt = 0;
	const char *p = s;

	while (*p != '\0') {
		size_t l = strcspn(p, ",");
		const char *colon = memchr(p, ':', l);
		size_t nl = colon ? (size_t)(colon - p) : l;

		if (nl > 0) {
			v = xreallocarray(v, cnt + 1, sizeof(*v));
			v[cnt].name = xstrndup(p, nl);
			v[cnt].required =
			    !(colon != NULL && (size_t)(colon - p) + 2 == l &&
			      colon[1] == '0');
			cnt++;
		}
		p += l;
		if (*p == ',')
			p++;
	}
	*out = v;
	*n = cnt;
}

void run_phases_free(struct run_phase_decl *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free((char *)p[i].name);
	free(p);
}

void run_info_declare(const struct run_info *ri, struct aggregator *a)
{
	size_t i;

	for (i = 0; i < ri->nphases; i++)
		aggregator_phase(a, ri->phases[i].name, ri->phases[i].required);
	if (ri->tasks_total > 0)
		aggregator_expect_tasks(a, ri->tasks_total);
	aggregator_set_times(a, ri->created_at, ri->finished_at);
}

int run_load_estimates(redisContext *c, const char *prefix, const char *run,
		       struct run_estimates *out, char *err, size_t errlen)
{
	char *key = run_key_estimates(prefix, run);
	const char *argv[2] = {"HGETALL", key};
	redisReply *r;
	size_t i, k = 0;
	int ret = -1;

	memset(out, 0, sizeof(*out));
	r = run_cmd(c, 2, argv, NULL, err, errlen);
	if (r == NULL)
		goto out;
	if (r->type != REDIS_REPLY_ARRAY || r->elements % 2 != 0) {
		snprintf(err, errlen, "redis: HGETALL %s: unexpected reply",
			 key);
		goto out;
	}
	out->tasks = xcalloc(r->elements / 2 + 1, sizeof(*out->tasks));
	out->est_s = xcalloc(r->elements / 2 + 1, sizeof(*out->est_s));
	out->ntests = xcalloc(r->elements / 2 + 1, sizeof(*out->ntests));
	for (i = 0; i + 1 < r->elements; i += 2) {
		const redisReply *f = r->element[i], *v = r->element[i + 1];
		char val[64], *end;
		double e;
		unsigned long nt;

		if (f->type != REDIS_REPLY_STRING ||
		    v->type != REDIS_REPLY_STRING || v->len >= sizeof(val) ||
		    memchr(f->str, '\0', f->len) != NULL)
			continue;
		memcpy(val, v->str, v->len);
		val[v->len] = '\0';
		e = strtod(val, &end);
		if (end == val || *end != ' ' || !isfinite(e) || e < 0)
			continue;
		nt = strtoul(end + 1, &end, 10);
		if (*end != '\0' || nt > 0xffffffffUL)
			continue;
		out->tasks[k] = xstrndup(f->str, f->len);
		out->est_s[k] = e;
		out->ntests[k] = (unsigned)nt;
		k++;
	}
	out->n = k;
	ret = 0;
out:
	if (r != NULL)
		freeReplyObject(r);
	free(key);
	return ret;
}

void run_estimates_release(struct run_estimates *e)
{
	size_t i;

	for (i = 0; i < e->n; i++)
		free(e->tasks[i]);
	free(e->tasks);
	free(e->est_s);
	free(e->ntests);
	memset(e, 0, sizeof(*e));
}

/* The keys of one run, for expiry and the sweep; caller frees each. */
#define RUN_NKEYS 5
static void run_keys(const char *prefix, const char *run, char *keys[RUN_NKEYS])
{
	keys[0] = key_run(prefix, run);
	keys[1] = key_results(prefix, run);
	keys[2] = key_done(prefix, run);
	keys[3] = run_key_estimates(prefix, run);
	keys[4] = key_plan(prefix, run);
}

int run_expire(redisContext *c, const char *prefix, const char *run,
	       long long ttl_s, char *err, size_t errlen)
{
	char *keys[RUN_NKEYS];
	char ttl[32];
	size_t i, appended = 0;
	int ret = -1;

	run_keys(prefix, run, keys);
	snprintf(ttl, sizeof(ttl), "%lld", ttl_s);
	for (i = 0; i < RUN_NKEYS; i++) {
		const char *argv[3] = {"EXPIRE", keys[i], ttl};

		if (redisAppendCommandArgv(c, 3, argv, NULL) != REDIS_OK) {
			snprintf(err, errlen, "redis: EXPIRE %s: %s", keys[i],
				 c->errstr[0] ? c->errstr : "cannot send");
			break;
		}
		appended++;
	}
	if (run_read_replies(c, appended, keys[0], err, errlen) == 0 &&
	    appended == RUN_NKEYS)
		ret = 0;
	for (i = 0; i < RUN_NKEYS; i++)
		free(keys[i]);
	return ret;
}

/* Removes one run: its keys and its entry in <prefix>:runs. */
static int run_remove(redisContext *c, const char *prefix, const char *runs,
		      const char *run, char *err, size_t errlen)
{
	char *keys[RUN_NKEYS];
	const char *argv[RUN_NKEYS + 1];
	redisReply *r;
	size_t i;
	int ret = -1;

	run_keys(prefix, run, keys);
	argv[0] = "UNLINK";
	for (i = 0; i < RUN_NKEYS; i++)
		argv[i + 1] = keys[i];
	r = run_cmd(c, RUN_NKEYS + 1, argv, NULL, err, errlen);
	if (r == NULL)
		goto out;
	freeReplyObject(r);
	argv[0] = "ZREM";
	argv[1] = runs;
	argv[2] = run;
	r = run_cmd(c, 3, argv, NULL, err, errlen);
	if (r == NULL)
		goto out;
	freeReplyObject(r);
	ret = 0;
out:
	for (i = 0; i < RUN_NKEYS; i++)
		free(keys[i]);
	return ret;
}

long run_sweep(redisContext *c, const char *prefix, double now, char *err,
	       size_t errlen)
{
	char *runs = key_runs(prefix);
	char cutoff[40];
	const char *argv[8];
	redisReply *r;
	size_t i;
	long removed = -1;

	snprintf(cutoff, sizeof(cutoff), "(%.3f",
		 now - (double)RUN_RETENTION_S);
	argv[0] = "ZRANGEBYSCORE";
	argv[1] = runs;
	argv[2] = "-inf";
	argv[3] = cutoff;
	argv[4] = "WITHSCORES";
	argv[5] = "LIMIT";
	argv[6] = "0";
	argv[7] = "100";
	r = run_cmd(c, 8, argv, NULL, err, errlen);
	if (r == NULL)
		goto out;
	if (r->type != REDIS_REPLY_ARRAY || r->elements % 2 != 0) {
		snprintf(err, errlen,
			 "redis: ZRANGEBYSCORE %s: unexpected reply", runs);
		goto out;
	}
	removed = 0;
	for (i = 0; i + 1 < r->elements; i += 2) {
		const redisReply *m = r->element[i], *sc = r->element[i + 1];
		char *id, *runkey;
		const char *hargv[3];
		redisReply *st;
		double created;
		int gone;

		if (m->type != REDIS_REPLY_STRING ||
		    sc->type != REDIS_REPLY_STRING ||
		    memchr(m->str, '\0', m->len) != NULL)
			continue;
		id = xstrndup(m->str, m->len);
		created = strtod(sc->str, NULL);
		runkey = key_run(prefix, id);
		hargv[0] = "HGET";
		hargv[1] = runkey;
		hargv[2] = "status";
		st = run_cmd(c, 3, hargv, NULL, err, errlen);
		free(runkey);
		if (st == NULL) {
			free(id);
			removed = -1;
			break;
		}
		gone = st->type != REDIS_REPLY_STRING ||
		       strcmp(st->str, "running") != 0 ||
		       created < now - (double)RUN_ABANDONED_S;
		freeReplyObject(st);
		if (gone) {
			if (run_remove(c, prefix, runs, id, err, errlen) < 0) {
				free(id);
				removed = -1;
				break;
			}
			removed++;
		}
		free(id);
	}
out:
	if (r != NULL)
		freeReplyObject(r);
	free(runs);
	return removed;
}
