/* test_urltmpl.c -- the URL templates of artifact uploads: which templates
 * are accepted (http and https, the four placeholders) and the message of
 * those refused; expansion (values percent-encoded, the '/' of a path
 * kept, "/{run}/{task}/{attempt}/{path}" added before the query string
 * when the template has no {path}); and the public form of a URL (no
 * query string, no fragment). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "urltmpl.h"
#include "xmalloc.h"

/* ---- urltmpl_check ---- */

static void test_check_accepts(void **state)
{
	static const char *const good[] = {
	    "http://h",
	    "http://127.0.0.1:8080/store",
	    "https://artifacts.internal/tf/",
	    "http://h/{run}/{task}/{attempt}/{path}",
	    "https://h/b/{task}-{attempt}/{path}?run=1",
	    "http://h/store?sig=abc&exp=1700000000",
	    "http://h/x#frag",
	    "http://[::1]:9/{path}",
	    /* A '}' alone opens nothing. */
	    "http://h/a}b",
	};
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		err[0] = '\0';
		if (urltmpl_check(good[i], err, sizeof(err)) != 0)
			fail_msg("\"%s\" refused: %s", good[i], err);
	}
}

struct bad {
	const char *tmpl;
	const char *want; /* in the message */
};

static void test_check_refuses(void **state)
{
	static const struct bad bad[] = {
	    {"", "\"\": not an http:// or https:// URL"},
	    {"ftp://h/x", "\"ftp://h/x\": not an http:// or https:// URL"},
	    {"file:///etc/passwd", "not an http:// or https:// URL"},
	    {"gopher://h/", "not an http:// or https:// URL"},
	    {"h/store", "not an http:// or https:// URL"},
	    {"//h/store", "not an http:// or https:// URL"},
	    {"http:/h/store", "not an http:// or https:// URL"},
	    {" http://h/", "not an http:// or https:// URL"},
	    {"http://h/{bogus}", "unknown placeholder {bogus} (use {run}, "
				 "{task}, {attempt}, {path})"},
	    {"http://h/{RUN}", "unknown placeholder {RUN}"},
	    {"http://h/{}", "unknown placeholder {}"},
	    {"http://h/{ path}", "unknown placeholder { path}"},
	    {"http://h/{run}/{runs}", "unknown placeholder {runs}"},
	    {"http://h/{run}{{path}}", "unknown placeholder {{path}"},
	    {"http://h/x?q={query}", "not in the query string"},
	    {"http://h/{path}?task={task}", "not in the query string"},
	    {"http://h/x#{path}", "not in the query string"},
	    {"http://h/{run", "\"http://h/{run\": unclosed \"{\""},
	    {"http://h/{path}/{", "unclosed \"{\""},
	};
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (urltmpl_check(bad[i].tmpl, err, sizeof(err)) != -1)
			fail_msg("\"%s\" accepted", bad[i].tmpl);
		if (strstr(err, bad[i].want) == NULL)
			fail_msg("\"%s\": message \"%s\" lacks \"%s\"",
				 bad[i].tmpl, err, bad[i].want);
		assert_null(strchr(err, '\n'));
	}
}

/* Long templates are cut in the message; a small buffer is never
 * overrun and still says something. */
static void test_check_message_bounds(void **state)
{
	char tmpl[1200], err[512], small[16];
	size_t i;

	(void)state;
	memcpy(tmpl, "ftp://", 6);
	for (i = 6; i < sizeof(tmpl) - 1; i++)
		tmpl[i] = 'a';
	tmpl[sizeof(tmpl) - 1] = '\0';
	assert_int_equal(urltmpl_check(tmpl, err, sizeof(err)), -1);
	assert_true(strlen(err) < 300);
	assert_non_null(strstr(err, "not an http:// or https:// URL"));

	/* An unknown placeholder of 100 characters: 40 are shown. */
	memcpy(tmpl, "http://h/{", 10);
	for (i = 10; i < 110; i++)
		tmpl[i] = 'x';
	tmpl[110] = '}';
	tmpl[111] = '\0';
	assert_int_equal(urltmpl_check(tmpl, err, sizeof(err)), -1);
	{
		char want[80];

		memcpy(want, "placeholder {", 13);
		memset(want + 13, 'x', 39);
		memcpy(want + 52, " (use", 6);
		assert_non_null(strstr(err, want));
	}

	memset(small, 'Z', sizeof(small));
	assert_int_equal(urltmpl_check("ftp://h", small, 8), -1);
	assert_int_equal(strlen(small), 7);
	assert_int_equal(small[8], 'Z');
}

/* ---- urltmpl_expand ---- */

struct expansion {
	const char *tmpl;
	const char *run, *task;
	unsigned attempt;
	const char *path;
	const char *want;
};

static void test_expand_table(void **state)
{
	static const struct expansion cases[] = {
	    /* No {path}: the four parts are added to the path. */
	    {"http://127.0.0.1:8080/store", "20261121-0542-k3f9", "t00001", 2,
	     "trace.zip",
	     "http://127.0.0.1:8080/store/20261121-0542-k3f9/t00001/2/"
	     "trace.zip"},
	    /* ... without doubling a trailing '/'. */
	    {"http://h/store/", "r", "t", 1, "x", "http://h/store/r/t/1/x"},
	    /* ... after a bare host. */
	    {"http://h", "r", "t", 1, "x", "http://h/r/t/1/x"},
	    {"https://h:1", "r", "t", 1, "x", "https://h:1/r/t/1/x"},
	    /* ... before the query string, which stays as it was. */
	    {"http://h/store?sig=secret&x=1", "r", "t", 3, "a/b.png",
	     "http://h/store/r/t/3/a/b.png?sig=secret&x=1"},
	    {"http://h/store/?sig=a%2Fb", "r", "t", 1, "x",
	     "http://h/store/r/t/1/x?sig=a%2Fb"},
	    /* ... and before a fragment. */
	    {"http://h/store#frag", "r", "t", 1, "x",
	     "http://h/store/r/t/1/x#frag"},
	    {"http://h/store?q#f", "r", "t", 1, "x",
	     "http://h/store/r/t/1/x?q#f"},
	    /* With {path}: the template alone decides. */
	    {"http://h/{path}", "r", "t", 1, "d/x.txt", "http://h/d/x.txt"},
	    {"https://h/b/{task}-{attempt}/{path}?sig=s", "r1", "t7", 12,
	     "a/b", "https://h/b/t7-12/a/b?sig=s"},
	    /* A placeholder twice. */
	    {"http://h/{run}/{run}/{path}", "r", "t", 1, "x", "http://h/r/r/x"},
	    /* Spaces, non-ASCII and reserved characters are encoded; the
	     * '/' of a path is kept, RFC 3986's unreserved are kept. */
	    {"http://h/s", "r", "t", 1, "my dir/shot \xc3\xbc.png",
	     "http://h/s/r/t/1/my%20dir/shot%20%C3%BC.png"},
	    {"http://h/s", "r", "t", 1, "a?b#c%d&e+f=g;h:i@j",
	     "http://h/s/r/t/1/a%3Fb%23c%25d%26e%2Bf%3Dg%3Bh%3Ai%40j"},
	    {"http://h/s", "r", "t", 1, "Az09-._~/x",
	     "http://h/s/r/t/1/Az09-._~/x"},
	    {"http://h/{path}", "r", "t", 1, "\xe2\x9c\x93/\xf0\x9f\x98\x80",
	     "http://h/%E2%9C%93/%F0%9F%98%80"},
	    /* Only the path keeps its '/': other values are one segment. */
	    {"http://h/{run}/{task}/{path}", "r/1", "a b/c", 1, "p/q",
	     "http://h/r%2F1/a%20b%2Fc/p/q"},
	    {"http://h/s", "r", "t[1]", 4294967295u, "x",
	     "http://h/s/r/t%5B1%5D/4294967295/x"},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct expansion *c = &cases[i];
		char err[256];
		char *got;

		if (urltmpl_check(c->tmpl, err, sizeof(err)) != 0)
			fail_msg("\"%s\" refused: %s", c->tmpl, err);
		got = urltmpl_expand(c->tmpl, c->run, c->task, c->attempt,
				     c->path);
		if (strcmp(got, c->want) != 0)
			fail_msg("\"%s\" with path \"%s\":\n got  \"%s\"\n "
				 "want \"%s\"",
				 c->tmpl, c->path, got, c->want);
		free(got);
	}
}

/* Long values grow the buffer: 1000 two-byte characters become 6000
 * bytes, each one right. */
static void test_expand_long(void **state)
{
	char path[2001], want[6001];
	char *got, *prefix;
	size_t i, plen;

	(void)state;
	for (i = 0; i < 1000; i++) {
		path[2 * i] = '\xc3';
		path[2 * i + 1] = '\xa9'; /* é */
		memcpy(want + 6 * i, "%C3%A9", 6);
	}
	path[2000] = '\0';
	want[6000] = '\0';
	got = urltmpl_expand("http://h/{path}?sig=x", "r", "t", 1, path);
	prefix = xasprintf("http://h/%s?sig=x", want);
	plen = strlen(prefix);
	assert_int_equal(strlen(got), plen);
	assert_string_equal(got, prefix);
	free(prefix);
	free(got);

	/* A long template without {path} and a long run id. */
	{
		char tmpl[700], run[500];

		memcpy(tmpl, "http://h/", 9);
		memset(tmpl + 9, 'd', sizeof(tmpl) - 10);
		tmpl[sizeof(tmpl) - 1] = '\0';
		memset(run, 'r', sizeof(run) - 1);
		run[sizeof(run) - 1] = '\0';
		got = urltmpl_expand(tmpl, run, "t", 1, "x y");
		prefix = xasprintf("%s/%s/t/1/x%%20y", tmpl, run);
		assert_string_equal(got, prefix);
		free(prefix);
		free(got);
	}
}

/* ---- urltmpl_public ---- */

static void test_public(void **state)
{
	static const char *const cases[][2] = {
	    {"http://h/x", "http://h/x"},
	    {"http://h/x?sig=secret", "http://h/x"},
	    {"http://h/x#frag", "http://h/x"},
	    {"http://h/x?a=b#c", "http://h/x"},
	    {"http://h/x#c?d", "http://h/x"},
	    {"https://h:443/a%20b/c?X-Amz-Signature=abc&X-Amz-Expires=60",
	     "https://h:443/a%20b/c"},
	    {"?only", ""},
	    {"", ""},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = urltmpl_public(cases[i][0]);

		assert_string_equal(got, cases[i][1]);
		free(got);
	}
}

/* What the uploader prints: the expanded URL of a presigned template,
 * without the signature, and with the file's encoded path. */
static void test_public_of_expanded(void **state)
{
	const char *tmpl = "http://127.0.0.1:1/store?sig=secret";
	char *url, *pub;

	(void)state;
	url = urltmpl_expand(tmpl, "r", "t00002", 1, "d/a b.zip");
	assert_string_equal(url,
			    "http://127.0.0.1:1/store/r/t00002/1/d/a%20b.zip"
			    "?sig=secret");
	pub = urltmpl_public(url);
	assert_string_equal(pub, "http://127.0.0.1:1/store/r/t00002/1/d/"
				 "a%20b.zip");
	assert_null(strstr(pub, "sig="));
	free(pub);
	free(url);
	/* An encoded '?' in the path is not a query string. */
	url = urltmpl_expand(tmpl, "r", "t", 1, "what?.txt");
	pub = urltmpl_public(url);
	assert_string_equal(pub, "http://127.0.0.1:1/store/r/t/1/what%3F.txt");
	free(pub);
	free(url);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_check_accepts),
	    cmocka_unit_test(test_check_refuses),
	    cmocka_unit_test(test_check_message_bounds),
	    cmocka_unit_test(test_expand_table),
	    cmocka_unit_test(test_expand_long),
	    cmocka_unit_test(test_public),
	    cmocka_unit_test(test_public_of_expanded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
