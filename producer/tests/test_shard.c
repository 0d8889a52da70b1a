/* test_shard.c -- unit tests for producer/shard.c: every mode, LPT on known
 * inputs, the auto thresholds, determinism, and file grouping of ids that
 * contain "::", brackets and spaces. */
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
	/* 10 tests of 0.05 s in one file, 2 slots: the target is one slot's
	 * start-up floor (0.2 s), so the file is cut in ceil(0.5/0.2) = 3
	 * contiguous chunks of 3, 4 and 3 tests. */
	char **ids = make_ids(1, 10);
	struct shard_plan p;

	(void)state;
	shard_plan_build(ids, NULL, 10, 2, mode_of("auto"), &p);
	check_plan(&p, 10, NULL);
	check_contiguous(&p);
	assert_int_equal(p.ntasks, 3);
	assert_int_equal(p.tasks[0].ntests, 4);
	assert_int_equal(p.tasks[0].tests[0], 3);
	assert_int_equal(p.tasks[1].ntests, 3);
	assert_int_equal(p.tasks[1].tests[0], 0);
	assert_int_equal(p.tasks[2].ntests, 3);
	assert_int_equal(p.tasks[2].tests[0], 7);
	shard_plan_release(&p);
	free_ids(ids, 10);
}

static void test_auto_batches_tiny_files(void **state)
{
	/* 100 files of one test, 4 slots: 5 s total, target 5/16 = 0.3125 s,
	 * so 6 files per task (0.30 s) and 17 tasks; none below the start-up
	 * floor except the remainder. */
	char **ids = make_ids(100, 1);
	struct shard_plan p;
	size_t i;

	(void)state;
	shard_plan_build(ids, NULL, 100, 4, mode_of("auto"), &p);
	check_plan(&p, 100, NULL);
	check_contiguous(&p);
	assert_int_equal(p.ntasks, 17);
	for (i = 0; i < 16; i++) {
		assert_true(p.tasks[i].estimate_s <= 0.3125 + 1e-9);
		assert_int_equal(p.tasks[i].ntests, 6);
	}
	/* the remainder, smallest, last */
	assert_int_equal(p.tasks[16].ntests, 4);
	assert_int_equal(p.tasks[16].tests[0], 96);
	shard_plan_release(&p);
	free_ids(ids, 100);
}

static void test_auto_never_below_startup(void **state)
{
	/* 40 tests in 40 files, 8 slots: by count the target would be 2 s /
	 * 32 = 0.0625 s (one test), but the start-up floor keeps 4 tests
	 * (0.2 s) per task: 10 tasks. */
	char **ids = make_ids(40, 1);
	struct shard_plan p;
	size_t i;

	(void)state;
	shard_plan_build(ids, NULL, 40, 8, mode_of("auto"), &p);
	check_plan(&p, 40, NULL);
	assert_int_equal(p.ntasks, 10);
	for (i = 0; i < p.ntasks; i++)
		assert_int_equal(p.tasks[i].ntests, 4);
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
	/* 2 files of 40 tests, 2 slots: 4 s total, target 0.5 s, so each file
	 * becomes 4 chunks of 10 consecutive tests. */
	char **ids = make_ids(2, 40);
	struct shard_plan p;
	size_t i;

	(void)state;
	shard_plan_build(ids, NULL, 80, 2, mode_of("auto"), &p);
	check_plan(&p, 80, NULL);
	check_contiguous(&p);
	assert_int_equal(p.ntasks, 8);
	for (i = 0; i < p.ntasks; i++) {
		assert_int_equal(p.tasks[i].ntests, 10);
		/* never across the file boundary at 40 */
		assert_true(p.tasks[i].tests[0] / 40 ==
			    p.tasks[i].tests[9] / 40);
	}
	shard_plan_release(&p);
	free_ids(ids, 80);
}

static void test_auto_slow_test_alone_first(void **state)
{
	/* One 30 s test among 20 fast ones in the same file: it gets a task
	 * of its own, queued first. */
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
	assert_int_equal(p.tasks[0].ntests, 1);
	assert_int_equal(p.tasks[0].tests[0], 10);
	assert_true(p.tasks[0].estimate_s == 30.0);
	shard_plan_release(&p);
	free_ids(ids, 21);
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
	/* NaN and negative estimates count as unknown (0.05 s). */
	char *ids[] = {"a.py::x", "a.py::y"};
	double est[] = {-1.0, NAN};
	struct shard_plan p;

	(void)state;
	shard_plan_build(ids, est, 2, 1, mode_of("count:1"), &p);
	assert_int_equal(p.ntasks, 1);
	assert_true(p.tasks[0].estimate_s > 0.0999 &&
		    p.tasks[0].estimate_s < 0.1001);
	shard_plan_release(&p);
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
	    cmocka_unit_test(test_auto_never_below_startup),
	    cmocka_unit_test(test_auto_fewer_tests_than_slots),
	    cmocka_unit_test(test_auto_splits_big_files_contiguously),
	    cmocka_unit_test(test_auto_slow_test_alone_first),
	    cmocka_unit_test(test_deterministic_all_modes),
	    cmocka_unit_test(test_unknown_estimates_default),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
