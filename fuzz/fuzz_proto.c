/* fuzz_proto.c -- libFuzzer target for the wire codec (shared/proto.c).
 * Arbitrary bytes go to proto_peek_kind and to all three decoders; whatever
 * decodes is encoded again, decoded again and encoded a third time, and the
 * two encodings must be identical (a decoded message survives a round trip
 * unchanged). Errors must be one line starting with "proto: ".
 *
 * Build and run without the Makefile (from the repository root):
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE \
 *       -Ishared fuzz/fuzz_proto.c shared/proto.c shared/xmalloc.c \
 *       -lmsgpackc -lm -o build/fuzz_proto
 *   mkdir -p build/fuzz-corpus
 *   build/fuzz_proto -max_total_time=60 -max_len=4096 \
 *       build/fuzz-corpus fuzz/corpus/proto
 *
 * or `make fuzz` (FUZZ_SECONDS=60 by default). The seeds in
 * fuzz/corpus/proto are valid messages of each kind; to regenerate them,
 * run the binary once with FUZZ_PROTO_WRITE_SEEDS=fuzz/corpus/proto in the
 * environment. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static void check_err(const char *err)
{
	if (strncmp(err, "proto: ", 7) != 0 || strchr(err, '\n') != NULL) {
		fprintf(stderr, "bad error message: \"%s\"\n", err);
		abort();
	}
}

static void same_or_die(const char *what, const char *a, size_t alen,
			const char *b, size_t blen)
{
	if (alen != blen || memcmp(a, b, alen) != 0) {
		fprintf(stderr,
			"%s: round trip changed the message (%zu vs "
			"%zu bytes)\n",
			what, alen, blen);
		abort();
	}
}

static void roundtrip_task(const struct task *t)
{
	struct task again;
	char err[256];
	char *a, *b;
	size_t alen, blen;

	proto_encode_task(t, &a, &alen);
	if (proto_decode_task(a, alen, &again, err, sizeof(err)) != 0) {
		fprintf(stderr, "task: re-encoded message rejected: %s\n", err);
		abort();
	}
	proto_encode_task(&again, &b, &blen);
	same_or_die("task", a, alen, b, blen);
	task_release(&again);
	free(a);
	free(b);
}

static void roundtrip_result(const struct task_result *r)
{
	struct task_result again;
	char err[256];
	char *a, *b;
	size_t alen, blen;

	proto_encode_task_result(r, &a, &alen);
	if (proto_decode_task_result(a, alen, &again, err, sizeof(err)) != 0) {
		fprintf(stderr, "result: re-encoded message rejected: %s\n",
			err);
		abort();
	}
	proto_encode_task_result(&again, &b, &blen);
	same_or_die("result", a, alen, b, blen);
	task_result_release(&again);
	free(a);
	free(b);
}

static void roundtrip_progress(const struct progress *p)
{
	struct progress again;
	char err[256];
	char *a, *b;
	size_t alen, blen;

	proto_encode_progress(p, &a, &alen);
	if (proto_decode_progress(a, alen, &again, err, sizeof(err)) != 0) {
		fprintf(stderr, "progress: re-encoded message rejected: %s\n",
			err);
		abort();
	}
	proto_encode_progress(&again, &b, &blen);
	same_or_die("progress", a, alen, b, blen);
	progress_release(&again);
	free(a);
	free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf;
	char *copy;
	char err[256];
	enum proto_kind kind;
	struct task t;
	struct task_result r;
	struct progress p;
	int peeked, decoded = 0;

	/* An exact-size heap copy, so ASan catches any read past the end. */
	copy = malloc(size > 0 ? size : 1);
	if (size > 0)
		memcpy(copy, data, size);
	buf = copy;

	peeked = proto_peek_kind(buf, size, &kind, err, sizeof(err)) == 0;
	if (!peeked)
		check_err(err);

	if (proto_decode_task(buf, size, &t, err, sizeof(err)) == 0) {
		decoded++;
		if (!peeked || kind != PROTO_TASK)
			abort();
		roundtrip_task(&t);
		task_release(&t);
	} else {
		check_err(err);
	}
	if (proto_decode_task_result(buf, size, &r, err, sizeof(err)) == 0) {
		decoded++;
		if (!peeked || kind != PROTO_TASK_RESULT)
			abort();
		roundtrip_result(&r);
		task_result_release(&r);
	} else {
		check_err(err);
	}
	if (proto_decode_progress(buf, size, &p, err, sizeof(err)) == 0) {
		decoded++;
		if (!peeked || kind != PROTO_PROGRESS)
			abort();
		roundtrip_progress(&p);
		progress_release(&p);
	} else {
		check_err(err);
	}
	/* A message is of one kind only. */
	if (decoded > 1)
		abort();
	free(copy);
	return 0;
}

/* Seeds: with FUZZ_PROTO_WRITE_SEEDS=DIR set, writes one valid message of
 * each kind into DIR and exits. */
static void write_seed(const char *dir, const char *name, const char *buf,
		       size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (f == NULL || fwrite(buf, 1, len, f) != len) {
		perror(path);
		exit(1);
	}
	fclose(f);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static char *tests[] = {"tests/test_a.py::test_x[1-é]", "b.py::t"};
	static char *argvv[] = {"make", "check"};
	static struct kv env[] = {{"A", "1"}, {"LANG", "C.UTF-8"}};
	static struct test_result trs[] = {
	    {.id = "a.py::ok", .outcome = OUTCOME_PASSED, .duration_s = 0.01},
	    {.id = "a.py::bad",
	     .outcome = OUTCOME_FAILED,
	     .duration_s = 1.5,
	     .message = "assert 1 == 2",
	     .details = "Traceback",
	     .file = "a.py",
	     .line = 12},
	};
	static char *unfinished[] = {"a.py::never"};
	struct task t = {.run = "20261121-0542-k3f9",
			 .id = "t00042",
			 .attempt = 1,
			 .suite = "unit",
			 .phase = "default",
			 .runner = "pytest",
			 .queue = "default",
			 .cwd = "/src",
			 .mark = "not slow",
			 .kexpr = "x",
			 .grep = "g",
			 .timeout_s = 300,
			 .tests = tests,
			 .ntests = 2,
			 .argv = argvv,
			 .nargv = 2,
			 .env = env,
			 .nenv = 2};
	struct task_result r = {.run = "r",
				.task = "t00042",
				.attempt = 2,
				.worker = "host-3/slot-1",
				.suite = "unit",
				.phase = "default",
				.status = TASK_CRASHED,
				.exit_code = -1,
				.term_signal = 9,
				.started_at = 1763700000.5,
				.duration_s = 2.5,
				.message = "killed",
				.output = "out",
				.running = "a.py::never",
				.tests = trs,
				.ntests = 2,
				.unfinished = unfinished,
				.nunfinished = 1};
	struct progress p = {.run = "r",
			     .task = "t",
			     .attempt = 1,
			     .worker = "w",
			     .test = "a.py::ok",
			     .finished = 1,
			     .outcome = OUTCOME_PASSED,
			     .duration_s = 0.01};
	const char *dir = getenv("FUZZ_PROTO_WRITE_SEEDS");
	char *buf;
	size_t len;

	(void)argc;
	(void)argv;
	if (dir == NULL)
		return 0;
	proto_encode_task(&t, &buf, &len);
	write_seed(dir, "task", buf, len);
	free(buf);
	proto_encode_task_result(&r, &buf, &len);
	write_seed(dir, "result", buf, len);
	free(buf);
	proto_encode_progress(&p, &buf, &len);
	write_seed(dir, "progress", buf, len);
	free(buf);
	p.finished = 0;
	proto_encode_progress(&p, &buf, &len);
	write_seed(dir, "progress-start", buf, len);
	free(buf);
	exit(0);
}
