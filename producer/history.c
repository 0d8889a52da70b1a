/* history.c -- per-suite duration history in Redis (see history.h). */
#include "history.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "keys.h"
#include "sha1.h"
#include "redisconn.h"
#include "xmalloc.h"

/* Batches sent before their replies are read: hides the round trips,
 * bounds hiredis's buffers (16 x 1000 ids). */
#define HISTORY_WINDOW 16
#define HISTORY_SCAN_COUNT "1000"
#define HISTORY_MAX_VALUE 64  /* longest stored value accepted */
#define HISTORY_MAX_CURSOR 24 /* an HSCAN cursor is a 64-bit number */
#define HISTORY_MAX_SUITES 4096
#define HISTORY_MAX_STARTUP 128 /* longest start-up value accepted */
#define HISTORY_FLOOR_PCT 10	/* the floor: this percentile of overheads */
#define HISTORY_MIN_OVERHEAD_S 1e-3 /* shorter: no weight in concurrency */

void history_fingerprint(const char *runner, const char *rootdir,
			 const char *suite, char out[HISTORY_FP_LEN + 1])
{
	struct sha1 s;
	unsigned char d[SHA1_DIGEST_LEN];
	static const char hex[] = "0123456789abcdef";
	size_t i;

	sha1_init(&s);
	sha1_update(&s, runner, strlen(runner) + 1);
	sha1_update(&s, rootdir, strlen(rootdir) + 1);
	sha1_update(&s, suite, strlen(suite));
	sha1_final(&s, d);
	for (i = 0; i < HISTORY_FP_LEN / 2; i++) {
		out[2 * i] = hex[d[i] >> 4];
		out[2 * i + 1] = hex[d[i] & 15];
	}
	out[HISTORY_FP_LEN] = '\0';
}

char *history_key(const char *prefix, const char *suite, const char *fp)
{
	char *base = key_durations(prefix, suite);
	char *key = xasprintf("%s:%s", base, fp);

	free(base);
	return key;
}

int history_value_parse(const char *s, size_t len, double *dur_s,
			long long *seen)
{
	char tmp[HISTORY_MAX_VALUE + 1];
	char *colon, *end;
	double d;
	long long t;

	if (s == NULL || len == 0 || len > HISTORY_MAX_VALUE ||
	    memchr(s, '\0', len) != NULL)
		return -1;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	colon = strchr(tmp, ':');
	if (colon == NULL || colon == tmp || colon[1] == '\0')
		return -1;
	*colon = '\0';
	errno = 0;
	d = strtod(tmp, &end);
	if (*end != '\0' || errno != 0 || !isfinite(d) || d < 0)
		return -1;
	errno = 0;
	t = strtoll(colon + 1, &end, 10);
	if (*end != '\0' || errno != 0 || t < 0)
		return -1;
	*dur_s = d;
	*seen = t;
	return 0;
}

void history_value_format(double dur_s, long long seen, char *out,
			  size_t outlen)
{
	snprintf(out, outlen, "%.6g:%lld", dur_s, seen);
}

double history_smooth(double old, double sample, double alpha)
{
	if (!(old >= 0) || !isfinite(old))
		return sample;
	return alpha * sample + (1 - alpha) * old;
}

void history_limits_default(struct history_limits *l)
{
	l->alpha = HISTORY_ALPHA;
	l->max_entries = HISTORY_MAX_ENTRIES;
	l->retention_s = HISTORY_RETENTION_S;
	l->sweep_steps = HISTORY_SWEEP_STEPS;
}

/* "redis: CMD KEY: why" from a failed call (reply NULL) or an error
 * reply. */
static void history_fail(redisContext *c, const redisReply *r, const char *cmd,
			 const char *key, char *err, size_t errlen)
{
	const char *why = redisconn_why(c, r);

	snprintf(err, errlen, "redis: %s %s: %s", cmd, key, why);
}

/* Runs one command; NULL with err on a connection error or error reply. */
static redisReply *history_cmd(redisContext *c, int argc, const char **argv,
			       const size_t *lens, char *err, size_t errlen)
{
	redisReply *r = redisCommandArgv(c, argc, argv, lens);

	if (r == NULL || r->type == REDIS_REPLY_ERROR) {
		history_fail(c, r, argv[0], argc > 1 ? argv[1] : "", err,
			     errlen);
		if (r != NULL)
			freeReplyObject(r);
		return NULL;
	}
	return r;
}

int history_set_expiring(redisContext *c, const char *key, const char *v,
			 size_t len, long long ttl_s, char *err, size_t errlen)
{
	const char *argv[5];
	size_t lens[5];
	char ttl[32];
	redisReply *r;

	snprintf(ttl, sizeof(ttl), "%lld", ttl_s);
	argv[0] = "SET";
	argv[1] = key;
	argv[2] = v;
	argv[3] = "EX";
	argv[4] = ttl;
	lens[0] = 3;
	lens[1] = strlen(key);
	lens[2] = len;
	lens[3] = 2;
	lens[4] = strlen(ttl);
	r = history_cmd(c, 5, argv, lens, err, errlen);
	if (r == NULL)
		return -1;
	freeReplyObject(r);
	return 0;
}

/* Appends "<cmd> <key> <items[from..to)>" to the pipeline. */
static int history_append(redisContext *c, const char *cmd, const char *key,
			  char *const *items, size_t from, size_t to)
{
	size_t argc = to - from + 2, i;
	const char **argv = xcalloc(argc, sizeof(*argv));
	size_t *lens = xcalloc(argc, sizeof(*lens));
	int rc;

	argv[0] = cmd;
	argv[1] = key;
	for (i = from; i < to; i++)
		argv[i - from + 2] = items[i];
	for (i = 0; i < argc; i++)
		lens[i] = strlen(argv[i]);
	rc = redisAppendCommandArgv(c, (int)argc, argv, lens);
	free(lens);
	free(argv);
	return rc == REDIS_OK ? 0 : -1;
}

long history_load(redisContext *c, const char *key, char *const *ids, size_t n,
		  double *est, char *err, size_t errlen)
{
	size_t nb = (n + HISTORY_BATCH - 1) / HISTORY_BATCH;
	size_t sent = 0, got = 0, i;
	long known = 0;
	int failed = 0;

	for (i = 0; i < n; i++)
		est[i] = -1;
	while (got < nb) {
		redisReply *r = NULL;
		size_t base, k;

		/* Keep up to HISTORY_WINDOW batches in flight. */
		while (sent < nb && sent - got < HISTORY_WINDOW) {
			size_t from = sent * HISTORY_BATCH;
			size_t to =
			    from + HISTORY_BATCH < n ? from + HISTORY_BATCH : n;

			if (history_append(c, "HMGET", key, ids, from, to) <
			    0) {
				history_fail(c, NULL, "HMGET", key, err,
					     errlen);
				goto fail;
			}
			sent++;
		}
		if (redisGetReply(c, (void **)&r) != REDIS_OK || r == NULL) {
			history_fail(c, NULL, "HMGET", key, err, errlen);
			goto fail;
		}
		base = got * HISTORY_BATCH;
		got++;
		if (r->type != REDIS_REPLY_ARRAY ||
		    r->elements !=
			(base + HISTORY_BATCH < n ? HISTORY_BATCH : n - base)) {
			/* Read the rest so the connection stays in step. */
			if (!failed)
				history_fail(c, r, "HMGET", key, err, errlen);
			failed = 1;
			freeReplyObject(r);
			continue;
		}
		for (k = 0; k < r->elements; k++) {
			const redisReply *v = r->element[k];
			long long seen;
			double d;

			if (v->type == REDIS_REPLY_STRING &&
			    history_value_parse(v->str, v->len, &d, &seen) ==
				0) {
				est[base + k] = d;
				known++;
			}
		}
		freeReplyObject(r);
	}
	if (!failed)
		return known;
fail:
	for (i = 0; i < n; i++)
		est[i] = -1;
	return -1;
}

/* Reads the replies of n pipelined commands; the first error wins but all
 * are read. */
static int history_drain(redisContext *c, size_t n, const char *cmd,
			 const char *key, char *err, size_t errlen)
{
	int ret = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		redisReply *r = NULL;

		if (redisGetReply(c, (void **)&r) != REDIS_OK || r == NULL) {
			history_fail(c, NULL, cmd, key, err, errlen);
			return -1;
		}
		if (r->type == REDIS_REPLY_ERROR && ret == 0) {
			history_fail(c, r, cmd, key, err, errlen);
			ret = -1;
		}
		freeReplyObject(r);
	}
	return ret;
}

/* HDELs fields[0..n) in batches. */
static int history_delete(redisContext *c, const char *key, char *const *fields,
			  size_t n, char *err, size_t errlen)
{
	size_t from, pending = 0;

	for (from = 0; from < n; from += HISTORY_BATCH) {
		size_t to = from + HISTORY_BATCH < n ? from + HISTORY_BATCH : n;

		if (history_append(c, "HDEL", key, fields, from, to) < 0) {
			history_fail(c, NULL, "HDEL", key, err, errlen);
			return -1;
		}
		if (++pending == HISTORY_WINDOW) {
			if (history_drain(c, pending, "HDEL", key, err,
					  errlen) < 0)
				return -1;
			pending = 0;
		}
	}
	return history_drain(c, pending, "HDEL", key, err, errlen);
}

/* A growing list of owned strings. */
struct history_list {
	char **v;
	size_t n;
	size_t cap;
};

static void history_list_add(struct history_list *l, const char *s, size_t len)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->v = xreallocarray(l->v, l->cap, sizeof(*l->v));
	}
	l->v[l->n++] = xstrndup(s, len);
}

static void history_list_release(struct history_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* One HSCAN call: [cursor, [field, value, ...]] checked. Returns the
 * reply, or NULL with err. */
static redisReply *history_hscan(redisContext *c, const char *key,
				 const char *cursor, char *err, size_t errlen)
{
	const char *argv[5] = {"HSCAN", key, cursor, "COUNT",
			       HISTORY_SCAN_COUNT};
	redisReply *r = history_cmd(c, 5, argv, NULL, err, errlen);

	if (r == NULL)
		return NULL;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[0]->type != REDIS_REPLY_STRING ||
	    r->element[0]->len == 0 ||
	    r->element[0]->len > HISTORY_MAX_CURSOR ||
	    r->element[1]->type != REDIS_REPLY_ARRAY ||
	    r->element[1]->elements % 2 != 0) {
		history_fail(c, r, "HSCAN", key, err, errlen);
		freeReplyObject(r);
		return NULL;
	}
	return r;
}

/* The next slice of the sweep: entries last seen before cutoff, or
 * unreadable, are deleted. The cursor lives in <key>:sweep. */
static int history_sweep(redisContext *c, const char *key, long long now,
			 const struct history_limits *lim, char *err,
			 size_t errlen)
{
	char *ckey = xasprintf("%s:sweep", key);
	char cursor[HISTORY_MAX_CURSOR + 1] = "0";
	struct history_list stale = {0};
	const char *argv[5];
	redisReply *r;
	unsigned step;
	int ret = -1;

	argv[0] = "GET";
	argv[1] = ckey;
	r = history_cmd(c, 2, argv, NULL, err, errlen);
	if (r == NULL)
		goto out;
	if (r->type == REDIS_REPLY_STRING && r->len > 0 &&
	    r->len <= HISTORY_MAX_CURSOR &&
	    strspn(r->str, "0123456789") == r->len)
		snprintf(cursor, sizeof(cursor), "%s", r->str);
	freeReplyObject(r);
	for (step = 0; step < lim->sweep_steps; step++) {
		redisReply *items;
		size_t k;

		r = history_hscan(c, key, cursor, err, errlen);
		if (r == NULL)
			goto out;
		items = r->element[1];
		for (k = 0; k + 1 < items->elements; k += 2) {
			const redisReply *f = items->element[k];
			const redisReply *v = items->element[k + 1];
			long long seen;
			double d;

			if (f->type != REDIS_REPLY_STRING)
				continue;
			if (v->type != REDIS_REPLY_STRING ||
			    history_value_parse(v->str, v->len, &d, &seen) <
				0 ||
			    seen < now - lim->retention_s)
				history_list_add(&stale, f->str, f->len);
		}
		snprintf(cursor, sizeof(cursor), "%.*s",
			 (int)r->element[0]->len, r->element[0]->str);
		freeReplyObject(r);
		if (strcmp(cursor, "0") == 0)
			break;
	}
	if (stale.n > 0 &&
	    history_delete(c, key, stale.v, stale.n, err, errlen) < 0)
		goto out;
	if (history_set_expiring(c, ckey, cursor, strlen(cursor),
				 lim->retention_s, err, errlen) < 0)
		goto out;
	ret = 0;
out:
	history_list_release(&stale);
	free(ckey);
	return ret;
}

struct history_aged {
	long long seen;
	char *field;
};

static int history_cmp_aged(const void *a, const void *b)
{
	const struct history_aged *x = a, *y = b;

	if (x->seen != y->seen)
		return x->seen < y->seen ? -1 : 1;
	return strcmp(x->field, y->field);
}

/* When the hash holds more than max entries: deletes the least recently
 * seen (unreadable values count as oldest), ties by field. */
static int history_cap(redisContext *c, const char *key,
		       const struct history_limits *lim, char *err,
		       size_t errlen)
{
	const char *argv[2] = {"HLEN", key};
	char cursor[HISTORY_MAX_CURSOR + 1] = "0";
	struct history_aged *all = NULL;
	struct history_list doomed = {0};
	size_t n = 0, cap = 0, i, excess, uniq;
	redisReply *r;
	int ret = -1;

	r = history_cmd(c, 2, argv, NULL, err, errlen);
	if (r == NULL)
		return -1;
	if (r->type != REDIS_REPLY_INTEGER || r->integer < 0 ||
	    (unsigned long long)r->integer <= lim->max_entries) {
		freeReplyObject(r);
		return 0;
	}
	freeReplyObject(r);
	/* The whole hash, once: it holds at most max_entries plus one run's
	 * tests, since every record ends here. */
	do {
		redisReply *items;
		size_t k;

		r = history_hscan(c, key, cursor, err, errlen);
		if (r == NULL)
			goto out;
		items = r->element[1];
		for (k = 0; k + 1 < items->elements; k += 2) {
			const redisReply *f = items->element[k];
			const redisReply *v = items->element[k + 1];
			long long seen = -1;
			double d;

			if (f->type != REDIS_REPLY_STRING)
				continue;
			if (v->type != REDIS_REPLY_STRING ||
			    history_value_parse(v->str, v->len, &d, &seen) < 0)
				seen = -1;
			if (n == cap) {
				cap = cap ? cap * 2 : 1024;
				all = xreallocarray(all, cap, sizeof(*all));
			}
			all[n].seen = seen;
			all[n].field = xstrndup(f->str, f->len);
			n++;
		}
		snprintf(cursor, sizeof(cursor), "%.*s",
			 (int)r->element[0]->len, r->element[0]->str);
		freeReplyObject(r);
	} while (strcmp(cursor, "0") != 0);
	qsort(all, n, sizeof(*all), history_cmp_aged);
	/* HSCAN may return a field twice (while the hash is rehashed). */
	for (i = 0, uniq = 0; i < n; i++)
		uniq += i == 0 || strcmp(all[i].field, all[i - 1].field) != 0 ||
			all[i].seen != all[i - 1].seen;
	excess = uniq > lim->max_entries ? uniq - lim->max_entries : 0;
	for (i = 0; i < n && doomed.n < excess; i++)
		if (i == 0 || strcmp(all[i].field, all[i - 1].field) != 0 ||
		    all[i].seen != all[i - 1].seen)
			history_list_add(&doomed, all[i].field,
					 strlen(all[i].field));
	if (doomed.n > 0 &&
	    history_delete(c, key, doomed.v, doomed.n, err, errlen) < 0)
		goto out;
	ret = 0;
out:
	for (i = 0; i < n; i++)
		free(all[i].field);
	free(all);
	history_list_release(&doomed);
	return ret;
}

int history_record(redisContext *c, const char *key,
		   const struct history_sample *s, size_t n, long long now,
		   const struct history_limits *lim, char *err, size_t errlen)
{
	struct history_limits defaults;
	char **ids = NULL, **items = NULL;
	double *old = NULL, *dur = NULL;
	size_t m = 0, i, from, pending = 0;
	const char *argv[3];
	char ttl[32];
	redisReply *r;
	int ret = -1;

	if (lim == NULL) {
		history_limits_default(&defaults);
		lim = &defaults;
	}
	ids = xcalloc(n ? n : 1, sizeof(*ids));
	dur = xcalloc(n ? n : 1, sizeof(*dur));
	for (i = 0; i < n; i++) {
		if (s[i].id == NULL || !isfinite(s[i].dur_s) || s[i].dur_s < 0)
			continue;
		ids[m] = (char *)s[i].id;
		dur[m] = s[i].dur_s;
		m++;
	}
	if (m > 0) {
		old = xcalloc(m, sizeof(*old));
		if (history_load(c, key, ids, m, old, err, errlen) < 0)
			goto out;
		/* Field, value, field, value, ... */
		items = xcalloc(2 * m, sizeof(*items));
		for (i = 0; i < m; i++) {
			char v[HISTORY_MAX_VALUE];

			history_value_format(
			    history_smooth(old[i], dur[i], lim->alpha), now, v,
			    sizeof(v));
			items[2 * i] = ids[i];
			items[2 * i + 1] = xstrdup(v);
		}
		for (from = 0; from < 2 * m; from += 2 * HISTORY_BATCH) {
			size_t to = from + 2 * HISTORY_BATCH < 2 * m
					? from + 2 * HISTORY_BATCH
					: 2 * m;

			if (history_append(c, "HSET", key, items, from, to) <
			    0) {
				history_fail(c, NULL, "HSET", key, err, errlen);
				goto out;
			}
			if (++pending == HISTORY_WINDOW) {
				if (history_drain(c, pending, "HSET", key, err,
						  errlen) < 0)
					goto out;
				pending = 0;
			}
		}
		if (history_drain(c, pending, "HSET", key, err, errlen) < 0)
			goto out;
		snprintf(ttl, sizeof(ttl), "%lld", lim->retention_s);
		argv[0] = "EXPIRE";
		argv[1] = key;
		argv[2] = ttl;
		r = history_cmd(c, 3, argv, NULL, err, errlen);
		if (r == NULL)
			goto out;
		freeReplyObject(r);
	}
	if (history_sweep(c, key, now, lim, err, errlen) < 0)
		goto out;
	if (history_cap(c, key, lim, err, errlen) < 0)
		goto out;
	ret = 0;
out:
	if (items != NULL)
		for (i = 0; i < m; i++)
			free(items[2 * i + 1]);
	free(items);
	free(old);
	free(dur);
	free(ids);
	return ret;
}

char *history_startup_key(const char *key)
{
	return xasprintf("%s:startup", key);
}

/* A number of a start-up value: finite, at least min, followed by ':';
 * *p moves past both. */
static int history_startup_num(char **p, double min, double *out)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(*p, &end);
	if (end == *p || errno != 0 || !isfinite(d) || d < min || *end != ':')
		return -1;
	*out = d;
	*p = end + 1;
	return 0;
}

int history_startup_parse(const char *s, size_t len, struct shard_startup *out,
			  long long *seen)
{
	char tmp[HISTORY_MAX_STARTUP + 1];
	double o, k, f;
	long long t;
	char *p = tmp, *end;

	if (s == NULL || len == 0 || len > HISTORY_MAX_STARTUP ||
	    memchr(s, '\0', len) != NULL)
		return -1;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	/* strtod would skip leading blanks and take "inf", "nan" or hex:
	 * only plain decimals are ours. */
	if (strspn(tmp, "0123456789.:e+-") != len)
		return -1;
	if (history_startup_num(&p, 0, &o) < 0 ||
	    history_startup_num(&p, 1, &k) < 0 ||
	    history_startup_num(&p, 0, &f) < 0)
		return -1;
	errno = 0;
	t = strtoll(p, &end, 10);
	if (end == p || *end != '\0' || errno != 0 || t < 0)
		return -1;
	out->learned = 1;
	out->overhead_s = o;
	out->concurrency = k;
	out->floor_s = f;
	*seen = t;
	return 0;
}

void history_startup_format(const struct shard_startup *s, long long seen,
			    char *out, size_t outlen)
{
	snprintf(out, outlen, "%.6g:%.6g:%.6g:%lld", s->overhead_s,
		 s->concurrency, s->floor_s, seen);
}

static int history_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* How many of the n sorted values v are <= x. */
static size_t history_count_le(const double *v, size_t n, double x)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v[mid] <= x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The integral from 0 to x of the number of intervals [s, e) open at each
 * instant: sum over s <= x of (x - s) less sum over e <= x of (x - e).
 * s and e sorted; ps and pe their prefix sums (n + 1 entries). */
static double history_area(const double *s, const double *ps, const double *e,
			   const double *pe, size_t n, double x)
{
	size_t cs = history_count_le(s, n, x), ce = history_count_le(e, n, x);

	return ((double)cs * x - ps[cs]) - ((double)ce * x - pe[ce]);
}

static int history_time_ok(const struct report_task_time *t)
{
	return t->suite != NULL && t->started_at > 0 &&
	       isfinite(t->started_at) && t->duration_s >= 0 &&
	       isfinite(t->duration_s) && t->tests_s >= 0 &&
	       isfinite(t->tests_s);
}

/* A task's overhead: its duration less its tests', at least 0. */
static double history_overhead(const struct report_task_time *t)
{
	double o = t->duration_s - t->tests_s;

	return o > 0 ? o : 0;
}

int history_startup_sample(const struct report_task_time *t, size_t n,
			   const char *suite, struct shard_startup *out)
{
	double *s = NULL, *e = NULL, *ps = NULL, *pe = NULL, *mine = NULL;
	double base = 0, sum = 0, ksum = 0;
	size_t m = 0, nk = 0, k = 0, rank, i;
	int ret = -1;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < n; i++) {
		if (!history_time_ok(&t[i]))
			continue;
		if (k == 0 || t[i].started_at < base)
			base = t[i].started_at;
		k++;
		if (strcmp(t[i].suite, suite) == 0)
			m++;
	}
	if (m == 0)
		goto out;
	/* Every valid task's start-up [start, start + overhead), times from
	 * the run's first start (small numbers keep their precision), sorted
	 * by start and by end, with prefix sums for history_area. */
	s = xcalloc(k, sizeof(*s));
	e = xcalloc(k, sizeof(*e));
	ps = xcalloc(k + 1, sizeof(*ps));
	pe = xcalloc(k + 1, sizeof(*pe));
	mine = xcalloc(m, sizeof(*mine));
	for (i = 0, k = 0; i < n; i++) {
		if (!history_time_ok(&t[i]))
			continue;
		s[k] = t[i].started_at - base;
		e[k] = s[k] + history_overhead(&t[i]);
		k++;
	}
	qsort(s, k, sizeof(*s), history_cmp_double);
	qsort(e, k, sizeof(*e), history_cmp_double);
	for (i = 0; i < k; i++) {
		ps[i + 1] = ps[i] + s[i];
		pe[i + 1] = pe[i] + e[i];
	}
	/* Each of suite's tasks: the start-ups open during its own,
	 * integrated over it and divided by its length. */
	for (i = 0, m = 0; i < n; i++) {
		double o, st, conc;

		if (!history_time_ok(&t[i]) || strcmp(t[i].suite, suite) != 0)
			continue;
		o = history_overhead(&t[i]);
		mine[m++] = o;
		sum += o;
		if (o < HISTORY_MIN_OVERHEAD_S)
			continue;
		st = t[i].started_at - base;
		conc = (history_area(s, ps, e, pe, k, st + o) -
			history_area(s, ps, e, pe, k, st)) /
		       o;
		ksum += conc > 1 ? conc : 1;
		nk++;
	}
	qsort(mine, m, sizeof(*mine), history_cmp_double);
	/* Nearest rank: the ceil(p * m / 100)-th smallest. */
	rank = (m * HISTORY_FLOOR_PCT + 99) / 100;
	out->learned = 1;
	out->overhead_s = sum / (double)m;
	out->floor_s = mine[rank > 0 ? rank - 1 : 0];
	out->concurrency = nk > 0 ? ksum / (double)nk : 1;
	ret = 0;
out:
	free(mine);
	free(pe);
	free(ps);
	free(e);
	free(s);
	return ret;
}

int history_startup_load(redisContext *c, const char *key,
			 struct shard_startup *out, char *err, size_t errlen)
{
	char *skey = history_startup_key(key);
	const char *argv[2] = {"GET", skey};
	struct shard_startup got = *out;
	redisReply *r;
	long long seen;
	int ret = -1;

	r = history_cmd(c, 2, argv, NULL, err, errlen);
	if (r == NULL)
		goto out;
	ret = 0;
	if (r->type == REDIS_REPLY_STRING &&
	    history_startup_parse(r->str, r->len, &got, &seen) == 0) {
		*out = got;
		ret = 1;
	}
	freeReplyObject(r);
out:
	free(skey);
	return ret;
}

int history_startup_record(redisContext *c, const char *key,
			   const struct shard_startup *sample, long long now,
			   const struct history_limits *lim, char *err,
			   size_t errlen)
{
	struct history_limits defaults;
	struct shard_startup old, next;
	char v[HISTORY_MAX_STARTUP];
	char *skey = history_startup_key(key);
	int ret = -1, have;

	if (lim == NULL) {
		history_limits_default(&defaults);
		lim = &defaults;
	}
	memset(&old, 0, sizeof(old));
	have = history_startup_load(c, key, &old, err, errlen);
	if (have < 0)
		goto out;
	next = *sample;
	next.learned = 1;
	if (have) {
		next.overhead_s = history_smooth(
		    old.overhead_s, sample->overhead_s, lim->alpha);
		next.concurrency = history_smooth(
		    old.concurrency, sample->concurrency, lim->alpha);
		next.floor_s =
		    history_smooth(old.floor_s, sample->floor_s, lim->alpha);
	}
	history_startup_format(&next, now, v, sizeof(v));
	if (history_set_expiring(c, skey, v, strlen(v), lim->retention_s, err,
				 errlen) < 0)
		goto out;
	ret = 0;
out:
	free(skey);
	return ret;
}

char *history_run_field(const char *runner, char *const *suites,
			char *const *rootdirs, size_t n)
{
	struct buf b;
	size_t i;

	buf_init(&b, 0);
	for (i = 0; i < n; i++) {
		char fp[HISTORY_FP_LEN + 1];

		history_fingerprint(runner, rootdirs[i], suites[i], fp);
		buf_printf(&b, "%s %s\n", fp, suites[i]);
	}
	return buf_detach(&b, NULL);
}

long history_record_run(redisContext *c, const char *prefix, const char *run,
			const char *field, const struct report *rep,
			long long now, char *err, size_t errlen)
{
	char *runkey = NULL;
	char stamp[32];
	const char *argv[4];
	struct history_sample *samples = NULL;
	const char *p;
	size_t nsuites = 0;
	redisReply *r;
	long total = 0;

	if (field == NULL || field[0] == '\0' || rep == NULL)
		return 0;
	runkey = key_run(prefix, run);
	snprintf(stamp, sizeof(stamp), "%lld", now);
	argv[0] = "HSETNX";
	argv[1] = runkey;
	argv[2] = HISTORY_SAVED_FIELD;
	argv[3] = stamp;
	r = history_cmd(c, 4, argv, NULL, err, errlen);
	if (r == NULL) {
		total = -1;
		goto out;
	}
	if (r->type != REDIS_REPLY_INTEGER || r->integer != 1) {
		/* Folded in already (or an odd reply: leave it alone). */
		freeReplyObject(r);
		goto out;
	}
	freeReplyObject(r);
	samples = xcalloc(rep->ntests ? rep->ntests : 1, sizeof(*samples));
	/* One line per suite: "<fp> <suite>". */
	for (p = field; *p != '\0' && nsuites < HISTORY_MAX_SUITES;) {
		size_t len = strcspn(p, "\n");
		const char *sp = memchr(p, ' ', len);
		char fp[HISTORY_FP_LEN + 1];
		struct shard_startup startup;
		char *suite, *key;
		size_t ns = 0, i;

		if (sp != NULL && sp - p == HISTORY_FP_LEN &&
		    strspn(p, "0123456789abcdef") >= HISTORY_FP_LEN &&
		    (size_t)(sp - p) + 1 < len) {
			memcpy(fp, p, HISTORY_FP_LEN);
			fp[HISTORY_FP_LEN] = '\0';
			suite = xstrndup(sp + 1, len - HISTORY_FP_LEN - 1);
			for (i = 0; i < rep->ntests; i++) {
				const struct report_test *t = &rep->tests[i];

				if (t->outcome == OUTCOME_ERROR ||
				    t->suite == NULL ||
				    strcmp(t->suite, suite) != 0)
					continue;
				samples[ns].id = t->id;
				samples[ns].dur_s = t->duration_s;
				ns++;
			}
			key = history_key(prefix, suite, fp);
			if (history_startup_sample(rep->times, rep->ntimes,
						   suite, &startup) < 0)
				startup.learned = 0;
			free(suite);
			if ((ns > 0 && history_record(c, key, samples, ns, now,
						      NULL, err, errlen) < 0) ||
			    (startup.learned &&
			     history_startup_record(c, key, &startup, now, NULL,
						    err, errlen) < 0)) {
				free(key);
				total = -1;
				goto out;
			}
			free(key);
			total += (long)ns;
			nsuites++;
		}
		p += len;
		if (*p == '\n')
			p++;
	}
out:
	free(samples);
	free(runkey);
	return total;
}
