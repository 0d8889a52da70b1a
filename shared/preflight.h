/* preflight.h -- runs one preflight check of the config (docs/config.md,
 * "preflight"): an HTTP GET with an expected status (libcurl), a TCP
 * connect, or a Redis PING, each bounded by the check's timeout. Owns no
 * state between calls; the caller decides what a failure means. */
#ifndef TF_PREFLIGHT_H
#define TF_PREFLIGHT_H

#include <stddef.h>

#include "config.h"

/* Most body bytes read from an HTTP check; the rest is not waited for. */
#define PREFLIGHT_MAX_BODY (64u * 1024)

/* Runs check c. Returns 0 when it passes, or -1 with one line in err that
 * names what was tried but not the check, e.g. "GET http://h/health: got
 * 503, expected 2xx", "TCP connect db:5432: connection refused after
 * 0.01s", "Redis PING redis://h:6379: timed out after 5s". */
int preflight_run(const struct preflight_conf *c, char *err, size_t errlen);

#endif
