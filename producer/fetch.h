/* fetch.h -- bringing a run's artifacts to a local folder (`run`, `watch`
 * and `report` with --artifacts DIR; docs/operations.md, "Artifacts"):
 * the files kept in Redis are read from the run's artifacts hash, the
 * uploaded ones are downloaded (libcurl, with retries). A file goes to
 * DIR/<path> when no other artifact of the run has the same path, else to
 * DIR/<task>-a<attempt>/<path>, so nothing overwrites anything. */
#ifndef TF_FETCH_H
#define TF_FETCH_H

#include <hiredis/hiredis.h>
#include <stddef.h>

#include "aggregate.h"

struct fetch_stats {
	unsigned fetched;    /* files written */
	unsigned not_kept;   /* the worker could not keep them */
	unsigned failed;     /* kept, but could not be brought here */
	unsigned long long bytes;
};

/* Fetches every artifact of rep into dir (created when missing), setting
 * each one's file, or its fetch_error when it cannot be fetched. Returns 0 with *st filled, or -1 with a
 * message in err when dir cannot be made (nothing fetched then). */
int fetch_artifacts(redisContext *c, const char *prefix, struct report *rep,
		    const char *dir, struct fetch_stats *st, char *err,
		    size_t errlen);

#endif
