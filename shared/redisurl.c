/* redisurl.c -- parsing of Redis addresses (see redisurl.h).
 *
 * Accepted forms:
 *   redis://[[user]:password@]host[:port][/db][?db=N]
 *   redis://[user:password@][::1]:port/db      (IPv6 in brackets)
 *   unix://[[user]:password@]/abs/path.sock[?db=N]
 *   unix:/abs/path.sock[?db=N]
 * user and password are percent-decoded. rediss:// is refused: hiredis 0.14
 * has no TLS. Messages quote the URL with the credentials replaced by
 * "***", so a password never reaches a log. */
#include "redisurl.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "buf.h"
#include "xmalloc.h"

#define REDIS_URL_MAX 4096
#define REDIS_DEFAULT_PORT 6379

struct url_ctx {
	const char *shown; /* the URL with credentials masked */
	char *err;
	size_t errlen;
};

static int url_fail(struct url_ctx *x, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int url_fail(struct url_ctx *x, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (x->err == NULL || x->errlen == 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(x->err, x->errlen, "redis url: %s in \"%s\"", msg, x->shown);
	return -1;
}

/* Copies s, cut at n bytes, with non-printable bytes as '?', for quoting a
 * piece of the URL that is not a credential. */
static void url_quote_as(char *dst, size_t dstlen, const char *s, size_t n,
			 char bad)
{
	size_t i, j = 0;

	for (i = 0; i < n && j + 1 < dstlen; i++)
		dst[j++] = (s[i] > 0x20 && s[i] < 0x7f) ? s[i] : bad;
	dst[j] = '\0';
}

static void url_quote(char *dst, size_t dstlen, const char *s, size_t n)
{
	url_quote_as(dst, dstlen, s, n, '?');
}

/* The URL with everything between the scheme's "//" and the last '@'
 * replaced by "***", and non-printable bytes by '?'. Caller frees. */
static char *url_mask(const char *s)
{
	const char *at = strrchr(s, '@');
	const char *start = strstr(s, "://");
	size_t len = strlen(s), pre, cut = 200;
	char *out = xmalloc(len + 8), *query;

	/* Bad bytes show as '_' here so that '?' only ever means a query. */
	if (at != NULL && start != NULL && start < at) {
		pre = (size_t)(start - s) + 3;
		url_quote_as(out, pre + 1, s, pre, '_');
		memcpy(out + pre, "***", 3);
		url_quote_as(out + pre + 3, len + 8 - pre - 3, at,
			     len - (size_t)(at - s), '_');
	} else {
		url_quote_as(out, len + 1, s, len, '_');
	}
	/* A query other than db=N may carry a secret (some clients take
	 * ?password=): hide its values. */
	query = strchr(out, '?');
	if (query != NULL && strncmp(query, "?db=", 4) != 0) {
		memcpy(query, "?***", 5);
	} else if (query != NULL) {
		query += 4 + strspn(query + 4, "0123456789");
		if (*query != '\0')
			memcpy(query, "***", 4);
	}
	/* Cut after masking, so a long URL cannot push the credentials past
	 * the cut and out unmasked. */
	if (strlen(out) > cut)
		memcpy(out + cut - 3, "...", 4);
	return out;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decodes s[0..n) into a new string. Returns NULL on a bad escape
 * or an encoded NUL. */
static char *pct_decode(const char *s, size_t n)
{
	char *out = xmalloc(n + 1);
	size_t i, j = 0;

	for (i = 0; i < n; i++) {
		if (s[i] != '%') {
			out[j++] = s[i];
			continue;
		}
		if (n - i < 3) {
			free(out);
			return NULL;
		}
		if (hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0 ||
		    (hexval(s[i + 1]) == 0 && hexval(s[i + 2]) == 0)) {
			free(out);
			return NULL;
		}
		out[j++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
		i += 2;
	}
	out[j] = '\0';
	return out;
}

/* Parses decimal digits s[0..n) into *out, within [min, max]. */
static int parse_num(const char *s, size_t n, long min, long max, long *out)
{
	long v = 0;
	size_t i;

	if (n == 0 || n > 10)
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if (v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* userinfo is "user:password" or ":password" (user absent). */
static int parse_userinfo(struct url_ctx *x, const char *s, size_t n,
			  struct redis_url *u)
{
	const char *colon = memchr(s, ':', n);

	if (colon == NULL)
		return url_fail(x, "credentials must be user:password or "
				   ":password");
	if (colon > s) {
		u->user = pct_decode(s, (size_t)(colon - s));
		if (u->user == NULL)
			return url_fail(x, "bad percent-escape in the user "
					   "name");
	}
	u->password = pct_decode(colon + 1, n - (size_t)(colon - s) - 1);
	if (u->password == NULL)
		return url_fail(x, "bad percent-escape in the password");
	if (u->password[0] == '\0') {
		free(u->password);
		u->password = NULL;
		if (u->user != NULL)
			return url_fail(x, "user without a password");
	}
	return 0;
}

/* Parses "[/db][?db=N]" at s (the rest of the URL). db_path says whether a
 * "/N" path is allowed (TCP) or s starts at the query (UNIX). */
static int parse_tail(struct url_ctx *x, const char *s, int db_path,
		      struct redis_url *u)
{
	char shown[64];
	const char *q;
	size_t n;
	long v;
	int have_db = 0;

	if (db_path && *s == '/') {
		s++;
		n = strcspn(s, "?");
		if (n > 0) {
			if (parse_num(s, n, 0, INT_MAX, &v) < 0) {
				url_quote(shown, sizeof(shown), s, n);
				return url_fail(x,
						"bad database \"%s\" (expected "
						"a number)",
						shown);
			}
			u->db = (int)v;
			have_db = 1;
		}
		s += n;
	}
	if (*s == '\0')
		return 0;
	if (*s != '?') {
		url_quote(shown, sizeof(shown), s, strlen(s));
		return url_fail(x, "unexpected \"%s\"", shown);
	}
	q = s + 1;
	if (strncmp(q, "db=", 3) != 0) {
		url_quote(shown, sizeof(shown), q, strcspn(q, "&="));
		return url_fail(x,
				"unknown parameter \"%s\" (only db=N is "
				"understood)",
				shown);
	}
	if (strchr(q, '&') != NULL)
		return url_fail(x, "only one parameter (db=N) is understood");
	if (have_db)
		return url_fail(x, "database given twice");
	q += 3;
	n = strlen(q);
	if (parse_num(q, n, 0, INT_MAX, &v) < 0) {
		url_quote(shown, sizeof(shown), q, n);
		return url_fail(x, "bad database \"%s\" (expected a number)",
				shown);
	}
	u->db = (int)v;
	return 0;
}

static int host_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
}

static int parse_tcp(struct url_ctx *x, const char *s, struct redis_url *u)
{
	char shown[64];
	const char *at = strrchr(s, '@');
	const char *host, *hend, *p;
	size_t i, hlen;
	long port;

	u->kind = REDIS_URL_TCP;
	u->port = REDIS_DEFAULT_PORT;
	if (at != NULL) {
		if (parse_userinfo(x, s, (size_t)(at - s), u) < 0)
			return -1;
		s = at + 1;
	}
	if (*s == '[') {
		host = s + 1;
		hend = strchr(host, ']');
		if (hend == NULL)
			return url_fail(x, "missing \"]\" after the IPv6 "
					   "address");
		hlen = (size_t)(hend - host);
		for (i = 0; i < hlen; i++) {
			char c = host[i];

			if (!(c == ':' || c == '.' || c == '%' ||
			      (c >= 'a' && c <= 'z') ||
			      (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
				break;
		}
		if (hlen == 0 || i < hlen || memchr(host, ':', hlen) == NULL) {
			url_quote(shown, sizeof(shown), host, hlen);
			return url_fail(x, "bad IPv6 address \"%s\"", shown);
		}
		p = hend + 1;
	} else {
		host = s;
		hlen = strcspn(s, ":/?#");
		p = s + hlen;
		if (*p == ':' && memchr(p + 1, ':', strcspn(p + 1, "/?#")))
			return url_fail(x, "IPv6 addresses need brackets, as "
					   "in redis://[::1]:6379");
		if (hlen == 0)
			return url_fail(x, "empty host");
		for (i = 0; i < hlen; i++) {
			if (!host_char_ok(host[i])) {
				url_quote(shown, sizeof(shown), host, hlen);
				return url_fail(x, "bad host \"%s\"", shown);
			}
		}
	}
	u->host = xstrndup(host, hlen);
	if (*p == ':') {
		size_t n = strcspn(p + 1, "/?#");

		if (parse_num(p + 1, n, 1, 65535, &port) < 0) {
			url_quote(shown, sizeof(shown), p + 1, n);
			return url_fail(x,
					"bad port \"%s\" (expected 1 to "
					"65535)",
					shown);
		}
		u->port = (int)port;
		p += 1 + n;
	}
	return parse_tail(x, p, 1, u);
}

static int parse_unix(struct url_ctx *x, const char *s, int authority,
		      struct redis_url *u)
{
	char shown[64];
	struct sockaddr_un sa;
	const char *at;
	size_t n;

	u->kind = REDIS_URL_UNIX;
	if (authority) {
		/* unix://AUTHORITY/path: the authority is empty or
		 * credentials followed by '@'. */
		if (*s != '/' && *s != '\0') {
			/* The credentials end at the first "@/": a path
			 * may hold '@', a password must encode "@/". */
			at = strstr(s, "@/");
			if (at == NULL)
				return url_fail(x, "a socket path must be "
						   "absolute, as in "
						   "unix:///run/redis.sock");
			if (parse_userinfo(x, s, (size_t)(at - s), u) < 0)
				return -1;
			s = at + 1;
		}
	}
	if (*s != '/')
		return url_fail(x, "a socket path must be absolute, as in "
				   "unix:///run/redis.sock");
	n = strcspn(s, "?");
	if (n <= 1)
		return url_fail(x, "empty socket path");
	if (n >= sizeof(sa.sun_path)) {
		url_quote(shown, sizeof(shown), s, n);
		return url_fail(x,
				"socket path \"%s\" is longer than %zu bytes",
				shown, sizeof(sa.sun_path) - 1);
	}
	u->path = xstrndup(s, n);
	return parse_tail(x, s + n, 0, u);
}

int redis_url_parse(const char *s, struct redis_url *out, char *err,
		    size_t errlen)
{
	struct url_ctx x;
	char *shown = NULL;
	size_t i, len;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (s == NULL)
		s = "";
	shown = url_mask(s);
	x.shown = shown;
	x.err = err;
	x.errlen = errlen;
	len = strlen(s);
	if (len == 0) {
		url_fail(&x, "empty address");
		goto out;
	}
	if (len > REDIS_URL_MAX) {
		url_fail(&x, "longer than %d bytes", REDIS_URL_MAX);
		goto out;
	}
	for (i = 0; i < len; i++) {
		if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f) {
			url_fail(&x, "space or control character");
			goto out;
		}
	}
	if (strncmp(s, "redis://", 8) == 0) {
		rc = parse_tcp(&x, s + 8, out);
	} else if (strncmp(s, "rediss://", 9) == 0) {
		url_fail(&x,
			 "rediss:// (TLS) is not supported: this build's "
			 "hiredis has no TLS; run a TLS sidecar (stunnel, a "
			 "service mesh) and point at its local redis:// "
			 "address");
	} else if (strncmp(s, "unix://", 7) == 0) {
		rc = parse_unix(&x, s + 7, 1, out);
	} else if (strncmp(s, "unix:", 5) == 0) {
		rc = parse_unix(&x, s + 5, 0, out);
	} else {
		url_fail(&x, "expected redis://host[:port][/db] or "
			     "unix:///path/to.sock");
	}
out:
	if (rc < 0)
		redis_url_release(out);
	free(shown);
	return rc;
}

void redis_url_release(struct redis_url *u)
{
	free(u->host);
	free(u->path);
	free(u->user);
	if (u->password != NULL) {
		/* Do not leave the secret in freed memory. */
		explicit_bzero(u->password, strlen(u->password));
		free(u->password);
	}
	memset(u, 0, sizeof(*u));
}

char *redis_url_display(const struct redis_url *u)
{
	struct buf b;

	buf_init(&b, 0);
	if (u->kind == REDIS_URL_UNIX) {
		buf_appendstr(&b, "unix://");
		if (u->user != NULL)
			buf_printf(&b, "%s@", u->user);
		buf_appendstr(&b, u->path != NULL ? u->path : "");
		if (u->db != 0)
			buf_printf(&b, "?db=%d", u->db);
	} else {
		const char *host = u->host != NULL ? u->host : "";

		buf_appendstr(&b, "redis://");
		if (u->user != NULL)
			buf_printf(&b, "%s@", u->user);
		if (strchr(host, ':') != NULL)
			buf_printf(&b, "[%s]:%d", host, u->port);
		else
			buf_printf(&b, "%s:%d", host, u->port);
		if (u->db != 0)
			buf_printf(&b, "/%d", u->db);
	}
	return buf_detach(&b, NULL);
}
