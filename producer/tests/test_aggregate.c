/* test_aggregate.c -- unit tests for producer/aggregate.c: deduplication of
 * tasks and tests, unfinished tests of crashed/timed-out/failed/cancelled
 * tasks, task issues, run status and exit code, phases (optional and
 * required failures, skipped phases, timeouts), ordering, totals,
 * times, and attempts: transient retries, --retries reruns (flaky), lost
 * workers' records, pending retries of cancelled runs, dead letters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aggregate.h"

#define T0 1795239730.0 /* 2026-11-21T05:42:10Z */

/* A task result over borrowed strings (the aggregator copies). */
static struct task_result mk_task(const char *task, const char *phase,
				  enum task_status status,
				  struct test_result *tests, size_t ntests)
{
	struct task_result r;

	memset(&r, 0, sizeof(r));
	r.run = (char *)"run-1";
	r.task = (char *)task;
	r.attempt = 1;
	r.worker = (char *)"host-1/slot-1";
	r.suite = (char *)"unit";
	r.phase = (char *)phase;
	r.status = status;
	r.exit_code = status == TASK_COMPLETED ? 0 : -1;
	r.started_at = T0;
	r.duration_s = 1.0;
	r.tests = tests;
	r.ntests = ntests;
	return r;
}

static struct test_result mk_test(const char *id, enum outcome o)
{
	struct test_result t;

	memset(&t, 0, sizeof(t));
	t.id = (char *)id;
	t.outcome = o;
	t.duration_s = 0.25;
	return t;
}

static const struct report_test *find_test(const struct report *r,
					   const char *id)
{
	size_t i;

	for (i = 0; i < r->ntests; i++)
		if (strcmp(r->tests[i].id, id) == 0)
			return &r->tests[i];
	fail_msg("test %s not in report", id);
	return NULL;
}

static const struct report_phase *find_phase(const struct report *r,
					     const char *name)
{
	size_t i;

	for (i = 0; i < r->nphases; i++)
		if (strcmp(r->phases[i].name, name) == 0)
			return &r->phases[i];
	fail_msg("phase %s not in report", name);
	return NULL;
}

static void check_totals_sum(const struct report *r)
{
	unsigned sum = 0;
	int i;

	for (i = 0; i < OUTCOME_COUNT; i++)
		sum += r->totals[i];
	assert_int_equal(sum, r->ntotal);
	assert_int_equal(r->ntotal, r->ntests);
}

static void test_copies_fields(void **state)
{
	struct test_result tests[1];
	struct task_result r;
	struct aggregator *a = aggregator_new("run-1");
	struct report *rep;
	const struct report_test *t;
	char id[] = "tests/test_a.py::test_x";
	char msg[] = "assert 1 == 2";

	(void)state;
	tests[0] = mk_test(id, OUTCOME_FAILED);
	tests[0].message = msg;
	tests[0].details = (char *)"long\ntext";
	tests[0].file = (char *)"tests/test_a.py";
	tests[0].line = 12;
	r = mk_task("t00001", "unit", TASK_COMPLETED, tests, 1);
	r.attempt = 2;
	r.worker = (char *)"host-3/slot-2";
	r.suite = (char *)"api";
	aggregator_add(a, &r);
	/* The aggregator copies: changing the input afterwards is harmless. */
	id[0] = 'X';
	msg[0] = 'X';
	rep = aggregator_report(a);
	aggregator_free(a);

	assert_int_equal(rep->ntests, 1);
	t = find_test(rep, "tests/test_a.py::test_x");
	assert_int_equal(t->outcome, OUTCOME_FAILED);
	assert_string_equal(t->message, "assert 1 == 2");
	assert_string_equal(t->details, "long\ntext");
	assert_string_equal(t->file, "tests/test_a.py");
	assert_int_equal(t->line, 12);
	assert_string_equal(t->worker, "host-3/slot-2");
	assert_string_equal(t->suite, "api");
	assert_string_equal(t->phase, "unit");
	assert_string_equal(t->task, "t00001");
	assert_int_equal(t->attempts, 2);
	assert_true(t->duration_s == 0.25);
	assert_null(t->retried_for);
	assert_string_equal(rep->run, "run-1");
	report_free(rep);
}

static void test_dedupe_task(void **state)
{
	struct test_result tests[2];
	struct task_result r, again;
	struct aggregator *a = aggregator_new("run-1");
	struct report *rep;

	(void)state;
	tests[0] = mk_test("a::x", OUTCOME_PASSED);
	tests[1] = mk_test("a::y", OUTCOME_PASSED);
	r = mk_task("t1", "unit", TASK_COMPLETED, tests, 2);
	aggregator_add(a, &r);
	assert_int_equal(aggregator_duplicates(a), 0);
	/* Redelivered with other content: still ignored. */
	again = mk_task("t1", "unit", TASK_CRASHED, NULL, 0);
	aggregator_add(a, &again);
	aggregator_add(a, &r);
	assert_int_equal(aggregator_duplicates(a), 2);
	rep = aggregator_report(a);
	assert_int_equal(rep->ntotal, 2);
	assert_int_equal(rep->totals[OUTCOME_PASSED], 2);
	assert_int_equal(rep->tasks_seen, 1);
	assert_int_equal(rep->nissues, 0);
	assert_int_equal(find_phase(rep, "unit")->tasks, 1);
	assert_string_equal(rep->status, "passed");
	check_totals_sum(rep);
	report_free(rep);
	aggregator_free(a);
}

/* Two records with a result for the same test at the same attempt (not
 * supposed to happen): the later one is final, and it is counted. */
static void test_dedupe_test_across_tasks(void **state)
{
	struct test_result t1[1], t2[2];
	struct task_result r1, r2;
	struct aggregator *a = aggregator_new("run-1");
	struct report *rep;
	const struct report_test *t;

	(void)state;
	t1[0] = mk_test("a::x", OUTCOME_PASSED);
	t2[0] = mk_test("a::x", OUTCOME_FAILED);
	t2[1] = mk_test("a::z", OUTCOME_PASSED);
	r1 = mk_task("t1", "unit", TASK_COMPLETED, t1, 1);
	r2 = mk_task("t2", "unit", TASK_COMPLETED, t2, 2);
	aggregator_add(a, &r1);
	aggregator_add(a, &r2);
	assert_int_equal(aggregator_duplicates(a), 1);
	rep = aggregator_report(a);
	assert_int_equal(rep->ntotal, 2);
	t = find_test(rep, "a::x");
	assert_int_equal(t->outcome, OUTCOME_FAILED);
	assert_string_equal(t->task, "t2");
	assert_int_equal(t->attempts, 1);
	assert_string_equal(rep->status, "failed");
	assert_int_equal(rep->tasks_seen, 2);
	check_totals_sum(rep);
	report_free(rep);
	aggregator_free(a);
}

/* The higher attempt wins whatever the order, and a lower attempt arriving
 * late changes nothing but the failure history. */
static void test_highest_attempt_wins(void **state)
{
	struct test_result t1[1], t2[1];
	struct task_result r1, r2;
	struct aggregator *a = aggregator_new("run-1");
	struct report *rep;
	const struct report_test *t;

	(void)state;
	t2[0] = mk_test("a::x", OUTCOME_PASSED);
	r2 = mk_task("t1.1", "unit", TASK_COMPLETED, t2, 1);
	r2.attempt = 3;
	aggregator_add(a, &r2);
	t1[0] = mk_test("a::x", OUTCOME_FAILED);
	r1 = mk_task("t1", "unit", TASK_COMPLETED, t1, 1);
	r1.attempt = 1;
	aggregator_add(a, &r1);
	assert_int_equal(aggregator_duplicates(a), 0);
	rep = aggregator_report(a);
	t = find_test(rep, "a::x");
	assert_int_equal(t->outcome, OUTCOME_PASSED);
	assert_string_equal(t->task, "t1.1");
	assert_int_equal(t->attempts, 3);
	assert_null(t->retried_for);
	assert_string_equal(rep->status, "passed");
	report_free(rep);
	aggregator_free(a);
}

static void test_crashed_task(void **state)
{
	struct test_result done[1];
	char *unfinished[] = {(char *)"a::b", (char *)"a::c"};
	struct task_result r;
	struct aggregator *a = aggregator_new("run-1");
	struct report *rep;
	const struct report_test *t;

	(void)state;
	done[0] = mk_test("a::a", OUTCOME_PASSED);
	r = mk_task("t1", "unit", TASK_CRASHED, done, 1);
	r.term_signal = 11;
	r.running = (char *)"a::b";
	r.output = (char *)"Fatal Python error: Segmentation fault\n";
	r.unfinished = unfinished;
	r.nunfinished = 2;
	aggregator_add(a, &r);
	rep = aggregator_report(a);

	/* Partial results survive. */
	assert_int_equal(find_test(rep, "a::a")->outcome, OUTCOME_PASSED);
	t = find_test(rep, "a::b");
	assert_int_equal(t->outcome, OUTCOME_ERROR);
	assert_string_equal(t->message, "runner killed by signal 11 (SIGSEGV) "
					"while running this test");
	assert_string_equal(t->details,
			    "Fatal Python error: Segmentation fault\n");
	assert_string_equal(t->task, "t1");
	assert_string_equal(t->worker, "host-1/slot-1");
	t = find_test(rep, "a::c");
	assert_int_equal(t->outcome, OUTCOME_ERROR);
	assert_string_equal(t->message, "runner killed by signal 11 (SIGSEGV) "
					"while running a::b");
	assert_null(t->details);

	assert_int_equal(rep->nissues, 1);
	assert_string_equal(rep->issues[0].task, "t1");
	assert_string_equal(rep->issues[0].status, "crashed");
	assert_string_equal(rep->issues[0].message,
			    "runner killed by signal 11 (SIGSEGV) while "
			    "running a::b");
	assert_string_equal(rep->issues[0].output,
			    "Fatal Python error: Segmentation fault\n");
	assert_string_equal(rep->issues[0].suite, "unit");
	assert_string_equal(rep->issues[0].phase, "unit");
	assert_string_equal(rep->status, "failed");
	assert_int_equal(report_exit_code(rep), 1);
	assert_int_equal(rep->totals[OUTCOME_ERROR], 2);
	check_totals_sum(rep);
	report_free(rep);
	aggregator_free(a);
}

static void test_crashed_without_signal_or_running(void **state)
{
	char *unfinished[] = {(char *)"a::b"};
	struct task_result r;
	struct aggregator *a = aggregator_new("run-1");
	struct report *rep;

	(void)state;
	r = mk_task("t1", "unit", TASK_CRASHED, NULL, 0);
	r.term_signal = 9;
	r.unfinished = unfinished;
	r.nunfinished = 1;
	aggregator_add(a, &r);
	r = mk_task("t2", "unit", TASK_CRASHED, NULL, 0);
	r.exit_code = 70;
	unfinished[0] = (char *)"a::c";
	r.unfinished = unfinished;
	r.nunfinished = 1;
	aggregator_add(a, &r);
	rep = aggregator_report(a);
	assert_string_equal(find_test(rep, "a::b")->message,
			    "runner killed by signal 9 (SIGKILL)");
	assert_string_equal(find_test(rep, "a::c")->message,
			    "runner crashed (exit 70)");
	report_free(rep);
	aggregator_free(a);
}

static void test_timeout_task(void **state)
{
	struct test_result done[1];
	char *unfinished[] = {(char *)"a::slow", (char *)"a::later"};
	struct task_result r;
	struct aggregator *a = aggregator_new("run-1");
	struct report *rep;

	(void)state;
	done[0] = mk_test("a::fast", OUTCOME_PASSED);
	r = mk_task("t1", "unit", TASK_TIMEOUT, done, 1);
	r.duration_s = 300.02;
	r.running = (char *)"a::slow";
	r.unfinished = unfinished;
	r.nunfinished = 2;
	aggregator_add(a, &r);
	rep = aggregator_report(a);
	assert_int_equal(find_test(rep, "a::fast")->outcome, OUTCOME_PASSED);
	assert_string_equal(
	    find_test(rep, "a::slow")->message,
	    "task timed out after 300s (this test was running)");
	assert_string_equal(find_test(rep, "a::later")->message,
			    "task timed out after 300s");
	assert_int_equal(find_test(rep, "a::later")->outcome, OUTCOME_ERROR);
	assert_int_equal(rep->nissues, 1);
	assert_string_equal(rep->issues[0].status, "timeout");
	assert_string_equal(rep->issues[0].message,
			    "task timed out after 300s while running a::slow");
	report_free(rep);
	aggregator_free(a);
}

static void test_error_task(void **state)
{
	char *unfinished[] = {(char *)"a::x", (char *)"a::y"};
	struct task_result r;
	struct aggregator *a = aggregator_new("run-1");
	struct report *rep;

	(void)state;
	r = mk_task("t1", "unit", TASK_ERROR, NULL, 0);
	r.message = (char *)"runner not found: pytest\nsecond line";
	r.exit_code = 127;
	r.unfinished = unfinished;
	r.nunfinished = 2;
	aggregator_add(a, &r);
	rep = aggregator_report(a);
	assert_string_equal(find_test(rep, "a::x")->message,
			    "runner not found: pytest");
	assert_string_equal(find_test(rep, "a::y")->message,
			    "runner not found: pytest");
	assert_int_equal(rep->totals[OUTCOME_ERROR], 2);
	assert_int_equal(rep->nissues, 1);
	assert_string_equal(rep->issues[0].status, "error");
	assert_string_equal(rep->issues[0].message, "runner not found: pytest");
	assert_string_equal(rep->status, "failed");
	report_free(rep);
	aggregator_free(a);
}

static void test_completed_with_missing(void **state)
{
	struct test_result done[1];
	char *unfinished[] = {(char *)"a::gone"};
	struct task_result r;
	struct aggregator *a = aggregator_new("run-1");
	struct report *rep;

	(void)state;
	done[0] = mk_test("a::ok", OUTCOME_PASSED);
	r = mk_task("t1", "unit", TASK_COMPLETED, done, 1);
	r.exit_code = 2;
	r.output = (char *)"ERROR collecting a.py\n";
	r.unfinished = unfinished;
	r.nunfinished = 1;
	aggregator_add(a, &r);
	rep = aggregator_report(a);
	assert_string_equal(find_test(rep, "a::gone")->message,
			    "no result from the runner (exit 2)");
	/* Shown with its output, though the task itself completed. */
	assert_int_equal(rep->nissues, 1);
	assert_string_equal(rep->issues[0].status, "completed");
	assert_string_equal(rep->issues[0].message,
			    "no result from the runner for 1 test (exit 2)");
	assert_string_equal(rep->issues[0].output, "ERROR collecting a.py\n");
	assert_string_equal(rep->status, "failed");
	report_free(rep);
	aggregator_free(a);
}

static void test_cancelled_task(void **state)
{
	char *unfinished[] = {(char *)"a::x"};
	struct task_result r;
	struct aggregator *a = aggregator_new("run-1");
	struct report *rep;

	(void)state;
	r = mk_task("t1", "unit", TASK_CANCELLED, NULL, 0);
	r.unfinished = unfinished;
	r.nunfinished = 1;
	aggregator_add(a, &r);
	rep = aggregator_report(a);
	assert_int_equal(find_test(rep, "a::x")->outcome, OUTCOME_ERROR);
	assert_string_equal(find_test(rep, "a::x")->message, "cancelled");
	assert_string_equal(rep->issues[0].status, "cancelled");
	report_free(rep);

	aggregator_set_cancelled(a);
	rep = aggregator_report(a);
	assert_string_equal(rep->status, "cancelled");
	assert_int_equal(report_exit_code(rep), 4);
	report_free(rep);
	aggregator_free(a);
}

static void test_status_and_exit_code(void **state)
{
	struct test_result ok[3], bad[1], err[1];
	struct task_result r;
	struct aggregator *a = aggregator_new("run-1");
	struct report *rep;

	(void)state;
	/* Nothing yet: passed (nothing failed, nothing expected). */
	rep = aggregator_report(a);
	assert_string_equal(rep->status, "passed");
	assert_int_equal(report_exit_code(rep), 0);
	assert_int_equal(rep->ntotal, 0);
	report_free(rep);

	/* flaky, xpassed, skipped and xfailed do not fail a run. */
	ok[0] = mk_test("a::flaky", OUTCOME_FLAKY);
	ok[1] = mk_test("a::xpass", OUTCOME_XPASSED);
	ok[2] = mk_test("a::skip", OUTCOME_SKIPPED);
	r = mk_task("t1", "unit", TASK_COMPLETED, ok, 3);
	aggregator_add(a, &r);
	aggregator_expect_tasks(a, 3);
	rep = aggregator_report(a);
	/* 1 of 3 tasks seen: the run is incomplete. */
	assert_string_equal(rep->status, "error");
	assert_int_equal(report_exit_code(rep), 3);
	assert_int_equal(rep->tasks_expected, 3);
	assert_int_equal(rep->tasks_seen, 1);
	report_free(rep);

	bad[0] = mk_test("a::xfail", OUTCOME_XFAILED);
	r = mk_task("t2", "unit", TASK_COMPLETED, bad, 1);
	aggregator_add(a, &r);
	err[0] = mk_test("a::e", OUTCOME_ERROR);
	r = mk_task("t3", "unit", TASK_COMPLETED, err, 0);
	aggregator_add(a, &r);
	rep = aggregator_report(a);
	assert_string_equal(rep->status, "passed");
	assert_int_equal(report_exit_code(rep), 0);
	report_free(rep);

	r = mk_task("t4", "unit", TASK_COMPLETED, err, 1);
	aggregator_add(a, &r);
	rep = aggregator_report(a); /* 4 seen >= 3 expected */
	assert_string_equal(rep->status, "failed");
	assert_int_equal(report_exit_code(rep), 1);
	report_free(rep);

	aggregator_set_cancelled(a);
	rep = aggregator_report(a);
	assert_string_equal(rep->status, "cancelled");
	assert_int_equal(report_exit_code(rep), 4);
	report_free(rep);
	aggregator_free(a);
}

static void test_failed_outcome_fails_run(void **state)
{
	struct test_result t[2];
	struct task_result r;
	struct aggregator *a = aggregator_new("run-1");
	struct report *rep;

	(void)state;
	t[0] = mk_test("a::ok", OUTCOME_PASSED);
	t[1] = mk_test("a::bad", OUTCOME_FAILED);
	r = mk_task("t1", "unit", TASK_COMPLETED, t, 2);
	aggregator_add(a, &r);
	rep = aggregator_report(a);
	assert_string_equal(rep->status, "failed");
	assert_int_equal(report_exit_code(rep), 1);
	assert_string_equal(find_phase(rep, "unit")->status, "failed");
	report_free(rep);
	aggregator_free(a);
}

/* A crashed task with neither results nor unfinished tests would vanish
 * from the counts: the run must not pass. */
static void test_lost_task_is_error(void **state)
{
	struct test_result t[1];
	struct task_result r;
	struct aggregator *a = aggregator_new("run-1");
	struct report *rep;

	(void)state;
	t[0] = mk_test("a::ok", OUTCOME_PASSED);
	r = mk_task("t1", "unit", TASK_COMPLETED, t, 1);
	aggregator_add(a, &r);
	r = mk_task("t2", "unit", TASK_ERROR, NULL, 0);
	r.message = (char *)"bad task: no tests";
	aggregator_add(a, &r);
	rep = aggregator_report(a);
	assert_string_equal(rep->status, "error");
	assert_int_equal(report_exit_code(rep), 3);
	assert_string_equal(find_phase(rep, "unit")->status, "error");
	assert_int_equal(rep->nissues, 1);
	assert_string_equal(rep->issues[0].message, "bad task: no tests");
	report_free(rep);
	aggregator_free(a);
}

static void test_phases(void **state)
{
	struct test_result u[2], e[1], x[1];
	struct task_result r;
	struct aggregator *a = aggregator_new("run-1");
	struct report *rep;
	const struct report_phase *p;

	(void)state;
	aggregator_phase(a, "unit", 1);
	aggregator_phase(a, "e2e", 0);
	aggregator_phase(a, "lint", 1);

	/* Results arrive for e2e first, and for an undeclared phase. */
	e[0] = mk_test("e::one", OUTCOME_FAILED);
	r = mk_task("t3", "e2e", TASK_COMPLETED, e, 1);
	r.started_at = T0 + 10;
	r.duration_s = 5;
	aggregator_add(a, &r);
	x[0] = mk_test("x::one", OUTCOME_PASSED);
	r = mk_task("t4", "extra", TASK_COMPLETED, x, 1);
	aggregator_add(a, &r);
	u[0] = mk_test("u::one", OUTCOME_PASSED);
	u[1] = mk_test("u::two", OUTCOME_SKIPPED);
	r = mk_task("t1", "unit", TASK_COMPLETED, u, 1);
	r.started_at = T0;
	r.duration_s = 2;
	aggregator_add(a, &r);
	r = mk_task("t2", "unit", TASK_COMPLETED, &u[1], 1);
	r.started_at = T0 + 1;
	r.duration_s = 3.5;
	aggregator_add(a, &r);
	aggregator_add(a, &r); /* duplicate: not a second task */

	rep = aggregator_report(a);
	assert_int_equal(rep->nphases, 4);
	assert_string_equal(rep->phases[0].name, "unit");
	assert_string_equal(rep->phases[1].name, "e2e");
	assert_string_equal(rep->phases[2].name, "lint");
	assert_string_equal(rep->phases[3].name, "extra");

	p = find_phase(rep, "unit");
	assert_string_equal(p->status, "passed");
	assert_int_equal(p->required, 1);
	assert_int_equal(p->tasks, 2);
	assert_true(p->duration_s > 4.5 - 1e-9 && p->duration_s < 4.5 + 1e-9);
	p = find_phase(rep, "e2e");
	assert_string_equal(p->status, "failed");
	assert_int_equal(p->required, 0);
	assert_int_equal(p->tasks, 1);
	assert_true(p->duration_s > 5 - 1e-9 && p->duration_s < 5 + 1e-9);
	p = find_phase(rep, "lint");
	assert_string_equal(p->status, "skipped");
	assert_int_equal(p->tasks, 0);
	assert_true(p->duration_s == 0);
	p = find_phase(rep, "extra");
	assert_string_equal(p->status, "passed");
	assert_int_equal(p->required, 1);
	assert_int_equal(p->tasks, 1);
	report_free(rep);

	/* Declaring a phase seen in results moves it among the declared. */
	aggregator_phase(a, "extra", 0);
	rep = aggregator_report(a);
	assert_string_equal(rep->phases[3].name, "extra");
	assert_int_equal(rep->phases[3].required, 0);
	report_free(rep);
	aggregator_free(a);
}

static void test_optional_phase_failure_passes_run(void **state)
{
	struct test_result u[1], l[2];
	struct task_result r;
	struct aggregator *a = aggregator_new("run-1");
	struct report *rep;
	const struct report_phase *p;

	(void)state;
	aggregator_phase(a, "lint", 0);
	aggregator_phase(a, "unit", 1);
	l[0] = mk_test("l::one", OUTCOME_FAILED);
	l[1] = mk_test("l::two", OUTCOME_ERROR);
	r = mk_task("t1", "lint", TASK_COMPLETED, l, 2);
	aggregator_add(a, &r);
	u[0] = mk_test("u::one", OUTCOME_PASSED);
	r = mk_task("t2", "unit", TASK_COMPLETED, u, 1);
	aggregator_add(a, &r);
	rep = aggregator_report(a);
	/* The optional phase failed and says so, with its tests in the
	 * totals; the run passed: every required phase did. */
	p = find_phase(rep, "lint");
	assert_string_equal(p->status, "failed");
	assert_int_equal(p->required, 0);
	assert_string_equal(find_phase(rep, "unit")->status, "passed");
	assert_int_equal(rep->totals[OUTCOME_FAILED], 1);
	assert_int_equal(rep->totals[OUTCOME_ERROR], 1);
	assert_int_equal(find_test(rep, "l::one")->outcome, OUTCOME_FAILED);
	assert_string_equal(rep->status, "passed");
	assert_int_equal(report_exit_code(rep), 0);
	report_free(rep);

	/* The same failure in a required phase fails the run. */
	aggregator_phase(a, "lint", 1);
	rep = aggregator_report(a);
	assert_string_equal(rep->status, "failed");
	assert_int_equal(report_exit_code(rep), 1);
	report_free(rep);
	aggregator_free(a);
}

static void test_required_failure_skips_later_phases(void **state)
{
	struct test_result t[1];
	struct task_result r;
	struct aggregator *a = aggregator_new("run-1");
	struct report *rep;
	const struct report_phase *p;

	(void)state;
	aggregator_phase(a, "smoke", 1);
	aggregator_phase(a, "unit", 1);
	aggregator_phase(a, "e2e", 0);
	t[0] = mk_test("s::one", OUTCOME_FAILED);
	r = mk_task("t1", "smoke", TASK_COMPLETED, t, 1);
	aggregator_add(a, &r);
	aggregator_expect_tasks(a, 1);
	rep = aggregator_report(a);
	assert_string_equal(find_phase(rep, "smoke")->status, "failed");
	p = find_phase(rep, "unit");
	assert_string_equal(p->status, "skipped");
	assert_int_equal(p->required, 1);
	assert_int_equal(p->tasks, 0);
	assert_true(p->duration_s == 0);
	assert_string_equal(find_phase(rep, "e2e")->status, "skipped");
	/* Their tests never ran: not in the report. */
	assert_int_equal(rep->ntests, 1);
	assert_string_equal(rep->status, "failed");
	assert_int_equal(report_exit_code(rep), 1);
	report_free(rep);
	aggregator_free(a);
}

static void test_phase_timeout_fails_phase(void **state)
{
	struct test_result t[1];
	struct task_result r;
	struct aggregator *a = aggregator_new("run-1");
	struct report *rep;
	const struct report_task_issue *is;

	(void)state;
	aggregator_phase(a, "slow", 0);
	aggregator_phase(a, "health", 1);
	aggregator_phase(a, "unit", 1);
	t[0] = mk_test("s::one", OUTCOME_PASSED);
	r = mk_task("t1", "slow", TASK_COMPLETED, t, 1);
	r.suite = (char *)"perf";
	aggregator_add(a, &r);
	t[0] = mk_test("u::one", OUTCOME_PASSED);
	r = mk_task("t2", "unit", TASK_COMPLETED, t, 1);
	aggregator_add(a, &r);
	/* An optional phase that timed out (its tests passed so far). */
	aggregator_phase_timeout(a, "slow", 30);
	aggregator_phase_timeout(a, "slow", 30); /* declared again: once */
	rep = aggregator_report(a);
	assert_string_equal(find_phase(rep, "slow")->status, "failed");
	assert_string_equal(rep->status, "passed");
	assert_int_equal(rep->nissues, 1);
	is = &rep->issues[0];
	assert_string_equal(is->task, "phase slow");
	assert_string_equal(is->status, "timeout");
	assert_non_null(strstr(is->message, "timed out after 30s"));
	assert_string_equal(is->suite, "perf");
	assert_string_equal(is->phase, "slow");
	report_free(rep);

	/* A required one that timed out before any record: failed run. */
	aggregator_phase_timeout(a, "health", 0);
	rep = aggregator_report(a);
	assert_string_equal(find_phase(rep, "health")->status, "failed");
	assert_int_equal(find_phase(rep, "health")->tasks, 0);
	assert_string_equal(rep->status, "failed");
	assert_int_equal(report_exit_code(rep), 1);
	assert_int_equal(rep->nissues, 2);
	/* Issues of timed-out phases come in phase order. */
	assert_string_equal(rep->issues[0].task, "phase slow");
	assert_string_equal(rep->issues[1].task, "phase health");
	assert_null(rep->issues[1].suite);
	report_free(rep);
	aggregator_free(a);
}

static void test_phase_declared_after_results(void **state)
{
	struct test_result t[1];
	struct task_result r;
	struct aggregator *a = aggregator_new("run-1");
	struct report *rep;

	(void)state;
	t[0] = mk_test("b::x", OUTCOME_PASSED);
	r = mk_task("t1", "second", TASK_COMPLETED, t, 1);
	aggregator_add(a, &r);
	t[0] = mk_test("z::x", OUTCOME_PASSED);
	r = mk_task("t2", "seen-only", TASK_COMPLETED, t, 1);
	aggregator_add(a, &r);
	aggregator_phase(a, "first", 1);
	aggregator_phase(a, "second", 1);
	rep = aggregator_report(a);
	assert_int_equal(rep->nphases, 3);
	assert_string_equal(rep->phases[0].name, "first");
	assert_string_equal(rep->phases[1].name, "second");
	assert_string_equal(rep->phases[2].name, "seen-only");
	report_free(rep);
	aggregator_free(a);
}

static void test_ordering(void **state)
{
	struct test_result t1[3], t2[2];
	struct task_result r;
	struct aggregator *a = aggregator_new("run-1");
	struct report *rep;
	static const char *const want[] = {
	    "a/test_b.py::test_1",
	    "a/test_b.py::test_2",
	    "b::z",
	    "a::a",
	    "c::c",
	};
	size_t i;

	(void)state;
	aggregator_phase(a, "unit", 1);
	aggregator_phase(a, "e2e", 1);
	t2[0] = mk_test("c::c", OUTCOME_PASSED);
	t2[1] = mk_test("a::a", OUTCOME_PASSED);
	r = mk_task("t2", "e2e", TASK_COMPLETED, t2, 2);
	aggregator_add(a, &r);
	t1[0] = mk_test("b::z", OUTCOME_PASSED);
	t1[1] = mk_test("a/test_b.py::test_2", OUTCOME_PASSED);
	t1[2] = mk_test("a/test_b.py::test_1", OUTCOME_PASSED);
	r = mk_task("t1", "unit", TASK_COMPLETED, t1, 3);
	aggregator_add(a, &r);
	rep = aggregator_report(a);
	assert_int_equal(rep->ntests, 5);
	for (i = 0; i < 5; i++)
		assert_string_equal(rep->tests[i].id, want[i]);
	report_free(rep);
	aggregator_free(a);
}

static void test_totals(void **state)
{
	struct test_result t[OUTCOME_COUNT * 2];
	char ids[OUTCOME_COUNT * 2][16];
	struct task_result r;
	struct aggregator *a = aggregator_new("run-1");
	struct report *rep;
	int i;

	(void)state;
	for (i = 0; i < OUTCOME_COUNT * 2; i++) {
		snprintf(ids[i], sizeof(ids[i]), "t::%02d", i);
		/* outcome i % 7, plus one more "passed" for i == 13 */
		t[i] = mk_test(ids[i], (enum outcome)(i < OUTCOME_COUNT * 2 - 1
							  ? i % OUTCOME_COUNT
							  : 0));
	}
	r = mk_task("t1", "unit", TASK_COMPLETED, t, OUTCOME_COUNT * 2);
	aggregator_add(a, &r);
	rep = aggregator_report(a);
	assert_int_equal(rep->ntotal, OUTCOME_COUNT * 2);
	assert_int_equal(rep->totals[OUTCOME_PASSED], 3);
	for (i = 1; i < OUTCOME_COUNT - 1; i++)
		assert_int_equal(rep->totals[i], 2);
	assert_int_equal(rep->totals[OUTCOME_FLAKY], 1);
	check_totals_sum(rep);
	report_free(rep);
	aggregator_free(a);
}

static void test_times(void **state)
{
	struct task_result r;
	struct aggregator *a = aggregator_new("run-1");
	struct report *rep;

	(void)state;
	r = mk_task("t1", "unit", TASK_COMPLETED, NULL, 0);
	r.started_at = T0 + 5;
	r.duration_s = 10;
	aggregator_add(a, &r);
	r = mk_task("t2", "unit", TASK_COMPLETED, NULL, 0);
	r.started_at = T0 + 2;
	r.duration_s = 1;
	aggregator_add(a, &r);
	rep = aggregator_report(a);
	assert_true(rep->started_at == T0 + 2);
	assert_true(rep->finished_at == T0 + 15);
	report_free(rep);

	aggregator_set_times(a, T0, T0 + 20.5);
	rep = aggregator_report(a);
	assert_true(rep->started_at == T0);
	assert_true(rep->finished_at == T0 + 20.5);
	report_free(rep);

	/* Only the start known (run still going): end from the results. */
	aggregator_set_times(a, T0, 0);
	rep = aggregator_report(a);
	assert_true(rep->started_at == T0);
	assert_true(rep->finished_at == T0 + 15);
	report_free(rep);
	aggregator_free(a);
}

/* A follow-up that brings a real result replaces the "unfinished" error
 * of the attempt before it; a record of an older worker carries no
 * retried_for, so the earlier error says why. */
static void test_retry_replaces_unfinished(void **state)
{
	char *unfinished[] = {(char *)"a::x", (char *)"a::y"};
	struct test_result t[2];
	struct task_result r;
	struct aggregator *a = aggregator_new("run-1");
	struct report *rep;
	const struct report_test *rt;

	(void)state;
	r = mk_task("t1", "unit", TASK_CRASHED, NULL, 0);
	r.term_signal = 9;
	r.running = (char *)"a::x";
	r.unfinished = unfinished;
	r.nunfinished = 2;
	aggregator_add(a, &r);

	t[0] = mk_test("a::x", OUTCOME_PASSED);
	r = mk_task("t1.1", "unit", TASK_COMPLETED, t, 1);
	r.attempt = 2;
	r.worker = (char *)"host-2/slot-1";
	aggregator_add(a, &r);
	/* a::y is unfinished again on its second attempt (timeout). */
	r = mk_task("t1.2", "unit", TASK_TIMEOUT, NULL, 0);
	r.attempt = 2;
	r.duration_s = 60;
	r.running = (char *)"a::y";
	r.unfinished = &unfinished[1];
	r.nunfinished = 1;
	aggregator_add(a, &r);
	/* A first attempt's leftover arriving late changes nothing. */
	r = mk_task("t4", "unit", TASK_CANCELLED, NULL, 0);
	r.unfinished = unfinished;
	r.nunfinished = 1;
	aggregator_add(a, &r);
	assert_int_equal(aggregator_duplicates(a), 0);

	rep = aggregator_report(a);
	assert_int_equal(rep->ntotal, 2);
	rt = find_test(rep, "a::x");
	assert_int_equal(rt->outcome, OUTCOME_PASSED);
	assert_int_equal(rt->attempts, 2);
	assert_string_equal(rt->retried_for, "runner killed by signal 9 "
					     "(SIGKILL) while running this "
					     "test");
	assert_null(rt->message);
	assert_null(rt->details);
	assert_string_equal(rt->task, "t1.1");
	assert_string_equal(rt->worker, "host-2/slot-1");
	rt = find_test(rep, "a::y");
	assert_int_equal(rt->outcome, OUTCOME_ERROR);
	assert_int_equal(rt->attempts, 2);
	assert_string_equal(rt->message,
			    "task timed out after 60s (this test was running)");
	assert_string_equal(rt->task, "t1.2");
	assert_int_equal(rep->nissues, 3);
	check_totals_sum(rep);
	report_free(rep);
	aggregator_free(a);
}

/* A transient failure hands the test to a follow-up; the follow-up passes:
 * passed, attempts 2, retried_for the reason -- not flaky. */
static void test_transient_retry_passes(void **state)
{
	struct test_result t1[2], t2[1];
	char *retrying[] = {(char *)"a::net"};
	struct task_result r;
	struct aggregator *a = aggregator_new("run-1");
	struct report *rep;
	const struct report_test *rt;

	(void)state;
	aggregator_expect_tasks(a, 2);
	t1[0] = mk_test("a::ok", OUTCOME_PASSED);
	r = mk_task("t1", "unit", TASK_COMPLETED, t1, 1);
	r.exit_code = 1;
	r.retrying = retrying;
	r.nretrying = 1;
	r.retry_reason = (char *)"503 Service Unavailable";
	aggregator_add(a, &r);

	/* Midway the follow-up has not reported: the run is incomplete and
	 * the test is not a result yet. */
	rep = aggregator_report(a);
	assert_string_equal(rep->status, "error");
	assert_int_equal(rep->totals[OUTCOME_PASSED], 1);
	rt = find_test(rep, "a::net");
	assert_int_equal(rt->outcome, OUTCOME_ERROR);
	assert_string_equal(rt->message, "retry never ran");
	assert_string_equal(rt->retried_for, "503 Service Unavailable");
	assert_string_equal(rt->task, "t1");
	report_free(rep);

	t2[0] = mk_test("a::net", OUTCOME_PASSED);
	r = mk_task("t1.1", "unit", TASK_COMPLETED, t2, 1);
	r.attempt = 2;
	r.retried_for = (char *)"503 Service Unavailable";
	aggregator_add(a, &r);
	rep = aggregator_report(a);
	assert_string_equal(rep->status, "passed");
	assert_int_equal(report_exit_code(rep), 0);
	assert_int_equal(rep->ntotal, 2);
	assert_int_equal(rep->totals[OUTCOME_PASSED], 2);
	assert_int_equal(rep->totals[OUTCOME_FLAKY], 0);
	assert_int_equal(rep->nissues, 0);
	rt = find_test(rep, "a::net");
	assert_int_equal(rt->outcome, OUTCOME_PASSED);
	assert_int_equal(rt->attempts, 2);
	assert_string_equal(rt->retried_for, "503 Service Unavailable");
	assert_string_equal(rt->task, "t1.1");
	rt = find_test(rep, "a::ok");
	assert_int_equal(rt->attempts, 1);
	assert_null(rt->retried_for);
	check_totals_sum(rep);
	report_free(rep);
	aggregator_free(a);
}

/* The same, with the transient failure also listed among the record's
 * results: the pending retry still decides, and a pass is not flaky. */
static void test_transient_failure_listed_then_passes(void **state)
{
	struct test_result t1[1], t2[1];
	char *retrying[] = {(char *)"a::net"};
	struct task_result r;
	struct aggregator *a = aggregator_new("run-1");
	struct report *rep;
	const struct report_test *rt;

	(void)state;
	t1[0] = mk_test("a::net", OUTCOME_FAILED);
	t1[0].message = (char *)"ConnectionError: ECONNRESET";
	r = mk_task("t1", "unit", TASK_COMPLETED, t1, 1);
	r.retrying = retrying;
	r.nretrying = 1;
	r.retry_reason = (char *)"ECONNRESET";
	aggregator_add(a, &r);
	t2[0] = mk_test("a::net", OUTCOME_PASSED);
	r = mk_task("t1.1", "unit", TASK_COMPLETED, t2, 1);
	r.attempt = 2;
	r.retried_for = (char *)"ECONNRESET";
	aggregator_add(a, &r);
	rep = aggregator_report(a);
	rt = find_test(rep, "a::net");
	assert_int_equal(rt->outcome, OUTCOME_PASSED);
	assert_int_equal(rt->attempts, 2);
	assert_string_equal(rt->retried_for, "ECONNRESET");
	assert_null(rt->message);
	assert_string_equal(rep->status, "passed");
	report_free(rep);
	aggregator_free(a);
}

/* --retries: failed, then passed on the rerun: flaky, with the failure's
 * message; retried_for stays null (not a transient). */
static void test_rerun_flaky(void **state)
{
	struct test_result t1[2], t2[1];
	char *retrying[] = {(char *)"a::f"};
	struct task_result r;
	struct aggregator *a = aggregator_new("run-1");
	struct report *rep;
	const struct report_test *rt;

	(void)state;
	t1[0] = mk_test("a::f", OUTCOME_FAILED);
	t1[0].message = (char *)"assert 0 == 1";
	t1[0].details = (char *)"long text";
	t1[1] = mk_test("a::g", OUTCOME_PASSED);
	r = mk_task("t1", "unit", TASK_COMPLETED, t1, 2);
	r.exit_code = 1;
	r.retrying = retrying;
	r.nretrying = 1;
	aggregator_add(a, &r);
	/* Before the rerun reports, the failure stands. */
	rep = aggregator_report(a);
	assert_int_equal(find_test(rep, "a::f")->outcome, OUTCOME_FAILED);
	report_free(rep);

	t2[0] = mk_test("a::f", OUTCOME_PASSED);
	r = mk_task("t1.1", "unit", TASK_COMPLETED, t2, 1);
	r.attempt = 2;
	r.rerun = 1;
	aggregator_add(a, &r);
	rep = aggregator_report(a);
	rt = find_test(rep, "a::f");
	assert_int_equal(rt->outcome, OUTCOME_FLAKY);
	assert_int_equal(rt->attempts, 2);
	assert_null(rt->retried_for);
	assert_string_equal(rt->message, "assert 0 == 1");
	assert_string_equal(rt->details, "long text");
	assert_string_equal(rt->task, "t1.1");
	assert_int_equal(find_test(rep, "a::g")->outcome, OUTCOME_PASSED);
	assert_int_equal(rep->totals[OUTCOME_FLAKY], 1);
	assert_int_equal(rep->totals[OUTCOME_FAILED], 0);
	assert_string_equal(rep->status, "passed");
	assert_int_equal(report_exit_code(rep), 0);
	check_totals_sum(rep);
	report_free(rep);
	aggregator_free(a);
}

/* --retries: failed on the rerun too: failed, attempts 2, the last
 * failure's message. */
static void test_rerun_still_failing(void **state)
{
	struct test_result t1[1], t2[1];
	char *retrying[] = {(char *)"a::f"};
	struct task_result r;
	struct aggregator *a = aggregator_new("run-1");
	struct report *rep;
	const struct report_test *rt;

	(void)state;
	t1[0] = mk_test("a::f", OUTCOME_FAILED);
	t1[0].message = (char *)"assert 0 == 1";
	r = mk_task("t1", "unit", TASK_COMPLETED, t1, 1);
	r.retrying = retrying;
	r.nretrying = 1;
	aggregator_add(a, &r);
	t2[0] = mk_test("a::f", OUTCOME_FAILED);
	t2[0].message = (char *)"assert 0 == 2";
	r = mk_task("t1.1", "unit", TASK_COMPLETED, t2, 1);
	r.attempt = 2;
	r.rerun = 1;
	aggregator_add(a, &r);
	rep = aggregator_report(a);
	rt = find_test(rep, "a::f");
	assert_int_equal(rt->outcome, OUTCOME_FAILED);
	assert_int_equal(rt->attempts, 2);
	assert_string_equal(rt->message, "assert 0 == 2");
	assert_null(rt->retried_for);
	assert_int_equal(rep->totals[OUTCOME_FAILED], 1);
	assert_int_equal(rep->ntotal, 1);
	assert_string_equal(rep->status, "failed");
	assert_int_equal(report_exit_code(rep), 1);
	report_free(rep);
	aggregator_free(a);
}

/* A lost worker's record: its finished tests are results; the test it was
 * running and the rest went to follow-ups, which report; a lost record
 * with unfinished tests reports them as errors. */
static void test_lost_record_and_follow_ups(void **state)
{
	struct test_result done[1], f1[1], f2[1];
	char *retrying[] = {(char *)"a::b", (char *)"a::c"};
	char *unfinished[] = {(char *)"a::d"};
	struct task_result r;
	struct aggregator *a = aggregator_new("run-1");
	struct report *rep;
	const struct report_test *rt;

	(void)state;
	aggregator_expect_tasks(a, 4);
	done[0] = mk_test("a::a", OUTCOME_PASSED);
	r = mk_task("t1", "unit", TASK_LOST, done, 1);
	r.worker = (char *)"host-9/slot-3";
	r.started_at = 0; /* the reaper may not know */
	r.running = (char *)"a::b";
	r.retrying = retrying;
	r.nretrying = 2;
	r.retry_reason = (char *)"worker lost";
	aggregator_add(a, &r);
	f1[0] = mk_test("a::b", OUTCOME_PASSED);
	r = mk_task("t1.1", "unit", TASK_COMPLETED, f1, 1);
	r.attempt = 2;
	r.retried_for = (char *)"worker lost";
	aggregator_add(a, &r);
	f2[0] = mk_test("a::c", OUTCOME_FAILED);
	r = mk_task("t1.2", "unit", TASK_COMPLETED, f2, 1);
	r.attempt = 2;
	r.retried_for = (char *)"worker lost";
	aggregator_add(a, &r);
	/* Lost again, with nothing left to retry: an error, and an issue. */
	r = mk_task("t2", "unit", TASK_LOST, NULL, 0);
	r.running = (char *)"a::d";
	r.unfinished = unfinished;
	r.nunfinished = 1;
	aggregator_add(a, &r);

	rep = aggregator_report(a);
	assert_int_equal(rep->ntotal, 4);
	rt = find_test(rep, "a::a");
	assert_int_equal(rt->outcome, OUTCOME_PASSED);
	assert_int_equal(rt->attempts, 1);
	assert_string_equal(rt->worker, "host-9/slot-3");
	rt = find_test(rep, "a::b");
	assert_int_equal(rt->outcome, OUTCOME_PASSED);
	assert_int_equal(rt->attempts, 2);
	assert_string_equal(rt->retried_for, "worker lost");
	rt = find_test(rep, "a::c");
	assert_int_equal(rt->outcome, OUTCOME_FAILED);
	assert_int_equal(rt->attempts, 2);
	assert_string_equal(rt->retried_for, "worker lost");
	rt = find_test(rep, "a::d");
	assert_int_equal(rt->outcome, OUTCOME_ERROR);
	assert_string_equal(rt->message, "worker lost while running this test");
	/* Only the record that left a test behind is an issue. */
	assert_int_equal(rep->nissues, 1);
	assert_string_equal(rep->issues[0].task, "t2");
	assert_string_equal(rep->issues[0].status, "lost");
	assert_string_equal(rep->issues[0].message,
			    "worker lost while running a::d");
	assert_string_equal(rep->status, "failed");
	/* Times come from the records that have them. */
	assert_true(rep->started_at == T0);
	check_totals_sum(rep);
	report_free(rep);
	aggregator_free(a);
}

/* A record delivered twice (a worker republishing after a reconnect) is
 * counted once. */
static void test_duplicate_record_ignored(void **state)
{
	struct test_result t1[1], t2[1];
	char *retrying[] = {(char *)"a::y"};
	struct task_result r1, r2;
	struct aggregator *a = aggregator_new("run-1");
	struct report *rep;
	const struct report_test *rt;

	(void)state;
	t1[0] = mk_test("a::x", OUTCOME_PASSED);
	r1 = mk_task("t1", "unit", TASK_COMPLETED, t1, 1);
	r1.retrying = retrying;
	r1.nretrying = 1;
	r1.retry_reason = (char *)"exceeded quota";
	t2[0] = mk_test("a::y", OUTCOME_FAILED);
	r2 = mk_task("t1.1", "unit", TASK_COMPLETED, t2, 1);
	r2.attempt = 2;
	r2.retried_for = (char *)"exceeded quota";
	aggregator_add(a, &r1);
	aggregator_add(a, &r2);
	aggregator_add(a, &r1);
	aggregator_add(a, &r2);
	assert_int_equal(aggregator_duplicates(a), 2);
	rep = aggregator_report(a);
	assert_int_equal(rep->tasks_seen, 2);
	assert_int_equal(find_phase(rep, "unit")->tasks, 2);
	assert_int_equal(rep->ntotal, 2);
	rt = find_test(rep, "a::y");
	assert_int_equal(rt->outcome, OUTCOME_FAILED);
	assert_int_equal(rt->attempts, 2);
	assert_string_equal(rt->retried_for, "exceeded quota");
	check_totals_sum(rep);
	report_free(rep);
	aggregator_free(a);
}

/* A cancelled run: tests handed to a retry that never ran are left out;
 * a failure whose rerun never ran stays a failure. */
static void test_cancelled_drops_pending_retries(void **state)
{
	struct test_result t1[2];
	char *retrying[] = {(char *)"a::y", (char *)"a::f"};
	struct task_result r;
	struct aggregator *a = aggregator_new("run-1");
	struct report *rep;
	const struct report_test *rt;

	(void)state;
	aggregator_expect_tasks(a, 3);
	t1[0] = mk_test("a::x", OUTCOME_PASSED);
	t1[1] = mk_test("a::f", OUTCOME_FAILED);
	r = mk_task("t1", "unit", TASK_COMPLETED, t1, 2);
	r.retrying = retrying;
	r.nretrying = 2;
	r.retry_reason = (char *)"429 Too Many Requests";
	aggregator_add(a, &r);
	aggregator_set_cancelled(a);
	rep = aggregator_report(a);
	assert_string_equal(rep->status, "cancelled");
	assert_int_equal(report_exit_code(rep), 4);
	assert_int_equal(rep->ntotal, 2);
	assert_int_equal(rep->ntests, 2);
	assert_int_equal(find_test(rep, "a::x")->outcome, OUTCOME_PASSED);
	rt = find_test(rep, "a::f");
	assert_int_equal(rt->outcome, OUTCOME_FAILED);
	assert_int_equal(rt->attempts, 1);
	check_totals_sum(rep);
	report_free(rep);
	aggregator_free(a);
}

/* A crash retried alone until max_attempts, then dead-lettered: the worker
 * reports it as an error result; only the last record is an issue. */
static void test_dead_lettered_after_crashes(void **state)
{
	struct test_result dead[1];
	char *x[] = {(char *)"a::x"};
	struct task_result r;
	struct aggregator *a = aggregator_new("run-1");
	struct report *rep;
	const struct report_test *rt;

	(void)state;
	r = mk_task("t1", "unit", TASK_CRASHED, NULL, 0);
	r.term_signal = 11;
	r.running = (char *)"a::x";
	r.retrying = x;
	r.nretrying = 1;
	r.retry_reason = (char *)"runner killed by signal 11 (SIGSEGV)";
	aggregator_add(a, &r);
	r = mk_task("t1.1", "unit", TASK_CRASHED, NULL, 0);
	r.attempt = 2;
	r.term_signal = 11;
	r.running = (char *)"a::x";
	r.retrying = x;
	r.nretrying = 1;
	r.retry_reason = (char *)"runner killed by signal 11 (SIGSEGV)";
	r.retried_for = (char *)"runner killed by signal 11 (SIGSEGV)";
	aggregator_add(a, &r);
	dead[0] = mk_test("a::x", OUTCOME_ERROR);
	dead[0].message = (char *)"dead-lettered after 3 attempts: runner "
				  "killed by signal 11 (SIGSEGV)";
	r = mk_task("t1.1.1", "unit", TASK_CRASHED, dead, 1);
	r.attempt = 3;
	r.term_signal = 11;
	r.running = (char *)"a::x";
	r.retried_for = (char *)"runner killed by signal 11 (SIGSEGV)";
	aggregator_add(a, &r);
	rep = aggregator_report(a);
	assert_int_equal(rep->ntotal, 1);
	rt = find_test(rep, "a::x");
	assert_int_equal(rt->outcome, OUTCOME_ERROR);
	assert_int_equal(rt->attempts, 3);
	assert_non_null(strstr(rt->message, "dead-lettered"));
	assert_string_equal(rt->retried_for,
			    "runner killed by signal 11 (SIGSEGV)");
	assert_int_equal(rep->nissues, 1);
	assert_string_equal(rep->issues[0].task, "t1.1.1");
	assert_string_equal(rep->status, "failed");
	check_totals_sum(rep);
	report_free(rep);
	aggregator_free(a);
}

static void test_many_tests(void **state)
{
	enum { N = 5000 };
	struct test_result *t = calloc(N, sizeof(*t));
	char(*ids)[24] = calloc(N, sizeof(*ids));
	struct task_result r;
	struct aggregator *a = aggregator_new("run-1");
	struct report *rep;
	size_t i;

	(void)state;
	assert_non_null(t);
	assert_non_null(ids);
	for (i = 0; i < N; i++) {
		snprintf(ids[i], sizeof(ids[i]), "t::%05zu", (N - 1 - i));
		t[i] = mk_test(ids[i], OUTCOME_PASSED);
	}
	r = mk_task("t1", "unit", TASK_COMPLETED, t, N / 2);
	aggregator_add(a, &r);
	/* The second task repeats the whole list: half are duplicates. */
	r = mk_task("t2", "unit", TASK_COMPLETED, t, N);
	aggregator_add(a, &r);
	assert_int_equal(aggregator_duplicates(a), N / 2);
	rep = aggregator_report(a);
	assert_int_equal(rep->ntests, N);
	for (i = 1; i < N; i++)
		assert_true(strcmp(rep->tests[i - 1].id, rep->tests[i].id) < 0);
	report_free(rep);
	aggregator_free(a);
	free(ids);
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_copies_fields),
	    cmocka_unit_test(test_dedupe_task),
	    cmocka_unit_test(test_dedupe_test_across_tasks),
	    cmocka_unit_test(test_highest_attempt_wins),
	    cmocka_unit_test(test_crashed_task),
	    cmocka_unit_test(test_crashed_without_signal_or_running),
	    cmocka_unit_test(test_timeout_task),
	    cmocka_unit_test(test_error_task),
	    cmocka_unit_test(test_completed_with_missing),
	    cmocka_unit_test(test_cancelled_task),
	    cmocka_unit_test(test_status_and_exit_code),
	    cmocka_unit_test(test_failed_outcome_fails_run),
	    cmocka_unit_test(test_lost_task_is_error),
	    cmocka_unit_test(test_phases),
	    cmocka_unit_test(test_optional_phase_failure_passes_run),
	    cmocka_unit_test(test_required_failure_skips_later_phases),
	    cmocka_unit_test(test_phase_timeout_fails_phase),
	    cmocka_unit_test(test_phase_declared_after_results),
	    cmocka_unit_test(test_ordering),
	    cmocka_unit_test(test_totals),
	    cmocka_unit_test(test_times),
	    cmocka_unit_test(test_retry_replaces_unfinished),
	    cmocka_unit_test(test_transient_retry_passes),
	    cmocka_unit_test(test_transient_failure_listed_then_passes),
	    cmocka_unit_test(test_rerun_flaky),
	    cmocka_unit_test(test_rerun_still_failing),
	    cmocka_unit_test(test_lost_record_and_follow_ups),
	    cmocka_unit_test(test_duplicate_record_ignored),
	    cmocka_unit_test(test_cancelled_drops_pending_retries),
	    cmocka_unit_test(test_dead_lettered_after_crashes),
	    cmocka_unit_test(test_many_tests),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
