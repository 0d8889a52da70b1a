/* history.h -- the duration history of history-aware scheduling: per suite
 * a Redis hash <prefix>:durations:<suite>:<fingerprint> of test id ->
 * "<smoothed seconds>:<last seen, unix seconds>", and beside it the string
 * <...>:startup, what a task of the suite costs besides its tests
 * (measured per run from the task results: overhead, concurrency, floor).
 * Reads a run's estimates back in pipelined batches; folds each finished
 * run's durations and start-up in (EWMA, once per run); keeps the hash
 * bounded (entries unseen for 30 days are swept a slice at a time, at most
 * 200,000 entries a suite, the keys expire 30 days after their last
 * write). The fingerprint, the value formats, the smoothing and the
 * start-up measurement are pure functions. Layout: docs/scheduling.md. */
#ifndef TF_HISTORY_H
#define TF_HISTORY_H

#include <hiredis/hiredis.h>
#include <stddef.h>

#include "aggregate.h"
#include "shard.h"

#define HISTORY_FP_LEN 12  /* hex digits of the fingerprint */
#define HISTORY_ALPHA 0.3  /* weight of the newest sample */
#define HISTORY_BATCH 1000 /* ids per HMGET / fields per HSET */
#define HISTORY_MAX_ENTRIES 200000
#define HISTORY_RETENTION_S (30LL * 86400)
#define HISTORY_SWEEP_STEPS 20 /* HSCAN calls (COUNT 1000) per record */

/* The run hash field naming each suite's history: lines "<fp> <suite>". */
#define HISTORY_RUN_FIELD "history"
/* Set (HSETNX, unix time) by whoever folded the run in: once per run. */
#define HISTORY_SAVED_FIELD "history_saved"

/* The fingerprint of what makes durations comparable: the first
 * HISTORY_FP_LEN hex digits of the SHA-1 of "runner\0rootdir\0suite". The
 * -m/-k selection is left out on purpose: it changes which tests run, not
 * how long each takes. */
void history_fingerprint(const char *runner, const char *rootdir,
			 const char *suite, char out[HISTORY_FP_LEN + 1]);

/* "<prefix>:durations:<suite>:<fp>". Caller frees. */
char *history_key(const char *prefix, const char *suite, const char *fp);

/* A stored value: "<seconds>:<unix seconds>", e.g. "0.731:1763700000".
 * Parse returns 0, or -1 when s is not that (seconds must be finite and
 * >= 0). Format writes at most outlen bytes. */
int history_value_parse(const char *s, size_t len, double *dur_s,
			long long *seen);
void history_value_format(double dur_s, long long seen, char *out,
			  size_t outlen);

/* The new smoothed value: alpha * sample + (1 - alpha) * old; the sample
 * itself when old is negative (no history yet). */
double history_smooth(double old, double sample, double alpha);

/* Knobs of history_record, for tests; history_limits_default gives the
 * constants above. */
struct history_limits {
	double alpha;
	size_t max_entries;
	long long retention_s;
	unsigned sweep_steps;
};
void history_limits_default(struct history_limits *l);

/* Reads the estimates of n ids from key: est[i] = smoothed seconds, or -1
 * when id i has no readable entry. HMGET in batches of HISTORY_BATCH, all
 * pipelined. Returns the number of ids with an estimate, or -1 with a
 * message in err (connection error or error reply; est is then all -1). */
long history_load(redisContext *c, const char *key, char *const *ids, size_t n,
		  double *est, char *err, size_t errlen);

struct history_sample {
	const char *id;
	double dur_s;
};

/* Folds n samples into key at time now (unix seconds): each id's value
 * becomes history_smooth(old, sample) with last seen = now (a non-finite
 * or negative sample is skipped; a later duplicate of an id wins). The
 * reads (HMGET) and the writes (one HSET of up to HISTORY_BATCH fields
 * each) are pipelined. Then: EXPIRE key retention; the next slice of the
 * sweep (HSCAN from the cursor kept in "<key>:sweep", at most sweep_steps
 * calls) deletes entries last seen more than retention ago or
 * unreadable; and when the hash holds more than max_entries, the least
 * recently seen are deleted (ties by id). Returns 0, or -1 with a message
 * in err. */
int history_record(redisContext *c, const char *key,
		   const struct history_sample *s, size_t n, long long now,
		   const struct history_limits *lim, char *err, size_t errlen);

/* The start-up history of the suite whose duration history is key:
 * "<key>:startup" (no test id can clash with it: it is a key of its own).
 * Caller frees. */
char *history_startup_key(const char *key);

/* Its value: "<overhead s>:<concurrency>:<floor s>:<last seen>", e.g.
 * "0.412:7.93:0.301:1763700000". Parse returns 0 and sets out (learned =
 * 1; default_s is left alone), or -1 when s is not that (overhead and
 * floor finite and >= 0, concurrency finite and >= 1, last seen >= 0).
 * Format writes at most outlen bytes. */
int history_startup_parse(const char *s, size_t len, struct shard_startup *out,
			  long long *seen);
void history_startup_format(const struct shard_startup *s, long long seen,
			    char *out, size_t outlen);

/* What one run says about the start-up of suite's tasks, from the report's
 * task times (t, n; every suite's, all count for the concurrency): each
 * task's overhead is its duration less its tests' (at least 0), spent at
 * its start. overhead_s = the mean over the suite's tasks; floor_s = their
 * 10th percentile (nearest rank); concurrency = the mean over them of the
 * number of tasks of the run in their start-up at the same time,
 * time-weighted over the task's own start-up (itself included; 1 when no
 * task's overhead reaches a millisecond). Returns 0 and sets out (learned
 * = 1, default_s 0), or -1 when the suite has no task time. */
int history_startup_sample(const struct report_task_time *t, size_t n,
			   const char *suite, struct shard_startup *out);

/* SET key v (len bytes) EX ttl_s. Returns 0, or -1 with a message in
 * err. */
int history_set_expiring(redisContext *c, const char *key, const char *v,
			 size_t len, long long ttl_s, char *err, size_t errlen);

/* Reads the start-up history of key (the suite's duration history key).
 * Returns 1 and sets out's learned figures (learned = 1), 0 when there is
 * none or it is unreadable (out untouched), or -1 with a message in err. */
int history_startup_load(redisContext *c, const char *key,
			 struct shard_startup *out, char *err, size_t errlen);

/* Folds a run's sample (history_startup_sample) into key's start-up
 * history at time now: each figure becomes history_smooth(old, sample,
 * lim->alpha) (the sample alone when there is no readable value); the key
 * expires lim->retention_s later. lim NULL = the defaults. Returns 0, or
 * -1 with a message in err. */
int history_startup_record(redisContext *c, const char *key,
			   const struct shard_startup *sample, long long now,
			   const struct history_limits *lim, char *err,
			   size_t errlen);

/* The history field of a run hash for these suites: "<fp> <suite>\n" each,
 * fingerprints as history_fingerprint(runner, rootdirs[i], suites[i]).
 * Caller frees. */
char *history_run_field(const char *runner, char *const *suites,
			char *const *rootdirs, size_t n);

/* Folds a finished run's report into the history of its suites, once per
 * run: HSETNX <run hash> history_saved first, and nothing more when it was
 * set already. field is the run hash's history field (NULL or "" = none:
 * nothing to do). Tests count when their outcome is a result of the test
 * itself -- every outcome but error (which may be the infrastructure's) --
 * and their suite is in field; each such suite's start-up is folded in too
 * from rep's task times (history_startup_sample, history_startup_record).
 * Returns the number of tests recorded (0 when the run was already folded
 * in, or none counted), or -1 with a message in err. */
long history_record_run(redisContext *c, const char *prefix, const char *run,
			const char *field, const struct report *rep,
			long long now, char *err, size_t errlen);

#endif
