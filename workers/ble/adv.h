/*
 * Advertising reports from a raw HCI socket: find the board that
 * advertises a given name.  Pure: no I/O, so it is unit-tested and fuzzed.
 */
#ifndef ADV_H
#define ADV_H

#include <stddef.h>
#include <stdint.h>

struct adv_addr {
	uint8_t type; /* HCI address type: 0 public, 1 random */
	uint8_t b[6]; /* little-endian, as on the wire (bdaddr_t) */
};

/*
 * buf is one packet read from an HCI socket (packet type byte first).
 * Returns 1 when it is an LE Advertising Report in which a device
 * advertises exactly name (complete or shortened local name), filling *a;
 * 0 when it is anything else; -1 when it is malformed (lengths that do
 * not add up).
 */
int adv_find_name(const uint8_t *buf, size_t len, const char *name,
                  struct adv_addr *a);

#endif
