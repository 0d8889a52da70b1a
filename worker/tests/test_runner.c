/* test_runner.c -- what a task runs: test id checks, pytest and command
 * argv, refused runners, JUnit cases mapped back to node ids, and the
 * unfinished tests of a task. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "runner.h"

static void test_check_ids(void **state)
{
	static const char *const good[] = {
	    "tests/test_a.py::test_x",
	    "tests/test_a.py::TestK::test_m[1-2]",
	    "tests/test_a.py::test_x[../etc]", /* params are not paths */
	    "tests",
	    "a..b/test_x.py",
	    "./tests/t.py",
	    "t.py::test[-1]",
	    NULL,
	};
	static const char *const bad[] = {
	    "",		"-k",
	    "--help",	"/etc/passwd",
	    "../x.py",	"tests/../../x.py::t",
	    "tests/..", "a\nb",
	    "a\rb",	NULL,
	};
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; good[i]; i++) {
		if (runner_check_test_id(good[i], err, sizeof(err)) != 0)
			fail_msg("\"%s\" refused: %s", good[i], err);
	}
	for (i = 0; bad[i]; i++) {
		if (runner_check_test_id(bad[i], err, sizeof(err)) != -1)
			fail_msg("\"%s\" accepted", bad[i]);
		assert_true(strlen(err) > 0);
	}
	assert_int_equal(runner_check_test_id(NULL, err, sizeof(err)), -1);
}

static char *words[] = {"/usr/bin/python3", "-m", "pytest"};

static void test_pytest_argv(void **state)
{
	struct runner_conf rc = {words, 3, 0, NULL, 0, NULL, NULL};
	char *tests[] = {"t.py::a", "t.py::b"};
	struct task t;
	char **argv;
	char err[256];
	static const char *const want[] = {"/usr/bin/python3",
					   "-m",
					   "pytest",
					   "-p",
					   "testfleet_pytest",
					   "-p",
					   "no:cacheprovider",
					   "-q",
					   "--junitxml=/tmp/x/junit.xml",
					   "-m-slow or fast",
					   "-knot b",
					   "--",
					   "t.py::a",
					   "t.py::b",
					   NULL};
	size_t i;

	(void)state;
	memset(&t, 0, sizeof(t));
	t.runner = "pytest";
	t.tests = tests;
	t.ntests = 2;
	t.mark = "-slow or fast";
	t.kexpr = "not b";
	assert_int_equal(runner_argv(&rc, &t, "/tmp/x/junit.xml",
				     "/tmp/x/artifacts", &argv, err,
				     sizeof(err)),
			 0);
	for (i = 0; want[i]; i++) {
		assert_non_null(argv[i]);
		assert_string_equal(argv[i], want[i]);
	}
	assert_null(argv[i]);
	runner_argv_free(argv);

	/* One bad id refuses the whole task. */
	tests[1] = "-x";
	assert_int_equal(
	    runner_argv(&rc, &t, "j", "a", &argv, err, sizeof(err)), -1);
	assert_null(argv);
	assert_non_null(strstr(err, "\"-x\""));
	t.ntests = 0;
	assert_int_equal(
	    runner_argv(&rc, &t, "j", "a", &argv, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "no test ids"));
}

#define SEP " \xe2\x80\xba "

static void test_playwright_argv(void **state)
{
	static char *pw[] = {"npx", "--no-install", "playwright"};
	struct runner_conf rc = {words, 3, 0, pw, 3, "/share/rep.js", NULL};
	char *tests[] = {"tests/b.spec.ts:9" SEP "b",
			 "tests/a.spec.ts:3" SEP "d" SEP "x",
			 "tests/a.spec.ts:3" SEP "d" SEP "y"};
	char *proj[] = {"[ff] "
			"\xe2\x80\xba"
			" a.spec.ts:1" SEP "t",
			"[c c] "
			"\xe2\x80\xba"
			" a.spec.ts:1" SEP "t",
			"[ff] "
			"\xe2\x80\xba"
			" b.spec.ts:2" SEP "u"};
	static const char *const want[] = {
	    "npx",
	    "--no-install",
	    "playwright",
	    "test",
	    "--reporter=/share/rep.js",
	    "--retries=0",
	    "--workers=1",
	    "--output=/tmp/x/artifacts",
	    "--grep=-@smoke",
	    "--grep-invert=@(?:slow)(?![\\w-])",
	    "/(?:^|\\/)tests\\/a\\.spec\\.ts$/:3",
	    "/(?:^|\\/)tests\\/b\\.spec\\.ts$/:9",
	    NULL};
	struct task t;
	char **argv;
	char err[256];
	size_t i;

	(void)state;
	memset(&t, 0, sizeof(t));
	t.runner = "playwright";
	t.tests = tests;
	t.ntests = 3;
	t.grep = "-@smoke";
	t.grep_invert = "@(?:slow)(?![\\w-])";
	assert_int_equal(runner_argv(&rc, &t, "/tmp/x/junit.xml",
				     "/tmp/x/artifacts", &argv, err,
				     sizeof(err)),
			 0);
	for (i = 0; want[i]; i++) {
		assert_non_null(argv[i]);
		assert_string_equal(argv[i], want[i]);
	}
	assert_null(argv[i]);
	runner_argv_free(argv);

	/* Projects: one --project each, when every id names one. */
	t.tests = proj;
	t.grep = NULL;
	t.grep_invert = NULL;
	assert_int_equal(
	    runner_argv(&rc, &t, "j", "a", &argv, err, sizeof(err)), 0);
	assert_string_equal(argv[8], "--project=c c");
	assert_string_equal(argv[9], "--project=ff");
	assert_string_equal(argv[10], "/(?:^|\\/)a\\.spec\\.ts$/:1");
	assert_string_equal(argv[11], "/(?:^|\\/)b\\.spec\\.ts$/:2");
	assert_null(argv[12]);
	runner_argv_free(argv);
	t.ntests = 2;
	t.tests = tests + 1;
	tests[2] = proj[0];
	assert_int_equal(
	    runner_argv(&rc, &t, "j", "a", &argv, err, sizeof(err)), 0);
	for (i = 0; argv[i]; i++)
		assert_null(strstr(argv[i], "--project"));
	runner_argv_free(argv);

	/* A bad id refuses the task; so does a missing reporter. */
	tests[2] = "../x.spec.ts:1" SEP "t";
	assert_int_equal(
	    runner_argv(&rc, &t, "j", "a", &argv, err, sizeof(err)), -1);
	assert_null(argv);
	assert_non_null(strstr(err, "\"..\" in its file"));
	tests[2] = "tests/test_a.py::test_x";
	assert_int_equal(
	    runner_argv(&rc, &t, "j", "a", &argv, err, sizeof(err)), -1);
	tests[2] = "a.spec.ts:1";
	rc.playwright_reporter = NULL;
	assert_int_equal(
	    runner_argv(&rc, &t, "j", "a", &argv, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "reporter"));
	t.ntests = 0;
	rc.playwright_reporter = "/r.js";
	assert_int_equal(
	    runner_argv(&rc, &t, "j", "a", &argv, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "no test ids"));
}

static void test_other_runners(void **state)
{
	struct runner_conf rc = {words, 3, 0, NULL, 0, NULL, NULL};
	char *args[] = {"./load.sh", "--users", "10"};
	struct task t;
	char **argv;
	char err[256];

	(void)state;
	memset(&t, 0, sizeof(t));
	t.runner = "command";
	t.argv = args;
	t.nargv = 3;
	assert_int_equal(
	    runner_argv(&rc, &t, "j", "a", &argv, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "--allow-command"));
	rc.allow_command = 1;
	assert_int_equal(
	    runner_argv(&rc, &t, "j", "a", &argv, err, sizeof(err)), 0);
	assert_string_equal(argv[0], "./load.sh");
	assert_string_equal(argv[2], "10");
	assert_null(argv[3]);
	runner_argv_free(argv);
	t.nargv = 0;
	assert_int_equal(
	    runner_argv(&rc, &t, "j", "a", &argv, err, sizeof(err)), -1);

	t.runner = "playwright";
	assert_int_equal(
	    runner_argv(&rc, &t, "j", "a", &argv, err, sizeof(err)), -1);
	assert_string_equal(err, "playwright command is empty");
	t.runner = "rspec";
	assert_int_equal(
	    runner_argv(&rc, &t, "j", "a", &argv, err, sizeof(err)), -1);
	assert_string_equal(err, "unknown runner \"rspec\"");
}

static void check_id(const char *runner, const char *classname,
		     const char *name, const char *file, char **tests,
		     size_t ntests, const char *want)
{
	struct junit_case jc;
	char *id;

	memset(&jc, 0, sizeof(jc));
	jc.classname = (char *)classname;
	jc.name = (char *)name;
	jc.file = (char *)file;
	id = runner_junit_id(runner, &jc, tests, ntests);
	assert_string_equal(id, want);
	free(id);
}

static void test_junit_ids(void **state)
{
	char *exact[] = {"tests/test_a.py::TestC::test_m",
			 "tests/test_a.py::test_f[1]"};
	char *files[] = {"tests/test_a.py"};
	char *dirs[] = {"tests"};
	char *other[] = {"tests/test_a.py::test_g"};
	char *classes[] = {"tests/TestX.py::test_1"};

	(void)state;
	/* Exact matches. */
	check_id("pytest", "tests.test_a.TestC", "test_m", NULL, exact, 2,
		 "tests/test_a.py::TestC::test_m");
	check_id("pytest", "tests.test_a", "test_f[1]", NULL, exact, 2,
		 "tests/test_a.py::test_f[1]");
	/* Selected by file or directory: the class split is preferred to a
	 * module named like a class. */
	check_id("pytest", "tests.test_a.TestC", "test_m", NULL, files, 1,
		 "tests/test_a.py::TestC::test_m");
	check_id("pytest", "tests.test_a.TestC", "test_m", NULL, dirs, 1,
		 "tests/test_a.py::TestC::test_m");
	check_id("pytest", "tests.test_a", "test_new", NULL, dirs, 1,
		 "tests/test_a.py::test_new");
	/* A module whose name starts with a capital still matches exactly. */
	check_id("pytest", "tests.TestX", "test_1", NULL, classes, 1,
		 "tests/TestX.py::test_1");
	/* Same file, a test that was not requested. */
	check_id("pytest", "tests.test_a", "test_h", NULL, other, 1,
		 "tests/test_a.py::test_h");
	/* xunit1 carries the file. */
	check_id("pytest", "pkg.mod.TestC", "test_m", "pkg/mod.py", NULL, 0,
		 "pkg/mod.py::TestC::test_m");
	/* Nothing matches: classname::name. */
	check_id("pytest", "elsewhere.test_z", "test_q", NULL, exact, 2,
		 "elsewhere.test_z::test_q");
	check_id("pytest", NULL, "lonely", NULL, exact, 2, "lonely");
	/* Other runners use the plain form unless a test matches. */
	check_id("command", "tests.test_a", "test_f[1]", NULL, exact, 2,
		 "tests.test_a::test_f[1]");
	check_id("command", "load", "p95", NULL, NULL, 0, "load::p95");
}

static void test_junit_results(void **state)
{
	struct junit_case cases[2];
	char *tests[] = {"t.py::ok"};
	struct test_result *r;
	size_t n;

	(void)state;
	memset(cases, 0, sizeof(cases));
	cases[0].classname = "t";
	cases[0].name = "ok";
	cases[0].outcome = OUTCOME_PASSED;
	cases[0].time_s = 1.5;
	cases[1].classname = "t";
	cases[1].name = "bad";
	cases[1].outcome = OUTCOME_FAILED;
	cases[1].message = "boom\nsecond";
	cases[1].details = "trace";
	cases[1].time_s = -1;
	r = runner_junit_results("pytest", cases, 2, tests, 1, &n);
	assert_int_equal(n, 2);
	assert_string_equal(r[0].id, "t.py::ok");
	assert_true(r[0].duration_s == 1.5);
	assert_string_equal(r[1].id, "t.py::bad");
	assert_string_equal(r[1].message, "boom");
	assert_string_equal(r[1].details, "trace");
	assert_true(r[1].duration_s == 0);
	test_result_release(&r[0]);
	test_result_release(&r[1]);
	free(r);
}

static void test_unfinished(void **state)
{
	char *tests[] = {"t.py::a", "t.py::b", "u.py",
			 "d",	    "t.py::f", "t.py::g"};
	struct test_result res[4];
	char **left;
	size_t n;

	(void)state;
	memset(res, 0, sizeof(res));
	res[0].id = "t.py::a";
	res[1].id = "u.py::x";
	res[2].id = "d/v.py::y";
	res[3].id = "t.py::f[1]";
	left = runner_unfinished(tests, 6, res, 4, 1, &n);
	assert_int_equal(n, 2);
	assert_string_equal(left[0], "t.py::b");
	assert_string_equal(left[1], "t.py::g");
	free(left[0]);
	free(left[1]);
	free(left);
	/* After a crash only exact results count. */
	left = runner_unfinished(tests, 6, res, 4, 0, &n);
	assert_int_equal(n, 5);
	assert_string_equal(left[0], "t.py::b");
	assert_string_equal(left[1], "u.py");
	for (size_t i = 0; i < n; i++)
		free(left[i]);
	free(left);
	left = runner_unfinished(tests, 2, res, 1, 1, &n);
	assert_int_equal(n, 1);
	free(left[0]);
	free(left);
	left = runner_unfinished(tests, 1, res, 1, 1, &n);
	assert_null(left);
	assert_int_equal(n, 0);
	assert_true(runner_id_covers("t.py", "t.py::x", 1));
	assert_false(runner_id_covers("t.py", "t.pyc::x", 1));
	assert_false(runner_id_covers("t.py::f", "t.py::fg", 1));
	assert_false(runner_id_covers("t.py::C", "t.py::C/x", 1));
	assert_false(runner_id_covers("t.py", "t.py::x", 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_check_ids),
	    cmocka_unit_test(test_pytest_argv),
	    cmocka_unit_test(test_playwright_argv),
	    cmocka_unit_test(test_other_runners),
	    cmocka_unit_test(test_junit_ids),
	    cmocka_unit_test(test_junit_results),
	    cmocka_unit_test(test_unfinished),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
