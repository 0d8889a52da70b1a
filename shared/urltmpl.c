/* urltmpl.c -- artifact upload URLs (see urltmpl.h). */
#include "urltmpl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xmalloc.h"

char *urltmpl_public(const char *url)
{
	return xstrndup(url, strcspn(url, "?#"));
}

static const char *const urltmpl_placeholders[] = {"{run}", "{task}",
						     "{attempt}", "{path}"};

int urltmpl_check(const char *tmpl, char *err, size_t errlen)
{
	const char *p, *end;
	size_t i, len;

	if (strncmp(tmpl, "http://", 7) != 0 &&
	    strncmp(tmpl, "https://", 8) != 0) {
		snprintf(err, errlen,
			 "\"%.200s\": not an http:// or https:// URL", tmpl);
		return -1;
	}
	/* The recorded URL drops the query string: a value there would not
	 * tell one file from another. */
	p = tmpl + strcspn(tmpl, "?#");
	if (strchr(p, '{') != NULL) {
		snprintf(err, errlen,
			 "\"%.200s\": placeholders belong in the path, not "
			 "in the query string",
			 tmpl);
		return -1;
	}
	for (p = strchr(tmpl, '{'); p != NULL; p = strchr(end, '{')) {
		end = strchr(p, '}');
		if (end == NULL) {
			snprintf(err, errlen, "\"%.200s\": unclosed \"{\"",
				 tmpl);
			return -1;
		}
		end++;
		len = (size_t)(end - p);
		for (i = 0; i < sizeof(urltmpl_placeholders) /
				    sizeof(urltmpl_placeholders[0]);
		     i++) {
			if (strlen(urltmpl_placeholders[i]) == len &&
			    memcmp(urltmpl_placeholders[i], p, len) == 0)
				break;
		}
		if (i == sizeof(urltmpl_placeholders) /
			     sizeof(urltmpl_placeholders[0])) {
			snprintf(err, errlen,
				 "\"%.200s\": unknown placeholder %.*s (use "
				 "{run}, {task}, {attempt}, {path})",
				 tmpl, (int)(len > 40 ? 40 : len), p);
			return -1;
		}
	}
	return 0;
}

/* Appends s percent-encoded (RFC 3986 unreserved kept; '/' too when
 * keep_slash). */
static void urltmpl_escape(char **out, size_t *len, size_t *cap,
			    const char *s, int keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p;

	for (p = (const unsigned char *)s; *p; p++) {
		if (*len + 4 > *cap) {
			*cap = *cap * 2 + 64;
			*out = xrealloc(*out, *cap);
		}
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' ||
		    *p == '_' || *p == '~' || (keep_slash && *p == '/')) {
			(*out)[(*len)++] = (char)*p;
		} else {
			(*out)[(*len)++] = '%';
			(*out)[(*len)++] = hex[*p >> 4];
			(*out)[(*len)++] = hex[*p & 15];
		}
	}
	(*out)[*len] = '\0';
}

char *urltmpl_expand(const char *tmpl, const char *run, const char *task,
		      unsigned attempt, const char *path)
{
	char att[16], *out, *full = NULL;
	size_t len = 0, cap = strlen(tmpl) + 64;
	const char *p;

	if (strstr(tmpl, "{path}") == NULL) {
		/* Before the query string: the object's name is the path. */
		size_t tl = strcspn(tmpl, "?#");

		full = xasprintf("%.*s%s{run}/{task}/{attempt}/{path}%s",
				 (int)tl, tmpl,
				 tl > 0 && tmpl[tl - 1] == '/' ? "" : "/",
				 tmpl + tl);
		tmpl = full;
	}
	snprintf(att, sizeof(att), "%u", attempt);
	out = xmalloc(cap);
	out[0] = '\0';
	for (p = tmpl; *p;) {
		const char *val = NULL;
		size_t skip = 0;

		if (strncmp(p, "{run}", 5) == 0)
			val = run, skip = 5;
		else if (strncmp(p, "{task}", 6) == 0)
			val = task, skip = 6;
		else if (strncmp(p, "{attempt}", 9) == 0)
			val = att, skip = 9;
		else if (strncmp(p, "{path}", 6) == 0)
			val = path, skip = 6;
		if (val != NULL) {
			urltmpl_escape(&out, &len, &cap, val,
					strncmp(p, "{path}", 6) == 0);
			p += skip;
			continue;
		}
		if (len + 2 > cap) {
			cap = cap * 2;
			out = xrealloc(out, cap);
		}
		out[len++] = *p++;
		out[len] = '\0';
	}
	free(full);
	return out;
}

int urltmpl_headers(char *env, char **v, size_t *n, char *err,
			  size_t errlen)
{
	char *line, *next;

	*n = 0;
	if (env == NULL)
		return 0;
	if (strlen(env) > URLTMPL_MAX_HEADER_LEN) {
		snprintf(err, errlen,
			 "TESTFLEET_ARTIFACTS_HEADERS: longer than %d bytes",
			 URLTMPL_MAX_HEADER_LEN);
		return -1;
	}
	for (line = env; line != NULL; line = next) {
		next = strpbrk(line, "\r\n");
		if (next != NULL)
			*next++ = '\0';
		if (line[0] == '\0')
			continue;
		if (strchr(line, ':') == NULL || line[0] == ':') {
			snprintf(err, errlen,
				 "TESTFLEET_ARTIFACTS_HEADERS: a line is not "
				 "\"Name: value\"");
			return -1;
		}
		if (*n == URLTMPL_MAX_HEADERS) {
			snprintf(err, errlen,
				 "TESTFLEET_ARTIFACTS_HEADERS: more than %d "
				 "headers",
				 URLTMPL_MAX_HEADERS);
			return -1;
		}
		v[(*n)++] = line;
	}
	return 0;
}
