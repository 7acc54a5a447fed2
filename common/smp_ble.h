/*
 * SMP over BLE GATT: requests are written to the SMP characteristic without
 * response in pieces of at most ATT MTU - 3 bytes; responses arrive as
 * notifications that are joined into whole packets by the length in the
 * SMP header.  Pure: no I/O.
 */
#ifndef SMP_BLE_H
#define SMP_BLE_H

#include <stddef.h>
#include <stdint.h>

#define SMP_BLE_SERVICE_UUID "8d53dc1d-1db7-4cd3-868b-8a527460aa84"
#define SMP_BLE_CHAR_UUID    "da2e7828-fbce-4e01-ae9e-261174997c48"

/*
 * Number of writes a packet of len bytes needs at this ATT MTU (each write
 * carries att_mtu - 3 bytes; an MTU below the minimum 23 counts as 23).
 */
size_t smp_ble_fragments(size_t len, uint16_t att_mtu);
/*
 * Offset and length of fragment i (0-based) of a len-byte packet; past the
 * last fragment: offset len, length 0.
 */
void smp_ble_fragment(size_t len, uint16_t att_mtu, size_t i, size_t *off,
                      size_t *frag_len);

struct smp_ble_reasm;
typedef void (*smp_ble_packet_cb)(void *arg, const uint8_t *pkt, size_t len);

/*
 * max_pkt (header included) bounds memory; a packet announcing more is
 * dropped, and its remaining bytes are skipped so that its tail is not
 * taken for the start of the next packet.
 */
struct smp_ble_reasm *smp_ble_reasm_new(size_t max_pkt);
void smp_ble_reasm_free(struct smp_ble_reasm *r);
void smp_ble_reasm_reset(struct smp_ble_reasm *r);
/*
 * Feed one notification payload; cb is called for each packet completed
 * (pkt is valid only during the call; cb may not feed or free r).
 * Returns 0, or -1 when the data was inconsistent and was discarded: a
 * header whose first byte is not a valid op/version (the rest of the
 * notification is dropped and the next notification starts a packet), or
 * an oversized packet (skipped as described above).
 */
int smp_ble_reasm_feed(struct smp_ble_reasm *r, const uint8_t *data, size_t len,
                       smp_ble_packet_cb cb, void *arg);

#endif
