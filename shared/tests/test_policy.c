/* test_policy.c -- unit tests for shared/policy.c: defaults, replacing and
 * extending the transient patterns, the run-hash encoding both ways, and
 * matching. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy.h"

static void test_defaults(void **state)
{
	struct policy p;
	size_t n = 0;

	(void)state;
	policy_init(&p);
	assert_int_equal(p.max_attempts, 3);
	assert_int_equal(p.retries, 0);
	assert_int_equal(p.max_failures, 0);
	assert_int_equal(p.backoff_base_ms, 1000);
	assert_int_equal(p.backoff_cap_ms, 60000);
	while (policy_default_transient[n] != NULL)
		n++;
	assert_int_equal(n, 7);
	assert_int_equal(p.ntransient, n);
	assert_string_equal(p.transient[0], "exceeded quota");
	assert_string_equal(p.transient[6],
			    "Temporary failure in name resolution");
	/* A copy, not the static table. */
	assert_ptr_not_equal(p.transient[0], policy_default_transient[0]);
	policy_release(&p);
}

static void test_set_and_add(void **state)
{
	struct policy p;
	char *mine[] = {(char *)"flaky network", (char *)"EAGAIN"};
	char *more[] = {(char *)"EAGAIN", (char *)"Broken pipe",
			(char *)"Broken pipe"};
	char *bad[] = {(char *)"ok", (char *)"two\nlines"};
	char *empty[] = {(char *)""};
	char err[256];

	(void)state;
	policy_init(&p);
	assert_int_equal(policy_set_transient(&p, mine, 2, err, sizeof(err)),
			 0);
	assert_int_equal(p.ntransient, 2);
	assert_string_equal(p.transient[1], "EAGAIN");
	/* Duplicates (with the list, and within the input) are skipped. */
	assert_int_equal(policy_add_transient(&p, more, 3, err, sizeof(err)),
			 0);
	assert_int_equal(p.ntransient, 3);
	assert_string_equal(p.transient[2], "Broken pipe");

	assert_int_equal(policy_add_transient(&p, bad, 2, err, sizeof(err)),
			 -1);
	assert_string_equal(err, "pattern 1: must not contain a newline");
	assert_int_equal(p.ntransient, 3);
	assert_int_equal(policy_set_transient(&p, empty, 1, err, sizeof(err)),
			 -1);
	assert_string_equal(err, "pattern 0: must not be empty");
	assert_int_equal(p.ntransient, 3);

	/* No pattern at all is allowed. */
	assert_int_equal(policy_set_transient(&p, NULL, 0, err, sizeof(err)),
			 0);
	assert_int_equal(p.ntransient, 0);
	assert_null(policy_match(&p, "503 Service Unavailable", 23));
	policy_release(&p);
}

static void test_too_many(void **state)
{
	struct policy p;
	char *v[POLICY_MAX_PATTERNS + 1];
	char names[POLICY_MAX_PATTERNS + 1][16];
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i <= POLICY_MAX_PATTERNS; i++) {
		snprintf(names[i], sizeof(names[i]), "p%zu", i);
		v[i] = names[i];
	}
	policy_init(&p);
	assert_int_equal(policy_set_transient(&p, v, POLICY_MAX_PATTERNS + 1,
					      err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "more than 256"));
	/* 7 defaults + 250 > 256. */
	assert_int_equal(policy_add_transient(&p, v, 250, err, sizeof(err)),
			 -1);
	assert_int_equal(p.ntransient, 7);
	assert_int_equal(policy_add_transient(&p, v, 249, err, sizeof(err)), 0);
	assert_int_equal(p.ntransient, 256);
	policy_release(&p);
}

static void test_join_split(void **state)
{
	struct policy p, q;
	char *joined;
	char err[256];
	const char *stored = "a b\r\n\n  c\nlast";

	(void)state;
	policy_init(&p);
	joined = policy_join_transient(&p);
	assert_non_null(strstr(joined, "exceeded quota\nResourceQuota\n"));
	assert_int_equal(joined[strlen(joined) - 1], 'n');
	policy_init(&q);
	assert_int_equal(policy_split_transient(&q, "x", 1, err, sizeof(err)),
			 0);
	assert_int_equal(q.ntransient, 1);
	assert_int_equal(policy_split_transient(&q, joined, strlen(joined), err,
						sizeof(err)),
			 0);
	assert_int_equal(q.ntransient, p.ntransient);
	assert_string_equal(q.transient[3], "503 Service Unavailable");
	free(joined);

	/* CRLF and empty lines; blanks inside a pattern are kept. */
	assert_int_equal(policy_split_transient(&q, stored, strlen(stored), err,
						sizeof(err)),
			 0);
	assert_int_equal(q.ntransient, 3);
	assert_string_equal(q.transient[0], "a b");
	assert_string_equal(q.transient[1], "  c");
	assert_string_equal(q.transient[2], "last");
	/* "" is no pattern. */
	assert_int_equal(policy_split_transient(&q, "", 0, err, sizeof(err)),
			 0);
	assert_int_equal(q.ntransient, 0);
	joined = policy_join_transient(&q);
	assert_string_equal(joined, "");
	free(joined);
	policy_release(&q);
	policy_release(&p);
}

static void test_split_limits(void **state)
{
	struct policy p;
	char err[256];
	char *big = malloc(POLICY_MAX_PATTERN + 2);
	char many[(POLICY_MAX_PATTERNS + 1) * 2];
	size_t i;

	(void)state;
	assert_non_null(big);
	memset(big, 'x', POLICY_MAX_PATTERN + 1);
	big[POLICY_MAX_PATTERN + 1] = '\0';
	policy_init(&p);
	assert_int_equal(
	    policy_split_transient(&p, big, strlen(big), err, sizeof(err)), -1);
	assert_int_equal(p.ntransient, 7);
	for (i = 0; i <= POLICY_MAX_PATTERNS; i++) {
		many[2 * i] = 'a';
		many[2 * i + 1] = '\n';
	}
	assert_int_equal(
	    policy_split_transient(&p, many, sizeof(many), err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "more than"));
	/* A NUL inside the stored value is refused. */
	assert_int_equal(
	    policy_split_transient(&p, "a\0b", 3, err, sizeof(err)), -1);
	assert_int_equal(p.ntransient, 7);
	policy_release(&p);
	free(big);
}

static void test_match(void **state)
{
	struct policy p;
	const char *out = "E   requests.exceptions.HTTPError: 503 Service "
			  "Unavailable for url";

	(void)state;
	policy_init(&p);
	assert_string_equal(policy_match(&p, out, strlen(out)),
			    "503 Service Unavailable");
	/* Case-sensitive, plain substrings. */
	assert_null(policy_match(&p, "connection refused", 18));
	assert_null(policy_match(&p, "503 Service", 11));
	/* Only len bytes are looked at. */
	assert_null(policy_match(&p, "ECONNRESET", 5));
	assert_non_null(policy_match(&p, "xxECONNRESET", 12));
	assert_null(policy_match(&p, NULL, 0));
	policy_release(&p);
}

static void test_fields(void **state)
{
	struct policy p, q;
	char *values[POLICY_NFIELDS];
	char err[256];
	size_t i;

	(void)state;
	policy_init(&p);
	p.max_attempts = 5;
	p.retries = 2;
	p.max_failures = 10;
	p.backoff_base_ms = 250;
	p.backoff_cap_ms = 4000;
	policy_fields(&p, values);
	assert_string_equal(values[0], "5");
	assert_string_equal(values[3], "250");

	/* What one side writes, the other reads back. */
	policy_init(&q);
	for (i = 0; i < POLICY_NFIELDS; i++)
		assert_int_equal(policy_set_field(&q, policy_field_names[i],
						  values[i], strlen(values[i]),
						  err, sizeof(err)),
				 1);
	assert_int_equal(q.max_attempts, 5);
	assert_int_equal(q.retries, 2);
	assert_int_equal(q.max_failures, 10);
	assert_int_equal(q.backoff_base_ms, 250);
	assert_int_equal(q.backoff_cap_ms, 4000);
	assert_int_equal(q.ntransient, p.ntransient);
	for (i = 0; i < POLICY_NFIELDS; i++)
		free(values[i]);

	assert_int_equal(
	    policy_set_field(&q, "status", "running", 7, err, sizeof(err)), 0);
	assert_int_equal(
	    policy_set_field(&q, "max_attempts", "0", 1, err, sizeof(err)), -1);
	assert_string_equal(err, "run policy max_attempts: expected a whole "
				 "number from 1 to 100, got \"0\"");
	assert_int_equal(
	    policy_set_field(&q, "retries", "-1", 2, err, sizeof(err)), -1);
	assert_int_equal(policy_set_field(&q, "max_failures", "99999999999", 11,
					  err, sizeof(err)),
			 -1);
	assert_int_equal(
	    policy_set_field(&q, "backoff_cap_ms", "", 0, err, sizeof(err)),
	    -1);
	assert_int_equal(q.max_attempts, 5);
	assert_int_equal(q.retries, 2);
	policy_release(&q);
	policy_release(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_set_and_add),
	    cmocka_unit_test(test_too_many),
	    cmocka_unit_test(test_join_split),
	    cmocka_unit_test(test_split_limits),
	    cmocka_unit_test(test_match),
	    cmocka_unit_test(test_fields),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
