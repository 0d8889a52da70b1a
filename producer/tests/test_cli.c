/* test_cli.c -- unit tests for producer/cli.c: commands and options on
 * either side, short and long forms, values, and the exact error lines
 * users (and the integration tests) see. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "cli.h"

#define ARGC(a) ((int)(sizeof(a) / sizeof((a)[0])))

static void test_run_options(void **state)
{
	char *argv[] = {
	    "testfleet",   "-w4",      "run",	    "--redis",
	    "redis://h:1", "-k",       "not slow",  "--shard=count:3",
	    "tests/a.py",  "-qv",      "--timeout", "30",
	    "--",	   "-odd-path"};
	struct cli c;
	char err[256];

	(void)state;
	assert_int_equal(cli_parse(ARGC(argv), argv, &c, err, sizeof(err)), 0);
	assert_int_equal(c.cmd, CLI_RUN);
	assert_int_equal(c.workers, 4);
	assert_string_equal(c.redis, "redis://h:1");
	assert_string_equal(c.kexpr, "not slow");
	assert_string_equal(c.shard, "count:3");
	assert_int_equal(c.quiet, 1);
	assert_int_equal(c.verbose, 1);
	assert_int_equal(c.timeout_s, 30);
	assert_int_equal(c.retries, -1);
	assert_int_equal(c.max_failures, -1);
	assert_int_equal(c.nargs, 2);
	assert_string_equal(c.args[0], "tests/a.py");
	assert_string_equal(c.args[1], "-odd-path");
	cli_release(&c);
}

static void expect_error(int argc, char **argv, const char *want)
{
	struct cli c;
	char err[256];

	err[0] = '\0';
	assert_int_equal(cli_parse(argc, argv, &c, err, sizeof(err)), -1);
	assert_string_equal(err, want);
	cli_release(&c);
}

static void test_errors(void **state)
{
	char *a1[] = {"testfleet", "run", "--frobnicate"};
	char *a2[] = {"testfleet", "--frobnicate", "run"};
	char *a3[] = {"testfleet", "frob"};
	char *a4[] = {"testfleet", "run", "--redis"};
	char *a5[] = {"testfleet", "run", "-w"};
	char *a6[] = {"testfleet", "run", "-x"};
	char *a7[] = {"testfleet", "status", "--junit", "f.xml"};
	char *a8[] = {"testfleet", "watch"};
	char *a9[] = {"testfleet", "report", "a", "b"};
	char *a10[] = {"testfleet", "run", "--workers", "0"};
	char *a11[] = {"testfleet", "run", "--quiet=1"};
	char *a12[] = {"testfleet", "run", "--shard", "count:0"};

	(void)state;
	expect_error(ARGC(a1), a1,
		     "unknown option --frobnicate (see testfleet --help)");
	expect_error(ARGC(a2), a2,
		     "unknown option --frobnicate (see testfleet --help)");
	expect_error(ARGC(a3), a3,
		     "unknown command frob (see testfleet --help)");
	expect_error(ARGC(a4), a4,
		     "option --redis requires an argument (see testfleet "
		     "--help)");
	expect_error(ARGC(a5), a5,
		     "option -w requires an argument (see testfleet --help)");
	expect_error(ARGC(a6), a6, "unknown option -x (see testfleet --help)");
	expect_error(ARGC(a7), a7,
		     "option --junit does not apply to status (see testfleet "
		     "--help)");
	expect_error(ARGC(a8), a8,
		     "watch needs a run id (see testfleet --help)");
	expect_error(ARGC(a9), a9,
		     "unexpected argument b (report takes one run id)");
	expect_error(ARGC(a10), a10,
		     "option --workers: expected a whole number from 1 to "
		     "4096, got \"0\"");
	expect_error(ARGC(a11), a11,
		     "option --quiet takes no value (see testfleet --help)");
	expect_error(ARGC(a12), a12,
		     "option --shard: bad shard mode \"count:0\" (expected "
		     "auto, file, test or count:N with 1 <= N <= 1000000)");
}

static void test_help_version_none(void **state)
{
	char *a1[] = {"testfleet", "--help"};
	char *a2[] = {"testfleet", "--version"};
	char *a3[] = {"testfleet"};
	char *a4[] = {"testfleet", "watch", "-h"};
	struct cli c;
	char err[256];

	(void)state;
	assert_int_equal(cli_parse(ARGC(a1), a1, &c, err, sizeof(err)), 0);
	assert_int_equal(c.help, 1);
	assert_int_equal(c.cmd, CLI_NONE);
	cli_release(&c);
	assert_int_equal(cli_parse(ARGC(a2), a2, &c, err, sizeof(err)), 0);
	assert_int_equal(c.version, 1);
	cli_release(&c);
	assert_int_equal(cli_parse(ARGC(a3), a3, &c, err, sizeof(err)), 0);
	assert_int_equal(c.cmd, CLI_NONE);
	cli_release(&c);
	/* Help needs no run id. */
	assert_int_equal(cli_parse(ARGC(a4), a4, &c, err, sizeof(err)), 0);
	assert_int_equal(c.cmd, CLI_WATCH);
	assert_int_equal(c.help, 1);
	cli_release(&c);
}

static void test_watch_report_status(void **state)
{
	char *a1[] = {"testfleet", "watch",    "R1",
		      "--json",	   "out.json", "--redis=unix:///s.sock"};
	char *a2[] = {"testfleet", "status"};
	char *a3[] = {"testfleet", "status", "R2", "--prefix", "p"};
	struct cli c;
	char err[256];

	(void)state;
	assert_int_equal(cli_parse(ARGC(a1), a1, &c, err, sizeof(err)), 0);
	assert_int_equal(c.cmd, CLI_WATCH);
	assert_string_equal(c.args[0], "R1");
	assert_string_equal(c.json, "out.json");
	assert_string_equal(c.redis, "unix:///s.sock");
	cli_release(&c);
	assert_int_equal(cli_parse(ARGC(a2), a2, &c, err, sizeof(err)), 0);
	assert_int_equal(c.cmd, CLI_STATUS);
	assert_int_equal(c.nargs, 0);
	cli_release(&c);
	assert_int_equal(cli_parse(ARGC(a3), a3, &c, err, sizeof(err)), 0);
	assert_string_equal(c.args[0], "R2");
	assert_string_equal(c.prefix, "p");
	cli_release(&c);
}

static void test_policy_options_and_cancel(void **state)
{
	char *a1[] = {
	    "testfleet", "submit", "--max-attempts", "5", "--run-timeout=600",
	    "--retries", "2",	   "--max-failures", "3"};
	char *a2[] = {"testfleet", "cancel", "R1", "--redis", "redis://h:1"};
	char *a3[] = {"testfleet", "run", "--max-attempts", "0"};
	char *a4[] = {"testfleet", "run", "--max-attempts", "101"};
	char *a5[] = {"testfleet", "cancel", "R1", "-w", "4"};
	char *a6[] = {"testfleet", "cancel"};
	char *a7[] = {"testfleet", "watch", "R1", "--run-timeout", "5"};
	char *a8[] = {"testfleet", "run", "--run-timeout", "-1"};
	struct cli c;
	char err[256];

	(void)state;
	assert_int_equal(cli_parse(ARGC(a1), a1, &c, err, sizeof(err)), 0);
	assert_int_equal(c.cmd, CLI_SUBMIT);
	assert_int_equal(c.max_attempts, 5);
	assert_int_equal(c.run_timeout_s, 600);
	assert_int_equal(c.retries, 2);
	assert_int_equal(c.max_failures, 3);
	cli_release(&c);
	assert_int_equal(cli_parse(ARGC(a2), a2, &c, err, sizeof(err)), 0);
	assert_int_equal(c.cmd, CLI_CANCEL);
	assert_string_equal(c.args[0], "R1");
	assert_int_equal(c.max_attempts, -1);
	assert_int_equal(c.run_timeout_s, -1);
	cli_release(&c);
	expect_error(ARGC(a3), a3,
		     "option --max-attempts: expected a whole number from 1 "
		     "to 100, got \"0\"");
	expect_error(ARGC(a4), a4,
		     "option --max-attempts: expected a whole number from 1 "
		     "to 100, got \"101\"");
	expect_error(ARGC(a5), a5,
		     "option -w does not apply to cancel (see testfleet "
		     "--help)");
	expect_error(ARGC(a6), a6,
		     "cancel needs a run id (see testfleet --help)");
	expect_error(ARGC(a7), a7,
		     "option --run-timeout does not apply to watch (see "
		     "testfleet --help)");
	expect_error(ARGC(a8), a8,
		     "option --run-timeout: expected a whole number from 0 to "
		     "31622400, got \"-1\"");
}

static void test_values_that_look_like_options(void **state)
{
	/* A value is taken as is, even when it starts with "-". */
	char *argv[] = {"testfleet", "run", "-k", "-slow", "-m", "not a"};
	struct cli c;
	char err[256];

	(void)state;
	assert_int_equal(cli_parse(ARGC(argv), argv, &c, err, sizeof(err)), 0);
	assert_string_equal(c.kexpr, "-slow");
	assert_string_equal(c.mark, "not a");
	assert_int_equal(c.nargs, 0);
	cli_release(&c);
}

static void test_dry_run_and_no_cache(void **state)
{
	char *a1[] = {"testfleet", "run", "--dry-run", "--no-cache", "tests"};
	char *a2[] = {"testfleet", "submit", "--dry-run", "tests"};
	char *a3[] = {"testfleet", "submit", "--no-cache", "tests"};
	char *a4[] = {"testfleet", "watch", "R", "--dry-run"};
	char *a5[] = {"testfleet", "run", "--dry-run=yes"};
	struct cli c;
	char err[256];

	(void)state;
	assert_int_equal(cli_parse(ARGC(a1), a1, &c, err, sizeof(err)), 0);
	assert_int_equal(c.dry_run, 1);
	assert_int_equal(c.no_cache, 1);
	assert_int_equal(c.nargs, 1);
	cli_release(&c);
	assert_int_equal(cli_parse(ARGC(a2), a2, &c, err, sizeof(err)), 0);
	assert_int_equal(c.dry_run, 1);
	assert_int_equal(c.no_cache, 0);
	cli_release(&c);
	/* The cache is local mode's, which submit never uses. */
	expect_error(ARGC(a3), a3,
		     "option --no-cache does not apply to submit (see "
		     "testfleet --help)");
	expect_error(ARGC(a4), a4,
		     "option --dry-run does not apply to watch (see "
		     "testfleet --help)");
	expect_error(ARGC(a5), a5,
		     "option --dry-run takes no value (see testfleet --help)");
}

static void test_runner_options(void **state)
{
	char *ok[] = {"testfleet", "run",    "--runner",     "playwright",
		      "--grep",	   "-@slow", "--playwright", "yarn playwright",
		      "e2e"};
	char *bad[] = {"testfleet", "run", "--runner", "rspec"};
	char *empty[] = {"testfleet", "run", "--playwright", " "};
	struct cli c;
	char err[256];

	(void)state;
	assert_int_equal(cli_parse(ARGC(ok), ok, &c, err, sizeof(err)), 0);
	assert_string_equal(c.runner, "playwright");
	assert_string_equal(c.grep, "-@slow");
	assert_string_equal(c.playwright, "yarn playwright");
	assert_int_equal(c.nargs, 1);
	cli_release(&c);
	expect_error(ARGC(bad), bad,
		     "option --runner: expected pytest or playwright, got "
		     "\"rspec\" (command suites need a config file)");
	expect_error(ARGC(empty), empty, "option --playwright: empty command");
}

/* --include: repeatable, comma-separated, once per name; "all"; names as
 * in the config's exclude:, run and submit only. */
static void test_include(void **state)
{
	char *argv[] = {"testfleet",
			"run",
			"--include",
			"slow",
			"--include=destructive,slow.net",
			"--include",
			"slow",
			"tests"};
	char *all[] = {"testfleet", "submit", "--include", "smoke,all"};
	char *e1[] = {"testfleet", "run", "--include", "slow,,x"};
	char *e2[] = {"testfleet", "run", "--include", "@slow"};
	char *e3[] = {"testfleet", "run", "--include", ""};
	char *e4[] = {"testfleet", "watch", "r1", "--include", "slow"};
	char *e5[] = {"testfleet", "run", "--include"};
	struct cli c;
	char err[256];

	(void)state;
	assert_int_equal(cli_parse(ARGC(argv), argv, &c, err, sizeof(err)), 0);
	assert_int_equal(c.ninclude, 3);
	assert_string_equal(c.include[0], "slow");
	assert_string_equal(c.include[1], "destructive");
	assert_string_equal(c.include[2], "slow.net");
	assert_int_equal(c.include_all, 0);
	assert_int_equal(c.nargs, 1);
	cli_release(&c);
	assert_null(c.include);

	assert_int_equal(cli_parse(ARGC(all), all, &c, err, sizeof(err)), 0);
	assert_int_equal(c.include_all, 1);
	assert_int_equal(c.ninclude, 1);
	assert_string_equal(c.include[0], "smoke");
	cli_release(&c);

	expect_error(ARGC(e1), e1,
		     "option --include: bad name \"\" in \"slow,,x\" (names "
		     "of markers or tags: letters, digits, \"_\", \".\", "
		     "\"-\"; or all)");
	expect_error(ARGC(e2), e2,
		     "option --include: bad name \"@slow\" in \"@slow\" "
		     "(names of markers or tags: letters, digits, \"_\", "
		     "\".\", \"-\"; or all)");
	expect_error(ARGC(e3), e3,
		     "option --include: bad name \"\" in \"\" (names of "
		     "markers or tags: letters, digits, \"_\", \".\", \"-\"; "
		     "or all)");
	expect_error(ARGC(e4), e4,
		     "option --include does not apply to watch (see "
		     "testfleet --help)");
	expect_error(ARGC(e5), e5,
		     "option --include requires an argument (see testfleet "
		     "--help)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_run_options),
	    cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_help_version_none),
	    cmocka_unit_test(test_watch_report_status),
	    cmocka_unit_test(test_policy_options_and_cancel),
	    cmocka_unit_test(test_values_that_look_like_options),
	    cmocka_unit_test(test_dry_run_and_no_cache),
	    cmocka_unit_test(test_runner_options),
	    cmocka_unit_test(test_include),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
