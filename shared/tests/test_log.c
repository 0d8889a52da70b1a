/* test_log.c -- log lines on stderr: "prog: level: message", filtered by
 * level, one line per message, a timestamp at debug level. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* Runs the logging calls of fn with stderr sent to a temporary file and
 * returns what was written (caller frees). */
static char *capture(void (*fn)(void))
{
	FILE *tmp = tmpfile();
	int saved = dup(2);
	char *out;
	long n;

	assert_non_null(tmp);
	fflush(stderr);
	dup2(fileno(tmp), 2);
	fn();
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	n = ftell(tmp);
	out = calloc(1, (size_t)n + 1);
	rewind(tmp);
	assert_int_equal(fread(out, 1, (size_t)n, tmp), (size_t)n);
	fclose(tmp);
	return out;
}

static void log_some(void)
{
	log_debug("hidden %d", 1);
	log_info("run %s started", "r1");
	log_warn("two\nlines\n");
	log_error("boom");
}

static void test_format_and_filter(void **state)
{
	char *out;

	(void)state;
	log_init("/usr/bin/testfleet-worker", LOG_INFO);
	assert_int_equal(log_get_level(), LOG_INFO);
	out = capture(log_some);
	assert_string_equal(out, "testfleet-worker: info: run r1 started\n"
				 "testfleet-worker: warn: two lines\n"
				 "testfleet-worker: error: boom\n");
	free(out);

	log_set_level(LOG_ERROR);
	out = capture(log_some);
	assert_string_equal(out, "testfleet-worker: error: boom\n");
	free(out);

	log_set_level(LOG_QUIET);
	out = capture(log_some);
	assert_string_equal(out, "");
	free(out);
}

static void test_debug_timestamps(void **state)
{
	char *out;

	(void)state;
	log_init("tf", LOG_DEBUG);
	out = capture(log_some);
	/* 2026-11-21T05:42:00.123Z tf: debug: hidden 1 */
	assert_int_equal(out[4], '-');
	assert_int_equal(out[10], 'T');
	assert_int_equal(out[23], 'Z');
	assert_non_null(strstr(out, "Z tf: debug: hidden 1\n"));
	assert_non_null(strstr(out, "Z tf: error: boom\n"));
	free(out);
}

static void test_level_parse(void **state)
{
	enum log_level l;

	(void)state;
	assert_int_equal(log_level_parse("debug", &l), 0);
	assert_int_equal(l, LOG_DEBUG);
	assert_int_equal(log_level_parse("warn", &l), 0);
	assert_int_equal(l, LOG_WARN);
	assert_int_equal(log_level_parse("warning", &l), 0);
	assert_int_equal(l, LOG_WARN);
	assert_int_equal(log_level_parse("quiet", &l), 0);
	assert_int_equal(l, LOG_QUIET);
	assert_int_equal(log_level_parse("verbose", &l), -1);
	assert_int_equal(log_level_parse("", &l), -1);
	assert_int_equal(log_level_parse(NULL, &l), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_format_and_filter),
	    cmocka_unit_test(test_debug_timestamps),
	    cmocka_unit_test(test_level_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
