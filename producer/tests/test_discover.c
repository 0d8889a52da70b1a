/* test_discover.c -- unit tests for the pytest collect-output parser and
 * the rootdir search in producer/discover.c. The sample outputs are what
 * pytest 7.2 prints for `--collect-only -q` on a suite with parametrized
 * ids (spaces, "/", "::", brackets, escaped non-ASCII), classes and
 * nested directories. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "discover.h"
#include "xmalloc.h"

static const char real_output[] =
    "tests/test_a.py::test_x[a b]\n"
    "tests/test_a.py::test_x[a/b::c]\n"
    "tests/test_a.py::test_x[\\xfc]\n"
    "tests/test_a.py::test_x[x]y[]\n"
    "tests/test_a.py::TestK::test_m\n"
    "tests/test_a.py::test_slow\n"
    "tests/sub/test_b.py::test_b1\n"
    "tests/sub/test_b.py::test_b2\n"
    "\n"
    "=============================== warnings summary "
    "===============================\n"
    "tests/test_a.py:11\n"
    "  /tmp/tfsuite/tests/test_a.py:11: PytestUnknownMarkWarning: Unknown "
    "pytest.mark.slow - is this a typo?\n"
    "\n"
    "-- Docs: https://docs.pytest.org/en/stable/how-to/"
    "capture-warnings.html\n"
    "8 tests collected in 0.00s\n";

static void test_parse_real_output(void **state)
{
	const char *want[] = {
	    "tests/test_a.py::test_x[a b]",   "tests/test_a.py::test_x[a/b::c]",
	    "tests/test_a.py::test_x[\\xfc]", "tests/test_a.py::test_x[x]y[]",
	    "tests/test_a.py::TestK::test_m", "tests/test_a.py::test_slow",
	    "tests/sub/test_b.py::test_b1",   "tests/sub/test_b.py::test_b2",
	};
	char **ids;
	size_t n, i;
	char err[256];

	(void)state;
	assert_int_equal(discover_parse(real_output, strlen(real_output), &ids,
					&n, err, sizeof(err)),
			 0);
	assert_int_equal(n, 8);
	for (i = 0; i < n; i++)
		assert_string_equal(ids[i], want[i]);
	assert_null(ids[n]);
	discover_ids_free(ids, n);
}

static void test_parse_keeps_bytes_exactly(void **state)
{
	/* Leading/trailing spaces inside an id, raw UTF-8 (what pytest
	 * prints when a project turns id escaping off) and tabs are kept
	 * verbatim; only the line's "\r\n" is dropped. */
	const char out[] = "t.py::test[ lead]\r\n"
			   "t.py::test[trail ]\n"
			   "t.py::test[\xc3\xbc\tx]\n"
			   "\r\n"
			   "1 test collected\n";
	char **ids;
	size_t n;
	char err[256];

	(void)state;
	assert_int_equal(
	    discover_parse(out, sizeof(out) - 1, &ids, &n, err, sizeof(err)),
	    0);
	assert_int_equal(n, 3);
	assert_string_equal(ids[0], "t.py::test[ lead]");
	assert_string_equal(ids[1], "t.py::test[trail ]");
	assert_string_equal(ids[2], "t.py::test[\xc3\xbc\tx]");
	discover_ids_free(ids, n);
}

static void test_parse_nothing_collected(void **state)
{
	/* pytest prints the empty line first when nothing was collected. */
	const char out[] = "\nno tests collected (8 deselected) in 0.00s\n";
	char **ids;
	size_t n;
	char err[256];

	(void)state;
	assert_int_equal(
	    discover_parse(out, sizeof(out) - 1, &ids, &n, err, sizeof(err)),
	    0);
	assert_int_equal(n, 0);
	assert_non_null(ids);
	assert_null(ids[0]);
	discover_ids_free(ids, n);
}

static void test_parse_stops_at_first_blank(void **state)
{
	/* Lines after the empty line are never ids, even if they look like
	 * one. */
	const char out[] = "a.py::t1\n\nb.py::t2\n\nc.py::t3\n";
	char **ids;
	size_t n;
	char err[256];

	(void)state;
	assert_int_equal(
	    discover_parse(out, sizeof(out) - 1, &ids, &n, err, sizeof(err)),
	    0);
	assert_int_equal(n, 1);
	assert_string_equal(ids[0], "a.py::t1");
	discover_ids_free(ids, n);
}

static void test_parse_rejects_truncated(void **state)
{
	const char *bad[] = {"", "a.py::t1\n", "a.py::t1\nb.py::t2",
			     "a.py::t1"};
	char **ids = (char **)1;
	size_t n = 7, i;
	char err[256];

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(discover_parse(bad[i], strlen(bad[i]), &ids,
						&n, err, sizeof(err)),
				 -1);
		assert_null(ids);
		assert_int_equal(n, 0);
		assert_true(strlen(err) > 0);
	}
}

static void test_parse_rejects_nul_and_huge(void **state)
{
	const char nul[] = "a.py::t\0x\n\n";
	char **ids;
	size_t n, len = DISCOVER_MAX_ID + 10;
	char *huge = xmalloc(len + 3);
	char err[256];

	(void)state;
	assert_int_equal(
	    discover_parse(nul, sizeof(nul) - 1, &ids, &n, err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "NUL"));
	memset(huge, 'a', len);
	huge[len] = '\n';
	huge[len + 1] = '\n';
	huge[len + 2] = '\0';
	assert_int_equal(
	    discover_parse(huge, len + 2, &ids, &n, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "limit"));
	/* exactly at the limit is fine */
	huge[DISCOVER_MAX_ID] = '\n';
	huge[DISCOVER_MAX_ID + 1] = '\n';
	assert_int_equal(discover_parse(huge, DISCOVER_MAX_ID + 2, &ids, &n,
					err, sizeof(err)),
			 0);
	assert_int_equal(n, 1);
	assert_int_equal(strlen(ids[0]), DISCOVER_MAX_ID);
	discover_ids_free(ids, n);
	free(huge);
}

static void test_parse_many(void **state)
{
	size_t count = 50000, i, n;
	char **ids;
	char err[256];
	char *out, *p;
	size_t cap = count * 40 + 2;

	(void)state;
	out = xmalloc(cap);
	p = out;
	for (i = 0; i < count; i++)
		p += snprintf(p, cap - (size_t)(p - out),
			      "tests/test_%zu.py::t[%zu]\n", i / 100, i);
	*p++ = '\n';
	assert_int_equal(
	    discover_parse(out, (size_t)(p - out), &ids, &n, err, sizeof(err)),
	    0);
	assert_int_equal(n, count);
	assert_string_equal(ids[count - 1], "tests/test_499.py::t[49999]");
	discover_ids_free(ids, n);
	free(out);
}

static void touch(const char *path)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fclose(f);
}

static void test_find_root(void **state)
{
	char tmpl[] = "/tmp/test_discover_XXXXXX";
	char *dir, *sub, *deep, *f1, *f2, *root;
	char *ids_above[] = {"tests/test_a.py::test_x",
			     "tests/deep/test_b.py::t[a/b::c]"};
	char *ids_here[] = {"test_a.py::test_x[a/b::c]"};
	char *ids_deep[] = {"test_b.py::t"};
	char *ids_none[] = {"nope/test_zz.py::t"};
	char *arg_tests[] = {"tests"};
	char *arg_deep_file[] = {"tests/deep/test_b.py::t"};
	char *arg_two[] = {"tests/deep", "tests/test_a.py"};

	(void)state;
	dir = mkdtemp(tmpl);
	assert_non_null(dir);
	sub = xasprintf("%s/tests", dir);
	deep = xasprintf("%s/tests/deep", dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	assert_int_equal(mkdir(deep, 0700), 0);
	f1 = xasprintf("%s/test_a.py", sub);
	f2 = xasprintf("%s/test_b.py", deep);
	touch(f1);
	touch(f2);

	/* No arguments, ids relative to cwd. */
	root = discover_find_root(sub, NULL, 0, ids_here, 1);
	assert_string_equal(root, sub);
	free(root);
	/* Running in tests/ with the rootdir above: the ids name
	 * tests/test_a.py, found one level up. */
	root = discover_find_root(sub, NULL, 0, ids_above, 2);
	assert_string_equal(root, dir);
	free(root);
	/* The rootdir below cwd, at the argument (a pytest.ini there):
	 * "pytest tests/deep" from dir prints test_b.py::t. */
	root = discover_find_root(dir, arg_deep_file, 1, ids_deep, 1);
	assert_string_equal(root, deep);
	free(root);
	/* Same with an absolute argument. */
	{
		char *abs_arg[] = {deep};

		root = discover_find_root("/", abs_arg, 1, ids_deep, 1);
		assert_string_equal(root, deep);
		free(root);
	}
	/* Two arguments: their common ancestor (tests/) is the start; ids
	 * relative to dir are found one level up. */
	root = discover_find_root(dir, arg_two, 2, ids_above, 2);
	assert_string_equal(root, dir);
	free(root);
	root = discover_find_root(dir, arg_tests, 1, ids_here, 1);
	assert_string_equal(root, sub);
	free(root);
	/* Found nowhere: cwd itself. */
	root = discover_find_root(sub, NULL, 0, ids_none, 1);
	assert_string_equal(root, sub);
	free(root);

	unlink(f1);
	unlink(f2);
	rmdir(deep);
	rmdir(sub);
	rmdir(dir);
	free(f1);
	free(f2);
	free(deep);
	free(sub);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_real_output),
	    cmocka_unit_test(test_parse_keeps_bytes_exactly),
	    cmocka_unit_test(test_parse_nothing_collected),
	    cmocka_unit_test(test_parse_stops_at_first_blank),
	    cmocka_unit_test(test_parse_rejects_truncated),
	    cmocka_unit_test(test_parse_rejects_nul_and_huge),
	    cmocka_unit_test(test_parse_many),
	    cmocka_unit_test(test_find_root),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
