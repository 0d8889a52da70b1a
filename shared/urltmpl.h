/* urltmpl.h -- the URL template of artifact uploads (docs/operations.md,
 * "Artifacts"): where the worker PUTs a file, built from the run, task,
 * attempt and path; and the form of a URL fit for records and messages.
 * Pure string work, no libcurl. */
#ifndef TF_URLTMPL_H
#define TF_URLTMPL_H

#include <stddef.h>

/* Checks a URL template: http:// or https://, no placeholder but {run},
 * {task}, {attempt} and {path}, and none in the query string or fragment.
 * Returns 0, or -1 with a message. */
int urltmpl_check(const char *tmpl, char *err, size_t errlen);

/* Expands a checked template for one artifact. Values are percent-encoded
 * (the '/' of path kept); a template without {path} gets
 * "/{run}/{task}/{attempt}/{path}" added to its path (before any query
 * string). Caller frees. */
char *urltmpl_expand(const char *tmpl, const char *run, const char *task,
		      unsigned attempt, const char *path);

/* The URL without its query string and fragment (a presigned URL's
 * signature stays out of records and messages). Caller frees. */
char *urltmpl_public(const char *url);

#define URLTMPL_MAX_HEADERS 32
#define URLTMPL_MAX_HEADER_LEN 8192

/* Splits env, the text of $TESTFLEET_ARTIFACTS_HEADERS (one "Name: value"
 * per line; NULL = none), in place into v (URLTMPL_MAX_HEADERS entries).
 * Returns 0 with *n set, or -1 with a message naming the variable. */
int urltmpl_headers(char *env, char **v, size_t *n, char *err,
		    size_t errlen);

#endif
