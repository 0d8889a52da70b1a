/* keys.h -- names of every Redis key testfleet uses, in one place. All keys
 * share a prefix (default "tf") so ACLs can restrict a role to "~tf:*".
 * The data model is documented in docs/protocol.md. Every function returns
 * a newly allocated string the caller frees. */
#ifndef TF_KEYS_H
#define TF_KEYS_H

#define KEYS_DEFAULT_PREFIX "tf"
#define KEYS_GROUP "workers"  /* consumer group on every queue stream */

char *key_queue(const char *prefix, const char *queue);    /* tf:q:<queue> */
char *key_run(const char *prefix, const char *run);        /* tf:run:<id> */
char *key_results(const char *prefix, const char *run);    /* ...:results */
char *key_done(const char *prefix, const char *run);       /* ...:done */
char *key_plan(const char *prefix, const char *run);       /* ...:plan */
/* tf:run:<id>:phase:<i>, the tasks of phase i not queued yet */
char *key_phase(const char *prefix, const char *run, unsigned phase);
char *key_phase_deadlines(const char *prefix);      /* tf:phase_deadlines */
char *key_runs(const char *prefix);                        /* tf:runs */
char *key_workers(const char *prefix);                     /* tf:workers */
char *key_worker_caps(const char *prefix);             /* tf:workers:cap */
char *key_durations(const char *prefix, const char *suite);
char *key_partial(const char *prefix, const char *run, const char *task);
/* tf:run:<id>:artifacts, the files kept in Redis: field
 * "<task>/<attempt>/<path>", value the bytes. The worker that writes
 * one sets this expiry on the key; the producer's run_expire shortens it
 * like the run's other keys. */
char *key_artifacts(const char *prefix, const char *run);
#define KEYS_ARTIFACTS_TTL_S (7LL * 86400)
char *key_delayed(const char *prefix);                     /* tf:delayed */
char *key_dead(const char *prefix);                        /* tf:dead */
char *key_control(const char *prefix);  /* tf:control (pub/sub channel) */

#endif
