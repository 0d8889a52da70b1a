/* test_report.c -- unit tests for producer/report.c: the JSON report read
 * back with jansson and checked key by key against DESIGN section 3, the
 * JUnit XML re-parsed with libxml2 (counts, names, and hostile strings --
 * "<", "&", "]]>", control characters, invalid UTF-8 -- surviving in a
 * well-formed document), Markdown, the console summary, atomic writes and
 * write errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>

#include "aggregate.h"
#include "junit.h"
#include "report.h"

#define T0 1795239730.0 /* 2026-11-21T05:42:10Z */

/* Hostile text: XML specials, a CDATA terminator, control characters and
 * invalid UTF-8 (a lone continuation byte, a truncated sequence, an
 * overlong encoding, a surrogate). */
#define NASTY                                                                  \
	"a < b && c > d ]]> \"q\" 'a' \x01\x1b[31m \x80 \xE2\x82 \xC0\xAF "    \
	"\xED\xA0\x80 \xEF\xBF\xBE \xC3\xA9"

struct fixture {
	char dir[64];
	struct report *rep;
};

static struct test_result mk_test(const char *id, enum outcome o,
				  const char *msg)
{
	struct test_result t;

	memset(&t, 0, sizeof(t));
	t.id = (char *)id;
	t.outcome = o;
	t.duration_s = 0.125;
	t.message = (char *)msg;
	return t;
}

/* A run with every outcome, two suites, a crashed task and hostile text. */
static struct report *sample_report(void)
{
	struct aggregator *a = aggregator_new("20261121-0542-k3f9");
	struct test_result unit[8], api[1];
	char *unfinished[] = {(char *)"tests/test_api.py::test_crash"};
	struct task_result r;
	struct report *rep;

	aggregator_phase(a, "unit", 1);
	aggregator_phase(a, "api", 0);
	unit[0] = mk_test("tests/sub/test_a.py::TestC::test_x[p::q]",
			  OUTCOME_PASSED, NULL);
	unit[1] = mk_test("tests/test_b.py::test_fail", OUTCOME_FAILED,
			  "assert " NASTY);
	unit[1].details = (char *)"def test_fail():\n>   assert " NASTY
				  "\nE   AssertionError\n";
	unit[1].file = (char *)"tests/test_b.py";
	unit[1].line = 7;
	unit[2] = mk_test("tests/test_b.py::test_err", OUTCOME_ERROR,
			  "fixture 'db' not found");
	unit[3] = mk_test("tests/test_b.py::test_skip", OUTCOME_SKIPPED,
			  "no network");
	unit[4] = mk_test("tests/test_b.py::test_xfail", OUTCOME_XFAILED,
			  "known bug");
	unit[5] = mk_test("tests/test_b.py::test_xpass", OUTCOME_XPASSED, NULL);
	unit[6] = mk_test("tests/test_b.py::test_flaky", OUTCOME_FLAKY, NULL);
	unit[7] = mk_test("login.spec.ts:12 \xE2\x80\xBA logs in",
			  OUTCOME_PASSED, NULL);
	memset(&r, 0, sizeof(r));
	r.run = (char *)"20261121-0542-k3f9";
	r.task = (char *)"t00001";
	r.attempt = 1;
	r.worker = (char *)"host-3/slot-1";
	r.suite = (char *)"unit";
	r.phase = (char *)"unit";
	r.status = TASK_COMPLETED;
	r.started_at = T0;
	r.duration_s = 4.2;
	r.tests = unit;
	r.ntests = 8;
	aggregator_add(a, &r);

	api[0] = mk_test("tests/test_api.py::test_ok", OUTCOME_PASSED, NULL);
	r.task = (char *)"t00002";
	r.suite = (char *)"api";
	r.phase = (char *)"api";
	r.status = TASK_CRASHED;
	r.exit_code = -1;
	r.term_signal = 11;
	r.running = unfinished[0];
	r.output = (char *)"collected 2 items\nFatal Python error: " NASTY "\n";
	r.tests = api;
	r.ntests = 1;
	r.unfinished = unfinished;
	r.nunfinished = 1;
	r.started_at = T0 + 1;
	r.duration_s = 2;
	aggregator_add(a, &r);

	aggregator_set_times(a, T0 + 0.1234, T0 + 12.4564);
	rep = aggregator_report(a);
	aggregator_free(a);
	return rep;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/tf-report-XXXXXX");
	if (mkdtemp(f->dir) == NULL) {
		free(f);
		return -1;
	}
	f->rep = sample_report();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	static const char *const names[] = {"r.json", "r.xml", "r.md",
					    "r.json.tmp", "r.xml.tmp"};
	char path[128];
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", f->dir, names[i]);
		unlink(path);
	}
	rmdir(f->dir);
	report_free(f->rep);
	free(f);
	return 0;
}

static char *path_in(const struct fixture *f, const char *name)
{
	size_t n = strlen(f->dir) + strlen(name) + 2;
	char *p = malloc(n);

	assert_non_null(p);
	snprintf(p, n, "%s/%s", f->dir, name);
	return p;
}

static char *read_all(const char *path)
{
	FILE *fp = fopen(path, "rb");
	char *data;
	long n;

	assert_non_null(fp);
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	n = ftell(fp);
	assert_true(n >= 0);
	rewind(fp);
	data = malloc((size_t)n + 1);
	assert_non_null(data);
	assert_int_equal(fread(data, 1, (size_t)n, fp), (size_t)n);
	data[n] = '\0';
	fclose(fp);
	return data;
}

/* Every key of obj is in keys and every key in keys is in obj. */
static void check_keys(json_t *obj, const char *const *keys, size_t n)
{
	size_t i;

	assert_true(json_is_object(obj));
	for (i = 0; i < n; i++)
		if (json_object_get(obj, keys[i]) == NULL)
			fail_msg("missing key %s", keys[i]);
	assert_int_equal(json_object_size(obj), n);
}

static json_t *find_json_test(json_t *tests, const char *id)
{
	size_t i;
	json_t *t;

	json_array_foreach(tests, i, t)
	{
		if (strcmp(json_string_value(json_object_get(t, "id")), id) ==
		    0)
			return t;
	}
	fail_msg("test %s not in JSON", id);
	return NULL;
}

static void test_json(void **state)
{
	struct fixture *f = *state;
	static const char *const top[] = {
	    "schema", "run",	"started_at", "finished_at", "duration_s",
	    "status", "totals", "phases",     "tests",
	};
	static const char *const totals[] = {
	    "tests",   "passed",  "failed",  "error",
	    "skipped", "xfailed", "xpassed", "flaky",
	};
	static const char *const phase[] = {"name", "status", "required",
					    "duration_s", "tasks"};
	static const char *const test_base[] = {
	    "id",	  "suite",   "phase",	    "outcome", "attempts",
	    "duration_s", "message", "retried_for", "worker",
	};
	static const char *const test_full[] = {
	    "id",	"suite",      "phase",	 "outcome",
	    "attempts", "duration_s", "message", "retried_for",
	    "worker",	"file",	      "line",	 "details",
	};
	char *path = path_in(f, "r.json"), *tmp = path_in(f, "r.json.tmp");
	char err[256] = "";
	json_error_t jerr;
	json_t *root, *t, *tests, *ph;
	const char *msg;

	assert_int_equal(report_write_json(f->rep, path, err, sizeof(err)), 0);
	assert_int_equal(access(tmp, F_OK), -1); /* renamed away */
	root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL)
		fail_msg("json: %s", jerr.text);
	check_keys(root, top, sizeof(top) / sizeof(top[0]));
	assert_string_equal(json_string_value(json_object_get(root, "schema")),
			    "testfleet.report/1");
	assert_string_equal(json_string_value(json_object_get(root, "run")),
			    "20261121-0542-k3f9");
	assert_string_equal(json_string_value(json_object_get(root, "status")),
			    "failed");
	assert_string_equal(
	    json_string_value(json_object_get(root, "started_at")),
	    "2026-11-21T05:42:10.123Z");
	assert_string_equal(
	    json_string_value(json_object_get(root, "finished_at")),
	    "2026-11-21T05:42:22.456Z");
	assert_true(json_is_real(json_object_get(root, "duration_s")));
	assert_true(json_real_value(json_object_get(root, "duration_s")) ==
		    12.333);

	t = json_object_get(root, "totals");
	check_keys(t, totals, sizeof(totals) / sizeof(totals[0]));
	assert_int_equal(json_integer_value(json_object_get(t, "tests")), 10);
	assert_int_equal(json_integer_value(json_object_get(t, "passed")), 3);
	assert_int_equal(json_integer_value(json_object_get(t, "failed")), 1);
	assert_int_equal(json_integer_value(json_object_get(t, "error")), 2);
	assert_int_equal(json_integer_value(json_object_get(t, "skipped")), 1);
	assert_int_equal(json_integer_value(json_object_get(t, "xfailed")), 1);
	assert_int_equal(json_integer_value(json_object_get(t, "xpassed")), 1);
	assert_int_equal(json_integer_value(json_object_get(t, "flaky")), 1);

	ph = json_object_get(root, "phases");
	assert_int_equal(json_array_size(ph), 2);
	check_keys(json_array_get(ph, 0), phase, 5);
	assert_string_equal(
	    json_string_value(json_object_get(json_array_get(ph, 0), "name")),
	    "unit");
	assert_true(
	    json_is_true(json_object_get(json_array_get(ph, 0), "required")));
	assert_true(
	    json_is_false(json_object_get(json_array_get(ph, 1), "required")));
	assert_string_equal(
	    json_string_value(json_object_get(json_array_get(ph, 1), "status")),
	    "failed");
	assert_int_equal(
	    json_integer_value(json_object_get(json_array_get(ph, 0), "tasks")),
	    1);
	assert_true(json_real_value(json_object_get(json_array_get(ph, 0),
						    "duration_s")) == 4.2);

	tests = json_object_get(root, "tests");
	assert_int_equal(json_array_size(tests), 10);
	/* Phase order, then id: the unit phase's tests come first. */
	assert_string_equal(json_string_value(json_object_get(
				json_array_get(tests, 0), "phase")),
			    "unit");
	assert_string_equal(json_string_value(json_object_get(
				json_array_get(tests, 9), "phase")),
			    "api");

	t = find_json_test(tests, "tests/sub/test_a.py::TestC::test_x[p::q]");
	check_keys(t, test_base, sizeof(test_base) / sizeof(test_base[0]));
	assert_true(json_is_null(json_object_get(t, "message")));
	assert_true(json_is_null(json_object_get(t, "retried_for")));
	assert_string_equal(json_string_value(json_object_get(t, "outcome")),
			    "passed");
	assert_string_equal(json_string_value(json_object_get(t, "suite")),
			    "unit");
	assert_string_equal(json_string_value(json_object_get(t, "worker")),
			    "host-3/slot-1");
	assert_int_equal(json_integer_value(json_object_get(t, "attempts")), 1);
	assert_true(json_real_value(json_object_get(t, "duration_s")) == 0.125);

	t = find_json_test(tests, "tests/test_b.py::test_fail");
	check_keys(t, test_full, sizeof(test_full) / sizeof(test_full[0]));
	assert_int_equal(json_integer_value(json_object_get(t, "line")), 7);
	assert_string_equal(json_string_value(json_object_get(t, "file")),
			    "tests/test_b.py");
	/* Invalid UTF-8 became U+FFFD; everything else is kept as is. */
	msg = json_string_value(json_object_get(t, "message"));
	assert_string_equal(msg,
			    "assert a < b && c > d ]]> \"q\" 'a' \x01\x1b[31m "
			    "\xEF\xBF\xBD \xEF\xBF\xBD\xEF\xBF\xBD "
			    "\xEF\xBF\xBD\xEF\xBF\xBD "
			    "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD "
			    "\xEF\xBF\xBE \xC3\xA9");

	t = find_json_test(tests, "tests/test_api.py::test_crash");
	assert_string_equal(json_string_value(json_object_get(t, "outcome")),
			    "error");
	assert_string_equal(
	    json_string_value(json_object_get(t, "message")),
	    "runner killed by signal 11 (SIGSEGV) while running "
	    "this test");
	assert_non_null(json_string_value(json_object_get(t, "details")));

	json_decref(root);
	free(tmp);
	free(path);
}

static void test_json_rounding_and_unknown_times(void **state)
{
	struct fixture *f = *state;
	struct aggregator *a = aggregator_new("r");
	char *path = path_in(f, "r.json");
	char err[256];
	struct report *rep;
	json_t *root;

	aggregator_set_times(a, T0 + 0.9996, T0 + 3600.5);
	rep = aggregator_report(a);
	assert_int_equal(report_write_json(rep, path, err, sizeof(err)), 0);
	root = json_load_file(path, 0, NULL);
	assert_non_null(root);
	assert_string_equal(
	    json_string_value(json_object_get(root, "started_at")),
	    "2026-11-21T05:42:11.000Z");
	assert_string_equal(
	    json_string_value(json_object_get(root, "finished_at")),
	    "2026-11-21T06:42:10.500Z");
	assert_true(json_real_value(json_object_get(root, "duration_s")) ==
		    3599.5);
	assert_int_equal(json_array_size(json_object_get(root, "tests")), 0);
	assert_string_equal(json_string_value(json_object_get(root, "status")),
			    "passed");
	json_decref(root);
	report_free(rep);

	/* No times at all (no results): null, not 1970. */
	aggregator_set_times(a, 0, 0);
	rep = aggregator_report(a);
	assert_int_equal(report_write_json(rep, path, err, sizeof(err)), 0);
	root = json_load_file(path, 0, NULL);
	assert_non_null(root);
	assert_true(json_is_null(json_object_get(root, "started_at")));
	assert_true(json_real_value(json_object_get(root, "duration_s")) == 0);
	json_decref(root);
	report_free(rep);
	aggregator_free(a);
	free(path);
}

static void test_write_errors(void **state)
{
	struct fixture *f = *state;
	char err[256] = "";

	assert_int_equal(report_write_json(f->rep, "/nonexistent/dir/r.json",
					   err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "/nonexistent/dir/r.json"));
	err[0] = '\0';
	assert_int_equal(report_write_junit(f->rep, "/nonexistent/dir/r.xml",
					    err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "/nonexistent/dir/r.xml"));
	err[0] = '\0';
	assert_int_equal(report_write_markdown(f->rep, "/nonexistent/x.md", err,
					       sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "/nonexistent/x.md"));
	/* A directory where the file should go: rename fails. */
	err[0] = '\0';
	assert_int_equal(report_write_json(f->rep, f->dir, err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, f->dir));
}

static char *console_text(const struct report *rep, int color);

/* ---- JUnit ---------------------------------------------------------- */

static xmlDocPtr parse_xml(const char *path)
{
	xmlDocPtr doc = xmlReadFile(path, NULL,
				    XML_PARSE_NONET | XML_PARSE_NOERROR |
					XML_PARSE_NOWARNING);

	if (doc == NULL)
		fail_msg("%s is not well-formed XML", path);
	return doc;
}

static char *xpath_string(xmlDocPtr doc, const char *expr)
{
	xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
	xmlXPathObjectPtr obj;
	char *s;

	assert_non_null(ctx);
	obj = xmlXPathEvalExpression(BAD_CAST expr, ctx);
	assert_non_null(obj);
	s = (char *)xmlXPathCastToString(obj);
	xmlXPathFreeObject(obj);
	xmlXPathFreeContext(ctx);
	assert_non_null(s);
	return s;
}

static void assert_xpath(xmlDocPtr doc, const char *expr, const char *want)
{
	char *got = xpath_string(doc, expr);

	if (strcmp(got, want) != 0)
		fail_msg("%s: got \"%s\", want \"%s\"", expr, got, want);
	xmlFree(got);
}

static void test_junit(void **state)
{
	struct fixture *f = *state;
	char *path = path_in(f, "r.xml"), *tmp = path_in(f, "r.xml.tmp");
	char err[256] = "";
	xmlDocPtr doc;
	char *s;

	assert_int_equal(report_write_junit(f->rep, path, err, sizeof(err)), 0);
	assert_int_equal(access(tmp, F_OK), -1);
	doc = parse_xml(path);

	assert_xpath(doc, "name(/*)", "testsuites");
	assert_xpath(doc, "string(/testsuites/@name)", "testfleet");
	assert_xpath(doc, "string(/testsuites/@tests)", "10");
	assert_xpath(doc, "string(/testsuites/@failures)", "1");
	assert_xpath(doc, "string(/testsuites/@errors)", "2");
	assert_xpath(doc, "string(/testsuites/@skipped)", "2");
	assert_xpath(doc, "string(/testsuites/@time)", "12.333");
	assert_xpath(doc, "count(/testsuites/testsuite)", "2");
	assert_xpath(doc, "count(//testcase)", "10");

	/* Per-suite counts add up to the same totals. */
	assert_xpath(doc, "string(/testsuites/testsuite[1]/@name)", "unit");
	assert_xpath(doc, "string(/testsuites/testsuite[1]/@tests)", "8");
	assert_xpath(doc, "string(/testsuites/testsuite[1]/@failures)", "1");
	assert_xpath(doc, "string(/testsuites/testsuite[1]/@errors)", "1");
	assert_xpath(doc, "string(/testsuites/testsuite[1]/@skipped)", "2");
	assert_xpath(doc, "string(/testsuites/testsuite[1]/@timestamp)",
		     "2026-11-21T05:42:10");
	assert_xpath(doc, "string(/testsuites/testsuite[2]/@name)", "api");
	assert_xpath(doc, "string(/testsuites/testsuite[2]/@tests)", "2");
	assert_xpath(doc, "string(/testsuites/testsuite[2]/@errors)", "1");
	assert_xpath(doc, "count(//failure)", "1");
	assert_xpath(doc, "count(//error)", "2");
	assert_xpath(doc, "count(//skipped)", "2");

	/* pytest-style names; the exact id as a property. */
	assert_xpath(doc,
		     "string(//testcase[properties/property[@name='testfleet."
		     "id' and @value='tests/sub/test_a.py::TestC::test_x[p::"
		     "q]']]/@classname)",
		     "tests.sub.test_a.TestC");
	assert_xpath(doc,
		     "string(//testcase[@classname='tests.sub.test_a.TestC']/"
		     "@name)",
		     "test_x[p::q]");
	assert_xpath(doc,
		     "string(//testcase[@classname='tests.sub.test_a.TestC']/"
		     "@file)",
		     "tests/sub/test_a.py");
	assert_xpath(doc,
		     "string(//testcase[@name='login.spec.ts:12 \xE2\x80\xBA "
		     "logs in']/@classname)",
		     "unit");
	assert_xpath(doc, "string(//testcase[@name='test_fail']/@line)", "7");
	assert_xpath(doc, "string(//testcase[@name='test_fail']/@time)",
		     "0.125");
	assert_xpath(doc,
		     "string(//testcase[@name='test_xfail']/skipped/@type)",
		     "pytest.xfail");
	assert_xpath(doc,
		     "string(//testcase[@name='test_skip']/skipped/@message)",
		     "no network");
	assert_xpath(doc,
		     "count(//testcase[@name='test_xpass']/*[not(self::"
		     "properties)])",
		     "0");
	assert_xpath(doc,
		     "string(//testcase[@name='test_flaky']/properties/"
		     "property[@name='testfleet.outcome']/@value)",
		     "flaky");
	assert_xpath(doc,
		     "string(//testcase[@name='test_crash']/error/@message)",
		     "runner killed by signal 11 (SIGSEGV) while running this "
		     "test");

	/* Hostile text survives: specials round-trip, control characters
	 * are spelled out, invalid UTF-8 and U+FFFE become U+FFFD. */
	s = xpath_string(doc, "string(//testcase[@name='test_fail']/failure)");
	assert_string_equal(s, "def test_fail():\n>   assert a < b && c > d "
			       "]]> \"q\" 'a' \\x01\\x1b[31m \xEF\xBF\xBD "
			       "\xEF\xBF\xBD\xEF\xBF\xBD "
			       "\xEF\xBF\xBD\xEF\xBF\xBD "
			       "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD "
			       "\xEF\xBF\xBD \xC3\xA9\nE   AssertionError\n");
	xmlFree(s);
	s = xpath_string(doc, "string(//testcase[@name='test_fail']/failure/"
			      "@message)");
	assert_non_null(strstr(s, "assert a < b && c > d ]]> \"q\" 'a' "
				  "\\x01\\x1b[31m"));
	xmlFree(s);

	/* The crashed task's output is in its suite's system-err. */
	s = xpath_string(doc, "string(/testsuites/testsuite[@name='api']/"
			      "system-err)");
	assert_non_null(strstr(s, "task t00002 crashed on host-3/slot-1: "
				  "runner killed by signal 11 (SIGSEGV)"));
	assert_non_null(strstr(s, "Fatal Python error: a < b && c > d ]]>"));
	xmlFree(s);
	assert_xpath(doc,
		     "count(/testsuites/testsuite[@name='unit']/"
		     "system-err)",
		     "0");

	xmlFreeDoc(doc);
	free(tmp);
	free(path);
}

/* What we write, our own JUnit reader (shared/junit.c) reads back. */
static void test_junit_round_trip(void **state)
{
	struct fixture *f = *state;
	char *path = path_in(f, "r.xml");
	struct junit_case *cases = NULL;
	unsigned counts[OUTCOME_COUNT] = {0};
	size_t ncases = 0, i;
	int found = 0;
	char err[256] = "";

	assert_int_equal(report_write_junit(f->rep, path, err, sizeof(err)), 0);
	if (junit_parse_file(path, &cases, &ncases, err, sizeof(err)) != 0)
		fail_msg("junit_parse_file: %s", err);
	assert_int_equal(ncases, f->rep->ntotal);
	for (i = 0; i < ncases; i++) {
		counts[cases[i].outcome]++;
		if (strcmp(cases[i].name, "test_fail") != 0)
			continue;
		found = 1;
		assert_string_equal(cases[i].classname, "tests.test_b");
		assert_string_equal(cases[i].file, "tests/test_b.py");
		assert_int_equal(cases[i].line, 7);
		assert_non_null(strstr(cases[i].message, "a < b && c > d ]]>"));
		assert_non_null(strstr(cases[i].details, "AssertionError"));
	}
	assert_true(found);
	assert_int_equal(counts[OUTCOME_FAILED], 1);
	assert_int_equal(counts[OUTCOME_ERROR], 2);
	assert_int_equal(counts[OUTCOME_SKIPPED], 1);
	assert_int_equal(counts[OUTCOME_XFAILED], 1);
	/* JUnit has no xpassed or flaky: they read back as passed. */
	assert_int_equal(counts[OUTCOME_PASSED], 5);
	junit_cases_free(cases, ncases);
	free(path);
}

static void test_junit_empty_and_issue_only(void **state)
{
	struct fixture *f = *state;
	struct aggregator *a = aggregator_new("r");
	char *path = path_in(f, "r.xml");
	char err[256];
	struct task_result r;
	struct report *rep;
	xmlDocPtr doc;

	rep = aggregator_report(a);
	assert_int_equal(report_write_junit(rep, path, err, sizeof(err)), 0);
	doc = parse_xml(path);
	assert_xpath(doc, "string(/testsuites/@tests)", "0");
	assert_xpath(doc, "count(//testsuite)", "0");
	xmlFreeDoc(doc);
	report_free(rep);

	/* A task that failed without naming a test still shows up. */
	memset(&r, 0, sizeof(r));
	r.task = (char *)"t9";
	r.suite = (char *)"lint";
	r.phase = (char *)"lint";
	r.status = TASK_ERROR;
	r.message = (char *)"bad task";
	r.output = (char *)"no output\x02";
	aggregator_add(a, &r);
	rep = aggregator_report(a);
	assert_int_equal(report_write_junit(rep, path, err, sizeof(err)), 0);
	doc = parse_xml(path);
	assert_xpath(doc, "string(//testsuite/@name)", "lint");
	assert_xpath(doc, "string(//testsuite/@tests)", "0");
	assert_xpath(doc, "string(//testsuite/system-err)",
		     "task t9 error: bad task\nno output\\x02\n");
	xmlFreeDoc(doc);
	report_free(rep);
	aggregator_free(a);
	free(path);
}

/* Random bytes (1..255) in every string field: both documents must stay
 * well-formed and carry every test. */
static void test_random_bytes(void **state)
{
	enum { N = 300, LEN = 48 };
	struct fixture *f = *state;
	struct aggregator *a = aggregator_new("rand");
	struct test_result *t = calloc(N, sizeof(*t));
	char(*strs)[4][LEN + 1] = calloc(N, sizeof(*strs));
	char *jpath = path_in(f, "r.json"), *xpath = path_in(f, "r.xml");
	char *mpath = path_in(f, "r.md"), *count, *text;
	unsigned seed = 12345;
	struct task_result r;
	struct report *rep;
	char err[256];
	json_t *root;
	xmlDocPtr doc;
	size_t i, j, k;

	assert_non_null(t);
	assert_non_null(strs);
	for (i = 0; i < N; i++) {
		for (j = 0; j < 4; j++) {
			size_t len = 1 + (size_t)(rand_r(&seed) % LEN);

			for (k = 0; k < len; k++)
				strs[i][j][k] = (char)(1 + rand_r(&seed) % 255);
			strs[i][j][len] = '\0';
		}
		t[i].id = strs[i][0];
		t[i].outcome = (enum outcome)(i % OUTCOME_COUNT);
		t[i].message = strs[i][1];
		t[i].details = strs[i][2];
		t[i].file = strs[i][3];
		t[i].line = (uint32_t)i;
	}
	memset(&r, 0, sizeof(r));
	r.task = (char *)"t1";
	r.suite = strs[0][1];
	r.phase = strs[0][2];
	r.worker = strs[0][3];
	r.status = TASK_CRASHED;
	r.term_signal = 6;
	r.output = strs[1][1];
	r.tests = t;
	r.ntests = N;
	aggregator_add(a, &r);
	rep = aggregator_report(a);
	assert_int_equal(rep->ntotal, N);

	assert_int_equal(report_write_json(rep, jpath, err, sizeof(err)), 0);
	root = json_load_file(jpath, 0, NULL);
	assert_non_null(root);
	assert_int_equal(json_array_size(json_object_get(root, "tests")), N);
	json_decref(root);

	assert_int_equal(report_write_junit(rep, xpath, err, sizeof(err)), 0);
	doc = parse_xml(xpath);
	count = xpath_string(doc, "count(//testcase)");
	assert_int_equal(strtol(count, NULL, 10), N);
	xmlFree(count);
	xmlFreeDoc(doc);

	assert_int_equal(report_write_markdown(rep, mpath, err, sizeof(err)),
			 0);
	text = console_text(rep, 0);
	assert_null(strchr(text, '\x1b'));
	free(text);

	report_free(rep);
	aggregator_free(a);
	free(mpath);
	free(xpath);
	free(jpath);
	free(strs);
	free(t);
}

/* ---- Markdown and console ------------------------------------------- */

static void test_markdown(void **state)
{
	struct fixture *f = *state;
	char *path = path_in(f, "r.md");
	char err[256];
	char *md;

	assert_int_equal(report_write_markdown(f->rep, path, err, sizeof(err)),
			 0);
	md = read_all(path);
	assert_true(strlen(md) > 100);
	assert_non_null(strstr(md, "testfleet run `20261121-0542-k3f9`: "
				   "failed"));
	assert_non_null(strstr(md, "| failed | 10 | 3 | 1 | 2 | 1 | 1 | 1 | 1 "
				   "| 12.33s |"));
	assert_non_null(strstr(md, "### Failures and errors (3)"));
	assert_non_null(strstr(md,
			       "- **FAILED** `tests/test_b.py::test_fail"
			       "` \xE2\x80\x94 assert a &lt; b &amp;&amp; c "
			       "&gt; d \\]\\]&gt;"));
	assert_non_null(strstr(md, "- **ERROR** `tests/test_b.py::test_err"
				   "`"));
	assert_non_null(strstr(md, "### Task issues (1)"));
	assert_non_null(strstr(md, "Fatal Python error"));
	/* No raw control characters or invalid UTF-8 reach the summary. */
	assert_null(strchr(md, '\x1b'));
	assert_null(strchr(md, '\x01'));
	assert_null(strstr(md, "\xE2\x82 "));
	free(md);
	free(path);
}

static char *console_text(const struct report *rep, int color)
{
	char *text = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&text, &len);

	assert_non_null(fp);
	report_print_console(rep, fp, color);
	assert_int_equal(fclose(fp), 0);
	return text;
}

static void test_console(void **state)
{
	struct fixture *f = *state;
	char *text = console_text(f->rep, 0), *last;
	size_t n;

	assert_non_null(strstr(text, "\nFAILED tests/test_b.py::test_fail - "
				     "assert a < b && c > d ]]> \"q\" 'a' "
				     "\\x01\\x1b[31m"));
	assert_non_null(strstr(text, "\nERROR tests/test_b.py::test_err - "
				     "fixture 'db' not found\n"));
	assert_non_null(strstr(text, "\nERROR tests/test_api.py::test_crash - "
				     "runner killed by signal 11 (SIGSEGV) "
				     "while running this test\n"));
	assert_non_null(strstr(text, "\nTASK t00002 crashed on host-3/slot-1: "
				     "runner killed by signal 11 (SIGSEGV)"));
	assert_non_null(strstr(text, "    | collected 2 items\n"));
	assert_null(strchr(text, '\x1b'));

	/* The last line, pytest's: counts in pytest's order and words. */
	n = strlen(text);
	assert_true(n > 2 && text[n - 1] == '\n');
	text[n - 1] = '\0';
	last = strrchr(text, '\n');
	assert_non_null(last);
	last++;
	assert_non_null(strstr(last, " 1 failed, 3 passed, 1 skipped, 1 "
				     "xfailed, 1 xpassed, 2 errors, 1 flaky in "
				     "12.33s (run 20261121-0542-k3f9) "));
	/* Longer than the width: one "=" each side, like pytest. */
	assert_true(strncmp(last, "= 1 failed", 10) == 0);
	assert_true(strcmp(last + strlen(last) - 2, " =") == 0);
	free(text);

	text = console_text(f->rep, 1);
	assert_non_null(strstr(text, "\033[31mFAILED\033[0m "));
	assert_non_null(strstr(text, "\033[1m\033[31m= 1 failed"));
	free(text);
}

static void test_console_passed_and_incomplete(void **state)
{
	struct aggregator *a = aggregator_new("r1");
	struct test_result t[1];
	struct task_result r;
	struct report *rep;
	char *text, *last;

	(void)state;
	rep = aggregator_report(a);
	text = console_text(rep, 0);
	assert_non_null(strstr(text, " no tests ran in 0.00s (run r1) "));
	assert_null(strstr(text, "short test summary"));
	free(text);
	report_free(rep);

	t[0] = mk_test("a::x", OUTCOME_PASSED, NULL);
	memset(&r, 0, sizeof(r));
	r.task = (char *)"t1";
	r.suite = (char *)"s";
	r.phase = (char *)"p";
	r.tests = t;
	r.ntests = 1;
	r.started_at = T0;
	r.duration_s = 75.5;
	aggregator_add(a, &r);
	rep = aggregator_report(a);
	text = console_text(rep, 1);
	assert_non_null(strstr(text, "\033[1m\033[32m=="));
	assert_non_null(
	    strstr(text, " 1 passed in 75.50s (0:01:15) (run r1) "));
	last = strrchr(text, '\n');
	assert_non_null(last);
	*last = '\0';
	last = strrchr(text, '\n');
	last = last != NULL ? last + 1 : text;
	/* "\033[1m\033[32m" + 80 columns + "\033[0m" */
	assert_int_equal(strlen(last), 9 + 80 + 4);
	free(text);
	report_free(rep);

	aggregator_expect_tasks(a, 4);
	rep = aggregator_report(a);
	text = console_text(rep, 0);
	assert_non_null(strstr(text, "ERROR run incomplete: 1 of 4 tasks "
				     "reported a result\n"));
	assert_non_null(strstr(text, " 1 passed in 75.50s (0:01:15) (run r1, "
				     "error) "));
	free(text);
	report_free(rep);
	aggregator_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_json, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_json_rounding_and_unknown_times, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_write_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_junit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_junit_round_trip, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_junit_empty_and_issue_only,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_random_bytes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_markdown, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_console, setup, teardown),
	    cmocka_unit_test(test_console_passed_and_incomplete),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);

	xmlCleanupParser();
	return rc;
}
