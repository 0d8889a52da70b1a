/* shard.h -- turning an ordered list of test ids and their estimated
 * durations into tasks: one task per test, one per file, N balanced tasks
 * (LPT bin packing), or "auto", which batches tiny tests so each task is
 * worth a runner start-up, gives slow tests a task of their own and splits
 * big files so every slot has work; and the ETA of a plan. Pure: ids and
 * estimates in, a plan of index lists out, the same plan for the same
 * input. docs/scheduling.md explains the numbers. */
#ifndef TF_SHARD_H
#define TF_SHARD_H

#include <stddef.h>

/* The estimate of a test when no test of its suite has a known duration
 * (with some known, unknown tests get their median instead). */
#define SHARD_DEFAULT_TEST_S 0.05
/* What starting a task costs (a pytest start is about 0.2 s), counted in
 * the ETA; and the smallest "auto" task, five start-ups, so start-up is at
 * most about a sixth of a task -- unless a bigger task would leave slots
 * idle. */
#define SHARD_STARTUP_S 0.2
#define SHARD_MIN_TASK_S 1.0
/* "auto" aims for at least this many tasks per slot, for balance. */
#define SHARD_TASKS_PER_SLOT 4
/* "auto" with history: when at least this percentage of the tests have a
 * known estimate, the plan is one LPT-balanced task per slot (units cut at
 * total / (slots * SHARD_AUTO_UNITS_PER_SLOT)) instead of many small tasks. */
#define SHARD_AUTO_KNOWN_PCT 90
#define SHARD_AUTO_UNITS_PER_SLOT 8

enum shard_kind { SHARD_AUTO, SHARD_FILE, SHARD_TEST, SHARD_COUNT };

struct shard_mode {
	enum shard_kind kind;
	unsigned count; /* SHARD_COUNT only: number of tasks, >= 1 */
};

/* One task: indexes into the caller's id array, in collection order. */
struct shard_task {
	size_t *tests;
	size_t ntests;
	double estimate_s;
};

struct shard_plan {
	struct shard_task *tasks; /* longest estimate first */
	size_t ntasks;
};

/* Parses "auto", "file", "test" or "count:N" (1 <= N <= 1000000). Returns 0,
 * or -1 with a message naming the value in err. */
int shard_mode_parse(const char *s, struct shard_mode *out, char *err,
		     size_t errlen);

/* The file part of a test id: the bytes before the first "::"; for a
 * Playwright id ("[project] › file:line › title", shared/pwid.h) the
 * "[project] › file" before the line; else the whole id. Returns its
 * length. */
size_t shard_file_len(const char *id);

/* The estimate given to tests whose duration is unknown (negative or
 * non-finite entries of est; est NULL = all unknown): the median of the
 * known ones (the mean of the middle two for an even count), or
 * SHARD_DEFAULT_TEST_S when none is known. *nknown (may be NULL) receives
 * the number of known entries. Computed in whole microseconds, like the
 * plan. */
double shard_unknown_estimate(const double *est, size_t n, size_t *nknown);

/* Builds the plan for n ids (n >= 1). est holds n estimates in seconds
 * (NULL = all unknown); unknown entries get shard_unknown_estimate(). slots
 * is the number of runner slots the tasks will share (0 is taken as 1).
 * "auto" with at least SHARD_AUTO_KNOWN_PCT % of the estimates known makes
 * min(slots, units) tasks balanced by LPT (docs/scheduling.md).
 * Every id lands in exactly one task; no task is empty. Tasks are sorted by
 * estimate, longest first, ties in order of their first test. out is
 * zeroed first; the caller releases it with shard_plan_release. */
void shard_plan_build(char *const *ids, const double *est, size_t n,
		      unsigned slots, struct shard_mode mode,
		      struct shard_plan *out);
void shard_plan_release(struct shard_plan *p);

/* The estimated wall time of n tasks (seconds each, in queue order) on
 * slots slots (0 is taken as 1): how pull-based workers run them -- each
 * task, plus SHARD_STARTUP_S, goes to the slot that frees first. At least
 * max(total / slots, longest task). 0 for no tasks. */
double shard_eta(const double *task_s, size_t n, unsigned slots);

/* "0.8s", "42s", "3m05s", "2h10m": a duration for the console. */
void shard_format_duration(double s, char *out, size_t outlen);

#endif
