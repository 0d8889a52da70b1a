/* status.h -- `testfleet status`: a table of recent runs from
 * <prefix>:runs, or one run's hash in full with the workers whose
 * heartbeat in <prefix>:workers is recent. Read-only. */
#ifndef TF_STATUS_H
#define TF_STATUS_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdio.h>

/* A worker counts as live when its heartbeat is younger than this. */
#define STATUS_LIVE_S 15

/* Prints the newest `limit` runs, newest first. Returns 0, or -1 with a
 * message in err. */
int status_list(redisContext *c, const char *prefix, size_t limit, FILE *out,
		char *err, size_t errlen);

/* Prints one run and the live workers. Returns 0, 1 when the run is
 * unknown (nothing printed), or -1 with a message in err. */
int status_show(redisContext *c, const char *prefix, const char *run, FILE *out,
		char *err, size_t errlen);

#endif
