/* child.c -- runner processes, their environment and temporary directory
 * (see child.h). */
#include "child.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "xmalloc.h"

#define RMTREE_MAX_DEPTH 256

/* The child's own stack (it shares the worker's memory, not its stack):
 * room for execvpe, which for a script without "#!" builds a new argv on
 * it to run /bin/sh, on top of this. */
#define CHILD_STACK_MIN (64u << 10)

/* What the worker and the child share while the worker waits for the
 * exec. */
struct spawn {
	const struct child_req *req;
	pid_t parent;
	volatile int err;      /* the child's errno when it could not exec */
	volatile int in_chdir; /* ... and it was chdir that failed */
};

/* In the child, which runs in the worker's memory (CLONE_VM) while the
 * worker is suspended until it execs or exits (CLONE_VFORK): system calls
 * and async-signal-safe functions only, nothing that allocates, takes a
 * lock or writes the worker's data but sp->err. On failure the errno goes
 * to sp->err and the child exits 127. */
static int child_exec(void *arg)
{
	struct spawn *sp = arg;
	const struct child_req *req = sp->req;
	struct sigaction sa;
	sigset_t none;
	int sig, fd, err;

	/* The runner dies with the worker, even by SIGKILL, instead of
	 * running on unwatched; the check closes the race with a worker
	 * that died before the prctl. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != sp->parent) {
		err = ESRCH;
		goto fail;
	}
	if (setpgid(0, 0) < 0)
		goto fail_errno;
	/* Without CLONE_SIGHAND the child has its own copy of the
	 * dispositions: resetting them leaves the worker's alone. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	for (sig = 1; sig < NSIG; sig++) {
		if (sig != SIGKILL && sig != SIGSTOP)
			sigaction(sig, &sa, NULL);
	}
	if (req->cwd && chdir(req->cwd) < 0) {
		sp->in_chdir = 1;
		goto fail_errno;
	}
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
	/* The descriptor table is the child's own (no CLONE_FILES). */
	close_range(CHILD_EVENTS_FD + 1, ~0u, 0);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execvpe(req->argv[0], req->argv, req->envp);
fail_errno:
	err = errno;
fail:
	sp->err = err != 0 ? err : EINVAL;
	_exit(127);
}

int child_spawn(const struct child_req *req, pid_t *pid, char *err,
		size_t errlen)
{
	struct spawn sp;
	sigset_t all, old;
	size_t argc, size, page = (size_t)sysconf(_SC_PAGESIZE);
	char *stack;
	pid_t p;
	int code, st;

	*pid = -1;
	for (argc = 0; req->argv[argc]; argc++)
		;
	size = CHILD_STACK_MIN + (argc + 2) * sizeof(char *);
	size = (size + page - 1) / page * page;
	/* Its lowest page stays inaccessible: an overflow kills the child
	 * instead of writing over the worker's memory. */
	stack = mmap(NULL, size + page, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (stack == MAP_FAILED) {
		code = errno;
		snprintf(err, errlen, "cannot start %s: stack: %s",
			 req->argv[0], strerror(code));
		return code;
	}
	if (mprotect(stack, page, PROT_NONE) < 0) {
		code = errno;
		munmap(stack, size + page);
		snprintf(err, errlen, "cannot start %s: stack: %s",
			 req->argv[0], strerror(code));
		return code;
	}
	sp.req = req;
	sp.parent = getpid();
	sp.err = 0;
	sp.in_chdir = 0;
	/* No handler of the worker may run in the child before its
	 * dispositions are reset. */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	/* Returns once the child has exec'd or exited: no copy of the
	 * worker's memory (fork copies its page tables, then every page
	 * either side writes faults). */
	p = clone(child_exec, stack + page + size,
		  CLONE_VM | CLONE_VFORK | SIGCHLD, &sp);
	code = p < 0 ? errno : 0;
	sigprocmask(SIG_SETMASK, &old, NULL);
	munmap(stack, size + page);
	if (p < 0) {
		snprintf(err, errlen, "cannot start %s: clone: %s",
			 req->argv[0], strerror(code));
		return code;
	}
	code = sp.err;
	if (code != 0) {
		while (waitpid(p, &st, 0) < 0 && errno == EINTR)
			;
		if (sp.in_chdir)
			snprintf(err, errlen, "cannot start %s: cwd %s: %s",
				 req->argv[0], req->cwd, strerror(code));
		else if (code == ENOENT)
			snprintf(err, errlen, "runner not found: %s",
				 req->argv[0]);
		else
			snprintf(err, errlen, "cannot start %s: %s",
				 req->argv[0], strerror(code));
		return code;
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

void env_unset(struct env *e, const char *name)
{
	ssize_t i = env_find(e, name);

	if (i < 0)
		return;
	free(e->vars[i]);
	memmove(&e->vars[i], &e->vars[i + 1],
		(e->n - (size_t)i) * sizeof(*e->vars)); /* NULL included */
	e->n--;
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
