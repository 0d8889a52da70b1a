/* config.h -- the testfleet.yaml configuration, read with libyaml: defaults,
 * suites and ordered phases. Pure: a file or buffer in, a struct out. Every
 * error names the file, the line and the key. The schema is documented in
 * docs/config.md. */
#ifndef TF_CONFIG_H
#define TF_CONFIG_H

#include <stddef.h>

#include "proto.h"

struct suite_conf {
	char *name;
	char *runner;       /* "pytest" (default) | "playwright" | "command" */
	char **paths;       /* pytest/playwright paths or node ids */
	size_t npaths;
	char **command;     /* command runner: argv, no shell */
	size_t ncommand;
	char *cwd;          /* relative to the config file's directory; NULL = it */
	struct kv *env;
	size_t nenv;
	char *mark;         /* pytest -m */
	char *kexpr;        /* pytest -k */
	char *grep;         /* playwright --grep */
	unsigned timeout_s; /* per task; 0 = defaults.timeout */
	char *queue;        /* NULL = defaults.queue */
	char *shard;        /* NULL = defaults.shard */
	int retries;        /* -1 = defaults.retries */
	unsigned max_concurrency; /* 0 = unlimited */
	/* Appended: exclude: (docs/config.md) -- pytest markers or Playwright
	 * tags left out unless --include names them. has_exclude: given,
	 * replacing defaults.exclude (an empty list excludes nothing). */
	char **exclude;
	size_t nexclude;
	int has_exclude;
};

struct phase_conf {
	char *name;
	char **suites;
	size_t nsuites;
	int required;       /* default 1 */
	int parallel;       /* default 1 */
	unsigned timeout_s; /* 0 = none */
};

/* The retry: section: the run policy of docs/delivery.md. Unset fields
 * keep the defaults of shared/policy.h. */
struct retry_conf {
	int max_attempts;      /* retry.max_attempts, 1-100; -1 = unset */
	int has_transient;     /* retry.transient given: it replaces the
				* default patterns (an empty list: none) */
	char **transient;
	size_t ntransient;
	char **transient_extra; /* retry.transient_extra: added to them */
	size_t ntransient_extra;
	long backoff_base_ms;  /* retry.backoff_base; -1 = unset */
	long backoff_cap_ms;   /* retry.backoff_cap; -1 = unset */
};

/* One entry of the preflight: list (docs/config.md, "preflight"): a check
 * the producer runs before anything is queued. */
enum preflight_kind {
	PREFLIGHT_HTTP = 1, /* GET target, expect a status */
	PREFLIGHT_TCP,      /* connect to target, "host:port" */
	PREFLIGHT_REDIS,    /* connect to target, a Redis URL, and PING */
};

struct preflight_conf {
	char *name;          /* [A-Za-z0-9_.-]+, unique among the checks */
	enum preflight_kind kind;
	char *target;        /* URL, or "host:port" for tcp */
	int *status;         /* http: accepted statuses; none = any 2xx */
	size_t nstatus;
	long timeout_ms;     /* default 5000 */
};

struct config {
	char *path;         /* the file read, for messages */
	char *redis;        /* defaults.redis or NULL */
	char *prefix;       /* defaults.prefix, "tf" */
	unsigned workers;   /* defaults.workers; 0 = CPU count */
	char *shard;        /* defaults.shard, "auto" */
	unsigned timeout_s; /* defaults.timeout, 0 = none */
	char *queue;        /* defaults.queue, "default" */
	int retries;        /* defaults.retries, 0 */
	struct suite_conf *suites;
	size_t nsuites;
	struct phase_conf *phases; /* when absent: one phase "default" with
				    * every suite, in file order */
	size_t nphases;
	struct retry_conf retry;
	/* Appended: the preflight: list, in file order (none when absent). */
	struct preflight_conf *preflight;
	size_t npreflight;
	/* Appended: defaults.exclude, names [A-Za-z0-9_.-]+ (none when
	 * absent). */
	char **exclude;
	size_t nexclude;
};

/* Returns 0, or -1 with "FILE:LINE: KEY: problem" in err (one line). On
 * success the caller releases out with config_release. */
int config_load_file(const char *path, struct config *out, char *err,
		     size_t errlen);
/* Same from memory; name stands for the file in messages. */
int config_load_buffer(const char *name, const char *data, size_t len,
		       struct config *out, char *err, size_t errlen);
void config_release(struct config *c);
/* Finds a suite or phase by name; NULL when absent. Borrowed pointers. */
const struct suite_conf *config_suite(const struct config *c,
				      const char *name);
const struct phase_conf *config_phase(const struct config *c,
				      const char *name);

/* The names suite s excludes: its own exclude: when it has one, else
 * defaults.exclude. Borrowed; *n receives the count (may be 0). */
char *const *config_suite_exclude(const struct config *c,
				  const struct suite_conf *s, size_t *n);

/* Validates a shard mode: "auto", "file", "test", "count:N" (N >= 1).
 * Returns 0, or -1 with a message naming the value. */
int config_check_shard(const char *mode, char *err, size_t errlen);

#endif
