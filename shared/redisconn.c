/* redisconn.c -- blocking Redis connections (see redisconn.h): connect,
 * AUTH, SELECT and a PING that surfaces NOAUTH or LOADING at once rather
 * than on the first real command; retries with backoff; scripts by SHA-1
 * with a fallback to EVAL. Messages name the address, never the
 * password. */
#include "redisconn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backoff.h"
#include "sha1.h"
#include "xmalloc.h"

#define RETRY_BASE_MS 100
#define RETRY_CAP_MS 2000

/* "host:port", "[v6]:port" or the socket path: how messages name the
 * server. */
static void redisconn_addr(const struct redis_url *u, char *out, size_t outlen)
{
	if (u->kind == REDIS_URL_UNIX)
		snprintf(out, outlen, "%s", u->path != NULL ? u->path : "");
	else if (u->host != NULL && strchr(u->host, ':') != NULL)
		snprintf(out, outlen, "[%s]:%d", u->host, u->port);
	else
		snprintf(out, outlen, "%s:%d", u->host != NULL ? u->host : "",
			 u->port);
}

/* Errors a server gives while it cannot serve yet; worth a retry. */
static int redisconn_transient(const char *msg)
{
	static const char *const prefixes[] = {"LOADING", "BUSY", "MASTERDOWN",
					       "TRYAGAIN"};
	size_t i;

	for (i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		if (strncmp(msg, prefixes[i], strlen(prefixes[i])) == 0)
			return 1;
	}
	return 0;
}

/* Runs one setup command. Returns 0, or -1 with "redis: ADDR: what: why"
 * in err and *retry set when trying again may help. */
static int redisconn_setup(redisContext *c, const char *addr, const char *what,
			   int argc, const char **argv, int *retry, char *err,
			   size_t errlen)
{
	redisReply *reply;
	int rc = -1;

	reply = redisCommandArgv(c, argc, argv, NULL);
	if (reply == NULL) {
		snprintf(err, errlen, "redis: %s: %s: %s", addr, what,
			 c->errstr[0] != '\0' ? c->errstr : "connection lost");
		*retry = 1;
		goto out;
	}
	if (reply->type == REDIS_REPLY_ERROR) {
		snprintf(err, errlen, "redis: %s: %s: %s", addr, what,
			 reply->str != NULL ? reply->str : "error");
		*retry = reply->str != NULL && redisconn_transient(reply->str);
		goto out;
	}
	rc = 0;
out:
	if (reply != NULL)
		freeReplyObject(reply);
	return rc;
}

/* One connection attempt; see redisconn_open. */
static redisContext *redisconn_try(const struct redis_url *u, int timeout_ms,
				   int *retry, char *err, size_t errlen)
{
	char addr[512], db[16];
	const char *argv[3];
	struct timeval tv;
	redisContext *c = NULL;

	*retry = 0;
	redisconn_addr(u, addr, sizeof(addr));
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	if (u->kind == REDIS_URL_UNIX)
		c = timeout_ms > 0 ? redisConnectUnixWithTimeout(u->path, tv)
				   : redisConnectUnix(u->path);
	else
		c = timeout_ms > 0
			? redisConnectWithTimeout(u->host, u->port, tv)
			: redisConnect(u->host, u->port);
	if (c == NULL) {
		snprintf(err, errlen,
			 "redis: cannot connect to %s: out of "
			 "memory",
			 addr);
		goto fail;
	}
	if (c->err != 0) {
		snprintf(err, errlen, "redis: cannot connect to %s: %s", addr,
			 c->errstr);
		*retry = 1;
		goto fail;
	}
	if (timeout_ms > 0 && redisSetTimeout(c, tv) != REDIS_OK) {
		snprintf(err, errlen, "redis: %s: cannot set the timeout: %s",
			 addr, c->errstr);
		goto fail;
	}
	if (u->password != NULL) {
		int argc = 0;

		argv[argc++] = "AUTH";
		if (u->user != NULL)
			argv[argc++] = u->user;
		argv[argc++] = u->password;
		if (redisconn_setup(c, addr, "authentication failed", argc,
				    argv, retry, err, errlen) < 0)
			goto fail;
	}
	if (u->db != 0) {
		snprintf(db, sizeof(db), "%d", u->db);
		argv[0] = "SELECT";
		argv[1] = db;
		if (redisconn_setup(c, addr, "cannot select the database", 2,
				    argv, retry, err, errlen) < 0)
			goto fail;
	}
	argv[0] = "PING";
	if (redisconn_setup(c, addr, "not ready", 1, argv, retry, err, errlen) <
	    0)
		goto fail;
	return c;
fail:
	if (c != NULL)
		redisFree(c);
	return NULL;
}

redisContext *redisconn_open(const struct redis_url *u, int timeout_ms,
			     char *err, size_t errlen)
{
	int retry;

	return redisconn_try(u, timeout_ms, &retry, err, errlen);
}

static long long redisconn_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void redisconn_sleep_ms(long long ms)
{
	struct timespec ts;

	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

redisContext *redisconn_open_retry(const struct redis_url *u, int timeout_ms,
				   int total_ms, char *err, size_t errlen)
{
	struct backoff b;
	redisContext *c = NULL;
	long long start = redisconn_now_ms(), elapsed, delay;
	unsigned attempts = 0;
	int retry = 0;
	size_t n;

	backoff_init(&b, RETRY_BASE_MS, RETRY_CAP_MS);
	for (;;) {
		attempts++;
		c = redisconn_try(u, timeout_ms, &retry, err, errlen);
		if (c != NULL || !retry)
			break;
		elapsed = redisconn_now_ms() - start;
		if (elapsed >= total_ms)
			break;
		delay = backoff_next(&b);
		if (delay > total_ms - elapsed)
			delay = total_ms - elapsed;
		redisconn_sleep_ms(delay);
	}
	if (c == NULL && attempts > 1 && errlen > 0) {
		n = strlen(err);
		snprintf(err + n, errlen - n,
			 " (gave up after %u attempts in "
			 "%.1f s)",
			 attempts,
			 (double)(redisconn_now_ms() - start) / 1000.0);
	}
	return c;
}

redisReply *redisconn_script(redisContext *c, const char *script, int nkeys,
			     int argc, const char **argv, const size_t *argvlen)
{
	char sha[SHA1_HEX_LEN + 1], nk[16];
	const char **av;
	size_t *al;
	redisReply *reply;
	int i;

	if (argc < 0)
		argc = 0;
	sha1_hex(script, strlen(script), sha);
	snprintf(nk, sizeof(nk), "%d", nkeys);
	av = xcalloc((size_t)argc + 3, sizeof(*av));
	al = xcalloc((size_t)argc + 3, sizeof(*al));
	av[0] = "EVALSHA";
	av[1] = sha;
	av[2] = nk;
	for (i = 0; i < argc; i++) {
		av[i + 3] = argv[i];
		al[i + 3] = argvlen != NULL ? argvlen[i] : strlen(argv[i]);
	}
	al[0] = strlen(av[0]);
	al[1] = strlen(av[1]);
	al[2] = strlen(av[2]);
	reply = redisCommandArgv(c, argc + 3, av, al);
	if (reply != NULL && reply->type == REDIS_REPLY_ERROR &&
	    reply->str != NULL && strncmp(reply->str, "NOSCRIPT", 8) == 0) {
		freeReplyObject(reply);
		av[0] = "EVAL";
		av[1] = script;
		al[0] = strlen(av[0]);
		al[1] = strlen(script);
		reply = redisCommandArgv(c, argc + 3, av, al);
	}
	free(al);
	free(av);
	return reply;
}

const char *redisconn_why(const redisContext *c, const redisReply *r)
{
	if (r != NULL)
		return r->type == REDIS_REPLY_ERROR && r->str != NULL
			   ? r->str
			   : "unexpected reply";
	return c->errstr[0] != '\0' ? c->errstr : "connection lost";
}
