/* child.h -- the surroundings of a runner process: starting it with
 * clone(CLONE_VM | CLONE_VFORK) and exec (never a shell; nothing of the
 * worker's memory is copied) in its own process group with stdin from
 * /dev/null, stdout and stderr on one pipe, the events pipe on fd 3, every
 * other descriptor closed, signals reset, and SIGKILL when the worker dies;
 * building its environment; and making and removing temporary directories
 * (slotdir.h keeps one per slot). */
#ifndef TF_CHILD_H
#define TF_CHILD_H

#include <stddef.h>
#include <sys/types.h>

#define CHILD_EVENTS_FD 3

struct child_req {
	char *const *argv; /* argv[0] is looked up in PATH without a '/' */
	char *const *envp;
	const char *cwd; /* NULL = the worker's */
	int out_fd;	 /* becomes the child's stdout and stderr */
	int events_fd;	 /* becomes the child's fd 3, or -1 */
};

/* Starts the child as the leader of a new process group; it gets SIGKILL
 * if the worker dies first (PR_SET_PDEATHSIG). Returns once it has exec'd,
 * with 0 and *pid set, or an errno value with a one-line message in err
 * (the child, if any, is reaped): "runner not found: pytest" for ENOENT
 * from the exec, "cannot start pytest: cwd /x: No such file or directory"
 * when req->cwd is not there, "cannot start pytest: <strerror>" else.
 * Under valgrind (which runs the child as a fork) an exec that fails is
 * not seen here: the child exits 127 instead. */
int child_spawn(const struct child_req *req, pid_t *pid, char *err,
		size_t errlen);

/* An environment under construction: NAME=VALUE strings, unique names. */
struct env {
	char **vars; /* NULL-terminated once anything was added */
	size_t n;
	size_t cap;
};

/* Copies base (e.g. environ; may be NULL). */
void env_init(struct env *e, char *const *base);
void env_release(struct env *e);
/* Sets or replaces name. */
void env_set(struct env *e, const char *name, const char *value);
/* Removes name, if set. */
void env_unset(struct env *e, const char *name);
/* Value of name (borrowed), or NULL. */
const char *env_get(const struct env *e, const char *name);
/* Whether name can be an environment variable name: non-empty, no '='. */
int env_name_ok(const char *name);
/* The NULL-terminated array for child_spawn, borrowed from e. */
char *const *env_vars(struct env *e);

/* The longest temporary directory handed to a runner as its TMPDIR:
 * runners make unix sockets below it (Chromium:
 * $TMPDIR/org.chromium.Chromium.XXXXXX/SingletonSocket, 46 more bytes) and
 * a socket path holds at most 107. */
#define CHILD_TMPDIR_MAX 60

/* Creates <base>/<prefix>XXXXXX with mode 0700, where base is $TMPDIR, or
 * /tmp when TMPDIR is unset, relative, or so long that the path would pass
 * CHILD_TMPDIR_MAX bytes. Returns the new path (caller frees), or NULL
 * with a message. */
char *child_mkdtemp(const char *prefix, char *err, size_t errlen);

/* Removes path and everything below it without following symlinks,
 * making read-only directories writable first. Returns 0, or -1 with a
 * message naming the first entry that could not be removed. A path that
 * does not exist is not an error. */
int child_rmtree(const char *path, char *err, size_t errlen);

#endif
