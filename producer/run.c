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
/* Phases read back from a hash (the config allows 1000). */
#define RUN_MAX_PHASES 10000

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
			 argc > 1 ? argv[1] : "", redisconn_why(c, NULL));
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
			 redisconn_why(c, NULL));
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
				 redisconn_why(c, NULL));
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

/* The run's phases: the declared ones, then any phase only a batch
 * names (required, parallel). Names are borrowed. */
struct run_phases {
	struct run_phase_decl *v;
	size_t n;
	size_t *planned; /* tasks per phase */
};

static size_t run_phase_index(const struct run_phases *ph, const char *name)
{
	size_t i;

	for (i = 0; i < ph->n; i++)
		if (strcmp(ph->v[i].name, name) == 0)
			return i;
	return ph->n;
}

static void run_phases_build(const struct run_spec *s, struct run_phases *ph)
{
	size_t i;

	ph->v = xcalloc(s->nphases + s->nbatches + 1, sizeof(*ph->v));
	ph->n = 0;
	for (i = 0; i < s->nphases; i++)
		if (run_phase_index(ph, s->phases[i].name) == ph->n)
			ph->v[ph->n++] = s->phases[i];
	for (i = 0; i < s->nbatches; i++) {
		if (run_phase_index(ph, s->batches[i].phase) < ph->n)
			continue;
		ph->v[ph->n].name = s->batches[i].phase;
		ph->v[ph->n].required = 1;
		ph->n++;
	}
	ph->planned = xcalloc(ph->n + 1, sizeof(*ph->planned));
	for (i = 0; i < s->nbatches; i++)
		ph->planned[run_phase_index(ph, s->batches[i].phase)] +=
		    s->batches[i].plan->ntasks;
}

static void run_phases_release(struct run_phases *ph)
{
	free(ph->v);
	free(ph->planned);
	memset(ph, 0, sizeof(*ph));
}

/* The "phases" field: "name:1,name:0" (required or not), in order. */
static char *run_phases_field(const struct run_phases *ph)
{
	struct buf b;
	size_t i;

	buf_init(&b, 0);
	for (i = 0; i < ph->n; i++)
		buf_printf(&b, "%s%s:%d", i ? "," : "", ph->v[i].name,
			   ph->v[i].required ? 1 : 0);
	return buf_detach(&b, NULL);
}

/* One task in the order it is numbered and queued. */
struct run_item {
	size_t batch; /* index into spec->batches */
	size_t task;  /* index into that batch's plan */
	size_t phase; /* index into run_phases */
	size_t first; /* its first test in collection order */
	int now;      /* XADDed at once (else it waits in its phase list) */
};

static int run_item_cmp(const void *x, const void *y)
{
	const struct run_item *a = x, *b = y;

	if (a->batch != b->batch)
		return a->batch < b->batch ? -1 : 1;
	if (a->first != b->first)
		return a->first < b->first ? -1 : 1;
	return a->task < b->task ? -1 : a->task > b->task;
}

/* Every task, phase by phase; a sequential phase's tasks in collection
 * order (one runs at a time, so longest-first buys nothing and "the
 * first failure" should mean the first in the suite). *first is the first
 * phase with tasks (ph->n when there is none). */
static struct run_item *run_items(const struct run_spec *s,
				  const struct run_phases *ph, size_t *n,
				  size_t *first)
{
	struct run_item *v;
	size_t total = 0, k = 0, p, b, t, i;

	for (b = 0; b < s->nbatches; b++)
		total += s->batches[b].plan->ntasks;
	v = xcalloc(total + 1, sizeof(*v));
	*first = ph->n;
	for (p = 0; p < ph->n; p++) {
		size_t start = k;

		for (b = 0; b < s->nbatches; b++) {
			const struct shard_plan *plan = s->batches[b].plan;

			if (run_phase_index(ph, s->batches[b].phase) != p)
				continue;
			for (t = 0; t < plan->ntasks; t++) {
				const struct shard_task *st = &plan->tasks[t];

				v[k].batch = b;
				v[k].task = t;
				v[k].phase = p;
				v[k].first = (size_t)-1;
				for (i = 0; i < st->ntests; i++)
					if (st->tests[i] < v[k].first)
						v[k].first = st->tests[i];
				k++;
			}
		}
		if (ph->v[p].sequential && k - start > 1)
			qsort(v + start, k - start, sizeof(*v), run_item_cmp);
		if (*first == ph->n && k > start)
			*first = p;
		for (i = start; i < k; i++)
			v[i].now =
			    p == *first && (!ph->v[p].sequential || i == start);
	}
	*n = k;
	return v;
}

/* The task message of plan task st of batch bt. Caller frees *msg. */
static void run_encode_task(const struct run_spec *s,
			    const struct run_batch *bt,
			    const struct shard_task *st, const char *tid,
			    char **msg, size_t *len)
{
	struct task task;
	size_t i;

	memset(&task, 0, sizeof(task));
	task.run = (char *)s->id;
	task.id = (char *)tid;
	task.attempt = 1;
	task.suite = (char *)bt->suite;
	task.phase = (char *)bt->phase;
	task.runner = bt->runner != NULL ? (char *)bt->runner : "pytest";
	task.grep = (char *)bt->grep;
	task.grep_invert = (char *)bt->grep_invert;
	task.argv = (char **)bt->argv;
	task.nargv = bt->nargv;
	task.queue = (char *)bt->queue;
	task.cwd = (char *)bt->cwd;
	task.mark = (char *)bt->mark;
	task.kexpr = (char *)bt->kexpr;
	task.timeout_s = bt->timeout_s;
	task.reruns = bt->reruns;
	task.env = (struct kv *)bt->env;
	task.nenv = bt->nenv;
	task.keep_artifacts = s->keep_artifacts;
	task.ntests = st->ntests;
	task.tests = xcalloc(st->ntests + 1, sizeof(char *));
	for (i = 0; i < st->ntests; i++)
		task.tests[i] = bt->ids[st->tests[i]];
	proto_encode_task(&task, msg, len);
	free(task.tests);
}

/* A pipeline: commands appended, replies read every RUN_PIPELINE. */
struct run_pipe {
	redisContext *c;
	size_t pending;
	char *what; /* the key of the last command, for messages */
};

static int run_pipe_append(struct run_pipe *pp, int argc, const char **argv,
			   const size_t *lens, char *err, size_t errlen)
{
	if (redisAppendCommandArgv(pp->c, argc, argv, lens) != REDIS_OK) {
		snprintf(err, errlen, "redis: %s %s: %s", argv[0], argv[1],
			 pp->c->errstr[0] ? pp->c->errstr : "cannot queue");
		return -1;
	}
	pp->pending++;
	if (pp->what == NULL || strcmp(pp->what, argv[1]) != 0) {
		free(pp->what);
		pp->what = xstrdup(argv[1]);
	}
	if (pp->pending >= RUN_PIPELINE) {
		size_t n = pp->pending;

		pp->pending = 0;
		return run_read_replies(pp->c, n, pp->what, err, errlen);
	}
	return 0;
}

static int run_pipe_flush(struct run_pipe *pp, char *err, size_t errlen)
{
	size_t n = pp->pending;

	pp->pending = 0;
	if (n == 0)
		return 0;
	return run_read_replies(pp->c, n, pp->what ? pp->what : "redis", err,
				errlen);
}

/* Queues the tasks: first those that wait in their phase's list
 * (RPUSH "<queue>\n<task>"), then those that start now (XADD), so that
 * no phase can end before the next one's tasks are in place; the
 * estimates go along. */
static int run_enqueue(redisContext *c, const struct run_spec *s,
		       const struct run_item *items, size_t nitems, char *err,
		       size_t errlen)
{
	char *estkey = run_key_estimates(s->prefix, s->id);
	struct run_est_batch est;
	struct run_pipe pp;
	size_t i, t;
	int pass, ret = -1, rc;

	memset(&est, 0, sizeof(est));
	memset(&pp, 0, sizeof(pp));
	pp.c = c;
	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < nitems; i++) {
			const struct run_item *it = &items[i];
			const struct run_batch *bt = &s->batches[it->batch];
			const struct shard_task *st =
			    &bt->plan->tasks[it->task];
			const char *argv[5];
			size_t lens[5];
			char tid[24];
			char *msg = NULL, *key, *member = NULL;
			size_t len = 0, qlen = strlen(bt->queue);

			if (it->now != pass)
				continue;
			snprintf(tid, sizeof(tid), "t%05zu", i + 1);
			run_encode_task(s, bt, st, tid, &msg, &len);
			if (it->now) {
				key = key_queue(s->prefix, bt->queue);
				argv[0] = "XADD";
				argv[2] = "*";
				argv[3] = "m";
				argv[4] = msg;
				lens[4] = len;
			} else {
				key = key_phase(s->prefix, s->id,
						(unsigned)it->phase);
				member = xmalloc(qlen + 1 + len);
				memcpy(member, bt->queue, qlen);
				member[qlen] = '\n';
				memcpy(member + qlen + 1, msg, len);
				argv[0] = "RPUSH";
				argv[2] = member;
				lens[2] = qlen + 1 + len;
			}
			argv[1] = key;
			lens[0] = strlen(argv[0]);
			lens[1] = strlen(key);
			if (it->now) {
				lens[2] = 1;
				lens[3] = 1;
			}
			rc = run_pipe_append(&pp, it->now ? 5 : 3, argv, lens,
					     err, errlen);
			free(member);
			free(msg);
			free(key);
			if (rc < 0)
				goto out;
			est.items[est.n++] = xstrdup(tid);
			est.items[est.n++] =
			    xasprintf("%.6f %zu", st->estimate_s, st->ntests);
			if (est.n == 2 * RUN_PIPELINE) {
				rc =
				    run_est_flush(c, estkey, &est, err, errlen);
				if (rc < 0)
					goto out;
				pp.pending += (size_t)rc;
			}
		}
	}
	rc = run_est_flush(c, estkey, &est, err, errlen);
	if (rc < 0)
		goto out;
	pp.pending += (size_t)rc;
	if (run_pipe_flush(&pp, err, errlen) < 0)
		goto out;
	ret = 0;
out:
	for (t = 0; t < est.n; t++)
		free(est.items[t]);
	free(pp.what);
	free(estkey);
	return ret;
}

/* Redis's clock (TIME), so phase deadlines do not depend on this
 * machine's. Returns 0 with *now set, or -1 with a message in err. */
static int run_redis_time(redisContext *c, double *now, char *err,
			  size_t errlen)
{
	const char *argv[1] = {"TIME"};
	redisReply *r = run_cmd(c, 1, argv, NULL, err, errlen);
	int ret = -1;

	if (r == NULL)
		return -1;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[0]->type != REDIS_REPLY_STRING ||
	    r->element[1]->type != REDIS_REPLY_STRING) {
		snprintf(err, errlen, "redis: TIME: unexpected reply");
		goto out;
	}
	*now = strtod(r->element[0]->str, NULL) +
	       strtod(r->element[1]->str, NULL) / 1e6;
	ret = 0;
out:
	freeReplyObject(r);
	return ret;
}

/* A growing HSET argument list whose strings it owns. */
struct run_hset {
	char **argv;
	size_t n, cap;
};

static void run_hset_add(struct run_hset *h, char *key, char *value)
{
	if (h->n + 2 > h->cap) {
		h->cap = h->cap ? h->cap * 2 : 64;
		h->argv = xreallocarray(h->argv, h->cap, sizeof(*h->argv));
	}
	h->argv[h->n++] = key;
	h->argv[h->n++] = value;
}

static void run_hset_release(struct run_hset *h)
{
	size_t i;

	for (i = 0; i < h->n; i++)
		free(h->argv[i]);
	free(h->argv);
	memset(h, 0, sizeof(*h));
}

/* The phase fields of the run hash (docs/protocol.md), its deadline
 * entry when the first phase has a timeout. Before any task is queued. */
static int run_write_phases(redisContext *c, const struct run_spec *s,
			    const struct run_phases *ph,
			    const struct run_item *items, size_t nitems,
			    size_t first, char *err, size_t errlen)
{
	char *runkey = key_run(s->prefix, s->id);
	struct run_hset h;
	const char **argv = NULL;
	size_t i, nnow = 0;
	double now = 0;
	redisReply *r;
	int ret = -1;

	memset(&h, 0, sizeof(h));
	for (i = 0; i < nitems; i++)
		nnow += items[i].now != 0;
	if (run_redis_time(c, &now, err, errlen) < 0)
		goto out;
	run_hset_add(&h, xstrdup("phase_count"), xasprintf("%zu", ph->n));
	run_hset_add(&h, xstrdup("phase_cur"),
		     xasprintf("%zu", first < ph->n ? first : 0));
	run_hset_add(&h, xstrdup("tasks_planned"), xasprintf("%zu", nitems));
	for (i = 0; i < ph->n; i++) {
		const struct run_phase_decl *d = &ph->v[i];
		const char *st = i == first  ? "running"
				 : i < first ? "skipped"
					     : "pending";

		run_hset_add(&h, xasprintf("phidx:%s", d->name),
			     xasprintf("%zu", i));
#define PH(f, ...)                                                             \
	run_hset_add(&h, xasprintf("ph:%zu:" f, i), xasprintf(__VA_ARGS__))
		PH("name", "%s", d->name);
		PH("required", "%d", d->required ? 1 : 0);
		PH("parallel", "%d", d->sequential ? 0 : 1);
		PH("timeout", "%u", d->timeout_s);
		PH("planned", "%zu", ph->planned[i]);
		PH("tasks", "%zu", i == first ? nnow : 0);
		PH("done", "0");
		PH("bad", "0");
		PH("status", "%s", st);
		if (i == first) {
			PH("started_at", "%.3f", now);
			if (d->timeout_s > 0)
				PH("deadline", "%.3f", now + d->timeout_s);
		}
#undef PH
	}
	argv = xcalloc(h.n + 2, sizeof(*argv));
	argv[0] = "HSET";
	argv[1] = runkey;
	for (i = 0; i < h.n; i++)
		argv[i + 2] = h.argv[i];
	r = run_cmd(c, (int)h.n + 2, argv, NULL, err, errlen);
	if (r == NULL)
		goto out;
	freeReplyObject(r);
	if (first < ph->n && ph->v[first].timeout_s > 0) {
		char *dl = key_phase_deadlines(s->prefix);
		char score[40];

		snprintf(score, sizeof(score), "%.0f",
			 (now + ph->v[first].timeout_s) * 1000);
		argv[0] = "ZADD";
		argv[1] = dl;
		argv[2] = score;
		argv[3] = s->id;
		r = run_cmd(c, 4, argv, NULL, err, errlen);
		free(dl);
		if (r == NULL)
			goto out;
		freeReplyObject(r);
	}
	ret = 0;
out:
	free(argv);
	run_hset_release(&h);
	free(runkey);
	return ret;
}

int run_create(redisContext *c, const struct run_spec *s, char *err,
	       size_t errlen)
{
	char *runkey = key_run(s->prefix, s->id);
	char *runs = key_runs(s->prefix);
	char *queues = run_queues(s);
	char *phases = NULL;
	char *suites = run_suites_field(s);
	char created[32], tasks[24], tests[24], tmo[24], run_tmo[24];
	char slots[24], estimate[32], eta[32], startup[32];
	char *policy[POLICY_NFIELDS];
	struct policy defaults;
	struct run_phases ph;
	struct run_item *items = NULL;
	const char *argv[64];
	struct timespec ts;
	size_t ntests = 0, nitems = 0, nnow = 0, first = 0, i;
	double total_est = 0;
	redisReply *r;
	int argc = 0, ret = -1;

	policy_init(&defaults);
	policy_fields(s->policy != NULL ? s->policy : &defaults, policy);
	policy_release(&defaults);
	run_phases_build(s, &ph);
	phases = run_phases_field(&ph);
	items = run_items(s, &ph, &nitems, &first);
	for (i = 0; i < nitems; i++)
		nnow += items[i].now != 0;

	for (i = 0; i < s->nbatches; i++) {
		for (size_t t = 0; t < s->batches[i].plan->ntasks; t++) {
			ntests += s->batches[i].plan->tasks[t].ntests;
			total_est += s->batches[i].plan->tasks[t].estimate_s;
		}
	}
	/* Every queue of every phase: a later phase's tasks are queued by
	 * the complete script, which cannot create groups for them. */
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
	snprintf(tasks, sizeof(tasks), "%zu", nnow);
	snprintf(tests, sizeof(tests), "%zu", ntests);
	snprintf(tmo, sizeof(tmo), "%u", s->timeout_s);
	snprintf(run_tmo, sizeof(run_tmo), "%u", s->run_timeout_s);
	snprintf(slots, sizeof(slots), "%u", s->slots ? s->slots : 1);
	snprintf(estimate, sizeof(estimate), "%.3f", total_est);
	snprintf(eta, sizeof(eta), "%.3f", s->eta_s);
	snprintf(startup, sizeof(startup), "%.3f", s->startup_s);
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
	RUN_FIELD("startup_s", startup);
	if (s->history != NULL && s->history[0] != '\0')
		RUN_FIELD(HISTORY_RUN_FIELD, s->history);
#undef RUN_FIELD
	/* The hash (with tasks_total and the phases) exists before the
	 * first task can complete, so the completion script always sees
	 * them. */
	r = run_cmd(c, argc, argv, NULL, err, errlen);
	if (r == NULL)
		goto out;
	freeReplyObject(r);
	if (run_write_phases(c, s, &ph, items, nitems, first, err, errlen) < 0)
		goto out;
	argv[0] = "ZADD";
	argv[1] = runs;
	argv[2] = created;
	argv[3] = s->id;
	r = run_cmd(c, 4, argv, NULL, err, errlen);
	if (r == NULL)
		goto out;
	freeReplyObject(r);
	if (run_enqueue(c, s, items, nitems, err, errlen) < 0)
		goto out;
	ret = 0;
out:
	for (i = 0; i < POLICY_NFIELDS; i++)
		free(policy[i]);
	free(items);
	run_phases_release(&ph);
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
			 redisconn_why(c, NULL));
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
			memset(&v[cnt], 0, sizeof(v[cnt]));
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
	unsigned n = run_uint(run_info_get(ri, "phase_count"));
	size_t i;

	for (i = 0; i < ri->nphases; i++)
		aggregator_phase(a, ri->phases[i].name, ri->phases[i].required);
	/* The plan's task count of each phase; a phase that ran out of
	 * time says so only in the hash. */
	for (i = 0; i < n && i < RUN_MAX_PHASES; i++) {
		char field[48];
		const char *name, *status, *planned;

		snprintf(field, sizeof(field), "ph:%zu:name", i);
		name = run_info_get(ri, field);
		snprintf(field, sizeof(field), "ph:%zu:planned", i);
		planned = run_info_get(ri, field);
		if (name != NULL && planned != NULL)
			aggregator_phase_planned(a, name, run_uint(planned));
		snprintf(field, sizeof(field), "ph:%zu:status", i);
		status = run_info_get(ri, field);
		if (status == NULL || strcmp(status, "timeout") != 0)
			continue;
		snprintf(field, sizeof(field), "ph:%zu:timeout", i);
		if (name != NULL)
			aggregator_phase_timeout(
			    a, name, run_uint(run_info_get(ri, field)));
	}
	/* 0 is a count too: a run whose only phase timed out before any
	 * task landed expects none. */
	if (ri->tasks_total > 0 || run_info_get(ri, "phase_count") != NULL)
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
#define RUN_NKEYS 6
static void run_keys(const char *prefix, const char *run, char *keys[RUN_NKEYS])
{
	keys[0] = key_run(prefix, run);
	keys[1] = key_results(prefix, run);
	keys[2] = key_done(prefix, run);
	keys[3] = run_key_estimates(prefix, run);
	keys[4] = key_plan(prefix, run);
	keys[5] = key_artifacts(prefix, run);
}

/* The number of phases of a run, from its hash (0 when it has none or
 * on any error: the phase lists are then simply not touched). */
static unsigned run_phase_count(redisContext *c, const char *prefix,
				const char *run)
{
	char *key = key_run(prefix, run);
	const char *argv[3] = {"HGET", key, "phase_count"};
	redisReply *r = redisCommandArgv(c, 3, argv, NULL);
	unsigned n = 0;

	if (r != NULL && r->type == REDIS_REPLY_STRING)
		n = run_uint(r->str);
	if (r != NULL)
		freeReplyObject(r);
	free(key);
	return n < RUN_MAX_PHASES ? n : RUN_MAX_PHASES;
}

int run_expire(redisContext *c, const char *prefix, const char *run,
	       long long ttl_s, char *err, size_t errlen)
{
	char *keys[RUN_NKEYS];
	char ttl[32];
	unsigned nph = run_phase_count(c, prefix, run);
	size_t i, appended = 0;
	int ret = -1;

	run_keys(prefix, run, keys);
	snprintf(ttl, sizeof(ttl), "%lld", ttl_s);
	for (i = 0; i < RUN_NKEYS + nph; i++) {
		char *phkey =
		    i >= RUN_NKEYS
			? key_phase(prefix, run, (unsigned)(i - RUN_NKEYS))
			: NULL;
		const char *key = phkey != NULL ? phkey : keys[i];
		const char *argv[3] = {"EXPIRE", key, ttl};
		int rc = redisAppendCommandArgv(c, 3, argv, NULL);

		if (rc != REDIS_OK)
			snprintf(err, errlen, "redis: EXPIRE %s: %s", key,
				 c->errstr[0] ? c->errstr : "cannot send");
		free(phkey);
		if (rc != REDIS_OK)
			break;
		appended++;
	}
	if (run_read_replies(c, appended, keys[0], err, errlen) == 0 &&
	    appended == RUN_NKEYS + nph)
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
	unsigned nph = run_phase_count(c, prefix, run), p;
	redisReply *r;
	size_t i;
	int ret = -1;

	run_keys(prefix, run, keys);
	/* The phases' waiting tasks first: their count is in the hash. */
	for (p = 0; p < nph; p++) {
		char *phkey = key_phase(prefix, run, p);

		argv[0] = "UNLINK";
		argv[1] = phkey;
		r = run_cmd(c, 2, argv, NULL, err, errlen);
		free(phkey);
		if (r == NULL)
			goto out;
		freeReplyObject(r);
	}
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
