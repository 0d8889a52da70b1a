/* test_worker.c -- the worker loop against a real, throwaway redis-server
 * on a unix socket in a temporary directory: tasks are queued as the
 * producer would, worker_run() takes them, and the results stream, the run
 * hash, the pending list, the delayed and dead sets and the heartbeat hash
 * are checked. The delivery scenarios of docs/delivery.md: the drain hands
 * unfinished tests back, a lost worker's task is reclaimed with its partial
 * results, a lease taken over kills the task without a record, a cancel
 * notice kills within a second, a transient failure is retried, a crashing
 * test is dead-lettered, a timeout keeps what finished. Skipped when
 * /usr/bin/redis-server is missing. */
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "child.h"
#include "keys.h"
#include "log.h"
#include "proto.h"
#include "worker.h"
#include "xmalloc.h"

#define REDIS_SERVER "/usr/bin/redis-server"
#define REDIS_CLI "/usr/bin/redis-cli"
#define PY "/usr/bin/python3"
#define SH "/bin/sh"

extern char **environ;

struct fixture {
	char *dir;
	char *sock;
	char *url;
	pid_t redis;
	redisContext *c;
	char *plugin_dir;
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	char err[256];
	char *argv[14], *logfile;
	int i;

	if (access(REDIS_SERVER, X_OK) != 0) {
		free(f);
		*state = NULL;
		return 0;
	}
	f->dir = child_mkdtemp("tfw-test-redis-", err, sizeof(err));
	assert_non_null(f->dir);
	f->sock = xasprintf("%s/r.sock", f->dir);
	f->url = xasprintf("unix://%s", f->sock);
	argv[0] = REDIS_SERVER;
	argv[1] = "--port";
	argv[2] = "0";
	argv[3] = "--unixsocket";
	argv[4] = f->sock;
	argv[5] = "--save";
	argv[6] = "";
	argv[7] = "--dir";
	argv[8] = f->dir;
	argv[9] = "--loglevel";
	argv[10] = "warning";
	logfile = xasprintf("%s/redis.log", f->dir);
	argv[11] = "--logfile";
	argv[12] = logfile;
	argv[13] = NULL;
	assert_int_equal(
	    posix_spawn(&f->redis, REDIS_SERVER, NULL, NULL, argv, environ), 0);
	free(logfile);
	for (i = 0; i < 500; i++) {
		f->c = redisConnectUnix(f->sock);
		if (f->c && !f->c->err)
			break;
		redisFree(f->c);
		f->c = NULL;
		usleep(10000);
	}
	assert_non_null(f->c);
	f->plugin_dir = realpath("worker/plugins", NULL);
	assert_non_null(f->plugin_dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char err[256];
	int st;

	if (!f)
		return 0;
	redisFree(f->c);
	kill(f->redis, SIGTERM);
	waitpid(f->redis, &st, 0);
	child_rmtree(f->dir, err, sizeof(err));
	free(f->plugin_dir);
	free(f->url);
	free(f->sock);
	free(f->dir);
	free(f);
	return 0;
}

static redisReply *cmd(struct fixture *f, const char *fmt, ...)
{
	redisReply *r;
	va_list ap;

	va_start(ap, fmt);
	r = redisvCommand(f->c, fmt, ap);
	va_end(ap);
	assert_non_null(r);
	return r;
}

static void enqueue(struct fixture *f, struct task *t)
{
	char *buf, *q, *run;
	size_t len;
	redisReply *r;

	proto_encode_task(t, &buf, &len);
	q = key_queue("tf", t->queue);
	run = key_run("tf", t->run);
	freeReplyObject(cmd(f, "HINCRBY %s tasks_total 1", run));
	r = cmd(f, "XADD %s * m %b", q, buf, len);
	assert_int_equal(r->type, REDIS_REPLY_STRING);
	freeReplyObject(r);
	free(buf);
	free(q);
	free(run);
}

static void base_task(struct task *t, const char *id, const char *runner)
{
	memset(t, 0, sizeof(*t));
	t->run = "run1";
	t->id = (char *)id;
	t->attempt = 1;
	t->suite = "s";
	t->phase = "p";
	t->runner = (char *)runner;
	t->queue = "default";
}

static void opts_init(struct worker_opts *o, struct fixture *f, char **queues,
		      char **pytest)
{
	char err[256];

	memset(o, 0, sizeof(*o));
	assert_int_equal(redis_url_parse(f->url, &o->url, err, sizeof(err)), 0);
	o->queues = queues;
	o->nqueues = 1;
	o->slots = 2;
	o->name = "utest";
	o->prefix = "tf";
	o->timeout_s = 60;
	o->grace_s = 1;
	o->runners.pytest = pytest;
	o->runners.npytest = 3;
	o->runners.allow_command = 1;
	o->plugin_dir = f->plugin_dir;
	o->exit_when_idle_s = 0;
}

/* The records of run, decoded, in stream order; *ended counts "end". */
static size_t read_results(struct fixture *f, const char *run,
			   struct task_result *out, size_t max, int *ended)
{
	redisReply *r = cmd(f, "XRANGE tf:run:%s:results - +", run);
	enum proto_kind kind;
	char err[256];
	size_t i, n = 0;

	*ended = 0;
	for (i = 0; i < r->elements; i++) {
		redisReply *fields = r->element[i]->element[1];
		redisReply *k = fields->element[0], *v = fields->element[1];

		if (strcmp(k->str, "end") == 0) {
			(*ended)++;
			continue;
		}
		assert_string_equal(k->str, "m");
		assert_int_equal(
		    proto_peek_kind(v->str, v->len, &kind, err, sizeof(err)),
		    0);
		if (kind != PROTO_TASK_RESULT)
			continue;
		assert_true(n < max);
		assert_int_equal(proto_decode_task_result(
				     v->str, v->len, &out[n], err, sizeof(err)),
				 0);
		n++;
	}
	freeReplyObject(r);
	return n;
}

static void release_results(struct task_result *r, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		task_result_release(&r[i]);
}

static const struct task_result *find(const struct task_result *r, size_t n,
				      const char *task)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (strcmp(r[i].task, task) == 0)
			return &r[i];
	}
	fail_msg("no result for task %s", task);
	return NULL;
}

static const struct test_result *find_test(const struct task_result *r,
					   const char *id)
{
	size_t i;

	for (i = 0; i < r->ntests; i++) {
		if (strcmp(r->tests[i].id, id) == 0)
			return &r->tests[i];
	}
	fail_msg("task %s has no result for %s", r->task, id);
	return NULL;
}

static int has_str(char *const *v, size_t n, const char *s)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (strcmp(v[i], s) == 0)
			return 1;
	}
	return 0;
}

static long long cmd_int(struct fixture *f, const char *fmt, ...)
{
	redisReply *r;
	va_list ap;
	long long v;

	va_start(ap, fmt);
	r = redisvCommand(f->c, fmt, ap);
	va_end(ap);
	assert_non_null(r);
	if (r->type == REDIS_REPLY_STRING)
		v = strtoll(r->str, NULL, 10);
	else if (r->type == REDIS_REPLY_INTEGER)
		v = r->integer;
	else
		v = -999;
	freeReplyObject(r);
	return v;
}

/* A pytest suite in a new temporary directory: file name and text. */
static char *make_suite(const char *file, const char *text)
{
	char err[256], *dir, *path;
	FILE *fp;

	dir = child_mkdtemp("tfw-test-wsuite-", err, sizeof(err));
	assert_non_null(dir);
	path = xasprintf("%s/%s", dir, file);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
	free(path);
	return dir;
}

static void drop_suite(char *dir)
{
	char err[256];

	assert_int_equal(child_rmtree(dir, err, sizeof(err)), 0);
	free(dir);
}

/* A run hash as the producer writes it, with a fast backoff. */
static void run_hash(struct fixture *f, const char *run, const char *status)
{
	freeReplyObject(cmd(f,
			    "HSET tf:run:%s status %s tasks_total 0 "
			    "tasks_done 0 tests_done 0 tests_failed 0 "
			    "backoff_base_ms 1 backoff_cap_ms 5",
			    run, status));
}

/* Runs a shell line in the background (for signals and Redis commands
 * sent while worker_run() blocks this process); it is reaped by the
 * worker's loop as a stranger. */
static void background(const char *line)
{
	char *argv[] = {SH, "-c", (char *)line, NULL};
	pid_t pid;

	assert_int_equal(posix_spawn(&pid, SH, NULL, NULL, argv, environ), 0);
}

static double since(const struct timespec *a)
{
	struct timespec b;

	clock_gettime(CLOCK_MONOTONIC, &b);
	return (double)(b.tv_sec - a->tv_sec) +
	       (double)(b.tv_nsec - a->tv_nsec) / 1e9;
}

static void test_tasks_run_and_publish(void **state)
{
	struct fixture *f = *state;
	char *queues[] = {"default"};
	char *pytest[] = {PY, "-m", "pytest"};
	char *ok_argv[] = {PY, "-c", "print('hi')"};
	char *bad_tests[] = {"../escape.py"};
	char *py_tests[] = {"test_w.py"};
	struct worker_opts o;
	struct task_result res[8];
	const struct task_result *r;
	struct task t;
	redisReply *rep;
	char *suite;
	size_t n;
	int ended;

	if (!f)
		skip();
	suite =
	    make_suite("test_w.py", "def test_one():\n    pass\n"
				    "def test_two():\n    assert 0, 'nope'\n");
	base_task(&t, "cmd", "command");
	t.argv = ok_argv;
	t.nargv = 3;
	enqueue(f, &t);
	base_task(&t, "bad", "pytest");
	t.tests = bad_tests;
	t.ntests = 1;
	enqueue(f, &t);
	base_task(&t, "py", "pytest");
	t.cwd = suite;
	t.tests = py_tests;
	t.ntests = 1;
	enqueue(f, &t);
	/* Not a task at all: acked and dropped, never counted. */
	freeReplyObject(cmd(f, "XADD tf:q:default * m garbage"));

	opts_init(&o, f, queues, pytest);
	assert_int_equal(worker_run(&o), 0);
	redis_url_release(&o.url);

	n = read_results(f, "run1", res, 8, &ended);
	assert_int_equal(n, 3);
	assert_int_equal(ended, 1);
	r = find(res, n, "cmd");
	assert_int_equal(r->status, TASK_COMPLETED);
	assert_int_equal(r->exit_code, 0);
	assert_non_null(strstr(r->worker, "utest/slot-"));
	r = find(res, n, "bad");
	assert_int_equal(r->status, TASK_ERROR);
	assert_non_null(strstr(r->message, "\"..\""));
	assert_int_equal(r->nunfinished, 1);
	assert_int_equal(r->nretrying, 0); /* permanent: never retried */
	r = find(res, n, "py");
	assert_int_equal(r->status, TASK_COMPLETED);
	assert_int_equal(r->exit_code, 1);
	assert_int_equal(r->ntests, 2);
	assert_int_equal(r->nunfinished, 0);
	assert_int_equal(r->nretrying, 0);
	release_results(res, n);

	rep = cmd(f, "HGET tf:run:run1 status");
	assert_string_equal(rep->str, "done");
	freeReplyObject(rep);
	/* Unfinished tests are final errors: counted done and failed. */
	rep = cmd(f, "HMGET tf:run:run1 tasks_done tests_done tests_failed");
	assert_string_equal(rep->element[0]->str, "3");
	assert_string_equal(rep->element[1]->str, "4");
	assert_string_equal(rep->element[2]->str, "2");
	freeReplyObject(rep);
	/* Everything acked and deleted, no heartbeat left behind. */
	rep = cmd(f, "XPENDING tf:q:default workers");
	assert_int_equal(rep->element[0]->integer, 0);
	freeReplyObject(rep);
	assert_int_equal(cmd_int(f, "XLEN tf:q:default"), 0);
	assert_int_equal(cmd_int(f, "HLEN tf:workers"), 0);
	assert_int_equal(cmd_int(f, "EXISTS tf:delayed"), 0);
	/* Progress events went to the same stream; partial results were
	 * written and deleted with the record. */
	assert_true(cmd_int(f, "XLEN tf:run:run1:results") >= 3 + 1 + 4);
	assert_int_equal(cmd_int(f, "EXISTS tf:run:run1:partial:py"), 0);
	drop_suite(suite);
}

/* SIGTERM: the running task gets the grace period, then is killed; the
 * test that finished keeps its result, the rest is handed back at once at
 * the same attempt, and the worker exits 0. */
static void test_drain_hands_back(void **state)
{
	struct fixture *f = *state;
	char *queues[] = {"drain"};
	char *pytest[] = {PY, "-m", "pytest"};
	char *tests[] = {"test_d.py::test_fast", "test_d.py::test_slow"};
	struct worker_opts o;
	struct task_result res[4];
	struct task fu;
	struct timespec a;
	struct task t;
	redisReply *rep;
	char *suite, *line, err[256];
	size_t n;
	int ended;
	double secs;

	if (!f)
		skip();
	suite =
	    make_suite("test_d.py", "import time\n"
				    "def test_fast():\n    pass\n"
				    "def test_slow():\n    time.sleep(60)\n");
	run_hash(f, "run2", "running");
	base_task(&t, "td", "pytest");
	t.run = "run2";
	t.queue = "drain";
	t.cwd = suite;
	t.tests = tests;
	t.ntests = 2;
	enqueue(f, &t);
	opts_init(&o, f, queues, pytest);
	o.exit_when_idle_s = -1;
	line = xasprintf("sleep 1.5; kill -TERM %ld", (long)getpid());
	background(line);
	free(line);
	clock_gettime(CLOCK_MONOTONIC, &a);
	assert_int_equal(worker_run(&o), 0);
	secs = since(&a);
	redis_url_release(&o.url);
	/* TERM at 1.5 s, grace 1 s, then the kill and the hand-back. */
	assert_true(secs >= 2.3 && secs < 8);

	n = read_results(f, "run2", res, 4, &ended);
	assert_int_equal(n, 1);
	assert_int_equal(ended, 0);
	assert_int_equal(res[0].status, TASK_LOST);
	assert_int_equal(res[0].ntests, 1);
	assert_int_equal(find_test(&res[0], "test_d.py::test_fast")->outcome,
			 OUTCOME_PASSED);
	assert_int_equal(res[0].nretrying, 1);
	assert_string_equal(res[0].retrying[0], "test_d.py::test_slow");
	release_results(res, n);
	/* The entry is closed; the follow-up waits, due now. */
	rep = cmd(f, "XPENDING tf:q:drain workers");
	assert_int_equal(rep->element[0]->integer, 0);
	freeReplyObject(rep);
	assert_int_equal(cmd_int(f, "HGET tf:run:run2 tasks_total"), 2);
	rep = cmd(f, "ZRANGE tf:delayed 0 -1 WITHSCORES");
	assert_int_equal(rep->elements, 2);
	assert_true(strncmp(rep->element[0]->str, "drain\n", 6) == 0);
	assert_int_equal(proto_decode_task(rep->element[0]->str + 6,
					   rep->element[0]->len - 6, &fu, err,
					   sizeof(err)),
			 0);
	assert_string_equal(fu.id, "td.1");
	assert_int_equal(fu.attempt, 1);
	assert_string_equal(fu.retried_for, "worker drained");
	assert_int_equal(fu.ntests, 1);
	assert_true(strtod(rep->element[1]->str, NULL) / 1000.0 <=
		    (double)time(NULL) + 1);
	task_release(&fu);
	freeReplyObject(rep);
	freeReplyObject(cmd(f, "DEL tf:delayed"));
	drop_suite(suite);
}

/* A task pending for a worker that vanished mid-test: the reaper claims
 * it, closes the lost attempt with the finished test from the partial
 * hash, and the follow-ups (the running test alone, the rest together)
 * run and end the run. */
static void test_reclaim_lost_worker(void **state)
{
	struct fixture *f = *state;
	char *queues[] = {"reap"};
	char *pytest[] = {PY, "-m", "pytest"};
	char *tests[] = {"test_r.py::test_a", "test_r.py::test_b",
			 "test_r.py::test_c"};
	struct test_result done = {.id = "test_r.py::test_a",
				   .outcome = OUTCOME_PASSED,
				   .duration_s = 0.5};
	struct worker_opts o;
	struct task_result res[8];
	const struct task_result *r;
	struct task t;
	redisReply *rep;
	char *suite, *buf, *id;
	size_t n, len;
	int ended;

	if (!f)
		skip();
	suite = make_suite("test_r.py", "def test_a():\n    pass\n"
					"def test_b():\n    pass\n"
					"def test_c():\n    pass\n");
	run_hash(f, "run3", "running");
	base_task(&t, "tr", "pytest");
	t.run = "run3";
	t.queue = "reap";
	t.cwd = suite;
	t.tests = tests;
	t.ntests = 3;
	enqueue(f, &t);
	/* The ghost read it long ago and got as far as test_b. */
	freeReplyObject(cmd(f, "XGROUP CREATE tf:q:reap workers 0 MKSTREAM"));
	rep = cmd(f, "XREADGROUP GROUP workers ghost COUNT 1 STREAMS "
		     "tf:q:reap >");
	id = xstrdup(rep->element[0]->element[1]->element[0]->element[0]->str);
	freeReplyObject(rep);
	freeReplyObject(cmd(f,
			    "XCLAIM tf:q:reap workers ghost 0 %s IDLE "
			    "600000 JUSTID",
			    id));
	proto_encode_test_result(&done, &buf, &len);
	freeReplyObject(cmd(f,
			    "HSET tf:run:run3:partial:tr r:test_r.py::test_a "
			    "%b running test_r.py::test_b",
			    buf, len));
	free(buf);

	opts_init(&o, f, queues, pytest);
	o.lease_s = 2;
	o.exit_when_idle_s = 1;
	assert_int_equal(worker_run(&o), 0);
	redis_url_release(&o.url);

	n = read_results(f, "run3", res, 8, &ended);
	assert_int_equal(n, 3);
	assert_int_equal(ended, 1);
	r = find(res, n, "tr");
	assert_int_equal(r->status, TASK_LOST);
	assert_string_equal(r->worker, "utest/reaper");
	assert_string_equal(r->running, "test_r.py::test_b");
	assert_int_equal(r->ntests, 1);
	assert_true(find_test(r, "test_r.py::test_a")->duration_s == 0.5);
	assert_int_equal(r->nretrying, 2);
	r = find(res, n, "tr.1");
	assert_int_equal(r->attempt, 2);
	assert_string_equal(r->retried_for, "worker lost");
	assert_int_equal(r->ntests, 1);
	assert_int_equal(find_test(r, "test_r.py::test_b")->outcome,
			 OUTCOME_PASSED);
	r = find(res, n, "tr.2");
	assert_int_equal(r->ntests, 1);
	assert_int_equal(find_test(r, "test_r.py::test_c")->outcome,
			 OUTCOME_PASSED);
	release_results(res, n);
	rep = cmd(f, "HMGET tf:run:run3 status tasks_total tests_done");
	assert_string_equal(rep->element[0]->str, "done");
	assert_string_equal(rep->element[1]->str, "3");
	assert_string_equal(rep->element[2]->str, "3");
	freeReplyObject(rep);
	assert_int_equal(cmd_int(f, "EXISTS tf:run:run3:partial:tr"), 0);
	rep = cmd(f, "XPENDING tf:q:reap workers");
	assert_int_equal(rep->element[0]->integer, 0);
	freeReplyObject(rep);
	free(id);
	drop_suite(suite);
}

/* Another worker takes the entry over while it runs: the renewal notices,
 * the runner is killed and nothing is published. */
static void test_lease_lost_kills(void **state)
{
	struct fixture *f = *state;
	char *queues[] = {"lease"};
	char *pytest[] = {PY, "-m", "pytest"};
	char *tests[] = {"test_l.py::test_sleep"};
	struct task_result res[1];
	int ended;
	struct worker_opts o;
	struct timespec a;
	struct task t;
	redisReply *rep;
	char *suite, *line;

	if (!f)
		skip();
	suite =
	    make_suite("test_l.py", "import time\n"
				    "def test_sleep():\n    time.sleep(30)\n");
	run_hash(f, "run4", "running");
	base_task(&t, "tl", "pytest");
	t.run = "run4";
	t.queue = "lease";
	t.cwd = suite;
	t.tests = tests;
	t.ntests = 1;
	enqueue(f, &t);
	/* The thief keeps claiming the entry (for 6 s), as a live worker
	 * renews its lease: otherwise this worker's own reaper could take
	 * it back from the idle "thief" before it exits. */
	line = xasprintf("sleep 1.5; id=$(%s -s %s XPENDING tf:q:lease workers "
			 "- + 1 | head -n 1); for i in $(seq 12); do %s -s %s "
			 "XCLAIM tf:q:lease workers thief 0 \"$id\" JUSTID "
			 ">/dev/null; sleep 0.5; done",
			 REDIS_CLI, f->sock, REDIS_CLI, f->sock);
	background(line);
	free(line);
	opts_init(&o, f, queues, pytest);
	o.lease_s = 3;
	o.exit_when_idle_s = 1;
	clock_gettime(CLOCK_MONOTONIC, &a);
	assert_int_equal(worker_run(&o), 0);
	assert_true(since(&a) < 12);
	redis_url_release(&o.url);
	/* Progress events, but no record. */
	assert_int_equal(read_results(f, "run4", res, 1, &ended), 0);
	rep = cmd(f, "XPENDING tf:q:lease workers - + 10");
	assert_int_equal(rep->elements, 1);
	assert_string_equal(rep->element[0]->element[1]->str, "thief");
	freeReplyObject(rep);
	drop_suite(suite);
}

/* "cancel <run>" on the control channel kills the running task within a
 * second and acks it away; a task of a run already cancelled never
 * starts. */
static void test_cancel_notice(void **state)
{
	struct fixture *f = *state;
	char *queues[] = {"cancel"};
	char *pytest[] = {PY, "-m", "pytest"};
	char *tests[] = {"test_c.py::test_sleep"};
	struct task_result res[1];
	int ended;
	struct worker_opts o;
	struct timespec a;
	struct task t;
	redisReply *rep;
	char *suite, *line;
	double secs;

	if (!f)
		skip();
	suite =
	    make_suite("test_c.py", "import time\n"
				    "def test_sleep():\n    time.sleep(30)\n");
	run_hash(f, "run5", "running");
	run_hash(f, "run6", "cancelled");
	base_task(&t, "tc", "pytest");
	t.run = "run5";
	t.queue = "cancel";
	t.cwd = suite;
	t.tests = tests;
	t.ntests = 1;
	enqueue(f, &t);
	base_task(&t, "tc6", "pytest");
	t.run = "run6";
	t.queue = "cancel";
	t.cwd = suite;
	t.tests = tests;
	t.ntests = 1;
	enqueue(f, &t);
	line = xasprintf("sleep 1.5; %s -s %s HSET tf:run:run5 status "
			 "cancelled >/dev/null; %s -s %s PUBLISH tf:control "
			 "'cancel run5' >/dev/null",
			 REDIS_CLI, f->sock, REDIS_CLI, f->sock);
	background(line);
	free(line);
	opts_init(&o, f, queues, pytest);
	o.exit_when_idle_s = 0;
	clock_gettime(CLOCK_MONOTONIC, &a);
	assert_int_equal(worker_run(&o), 0);
	secs = since(&a);
	redis_url_release(&o.url);
	/* Killed at about 1.5 s; then one empty read before the idle exit. */
	assert_true(secs < 6);
	assert_int_equal(read_results(f, "run5", res, 1, &ended), 0);
	assert_int_equal(read_results(f, "run6", res, 1, &ended), 0);
	/* run6's task never started: not even a progress event. */
	assert_int_equal(cmd_int(f, "EXISTS tf:run:run6:results"), 0);
	rep = cmd(f, "XPENDING tf:q:cancel workers");
	assert_int_equal(rep->element[0]->integer, 0);
	freeReplyObject(rep);
	assert_int_equal(cmd_int(f, "XLEN tf:q:cancel"), 0);
	drop_suite(suite);
}

/* A transient failure (429) the first time: retried after a backoff and
 * passed; a crashing test is isolated, retried alone and dead-lettered at
 * max_attempts while the rest of its task is reported; a test that hangs
 * is reported as timed out and the one after it still runs. */
static void test_retries_crashes_timeouts(void **state)
{
	struct fixture *f = *state;
	char *queues[] = {"retry"};
	char *pytest[] = {PY, "-m", "pytest"};
	char *t429[] = {"test_x.py::test_quota"};
	char *tsegv[] = {"test_x.py::test_before", "test_x.py::test_segv",
			 "test_x.py::test_after"};
	char *thang[] = {"test_x.py::test_quick", "test_x.py::test_hang",
			 "test_x.py::test_later"};
	struct worker_opts o;
	struct task_result res[16];
	const struct task_result *r;
	const struct test_result *x;
	struct task t;
	redisReply *rep;
	char *suite, *text;
	size_t n;
	int ended;

	if (!f)
		skip();
	suite = make_suite("marker", "");
	text = xasprintf(
	    "import os, signal, time\n"
	    "def test_quota():\n"
	    "    m = '%s/marker'\n"
	    "    if os.path.getsize(m) == 0:\n"
	    "        open(m, 'w').write('x')\n"
	    "        raise RuntimeError('HTTP 429 Too Many Requests')\n"
	    "def test_before():\n    pass\n"
	    "def test_segv():\n    os.kill(os.getpid(), signal.SIGSEGV)\n"
	    "def test_after():\n    pass\n"
	    "def test_quick():\n    pass\n"
	    "def test_hang():\n    time.sleep(60)\n"
	    "def test_later():\n    pass\n",
	    suite);
	{
		char *path = xasprintf("%s/test_x.py", suite);
		FILE *fp = fopen(path, "w");

		assert_non_null(fp);
		fputs(text, fp);
		fclose(fp);
		free(path);
	}
	free(text);
	run_hash(f, "run7", "running");
	base_task(&t, "q", "pytest");
	t.run = "run7";
	t.queue = "retry";
	t.cwd = suite;
	t.tests = t429;
	t.ntests = 1;
	enqueue(f, &t);
	base_task(&t, "s", "pytest");
	t.run = "run7";
	t.queue = "retry";
	t.cwd = suite;
	t.tests = tsegv;
	t.ntests = 3;
	enqueue(f, &t);
	base_task(&t, "h", "pytest");
	t.run = "run7";
	t.queue = "retry";
	t.cwd = suite;
	t.tests = thang;
	t.ntests = 3;
	t.timeout_s = 2;
	enqueue(f, &t);

	opts_init(&o, f, queues, pytest);
	o.slots = 3;
	o.exit_when_idle_s = 1;
	assert_int_equal(worker_run(&o), 0);
	redis_url_release(&o.url);

	n = read_results(f, "run7", res, 16, &ended);
	assert_int_equal(ended, 1);
	/* q, q.1; s, s.1, s.2, s.1.1; h, h.1 */
	assert_int_equal(n, 8);
	r = find(res, n, "q");
	assert_int_equal(r->ntests, 0);
	assert_int_equal(r->nretrying, 1);
	assert_string_equal(r->retry_reason, "429 Too Many Requests");
	r = find(res, n, "q.1");
	assert_int_equal(r->attempt, 2);
	assert_string_equal(r->retried_for, "429 Too Many Requests");
	assert_int_equal(find_test(r, "test_x.py::test_quota")->outcome,
			 OUTCOME_PASSED);

	r = find(res, n, "s");
	assert_int_equal(r->status, TASK_CRASHED);
	assert_int_equal(find_test(r, "test_x.py::test_before")->outcome,
			 OUTCOME_PASSED);
	assert_true(has_str(r->retrying, r->nretrying, "test_x.py::test_segv"));
	assert_true(
	    has_str(r->retrying, r->nretrying, "test_x.py::test_after"));
	r = find(res, n, "s.2");
	assert_int_equal(find_test(r, "test_x.py::test_after")->outcome,
			 OUTCOME_PASSED);
	r = find(res, n, "s.1.1");
	assert_int_equal(r->attempt, 3);
	x = find_test(r, "test_x.py::test_segv");
	assert_int_equal(x->outcome, OUTCOME_ERROR);
	assert_string_equal(
	    x->message, "crashed the runner 3 times (SIGSEGV) (dead-lettered)");
	rep = cmd(f, "XRANGE tf:dead - +");
	assert_int_equal(rep->elements, 1);
	freeReplyObject(rep);

	r = find(res, n, "h");
	assert_int_equal(r->status, TASK_TIMEOUT);
	assert_int_equal(find_test(r, "test_x.py::test_quick")->outcome,
			 OUTCOME_PASSED);
	x = find_test(r, "test_x.py::test_hang");
	assert_int_equal(x->outcome, OUTCOME_ERROR);
	assert_string_equal(x->message, "timed out after 2s");
	r = find(res, n, "h.1");
	assert_int_equal(find_test(r, "test_x.py::test_later")->outcome,
			 OUTCOME_PASSED);
	release_results(res, n);

	/* 3 + 3 + 3 tests, 2 errors; 8 tasks in all. */
	rep = cmd(f, "HMGET tf:run:run7 status tasks_total tests_done "
		     "tests_failed");
	assert_string_equal(rep->element[0]->str, "done");
	assert_string_equal(rep->element[1]->str, "8");
	assert_string_equal(rep->element[2]->str, "7");
	assert_string_equal(rep->element[3]->str, "2");
	freeReplyObject(rep);
	drop_suite(suite);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tasks_run_and_publish),
	    cmocka_unit_test(test_drain_hands_back),
	    cmocka_unit_test(test_reclaim_lost_worker),
	    cmocka_unit_test(test_lease_lost_kills),
	    cmocka_unit_test(test_cancel_notice),
	    cmocka_unit_test(test_retries_crashes_timeouts),
	};

	/* TFW_TEST_LOG=1 shows the worker's log while debugging a test. */
	log_init("test_worker", getenv("TFW_TEST_LOG") ? LOG_DEBUG : LOG_QUIET);
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
