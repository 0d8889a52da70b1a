/* policy.h -- a run's retry policy (docs/delivery.md, "Run policy"): how
 * many attempts a test gets, the --retries budget, fail-fast, backoff, and
 * the transient patterns that tell infrastructure failures from test
 * failures. Owns the defaults (one place for producer and worker) and the
 * run-hash encoding of every field. Pure: no I/O. */
#ifndef TF_POLICY_H
#define TF_POLICY_H

#include <stddef.h>
#include <stdint.h>

#define POLICY_MAX_ATTEMPTS 3	     /* default max_attempts */
#define POLICY_BACKOFF_BASE_MS 1000u /* default backoff_base_ms */
#define POLICY_BACKOFF_CAP_MS 60000u /* default backoff_cap_ms */
#define POLICY_ATTEMPTS_LIMIT 100u   /* max_attempts and retries, at most */
#define POLICY_BACKOFF_LIMIT_MS (24u * 3600 * 1000) /* base and cap */
#define POLICY_MAX_PATTERNS 256 /* transient patterns in one run */
#define POLICY_MAX_PATTERN 256	/* bytes of one pattern */

/* The default transient patterns (DESIGN section 5), NULL-terminated. */
extern const char *const policy_default_transient[];

struct policy {
	uint32_t max_attempts;	  /* attempts in all for transient retries */
	uint32_t retries;	  /* --retries: reruns of failed tests */
	uint32_t max_failures;	  /* fail fast after this many; 0 = off */
	uint32_t backoff_base_ms; /* see docs/delivery.md, "Backoff" */
	uint32_t backoff_cap_ms;
	char **transient; /* plain, case-sensitive substrings (owned) */
	size_t ntransient;
};

/* The defaults: max_attempts 3, retries 0, max_failures 0, backoff 1 s /
 * 60 s, and a copy of policy_default_transient. Release with
 * policy_release. */
void policy_init(struct policy *p);
void policy_release(struct policy *p);

/* Checks one pattern: 1 to POLICY_MAX_PATTERN bytes, no newline (the run
 * hash keeps them newline-separated). Returns 0, or -1 with the problem in
 * err ("must not contain a newline"). */
int policy_check_pattern(const char *pattern, char *err, size_t errlen);

/* Replaces the patterns with a copy of patterns[0..n) (n may be 0: no
 * pattern at all). Returns 0, or -1 with a message naming the index
 * ("pattern 2: must not be empty") and p unchanged. */
int policy_set_transient(struct policy *p, char *const *patterns, size_t n,
			 char *err, size_t errlen);
/* Appends copies of patterns[0..n) not already present. Returns 0, or -1
 * (a bad pattern, or more than POLICY_MAX_PATTERNS in all) with p
 * unchanged. */
int policy_add_transient(struct policy *p, char *const *patterns, size_t n,
			 char *err, size_t errlen);

/* The patterns newline-separated, as the run hash's "transient" field
 * stores them ("" for none). Caller frees. */
char *policy_join_transient(const struct policy *p);
/* Parses a "transient" field (len bytes, NUL not needed): one pattern per
 * line, empty lines skipped. Replaces p's patterns. Returns 0, or -1 with
 * a message (too many, too long) and p unchanged. */
int policy_split_transient(struct policy *p, const char *s, size_t len,
			   char *err, size_t errlen);

/* The first pattern found in text[0..len), or NULL. Borrowed. */
const char *policy_match(const struct policy *p, const char *text, size_t len);

/* Sets the field of the run hash named field (max_attempts, retries,
 * max_failures, backoff_base_ms, backoff_cap_ms, transient) from its
 * stored value. Returns 1 when set, 0 when field is not a policy field,
 * -1 with a message for a bad value (p unchanged). For the worker's one
 * HMGET per run; missing fields keep their defaults. */
int policy_set_field(struct policy *p, const char *field, const char *value,
		     size_t len, char *err, size_t errlen);

/* The run hash field names, in the order policy_fields() fills values. */
#define POLICY_NFIELDS 6
extern const char *const policy_field_names[POLICY_NFIELDS];
/* Fills values[i] (caller frees each) with the stored form of field
 * policy_field_names[i]: decimal numbers, and the joined patterns. */
void policy_fields(const struct policy *p, char *values[POLICY_NFIELDS]);

#endif
