/* Small shared helpers (util.h). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "util.h"
#include "xmalloc.h"

uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void
hex_encode(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0xf];
	}
	out[2 * len] = '\0';
}

char *
name_escape(const char *prefix, const char *s, const char *suffix)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t len = strlen(s), i, n;
	char *name = xmalloc(strlen(prefix) + len * 3 + strlen(suffix) + 1);

	n = (size_t)sprintf(name, "%s", prefix);
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '_' || c == '-' ||
		    (c == '.' && i > 0)) {
			name[n++] = (char)c;
			continue;
		}
		name[n++] = '%';
		name[n++] = hex[c >> 4];
		name[n++] = hex[c & 15];
	}
	strcpy(name + n, suffix);
	return name;
}
