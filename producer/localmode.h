/* localmode.h -- `testfleet run` without a Redis URL: a private temporary
 * directory, a redis-server listening only on a unix socket in it, and one
 * local testfleet-worker with N slots, all in their own process groups so
 * the terminal's Ctrl-C reaches the producer alone. Owns the cache folder
 * (<project root>/.testfleet, where redis-server keeps cache.rdb between
 * runs: duration history, recent runs) and the teardown: worker, then a
 * SAVE into the cache, then redis-server, then any orphans, then the
 * temporary directory. */
#ifndef TF_LOCALMODE_H
#define TF_LOCALMODE_H

#include <signal.h>
#include <stddef.h>

struct localmode_opts {
	unsigned slots;	     /* worker slots, >= 1 */
	const char *prefix;  /* key prefix */
	const char *pytest;  /* --pytest CMD for the worker, or NULL */
	const char *playwright; /* --playwright CMD for the worker, or NULL */
	int allow_command;	/* the run has command suites: the worker runs
				 * them (--allow-command) */
	char *const *queues; /* queues the worker serves ("default") */
	size_t nqueues;
	int verbose;		     /* worker and redis logs to our stderr */
	volatile sig_atomic_t *stop; /* checked while waiting for redis */
	/* The cache folder (localmode_cache_dir), or NULL: the data lives
	 * in the temporary directory and goes with it. */
	const char *cache_dir;
	/* Only redis-server, to read the cache (a dry run): no worker, and
	 * nothing is saved. */
	int no_worker;
};

#define LOCALMODE_CACHE_NAME ".testfleet"
#define LOCALMODE_CACHE_FILE "cache.rdb"

/* The cache folder of a project: <root>/.testfleet. With create, makes it
 * when missing, and its ".gitignore" of "*" and CACHEDIR.TAG when those are
 * missing (as pytest does for .pytest_cache). Returns the malloc'd path, or
 * NULL with a message in err (not a directory, cannot be created, or -- without
 * create -- absent). */
char *localmode_cache_dir(const char *root, int create, char *err,
			  size_t errlen);

enum localmode_error {
	LOCALMODE_OK,
	LOCALMODE_NO_REDIS,  /* redis-server is not installed */
	LOCALMODE_NO_WORKER, /* testfleet-worker is not next to us */
	LOCALMODE_FAILED,    /* could not start, or died at start */
	LOCALMODE_STOPPED    /* the stop flag was set while starting */
};

struct localmode;

/* Starts redis-server (loading the cache's cache.rdb, if any), waits (up
 * to 5 s) until it answers PING, then starts the worker. A cache file that
 * redis-server cannot load is moved aside to cache.rdb.bad (with a
 * warning) and the start retried without it. Returns the running
 * instance, or NULL with *why set and a one-line message in err; nothing
 * is left behind on failure. */
struct localmode *localmode_start(const struct localmode_opts *o,
				  enum localmode_error *why, char *err,
				  size_t errlen);

/* "unix:///tmp/testfleet-XXXXXX/redis.sock". Borrowed. */
const char *localmode_url(const struct localmode *lm);

/* Returns 0 while redis-server and the worker run, or -1 with a message
 * naming the one that exited (and the tail of its log) in err. Matches
 * follow_opts.check. */
int localmode_check(void *lm, char *err, size_t errlen);

/* Tears everything down (worker: TERM, 2 s, KILL; with a cache, the
 * queues, <prefix>:delayed and <prefix>:workers are deleted -- nothing of
 * this run may be picked up by the next one -- and the rest SAVEd into it;
 * a failure is a warning; redis-server: TERM, 2 s, KILL;
 * leftover descendants: KILL; then the temporary directory) and frees lm.
 * NULL is a no-op. */
void localmode_stop(struct localmode *lm);

#endif
