/* queues.c -- live workers per queue (see queues.h). */
#include "queues.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keys.h"
#include "redisconn.h"
#include "xmalloc.h"

#define QUEUES_LOOK_MS 5000

int queues_serves(const char *value, size_t len, const char *queue,
		  double *beat)
{
	char num[32];
	const char *sp = memchr(value, ' ', len);
	const char *p, *end = value + len;
	size_t n = sp != NULL ? (size_t)(sp - value) : len;
	size_t qlen = strlen(queue);
	char *stop;

	*beat = 0;
	if (n == 0 || n >= sizeof(num))
		return 0;
	memcpy(num, value, n);
	num[n] = '\0';
	*beat = strtod(num, &stop);
	if (*stop != '\0')
		*beat = 0;
	if (sp == NULL || sp + 1 == end)
		return 1; /* an older worker: no queues recorded */
	for (p = sp + 1; p < end;) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		size_t l =
		    comma != NULL ? (size_t)(comma - p) : (size_t)(end - p);

		if (l == qlen && memcmp(p, queue, l) == 0)
			return 1;
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	return 0;
}

int queues_live(redisContext *c, const char *prefix, char *const *queues,
		size_t n, double now, int *live, char *err, size_t errlen)
{
	char *key = key_workers(prefix);
	const char *argv[2] = {"HGETALL", key};
	redisReply *r = redisCommandArgv(c, 2, argv, NULL);
	size_t i, k;
	int ret = -1;

	for (k = 0; k < n; k++)
		live[k] = 0;
	if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
		snprintf(err, errlen, "redis: HGETALL %s: %s", key,
			 redisconn_why(c, r));
		goto out;
	}
	for (i = 0; i + 1 < r->elements; i += 2) {
		const redisReply *v = r->element[i + 1];
		double beat;

		if (v->type != REDIS_REPLY_STRING)
			continue;
		for (k = 0; k < n; k++) {
			if (queues_serves(v->str, v->len, queues[k], &beat) &&
			    now - beat < QUEUES_LIVE_S)
				live[k] = 1;
		}
	}
	ret = 0;
out:
	if (r != NULL)
		freeReplyObject(r);
	free(key);
	return ret;
}

int queues_capacity(redisContext *c, const char *prefix, const char *queue,
		    double now, unsigned *slots, unsigned *gate, char *err,
		    size_t errlen)
{
	char *key = key_workers(prefix), *caps = key_worker_caps(prefix);
	const char *argv[2] = {"HGETALL", key};
	redisReply *r = NULL, *cr = NULL;
	size_t i;
	int ret = -1;

	*slots = *gate = 0;
	r = redisCommandArgv(c, 2, argv, NULL);
	if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
		snprintf(err, errlen, "redis: HGETALL %s: %s", key,
			 redisconn_why(c, r));
		goto out;
	}
	argv[1] = caps;
	cr = redisCommandArgv(c, 2, argv, NULL);
	if (cr == NULL || cr->type != REDIS_REPLY_ARRAY) {
		snprintf(err, errlen, "redis: HGETALL %s: %s", caps,
			 redisconn_why(c, cr));
		goto out;
	}
	for (i = 0; i + 1 < cr->elements; i += 2) {
		const redisReply *name = cr->element[i];
		const redisReply *v = cr->element[i + 1];
		unsigned s, g;
		double beat;
		size_t j;
		int live = 0;
		char buf[64];

		if (name->type != REDIS_REPLY_STRING ||
		    v->type != REDIS_REPLY_STRING || v->len >= sizeof(buf))
			continue;
		for (j = 0; j + 1 < r->elements && !live; j += 2) {
			const redisReply *n = r->element[j];
			const redisReply *hb = r->element[j + 1];

			live = n->type == REDIS_REPLY_STRING &&
			       hb->type == REDIS_REPLY_STRING &&
			       n->len == name->len &&
			       memcmp(n->str, name->str, n->len) == 0 &&
			       queues_serves(hb->str, hb->len, queue, &beat) &&
			       now - beat < QUEUES_LIVE_S;
		}
		memcpy(buf, v->str, v->len);
		buf[v->len] = '\0';
		if (!live || sscanf(buf, "%u %u", &s, &g) != 2 || s == 0 ||
		    s > 1000000)
			continue;
		*slots += s;
		*gate += g > 0 && g < s ? g : s;
	}
	ret = 0;
out:
	if (r != NULL)
		freeReplyObject(r);
	if (cr != NULL)
		freeReplyObject(cr);
	free(caps);
	free(key);
	return ret;
}

char **queues_split(const char *field, size_t *n)
{
	char **v = xcalloc(QUEUES_MAX + 1, sizeof(*v));
	const char *p = field != NULL ? field : "";

	*n = 0;
	while (*p != '\0' && *n < QUEUES_MAX) {
		size_t l = strcspn(p, ",");

		if (l > 0)
			v[(*n)++] = xstrndup(p, l);
		p += l;
		if (*p == ',')
			p++;
	}
	return v;
}

void queues_free(char **q, size_t n)
{
	size_t i;

	for (i = 0; q != NULL && i < n; i++)
		free(q[i]);
	free(q);
}

struct queue_watch {
	redisContext **c;
	char *prefix;
	char **queues;
	size_t n;
	double *since; /* unix time tasks were first seen waiting, 0 */
	int *warned;
	int *live;
	long long last_look; /* monotonic ms */
	void (*warn)(void *arg, const char *queue, double waited_s);
	void *arg;
};

static long long queues_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double queues_unix_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct queue_watch *
queue_watch_new(redisContext **c, const char *prefix, const char *queues_field,
		void (*warn)(void *arg, const char *queue, double waited_s),
		void *arg)
{
	struct queue_watch *w = xcalloc(1, sizeof(*w));

	w->c = c;
	w->prefix = xstrdup(prefix);
	w->queues = queues_split(queues_field, &w->n);
	w->since = xcalloc(w->n + 1, sizeof(*w->since));
	w->warned = xcalloc(w->n + 1, sizeof(*w->warned));
	w->live = xcalloc(w->n + 1, sizeof(*w->live));
	w->warn = warn;
	w->arg = arg;
	w->last_look = queues_now_ms();
	return w;
}

/* XLEN of queue k: entries queued and not yet done; -1 on error. */
static long long queues_waiting(struct queue_watch *w, size_t k)
{
	char *key = key_queue(w->prefix, w->queues[k]);
	const char *argv[2] = {"XLEN", key};
	redisReply *r = redisCommandArgv(*w->c, 2, argv, NULL);
	long long n = -1;

	if (r != NULL && r->type == REDIS_REPLY_INTEGER)
		n = r->integer;
	if (r != NULL)
		freeReplyObject(r);
	free(key);
	return n;
}

int queue_watch_check(void *arg, char *err, size_t errlen)
{
	struct queue_watch *w = arg;
	long long now_ms = queues_now_ms();
	double now;
	size_t k;
	int all_warned = 1;

	(void)err;
	(void)errlen;
	for (k = 0; k < w->n; k++)
		all_warned &= w->warned[k];
	if (w->n == 0 || all_warned || now_ms - w->last_look < QUEUES_LOOK_MS)
		return 0;
	w->last_look = now_ms;
	if (*w->c == NULL || (*w->c)->err != 0)
		return 0;
	now = queues_unix_now();
	if (queues_live(*w->c, w->prefix, w->queues, w->n, now, w->live, err,
			errlen) < 0)
		return 0;
	for (k = 0; k < w->n; k++) {
		long long waiting;

		if (w->warned[k] || w->live[k]) {
			w->since[k] = 0;
			continue;
		}
		waiting = queues_waiting(w, k);
		if (waiting <= 0) {
			w->since[k] = 0;
			continue;
		}
		if (w->since[k] == 0)
			w->since[k] = now;
		if (now - w->since[k] >= QUEUES_STUCK_S) {
			w->warned[k] = 1;
			if (w->warn != NULL)
				w->warn(w->arg, w->queues[k],
					now - w->since[k]);
		}
	}
	return 0;
}

void queue_watch_free(struct queue_watch *w)
{
	if (w == NULL)
		return;
	free(w->prefix);
	queues_free(w->queues, w->n);
	free(w->since);
	free(w->warned);
	free(w->live);
	free(w);
}
