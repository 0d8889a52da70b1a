/* utf8.c -- UTF-8 validation and repair (see utf8.h). */
#include "utf8.h"

#include <string.h>

#include "xmalloc.h"

static const char replacement[] = "\xef\xbf\xbd"; /* U+FFFD */

static int is_cont(unsigned char c)
{
	return (c & 0xc0) == 0x80;
}

size_t utf8_seqlen(const unsigned char *s, size_t len)
{
	unsigned char c;
	unsigned char lo = 0x80, hi = 0xbf;
	size_t need, i;

	if (len == 0)
		return 0;
	c = s[0];
	if (c == 0)
		return 0;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		need = 2;
	} else if (c >= 0xe0 && c <= 0xef) {
		need = 3;
		if (c == 0xe0)
			lo = 0xa0; /* overlong */
		else if (c == 0xed)
			hi = 0x9f; /* surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 4;
		if (c == 0xf0)
			lo = 0x90; /* overlong */
		else if (c == 0xf4)
			hi = 0x8f; /* above U+10FFFF */
	} else {
		return 0;
	}
	if (len < need)
		return 0;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < need; i++) {
		if (!is_cont(s[i]))
			return 0;
	}
	return need;
}

size_t utf8_decode(const unsigned char *s, size_t len, uint32_t *cp)
{
	static const unsigned char lead_mask[5] = {0, 0x7f, 0x1f, 0x0f, 0x07};
	size_t n = utf8_seqlen(s, len), i;
	uint32_t v;

	if (n == 0)
		return 0;
	v = s[0] & lead_mask[n];
	for (i = 1; i < n; i++)
		v = (v << 6) | (s[i] & 0x3f);
	*cp = v;
	return n;
}

char *utf8_sanitize(const char *src, size_t len, size_t *outlen)
{
	const unsigned char *s = (const unsigned char *)src;
	char *out;
	size_t i = 0, o = 0, n;

	/* Worst case every byte becomes a three-byte replacement. */
	if (len > ((size_t)-1 - 1) / 3)
		len = ((size_t)-1 - 1) / 3;
	out = xmalloc(len * 3 + 1);
	while (i < len) {
		n = utf8_seqlen(s + i, len - i);
		if (n == 0) {
			memcpy(out + o, replacement, 3);
			o += 3;
			i++;
			continue;
		}
		memcpy(out + o, s + i, n);
		o += n;
		i += n;
	}
	out[o] = '\0';
	if (outlen)
		*outlen = o;
	return out;
}

size_t utf8_prefix(const char *s, size_t len, size_t max)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t end, start;

	if (len <= max)
		return len;
	end = max;
	/* Step back over continuation bytes to the lead byte of the sequence
	 * that straddles the cut, then keep it only if it ends by max. */
	start = end;
	while (start > 0 && is_cont(u[start]) && end - start < 4)
		start--;
	if (start < end && utf8_seqlen(u + start, len - start) > end - start)
		return start;
	return end;
}
