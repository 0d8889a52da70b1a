/* test_buf.c -- the capped buffer: growth, the cap at its exact boundary,
 * failed appends leaving the buffer unchanged, detach. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "buf.h"

static void test_append_and_grow(void **state)
{
	struct buf b;
	size_t i;

	(void)state;
	buf_init(&b, 0);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(buf_appendstr(&b, "hello"), 0);
	assert_int_equal(buf_append(&b, ", \0x", 4), 0);
	assert_int_equal(b.len, 9);
	assert_memory_equal(b.data, "hello, \0x", 10); /* NUL-terminated */
	for (i = 0; i < 100000; i++)
		assert_int_equal(buf_append(&b, "0123456789", 10), 0);
	assert_int_equal(b.len, 9 + 1000000);
	assert_true(b.cap > b.len);
	assert_int_equal(b.data[b.len], '\0');
	assert_memory_equal(b.data + b.len - 10, "0123456789", 10);
	buf_release(&b);
	assert_null(b.data);
}

static void test_cap(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 10);
	assert_int_equal(buf_append(&b, "12345", 5), 0);
	assert_int_equal(buf_append(&b, "678901", 6), -1);
	assert_int_equal(b.len, 5);
	assert_string_equal(b.data, "12345");
	assert_int_equal(buf_append(&b, "67890", 5), 0);
	assert_int_equal(b.len, 10);
	assert_string_equal(b.data, "1234567890");
	assert_true(b.cap <= 11);
	assert_int_equal(buf_append(&b, "x", 1), -1);
	assert_int_equal(buf_append(&b, "", 0), 0);
	assert_int_equal(buf_printf(&b, "%d", 1), -1);
	assert_string_equal(b.data, "1234567890");
	/* A huge length cannot wrap around the checks. */
	assert_int_equal(buf_append(&b, "x", SIZE_MAX), -1);
	buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_string_equal(b.data, "");
	assert_int_equal(buf_printf(&b, "%s-%03d", "ab", 7), 0);
	assert_string_equal(b.data, "ab-007");
	assert_int_equal(buf_printf(&b, "%s", "12345"), -1);
	assert_string_equal(b.data, "ab-007");
	assert_int_equal(buf_printf(&b, "%s", "1234"), 0);
	assert_string_equal(b.data, "ab-0071234");
	buf_release(&b);
}

static void test_unlimited_size_max(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 0);
	assert_int_equal(buf_append(&b, "ab", 2), 0);
	assert_int_equal(buf_append(&b, "x", SIZE_MAX - 1), -1);
	assert_int_equal(b.len, 2);
	buf_release(&b);
}

static void test_detach(void **state)
{
	struct buf b;
	size_t len = 99;
	char *s;

	(void)state;
	buf_init(&b, 100);
	s = buf_detach(&b, &len);
	assert_string_equal(s, "");
	assert_int_equal(len, 0);
	free(s);
	assert_int_equal(buf_printf(&b, "%d items", 42), 0);
	s = buf_detach(&b, &len);
	assert_string_equal(s, "42 items");
	assert_int_equal(len, 8);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.max, 100);
	free(s);
	/* usable again after detaching */
	assert_int_equal(buf_appendstr(&b, "again"), 0);
	s = buf_detach(&b, NULL);
	assert_string_equal(s, "again");
	free(s);
}

static void test_read_file(void **state)
{
	char path[] = "/tmp/test_buf_XXXXXX";
	char err[256];
	struct buf b;
	FILE *f;
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fputs("0123456789", f);
	fclose(f);

	buf_init(&b, 10);
	assert_int_equal(buf_read_file(&b, path, err, sizeof(err)), 0);
	assert_int_equal(b.len, 10);
	assert_string_equal(b.data, "0123456789");
	buf_release(&b);

	buf_init(&b, 9);
	assert_int_equal(buf_read_file(&b, path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "larger than the 9 bytes allowed"));
	buf_release(&b);

	unlink(path);
	buf_init(&b, 0);
	assert_int_equal(buf_read_file(&b, path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "cannot open: No such file"));
	buf_release(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_append_and_grow),
	    cmocka_unit_test(test_cap),
	    cmocka_unit_test(test_unlimited_size_max),
	    cmocka_unit_test(test_detach),
	    cmocka_unit_test(test_read_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
