/* test_pwid.c -- Playwright test ids: formatting, taking apart, the safety
 * checks, the file prefix used for sharding, and the escaped selector. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pwid.h"

static void test_format(void **state)
{
	char *titles[] = {"login", "", "shows error"};
	char *bad[] = {"two\nlines", "cr\rhere"};
	char *id;

	(void)state;
	id = pwid_format(NULL, "tests/login.spec.ts", 12, titles, 3);
	assert_string_equal(id, "tests/login.spec.ts:12 \xe2\x80\xba login "
				"\xe2\x80\xba shows error");
	free(id);
	id = pwid_format("firefox", "a.spec.js", 3, titles + 2, 1);
	assert_string_equal(id, "[firefox] \xe2\x80\xba a.spec.js:3 "
				"\xe2\x80\xba shows error");
	free(id);
	id = pwid_format(NULL, "a.spec.js", 7, NULL, 0);
	assert_string_equal(id, "a.spec.js:7");
	free(id);
	id = pwid_format(NULL, "a.spec.js", 7, bad, 2);
	assert_string_equal(id, "a.spec.js:7 \xe2\x80\xba two lines "
				"\xe2\x80\xba cr here");
	free(id);
}

static void test_parse(void **state)
{
	struct pwid p;
	char err[256];

	(void)state;
	assert_int_equal(pwid_parse("tests/a.spec.ts:12 \xe2\x80\xba x "
				    "\xe2\x80\xba y",
				    &p, err, sizeof(err)),
			 0);
	assert_null(p.project);
	assert_int_equal(p.file_len, strlen("tests/a.spec.ts"));
	assert_memory_equal(p.file, "tests/a.spec.ts", p.file_len);
	assert_int_equal(p.line, 12);
	assert_string_equal(p.titles, "x \xe2\x80\xba y");

	assert_int_equal(pwid_parse("[my project] \xe2\x80\xba e2e/b.spec.js:3 "
				    "\xe2\x80\xba t",
				    &p, err, sizeof(err)),
			 0);
	assert_non_null(p.project);
	assert_int_equal(p.project_len, strlen("my project"));
	assert_memory_equal(p.project, "my project", p.project_len);
	assert_memory_equal(p.file, "e2e/b.spec.js", p.file_len);
	assert_int_equal(p.line, 3);

	/* A file that starts with '[' is not a project. */
	assert_int_equal(
	    pwid_parse("[id].spec.ts:4 \xe2\x80\xba t", &p, err, sizeof(err)),
	    0);
	assert_null(p.project);
	assert_memory_equal(p.file, "[id].spec.ts", p.file_len);

	/* A colon in the file name: the line is after the last one. */
	assert_int_equal(
	    pwid_parse("a:1.spec.ts:9 \xe2\x80\xba t", &p, err, sizeof(err)),
	    0);
	assert_memory_equal(p.file, "a:1.spec.ts", p.file_len);
	assert_int_equal(p.line, 9);

	/* No titles at all. */
	assert_int_equal(pwid_parse("a.spec.ts:2", &p, err, sizeof(err)), 0);
	assert_string_equal(p.titles, "");
}

static void test_parse_rejects(void **state)
{
	static const char *const bad[] = {
	    "",
	    "-x.spec.ts:1 \xe2\x80\xba t",
	    "/abs/x.spec.ts:1 \xe2\x80\xba t",
	    "../x.spec.ts:1 \xe2\x80\xba t",
	    "a/../../x.spec.ts:1 \xe2\x80\xba t",
	    "a/..:1",
	    "x.spec.ts \xe2\x80\xba t",
	    "x.spec.ts: \xe2\x80\xba t",
	    "x.spec.ts:1a \xe2\x80\xba t",
	    "x.spec.ts:0 \xe2\x80\xba t",
	    "x.spec.ts:99999999999999999999999 \xe2\x80\xba t",
	    "x.spec.ts:1 \xe2\x80\xba two\nlines",
	    ":3 \xe2\x80\xba t",
	    "[p] \xe2\x80\xba -x.spec.ts:1 \xe2\x80\xba t",
	    "tests/test_a.py::test_b",
	};
	struct pwid p;
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (pwid_parse(bad[i], &p, err, sizeof(err)) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_true(strncmp(err, "bad test id", 11) == 0);
	}
	/* ".." inside a name is fine; only a whole component is refused. */
	assert_int_equal(pwid_parse("a..b/x..spec.ts:1", &p, err, sizeof(err)),
			 0);
}

static void test_file_len(void **state)
{
	const char *id = "[p] \xe2\x80\xba tests/a.spec.ts:12 \xe2\x80\xba x";

	(void)state;
	assert_int_equal(pwid_file_len(id),
			 strlen("[p] \xe2\x80\xba tests/a.spec.ts"));
	assert_int_equal(pwid_file_len("tests/a.spec.ts:1 \xe2\x80\xba x"),
			 strlen("tests/a.spec.ts"));
	assert_int_equal(pwid_file_len("tests/test_a.py::test_b"), 0);
	assert_int_equal(pwid_file_len("tests/test_a.py"), 0);
}

static void test_selector(void **state)
{
	struct pwid p;
	char err[256], *s;

	(void)state;
	assert_int_equal(pwid_parse("tests/a.spec.ts:12 \xe2\x80\xba x", &p,
				    err, sizeof(err)),
			 0);
	s = pwid_selector(&p);
	assert_string_equal(s, "/(?:^|\\/)tests\\/a\\.spec\\.ts$/:12");
	free(s);
	assert_int_equal(
	    pwid_parse("r/[id](x)+$^|{1}*?.js:3", &p, err, sizeof(err)), 0);
	s = pwid_selector(&p);
	assert_string_equal(
	    s,
	    "/(?:^|\\/)r\\/\\[id\\]\\(x\\)\\+\\$\\^\\|\\{1\\}\\*\\?\\.js$/:3");
	assert_true(s[0] != '-');
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_format),
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_parse_rejects),
	    cmocka_unit_test(test_file_len),
	    cmocka_unit_test(test_selector),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
