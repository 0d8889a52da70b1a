/* proto.h -- the messages that cross Redis: tasks the producer queues, and
 * the results and progress events workers publish. A pure msgpack codec:
 * buffers in, structs out. Every message is a map with "v" (the schema
 * version) and "k" (the kind); decoders are strict and bounded -- each
 * length and count is checked against the bytes left before anything is
 * allocated -- and reject unknown versions and kinds with a clear error.
 * The wire format is documented field by field in docs/protocol.md. */
#ifndef TF_PROTO_H
#define TF_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define PROTO_VERSION 1
#define PROTO_MAX_MSG (64u << 20)  /* largest message accepted */
#define PROTO_MAX_DEPTH 4	   /* maps and arrays nest no deeper */
#define PROTO_MAX_ITEMS (1u << 20) /* elements of one array or map */

enum outcome {
	OUTCOME_PASSED,
	OUTCOME_FAILED,
	OUTCOME_ERROR,
	OUTCOME_SKIPPED,
	OUTCOME_XFAILED,
	OUTCOME_XPASSED,
	OUTCOME_FLAKY,
	OUTCOME_COUNT
};

/* "passed", "failed", ... as in the JSON report. */
const char *outcome_name(enum outcome o);
/* Returns 0 and sets *out, or -1 for an unknown name. */
int outcome_parse(const char *name, enum outcome *out);

struct kv {
	char *key;
	char *value;
};

/* One unit of work: a runner invocation over some tests of one suite. */
struct task {
	char *run;	  /* run id, "20261121-0542-k3f9" */
	char *id;	  /* task id within the run, "t00042" */
	uint32_t attempt; /* 1 for the first delivery of this task id */
	char *suite;	  /* suite name ("default" without a config) */
	char *phase;	  /* phase name ("default" without a config) */
	char *runner;	  /* "pytest" | "playwright" | "command" */
	char *queue;	  /* capability queue, "default" */
	char *cwd;	  /* directory the runner starts in; NULL = worker's */
	char *mark;	  /* pytest -m expression or NULL */
	char *kexpr;	  /* pytest -k expression or NULL */
	char *grep;	  /* playwright --grep or NULL */
	uint32_t timeout_s; /* 0 = worker default */
	char **tests; /* runner ids (pytest node ids), passed after "--" */
	size_t ntests;
	char **argv; /* command runner only: the program and arguments */
	size_t nargv;
	struct kv *env; /* extra environment for the runner */
	size_t nenv;
	uint32_t reruns;   /* --retries budget left for failed tests */
	int rerun;	   /* 1: a --retries rerun of tests that failed */
	char *retried_for; /* why this attempt exists (transient reason of
			    * the previous one), or NULL */
	int keep_artifacts; /* 1: bring back what the runner leaves in
			     * $TESTFLEET_ARTIFACTS (docs/protocol.md) */
	char *grep_invert; /* playwright --grep-invert (the exclude: tags
			    * left out) or NULL */
};

/* One test's result. */
struct test_result {
	char *id; /* the runner's own id */
	enum outcome outcome;
	double duration_s;
	char *message; /* first line of the failure/skip reason, or NULL */
	char *details; /* long failure text (capped), or NULL */
	char *file;    /* source file, or NULL */
	uint32_t line; /* 0 = unknown */
};

/* How a task attempt ended, as the worker saw it. */
enum task_status {
	TASK_COMPLETED, /* runner exited on its own; tests[] are its results */
	TASK_CRASHED,	/* runner killed by a signal (see term_signal) */
	TASK_TIMEOUT,	/* runner exceeded timeout_s and was killed */
	TASK_ERROR, /* could not run: runner missing, bad task, usage error */
	TASK_CANCELLED, /* stopped by cancel or fail-fast */
	TASK_LOST,	/* its worker vanished; written by the reaper */
	TASK_STATUS_COUNT
};

const char *task_status_name(enum task_status s);

/* A file a task left in $TESTFLEET_ARTIFACTS. Kept in Redis (the run's
 * artifacts hash, field "<task>/<attempt>/<path>") when url and error are
 * NULL; uploaded to url; or not kept, for the reason in error. */
struct artifact {
	char *path;    /* relative, '/'-separated, no "." or ".." parts */
	uint64_t size; /* bytes */
	char *url;     /* where it was uploaded (no query string), or NULL */
	char *error;   /* one line: why it was not kept, or NULL */
};
int task_status_parse(const char *name, enum task_status *out);

/* The terminal record of one task attempt ("k":"result"), published with the
 * ack in one script. It is what the aggregator reads. */
struct task_result {
	char *run;
	char *task;
	uint32_t attempt;
	char *worker; /* "host-3/slot-1" */
	char *suite;
	char *phase;
	enum task_status status;
	int exit_code;	   /* -1 when killed by a signal */
	int term_signal;   /* 0 unless killed by a signal */
	double started_at; /* unix time, seconds */
	double duration_s;
	char *message; /* one line: why the task itself failed, or NULL */
	char *output;  /* captured stdout+stderr, head and tail, or NULL */
	char *running; /* the test running when it died, or NULL */
	struct test_result *tests;
	size_t ntests;
	char **unfinished; /* tests of the task with no result, or NULL */
	size_t nunfinished;
	char **retrying; /* tests handed to follow-up tasks (retried);
			  * they are neither results nor unfinished */
	size_t nretrying;
	char *retry_reason; /* why they are retried, or NULL */
	char *retried_for;  /* copied from the task */
	int rerun;	    /* copied from the task */
	struct artifact *artifacts; /* files left in $TESTFLEET_ARTIFACTS */
	size_t nartifacts;
};

/* A live progress event ("k":"progress"): a test started or finished.
 * Informational only; the aggregator never counts these. */
struct progress {
	char *run;
	char *task;
	uint32_t attempt;
	char *worker;
	char *test;
	int finished;	      /* 0 = started */
	enum outcome outcome; /* when finished */
	double duration_s;
};

enum proto_kind { PROTO_TASK, PROTO_TASK_RESULT, PROTO_PROGRESS };

/* Encoders: return a malloc'd buffer in *out and its length in *len; the
 * caller frees *out. Strings are encoded as msgpack str; NULL fields are
 * omitted. */
void proto_encode_task(const struct task *t, char **out, size_t *len);
void proto_encode_task_result(const struct task_result *r, char **out,
			      size_t *len);
void proto_encode_progress(const struct progress *p, char **out, size_t *len);
/* One test result alone: the map a task result carries in "tests" (no "v"
 * or "k"), as the worker keeps it in a task's partial-results hash. */
void proto_encode_test_result(const struct test_result *r, char **out,
			      size_t *len);

/* Reads "v" and "k" only. Returns 0 and sets *kind, or -1 with a message in
 * err (not a map, no version, unknown version, unknown kind, truncated). */
int proto_peek_kind(const char *buf, size_t len, enum proto_kind *kind,
		    char *err, size_t errlen);

/* Decoders: out is zeroed first and owns everything it points to on
 * success (release with the matching _release). Return 0, or -1 with a
 * one-line message in err ("proto: task.tests[3]: string of 4000000000
 * bytes but 12 left") and out left empty. Unknown keys are skipped (for
 * forward compatibility within a version); missing required keys, wrong
 * types, trailing bytes and oversized inputs are errors. */
int proto_decode_task(const char *buf, size_t len, struct task *out, char *err,
		      size_t errlen);
int proto_decode_task_result(const char *buf, size_t len,
			     struct task_result *out, char *err, size_t errlen);
int proto_decode_progress(const char *buf, size_t len, struct progress *out,
			  char *err, size_t errlen);
/* The counterpart of proto_encode_test_result, as strict and bounded as
 * the others (same contract). */
int proto_decode_test_result(const char *buf, size_t len,
			     struct test_result *out, char *err, size_t errlen);

void task_release(struct task *t);
void test_result_release(struct test_result *r);
void task_result_release(struct task_result *r);
void artifact_release(struct artifact *a);
void progress_release(struct progress *p);

#endif
