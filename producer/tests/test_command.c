/* test_command.c -- producer/command.c: a command suite's task ids and the
 * TESTFLEET_SHARD each shard gets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "command.h"
#include "discover.h"

static void test_ids(void **state)
{
	char **ids;

	(void)state;
	ids = command_ids("load", 1);
	assert_string_equal(ids[0], "load");
	assert_null(ids[1]);
	discover_ids_free(ids, 1);
	ids = command_ids("load", 3);
	assert_string_equal(ids[0], "load[1/3]");
	assert_string_equal(ids[2], "load[3/3]");
	assert_null(ids[3]);
	discover_ids_free(ids, 3);
}

static void test_env(void **state)
{
	struct kv env[] = {{"A", "1"}, {"TESTFLEET_SHARD", "9/9"}, {"B", ""}};
	struct kv *out;
	size_t n;

	(void)state;
	out = command_env(env, 3, 1, 4, &n);
	assert_int_equal(n, 3);
	assert_string_equal(out[0].key, "A");
	assert_string_equal(out[0].value, "1");
	assert_string_equal(out[1].key, "B");
	assert_string_equal(out[1].value, "");
	assert_string_equal(out[2].key, "TESTFLEET_SHARD");
	assert_string_equal(out[2].value, "2/4");
	command_env_free(out, n);
	out = command_env(NULL, 0, 0, 1, &n);
	assert_int_equal(n, 1);
	assert_string_equal(out[0].value, "1/1");
	command_env_free(out, n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ids),
	    cmocka_unit_test(test_env),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
