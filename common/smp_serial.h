/*
 * SMP over a serial line (docs/design.md "SMP", "Serial transport"):
 * packet -> [u16 len+2][packet][crc16] -> base64 -> lines of at most
 * line_max bytes with start (06 09) or continuation (04 14) markers and a
 * trailing newline.  Pure: no I/O.  Base64 from OpenSSL.
 */
#ifndef SMP_SERIAL_H
#define SMP_SERIAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SMP_SERIAL_LINE_MAX 127 /* default and Zephyr's limit */
/* The length prefix (packet + 2-byte CRC) is a u16. */
#define SMP_SERIAL_PKT_MAX 65533

/* CRC-16/XMODEM (poly 0x1021, init 0): crc16_xmodem("123456789") = 0x31c3. */
uint16_t crc16_xmodem(const uint8_t *data, size_t len, uint16_t crc);

/*
 * Bytes smp_serial_encode() writes for a packet of pkt_len bytes, or 0 when
 * it cannot be encoded: pkt_len 0 or above SMP_SERIAL_PKT_MAX, or line_max
 * below 7 (marker, one base64 group, newline).
 */
size_t smp_serial_encoded_len(size_t pkt_len, size_t line_max);
/*
 * Encode; returns bytes written or -1 when cap is too small or the packet
 * cannot be encoded.  The base64 of the whole stream is cut into lines of
 * (line_max - 3) / 4 * 4 characters, as Zephyr and the Go client do.
 */
ssize_t smp_serial_encode(const uint8_t *pkt, size_t pkt_len, size_t line_max,
                          uint8_t *out, size_t cap);

struct smp_serial_stats {
	uint64_t packets;
	uint64_t bad_crc;
	uint64_t bad_len;
	uint64_t bad_base64;
	uint64_t skipped_lines; /* console output that is not a frame */
	uint64_t overflows;     /* packets larger than max_pkt */
};

/*
 * Incremental decoder, fed the bytes as the tty delivers them.  Memory is
 * bounded by max_pkt (the largest packet accepted).
 */
struct smp_serial_decoder;
typedef void (*smp_serial_packet_cb)(void *arg, const uint8_t *pkt, size_t len);

struct smp_serial_decoder *smp_serial_decoder_new(size_t max_pkt);
void smp_serial_decoder_free(struct smp_serial_decoder *d);
void smp_serial_decoder_reset(struct smp_serial_decoder *d);
/*
 * Calls cb once per whole, CRC-checked packet found in data (max_pkt is
 * capped at SMP_SERIAL_PKT_MAX).  pkt is valid only during the call; cb may
 * not feed or free the decoder.
 */
void smp_serial_decoder_feed(struct smp_serial_decoder *d, const uint8_t *data,
                             size_t len, smp_serial_packet_cb cb, void *arg);
const struct smp_serial_stats *
smp_serial_decoder_stats(const struct smp_serial_decoder *d);

#endif
