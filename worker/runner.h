/* runner.h -- what a task runs and how its results map back: the argv for
 * each runner kind (pytest, playwright, command), validation of the test
 * ids a task carries, JUnit cases mapped to the task's ids, and which
 * requested tests are left unfinished. Pure: no processes, no I/O. */
#ifndef TF_RUNNER_H
#define TF_RUNNER_H

#include <stddef.h>

#include "junit.h"
#include "proto.h"

/* The worker's own configuration of runners; a task only names one. */
struct runner_conf {
	char **pytest; /* the pytest command, split in words */
	size_t npytest;
	int allow_command; /* run "command" tasks (their argv) at all */
	char **playwright; /* the Playwright command ("npx --no-install
			    * playwright"), split in words */
	size_t nplaywright;
	/* Absolute path of testfleet-playwright-reporter.js, or NULL when
	 * it was not found (playwright tasks then fail to start). */
	char *playwright_reporter;
	/* Starts pytest tasks warm (warm.h); NULL = always exec pytest. */
	struct warm *warm;
};

/* Rejects a pytest test id that could be taken for an option or escape
 * the project: empty, starting with '-', containing a newline or carriage
 * return, an absolute path, or with a ".." component in its file part
 * (before the first "::"). Returns 0, or -1 with a message naming the id.
 * (Playwright ids are checked by pwid_parse.) */
int runner_check_test_id(const char *id, char *err, size_t errlen);

/* Builds the NULL-terminated argv for task t (caller frees it with
 * runner_argv_free). pytest: the pytest words, "-p testfleet_pytest -p
 * no:cacheprovider -q --junitxml=<junit_path>", -m and -k when set, then
 * "--" and the test ids. playwright: the Playwright words, "test
 * --reporter=<reporter> --retries=0 --workers=1 --output=<artifacts_dir>",
 * --grep when set, "--project=<name>" for each project the ids name (when
 * every id names one), then the distinct file:line selectors of the ids
 * (pwid_selector; Playwright gives arguments after "--" to the
 * configuration, so they come without it -- none starts with '-').
 * command: the task's argv, when allowed. Returns 0, or -1 with a one-line
 * message in err (unknown runner, bad test id, command not allowed, empty
 * argv, no reporter). */
int runner_argv(const struct runner_conf *rc, const struct task *t,
		const char *junit_path, const char *artifacts_dir, char ***argv,
		char *err, size_t errlen);
void runner_argv_free(char **argv);

/* The test id for a JUnit case of the given runner: for pytest, classname
 * "a.b.TestC" and name "n" become "a/b.py::TestC::n" (or "a/b.py::n"),
 * choosing the candidate that matches (or falls under) one of the
 * requested tests; otherwise "classname::name". Caller frees. */
char *runner_junit_id(const char *runner, const struct junit_case *jc,
		      char *const *tests, size_t ntests);

/* Turns JUnit cases into test results (ids mapped as above). Caller owns
 * the array and its entries (test_result_release each, free the array). */
struct test_result *runner_junit_results(const char *runner,
					 const struct junit_case *cases,
					 size_t ncases, char *const *tests,
					 size_t ntests, size_t *nresults);

/* Whether result id `got` answers requested id `want`: equal, or (when
 * partial is set) a test under it -- a file, directory, class or
 * parametrized function ("t.py" covers "t.py::x", "t.py::f" covers
 * "t.py::f[1]", "tests" covers "tests/t.py::x"). */
int runner_id_covers(const char *want, const char *got, int partial);

/* The requested tests that have no result, as a new array of new strings
 * (caller frees both), or NULL with *n = 0. Tests selected by a file,
 * class or directory id count as done when any result falls under them,
 * but only if the runner completed (completed != 0); after a crash or
 * timeout only exact results count. */
char **runner_unfinished(char *const *tests, size_t ntests,
			 const struct test_result *results, size_t nresults,
			 int completed, size_t *n);

#endif
