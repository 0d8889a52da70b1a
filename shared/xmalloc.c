/* xmalloc.c -- allocation that cannot fail (see xmalloc.h). The one place
 * where out-of-memory ends the process. */
#include "xmalloc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void xmalloc_die(const char *what, size_t size)
{
	fprintf(stderr, "fatal: %s: out of memory (%zu bytes)\n", what, size);
	abort();
}

void *xmalloc(size_t size)
{
	void *p;

	if (size == 0)
		size = 1;
	p = malloc(size);
	if (p == NULL)
		xmalloc_die("xmalloc", size);
	return p;
}

void *xcalloc(size_t nmemb, size_t size)
{
	void *p;

	if (nmemb == 0 || size == 0) {
		nmemb = 1;
		size = 1;
	}
	if (nmemb > SIZE_MAX / size)
		xmalloc_die("xcalloc: size overflow", SIZE_MAX);
	p = calloc(nmemb, size);
	if (p == NULL)
		xmalloc_die("xcalloc", nmemb * size);
	return p;
}

void *xrealloc(void *ptr, size_t size)
{
	void *p;

	if (size == 0)
		size = 1;
	p = realloc(ptr, size);
	if (p == NULL)
		xmalloc_die("xrealloc", size);
	return p;
}

void *xreallocarray(void *ptr, size_t nmemb, size_t size)
{
	if (size != 0 && nmemb > SIZE_MAX / size)
		xmalloc_die("xreallocarray: size overflow", SIZE_MAX);
	return xrealloc(ptr, nmemb * size);
}

char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *p = xmalloc(len + 1);

	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

char *xvasprintf(const char *fmt, va_list ap)
{
	/* Format into a small stack buffer first: most strings fit, and it
	 * avoids vsnprintf(NULL, 0, ...), which gcc's sanitizer builds flag. */
	char small[256];
	va_list copy;
	char *p;
	int n;

	va_copy(copy, ap);
	n = vsnprintf(small, sizeof(small), fmt, copy);
	va_end(copy);
	if (n < 0) {
		fprintf(stderr, "fatal: xvasprintf: bad format \"%s\"\n", fmt);
		abort();
	}
	p = xmalloc((size_t)n + 1);
	if ((size_t)n < sizeof(small))
		memcpy(p, small, (size_t)n + 1);
	else
		vsnprintf(p, (size_t)n + 1, fmt, ap);
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *p;

	va_start(ap, fmt);
	p = xvasprintf(fmt, ap);
	va_end(ap);
	return p;
}
