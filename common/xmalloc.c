/* Allocation wrappers: abort with a clear message instead of returning NULL. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xmalloc.h"

void *
xmalloc(size_t size)
{
	void *p;

	if (size == 0)
		fatalx("xmalloc: zero size", NULL);
	if ((p = malloc(size)) == NULL)
		fatal("xmalloc: out of memory", "size=%zu", size);
	return p;
}

void *
xcalloc(size_t nmemb, size_t size)
{
	void *p;

	if (nmemb == 0 || size == 0)
		fatalx("xcalloc: zero size", NULL);
	if ((p = calloc(nmemb, size)) == NULL)
		fatal("xcalloc: out of memory", "size=%zu", nmemb * size);
	return p;
}

void *
xreallocarray(void *ptr, size_t nmemb, size_t size)
{
	void *p;

	if (nmemb == 0 || size == 0)
		fatalx("xreallocarray: zero size", NULL);
	if (nmemb > SIZE_MAX / size)
		fatalx("xreallocarray: size overflow", NULL);
	if ((p = realloc(ptr, nmemb * size)) == NULL)
		fatal("xreallocarray: out of memory", "size=%zu", nmemb * size);
	return p;
}

char *
xstrdup(const char *s)
{
	char *p;

	if ((p = strdup(s)) == NULL)
		fatal("xstrdup: out of memory", NULL);
	return p;
}

char *
xstrndup(const char *s, size_t n)
{
	char *p;

	if ((p = strndup(s, n)) == NULL)
		fatal("xstrndup: out of memory", NULL);
	return p;
}

int
xasprintf(char **ret, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(ret, fmt, ap);
	va_end(ap);
	if (n < 0 || *ret == NULL)
		fatal("xasprintf: out of memory", NULL);
	return n;
}
