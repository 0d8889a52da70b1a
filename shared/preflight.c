/* preflight.c -- one preflight check: HTTP GET via libcurl's easy API, TCP
 * connect with a non-blocking socket and poll, Redis PING via redisconn.
 * See preflight.h. */
#include "preflight.h"

#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <hiredis/hiredis.h>

#include "redisconn.h"
#include "redisurl.h"
#include "transfer.h"

#define PREFLIGHT_MAX_HOST 1024

static double preflight_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* "5s", "1500ms": the timeout as configured. */
static void preflight_fmt_timeout(char *dst, size_t n, long ms)
{
	if (ms % 1000 == 0)
		snprintf(dst, n, "%lds", ms / 1000);
	else
		snprintf(dst, n, "%ldms", ms);
}

/* strerror with a lower-case first letter: "connection refused". */
static void preflight_strerror(char *dst, size_t n, int errnum)
{
	snprintf(dst, n, "%s", strerror(errnum));
	if (n > 0 && dst[0] != '\0')
		dst[0] = (char)tolower((unsigned char)dst[0]);
}

/* ---- http -------------------------------------------------------------- */

struct preflight_body {
	size_t n;
	int capped;
};

/* Counts and discards the body; past PREFLIGHT_MAX_BODY it stops the
 * transfer (the status is known by then). */
static size_t preflight_discard(char *p, size_t size, size_t nmemb, void *ud)
{
	struct preflight_body *b = ud;
	size_t len = size * nmemb;

	(void)p;
	if (len > PREFLIGHT_MAX_BODY - b->n) {
		b->capped = 1;
		return 0;
	}
	b->n += len;
	return len;
}

static int preflight_status_ok(const struct preflight_conf *c, long code)
{
	size_t i;

	if (c->nstatus == 0)
		return code >= 200 && code <= 299;
	for (i = 0; i < c->nstatus; i++)
		if (c->status[i] == code)
			return 1;
	return 0;
}

/* "2xx", "200", "200 or 204", "one of 200, 204, 301". */
static void preflight_expected(char *dst, size_t n,
			       const struct preflight_conf *c)
{
	size_t i, off = 0;
	int w;

	if (c->nstatus == 0) {
		snprintf(dst, n, "2xx");
		return;
	}
	if (c->nstatus == 2) {
		snprintf(dst, n, "%d or %d", c->status[0], c->status[1]);
		return;
	}
	dst[0] = '\0';
	if (c->nstatus > 2) {
		w = snprintf(dst, n, "one of ");
		off = w > 0 ? (size_t)w : 0;
	}
	for (i = 0; i < c->nstatus && off < n; i++) {
		w = snprintf(dst + off, n - off, "%s%d", i > 0 ? ", " : "",
			     c->status[i]);
		if (w < 0)
			break;
		off += (size_t)w;
	}
}

static int preflight_http(const struct preflight_conf *c, char *err,
			  size_t errlen)
{
	char cerr[CURL_ERROR_SIZE], what[64], tmo[32];
	struct preflight_body body = {0, 0};
	CURL *h;
	CURLcode rc;
	long code = 0, oserr = 0;
	double t0;
	int ret = -1;

	h = curl_easy_init();
	if (h == NULL) {
		snprintf(err, errlen, "GET %s: cannot start libcurl",
			 c->target);
		return -1;
	}
	cerr[0] = '\0';
	/* A redirect is an answer: it is checked against status, not
	 * followed (follow it yourself by naming the final URL). */
	transfer_easy_setup(h, c->target, c->timeout_ms, c->timeout_ms,
			    "testfleet-preflight");
	curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, preflight_discard);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
	t0 = preflight_now();
	rc = curl_easy_perform(h);
	if (rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && body.capped)) {
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
		if (preflight_status_ok(c, code)) {
			ret = 0;
			goto out;
		}
		preflight_expected(what, sizeof(what), c);
		snprintf(err, errlen, "GET %s: got %ld, expected %s",
			 c->target, code, what);
		goto out;
	}
	if (rc == CURLE_OPERATION_TIMEDOUT) {
		preflight_fmt_timeout(tmo, sizeof(tmo), c->timeout_ms);
		snprintf(err, errlen, "GET %s: timed out after %s", c->target,
			 tmo);
		goto out;
	}
	curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &oserr);
	if (rc == CURLE_COULDNT_CONNECT && oserr != 0) {
		preflight_strerror(cerr, sizeof(cerr), (int)oserr);
	} else if (cerr[0] == '\0') {
		snprintf(cerr, sizeof(cerr), "%s", curl_easy_strerror(rc));
	} else {
		cerr[strcspn(cerr, "\r\n")] = '\0';
	}
	snprintf(err, errlen, "GET %s: %s after %.2fs", c->target, cerr,
		 preflight_now() - t0);
out:
	curl_easy_cleanup(h);
	return ret;
}

/* ---- tcp --------------------------------------------------------------- */

/* Connects one address within ms milliseconds. Returns 0, or the errno
 * (ETIMEDOUT when the time ran out). */
static int preflight_connect(const struct addrinfo *ai, int ms)
{
	struct pollfd pfd;
	socklen_t len = sizeof(int);
	int fd, e = 0, n;

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    ai->ai_protocol);
	if (fd < 0)
		return errno;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		goto out;
	if (errno != EINPROGRESS) {
		e = errno;
		goto out;
	}
	pfd.fd = fd;
	pfd.events = POLLOUT;
	do {
		n = poll(&pfd, 1, ms);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		e = errno;
		goto out;
	}
	if (n == 0) {
		e = ETIMEDOUT;
		goto out;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
		e = errno;
out:
	close(fd);
	return e;
}

static int preflight_tcp(const struct preflight_conf *c, char *err,
			 size_t errlen)
{
	char host[PREFLIGHT_MAX_HOST], msg[128], tmo[32];
	const char *colon = strrchr(c->target, ':');
	struct addrinfo hints, *res = NULL, *ai;
	size_t hlen;
	double t0 = preflight_now(), left;
	int e = EHOSTUNREACH, g, ret = -1;

	if (colon == NULL || colon == c->target) {
		snprintf(err, errlen, "TCP connect %s: expected HOST:PORT",
			 c->target);
		return -1;
	}
	hlen = (size_t)(colon - c->target);
	if (c->target[0] == '[' && hlen >= 2 && c->target[hlen - 1] == ']')
		snprintf(host, sizeof(host), "%.*s", (int)(hlen - 2),
			 c->target + 1);
	else
		snprintf(host, sizeof(host), "%.*s", (int)hlen, c->target);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	/* Name resolution is not bounded by the timeout (getaddrinfo has
	 * none); the connects are. */
	g = getaddrinfo(host, colon + 1, &hints, &res);
	if (g != 0) {
		snprintf(err, errlen, "TCP connect %s: cannot resolve %s: %s",
			 c->target, host,
			 g == EAI_SYSTEM ? strerror(errno) : gai_strerror(g));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		left = (double)c->timeout_ms - (preflight_now() - t0) * 1000.0;
		if (left < 1) {
			e = ETIMEDOUT;
			break;
		}
		e = preflight_connect(ai, (int)left);
		if (e == 0) {
			ret = 0;
			goto out;
		}
		if (e == ETIMEDOUT)
			break;
	}
	if (e == ETIMEDOUT) {
		preflight_fmt_timeout(tmo, sizeof(tmo), c->timeout_ms);
		snprintf(err, errlen, "TCP connect %s: timed out after %s",
			 c->target, tmo);
		goto out;
	}
	preflight_strerror(msg, sizeof(msg), e);
	snprintf(err, errlen, "TCP connect %s: %s after %.2fs", c->target, msg,
		 preflight_now() - t0);
out:
	freeaddrinfo(res);
	return ret;
}

/* ---- redis ------------------------------------------------------------- */

static int preflight_redis(const struct preflight_conf *c, char *err,
			   size_t errlen)
{
	struct redis_url u;
	redisContext *ctx = NULL;
	redisReply *r = NULL;
	char msg[512], *shown = NULL;
	int ms = c->timeout_ms > 0x7fffffffL ? 0x7fffffff : (int)c->timeout_ms;
	int ret = -1;

	if (redis_url_parse(c->target, &u, msg, sizeof(msg)) < 0) {
		snprintf(err, errlen, "Redis PING: %s", msg);
		return -1;
	}
	shown = redis_url_display(&u);
	ctx = redisconn_open(&u, ms, msg, sizeof(msg));
	if (ctx == NULL) {
		snprintf(err, errlen, "Redis PING %s: %s", shown, msg);
		goto out;
	}
	r = redisCommand(ctx, "PING");
	if (r == NULL || r->type != REDIS_REPLY_STATUS ||
	    strcmp(r->str, "PONG") != 0) {
		snprintf(err, errlen, "Redis PING %s: %s", shown,
			 redisconn_why(ctx, r));
		goto out;
	}
	ret = 0;
out:
	if (r != NULL)
		freeReplyObject(r);
	if (ctx != NULL)
		redisFree(ctx);
	free(shown);
	redis_url_release(&u);
	return ret;
}

int preflight_run(const struct preflight_conf *c, char *err, size_t errlen)
{
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	switch (c->kind) {
	case PREFLIGHT_HTTP:
		return preflight_http(c, err, errlen);
	case PREFLIGHT_TCP:
		return preflight_tcp(c, err, errlen);
	case PREFLIGHT_REDIS:
		return preflight_redis(c, err, errlen);
	}
	snprintf(err, errlen, "unknown kind of check");
	return -1;
}
