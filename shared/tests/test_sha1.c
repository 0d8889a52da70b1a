/* test_sha1.c -- SHA-1 against the FIPS 180 test vectors, fed whole and
 * in odd-sized pieces. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sha1.h"

static void test_vectors(void **state)
{
	static const char *const in[] = {
	    "",
	    "abc",
	    "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
	    /* 55, 56 and 64 bytes: the padding boundaries */
	    "0123456789012345678901234567890123456789012345678901234",
	    "01234567890123456789012345678901234567890123456789012345",
	    "0123456789012345678901234567890123456789012345678901234567890123",
	};
	static const char *const want[] = {
	    "da39a3ee5e6b4b0d3255bfef95601890afd80709",
	    "a9993e364706816aba3e25717850c26c9cd0d89d",
	    "84983e441c3bd26ebaae4aa1f95129e5e54670f1",
	    "9f3a4ce7f66b1b74c34da2c5d732c39f81e0f8df",
	    "0a40b8fbdaafb7c29651618ac15d27e772287130",
	    "cf0800f7644ace3cb4c3fa33388d3ba0ea3c8b6e",
	};
	char hex[SHA1_HEX_LEN + 1];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		sha1_hex(in[i], strlen(in[i]), hex);
		assert_string_equal(hex, want[i]);
	}
}

static void test_million_a_in_pieces(void **state)
{
	unsigned char d[SHA1_DIGEST_LEN];
	static const unsigned char want[SHA1_DIGEST_LEN] = {
	    0x34, 0xaa, 0x97, 0x3c, 0xd4, 0xc4, 0xda, 0xa4, 0xf6, 0x1e,
	    0xeb, 0x2b, 0xdb, 0xad, 0x27, 0x31, 0x65, 0x34, 0x01, 0x6f};
	char chunk[997];
	struct sha1 s;
	size_t left = 1000000, n;

	(void)state;
	memset(chunk, 'a', sizeof(chunk));
	sha1_init(&s);
	while (left > 0) {
		n = left < sizeof(chunk) ? left : sizeof(chunk);
		sha1_update(&s, chunk, n);
		left -= n;
	}
	sha1_final(&s, d);
	assert_memory_equal(d, want, sizeof(want));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_vectors),
	    cmocka_unit_test(test_million_a_in_pieces),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
