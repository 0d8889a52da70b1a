/* proc.h -- the producer's child processes (pytest collection, the local
 * redis-server and worker): started with posix_spawn, never a shell, each
 * in its own process group with default signal dispositions, stdin from
 * /dev/null and no inherited descriptors past stderr; output captured into
 * capped buffers; stopped TERM-then-KILL; and a final sweep that kills and
 * reaps whatever is left, including orphaned grandchildren. */
#ifndef TF_PROC_H
#define TF_PROC_H

#include <signal.h>
#include <stddef.h>
#include <sys/types.h>

#include "buf.h"
#include "proto.h"

struct proc_opts {
	char *const *argv; /* NULL-terminated; argv[0] is looked up in PATH */
	char *const *envp; /* NULL = this process's environment */
	const char *cwd;   /* NULL = this process's directory */
	int out_fd;	   /* the child's stdout; -1 = inherit ours */
	int err_fd;	   /* the child's stderr; -1 = inherit ours */
};

/* This process's environment with env ("NAME" -> value) and extra
 * ("NAME=value" strings) set over it, for proc_opts.envp. The strings are
 * malloc'd; free the whole with proc_envp_free. */
char **proc_envp(const struct kv *env, size_t nenv, char *const *extra,
		 size_t nextra);
void proc_envp_free(char **v);

/* Starts a child. Returns 0 and its pid (also its process group id), or -1
 * with errno set (ENOENT when the program is not found) and a one-line
 * message naming argv[0] in err. */
int proc_spawn(const struct proc_opts *o, pid_t *pid, char *err, size_t errlen);

struct proc_capture {
	struct buf out; /* the child's stdout */
	struct buf err; /* the head of its stderr (the rest is dropped) */
	int status;	/* waitpid status */
	int stopped;	/* ended by the stop flag */
};

/* Runs a child to its end, collecting its stdout (at most out_max bytes:
 * past that the child is killed and -1 returned) and the first err_max
 * bytes of its stderr. When *stop becomes non-zero (checked at least every
 * 200 ms) the child's group is terminated and cap->stopped set. The
 * o->out_fd and o->err_fd fields are ignored. Returns 0 once the child has
 * been reaped (cap->status says how it ended), or -1 with errno set and a
 * message in err; cap is initialised either way and the caller releases it
 * with proc_capture_release. */
int proc_run_capture(const struct proc_opts *o, size_t out_max, size_t err_max,
		     volatile sig_atomic_t *stop, struct proc_capture *cap,
		     char *err, size_t errlen);
void proc_capture_release(struct proc_capture *cap);

/* Waits up to ms milliseconds (0 = just look) for pid to end. Returns 1
 * and the status once reaped, 0 while it runs, -1 on error (errno). */
int proc_wait(pid_t pid, int ms, int *status);

/* Stops the child pid and its process group: SIGTERM, up to grace_ms for
 * it to end, then SIGKILL. Returns its wait status, or -1 when it was not
 * our child. */
int proc_stop(pid_t pid, int grace_ms);

/* "exited with status 2" or "killed by signal 9 (Killed)". */
void proc_status_describe(int status, char *out, size_t outlen);

/* Makes this process the reaper of its descendants' orphans, so that
 * proc_kill_children can find processes our children left behind.
 * Returns 0 or -1 (errno). */
int proc_become_subreaper(void);

/* Kills (SIGKILL) and reaps every remaining child of this process --
 * including orphans reparented to it -- within about limit_ms. Returns the
 * number of processes killed. */
int proc_kill_children(int limit_ms);

#endif
