/*
 * libFuzzer target for the SMP serial decoder: any byte stream is taken
 * without a crash, and gives the same packets whether it arrives whole or
 * one byte at a time; every packet fits max_pkt and survives a re-encode.
 * Input: byte 0 picks max_pkt, the rest is the tty stream.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smp_serial.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct seen {
	size_t max_pkt;
	uint64_t n;
	uint64_t fnv; /* of every packet's length and bytes, in order */
};

static void
mix(struct seen *s, const uint8_t *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		s->fnv ^= b[i];
		s->fnv *= 0x100000001b3ULL;
	}
}

static void
one(void *arg, const uint8_t *pkt, size_t len)
{
	struct seen *s = arg;
	uint8_t l[8];
	size_t i;

	if (len == 0 || len > s->max_pkt)
		__builtin_trap();
	for (i = 0; i < 8; i++)
		l[i] = (uint8_t)((uint64_t)len >> (8 * i));
	mix(s, l, sizeof(l));
	mix(s, pkt, len);
	s->n++;
}

static void
reencoded(void *arg, const uint8_t *pkt, size_t len)
{
	struct seen *s = arg;

	if (len != s->max_pkt)
		__builtin_trap();
	s->n++;
	(void)pkt;
}

/* A packet the decoder returned encodes and decodes to itself. */
static void
check_roundtrip(void *arg, const uint8_t *pkt, size_t len)
{
	struct seen *s = arg, r = {len, 0, 0};
	struct smp_serial_decoder *d;
	size_t elen = smp_serial_encoded_len(len, SMP_SERIAL_LINE_MAX);
	uint8_t *enc;

	one(s, pkt, len);
	if (elen == 0)
		__builtin_trap();
	enc = malloc(elen);
	if (smp_serial_encode(pkt, len, SMP_SERIAL_LINE_MAX, enc, elen) !=
	    (ssize_t)elen)
		__builtin_trap();
	d = smp_serial_decoder_new(len);
	smp_serial_decoder_feed(d, enc, elen, reencoded, &r);
	if (r.n != 1)
		__builtin_trap();
	smp_serial_decoder_free(d);
	free(enc);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smp_serial_decoder *a, *b;
	struct seen sa, sb;
	const struct smp_serial_stats *ta, *tb;
	size_t i, max_pkt;

	if (size < 1)
		return 0;
	max_pkt = 1 + (size_t)data[0] * 8;
	data++;
	size--;
	sa = (struct seen){max_pkt, 0, 0xcbf29ce484222325ULL};
	sb = sa;
	a = smp_serial_decoder_new(max_pkt);
	b = smp_serial_decoder_new(max_pkt);
	smp_serial_decoder_feed(a, data, size, check_roundtrip, &sa);
	for (i = 0; i < size; i++)
		smp_serial_decoder_feed(b, data + i, 1, one, &sb);
	ta = smp_serial_decoder_stats(a);
	tb = smp_serial_decoder_stats(b);
	if (sa.n != sb.n || sa.fnv != sb.fnv || ta->packets != sa.n ||
	    memcmp(ta, tb, sizeof(*ta)) != 0)
		__builtin_trap();
	smp_serial_decoder_free(a);
	smp_serial_decoder_free(b);
	return 0;
}
