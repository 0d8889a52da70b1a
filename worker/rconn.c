/* rconn.c -- asynchronous Redis connection with handshake, deadlines and
 * reconnects (see rconn.h). The only file that includes the hiredis
 * libevent adapter, whose functions are static in its header. */
#include "rconn.h"

#include <errno.h>
#include <hiredis/adapters/libevent.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backoff.h"
#include "xmalloc.h"

#define RCONN_DEFAULT_DEADLINE_MS 15000
#define RCONN_HANDSHAKE_DEADLINE_MS 10000
#define RCONN_BACKOFF_BASE_MS 100
#define RCONN_BACKOFF_CAP_MS 5000

/* One command in flight: the caller's callback and its deadline. Kept in
 * send order, which is also reply order. */
struct pending {
	struct pending *next;
	struct pending *prev;
	struct rconn *c;
	rconn_fn fn;
	void *priv;
	struct timespec deadline; /* monotonic */
	int handshake;		  /* part of the connect sequence */
	int last_handshake;
};

struct rconn {
	struct event_base *base;
	const struct redis_url *url;
	const char *name;
	struct rconn_hooks hooks;
	void *arg;
	redisAsyncContext *ac; /* NULL between connections */
	int ready;
	int closing;	      /* rconn_free in progress */
	struct pending *head; /* oldest command in flight */
	struct pending *tail;
	struct event *watchdog; /* fires at head's deadline */
	struct event *reconnect;
	struct event *drop;
	char drop_why[256];
	struct backoff backoff;
	rconn_fn sub_fn; /* the subscription's callback, or NULL */
	void *sub_priv;
};

static void rconn_connect(struct rconn *c);

static void deadline_after(struct timespec *ts, unsigned ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static void watchdog_arm(struct rconn *c)
{
	struct timespec now;
	struct timeval tv = {0, 0};
	long long ms;

	if (!c->head) {
		event_del(c->watchdog);
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (long long)(c->head->deadline.tv_sec - now.tv_sec) * 1000 +
	     (c->head->deadline.tv_nsec - now.tv_nsec) / 1000000;
	if (ms < 0)
		ms = 0;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)((ms % 1000) * 1000);
	event_add(c->watchdog, &tv);
}

static void pending_unlink(struct rconn *c, struct pending *p)
{
	if (p->prev)
		p->prev->next = p->next;
	else
		c->head = p->next;
	if (p->next)
		p->next->prev = p->prev;
	else
		c->tail = p->prev;
	p->next = p->prev = NULL;
}

/* The connection is gone (or never came): forget it, tell the owner, and
 * schedule the next attempt. Idempotent per connection. */
static void rconn_gone(struct rconn *c, const char *why)
{
	struct timeval tv;
	uint32_t ms;

	c->ac = NULL;
	c->ready = 0;
	if (c->closing)
		return;
	ms = backoff_next(&c->backoff);
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	event_add(c->reconnect, &tv);
	if (c->hooks.lost)
		c->hooks.lost(c->arg, c, why);
}

/* hiredis calls this for every reply, and with NULL for each command still
 * pending when the context is freed. */
static void trampoline(redisAsyncContext *ac, void *r, void *privdata)
{
	struct pending *p = privdata;
	struct rconn *c = p->c;
	redisReply *reply = r;

	(void)ac;
	pending_unlink(c, p);
	watchdog_arm(c);
	if (!reply)
		c->ready = 0;
	if (p->handshake) {
		if (reply && reply->type == REDIS_REPLY_ERROR) {
			char why[256];

			snprintf(why, sizeof(why), "handshake: %.200s",
				 reply->str);
			rconn_drop(c, why);
		} else if (reply && p->last_handshake && !c->closing &&
			   !c->drop_why[0]) {
			c->ready = 1;
			backoff_reset(&c->backoff);
			if (c->hooks.ready)
				c->hooks.ready(c->arg, c);
		}
	} else if (p->fn) {
		p->fn(c, reply, p->priv);
	}
	free(p);
}

static int send_argv(struct rconn *c, rconn_fn fn, void *priv,
		     unsigned deadline_ms, int handshake, int argc,
		     const char **argv, const size_t *argvlen)
{
	struct pending *p;

	if (!c->ac)
		return -1;
	p = xcalloc(1, sizeof(*p));
	p->c = c;
	p->fn = fn;
	p->priv = priv;
	p->handshake = handshake;
	deadline_after(&p->deadline,
		       deadline_ms ? deadline_ms : RCONN_DEFAULT_DEADLINE_MS);
	if (redisAsyncCommandArgv(c->ac, trampoline, p, argc, argv, argvlen) !=
	    REDIS_OK) {
		free(p);
		return -1;
	}
	/* Deadlines are appended in send order; a shorter deadline behind a
	 * longer one is only noticed when it reaches the head. */
	p->prev = c->tail;
	if (c->tail)
		c->tail->next = p;
	else
		c->head = p;
	c->tail = p;
	if (c->head == p)
		watchdog_arm(c);
	return 0;
}

int rconn_command(struct rconn *c, rconn_fn fn, void *priv,
		  unsigned deadline_ms, int argc, const char **argv,
		  const size_t *argvlen)
{
	if (!c->ready)
		return -1;
	return send_argv(c, fn, priv, deadline_ms, 0, argc, argv, argvlen);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
	struct rconn *c = ac->data;
	char why[256];

	if (status == REDIS_OK)
		return;
	/* hiredis frees the context after this returns. */
	snprintf(why, sizeof(why), "connect: %s",
		 ac->errstr[0] ? ac->errstr : "failed");
	if (c && c->ac == ac)
		rconn_gone(c, why);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
	struct rconn *c = ac->data;
	char why[256];

	if (!c || c->ac != ac)
		return;
	if (c->drop_why[0])
		snprintf(why, sizeof(why), "%s", c->drop_why);
	else if (status != REDIS_OK && ac->errstr[0])
		snprintf(why, sizeof(why), "connection lost: %s", ac->errstr);
	else
		snprintf(why, sizeof(why), "connection closed");
	c->drop_why[0] = '\0';
	rconn_gone(c, why);
}

static void handshake(struct rconn *c)
{
	const char *argv[3];
	char db[16];
	int argc = 0;
	struct pending *last;

	if (c->url->password) {
		argv[argc++] = "AUTH";
		if (c->url->user)
			argv[argc++] = c->url->user;
		argv[argc++] = c->url->password;
		send_argv(c, NULL, NULL, RCONN_HANDSHAKE_DEADLINE_MS, 1, argc,
			  argv, NULL);
	}
	if (c->url->db != 0) {
		snprintf(db, sizeof(db), "%d", c->url->db);
		argv[0] = "SELECT";
		argv[1] = db;
		send_argv(c, NULL, NULL, RCONN_HANDSHAKE_DEADLINE_MS, 1, 2,
			  argv, NULL);
	}
	argv[0] = "PING";
	if (send_argv(c, NULL, NULL, RCONN_HANDSHAKE_DEADLINE_MS, 1, 1, argv,
		      NULL) == 0) {
		last = c->tail;
		last->last_handshake = 1;
	}
}

static void rconn_connect(struct rconn *c)
{
	redisAsyncContext *ac;
	char why[256];

	if (c->url->kind == REDIS_URL_UNIX)
		ac = redisAsyncConnectUnix(c->url->path);
	else
		ac = redisAsyncConnect(c->url->host, c->url->port);
	if (!ac) {
		rconn_gone(c, "connect: out of memory");
		return;
	}
	if (ac->err) {
		snprintf(why, sizeof(why), "connect: %s", ac->errstr);
		redisAsyncFree(ac);
		rconn_gone(c, why);
		return;
	}
	ac->data = c;
	if (redisLibeventAttach(ac, c->base) != REDIS_OK) {
		redisAsyncFree(ac);
		rconn_gone(c, "connect: cannot attach to the event loop");
		return;
	}
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	c->ac = ac;
	handshake(c);
}

static void on_reconnect(evutil_socket_t fd, short what, void *arg)
{
	struct rconn *c = arg;

	(void)fd;
	(void)what;
	if (!c->ac && !c->closing)
		rconn_connect(c);
}

/* Frees the context outside any hiredis callback. Pending callbacks run
 * with NULL; on_disconnect runs only if the connection was established. */
static void on_drop(evutil_socket_t fd, short what, void *arg)
{
	struct rconn *c = arg;
	redisAsyncContext *ac = c->ac;
	char why[256];

	(void)fd;
	(void)what;
	if (!ac)
		return;
	snprintf(why, sizeof(why), "%s",
		 c->drop_why[0] ? c->drop_why : "dropped");
	c->ready = 0;
	redisAsyncFree(ac);
	c->drop_why[0] = '\0';
	if (c->ac == ac)
		rconn_gone(c, why);
}

static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
	struct rconn *c = arg;
	struct timespec now;

	(void)fd;
	(void)what;
	if (!c->head)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec < c->head->deadline.tv_sec ||
	    (now.tv_sec == c->head->deadline.tv_sec &&
	     now.tv_nsec < c->head->deadline.tv_nsec)) {
		watchdog_arm(c);
		return;
	}
	rconn_drop(c, "no reply from redis in time");
}

void rconn_drop(struct rconn *c, const char *why)
{
	if (!c->ac)
		return;
	if (!c->drop_why[0])
		snprintf(c->drop_why, sizeof(c->drop_why), "%s", why);
	c->ready = 0;
	event_active(c->drop, 0, 0);
}

struct rconn *rconn_new(struct event_base *base, const struct redis_url *url,
			const char *name, const struct rconn_hooks *hooks,
			void *arg)
{
	struct rconn *c = xcalloc(1, sizeof(*c));

	c->base = base;
	c->url = url;
	c->name = name;
	c->hooks = *hooks;
	c->arg = arg;
	c->watchdog = evtimer_new(base, on_watchdog, c);
	c->reconnect = evtimer_new(base, on_reconnect, c);
	c->drop = event_new(base, -1, 0, on_drop, c);
	backoff_init(&c->backoff, RCONN_BACKOFF_BASE_MS, RCONN_BACKOFF_CAP_MS);
	rconn_connect(c);
	return c;
}

void rconn_free(struct rconn *c)
{
	if (!c)
		return;
	c->closing = 1;
	c->ready = 0;
	if (c->ac) {
		redisAsyncContext *ac = c->ac;

		redisAsyncFree(ac);
		c->ac = NULL;
	}
	event_free(c->watchdog);
	event_free(c->reconnect);
	event_free(c->drop);
	free(c);
}

/* hiredis keeps a subscription's callback for every message and calls it
 * with NULL when the context goes; that last call is not passed on (the
 * lost hook tells). */
static void sub_trampoline(redisAsyncContext *ac, void *r, void *privdata)
{
	struct rconn *c = privdata;

	(void)ac;
	if (r && c->sub_fn && !c->closing)
		c->sub_fn(c, r, c->sub_priv);
}

int rconn_subscribe(struct rconn *c, const char *channel, rconn_fn fn,
		    void *priv)
{
	const char *argv[2] = {"SUBSCRIBE", channel};

	if (!c->ready || !c->ac)
		return -1;
	c->sub_fn = fn;
	c->sub_priv = priv;
	if (redisAsyncCommandArgv(c->ac, sub_trampoline, c, 2, argv, NULL) !=
	    REDIS_OK)
		return -1;
	return 0;
}

int rconn_flush(struct rconn *c, int timeout_ms)
{
	struct pollfd pfd;
	struct timespec t0, now;
	int done = 0, left;

	if (!c->ac)
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		if (redisBufferWrite(&c->ac->c, &done) != REDIS_OK)
			return -1;
		if (done)
			return 0;
		clock_gettime(CLOCK_MONOTONIC, &now);
		left = timeout_ms - (int)((now.tv_sec - t0.tv_sec) * 1000 +
					  (now.tv_nsec - t0.tv_nsec) / 1000000);
		if (left <= 0)
			return -1;
		pfd.fd = c->ac->c.fd;
		pfd.events = POLLOUT;
		pfd.revents = 0;
		if (poll(&pfd, 1, left) < 0 && errno != EINTR)
			return -1;
	}
}

int rconn_is_ready(const struct rconn *c)
{
	return c->ready;
}

const char *rconn_name(const struct rconn *c)
{
	return c->name;
}
