/* shard.h -- turning an ordered list of test ids into tasks: one task per
 * test, one per file, N balanced tasks (LPT bin packing), or "auto", which
 * batches tiny tests so each task is worth a runner start-up and splits big
 * files so every slot has work. Pure: ids and estimates in, a plan of index
 * lists out, the same plan for the same input. */
#ifndef TF_SHARD_H
#define TF_SHARD_H

#include <stddef.h>

/* The estimate of a test whose duration is unknown, and the start-up cost a
 * task should amortise (a pytest start is about 0.2 s). */
#define SHARD_DEFAULT_TEST_S 0.05
#define SHARD_MIN_TASK_S 0.2
/* "auto" aims for this many tasks per slot. */
#define SHARD_TASKS_PER_SLOT 4

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

/* The file part of a test id: the bytes before the first "::" (the whole id
 * when there is none). Returns its length. */
size_t shard_file_len(const char *id);

/* Builds the plan for n ids (n >= 1). est holds n estimates in seconds, or
 * is NULL when all are unknown (SHARD_DEFAULT_TEST_S each; negative or
 * non-finite entries are treated the same way). slots is the number of
 * runner slots the tasks will share (0 is taken as 1). Every id lands in
 * exactly one task; no task is empty. Tasks are sorted by estimate, longest
 * first, ties in order of their first test. out is zeroed first; the
 * caller releases it with shard_plan_release. */
void shard_plan_build(char *const *ids, const double *est, size_t n,
		      unsigned slots, struct shard_mode mode,
		      struct shard_plan *out);
void shard_plan_release(struct shard_plan *p);

#endif
