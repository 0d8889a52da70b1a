/* queues.h -- capability queues seen from the producer: which of a run's
 * queues a live worker serves, from the heartbeats in <prefix>:workers
 * (each "<unix time> <queue,queue,...>"; a heartbeat of the time alone, as
 * older workers wrote it, counts for every queue), for the warning when a
 * run is queued; and a watch, run while a run is followed, that notices
 * tasks waiting in a queue no live worker serves. docs/protocol.md. */
#ifndef TF_QUEUES_H
#define TF_QUEUES_H

#include <hiredis/hiredis.h>
#include <stddef.h>

#define QUEUES_LIVE_S 15  /* a heartbeat younger than this is live */
#define QUEUES_STUCK_S 30 /* tasks waiting this long get a warning */
#define QUEUES_MAX 64	  /* queues a run may use */

/* Parses one heartbeat value: *beat = its time (0 when unreadable);
 * returns whether the worker serves queue. */
int queues_serves(const char *value, size_t len, const char *queue,
		  double *beat);

/* For each of the n queues, live[i] = 1 when a worker whose heartbeat is
 * younger than QUEUES_LIVE_S (at now, unix seconds) serves it, else 0.
 * Returns 0, or -1 with a message in err. */
int queues_live(redisContext *c, const char *prefix, char *const *queues,
		size_t n, double now, int *live, char *err, size_t errlen);

/* The live workers that serve queue (as queues_live sees them), from
 * <prefix>:workers:cap ("<slots> <start gate>" per worker): *slots their
 * slots, *gate how many of their runners start at once (a worker without
 * a gate, or with one wider than its slots, counts its slots). Both 0
 * when no live worker published its capacity. Returns 0, or -1 with a
 * message in err. */
int queues_capacity(redisContext *c, const char *prefix, const char *queue,
		    double now, unsigned *slots, unsigned *gate, char *err,
		    size_t errlen);

/* Splits a run hash's "queues" field ("a,b") into at most QUEUES_MAX
 * names (malloc'd array and strings; free with queues_free). */
char **queues_split(const char *field, size_t *n);
void queues_free(char **q, size_t n);

struct queue_watch;

/* warn(arg, queue, waited_s) is called at most once per queue, when tasks
 * have waited in it QUEUES_STUCK_S with no live worker serving it. *c is
 * the follower's connection (borrowed; it may be replaced between calls
 * and may be broken: the watch then just skips a turn). */
struct queue_watch *
queue_watch_new(redisContext **c, const char *prefix, const char *queues_field,
		void (*warn)(void *arg, const char *queue, double waited_s),
		void *arg);
/* Matches follow_opts.check: looks every 5 s (XLEN of each queue, the
 * heartbeats). Never fails: returns 0. */
int queue_watch_check(void *qw, char *err, size_t errlen);
void queue_watch_free(struct queue_watch *qw);

#endif
