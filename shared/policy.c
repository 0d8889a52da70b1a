/* policy.c -- run policy defaults and their run-hash encoding (see
 * policy.h). */
#include "policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "xmalloc.h"

const char *const policy_default_transient[] = {
    "exceeded quota",
    "ResourceQuota",
    "429 Too Many Requests",
    "503 Service Unavailable",
    "ECONNRESET",
    "Connection refused",
    "Temporary failure in name resolution",
    NULL,
};

const char *const policy_field_names[POLICY_NFIELDS] = {
    "max_attempts",    "retries",	 "max_failures",
    "backoff_base_ms", "backoff_cap_ms", "transient",
};

static void strv_free(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void policy_init(struct policy *p)
{
	size_t n = 0, i;

	memset(p, 0, sizeof(*p));
	p->max_attempts = POLICY_MAX_ATTEMPTS;
	p->backoff_base_ms = POLICY_BACKOFF_BASE_MS;
	p->backoff_cap_ms = POLICY_BACKOFF_CAP_MS;
	while (policy_default_transient[n] != NULL)
		n++;
	p->transient = xcalloc(n ? n : 1, sizeof(*p->transient));
	for (i = 0; i < n; i++)
		p->transient[i] = xstrdup(policy_default_transient[i]);
	p->ntransient = n;
}

void policy_release(struct policy *p)
{
	strv_free(p->transient, p->ntransient);
	memset(p, 0, sizeof(*p));
}

int policy_check_pattern(const char *pattern, char *err, size_t errlen)
{
	size_t len = strlen(pattern);

	if (len == 0) {
		snprintf(err, errlen, "must not be empty");
		return -1;
	}
	if (len > POLICY_MAX_PATTERN) {
		snprintf(err, errlen, "longer than %d bytes",
			 POLICY_MAX_PATTERN);
		return -1;
	}
	if (strpbrk(pattern, "\r\n") != NULL) {
		snprintf(err, errlen, "must not contain a newline");
		return -1;
	}
	return 0;
}

/* Checks patterns[0..n); returns 0 or -1 with "pattern I: problem". */
static int policy_check_all(char *const *patterns, size_t n, char *err,
			    size_t errlen)
{
	char why[128];
	size_t i;

	for (i = 0; i < n; i++) {
		if (policy_check_pattern(patterns[i], why, sizeof(why)) < 0) {
			snprintf(err, errlen, "pattern %zu: %s", i, why);
			return -1;
		}
	}
	return 0;
}

int policy_set_transient(struct policy *p, char *const *patterns, size_t n,
			 char *err, size_t errlen)
{
	char **v;
	size_t i;

	if (n > POLICY_MAX_PATTERNS) {
		snprintf(err, errlen, "more than %d transient patterns",
			 POLICY_MAX_PATTERNS);
		return -1;
	}
	if (policy_check_all(patterns, n, err, errlen) < 0)
		return -1;
	v = xcalloc(n ? n : 1, sizeof(*v));
	for (i = 0; i < n; i++)
		v[i] = xstrdup(patterns[i]);
	strv_free(p->transient, p->ntransient);
	p->transient = v;
	p->ntransient = n;
	return 0;
}

static int policy_has(char *const *v, size_t n, const char *s)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return 1;
	return 0;
}

int policy_add_transient(struct policy *p, char *const *patterns, size_t n,
			 char *err, size_t errlen)
{
	size_t i, add = 0;

	if (policy_check_all(patterns, n, err, errlen) < 0)
		return -1;
	for (i = 0; i < n; i++)
		if (!policy_has(p->transient, p->ntransient, patterns[i]) &&
		    !policy_has(patterns, i, patterns[i]))
			add++;
	if (p->ntransient + add > POLICY_MAX_PATTERNS) {
		snprintf(err, errlen, "more than %d transient patterns",
			 POLICY_MAX_PATTERNS);
		return -1;
	}
	p->transient = xreallocarray(p->transient, p->ntransient + add + 1,
				     sizeof(*p->transient));
	for (i = 0; i < n; i++)
		if (!policy_has(p->transient, p->ntransient, patterns[i]))
			p->transient[p->ntransient++] = xstrdup(patterns[i]);
	return 0;
}

char *policy_join_transient(const struct policy *p)
{
	struct buf b;
	size_t i;

	buf_init(&b, 0);
	for (i = 0; i < p->ntransient; i++) {
		if (i > 0)
			buf_appendstr(&b, "\n");
		buf_appendstr(&b, p->transient[i]);
	}
	return buf_detach(&b, NULL);
}

int policy_split_transient(struct policy *p, const char *s, size_t len,
			   char *err, size_t errlen)
{
	char **v = NULL;
	size_t n = 0, off = 0;

	while (off < len) {
		const char *line = s + off;
		const char *nl = memchr(line, '\n', len - off);
		size_t l = nl != NULL ? (size_t)(nl - line) : len - off;

		off += l + (nl != NULL);
		if (l > 0 && line[l - 1] == '\r')
			l--;
		if (l == 0)
			continue;
		if (l > POLICY_MAX_PATTERN || memchr(line, '\0', l) != NULL) {
			snprintf(err, errlen,
				 "transient pattern %zu: longer than %d bytes "
				 "or not text",
				 n, POLICY_MAX_PATTERN);
			goto fail;
		}
		if (n == POLICY_MAX_PATTERNS) {
			snprintf(err, errlen, "more than %d transient patterns",
				 POLICY_MAX_PATTERNS);
			goto fail;
		}
		v = xreallocarray(v, n + 1, sizeof(*v));
		v[n++] = xstrndup(line, l);
	}
	strv_free(p->transient, p->ntransient);
	p->transient = v != NULL ? v : xcalloc(1, sizeof(*v));
	p->ntransient = n;
	return 0;
fail:
	strv_free(v, n);
	return -1;
}

const char *policy_match(const struct policy *p, const char *text, size_t len)
{
	size_t i;

	if (text == NULL)
		return NULL;
	for (i = 0; i < p->ntransient; i++)
		if (memmem(text, len, p->transient[i],
			   strlen(p->transient[i])) != NULL)
			return p->transient[i];
	return NULL;
}

/* Decimal digits only, at most max. */
static int policy_uint(const char *s, size_t len, uint32_t max, uint32_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0 || len > 10)
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > max)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

int policy_set_field(struct policy *p, const char *field, const char *value,
		     size_t len, char *err, size_t errlen)
{
	static const struct {
		const char *name;
		size_t offset;
		uint32_t min, max;
	} nums[] = {
	    {"max_attempts", offsetof(struct policy, max_attempts), 1,
	     POLICY_ATTEMPTS_LIMIT},
	    {"retries", offsetof(struct policy, retries), 0,
	     POLICY_ATTEMPTS_LIMIT},
	    {"max_failures", offsetof(struct policy, max_failures), 0,
	     UINT32_MAX},
	    {"backoff_base_ms", offsetof(struct policy, backoff_base_ms), 0,
	     POLICY_BACKOFF_LIMIT_MS},
	    {"backoff_cap_ms", offsetof(struct policy, backoff_cap_ms), 0,
	     POLICY_BACKOFF_LIMIT_MS},
	};
	size_t i;
	uint32_t v;

	if (strcmp(field, "transient") == 0)
		return policy_split_transient(p, value, len, err, errlen) < 0
			   ? -1
			   : 1;
	for (i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
		if (strcmp(field, nums[i].name) != 0)
			continue;
		if (policy_uint(value, len, nums[i].max, &v) < 0 ||
		    v < nums[i].min) {
			snprintf(err, errlen,
				 "run policy %s: expected a whole number from "
				 "%u to %u, got \"%.*s\"",
				 field, nums[i].min, nums[i].max,
				 (int)(len > 40 ? 40 : len), value);
			return -1;
		}
		memcpy((char *)p + nums[i].offset, &v, sizeof(v));
		return 1;
	}
	return 0;
}

void policy_fields(const struct policy *p, char *values[POLICY_NFIELDS])
{
	values[0] = xasprintf("%u", (unsigned)p->max_attempts);
	values[1] = xasprintf("%u", (unsigned)p->retries);
	values[2] = xasprintf("%u", (unsigned)p->max_failures);
	values[3] = xasprintf("%u", (unsigned)p->backoff_base_ms);
	values[4] = xasprintf("%u", (unsigned)p->backoff_cap_ms);
	values[5] = policy_join_transient(p);
}
