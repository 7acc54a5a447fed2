/*
 * libFuzzer target for the config loader: any bytes must give a config or
 * one error message, never a crash, a leak or a read out of bounds.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "supervisor/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int init;
	struct config *c;
	char err[1024];

	if (!init) {
		log_init(0, "fuzz");
		init = 1;
	}
	c = config_load_buffer("fuzz.json", (const char *)data, size, NULL, err,
	                       sizeof(err));
	if (c == NULL &&
	    (err[0] == '\0' || memchr(err, '\0', sizeof(err)) == NULL))
		abort(); /* a failure must always say why */
	config_free(c);
	return 0;
}
