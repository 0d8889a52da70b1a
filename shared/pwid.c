/* pwid.c -- Playwright test ids (see pwid.h). */
#include "pwid.h"

#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "xmalloc.h"

/* Appends s with every newline and carriage return turned into a blank. */
static void pwid_append_line(struct buf *b, const char *s)
{
	while (*s != '\0') {
		size_t n = strcspn(s, "\r\n");

		buf_append(b, s, n);
		s += n;
		if (*s != '\0') {
			buf_appendstr(b, " ");
			s++;
		}
	}
}

char *pwid_format(const char *project, const char *file, unsigned long line,
		  char *const *titles, size_t ntitles)
{
	struct buf b;
	size_t i;

	buf_init(&b, 0);
	if (project != NULL) {
		buf_appendstr(&b, "[");
		pwid_append_line(&b, project);
		buf_appendstr(&b, "]" PWID_SEP);
	}
	pwid_append_line(&b, file);
	buf_printf(&b, ":%lu", line);
	for (i = 0; i < ntitles; i++) {
		if (titles[i] == NULL || titles[i][0] == '\0')
			continue;
		buf_appendstr(&b, PWID_SEP);
		pwid_append_line(&b, titles[i]);
	}
	return buf_detach(&b, NULL);
}

/* Whether the file part is safe: relative, no ".." component, no leading
 * '-'. */
static int pwid_file_ok(const char *f, size_t n, const char **why)
{
	size_t i = 0;

	if (n == 0) {
		*why = "no file";
		return 0;
	}
	if (f[0] == '-') {
		*why = "file starts with '-'";
		return 0;
	}
	if (f[0] == '/') {
		*why = "absolute file";
		return 0;
	}
	while (i < n) {
		const char *slash = memchr(f + i, '/', n - i);
		size_t end = slash != NULL ? (size_t)(slash - f) : n;

		if (end - i == 2 && f[i] == '.' && f[i + 1] == '.') {
			*why = "\"..\" in its file";
			return 0;
		}
		i = end + 1;
	}
	return 1;
}

int pwid_parse(const char *id, struct pwid *out, char *err, size_t errlen)
{
	const char *rest = id, *sep, *colon, *p;
	const char *why = NULL;
	size_t head;
	unsigned long line = 0;

	memset(out, 0, sizeof(*out));
	if (id == NULL || id[0] == '\0') {
		snprintf(err, errlen, "bad test id: empty");
		return -1;
	}
	if (strpbrk(id, "\r\n") != NULL) {
		snprintf(err, errlen, "bad test id: contains a newline");
		return -1;
	}
	if (id[0] == '[') {
		sep = strstr(id, "]" PWID_SEP);
		if (sep != NULL) {
			out->project = id + 1;
			out->project_len = (size_t)(sep - id - 1);
			rest = sep + 1 + PWID_SEP_LEN;
		}
	}
	sep = strstr(rest, PWID_SEP);
	head = sep != NULL ? (size_t)(sep - rest) : strlen(rest);
	out->titles = sep != NULL ? sep + PWID_SEP_LEN : "";
	colon = NULL;
	for (p = rest + head; p > rest; p--) {
		if (p[-1] == ':') {
			colon = p - 1;
			break;
		}
	}
	if (colon == NULL || colon + 1 == rest + head) {
		snprintf(err, errlen,
			 "bad test id \"%.200s\": no \":line\" after its file",
			 id);
		return -1;
	}
	for (p = colon + 1; p < rest + head; p++) {
		if (*p < '0' || *p > '9' || line > PWID_MAX_LINE) {
			snprintf(err, errlen,
				 "bad test id \"%.200s\": bad line number", id);
			return -1;
		}
		line = line * 10 + (unsigned long)(*p - '0');
	}
	if (line == 0 || line > PWID_MAX_LINE) {
		snprintf(err, errlen, "bad test id \"%.200s\": bad line number",
			 id);
		return -1;
	}
	if (!pwid_file_ok(rest, (size_t)(colon - rest), &why)) {
		snprintf(err, errlen, "bad test id \"%.200s\": %s", id, why);
		return -1;
	}
	out->file = rest;
	out->file_len = (size_t)(colon - rest);
	out->line = line;
	return 0;
}

size_t pwid_file_len(const char *id)
{
	struct pwid p;
	char err[8];

	if (pwid_parse(id, &p, err, sizeof(err)) < 0)
		return 0;
	return (size_t)(p.file + p.file_len - id);
}

char *pwid_selector(const struct pwid *p)
{
	struct buf b;
	size_t i;

	buf_init(&b, 0);
	buf_appendstr(&b, "/(?:^|\\/)");
	for (i = 0; i < p->file_len; i++) {
		char c = p->file[i];

		if (strchr("\\^$.|?*+()[]{}/", c) != NULL)
			buf_append(&b, "\\", 1);
		buf_append(&b, &c, 1);
	}
	buf_printf(&b, "$/:%lu", p->line);
	return buf_detach(&b, NULL);
}
