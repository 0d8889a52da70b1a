/* history.h -- the duration history of history-aware scheduling: per suite
 * a Redis hash <prefix>:durations:<suite>:<fingerprint> of test id ->
 * "<smoothed seconds>:<last seen, unix seconds>". Reads a run's estimates
 * back in pipelined batches; folds each finished run's durations in (EWMA,
 * once per run); keeps the hash bounded (entries unseen for 30 days are
 * swept a slice at a time, at most 200,000 entries a suite, the key itself
 * expires 30 days after its last write). The fingerprint, the value format
 * and the smoothing are pure functions. Layout: docs/scheduling.md. */
#ifndef TF_HISTORY_H
#define TF_HISTORY_H

#include <hiredis/hiredis.h>
#include <stddef.h>

#include "aggregate.h"

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
 * and their suite is in field. Returns the number of tests recorded (0
 * when the run was already folded in, or none counted), or -1 with a
 * message in err. */
long history_record_run(redisContext *c, const char *prefix, const char *run,
			const char *field, const struct report *rep,
			long long now, char *err, size_t errlen);

#endif
