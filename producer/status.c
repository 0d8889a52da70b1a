/* status.c -- the status command's two views (see status.h). */
#include "status.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keys.h"
#include "run.h"
#include "redisconn.h"
#include "xmalloc.h"

static double status_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* "42s", "5m", "3h", "2d". */
static void status_age(double seconds, char *out, size_t outlen)
{
	long s = seconds > 0 && isfinite(seconds) ? (long)seconds : 0;

	if (s < 60)
		snprintf(out, outlen, "%lds", s);
	else if (s < 3600)
		snprintf(out, outlen, "%ldm", s / 60);
	else if (s < 86400)
		snprintf(out, outlen, "%ldh", s / 3600);
	else
		snprintf(out, outlen, "%ldd", s / 86400);
}

/* "2026-11-21 05:42:10 UTC". */
static void status_time(double t, char *out, size_t outlen)
{
	time_t secs = (time_t)t;
	struct tm tm;

	if (t <= 0 || !isfinite(t)) {
		snprintf(out, outlen, "-");
		return;
	}
	gmtime_r(&secs, &tm);
	strftime(out, outlen, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

static const char *status_str(const redisReply *r, char *tmp, size_t tmplen)
{
	if (r == NULL || r->type != REDIS_REPLY_STRING)
		return "-";
	snprintf(tmp, tmplen, "%.*s", (int)r->len, r->str);
	return tmp;
}

int status_list(redisContext *c, const char *prefix, size_t limit, FILE *out,
		char *err, size_t errlen)
{
	char *runs = key_runs(prefix);
	char stop[24];
	const char *argv[5];
	redisReply *r = NULL;
	double now = status_now();
	size_t i, n;
	int ret = -1;

	snprintf(stop, sizeof(stop), "%zu", limit > 0 ? limit - 1 : 0);
	argv[0] = "ZREVRANGE";
	argv[1] = runs;
	argv[2] = "0";
	argv[3] = stop;
	argv[4] = "WITHSCORES";
	r = redisCommandArgv(c, 5, argv, NULL);
	if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
		snprintf(err, errlen, "redis: ZREVRANGE %s: %s", runs,
			 redisconn_why(c, r));
		goto out;
	}
	n = r->elements / 2;
	if (n == 0) {
		fprintf(out, "no runs yet (%s is empty)\n", runs);
		ret = 0;
		goto out;
	}
	/* One HMGET per run, pipelined. */
	for (i = 0; i < n; i++) {
		const redisReply *id = r->element[2 * i];
		char *key;
		const char *hargv[10];
		size_t hlen[10];
		int k;

		if (id->type != REDIS_REPLY_STRING)
			continue;
		key = xasprintf("%s:run:%.*s", prefix, (int)id->len, id->str);
		hargv[0] = "HMGET";
		hargv[1] = key;
		hargv[2] = "status";
		hargv[3] = "tasks_done";
		hargv[4] = "tasks_total";
		hargv[5] = "tests_done";
		hargv[6] = "tests_total";
		hargv[7] = "tests_failed";
		for (k = 0; k < 8; k++)
			hlen[k] = strlen(hargv[k]);
		redisAppendCommandArgv(c, 8, hargv, hlen);
		free(key);
	}
	fprintf(out, "%-20s %-10s %-13s %-15s %-7s %s\n", "RUN", "STATUS",
		"TASKS", "TESTS", "FAILED", "AGE");
	for (i = 0; i < n; i++) {
		const redisReply *id = r->element[2 * i];
		const redisReply *score = r->element[2 * i + 1];
		redisReply *h = NULL;
		char t1[32], t2[32], t3[32], t4[32], t5[32], t6[32];
		char tasks[80], tests[80], age[32];
		double created;

		if (id->type != REDIS_REPLY_STRING)
			continue;
		if (redisGetReply(c, (void **)&h) != REDIS_OK || h == NULL) {
			snprintf(err, errlen, "redis: HMGET: %s",
				 redisconn_why(c, NULL));
			goto out;
		}
		created = score->type == REDIS_REPLY_STRING
			      ? strtod(score->str, NULL)
			      : 0;
		status_age(now - created, age, sizeof(age));
		if (h->type == REDIS_REPLY_ARRAY && h->elements == 6) {
			snprintf(tasks, sizeof(tasks), "%s/%s",
				 status_str(h->element[1], t2, sizeof(t2)),
				 status_str(h->element[2], t3, sizeof(t3)));
			snprintf(tests, sizeof(tests), "%s/%s",
				 status_str(h->element[3], t4, sizeof(t4)),
				 status_str(h->element[4], t5, sizeof(t5)));
			fprintf(out, "%-20.*s %-10s %-13s %-15s %-7s %s\n",
				(int)id->len, id->str,
				status_str(h->element[0], t1, sizeof(t1)),
				tasks, tests,
				status_str(h->element[5], t6, sizeof(t6)), age);
		} else {
			fprintf(out, "%-20.*s %-10s %-13s %-15s %-7s %s\n",
				(int)id->len, id->str, "?", "-", "-", "-", age);
		}
		freeReplyObject(h);
	}
	ret = 0;
out:
	if (r != NULL)
		freeReplyObject(r);
	free(runs);
	return ret;
}

/* Prints the workers whose heartbeat is recent. */
static int status_workers(redisContext *c, const char *prefix, FILE *out,
			  char *err, size_t errlen)
{
	char *key = key_workers(prefix);
	const char *argv[2] = {"HGETALL", key};
	redisReply *r = redisCommandArgv(c, 2, argv, NULL);
	double now = status_now();
	size_t i, live = 0;
	int ret = -1;

	if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
		snprintf(err, errlen, "redis: HGETALL %s: %s", key,
			 redisconn_why(c, r));
		goto out;
	}
	for (i = 0; i + 1 < r->elements; i += 2) {
		const redisReply *v = r->element[i + 1];
		double beat =
		    v->type == REDIS_REPLY_STRING ? strtod(v->str, NULL) : 0;

		if (now - beat < STATUS_LIVE_S)
			live++;
	}
	fprintf(out, "live workers: %zu\n", live);
	for (i = 0; i + 1 < r->elements; i += 2) {
		const redisReply *k = r->element[i], *v = r->element[i + 1];
		double beat =
		    v->type == REDIS_REPLY_STRING ? strtod(v->str, NULL) : 0;
		const char *queues;
		char age[32];

		if (k->type != REDIS_REPLY_STRING ||
		    now - beat >= STATUS_LIVE_S)
			continue;
		status_age(now - beat, age, sizeof(age));
		/* "<time> <queue,queue>" (docs/protocol.md); older workers
		 * wrote the time alone. */
		queues = memchr(v->str, ' ', v->len);
		if (queues != NULL)
			fprintf(out,
				"  %-40.*s heartbeat %s ago, queues %.*s\n",
				(int)k->len, k->str, age,
				(int)(v->len - (size_t)(queues + 1 - v->str)),
				queues + 1);
		else
			fprintf(out, "  %-40.*s heartbeat %s ago\n",
				(int)k->len, k->str, age);
	}
	ret = 0;
out:
	if (r != NULL)
		freeReplyObject(r);
	free(key);
	return ret;
}

/* Orders names with numbers in them by the numbers' values ("ph:2:state"
 * before "ph:10:state"), the rest byte by byte. */
static int status_natural_cmp(const char *a, const char *b)
{
	while (*a != '\0' && *b != '\0') {
		if (isdigit((unsigned char)*a) && isdigit((unsigned char)*b)) {
			const char *ea = a, *eb = b;

			while (*a == '0')
				a++;
			while (*b == '0')
				b++;
			for (ea = a; isdigit((unsigned char)*ea); ea++)
				;
			for (eb = b; isdigit((unsigned char)*eb); eb++)
				;
			if (ea - a != eb - b)
				return ea - a < eb - b ? -1 : 1;
			for (; a < ea; a++, b++)
				if (*a != *b)
					return *a < *b ? -1 : 1;
			continue;
		}
		if (*a != *b)
			return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
		a++;
		b++;
	}
	return (*a != '\0') - (*b != '\0');
}

static int status_cmp_field(const void *a, const void *b)
{
	const struct kv *x = a, *y = b;

	return status_natural_cmp(x->key, y->key);
}

int status_show(redisContext *c, const char *prefix, const char *run, FILE *out,
		char *err, size_t errlen)
{
	static const char *const shown[] = {
	    "status",	   "created_at", "finished_at", "tasks_done",
	    "tasks_total", "tests_done", "tests_total", "tests_failed",
	    "phases",	   "suites",	 "queues",	"cwd",
	    "args",
	};
	struct run_info ri;
	char created[64], finished[64], age[32];
	double now = status_now();
	size_t i, j;
	int rc;

	rc = run_load(c, prefix, run, &ri, err, errlen);
	if (rc != 0)
		return rc;
	status_time(ri.created_at, created, sizeof(created));
	status_time(ri.finished_at, finished, sizeof(finished));
	status_age(now - ri.created_at, age, sizeof(age));
	fprintf(out, "run:       %s\n", ri.id);
	fprintf(out, "status:    %s\n", ri.status);
	fprintf(out, "created:   %s (%s ago)\n", created, age);
	fprintf(out, "finished:  %s\n", finished);
	fprintf(out, "tasks:     %u/%u done\n", ri.tasks_done, ri.tasks_total);
	fprintf(out, "tests:     %u/%u done, %u failed\n", ri.tests_done,
		ri.tests_total, ri.tests_failed);
	fprintf(out, "phases:    ");
	for (i = 0; i < ri.nphases; i++)
		fprintf(out, "%s%s%s", i ? ", " : "", ri.phases[i].name,
			ri.phases[i].required ? "" : " (optional)");
	fprintf(out, "%s\n", ri.nphases ? "" : "-");
	fprintf(out, "suites:    %s\n",
		run_info_get(&ri, "suites") ? run_info_get(&ri, "suites")
					    : "-");
	fprintf(out, "queues:    %s\n",
		run_info_get(&ri, "queues") ? run_info_get(&ri, "queues")
					    : "-");
	fprintf(out, "cwd:       %s\n",
		run_info_get(&ri, "cwd") ? run_info_get(&ri, "cwd") : "-");
	fprintf(out, "args:      %s\n",
		run_info_get(&ri, "args") ? run_info_get(&ri, "args") : "-");
	/* Whatever else the hash holds (settings, later fields), by name. */
	qsort(ri.fields, ri.nfields, sizeof(*ri.fields), status_cmp_field);
	for (i = 0; i < ri.nfields; i++) {
		int known = 0;

		for (j = 0; j < sizeof(shown) / sizeof(shown[0]); j++)
			known |= strcmp(ri.fields[i].key, shown[j]) == 0;
		if (known)
			continue;
		/* Multi-line values (the transient patterns) on one line. */
		fprintf(out, "%s: ", ri.fields[i].key);
		for (j = 0; ri.fields[i].value[j] != '\0'; j++) {
			if (ri.fields[i].value[j] == '\n' &&
			    ri.fields[i].value[j + 1] == '\0')
				break;
			if (ri.fields[i].value[j] == '\n')
				fputs(" | ", out);
			else
				fputc(ri.fields[i].value[j], out);
		}
		fputc('\n', out);
	}
	run_info_release(&ri);
	return status_workers(c, prefix, out, err, errlen) < 0 ? -1 : 0;
}
