/* rconn.h -- one asynchronous Redis connection of the worker (hiredis 0.14
 * on the worker's libevent loop): connects over TCP or a unix socket,
 * authenticates and selects the database from the URL, says when it is
 * ready or lost, and reconnects with backoff. hiredis 0.14 has no command
 * timeouts, so every command carries a deadline; a reply that is overdue
 * drops the connection. */
#ifndef TF_RCONN_H
#define TF_RCONN_H

#include <event2/event.h>
#include <hiredis/async.h>
#include <stddef.h>

#include "redisurl.h"

struct rconn;

struct rconn_hooks {
	/* Connected, authenticated and on the right database. */
	void (*ready)(void *arg, struct rconn *c);
	/* A connection attempt failed or the connection was lost (why is
	 * borrowed). A reconnect is already scheduled. */
	void (*lost)(void *arg, struct rconn *c, const char *why);
};

/* Called with the reply, valid only during the call, or with NULL when
 * the connection went away before the reply came. */
typedef void (*rconn_fn)(struct rconn *c, redisReply *reply, void *priv);

/* Creates the connection and starts connecting. url and name (for
 * messages) are borrowed for the connection's life. */
struct rconn *rconn_new(struct event_base *base, const struct redis_url *url,
			const char *name, const struct rconn_hooks *hooks,
			void *arg);
/* Closes the connection; pending commands get their callbacks with NULL
 * (before this returns). Not to be called from inside an rconn callback. */
void rconn_free(struct rconn *c);

int rconn_is_ready(const struct rconn *c);
const char *rconn_name(const struct rconn *c);

/* Sends a command. deadline_ms bounds the wait for its reply (0 = the
 * default, 15 s). fn may be NULL (fire and forget). Returns 0, or -1 when
 * the connection is not ready (fn is then not called). */
int rconn_command(struct rconn *c, rconn_fn fn, void *priv,
		  unsigned deadline_ms, int argc, const char **argv,
		  const size_t *argvlen);

/* Drops the connection and reconnects after a backoff. Deferred to the
 * event loop, so it is safe inside reply callbacks. */
void rconn_drop(struct rconn *c, const char *why);

/* Subscribes to channel: fn gets the "subscribe" confirmation and every
 * message (arrays as Redis sends them; valid only during the call), never
 * NULL. The connection can do nothing else afterwards; a lost connection
 * forgets the subscription (subscribe again in the ready hook). Returns 0,
 * or -1 when not ready. */
int rconn_subscribe(struct rconn *c, const char *channel, rconn_fn fn,
		    void *priv);

/* Writes what is buffered for sending now, waiting up to timeout_ms for the
 * socket. For the worker's fault-injection hooks, which exit right after a
 * command is on the wire. Returns 0 when everything was written, else -1. */
int rconn_flush(struct rconn *c, int timeout_ms);

#endif
