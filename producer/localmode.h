/* localmode.h -- `testfleet run` without a Redis URL: a private temporary
 * directory, a redis-server listening only on a unix socket in it, and one
 * local testfleet-worker with N slots, all in their own process groups so
 * the terminal's Ctrl-C reaches the producer alone. Owns their teardown:
 * worker, then redis-server, then any orphans, then the directory. */
#ifndef TF_LOCALMODE_H
#define TF_LOCALMODE_H

#include <signal.h>
#include <stddef.h>

struct localmode_opts {
	unsigned slots;	     /* worker slots, >= 1 */
	const char *prefix;  /* key prefix */
	const char *pytest;  /* --pytest CMD for the worker, or NULL */
	char *const *queues; /* queues the worker serves ("default") */
	size_t nqueues;
	int verbose;		     /* worker and redis logs to our stderr */
	volatile sig_atomic_t *stop; /* checked while waiting for redis */
};

enum localmode_error {
	LOCALMODE_OK,
	LOCALMODE_NO_REDIS,  /* redis-server is not installed */
	LOCALMODE_NO_WORKER, /* testfleet-worker is not next to us */
	LOCALMODE_FAILED,    /* could not start, or died at start */
	LOCALMODE_STOPPED    /* the stop flag was set while starting */
};

struct localmode;

/* Starts redis-server, waits (up to 5 s) until it answers PING, then
 * starts the worker. Returns the running instance, or NULL with *why set
 * and a one-line message in err; nothing is left behind on failure. */
struct localmode *localmode_start(const struct localmode_opts *o,
				  enum localmode_error *why, char *err,
				  size_t errlen);

/* "unix:///tmp/testfleet-XXXXXX/redis.sock". Borrowed. */
const char *localmode_url(const struct localmode *lm);

/* Returns 0 while redis-server and the worker run, or -1 with a message
 * naming the one that exited (and the tail of its log) in err. Matches
 * follow_opts.check. */
int localmode_check(void *lm, char *err, size_t errlen);

/* Tears everything down (worker: TERM, 2 s, KILL; redis-server: TERM,
 * 2 s, KILL; leftover descendants: KILL; then the directory) and frees
 * lm. NULL is a no-op. */
void localmode_stop(struct localmode *lm);

#endif
