/* buf.h -- a growable byte buffer with a hard cap, for anything filled from
 * outside input (child output, messages, files). The data is always
 * NUL-terminated so text users can treat it as a string. */
#ifndef TF_BUF_H
#define TF_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char *data;    /* NUL-terminated; NULL until the first append */
	size_t len;
	size_t cap;
	size_t max;    /* appends that would pass this fail; 0 = unlimited */
};

void buf_init(struct buf *b, size_t max);
void buf_release(struct buf *b);
void buf_reset(struct buf *b);
/* Returns 0, or -1 (buffer unchanged) when the result would exceed max. */
int buf_append(struct buf *b, const void *data, size_t len);
int buf_appendstr(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Appends the whole file at path, within the buffer's cap. Returns 0, or
 * -1 with "PATH: cannot open: REASON", "PATH: cannot read: REASON" or
 * "PATH: larger than the N bytes allowed" in err. */
int buf_read_file(struct buf *b, const char *path, char *err, size_t errlen);
/* Hands the data to the caller (who frees it) and re-initialises b. Never
 * returns NULL: an empty buffer detaches as "". */
char *buf_detach(struct buf *b, size_t *len);

#endif
