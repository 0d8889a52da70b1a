/* test_queues.c -- producer/queues.c without Redis: heartbeat values
 * ("<time> <queue,queue>", or the time alone from older workers) and the
 * run hash's "queues" field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "queues.h"

static int serves(const char *value, const char *queue, double *beat)
{
	return queues_serves(value, strlen(value), queue, beat);
}

static void test_serves(void **state)
{
	double beat;

	(void)state;
	assert_true(serves("1700000000 default,browser", "browser", &beat));
	assert_true(beat == 1700000000.0);
	assert_true(serves("1700000000 default,browser", "default", &beat));
	assert_false(serves("1700000000 default,browser", "brow", &beat));
	assert_false(serves("1700000000 default,browser", "browsers", &beat));
	assert_false(serves("1700000000 gpu", "default", &beat));
	/* An older worker's heartbeat names no queue: it counts for all. */
	assert_true(serves("1700000001", "browser", &beat));
	assert_true(beat == 1700000001.0);
	/* Garbage has no time: never live. */
	serves("soon default", "default", &beat);
	assert_true(beat == 0);
	assert_false(serves("", "default", &beat));
	assert_true(beat == 0);
}

static void test_split(void **state)
{
	char **q;
	size_t n;

	(void)state;
	q = queues_split("default,browser,,gpu", &n);
	assert_int_equal(n, 3);
	assert_string_equal(q[0], "default");
	assert_string_equal(q[1], "browser");
	assert_string_equal(q[2], "gpu");
	queues_free(q, n);
	q = queues_split(NULL, &n);
	assert_int_equal(n, 0);
	queues_free(q, n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_serves),
	    cmocka_unit_test(test_split),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
