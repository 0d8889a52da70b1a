/* redisconn.h -- blocking Redis connections for the producer and tools:
 * connect with AUTH and SELECT, run Lua scripts by SHA with a fallback to
 * EVAL, and reconnect with capped exponential backoff. */
#ifndef TF_REDISCONN_H
#define TF_REDISCONN_H

#include <hiredis/hiredis.h>
#include <stddef.h>

#include "redisurl.h"

/* Connects, authenticates and selects the database. timeout_ms bounds the
 * connect and every later command. Returns a context the caller frees with
 * redisFree, or NULL with a one-line message in err naming the address. */
redisContext *redisconn_open(const struct redis_url *u, int timeout_ms,
			     char *err, size_t errlen);

/* Like redisconn_open, retrying with backoff (full jitter, 100 ms doubling
 * to 2 s) until total_ms has passed. */
redisContext *redisconn_open_retry(const struct redis_url *u, int timeout_ms,
				   int total_ms, char *err, size_t errlen);

/* Why a command failed, for messages: the error reply's text, "unexpected
 * reply" for any other reply, or (r NULL) the connection's error. The
 * string is borrowed from c or r. */
const char *redisconn_why(const redisContext *c, const redisReply *r);

/* Runs a script from scripts.h: EVALSHA, then EVAL on NOSCRIPT. argv holds
 * nkeys keys then the arguments; argc counts both (argc >= nkeys). argvlen
 * may be NULL for NUL-terminated arguments. Returns the reply (caller frees
 * with freeReplyObject) or NULL on a connection error (c->errstr says
 * why). */
redisReply *redisconn_script(redisContext *c, const char *script,
			     int nkeys, int argc, const char **argv,
			     const size_t *argvlen);

#endif
