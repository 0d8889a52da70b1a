/* capture.h -- bounded capture of a runner's stdout and stderr: keeps the
 * first head_max and the last tail_max bytes and counts what fell in
 * between, so a test that prints megabytes neither blows memory nor loses
 * the end of its output. Pure: bytes in, text out. */
#ifndef TF_CAPTURE_H
#define TF_CAPTURE_H

#include <stddef.h>
#include <stdint.h>

#define CAPTURE_HEAD_MAX (64u << 10)
#define CAPTURE_TAIL_MAX (64u << 10)

struct capture {
	char *head; /* the first bytes, up to head_max */
	size_t head_len;
	size_t head_max;
	char *tail;	 /* ring of the last bytes after the head */
	size_t tail_len; /* bytes held in the ring, up to tail_max */
	size_t tail_pos; /* next write position in the ring */
	size_t tail_max;
	uint64_t total; /* every byte ever appended */
};

/* Both maxima must be > 0. Nothing is allocated until the first append. */
void capture_init(struct capture *c, size_t head_max, size_t tail_max);
void capture_release(struct capture *c);
void capture_append(struct capture *c, const void *data, size_t len);
/* Bytes appended but no longer held. */
uint64_t capture_dropped(const struct capture *c);

/* The captured text: head, then "\n[... N bytes dropped ...]\n" when
 * something was dropped, then the tail. Invalid UTF-8 (including sequences
 * cut at the edges) and NUL bytes become U+FFFD so the text is safe for
 * msgpack str, JSON and XML consumers. Caller frees; never NULL. *len
 * (optional) gets the length. */
char *capture_text(const struct capture *c, size_t *len);

/* The last max_lines (at most 16) non-empty lines of the captured text
 * joined with " | " and capped at max_bytes, for one-line messages
 * ("pytest usage error: ERROR: file not found: x"). Lines starting with one
 * of the prefixes in skip (a NULL-terminated list, or NULL) are passed
 * over. Caller frees; "" when nothing is left. */
char *capture_tail_line(const struct capture *c, unsigned max_lines,
			size_t max_bytes, const char *const *skip);

#endif
