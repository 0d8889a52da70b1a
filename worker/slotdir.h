/* slotdir.h -- a slot's temporary directory: every task the slot runs gets
 * the same one as its TMPDIR, with junit.xml and artifacts/ inside. It is
 * made when the slot's first task starts, as
 * <base>/testfleet-<consumer>-s<slot>-XXXXXX (the name job_sweep_dead
 * looks for: the consumer name ends in the worker's pid), emptied after
 * each task, and removed when the worker exits; what a worker killed with
 * SIGKILL leaves is swept by the others (job.h). Making and removing a
 * directory per task cost more than the rest of a short task's dispatch
 * (bench/README.md); looking into an empty one costs next to nothing. */
#ifndef TF_SLOTDIR_H
#define TF_SLOTDIR_H

#include <stddef.h>

/* The subdirectory every task finds empty ($TESTFLEET_ARTIFACTS). */
#define SLOTDIR_ARTIFACTS "artifacts"

struct slotdir {
	char *prefix;	 /* "testfleet-<consumer>-s<slot>-" */
	char *path;	 /* NULL until made, and after it was given up */
	char *artifacts; /* path/artifacts, with path */
};

/* Names the directory of slot (from 1) of the worker called consumer
 * ("name-pid"); nothing is made yet. */
void slotdir_init(struct slotdir *d, const char *consumer, unsigned slot);

/* The directory, with an empty artifacts/ in it, made when there is none
 * yet (or when the last one is gone: a temp cleaner, a test that removed
 * its own TMPDIR). Returns the path (borrowed; valid until the next
 * slotdir_clear or slotdir_release), or NULL with a message (as
 * child_mkdtemp). */
const char *slotdir_path(struct slotdir *d, char *err, size_t errlen);

/* Removes whatever the last task left in the directory (symbolic links
 * not followed, read-only directories made writable first), keeping the
 * directory and an empty artifacts/. When something cannot be removed
 * the directory is given up: removed as far as it can be, and the next
 * slotdir_path makes a new one; returns -1 with a message naming the
 * first entry that stayed. Returns 0 when there is nothing to clear. */
int slotdir_clear(struct slotdir *d, char *err, size_t errlen);

/* Removes the directory and frees d. Returns 0, or -1 with a message
 * when part of it stayed. */
int slotdir_release(struct slotdir *d, char *err, size_t errlen);

#endif
