/* junit.h -- reading JUnit XML written by test runners, through libxml2 with
 * safe options: no network, no entity expansion, no DTD loading, a size cap.
 * Pure: bytes in, test cases out. Writing merged reports lives with the
 * producer's report module. The worker's copy loads libxml2 on first use
 * (junit.c, JUNIT_DLOPEN). */
#ifndef TF_JUNIT_H
#define TF_JUNIT_H

#include <stddef.h>

#include "proto.h"

#define JUNIT_MAX_BYTES (64u << 20)
#define JUNIT_MAX_CASES 1000000

struct junit_case {
	char *classname;    /* may be NULL */
	char *name;
	char *file;         /* the "file" attribute, or NULL */
	unsigned line;      /* the "line" attribute, or 0 */
	enum outcome outcome; /* passed, failed, error, skipped; pytest's
			       * xfail/xpass markers map to xfailed/xpassed */
	double time_s;
	char *message;      /* the failure/error/skipped "message", or NULL */
	char *details;      /* the element text, capped, or NULL */
};

/* Parses a JUnit document (testsuites or testsuite root). Returns 0 with a
 * malloc'd array in *cases (caller frees with junit_cases_free), or -1 with
 * a one-line message in err. Inputs over JUNIT_MAX_BYTES, with a DOCTYPE or
 * entity declarations, or not well-formed are errors. */
int junit_parse(const char *data, size_t len, struct junit_case **cases,
		size_t *ncases, char *err, size_t errlen);
int junit_parse_file(const char *path, struct junit_case **cases,
		     size_t *ncases, char *err, size_t errlen);
void junit_cases_free(struct junit_case *cases, size_t n);

/* Whether JUnit XML can be read in this process: 0, or -1 with a one-line
 * message when libxml2 cannot be loaded (only a build with JUNIT_DLOPEN
 * loads it, on the first call of this or of a parse; the parses fail with
 * the same message). */
int junit_load(char *err, size_t errlen);

#endif
