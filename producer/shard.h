/* shard.h -- turning an ordered list of test ids and their estimated
 * durations into tasks: one task per test, one per file, N balanced tasks
 * (LPT bin packing), or "auto", which batches tiny tests so each task is
 * worth a runner start-up, gives slow tests a task of their own and splits
 * big files so every slot has work -- and, with history, picks the number of
 * tasks that minimises the expected makespan given what a task start costs
 * when that many start at once; and the ETA of a plan. Pure: ids, estimates
 * and a start-up cost in, a plan of index lists out, the same plan for the
 * same input. docs/scheduling.md explains the numbers. */
#ifndef TF_SHARD_H
#define TF_SHARD_H

#include <stddef.h>

/* The estimate of a test when no test of its suite has a known duration
 * (with some known, unknown tests get their median instead). */
#define SHARD_DEFAULT_TEST_S 0.05
/* What starting a task costs when the history has not measured it yet
 * (shard_startup_default): a pytest start is about 0.2 s of CPU; a
 * Playwright task starts node, loads @playwright/test and launches a
 * browser, about 1.5 s. SHARD_STARTUP_S is also what the live ETA counts
 * per task not started. */
#define SHARD_STARTUP_S 0.2
#define SHARD_STARTUP_PLAYWRIGHT_S 1.5
/* The smallest "auto" task without history is this many start-ups (five:
 * start-up is at most about a sixth of a task) -- unless a bigger task
 * would leave slots idle. SHARD_MIN_TASK_S is that for pytest's 0.2 s. */
#define SHARD_MIN_TASK_STARTUPS 5
#define SHARD_MIN_TASK_S (SHARD_MIN_TASK_STARTUPS * SHARD_STARTUP_S)
/* "auto" aims for at least this many tasks per slot, for balance. */
#define SHARD_TASKS_PER_SLOT 4
/* "auto" with history: when at least this percentage of the tests have a
 * known estimate, the units (cut at total / (slots *
 * SHARD_AUTO_UNITS_PER_SLOT)) are packed by LPT into the number of tasks,
 * at most one per slot, with the least expected makespan -- the smallest
 * number within SHARD_AUTO_TOLERANCE_PCT percent of the best. */
#define SHARD_AUTO_KNOWN_PCT 90
#define SHARD_AUTO_UNITS_PER_SLOT 8
#define SHARD_AUTO_TOLERANCE_PCT 1

/* What a task's start costs in wall time: the runner's start-up and
 * collection, the worker's spawn and report -- everything of a task but its
 * tests. With learned set, measured by the history (docs/scheduling.md):
 * overhead_s per task on average while `concurrency` tasks were starting
 * at once on average, and floor_s, the least contended figure (a low
 * percentile). Start-up is CPU work: k tasks starting at once on a fleet
 * with fewer cores than k each take about k / concurrency times the
 * measured figure, never less than the floor (shard_startup_at). Without
 * learned, every task costs default_s whatever the concurrency. */
struct shard_startup {
	double default_s;
	int learned;
	double overhead_s;
	double concurrency; /* >= 1 */
	double floor_s;
	/* How many runners the fleet starts at once (the sum of the
	 * workers' start gates, docs/scheduling.md "Start gate"); 0 = every
	 * task at once. With a gate the k-th task in the queue is ready
	 * after shard_ready_at(): the first ones sooner, so they get more
	 * work. */
	unsigned gate;
};

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
	/* The start-up of each task when min(ntasks, slots) start at once
	 * (shard_startup_at), for the ETA. */
	double startup_s;
	/* The start gate the plan counted (shard_startup.gate); with one,
	 * task k's start-up for the ETA is shard_ready_at(k). */
	unsigned gate;
	struct shard_startup st; /* what the plan was made with */
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

/* The start-up a task of runner ("pytest", "playwright", "command"; NULL
 * = pytest) is assumed to cost before the history measured it:
 * SHARD_STARTUP_PLAYWRIGHT_S for Playwright, else SHARD_STARTUP_S. */
double shard_startup_default(const char *runner);

/* The expected start-up of each of k tasks starting at once (k 0 is taken
 * as 1). Learned: overhead_s * k / concurrency, but not below min(floor_s,
 * overhead_s); else default_s. s NULL = SHARD_STARTUP_S. Non-finite or
 * negative figures count as 0; the result is at most 1e6 s. */
double shard_startup_at(const struct shard_startup *s, unsigned k);

/* When task k (from 0, in queue order) of t tasks starting together is
 * past its start-up: with a gate g < t, they start g at a time, each
 * taking shard_startup_at(g), so (k / g + 1) of those; else all at once,
 * shard_startup_at(t). */
double shard_ready_at(const struct shard_startup *s, size_t t, size_t k);

/* Builds the plan for n ids (n >= 1). est holds n estimates in seconds
 * (NULL = all unknown); unknown entries get shard_unknown_estimate(). slots
 * is the number of runner slots the tasks will share (0 is taken as 1);
 * startup what a task start costs (NULL = SHARD_STARTUP_S each, whatever
 * the concurrency). "auto" with at least SHARD_AUTO_KNOWN_PCT % of the
 * estimates known cuts units and packs them by LPT into T <= min(slots,
 * units) tasks, T minimising shard_startup_at(T) + the longest task (the
 * smallest T within SHARD_AUTO_TOLERANCE_PCT % of the least); without,
 * its tasks are at least SHARD_MIN_TASK_STARTUPS start-ups long
 * (docs/scheduling.md). Every id lands in exactly one task; no task is
 * empty. Tasks are sorted by estimate, longest first, ties in order of
 * their first test. out is zeroed first; the caller releases it with
 * shard_plan_release. */
void shard_plan_build_with(char *const *ids, const double *est, size_t n,
			   unsigned slots, struct shard_mode mode,
			   const struct shard_startup *startup,
			   struct shard_plan *out);
/* shard_plan_build_with(..., NULL, out). */
void shard_plan_build(char *const *ids, const double *est, size_t n,
		      unsigned slots, struct shard_mode mode,
		      struct shard_plan *out);
void shard_plan_release(struct shard_plan *p);

/* The estimated wall time of n tasks (seconds each, in queue order) on
 * slots slots (0 is taken as 1): how pull-based workers run them -- each
 * task, plus its start-up (startup_s[i]; startup_s NULL = SHARD_STARTUP_S
 * each), goes to the slot that frees first. At least max(total / slots,
 * longest task). 0 for no tasks. */
double shard_eta_with(const double *task_s, const double *startup_s, size_t n,
		      unsigned slots);
/* shard_eta_with(task_s, NULL, n, slots). */
double shard_eta(const double *task_s, size_t n, unsigned slots);

/* "0.8s", "42s", "3m05s", "2h10m": a duration for the console. */
void shard_format_duration(double s, char *out, size_t outlen);

#endif
