/* test_events.c -- runner event lines: parsing and its errors, lines split
 * across reads, overlong lines dropped without losing the next one, the
 * running test, repeated finishes, capped strings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "events.h"

struct seen {
	unsigned starts;
	unsigned finishes;
	unsigned errors;
	char last_error[256];
};

static void on_event(void *arg, const struct runner_event *ev,
		     const char *error)
{
	struct seen *s = arg;

	if (error) {
		s->errors++;
		snprintf(s->last_error, sizeof(s->last_error), "%s", error);
		return;
	}
	if (ev->kind == EVENT_START)
		s->starts++;
	else
		s->finishes++;
}

static void test_parse_finish(void **state)
{
	const char *line =
	    "{\"e\": \"finish\", \"id\": \"t.py::x[1]\", \"outcome\": "
	    "\"failed\", \"dur\": 0.25, \"msg\": \"assert 1 == 2\\nmore\", "
	    "\"details\": \"long\\ntext\", \"file\": \"t.py\", \"line\": 12, "
	    "\"future\": [1, 2]}";
	struct runner_event ev;
	char err[256];

	(void)state;
	assert_int_equal(event_parse(line, strlen(line), &ev, err, sizeof(err)),
			 0);
	assert_int_equal(ev.kind, EVENT_FINISH);
	assert_string_equal(ev.test.id, "t.py::x[1]");
	assert_int_equal(ev.test.outcome, OUTCOME_FAILED);
	assert_true(ev.test.duration_s > 0.2499 && ev.test.duration_s < 0.2501);
	assert_string_equal(ev.test.message, "assert 1 == 2");
	assert_string_equal(ev.test.details, "long\ntext");
	assert_string_equal(ev.test.file, "t.py");
	assert_int_equal(ev.test.line, 12);
	runner_event_release(&ev);

	line = "{\"e\":\"start\",\"id\":\"a::b\"}";
	assert_int_equal(event_parse(line, strlen(line), &ev, err, sizeof(err)),
			 0);
	assert_int_equal(ev.kind, EVENT_START);
	assert_string_equal(ev.test.id, "a::b");
	assert_null(ev.test.message);
	runner_event_release(&ev);

	/* Optional fields absent or null; a negative duration is 0. */
	line = "{\"e\":\"finish\",\"id\":\"a\",\"outcome\":\"xpassed\","
	       "\"dur\":-1,\"msg\":null,\"line\":0}";
	assert_int_equal(event_parse(line, strlen(line), &ev, err, sizeof(err)),
			 0);
	assert_int_equal(ev.test.outcome, OUTCOME_XPASSED);
	assert_true(ev.test.duration_s == 0);
	assert_null(ev.test.message);
	assert_int_equal(ev.test.line, 0);
	runner_event_release(&ev);
}

static void expect_error(const char *line, const char *needle)
{
	struct runner_event ev;
	char err[256];

	assert_int_equal(event_parse(line, strlen(line), &ev, err, sizeof(err)),
			 -1);
	if (!strstr(err, needle))
		fail_msg("error \"%s\" lacks \"%s\"", err, needle);
	assert_null(ev.test.id);
}

static void test_parse_errors(void **state)
{
	(void)state;
	expect_error("not json", "bad json");
	expect_error("[1,2]", "not a json object");
	expect_error("{\"id\":\"a\"}", "missing string \"e\"");
	expect_error("{\"e\":\"boom\",\"id\":\"a\"}", "unknown event");
	expect_error("{\"e\":\"start\"}", "missing string \"id\"");
	expect_error("{\"e\":\"start\",\"id\":\"\"}", "missing string \"id\"");
	expect_error("{\"e\":\"finish\",\"id\":\"a\"}", "outcome");
	expect_error("{\"e\":\"finish\",\"id\":\"a\",\"outcome\":\"weird\"}",
		     "bad outcome \"weird\"");
	expect_error("{\"e\":\"finish\",\"id\":\"a\",\"outcome\":\"passed\","
		     "\"dur\":\"1\"}",
		     "\"dur\"");
	expect_error("{\"e\":\"finish\",\"id\":\"a\",\"outcome\":\"passed\","
		     "\"line\":1.5}",
		     "\"line\"");
	expect_error("{\"e\":\"finish\",\"id\":\"a\",\"outcome\":\"passed\","
		     "\"msg\":3}",
		     "\"msg\"");
	/* jansson refuses NUL inside strings. */
	expect_error("{\"e\":\"start\",\"id\":\"a\\u0000b\"}", "bad json");
}

static void test_caps(void **state)
{
	size_t n = 3 * EVENTS_MAX_DETAILS, i;
	struct runner_event ev;
	struct buf b;
	char err[256];

	(void)state;
	buf_init(&b, 0);
	buf_appendstr(&b, "{\"e\":\"finish\",\"id\":\"a\",\"outcome\":"
			  "\"failed\",\"msg\":\"");
	for (i = 0; i < 5000; i++)
		buf_append(&b, "m", 1);
	buf_appendstr(&b, "\",\"details\":\"");
	/* Two-byte characters so the cap falls inside one. */
	for (i = 0; i < n / 2; i++)
		buf_append(&b, "\xc3\xa9", 2);
	buf_appendstr(&b, "\"}");
	assert_int_equal(event_parse(b.data, b.len, &ev, err, sizeof(err)), 0);
	assert_int_equal(strlen(ev.test.message), EVENTS_MAX_MSG);
	assert_true(strlen(ev.test.details) <= EVENTS_MAX_DETAILS);
	assert_true(strlen(ev.test.details) >= EVENTS_MAX_DETAILS - 1);
	assert_int_equal(strlen(ev.test.details) % 2, 0);
	runner_event_release(&ev);
	buf_release(&b);
}

static void test_feed_split_and_running(void **state)
{
	const char *stream =
	    "{\"e\":\"start\",\"id\":\"t::a\"}\n"
	    "{\"e\":\"finish\",\"id\":\"t::a\",\"outcome\":\"passed\"}\n"
	    "\n"
	    "{\"e\":\"start\",\"id\":\"t::b\"}\r\n"
	    "garbage\n"
	    "{\"e\":\"finish\",\"id\":\"t::b\",\"outcome\":\"failed\"}\n"
	    "{\"e\":\"start\",\"id\":\"t::c\"}\n";
	size_t len = strlen(stream), step, off, n;
	struct test_result *r;
	struct events e;
	struct seen s;

	(void)state;
	/* Every chunk size gives the same result. */
	for (step = 1; step <= len; step++) {
		memset(&s, 0, sizeof(s));
		events_init(&e);
		for (off = 0; off < len; off += n) {
			n = len - off < step ? len - off : step;
			events_feed(&e, stream + off, n, on_event, &s);
		}
		events_end(&e, on_event, &s);
		assert_int_equal(s.starts, 3);
		assert_int_equal(s.finishes, 2);
		assert_int_equal(s.errors, 1);
		assert_string_equal(events_running(&e), "t::c");
		r = events_take_results(&e, &n);
		assert_int_equal(n, 2);
		assert_string_equal(r[0].id, "t::a");
		assert_int_equal(r[1].outcome, OUTCOME_FAILED);
		test_result_release(&r[0]);
		test_result_release(&r[1]);
		free(r);
		events_release(&e);
	}
}

/* events_only: the other ids' events are counted and otherwise ignored. */
static void test_only(void **state)
{
	char *want[] = {"t::b", "t::a"};
	const char *stream =
	    "{\"e\":\"start\",\"id\":\"t::a\"}\n"
	    "{\"e\":\"finish\",\"id\":\"t::a\",\"outcome\":\"passed\"}\n"
	    "{\"e\":\"start\",\"id\":\"t::x\"}\n"
	    "{\"e\":\"finish\",\"id\":\"t::x\",\"outcome\":\"failed\"}\n"
	    "{\"e\":\"start\",\"id\":\"t::b\"}\n"
	    "{\"e\":\"start\",\"id\":\"t::y\"}\n";
	struct test_result *r;
	struct events e;
	struct seen s;
	size_t n;

	(void)state;
	memset(&s, 0, sizeof(s));
	events_init(&e);
	events_only(&e, want, 2);
	events_feed(&e, stream, strlen(stream), on_event, &s);
	events_end(&e, on_event, &s);
	assert_int_equal(s.starts, 2);
	assert_int_equal(s.finishes, 1);
	assert_int_equal(e.ignored, 3);
	assert_int_equal(e.finishes, 1);
	/* The last start of a wanted test is what is running. */
	assert_string_equal(events_running(&e), "t::b");
	r = events_take_results(&e, &n);
	assert_int_equal(n, 1);
	assert_string_equal(r[0].id, "t::a");
	test_result_release(&r[0]);
	free(r);
	events_release(&e);
}

static void test_overlong_line_dropped(void **state)
{
	const char *next =
	    "{\"e\":\"finish\",\"id\":\"ok\",\"outcome\":\"passed\"}";
	char *chunk = malloc(64 * 1024);
	struct events e;
	struct seen s;
	size_t i, n;
	struct test_result *r;

	(void)state;
	memset(&s, 0, sizeof(s));
	memset(chunk, 'x', 64 * 1024);
	events_init(&e);
	events_feed(&e, "{\"e\":\"start\",\"id\":\"", 19, on_event, &s);
	for (i = 0; i < 20; i++) /* 1.25 MiB, no newline */
		events_feed(&e, chunk, 64 * 1024, on_event, &s);
	assert_int_equal(s.errors, 1);
	assert_non_null(strstr(s.last_error, "longer than"));
	events_feed(&e, "\"}\n", 3, on_event, &s);
	events_feed(&e, next, strlen(next), on_event, &s);
	/* The last line has no newline: events_end takes it. */
	assert_int_equal(s.finishes, 0);
	events_end(&e, on_event, &s);
	assert_int_equal(s.finishes, 1);
	assert_int_equal(s.starts, 0);
	assert_int_equal(e.dropped, 1);
	r = events_take_results(&e, &n);
	assert_int_equal(n, 1);
	assert_string_equal(r[0].id, "ok");
	test_result_release(&r[0]);
	free(r);
	events_release(&e);
	free(chunk);
}

static void test_repeated_finish_replaces(void **state)
{
	struct events e;
	struct test_result *r;
	char line[128];
	size_t n, i;

	(void)state;
	events_init(&e);
	/* Enough ids to grow the index a few times. */
	for (i = 0; i < 500; i++) {
		snprintf(line, sizeof(line),
			 "{\"e\":\"finish\",\"id\":\"t%zu\",\"outcome\":"
			 "\"failed\",\"msg\":\"first\"}\n",
			 i);
		events_feed(&e, line, strlen(line), NULL, NULL);
	}
	snprintf(line, sizeof(line),
		 "{\"e\":\"finish\",\"id\":\"t7\","
		 "\"outcome\":\"passed\"}\n");
	events_feed(&e, line, strlen(line), NULL, NULL);
	r = events_take_results(&e, &n);
	assert_int_equal(n, 500);
	assert_string_equal(r[7].id, "t7");
	assert_int_equal(r[7].outcome, OUTCOME_PASSED);
	assert_null(r[7].message);
	assert_int_equal(r[8].outcome, OUTCOME_FAILED);
	for (i = 0; i < n; i++)
		test_result_release(&r[i]);
	free(r);
	events_release(&e);
}

/* Past the soft budget details go; the outcomes stay. */
static void test_budget(void **state)
{
	struct events e;
	struct test_result *r;
	struct buf b;
	size_t n, i, with_details = 0;

	(void)state;
	events_init(&e);
	for (i = 0; i < 600; i++) {
		buf_init(&b, 0);
		buf_printf(&b,
			   "{\"e\":\"finish\",\"id\":\"t%zu\","
			   "\"outcome\":\"failed\",\"details\":\"",
			   i);
		while (b.len < 60000)
			buf_appendstr(&b, "0123456789");
		buf_appendstr(&b, "\"}\n");
		events_feed(&e, b.data, b.len, NULL, NULL);
		buf_release(&b);
	}
	assert_true(e.bytes <= EVENTS_SOFT_BYTES);
	r = events_take_results(&e, &n);
	assert_int_equal(n, 600);
	for (i = 0; i < n; i++) {
		assert_int_equal(r[i].outcome, OUTCOME_FAILED);
		if (r[i].details)
			with_details++;
		test_result_release(&r[i]);
	}
	free(r);
	assert_true(with_details > 300 && with_details < 600);
	events_release(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_finish),
	    cmocka_unit_test(test_parse_errors),
	    cmocka_unit_test(test_caps),
	    cmocka_unit_test(test_feed_split_and_running),
	    cmocka_unit_test(test_only),
	    cmocka_unit_test(test_overlong_line_dropped),
	    cmocka_unit_test(test_repeated_finish_replaces),
	    cmocka_unit_test(test_budget),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
