/* test_warm.c -- pytest started warm, with the real /usr/bin/python3 and
 * /usr/bin/pytest: which commands qualify (console scripts, "#!/usr/bin/env
 * python3", "python3 -m pytest"; not shell scripts, other Python programs
 * or relative paths), tasks that run pytest with their own environment,
 * cwd, argv and descriptors and become the worker's children (it is a
 * subreaper, as the worker is), zygotes shared by equal start-up
 * environments and capped in number, a zygote killed between tasks, and a
 * broken zygote turning warm starts off. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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
#include <unistd.h>

#include <cmocka.h>

#include "buf.h"
#include "child.h"
#include "warm.h"
#include "xmalloc.h"

#define PYTEST "/usr/bin/pytest"

static char *plugin_dir;
static char *tmp;

static void write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static int setup(void **state)
{
	char err[256], *p;

	(void)state;
	plugin_dir = realpath("worker/plugins", NULL);
	assert_non_null(plugin_dir);
	tmp = child_mkdtemp("tfw-warm-", err, sizeof(err));
	assert_non_null(tmp);
	p = xasprintf("%s/test_w.py", tmp);
	write_file(p,
		   "import os, sys, json\n"
		   "def test_report():\n"
		   "    info = {'task': os.environ.get('TESTFLEET_TASK'),\n"
		   "            'suite': os.environ.get('SUITE_VAR'),\n"
		   "            'cwd': os.getcwd(), 'argv0': sys.argv[0],\n"
		   "            'ppid': os.getppid(),\n"
		   "            'leader': os.getpgid(0) == os.getpid()}\n"
		   "    os.write(3, json.dumps(info).encode())\n"
		   "def test_fails():\n"
		   "    assert 1 == 2\n",
		   0644);
	free(p);
	/* The worker is a subreaper: warm tasks are reparented to it. */
	assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	return 0;
}

static int teardown(void **state)
{
	char err[256];

	(void)state;
	child_rmtree(tmp, err, sizeof(err));
	free(tmp);
	free(plugin_dir);
	return 0;
}

static struct warm *warm_for(const char *cmd, char *why, size_t whylen)
{
	char *words[4];
	size_t n = 0;
	char *copy = xstrdup(cmd), *save = NULL, *w;
	struct warm *wm;

	for (w = strtok_r(copy, " ", &save); w && n < 4;
	     w = strtok_r(NULL, " ", &save))
		words[n++] = w;
	wm = warm_new(words, n, plugin_dir, why, whylen);
	free(copy);
	return wm;
}

static void test_which_commands(void **state)
{
	char why[512], *script;
	struct warm *w;

	(void)state;
	w = warm_for(PYTEST, why, sizeof(why));
	assert_non_null(w);
	assert_string_equal(warm_describe(w),
			    "/usr/bin/python3 running /usr/bin/pytest");
	assert_int_equal(warm_live_zygotes(w), 0); /* started on demand */
	warm_free(w);
	/* Found in PATH. */
	w = warm_for("pytest -x", why, sizeof(why));
	assert_non_null(w);
	warm_free(w);
	w = warm_for("python3 -m pytest", why, sizeof(why));
	assert_non_null(w);
	assert_true(strstr(warm_describe(w), "python3 -m pytest") != NULL);
	warm_free(w);

	script = xasprintf("%s/envpytest", tmp);
	write_file(script,
		   "#!/usr/bin/env python3\nfrom pytest import console_main\n"
		   "console_main()\n",
		   0755);
	w = warm_for(script, why, sizeof(why));
	assert_non_null(w);
	assert_true(strstr(warm_describe(w), "python3 running") != NULL);
	warm_free(w);

	write_file(script, "#!/bin/sh\nexec pytest \"$@\" # console_main\n",
		   0755);
	assert_null(warm_for(script, why, sizeof(why)));
	assert_true(strstr(why, "not python") != NULL);

	write_file(script, "#!/usr/bin/python3\nprint('my own runner')\n",
		   0755);
	assert_null(warm_for(script, why, sizeof(why)));
	assert_true(strstr(why, "console_main") != NULL);

	write_file(script, "\x7f" "ELF binary", 0755);
	assert_null(warm_for(script, why, sizeof(why)));
	assert_true(strstr(why, "not a script") != NULL);
	free(script);

	assert_null(warm_for("./venv/bin/pytest", why, sizeof(why)));
	assert_null(warm_for("no-such-pytest-here", why, sizeof(why)));
	assert_true(strstr(why, "not found") != NULL);
	assert_null(warm_for("sh -m pytest", why, sizeof(why)));
	assert_null(warm_new((char *[]){PYTEST}, 1, tmp, why, sizeof(why)));
	assert_true(strstr(why, "testfleet_zygote.py") != NULL);
}

struct ran {
	int status;
	struct buf out;
	struct buf events;
};

static void drain(int fd, struct buf *b)
{
	char chunk[4096];
	ssize_t n;

	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		buf_append(b, chunk, (size_t)n);
}

/* Runs pytest -q on test_w.py::<test> warm with task name task and
 * SUITE_VAR=suite; the task's status, output and events. */
static int run_warm(struct warm *w, const char *test, const char *task,
		    const char *suite, const char *cwd, struct ran *r)
{
	char err[512], *id = xasprintf("test_w.py::%s", test);
	char *argv[] = {PYTEST, "-q", "-p", "no:cacheprovider", id, NULL};
	char *task_var = xasprintf("TESTFLEET_TASK=%s", task);
	char *suite_var = xasprintf("SUITE_VAR=%s", suite);
	char *envp[] = {"PATH=/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE=1",
			task_var, suite_var, NULL};
	struct child_req req;
	int outp[2], evp[2], rc;
	pid_t pid;

	assert_int_equal(pipe2(outp, O_CLOEXEC), 0);
	assert_int_equal(pipe2(evp, O_CLOEXEC), 0);
	req.argv = argv;
	req.envp = envp;
	req.cwd = cwd;
	req.out_fd = outp[1];
	req.events_fd = evp[1];
	rc = warm_spawn(w, &req, &pid, err, sizeof(err));
	close(outp[1]);
	close(evp[1]);
	buf_init(&r->out, 0);
	buf_init(&r->events, 0);
	if (rc == 0) {
		/* Our child, as an exec'd runner would be. */
		assert_int_equal(waitpid(pid, &r->status, 0), pid);
		drain(outp[0], &r->out);
		drain(evp[0], &r->events);
	} else {
		print_message("warm_spawn: %s\n", err);
	}
	close(outp[0]);
	close(evp[0]);
	free(id);
	free(task_var);
	free(suite_var);
	return rc;
}

static void ran_release(struct ran *r)
{
	buf_release(&r->out);
	buf_release(&r->events);
}

static void test_tasks(void **state)
{
	char why[512], *want;
	struct warm *w;
	struct ran r;
	int i;

	(void)state;
	w = warm_for(PYTEST, why, sizeof(why));
	assert_non_null(w);

	assert_int_equal(run_warm(w, "test_report", "t1", "a", tmp, &r), 0);
	assert_true(WIFEXITED(r.status));
	assert_int_equal(WEXITSTATUS(r.status), 0);
	assert_non_null(strstr(r.out.data, "1 passed"));
	assert_non_null(strstr(r.events.data, "\"task\": \"t1\""));
	assert_non_null(strstr(r.events.data, "\"suite\": \"a\""));
	assert_non_null(strstr(r.events.data, "\"argv0\": \"" PYTEST "\""));
	assert_non_null(strstr(r.events.data, "\"leader\": true"));
	want = xasprintf("\"cwd\": \"%s\"", tmp);
	assert_non_null(strstr(r.events.data, want));
	free(want);
	want = xasprintf("\"ppid\": %ld,", (long)getpid());
	assert_non_null(strstr(r.events.data, want));
	free(want);
	ran_release(&r);
	assert_int_equal(warm_live_zygotes(w), 1);

	/* Another task id, same start-up environment: the same zygote. */
	assert_int_equal(run_warm(w, "test_fails", "t2", "a", tmp, &r), 0);
	assert_int_equal(WEXITSTATUS(r.status), 1);
	assert_non_null(strstr(r.out.data, "1 failed"));
	ran_release(&r);
	assert_int_equal(warm_live_zygotes(w), 1);

	/* A suite variable of its own: a zygote of its own; at most
	 * WARM_MAX_ZYGOTES live. */
	assert_int_equal(run_warm(w, "test_report", "t3", "b", tmp, &r), 0);
	assert_non_null(strstr(r.events.data, "\"suite\": \"b\""));
	ran_release(&r);
	assert_int_equal(warm_live_zygotes(w), 2);
	assert_int_equal(run_warm(w, "test_report", "t4", "c", tmp, &r), 0);
	ran_release(&r);
	assert_int_equal(run_warm(w, "test_report", "t5", "d", tmp, &r), 0);
	ran_release(&r);
	assert_int_equal(run_warm(w, "test_report", "t6", "e", tmp, &r), 0);
	assert_non_null(strstr(r.events.data, "\"suite\": \"e\""));
	ran_release(&r);
	assert_int_equal(warm_live_zygotes(w), WARM_MAX_ZYGOTES);

	/* A cwd that is gone: refused (the worker's cold start then says
	 * so), and not held against the zygotes. */
	for (i = 0; i < WARM_MAX_FAILURES; i++) {
		assert_int_equal(run_warm(w, "test_report", "t7", "a",
					  "/nonexistent-dir", &r),
				 -1);
		ran_release(&r);
	}
	assert_true(warm_enabled(w));
	warm_free(w);
}

/* SIGKILLs this process's children that run testfleet_zygote.py; how
 * many. */
static int kill_our_zygotes(void)
{
	char path[64], cmd[4096];
	struct dirent *de;
	long pid, ppid;
	int n = 0, fd;
	ssize_t len;
	FILE *f;
	DIR *d = opendir("/proc");

	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		pid = atol(de->d_name);
		if (pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
		f = fopen(path, "r");
		if (!f)
			continue;
		/* pid (comm) state ppid: comm has no ')' here. */
		if (fscanf(f, "%*d (%*[^)]) %*c %ld", &ppid) != 1)
			ppid = -1;
		fclose(f);
		if (ppid != (long)getpid())
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid);
		fd = open(path, O_RDONLY);
		if (fd < 0)
			continue;
		len = read(fd, cmd, sizeof(cmd) - 1);
		close(fd);
		if (len <= 0)
			continue;
		cmd[len] = '\0';
		while (--len > 0)
			if (cmd[len] == '\0')
				cmd[len] = ' ';
		if (strstr(cmd, WARM_ZYGOTE_FILE) && kill((pid_t)pid, SIGKILL) == 0)
			n++;
	}
	closedir(d);
	return n;
}

/* Reaps children until the zygote shows up; what warm_reaped said. */
static int reap_zygote(struct warm *w)
{
	int st;
	pid_t p;

	for (;;) {
		p = waitpid(-1, &st, 0);
		if (p < 0)
			return 0;
		if (warm_reaped(w, p, st))
			return 1;
	}
}

static void test_zygote_dies(void **state)
{
	char why[512];
	struct warm *w;
	struct ran r;
	int i;

	(void)state;
	w = warm_for(PYTEST, why, sizeof(why));
	assert_non_null(w);
	assert_int_equal(run_warm(w, "test_report", "t1", "a", tmp, &r), 0);
	ran_release(&r);
	/* Killed between tasks: the worker reaps it, the next task starts
	 * a new one. */
	assert_int_equal(kill_our_zygotes(), 1);
	assert_true(reap_zygote(w));
	assert_int_equal(warm_live_zygotes(w), 0);
	assert_true(warm_enabled(w));
	assert_int_equal(run_warm(w, "test_report", "t2", "a", tmp, &r), 0);
	assert_int_equal(WEXITSTATUS(r.status), 0);
	ran_release(&r);
	warm_free(w);

	/* A zygote that cannot work: each task is refused (and started
	 * cold by the worker); after WARM_MAX_FAILURES warm starts stop. */
	{
		char *dir = xasprintf("%s/plugins", tmp), *z;

		assert_int_equal(mkdir(dir, 0755), 0);
		z = xasprintf("%s/%s", dir, WARM_ZYGOTE_FILE);
		write_file(z, "import sys\nsys.exit(3)\n", 0644);
		w = warm_new((char *[]){PYTEST}, 1, dir, why, sizeof(why));
		assert_non_null(w);
		for (i = 0; i < WARM_MAX_FAILURES; i++) {
			assert_true(warm_enabled(w));
			assert_int_equal(
			    run_warm(w, "test_report", "t", "a", tmp, &r), -1);
			ran_release(&r);
		}
		assert_false(warm_enabled(w));
		warm_free(w);
		free(z);
		free(dir);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_which_commands),
	    cmocka_unit_test(test_tasks),
	    cmocka_unit_test(test_zygote_dies),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
