/* playwright.h -- finding a Playwright suite's tests: runs `<playwright>
 * test --list --reporter=json` in the suite's directory without a shell
 * (proc.h), the listing going to a temporary file, and turns it into test
 * ids (shared/pwid.h). Owns the interpretation of Playwright's listing
 * errors; the JSON parser is a pure function. docs/runners.md. */
#ifndef TF_PLAYWRIGHT_H
#define TF_PLAYWRIGHT_H

#include <signal.h>
#include <stddef.h>

#include "discover.h"
#include "proto.h"

/* npx, but never a download at test time: a missing Playwright is an
 * error, not an install. */
#define PLAYWRIGHT_DEFAULT_CMD "npx --no-install playwright"
#define PLAYWRIGHT_MAX_OUTPUT (256u << 20) /* listing JSON cap */
#define PLAYWRIGHT_MAX_WORDS 64		   /* words of the command */
#define PLAYWRIGHT_MAX_IDS 10000000u

/* A parsed listing. */
struct playwright_list {
	char **ids; /* NULL-terminated; by project (configuration order),
		     * then file, line and column */
	size_t nids;
	char *errors; /* the listing's errors, the first line of each
		       * (colours removed), each "  "-indented and
		       * "\n"-ended; NULL when there is none */
	size_t nerrors;
	int no_tests; /* one of them is Playwright's "No tests found" */
};

/* Parses the JSON of `playwright test --list --reporter=json`. cwd is the
 * absolute directory Playwright ran in: the ids' files are relative to it
 * (a test file outside it is an error, as ids may not hold ".."). Every id
 * passes pwid_parse. Returns 0 with out filled (release it with
 * playwright_list_release), or -1 with a message in err (not JSON, no
 * "config.rootDir", a file outside cwd, more than PLAYWRIGHT_MAX_IDS
 * tests, an id pwid_parse refuses). */
int playwright_list_parse(const char *json, size_t len, const char *cwd,
			  struct playwright_list *out, char *err,
			  size_t errlen);
void playwright_list_release(struct playwright_list *l);

struct playwright_opts {
	const char *cmd;    /* split on blanks; NULL = PLAYWRIGHT_DEFAULT_CMD */
	const char *cwd;    /* absolute: where Playwright runs */
	const char *grep;   /* --grep, or NULL */
	char *const *paths; /* test filters, none starting with '-' */
	size_t npaths;
	const struct kv *env; /* extra environment (the suite's) */
	size_t nenv;
	volatile sig_atomic_t *stop; /* set by a signal: give up */
	const char *grep_invert; /* --grep-invert, or NULL (appended) */
};

/* Runs the listing and fills res like discover_run does for pytest
 * (res->root is o->cwd; release with discover_result_release). Always
 * returns res->status: DISCOVER_NOT_FOUND when the command or Playwright
 * is missing, DISCOVER_USER for listing errors (a syntax error in a test
 * file, a broken configuration, a test file outside cwd), DISCOVER_EMPTY
 * for "No tests found", DISCOVER_FAILED when Playwright crashed or printed
 * no listing. */
enum discover_status playwright_discover(const struct playwright_opts *o,
					 struct discover_result *res);

#endif
