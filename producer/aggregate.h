/* aggregate.h -- the aggregator: a pure function from a run's task results
 * (the "result" entries of tf:run:<id>:results) to one merged report. Any
 * process can rebuild any run's report by feeding it the stream again. */
#ifndef TF_AGGREGATE_H
#define TF_AGGREGATE_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

struct report_test {
	char *id;
	char *suite;
	char *phase;
	char *task;
	enum outcome outcome;
	uint32_t attempts;
	double duration_s;
	char *message;	   /* first line, or NULL */
	char *details;	   /* long failure text, or NULL */
	char *retried_for; /* transient reason of an earlier attempt, or NULL */
	char *worker;
	char *file;
	uint32_t line;
};

struct report_phase {
	char *name;
	char *status; /* passed | failed | error | skipped | cancelled */
	int required;
	double duration_s;
	unsigned tasks;	  /* task records seen */
	int has_planned;  /* the run hash had the plan's count */
	unsigned planned; /* tasks the plan had for the phase */
};

/* A task that did not complete normally, for the console and JUnit
 * system-out: its status, message and captured output. */
struct report_task_issue {
	char *task;
	char *status;  /* task_status_name(): crashed, timeout, ... */
	char *message; /* one line */
	char *output;  /* captured output, or NULL */
	char *suite;   /* the task's suite and phase (JUnit puts the */
	char *phase;   /* output in that suite's system-err) */
	char *worker;
};

/* A file a task attempt left in $TESTFLEET_ARTIFACTS (proto.h struct
 * artifact), with where it landed once fetched. */
struct report_artifact {
	char *task;
	uint32_t attempt;
	char *path;  /* relative, as the worker listed it */
	uint64_t size;
	char *url;   /* uploaded there, or NULL (kept in Redis) */
	char *error; /* the worker could not keep it: why; or NULL */
	char *file;  /* the local copy (fetch_artifacts), or NULL */
	char *fetch_error; /* kept, but fetch_artifacts failed: why */
};

/* How long a task attempt that completed with a result for each of its
 * tests took, and how much of that its tests took: the rest is its
 * start-up (docs/scheduling.md, the history learns it). */
struct report_task_time {
	char *suite;
	double started_at; /* unix seconds */
	double duration_s; /* the whole attempt, as the worker timed it */
	double tests_s;	   /* the sum of its tests' durations */
};

struct report {
	char *run;
	char *status;	   /* passed | failed | error | cancelled */
	double started_at; /* unix seconds */
	double finished_at;
	unsigned totals[OUTCOME_COUNT];
	unsigned ntotal; /* sum of totals */
	struct report_phase *phases;
	size_t nphases;
	struct report_test *tests; /* in stable order: by phase, then id */
	size_t ntests;
	struct report_task_issue *issues;
	size_t nissues;
	unsigned tasks_expected; /* 0 = unknown */
	unsigned tasks_seen;
	/* Appended: every record's artifacts, in arrival order. */
	struct report_artifact *artifacts;
	size_t nartifacts;
	/* Appended: the timing of every record that completed with all its
	 * tests' results (no unfinished or retrying ones), arrival order. */
	struct report_task_time *times;
	size_t ntimes;
};

struct aggregator;

struct aggregator *aggregator_new(const char *run);
void aggregator_free(struct aggregator *a);
/* Declares a phase (order of calls = report order) and whether it is
 * required. Phases only seen in results are added as required. */
void aggregator_phase(struct aggregator *a, const char *name, int required);
/* A phase ran out of its timeout (the run hash says so; docs/delivery.md
 * "Phases"): it is "failed" whatever its tests did, and report.issues
 * lists it (task "phase NAME", status "timeout"). Adds the phase (as
 * required) when it was not declared. Idempotent. */
void aggregator_phase_timeout(struct aggregator *a, const char *name,
			      unsigned timeout_s);
/* The number of tasks the plan had for phase name (the run hash's
 * ph:<i>:planned): its report's "planned", against "tasks" that ran. Adds
 * the phase (as required) when it was not declared. */
void aggregator_phase_planned(struct aggregator *a, const char *name,
			      unsigned tasks);
void aggregator_expect_tasks(struct aggregator *a, unsigned tasks);
/* Run start and end (unix seconds); 0 = unknown, taken from the earliest
 * start and latest end of the task results instead. */
void aggregator_set_times(struct aggregator *a, double started_at,
			  double finished_at);
void aggregator_set_cancelled(struct aggregator *a);
/* Folds one result record in (borrowed; copied). A record is one attempt
 * of some tests (docs/delivery.md); a second record for a task id already
 * seen is ignored and counted as a duplicate. Per test, the result from
 * the record with the highest attempt is final (the later record on a
 * tie; a second real result at the same attempt also counts as a
 * duplicate); "attempts" is the highest attempt of any record naming the
 * test, and "retried_for" the final record's reason when attempts > 1.
 * Tests a record lists as unfinished become "error" with the record's
 * reason ("runner killed by signal 11 (SIGSEGV) while running this test",
 * "worker lost"). Tests it lists as retrying are neither results nor
 * unfinished: they are pending until a later attempt brings a result; if
 * none ever does they are reported "error" ("retry never ran"), or left
 * out when the run was cancelled. A test that failed and then passed on a
 * --retries rerun (a record with rerun set) is "flaky"; one that passed
 * after a transient retry stays "passed". A record that did not complete,
 * or left tests unfinished, is listed in report.issues (unless it handed
 * all that was left to follow-ups); one that failed naming no test at all
 * makes the run "error" (its tests cannot be accounted for). The outcome
 * of every test is decided by aggregator_report; the order of records
 * only matters for ties. */
void aggregator_add(struct aggregator *a, const struct task_result *r);
unsigned aggregator_duplicates(const struct aggregator *a);
/* Builds the report; the aggregator stays usable. Caller frees. */
struct report *aggregator_report(const struct aggregator *a);
void report_free(struct report *r);
void report_artifact_release(struct report_artifact *x);

/* The run's status (aggregator_report): "cancelled"; else "error" when
 * tasks are missing or lost; else "failed" when a required phase failed
 * (a failed or errored test in it, or its timeout); else "passed" --
 * failures in optional phases (required: false) are reported in tests,
 * totals and phases but do not fail the run (DESIGN section 2: 0 = every
 * required phase passed).
 * 0 passed, 1 failed, 3 error (tasks lost/incomplete), 4 cancelled. */
int report_exit_code(const struct report *r);

#endif
