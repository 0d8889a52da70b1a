/* warm.h -- pytest tasks started warm. A zygote (plugins/testfleet_zygote.py,
 * run by the interpreter of the pytest command) imports pytest once and
 * forks a process per task, which the worker then reaps, times and kills
 * like a runner it exec'd: the zygote's middle process exits at once, so
 * the task is reparented to the worker, a child subreaper. One zygote per
 * start-up environment (the task's environment but for the per-task
 * TESTFLEET_* variables and TMPDIR, and its cwd for "python -m pytest"),
 * at most WARM_MAX_ZYGOTES, the least recently used replaced.
 * docs/protocol.md, "Worker <-> warm pytest", has the wire format. */
#ifndef TF_WARM_H
#define TF_WARM_H

#include <stddef.h>
#include <sys/types.h>

#include "child.h"

#define WARM_MAX_ZYGOTES 4
/* A zygote that fails this many times (cannot start, dies, does not
 * answer) turns warm starts off for the rest of the worker's life. */
#define WARM_MAX_FAILURES 3
#define WARM_ZYGOTE_FILE "testfleet_zygote.py"

struct warm;

/* How the pytest command (its words) can start warm: the words are a
 * Python console script of pytest (a file whose "#!" line names a python
 * interpreter, directly or through env, and which calls pytest's
 * console_main or main) or "PYTHON -m pytest", either followed by more
 * arguments. Returns NULL with the reason in why when they are neither, or
 * plugin_dir has no zygote. Nothing is started yet. */
struct warm *warm_new(char *const *pytest, size_t npytest,
		      const char *plugin_dir, char *why, size_t whylen);
/* Kills and reaps the zygotes (not the tasks they started). */
void warm_free(struct warm *w);

/* One line for the log: how pytest tasks start ("/usr/bin/python3 with
 * /usr/bin/pytest"). Borrowed. */
const char *warm_describe(const struct warm *w);

/* Starts req, whose argv begins with the pytest words given to warm_new,
 * through the zygote of its start-up environment (starting one when there
 * is none; the first answer waits for its imports). Returns 0 with *pid
 * set: a process of the worker's to reap, leader of its own process group,
 * with req's cwd, environment and descriptors. Returns -1 with a message
 * when it could not: the caller starts the task cold. Blocks the caller
 * until the zygote answers. */
int warm_spawn(struct warm *w, const struct child_req *req, pid_t *pid,
	       char *err, size_t errlen);

/* Called with every child the worker reaped that was not a task: returns
 * 1 (and forgets it) when it was a zygote, else 0. */
int warm_reaped(struct warm *w, pid_t pid, int status);

/* How many zygotes are running. */
unsigned warm_live_zygotes(const struct warm *w);

/* Whether warm starts are still on (they go off after WARM_MAX_FAILURES). */
int warm_enabled(const struct warm *w);

#endif
