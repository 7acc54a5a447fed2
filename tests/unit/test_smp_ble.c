/*
 * Unit tests for common/smp_ble.c: write fragments at an ATT MTU, and
 * joining notifications into packets by the SMP header's length.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smp_ble.h"

#define MAXPKTS 32

struct got {
	int n;
	size_t len[MAXPKTS];
	uint8_t pkt[MAXPKTS][1024];
};

static void
collect(void *arg, const uint8_t *pkt, size_t len)
{
	struct got *g = arg;

	assert_true(g->n < MAXPKTS);
	assert_true(len <= sizeof(g->pkt[0]));
	g->len[g->n] = len;
	memcpy(g->pkt[g->n], pkt, len);
	g->n++;
}

/*
 * An SMP v1 read response (op 1), payload length plen, group 1, seq, id 0,
 * with payload bytes seq, seq+1, ...
 */
static size_t
mkpkt(uint8_t *b, size_t plen, uint8_t seq)
{
	size_t i;

	b[0] = 0x01;
	b[1] = 0x00;
	b[2] = (uint8_t)(plen >> 8);
	b[3] = (uint8_t)plen;
	b[4] = 0x00;
	b[5] = 0x01;
	b[6] = seq;
	b[7] = 0x00;
	for (i = 0; i < plen; i++)
		b[8 + i] = (uint8_t)(seq + i);
	return 8 + plen;
}

static void
test_fragments(void **state)
{
	size_t off, len;

	(void)state;
	/* MTU 23 carries 20 bytes per write. */
	assert_int_equal(smp_ble_fragments(0, 23), 0);
	assert_int_equal(smp_ble_fragments(1, 23), 1);
	assert_int_equal(smp_ble_fragments(20, 23), 1);
	assert_int_equal(smp_ble_fragments(21, 23), 2);
	assert_int_equal(smp_ble_fragments(252, 255), 1);
	assert_int_equal(smp_ble_fragments(253, 255), 2);
	/* Below the minimum MTU counts as 23. */
	assert_int_equal(smp_ble_fragments(40, 5), 2);
	smp_ble_fragment(45, 23, 0, &off, &len);
	assert_int_equal(off, 0);
	assert_int_equal(len, 20);
	smp_ble_fragment(45, 23, 2, &off, &len);
	assert_int_equal(off, 40);
	assert_int_equal(len, 5);
	smp_ble_fragment(45, 23, 3, &off, &len);
	assert_int_equal(off, 45);
	assert_int_equal(len, 0);
	smp_ble_fragment(40, 23, 1, &off, &len);
	assert_int_equal(off, 20);
	assert_int_equal(len, 20);
}

/* Fragments of every packet size cover it exactly, in order. */
static void
test_fragments_cover(void **state)
{
	size_t len, i, n, off, flen, next;
	uint16_t mtu;

	(void)state;
	for (mtu = 23; mtu <= 65; mtu += 14)
		for (len = 1; len < 400; len++) {
			n = smp_ble_fragments(len, mtu);
			next = 0;
			for (i = 0; i < n; i++) {
				smp_ble_fragment(len, mtu, i, &off, &flen);
				assert_int_equal(off, next);
				assert_true(flen > 0 && flen <= mtu - 3u);
				next += flen;
			}
			assert_int_equal(next, len);
		}
}

static void
test_split_header(void **state)
{
	uint8_t p[64];
	size_t n = mkpkt(p, 30, 7), i;
	struct smp_ble_reasm *r = smp_ble_reasm_new(512);
	struct got g = {0};

	(void)state;
	/* One byte per notification, the header itself split. */
	for (i = 0; i < n; i++) {
		assert_int_equal(smp_ble_reasm_feed(r, p + i, 1, collect, &g),
		                 0);
		assert_int_equal(g.n, i + 1 == n ? 1 : 0);
	}
	assert_int_equal(g.len[0], n);
	assert_memory_equal(g.pkt[0], p, n);
	/* Header split 3 + 5, then the payload. */
	assert_int_equal(smp_ble_reasm_feed(r, p, 3, collect, &g), 0);
	assert_int_equal(smp_ble_reasm_feed(r, p + 3, 5, collect, &g), 0);
	assert_int_equal(smp_ble_reasm_feed(r, p + 8, n - 8, collect, &g), 0);
	assert_int_equal(g.n, 2);
	assert_memory_equal(g.pkt[1], p, n);
	smp_ble_reasm_free(r);
}

static void
test_several_in_one(void **state)
{
	uint8_t b[256];
	size_t n = 0, a, c;
	struct smp_ble_reasm *r = smp_ble_reasm_new(512);
	struct got g = {0};

	(void)state;
	a = mkpkt(b, 5, 1);
	n = a;
	n += mkpkt(b + n, 0, 2); /* empty payload: header only */
	c = mkpkt(b + n, 40, 3);
	n += c;
	/* Two whole packets and the first 10 bytes of a third. */
	assert_int_equal(smp_ble_reasm_feed(r, b, a + 8 + 10, collect, &g), 0);
	assert_int_equal(g.n, 2);
	assert_int_equal(g.len[0], 13);
	assert_int_equal(g.len[1], 8);
	assert_int_equal(g.pkt[1][6], 2);
	assert_int_equal(
	    smp_ble_reasm_feed(r, b + a + 18, n - a - 18, collect, &g), 0);
	assert_int_equal(g.n, 3);
	assert_int_equal(g.len[2], c);
	assert_memory_equal(g.pkt[2], b + a + 8, c);
	smp_ble_reasm_free(r);
}

static void
test_oversized(void **state)
{
	uint8_t big[600], small[64];
	size_t nb = mkpkt(big, 100, 9), ns = mkpkt(small, 10, 4);
	struct smp_ble_reasm *r = smp_ble_reasm_new(64);
	struct got g = {0};

	(void)state;
	/* 108 bytes announced, 64 allowed: dropped, its tail skipped. */
	assert_int_equal(smp_ble_reasm_feed(r, big, 20, collect, &g), -1);
	assert_int_equal(smp_ble_reasm_feed(r, big + 20, 20, collect, &g), 0);
	assert_int_equal(smp_ble_reasm_feed(r, big + 40, nb - 40, collect, &g),
	                 0);
	assert_int_equal(g.n, 0);
	assert_int_equal(smp_ble_reasm_feed(r, small, ns, collect, &g), 0);
	assert_int_equal(g.n, 1);
	assert_memory_equal(g.pkt[0], small, ns);
	/* Exactly max_pkt is accepted. */
	nb = mkpkt(big, 56, 5);
	assert_int_equal(smp_ble_reasm_feed(r, big, nb, collect, &g), 0);
	assert_int_equal(g.n, 2);
	assert_int_equal(g.len[1], 64);
	smp_ble_reasm_free(r);
}

static void
test_bad_header(void **state)
{
	uint8_t p[64], junk[20];
	size_t n = mkpkt(p, 12, 3);
	struct smp_ble_reasm *r = smp_ble_reasm_new(512);
	struct got g = {0};

	(void)state;
	/* Reserved bits set in byte 0: not a header; the rest is dropped. */
	memset(junk, 0xff, sizeof(junk));
	assert_int_equal(smp_ble_reasm_feed(r, junk, sizeof(junk), collect, &g),
	                 -1);
	/* Version 2 (bits 3-4 = 10) and op 4 are not SMP either. */
	junk[0] = 0x10;
	assert_int_equal(smp_ble_reasm_feed(r, junk, 8, collect, &g), -1);
	junk[0] = 0x04;
	assert_int_equal(smp_ble_reasm_feed(r, junk, 8, collect, &g), -1);
	/* The next notification starts a packet again. */
	assert_int_equal(smp_ble_reasm_feed(r, p, n, collect, &g), 0);
	assert_int_equal(g.n, 1);
	/* SMP v2 (0x08 | op) is fine. */
	p[0] = 0x09;
	assert_int_equal(smp_ble_reasm_feed(r, p, n, collect, &g), 0);
	assert_int_equal(g.n, 2);
	smp_ble_reasm_free(r);
}

static void
test_reset(void **state)
{
	uint8_t p[64];
	size_t n = mkpkt(p, 12, 3);
	struct smp_ble_reasm *r = smp_ble_reasm_new(512);
	struct got g = {0};

	(void)state;
	assert_int_equal(smp_ble_reasm_feed(r, p, 10, collect, &g), 0);
	smp_ble_reasm_reset(r);
	assert_int_equal(smp_ble_reasm_feed(r, p, n, collect, &g), 0);
	assert_int_equal(g.n, 1);
	assert_memory_equal(g.pkt[0], p, n);
	smp_ble_reasm_free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fragments),
	    cmocka_unit_test(test_fragments_cover),
	    cmocka_unit_test(test_split_header),
	    cmocka_unit_test(test_several_in_one),
	    cmocka_unit_test(test_oversized),
	    cmocka_unit_test(test_bad_header),
	    cmocka_unit_test(test_reset),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
