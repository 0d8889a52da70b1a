/* utf8.h -- UTF-8 hygiene for text that comes from runners (output,
 * failure messages, test ids): everything the worker publishes and every
 * report the producer writes must be valid UTF-8 without NUL so msgpack
 * str, JSON and XML consumers accept it. Pure functions on byte buffers. */
#ifndef TF_UTF8_H
#define TF_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Length of the valid UTF-8 sequence at s (at most len bytes), or 0 when
 * the bytes there are not one (invalid, truncated, overlong, surrogate, or
 * NUL). */
size_t utf8_seqlen(const unsigned char *s, size_t len);

/* Like utf8_seqlen, and stores the code point of the sequence in *cp. */
size_t utf8_decode(const unsigned char *s, size_t len, uint32_t *cp);

/* Copies src (len bytes) into a new NUL-terminated string with each
 * invalid byte and each NUL replaced by U+FFFD. Caller frees; *outlen
 * (optional) gets the length. */
char *utf8_sanitize(const char *src, size_t len, size_t *outlen);

/* The length of the longest prefix of s (len bytes), at most max bytes,
 * that does not end inside a UTF-8 sequence. */
size_t utf8_prefix(const char *s, size_t len, size_t max);

#endif
