/*
 * libFuzzer target for adv_find_name(): advertising reports come from any
 * radio in range, so every byte is hostile.
 */
#include <stddef.h>
#include <stdint.h>

#include "workers/ble/adv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct adv_addr a;

	adv_find_name(data, size, "board", &a);
	adv_find_name(data, size, "", &a);
	return 0;
}
