/* test_collected.c -- unit tests for the kept collection's value and key
 * (producer/collected.c): a round trip of awkward ids, every malformed
 * value refused with a message, a key that changes with each input, and
 * random and mutated values that must parse or fail cleanly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "collected.h"
#include "xmalloc.h"

static char *ids3[] = {"tests/test_a.py::test_x[a b]",
		       "tests/test_a.py::test_x[a/b::c]",
		       "tests/sub/test_b.py::TestK::test_m", NULL};

static void sample(struct discover_result *r)
{
	memset(r, 0, sizeof(*r));
	r->status = DISCOVER_OK;
	r->ids = ids3;
	r->nids = 3;
	r->root = "/srv/app";
}

static void test_round_trip(void **state)
{
	struct discover_result in, out;
	char err[256], *v;
	size_t len, i;

	(void)state;
	sample(&in);
	v = collected_format(&in, &len);
	assert_string_equal(v, "tfc1\n/srv/app\n3\n"
			       "tests/test_a.py::test_x[a b]\n"
			       "tests/test_a.py::test_x[a/b::c]\n"
			       "tests/sub/test_b.py::TestK::test_m\n");
	assert_int_equal(collected_parse(v, len, &out, err, sizeof(err)), 0);
	assert_int_equal(out.status, DISCOVER_OK);
	assert_string_equal(out.root, "/srv/app");
	assert_int_equal(out.nids, 3);
	for (i = 0; i < 3; i++)
		assert_string_equal(out.ids[i], ids3[i]);
	assert_null(out.ids[3]);
	assert_true(collected_same(&in, &out));
	discover_result_release(&out);
	free(v);
}

static void test_same(void **state)
{
	struct discover_result a, b;
	char *other[] = {"tests/test_a.py::test_x[a b]",
			 "tests/sub/test_b.py::TestK::test_m",
			 "tests/test_a.py::test_x[a/b::c]", NULL};

	(void)state;
	sample(&a);
	sample(&b);
	assert_true(collected_same(&a, &b));
	b.root = "/srv/other";
	assert_false(collected_same(&a, &b));
	sample(&b);
	b.nids = 2; /* a test gone */
	assert_false(collected_same(&a, &b));
	sample(&b);
	b.ids = other; /* same tests, another order */
	assert_false(collected_same(&a, &b));
	sample(&b);
	b.status = DISCOVER_USER; /* a failed collection never matches */
	assert_false(collected_same(&a, &b));
}

static void test_malformed(void **state)
{
	static const struct {
		const char *value;
		const char *why;
	} bad[] = {
	    {"", "not a tfc1 value"},
	    {"tfc2\n/r\n1\nx\n", "not a tfc1 value"},
	    {"tfc1", "not a tfc1 value"},
	    {"tfc1\nrelative\n1\nx\n", "no absolute root directory"},
	    {"tfc1\n\n1\nx\n", "no absolute root directory"},
	    {"tfc1\n/r\n\nx\n", "no id count"},
	    {"tfc1\n/r\n-1\nx\n", "no id count"},
	    {"tfc1\n/r\n1x\nx\n", "no id count"},
	    {"tfc1\n/r\n01\nx\n", "no id count"},
	    {"tfc1\n/r\n0\n", "an id count of 0 for 0 bytes"},
	    {"tfc1\n/r\n99999999999999999999\nx\n", "an id count of"},
	    {"tfc1\n/r\n2\nx\n", "an id count of 2 for 2 bytes"},
	    {"tfc1\n/r\n2\nxy\nz", "1 of 2 ids"},
	    {"tfc1\n/r\n2\nx\n\ny\n", "id 2 is empty"},
	    {"tfc1\n/r\n1\nx\ny\n", "bytes after the last id"},
	};
	struct discover_result out;
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(collected_parse(bad[i].value,
						 strlen(bad[i].value), &out,
						 err, sizeof(err)),
				 -1);
		if (strstr(err, bad[i].why) == NULL)
			fail_msg("value %zu: \"%s\" lacks \"%s\"", i, err,
				 bad[i].why);
		assert_null(out.ids);
		assert_null(out.root);
	}
	/* A NUL byte anywhere. */
	assert_int_equal(collected_parse("tfc1\n/r\n1\nx\0y\n", 13, &out, err,
					 sizeof(err)),
			 -1);
	assert_string_equal(err, "a NUL byte in the value");
}

static void test_long_id(void **state)
{
	struct discover_result out;
	size_t n = DISCOVER_MAX_ID + 1, len;
	char *v = xmalloc(n + 32), err[256];

	(void)state;
	len = (size_t)sprintf(v, "tfc1\n/r\n1\n");
	memset(v + len, 'a', n);
	v[len + n] = '\n';
	len += n + 1;
	assert_int_equal(collected_parse(v, len, &out, err, sizeof(err)), -1);
	assert_string_equal(err, "id 1 is too long");
	/* One byte shorter is the longest accepted. */
	memmove(v + len - 2, v + len - 1, 1);
	assert_int_equal(collected_parse(v, len - 1, &out, err, sizeof(err)),
			 0);
	assert_int_equal(strlen(out.ids[0]), DISCOVER_MAX_ID);
	discover_result_release(&out);
	free(v);
}

/* The key hashes every input: changing any one gives another key. */
static void test_key(void **state)
{
	char *cmd[] = {"/usr/bin/pytest", NULL};
	char *cmd2[] = {"/usr/bin/pytest", "-x", NULL};
	char *paths[] = {"tests", NULL};
	char *paths2[] = {"tests/unit", NULL};
	struct kv env[] = {{"A", "1"}};
	struct kv env2[] = {{"A", "2"}};
	struct discover_opts base, in;
	const char *runner;
	char *k0, *k;
	int variant;

	(void)state;
	memset(&base, 0, sizeof(base));
	base.pytest = cmd;
	base.cwd = "/srv/app";
	base.paths = paths;
	base.npaths = 1;
	base.env = env;
	base.nenv = 1;
	k0 = collected_key("tf", "pytest", &base);
	assert_int_equal(strncmp(k0, "tf:collected:", 13), 0);
	assert_int_equal(strlen(k0), 13 + 40);
	k = collected_key("tf", "pytest", &base);
	assert_string_equal(k, k0); /* deterministic */
	free(k);
	for (variant = 0; variant < 9; variant++) {
		in = base;
		runner = "pytest";
		switch (variant) {
		case 0: runner = "playwright"; break;
		case 1: in.pytest = cmd2; break;
		case 2: in.cwd = "/srv/app2"; break;
		case 3: in.mark = "slow"; break;
		case 4: in.mark = ""; break; /* empty is not absent */
		case 5: in.kexpr = "slow"; break;
		case 6: in.paths = paths2; break;
		case 7: in.env = env2; break;
		case 8: in.nenv = 0; break;
		}
		k = collected_key("tf", runner, &in);
		if (strcmp(k, k0) == 0)
			fail_msg("variant %d gives the same key", variant);
		free(k);
	}
	k = collected_key("other", "pytest", &base);
	assert_string_equal(k + 6, k0 + 3);
	free(k);
	free(k0);
}

/* Random bytes and single-byte mutations of a valid value: each either
 * parses into ids that format back to the same bytes, or fails with a
 * message and nothing allocated. */
static void test_random_values(void **state)
{
	struct discover_result in, out;
	char *valid, *v, err[256], *back;
	size_t vlen, len, blen, i;
	unsigned seed = 12345;

	(void)state;
	sample(&in);
	valid = collected_format(&in, &vlen);
	v = xmalloc(vlen + 64);
	for (i = 0; i < 20000; i++) {
		seed = seed * 1103515245u + 12345u;
		if (i % 2 == 0) {
			memcpy(v, valid, vlen);
			len = vlen - (seed >> 8) % 3;
			v[(seed >> 12) % len] = (char)(seed >> 20);
		} else {
			size_t k;

			len = (seed >> 8) % 64;
			memcpy(v, "tfc1\n/", 6);
			for (k = 6; k < len; k++) {
				seed = seed * 1103515245u + 12345u;
				v[k] = "ab\n0123/:\0"[(seed >> 16) % 10];
			}
			if (len < 6)
				len = 6;
		}
		err[0] = '\0';
		if (collected_parse(v, len, &out, err, sizeof(err)) < 0) {
			assert_true(err[0] != '\0');
			assert_null(strchr(err, '\n'));
			assert_null(out.ids);
			continue;
		}
		back = collected_format(&out, &blen);
		assert_int_equal(blen, len);
		assert_memory_equal(back, v, len);
		free(back);
		discover_result_release(&out);
	}
	free(v);
	free(valid);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip), cmocka_unit_test(test_same),
	    cmocka_unit_test(test_malformed),  cmocka_unit_test(test_long_id),
	    cmocka_unit_test(test_key),	       cmocka_unit_test(test_random_values),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
