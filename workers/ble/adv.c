/*
 * Parse LE Advertising Report events (Core spec vol 4 part E 7.7.65.2) as
 * BlueZ delivers them on a raw HCI socket, and the AD structures inside
 * (vol 3 part C 11) for the local name.  Every length is checked against
 * what is left before it is used.
 */
#include <string.h>

#include "adv.h"

#define HCI_EVENT_PKT    0x04
#define EVT_LE_META      0x3e
#define LE_ADV_REPORT    0x02
#define AD_SHORT_NAME    0x08
#define AD_COMPLETE_NAME 0x09

/* 1 if the AD data names the device name, 0 if not, -1 if malformed. */
static int
adv_data_has_name(const uint8_t *d, size_t len, const char *name)
{
	size_t off = 0, l, nlen = strlen(name);

	while (off < len) {
		l = d[off];
		if (l == 0)
			return 0; /* padding: the rest is unused */
		if (l > len - off - 1)
			return -1;
		if ((d[off + 1] == AD_COMPLETE_NAME ||
		     d[off + 1] == AD_SHORT_NAME) &&
		    l - 1 == nlen && memcmp(d + off + 2, name, nlen) == 0)
			return 1;
		off += 1 + l;
	}
	return 0;
}

int
adv_find_name(const uint8_t *buf, size_t len, const char *name,
              struct adv_addr *a)
{
	size_t off, plen, i, n, dlen;
	int rc;

	/* [type][event][plen][subevent][num_reports] */
	if (len < 3 || buf[0] != HCI_EVENT_PKT || buf[1] != EVT_LE_META)
		return 0;
	plen = buf[2];
	if (plen > len - 3)
		return -1;
	if (plen < 2 || buf[3] != LE_ADV_REPORT)
		return 0;
	n = buf[4];
	off = 5;
	len = 3 + plen;
	/* Each: [evt_type][addr_type][addr 6][data_len][data][rssi] */
	for (i = 0; i < n; i++) {
		if (len - off < 9)
			return -1;
		dlen = buf[off + 8];
		if (len - off - 9 < dlen + 1)
			return -1;
		rc = adv_data_has_name(buf + off + 9, dlen, name);
		if (rc == -1)
			return -1;
		if (rc == 1) {
			a->type = buf[off + 1];
			memcpy(a->b, buf + off + 2, 6);
			return 1;
		}
		off += 9 + dlen + 1;
	}
	return 0;
}
