/* worker.h -- the worker daemon: takes tasks from the queue streams with a
 * blocking XREADGROUP on its own connection, runs each in a free slot
 * (job.h), closes every attempt with one record published together with
 * the ack (classify.h, the complete script), renews the leases of what it
 * holds, reclaims the tasks of lost workers, promotes due retries, obeys
 * cancel notices on the control channel, and drains on SIGTERM
 * (docs/delivery.md). */
#ifndef TF_WORKER_H
#define TF_WORKER_H

#include <stddef.h>

#include "artifacts.h"
#include "redisurl.h"
#include "runner.h"

#define WORKER_BLOCK_MS 2000u /* XREADGROUP BLOCK */
#define WORKER_HEARTBEAT_S 5
#define WORKER_LEASE_S 30u     /* default --lease */
#define WORKER_GRACE_S 20u     /* default --grace */
#define WORKER_KILL_DELAY_S 5u /* TERM -> KILL after a timeout, at most */
/* The start gate (--start-gate): a pytest or Playwright runner holds its
 * place from its start until its first test starts, it exits, or this
 * long has passed. */
#define WORKER_GATE_MAX_MS 2000u

/* Fault injection for tests (TESTFLEET_FAULT, docs/delivery.md "Testing
 * hooks"): the process dies with _exit(137) around the complete script of
 * the first attempt it closes. */
enum worker_fault {
	WORKER_FAULT_NONE,
	WORKER_FAULT_EXIT_BEFORE_COMPLETE, /* before sending it */
	WORKER_FAULT_EXIT_AFTER_COMPLETE   /* once it is on the wire */
};

struct worker_opts {
	struct redis_url url;
	char **queues; /* queue names, at least one */
	size_t nqueues;
	unsigned slots;	    /* >= 1 */
	char *name;	    /* host name by default */
	char *prefix;	    /* key prefix, "tf" */
	unsigned timeout_s; /* task timeout unless the task sets one */
	unsigned grace_s;   /* the drain period after SIGTERM */
	unsigned lease_s;   /* lease of a held task, >= 1 */
	struct runner_conf runners;
	char *plugin_dir;     /* NULL when not found */
	int exit_when_idle_s; /* -1 = never */
	enum worker_fault fault;
	struct artifacts_conf artifacts; /* what tasks' artifacts become */
	/* At most this many pytest or Playwright runners in their start-up
	 * (CPU-bound imports and collection) at once; the next waits. 0 =
	 * no gate. Default: the CPUs the worker may use. */
	unsigned start_gate;
};

/* Runs the worker until it is stopped (SIGTERM/SIGINT) or idle long
 * enough. Returns the process exit status: 0 after a clean exit or drain
 * (unfinished work handed back), 1 when records could not be handed back,
 * on a second signal, or on a fatal error (logged). */
int worker_run(const struct worker_opts *o);

#endif
