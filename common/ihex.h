/*
 * Intel HEX into a flat image in memory, so `smp image upload` and
 * `upgrade` take zephyr.signed.hex (what imgtool and west also write) as
 * they take zephyr.signed.bin.  Pure, no I/O.
 */
#ifndef IHEX_H
#define IHEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The largest image span we build (first to last byte). */
#define IHEX_MAX_SPAN (16 * 1024 * 1024)

struct ihex_image {
	uint8_t *data; /* len bytes from address base; gaps are 0xff */
	size_t len;
	uint32_t base;
};

/* Does buf start like Intel HEX (a ':' after optional white space)? */
bool ihex_looks_like(const uint8_t *buf, size_t len);

/*
 * Parse the whole file.  Records 00 (data), 01 (end), 02 and 04 (segment
 * and linear base), 03 and 05 (start address, ignored).  Every checksum is
 * checked; overlapping records must agree; nothing but white space may
 * follow the end record.  0, or -1 with the line and the problem in why.
 */
int ihex_parse(const char *text, size_t len, struct ihex_image *out, char *why,
               size_t whycap);
void ihex_free(struct ihex_image *img);

#endif
