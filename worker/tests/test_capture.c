/* test_capture.c -- head and tail capture: small outputs kept whole, the
 * middle of large ones dropped and counted, the ring wrapping at every
 * offset, UTF-8 repair at the cut edges, and the one-line tail. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "capture.h"

static void test_small_output_whole(void **state)
{
	struct capture c;
	char *text;
	size_t len;

	(void)state;
	capture_init(&c, 16, 16);
	text = capture_text(&c, &len);
	assert_string_equal(text, "");
	assert_int_equal(len, 0);
	free(text);
	capture_append(&c, "hello ", 6);
	capture_append(&c, "world", 5);
	assert_int_equal(capture_dropped(&c), 0);
	text = capture_text(&c, &len);
	assert_string_equal(text, "hello world");
	free(text);
	/* Head full, tail holding the rest: nothing dropped yet. */
	capture_append(&c, "0123456789abcdefghij", 20);
	assert_int_equal(capture_dropped(&c), 0);
	text = capture_text(&c, NULL);
	assert_string_equal(text, "hello world0123456789abcdefghij");
	free(text);
	capture_release(&c);
}

static void test_large_output_dropped(void **state)
{
	struct capture c;
	char chunk[1000], want[128];
	char *text;
	size_t i;

	(void)state;
	capture_init(&c, 10, 10);
	memset(chunk, 'x', sizeof(chunk));
	capture_append(&c, "HEADHEAD__", 10);
	for (i = 0; i < 3000; i++)
		capture_append(&c, chunk, sizeof(chunk));
	capture_append(&c, "__TAILTAIL", 10);
	assert_int_equal(c.total, 3000020);
	assert_int_equal(capture_dropped(&c), 3000000);
	text = capture_text(&c, NULL);
	snprintf(want, sizeof(want),
		 "HEADHEAD__\n[... 3000000 bytes dropped ...]\n__TAILTAIL");
	assert_string_equal(text, want);
	free(text);
	capture_release(&c);
}

/* Appends of every size land in the ring in order. */
static void test_ring_wraps(void **state)
{
	struct capture c;
	char data[200], *text;
	size_t step, off, n, len;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(data); i++)
		data[i] = (char)('a' + i % 26);
	for (step = 1; step <= 23; step++) {
		capture_init(&c, 4, 7);
		for (off = 0; off < sizeof(data); off += n) {
			n = step;
			if (off + n > sizeof(data))
				n = sizeof(data) - off;
			capture_append(&c, data + off, n);
		}
		text = capture_text(&c, &len);
		/* Head: the first 4 bytes; tail: the last 7. */
		assert_memory_equal(text, data, 4);
		assert_memory_equal(text + len - 7, data + sizeof(data) - 7, 7);
		assert_non_null(strstr(text, "[... 189 bytes dropped ...]"));
		free(text);
		capture_release(&c);
	}
}

static void test_utf8_cut_and_nul(void **state)
{
	struct capture c;
	char *text;

	(void)state;
	/* "é" is c3 a9: the head cuts it in half. */
	capture_init(&c, 3, 64);
	capture_append(&c, "ab\xc3\xa9z\0y", 7);
	text = capture_text(&c, NULL);
	/* The split halves cannot be rejoined across the parts; with
	 * nothing dropped they are adjacent again and stay valid. */
	assert_string_equal(text, "ab\xc3\xa9z\xef\xbf\xbdy");
	free(text);
	capture_release(&c);

	capture_init(&c, 3, 2);
	capture_append(&c, "ab\xc3\xa9-----\xc3\xa9", 11);
	text = capture_text(&c, NULL);
	/* Head "ab\xc3" (cut), tail "\xc3\xa9" (whole). */
	assert_string_equal(text, "ab\xef\xbf\xbd\n[... 6 bytes dropped "
				  "...]\n\xc3\xa9");
	free(text);
	capture_release(&c);
}

static void test_tail_line(void **state)
{
	static const char *const skip[] = {"===", NULL};
	struct capture c;
	const char *out = "lots\nof\nearlier\noutput\n\n"
			  "ERROR: file or directory not found: x.py\r\n"
			  "=========== banner ===========\n"
			  "no tests ran in 0.01s\n\n";
	char *line;

	(void)state;
	capture_init(&c, 1024, 1024);
	line = capture_tail_line(&c, 3, 100, NULL);
	assert_string_equal(line, "");
	free(line);
	capture_append(&c, out, strlen(out));
	line = capture_tail_line(&c, 2, 1000, skip);
	assert_string_equal(line, "ERROR: file or directory not found: x.py "
				  "| no tests ran in 0.01s");
	free(line);
	line = capture_tail_line(&c, 1, 1000, NULL);
	assert_string_equal(line, "no tests ran in 0.01s");
	free(line);
	line = capture_tail_line(&c, 3, 10, NULL);
	assert_int_equal(strlen(line), 10);
	free(line);
	capture_release(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_small_output_whole),
	    cmocka_unit_test(test_large_output_dropped),
	    cmocka_unit_test(test_ring_wraps),
	    cmocka_unit_test(test_utf8_cut_and_nul),
	    cmocka_unit_test(test_tail_line),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
