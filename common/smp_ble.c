/*
 * SMP over BLE: cutting a request into ATT writes and joining response
 * notifications into whole SMP packets by the length in the SMP header.
 * Pure: no I/O.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smp_ble.h"
#include "xmalloc.h"

#define HDR_LEN     8  /* SMP header */
#define ATT_MTU_MIN 23 /* Bluetooth Core: the default and smallest MTU */
#define ATT_HDR_LEN 3  /* opcode + handle of a write or notification */

/* A link never has less than the default MTU; a smaller value is a bug. */
static size_t
frag_payload(uint16_t att_mtu)
{
	if (att_mtu < ATT_MTU_MIN)
		att_mtu = ATT_MTU_MIN;
	return (size_t)att_mtu - ATT_HDR_LEN;
}

size_t
smp_ble_fragments(size_t len, uint16_t att_mtu)
{
	size_t p = frag_payload(att_mtu);

	return (len + p - 1) / p;
}

void
smp_ble_fragment(size_t len, uint16_t att_mtu, size_t i, size_t *off,
                 size_t *frag_len)
{
	size_t p = frag_payload(att_mtu);

	if (i >= smp_ble_fragments(len, att_mtu)) {
		*off = len;
		*frag_len = 0;
		return;
	}
	*off = i * p;
	*frag_len = len - *off < p ? len - *off : p;
}

struct smp_ble_reasm {
	size_t max_pkt;
	uint8_t *buf;
	size_t have; /* bytes of the current packet in buf */
	size_t want; /* its whole length, once the header is in */
	size_t skip; /* bytes left of a dropped oversized packet */
};

struct smp_ble_reasm *
smp_ble_reasm_new(size_t max_pkt)
{
	struct smp_ble_reasm *r;

	if (max_pkt < HDR_LEN)
		max_pkt = HDR_LEN;
	r = xcalloc(1, sizeof(*r));
	r->max_pkt = max_pkt;
	r->buf = xmalloc(max_pkt);
	return r;
}

void
smp_ble_reasm_free(struct smp_ble_reasm *r)
{
	if (r == NULL)
		return;
	free(r->buf);
	free(r);
}

void
smp_ble_reasm_reset(struct smp_ble_reasm *r)
{
	r->have = r->want = r->skip = 0;
}

/*
 * Byte 0 holds op (bits 0-2, 0-3 defined) and version (bits 3-4, v1 or
 * v2); bits 5-7 are reserved.  Anything else is not the start of a packet,
 * so the notification is out of step with the packet boundaries.
 */
static bool
hdr_plausible(const uint8_t *h)
{
	return (h[0] & 0xe0) == 0 && (h[0] & 0x07) <= 3 &&
	       ((h[0] >> 3) & 0x03) <= 1;
}

int
smp_ble_reasm_feed(struct smp_ble_reasm *r, const uint8_t *data, size_t len,
                   smp_ble_packet_cb cb, void *arg)
{
	size_t n;
	int rc = 0;

	while (len > 0) {
		if (r->skip > 0) {
			n = len < r->skip ? len : r->skip;
			r->skip -= n;
			data += n;
			len -= n;
			continue;
		}
		if (r->have < HDR_LEN) {
			n = HDR_LEN - r->have < len ? HDR_LEN - r->have : len;
			memcpy(r->buf + r->have, data, n);
			r->have += n;
			data += n;
			len -= n;
			if (r->have < HDR_LEN)
				break;
			if (!hdr_plausible(r->buf)) {
				smp_ble_reasm_reset(r);
				return -1;
			}
			r->want =
			    HDR_LEN + ((size_t)r->buf[2] << 8 | r->buf[3]);
			if (r->want > r->max_pkt) {
				/*
				 * Too large for us, but well-formed: skip its
				 * bytes so its tail is not taken for headers.
				 */
				r->skip = r->want - HDR_LEN;
				r->have = r->want = 0;
				rc = -1;
				continue;
			}
		}
		n = r->want - r->have < len ? r->want - r->have : len;
		memcpy(r->buf + r->have, data, n);
		r->have += n;
		data += n;
		len -= n;
		if (r->have == r->want) {
			n = r->want;
			r->have = r->want = 0;
			cb(arg, r->buf, n);
		}
	}
	return rc;
}
