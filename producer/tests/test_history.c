/* test_history.c -- unit tests for producer/history.c: the fingerprint, the
 * stored value format and the smoothing (pure), then reading and writing
 * against a real, throwaway redis-server on a unix socket in a temporary
 * directory: batches, EWMA, the sweep of stale entries (a slice at a time),
 * the size cap, once-per-run recording and error replies; and the start-up
 * history: its value, the measurement of a run's overhead and concurrency
 * (from records folded by the aggregator), its EWMA in Redis. The Redis tests
 * are skipped when redis-server is not installed; the server is killed on
 * every exit path (and by PR_SET_PDEATHSIG if this process dies). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "history.h"
#include "keys.h"
#include "redisconn.h"
#include "xmalloc.h"

struct server {
	pid_t pid;
	char dir[64];
	char sock[128];
	redisContext *c;
};

static int find_in_path(const char *name, char *out, size_t outlen)
{
	const char *path = getenv("PATH");
	const char *p, *end;

	if (path == NULL)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (p = path; *p != '\0'; p = *end != '\0' ? end + 1 : end) {
		end = strchr(p, ':');
		if (end == NULL)
			end = p + strlen(p);
		snprintf(out, outlen, "%.*s/%s", (int)(end - p), p, name);
		if (access(out, X_OK) == 0)
			return 0;
	}
	return -1;
}

static void remove_dir(const char *dir)
{
	char path[512];
	struct dirent *e;
	DIR *d = opendir(dir);

	if (d != NULL) {
		while ((e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 ||
			    strcmp(e->d_name, "..") == 0)
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			unlink(path);
		}
		closedir(d);
	}
	rmdir(dir);
}

static void server_stop(struct server *s)
{
	int status;

	if (s->c != NULL)
		redisFree(s->c);
	s->c = NULL;
	if (s->pid > 0) {
		kill(s->pid, SIGTERM);
		waitpid(s->pid, &status, 0);
		s->pid = 0;
	}
	remove_dir(s->dir);
}

static int group_setup(void **state)
{
	char prog[512], log[160], err[256];
	struct redis_url u;
	struct server *s;
	int fd;

	if (find_in_path("redis-server", prog, sizeof(prog)) < 0) {
		*state = NULL;
		return 0;
	}
	s = calloc(1, sizeof(*s));
	snprintf(s->dir, sizeof(s->dir), "/tmp/tf-history-XXXXXX");
	if (mkdtemp(s->dir) == NULL) {
		free(s);
		return -1;
	}
	snprintf(s->sock, sizeof(s->sock), "%s/redis.sock", s->dir);
	snprintf(log, sizeof(log), "%s/redis.log", s->dir);
	s->pid = fork();
	if (s->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl(prog, "redis-server", "--port", "0", "--unixsocket",
		      s->sock, "--unixsocketperm", "700", "--dir", s->dir,
		      "--save", "", "--appendonly", "no", (char *)NULL);
		_exit(127);
	}
	if (s->pid < 0) {
		remove_dir(s->dir);
		free(s);
		return -1;
	}
	memset(&u, 0, sizeof(u));
	u.kind = REDIS_URL_UNIX;
	u.path = s->sock;
	s->c = redisconn_open_retry(&u, 5000, 10000, err, sizeof(err));
	if (s->c == NULL) {
		fprintf(stderr, "redis-server did not start: %s\n", err);
		server_stop(s);
		free(s);
		return -1;
	}
	*state = s;
	return 0;
}

static int group_teardown(void **state)
{
	struct server *s = *state;

	if (s != NULL) {
		server_stop(s);
		free(s);
	}
	return 0;
}

/* Each Redis test starts from an empty database. */
static int flush_setup(void **state)
{
	struct server *s = *state;
	redisReply *r;

	if (s == NULL)
		return 0;
	r = redisCommand(s->c, "FLUSHALL");
	if (r == NULL)
		return -1;
	freeReplyObject(r);
	return 0;
}

#define NEED_SERVER(state)                                                     \
	do {                                                                   \
		if (*(state) == NULL)                                          \
			skip();                                                \
	} while (0)

static redisReply *cmd(redisContext *c, const char *fmt, ...)
{
	va_list ap;
	void *r;

	va_start(ap, fmt);
	r = redisvCommand(c, fmt, ap);
	va_end(ap);
	assert_non_null(r);
	return r;
}

static long long cmd_int(redisContext *c, const char *fmt, ...)
{
	va_list ap;
	redisReply *r;
	long long v;

	va_start(ap, fmt);
	r = redisvCommand(c, fmt, ap);
	va_end(ap);
	assert_non_null(r);
	assert_int_equal(r->type, REDIS_REPLY_INTEGER);
	v = r->integer;
	freeReplyObject(r);
	return v;
}

/* The stored value of field in key, parsed; -1 duration when absent. */
static void stored(redisContext *c, const char *key, const char *field,
		   double *dur, long long *seen)
{
	redisReply *r = cmd(c, "HGET %s %s", key, field);

	*dur = -1;
	*seen = -1;
	if (r->type == REDIS_REPLY_STRING)
		assert_int_equal(history_value_parse(r->str, r->len, dur, seen),
				 0);
	freeReplyObject(r);
}

static int near(double a, double b)
{
	return fabs(a - b) < 1e-4;
}

/* ---- pure ---------------------------------------------------------------- */

static void test_fingerprint(void **state)
{
	char a[HISTORY_FP_LEN + 1], b[HISTORY_FP_LEN + 1];

	(void)state;
	history_fingerprint("pytest", "/srv/app", "unit", a);
	/* sha1("pytest\0/srv/app\0unit"), as docs/scheduling.md says */
	assert_string_equal(a, "450445e60dac");
	assert_int_equal(strlen(a), HISTORY_FP_LEN);
	history_fingerprint("pytest", "/srv/app", "unit", b);
	assert_string_equal(a, b);
	history_fingerprint("pytest", "/srv/app2", "unit", b);
	assert_string_not_equal(a, b);
	history_fingerprint("playwright", "/srv/app", "unit", b);
	assert_string_not_equal(a, b);
	history_fingerprint("pytest", "/srv/app", "api", b);
	assert_string_not_equal(a, b);
	/* The separators keep the parts apart. */
	history_fingerprint("pytest", "/srv/ap", "punit", b);
	assert_string_not_equal(a, b);
}

static void test_key(void **state)
{
	char *k;

	(void)state;
	k = history_key("tf", "unit", "450445e60dac");
	assert_string_equal(k, "tf:durations:unit:450445e60dac");
	free(k);
}

static void test_value(void **state)
{
	const char *bad[] = {
	    "",	    "1.5",  ":5", "x:5",  "-1:5",  "nan:5",  "inf:5",
	    "1:-3", "1:5x", "1:", "1 :5", "1:5:6", "1e999:5"};
	char buf[64];
	double d;
	long long t;
	size_t i;

	(void)state;
	history_value_format(0.731, 1763700000, buf, sizeof(buf));
	assert_string_equal(buf, "0.731:1763700000");
	assert_int_equal(history_value_parse(buf, strlen(buf), &d, &t), 0);
	assert_true(d == 0.731);
	assert_true(t == 1763700000);
	assert_int_equal(history_value_parse("0:0", 3, &d, &t), 0);
	assert_true(d == 0 && t == 0);
	/* Only len bytes count. */
	assert_int_equal(history_value_parse("2.5:10xyz", 6, &d, &t), 0);
	assert_true(d == 2.5 && t == 10);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(
		    history_value_parse(bad[i], strlen(bad[i]), &d, &t), -1);
	memset(buf, '1', sizeof(buf));
	buf[10] = ':';
	assert_int_equal(history_value_parse(buf, sizeof(buf), &d, &t), -1);
	assert_int_equal(history_value_parse("1\0:5", 4, &d, &t), -1);
}

static void test_smooth(void **state)
{
	(void)state;
	assert_true(history_smooth(-1, 4.0, 0.3) == 4.0);
	assert_true(history_smooth(NAN, 4.0, 0.3) == 4.0);
	assert_true(near(history_smooth(10.0, 0.0, 0.3), 7.0));
	assert_true(near(history_smooth(1.0, 2.0, 0.3), 1.3));
	assert_true(near(history_smooth(0.0, 1.0, HISTORY_ALPHA), 0.3));
}

static void test_run_field(void **state)
{
	char *suites[] = {"unit", "api"};
	char *roots[] = {"/srv/app", "/srv/app"};
	char fp[HISTORY_FP_LEN + 1];
	char *f, *want;

	(void)state;
	f = history_run_field("pytest", suites, roots, 2);
	history_fingerprint("pytest", "/srv/app", "api", fp);
	want = xasprintf("450445e60dac unit\n%s api\n", fp);
	assert_string_equal(f, want);
	free(want);
	free(f);
}

static void test_startup_value(void **state)
{
	const char *bad[] = {
	    "",		 "1:2:3",    "1:2:3:4:5", "-1:2:3:4",  "1:0.5:3:4",
	    "1:2:-3:4",	 "1:2:3:-4", "nan:2:3:4", "1:inf:3:4", "0x1:2:3:4",
	    " 1:2:3:4",	 "1:2:3:4 ", "1:2:3:4x",  "1::3:4",    "1e999:2:3:4",
	    "1:2:3:4.5", ":1:2:3:4"};
	struct shard_startup st, in = {.learned = 1,
				       .overhead_s = 0.412,
				       .concurrency = 7.93,
				       .floor_s = 0.301};
	char buf[128];
	long long t;
	size_t i;

	(void)state;
	history_startup_format(&in, 1763700000, buf, sizeof(buf));
	assert_string_equal(buf, "0.412:7.93:0.301:1763700000");
	memset(&st, 0, sizeof(st));
	st.default_s = 0.2;
	assert_int_equal(history_startup_parse(buf, strlen(buf), &st, &t), 0);
	assert_true(st.learned == 1 && st.overhead_s == 0.412 &&
		    st.concurrency == 7.93 && st.floor_s == 0.301);
	assert_true(st.default_s == 0.2); /* left alone */
	assert_true(t == 1763700000);
	assert_int_equal(history_startup_parse("0:1:0:0", 7, &st, &t), 0);
	assert_true(st.overhead_s == 0 && st.concurrency == 1 && t == 0);
	assert_int_equal(history_startup_parse("1e+06:1:0:5", 11, &st, &t), 0);
	assert_true(st.overhead_s == 1e6);
	/* Only len bytes count. */
	assert_int_equal(history_startup_parse("1:2:3:4xyz", 7, &st, &t), 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		st.overhead_s = 99;
		assert_int_equal(
		    history_startup_parse(bad[i], strlen(bad[i]), &st, &t), -1);
		assert_true(st.overhead_s == 99);
	}
	memset(buf, '1', sizeof(buf));
	buf[3] = buf[6] = buf[9] = ':';
	assert_int_equal(history_startup_parse(buf, sizeof(buf), &st, &t), -1);
	assert_int_equal(history_startup_parse("1:2\0:3:4", 8, &st, &t), -1);
	/* The key of its own. */
	{
		char *k = history_startup_key("tf:durations:unit:450445e60dac");

		assert_string_equal(k,
				    "tf:durations:unit:450445e60dac:startup");
		free(k);
	}
}

/* The task times of test_startup_sample, as the aggregator keeps them. */
static void add_record(struct aggregator *a, const char *task,
		       const char *suite, enum task_status status, double start,
		       double dur, const double *tests, size_t ntests)
{
	struct test_result tr[4];
	struct task_result r;
	char *ids[4] = {"t::a", "t::b", "t::c", "t::d"};
	size_t i;

	memset(&r, 0, sizeof(r));
	memset(tr, 0, sizeof(tr));
	r.run = "R";
	r.task = (char *)task;
	r.attempt = 1;
	r.suite = (char *)suite;
	r.phase = "default";
	r.status = status;
	r.started_at = start;
	r.duration_s = dur;
	for (i = 0; i < ntests && i < 4; i++) {
		tr[i].id = ids[i];
		tr[i].outcome = OUTCOME_PASSED;
		tr[i].duration_s = tests[i];
	}
	r.tests = tr;
	r.ntests = ntests < 4 ? ntests : 4;
	aggregator_add(a, &r);
}

static void test_startup_sample(void **state)
{
	/* Start-ups (duration less tests), from the run's first start:
	 *   a1 [0, 2)  a2 [0, 2)  b [1, 2)  a3 [4, 4.5)  a4 0 s at 6
	 * a1 and a2 each see 2 start-ups open during [0, 1) and 3 during
	 * [1, 2): 5 / 2 = 2.5 at once; a3 is alone (1); a4 takes no time
	 * (tests longer than the task: 0) and does not count for the
	 * concurrency. Suite a: overhead (2 + 2 + 0.5 + 0) / 4 = 1.125,
	 * concurrency (2.5 + 2.5 + 1) / 3 = 2, floor (10th percentile of 4:
	 * the smallest) 0. Suite b: 1 s, 3 at once, floor 1. Records that
	 * did not complete, or left a test unfinished, do not count. */
	struct aggregator *a = aggregator_new("R");
	struct report *rep;
	struct shard_startup st;
	double one[] = {1}, two[] = {0.25, 0.25}, big[] = {9};
	struct task_result unf;
	char *unfinished[] = {"t::z"};

	(void)state;
	add_record(a, "a1", "a", TASK_COMPLETED, 1000, 3, one, 1);
	add_record(a, "a2", "a", TASK_COMPLETED, 1000, 2.5, two, 2);
	add_record(a, "b", "b", TASK_COMPLETED, 1001, 10, big, 1);
	add_record(a, "a3", "a", TASK_COMPLETED, 1004, 1.5, one, 1);
	add_record(a, "a4", "a", TASK_COMPLETED, 1006, 0.5, one, 1);
	/* not counted: a crash, a record without tests, an unfinished test */
	add_record(a, "x1", "a", TASK_CRASHED, 1000, 50, one, 1);
	add_record(a, "x2", "a", TASK_COMPLETED, 1000, 50, NULL, 0);
	memset(&unf, 0, sizeof(unf));
	unf.run = "R";
	unf.task = "x3";
	unf.attempt = 1;
	unf.suite = "a";
	unf.phase = "default";
	unf.status = TASK_COMPLETED;
	unf.started_at = 1000;
	unf.duration_s = 50;
	unf.unfinished = unfinished;
	unf.nunfinished = 1;
	aggregator_add(a, &unf);
	rep = aggregator_report(a);
	assert_int_equal(rep->ntimes, 5);

	assert_int_equal(
	    history_startup_sample(rep->times, rep->ntimes, "a", &st), 0);
	assert_int_equal(st.learned, 1);
	assert_true(near(st.overhead_s, 1.125));
	assert_true(near(st.concurrency, 2));
	assert_true(near(st.floor_s, 0));
	assert_int_equal(
	    history_startup_sample(rep->times, rep->ntimes, "b", &st), 0);
	assert_true(near(st.overhead_s, 1) && near(st.concurrency, 3) &&
		    near(st.floor_s, 1));
	assert_int_equal(
	    history_startup_sample(rep->times, rep->ntimes, "c", &st), -1);
	assert_int_equal(st.learned, 0);
	assert_int_equal(history_startup_sample(NULL, 0, "a", &st), -1);
	report_free(rep);
	aggregator_free(a);
}

static void test_startup_sample_percentile(void **state)
{
	/* 20 tasks one after the other (1 at once), overheads 1..20 s: mean
	 * 10.5, floor the 2nd smallest (nearest rank of 10 % of 20). Bad
	 * times are skipped. */
	struct report_task_time t[22];
	struct shard_startup st;
	double at = 5000;
	size_t i;

	(void)state;
	memset(t, 0, sizeof(t));
	for (i = 0; i < 20; i++) {
		t[i].suite = "s";
		t[i].started_at = at;
		t[i].tests_s = 3;
		t[i].duration_s = 3 + (double)(20 - i);
		at += t[i].duration_s;
	}
	t[20].suite = "s";
	t[20].started_at = 0; /* no start time */
	t[20].duration_s = 100;
	t[21].suite = "s";
	t[21].started_at = 5000;
	t[21].duration_s = NAN;
	assert_int_equal(history_startup_sample(t, 22, "s", &st), 0);
	assert_true(near(st.overhead_s, 10.5));
	assert_true(near(st.floor_s, 2));
	assert_true(near(st.concurrency, 1));
}

/* ---- against redis-server ------------------------------------------------ */

static void test_record_and_load(void **state)
{
	struct server *s = *state;
	const char *key = "tf:durations:unit:000000000001";
	size_t n = 2500, i;
	struct history_sample *smp;
	char **ids;
	double *est, d;
	long long seen, now = 1763700000;
	char err[256];
	redisReply *r;

	NEED_SERVER(state);
	smp = xcalloc(n + 2, sizeof(*smp));
	ids = xcalloc(n + 1, sizeof(*ids));
	est = xcalloc(n + 1, sizeof(*est));
	for (i = 0; i < n; i++) {
		ids[i] = xasprintf("tests/test_%zu.py::test_x[%zu]", i / 10, i);
		smp[i].id = ids[i];
		smp[i].dur_s = (double)i / 100;
	}
	/* Not recorded: a NaN sample and a negative one. */
	ids[n] = xstrdup("tests/never.py::t");
	smp[n].id = ids[n];
	smp[n].dur_s = NAN;
	smp[n + 1].id = ids[n];
	smp[n + 1].dur_s = -1;
	assert_int_equal(
	    history_record(s->c, key, smp, n + 2, now, NULL, err, sizeof(err)),
	    0);
	assert_int_equal(cmd_int(s->c, "HLEN %s", key), (long long)n);
	r = cmd(s->c, "TTL %s", key);
	assert_true(r->integer > 0 && r->integer <= HISTORY_RETENTION_S);
	freeReplyObject(r);
	stored(s->c, key, ids[1234], &d, &seen);
	assert_true(near(d, 12.34));
	assert_true(seen == now);

	/* Read back across batch boundaries, with an unknown id. */
	assert_int_equal(
	    history_load(s->c, key, ids, n + 1, est, err, sizeof(err)),
	    (long)n);
	for (i = 0; i < n; i++)
		assert_true(near(est[i], (double)i / 100));
	assert_true(est[n] == -1);

	/* The second sample is smoothed: 0.3 new + 0.7 old; a later
	 * duplicate of an id wins. */
	smp[0].id = ids[7];
	smp[0].dur_s = 100;
	smp[1].id = ids[8];
	smp[1].dur_s = 1;
	smp[2].id = ids[8];
	smp[2].dur_s = 2;
	assert_int_equal(
	    history_record(s->c, key, smp, 3, now + 60, NULL, err, sizeof(err)),
	    0);
	stored(s->c, key, ids[7], &d, &seen);
	assert_true(near(d, 0.3 * 100 + 0.7 * 0.07));
	assert_true(seen == now + 60);
	stored(s->c, key, ids[8], &d, &seen);
	assert_true(near(d, 0.3 * 2 + 0.7 * 0.08));
	/* untouched */
	stored(s->c, key, ids[9], &d, &seen);
	assert_true(near(d, 0.09) && seen == now);

	for (i = 0; i <= n; i++)
		free(ids[i]);
	free(ids);
	free(est);
	free(smp);
}

static void test_load_unreadable(void **state)
{
	struct server *s = *state;
	char *ids[] = {"a.py::x", "a.py::y", "a.py::z"};
	double est[3] = {5, 5, 5};
	char err[256] = "";

	NEED_SERVER(state);
	/* A missing key: nothing known. */
	assert_int_equal(history_load(s->c, "tf:durations:x:0", ids, 3, est,
				      err, sizeof(err)),
			 0);
	assert_true(est[0] == -1 && est[1] == -1 && est[2] == -1);
	/* Malformed values are unknown. */
	freeReplyObject(cmd(s->c, "HSET tf:durations:x:1 a.py::x garbage "
				  "a.py::y 1.5:100 a.py::z -2:100"));
	assert_int_equal(history_load(s->c, "tf:durations:x:1", ids, 3, est,
				      err, sizeof(err)),
			 1);
	assert_true(est[0] == -1 && est[1] == 1.5 && est[2] == -1);
	/* A key of another type: an error naming it, est all unknown, and
	 * the connection still in step. */
	freeReplyObject(cmd(s->c, "SET tf:durations:x:2 oops"));
	assert_int_equal(history_load(s->c, "tf:durations:x:2", ids, 3, est,
				      err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "WRONGTYPE"));
	assert_non_null(strstr(err, "tf:durations:x:2"));
	assert_true(est[1] == -1);
	assert_int_equal(cmd_int(s->c, "EXISTS tf:durations:x:1"), 1);
}

static void test_sweep_drops_stale(void **state)
{
	struct server *s = *state;
	const char *key = "tf:durations:unit:000000000002";
	struct history_sample smp = {"fresh.py::new", 1.0};
	struct history_limits lim;
	long long now = 1763700000;
	long long old = now - HISTORY_RETENTION_S - 1;
	long long kept = now - HISTORY_RETENTION_S + 3600;
	char err[256];
	redisReply *r;

	NEED_SERVER(state);
	history_limits_default(&lim);
	freeReplyObject(cmd(s->c,
			    "HSET %s stale.py::a 1:%lld stale.py::b 2:%lld",
			    key, old, old));
	freeReplyObject(
	    cmd(s->c, "HSET %s kept.py::a 3:%lld bad.py::x junk", key, kept));
	assert_int_equal(
	    history_record(s->c, key, &smp, 1, now, &lim, err, sizeof(err)), 0);
	assert_int_equal(cmd_int(s->c, "HEXISTS %s stale.py::a", key), 0);
	assert_int_equal(cmd_int(s->c, "HEXISTS %s stale.py::b", key), 0);
	assert_int_equal(cmd_int(s->c, "HEXISTS %s bad.py::x", key), 0);
	assert_int_equal(cmd_int(s->c, "HEXISTS %s kept.py::a", key), 1);
	assert_int_equal(cmd_int(s->c, "HEXISTS %s fresh.py::new", key), 1);
	/* the cursor, back at 0 after a whole (small) hash */
	r = cmd(s->c, "GET %s:sweep", key);
	assert_int_equal(r->type, REDIS_REPLY_STRING);
	assert_string_equal(r->str, "0");
	freeReplyObject(r);
}

static void test_sweep_slices(void **state)
{
	/* 6000 stale entries, one HSCAN (COUNT 1000) per record: the first
	 * record leaves most of them, and the cursor carries the sweep on
	 * until all are gone. */
	struct server *s = *state;
	const char *key = "tf:durations:unit:000000000003";
	struct history_sample smp = {"fresh.py::new", 1.0};
	struct history_limits lim;
	long long now = 1763700000, left, before;
	char err[256];
	int i, rounds = 0;

	NEED_SERVER(state);
	history_limits_default(&lim);
	lim.sweep_steps = 1;
	for (i = 0; i < 6000; i++)
		freeReplyObject(cmd(s->c, "HSET %s stale%d.py::t 1:%lld", key,
				    i, now - HISTORY_RETENTION_S - 10));
	assert_int_equal(
	    history_record(s->c, key, &smp, 1, now, &lim, err, sizeof(err)), 0);
	left = cmd_int(s->c, "HLEN %s", key);
	assert_true(left > 3000);
	assert_true(left < 6001);
	do {
		before = left;
		assert_int_equal(history_record(s->c, key, &smp, 1, now, &lim,
						err, sizeof(err)),
				 0);
		left = cmd_int(s->c, "HLEN %s", key);
		assert_true(left <= before);
		rounds++;
	} while (left > 1 && rounds < 50);
	assert_int_equal(left, 1);
	assert_int_equal(cmd_int(s->c, "HEXISTS %s fresh.py::new", key), 1);
}

static void test_cap(void **state)
{
	/* At most 10 entries: 8 old ones (seen now-100 .. now-93) and 5
	 * new: the 3 least recently seen go. */
	struct server *s = *state;
	const char *key = "tf:durations:unit:000000000004";
	struct history_sample smp[5];
	struct history_limits lim;
	char names[5][32];
	long long now = 1763700000;
	char err[256];
	int i;

	NEED_SERVER(state);
	history_limits_default(&lim);
	lim.max_entries = 10;
	for (i = 0; i < 8; i++)
		freeReplyObject(cmd(s->c, "HSET %s old%d.py::t 1:%lld", key, i,
				    now - 100 + i));
	for (i = 0; i < 5; i++) {
		snprintf(names[i], sizeof(names[i]), "new%d.py::t", i);
		smp[i].id = names[i];
		smp[i].dur_s = i;
	}
	assert_int_equal(
	    history_record(s->c, key, smp, 5, now, &lim, err, sizeof(err)), 0);
	assert_int_equal(cmd_int(s->c, "HLEN %s", key), 10);
	for (i = 0; i < 3; i++)
		assert_int_equal(
		    cmd_int(s->c, "HEXISTS %s old%d.py::t", key, i), 0);
	for (i = 3; i < 8; i++)
		assert_int_equal(
		    cmd_int(s->c, "HEXISTS %s old%d.py::t", key, i), 1);
	for (i = 0; i < 5; i++)
		assert_int_equal(cmd_int(s->c, "HEXISTS %s %s", key, names[i]),
				 1);
}

static void test_record_run_once(void **state)
{
	struct server *s = *state;
	char *suites[] = {"unit", "api"};
	char *roots[] = {"/srv/app", "/srv/app"};
	struct report_test tests[4];
	struct report_task_time times[2];
	struct report rep;
	redisReply *r;
	char fp_api[HISTORY_FP_LEN + 1];
	char *field, *key_unit, *key_api;
	long long now = 1763700000, seen;
	char err[256];
	double d;

	NEED_SERVER(state);
	memset(tests, 0, sizeof(tests));
	memset(&rep, 0, sizeof(rep));
	tests[0].id = "u.py::ok";
	tests[0].suite = "unit";
	tests[0].outcome = OUTCOME_PASSED;
	tests[0].duration_s = 1.5;
	tests[1].id = "u.py::boom";
	tests[1].suite = "unit";
	tests[1].outcome = OUTCOME_ERROR; /* maybe the infrastructure's */
	tests[1].duration_s = 9;
	tests[2].id = "a.py::skip";
	tests[2].suite = "api";
	tests[2].outcome = OUTCOME_SKIPPED;
	tests[2].duration_s = 0;
	tests[3].id = "x.py::other";
	tests[3].suite = "elsewhere"; /* not in the field: ignored */
	tests[3].outcome = OUTCOME_FAILED;
	tests[3].duration_s = 2;
	rep.tests = tests;
	rep.ntests = 4;
	/* One timed task of unit (0.5 s besides its tests); none of api. */
	memset(times, 0, sizeof(times));
	times[0].suite = "unit";
	times[0].started_at = now - 10;
	times[0].duration_s = 2;
	times[0].tests_s = 1.5;
	times[1].suite = "elsewhere";
	times[1].started_at = now - 10;
	times[1].duration_s = 3;
	times[1].tests_s = 2;
	rep.times = times;
	rep.ntimes = 2;
	field = history_run_field("pytest", suites, roots, 2);
	history_fingerprint("pytest", "/srv/app", "api", fp_api);
	key_unit = history_key("tf", "unit", "450445e60dac");
	key_api = history_key("tf", "api", fp_api);
	freeReplyObject(cmd(s->c, "HSET tf:run:R1 status done"));
	assert_int_equal(history_record_run(s->c, "tf", "R1", field, &rep, now,
					    err, sizeof(err)),
			 2);
	stored(s->c, key_unit, "u.py::ok", &d, &seen);
	assert_true(d == 1.5 && seen == now);
	stored(s->c, key_unit, "u.py::boom", &d, &seen);
	assert_true(d == -1);
	stored(s->c, key_api, "a.py::skip", &d, &seen);
	assert_true(d == 0);
	assert_int_equal(cmd_int(s->c, "HEXISTS tf:run:R1 history_saved"), 1);
	/* unit's start-up: its task's 0.5 s, with 2 starting at once (the
	 * other suite's task started with it) */
	r = cmd(s->c, "GET %s:startup", key_unit);
	assert_int_equal(r->type, REDIS_REPLY_STRING);
	assert_string_equal(r->str, "0.5:2:0.5:1763700000");
	freeReplyObject(r);
	assert_int_equal(cmd_int(s->c, "EXISTS %s:startup", key_api), 0);
	/* Once per run: a second report folds nothing in. */
	tests[0].duration_s = 100;
	times[0].duration_s = 50;
	assert_int_equal(history_record_run(s->c, "tf", "R1", field, &rep,
					    now + 5, err, sizeof(err)),
			 0);
	stored(s->c, key_unit, "u.py::ok", &d, &seen);
	assert_true(d == 1.5);
	r = cmd(s->c, "GET %s:startup", key_unit);
	assert_string_equal(r->str, "0.5:2:0.5:1763700000");
	freeReplyObject(r);
	/* No field (a run from before history): nothing. */
	assert_int_equal(history_record_run(s->c, "tf", "R2", NULL, &rep, now,
					    err, sizeof(err)),
			 0);
	assert_int_equal(cmd_int(s->c, "EXISTS tf:run:R2"), 0);
	free(key_api);
	free(key_unit);
	free(field);
}

static void test_startup_record_and_load(void **state)
{
	struct server *s = *state;
	const char *key = "tf:durations:unit:000000000001";
	struct shard_startup in = {
	    .learned = 1, .overhead_s = 2, .concurrency = 10, .floor_s = 1};
	struct shard_startup out;
	redisReply *r;
	char err[256];
	long long seen;

	NEED_SERVER(state);
	memset(&out, 0, sizeof(out));
	out.default_s = 0.2;
	/* nothing yet */
	assert_int_equal(
	    history_startup_load(s->c, key, &out, err, sizeof(err)), 0);
	assert_int_equal(out.learned, 0);
	/* the first sample sets it, with an expiry */
	assert_int_equal(history_startup_record(s->c, key, &in, 1000, NULL, err,
						sizeof(err)),
			 0);
	r = cmd(s->c, "GET %s:startup", key);
	assert_int_equal(r->type, REDIS_REPLY_STRING);
	assert_string_equal(r->str, "2:10:1:1000");
	freeReplyObject(r);
	assert_true(cmd_int(s->c, "TTL %s:startup", key) > 29 * 86400);
	/* the durations hash is not touched */
	assert_int_equal(cmd_int(s->c, "EXISTS %s", key), 0);
	/* the next one is smoothed, figure by figure */
	in.overhead_s = 12;
	in.concurrency = 20;
	in.floor_s = 11;
	assert_int_equal(history_startup_record(s->c, key, &in, 2000, NULL, err,
						sizeof(err)),
			 0);
	assert_int_equal(
	    history_startup_load(s->c, key, &out, err, sizeof(err)), 1);
	assert_int_equal(out.learned, 1);
	assert_true(near(out.overhead_s, 5) && near(out.concurrency, 13) &&
		    near(out.floor_s, 4));
	assert_true(out.default_s == 0.2);
	/* unreadable: not known, and the next sample replaces it */
	freeReplyObject(cmd(s->c, "SET %s:startup garbage", key));
	memset(&out, 0, sizeof(out));
	assert_int_equal(
	    history_startup_load(s->c, key, &out, err, sizeof(err)), 0);
	assert_int_equal(out.learned, 0);
	assert_int_equal(history_startup_record(s->c, key, &in, 3000, NULL, err,
						sizeof(err)),
			 0);
	r = cmd(s->c, "GET %s:startup", key);
	assert_string_equal(r->str, "12:20:11:3000");
	assert_int_equal(history_startup_parse(r->str, r->len, &out, &seen), 0);
	assert_true(seen == 3000);
	freeReplyObject(r);
	/* a wrong type is an error */
	freeReplyObject(cmd(s->c, "DEL %s:startup", key));
	freeReplyObject(cmd(s->c, "HSET %s:startup x y", key));
	err[0] = '\0';
	assert_int_equal(history_startup_record(s->c, key, &in, 4000, NULL, err,
						sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "startup"));
}

int main(void)
{
	const struct CMUnitTest pure[] = {
	    cmocka_unit_test(test_fingerprint),
	    cmocka_unit_test(test_key),
	    cmocka_unit_test(test_value),
	    cmocka_unit_test(test_smooth),
	    cmocka_unit_test(test_run_field),
	    cmocka_unit_test(test_startup_value),
	    cmocka_unit_test(test_startup_sample),
	    cmocka_unit_test(test_startup_sample_percentile),
	};
	const struct CMUnitTest redis[] = {
	    cmocka_unit_test_setup(test_record_and_load, flush_setup),
	    cmocka_unit_test_setup(test_load_unreadable, flush_setup),
	    cmocka_unit_test_setup(test_sweep_drops_stale, flush_setup),
	    cmocka_unit_test_setup(test_sweep_slices, flush_setup),
	    cmocka_unit_test_setup(test_cap, flush_setup),
	    cmocka_unit_test_setup(test_record_run_once, flush_setup),
	    cmocka_unit_test_setup(test_startup_record_and_load, flush_setup),
	};
	int failed;

	failed = cmocka_run_group_tests_name("history", pure, NULL, NULL);
	failed += cmocka_run_group_tests_name("history with redis", redis,
					      group_setup, group_teardown);
	return failed != 0;
}
