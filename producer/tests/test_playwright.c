/* test_playwright.c -- the Playwright listing parser of
 * producer/playwright.c: ids from `playwright test --list --reporter=json`
 * (the shape Playwright 1.61 prints: file suites, nested describe suites,
 * specs with one test per project), their order, projects, errors, and
 * what is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "playwright.h"

#define SEP " \xe2\x80\xba "

/* Specs come before nested suites in the listing; "loop" tests share a
 * line; the file suite's title is not part of the ids. */
static const char listing[] =
    "{\"config\": {\"rootDir\": \"/p/tests\", \"projects\": [{\"name\": "
    "\"chromium\"}]},\n"
    " \"suites\": [\n"
    "  {\"title\": \"logic.spec.js\", \"file\": \"logic.spec.js\",\n"
    "   \"specs\": [\n"
    "    {\"title\": \"adds\", \"file\": \"logic.spec.js\", \"line\": 4, "
    "\"column\": 1, \"tests\": [{\"projectName\": \"chromium\"}]},\n"
    "    {\"title\": \"loop 1\", \"file\": \"logic.spec.js\", \"line\": 31, "
    "\"column\": 2, \"tests\": [{\"projectName\": \"chromium\"}]},\n"
    "    {\"title\": \"loop 2\", \"file\": \"logic.spec.js\", \"line\": 31, "
    "\"column\": 2, \"tests\": [{\"projectName\": \"chromium\"}]}],\n"
    "   \"suites\": [\n"
    "    {\"title\": \"nested\", \"file\": \"logic.spec.js\", \"line\": 22,\n"
    "     \"specs\": [],\n"
    "     \"suites\": [{\"title\": \"deeper\", \"line\": 23, \"specs\": [\n"
    "       {\"title\": \"compares\", \"file\": \"logic.spec.js\", \"line\": "
    "24, \"column\": 3, \"tests\": [{\"projectName\": \"chromium\"}]}]}]},\n"
    "    {\"title\": \"\", \"line\": 40, \"specs\": [\n"
    "       {\"title\": \"anonymous describe\", \"file\": \"logic.spec.js\", "
    "\"line\": 41, \"column\": 3, \"tests\": [{\"projectName\": "
    "\"chromium\"}]}]}]},\n"
    "  {\"title\": \"sub/page.spec.js\", \"file\": \"sub/page.spec.js\",\n"
    "   \"specs\": [{\"title\": \"page has a title\", \"file\": "
    "\"sub/page.spec.js\", \"line\": 4, \"column\": 1, \"tests\": "
    "[{\"projectName\": \"chromium\"}]}]}],\n"
    " \"errors\": [], \"stats\": {}}\n";

static void test_parse_listing(void **state)
{
	static const char *const want[] = {
	    "tests/logic.spec.js:4" SEP "adds",
	    "tests/logic.spec.js:24" SEP "nested" SEP "deeper" SEP "compares",
	    "tests/logic.spec.js:31" SEP "loop 1",
	    "tests/logic.spec.js:31" SEP "loop 2",
	    "tests/logic.spec.js:41" SEP "anonymous describe",
	    "tests/sub/page.spec.js:4" SEP "page has a title",
	};
	struct playwright_list l;
	char err[512];
	size_t i;

	(void)state;
	assert_int_equal(playwright_list_parse(listing, strlen(listing), "/p",
					       &l, err, sizeof(err)),
			 0);
	assert_int_equal(l.nids, sizeof(want) / sizeof(want[0]));
	for (i = 0; i < l.nids; i++)
		assert_string_equal(l.ids[i], want[i]);
	assert_null(l.ids[l.nids]);
	assert_int_equal(l.nerrors, 0);
	assert_null(l.errors);
	playwright_list_release(&l);

	/* Run from the test directory itself, or from above the project. */
	assert_int_equal(playwright_list_parse(listing, strlen(listing),
					       "/p/tests", &l, err,
					       sizeof(err)),
			 0);
	assert_string_equal(l.ids[0], "logic.spec.js:4" SEP "adds");
	playwright_list_release(&l);
	assert_int_equal(playwright_list_parse(listing, strlen(listing), "/",
					       &l, err, sizeof(err)),
			 0);
	assert_string_equal(l.ids[0], "p/tests/logic.spec.js:4" SEP "adds");
	playwright_list_release(&l);
}

static const char two_projects[] =
    "{\"config\": {\"rootDir\": \"/p\", \"projects\": [{\"name\": \"b\"}, "
    "{\"name\": \"a x\"}]},\n"
    " \"suites\": [{\"title\": \"t.spec.ts\", \"file\": \"t.spec.ts\", "
    "\"specs\": [\n"
    "  {\"title\": \"one\", \"file\": \"t.spec.ts\", \"line\": 3, \"column\": "
    "1, \"tests\": [{\"projectName\": \"a x\"}, {\"projectName\": "
    "\"b\"}]},\n"
    "  {\"title\": \"two\", \"file\": \"t.spec.ts\", \"line\": 5, \"column\": "
    "1, \"tests\": [{\"projectName\": \"a x\"}, {\"projectName\": "
    "\"b\"}]}]}],\n"
    " \"errors\": []}";

static void test_projects(void **state)
{
	struct playwright_list l;
	char err[512];

	(void)state;
	assert_int_equal(playwright_list_parse(two_projects,
					       strlen(two_projects), "/p", &l,
					       err, sizeof(err)),
			 0);
	/* By project, in the configuration's order. */
	assert_int_equal(l.nids, 4);
	assert_string_equal(l.ids[0], "[b]" SEP "t.spec.ts:3" SEP "one");
	assert_string_equal(l.ids[1], "[b]" SEP "t.spec.ts:5" SEP "two");
	assert_string_equal(l.ids[2], "[a x]" SEP "t.spec.ts:3" SEP "one");
	assert_string_equal(l.ids[3], "[a x]" SEP "t.spec.ts:5" SEP "two");
	playwright_list_release(&l);
}

static void test_errors(void **state)
{
	static const char syntax[] =
	    "{\"config\": {\"rootDir\": \"/p\", \"projects\": []}, \"suites\": "
	    "[], \"errors\": [{\"message\": \"SyntaxError: /p/bad.spec.js: "
	    "Missing semicolon. (1:70)\\n\\n> 1 | x\", \"stack\": \"...\"}, "
	    "{\"message\": \"\\u001b[31mred\\u001b[39m error\"}]}";
	static const char none[] =
	    "{\"config\": {\"rootDir\": \"/p\"}, \"suites\": [], \"errors\": "
	    "[{\"message\": \"Error: No tests found.\\nMake sure that "
	    "arguments are regular expressions matching test files.\"}]}";
	struct playwright_list l;
	char err[512];

	(void)state;
	assert_int_equal(playwright_list_parse(syntax, strlen(syntax), "/p", &l,
					       err, sizeof(err)),
			 0);
	assert_int_equal(l.nids, 0);
	assert_int_equal(l.nerrors, 2);
	assert_int_equal(l.no_tests, 0);
	assert_string_equal(l.errors, "  SyntaxError: /p/bad.spec.js: Missing "
				      "semicolon. (1:70)\n"
				      "  red error\n");
	playwright_list_release(&l);
	assert_int_equal(playwright_list_parse(none, strlen(none), "/p", &l,
					       err, sizeof(err)),
			 0);
	assert_int_equal(l.no_tests, 1);
	assert_int_equal(l.nerrors, 1);
	playwright_list_release(&l);
}

static void test_refused(void **state)
{
	static const char outside[] =
	    "{\"config\": {\"rootDir\": \"/p/e2e\"}, \"suites\": [{\"title\": "
	    "\"x\", \"file\": \"../other/x.spec.js\", \"specs\": [{\"title\": "
	    "\"t\", \"file\": \"../other/x.spec.js\", \"line\": 1, \"tests\": "
	    "[{\"projectName\": \"\"}]}]}]}";
	static const char dash[] =
	    "{\"config\": {\"rootDir\": \"/p\"}, \"suites\": [{\"title\": "
	    "\"x\", \"file\": \"-x.spec.js\", \"specs\": [{\"title\": \"t\", "
	    "\"file\": \"-x.spec.js\", \"line\": 1, \"tests\": "
	    "[{\"projectName\": \"\"}]}]}]}";
	static const char no_line[] =
	    "{\"config\": {\"rootDir\": \"/p\"}, \"suites\": [{\"title\": "
	    "\"x\", \"file\": \"x.spec.js\", \"specs\": [{\"title\": \"t\", "
	    "\"file\": \"x.spec.js\", \"tests\": [{}]}]}]}";
	static const char *const bad[] = {
	    "",
	    "not json",
	    "[]",
	    "{\"config\": {}}",
	    "{\"config\": {\"rootDir\": \"relative\"}}",
	    "{\"config\": {\"rootDir\": \"/p\"}, \"suites\": [{\"specs\": "
	    "[{\"title\": \"t\"}]}]}",
	};
	struct playwright_list l;
	char err[512];
	size_t i;

	(void)state;
	assert_int_equal(playwright_list_parse(outside, strlen(outside),
					       "/p/e2e", &l, err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "outside the directory"));
	/* From the project root the same listing is fine. */
	assert_int_equal(playwright_list_parse(outside, strlen(outside), "/p",
					       &l, err, sizeof(err)),
			 0);
	assert_string_equal(l.ids[0], "other/x.spec.js:1" SEP "t");
	playwright_list_release(&l);
	assert_int_equal(playwright_list_parse(dash, strlen(dash), "/p", &l,
					       err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "starts with '-'"));
	assert_int_equal(playwright_list_parse(no_line, strlen(no_line), "/p",
					       &l, err, sizeof(err)),
			 -1);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (playwright_list_parse(bad[i], strlen(bad[i]), "/p", &l, err,
					  sizeof(err)) != -1)
			fail_msg("accepted %s", bad[i]);
		assert_null(l.ids);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_listing),
	    cmocka_unit_test(test_projects),
	    cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
