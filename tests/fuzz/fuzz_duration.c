/*
 * libFuzzer target for Go duration parsing: anything parsed must format
 * and parse back to the same value.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "duration.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char s[64], buf[DURATION_BUFSZ], err[128];
	int64_t ms, again;

	if (size >= sizeof(s))
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (duration_parse(s, &ms, err, sizeof(err)) == -1)
		return 0;
	if (ms < 0)
		abort();
	duration_format(ms, buf, sizeof(buf));
	if (duration_parse(buf, &again, err, sizeof(err)) == -1 || again != ms)
		abort();
	return 0;
}
