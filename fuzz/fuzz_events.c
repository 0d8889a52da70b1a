/* fuzz_events.c -- libFuzzer target for what the worker reads from a
 * runner: the event lines of fd 3 (worker/events.c) and the captured
 * output (worker/capture.c). The input is fed to both, in chunks whose
 * sizes come from the first byte. Every folded result must be sane (an id,
 * a known outcome, a finite non-negative duration, a one-line capped
 * message, capped details), and the captured text must be valid UTF-8
 * without NUL and within its caps. Sanitizers catch the rest.
 *
 * Build and run without the Makefile (from the repository root):
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE \
 *       -Ishared -Iworker fuzz/fuzz_events.c worker/events.c \
 *       worker/capture.c worker/utf8.c shared/proto.c shared/buf.c \
 *       shared/xmalloc.c -ljansson -lmsgpackc -lm -o build/fuzz_events
 *   mkdir -p build/fuzz-corpus-events
 *   build/fuzz_events -max_total_time=60 -max_len=65536 \
 *       build/fuzz-corpus-events */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capture.h"
#include "events.h"
#include "utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_result(const struct test_result *r)
{
	if (!r->id || !r->id[0] || strlen(r->id) > EVENTS_MAX_ID)
		abort();
	if ((unsigned)r->outcome >= OUTCOME_COUNT)
		abort();
	if (!isfinite(r->duration_s) || r->duration_s < 0)
		abort();
	if (r->message && (strlen(r->message) > EVENTS_MAX_MSG ||
			   strchr(r->message, '\n')))
		abort();
	if (r->details && strlen(r->details) > EVENTS_MAX_DETAILS)
		abort();
	if (r->file && strlen(r->file) > EVENTS_MAX_FILE)
		abort();
}

static void on_event(void *arg, const struct runner_event *ev,
		     const char *error)
{
	(void)arg;
	if (ev)
		check_result(&ev->test);
	else if (!error || strncmp(error, "events: ", 8) != 0)
		abort();
}

static int valid_utf8(const char *s, size_t len)
{
	size_t i = 0, n;

	while (i < len) {
		n = utf8_seqlen((const unsigned char *)s + i, len - i);
		if (n == 0)
			return 0;
		i += n;
	}
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct events e;
	struct capture c;
	struct test_result *res;
	size_t step, off, n, nres, i, len;
	char *text, *line;

	if (size == 0)
		return 0;
	step = (size_t)data[0] % 64 + 1;
	data++;
	size--;
	events_init(&e);
	capture_init(&c, 100, 60);
	for (off = 0; off < size; off += n) {
		n = size - off < step ? size - off : step;
		events_feed(&e, (const char *)data + off, n, on_event, NULL);
		capture_append(&c, data + off, n);
	}
	events_end(&e, on_event, NULL);
	res = events_take_results(&e, &nres);
	for (i = 0; i < nres; i++) {
		check_result(&res[i]);
		test_result_release(&res[i]);
	}
	free(res);
	events_release(&e);

	text = capture_text(&c, &len);
	if (strlen(text) != len || !valid_utf8(text, len))
		abort();
	if (capture_dropped(&c) == 0 && len < size)
		abort(); /* nothing dropped: every byte is there */
	free(text);
	line = capture_tail_line(&c, 3, 50, NULL);
	if (strlen(line) > 50 || strchr(line, '\n') ||
	    !valid_utf8(line, strlen(line)))
		abort();
	free(line);
	capture_release(&c);
	return 0;
}
