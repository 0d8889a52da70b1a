/* test_worker.c -- the worker loop against a real, throwaway redis-server
 * on a unix socket in a temporary directory: tasks are queued as the
 * producer would, worker_run() takes them, and the results stream, the run
 * hash, the pending list and the heartbeat hash are checked. Also the
 * drain: SIGTERM with a task that outlives the grace period leaves it
 * pending and unpublished. Skipped when /usr/bin/redis-server is missing. */
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
#define PY "/usr/bin/python3"

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

/* The results of run1, decoded, keyed by task id. */
static size_t read_results(struct fixture *f, struct task_result *out,
			   size_t max, int *ended)
{
	redisReply *r = cmd(f, "XRANGE tf:run:run1:results - +");
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
	char err[256], *suite, *path;
	FILE *fp;
	size_t n, i;
	int ended;

	if (!f)
		skip();
	suite = child_mkdtemp("tfw-test-wsuite-", err, sizeof(err));
	path = xasprintf("%s/test_w.py", suite);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("def test_one():\n    pass\n"
	      "def test_two():\n    assert 0, 'nope'\n",
	      fp);
	fclose(fp);

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

	n = read_results(f, res, 8, &ended);
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
	r = find(res, n, "py");
	assert_int_equal(r->status, TASK_COMPLETED);
	assert_int_equal(r->exit_code, 1);
	assert_int_equal(r->ntests, 2);
	assert_int_equal(r->nunfinished, 0);
	for (i = 0; i < n; i++)
		task_result_release(&res[i]);

	rep = cmd(f, "HGET tf:run:run1 status");
	assert_string_equal(rep->str, "done");
	freeReplyObject(rep);
	rep = cmd(f, "HMGET tf:run:run1 tasks_done tests_done tests_failed");
	assert_string_equal(rep->element[0]->str, "3");
	assert_string_equal(rep->element[1]->str, "3");
	assert_string_equal(rep->element[2]->str, "1");
	freeReplyObject(rep);
	/* Everything acked and deleted, no heartbeat left behind. */
	rep = cmd(f, "XPENDING tf:q:default workers");
	assert_int_equal(rep->element[0]->integer, 0);
	freeReplyObject(rep);
	rep = cmd(f, "XLEN tf:q:default");
	assert_int_equal(rep->integer, 0);
	freeReplyObject(rep);
	rep = cmd(f, "HLEN tf:workers");
	assert_int_equal(rep->integer, 0);
	freeReplyObject(rep);
	/* Progress events went to the same stream. */
	rep = cmd(f, "XLEN tf:run:run1:results");
	assert_true(rep->integer >= 3 + 1 + 4);
	freeReplyObject(rep);

	assert_int_equal(child_rmtree(suite, err, sizeof(err)), 0);
	free(path);
	free(suite);
}

static void test_drain_leaves_pending(void **state)
{
	struct fixture *f = *state;
	char *queues[] = {"drain"};
	char *pytest[] = {PY, "-m", "pytest"};
	char *sleeper[] = {PY, "-c",
			   "import signal, time\n"
			   "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
			   "time.sleep(60)\n"};
	char *killer[] = {PY, "-c",
			  "import os, signal, time\n"
			  "time.sleep(1.5)\n"
			  "os.kill(os.getppid(), signal.SIGTERM)\n",
			  NULL};
	struct worker_opts o;
	struct timespec a, b;
	struct task t;
	redisReply *rep;
	pid_t pid;
	double secs;

	if (!f)
		skip();
	base_task(&t, "sleeper", "command");
	t.run = "run2";
	t.queue = "drain";
	t.argv = sleeper;
	t.nargv = 3;
	enqueue(f, &t);
	opts_init(&o, f, queues, pytest);
	o.exit_when_idle_s = -1;
	/* A helper sends the worker (this process) SIGTERM in 1.5 s; it is
	 * reaped by the worker's loop as a stranger. */
	assert_int_equal(posix_spawn(&pid, PY, NULL, NULL, killer, environ), 0);
	clock_gettime(CLOCK_MONOTONIC, &a);
	assert_int_equal(worker_run(&o), 1);
	clock_gettime(CLOCK_MONOTONIC, &b);
	redis_url_release(&o.url);
	secs = (double)(b.tv_sec - a.tv_sec) +
	       (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	/* TERM at 1.5 s, grace 1 s, then the kill. */
	assert_true(secs >= 2.3 && secs < 6);
	rep = cmd(f, "XPENDING tf:q:drain workers");
	assert_int_equal(rep->element[0]->integer, 1);
	freeReplyObject(rep);
	rep = cmd(f, "EXISTS tf:run:run2:results");
	assert_int_equal(rep->integer, 0);
	freeReplyObject(rep);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tasks_run_and_publish),
	    cmocka_unit_test(test_drain_leaves_pending),
	};

	log_init("test_worker", LOG_QUIET);
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
