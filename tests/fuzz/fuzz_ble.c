/*
 * libFuzzer target for the BLE reassembler: any sequence of notifications
 * is taken without a crash, and every packet it returns is whole: at least
 * a header, exactly the length the header says, within max_pkt.
 * Input: bytes 0-1 pick max_pkt, then notifications as [u8 len][bytes].
 */
#include <stddef.h>
#include <stdint.h>

#include "smp_ble.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(void *arg, const uint8_t *pkt, size_t len)
{
	size_t max_pkt = *(size_t *)arg, off, flen, i, n, next = 0;

	if (len < 8 || len > max_pkt ||
	    len != 8 + ((size_t)pkt[2] << 8 | pkt[3]))
		__builtin_trap();
	/* Cutting it for writes covers it exactly. */
	n = smp_ble_fragments(len, 23);
	for (i = 0; i < n; i++) {
		smp_ble_fragment(len, 23, i, &off, &flen);
		if (off != next || flen == 0 || flen > 20)
			__builtin_trap();
		next += flen;
	}
	if (next != len)
		__builtin_trap();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smp_ble_reasm *r;
	size_t max_pkt, n;

	if (size < 2)
		return 0;
	max_pkt = (size_t)data[0] << 8 | data[1];
	data += 2;
	size -= 2;
	r = smp_ble_reasm_new(max_pkt);
	if (max_pkt < 8)
		max_pkt = 8;
	while (size > 0) {
		n = data[0];
		data++;
		size--;
		if (n > size)
			n = size;
		smp_ble_reasm_feed(r, data, n, check, &max_pkt);
		data += n;
		size -= n;
	}
	smp_ble_reasm_free(r);
	return 0;
}
