/* pwid.h -- testfleet's Playwright test ids, shared by the producer (which
 * builds them from `playwright test --list --reporter=json`) and the worker
 * (which takes them apart into the selectors it passes to Playwright; the
 * reporter in worker/plugins builds the same ids). Format (docs/runners.md):
 *
 *     tests/login.spec.ts:12 › login › shows error
 *     [firefox] › tests/login.spec.ts:12 › login › shows error
 *
 * the file relative to the directory Playwright runs in, ':' and the line
 * of the test, then the non-empty titles of its describe blocks and its own
 * title, each after " › " (U+203A); "[project] › " in front only when the
 * configuration declares more than one project. Pure: strings in, strings
 * out. */
#ifndef TF_PWID_H
#define TF_PWID_H

#include <stddef.h>

#define PWID_SEP " \xe2\x80\xba " /* " › " */
#define PWID_SEP_LEN 5
#define PWID_MAX_LINE 1000000000UL

/* The parts of an id; pointers into the id, not NUL-terminated. */
struct pwid {
	const char *project; /* NULL when the id names no project */
	size_t project_len;
	const char *file;
	size_t file_len;
	unsigned long line;
	const char *titles; /* after the first separator, or "" */
};

/* Builds an id (caller frees). project may be NULL; empty titles are left
 * out; a newline or carriage return in a title becomes a blank (ids are
 * one line). */
char *pwid_format(const char *project, const char *file, unsigned long line,
		  char *const *titles, size_t ntitles);

/* Takes an id apart and checks it can be handed to Playwright safely: the
 * file not empty, not absolute, without a ".." component and not starting
 * with '-'; a line from 1 to PWID_MAX_LINE; no newline, carriage return or
 * NUL anywhere. Returns 0, or -1 with a message naming the id in err. */
int pwid_parse(const char *id, struct pwid *out, char *err, size_t errlen);

/* The length of the id's "[project] › file" prefix -- the part that names
 * its file, for sharding by file -- or 0 when id is not a Playwright id. */
size_t pwid_file_len(const char *id);

/* The argument that selects the id's file and line in `playwright test`:
 * Playwright takes "file:line" with file as a regular expression matched
 * against absolute paths, so the file is escaped and anchored:
 * "/(?:^|\/)tests\/a\.spec\.ts$/:12". Never starts with '-'. Caller frees. */
char *pwid_selector(const struct pwid *p);

#endif
