/*
 * SMP serial framing (docs/design.md "SMP"): the line encoder and the
 * incremental decoder that picks frames out of a tty's byte stream, with
 * console output of the board mixed in.  Pure: no I/O.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "smp_serial.h"
#include "xmalloc.h"

#define MARK_PKT_1  0x06
#define MARK_PKT_2  0x09
#define MARK_FRAG_1 0x04
#define MARK_FRAG_2 0x14

/* Marker (2 bytes) and newline around the base64 of each line. */
#define LINE_OVERHEAD 3

uint16_t
crc16_xmodem(const uint8_t *data, size_t len, uint16_t crc)
{
	size_t i;
	int bit;

	for (i = 0; i < len; i++) {
		crc ^= (uint16_t)data[i] << 8;
		for (bit = 0; bit < 8; bit++) {
			if (crc & 0x8000)
				crc = (uint16_t)((crc << 1) ^ 0x1021);
			else
				crc = (uint16_t)(crc << 1);
		}
	}
	return crc;
}

/* Base64 characters per line: a multiple of 4 so each line decodes alone. */
static size_t
line_chars(size_t line_max)
{
	return (line_max - LINE_OVERHEAD) / 4 * 4;
}

size_t
smp_serial_encoded_len(size_t pkt_len, size_t line_max)
{
	size_t chars, per, lines;

	if (line_max < LINE_OVERHEAD + 4 || pkt_len == 0 ||
	    pkt_len > SMP_SERIAL_PKT_MAX)
		return 0;
	/* Length prefix and CRC travel with the packet. */
	chars = (pkt_len + 4 + 2) / 3 * 4;
	per = line_chars(line_max);
	lines = (chars + per - 1) / per;
	return chars + lines * LINE_OVERHEAD;
}

/* Byte i of the stream [u16 len+2][packet][u16 crc]. */
static uint8_t
stream_byte(const uint8_t *pkt, size_t pkt_len, uint16_t crc, size_t i)
{
	if (i == 0)
		return (uint8_t)((pkt_len + 2) >> 8);
	if (i == 1)
		return (uint8_t)(pkt_len + 2);
	if (i < pkt_len + 2)
		return pkt[i - 2];
	if (i == pkt_len + 2)
		return (uint8_t)(crc >> 8);
	return (uint8_t)crc;
}

ssize_t
smp_serial_encode(const uint8_t *pkt, size_t pkt_len, size_t line_max,
                  uint8_t *out, size_t cap)
{
	uint8_t raw[48];
	unsigned char b64[65];
	size_t need, total, pos, o, per_raw, line_end, n, i;
	uint16_t crc;
	int enc;

	need = smp_serial_encoded_len(pkt_len, line_max);
	if (need == 0 || need > cap)
		return -1;
	crc = crc16_xmodem(pkt, pkt_len, 0);
	total = pkt_len + 4;
	per_raw = line_chars(line_max) / 4 * 3;
	pos = 0;
	o = 0;
	while (pos < total) {
		out[o++] = pos == 0 ? MARK_PKT_1 : MARK_FRAG_1;
		out[o++] = pos == 0 ? MARK_PKT_2 : MARK_FRAG_2;
		line_end = pos + per_raw < total ? pos + per_raw : total;
		/* Whole groups of 3 except at the very end of the stream. */
		while (pos < line_end) {
			n = line_end - pos < sizeof(raw) ? line_end - pos
			                                 : sizeof(raw);
			for (i = 0; i < n; i++)
				raw[i] =
				    stream_byte(pkt, pkt_len, crc, pos + i);
			enc = EVP_EncodeBlock(b64, raw, (int)n);
			memcpy(out + o, b64, (size_t)enc);
			o += (size_t)enc;
			pos += n;
		}
		out[o++] = '\n';
	}
	return (ssize_t)o;
}

/*
 * Decoder.  Markers are recognised anywhere in the stream, not only at the
 * start of a line: 0x04, 0x06, 0x09 and 0x14 never occur in base64, and a
 * board log line printed without its newline must not hide the frame that
 * follows it.  A marker inside a frame line ends that line first.
 */
enum line_state {
	L_START,   /* at the start of a line */
	L_CONSOLE, /* in a line that is not a frame: skipped */
	L_FRAME,   /* in a frame line, decoding base64 */
	L_BAD,     /* rest of a broken frame line: skipped */
};

struct smp_serial_decoder {
	size_t max_pkt;
	uint8_t *buf; /* packet + CRC, max_pkt + 2 */
	enum line_state line;
	uint8_t pending; /* a first marker byte waiting for its second */
	bool in_pkt;     /* a packet is being received */
	bool discarding; /* the packet was dropped: ignore its continuations */
	uint8_t lenb[2];
	size_t nlen; /* length bytes seen */
	size_t want; /* packet + CRC bytes the length announced */
	size_t got;  /* bytes in buf */
	char grp[4]; /* base64 group being collected */
	size_t ngrp;
	bool padded; /* this line's base64 ended with '=' */
	struct smp_serial_stats st;
};

struct smp_serial_decoder *
smp_serial_decoder_new(size_t max_pkt)
{
	struct smp_serial_decoder *d;

	if (max_pkt > SMP_SERIAL_PKT_MAX)
		max_pkt = SMP_SERIAL_PKT_MAX;
	d = xcalloc(1, sizeof(*d));
	d->max_pkt = max_pkt;
	d->buf = xmalloc(max_pkt + 2);
	smp_serial_decoder_reset(d);
	return d;
}

void
smp_serial_decoder_free(struct smp_serial_decoder *d)
{
	if (d == NULL)
		return;
	free(d->buf);
	free(d);
}

void
smp_serial_decoder_reset(struct smp_serial_decoder *d)
{
	d->line = L_START;
	d->pending = 0;
	d->in_pkt = false;
	d->discarding = false;
	d->nlen = d->want = d->got = d->ngrp = 0;
	d->padded = false;
	memset(&d->st, 0, sizeof(d->st));
}

const struct smp_serial_stats *
smp_serial_decoder_stats(const struct smp_serial_decoder *d)
{
	return &d->st;
}

/* Give up on the packet being received; skip the rest of this line. */
static void
drop_packet(struct smp_serial_decoder *d, uint64_t *counter)
{
	(*counter)++;
	d->in_pkt = false;
	d->discarding = true;
	if (d->line == L_FRAME)
		d->line = L_BAD;
}

static void
begin_line(struct smp_serial_decoder *d)
{
	d->ngrp = 0;
	d->padded = false;
	d->line = L_FRAME;
}

static void
put_byte(struct smp_serial_decoder *d, uint8_t b)
{
	if (d->nlen < 2) {
		d->lenb[d->nlen++] = b;
		if (d->nlen < 2)
			return;
		d->want = (size_t)d->lenb[0] << 8 | d->lenb[1];
		/* At least one packet byte besides the CRC. */
		if (d->want < 3) {
			drop_packet(d, &d->st.bad_len);
			return;
		}
		if (d->want - 2 > d->max_pkt)
			drop_packet(d, &d->st.overflows);
		return;
	}
	if (d->got >= d->want) {
		drop_packet(d, &d->st.bad_len);
		return;
	}
	d->buf[d->got++] = b;
}

static int
b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

static void
decode_group(struct smp_serial_decoder *d)
{
	unsigned char out[4];
	size_t pad, i;

	d->ngrp = 0;
	pad = d->grp[3] == '=' ? (d->grp[2] == '=' ? 2 : 1) : 0;
	/* '=' only at the end, at most two; EVP_DecodeBlock checks the rest. */
	if (d->grp[0] == '=' || d->grp[1] == '=' ||
	    (d->grp[2] == '=' && d->grp[3] != '=') ||
	    EVP_DecodeBlock(out, (const unsigned char *)d->grp, 4) != 3) {
		drop_packet(d, &d->st.bad_base64);
		return;
	}
	if (pad > 0)
		d->padded = true;
	for (i = 0; i < 3 - pad && d->in_pkt; i++)
		put_byte(d, out[i]);
}

/* The end of a frame line: deliver the packet if it is complete. */
static void
end_frame_line(struct smp_serial_decoder *d, smp_serial_packet_cb cb, void *arg)
{
	uint16_t crc;
	size_t len;

	d->line = L_START;
	if (!d->in_pkt)
		return;
	if (d->ngrp != 0) {
		drop_packet(d, &d->st.bad_base64);
		return;
	}
	if (d->nlen < 2) {
		drop_packet(d, &d->st.bad_len);
		return;
	}
	if (d->got < d->want)
		return; /* continuation lines follow */
	len = d->want - 2;
	crc = (uint16_t)(d->buf[len] << 8 | d->buf[len + 1]);
	d->in_pkt = false;
	d->discarding = false;
	if (crc16_xmodem(d->buf, len, 0) != crc) {
		d->st.bad_crc++;
		return;
	}
	d->st.packets++;
	cb(arg, d->buf, len);
}

static void
start_marker(struct smp_serial_decoder *d, smp_serial_packet_cb cb, void *arg)
{
	if (d->line == L_CONSOLE)
		d->st.skipped_lines++;
	else if (d->line == L_FRAME)
		end_frame_line(d, cb, arg);
	/* A new packet while one was unfinished: the old one was cut short. */
	if (d->in_pkt)
		d->st.bad_len++;
	d->in_pkt = true;
	d->discarding = false;
	d->nlen = d->want = d->got = 0;
	begin_line(d);
}

static void
cont_marker(struct smp_serial_decoder *d, smp_serial_packet_cb cb, void *arg)
{
	if (d->line == L_CONSOLE)
		d->st.skipped_lines++;
	else if (d->line == L_FRAME)
		end_frame_line(d, cb, arg);
	if (d->in_pkt) {
		begin_line(d);
		return;
	}
	/* The rest of a dropped packet is expected; anything else is noise. */
	if (!d->discarding)
		d->st.skipped_lines++;
	d->line = L_BAD;
}

static void
frame_byte(struct smp_serial_decoder *d, uint8_t c, smp_serial_packet_cb cb,
           void *arg)
{
	if (c == '\n') {
		end_frame_line(d, cb, arg);
		return;
	}
	if (c == '\r')
		return; /* a tty left in cooked output mode */
	if (d->padded || (b64_value((char)c) < 0 && c != '=')) {
		drop_packet(d, &d->st.bad_base64);
		return;
	}
	d->grp[d->ngrp++] = (char)c;
	if (d->ngrp == 4)
		decode_group(d);
}

/* A byte that is not part of a marker. */
static void
plain_byte(struct smp_serial_decoder *d, uint8_t c, smp_serial_packet_cb cb,
           void *arg)
{
	switch (d->line) {
	case L_START:
		if (c != '\n' && c != '\r')
			d->line = L_CONSOLE;
		break;
	case L_CONSOLE:
		if (c == '\n') {
			d->st.skipped_lines++;
			d->line = L_START;
		}
		break;
	case L_BAD:
		if (c == '\n')
			d->line = L_START;
		break;
	case L_FRAME:
		frame_byte(d, c, cb, arg);
		break;
	}
}

void
smp_serial_decoder_feed(struct smp_serial_decoder *d, const uint8_t *data,
                        size_t len, smp_serial_packet_cb cb, void *arg)
{
	size_t i;
	uint8_t c, p;

	for (i = 0; i < len; i++) {
		c = data[i];
		if (d->pending != 0) {
			p = d->pending;
			d->pending = 0;
			if (p == MARK_PKT_1 && c == MARK_PKT_2) {
				start_marker(d, cb, arg);
				continue;
			}
			if (p == MARK_FRAG_1 && c == MARK_FRAG_2) {
				cont_marker(d, cb, arg);
				continue;
			}
			plain_byte(d, p, cb, arg);
		}
		if (c == MARK_PKT_1 || c == MARK_FRAG_1) {
			d->pending = c;
			continue;
		}
		plain_byte(d, c, cb, arg);
	}
}
