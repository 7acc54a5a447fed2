/*
 * libFuzzer target for the artifact reader, from memory: whatever a server
 * (or an attacker between it and us) sends must be refused with a reason
 * or read into a consistent description, never crash or leak.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "supervisor/artifact.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct artifact *a = NULL;
	char err[256];
	size_t i;

	if (artifact_read_memory(data, size, NULL, &a, err, sizeof(err)) ==
	    -1) {
		/* A refusal always says why. */
		if (a != NULL || err[0] == '\0')
			__builtin_trap();
		return 0;
	}
	if (a->nimages == 0 || a->ndevice_types == 0 || a->version == NULL)
		__builtin_trap();
	for (i = 0; i < a->nimages; i++)
		if (strlen(a->images[i].sha256_hex) != 64 ||
		    strlen(a->images[i].hash_hex) != 64 ||
		    a->images[i].path != NULL)
			__builtin_trap();
	artifact_free(a);
	return 0;
}
