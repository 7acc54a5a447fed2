/*
 * Unit tests for common/smp_serial.c: CRC, golden line bytes derived by
 * hand, round trips, and a decoder fed in arbitrary slices with console
 * noise, broken frames and oversized packets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smp_serial.h"

#define MAXPKTS 64

struct got {
	int n;
	size_t len[MAXPKTS];
	uint8_t *pkt[MAXPKTS];
};

static void
collect(void *arg, const uint8_t *pkt, size_t len)
{
	struct got *g = arg;

	assert_true(g->n < MAXPKTS);
	g->len[g->n] = len;
	g->pkt[g->n] = malloc(len ? len : 1);
	memcpy(g->pkt[g->n], pkt, len);
	g->n++;
}

static void
got_free(struct got *g)
{
	int i;

	for (i = 0; i < g->n; i++)
		free(g->pkt[i]);
	g->n = 0;
}

/* Deterministic test data (xorshift32). */
static uint32_t rng = 12345;

static uint32_t
rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 17;
	rng ^= rng << 5;
	return rng;
}

static void
fill(uint8_t *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		b[i] = (uint8_t)rnd();
}

/*
 * The echo request {"d":"hi"}: SMP v1, op 2 (write), flags 0, payload
 * length 6, group 0 (OS), seq 0, id 0 (echo), then the CBOR map
 * a1 (map of 1) 61 64 ("d") 62 68 69 ("hi").
 */
static const uint8_t echo_pkt[] = {0x02, 0x00, 0x00, 0x06, 0x00, 0x00, 0x00,
                                   0x00, 0xa1, 0x61, 0x64, 0x62, 0x68, 0x69};

/*
 * Its serial line.  Stream = len+2 (16 = 00 10), the 14 packet bytes, and
 * CRC-16/XMODEM of the packet, 0x0917 (computed with a separate bitwise
 * reference implementation, which also gives 0x31c3 for "123456789"):
 *   00 10 02 | 00 00 06 | 00 00 00 | 00 a1 61 | 64 62 68 | 69 09 17
 * Base64, 6 bits at a time:
 *   000000 000001 000000 000010 = A B A C
 *   000000 000000 000000 000110 = A A A G
 *   000000 000000 000000 000000 = A A A A
 *   000000 001010 000101 100001 = A K F h
 *   011001 000110 001001 101000 = Z G J o
 *   011010 010000 100100 010111 = a Q k X
 * 18 bytes, 24 characters, no padding; one line: 06 09, base64, newline.
 */
static const char echo_line[] = "\x06\x09"
                                "ABACAAAGAAAAAKFhZGJoaQkX\n";

static void
test_crc(void **state)
{
	const uint8_t *s = (const uint8_t *)"123456789";

	(void)state;
	assert_int_equal(crc16_xmodem(s, 9, 0), 0x31c3);
	/* Incremental: the running value continues. */
	assert_int_equal(crc16_xmodem(s + 4, 5, crc16_xmodem(s, 4, 0)), 0x31c3);
	assert_int_equal(crc16_xmodem(echo_pkt, sizeof(echo_pkt), 0), 0x0917);
	assert_int_equal(crc16_xmodem(NULL, 0, 0), 0);
}

static void
test_golden_encode(void **state)
{
	uint8_t out[64];
	ssize_t n;

	(void)state;
	assert_int_equal(smp_serial_encoded_len(sizeof(echo_pkt), 127),
	                 sizeof(echo_line) - 1);
	n = smp_serial_encode(echo_pkt, sizeof(echo_pkt), 127, out,
	                      sizeof(out));
	assert_int_equal(n, sizeof(echo_line) - 1);
	assert_memory_equal(out, echo_line, sizeof(echo_line) - 1);
}

static void
test_golden_decode(void **state)
{
	struct smp_serial_decoder *d = smp_serial_decoder_new(512);
	struct got g = {0};

	(void)state;
	smp_serial_decoder_feed(d, (const uint8_t *)echo_line,
	                        sizeof(echo_line) - 1, collect, &g);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.len[0], sizeof(echo_pkt));
	assert_memory_equal(g.pkt[0], echo_pkt, sizeof(echo_pkt));
	assert_int_equal(smp_serial_decoder_stats(d)->packets, 1);
	got_free(&g);
	smp_serial_decoder_free(d);
}

/*
 * Each line of an encoding: marker, a multiple of 4 base64 characters,
 * newline, at most line_max bytes; the first starts 06 09, the others
 * 04 14.
 */
static void
check_lines(const uint8_t *b, size_t n, size_t line_max)
{
	size_t i = 0, start, chars, lines = 0;

	while (i < n) {
		start = i;
		assert_true(n - i >= 3);
		assert_int_equal(b[i], lines == 0 ? 0x06 : 0x04);
		assert_int_equal(b[i + 1], lines == 0 ? 0x09 : 0x14);
		i += 2;
		while (i < n && b[i] != '\n')
			i++;
		assert_true(i < n);
		chars = i - start - 2;
		assert_true(chars > 0 && chars % 4 == 0);
		i++;
		assert_true(i - start <= line_max);
		lines++;
	}
}

static void
roundtrip(size_t len, size_t line_max)
{
	uint8_t *pkt = malloc(len), *enc;
	size_t elen, i;
	ssize_t n;
	struct smp_serial_decoder *d = smp_serial_decoder_new(len);
	struct got g = {0};

	fill(pkt, len);
	elen = smp_serial_encoded_len(len, line_max);
	assert_true(elen > 0);
	enc = malloc(elen);
	/* One byte short of room fails. */
	assert_int_equal(smp_serial_encode(pkt, len, line_max, enc, elen - 1),
	                 -1);
	n = smp_serial_encode(pkt, len, line_max, enc, elen);
	assert_int_equal(n, (ssize_t)elen);
	check_lines(enc, elen, line_max);
	smp_serial_decoder_feed(d, enc, elen, collect, &g);
	/* The same bytes one at a time. */
	for (i = 0; i < elen; i++)
		smp_serial_decoder_feed(d, enc + i, 1, collect, &g);
	assert_int_equal(g.n, 2);
	assert_int_equal(g.len[0], len);
	assert_memory_equal(g.pkt[0], pkt, len);
	assert_int_equal(g.len[1], len);
	assert_memory_equal(g.pkt[1], pkt, len);
	assert_int_equal(smp_serial_decoder_stats(d)->skipped_lines, 0);
	got_free(&g);
	smp_serial_decoder_free(d);
	free(enc);
	free(pkt);
}

static void
test_roundtrip(void **state)
{
	static const size_t lmax[] = {7, 8, 10, 11, 64, 127, 128, 1024};
	size_t i, len;

	(void)state;
	for (i = 0; i < sizeof(lmax) / sizeof(lmax[0]); i++) {
		for (len = 1; len <= 300; len++)
			roundtrip(len, lmax[i]);
		roundtrip(2048, lmax[i]);
	}
	roundtrip(SMP_SERIAL_PKT_MAX, 127);
}

static void
test_line_cut(void **state)
{
	uint8_t pkt[100], out[256];
	ssize_t n;

	(void)state;
	fill(pkt, sizeof(pkt));
	/* 104 stream bytes: 35 groups, 140 characters = 124 + 16. */
	n = smp_serial_encode(pkt, sizeof(pkt), 127, out, sizeof(out));
	assert_int_equal(n, 140 + 2 * 3);
	assert_int_equal(out[126], '\n');
	assert_int_equal(out[127], 0x04);
	assert_int_equal(out[128], 0x14);
	assert_int_equal(out[n - 1], '\n');
	/* The first line holds exactly 124 characters: 127 with framing. */
	assert_int_equal(n - 127, 2 + 16 + 1);
}

static void
test_encode_errors(void **state)
{
	uint8_t pkt[4] = {1, 2, 3, 4}, out[64];

	(void)state;
	assert_int_equal(smp_serial_encoded_len(4, 6), 0);
	assert_int_equal(smp_serial_encode(pkt, 4, 6, out, sizeof(out)), -1);
	assert_int_equal(smp_serial_encoded_len(0, 127), 0);
	assert_int_equal(smp_serial_encode(pkt, 0, 127, out, sizeof(out)), -1);
	assert_int_equal(smp_serial_encoded_len(SMP_SERIAL_PKT_MAX + 1, 127),
	                 0);
	/* line_max 7 carries one group (3 bytes) per line: 8 stream bytes. */
	assert_int_equal(smp_serial_encoded_len(4, 7), 3 * 7);
}

/* A console line of the board, as Zephyr's logger prints it. */
static const char noise[] = "[00:00:01.234,000] <inf> app: temp=21\r\n";

static void
test_noise_and_slices(void **state)
{
	uint8_t stream[65536], pkts[20][400];
	size_t plen[20], off = 0, i, n, elen;
	struct smp_serial_decoder *d = smp_serial_decoder_new(400);
	struct got g = {0};
	const struct smp_serial_stats *st;
	ssize_t e;

	(void)state;
	for (i = 0; i < 20; i++) {
		plen[i] = 1 + rnd() % 400;
		fill(pkts[i], plen[i]);
		if (i % 3 == 0) {
			memcpy(stream + off, noise, sizeof(noise) - 1);
			off += sizeof(noise) - 1;
		}
		elen = smp_serial_encoded_len(plen[i], 127);
		e = smp_serial_encode(pkts[i], plen[i], 127, stream + off,
		                      sizeof(stream) - off);
		assert_int_equal(e, (ssize_t)elen);
		off += elen;
	}
	/* Random slices, as read() returns them. */
	for (i = 0; i < off; i += n) {
		n = 1 + rnd() % 50;
		if (n > off - i)
			n = off - i;
		smp_serial_decoder_feed(d, stream + i, n, collect, &g);
	}
	assert_int_equal(g.n, 20);
	for (i = 0; i < 20; i++) {
		assert_int_equal(g.len[i], plen[i]);
		assert_memory_equal(g.pkt[i], pkts[i], plen[i]);
	}
	st = smp_serial_decoder_stats(d);
	assert_int_equal(st->packets, 20);
	assert_int_equal(st->skipped_lines, 7);
	assert_int_equal(
	    st->bad_crc + st->bad_len + st->bad_base64 + st->overflows, 0);
	got_free(&g);
	smp_serial_decoder_free(d);
}

/* Console lines between the lines of one packet do not break it. */
static void
test_noise_between_frames(void **state)
{
	uint8_t pkt[200], enc[512], s[1024];
	size_t n, off = 0, i;
	struct smp_serial_decoder *d = smp_serial_decoder_new(256);
	struct got g = {0};

	(void)state;
	fill(pkt, sizeof(pkt));
	n = (size_t)smp_serial_encode(pkt, sizeof(pkt), 127, enc, sizeof(enc));
	for (i = 0; i < n; i++) {
		s[off++] = enc[i];
		if (enc[i] == '\n') {
			memcpy(s + off, noise, sizeof(noise) - 1);
			off += sizeof(noise) - 1;
		}
	}
	/* Also a banner without a newline right before the next packet. */
	memcpy(s + off, "*** Booting Zephyr ***", 22);
	off += 22;
	memcpy(s + off, echo_line, sizeof(echo_line) - 1);
	off += sizeof(echo_line) - 1;
	smp_serial_decoder_feed(d, s, off, collect, &g);
	assert_int_equal(g.n, 2);
	assert_memory_equal(g.pkt[0], pkt, sizeof(pkt));
	assert_memory_equal(g.pkt[1], echo_pkt, sizeof(echo_pkt));
	assert_int_equal(smp_serial_decoder_stats(d)->skipped_lines, 4);
	got_free(&g);
	smp_serial_decoder_free(d);
}

static void
feed_str(struct smp_serial_decoder *d, const char *s, struct got *g)
{
	smp_serial_decoder_feed(d, (const uint8_t *)s, strlen(s), collect, g);
}

static void
test_bad_crc(void **state)
{
	struct smp_serial_decoder *d = smp_serial_decoder_new(512);
	struct got g = {0};
	char line[sizeof(echo_line)];

	(void)state;
	/* 'X' -> 'Y' changes the CRC's last byte from 0x17 to 0x18. */
	memcpy(line, echo_line, sizeof(line));
	line[25] = 'Y';
	feed_str(d, line, &g);
	assert_int_equal(g.n, 0);
	assert_int_equal(smp_serial_decoder_stats(d)->bad_crc, 1);
	/* A body byte changed instead: 'h' -> 'i' in "AKFh". */
	memcpy(line, echo_line, sizeof(line));
	line[17] = 'i';
	feed_str(d, line, &g);
	assert_int_equal(smp_serial_decoder_stats(d)->bad_crc, 2);
	feed_str(d, echo_line, &g);
	assert_int_equal(g.n, 1);
	got_free(&g);
	smp_serial_decoder_free(d);
}

static void
test_bad_len(void **state)
{
	struct smp_serial_decoder *d = smp_serial_decoder_new(512);
	struct got g = {0};
	const struct smp_serial_stats *st = smp_serial_decoder_stats(d);

	(void)state;
	/* Length 0x0011 (one more than sent): waits, then a new packet. */
	feed_str(d,
	         "\x06\x09"
	         "ABECAAAGAAAAAKFhZGJoaQkX\n",
	         &g);
	assert_int_equal(g.n, 0);
	assert_int_equal(st->bad_len, 0);
	feed_str(d, echo_line, &g);
	assert_int_equal(g.n, 1);
	assert_int_equal(st->bad_len, 1);
	/* Length 0x000f (one less than sent): too many bytes. */
	feed_str(d,
	         "\x06\x09"
	         "AA8CAAAGAAAAAKFhZGJoaQkX\n",
	         &g);
	assert_int_equal(st->bad_len, 2);
	/* Length 2: no packet besides the CRC. */
	feed_str(d,
	         "\x06\x09"
	         "AAIAAA==\n",
	         &g);
	assert_int_equal(st->bad_len, 3);
	/* A first line too short to hold the length. */
	feed_str(d,
	         "\x06\x09"
	         "AA==\n",
	         &g);
	assert_int_equal(st->bad_len, 4);
	feed_str(d, echo_line, &g);
	assert_int_equal(g.n, 2);
	assert_int_equal(st->packets, 2);
	got_free(&g);
	smp_serial_decoder_free(d);
}

static void
test_bad_base64(void **state)
{
	struct smp_serial_decoder *d = smp_serial_decoder_new(512);
	struct got g = {0};
	const struct smp_serial_stats *st = smp_serial_decoder_stats(d);

	(void)state;
	feed_str(d,
	         "\x06\x09"
	         "ABACAAAG*AAAAKFhZGJoaQkX\n",
	         &g);
	assert_int_equal(st->bad_base64, 1);
	/* A partial group at the end of a line. */
	feed_str(d,
	         "\x06\x09"
	         "ABACAAAGAAAAAKFhZGJoaQk\n",
	         &g);
	assert_int_equal(st->bad_base64, 2);
	/* Padding in the middle of a group, and data after padding. */
	feed_str(d,
	         "\x06\x09"
	         "ABACAA=A\n",
	         &g);
	assert_int_equal(st->bad_base64, 3);
	feed_str(d,
	         "\x06\x09"
	         "ABA=AAAG\n",
	         &g);
	assert_int_equal(st->bad_base64, 4);
	feed_str(d,
	         "\x06\x09"
	         "A===\n",
	         &g);
	assert_int_equal(st->bad_base64, 5);
	assert_int_equal(g.n, 0);
	/* The rest of the broken line is not taken for a console line. */
	assert_int_equal(st->skipped_lines, 0);
	feed_str(d, echo_line, &g);
	assert_int_equal(g.n, 1);
	got_free(&g);
	smp_serial_decoder_free(d);
}

static void
test_overflow(void **state)
{
	uint8_t pkt[100], enc[256];
	ssize_t n;
	struct smp_serial_decoder *d = smp_serial_decoder_new(64);
	struct got g = {0};
	const struct smp_serial_stats *st = smp_serial_decoder_stats(d);

	(void)state;
	fill(pkt, sizeof(pkt));
	n = smp_serial_encode(pkt, sizeof(pkt), 127, enc, sizeof(enc));
	smp_serial_decoder_feed(d, enc, (size_t)n, collect, &g);
	assert_int_equal(g.n, 0);
	assert_int_equal(st->overflows, 1);
	/* Its continuation line is expected, not console noise. */
	assert_int_equal(st->skipped_lines, 0);
	/* 64 bytes is still fine. */
	n = smp_serial_encode(pkt, 64, 127, enc, sizeof(enc));
	smp_serial_decoder_feed(d, enc, (size_t)n, collect, &g);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.len[0], 64);
	got_free(&g);
	smp_serial_decoder_free(d);
}

static void
test_restart_mid_packet(void **state)
{
	uint8_t pkt[200], enc[512];
	ssize_t n;
	struct smp_serial_decoder *d = smp_serial_decoder_new(512);
	struct got g = {0};
	const struct smp_serial_stats *st = smp_serial_decoder_stats(d);

	(void)state;
	fill(pkt, sizeof(pkt));
	n = smp_serial_encode(pkt, sizeof(pkt), 127, enc, sizeof(enc));
	assert_true(n > 127);
	/* First line only, then a whole packet: the first is cut short. */
	smp_serial_decoder_feed(d, enc, 127, collect, &g);
	feed_str(d, echo_line, &g);
	assert_int_equal(g.n, 1);
	assert_int_equal(st->bad_len, 1);
	/* A start marker in the middle of a frame line. */
	smp_serial_decoder_feed(d, enc, 62, collect, &g);
	feed_str(d, echo_line, &g);
	assert_int_equal(g.n, 2);
	assert_int_equal(st->bad_len, 2);
	/* Garbage bytes (not a marker) right after a lone 0x06. */
	feed_str(d, "\x06x\x06\x06\x04\n", &g);
	feed_str(d, echo_line, &g);
	assert_int_equal(g.n, 3);
	assert_memory_equal(g.pkt[2], echo_pkt, sizeof(echo_pkt));
	/* A continuation with no packet in progress is noise. */
	feed_str(d,
	         "\x04\x14"
	         "AAAA\n",
	         &g);
	assert_int_equal(st->skipped_lines, 2);
	assert_int_equal(g.n, 3);
	got_free(&g);
	smp_serial_decoder_free(d);
}

/*
 * Older encoders base64 each line on its own, with padding at the end of
 * a line; Zephyr's decoder accepts that, and so do we.  The stream of the
 * echo request cut after 4 bytes: 00 10 02 00 = "ABACAA==", then the 14
 * remaining bytes 00 06 00 00 00 00 a1 61 64 62 68 69 09 17.
 */
static void
test_padded_lines(void **state)
{
	struct smp_serial_decoder *d = smp_serial_decoder_new(512);
	struct got g = {0};

	(void)state;
	feed_str(d,
	         "\x06\x09"
	         "ABACAA==\r\n"
	         "\x04\x14"
	         "AAYAAAAAoWFkYmhpCRc=\r\n",
	         &g);
	assert_int_equal(g.n, 1);
	assert_memory_equal(g.pkt[0], echo_pkt, sizeof(echo_pkt));
	got_free(&g);
	smp_serial_decoder_free(d);
}

static void
test_reset(void **state)
{
	struct smp_serial_decoder *d = smp_serial_decoder_new(512);
	struct got g = {0};

	(void)state;
	smp_serial_decoder_feed(d, (const uint8_t *)echo_line, 10, collect, &g);
	smp_serial_decoder_reset(d);
	/* The rest of the line is now an orphan without a marker: noise. */
	feed_str(d, echo_line + 10, &g);
	assert_int_equal(g.n, 0);
	assert_int_equal(smp_serial_decoder_stats(d)->skipped_lines, 1);
	feed_str(d, echo_line, &g);
	assert_int_equal(g.n, 1);
	got_free(&g);
	smp_serial_decoder_free(d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_crc),
	    cmocka_unit_test(test_golden_encode),
	    cmocka_unit_test(test_golden_decode),
	    cmocka_unit_test(test_roundtrip),
	    cmocka_unit_test(test_line_cut),
	    cmocka_unit_test(test_encode_errors),
	    cmocka_unit_test(test_noise_and_slices),
	    cmocka_unit_test(test_noise_between_frames),
	    cmocka_unit_test(test_bad_crc),
	    cmocka_unit_test(test_bad_len),
	    cmocka_unit_test(test_bad_base64),
	    cmocka_unit_test(test_overflow),
	    cmocka_unit_test(test_restart_mid_packet),
	    cmocka_unit_test(test_padded_lines),
	    cmocka_unit_test(test_reset),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
