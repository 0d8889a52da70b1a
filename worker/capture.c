/* capture.c -- head and tail capture of runner output (see capture.h). */
#include "capture.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "utf8.h"
#include "xmalloc.h"

void capture_init(struct capture *c, size_t head_max, size_t tail_max)
{
	memset(c, 0, sizeof(*c));
	c->head_max = head_max;
	c->tail_max = tail_max;
}

void capture_release(struct capture *c)
{
	free(c->head);
	free(c->tail);
	memset(c, 0, sizeof(*c));
}

static void tail_append(struct capture *c, const char *p, size_t len)
{
	size_t n;

	if (!c->tail)
		c->tail = xmalloc(c->tail_max);
	/* Only the last tail_max bytes of this chunk can survive. */
	if (len > c->tail_max) {
		p += len - c->tail_max;
		len = c->tail_max;
	}
	while (len > 0) {
		n = c->tail_max - c->tail_pos;
		if (n > len)
			n = len;
		memcpy(c->tail + c->tail_pos, p, n);
		c->tail_pos = (c->tail_pos + n) % c->tail_max;
		c->tail_len += n;
		if (c->tail_len > c->tail_max)
			c->tail_len = c->tail_max;
		p += n;
		len -= n;
	}
}

void capture_append(struct capture *c, const void *data, size_t len)
{
	const char *p = data;
	size_t n;

	c->total += len;
	if (c->head_len < c->head_max) {
		if (!c->head)
			c->head = xmalloc(c->head_max);
		n = c->head_max - c->head_len;
		if (n > len)
			n = len;
		memcpy(c->head + c->head_len, p, n);
		c->head_len += n;
		p += n;
		len -= n;
	}
	if (len > 0)
		tail_append(c, p, len);
}

uint64_t capture_dropped(const struct capture *c)
{
	return c->total - c->head_len - c->tail_len;
}

/* The raw bytes held: head, marker, tail (oldest first). */
static void capture_raw(const struct capture *c, struct buf *b)
{
	size_t start;

	if (c->head_len)
		buf_append(b, c->head, c->head_len);
	if (capture_dropped(c) > 0)
		buf_printf(b, "\n[... %llu bytes dropped ...]\n",
			   (unsigned long long)capture_dropped(c));
	if (c->tail_len == 0)
		return;
	start = (c->tail_pos + c->tail_max - c->tail_len) % c->tail_max;
	if (start + c->tail_len <= c->tail_max) {
		buf_append(b, c->tail + start, c->tail_len);
	} else {
		buf_append(b, c->tail + start, c->tail_max - start);
		buf_append(b, c->tail, c->tail_len - (c->tail_max - start));
	}
}

char *capture_text(const struct capture *c, size_t *len)
{
	struct buf b;
	char *out;

	buf_init(&b, 0);
	capture_raw(c, &b);
	out = utf8_sanitize(b.data ? b.data : "", b.len, len);
	buf_release(&b);
	return out;
}

static int skipped(const char *line, size_t len, const char *const *skip)
{
	size_t n;

	for (; skip && *skip; skip++) {
		n = strlen(*skip);
		if (n <= len && memcmp(line, *skip, n) == 0)
			return 1;
	}
	return 0;
}

char *capture_tail_line(const struct capture *c, unsigned max_lines,
			size_t max_bytes, const char *const *skip)
{
	char *text, *out;
	size_t len, end, start, cut;
	unsigned found = 0;
	const char *lines[16];
	size_t lens[16];
	struct buf b;
	int i;

	if (max_lines > 16)
		max_lines = 16;
	text = capture_text(c, &len);
	end = len;
	/* Walk back over lines, collecting the last non-empty ones. */
	while (end > 0 && found < max_lines) {
		start = end;
		while (start > 0 && text[start - 1] != '\n')
			start--;
		cut = end;
		while (cut > start &&
		       (text[cut - 1] == '\r' || text[cut - 1] == ' ' ||
			text[cut - 1] == '\t'))
			cut--;
		if (cut > start && !skipped(text + start, cut - start, skip)) {
			lines[found] = text + start;
			lens[found] = cut - start;
			found++;
		}
		end = start > 0 ? start - 1 : 0;
	}
	buf_init(&b, 0);
	for (i = (int)found - 1; i >= 0; i--) {
		if (b.len)
			buf_appendstr(&b, " | ");
		buf_append(&b, lines[i], lens[i]);
	}
	out = buf_detach(&b, &len);
	len = utf8_prefix(out, len, max_bytes);
	out[len] = '\0';
	free(text);
	return out;
}
