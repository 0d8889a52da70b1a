/* job.h -- one task attempt running in one slot of the worker: its
 * temporary directory, the runner's process group, output capture, the
 * events pipe, the timeout (TERM, then KILL after the grace period), and
 * the task result built when it ends. Lives on the worker's event_base and
 * knows nothing of Redis; the worker reaps children and hands them over. */
#ifndef TF_JOB_H
#define TF_JOB_H

#include <event2/event.h>
#include <sys/types.h>

#include "artifacts.h"
#include "events.h"
#include "proto.h"
#include "runner.h"
#include "slotdir.h"

/* How long a job waits, after its runner exited, for the output and events
 * pipes to close (a grandchild may still hold them) before it stops
 * reading. */
#define JOB_LINGER_MS 2000

/* Settings a job borrows from the worker for its whole life. */
struct job_conf {
	const char *worker;	/* "host/slot-2", copied into the result */
	const char *consumer;	/* names the temporary directory */
	unsigned slot;		/* from 1 */
	const char *plugin_dir; /* holds testfleet_pytest.py; NULL = none */
	const struct runner_conf *runners;
	unsigned timeout_s; /* when the task gives none */
	unsigned grace_s;   /* between TERM and KILL after a timeout */
	const struct artifacts_conf *artifacts; /* NULL = none kept */
	/* The slot's temporary directory, given to each of its tasks in
	 * turn and emptied when one ends (borrowed, used by one job at a
	 * time). NULL: the job makes a directory of its own and removes
	 * it when it ends. */
	struct slotdir *dir;
};

struct job;

struct job_hooks {
	/* A test started or finished; ev is borrowed. May be NULL. */
	void (*event)(void *arg, struct job *j, const struct runner_event *ev);
	/* Something worth a log line (a bad event line, a directory that
	 * could not be removed); msg is borrowed. May be NULL. */
	void (*warn)(void *arg, struct job *j, const char *msg);
	/* The job ended and job_result() is ready. Called from the event
	 * loop, never from inside a job_ call; the job must not be freed
	 * inside this callback. */
	void (*done)(void *arg, struct job *j);
};

/* Starts task (taken: the job owns it from now on) in the slot's
 * temporary directory (conf->dir), or a new one. Never fails: a task that
 * cannot be started (bad test id, runner not found, unsupported runner)
 * ends at once with status "error", reported through hooks->done on the
 * next loop iteration. */
struct job *job_start(struct event_base *base, const struct job_conf *conf,
		      struct task *task, const struct job_hooks *hooks,
		      void *arg);

/* Kills the job's process group (any leftovers after a clean exit too)
 * and frees everything, emptying the slot's temporary directory (or
 * removing the job's own). Blocks only to
 * reap a runner that is still alive after SIGKILL. */
void job_free(struct job *j);

const struct task *job_task(const struct job *j);
/* The runner's pid while it has not been reaped, else -1. */
pid_t job_pid(const struct job *j);
int job_is_done(const struct job *j);

/* The worker saw (waitid WNOWAIT) that this job's runner exited: kill what
 * is left of its process group while the pid cannot be reused, then reap
 * it. */
void job_reap(struct job *j);

/* Stops the runner: SIGTERM to the group and SIGKILL kill_after_ms later,
 * or SIGKILL at once when kill_after_ms is 0. The result's status becomes
 * "cancelled". Nothing happens once the runner was reaped. */
void job_cancel(struct job *j, unsigned kill_after_ms);

/* The attempt's timeout in seconds (the task's, else the worker's). */
unsigned job_timeout(const struct job *j);

/* Removes the temporary directories that dead workers left behind (a
 * worker killed with SIGKILL cannot clean up): those in $TMPDIR and in
 * /tmp (where child_mkdtemp goes when TMPDIR is long) named as slotdir.h
 * names them, owned by this user, whose worker's pid is no longer
 * running, after killing the processes that still have one as their
 * TMPDIR. Returns how many were removed; a directory that
 * cannot be removed is reported to warn (may be NULL). */
unsigned job_sweep_dead(void (*warn)(void *arg, const char *msg), void *arg);

/* The artifacts listed once the runner ended (borrowed; empty unless the
 * task keeps them): the inline ones' data goes to Redis with the
 * result. */
struct artifacts *job_artifacts(struct job *j);

/* The result, once done (borrowed; owned by the job). */
struct task_result *job_result(struct job *j);

#endif
