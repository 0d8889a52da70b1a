/* test_utf8.c -- UTF-8 validation and repair: valid sequences of every
 * length pass untouched; overlongs, surrogates, out-of-range, truncated
 * sequences, stray continuation bytes and NUL become U+FFFD; prefixes
 * never end inside a sequence. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "utf8.h"

#define FFFD "\xef\xbf\xbd"

static void check(const char *in, size_t len, const char *want)
{
	size_t outlen;
	char *out = utf8_sanitize(in, len, &outlen);

	assert_string_equal(out, want);
	assert_int_equal(outlen, strlen(want));
	free(out);
}

static void test_valid_passes(void **state)
{
	const char *s = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z";

	(void)state;
	check(s, strlen(s), s);
	check("", 0, "");
	assert_int_equal(
	    utf8_seqlen((const unsigned char *)"\xf4\x8f\xbf\xbf", 4),
	    4); /* U+10FFFF */
}

static void test_invalid_replaced(void **state)
{
	(void)state;
	check("a\0b", 3, "a" FFFD "b");
	check("\xc0\xaf", 2, FFFD FFFD);		   /* overlong '/' */
	check("\xe0\x80\xaf", 3, FFFD FFFD FFFD);	   /* overlong */
	check("\xed\xa0\x80", 3, FFFD FFFD FFFD);	   /* surrogate */
	check("\xf4\x90\x80\x80", 4, FFFD FFFD FFFD FFFD); /* > U+10FFFF */
	check("\xf5", 1, FFFD);
	check("\x80x", 2, FFFD "x");	      /* stray */
	check("x\xe2\x82", 3, "x" FFFD FFFD); /* truncated */
	check("\xe2\x82\xc3\xa9", 4, FFFD FFFD "\xc3\xa9");
}

static void test_prefix(void **state)
{
	const char *s = "ab\xe2\x82\xac"; /* "ab€" */

	(void)state;
	assert_int_equal(utf8_prefix(s, 5, 10), 5);
	assert_int_equal(utf8_prefix(s, 5, 5), 5);
	assert_int_equal(utf8_prefix(s, 5, 4), 2);
	assert_int_equal(utf8_prefix(s, 5, 3), 2);
	assert_int_equal(utf8_prefix(s, 5, 2), 2);
	assert_int_equal(utf8_prefix(s, 5, 1), 1);
	assert_int_equal(utf8_prefix(s, 5, 0), 0);
	/* Invalid bytes are cut anywhere. */
	assert_int_equal(utf8_prefix("\x80\x80\x80", 3, 2), 2);
}

static void test_decode(void **state)
{
	const unsigned char *u;
	uint32_t cp = 0;

	(void)state;
	u = (const unsigned char *)"A";
	assert_int_equal(utf8_decode(u, 1, &cp), 1);
	assert_int_equal(cp, 0x41);
	u = (const unsigned char *)"\xc3\xbc"; /* ü */
	assert_int_equal(utf8_decode(u, 2, &cp), 2);
	assert_int_equal(cp, 0xfc);
	u = (const unsigned char *)"\xe6\x97\xa5"; /* 日 */
	assert_int_equal(utf8_decode(u, 3, &cp), 3);
	assert_int_equal(cp, 0x65e5);
	u = (const unsigned char *)"\xef\xbf\xbf"; /* U+FFFF */
	assert_int_equal(utf8_decode(u, 3, &cp), 3);
	assert_int_equal(cp, 0xffff);
	u = (const unsigned char *)"\xf0\x9f\x98\x80"; /* U+1F600 */
	assert_int_equal(utf8_decode(u, 4, &cp), 4);
	assert_int_equal(cp, 0x1f600);
	/* truncated, overlong, surrogate: not decoded */
	assert_int_equal(utf8_decode(u, 3, &cp), 0);
	assert_int_equal(utf8_decode((const unsigned char *)"\xc0\x80", 2, &cp),
			 0);
	assert_int_equal(
	    utf8_decode((const unsigned char *)"\xed\xa0\x80", 3, &cp), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_valid_passes),
	    cmocka_unit_test(test_invalid_replaced),
	    cmocka_unit_test(test_prefix),
	    cmocka_unit_test(test_decode),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
