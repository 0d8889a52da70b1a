/* collected.c -- a suite's last collection in Redis (see collected.h). */
#include "collected.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "history.h"
#include "redisconn.h"
#include "sha1.h"
#include "xmalloc.h"

#define COLLECTED_MAX_COUNT 20 /* digits of the id count */

/* One field of the key: its bytes and a NUL, so fields cannot run into
 * each other; a NULL string hashes differently from an empty one. */
static void collected_field(struct sha1 *s, const char *v)
{
	if (v == NULL) {
		sha1_update(s, "\1", 1);
		return;
	}
	sha1_update(s, v, strlen(v) + 1);
}

static void collected_list(struct sha1 *s, char *const *v, size_t n)
{
	char num[32];
	size_t i;

	snprintf(num, sizeof(num), "%zu", n);
	collected_field(s, num);
	for (i = 0; i < n; i++)
		collected_field(s, v[i]);
}

char *collected_key(const char *prefix, const char *runner,
		    const struct discover_opts *o)
{
	struct sha1 s;
	unsigned char d[SHA1_DIGEST_LEN];
	char hex[SHA1_HEX_LEN + 1], num[32];
	static const char digits[] = "0123456789abcdef";
	size_t n = 0, i;

	while (o->pytest != NULL && o->pytest[n] != NULL)
		n++;
	sha1_init(&s);
	collected_field(&s, COLLECTED_MAGIC);
	collected_field(&s, runner);
	collected_list(&s, o->pytest, n);
	collected_field(&s, o->cwd);
	collected_field(&s, o->mark);
	collected_field(&s, o->kexpr);
	collected_list(&s, o->paths, o->npaths);
	snprintf(num, sizeof(num), "%zu", o->nenv);
	collected_field(&s, num);
	for (i = 0; i < o->nenv; i++) {
		collected_field(&s, o->env[i].key);
		collected_field(&s, o->env[i].value);
	}
	sha1_final(&s, d);
	for (i = 0; i < SHA1_DIGEST_LEN; i++) {
		hex[2 * i] = digits[d[i] >> 4];
		hex[2 * i + 1] = digits[d[i] & 15];
	}
	hex[SHA1_HEX_LEN] = '\0';
	return xasprintf("%s:collected:%s", prefix, hex);
}

char *collected_format(const struct discover_result *r, size_t *len)
{
	struct buf b;
	size_t i;

	buf_init(&b, 0);
	buf_printf(&b, "%s\n%s\n%zu\n", COLLECTED_MAGIC, r->root, r->nids);
	for (i = 0; i < r->nids; i++) {
		buf_appendstr(&b, r->ids[i]);
		buf_append(&b, "\n", 1);
	}
	return buf_detach(&b, len);
}

/* The next line of [*p, end): its start and length; advances *p past its
 * "\n". -1 when no "\n" is left. */
static int collected_line(const char **p, const char *end, const char **line,
			  size_t *len)
{
	const char *nl = memchr(*p, '\n', (size_t)(end - *p));

	if (nl == NULL)
		return -1;
	*line = *p;
	*len = (size_t)(nl - *p);
	*p = nl + 1;
	return 0;
}

int collected_parse(const char *s, size_t len, struct discover_result *out,
		    char *err, size_t errlen)
{
	const char *p = s, *end = s + len, *line;
	char num[COLLECTED_MAX_COUNT + 1], *stop;
	unsigned long long n;
	size_t l, i;

	memset(out, 0, sizeof(*out));
	if (s == NULL || memchr(s, '\0', len) != NULL) {
		snprintf(err, errlen, "a NUL byte in the value");
		return -1;
	}
	if (collected_line(&p, end, &line, &l) < 0 ||
	    l != strlen(COLLECTED_MAGIC) ||
	    memcmp(line, COLLECTED_MAGIC, l) != 0) {
		snprintf(err, errlen, "not a %s value", COLLECTED_MAGIC);
		return -1;
	}
	if (collected_line(&p, end, &line, &l) < 0 || l == 0 ||
	    line[0] != '/') {
		snprintf(err, errlen, "no absolute root directory");
		return -1;
	}
	out->root = xstrndup(line, l);
	/* Decimal without leading zeros: one spelling per value. */
	if (collected_line(&p, end, &line, &l) < 0 || l == 0 ||
	    l > COLLECTED_MAX_COUNT || strspn(line, "0123456789") < l ||
	    (l > 1 && line[0] == '0')) {
		snprintf(err, errlen, "no id count");
		goto bad;
	}
	memcpy(num, line, l);
	num[l] = '\0';
	n = strtoull(num, &stop, 10);
	/* Each id takes at least two bytes ("x\n"). */
	if (n == 0 || n > (unsigned long long)(end - p) / 2) {
		snprintf(err, errlen, "an id count of %s for %zu bytes", num,
			 (size_t)(end - p));
		goto bad;
	}
	out->ids = xcalloc((size_t)n + 1, sizeof(*out->ids));
	for (i = 0; i < n; i++) {
		if (collected_line(&p, end, &line, &l) < 0) {
			snprintf(err, errlen, "%zu of %llu ids", i, n);
			goto bad;
		}
		if (l == 0 || l > DISCOVER_MAX_ID) {
			snprintf(err, errlen, "id %zu is %s", i + 1,
				 l == 0 ? "empty" : "too long");
			goto bad;
		}
		out->ids[i] = xstrndup(line, l);
		out->nids = i + 1;
	}
	if (p != end) {
		snprintf(err, errlen, "bytes after the last id");
		goto bad;
	}
	out->status = DISCOVER_OK;
	return 0;
bad:
	discover_result_release(out);
	return -1;
}

int collected_load(redisContext *c, const char *key,
		   struct discover_result *out, char *err, size_t errlen)
{
	redisReply *r = redisCommand(c, "GET %s", key);
	char why[256];
	int ret = -1;

	memset(out, 0, sizeof(*out));
	if (r == NULL || r->type == REDIS_REPLY_ERROR) {
		snprintf(err, errlen, "redis: GET %s: %s", key,
			 redisconn_why(c, r));
	} else if (r->type == REDIS_REPLY_NIL) {
		ret = 0;
	} else if (r->type != REDIS_REPLY_STRING ||
		   r->len > DISCOVER_MAX_OUTPUT) {
		snprintf(err, errlen, "%s: not a collection", key);
	} else if (collected_parse(r->str, r->len, out, why, sizeof(why)) <
		   0) {
		snprintf(err, errlen, "%s: %s", key, why);
	} else {
		ret = 1;
	}
	if (r != NULL)
		freeReplyObject(r);
	return ret;
}

int collected_store(redisContext *c, const char *key,
		    const struct discover_result *r, char *err, size_t errlen)
{
	size_t len;
	char *v = collected_format(r, &len);
	int ret = history_set_expiring(c, key, v, len, HISTORY_RETENTION_S, err,
				       errlen);

	free(v);
	return ret;
}

int collected_touch(redisContext *c, const char *key, char *err,
		    size_t errlen)
{
	redisReply *r = redisCommand(c, "EXPIRE %s %lld", key,
				     (long long)HISTORY_RETENTION_S);
	int ret = 0;

	if (r == NULL || r->type == REDIS_REPLY_ERROR) {
		snprintf(err, errlen, "redis: EXPIRE %s: %s", key,
			 redisconn_why(c, r));
		ret = -1;
	}
	if (r != NULL)
		freeReplyObject(r);
	return ret;
}

int collected_same(const struct discover_result *a,
		   const struct discover_result *b)
{
	size_t i;

	if (a->status != DISCOVER_OK || b->status != DISCOVER_OK ||
	    a->nids != b->nids || a->root == NULL || b->root == NULL ||
	    strcmp(a->root, b->root) != 0)
		return 0;
	for (i = 0; i < a->nids; i++) {
		if (strcmp(a->ids[i], b->ids[i]) != 0)
			return 0;
	}
	return 1;
}
