/*
 * libFuzzer target for ipc_decode(): whatever a compromised worker or
 * supervisor sends must be refused cleanly or decode to a bounded message.
 */
#include <stddef.h>
#include <stdint.h>

#include "ipc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Ipc__Envelope *env;
	char err[128];

	env = ipc_decode(data, size, err, sizeof(err));
	if (env != NULL) {
		/* What decodes must pack again within the cap. */
		if (ipc__envelope__get_packed_size(env) > IPC_MAX_MSG)
			__builtin_trap();
		ipc__envelope__free_unpacked(env, NULL);
	}
	return 0;
}
