/* test_shard.c -- unit tests for producer/shard.c: every mode, LPT on known
 * inputs, the median for unknown estimates, the auto thresholds (the task
 * floor, splitting slow files, batching tiny tests), determinism, the ETA,
 * and file grouping of ids that contain "::", brackets and spaces. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "shard.h"
#include "xmalloc.h"

static struct shard_mode mode_of(const char *s)
{
	struct shard_mode m;
	char err[200];

	assert_int_equal(shard_mode_parse(s, &m, err, sizeof(err)), 0);
	return m;
}

/* Checks that every index 0..n-1 is in exactly one task, no task is empty,
 * each task is in ascending (collection) order, its estimate is the sum of
 * its tests' and tasks are sorted longest first. */
static void check_plan(const struct shard_plan *p, size_t n, const double *est)
{
	unsigned char *seen = calloc(n, 1);
	size_t i, j;

	assert_non_null(seen);
	for (i = 0; i < p->ntasks; i++) {
		const struct shard_task *t = &p->tasks[i];
		double sum = 0;

		assert_true(t->ntests > 0);
		for (j = 0; j < t->ntests; j++) {
			assert_true(t->tests[j] < n);
			assert_int_equal(seen[t->tests[j]], 0);
			seen[t->tests[j]] = 1;
			if (j > 0)
				assert_true(t->tests[j - 1] < t->tests[j]);
			sum += est ? est[t->tests[j]] : SHARD_DEFAULT_TEST_S;
		}
		assert_true(t->estimate_s > sum - 1e-6 &&
			    t->estimate_s < sum + 1e-6);
		if (i > 0) {
			const struct shard_task *u = &p->tasks[i - 1];

			assert_true(u->estimate_s > t->estimate_s ||
				    (u->estimate_s == t->estimate_s &&
				     u->tests[0] < t->tests[0]));
		}
	}
	for (i = 0; i < n; i++)
		assert_int_equal(seen[i], 1);
	free(seen);
}

static void test_mode_parse(void **state)
{
	struct shard_mode m;
	char err[200];
	const char *bad[] = {"",	"bogus",    "count:",	"count:0",
			     "count:x", "count:3x", "count:-1", "count:1000001",
			     "Auto",	"count: 3"};
	size_t i;

	(void)state;
	assert_int_equal(shard_mode_parse("auto", &m, err, sizeof(err)), 0);
	assert_int_equal(m.kind, SHARD_AUTO);
	assert_int_equal(shard_mode_parse("file", &m, err, sizeof(err)), 0);
	assert_int_equal(m.kind, SHARD_FILE);
	assert_int_equal(shard_mode_parse("test", &m, err, sizeof(err)), 0);
	assert_int_equal(m.kind, SHARD_TEST);
	assert_int_equal(shard_mode_parse("count:12", &m, err, sizeof(err)), 0);
	assert_int_equal(m.kind, SHARD_COUNT);
	assert_int_equal(m.count, 12);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(shard_mode_parse(bad[i], &m, err, sizeof(err)),
				 -1);
		assert_non_null(strstr(err, "bad shard mode"));
	}
}

static void test_file_len(void **state)
{
	(void)state;
	assert_int_equal(shard_file_len("tests/test_a.py::test_x[a/b::c]"),
			 strlen("tests/test_a.py"));
	assert_int_equal(shard_file_len("dir a/test b.py::C::t[x y]"),
			 strlen("dir a/test b.py"));
	assert_int_equal(shard_file_len("README.txt"), strlen("README.txt"));
	assert_int_equal(shard_file_len("a.py:x::t"), strlen("a.py:x"));
	/* Playwright ids: the file before ":line", with its project. */
	assert_int_equal(
	    shard_file_len(
		"tests/a.spec.ts:12 \xe2\x80\xba login \xe2\x80\xba x"),
	    strlen("tests/a.spec.ts"));
	assert_int_equal(shard_file_len("[ff] \xe2\x80\xba a.spec.ts:3 "
					"\xe2\x80\xba x::y"),
			 strlen("[ff] \xe2\x80\xba a.spec.ts"));
}

static void test_mode_test(void **state)
{
	char *ids[] = {"a.py::t1", "b.py::t1", "a.py::t2", "c.py::t[x::y]"};
	struct shard_plan p;
	size_t i;

	(void)state;
	shard_plan_build(ids, NULL, 4, 2, mode_of("test"), &p);
	check_plan(&p, 4, NULL);
	assert_int_equal(p.ntasks, 4);
	/* Equal estimates: collection order. */
	for (i = 0; i < 4; i++) {
		assert_int_equal(p.tasks[i].ntests, 1);
		assert_int_equal(p.tasks[i].tests[0], i);
	}
	shard_plan_release(&p);
	assert_null(p.tasks);
}

static void test_mode_file(void **state)
{
	/* The file part ends at the first "::" even when the parameter id
	 * holds "::", "/", spaces or brackets; "b.py" and "b.py x" differ. */
	char *ids[] = {
	    "t/a b.py::test_x[a/b::c]", /* 0: file "t/a b.py" */
	    "t/b.py::K::test_m",	/* 1: "t/b.py" */
	    "t/a b.py::test_x[a b]",	/* 2: "t/a b.py" */
	    "t/b.py x::t",		/* 3: "t/b.py x" */
	    "t/b.py::test_z[\\xfc]",	/* 4: "t/b.py" */
	    "t/a b.py::test_y[]]",	/* 5: "t/a b.py" */
	    "t/c.py",			/* 6: "t/c.py" */
	};
	struct shard_plan p;

	(void)state;
	shard_plan_build(ids, NULL, 7, 4, mode_of("file"), &p);
	check_plan(&p, 7, NULL);
	assert_int_equal(p.ntasks, 4);
	/* Largest first, ties by first appearance. */
	assert_int_equal(p.tasks[0].ntests, 3);
	assert_int_equal(p.tasks[0].tests[0], 0);
	assert_int_equal(p.tasks[0].tests[1], 2);
	assert_int_equal(p.tasks[0].tests[2], 5);
	assert_int_equal(p.tasks[1].ntests, 2);
	assert_int_equal(p.tasks[1].tests[0], 1);
	assert_int_equal(p.tasks[1].tests[1], 4);
	assert_int_equal(p.tasks[2].ntests, 1);
	assert_int_equal(p.tasks[2].tests[0], 3);
	assert_int_equal(p.tasks[3].ntests, 1);
	assert_int_equal(p.tasks[3].tests[0], 6);
	shard_plan_release(&p);
}

static void test_mode_count_lpt(void **state)
{
	/* LPT on 5,4,3,3,3 into 2 bins: 5->b0, 4->b1, 3->b1 (7), 3->b0 (8),
	 * 3->b1 (10). */
	char *ids[] = {"a.py::t0", "a.py::t1", "a.py::t2", "b.py::t3",
		       "b.py::t4"};
	double est[] = {5, 4, 3, 3, 3};
	struct shard_plan p;

	(void)state;
	shard_plan_build(ids, est, 5, 1, mode_of("count:2"), &p);
	check_plan(&p, 5, est);
	assert_int_equal(p.ntasks, 2);
	assert_true(p.tasks[0].estimate_s == 10.0);
	assert_int_equal(p.tasks[0].ntests, 3);
	assert_int_equal(p.tasks[0].tests[0], 1);
	assert_int_equal(p.tasks[0].tests[1], 2);
	assert_int_equal(p.tasks[0].tests[2], 4);
	assert_true(p.tasks[1].estimate_s == 8.0);
	assert_int_equal(p.tasks[1].tests[0], 0);
	assert_int_equal(p.tasks[1].tests[1], 3);
	shard_plan_release(&p);
}

static void test_mode_count_lpt_three(void **state)
{
	/* 7,6,5,4,3,2,1 into 3 bins: 7->b0, 6->b1, 5->b2, 4->b2 (9),
	 * 3->b1 (9), 2->b0 (9), 1->b0 (10). */
	char *ids[] = {"f::a", "f::b", "f::c", "f::d", "f::e", "f::f", "f::g"};
	double est[] = {1, 2, 3, 4, 5, 6, 7}; /* reversed on purpose */
	struct shard_plan p;

	(void)state;
	shard_plan_build(ids, est, 7, 1, mode_of("count:3"), &p);
	check_plan(&p, 7, est);
	assert_int_equal(p.ntasks, 3);
	/* b0 = {7,2,1} = idx {6,1,0}: 10 */
	assert_true(p.tasks[0].estimate_s == 10.0);
	assert_int_equal(p.tasks[0].ntests, 3);
	assert_int_equal(p.tasks[0].tests[0], 0);
	assert_int_equal(p.tasks[0].tests[1], 1);
	assert_int_equal(p.tasks[0].tests[2], 6);
	/* b1 = {6,3} = idx {2,5} and b2 = {5,4} = idx {3,4}: both 9, b1's
	 * first test (2) comes before b2's (3). */
	assert_true(p.tasks[1].estimate_s == 9.0);
	assert_int_equal(p.tasks[1].tests[0], 2);
	assert_int_equal(p.tasks[1].tests[1], 5);
	assert_true(p.tasks[2].estimate_s == 9.0);
	assert_int_equal(p.tasks[2].tests[0], 3);
	assert_int_equal(p.tasks[2].tests[1], 4);
	shard_plan_release(&p);
}

static void test_mode_count_more_than_tests(void **state)
{
	char *ids[] = {"a.py::x", "a.py::y", "b.py::z"};
	struct shard_plan p;

	(void)state;
	shard_plan_build(ids, NULL, 3, 1, mode_of("count:10"), &p);
	check_plan(&p, 3, NULL);
	assert_int_equal(p.ntasks, 3);
	shard_plan_release(&p);
	shard_plan_build(ids, NULL, 3, 1, mode_of("count:1"), &p);
	check_plan(&p, 3, NULL);
	assert_int_equal(p.ntasks, 1);
	assert_int_equal(p.tasks[0].ntests, 3);
	shard_plan_release(&p);
}

static char **make_ids(size_t files, size_t per_file)
{
	char **ids = xcalloc(files * per_file, sizeof(*ids));
	size_t f, t;

	for (f = 0; f < files; f++)
		for (t = 0; t < per_file; t++)
			ids[f * per_file + t] = xasprintf(
			    "tests/d%zu/test_f%zu.py::test_%zu[p %zu::q]",
			    f % 3, f, t, t);
	return ids;
}

static void free_ids(char **ids, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
}

/* Each task is a run of consecutive tests (make_ids lists each file's
 * tests together, so a chunk of a file stays in one piece). */
static void check_contiguous(const struct shard_plan *p)
{
	size_t i, j;

	for (i = 0; i < p->ntasks; i++) {
		const struct shard_task *t = &p->tasks[i];

		for (j = 1; j < t->ntests; j++)
			assert_int_equal(t->tests[j], t->tests[j - 1] + 1);
	}
}

static void test_auto_small_suite_splits_one_file(void **state)
{
	/* 10 tests of 0.05 s in one file, 2 slots: the 1 s floor would leave a
	 * slot idle, so the target is one slot's share (0.25 s) and the file
	 * is cut in ceil(0.5/0.25) = 2 contiguous chunks of 5. */
	char **ids = make_ids(1, 10);
	struct shard_plan p;

	(void)state;
	shard_plan_build(ids, NULL, 10, 2, mode_of("auto"), &p);
	check_plan(&p, 10, NULL);
	check_contiguous(&p);
	assert_int_equal(p.ntasks, 2);
	assert_int_equal(p.tasks[0].ntests, 5);
	assert_int_equal(p.tasks[0].tests[0], 0);
	assert_int_equal(p.tasks[1].ntests, 5);
	assert_int_equal(p.tasks[1].tests[0], 5);
	shard_plan_release(&p);
	free_ids(ids, 10);
}

static void test_auto_batches_tiny_files(void **state)
{
	/* 100 files of one test, 4 slots: 5 s total; by count the target
	 * would be 5/16 = 0.3125 s, but the floor of SHARD_MIN_TASK_S (1 s,
	 * five start-ups) holds since a slot's share is 1.25 s: 20 files per
	 * task, 5 tasks. */
	char **ids = make_ids(100, 1);
	struct shard_plan p;
	size_t i;

	(void)state;
	assert_true(SHARD_MIN_TASK_S == 1.0);
	shard_plan_build(ids, NULL, 100, 4, mode_of("auto"), &p);
	check_plan(&p, 100, NULL);
	check_contiguous(&p);
	assert_int_equal(p.ntasks, 5);
	for (i = 0; i < 5; i++) {
		assert_int_equal(p.tasks[i].ntests, 20);
		assert_int_equal(p.tasks[i].tests[0], 20 * i);
	}
	shard_plan_release(&p);
	free_ids(ids, 100);
}

static void test_auto_by_count_above_floor(void **state)
{
	/* 400 files of one test, 2 slots: 20 s total, a quarter of a slot's
	 * share is 2.5 s (above the floor): 50 files per task, 8 tasks = 4
	 * per slot. */
	char **ids = make_ids(400, 1);
	struct shard_plan p;
	size_t i;

	(void)state;
	shard_plan_build(ids, NULL, 400, 2, mode_of("auto"), &p);
	check_plan(&p, 400, NULL);
	assert_int_equal(p.ntasks, 8);
	for (i = 0; i < p.ntasks; i++)
		assert_int_equal(p.tasks[i].ntests, 50);
	shard_plan_release(&p);
	free_ids(ids, 400);
}

static void test_auto_floor_yields_to_idle_slots(void **state)
{
	/* 40 tests in 40 files, 8 slots: 2 s in all. The floor (1 s) would
	 * make 2 tasks for 8 slots; one slot's share (0.25 s) is the target
	 * instead: 5 tests per task, a task for each slot. */
	char **ids = make_ids(40, 1);
	struct shard_plan p;
	size_t i;

	(void)state;
	shard_plan_build(ids, NULL, 40, 8, mode_of("auto"), &p);
	check_plan(&p, 40, NULL);
	assert_int_equal(p.ntasks, 8);
	for (i = 0; i < p.ntasks; i++)
		assert_int_equal(p.tasks[i].ntests, 5);
	shard_plan_release(&p);
	free_ids(ids, 40);
}

static void test_auto_fewer_tests_than_slots(void **state)
{
	/* 3 tests, 8 slots: each test its own task so no slot waits. */
	char **ids = make_ids(1, 3);
	struct shard_plan p;

	(void)state;
	shard_plan_build(ids, NULL, 3, 8, mode_of("auto"), &p);
	check_plan(&p, 3, NULL);
	assert_int_equal(p.ntasks, 3);
	shard_plan_release(&p);
	free_ids(ids, 3);
}

static void test_auto_splits_big_files_contiguously(void **state)
{
	/* 2 files of 40 tests, 2 slots: 4 s total, target 1 s (the floor),
	 * so each 2 s file becomes 2 chunks of 20 consecutive tests. */
	char **ids = make_ids(2, 40);
	struct shard_plan p;
	size_t i;

	(void)state;
	shard_plan_build(ids, NULL, 80, 2, mode_of("auto"), &p);
	check_plan(&p, 80, NULL);
	check_contiguous(&p);
	assert_int_equal(p.ntasks, 4);
	for (i = 0; i < p.ntasks; i++) {
		assert_int_equal(p.tasks[i].ntests, 20);
		/* never across the file boundary at 40 */
		assert_true(p.tasks[i].tests[0] / 40 ==
			    p.tasks[i].tests[19] / 40);
	}
	shard_plan_release(&p);
	free_ids(ids, 80);
}

static void test_auto_slow_test_alone_first(void **state)
{
	/* One 30 s test among 20 fast ones in the same file, 4 slots, all
	 * known: 32 s, unit target 32 / (4 * 8) = 1 s. The file is over the
	 * target, so the slow test is a unit of its own -- its task is queued
	 * first -- and its 20 neighbours (2 s) are cut in two contiguous
	 * chunks of 1 s. The 30 s test sets the makespan whatever the count:
	 * 2 tasks do as well as 3 or 4 for one start-up less each, so the two
	 * chunks share the second task. */
	char **ids = make_ids(1, 21);
	double est[21];
	struct shard_plan p;
	size_t i;

	(void)state;
	for (i = 0; i < 21; i++)
		est[i] = 0.1;
	est[10] = 30;
	shard_plan_build(ids, est, 21, 4, mode_of("auto"), &p);
	check_plan(&p, 21, est);
	assert_int_equal(p.ntasks, 2);
	assert_int_equal(p.tasks[0].ntests, 1);
	assert_int_equal(p.tasks[0].tests[0], 10);
	assert_true(p.tasks[0].estimate_s == 30.0);
	assert_int_equal(p.tasks[1].ntests, 20);
	assert_int_equal(p.tasks[1].tests[0], 0);
	assert_int_equal(p.tasks[1].tests[10], 11);
	assert_true(p.tasks[1].estimate_s > 1.999 &&
		    p.tasks[1].estimate_s < 2.001);
	shard_plan_release(&p);
	free_ids(ids, 21);
}

static void test_auto_split_threshold(void **state)
{
	/* 1 slot, so the target is max(total/4, 1 s). c's estimate is
	 * unknown (6/7 known, under 90 %: the plan without history), so it
	 * counts the median of the others, 0.5 s. Files: a = {3, 1} (4 s),
	 * b = {0.5 x 4} (2 s), c = {0.5}: 6.5 s in all, target 1.625 s. a is
	 * over it: its 3 s test runs alone, its 1 s test is a unit. b is over
	 * it too but has no slow test: two chunks of 1 s. c (0.5 s) is under
	 * it: one unit. Packing in order (next fit): {a1} 1 s, then b's
	 * first chunk would make 2 s > 1.625: new task; b's second chunk
	 * likewise; c joins it (1.5 s). */
	char *ids[] = {"a.py::s", "a.py::f", "b.py::1", "b.py::2",
		       "b.py::3", "b.py::4", "c.py::x"};
	double est[] = {3, 1, 0.5, 0.5, 0.5, 0.5, -1};
	double eff[] = {3, 1, 0.5, 0.5, 0.5, 0.5, 0.5};
	struct shard_plan p;

	(void)state;
	shard_plan_build(ids, est, 7, 1, mode_of("auto"), &p);
	check_plan(&p, 7, eff);
	assert_int_equal(p.ntasks, 4);
	/* 3 s {a::s}, 1.5 s {b3, b4, c}, then the two 1 s tasks in order */
	assert_int_equal(p.tasks[0].ntests, 1);
	assert_int_equal(p.tasks[0].tests[0], 0);
	assert_int_equal(p.tasks[1].ntests, 3);
	assert_int_equal(p.tasks[1].tests[0], 4);
	assert_int_equal(p.tasks[2].ntests, 1);
	assert_int_equal(p.tasks[2].tests[0], 1);
	assert_int_equal(p.tasks[3].ntests, 2);
	assert_int_equal(p.tasks[3].tests[0], 2);
	shard_plan_release(&p);

	/* All known: one slot, so one task, in collection order. */
	est[6] = 1.5;
	eff[6] = 1.5;
	shard_plan_build(ids, est, 7, 1, mode_of("auto"), &p);
	check_plan(&p, 7, eff);
	assert_int_equal(p.ntasks, 1);
	assert_int_equal(p.tasks[0].ntests, 7);
	shard_plan_release(&p);
}

static void test_auto_file_at_target_stays_whole(void **state)
{
	/* 4 slots, 16 s: a quarter of a slot's share and the floor are both
	 * 1 s, the target. Files of exactly the target (a, b) are not split;
	 * the 2 s file c is, and each of its 1 s tests (at the target) runs
	 * alone; so does d (12 s). a cannot take b (2 s > 1 s). b's estimate
	 * is unknown (5/6 known, under 90 %: the plan without history) and
	 * counts the median of the others, 1 s. */
	char *ids[] = {"a.py::1", "a.py::2", "b.py::1",
		       "c.py::1", "c.py::2", "d.py::x"};
	double est[] = {0.5, 0.5, -1, 1, 1, 12};
	double eff[] = {0.5, 0.5, 1, 1, 1, 12};
	struct shard_plan p;

	(void)state;
	shard_plan_build(ids, est, 6, 4, mode_of("auto"), &p);
	check_plan(&p, 6, eff);
	/* d alone (12), then a {0.5,0.5}, b, c::1, c::2: each 1 s */
	assert_int_equal(p.ntasks, 5);
	assert_int_equal(p.tasks[0].tests[0], 5);
	assert_int_equal(p.tasks[1].ntests, 2);
	assert_int_equal(p.tasks[1].tests[0], 0);
	assert_int_equal(p.tasks[2].tests[0], 2);
	assert_int_equal(p.tasks[3].tests[0], 3);
	assert_int_equal(p.tasks[4].tests[0], 4);
	shard_plan_release(&p);
}

/* Skewed known durations (lognormal-like: most a few ms, a few seconds),
 * deterministic. */
static void skewed_est(double *est, size_t n, uint64_t seed)
{
	uint64_t x = seed;
	size_t i;

	for (i = 0; i < n; i++) {
		double u;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		u = (double)(x % 1000000) / 1000000.0;
		/* exp(-7 + 8u): 0.9 ms .. 2.7 s, heavily skewed; whole
		 * microseconds, so check_plan's sums are exact */
		est[i] = round(exp(-7.0 + 8.0 * u) * 1e6) / 1e6;
	}
}

static double plan_max(const struct shard_plan *p)
{
	return p->ntasks > 0 ? p->tasks[0].estimate_s : 0;
}

static void assert_same_plan(const struct shard_plan *a,
			     const struct shard_plan *b)
{
	size_t i, j;

	assert_int_equal(a->ntasks, b->ntasks);
	for (i = 0; i < a->ntasks; i++) {
		assert_true(a->tasks[i].estimate_s == b->tasks[i].estimate_s);
		assert_int_equal(a->tasks[i].ntests, b->tasks[i].ntests);
		for (j = 0; j < a->tasks[i].ntests; j++)
			assert_int_equal(a->tasks[i].tests[j],
					 b->tasks[i].tests[j]);
	}
}

static void test_auto_history_one_task_per_slot(void **state)
{
	/* 600 tests in 30 files, skewed known durations: for 2, 8 and 32
	 * slots exactly `slots` tasks (a slot's share is well above the
	 * longest test), the longest within 0.5 % of the bound max(total /
	 * slots, longest test); the same plan twice. */
	const unsigned slotv[] = {2, 8, 32};
	size_t n = 600, i, k;
	char **ids = make_ids(30, 20);
	double *est = xcalloc(n, sizeof(*est));
	double total = 0, longest = 0;

	(void)state;
	skewed_est(est, n, 88172645463325252ULL);
	for (i = 0; i < n; i++) {
		total += est[i];
		if (est[i] > longest)
			longest = est[i];
	}
	for (k = 0; k < sizeof(slotv) / sizeof(slotv[0]); k++) {
		struct shard_plan a, b;
		double bound = total / slotv[k];

		if (longest > bound)
			bound = longest;
		shard_plan_build(ids, est, n, slotv[k], mode_of("auto"), &a);
		check_plan(&a, n, est);
		assert_int_equal(a.ntasks, slotv[k]);
		assert_true(plan_max(&a) <= bound * 1.005);
		shard_plan_build(ids, est, n, slotv[k], mode_of("auto"), &b);
		assert_same_plan(&a, &b);
		shard_plan_release(&a);
		shard_plan_release(&b);
	}
	free(est);
	free_ids(ids, n);
}

static void test_auto_history_long_test_alone(void **state)
{
	/* One file: a 10 s test among 40 of 0.5 s, 4 slots. 30 s in all, a
	 * slot's share 7.5 s: the 10 s test is alone in the first task and
	 * sets the makespan. The other 40 (cut in 22 chunks of one or two
	 * tests at the 30 / 32 s unit target) fill two tasks of 10 s: three
	 * tasks end as soon as four would, two would take 20 s. */
	char **ids = make_ids(1, 41);
	double est[41];
	struct shard_plan p;
	size_t i;

	(void)state;
	for (i = 0; i < 41; i++)
		est[i] = 0.5;
	est[20] = 10;
	shard_plan_build(ids, est, 41, 4, mode_of("auto"), &p);
	check_plan(&p, 41, est);
	assert_int_equal(p.ntasks, 3);
	/* All three are 10 s: queued in order of their first test. */
	assert_int_equal(p.tasks[2].ntests, 1);
	assert_int_equal(p.tasks[2].tests[0], 20);
	for (i = 0; i < 3; i++)
		assert_true(p.tasks[i].estimate_s > 9.999 &&
			    p.tasks[i].estimate_s < 10.001);
	shard_plan_release(&p);
	free_ids(ids, 41);
}

static void test_auto_history_refined(void **state)
{
	/* LPT's classic miss: 3, 3, 2, 2, 2 s (a file each) on 2 slots.
	 * LPT gives 3 + 2 + 2 | 3 + 2 = 7 | 5; swapping a 3 for a 2 evens
	 * it out: 3 + 3 | 2 + 2 + 2, 6 s each. */
	char **ids = make_ids(5, 1);
	double est[] = {3, 3, 2, 2, 2};
	struct shard_plan p;

	(void)state;
	shard_plan_build(ids, est, 5, 2, mode_of("auto"), &p);
	check_plan(&p, 5, est);
	assert_int_equal(p.ntasks, 2);
	assert_true(p.tasks[0].estimate_s == 6 && p.tasks[1].estimate_s == 6);
	assert_int_equal(p.tasks[0].ntests, 2);
	assert_int_equal(p.tasks[0].tests[0], 0);
	assert_int_equal(p.tasks[0].tests[1], 1);
	assert_int_equal(p.tasks[1].ntests, 3);
	assert_int_equal(p.tasks[1].tests[0], 2);
	shard_plan_release(&p);
	free_ids(ids, 5);
}

static void test_auto_history_threshold(void **state)
{
	/* 400 files of one 0.05 s test, 2 slots. With 360 of 400 estimates
	 * known (90 %), one task per slot of 200 tests; with 359 (under
	 * 90 %) the plan without history: the unknown tests count the median
	 * (0.05 s), target 20 s / 8 = 2.5 s, 8 tasks of 50 -- the same plan
	 * as with no estimate at all. */
	size_t n = 400, i;
	char **ids = make_ids(400, 1);
	double *est = xcalloc(n, sizeof(*est));
	struct shard_plan p, q;

	(void)state;
	for (i = 0; i < n; i++)
		est[i] = i < 360 ? 0.05 : -1;
	shard_plan_build(ids, est, n, 2, mode_of("auto"), &p);
	check_plan(&p, n, NULL);
	assert_int_equal(p.ntasks, 2);
	assert_int_equal(p.tasks[0].ntests, 200);
	assert_int_equal(p.tasks[1].ntests, 200);
	shard_plan_release(&p);

	est[359] = NAN;
	shard_plan_build(ids, est, n, 2, mode_of("auto"), &p);
	check_plan(&p, n, NULL);
	assert_int_equal(p.ntasks, 8);
	for (i = 0; i < p.ntasks; i++)
		assert_int_equal(p.tasks[i].ntests, 50);
	shard_plan_build(ids, NULL, n, 2, mode_of("auto"), &q);
	assert_same_plan(&p, &q);
	shard_plan_release(&p);
	shard_plan_release(&q);
	free(est);
	free_ids(ids, n);
}

static void test_auto_history_partial_keeps_old_plan(void **state)
{
	/* The skewed suite with 15 % of the estimates unknown: more tasks
	 * than slots (next fit at the coarser target), never one per slot. */
	size_t n = 600, i;
	char **ids = make_ids(30, 20);
	double *est = xcalloc(n, sizeof(*est));
	struct shard_plan p;

	(void)state;
	skewed_est(est, n, 88172645463325252ULL);
	for (i = 0; i < n; i += 7)
		est[i] = -1;
	shard_plan_build(ids, est, n, 8, mode_of("auto"), &p);
	assert_true(p.ntasks > 8);
	shard_plan_release(&p);
	free(est);
	free_ids(ids, n);
}

static void test_auto_history_fewer_units_than_slots(void **state)
{
	/* 3 known tests, 8 slots: zero estimates leave no task empty; 1, 2
	 * and 3 s make 2 tasks (3 | 2 + 1: 3 s, as with 3 tasks, for one
	 * start-up less). */
	char **ids = make_ids(1, 3);
	double est[] = {0, 0, 0};
	struct shard_plan p;

	(void)state;
	shard_plan_build(ids, est, 3, 8, mode_of("auto"), &p);
	check_plan(&p, 3, est);
	assert_true(p.ntasks >= 1 && p.ntasks <= 3);
	shard_plan_release(&p);
	est[0] = 1;
	est[1] = 2;
	est[2] = 3;
	shard_plan_build(ids, est, 3, 8, mode_of("auto"), &p);
	check_plan(&p, 3, est);
	assert_int_equal(p.ntasks, 2);
	/* both 3 s: {1, 2 s} first (its first test comes first) */
	assert_int_equal(p.tasks[1].ntests, 1);
	assert_int_equal(p.tasks[1].tests[0], 2);
	shard_plan_release(&p);
	free_ids(ids, 3);
}

static void test_deterministic_all_modes(void **state)
{
	const char *modes[] = {"auto", "file", "test", "count:7"};
	size_t n = 600, m, i, j;
	char **ids = make_ids(60, 10);
	double *est = xcalloc(n, sizeof(*est));
	uint64_t x = 88172645463325252ULL;

	(void)state;
	for (i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		est[i] = (double)(x % 5000) / 1000.0;
	}
	for (m = 0; m < 4; m++) {
		struct shard_plan a, b;

		shard_plan_build(ids, est, n, 6, mode_of(modes[m]), &a);
		shard_plan_build(ids, est, n, 6, mode_of(modes[m]), &b);
		check_plan(&a, n, est);
		assert_int_equal(a.ntasks, b.ntasks);
		for (i = 0; i < a.ntasks; i++) {
			assert_int_equal(a.tasks[i].ntests, b.tasks[i].ntests);
			for (j = 0; j < a.tasks[i].ntests; j++)
				assert_int_equal(a.tasks[i].tests[j],
						 b.tasks[i].tests[j]);
		}
		shard_plan_release(&a);
		shard_plan_release(&b);
	}
	free(est);
	free_ids(ids, n);
}

static void test_unknown_estimates_default(void **state)
{
	/* Nothing known: NaN and negative estimates count 0.05 s. */
	char *ids[] = {"a.py::x", "a.py::y"};
	double est[] = {-1.0, NAN};
	struct shard_plan p;
	size_t known = 99;

	(void)state;
	assert_true(shard_unknown_estimate(est, 2, &known) ==
		    SHARD_DEFAULT_TEST_S);
	assert_int_equal(known, 0);
	assert_true(shard_unknown_estimate(NULL, 2, &known) ==
		    SHARD_DEFAULT_TEST_S);
	shard_plan_build(ids, est, 2, 1, mode_of("count:1"), &p);
	assert_int_equal(p.ntasks, 1);
	assert_true(p.tasks[0].estimate_s > 0.0999 &&
		    p.tasks[0].estimate_s < 0.1001);
	shard_plan_release(&p);
}

static void test_unknown_get_median(void **state)
{
	/* Known 1, 3, 2 (median 2); unknown -1 and NaN count 2 each. */
	char *ids[] = {"a.py::1", "a.py::2", "a.py::3", "a.py::4", "b.py::5"};
	double est[] = {1, -1, 3, NAN, 2};
	double even[] = {1, 4, -5, 0.25, 8};
	struct shard_plan p;
	size_t known;

	(void)state;
	assert_true(shard_unknown_estimate(est, 5, &known) == 2.0);
	assert_int_equal(known, 3);
	/* even count: 0.25 1 4 8 -> (1 + 4) / 2 */
	assert_true(shard_unknown_estimate(even, 5, &known) == 2.5);
	assert_int_equal(known, 4);
	/* one known value: that one */
	assert_true(shard_unknown_estimate(est + 3, 2, &known) == 2.0);
	assert_int_equal(known, 1);
	shard_plan_build(ids, est, 5, 1, mode_of("count:1"), &p);
	assert_true(p.tasks[0].estimate_s == 10.0);
	shard_plan_release(&p);
	/* LPT with the filled-in values: 3, 2 (idx 1), 2 (idx 3), 2 (idx
	 * 4), 1 into 2 bins: 3->b0, 2(1)->b1, 2(3)->b1 (4), 2(4)->b0 (5),
	 * 1->b1 (5). */
	shard_plan_build(ids, est, 5, 1, mode_of("count:2"), &p);
	check_plan(&p, 5, (double[]){1, 2, 3, 2, 2});
	assert_int_equal(p.ntasks, 2);
	assert_true(p.tasks[0].estimate_s == 5.0);
	assert_true(p.tasks[1].estimate_s == 5.0);
	/* ties by first test: b1 = {0, 1, 3} before b0 = {2, 4} */
	assert_int_equal(p.tasks[0].ntests, 3);
	assert_int_equal(p.tasks[0].tests[0], 0);
	assert_int_equal(p.tasks[0].tests[1], 1);
	assert_int_equal(p.tasks[0].tests[2], 3);
	assert_int_equal(p.tasks[1].tests[0], 2);
	assert_int_equal(p.tasks[1].tests[1], 4);
	shard_plan_release(&p);
}

static void test_eta(void **state)
{
	/* Queue order 3, 2, 2, 1 on 2 slots, 0.2 s start-up each: 3.2 | 2.2,
	 * then 2 -> slot 2 (4.4), then 1 -> slot 1 (4.4): 4.4 s. */
	double t[] = {3, 2, 2, 1};
	double one[] = {10};
	double eta;

	(void)state;
	eta = shard_eta(t, 4, 2);
	assert_true(eta > 4.3999 && eta < 4.4001);
	/* one slot: the sum plus the start-ups */
	eta = shard_eta(t, 4, 1);
	assert_true(eta > 8.7999 && eta < 8.8001);
	/* more slots than tasks: the longest */
	eta = shard_eta(t, 4, 16);
	assert_true(eta > 3.1999 && eta < 3.2001);
	eta = shard_eta(one, 1, 0);
	assert_true(eta > 10.1999 && eta < 10.2001);
	assert_true(shard_eta(NULL, 0, 4) == 0);
	/* never below max(total / slots, longest) */
	eta = shard_eta(t, 4, 3);
	assert_true(eta >= 8.0 / 3 && eta >= 3.0);
}

static void test_eta_with_startup(void **state)
{
	/* Queue order 3, 2, 2, 1 on 2 slots with start-ups 1, 0, 0.5, 0:
	 * 4 | 2, then 2 + 0.5 -> slot 2 (4.5), then 1 -> slot 1 (5). */
	double t[] = {3, 2, 2, 1};
	double up[] = {1, 0, 0.5, 0};
	double eta;

	(void)state;
	eta = shard_eta_with(t, up, 4, 2);
	assert_true(eta > 4.9999 && eta < 5.0001);
	/* NULL: SHARD_STARTUP_S each, as shard_eta */
	assert_true(shard_eta_with(t, NULL, 4, 2) == shard_eta(t, 4, 2));
	/* junk start-ups count 0 */
	up[0] = NAN;
	up[2] = -3;
	eta = shard_eta_with(t, up, 4, 2);
	assert_true(eta > 3.9999 && eta < 4.0001);
}

static void test_startup_default(void **state)
{
	(void)state;
	assert_true(shard_startup_default("pytest") == SHARD_STARTUP_S);
	assert_true(shard_startup_default(NULL) == SHARD_STARTUP_S);
	assert_true(shard_startup_default("command") == SHARD_STARTUP_S);
	assert_true(shard_startup_default("playwright") ==
		    SHARD_STARTUP_PLAYWRIGHT_S);
	assert_true(SHARD_STARTUP_PLAYWRIGHT_S > SHARD_STARTUP_S);
}

static void test_startup_at(void **state)
{
	struct shard_startup d = {.default_s = 0.3};
	struct shard_startup l = {.default_s = 0.3,
				  .learned = 1,
				  .overhead_s = 8,
				  .concurrency = 32,
				  .floor_s = 1};
	struct shard_startup bad = l;

	(void)state;
	/* NULL: the constant; not learned: the default, any concurrency */
	assert_true(shard_startup_at(NULL, 5) == SHARD_STARTUP_S);
	assert_true(shard_startup_at(&d, 1) == 0.3);
	assert_true(shard_startup_at(&d, 100) == 0.3);
	/* learned: in proportion to the tasks starting at once -- 8 s
	 * measured with 32 at once is 0.25 s per concurrent start -- but
	 * not below the floor; k 0 counts as 1 */
	assert_true(shard_startup_at(&l, 32) == 8);
	assert_true(shard_startup_at(&l, 64) == 16);
	assert_true(shard_startup_at(&l, 16) == 4);
	assert_true(shard_startup_at(&l, 2) == 1);
	assert_true(shard_startup_at(&l, 0) == 1);
	/* a floor above the overhead is capped at it */
	l.floor_s = 20;
	assert_true(shard_startup_at(&l, 2) == 8);
	/* junk: concurrency below 1 counts 1, NaN and negatives 0, huge
	 * values are capped */
	bad.concurrency = 0;
	bad.floor_s = NAN;
	assert_true(shard_startup_at(&bad, 3) == 24);
	bad.overhead_s = -1;
	assert_true(shard_startup_at(&bad, 3) == 0);
	bad.overhead_s = INFINITY;
	assert_true(shard_startup_at(&bad, 3) == 0);
	bad.overhead_s = 1e300;
	assert_true(shard_startup_at(&bad, 3) == 1e6);
}

/* 40 files of one 1 s test each, every estimate known. */
static double *forty_seconds(char ***ids)
{
	double *est = xcalloc(40, sizeof(*est));
	size_t i;

	*ids = make_ids(40, 1);
	for (i = 0; i < 40; i++)
		est[i] = 1;
	return est;
}

static void test_auto_history_fewest_tasks(void **state)
{
	/* 40 units of 1 s, 32 slots, start-up 0.2 s whatever the
	 * concurrency: LPT gives ceil(40 / T) s, the expected makespan
	 * 0.2 + ceil(40 / T): 2.2 s for any T from 20 to 32 -- 20 tasks of
	 * 2 s, not 32 (12 of them 1 s) for twelve start-ups more. */
	char **ids;
	double *est = forty_seconds(&ids);
	struct shard_plan p;
	size_t i;

	(void)state;
	shard_plan_build(ids, est, 40, 32, mode_of("auto"), &p);
	check_plan(&p, 40, est);
	assert_int_equal(p.ntasks, 20);
	for (i = 0; i < 20; i++)
		assert_true(p.tasks[i].estimate_s == 2);
	assert_true(p.startup_s == SHARD_STARTUP_S);
	shard_plan_release(&p);
	free(est);
	free_ids(ids, 40);
}

static void test_auto_history_contention(void **state)
{
	/* The same 40 units on 32 slots, but the history measured 6.4 s of
	 * start-up per task while 32 started at once (a fleet with fewer
	 * cores than slots): T tasks starting together cost 0.2 * T s each.
	 * Expected makespan 0.2 T + ceil(40 / T): 5.8 s at T = 14 (2.8 +
	 * 3), 6 s at 10 and 20, 9.6 s at 32. So 14 tasks: 12 of 3 s and 2
	 * of 2 s, each expected to start in 2.8 s. */
	struct shard_startup st = {.default_s = SHARD_STARTUP_S,
				   .learned = 1,
				   .overhead_s = 6.4,
				   .concurrency = 32,
				   .floor_s = 0};
	char **ids;
	double *est = forty_seconds(&ids);
	struct shard_plan p, q;
	size_t i;

	(void)state;
	shard_plan_build_with(ids, est, 40, 32, mode_of("auto"), &st, &p);
	check_plan(&p, 40, est);
	assert_int_equal(p.ntasks, 14);
	for (i = 0; i < 14; i++)
		assert_true(p.tasks[i].estimate_s == (i < 12 ? 3 : 2));
	assert_true(p.startup_s > 2.7999 && p.startup_s < 2.8001);
	/* the same history, the same plan */
	shard_plan_build_with(ids, est, 40, 32, mode_of("auto"), &st, &q);
	assert_same_plan(&p, &q);
	shard_plan_release(&q);
	shard_plan_release(&p);
	/* On 8 slots the balance wins: 8 tasks of 5 s (0.2 * 8 + 5 = 6.6 s;
	 * 7 tasks would be 1.4 + 6). */
	shard_plan_build_with(ids, est, 40, 8, mode_of("auto"), &st, &p);
	check_plan(&p, 40, est);
	assert_int_equal(p.ntasks, 8);
	assert_true(p.startup_s > 1.5999 && p.startup_s < 1.6001);
	shard_plan_release(&p);
	/* Start-up dearer than the work: one task (30 s measured per task
	 * with 1 at once: 30 + 40 beats 60 + 20, 90 + 14, ...). */
	st.overhead_s = 30;
	st.concurrency = 1;
	shard_plan_build_with(ids, est, 40, 32, mode_of("auto"), &st, &p);
	check_plan(&p, 40, est);
	assert_int_equal(p.ntasks, 1);
	shard_plan_release(&p);
	free(est);
	free_ids(ids, 40);
}

static void test_auto_history_gate(void **state)
{
	/* 12 tests of 1 s, 4 slots, a start-up of 1 s a task with one
	 * starting at a time (measured 1 s with 1 at once).
	 * Without a gate the T tasks start together, T s each: T + 12 / T
	 * is 7 at T = 3 and 4, so 3 tasks of 4 s.
	 * Through a gate of 1 task k is ready at k + 1 s: with 3 tasks the
	 * ends are at best (1 + 2 + 3 + 12) / 3 = 6, loads 5, 4 and 3;
	 * with 4, at best (1 + 2 + 3 + 4 + 12) / 4 = 5.5, so 6 too; with
	 * 2, 8. So 3 tasks, the first in the queue with the most. */
	struct shard_startup st = {.default_s = SHARD_STARTUP_S,
				   .learned = 1,
				   .overhead_s = 1,
				   .concurrency = 1,
				   .floor_s = 1};
	char **ids = make_ids(12, 1);
	double est[12];
	struct shard_plan p, q;
	size_t i;

	(void)state;
	for (i = 0; i < 12; i++)
		est[i] = 1;
	shard_plan_build_with(ids, est, 12, 4, mode_of("auto"), &st, &p);
	check_plan(&p, 12, est);
	assert_int_equal(p.ntasks, 3);
	for (i = 0; i < 3; i++)
		assert_true(p.tasks[i].estimate_s == 4);
	shard_plan_release(&p);

	st.gate = 1;
	assert_true(shard_ready_at(&st, 3, 0) == 1);
	assert_true(shard_ready_at(&st, 3, 2) == 3);
	shard_plan_build_with(ids, est, 12, 4, mode_of("auto"), &st, &p);
	check_plan(&p, 12, est);
	assert_int_equal(p.ntasks, 3);
	assert_true(p.tasks[0].estimate_s == 5);
	assert_true(p.tasks[1].estimate_s == 4);
	assert_true(p.tasks[2].estimate_s == 3);
	assert_int_equal(p.gate, 1);
	/* the same history, the same plan */
	shard_plan_build_with(ids, est, 12, 4, mode_of("auto"), &st, &q);
	assert_same_plan(&p, &q);
	shard_plan_release(&q);
	shard_plan_release(&p);

	/* A gate as wide as the tasks is no gate: all start at once. */
	st.gate = 4;
	assert_true(shard_ready_at(&st, 3, 2) == 3);
	shard_plan_build_with(ids, est, 12, 4, mode_of("auto"), &st, &p);
	assert_int_equal(p.ntasks, 3);
	assert_true(p.tasks[2].estimate_s == 4);
	shard_plan_release(&p);
	free_ids(ids, 12);
}

static void test_auto_startup_sets_task_floor(void **state)
{
	/* No history: 400 files of one test, 20 s at the 0.05 s default, 2
	 * slots. With pytest's 0.2 s start-up the smallest task is 1 s and
	 * the target 20 / 8 = 2.5 s: 8 tasks. With Playwright's 1.5 s it is
	 * 7.5 s: tasks of 150 tests (7.5 s), 3 in all. */
	size_t n = 400, i;
	char **ids = make_ids(400, 1);
	struct shard_startup pw = {.default_s =
				       shard_startup_default("playwright")};
	struct shard_plan p;

	(void)state;
	shard_plan_build(ids, NULL, n, 2, mode_of("auto"), &p);
	assert_int_equal(p.ntasks, 8);
	shard_plan_release(&p);
	shard_plan_build_with(ids, NULL, n, 2, mode_of("auto"), &pw, &p);
	check_plan(&p, n, NULL);
	assert_int_equal(p.ntasks, 3);
	assert_int_equal(p.tasks[0].ntests, 150);
	assert_int_equal(p.tasks[1].ntests, 150);
	assert_int_equal(p.tasks[2].ntests, 100);
	assert_true(p.startup_s == SHARD_STARTUP_PLAYWRIGHT_S);
	shard_plan_release(&p);
	for (i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
}

static void test_format_duration(void **state)
{
	char b[32];

	(void)state;
	shard_format_duration(0.84, b, sizeof(b));
	assert_string_equal(b, "0.8s");
	shard_format_duration(-3, b, sizeof(b));
	assert_string_equal(b, "0.0s");
	shard_format_duration(42.4, b, sizeof(b));
	assert_string_equal(b, "42s");
	shard_format_duration(185, b, sizeof(b));
	assert_string_equal(b, "3m05s");
	shard_format_duration(7800, b, sizeof(b));
	assert_string_equal(b, "2h10m");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mode_parse),
	    cmocka_unit_test(test_file_len),
	    cmocka_unit_test(test_mode_test),
	    cmocka_unit_test(test_mode_file),
	    cmocka_unit_test(test_mode_count_lpt),
	    cmocka_unit_test(test_mode_count_lpt_three),
	    cmocka_unit_test(test_mode_count_more_than_tests),
	    cmocka_unit_test(test_auto_small_suite_splits_one_file),
	    cmocka_unit_test(test_auto_batches_tiny_files),
	    cmocka_unit_test(test_auto_by_count_above_floor),
	    cmocka_unit_test(test_auto_floor_yields_to_idle_slots),
	    cmocka_unit_test(test_auto_fewer_tests_than_slots),
	    cmocka_unit_test(test_auto_splits_big_files_contiguously),
	    cmocka_unit_test(test_auto_slow_test_alone_first),
	    cmocka_unit_test(test_auto_split_threshold),
	    cmocka_unit_test(test_auto_file_at_target_stays_whole),
	    cmocka_unit_test(test_auto_history_one_task_per_slot),
	    cmocka_unit_test(test_auto_history_long_test_alone),
	    cmocka_unit_test(test_auto_history_refined),
	    cmocka_unit_test(test_auto_history_threshold),
	    cmocka_unit_test(test_auto_history_partial_keeps_old_plan),
	    cmocka_unit_test(test_auto_history_fewer_units_than_slots),
	    cmocka_unit_test(test_deterministic_all_modes),
	    cmocka_unit_test(test_unknown_estimates_default),
	    cmocka_unit_test(test_unknown_get_median),
	    cmocka_unit_test(test_eta),
	    cmocka_unit_test(test_eta_with_startup),
	    cmocka_unit_test(test_startup_default),
	    cmocka_unit_test(test_startup_at),
	    cmocka_unit_test(test_auto_history_fewest_tasks),
	    cmocka_unit_test(test_auto_history_contention),
	    cmocka_unit_test(test_auto_history_gate),
	    cmocka_unit_test(test_auto_startup_sets_task_floor),
	    cmocka_unit_test(test_format_duration),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
