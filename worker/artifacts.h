/* artifacts.h -- what a task leaves in $TESTFLEET_ARTIFACTS, on its way
 * back to `testfleet run --artifacts DIR` (docs/operations.md,
 * "Artifacts"): the folder is listed once the runner has ended (a bounded
 * walk: regular files only, symbolic links never followed), the smallest
 * files are read to go to Redis within a per-task cap, and the rest are
 * named for bin/testfleet-upload to PUT to the configured endpoint -- or
 * recorded as not kept, with the reason. Knows nothing of Redis or of
 * processes: the job runs the uploader and the completion stores the
 * data. */
#ifndef TF_ARTIFACTS_H
#define TF_ARTIFACTS_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

#define ARTIFACTS_MAX_FILES 1000 /* per task; the rest are not listed */
#define ARTIFACTS_MAX_DEPTH 16
#define ARTIFACTS_MAX_PATH 1024 /* bytes of a relative path */
#define ARTIFACTS_DEFAULT_INLINE (8u << 20)

/* The worker's settings (its --artifacts-* options). */
struct artifacts_conf {
	uint64_t inline_max;	/* bytes per task kept in Redis */
	const char *upload_url; /* PUT template (transfer.h), or NULL */
	const char *uploader;	/* path of testfleet-upload, or NULL */
	unsigned upload_tries;
	unsigned upload_timeout_s; /* per file and try */
};

struct artifact_file {
	struct artifact rec; /* what the result carries */
	char *data;	     /* inline: the bytes, else NULL */
	int upload;	     /* 1: handed to the uploader */
};

struct artifacts {
	struct artifact_file *v; /* sorted by path */
	size_t n;
	size_t nupload;
	uint64_t inline_bytes;
};

/* Lists dir (a task's $TESTFLEET_ARTIFACTS) into out (zeroed first) and
 * decides where each file goes. Problems with single files (unreadable,
 * too deep, a link, too many) become that file's rec.error, or one record
 * with an error; -1 (with err) only when dir itself cannot be read. */
int artifacts_collect(const char *dir, const struct artifacts_conf *c,
		      struct artifacts *out, char *err, size_t errlen);

/* The uploader's argv (NULL-terminated, caller frees with
 * artifacts_argv_free) for the files to upload, or NULL when there are
 * none. */
char **artifacts_upload_argv(const struct artifacts *a,
			     const struct artifacts_conf *c, const char *dir,
			     const char *run, const char *task,
			     uint32_t attempt);
void artifacts_argv_free(char **argv);

/* Applies the uploader's output (one line per uploaded file, in order:
 * "ok URL" or "error MESSAGE"). A file with no line gets failed as its
 * error ("uploader exited with status 1", "upload timed out"). */
void artifacts_upload_done(struct artifacts *a, const char *out, size_t len,
			   const char *failed);

/* Copies the records into r->artifacts (r must have none). */
void artifacts_to_result(const struct artifacts *a, struct task_result *r);

/* The field of an inline file in the run's artifacts hash:
 * "<task>/<attempt>/<path>". Caller frees. */
char *artifacts_field(const char *task, uint32_t attempt, const char *path);

void artifacts_release(struct artifacts *a);

#endif
