/* sha1.h -- SHA-1 (FIPS 180-4), only to name Lua scripts for EVALSHA the
 * way Redis does. Not for anything security-related. */
#ifndef TF_SHA1_H
#define TF_SHA1_H

#include <stddef.h>
#include <stdint.h>

#define SHA1_DIGEST_LEN 20
#define SHA1_HEX_LEN 40

struct sha1 {
	uint32_t h[5];
	uint64_t total; /* bytes hashed so far */
	unsigned char block[64];
	size_t used; /* bytes waiting in block */
};

void sha1_init(struct sha1 *s);
void sha1_update(struct sha1 *s, const void *data, size_t len);
void sha1_final(struct sha1 *s, unsigned char digest[SHA1_DIGEST_LEN]);
/* The lowercase hex digest of data, NUL-terminated, into hex. */
void sha1_hex(const void *data, size_t len, char hex[SHA1_HEX_LEN + 1]);

#endif
