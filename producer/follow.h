/* follow.h -- reading a run's results stream (<prefix>:run:<id>:results):
 * following it live with blocking XREADs from its first entry to its "end"
 * entry -- reconnecting with backoff and resuming after the last entry seen
 * (also across a Redis restart), cancelling the run when its run timeout
 * passes -- while task results go to the aggregator and progress events to
 * a one-line display with the estimated time left; or replaying it as it
 * stands, in pages, for `report`. Owns the progress line. */
#ifndef TF_FOLLOW_H
#define TF_FOLLOW_H

#include <hiredis/hiredis.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>

#include "aggregate.h"
#include "redisurl.h"

struct run_estimates;

enum follow_progress {
	FOLLOW_PROGRESS_NONE, /* quiet */
	FOLLOW_PROGRESS_TTY,  /* one line redrawn in place */
	FOLLOW_PROGRESS_PLAIN /* a plain line every 30 s (logs, CI) */
};

struct follow_opts {
	const char *prefix;
	const char *run;
	const struct redis_url *url; /* to reconnect after a drop */
	int timeout_ms;		     /* per command, > the 1 s XREAD block */
	unsigned tasks_total;	     /* for the progress line; 0 = unknown */
	unsigned tests_total;
	enum follow_progress progress;
	FILE *progress_out;	     /* where the progress line goes */
	volatile sig_atomic_t *stop; /* set by a signal: return at once */
	/* Called about once a second (may be NULL): returns -1 with a
	 * message in err to abandon the run, e.g. a local worker died. */
	int (*check)(void *arg, char *err, size_t errlen);
	void *check_arg;
	/* Unix time at which the run is cancelled with reason "run-timeout"
	 * (run_cancel), then followed to its "end" entry; 0 = never. */
	double deadline;
	/* The tasks' estimates (borrowed; NULL or empty = no estimate shown)
	 * and the slots they share: the progress line then ends with
	 * "~42s left", the estimate of the tasks (or shares of tasks, by
	 * finished tests) not done yet plus a start-up (startup_s, or
	 * SHARD_STARTUP_S when 0) for each task not started, divided by the
	 * slots. */
	const struct run_estimates *estimates;
	unsigned slots;
	double startup_s;
};

#define FOLLOW_MAX_REASON 128

/* How the stream ended, from its "end" entry. */
struct follow_ending {
	int ended;			/* an "end" entry was read */
	double at;			/* its time (0 if none or unreadable) */
	char reason[FOLLOW_MAX_REASON]; /* its "reason" field, cut to fit;
					 * "" when absent (a normal end) */
};

enum follow_end {
	FOLLOW_DONE,	/* the "end" entry was read */
	FOLLOW_STOPPED, /* *stop was set */
	FOLLOW_ERROR	/* Redis gone for good, or check() failed: see err */
};

/* Follows the run from the start of its results stream to its "end"
 * entry, feeding every task result to agg. *c is the connection to use;
 * after a reconnect it is replaced (the caller frees whatever *c is at the
 * end). A dropped connection, or a server still loading its data after a
 * restart, is retried for up to a minute. Malformed entries are skipped
 * with a warning. *end says how the stream ended (zeroed first). */
enum follow_end follow_run(redisContext **c, const struct follow_opts *o,
			   struct aggregator *agg, struct follow_ending *end,
			   char *err, size_t errlen);

/* Reads the stream as it stands (XRANGE, 1000 entries a page) into agg.
 * Returns 0 with *end filled (end->ended 0 while the run goes on), or -1
 * with a message in err. */
int follow_replay(redisContext *c, const char *prefix, const char *run,
		  struct aggregator *agg, struct follow_ending *end, char *err,
		  size_t errlen);

#endif
