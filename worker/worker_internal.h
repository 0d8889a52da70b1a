/* worker_internal.h -- what the worker's modules share: the daemon's
 * state (struct worker and the things it holds: runs, backlog entries,
 * slots, records on their way out, reclaimed entries) and the functions
 * they call across files. Only worker.c, runinfo.c, completion.c and
 * leases.c include it; everything else sees worker.h.
 *
 * The life of an entry: XREADGROUP delivers it (it is now ours in the
 * group's pending list); it waits in the backlog until its run's policy is
 * known (runinfo.c) and a slot is free; a job runs it; classify.c closes
 * the attempt; a completion publishes the record with the ack
 * (completion.c). While it is ours, leases.c renews it; entries of lost
 * workers come in through its reaper and leave as "lost" records. */
#ifndef TF_WORKER_INTERNAL_H
#define TF_WORKER_INTERNAL_H

#include <event2/event.h>
#include <stdint.h>
#include <time.h>

#include "backoff.h"
#include "classify.h"
#include "job.h"
#include "policy.h"
#include "proto.h"
#include "rconn.h"
#include "sha1.h"
#include "worker.h"

#define READ_DEADLINE_MS (WORKER_BLOCK_MS + 10000)
#define READ_RETRY_MS 1000
#define GROUP_RETRY_MS 1000
#define EXIT_WAIT_MS 3000 /* for the heartbeat HDEL on the way out */
#define PUBLISH_DEADLINE_MS 15000
#define PUBLISH_BACKOFF_BASE_MS 200
#define PUBLISH_BACKOFF_CAP_MS 10000
#define PROMOTE_MS 250
#define PROMOTE_BATCH 100
#define REAP_COUNT 16
#define POLICY_CACHE 64	      /* runs whose policy is kept */
#define CANCEL_KILL_MS 1000   /* TERM -> KILL for a cancelled run */
#define HANDBACK_WAIT_MS 5000 /* after the drain, for records to go out */
#define PARTIAL_TTL_S 86400   /* partial hashes of abandoned attempts */

enum kill_reason {
	KILL_NONE,
	KILL_CANCEL, /* its run was cancelled */
	KILL_LEASE,  /* another worker took the entry: drop, never publish */
	KILL_DRAIN   /* the drain period is over: hand the rest back */
};

struct worker;

/* What the worker knows of a run: its policy (docs/delivery.md "Run
 * policy") and whether it is cancelled; read once and cached. */
struct runinfo {
	struct runinfo *next;
	struct worker *w;
	char *run;
	int ready;    /* read at least once */
	int fetching; /* HMGET in flight */
	int cancelled;
	unsigned refs; /* backlog entries and slots that use it */
	uint64_t used; /* LRU clock */
	struct policy rp;
};

/* A task read from a queue, waiting for its policy and a free slot. */
struct backlog {
	struct backlog *next;
	char *stream;
	char *entry_id;
	struct task task;
	struct runinfo *ri;
};

struct slot {
	struct worker *w;
	unsigned index; /* from 1 */
	char *label;	/* "name/slot-N" */
	struct job_conf conf;
	struct slotdir dir; /* every job's TMPDIR, made by the first one */
	struct job *job;    /* NULL when the slot is free */
	char *stream;	    /* queue stream key of the entry */
	char *entry_id;
	struct runinfo *ri;
	char *partial_key;
	int partial_ttl_set;
	enum kill_reason kill;
	struct event *release; /* closes the attempt outside job callbacks */
	int starting;	       /* its runner holds a place in the start gate */
	struct event *gate_ev; /* ... until this fires at the latest */
};

/* One record on its way out with its ack (script_complete). */
struct completion {
	struct completion *next;
	struct completion *prev;
	struct worker *w;
	char *what; /* "run/task attempt N", for messages */
	char *stream;
	char *entry_id;
	char *task_id;
	char *k_results;
	char *k_done;
	char *k_run;
	char *k_partial;
	char *record;
	size_t record_len;
	char *dead; /* dead-letter task, or NULL */
	size_t dead_len;
	unsigned tests;
	unsigned failed;
	size_t nfollow;
	char **fu_due;
	char **fu_queue;
	char **fu_task;
	size_t *fu_len;
	/* Inline artifacts, stored (HSET, EXPIRE) in the same write as the
	 * script: their fields and bytes. */
	char *k_arts;
	size_t narts;
	char **art_field;
	char **art_data;
	size_t *art_len;
	int from_slot;
	int publishing; /* script in flight */
	int dropped;	/* the entry is no longer ours: never publish */
	struct event *retry;
	struct backoff backoff;
};

/* An entry claimed from a lost worker while its run's policy and the
 * attempt's partial results are read. */
struct reclaim {
	struct reclaim *next;
	struct reclaim *prev;
	struct worker *w;
	char *stream;
	char *entry_id;
	struct task task;
	int pending; /* replies still to come */
	int failed;  /* one was lost: give up, the entry stays pending */
	int cancelled;
	struct policy rp;
	struct test_result *done; /* finished tests, from the partial hash */
	size_t ndone;
	char *running;
};

struct queue {
	struct worker *w;
	char *stream;
	int renewing;
	int reaping;
};

struct worker {
	const struct worker_opts *o;
	struct event_base *base;
	struct rconn *cmd; /* commands, scripts, heartbeat */
	struct rconn *rd;  /* the blocking XREADGROUP only */
	struct rconn *sub; /* the control channel only */
	char *consumer;	   /* "name-pid" */
	char *reaper_label;
	struct queue *queues;
	char *workers_key;
	char *caps_key;
	char *delayed_key;
	char *dead_key;
	char *control_key;
	int groups_ok;
	unsigned groups_pending;
	int groups_failed;
	int reading;
	struct timespec read_sent;
	int cmd_down; /* for logging transitions only */
	int rd_down;
	int sub_down;
	int sub_seen;
	struct slot *slots;
	struct backlog *backlog;
	struct backlog *backlog_tail;
	struct runinfo *runs;
	size_t nruns;
	uint64_t clock;
	struct completion *completions;
	size_t ncompletions;
	struct reclaim *reclaims;
	char sha_complete[SHA1_HEX_LEN + 1];
	char sha_renew[SHA1_HEX_LEN + 1];
	char sha_promote[SHA1_HEX_LEN + 1];
	struct event *ev_term;
	struct event *ev_int;
	struct event *ev_chld;
	struct event *heartbeat;
	struct event *grace;
	struct event *exit_timer;
	struct event *read_retry;
	struct event *group_retry;
	struct event *renew_ev;
	struct event *reap_ev;
	struct event *promote_ev;
	struct event *handback_ev;
	struct event *gate_kick; /* starts what waited at the gate */
	unsigned starting;	 /* runners in their start-up (the gate) */
	int promoting;
	struct timespec renewed;
	/* No reaping before this (unix ms): set a lease ahead on every
	 * reconnect, so workers that were cut off from Redis with us get to
	 * renew their leases before anyone takes their tasks. */
	unsigned long long reap_after_ms; /* leases known good at this time */
	long long delayed_left;	 /* ZCARD of the delayed set (idle exit) */
	struct backoff rng;	 /* retry delays */
	int stopping;
	int exiting;
	int closing; /* tearing down: callbacks do nothing */
	int exit_code;
	int fault_fired;
	struct timespec last_busy;
};

/* --- worker.c: helpers every module uses --- */

void worker_timer_ms(struct event *ev, unsigned ms);
double worker_now(void);		/* unix time, seconds */
/* The task field "m" of a stream entry's field list (an XREADGROUP or
 * XAUTOCLAIM reply element), or NULL. Borrowed from the reply. */
const redisReply *worker_entry_task(const redisReply *fields);
unsigned long long worker_now_ms(void); /* unix time, milliseconds */
/* Seconds since t (monotonic). */
double worker_since(const struct timespec *t);
unsigned worker_busy_slots(const struct worker *w);
/* Something happened: the idle clock starts again. */
void worker_mark_busy(struct worker *w);
unsigned worker_lease_ms(const struct worker *w);
/* Whether an error reply means "Redis cannot serve us now" (LOADING, BUSY,
 * OOM, READONLY, ...): handled like a lost connection. */
int worker_busy_error(const char *s);
int worker_noscript(const redisReply *r);
/* EVALSHA sha nkeys argv[0..n) on the command connection (lens may be
 * NULL). Returns rconn_command's result. */
int worker_eval(struct worker *w, const char *sha, int nkeys, int n,
		const char **argv, const size_t *lens, rconn_fn fn, void *priv,
		unsigned deadline_ms);
void worker_load_scripts(struct worker *w);
/* After an error reply to something that will be retried: reconnect when
 * Redis is busy, reload the scripts when they are missing. */
void worker_error_reply(struct worker *w, const redisReply *r);
void worker_ack_and_delete(struct worker *w, const char *stream,
			   const char *id);
/* Removes what jobs of dead workers on this host left in $TMPDIR. */
void worker_sweep_dead(struct worker *w);
void worker_maybe_read(struct worker *w);
void worker_start_backlog(struct worker *w);
void worker_check_drained(struct worker *w);
void backlog_free(struct backlog *b);
/* Unlinks *pp (prev is the entry before it, or NULL) from the backlog. */
void backlog_unlink(struct worker *w, struct backlog **pp,
		    struct backlog *prev);

/* --- runinfo.c: run policies and cancel notices --- */

struct runinfo *runinfo_find(struct worker *w, const char *run);
/* The run's entry with a reference for the caller; read from Redis the
 * first time (not ready until the reply). */
struct runinfo *runinfo_get(struct worker *w, const char *run);
void runinfo_put(struct runinfo *ri);
void runinfo_fetch(struct runinfo *ri);
void runinfo_free(struct runinfo *ri);
/* HMGET of the run hash's status and policy fields, and its parser (rp
 * initialised by the caller; missing or bad fields keep the defaults). */
int runinfo_send_hmget(struct worker *w, const char *run, rconn_fn fn,
		       void *priv);
void runinfo_parse(const redisReply *r, const char *run, struct policy *rp,
		   int *cancelled);
/* Stops the running attempts of a cancelled run and drops its waiting
 * entries. */
void runinfo_cancel_tasks(struct worker *w, struct runinfo *ri);
/* The control channel connection's hooks. */
void runinfo_control_ready(void *arg, struct rconn *c);
void runinfo_control_lost(void *arg, struct rconn *c, const char *why);

/* --- completion.c: records on their way out --- */

/* The completion of attempt t closed as record r with verdict v (all
 * borrowed; v may be NULL: no follow-up); rp gives the backoff of delayed
 * follow-ups (may be NULL with v). */
struct completion *completion_new(struct worker *w, const char *stream,
				  const char *entry_id, const struct task *t,
				  const struct task_result *r,
				  const struct verdict *v,
				  const struct policy *rp);
/* Takes c into the worker's list and sends it when Redis is ready. */
void completion_submit(struct completion *c);
/* Takes the data of a's inline artifacts (a keeps their records) to be
 * stored with the record of attempt t. */
void completion_take_artifacts(struct completion *c, struct artifacts *a,
			       const struct task *t);
void completion_publish(struct completion *c);
/* Over: unlinks and frees c, and lets the worker move on. */
void completion_done(struct completion *c);
void completion_unlink(struct completion *c);
void completion_free(struct completion *c);
/* A record for an attempt of a cancelled run that never ran (acked away
 * by the script), and one that hands an unstarted attempt back (drain). */
struct completion *completion_cancelled(struct worker *w, const char *stream,
					const char *entry_id,
					const struct task *t,
					const char *worker_label);
struct completion *completion_handback(struct worker *w, const char *stream,
				       const char *entry_id,
				       const struct task *t,
				       const struct policy *rp,
				       const char *worker_label);

/* --- leases.c: renewing ours, reclaiming those of lost workers --- */

void lease_on_renew(evutil_socket_t fd, short what, void *arg);
void lease_on_reap(evutil_socket_t fd, short what, void *arg);
/* Schedules the next reaper pass: lease/2, give or take 20 %. */
void lease_arm_reaper(struct worker *w);
void lease_reclaim_free(struct reclaim *rc);

#endif
