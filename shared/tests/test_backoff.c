/* test_backoff.c -- full-jitter backoff: every delay within
 * [0, min(cap, base * 2^attempt)], the ceiling reached, jitter present,
 * no overflow after many attempts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "backoff.h"

static uint32_t ceiling(uint32_t base, uint32_t cap, uint32_t attempt)
{
	uint64_t c = base;

	while (attempt-- > 0 && c < cap)
		c *= 2;
	return c > cap ? cap : (uint32_t)c;
}

static void test_bounds(void **state)
{
	struct backoff b;
	uint32_t max_seen[12] = {0}, min_seen[12], d, a;
	int round;

	(void)state;
	for (a = 0; a < 12; a++)
		min_seen[a] = UINT32_MAX;
	for (round = 0; round < 500; round++) {
		backoff_init(&b, 100, 2000);
		for (a = 0; a < 12; a++) {
			d = backoff_next(&b);
			assert_true(d <= ceiling(100, 2000, a));
			if (d > max_seen[a])
				max_seen[a] = d;
			if (d < min_seen[a])
				min_seen[a] = d;
		}
	}
	for (a = 0; a < 12; a++) {
		/* Reaches near the ceiling and spreads out (full jitter). */
		assert_true(max_seen[a] >= ceiling(100, 2000, a) * 9 / 10);
		assert_true(min_seen[a] <= ceiling(100, 2000, a) / 10);
	}
}

static void test_reset_and_many_attempts(void **state)
{
	struct backoff b;
	int i;

	(void)state;
	backoff_init(&b, 50, 60000);
	for (i = 0; i < 100000; i++)
		assert_true(backoff_next(&b) <= 60000);
	backoff_reset(&b);
	assert_int_equal(b.attempt, 0);
	assert_true(backoff_next(&b) <= 50);
	assert_int_equal(b.attempt, 1);
	b.attempt = UINT32_MAX;
	assert_true(backoff_next(&b) <= 60000);
	assert_int_equal(b.attempt, UINT32_MAX);
}

static void test_degenerate(void **state)
{
	struct backoff b;
	int i;

	(void)state;
	backoff_init(&b, 0, 0);
	for (i = 0; i < 100; i++)
		assert_true(backoff_next(&b) <= 1);
	backoff_init(&b, 500, 100); /* cap below base: base wins */
	for (i = 0; i < 100; i++)
		assert_true(backoff_next(&b) <= 500);
	backoff_init(&b, UINT32_MAX, UINT32_MAX);
	for (i = 0; i < 100; i++)
		(void)backoff_next(&b);
}

static void test_seeds_differ(void **state)
{
	struct backoff a, b;
	int i, same = 0;

	(void)state;
	backoff_init(&a, 1000, 1000);
	backoff_init(&b, 1000, 1000);
	for (i = 0; i < 16; i++)
		same += backoff_next(&a) == backoff_next(&b);
	assert_true(same < 16);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bounds),
	    cmocka_unit_test(test_reset_and_many_attempts),
	    cmocka_unit_test(test_degenerate),
	    cmocka_unit_test(test_seeds_differ),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
