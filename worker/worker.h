/* worker.h -- the worker daemon: takes tasks from the queue streams with a
 * blocking XREADGROUP on its own connection, runs each in a free slot
 * (job.h), publishes the result together with the ack in one script,
 * reports progress events and a heartbeat, and drains on SIGTERM. */
#ifndef TF_WORKER_H
#define TF_WORKER_H

#include <stddef.h>

#include "redisurl.h"
#include "runner.h"

#define WORKER_BLOCK_MS 2000u /* XREADGROUP BLOCK */
#define WORKER_HEARTBEAT_S 5

struct worker_opts {
	struct redis_url url;
	char **queues; /* queue names, at least one */
	size_t nqueues;
	unsigned slots;	    /* >= 1 */
	char *name;	    /* host name by default */
	char *prefix;	    /* key prefix, "tf" */
	unsigned timeout_s; /* task timeout unless the task sets one */
	unsigned grace_s;   /* TERM -> KILL, and the drain period */
	struct runner_conf runners;
	char *plugin_dir;     /* NULL when not found */
	int exit_when_idle_s; /* -1 = never */
};

/* Runs the worker until it is stopped (SIGTERM/SIGINT) or idle long
 * enough. Returns the process exit status: 0 after a clean drain, 1 when
 * running tasks had to be killed and left pending, or on a fatal error
 * (logged). */
int worker_run(const struct worker_opts *o);

#endif
