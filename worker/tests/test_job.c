/* test_job.c -- one task attempt end to end without Redis: a job on a real
 * event loop running real processes, reaped the way the worker does.
 * Covers exit status, crash by signal, timeout (TERM, and KILL after the
 * grace period), capped output, events on fd 3, a pytest run through the
 * plugin, leftovers of the process group, tasks refused before any spawn,
 * the sweep of folders that dead workers' jobs left behind, and the
 * slot's directory shared by its tasks. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "job.h"
#include "child.h"
#include "xmalloc.h"

#define PY "/usr/bin/python3"

struct run {
	struct event_base *base;
	struct job *job;
	int done_calls;
	unsigned starts;
	unsigned finishes;
};

static void on_chld(evutil_socket_t fd, short what, void *arg)
{
	struct run *r = arg;
	siginfo_t si;
	int st;

	(void)fd;
	(void)what;
	for (;;) {
		memset(&si, 0, sizeof(si));
		if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 ||
		    si.si_pid == 0)
			break;
		if (r->job && si.si_pid == job_pid(r->job))
			job_reap(r->job);
		else
			waitpid(si.si_pid, &st, 0);
	}
}

static void on_event(void *arg, struct job *j, const struct runner_event *ev)
{
	struct run *r = arg;

	(void)j;
	if (ev->kind == EVENT_START)
		r->starts++;
	else
		r->finishes++;
}

static void on_done(void *arg, struct job *j)
{
	struct run *r = arg;

	(void)j;
	r->done_calls++;
	event_base_loopbreak(r->base);
}

static char *plugin_dir;
static struct slotdir *slot_dir; /* conf.dir of the next run_task */

/* Runs task to its end and returns the job (caller frees it and r). */
static struct job *run_task(struct task *t, unsigned timeout_s,
			    unsigned grace_s, int allow_command, struct run *r,
			    double *elapsed)
{
	static char *pytest[] = {PY, "-m", "pytest"};
	static struct runner_conf rc;
	static struct job_conf conf;
	static const struct job_hooks hooks = {on_event, NULL, on_done};
	struct event *chld;
	struct timespec a, b;

	rc.pytest = pytest;
	rc.npytest = 3;
	rc.allow_command = allow_command;
	conf.worker = "test/slot-1";
	conf.consumer = "test-1";
	conf.slot = 1;
	conf.plugin_dir = plugin_dir;
	conf.runners = &rc;
	conf.timeout_s = timeout_s;
	conf.grace_s = grace_s;
	conf.dir = slot_dir;
	memset(r, 0, sizeof(*r));
	r->base = event_base_new();
	chld = evsignal_new(r->base, SIGCHLD, on_chld, r);
	event_add(chld, NULL);
	clock_gettime(CLOCK_MONOTONIC, &a);
	r->job = job_start(r->base, &conf, t, &hooks, r);
	/* Nothing is reported from inside job_start. */
	assert_int_equal(r->done_calls, 0);
	event_base_dispatch(r->base);
	clock_gettime(CLOCK_MONOTONIC, &b);
	if (elapsed)
		*elapsed = (double)(b.tv_sec - a.tv_sec) +
			   (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	assert_int_equal(r->done_calls, 1);
	assert_true(job_is_done(r->job));
	event_free(chld);
	return r->job;
}

static void finish(struct run *r)
{
	job_free(r->job);
	event_base_free(r->base);
}

/* A command task running python code. */
static void py_task(struct task *t, const char *code)
{
	memset(t, 0, sizeof(*t));
	t->run = xstrdup("r1");
	t->id = xstrdup("t1");
	t->attempt = 2;
	t->suite = xstrdup("suite");
	t->phase = xstrdup("phase");
	t->runner = xstrdup("command");
	t->queue = xstrdup("default");
	t->nargv = 3;
	t->argv = xcalloc(3, sizeof(char *));
	t->argv[0] = xstrdup(PY);
	t->argv[1] = xstrdup("-c");
	t->argv[2] = xstrdup(code);
}

static void test_exit_codes(void **state)
{
	struct task t;
	struct run r;
	struct task_result *res;

	(void)state;
	py_task(&t, "import os; assert os.environ['TESTFLEET_ATTEMPT'] == '2'");
	res = job_result(run_task(&t, 30, 1, 1, &r, NULL));
	assert_int_equal(res->status, TASK_COMPLETED);
	assert_int_equal(res->exit_code, 0);
	assert_string_equal(res->worker, "test/slot-1");
	assert_int_equal(res->attempt, 2);
	assert_int_equal(res->ntests, 1);
	assert_string_equal(res->tests[0].id, "suite");
	assert_int_equal(res->tests[0].outcome, OUTCOME_PASSED);
	assert_null(res->output);
	assert_null(res->message);
	finish(&r);

	py_task(&t, "import sys; print('bye'); sys.exit(3)");
	res = job_result(run_task(&t, 30, 1, 1, &r, NULL));
	assert_int_equal(res->status, TASK_COMPLETED);
	assert_int_equal(res->exit_code, 3);
	assert_int_equal(res->tests[0].outcome, OUTCOME_FAILED);
	assert_string_equal(res->message, "command exited with status 3: bye");
	assert_string_equal(res->output, "bye\n");
	finish(&r);
}

static void test_crash(void **state)
{
	struct task t;
	struct run r;
	struct task_result *res;

	(void)state;
	py_task(&t,
		"import os\n"
		"os.write(3, b'{\"e\":\"start\",\"id\":\"t.py::boom\"}\\n')\n"
		"os.kill(os.getpid(), 9)\n");
	res = job_result(run_task(&t, 30, 1, 1, &r, NULL));
	assert_int_equal(res->status, TASK_CRASHED);
	assert_int_equal(res->exit_code, -1);
	assert_int_equal(res->term_signal, SIGKILL);
	assert_string_equal(res->running, "t.py::boom");
	assert_non_null(strstr(res->message, "signal 9"));
	assert_non_null(strstr(res->message, "while running t.py::boom"));
	assert_int_equal(res->ntests, 0);
	assert_int_equal(r.starts, 1);
	finish(&r);
}

static void test_timeout(void **state)
{
	struct task t;
	struct run r;
	struct task_result *res;
	double elapsed;

	(void)state;
	py_task(&t, "import os, time\n"
		    "os.write(3, b'{\"e\":\"start\",\"id\":\"slow\"}\\n')\n"
		    "time.sleep(30)\n");
	t.timeout_s = 1; /* the task's timeout wins over the worker's */
	t.ntests = 1;
	t.tests = xcalloc(1, sizeof(char *));
	t.tests[0] = xstrdup("slow");
	res = job_result(run_task(&t, 60, 5, 1, &r, &elapsed));
	assert_int_equal(res->status, TASK_TIMEOUT);
	assert_int_equal(res->term_signal, SIGTERM);
	assert_string_equal(res->running, "slow");
	assert_string_equal(res->message, "timed out after 1 s while running "
					  "slow");
	assert_int_equal(res->nunfinished, 1);
	assert_string_equal(res->unfinished[0], "slow");
	assert_true(elapsed >= 0.9 && elapsed < 3);
	finish(&r);

	/* A runner that ignores TERM is killed after the grace period. */
	py_task(&t, "import signal, time\n"
		    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
		    "time.sleep(30)\n");
	res = job_result(run_task(&t, 1, 1, 1, &r, &elapsed));
	assert_int_equal(res->status, TASK_TIMEOUT);
	assert_int_equal(res->term_signal, SIGKILL);
	assert_true(elapsed >= 1.9 && elapsed < 4);
	finish(&r);
}

static void test_big_output(void **state)
{
	struct task t;
	struct run r;
	struct task_result *res;

	(void)state;
	/* 8 MiB on stdout and stderr, then a marker at the very end. */
	py_task(&t, "import sys\n"
		    "for i in range(4096):\n"
		    "    sys.stdout.write('o' * 1023 + '\\n')\n"
		    "    sys.stderr.write('e' * 1023 + '\\n')\n"
		    "sys.stdout.flush()\n"
		    "print('LAST LINE')\n"
		    "sys.exit(1)\n");
	res = job_result(run_task(&t, 60, 1, 1, &r, NULL));
	assert_int_equal(res->status, TASK_COMPLETED);
	assert_int_equal(res->exit_code, 1);
	assert_non_null(res->output);
	assert_true(strlen(res->output) < 140 * 1024);
	assert_non_null(strstr(res->output, " bytes dropped ...]\n"));
	assert_non_null(strstr(res->output, "LAST LINE\n"));
	finish(&r);
}

static void test_events(void **state)
{
	struct task t;
	struct run r;
	struct task_result *res;
	size_t i;

	(void)state;
	py_task(&t,
		"import os\n"
		"def ev(s): os.write(3, s.encode() + b'\\n')\n"
		"ev('{\"e\":\"start\",\"id\":\"a\"}')\n"
		"ev('{\"e\":\"finish\",\"id\":\"a\",\"outcome\":\"passed\"}')\n"
		"ev('not json')\n"
		"ev('{\"e\":\"start\",\"id\":\"b\"}')\n"
		"ev('{\"e\":\"finish\",\"id\":\"b\",\"outcome\":\"failed\","
		"\"msg\":\"boom\",\"file\":\"b.py\",\"line\":3}')\n");
	t.ntests = 3;
	t.tests = xcalloc(3, sizeof(char *));
	t.tests[0] = xstrdup("a");
	t.tests[1] = xstrdup("b");
	t.tests[2] = xstrdup("c");
	res = job_result(run_task(&t, 60, 1, 1, &r, NULL));
	assert_int_equal(res->status, TASK_COMPLETED);
	assert_int_equal(r.starts, 2);
	assert_int_equal(r.finishes, 2);
	assert_int_equal(res->ntests, 2);
	for (i = 0; i < 2; i++) {
		if (strcmp(res->tests[i].id, "b") == 0) {
			assert_int_equal(res->tests[i].outcome, OUTCOME_FAILED);
			assert_string_equal(res->tests[i].message, "boom");
			assert_int_equal(res->tests[i].line, 3);
		}
	}
	assert_null(res->running);
	/* A command that ran to its end leaves nothing unfinished. */
	assert_int_equal(res->nunfinished, 0);
	finish(&r);
}

static void test_pytest(void **state)
{
	char err[256], *dir, *path, *old;
	struct task t;
	struct run r;
	struct task_result *res;
	FILE *f;
	size_t i;
	int seen = 0;

	(void)state;
	dir = child_mkdtemp("tfw-test-suite-", err, sizeof(err));
	assert_non_null(dir);
	path = xasprintf("%s/test_mini.py", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("import pytest\n"
	      "def test_ok():\n    pass\n"
	      "def test_bad():\n    assert 1 == 2\n"
	      "@pytest.mark.parametrize('x', [1, 2])\n"
	      "def test_p(x):\n    pass\n",
	      f);
	fclose(f);
	memset(&t, 0, sizeof(t));
	t.run = xstrdup("r1");
	t.id = xstrdup("t2");
	t.attempt = 1;
	t.suite = xstrdup("s");
	t.phase = xstrdup("p");
	t.runner = xstrdup("pytest");
	t.queue = xstrdup("default");
	t.cwd = xstrdup(dir);
	t.ntests = 3;
	t.tests = xcalloc(3, sizeof(char *));
	t.tests[0] = xstrdup("test_mini.py::test_ok");
	t.tests[1] = xstrdup("test_mini.py::test_bad");
	t.tests[2] = xstrdup("test_mini.py::test_p");
	/* The worker's PYTHONPATH comes after the plugin. */
	old = getenv("PYTHONPATH") ? xstrdup(getenv("PYTHONPATH")) : NULL;
	setenv("PYTHONPATH", "/nonexistent", 1);
	res = job_result(run_task(&t, 60, 1, 0, &r, NULL));
	if (old)
		setenv("PYTHONPATH", old, 1);
	else
		unsetenv("PYTHONPATH");
	free(old);
	if (res->status != TASK_COMPLETED)
		fail_msg("pytest task: %s: %s\n%s",
			 task_status_name(res->status),
			 res->message ? res->message : "",
			 res->output ? res->output : "");
	assert_int_equal(res->exit_code, 1);
	assert_int_equal(res->ntests, 4);
	assert_int_equal(res->nunfinished, 0);
	assert_int_equal(r.finishes, 4);
	for (i = 0; i < res->ntests; i++) {
		if (strcmp(res->tests[i].id, "test_mini.py::test_bad") == 0) {
			seen++;
			assert_int_equal(res->tests[i].outcome, OUTCOME_FAILED);
			assert_string_equal(res->tests[i].message,
					    "assert 1 == 2");
			assert_string_equal(res->tests[i].file, "test_mini.py");
			assert_int_equal(res->tests[i].line, 4);
		}
		if (strcmp(res->tests[i].id, "test_mini.py::test_p[2]") == 0)
			seen++;
	}
	assert_int_equal(seen, 2);
	finish(&r);
	assert_int_equal(child_rmtree(dir, err, sizeof(err)), 0);
	free(path);
	free(dir);
}

/* pytest dies in the middle of a test of a file-level task: the test is
 * named as running and the file stays unfinished. */
static void test_exit_mid_test(void **state)
{
	char err[256], *dir, *path;
	struct task t;
	struct run r;
	struct task_result *res;
	FILE *f;

	(void)state;
	dir = child_mkdtemp("tfw-test-suite-", err, sizeof(err));
	assert_non_null(dir);
	path = xasprintf("%s/test_x.py", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("import os\n"
	      "def test_a():\n    pass\n"
	      "def test_b():\n    os._exit(3)\n"
	      "def test_c():\n    pass\n",
	      f);
	fclose(f);
	memset(&t, 0, sizeof(t));
	t.run = xstrdup("r1");
	t.id = xstrdup("t3");
	t.attempt = 1;
	t.suite = xstrdup("s");
	t.phase = xstrdup("p");
	t.runner = xstrdup("pytest");
	t.queue = xstrdup("default");
	t.cwd = xstrdup(dir);
	t.ntests = 1;
	t.tests = xcalloc(1, sizeof(char *));
	t.tests[0] = xstrdup("test_x.py");
	res = job_result(run_task(&t, 60, 1, 0, &r, NULL));
	assert_int_equal(res->status, TASK_COMPLETED);
	assert_int_equal(res->exit_code, 3);
	assert_string_equal(res->running, "test_x.py::test_b");
	assert_string_equal(res->message, "pytest exited with status 3 while "
					  "running test_x.py::test_b");
	assert_int_equal(res->ntests, 1);
	assert_string_equal(res->tests[0].id, "test_x.py::test_a");
	assert_int_equal(res->nunfinished, 1);
	assert_string_equal(res->unfinished[0], "test_x.py");
	finish(&r);
	assert_int_equal(child_rmtree(dir, err, sizeof(err)), 0);
	free(path);
	free(dir);
}

static void test_leftovers_killed(void **state)
{
	struct task t;
	struct run r;
	struct task_result *res;
	long pid;
	int i, st;

	(void)state;
	/* The runner leaves a child in its group and exits at once. */
	py_task(
	    &t,
	    "import subprocess, sys\n"
	    "p = subprocess.Popen(['sleep', '30'], stdout=subprocess.DEVNULL,"
	    " stderr=subprocess.DEVNULL)\n"
	    "print(p.pid)\n"
	    "sys.exit(1)\n");
	res = job_result(run_task(&t, 60, 1, 1, &r, NULL));
	assert_int_equal(res->exit_code, 1);
	assert_non_null(res->output);
	pid = strtol(res->output, NULL, 10);
	assert_true(pid > 1);
	finish(&r);
	for (i = 0; i < 200; i++) {
		waitpid(-1, &st, WNOHANG);
		if (kill((pid_t)pid, 0) < 0 && errno == ESRCH)
			break;
		usleep(10000);
	}
	assert_true(i < 200);
}

static void test_refused(void **state)
{
	struct task t;
	struct run r;
	struct task_result *res;

	(void)state;
	py_task(&t, "pass");
	t.ntests = 1;
	t.tests = xcalloc(1, sizeof(char *));
	t.tests[0] = xstrdup("x");
	res = job_result(run_task(&t, 60, 1, 0, &r, NULL));
	assert_int_equal(res->status, TASK_ERROR);
	assert_non_null(strstr(res->message, "--allow-command"));
	assert_int_equal(res->nunfinished, 1);
	finish(&r);

	py_task(&t, "pass");
	free(t.argv[0]);
	t.argv[0] = xstrdup("tfw-no-such-program");
	res = job_result(run_task(&t, 60, 1, 1, &r, NULL));
	if (res->status == TASK_COMPLETED) {
		/* Under valgrind posix_spawn is fork+exec: the exec error
		 * shows as exit status 127 instead. */
		assert_int_equal(res->exit_code, 127);
	} else {
		assert_int_equal(res->status, TASK_ERROR);
		assert_string_equal(res->message,
				    "runner not found: tfw-no-such-program");
	}
	finish(&r);

	py_task(&t, "pass");
	t.cwd = xstrdup("/nonexistent/dir");
	res = job_result(run_task(&t, 60, 1, 1, &r, NULL));
	assert_int_equal(res->status, TASK_ERROR);
	assert_non_null(strstr(res->message, "/nonexistent/dir"));
	finish(&r);
}

/* The names in dir other than . and .., sorted, joined by spaces. */
static char *list_dir_names(const char *dir)
{
	struct dirent **names;
	char *out = xstrdup(""), *next;
	int n, i;

	n = scandir(dir, &names, NULL, alphasort);
	assert_true(n >= 0);
	for (i = 0; i < n; i++) {
		if (strcmp(names[i]->d_name, ".") != 0 &&
		    strcmp(names[i]->d_name, "..") != 0) {
			next = xasprintf("%s%s%s", out, out[0] ? " " : "",
					 names[i]->d_name);
			free(out);
			out = next;
		}
		free(names[i]);
	}
	free(names);
	return out;
}

/* The last line of a finished task's output, without its newline. */
static char *last_line(const struct task_result *res)
{
	const char *s, *e;

	assert_non_null(res->output);
	e = res->output + strlen(res->output);
	while (e > res->output && e[-1] == '\n')
		e--;
	s = e;
	while (s > res->output && s[-1] != '\n')
		s--;
	return xstrndup(s, (size_t)(e - s));
}

/* The tasks of a slot share its directory, each finding it empty but for
 * artifacts/; a job without a slot directory removes its own. */
static void test_slot_dir_reused(void **state)
{
	static const char code[] =
	    "import os, sys\n"
	    "t = os.environ['TMPDIR']\n"
	    "a = os.environ['TESTFLEET_ARTIFACTS']\n"
	    "print(t, sorted(os.listdir(t)), sorted(os.listdir(a)),\n"
	    "      a == t + '/artifacts')\n"
	    "if os.environ.get('TFW_JUNIT'):\n"
	    "    open(os.path.join(t, 'junit.xml'), 'w').write(\n"
	    "        '<testsuite><testcase classname=\"c\" name=\"stale\"/>'\n"
	    "        '</testsuite>')\n"
	    "open(os.path.join(a, 'shot.png'), 'w').write('png')\n"
	    "os.makedirs(os.path.join(t, 'x', 'y'))\n"
	    "sys.exit(1)\n";
	struct slotdir sd;
	struct task t;
	struct run r;
	struct task_result *res;
	char err[256], *first, *second, *dir, *want;

	(void)state;
	slotdir_init(&sd, "test-1", 1);
	slot_dir = &sd;
	py_task(&t, code);
	t.nenv = 1;
	t.env = xcalloc(1, sizeof(*t.env));
	t.env[0].key = xstrdup("TFW_JUNIT");
	t.env[0].value = xstrdup("1");
	res = job_result(run_task(&t, 30, 1, 1, &r, NULL));
	assert_int_equal(res->exit_code, 1);
	/* Its own JUnit file is read. */
	assert_int_equal(res->ntests, 1);
	assert_non_null(strstr(res->tests[0].id, "stale"));
	first = last_line(res);
	finish(&r);
	py_task(&t, code);
	res = job_result(run_task(&t, 30, 1, 1, &r, NULL));
	assert_int_equal(res->exit_code, 1);
	/* The junit.xml the first task left is not read as the second's
	 * (which wrote none). */
	assert_int_equal(res->ntests, 1);
	assert_string_equal(res->tests[0].id, "suite");
	second = last_line(res);
	finish(&r);
	slot_dir = NULL;
	assert_non_null(sd.path);
	want = xasprintf("%s ['artifacts'] [] True", sd.path);
	assert_string_equal(first, want);
	assert_string_equal(second, want);
	free(want);
	/* Emptied after the last task too. */
	dir = list_dir_names(sd.path);
	assert_string_equal(dir, "artifacts");
	free(dir);
	want = xstrdup(sd.path);
	assert_int_equal(slotdir_release(&sd, err, sizeof(err)), 0);
	assert_int_equal(access(want, F_OK), -1);
	free(want);
	free(first);
	free(second);

	/* No slot directory: the job's own, gone when the job ends. */
	py_task(&t, code);
	res = job_result(run_task(&t, 30, 1, 1, &r, NULL));
	first = last_line(res);
	finish(&r);
	dir = xstrndup(first, strcspn(first, " "));
	assert_non_null(strstr(dir, "/testfleet-test-1-s1-"));
	assert_int_equal(access(dir, F_OK), -1);
	free(dir);
	free(first);
}

/* The folders of dead workers' jobs go; live ones and others stay. */
static void test_sweep_dead(void **state)
{
	char err[256], *base, *dead_dir, *live_dir, *other, *junk, *old;
	pid_t dead;
	int st;

	(void)state;
	base = child_mkdtemp("tfw-test-sweep-", err, sizeof(err));
	assert_non_null(base);
	dead = fork();
	assert_true(dead >= 0);
	if (dead == 0)
		_exit(0);
	assert_int_equal(waitpid(dead, &st, 0), dead);
	dead_dir =
	    xasprintf("%s/testfleet-host-a-%ld-s2-AbC123", base, (long)dead);
	live_dir = xasprintf("%s/testfleet-host-a-%ld-s1-xYz789", base,
			     (long)getppid());
	other = xasprintf("%s/testfleet-host-%ld-x", base, (long)dead);
	junk = xasprintf("%s/unrelated-%ld-s1-AbC123", base, (long)dead);
	assert_int_equal(mkdir(dead_dir, 0700), 0);
	assert_int_equal(mkdir(live_dir, 0700), 0);
	assert_int_equal(mkdir(other, 0700), 0);
	assert_int_equal(mkdir(junk, 0700), 0);
	{
		char *f = xasprintf("%s/junit.xml", dead_dir);
		FILE *fp = fopen(f, "w");

		assert_non_null(fp);
		fclose(fp);
		free(f);
	}
	old = getenv("TMPDIR") ? xstrdup(getenv("TMPDIR")) : NULL;
	setenv("TMPDIR", base, 1);
	assert_int_equal(job_sweep_dead(NULL, NULL), 1);
	if (old)
		setenv("TMPDIR", old, 1);
	else
		unsetenv("TMPDIR");
	free(old);
	assert_int_equal(access(dead_dir, F_OK), -1);
	assert_int_equal(access(live_dir, F_OK), 0);
	assert_int_equal(access(other, F_OK), 0);
	assert_int_equal(access(junk, F_OK), 0);
	assert_int_equal(child_rmtree(base, err, sizeof(err)), 0);
	free(dead_dir);
	free(live_dir);
	free(other);
	free(junk);
	free(base);
}

int main(void)
{
	int rc;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_exit_codes),
	    cmocka_unit_test(test_crash),
	    cmocka_unit_test(test_timeout),
	    cmocka_unit_test(test_big_output),
	    cmocka_unit_test(test_events),
	    cmocka_unit_test(test_pytest),
	    cmocka_unit_test(test_exit_mid_test),
	    cmocka_unit_test(test_leftovers_killed),
	    cmocka_unit_test(test_refused),
	    cmocka_unit_test(test_sweep_dead),
	    cmocka_unit_test(test_slot_dir_reused),
	};

	/* Run from the top of the tree (make unit). */
	plugin_dir = realpath("worker/plugins", NULL);
	if (!plugin_dir) {
		fprintf(stderr, "run from the top of the source tree\n");
		return 1;
	}
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	signal(SIGPIPE, SIG_IGN);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	free(plugin_dir);
	return rc;
}
