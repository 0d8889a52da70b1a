/* test_child.c -- the runner's surroundings: environment building, the
 * temporary directory and its removal (read-only directories, symlinks
 * not followed), and a real spawn: own process group, fds 0-3 only,
 * signals reset in the child and left alone in the worker, events on fd 3,
 * exec failures reported by child_spawn (missing program, missing or bad
 * cwd, no execute permission), a long argv through /bin/sh, death with
 * the worker. */
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "buf.h"
#include "child.h"
#include "xmalloc.h"

static void test_env(void **state)
{
	char *base[] = {"A=1", "B=two", "junk", "=x", "A=again", NULL};
	struct env e;
	char *const *v;
	size_t n;

	(void)state;
	env_init(&e, base);
	assert_string_equal(env_get(&e, "A"), "again");
	assert_string_equal(env_get(&e, "B"), "two");
	assert_null(env_get(&e, "junk"));
	assert_null(env_get(&e, "C"));
	env_set(&e, "B", "three=3");
	env_set(&e, "C", "");
	assert_string_equal(env_get(&e, "B"), "three=3");
	assert_string_equal(env_get(&e, "C"), "");
	v = env_vars(&e);
	for (n = 0; v[n]; n++)
		;
	assert_int_equal(n, 3);
	env_release(&e);
	env_init(&e, NULL);
	assert_null(env_vars(&e)[0]);
	env_release(&e);
	assert_true(env_name_ok("PATH"));
	assert_false(env_name_ok(""));
	assert_false(env_name_ok("A=B"));
	assert_false(env_name_ok(NULL));
}

static void write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static void test_tmpdir_and_rmtree(void **state)
{
	char err[512];
	char *dir, *p, *outside, *keep;
	struct stat st;

	(void)state;
	outside = child_mkdtemp("tfw-test-outside-", err, sizeof(err));
	assert_non_null(outside);
	keep = xasprintf("%s/keep", outside);
	write_file(keep, "precious");

	dir = child_mkdtemp("tfw-test-", err, sizeof(err));
	assert_non_null(dir);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	p = xasprintf("%s/a", dir);
	assert_int_equal(mkdir(p, 0700), 0);
	free(p);
	p = xasprintf("%s/a/b", dir);
	assert_int_equal(mkdir(p, 0700), 0);
	free(p);
	p = xasprintf("%s/a/b/file", dir);
	write_file(p, "x");
	free(p);
	/* A directory the test made read-only and unsearchable. */
	p = xasprintf("%s/a/b", dir);
	assert_int_equal(chmod(p, 0), 0);
	free(p);
	/* A symlink out of the tree must not be followed. */
	p = xasprintf("%s/link", dir);
	assert_int_equal(symlink(outside, p), 0);
	free(p);

	assert_int_equal(child_rmtree(dir, err, sizeof(err)), 0);
	assert_int_equal(stat(dir, &st), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(stat(keep, &st), 0);
	/* Gone already: not an error. */
	assert_int_equal(child_rmtree(dir, err, sizeof(err)), 0);
	assert_int_equal(child_rmtree(outside, err, sizeof(err)), 0);
	free(keep);
	free(outside);
	free(dir);
}

static void read_all(int fd, struct buf *b)
{
	char chunk[4096];
	ssize_t n;

	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n <= 0)
			break;
		buf_append(b, chunk, (size_t)n);
	}
}

static const char probe[] =
    "import os, signal, sys\n"
    "fds = sorted(int(f) for f in os.listdir('/proc/self/fd'))\n"
    "print('pgrp', os.getpgrp() == os.getpid())\n"
    "print('fds', [f for f in fds if f <= 3 or f == 57])\n"
    "print('mask', sorted(signal.pthread_sigmask(signal.SIG_BLOCK, [])))\n"
    "print('int', signal.getsignal(signal.SIGINT) is signal.SIG_IGN)\n"
    "print('stdin', sys.stdin.read() == '')\n"
    "print('env', os.environ.get('TFW_X'))\n"
    "sys.stderr.write('err line\\n')\n"
    "os.write(3, b'{\"e\":\"start\"}\\n')\n";

/* A TMPDIR so long that runners' unix sockets below it would not fit:
 * the directory goes to /tmp instead. */
static void test_tmpdir_too_long(void **state)
{
	const char *old = getenv("TMPDIR");
	char *saved = old ? strdup(old) : NULL;
	char err[512], *dir, *base;
	char longdir[] = "/tmp/tfw-test-long-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
			 "aaaaaaaaXXXXXX";

	(void)state;
	base = mkdtemp(longdir);
	assert_non_null(base);
	setenv("TMPDIR", base, 1);
	dir = child_mkdtemp("tfw-test-", err, sizeof(err));
	assert_non_null(dir);
	assert_true(strncmp(dir, "/tmp/tfw-test-", 14) == 0);
	assert_true(strlen(dir) <= CHILD_TMPDIR_MAX);
	assert_int_equal(rmdir(dir), 0);
	free(dir);
	/* A short one is used as it is. */
	setenv("TMPDIR", "/tmp", 1);
	dir = child_mkdtemp("tfw-test-", err, sizeof(err));
	assert_non_null(dir);
	assert_int_equal(rmdir(dir), 0);
	free(dir);
	assert_int_equal(rmdir(base), 0);
	if (saved) {
		setenv("TMPDIR", saved, 1);
		free(saved);
	} else {
		unsetenv("TMPDIR");
	}
}

static void test_spawn_child(void **state)
{
	char *argv[] = {"/usr/bin/python3", "-c", (char *)probe, NULL};
	char *envp[] = {"TFW_X=hello", "PATH=/usr/bin:/bin", NULL};
	struct child_req req;
	struct buf out, ev;
	sigset_t block, old;
	int outp[2], evp[2], extra, st;
	char err[256];
	pid_t pid;

	(void)state;
	assert_int_equal(pipe2(outp, O_CLOEXEC), 0);
	assert_int_equal(pipe2(evp, O_CLOEXEC), 0);
	/* An inherited descriptor without CLOEXEC must still be closed. */
	extra = dup2(outp[1], 57);
	assert_int_equal(extra, 57);
	/* The child must not inherit a blocked mask or ignored signals. */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, &old);
	signal(SIGINT, SIG_IGN);

	req.argv = argv;
	req.envp = envp;
	req.cwd = "/";
	req.out_fd = outp[1];
	req.events_fd = evp[1];
	assert_int_equal(child_spawn(&req, &pid, err, sizeof(err)), 0);
	/* The child ran in our memory: what it reset is still ours. */
	assert_true(signal(SIGINT, SIG_DFL) == SIG_IGN);
	sigprocmask(SIG_SETMASK, &old, &block);
	assert_true(sigismember(&block, SIGTERM));
	close(outp[1]);
	close(evp[1]);
	close(extra);
	buf_init(&out, 1 << 20);
	buf_init(&ev, 1 << 20);
	read_all(outp[0], &out);
	read_all(evp[0], &ev);
	close(outp[0]);
	close(evp[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_non_null(out.data);
	if (!strstr(out.data, "pgrp True\n") ||
	    !strstr(out.data, "fds [0, 1, 2, 3]\n") ||
	    !strstr(out.data, "mask []\n") ||
	    !strstr(out.data, "int False\n") ||
	    !strstr(out.data, "stdin True\n") ||
	    !strstr(out.data, "env hello\n") || !strstr(out.data, "err line\n"))
		fail_msg("unexpected child output:\n%s", out.data);
	assert_string_equal(ev.data, "{\"e\":\"start\"}\n");
	buf_release(&out);
	buf_release(&ev);
}

static void test_spawn_missing(void **state)
{
	char *argv[] = {"tfw-no-such-program", NULL};
	char *envp[] = {NULL};
	struct child_req req;
	char err[256];
	pid_t pid;
	int rc, st, fd = open("/dev/null", O_WRONLY | O_CLOEXEC);

	(void)state;
	req.argv = argv;
	req.envp = envp;
	req.cwd = NULL;
	req.out_fd = fd;
	req.events_fd = -1;
	rc = child_spawn(&req, &pid, err, sizeof(err));
	if (rc == 0) {
		/* Under valgrind posix_spawn is fork+exec: the child exits
		 * 127 instead of posix_spawn reporting the error. */
		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 127);
	} else {
		assert_int_equal(rc, ENOENT);
		assert_string_equal(err,
				    "runner not found: tfw-no-such-program");
		assert_int_equal(pid, -1);
	}
	close(fd);
}

/* Runs argv with child_spawn; returns its result, with the message in
 * err, and the child's exit status in *status when it started. */
static int spawn_status(char **argv, const char *cwd, char *err, size_t errlen,
			int *status)
{
	char *envp[] = {"PATH=/usr/bin:/bin", NULL};
	struct child_req req;
	pid_t pid = 12345;
	int rc, fd = open("/dev/null", O_WRONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	req.argv = argv;
	req.envp = envp;
	req.cwd = cwd;
	req.out_fd = fd;
	req.events_fd = -1;
	rc = child_spawn(&req, &pid, err, errlen);
	if (rc == 0) {
		assert_true(pid > 0);
		assert_int_equal(waitpid(pid, status, 0), pid);
	} else {
		assert_int_equal(pid, -1);
		/* The failed child was reaped already. */
		assert_int_equal(waitpid(-1, status, WNOHANG), -1);
		assert_int_equal(errno, ECHILD);
	}
	close(fd);
	return rc;
}

/* Every way the exec can fail comes back as an error of child_spawn,
 * none as a child that exits 127. */
static void test_spawn_exec_errors(void **state)
{
	char *missing_abs[] = {"/nonexistent/tfw-prog", NULL};
	char *true_argv[] = {"true", NULL};
	char *noexec[] = {NULL, NULL};
	char err[256], *dir, *path;
	int st;

	(void)state;
	assert_int_equal(spawn_status(missing_abs, NULL, err, sizeof(err), &st),
			 ENOENT);
	assert_string_equal(err, "runner not found: /nonexistent/tfw-prog");

	/* A program that exists, in a cwd that does not: not "not found". */
	assert_int_equal(
	    spawn_status(true_argv, "/nonexistent/dir", err, sizeof(err), &st),
	    ENOENT);
	assert_string_equal(err, "cannot start true: cwd /nonexistent/dir: "
				 "No such file or directory");
	/* A cwd that is a file. */
	assert_int_equal(
	    spawn_status(true_argv, "/dev/null", err, sizeof(err), &st),
	    ENOTDIR);
	assert_non_null(strstr(err, "cwd /dev/null"));

	/* A file without execute permission (refused even to root). */
	dir = child_mkdtemp("tfw-test-exec-", err, sizeof(err));
	assert_non_null(dir);
	path = xasprintf("%s/prog", dir);
	write_file(path, "#!/bin/sh\nexit 0\n");
	noexec[0] = path;
	assert_int_equal(spawn_status(noexec, NULL, err, sizeof(err), &st),
			 EACCES);
	assert_non_null(strstr(err, "Permission denied"));

	/* And the good case for contrast, in a cwd that exists. */
	assert_int_equal(spawn_status(true_argv, dir, err, sizeof(err), &st),
			 0);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_int_equal(child_rmtree(dir, err, sizeof(err)), 0);
	free(path);
	free(dir);
}

/* A script without "#!" runs through /bin/sh, which execvpe sets up on
 * the child's stack with a copy of argv: a long argv must fit. */
static void test_spawn_long_argv(void **state)
{
	enum { NARGS = 30000 };
	char **argv = xcalloc(NARGS + 2, sizeof(*argv));
	char err[256], *dir, *path, *out;
	struct child_req req;
	char *envp[] = {"PATH=/usr/bin:/bin", NULL};
	struct buf b;
	int outp[2], st, i;
	pid_t pid;

	(void)state;
	dir = child_mkdtemp("tfw-test-argv-", err, sizeof(err));
	assert_non_null(dir);
	path = xasprintf("%s/count.sh", dir);
	write_file(path, "echo \"$#\"\n");
	assert_int_equal(chmod(path, 0700), 0);
	argv[0] = path;
	for (i = 1; i <= NARGS; i++)
		argv[i] = "x";
	assert_int_equal(pipe2(outp, O_CLOEXEC), 0);
	req.argv = argv;
	req.envp = envp;
	req.cwd = NULL;
	req.out_fd = outp[1];
	req.events_fd = -1;
	assert_int_equal(child_spawn(&req, &pid, err, sizeof(err)), 0);
	close(outp[1]);
	buf_init(&b, 1 << 16);
	read_all(outp[0], &b);
	close(outp[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	out = xasprintf("%d\n", NARGS);
	assert_non_null(b.data);
	assert_string_equal(b.data, out);
	free(out);
	buf_release(&b);
	assert_int_equal(child_rmtree(dir, err, sizeof(err)), 0);
	free(path);
	free(dir);
	free(argv);
}

/* Whether pid is gone or a zombie. */
static int is_dead(pid_t pid)
{
	char path[64], buf[512], *p;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	f = fopen(path, "r");
	if (!f)
		return 1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
}

/* A runner whose worker dies (even by SIGKILL) is killed too. */
static void test_spawn_dies_with_parent(void **state)
{
	char *argv[] = {"/bin/sleep", "60", NULL};
	char *envp[] = {NULL};
	struct child_req req;
	char err[256];
	pid_t helper, pid = -1;
	int p[2], st, i, fd;

	(void)state;
	assert_int_equal(pipe(p), 0);
	helper = fork();
	assert_true(helper >= 0);
	if (helper == 0) {
		fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
		req.argv = argv;
		req.envp = envp;
		req.cwd = NULL;
		req.out_fd = fd;
		req.events_fd = -1;
		if (child_spawn(&req, &pid, err, sizeof(err)) != 0)
			pid = -1;
		if (write(p[1], &pid, sizeof(pid)) != (ssize_t)sizeof(pid))
			_exit(2);
		/* Dies the hard way, as a worker would under kill -9. */
		raise(SIGKILL);
		_exit(3);
	}
	close(p[1]);
	assert_int_equal(read(p[0], &pid, sizeof(pid)), (ssize_t)sizeof(pid));
	close(p[0]);
	assert_true(pid > 0);
	assert_int_equal(waitpid(helper, &st, 0), helper);
	assert_true(WIFSIGNALED(st));
	for (i = 0; i < 200 && !is_dead(pid); i++)
		usleep(10000);
	if (!is_dead(pid)) {
		kill(pid, SIGKILL);
		fail_msg("runner %ld outlived its worker", (long)pid);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_env),
	    cmocka_unit_test(test_tmpdir_and_rmtree),
	    cmocka_unit_test(test_tmpdir_too_long),
	    cmocka_unit_test(test_spawn_child),
	    cmocka_unit_test(test_spawn_missing),
	    cmocka_unit_test(test_spawn_exec_errors),
	    cmocka_unit_test(test_spawn_long_argv),
	    cmocka_unit_test(test_spawn_dies_with_parent),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
