/* events.h -- the per-test events a runner writes on fd 3 (JSON lines, see
 * docs/protocol.md "Worker <-> runner"): split into lines with a cap,
 * parsed, and folded into the task's per-test results and the test that is
 * running now. Pure: bytes in, results out; no I/O. */
#ifndef TF_EVENTS_H
#define TF_EVENTS_H

#include <stddef.h>

#include "proto.h"

#define EVENTS_MAX_LINE (1u << 20)     /* longer lines are dropped */
#define EVENTS_MAX_ID (64u << 10)      /* test id bytes */
#define EVENTS_MAX_MSG 1000	       /* msg bytes, one line */
#define EVENTS_MAX_DETAILS (64u << 10) /* details bytes */
#define EVENTS_MAX_FILE 4096	       /* file bytes */
#define EVENTS_MAX_RESULTS 1000000     /* results kept per task */
/* Text kept across all results of a task. Past the soft limit details and
 * messages are dropped; past the hard limit whole results are, so the
 * published task result stays well under PROTO_MAX_MSG. */
#define EVENTS_SOFT_BYTES (24u << 20)
#define EVENTS_HARD_BYTES (40u << 20)

enum event_kind { EVENT_START, EVENT_FINISH };

/* One parsed line. For EVENT_START only test.id is set. */
struct runner_event {
	enum event_kind kind;
	struct test_result test;
};

/* Parses one line (no newline, len bytes). Returns 0 with *out filled (the
 * caller releases it with runner_event_release), or -1 with a one-line
 * message in err ("events: finish: bad outcome \"weird\""). Strings are
 * capped (msg also cut at its first newline), never rejected for length,
 * except an id longer than EVENTS_MAX_ID. */
int event_parse(const char *line, size_t len, struct runner_event *out,
		char *err, size_t errlen);
void runner_event_release(struct runner_event *ev);

/* Called for each event folded in (ev set, error NULL) and for each line
 * that was dropped (ev NULL, error says why). Both are borrowed for the
 * duration of the call. */
typedef void (*events_fn)(void *arg, const struct runner_event *ev,
			  const char *error);

struct events {
	char *line; /* the partial line, up to EVENTS_MAX_LINE */
	size_t line_len;
	int skipping; /* dropping the rest of an overlong line */
	struct test_result *results;
	size_t nresults;
	size_t cap;
	size_t *index; /* open-addressing hash: id -> result + 1 */
	size_t index_cap;
	size_t bytes;	   /* text held in results */
	char *running;	   /* started and not finished, or NULL */
	unsigned starts;   /* start events seen */
	unsigned finishes; /* finish events seen */
	unsigned dropped;  /* lines or results dropped */
	const char **only; /* events_only: sorted, borrowed ids, or NULL */
	size_t nonly;
	unsigned ignored; /* events for ids outside "only" */
};

void events_init(struct events *e);
void events_release(struct events *e);
/* Keeps only the events of these ids (borrowed: they must outlive e); the
 * others are counted in e->ignored and otherwise skipped -- not folded in,
 * not "running", not passed to the callback. For runners whose selectors
 * may run more than the task asked for (Playwright's file:line also runs
 * the other tests on that line). */
void events_only(struct events *e, char *const *ids, size_t n);
/* Feeds bytes from the pipe; complete lines are parsed and folded in. A
 * second finish for the same id replaces the first. fn may be NULL. */
void events_feed(struct events *e, const char *data, size_t len, events_fn fn,
		 void *arg);
/* End of stream: a last line without a newline is still parsed. */
void events_end(struct events *e, events_fn fn, void *arg);
/* The test started and not finished (borrowed), or NULL. */
const char *events_running(const struct events *e);
/* Moves the results out (caller owns the array and releases each entry
 * with test_result_release); e keeps no results afterwards. */
struct test_result *events_take_results(struct events *e, size_t *n);

#endif
