/* run.h -- a run as the producer keeps it in Redis: a fresh run id, the run
 * hash, the tasks queued on their streams and their estimates (pipelined),
 * reading the hash back for watch, report and status, and retention: a
 * finished run's keys expire after 7 days, and old runs are swept from
 * <prefix>:runs. Key layout: docs/protocol.md, docs/scheduling.md. */
#ifndef TF_RUN_H
#define TF_RUN_H

#include <hiredis/hiredis.h>
#include <stddef.h>

#include "aggregate.h"
#include "policy.h"
#include "proto.h"
#include "shard.h"

/* The tasks of one suite: its settings, its node ids and how they are
 * sharded. Everything is borrowed. */
struct run_batch {
	const char *suite;
	const char *phase;
	const char *queue;
	const char *cwd;  /* absolute: where the runner starts */
	const char *mark; /* NULL = none */
	const char *kexpr;
	unsigned timeout_s; /* 0 = worker default */
	unsigned reruns;    /* --retries budget of its tasks */
	const struct kv *env;
	size_t nenv;
	char *const *ids;
	const struct shard_plan *plan;
	const char *runner; /* NULL = "pytest"; or "playwright", "command" */
	const char *grep;   /* playwright --grep, NULL = none */
	char *const *argv;  /* command runner: the program and arguments */
	size_t nargv;
	const char *grep_invert; /* playwright --grep-invert, NULL = none */
};

/* A phase of the run (DESIGN section 6, docs/delivery.md "Phases"). */
struct run_phase_decl {
	const char *name;
	int required;	    /* a failure skips the later phases */
	int sequential;	    /* parallel: false -- one task at a time, stop at
			     * the first failed one */
	unsigned timeout_s; /* the whole phase; 0 = none */
};

struct run_spec {
	const char *prefix;
	const char *id;
	const char *cwd;  /* the producer's directory, for status */
	const char *args; /* the command line, for status */
	const struct run_batch *batches;
	size_t nbatches;
	const struct run_phase_decl *phases; /* in run order */
	size_t nphases;
	const struct policy *policy; /* into the hash; NULL = defaults */
	unsigned timeout_s;	     /* per task, for status */
	unsigned run_timeout_s;	     /* whole run; 0 = none */
	unsigned slots;		     /* the slots the plan was made for */
	double eta_s;		     /* estimated wall time (shard_eta) */
	double startup_s; /* the start-up a task costs, as planned (mean) */
	const char *history; /* the history field (history.h), or NULL */
	int keep_artifacts;  /* tasks keep $TESTFLEET_ARTIFACTS's files */
};

/* A finished run's keys live this long (EXPIRE when it ends); runs older
 * than that leave <prefix>:runs (run_sweep), and so do runs still
 * "running" after RUN_ABANDONED_S. */
#define RUN_RETENTION_S (7LL * 86400)
#define RUN_ABANDONED_S (30LL * 86400)

/* A new run id, "YYYYMMDD-HHMM-xxxx" (UTC, four random [a-z0-9]); caller
 * frees. */
char *run_id_new(void);

/* Creates the run: the consumer group on every queue of every phase
 * (BUSYGROUP ignored), the run hash (status running, counters, cwd, args,
 * queues, phases as "name:1,name:0", the run policy of docs/delivery.md,
 * run_timeout, slots, estimate_s = the sum of the task estimates, eta_s,
 * startup_s,
 * history, and the phase fields of docs/protocol.md: phase_count,
 * phase_cur, phidx:<name>, ph:<i>:*, tasks_planned), its entry in
 * <prefix>:runs, then the tasks, pipelined, with their estimates in
 * <prefix>:run:<id>:est (task id -> "<seconds> <tests>"). Phases run in
 * order (s->phases, then any phase only a batch names, as required): the
 * tasks of every phase but the first, and of a sequential first phase all
 * but its first task, wait in <prefix>:run:<id>:phase:<i> (pushed first);
 * the others are XADDed, and tasks_total counts only those. The complete
 * script queues the rest as phases advance. Task ids are t00001,
 * t00002, ... in phase, batch and plan order (a sequential phase's tasks
 * in collection order). Returns 0, or -1 with a one-line message in err (a
 * connection error, or an error reply such as NOPERM). */
int run_create(redisContext *c, const struct run_spec *s, char *err,
	       size_t errlen);

/* Whether a run hash already exists: 1 yes, 0 no, -1 error (err). */
int run_exists(redisContext *c, const char *prefix, const char *id, char *err,
	       size_t errlen);

/* The run hash, read back. */
struct run_info {
	char *id;
	char *status;	    /* running | done | cancelled | ... */
	double created_at;  /* 0 when absent */
	double finished_at; /* 0 while running */
	unsigned tasks_total;
	unsigned tasks_done;
	unsigned tests_total;
	unsigned tests_done;
	unsigned tests_failed;
	struct run_phase_decl *phases; /* from "phases"; names owned */
	size_t nphases;
	struct kv *fields; /* every field as stored */
	size_t nfields;
};

/* Reads <prefix>:run:<id>. Returns 0, 1 when there is no such run, or -1
 * with a message in err. out is zeroed first; release it with
 * run_info_release. */
int run_load(redisContext *c, const char *prefix, const char *id,
	     struct run_info *out, char *err, size_t errlen);
void run_info_release(struct run_info *ri);
/* A field of the hash as stored, or NULL. Borrowed. */
const char *run_info_get(const struct run_info *ri, const char *field);

/* Parses "name:1,name:0" into *out (names malloc'd; release with
 * run_phases_free). Entries without ":0"/":1" count as required;
 * sequential and timeout_s are 0 (they are in the ph:<i>:* fields). */
void run_phases_parse(const char *s, struct run_phase_decl **out, size_t *n);
void run_phases_free(struct run_phase_decl *p, size_t n);

/* Cancels a running run with the cancel script (status cancelled with the
 * reason, the "end" entry, a notice on <prefix>:control). reason is one
 * word: "cancelled" (testfleet cancel), "run-timeout", "interrupted",
 * "superseded" or "collection-failed" (a run queued from the last
 * collection, docs/scheduling.md).
 * Returns 1 cancelled, 0 it had already ended (or does not exist), -1
 * with a message in err. */
int run_cancel(redisContext *c, const char *prefix, const char *run,
	       const char *reason, char *err, size_t errlen);

/* The estimates of a run's tasks, from <prefix>:run:<id>:est. */
struct run_estimates {
	char **tasks; /* task ids */
	double *est_s;
	unsigned *ntests;
	size_t n;
};

/* Reads them (a run created before estimates existed has none: n = 0).
 * Returns 0, or -1 with a message in err; out is zeroed first and
 * released with run_estimates_release either way. */
int run_load_estimates(redisContext *c, const char *prefix, const char *run,
		       struct run_estimates *out, char *err, size_t errlen);
void run_estimates_release(struct run_estimates *e);

/* Sets the expiry of a run's keys (hash, results, done set, estimates,
 * plan, the phases' waiting tasks) to ttl_s seconds. Returns 0, or -1
 * with a message in err. */
int run_expire(redisContext *c, const char *prefix, const char *run,
	       long long ttl_s, char *err, size_t errlen);

/* Retention of <prefix>:runs, a bounded slice per call: of the (at most
 * 100) oldest runs created more than RUN_RETENTION_S before now, those
 * whose hash is gone or not "running" -- or that are older than
 * RUN_ABANDONED_S -- lose their keys (UNLINK) and their entry. Returns the
 * number removed, or -1 with a message in err. */
long run_sweep(redisContext *c, const char *prefix, double now, char *err,
	       size_t errlen);

/* "<prefix>:run:<id>:est". Caller frees. */
char *run_key_estimates(const char *prefix, const char *run);

/* Tells the aggregator what the hash knows: phases in order, the phases
 * that timed out, the number of tasks, the start time (and the end, when
 * the run is finished). Called again with the hash as the run ended, it
 * updates the number of tasks (later phases and follow-ups add to it). */
void run_info_declare(const struct run_info *ri, struct aggregator *a);

#endif
