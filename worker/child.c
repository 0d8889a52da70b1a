/* child.c -- runner processes, their environment and temporary directory
 * (see child.h). */
#include "child.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "xmalloc.h"

#define RMTREE_MAX_DEPTH 256

/* In the child, between fork and exec: only async-signal-safe calls. On
 * failure the errno goes up the report pipe and the child exits 127. */
static void child_exec(const struct child_req *req, pid_t parent, int report)
{
	struct sigaction sa;
	sigset_t none;
	int sig, fd, err;

	/* The runner dies with the worker, even by SIGKILL, instead of
	 * running on unwatched; the check closes the race with a worker
	 * that died before the prctl. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent) {
		err = ESRCH;
		goto fail;
	}
	if (setpgid(0, 0) < 0)
		goto fail_errno;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	for (sig = 1; sig < NSIG; sig++) {
		if (sig != SIGKILL && sig != SIGSTOP)
			sigaction(sig, &sa, NULL);
	}
	if (req->cwd && chdir(req->cwd) < 0)
		goto fail_errno;
	fd = open("/dev/null", O_RDONLY);
	if (fd < 0)
		goto fail_errno;
	if (fd != 0) {
		if (dup2(fd, 0) < 0)
			goto fail_errno;
		close(fd);
	}
	if (dup2(req->out_fd, 1) < 0 || dup2(req->out_fd, 2) < 0)
		goto fail_errno;
	if (req->events_fd == CHILD_EVENTS_FD) {
		/* dup2 onto itself would keep close-on-exec. */
		if (fcntl(CHILD_EVENTS_FD, F_SETFD, 0) < 0)
			goto fail_errno;
	} else if (req->events_fd >= 0) {
		if (dup2(req->events_fd, CHILD_EVENTS_FD) < 0)
			goto fail_errno;
	} else {
		close(CHILD_EVENTS_FD);
	}
	/* Everything else goes; the report pipe (above fd 3) at exec. */
	if (report > CHILD_EVENTS_FD + 1)
		close_range(CHILD_EVENTS_FD + 1, (unsigned)report - 1, 0);
	close_range((unsigned)report + 1, ~0u, 0);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execvpe(req->argv[0], req->argv, req->envp);
fail_errno:
	err = errno;
fail:
	while (write(report, &err, sizeof(err)) < 0 && errno == EINTR)
		;
	_exit(127);
}

int child_spawn(const struct child_req *req, pid_t *pid, char *err,
		size_t errlen)
{
	sigset_t all, old;
	pid_t parent = getpid(), p;
	int rep[2], rc = 0, code, st;
	ssize_t n;

	*pid = -1;
	/* The report pipe must not land on 0-3, which the child
	 * overwrites. */
	if (pipe2(rep, O_CLOEXEC) < 0) {
		rc = errno;
		snprintf(err, errlen, "spawn: pipe: %s", strerror(rc));
		return rc;
	}
	if (rep[1] <= CHILD_EVENTS_FD) {
		int hi = fcntl(rep[1], F_DUPFD_CLOEXEC, CHILD_EVENTS_FD + 1);

		if (hi < 0) {
			rc = errno;
			snprintf(err, errlen, "spawn: pipe: %s", strerror(rc));
			close(rep[0]);
			close(rep[1]);
			return rc;
		}
		close(rep[1]);
		rep[1] = hi;
	}
	/* No handler of the worker may run in the child before its
	 * dispositions are reset. */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	p = fork();
	if (p == 0) {
		close(rep[0]);
		child_exec(req, parent, rep[1]);
	}
	code = p < 0 ? errno : 0;
	sigprocmask(SIG_SETMASK, &old, NULL);
	close(rep[1]);
	if (p < 0) {
		close(rep[0]);
		snprintf(err, errlen, "cannot start %s: fork: %s", req->argv[0],
			 strerror(code));
		return code;
	}
	/* EOF: the exec worked (the pipe closed on exec). */
	do
		n = read(rep[0], &code, sizeof(code));
	while (n < 0 && errno == EINTR);
	close(rep[0]);
	if (n == (ssize_t)sizeof(code)) {
		while (waitpid(p, &st, 0) < 0 && errno == EINTR)
			;
		rc = code != 0 ? code : EINVAL;
		if (rc == ENOENT)
			snprintf(err, errlen, "runner not found: %s",
				 req->argv[0]);
		else
			snprintf(err, errlen, "cannot start %s: %s",
				 req->argv[0], strerror(rc));
		return rc;
	}
	*pid = p;
	return 0;
}

/* --- environment --- */

void env_init(struct env *e, char *const *base)
{
	size_t i;

	memset(e, 0, sizeof(*e));
	for (i = 0; base && base[i]; i++) {
		const char *eq = strchr(base[i], '=');
		char *name;

		if (!eq || eq == base[i])
			continue;
		name = xstrndup(base[i], (size_t)(eq - base[i]));
		env_set(e, name, eq + 1);
		free(name);
	}
}

void env_release(struct env *e)
{
	size_t i;

	for (i = 0; i < e->n; i++)
		free(e->vars[i]);
	free(e->vars);
	memset(e, 0, sizeof(*e));
}

static ssize_t env_find(const struct env *e, const char *name)
{
	size_t i, n = strlen(name);

	for (i = 0; i < e->n; i++) {
		if (strncmp(e->vars[i], name, n) == 0 && e->vars[i][n] == '=')
			return (ssize_t)i;
	}
	return -1;
}

void env_set(struct env *e, const char *name, const char *value)
{
	ssize_t i = env_find(e, name);
	char *var = xasprintf("%s=%s", name, value);

	if (i >= 0) {
		free(e->vars[i]);
		e->vars[i] = var;
		return;
	}
	if (e->n + 2 > e->cap) {
		e->cap = e->cap ? e->cap * 2 : 64;
		e->vars = xreallocarray(e->vars, e->cap, sizeof(*e->vars));
	}
	e->vars[e->n++] = var;
	e->vars[e->n] = NULL;
}

const char *env_get(const struct env *e, const char *name)
{
	ssize_t i = env_find(e, name);

	return i >= 0 ? e->vars[i] + strlen(name) + 1 : NULL;
}

int env_name_ok(const char *name)
{
	return name && name[0] && !strchr(name, '=');
}

char *const *env_vars(struct env *e)
{
	if (!e->vars) {
		e->cap = 1;
		e->vars = xcalloc(1, sizeof(*e->vars));
	}
	return e->vars;
}

/* --- temporary directories --- */

char *child_mkdtemp(const char *prefix, char *err, size_t errlen)
{
	const char *base = getenv("TMPDIR");
	char *path;

	if (!base || base[0] != '/' ||
	    strlen(base) + 1 + strlen(prefix) + 6 > CHILD_TMPDIR_MAX)
		base = "/tmp";
	path = xasprintf("%s/%sXXXXXX", base, prefix);
	if (!mkdtemp(path)) {
		snprintf(err, errlen,
			 "cannot create a temporary directory "
			 "in %s: %s",
			 base, strerror(errno));
		free(path);
		return NULL;
	}
	return path;
}

/* Removes name (relative to the directory at) and, for a directory, what is
 * below. path is the name for messages. */
static int rmtree_at(int at, const char *name, const char *path, int depth,
		     char *err, size_t errlen)
{
	struct dirent *de;
	DIR *dir = NULL;
	char *sub;
	int fd = -1, rc = -1;

	if (unlinkat(at, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM) {
		snprintf(err, errlen, "cannot remove %s: %s", path,
			 strerror(errno));
		return -1;
	}
	if (depth > RMTREE_MAX_DEPTH) {
		snprintf(err, errlen, "cannot remove %s: nested too deep",
			 path);
		return -1;
	}
	/* A test may leave a directory without write or search permission. */
	fchmodat(at, name, 0700, 0);
	fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", path,
			 strerror(errno));
		goto out;
	}
	dir = fdopendir(fd);
	if (!dir) {
		snprintf(err, errlen, "cannot read %s: %s", path,
			 strerror(errno));
		close(fd);
		goto out;
	}
	/* Entries are removed while reading; readdir copes with that. */
	for (;;) {
		de = readdir(dir);
		if (!de)
			break;
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		sub = xasprintf("%s/%s", path, de->d_name);
		rc = rmtree_at(fd, de->d_name, sub, depth + 1, err, errlen);
		free(sub);
		if (rc < 0)
			goto out;
	}
	if (unlinkat(at, name, AT_REMOVEDIR) < 0 && errno != ENOENT) {
		snprintf(err, errlen, "cannot remove %s: %s", path,
			 strerror(errno));
		rc = -1;
		goto out;
	}
	rc = 0;
out:
	if (dir)
		closedir(dir);
	return rc;
}

int child_rmtree(const char *path, char *err, size_t errlen)
{
	return rmtree_at(AT_FDCWD, path, path, 0, err, errlen);
}
