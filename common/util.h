/*
 * Small helpers more than one part of the tree needs, written once: the
 * monotonic clock in milliseconds, hex spelling of bytes, and a file name
 * for any string.
 */
#ifndef UTIL_H
#define UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Milliseconds on the monotonic clock (deadlines, rates). */
uint64_t now_ms(void);

/* Lower-case hex of len bytes into out (2 * len + 1 bytes). */
void hex_encode(const uint8_t *in, size_t len, char *out);

/*
 * prefix + s + suffix as a file name: [A-Za-z0-9._-] kept (a leading dot
 * is not), every other byte written as %XX, so distinct strings give
 * distinct names.  malloc'd.
 */
char *name_escape(const char *prefix, const char *s, const char *suffix);

#endif
