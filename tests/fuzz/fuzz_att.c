/*
 * libFuzzer target for common/att.c: any bytes decode or are refused with
 * a reason, and what decodes encodes back to the same bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "att.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct att_pdu pdu;
	static uint8_t out[ATT_MAX_MTU];
	struct att_chr_decl d;
	char err[96];
	ssize_t n;
	size_t i;

	if (att_decode(data, size, &pdu, err, sizeof(err)) == -1) {
		if (err[0] == '\0')
			__builtin_trap();
		return 0;
	}
	if (pdu.op == ATT_OP_READ_BY_TYPE_RSP)
		for (i = 0; i < pdu.u.list.n; i++)
			att_chr_decl_parse(pdu.u.list.e[i].value,
			                   pdu.u.list.e[i].value_len, &d);
	if (size > ATT_MAX_MTU)
		return 0;
	n = att_encode(&pdu, out, size);
	if (n != (ssize_t)size || memcmp(out, data, size) != 0)
		__builtin_trap();
	return 0;
}
