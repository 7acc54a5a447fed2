/*
 * libFuzzer target for ihex_parse(): any text is refused with a reason or
 * becomes an image within the span limit whose bytes the records gave.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ihex.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ihex_image img;
	char why[160];

	why[0] = '\0';
	if (ihex_parse((const char *)data, size, &img, why, sizeof(why)) ==
	    -1) {
		if (why[0] == '\0' || img.data != NULL)
			__builtin_trap();
		return 0;
	}
	if (img.len == 0 || img.len > IHEX_MAX_SPAN || img.data == NULL)
		__builtin_trap();
	/* Every byte is readable (the sanitizer checks the bounds). */
	if (memchr(img.data, 0x5a, img.len) == img.data + img.len)
		__builtin_trap();
	ihex_free(&img);
	return 0;
}
