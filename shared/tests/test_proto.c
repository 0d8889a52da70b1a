/* test_proto.c -- the msgpack codec: round trips of every message kind, and
 * a decoder that refuses hostile input cleanly (truncation at every length,
 * oversized counts, wrong types, versions, trailing bytes, nesting). Inputs
 * are hand-built with msgpack-c's packer or written out byte by byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <math.h>
#include <msgpack.h>

#include "proto.h"

#define ID_WEIRD "tests/tëst_ü.py::test_x[a\"b\\c d\te-\xe2\x9c\x93-::[]]"

/* ---- builders ---- */

struct pk {
	msgpack_sbuffer sb;
	msgpack_packer p;
};

static void pk_init(struct pk *b)
{
	msgpack_sbuffer_init(&b->sb);
	msgpack_packer_init(&b->p, &b->sb, msgpack_sbuffer_write);
}

static void pk_release(struct pk *b)
{
	msgpack_sbuffer_destroy(&b->sb);
}

static void pk_str(struct pk *b, const char *s)
{
	msgpack_pack_str(&b->p, strlen(s));
	msgpack_pack_str_body(&b->p, s, strlen(s));
}

static void pk_kstr(struct pk *b, const char *k, const char *v)
{
	pk_str(b, k);
	pk_str(b, v);
}

static void pk_raw(struct pk *b, const void *data, size_t len)
{
	msgpack_sbuffer_write(&b->sb, data, len);
}

/* The head of a task: a map of n entries, then v, k and the six required
 * strings plus att (9 entries). The caller adds n - 9 more. */
static void pk_task_head(struct pk *b, size_t n)
{
	msgpack_pack_map(&b->p, n);
	pk_str(b, "v");
	msgpack_pack_uint8(&b->p, 1);
	pk_kstr(b, "k", "task");
	pk_kstr(b, "run", "r");
	pk_kstr(b, "id", "t1");
	pk_str(b, "att");
	msgpack_pack_uint8(&b->p, 1);
	pk_kstr(b, "suite", "s");
	pk_kstr(b, "phase", "p");
	pk_kstr(b, "runner", "pytest");
	pk_kstr(b, "queue", "default");
}

static void pk_tests1(struct pk *b)
{
	pk_str(b, "tests");
	msgpack_pack_array(&b->p, 1);
	pk_str(b, "a.py::t");
}

/* ---- fixtures ---- */

static char *task_tests[] = {"tests/test_a.py::test_one", ID_WEIRD, ""};
static char *task_argv[] = {"make", "check", "--", "-x"};
static struct kv task_env[] = {{"A", "1"}, {"EMPTY", ""}, {"UNI", "ä=ö"}};

static struct task full_task(void)
{
	struct task t = {
	    .run = "20261121-0542-k3f9",
	    .id = "t00042",
	    .attempt = 3,
	    .suite = "unit",
	    .phase = "ph€se",
	    .runner = "command",
	    .queue = "browser",
	    .cwd = "/src/app dir",
	    .mark = "not slow",
	    .kexpr = "test_a or \"b\"",
	    .grep = "@smoke",
	    .timeout_s = 4000000000u,
	    .tests = task_tests,
	    .ntests = 3,
	    .argv = task_argv,
	    .nargv = 4,
	    .env = task_env,
	    .nenv = 3,
	    .reruns = 2,
	    .rerun = 1,
	    .retried_for = "429 Too Many Requests",
	};
	return t;
}

static void assert_str_eq_or_null(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		assert_ptr_equal(a, b);
	else
		assert_string_equal(a, b);
}

static void assert_task_equal(const struct task *a, const struct task *b)
{
	size_t i;

	assert_string_equal(a->run, b->run);
	assert_string_equal(a->id, b->id);
	assert_int_equal(a->attempt, b->attempt);
	assert_string_equal(a->suite, b->suite);
	assert_string_equal(a->phase, b->phase);
	assert_string_equal(a->runner, b->runner);
	assert_string_equal(a->queue, b->queue);
	assert_str_eq_or_null(a->cwd, b->cwd);
	assert_str_eq_or_null(a->mark, b->mark);
	assert_str_eq_or_null(a->kexpr, b->kexpr);
	assert_str_eq_or_null(a->grep, b->grep);
	assert_int_equal(a->timeout_s, b->timeout_s);
	assert_int_equal(a->reruns, b->reruns);
	assert_int_equal(a->rerun, b->rerun);
	assert_str_eq_or_null(a->retried_for, b->retried_for);
	assert_int_equal(a->keep_artifacts, b->keep_artifacts);
	assert_int_equal(a->ntests, b->ntests);
	for (i = 0; i < a->ntests; i++)
		assert_string_equal(a->tests[i], b->tests[i]);
	assert_int_equal(a->nargv, b->nargv);
	for (i = 0; i < a->nargv; i++)
		assert_string_equal(a->argv[i], b->argv[i]);
	assert_int_equal(a->nenv, b->nenv);
	for (i = 0; i < a->nenv; i++) {
		assert_string_equal(a->env[i].key, b->env[i].key);
		assert_string_equal(a->env[i].value, b->env[i].value);
	}
}

static struct test_result result_tests[] = {
    {.id = "a.py::ok", .outcome = OUTCOME_PASSED, .duration_s = 0.25},
    {.id = ID_WEIRD,
     .outcome = OUTCOME_FAILED,
     .duration_s = 1e-9,
     .message = "assert 1 == 2",
     .details = "Traceback:\n  line 1\n\tline 2 ✓",
     .file = "tests/tëst_ü.py",
     .line = 4294967295u},
    {.id = "c", .outcome = OUTCOME_XPASSED},
    {.id = "d", .outcome = OUTCOME_FLAKY, .duration_s = 12345.5},
};
static char *result_unfinished[] = {"e.py::never", ID_WEIRD};

static struct task_result full_result(void)
{
	struct task_result r = {
	    .run = "run-1",
	    .task = "t00001",
	    .attempt = 2,
	    .worker = "host-3/slot-1",
	    .suite = "unit",
	    .phase = "default",
	    .status = TASK_CRASHED,
	    .exit_code = -1,
	    .term_signal = 9,
	    .started_at = 1763700000.123456,
	    .duration_s = 3.5,
	    .message = "killed by signal 9",
	    .output = "line\n\x01\x7f tail",
	    .running = ID_WEIRD,
	    .tests = result_tests,
	    .ntests = 4,
	    .unfinished = result_unfinished,
	    .nunfinished = 2,
	    .retrying = result_unfinished,
	    .nretrying = 1,
	    .retry_reason = "runner crashed (SIGKILL)",
	    .retried_for = "exceeded quota",
	    .rerun = 1,
	};
	return r;
}

static void assert_result_equal(const struct task_result *a,
				const struct task_result *b)
{
	size_t i;

	assert_string_equal(a->run, b->run);
	assert_string_equal(a->task, b->task);
	assert_int_equal(a->attempt, b->attempt);
	assert_string_equal(a->worker, b->worker);
	assert_string_equal(a->suite, b->suite);
	assert_string_equal(a->phase, b->phase);
	assert_int_equal(a->status, b->status);
	assert_int_equal(a->exit_code, b->exit_code);
	assert_int_equal(a->term_signal, b->term_signal);
	assert_true(a->started_at == b->started_at);
	assert_true(a->duration_s == b->duration_s);
	assert_str_eq_or_null(a->message, b->message);
	assert_str_eq_or_null(a->output, b->output);
	assert_str_eq_or_null(a->running, b->running);
	assert_int_equal(a->ntests, b->ntests);
	for (i = 0; i < a->ntests; i++) {
		const struct test_result *x = &a->tests[i], *y = &b->tests[i];

		assert_string_equal(x->id, y->id);
		assert_int_equal(x->outcome, y->outcome);
		assert_true(x->duration_s == y->duration_s);
		assert_str_eq_or_null(x->message, y->message);
		assert_str_eq_or_null(x->details, y->details);
		assert_str_eq_or_null(x->file, y->file);
		assert_int_equal(x->line, y->line);
	}
	assert_int_equal(a->nunfinished, b->nunfinished);
	for (i = 0; i < a->nunfinished; i++)
		assert_string_equal(a->unfinished[i], b->unfinished[i]);
	assert_int_equal(a->nretrying, b->nretrying);
	for (i = 0; i < a->nretrying; i++)
		assert_string_equal(a->retrying[i], b->retrying[i]);
	assert_str_eq_or_null(a->retry_reason, b->retry_reason);
	assert_str_eq_or_null(a->retried_for, b->retried_for);
	assert_int_equal(a->rerun, b->rerun);
}

static void assert_task_empty(const struct task *t)
{
	static const struct task zero;

	assert_memory_equal(t, &zero, sizeof(zero));
}

/* Decodes buf as a task expecting failure, and checks the message. */
static void expect_task_error(const char *buf, size_t len, const char *want)
{
	struct task t;
	char err[512] = "";

	assert_int_equal(proto_decode_task(buf, len, &t, err, sizeof(err)), -1);
	assert_task_empty(&t);
	if (strstr(err, want) == NULL)
		fail_msg("error \"%s\" does not contain \"%s\"", err, want);
	assert_true(strncmp(err, "proto: ", 7) == 0);
	assert_null(strchr(err, '\n'));
}

/* ---- round trips ---- */

static void test_task_roundtrip_full(void **state)
{
	struct task t = full_task(), d;
	enum proto_kind kind;
	char err[256];
	char *buf;
	size_t len;

	(void)state;
	proto_encode_task(&t, &buf, &len);
	assert_int_equal(proto_peek_kind(buf, len, &kind, err, sizeof(err)), 0);
	assert_int_equal(kind, PROTO_TASK);
	if (proto_decode_task(buf, len, &d, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_task_equal(&t, &d);
	task_release(&d);
	assert_task_empty(&d);
	free(buf);
}

static void test_task_roundtrip_minimal(void **state)
{
	struct task t = {.run = "r",
			 .id = "t",
			 .attempt = 1,
			 .suite = "s",
			 .phase = "p",
			 .runner = "pytest",
			 .queue = "q"};
	struct task d;
	char err[256];
	char *buf;
	size_t len;

	(void)state;
	proto_encode_task(&t, &buf, &len);
	if (proto_decode_task(buf, len, &d, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_task_equal(&t, &d);
	assert_null(d.cwd);
	assert_null(d.mark);
	assert_null(d.env);
	assert_null(d.argv);
	assert_int_equal(d.ntests, 0);
	task_release(&d);
	free(buf);
}

static void test_result_roundtrip_full(void **state)
{
	struct task_result r = full_result(), d;
	enum proto_kind kind;
	char err[256];
	char *buf;
	size_t len;

	(void)state;
	proto_encode_task_result(&r, &buf, &len);
	assert_int_equal(proto_peek_kind(buf, len, &kind, err, sizeof(err)), 0);
	assert_int_equal(kind, PROTO_TASK_RESULT);
	if (proto_decode_task_result(buf, len, &d, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_result_equal(&r, &d);
	task_result_release(&d);
	free(buf);
}

static void test_result_roundtrip_minimal(void **state)
{
	struct task_result r = {.run = "r",
				.task = "t",
				.attempt = 1,
				.worker = "w",
				.suite = "s",
				.phase = "p",
				.status = TASK_COMPLETED,
				.exit_code = 0};
	struct task_result d;
	char err[256];
	char *buf;
	size_t len;
	int s;

	(void)state;
	for (s = 0; s < TASK_STATUS_COUNT; s++) {
		r.status = (enum task_status)s;
		r.exit_code = -2147483647 - 1 + s;
		proto_encode_task_result(&r, &buf, &len);
		if (proto_decode_task_result(buf, len, &d, err, sizeof(err)))
			fail_msg("%s", err);
		assert_result_equal(&r, &d);
		assert_null(d.tests);
		assert_null(d.unfinished);
		assert_null(d.message);
		task_result_release(&d);
		free(buf);
	}
}

static void test_progress_roundtrip(void **state)
{
	struct progress p = {.run = "r",
			     .task = "t",
			     .attempt = 7,
			     .worker = "w/slot-2",
			     .test = ID_WEIRD};
	struct progress d;
	enum proto_kind kind;
	char err[256];
	char *buf;
	size_t len;
	int o;

	(void)state;
	proto_encode_progress(&p, &buf, &len);
	assert_int_equal(proto_peek_kind(buf, len, &kind, err, sizeof(err)), 0);
	assert_int_equal(kind, PROTO_PROGRESS);
	if (proto_decode_progress(buf, len, &d, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_string_equal(d.test, ID_WEIRD);
	assert_int_equal(d.attempt, 7);
	assert_int_equal(d.finished, 0);
	progress_release(&d);
	free(buf);

	p.finished = 1;
	for (o = 0; o < OUTCOME_COUNT; o++) {
		p.outcome = (enum outcome)o;
		p.duration_s = 0.5 * o;
		proto_encode_progress(&p, &buf, &len);
		if (proto_decode_progress(buf, len, &d, err, sizeof(err)) != 0)
			fail_msg("%s", err);
		assert_int_equal(d.finished, 1);
		assert_int_equal(d.outcome, o);
		assert_true(d.duration_s == 0.5 * o);
		assert_string_equal(d.worker, "w/slot-2");
		progress_release(&d);
		free(buf);
	}
}

/* The encoder's keys are exactly docs/protocol.md's; read back with
 * msgpack-c (trusted input here). */
static void assert_keys(const char *buf, size_t len, const char *const *want,
			size_t nwant)
{
	msgpack_unpacked u;
	size_t off = 0, i, j;

	msgpack_unpacked_init(&u);
	assert_int_equal(msgpack_unpack_next(&u, buf, len, &off),
			 MSGPACK_UNPACK_SUCCESS);
	assert_int_equal(off, len);
	assert_int_equal(u.data.type, MSGPACK_OBJECT_MAP);
	assert_int_equal(u.data.via.map.size, nwant);
	for (i = 0; i < nwant; i++) {
		for (j = 0; j < u.data.via.map.size; j++) {
			const msgpack_object_str *k =
			    &u.data.via.map.ptr[j].key.via.str;

			if (strlen(want[i]) == k->size &&
			    memcmp(want[i], k->ptr, k->size) == 0)
				break;
		}
		if (j == u.data.via.map.size)
			fail_msg("key \"%s\" not encoded", want[i]);
	}
	msgpack_unpacked_destroy(&u);
}

static void test_wire_keys(void **state)
{
	static const char *const task_keys[] = {
	    "v",     "k",     "run",	"id",	   "att",
	    "suite", "phase", "runner", "queue",   "cwd",
	    "mark",  "kexpr", "grep",	"timeout", "tests",
	    "argv",  "env",   "reruns", "rerun",   "retried_for"};
	static const char *const result_keys[] = {
	    "v",	   "k",	    "run",	  "task",     "att",
	    "worker",	   "suite", "phase",	  "status",   "exit",
	    "signal",	   "start", "dur",	  "msg",      "out",
	    "running",	   "tests", "unfinished", "retrying", "retry_reason",
	    "retried_for", "rerun"};
	static const char *const progress_keys[] = {
	    "v",      "k",    "run",  "task",	 "att",
	    "worker", "test", "done", "outcome", "dur"};
	struct task t = full_task();
	struct task_result r = full_result();
	struct progress p = {.run = "r",
			     .task = "t",
			     .attempt = 1,
			     .worker = "w",
			     .test = "x",
			     .finished = 1};
	char *buf;
	size_t len;

	(void)state;
	proto_encode_task(&t, &buf, &len);
	assert_keys(buf, len, task_keys, 20);
	free(buf);
	proto_encode_task_result(&r, &buf, &len);
	assert_keys(buf, len, result_keys, 22);
	free(buf);
	proto_encode_progress(&p, &buf, &len);
	assert_keys(buf, len, progress_keys, 10);
	/* "k" is the literal kind string. */
	assert_non_null(memmem(buf, len, "\xa1k\xa8progress", 10));
	free(buf);
	r.ntests = 0;
	proto_encode_task_result(&r, &buf, &len);
	assert_non_null(memmem(buf, len, "\xa1k\xa6result", 8));
	free(buf);
}

/* ---- truncation ---- */

static void test_truncated_every_prefix(void **state)
{
	struct task t = full_task(), dt;
	struct task_result r = full_result(), dr;
	struct progress p = {.run = "r",
			     .task = "t",
			     .attempt = 1,
			     .worker = "w",
			     .test = "x",
			     .finished = 1,
			     .outcome = OUTCOME_FAILED,
			     .duration_s = 1.5};
	struct progress dp;
	static const struct task_result zr;
	static const struct progress zp;
	char err[256];
	char *buf;
	size_t len, i;

	(void)state;
	proto_encode_task(&t, &buf, &len);
	for (i = 0; i < len; i++) {
		char *copy = malloc(i + 1);

		/* An exact-size heap copy, so ASan sees any overread. */
		memcpy(copy, buf, i);
		err[0] = '\0';
		assert_int_equal(
		    proto_decode_task(copy, i, &dt, err, sizeof(err)), -1);
		assert_task_empty(&dt);
		assert_true(strncmp(err, "proto: ", 7) == 0);
		free(copy);
	}
	free(buf);

	proto_encode_task_result(&r, &buf, &len);
	for (i = 0; i < len; i++) {
		char *copy = malloc(i + 1);

		memcpy(copy, buf, i);
		err[0] = '\0';
		assert_int_equal(
		    proto_decode_task_result(copy, i, &dr, err, sizeof(err)),
		    -1);
		assert_memory_equal(&dr, &zr, sizeof(zr));
		assert_true(strncmp(err, "proto: ", 7) == 0);
		free(copy);
	}
	free(buf);

	proto_encode_progress(&p, &buf, &len);
	for (i = 0; i < len; i++) {
		char *copy = malloc(i + 1);

		memcpy(copy, buf, i);
		err[0] = '\0';
		assert_int_equal(
		    proto_decode_progress(copy, i, &dp, err, sizeof(err)), -1);
		assert_memory_equal(&dp, &zp, sizeof(zp));
		assert_true(strncmp(err, "proto: ", 7) == 0);
		free(copy);
	}
	free(buf);
}

static void test_trailing_bytes(void **state)
{
	struct task t = full_task();
	char *buf, *longer;
	size_t len;

	(void)state;
	proto_encode_task(&t, &buf, &len);
	longer = malloc(len + 3);
	assert_non_null(longer);
	memcpy(longer, buf, len);
	memcpy(longer + len, "\xc0\xc0\xc0", 3);
	expect_task_error(longer, len + 3, "3 trailing bytes");
	free(longer);
	free(buf);
}

/* One test result alone, as the worker keeps it in a partial hash. */
static void test_single_test_result(void **state)
{
	struct test_result t = {.id = "tests/a.py::t[1]",
				.outcome = OUTCOME_FAILED,
				.duration_s = 0.25,
				.message = "assert 1 == 2",
				.details = "long\ntext",
				.file = "tests/a.py",
				.line = 7};
	struct test_result d, m = {.id = "x", .outcome = OUTCOME_PASSED};
	struct pk b;
	char err[256];
	char *buf, *copy;
	size_t len, cut;

	(void)state;
	proto_encode_test_result(&t, &buf, &len);
	if (proto_decode_test_result(buf, len, &d, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_string_equal(d.id, t.id);
	assert_int_equal(d.outcome, OUTCOME_FAILED);
	assert_true(d.duration_s == 0.25);
	assert_string_equal(d.message, t.message);
	assert_string_equal(d.details, t.details);
	assert_string_equal(d.file, t.file);
	assert_int_equal(d.line, 7);
	test_result_release(&d);
	/* Every proper prefix is an error, never a crash or a result. */
	for (cut = 0; cut < len; cut++) {
		copy = malloc(cut + 1);
		assert_non_null(copy);
		memcpy(copy, buf, cut);
		assert_int_equal(
		    proto_decode_test_result(copy, cut, &d, err, sizeof(err)),
		    -1);
		assert_null(d.id);
		free(copy);
	}
	/* Trailing bytes. */
	copy = malloc(len + 1);
	assert_non_null(copy);
	memcpy(copy, buf, len);
	copy[len] = '\xc0';
	assert_int_equal(
	    proto_decode_test_result(copy, len + 1, &d, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "1 trailing bytes"));
	free(copy);
	free(buf);
	/* Optional fields stay NULL. */
	proto_encode_test_result(&m, &buf, &len);
	assert_int_equal(
	    proto_decode_test_result(buf, len, &d, err, sizeof(err)), 0);
	assert_string_equal(d.id, "x");
	assert_null(d.message);
	assert_null(d.details);
	test_result_release(&d);
	free(buf);
	/* A missing id, and an unknown outcome. */
	pk_init(&b);
	msgpack_pack_map(&b.p, 1);
	pk_kstr(&b, "outcome", "passed");
	assert_int_equal(proto_decode_test_result(b.sb.data, b.sb.size, &d, err,
						  sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "missing required key \"id\""));
	pk_release(&b);
	pk_init(&b);
	msgpack_pack_map(&b.p, 2);
	pk_kstr(&b, "id", "x");
	pk_kstr(&b, "outcome", "weird");
	assert_int_equal(proto_decode_test_result(b.sb.data, b.sb.size, &d, err,
						  sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "test.outcome: unknown outcome"));
	pk_release(&b);
}

/* ---- oversized lengths and counts ---- */

static void test_huge_string_message(void **state)
{
	struct pk b;
	static const unsigned char str32[] = {0xdb, 0xee, 0x6b, 0x28, 0x00};
	struct task t;
	char err[256];

	(void)state;
	pk_init(&b);
	pk_task_head(&b, 10);
	pk_str(&b, "tests");
	msgpack_pack_array(&b.p, 4);
	pk_str(&b, "a");
	pk_str(&b, "b");
	pk_str(&b, "c");
	pk_raw(&b, str32, sizeof(str32));
	pk_raw(&b, "twelve bytes", 12);
	assert_int_equal(
	    proto_decode_task(b.sb.data, b.sb.size, &t, err, sizeof(err)), -1);
	assert_string_equal(err, "proto: task.tests[3]: string of 4000000000 "
				 "bytes but 12 left");
	pk_release(&b);
}

static void test_huge_counts(void **state)
{
	/* Five bytes asking for four billion entries. */
	static const unsigned char map32[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
	static const unsigned char arr32[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
	static const unsigned char arr16[] = {0xdc, 0x00, 0x10};
	struct pk b;
	enum proto_kind kind;
	char err[256];

	(void)state;
	expect_task_error((const char *)map32, sizeof(map32),
			  "map of 4294967295 entries but 0 bytes left");
	assert_int_equal(proto_peek_kind((const char *)map32, sizeof(map32),
					 &kind, err, sizeof(err)),
			 -1);

	pk_init(&b);
	pk_task_head(&b, 10);
	pk_str(&b, "tests");
	pk_raw(&b, arr32, sizeof(arr32));
	expect_task_error(b.sb.data, b.sb.size,
			  "task.tests: array of 4294967295 elements but 0 "
			  "bytes left");
	pk_release(&b);

	/* 16 elements announced, 15 present: caught by the count check. */
	pk_init(&b);
	pk_task_head(&b, 10);
	pk_str(&b, "tests");
	pk_raw(&b, arr16, sizeof(arr16));
	pk_raw(&b,
	       "\xa0\xa0\xa0\xa0\xa0\xa0\xa0\xa0\xa0\xa0\xa0\xa0\xa0\xa0"
	       "\xa0",
	       15);
	expect_task_error(b.sb.data, b.sb.size,
			  "array of 16 elements but 15 bytes left");
	pk_release(&b);

	/* Env map count against bytes left. */
	pk_init(&b);
	pk_task_head(&b, 11);
	pk_tests1(&b);
	pk_str(&b, "env");
	pk_raw(&b,
	       "\xde\x00\x05\xa1"
	       "A\xa1"
	       "B",
	       7);
	expect_task_error(b.sb.data, b.sb.size,
			  "task.env: map of 5 entries but 4 bytes left");
	pk_release(&b);
}

static void test_item_limit(void **state)
{
	size_t n = PROTO_MAX_ITEMS + 1, len, i;
	struct pk b;
	char *buf;

	(void)state;
	pk_init(&b);
	pk_task_head(&b, 10);
	pk_str(&b, "tests");
	msgpack_pack_array(&b.p, n);
	len = b.sb.size + n;
	buf = malloc(len);
	memcpy(buf, b.sb.data, b.sb.size);
	for (i = b.sb.size; i < len; i++)
		buf[i] = (char)0xa0;
	expect_task_error(buf, len, "elements (limit");
	free(buf);
	pk_release(&b);
}

static void test_max_message(void **state)
{
	static const char small[] = "\x80";
	enum proto_kind kind;
	char err[256];

	(void)state;
	/* The size check comes before any read, so a short buffer with a
	 * claimed oversize length is safe to pass. */
	assert_int_equal(proto_peek_kind(small, (size_t)PROTO_MAX_MSG + 1,
					 &kind, err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "exceeds the limit"));
	expect_task_error(small, (size_t)PROTO_MAX_MSG + 1,
			  "exceeds the limit");
	expect_task_error(small, 0, "empty message");
}

/* ---- types, versions, kinds ---- */

static void test_version_and_kind(void **state)
{
	struct pk b;
	struct task_result r;
	enum proto_kind kind;
	char err[256];
	struct task t = full_task();
	char *buf;
	size_t len;

	(void)state;
	/* Unknown version, with v after k and other keys. */
	pk_init(&b);
	msgpack_pack_map(&b.p, 3);
	pk_kstr(&b, "k", "task");
	pk_kstr(&b, "x", "y");
	pk_str(&b, "v");
	msgpack_pack_uint8(&b.p, 2);
	assert_int_equal(
	    proto_peek_kind(b.sb.data, b.sb.size, &kind, err, sizeof(err)), -1);
	assert_string_equal(err, "proto: unsupported version 2 (this build "
				 "reads version 1)");
	expect_task_error(b.sb.data, b.sb.size, "unsupported version 2");
	pk_release(&b);

	/* Missing version. */
	pk_init(&b);
	msgpack_pack_map(&b.p, 1);
	pk_kstr(&b, "k", "task");
	expect_task_error(b.sb.data, b.sb.size, "missing version key");
	pk_release(&b);

	/* Version of the wrong type. */
	pk_init(&b);
	msgpack_pack_map(&b.p, 2);
	pk_kstr(&b, "v", "1");
	pk_kstr(&b, "k", "task");
	expect_task_error(b.sb.data, b.sb.size,
			  "v: expected unsigned integer, got string");
	pk_release(&b);

	/* Missing and unknown kind. */
	pk_init(&b);
	msgpack_pack_map(&b.p, 1);
	pk_str(&b, "v");
	msgpack_pack_uint8(&b.p, 1);
	expect_task_error(b.sb.data, b.sb.size, "missing kind key");
	pk_release(&b);
	pk_init(&b);
	msgpack_pack_map(&b.p, 2);
	pk_str(&b, "v");
	msgpack_pack_uint8(&b.p, 1);
	pk_kstr(&b, "k", "job\n");
	expect_task_error(b.sb.data, b.sb.size, "unknown kind \"job?\"");
	pk_release(&b);

	/* Not a map at all. */
	expect_task_error("\x93\x01\x02\x03", 4, "expected map, got array");
	expect_task_error("\xc1", 1, "expected map, got invalid byte 0xc1");

	/* The wrong decoder for the kind. */
	proto_encode_task(&t, &buf, &len);
	assert_int_equal(
	    proto_decode_task_result(buf, len, &r, err, sizeof(err)), -1);
	assert_string_equal(err, "proto: expected a result message, got a "
				 "task");
	free(buf);
}

static void test_wrong_types(void **state)
{
	struct pk b;

	(void)state;
	/* att as a string */
	pk_init(&b);
	msgpack_pack_map(&b.p, 10);
	pk_str(&b, "v");
	msgpack_pack_uint8(&b.p, 1);
	pk_kstr(&b, "k", "task");
	pk_kstr(&b, "run", "r");
	pk_kstr(&b, "id", "t1");
	pk_kstr(&b, "att", "1");
	expect_task_error(b.sb.data, b.sb.size,
			  "proto: task.att: expected unsigned integer, got "
			  "string");
	pk_release(&b);

	/* att negative, att too large */
	pk_init(&b);
	msgpack_pack_map(&b.p, 3);
	pk_str(&b, "v");
	msgpack_pack_uint8(&b.p, 1);
	pk_kstr(&b, "k", "task");
	pk_str(&b, "att");
	msgpack_pack_int8(&b.p, -1);
	expect_task_error(b.sb.data, b.sb.size,
			  "task.att: expected unsigned integer, got -1");
	pk_release(&b);
	pk_init(&b);
	msgpack_pack_map(&b.p, 3);
	pk_str(&b, "v");
	msgpack_pack_uint8(&b.p, 1);
	pk_kstr(&b, "k", "task");
	pk_str(&b, "att");
	msgpack_pack_uint64(&b.p, 4294967296ULL);
	expect_task_error(b.sb.data, b.sb.size,
			  "task.att: 4294967296 is out of range");
	pk_release(&b);

	/* tests element not a string */
	pk_init(&b);
	pk_task_head(&b, 10);
	pk_str(&b, "tests");
	msgpack_pack_array(&b.p, 2);
	pk_str(&b, "ok");
	msgpack_pack_int(&b.p, 5);
	expect_task_error(b.sb.data, b.sb.size,
			  "task.tests[1]: expected string, got integer");
	pk_release(&b);

	/* tests as a map */
	pk_init(&b);
	pk_task_head(&b, 10);
	pk_str(&b, "tests");
	msgpack_pack_map(&b.p, 0);
	expect_task_error(b.sb.data, b.sb.size,
			  "task.tests: expected array, got map");
	pk_release(&b);

	/* a bin where a string belongs */
	pk_init(&b);
	pk_task_head(&b, 11);
	pk_tests1(&b);
	pk_str(&b, "cwd");
	msgpack_pack_bin(&b.p, 1);
	msgpack_pack_bin_body(&b.p, "/", 1);
	expect_task_error(b.sb.data, b.sb.size,
			  "task.cwd: expected string, got binary");
	pk_release(&b);

	/* env value an integer */
	pk_init(&b);
	pk_task_head(&b, 11);
	pk_tests1(&b);
	pk_str(&b, "env");
	msgpack_pack_map(&b.p, 1);
	pk_str(&b, "HOME");
	msgpack_pack_int(&b.p, 1);
	expect_task_error(b.sb.data, b.sb.size,
			  "task.env.HOME: expected string, got integer");
	pk_release(&b);

	/* a map key that is not a string */
	pk_init(&b);
	msgpack_pack_map(&b.p, 3);
	pk_str(&b, "v");
	msgpack_pack_uint8(&b.p, 1);
	pk_kstr(&b, "k", "task");
	msgpack_pack_int(&b.p, 7);
	msgpack_pack_int(&b.p, 7);
	expect_task_error(b.sb.data, b.sb.size,
			  "expected string, got "
			  "integer");
	pk_release(&b);
}

static void test_bad_strings(void **state)
{
	struct pk b;

	(void)state;
	/* NUL inside a string */
	pk_init(&b);
	pk_task_head(&b, 10);
	pk_str(&b, "tests");
	msgpack_pack_array(&b.p, 1);
	msgpack_pack_str(&b.p, 3);
	msgpack_pack_str_body(&b.p, "a\0b", 3);
	expect_task_error(b.sb.data, b.sb.size,
			  "task.tests[0]: string contains a NUL byte");
	pk_release(&b);

	/* env name with '=' */
	pk_init(&b);
	pk_task_head(&b, 11);
	pk_tests1(&b);
	pk_str(&b, "env");
	msgpack_pack_map(&b.p, 1);
	pk_kstr(&b, "A=B", "c");
	expect_task_error(b.sb.data, b.sb.size,
			  "bad environment variable name");
	pk_release(&b);

	/* duplicate key */
	pk_init(&b);
	pk_task_head(&b, 11);
	pk_tests1(&b);
	pk_kstr(&b, "run", "again");
	expect_task_error(b.sb.data, b.sb.size, "task.run: duplicate key");
	pk_release(&b);

	/* missing required key */
	pk_init(&b);
	pk_task_head(&b, 9);
	expect_task_error(b.sb.data, b.sb.size,
			  "proto: task: missing required key \"tests\"");
	pk_release(&b);
}

static void test_enums(void **state)
{
	struct pk b;
	struct task_result r;
	char err[256];
	enum outcome o;
	enum task_status s;
	int i;

	(void)state;
	for (i = 0; i < OUTCOME_COUNT; i++) {
		assert_int_equal(
		    outcome_parse(outcome_name((enum outcome)i), &o), 0);
		assert_int_equal(o, i);
	}
	assert_int_equal(outcome_parse("PASSED", &o), -1);
	assert_string_equal(outcome_name(OUTCOME_XFAILED), "xfailed");
	for (i = 0; i < TASK_STATUS_COUNT; i++) {
		assert_int_equal(task_status_parse(
				     task_status_name((enum task_status)i), &s),
				 0);
		assert_int_equal(s, i);
	}
	assert_int_equal(task_status_parse("done", &s), -1);
	assert_string_equal(task_status_name(TASK_TIMEOUT), "timeout");

	/* unknown outcome inside a result */
	pk_init(&b);
	msgpack_pack_map(&b.p, 13);
	pk_str(&b, "v");
	msgpack_pack_uint8(&b.p, 1);
	pk_kstr(&b, "k", "result");
	pk_kstr(&b, "run", "r");
	pk_kstr(&b, "task", "t");
	pk_str(&b, "att");
	msgpack_pack_uint8(&b.p, 1);
	pk_kstr(&b, "worker", "w");
	pk_kstr(&b, "suite", "s");
	pk_kstr(&b, "phase", "p");
	pk_kstr(&b, "status", "completed");
	pk_str(&b, "exit");
	msgpack_pack_int(&b.p, 1);
	pk_str(&b, "start");
	msgpack_pack_float(&b.p, 1.5f);
	pk_str(&b, "dur");
	msgpack_pack_int(&b.p, 2);
	pk_str(&b, "tests");
	msgpack_pack_array(&b.p, 2);
	msgpack_pack_map(&b.p, 2);
	pk_kstr(&b, "id", "a");
	pk_kstr(&b, "outcome", "passed");
	msgpack_pack_map(&b.p, 2);
	pk_kstr(&b, "id", "b");
	pk_kstr(&b, "outcome", "exploded");
	assert_int_equal(proto_decode_task_result(b.sb.data, b.sb.size, &r, err,
						  sizeof(err)),
			 -1);
	assert_string_equal(err, "proto: result.tests[1].outcome: unknown "
				 "outcome \"exploded\"");
	pk_release(&b);
}

/* ---- accepted variations ---- */

static void test_int_and_float_encodings(void **state)
{
	struct pk b;
	struct task_result r;
	char err[256];

	(void)state;
	pk_init(&b);
	msgpack_pack_map(&b.p, 15);
	pk_str(&b, "v");
	pk_raw(&b, "\xcf\0\0\0\0\0\0\0\x01", 9); /* uint64 1 */
	pk_kstr(&b, "k", "result");
	pk_kstr(&b, "run", "r");
	pk_kstr(&b, "task", "t");
	pk_str(&b, "att");
	pk_raw(&b, "\xd3\0\0\0\0\0\0\0\x05", 9); /* int64 5 */
	pk_kstr(&b, "worker", "w");
	pk_kstr(&b, "suite", "s");
	pk_kstr(&b, "phase", "p");
	pk_kstr(&b, "status", "timeout");
	pk_str(&b, "exit");
	pk_raw(&b, "\xd1\xff\x85", 3); /* int16 -123 */
	pk_str(&b, "signal");
	pk_raw(&b, "\xcc\x0f", 2); /* uint8 15 */
	pk_str(&b, "start");
	pk_raw(&b, "\xd2\x00\x01\x00\x00", 5); /* int32 65536 */
	pk_str(&b, "dur");
	msgpack_pack_float(&b.p, 0.25f);
	pk_str(&b, "tests");
	msgpack_pack_array(&b.p, 1);
	msgpack_pack_map(&b.p, 4);
	pk_kstr(&b, "id", "a");
	pk_kstr(&b, "outcome", "error");
	pk_str(&b, "dur");
	pk_raw(&b, "\xff", 1); /* negative fixint -1 */
	pk_str(&b, "line");
	pk_raw(&b, "\xd0\x07", 2); /* int8 7 */
	pk_str(&b, "msg");
	msgpack_pack_nil(&b.p); /* nil for an optional field */
	if (proto_decode_task_result(b.sb.data, b.sb.size, &r, err,
				     sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_int_equal(r.attempt, 5);
	assert_int_equal(r.status, TASK_TIMEOUT);
	assert_int_equal(r.exit_code, -123);
	assert_int_equal(r.term_signal, 15);
	assert_true(r.started_at == 65536.0);
	assert_true(r.duration_s == 0.25);
	assert_true(r.tests[0].duration_s == -1.0);
	assert_int_equal(r.tests[0].line, 7);
	assert_null(r.message);
	task_result_release(&r);
	pk_release(&b);
}

static void test_nil_and_nonfinite(void **state)
{
	struct pk b;
	struct task t;
	struct progress p;
	char err[256];

	(void)state;
	/* nil for optional fields is absent */
	pk_init(&b);
	pk_task_head(&b, 13);
	pk_tests1(&b);
	pk_str(&b, "cwd");
	msgpack_pack_nil(&b.p);
	pk_str(&b, "env");
	msgpack_pack_nil(&b.p);
	pk_str(&b, "timeout");
	msgpack_pack_nil(&b.p);
	if (proto_decode_task(b.sb.data, b.sb.size, &t, err, sizeof(err)))
		fail_msg("%s", err);
	assert_null(t.cwd);
	assert_null(t.env);
	assert_int_equal(t.timeout_s, 0);
	task_release(&t);
	pk_release(&b);

	/* nil for a required field is not */
	pk_init(&b);
	msgpack_pack_map(&b.p, 3);
	pk_str(&b, "v");
	msgpack_pack_uint8(&b.p, 1);
	pk_kstr(&b, "k", "task");
	pk_str(&b, "run");
	msgpack_pack_nil(&b.p);
	expect_task_error(b.sb.data, b.sb.size,
			  "task.run: expected string, got nil");
	pk_release(&b);

	/* NaN durations, and a finished progress without an outcome */
	pk_init(&b);
	msgpack_pack_map(&b.p, 9);
	pk_str(&b, "v");
	msgpack_pack_uint8(&b.p, 1);
	pk_kstr(&b, "k", "progress");
	pk_kstr(&b, "run", "r");
	pk_kstr(&b, "task", "t");
	pk_str(&b, "att");
	msgpack_pack_uint8(&b.p, 1);
	pk_kstr(&b, "worker", "w");
	pk_kstr(&b, "test", "x");
	pk_str(&b, "done");
	msgpack_pack_true(&b.p);
	pk_str(&b, "dur");
	msgpack_pack_double(&b.p, NAN);
	assert_int_equal(
	    proto_decode_progress(b.sb.data, b.sb.size, &p, err, sizeof(err)),
	    -1);
	assert_string_equal(err, "proto: progress.dur: expected a finite "
				 "number");
	/* replace the NaN (the last 9 bytes) with 1.0 */
	b.sb.size -= 9;
	msgpack_pack_double(&b.p, 1.0);
	assert_int_equal(
	    proto_decode_progress(b.sb.data, b.sb.size, &p, err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "missing required key \"outcome\""));
	pk_release(&b);
}

static void test_unknown_keys_skipped(void **state)
{
	struct pk b;
	struct task t;
	char err[256];

	(void)state;
	pk_init(&b);
	pk_task_head(&b, 17);
	pk_tests1(&b);
	/* every kind of value, nested up to the depth limit */
	pk_str(&b, "future_map");
	msgpack_pack_map(&b.p, 2);
	pk_kstr(&b, "a", "b");
	msgpack_pack_int(&b.p, 1);
	msgpack_pack_array(&b.p, 2);
	msgpack_pack_array(&b.p, 0);
	msgpack_pack_nil(&b.p);
	pk_str(&b, "future_bin");
	msgpack_pack_bin(&b.p, 3);
	msgpack_pack_bin_body(&b.p, "\0\1\2", 3);
	pk_str(&b, "future_ext");
	msgpack_pack_ext(&b.p, 5, 7);
	msgpack_pack_ext_body(&b.p, "\0\1\2\3\4", 5);
	pk_str(&b, "future_fixext");
	pk_raw(&b, "\xd6\x01\x00\x00\x00\x00", 6);
	pk_str(&b, "future_num");
	msgpack_pack_double(&b.p, 3.25);
	pk_str(&b, "future_str");
	pk_raw(&b, "\xd9\x03xyz", 5);
	/* a non-ASCII key with a control character */
	pk_str(&b, "nöpe\x01");
	msgpack_pack_int64(&b.p, -5000000000LL);
	if (proto_decode_task(b.sb.data, b.sb.size, &t, err, sizeof(err)))
		fail_msg("%s", err);
	assert_string_equal(t.tests[0], "a.py::t");
	assert_string_equal(t.queue, "default");
	task_release(&t);
	pk_release(&b);

	/* skipping is bounded too: a lying bin inside an unknown key */
	pk_init(&b);
	pk_task_head(&b, 11);
	pk_tests1(&b);
	pk_str(&b, "extra");
	pk_raw(&b, "\xc6\x7f\xff\xff\xff\x00", 6);
	expect_task_error(b.sb.data, b.sb.size,
			  "task.extra: binary of 2147483647 bytes but 1 left");
	pk_release(&b);
	pk_init(&b);
	pk_task_head(&b, 11);
	pk_tests1(&b);
	pk_str(&b, "extra");
	pk_raw(&b, "\xc9\xff\xff\xff\xff\x01", 6);
	expect_task_error(b.sb.data, b.sb.size,
			  "extension of 4294967296 bytes but 1 left");
	pk_release(&b);
}

static void test_depth(void **state)
{
	struct pk b;
	struct task t;
	char err[256];
	int i;

	(void)state;
	/* top map (1) + three arrays = 4: allowed */
	pk_init(&b);
	pk_task_head(&b, 11);
	pk_tests1(&b);
	pk_str(&b, "deep");
	for (i = 0; i < 2; i++)
		msgpack_pack_array(&b.p, 1);
	msgpack_pack_array(&b.p, 0);
	if (proto_decode_task(b.sb.data, b.sb.size, &t, err, sizeof(err)))
		fail_msg("%s", err);
	task_release(&t);
	pk_release(&b);

	/* one more: rejected */
	pk_init(&b);
	pk_task_head(&b, 11);
	pk_tests1(&b);
	pk_str(&b, "deep");
	for (i = 0; i < 3; i++)
		msgpack_pack_array(&b.p, 1);
	msgpack_pack_map(&b.p, 0);
	expect_task_error(b.sb.data, b.sb.size,
			  "task.deep: nesting deeper than 4");
	pk_release(&b);

	/* a deeply nested bomb is refused without recursing far */
	pk_init(&b);
	pk_task_head(&b, 11);
	pk_tests1(&b);
	pk_str(&b, "deep");
	for (i = 0; i < 100000; i++)
		pk_raw(&b, "\x91", 1);
	pk_raw(&b, "\xc0", 1);
	expect_task_error(b.sb.data, b.sb.size, "nesting deeper than 4");
	pk_release(&b);
}

static void test_small_err_buffer(void **state)
{
	struct task t;
	char err[8];

	(void)state;
	memset(err, 'x', sizeof(err));
	assert_int_equal(proto_decode_task("\x93", 1, &t, err, 5), -1);
	assert_string_equal(err, "prot");
	assert_int_equal(err[5], 'x');
	assert_int_equal(proto_decode_task("\x93", 1, &t, NULL, 0), -1);
}

/* ---- artifacts: the task's "arts" flag and the result's "arts" array ---- */

/* The head of a result: a map of n entries, then the 12 required keys
 * and an empty "tests" (13 entries). The caller adds n - 13 more. */
static void pk_result_head(struct pk *b, size_t n)
{
	msgpack_pack_map(&b->p, n);
	pk_str(b, "v");
	msgpack_pack_uint8(&b->p, 1);
	pk_kstr(b, "k", "result");
	pk_kstr(b, "run", "r");
	pk_kstr(b, "task", "t");
	pk_str(b, "att");
	msgpack_pack_uint8(&b->p, 1);
	pk_kstr(b, "worker", "w");
	pk_kstr(b, "suite", "s");
	pk_kstr(b, "phase", "p");
	pk_kstr(b, "status", "completed");
	pk_str(b, "exit");
	msgpack_pack_int(&b->p, 0);
	pk_str(b, "start");
	msgpack_pack_double(&b->p, 1.5);
	pk_str(b, "dur");
	msgpack_pack_double(&b->p, 0.5);
	pk_str(b, "tests");
	msgpack_pack_array(&b->p, 0);
}

/* Decodes buf as a result expecting failure, and checks the message. */
static void expect_result_error(const char *buf, size_t len, const char *want)
{
	static const struct task_result zero;
	struct task_result r;
	char err[512] = "";

	assert_int_equal(
	    proto_decode_task_result(buf, len, &r, err, sizeof(err)), -1);
	assert_memory_equal(&r, &zero, sizeof(zero));
	if (strstr(err, want) == NULL)
		fail_msg("error \"%s\" does not contain \"%s\"", err, want);
	assert_true(strncmp(err, "proto: ", 7) == 0);
	assert_null(strchr(err, '\n'));
}

/* Whether the message's top map has key (read back with msgpack-c), and
 * its value's type. */
static int wire_key(const char *buf, size_t len, const char *key,
		    msgpack_object_type *type)
{
	msgpack_unpacked u;
	size_t off = 0;
	uint32_t j;
	int found = 0;

	msgpack_unpacked_init(&u);
	assert_int_equal(msgpack_unpack_next(&u, buf, len, &off),
			 MSGPACK_UNPACK_SUCCESS);
	assert_int_equal(u.data.type, MSGPACK_OBJECT_MAP);
	for (j = 0; j < u.data.via.map.size; j++) {
		const msgpack_object_kv *kv = &u.data.via.map.ptr[j];

		if (kv->key.via.str.size == strlen(key) &&
		    memcmp(kv->key.via.str.ptr, key, strlen(key)) == 0) {
			found = 1;
			if (type != NULL)
				*type = kv->val.type;
		}
	}
	msgpack_unpacked_destroy(&u);
	return found;
}

static void test_task_keep_artifacts(void **state)
{
	struct task t = full_task(), d;
	msgpack_object_type type;
	char err[256];
	char *buf;
	size_t len;

	(void)state;
	t.keep_artifacts = 1;
	proto_encode_task(&t, &buf, &len);
	assert_true(wire_key(buf, len, "arts", &type));
	assert_int_equal(type, MSGPACK_OBJECT_BOOLEAN);
	if (proto_decode_task(buf, len, &d, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_task_equal(&t, &d);
	assert_int_equal(d.keep_artifacts, 1);
	task_release(&d);
	free(buf);

	/* Absent when not set: a worker of before keeps reading tasks. */
	t.keep_artifacts = 0;
	proto_encode_task(&t, &buf, &len);
	assert_false(wire_key(buf, len, "arts", NULL));
	if (proto_decode_task(buf, len, &d, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_int_equal(d.keep_artifacts, 0);
	task_release(&d);
	free(buf);
}

static void test_task_keep_artifacts_wire(void **state)
{
	struct pk b;
	struct task t;
	char err[256];

	(void)state;
	/* false and nil read as "do not keep". */
	pk_init(&b);
	pk_task_head(&b, 11);
	pk_tests1(&b);
	pk_str(&b, "arts");
	msgpack_pack_false(&b.p);
	if (proto_decode_task(b.sb.data, b.sb.size, &t, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(t.keep_artifacts, 0);
	task_release(&t);
	pk_release(&b);
	pk_init(&b);
	pk_task_head(&b, 11);
	pk_tests1(&b);
	pk_str(&b, "arts");
	msgpack_pack_nil(&b.p);
	if (proto_decode_task(b.sb.data, b.sb.size, &t, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(t.keep_artifacts, 0);
	task_release(&t);
	pk_release(&b);

	/* A boolean, not a number or a string. */
	pk_init(&b);
	pk_task_head(&b, 11);
	pk_tests1(&b);
	pk_str(&b, "arts");
	msgpack_pack_int(&b.p, 1);
	expect_task_error(b.sb.data, b.sb.size,
			  "proto: task.arts: expected boolean, got integer");
	pk_release(&b);
	pk_init(&b);
	pk_task_head(&b, 11);
	pk_tests1(&b);
	pk_kstr(&b, "arts", "true");
	expect_task_error(b.sb.data, b.sb.size,
			  "task.arts: expected boolean, got string");
	pk_release(&b);
	/* Twice. */
	pk_init(&b);
	pk_task_head(&b, 12);
	pk_tests1(&b);
	pk_str(&b, "arts");
	msgpack_pack_true(&b.p);
	pk_str(&b, "arts");
	msgpack_pack_true(&b.p);
	expect_task_error(b.sb.data, b.sb.size, "task.arts: duplicate key");
	pk_release(&b);
}

static struct artifact result_arts[] = {
    /* Kept in Redis: path and size only. */
    {.path = "test-results/login-chromium/trace.zip", .size = 123456},
    /* Uploaded: larger than 32 bits. */
    {.path = "d/\xc3\xbc ber/video.webm",
     .size = 5ull << 30,
     .url = "http://h/s/run-1/t00001/2/d/%C3%BC%20ber/video.webm"},
    /* Not kept. */
    {.path = "passwd",
     .size = 0,
     .error = "a symbolic link: not followed, not kept"},
    /* Both (an upload that failed has no URL, but the decoder does not
     * judge), and the largest size. */
    {.path = "x",
     .size = UINT64_MAX,
     .url = "http://h/x",
     .error = "PUT http://h/x: got 403 after 1 try"},
    {.path = "empty", .size = 0},
};

static void assert_artifacts_equal(const struct task_result *a,
				   const struct task_result *b)
{
	size_t i;

	assert_int_equal(a->nartifacts, b->nartifacts);
	for (i = 0; i < a->nartifacts; i++) {
		const struct artifact *x = &a->artifacts[i];
		const struct artifact *y = &b->artifacts[i];

		assert_string_equal(x->path, y->path);
		assert_true(x->size == y->size);
		assert_str_eq_or_null(x->url, y->url);
		assert_str_eq_or_null(x->error, y->error);
	}
}

static void test_result_artifacts_roundtrip(void **state)
{
	struct task_result r = full_result(), d;
	msgpack_object_type type;
	char err[256];
	char *buf;
	size_t len;

	(void)state;
	r.artifacts = result_arts;
	r.nartifacts = sizeof(result_arts) / sizeof(result_arts[0]);
	proto_encode_task_result(&r, &buf, &len);
	assert_true(wire_key(buf, len, "arts", &type));
	assert_int_equal(type, MSGPACK_OBJECT_ARRAY);
	if (proto_decode_task_result(buf, len, &d, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_result_equal(&r, &d);
	assert_artifacts_equal(&r, &d);
	assert_true(d.artifacts[3].size == UINT64_MAX);
	assert_true(d.artifacts[1].size == 5ull << 30);
	task_result_release(&d);
	assert_null(d.artifacts);
	assert_int_equal(d.nartifacts, 0);

	/* Every proper prefix is an error, and frees what it read. */
	{
		static const struct task_result zr;
		size_t i;

		for (i = 0; i < len; i++) {
			char *copy = malloc(i + 1);

			memcpy(copy, buf, i);
			assert_int_equal(proto_decode_task_result(
					     copy, i, &d, err, sizeof(err)),
					 -1);
			assert_memory_equal(&d, &zr, sizeof(zr));
			free(copy);
		}
	}
	free(buf);

	/* None: no key on the wire. */
	r.artifacts = NULL;
	r.nartifacts = 0;
	proto_encode_task_result(&r, &buf, &len);
	assert_false(wire_key(buf, len, "arts", NULL));
	if (proto_decode_task_result(buf, len, &d, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_null(d.artifacts);
	assert_int_equal(d.nartifacts, 0);
	task_result_release(&d);
	free(buf);
}

/* The artifact map's keys are docs/protocol.md's: path, size, url, err. */
static void test_result_artifacts_wire_keys(void **state)
{
	static const char *const full[] = {"path", "size", "url", "err"};
	struct task_result r = full_result();
	msgpack_unpacked u;
	size_t off = 0, i;
	char *buf;
	size_t len;
	uint32_t j, k;

	(void)state;
	r.artifacts = &result_arts[3];
	r.nartifacts = 1;
	proto_encode_task_result(&r, &buf, &len);
	msgpack_unpacked_init(&u);
	assert_int_equal(msgpack_unpack_next(&u, buf, len, &off),
			 MSGPACK_UNPACK_SUCCESS);
	for (j = 0; j < u.data.via.map.size; j++) {
		const msgpack_object_kv *kv = &u.data.via.map.ptr[j];
		const msgpack_object *m;

		if (kv->key.via.str.size != 4 ||
		    memcmp(kv->key.via.str.ptr, "arts", 4) != 0)
			continue;
		assert_int_equal(kv->val.via.array.size, 1);
		m = &kv->val.via.array.ptr[0];
		assert_int_equal(m->type, MSGPACK_OBJECT_MAP);
		assert_int_equal(m->via.map.size, 4);
		for (i = 0; i < 4; i++) {
			for (k = 0; k < 4; k++) {
				const msgpack_object_str *s =
				    &m->via.map.ptr[k].key.via.str;

				if (s->size == strlen(full[i]) &&
				    memcmp(s->ptr, full[i], s->size) == 0)
					break;
			}
			if (k == 4)
				fail_msg("artifact key \"%s\" not encoded",
					 full[i]);
		}
		assert_int_equal(m->via.map.ptr[1].val.type,
				 MSGPACK_OBJECT_POSITIVE_INTEGER);
	}
	msgpack_unpacked_destroy(&u);
	free(buf);
}

static void test_result_artifacts_bad(void **state)
{
	struct pk b;
	struct task_result r;
	char err[256];

	(void)state;
	/* size as a string: the artifact and the key are named. */
	pk_init(&b);
	pk_result_head(&b, 14);
	pk_str(&b, "arts");
	msgpack_pack_array(&b.p, 2);
	msgpack_pack_map(&b.p, 2);
	pk_kstr(&b, "path", "a.png");
	pk_str(&b, "size");
	msgpack_pack_uint32(&b.p, 10);
	msgpack_pack_map(&b.p, 2);
	pk_kstr(&b, "path", "trace.zip");
	pk_kstr(&b, "size", "12");
	expect_result_error(b.sb.data, b.sb.size,
			    "proto: result.arts[1].size: expected unsigned "
			    "integer, got string");
	pk_release(&b);

	/* A negative size. */
	pk_init(&b);
	pk_result_head(&b, 14);
	pk_str(&b, "arts");
	msgpack_pack_array(&b.p, 1);
	msgpack_pack_map(&b.p, 2);
	pk_kstr(&b, "path", "a");
	pk_str(&b, "size");
	msgpack_pack_int8(&b.p, -1);
	expect_result_error(b.sb.data, b.sb.size,
			    "result.arts[0].size: expected unsigned integer, "
			    "got -1");
	pk_release(&b);

	/* path as a number, url as a bin, err as an array. */
	pk_init(&b);
	pk_result_head(&b, 14);
	pk_str(&b, "arts");
	msgpack_pack_array(&b.p, 1);
	msgpack_pack_map(&b.p, 2);
	pk_str(&b, "path");
	msgpack_pack_int(&b.p, 7);
	pk_str(&b, "size");
	msgpack_pack_uint8(&b.p, 1);
	expect_result_error(b.sb.data, b.sb.size,
			    "result.arts[0].path: expected string, got "
			    "integer");
	pk_release(&b);
	pk_init(&b);
	pk_result_head(&b, 14);
	pk_str(&b, "arts");
	msgpack_pack_array(&b.p, 1);
	msgpack_pack_map(&b.p, 3);
	pk_kstr(&b, "path", "a");
	pk_str(&b, "size");
	msgpack_pack_uint8(&b.p, 1);
	pk_str(&b, "url");
	msgpack_pack_bin(&b.p, 1);
	msgpack_pack_bin_body(&b.p, "u", 1);
	expect_result_error(b.sb.data, b.sb.size,
			    "result.arts[0].url: expected string, got binary");
	pk_release(&b);
	pk_init(&b);
	pk_result_head(&b, 14);
	pk_str(&b, "arts");
	msgpack_pack_array(&b.p, 1);
	msgpack_pack_map(&b.p, 3);
	pk_kstr(&b, "path", "a");
	pk_str(&b, "size");
	msgpack_pack_uint8(&b.p, 1);
	pk_str(&b, "err");
	msgpack_pack_array(&b.p, 0);
	expect_result_error(b.sb.data, b.sb.size,
			    "result.arts[0].err: expected string, got array");
	pk_release(&b);

	/* Required keys. */
	pk_init(&b);
	pk_result_head(&b, 14);
	pk_str(&b, "arts");
	msgpack_pack_array(&b.p, 1);
	msgpack_pack_map(&b.p, 1);
	pk_kstr(&b, "path", "a");
	expect_result_error(b.sb.data, b.sb.size,
			    "result.arts[0]: missing required key \"size\"");
	pk_release(&b);
	pk_init(&b);
	pk_result_head(&b, 14);
	pk_str(&b, "arts");
	msgpack_pack_array(&b.p, 1);
	msgpack_pack_map(&b.p, 1);
	pk_str(&b, "size");
	msgpack_pack_uint8(&b.p, 1);
	expect_result_error(b.sb.data, b.sb.size,
			    "missing required key \"path\"");
	pk_release(&b);

	/* A map where the array belongs; a string where a map belongs. */
	pk_init(&b);
	pk_result_head(&b, 14);
	pk_str(&b, "arts");
	msgpack_pack_map(&b.p, 0);
	expect_result_error(b.sb.data, b.sb.size,
			    "result.arts: expected array, got map");
	pk_release(&b);
	pk_init(&b);
	pk_result_head(&b, 14);
	pk_str(&b, "arts");
	msgpack_pack_array(&b.p, 1);
	pk_str(&b, "trace.zip");
	expect_result_error(b.sb.data, b.sb.size,
			    "result.arts[0]: expected map, got string");
	pk_release(&b);

	/* A NUL inside a path. */
	pk_init(&b);
	pk_result_head(&b, 14);
	pk_str(&b, "arts");
	msgpack_pack_array(&b.p, 1);
	msgpack_pack_map(&b.p, 2);
	pk_str(&b, "path");
	msgpack_pack_str(&b.p, 3);
	msgpack_pack_str_body(&b.p, "a\0b", 3);
	pk_str(&b, "size");
	msgpack_pack_uint8(&b.p, 1);
	expect_result_error(b.sb.data, b.sb.size,
			    "result.arts[0].path: string contains a NUL byte");
	pk_release(&b);

	/* An array count that the bytes left cannot hold. */
	pk_init(&b);
	pk_result_head(&b, 14);
	pk_str(&b, "arts");
	pk_raw(&b, "\xdd\xff\xff\xff\xff", 5);
	expect_result_error(b.sb.data, b.sb.size,
			    "result.arts: array of 4294967295 elements but 0 "
			    "bytes left");
	pk_release(&b);

	/* Unknown keys of an artifact are skipped; nil optional values
	 * read as absent. */
	pk_init(&b);
	pk_result_head(&b, 14);
	pk_str(&b, "arts");
	msgpack_pack_array(&b.p, 1);
	msgpack_pack_map(&b.p, 5);
	pk_kstr(&b, "path", "a");
	pk_str(&b, "size");
	msgpack_pack_uint64(&b.p, 3);
	pk_kstr(&b, "sha256", "00");
	pk_str(&b, "url");
	msgpack_pack_nil(&b.p);
	pk_str(&b, "err");
	msgpack_pack_nil(&b.p);
	if (proto_decode_task_result(b.sb.data, b.sb.size, &r, err,
				     sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_int_equal(r.nartifacts, 1);
	assert_string_equal(r.artifacts[0].path, "a");
	assert_int_equal(r.artifacts[0].size, 3);
	assert_null(r.artifacts[0].url);
	assert_null(r.artifacts[0].error);
	task_result_release(&r);
	pk_release(&b);
}

/* grep_invert (the exclude: tags of a Playwright suite): optional, read
 * back as sent, absent when NULL. */
static void test_task_grep_invert(void **state)
{
	struct task t = full_task(), back;
	char *buf, err[256];
	size_t len;

	(void)state;
	t.runner = "playwright";
	t.grep_invert = "@(?:slow|destructive)(?![\\w-])";
	proto_encode_task(&t, &buf, &len);
	assert_non_null(memmem(buf, len, "\xabgrep_invert", 12));
	assert_int_equal(proto_decode_task(buf, len, &back, err, sizeof(err)),
			 0);
	assert_string_equal(back.grep_invert, t.grep_invert);
	assert_task_equal(&t, &back);
	task_release(&back);
	free(buf);

	t.grep_invert = NULL;
	proto_encode_task(&t, &buf, &len);
	assert_null(memmem(buf, len, "grep_invert", 11));
	assert_int_equal(proto_decode_task(buf, len, &back, err, sizeof(err)),
			 0);
	assert_null(back.grep_invert);
	task_release(&back);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_task_roundtrip_full),
	    cmocka_unit_test(test_task_roundtrip_minimal),
	    cmocka_unit_test(test_result_roundtrip_full),
	    cmocka_unit_test(test_result_roundtrip_minimal),
	    cmocka_unit_test(test_progress_roundtrip),
	    cmocka_unit_test(test_wire_keys),
	    cmocka_unit_test(test_task_grep_invert),
	    cmocka_unit_test(test_truncated_every_prefix),
	    cmocka_unit_test(test_trailing_bytes),
	    cmocka_unit_test(test_single_test_result),
	    cmocka_unit_test(test_huge_string_message),
	    cmocka_unit_test(test_huge_counts),
	    cmocka_unit_test(test_item_limit),
	    cmocka_unit_test(test_max_message),
	    cmocka_unit_test(test_version_and_kind),
	    cmocka_unit_test(test_wrong_types),
	    cmocka_unit_test(test_bad_strings),
	    cmocka_unit_test(test_enums),
	    cmocka_unit_test(test_int_and_float_encodings),
	    cmocka_unit_test(test_nil_and_nonfinite),
	    cmocka_unit_test(test_unknown_keys_skipped),
	    cmocka_unit_test(test_depth),
	    cmocka_unit_test(test_small_err_buffer),
	    cmocka_unit_test(test_task_keep_artifacts),
	    cmocka_unit_test(test_task_keep_artifacts_wire),
	    cmocka_unit_test(test_result_artifacts_roundtrip),
	    cmocka_unit_test(test_result_artifacts_wire_keys),
	    cmocka_unit_test(test_result_artifacts_bad),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
