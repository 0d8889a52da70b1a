/* test_classify.c -- closing task attempts (classify.h): transient test
 * failures and outputs, crashes with the running test isolated and
 * dead-lettered, SIGKILL, timeouts, lost and drained workers, --retries
 * reruns, permanent errors, and the counts the record adds. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "classify.h"
#include "xmalloc.h"

static char *ids3[] = {"t.py::a", "t.py::b", "t.py::c"};

static void task_of(struct task *t, char **tests, size_t n, uint32_t att)
{
	memset(t, 0, sizeof(*t));
	t->run = "r1";
	t->id = "t00007";
	t->attempt = att;
	t->suite = "s";
	t->phase = "p";
	t->runner = "pytest";
	t->queue = "default";
	t->tests = tests;
	t->ntests = n;
	t->timeout_s = 30;
}

static void add_test(struct task_result *r, const char *id, enum outcome o,
		     const char *msg)
{
	struct test_result *tr;

	r->tests = xreallocarray(r->tests, r->ntests + 1, sizeof(*r->tests));
	tr = &r->tests[r->ntests++];
	memset(tr, 0, sizeof(*tr));
	tr->id = xstrdup(id);
	tr->outcome = o;
	tr->message = msg ? xstrdup(msg) : NULL;
}

static void add_unfinished(struct task_result *r, const char *id)
{
	r->unfinished = xreallocarray(r->unfinished, r->nunfinished + 1,
				      sizeof(*r->unfinished));
	r->unfinished[r->nunfinished++] = xstrdup(id);
}

static void result_of(struct task_result *r, enum task_status st)
{
	memset(r, 0, sizeof(*r));
	r->run = xstrdup("r1");
	r->task = xstrdup("t00007");
	r->attempt = 1;
	r->worker = xstrdup("h/slot-1");
	r->suite = xstrdup("s");
	r->phase = xstrdup("p");
	r->status = st;
}

static const struct test_result *find_test(const struct task_result *r,
					   const char *id)
{
	size_t i;

	for (i = 0; i < r->ntests; i++) {
		if (strcmp(r->tests[i].id, id) == 0)
			return &r->tests[i];
	}
	return NULL;
}

static int has(char *const *v, size_t n, const char *s)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (strcmp(v[i], s) == 0)
			return 1;
	}
	return 0;
}

static void test_all_passed(void **state)
{
	struct policy p;
	struct task t;
	struct task_result r;
	struct verdict v;

	(void)state;
	policy_init(&p);
	task_of(&t, ids3, 3, 1);
	t.retried_for = "earlier reason";
	result_of(&r, TASK_COMPLETED);
	add_test(&r, "t.py::a", OUTCOME_PASSED, NULL);
	add_test(&r, "t.py::b", OUTCOME_SKIPPED, "why");
	add_test(&r, "t.py::c", OUTCOME_FAILED, "assert 1 == 2");
	classify_attempt(&t, &r, &p, CLOSE_NORMAL, 30, &v);
	assert_int_equal(r.ntests, 3);
	assert_int_equal(r.nretrying, 0);
	assert_null(r.retry_reason);
	assert_string_equal(r.retried_for, "earlier reason");
	assert_int_equal(v.nfollowups, 0);
	assert_null(v.dead);
	assert_int_equal(v.tests, 3);
	assert_int_equal(v.failed, 1);
	verdict_release(&v);
	task_result_release(&r);
	policy_release(&p);
}

static void test_transient_test_failure(void **state)
{
	struct policy p;
	struct task t;
	struct task_result r;
	struct verdict v;
	const struct followup *f;

	(void)state;
	policy_init(&p);
	task_of(&t, ids3, 3, 1);
	result_of(&r, TASK_COMPLETED);
	add_test(&r, "t.py::a", OUTCOME_PASSED, NULL);
	add_test(&r, "t.py::b", OUTCOME_FAILED,
		 "HTTPError: 429 Too Many Requests");
	add_test(&r, "t.py::c", OUTCOME_ERROR, "setup failed");
	r.tests[2].details = xstrdup("...\nECONNRESET by peer\n");
	classify_attempt(&t, &r, &p, CLOSE_NORMAL, 30, &v);
	/* a is final; b and c go to one follow-up. */
	assert_int_equal(r.ntests, 1);
	assert_string_equal(r.tests[0].id, "t.py::a");
	assert_int_equal(r.nretrying, 2);
	assert_string_equal(r.retry_reason, "429 Too Many Requests");
	assert_int_equal(v.nfollowups, 1);
	f = &v.followups[0];
	assert_string_equal(f->task.id, "t00007.1");
	assert_int_equal(f->task.attempt, 2);
	assert_int_equal(f->task.ntests, 2);
	assert_true(has(f->task.tests, 2, "t.py::b"));
	assert_true(has(f->task.tests, 2, "t.py::c"));
	assert_string_equal(f->task.retried_for, "429 Too Many Requests");
	assert_true(f->delayed);
	assert_string_equal(f->task.run, "r1");
	assert_string_equal(f->task.queue, "default");
	assert_int_equal(f->task.timeout_s, 30);
	assert_int_equal(v.tests, 1);
	assert_int_equal(v.failed, 0);
	verdict_release(&v);
	task_result_release(&r);

	/* Out of attempts: the failure is final as it is. */
	task_of(&t, ids3, 3, 3);
	result_of(&r, TASK_COMPLETED);
	add_test(&r, "t.py::b", OUTCOME_FAILED, "429 Too Many Requests");
	classify_attempt(&t, &r, &p, CLOSE_NORMAL, 30, &v);
	assert_int_equal(r.ntests, 1);
	assert_int_equal(r.nretrying, 0);
	assert_int_equal(v.nfollowups, 0);
	assert_int_equal(v.failed, 1);
	verdict_release(&v);
	task_result_release(&r);

	/* Patterns are the run's: none at all, then a custom one. */
	policy_split_transient(&p, "", 0, NULL, 0);
	task_of(&t, ids3, 3, 1);
	result_of(&r, TASK_COMPLETED);
	add_test(&r, "t.py::b", OUTCOME_FAILED, "429 Too Many Requests");
	classify_attempt(&t, &r, &p, CLOSE_NORMAL, 30, &v);
	assert_int_equal(v.nfollowups, 0);
	verdict_release(&v);
	task_result_release(&r);
	policy_split_transient(&p, "flaky backend\n", 14, NULL, 0);
	result_of(&r, TASK_COMPLETED);
	add_test(&r, "t.py::b", OUTCOME_PASSED, "flaky backend");
	add_test(&r, "t.py::c", OUTCOME_FAILED, "the flaky backend said no");
	classify_attempt(&t, &r, &p, CLOSE_NORMAL, 30, &v);
	assert_int_equal(v.nfollowups, 1); /* a pass is never retried */
	assert_string_equal(r.retry_reason, "flaky backend");
	verdict_release(&v);
	task_result_release(&r);
	policy_release(&p);
}

static void test_transient_output(void **state)
{
	struct policy p;
	struct task t;
	struct task_result r;
	struct verdict v;

	(void)state;
	policy_init(&p);
	task_of(&t, ids3, 3, 1);
	result_of(&r, TASK_COMPLETED);
	r.exit_code = 3;
	r.output = xstrdup("INTERNALERROR> redis: Connection refused\n");
	add_unfinished(&r, "t.py::a");
	add_unfinished(&r, "t.py::b");
	add_unfinished(&r, "t.py::c");
	classify_attempt(&t, &r, &p, CLOSE_NORMAL, 30, &v);
	assert_int_equal(r.nunfinished, 0);
	assert_int_equal(r.nretrying, 3);
	assert_int_equal(v.nfollowups, 1);
	assert_int_equal(v.followups[0].task.ntests, 3);
	assert_string_equal(v.followups[0].task.retried_for,
			    "Connection refused");
	verdict_release(&v);
	task_result_release(&r);

	/* Without a match the tests stay unfinished (reported as errors). */
	result_of(&r, TASK_COMPLETED);
	r.exit_code = 3;
	r.output = xstrdup("INTERNALERROR> something else\n");
	add_unfinished(&r, "t.py::a");
	classify_attempt(&t, &r, &p, CLOSE_NORMAL, 30, &v);
	assert_int_equal(r.nunfinished, 1);
	assert_int_equal(v.nfollowups, 0);
	assert_int_equal(v.tests, 1);
	assert_int_equal(v.failed, 1);
	verdict_release(&v);
	task_result_release(&r);
	policy_release(&p);
}

static void test_crash_isolates_running_test(void **state)
{
	struct policy p;
	struct task t;
	struct task_result r;
	struct verdict v;

	(void)state;
	policy_init(&p);
	task_of(&t, ids3, 3, 1);
	result_of(&r, TASK_CRASHED);
	r.term_signal = SIGSEGV;
	r.running = xstrdup("t.py::b");
	add_test(&r, "t.py::a", OUTCOME_PASSED, NULL);
	add_unfinished(&r, "t.py::b");
	add_unfinished(&r, "t.py::c");
	classify_attempt(&t, &r, &p, CLOSE_NORMAL, 30, &v);
	assert_int_equal(r.ntests, 1);
	assert_int_equal(r.nunfinished, 0);
	assert_int_equal(r.nretrying, 2);
	assert_string_equal(r.retry_reason, "crashed the runner (SIGSEGV)");
	assert_int_equal(v.nfollowups, 2);
	assert_string_equal(v.followups[0].task.id, "t00007.1");
	assert_int_equal(v.followups[0].task.ntests, 1);
	assert_string_equal(v.followups[0].task.tests[0], "t.py::b");
	assert_string_equal(v.followups[1].task.id, "t00007.2");
	assert_int_equal(v.followups[1].task.ntests, 1);
	assert_string_equal(v.followups[1].task.tests[0], "t.py::c");
	assert_non_null(
	    strstr(v.followups[1].task.retried_for, "while running t.py::b"));
	assert_null(v.dead);
	verdict_release(&v);
	task_result_release(&r);
	policy_release(&p);
}

static void test_crash_dead_letter(void **state)
{
	struct policy p;
	struct task t;
	struct task_result r;
	struct verdict v;
	const struct test_result *x;
	char *one[] = {"t.py::b"};

	(void)state;
	policy_init(&p);
	/* Alone, attempts left: alone again. */
	task_of(&t, one, 1, 2);
	result_of(&r, TASK_CRASHED);
	r.term_signal = SIGABRT;
	r.running = xstrdup("t.py::b");
	add_unfinished(&r, "t.py::b");
	classify_attempt(&t, &r, &p, CLOSE_NORMAL, 30, &v);
	assert_int_equal(v.nfollowups, 1);
	assert_int_equal(v.followups[0].task.attempt, 3);
	assert_null(v.dead);
	verdict_release(&v);
	task_result_release(&r);

	/* Alone at max_attempts: dead-lettered and reported as an error. */
	task_of(&t, one, 1, 3);
	result_of(&r, TASK_CRASHED);
	r.term_signal = SIGSEGV;
	r.running = xstrdup("t.py::b");
	r.output = xstrdup("Fatal Python error: Segmentation fault");
	add_unfinished(&r, "t.py::b");
	classify_attempt(&t, &r, &p, CLOSE_NORMAL, 30, &v);
	assert_int_equal(v.nfollowups, 0);
	assert_non_null(v.dead);
	assert_string_equal(v.dead->id, "t00007");
	assert_int_equal(v.dead->attempt, 3);
	assert_int_equal(r.nunfinished, 0);
	assert_int_equal(r.nretrying, 0);
	x = find_test(&r, "t.py::b");
	assert_non_null(x);
	assert_int_equal(x->outcome, OUTCOME_ERROR);
	assert_string_equal(
	    x->message, "crashed the runner 3 times (SIGSEGV) (dead-lettered)");
	assert_non_null(strstr(x->details, "Segmentation fault"));
	assert_int_equal(v.tests, 1);
	assert_int_equal(v.failed, 1);
	verdict_release(&v);
	task_result_release(&r);

	/* An exit in the middle of a test is blamed the same way. */
	task_of(&t, one, 1, 3);
	result_of(&r, TASK_COMPLETED);
	r.exit_code = 7;
	r.running = xstrdup("t.py::b");
	add_unfinished(&r, "t.py::b");
	classify_attempt(&t, &r, &p, CLOSE_NORMAL, 30, &v);
	assert_non_null(v.dead);
	x = find_test(&r, "t.py::b");
	assert_non_null(x);
	assert_string_equal(x->message, "crashed the runner 3 times (exit "
					"status 7) (dead-lettered)");
	verdict_release(&v);
	task_result_release(&r);
	policy_release(&p);
}

static void test_sigkill_is_transient(void **state)
{
	struct policy p;
	struct task t;
	struct task_result r;
	struct verdict v;

	(void)state;
	policy_init(&p);
	task_of(&t, ids3, 3, 1);
	result_of(&r, TASK_CRASHED);
	r.term_signal = SIGKILL;
	r.running = xstrdup("t.py::b");
	add_test(&r, "t.py::a", OUTCOME_PASSED, NULL);
	add_unfinished(&r, "t.py::b");
	add_unfinished(&r, "t.py::c");
	classify_attempt(&t, &r, &p, CLOSE_NORMAL, 30, &v);
	/* The running test alone, the one that never ran in another. */
	assert_int_equal(v.nfollowups, 2);
	assert_string_equal(v.followups[0].task.tests[0], "t.py::b");
	assert_string_equal(v.followups[1].task.tests[0], "t.py::c");
	assert_string_equal(r.retry_reason, "runner killed by SIGKILL");
	assert_true(v.followups[0].delayed);
	verdict_release(&v);
	task_result_release(&r);

	/* Alone at max_attempts: an error (unfinished), not a dead letter. */
	task_of(&t, ids3 + 1, 1, 3);
	result_of(&r, TASK_CRASHED);
	r.term_signal = SIGKILL;
	r.running = xstrdup("t.py::b");
	add_unfinished(&r, "t.py::b");
	classify_attempt(&t, &r, &p, CLOSE_NORMAL, 30, &v);
	assert_int_equal(v.nfollowups, 0);
	assert_null(v.dead);
	assert_int_equal(r.nunfinished, 1);
	assert_int_equal(v.failed, 1);
	verdict_release(&v);
	task_result_release(&r);

	/* Nothing running and out of attempts: unfinished. */
	task_of(&t, ids3, 3, 3);
	result_of(&r, TASK_CRASHED);
	r.term_signal = SIGKILL;
	add_unfinished(&r, "t.py::b");
	classify_attempt(&t, &r, &p, CLOSE_NORMAL, 30, &v);
	assert_int_equal(v.nfollowups, 0);
	assert_int_equal(r.nunfinished, 1);
	verdict_release(&v);
	task_result_release(&r);
	policy_release(&p);
}

static void test_timeout(void **state)
{
	struct policy p;
	struct task t;
	struct task_result r;
	struct verdict v;
	const struct test_result *x;

	(void)state;
	policy_init(&p);
	task_of(&t, ids3, 3, 3);
	result_of(&r, TASK_TIMEOUT);
	r.running = xstrdup("t.py::b");
	add_test(&r, "t.py::a", OUTCOME_PASSED, NULL);
	add_unfinished(&r, "t.py::b");
	add_unfinished(&r, "t.py::c");
	classify_attempt(&t, &r, &p, CLOSE_NORMAL, 12, &v);
	x = find_test(&r, "t.py::b");
	assert_non_null(x);
	assert_int_equal(x->outcome, OUTCOME_ERROR);
	assert_string_equal(x->message, "timed out after 12s");
	/* The rest is retried even at max_attempts: b was to blame. */
	assert_int_equal(v.nfollowups, 1);
	assert_int_equal(v.followups[0].task.ntests, 1);
	assert_string_equal(v.followups[0].task.tests[0], "t.py::c");
	assert_int_equal(v.tests, 2);
	assert_int_equal(v.failed, 1);
	assert_null(v.dead);
	verdict_release(&v);
	task_result_release(&r);
	policy_release(&p);
}

static void test_lost_worker(void **state)
{
	struct policy p;
	struct task t;
	struct task_result r;
	struct verdict v;
	const struct test_result *x;
	char *one[] = {"t.py::c"};

	(void)state;
	policy_init(&p);
	task_of(&t, ids3, 3, 1);
	result_of(&r, TASK_LOST);
	r.running = xstrdup("t.py::b");
	add_test(&r, "t.py::a", OUTCOME_FAILED, "assert 0");
	add_unfinished(&r, "t.py::b");
	add_unfinished(&r, "t.py::c");
	classify_attempt(&t, &r, &p, CLOSE_NORMAL, 30, &v);
	assert_int_equal(r.ntests, 1);
	assert_int_equal(v.nfollowups, 2);
	assert_string_equal(v.followups[0].task.tests[0], "t.py::b");
	assert_string_equal(v.followups[0].task.retried_for, "worker lost");
	assert_string_equal(v.followups[1].task.tests[0], "t.py::c");
	assert_int_equal(v.tests, 1);
	assert_int_equal(v.failed, 1);
	verdict_release(&v);
	task_result_release(&r);

	/* Nothing was running: one follow-up, bound by max_attempts. */
	task_of(&t, ids3, 3, 3);
	result_of(&r, TASK_LOST);
	add_unfinished(&r, "t.py::b");
	classify_attempt(&t, &r, &p, CLOSE_NORMAL, 30, &v);
	assert_int_equal(v.nfollowups, 0);
	assert_int_equal(r.nunfinished, 1);
	verdict_release(&v);
	task_result_release(&r);

	/* The single running test of a task lost at max_attempts. */
	task_of(&t, one, 1, 3);
	result_of(&r, TASK_LOST);
	r.running = xstrdup("t.py::c");
	add_unfinished(&r, "t.py::c");
	classify_attempt(&t, &r, &p, CLOSE_NORMAL, 30, &v);
	assert_int_equal(v.nfollowups, 0);
	assert_non_null(v.dead);
	x = find_test(&r, "t.py::c");
	assert_non_null(x);
	assert_string_equal(x->message, "worker lost 3 times while running "
					"this test (dead-lettered)");
	verdict_release(&v);
	task_result_release(&r);
	policy_release(&p);
}

static void test_drained(void **state)
{
	struct policy p;
	struct task t;
	struct task_result r;
	struct verdict v;

	(void)state;
	policy_init(&p);
	task_of(&t, ids3, 3, 3);
	result_of(&r, TASK_CANCELLED);
	r.running = xstrdup("t.py::b");
	add_test(&r, "t.py::a", OUTCOME_PASSED, NULL);
	add_unfinished(&r, "t.py::b");
	add_unfinished(&r, "t.py::c");
	classify_attempt(&t, &r, &p, CLOSE_DRAINED, 30, &v);
	assert_int_equal(r.status, TASK_LOST);
	assert_non_null(strstr(r.message, "drained"));
	assert_int_equal(r.nretrying, 2);
	/* Same attempt (not charged), due now, even at max_attempts. */
	assert_int_equal(v.nfollowups, 1);
	assert_int_equal(v.followups[0].task.attempt, 3);
	assert_false(v.followups[0].delayed);
	assert_string_equal(v.followups[0].task.retried_for, "worker drained");
	assert_int_equal(v.tests, 1);
	verdict_release(&v);
	task_result_release(&r);

	/* Cancelled without a drain (the run is cancelled): as it is. */
	result_of(&r, TASK_CANCELLED);
	add_unfinished(&r, "t.py::b");
	classify_attempt(&t, &r, &p, CLOSE_NORMAL, 30, &v);
	assert_int_equal(r.status, TASK_CANCELLED);
	assert_int_equal(v.nfollowups, 0);
	assert_int_equal(r.nunfinished, 1);
	verdict_release(&v);
	task_result_release(&r);
	policy_release(&p);
}

static void test_reruns(void **state)
{
	struct policy p;
	struct task t;
	struct task_result r;
	struct verdict v;
	const struct followup *f;

	(void)state;
	policy_init(&p);
	p.retries = 5; /* the run's: the task's budget decides */
	task_of(&t, ids3, 3, 1);
	t.reruns = 2;
	result_of(&r, TASK_COMPLETED);
	r.exit_code = 1;
	add_test(&r, "t.py::a", OUTCOME_FAILED, "assert 1 == 2");
	add_test(&r, "t.py::b", OUTCOME_PASSED, NULL);
	add_test(&r, "t.py::c", OUTCOME_FAILED, "503 Service Unavailable");
	classify_attempt(&t, &r, &p, CLOSE_NORMAL, 30, &v);
	/* c is transient (retried after a backoff), a is rerun now and
	 * keeps its failed result in this record. */
	assert_int_equal(v.nfollowups, 2);
	f = &v.followups[1];
	assert_int_equal(f->task.ntests, 1);
	assert_string_equal(f->task.tests[0], "t.py::a");
	assert_int_equal(f->task.rerun, 1);
	assert_int_equal(f->task.reruns, 1);
	assert_false(f->delayed);
	assert_null(f->task.retried_for);
	assert_non_null(find_test(&r, "t.py::a"));
	assert_int_equal(r.nretrying, 1); /* c only */
	assert_int_equal(v.failed, 1);
	verdict_release(&v);
	task_result_release(&r);

	/* A rerun with budget left that fails again: once more; its
	 * record adds nothing to the run's counts. */
	t.rerun = 1;
	t.reruns = 1;
	result_of(&r, TASK_COMPLETED);
	add_test(&r, "t.py::a", OUTCOME_FAILED, "assert 1 == 2");
	classify_attempt(&t, &r, &p, CLOSE_NORMAL, 30, &v);
	assert_int_equal(r.rerun, 1);
	assert_int_equal(v.nfollowups, 1);
	assert_int_equal(v.followups[0].task.reruns, 0);
	assert_int_equal(v.tests, 0);
	assert_int_equal(v.failed, 0);
	verdict_release(&v);
	task_result_release(&r);

	/* Budget spent (or none given): no rerun, whatever the run says. */
	t.rerun = 0;
	t.reruns = 0;
	result_of(&r, TASK_COMPLETED);
	add_test(&r, "t.py::a", OUTCOME_FAILED, "assert 1 == 2");
	classify_attempt(&t, &r, &p, CLOSE_NORMAL, 30, &v);
	assert_int_equal(v.nfollowups, 0);
	verdict_release(&v);
	task_result_release(&r);
	policy_release(&p);
}

static void test_permanent_error(void **state)
{
	struct policy p;
	struct task t;
	struct task_result r;
	struct verdict v;

	(void)state;
	policy_init(&p);
	task_of(&t, ids3, 3, 1);
	result_of(&r, TASK_ERROR);
	r.message = xstrdup("runner not found: pytest (Connection refused)");
	add_unfinished(&r, "t.py::a");
	add_unfinished(&r, "t.py::b");
	classify_attempt(&t, &r, &p, CLOSE_NORMAL, 30, &v);
	assert_int_equal(v.nfollowups, 0);
	assert_int_equal(r.nunfinished, 2);
	assert_int_equal(v.tests, 2);
	assert_int_equal(v.failed, 2);
	verdict_release(&v);
	task_result_release(&r);
	policy_release(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_all_passed),
	    cmocka_unit_test(test_transient_test_failure),
	    cmocka_unit_test(test_transient_output),
	    cmocka_unit_test(test_crash_isolates_running_test),
	    cmocka_unit_test(test_crash_dead_letter),
	    cmocka_unit_test(test_sigkill_is_transient),
	    cmocka_unit_test(test_timeout),
	    cmocka_unit_test(test_lost_worker),
	    cmocka_unit_test(test_drained),
	    cmocka_unit_test(test_reruns),
	    cmocka_unit_test(test_permanent_error),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
