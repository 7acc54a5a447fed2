/*
 * Unit tests for common/mcuboot.c: hand-assembled images with hashes
 * computed outside this code (openssl dgst), every error path through both
 * the in-memory and the streamed reader, and the version spellings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "mcuboot.h"

/*
 * The smallest image: a 32-byte header (hdr_size 0x20), a 4-byte body
 * de ad be ef, no protected TLVs, version 1.2.3+4, load address 0.
 */
#define G1_HEADER                                                              \
	0x3d, 0xb8, 0xf3, 0x96,     /* magic 0x96f3b83d */                     \
	    0x00, 0x00, 0x00, 0x00, /* load_addr */                            \
	    0x20, 0x00,             /* hdr_size 32 */                          \
	    0x00, 0x00,             /* protect_tlv_size */                     \
	    0x04, 0x00, 0x00, 0x00, /* img_size 4 */                           \
	    0x00, 0x00, 0x00, 0x00, /* flags */                                \
	    0x01, 0x02, 0x03, 0x00, /* major 1, minor 2, revision 3 */         \
	    0x04, 0x00, 0x00, 0x00, /* build 4 */                              \
	    0x00, 0x00, 0x00, 0x00  /* pad */

/*
 * SHA-256 of those 36 bytes, from
 *   printf '\x3d\xb8\xf3\x96...\xde\xad\xbe\xef' | openssl dgst -sha256
 */
#define G1_HASH                                                                \
	0x8a, 0x01, 0xe9, 0xa1, 0xf9, 0x6e, 0xf6, 0xad, 0xf2, 0xe6, 0xf5,      \
	    0x21, 0x8b, 0x2b, 0x1b, 0x1f, 0x0e, 0x4d, 0x69, 0x77, 0xe4, 0x7e,  \
	    0x35, 0x2c, 0xbd, 0x9c, 0x2d, 0x11, 0x3b, 0x8c, 0x94, 0xf5

static const uint8_t g1_hash[] = {G1_HASH};
static const uint8_t g1[] = {
    G1_HEADER, 0xde, 0xad, 0xbe, 0xef, /* body */
    0x07,      0x69, 0x28, 0x00,       /* TLV area: magic 0x6907, total 40 */
    0x10,      0x00, 0x20, 0x00,       /* type 0x10 (SHA-256), len 32 */
    G1_HASH,
};

/*
 * The same with a protected TLV area of 12 bytes (protect_tlv_size 0x0c):
 * 08 69 0c 00 (magic 0x6908, total 12), 50 00 04 00 (security counter,
 * len 4), 01 00 00 00.  The hash covers header + body + this area, 48
 * bytes, again from openssl dgst -sha256.
 */
static const uint8_t g2_hash[] = {
    0x8e, 0xe5, 0xa5, 0xb6, 0x68, 0x69, 0xf4, 0x77, 0xf3, 0x29, 0x0d,
    0x22, 0x3c, 0x48, 0xb8, 0xf5, 0x96, 0x48, 0x91, 0x4f, 0xaf, 0xc1,
    0x87, 0xb5, 0x10, 0xdf, 0x13, 0xd1, 0xbb, 0x1e, 0xaa, 0x1d};

static size_t
g2(uint8_t *b)
{
	static const uint8_t ptlv[] = {0x08, 0x69, 0x0c, 0x00, 0x50, 0x00,
	                               0x04, 0x00, 0x01, 0x00, 0x00, 0x00};
	static const uint8_t tlv[] = {0x07, 0x69, 0x28, 0x00,
	                              0x10, 0x00, 0x20, 0x00};

	memcpy(b, g1, 36);
	b[10] = 0x0c; /* protect_tlv_size */
	memcpy(b + 36, ptlv, sizeof(ptlv));
	memcpy(b + 48, tlv, sizeof(tlv));
	memcpy(b + 56, g2_hash, 32);
	return 88;
}

/* Field by field: struct padding is not part of the answer. */
static void
assert_same_image(const struct mcuboot_image *a, const struct mcuboot_image *b)
{
	assert_int_equal(a->load_addr, b->load_addr);
	assert_int_equal(a->hdr_size, b->hdr_size);
	assert_int_equal(a->protect_tlv_size, b->protect_tlv_size);
	assert_int_equal(a->img_size, b->img_size);
	assert_int_equal(a->flags, b->flags);
	assert_int_equal(a->version.major, b->version.major);
	assert_int_equal(a->version.minor, b->version.minor);
	assert_int_equal(a->version.revision, b->version.revision);
	assert_int_equal(a->version.build, b->version.build);
	assert_memory_equal(a->hash, b->hash, sizeof(a->hash));
	assert_int_equal(a->image_len, b->image_len);
	assert_int_equal(a->hash_checked, b->hash_checked);
}

/* Parse through both readers; they must agree. */
static int
both(const uint8_t *b, size_t n, struct mcuboot_image *img, char *err,
     size_t errcap)
{
	struct mcuboot_image a, s;
	struct mcuboot_stream *st;
	char e1[256] = "", e2[256] = "";
	int r1, r2;
	size_t i;

	r1 = mcuboot_parse(b, n, &a, e1, sizeof(e1));
	/* Streamed one byte at a time. */
	st = mcuboot_stream_new();
	r2 = 0;
	for (i = 0; i < n && r2 == 0; i++)
		r2 = mcuboot_stream_feed(st, b + i, 1, e2, sizeof(e2));
	if (r2 == 0)
		r2 = mcuboot_stream_finish(st, &s, e2, sizeof(e2));
	mcuboot_stream_free(st);
	assert_int_equal(r1, r2);
	if (r1 == 0) {
		assert_same_image(&a, &s);
		*img = a;
	} else {
		assert_true(e1[0] != '\0' && e2[0] != '\0');
		snprintf(err, errcap, "%s", e1);
	}
	return r1;
}

static void
test_golden(void **state)
{
	struct mcuboot_image img;
	char err[256];

	(void)state;
	assert_int_equal(both(g1, sizeof(g1), &img, err, sizeof(err)), 0);
	assert_int_equal(img.load_addr, 0);
	assert_int_equal(img.hdr_size, 32);
	assert_int_equal(img.protect_tlv_size, 0);
	assert_int_equal(img.img_size, 4);
	assert_int_equal(img.flags, 0);
	assert_int_equal(img.version.major, 1);
	assert_int_equal(img.version.minor, 2);
	assert_int_equal(img.version.revision, 3);
	assert_int_equal(img.version.build, 4);
	assert_memory_equal(img.hash, g1_hash, 32);
	assert_int_equal(img.image_len, sizeof(g1));
	assert_true(img.hash_checked);
}

static void
test_golden_protected(void **state)
{
	uint8_t b[128];
	size_t n = g2(b);
	struct mcuboot_image img;
	char err[256];

	(void)state;
	assert_int_equal(both(b, n, &img, err, sizeof(err)), 0);
	assert_int_equal(img.protect_tlv_size, 12);
	assert_memory_equal(img.hash, g2_hash, 32);
	assert_int_equal(img.image_len, 88);
}

/* Expect both readers to fail with msg in the error. */
static void
expect_err(const uint8_t *b, size_t n, const char *msg)
{
	struct mcuboot_image img;
	char err[256];

	assert_int_equal(both(b, n, &img, err, sizeof(err)), -1);
	if (strstr(err, msg) == NULL)
		fail_msg("error \"%s\" does not say \"%s\"", err, msg);
}

static void
test_header_errors(void **state)
{
	uint8_t b[256];

	(void)state;
	expect_err(g1, 0, "too short");
	expect_err(g1, 31, "too short");
	memcpy(b, g1, sizeof(g1));
	b[0] = 0x3e;
	expect_err(b, sizeof(g1), "bad image magic 0x96f3b83e");
	memcpy(b, g1, sizeof(g1));
	b[8] = 0x10; /* hdr_size 16 */
	expect_err(b, sizeof(g1), "header size 16 is smaller");
	memcpy(b, g1, sizeof(g1));
	b[10] = 0x02; /* protect_tlv_size 2 */
	expect_err(b, sizeof(g1), "protected TLV size 2");
	memcpy(b, g1, sizeof(g1));
	b[12] = 0x80; /* img_size 128: past the end */
	expect_err(b, sizeof(g1), "truncated");
	memcpy(b, g1, sizeof(g1));
	b[15] = 0xff; /* img_size near 4 GiB */
	expect_err(b, sizeof(g1), "truncated");
	memcpy(b, g1, sizeof(g1));
	b[9] = 0xff; /* hdr_size 0xff20 */
	expect_err(b, sizeof(g1), "truncated");
	/* The header alone, and the image without its TLV area. */
	expect_err(g1, 32, "truncated");
	expect_err(g1, 36, "truncated");
	expect_err(g1, 38, "truncated");
}

static void
test_tlv_errors(void **state)
{
	uint8_t b[256];

	(void)state;
	expect_err(g1, sizeof(g1) - 1, "truncated");
	memcpy(b, g1, sizeof(g1));
	b[36] = 0x06; /* magic 0x6906 */
	expect_err(b, sizeof(g1), "bad TLV area magic 0x6906 at offset 36");
	memcpy(b, g1, sizeof(g1));
	b[36] = 0x08; /* a protected area the header does not announce */
	expect_err(b, sizeof(g1), "protect_tlv_size 0");
	memcpy(b, g1, sizeof(g1));
	b[38] = 0x03; /* total 3 */
	expect_err(b, sizeof(g1), "smaller than its 4-byte header");
	memcpy(b, g1, sizeof(g1));
	b[38] = 0x29; /* total 41: one byte more than the file has */
	expect_err(b, sizeof(g1), "truncated");
	memcpy(b, g1, sizeof(g1));
	b[42] = 0x21; /* the hash entry says 33 bytes */
	expect_err(b, sizeof(g1), "runs past the end");
	memcpy(b, g1, sizeof(g1));
	b[40] = 0x11; /* SHA-384 type: no SHA-256 left */
	expect_err(b, sizeof(g1), "no SHA-256 TLV");
	/* Two spare bytes in the area: a truncated entry header. */
	memcpy(b, g1, sizeof(g1));
	b[38] = 0x2a;
	b[sizeof(g1)] = 0x01;
	b[sizeof(g1) + 1] = 0x00;
	expect_err(b, sizeof(g1) + 2, "truncated entry header");
	/* Trailing data after a complete TLV area. */
	memcpy(b, g1, sizeof(g1));
	b[sizeof(g1)] = 0xff;
	expect_err(b, sizeof(g1) + 1, "1 bytes of trailing data");
}

static void
test_hash_errors(void **state)
{
	uint8_t b[256];
	size_t n;

	(void)state;
	memcpy(b, g1, sizeof(g1));
	b[33] ^= 1; /* body */
	expect_err(b, sizeof(g1), "image hash mismatch");
	memcpy(b, g1, sizeof(g1));
	b[20] = 9; /* version is in the hashed header */
	expect_err(b, sizeof(g1), "image hash mismatch");
	memcpy(b, g1, sizeof(g1));
	b[sizeof(g1) - 1] ^= 0x80; /* the TLV itself */
	expect_err(b, sizeof(g1), "image hash mismatch");
	/* A 16-byte SHA-256 TLV: area total 24. */
	memcpy(b, g1, 40);
	b[38] = 24;
	memcpy(b + 40, "\x10\x00\x10\x00", 4);
	memset(b + 44, 0, 16);
	expect_err(b, 60, "SHA-256 TLV has length 16");
	/* Two SHA-256 TLVs: area total 76. */
	memcpy(b, g1, sizeof(g1));
	b[38] = 76;
	memcpy(b + sizeof(g1), g1 + 40, 36);
	expect_err(b, sizeof(g1) + 36, "more than one SHA-256 TLV");
	/* The protected area: wrong magic, total mismatch, hash inside. */
	n = g2(b);
	b[36] = 0x07;
	expect_err(b, n, "bad protected TLV area magic 0x6907");
	n = g2(b);
	b[38] = 0x10;
	expect_err(b, n, "does not match the header's protect_tlv_size 12");
	n = g2(b);
	b[42] = 0x05; /* the counter entry says 5 bytes of 4 */
	expect_err(b, n, "protected TLV area: entry type 0x50");
	n = g2(b);
	b[40] = 0x10;
	expect_err(b, n, "SHA-256 TLV in the protected TLV area");
}

/* Encrypted images: imgtool hashed the plaintext, nothing to compare. */
static void
test_encrypted(void **state)
{
	uint8_t b[256];
	struct mcuboot_image img;
	char err[256];

	(void)state;
	memcpy(b, g1, sizeof(g1));
	b[16] = 0x04; /* IMAGE_F_ENCRYPTED_AES128 */
	assert_int_equal(both(b, sizeof(g1), &img, err, sizeof(err)), 0);
	assert_false(img.hash_checked);
	assert_memory_equal(img.hash, g1_hash, 32);
}

static void
test_stream_slices(void **state)
{
	uint8_t b[128];
	size_t n = g2(b), k;
	struct mcuboot_stream *s;
	struct mcuboot_image img;
	char err[256];

	(void)state;
	/* Every split point of the image into two feeds. */
	for (k = 0; k <= n; k++) {
		s = mcuboot_stream_new();
		assert_int_equal(mcuboot_stream_feed(s, b, k, err, sizeof(err)),
		                 0);
		assert_int_equal(
		    mcuboot_stream_feed(s, b + k, n - k, err, sizeof(err)), 0);
		assert_int_equal(
		    mcuboot_stream_finish(s, &img, err, sizeof(err)), 0);
		assert_memory_equal(img.hash, g2_hash, 32);
		mcuboot_stream_free(s);
	}
	/* After a failure the stream stays failed. */
	s = mcuboot_stream_new();
	b[0] = 0;
	assert_int_equal(mcuboot_stream_feed(s, b, 32, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "bad image magic"));
	err[0] = '\0';
	assert_int_equal(mcuboot_stream_feed(s, b + 32, 1, err, sizeof(err)),
	                 -1);
	assert_non_null(strstr(err, "bad image magic"));
	assert_int_equal(mcuboot_stream_finish(s, &img, err, sizeof(err)), -1);
	mcuboot_stream_free(s);
	/* Finishing twice, or feeding after finishing, fails. */
	s = mcuboot_stream_new();
	assert_int_equal(mcuboot_stream_feed(s, g1, sizeof(g1), NULL, 0), 0);
	assert_int_equal(mcuboot_stream_finish(s, &img, NULL, 0), 0);
	assert_int_equal(mcuboot_stream_finish(s, &img, err, sizeof(err)), -1);
	assert_int_equal(mcuboot_stream_feed(s, g1, 1, err, sizeof(err)), -1);
	mcuboot_stream_free(s);
	/* An empty stream. */
	s = mcuboot_stream_new();
	assert_int_equal(mcuboot_stream_finish(s, &img, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "too short"));
	mcuboot_stream_free(s);
}

static void
le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static long
maxrss_kb(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

/* A 64 MiB image streamed in 64 KiB pieces, never held whole. */
static void
test_stream_large(void **state)
{
	const uint32_t body = 64u << 20;
	static uint8_t chunk[65536];
	uint8_t hdr[0x200], tlv[40], md[32];
	unsigned int mdlen;
	uint32_t off, x = 1;
	size_t i;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	struct mcuboot_stream *s = mcuboot_stream_new();
	struct mcuboot_image img;
	char err[256];
	long rss0;

	(void)state;
	rss0 = maxrss_kb();
	memset(hdr, 0, sizeof(hdr));
	memcpy(hdr, g1, 32);
	hdr[8] = 0x00; /* hdr_size 0x200 */
	hdr[9] = 0x02;
	le32(hdr + 12, body);
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	EVP_DigestUpdate(ctx, hdr, sizeof(hdr));
	assert_int_equal(
	    mcuboot_stream_feed(s, hdr, sizeof(hdr), err, sizeof(err)), 0);
	for (off = 0; off < body; off += sizeof(chunk)) {
		for (i = 0; i < sizeof(chunk); i++) {
			x = x * 1103515245u + 12345u;
			chunk[i] = (uint8_t)(x >> 16);
		}
		EVP_DigestUpdate(ctx, chunk, sizeof(chunk));
		assert_int_equal(mcuboot_stream_feed(s, chunk, sizeof(chunk),
		                                     err, sizeof(err)),
		                 0);
	}
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	memcpy(tlv, g1 + 36, 8);
	memcpy(tlv + 8, md, 32);
	assert_int_equal(
	    mcuboot_stream_feed(s, tlv, sizeof(tlv), err, sizeof(err)), 0);
	assert_int_equal(mcuboot_stream_finish(s, &img, err, sizeof(err)), 0);
	assert_int_equal(img.img_size, body);
	assert_int_equal(img.image_len, 0x200 + body + 40);
	assert_memory_equal(img.hash, md, 32);
	mcuboot_stream_free(s);
	/* Far less than the image grew the process. */
	assert_true(maxrss_kb() - rss0 < 16 * 1024);
}

static void
test_version_format(void **state)
{
	struct mcuboot_version v = {1, 2, 3, 4}, z = {2, 0, 0, 0},
	                       m = {255, 255, 65535, 4294967295u};
	char b[MCUBOOT_VERSION_MAX];

	(void)state;
	mcuboot_version_format(&v, MCUBOOT_SPELL_IMGTOOL, b, sizeof(b));
	assert_string_equal(b, "1.2.3+4");
	mcuboot_version_format(&v, MCUBOOT_SPELL_RDFM, b, sizeof(b));
	assert_string_equal(b, "1.2.3+4");
	mcuboot_version_format(&v, MCUBOOT_SPELL_ZEPHYR, b, sizeof(b));
	assert_string_equal(b, "1.2.3.4");
	mcuboot_version_format(&z, MCUBOOT_SPELL_IMGTOOL, b, sizeof(b));
	assert_string_equal(b, "2.0.0+0");
	mcuboot_version_format(&z, MCUBOOT_SPELL_RDFM, b, sizeof(b));
	assert_string_equal(b, "2.0.0");
	mcuboot_version_format(&z, MCUBOOT_SPELL_ZEPHYR, b, sizeof(b));
	assert_string_equal(b, "2.0.0");
	mcuboot_version_format(&m, MCUBOOT_SPELL_ZEPHYR, b, sizeof(b));
	assert_string_equal(b, "255.255.65535.4294967295");
	assert_true(strlen(b) < MCUBOOT_VERSION_MAX);
	/* A short buffer gets a terminated, cut string. */
	mcuboot_version_format(&v, MCUBOOT_SPELL_IMGTOOL, b, 4);
	assert_string_equal(b, "1.2");
}

static void
test_version_parse(void **state)
{
	static const char *bad[] = {"",
	                            "1",
	                            "1.2",
	                            "1.2.",
	                            "1.2.3.",
	                            "1.2.3+",
	                            "1.2.3-4",
	                            "1.2.3+4.5",
	                            "1.2.3.4.5",
	                            "256.0.0",
	                            "0.256.0",
	                            "0.0.65536",
	                            "0.0.0+4294967296",
	                            "0.0.0.99999999999",
	                            "a.b.c",
	                            " 1.2.3",
	                            "1.2.3 ",
	                            "+1.2.3",
	                            "1.-2.3",
	                            "1..3",
	                            "v1.2.3",
	                            "1.2.3+0x4"};
	struct mcuboot_version v;
	char b[MCUBOOT_VERSION_MAX];
	size_t i;

	(void)state;
	assert_int_equal(mcuboot_version_parse("1.2.3", &v), 0);
	assert_true(v.major == 1 && v.minor == 2 && v.revision == 3 &&
	            v.build == 0);
	assert_int_equal(mcuboot_version_parse("1.2.3+4", &v), 0);
	assert_int_equal(v.build, 4);
	assert_int_equal(mcuboot_version_parse("1.2.3.4", &v), 0);
	assert_int_equal(v.build, 4);
	assert_int_equal(mcuboot_version_parse("255.255.65535+4294967295", &v),
	                 0);
	assert_true(v.major == 255 && v.minor == 255 && v.revision == 65535 &&
	            v.build == 4294967295u);
	assert_int_equal(mcuboot_version_parse("007.0.0", &v), 0);
	assert_int_equal(v.major, 7);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (mcuboot_version_parse(bad[i], &v) == 0)
			fail_msg("accepted \"%s\"", bad[i]);
	assert_int_equal(mcuboot_version_parse(NULL, &v), -1);

	assert_int_equal(mcuboot_version_convert("1.2.3.4", MCUBOOT_SPELL_RDFM,
	                                         b, sizeof(b)),
	                 0);
	assert_string_equal(b, "1.2.3+4");
	assert_int_equal(mcuboot_version_convert("2.0.0.0", MCUBOOT_SPELL_RDFM,
	                                         b, sizeof(b)),
	                 0);
	assert_string_equal(b, "2.0.0");
	assert_int_equal(mcuboot_version_convert("2.0.0", MCUBOOT_SPELL_IMGTOOL,
	                                         b, sizeof(b)),
	                 0);
	assert_string_equal(b, "2.0.0+0");
	assert_int_equal(mcuboot_version_convert(
	                     "1.2.3+4", MCUBOOT_SPELL_ZEPHYR, b, sizeof(b)),
	                 0);
	assert_string_equal(b, "1.2.3.4");
	/* Exactly enough room, and one byte less. */
	assert_int_equal(
	    mcuboot_version_convert("1.2.3+4", MCUBOOT_SPELL_ZEPHYR, b, 8), 0);
	assert_int_equal(
	    mcuboot_version_convert("1.2.3+4", MCUBOOT_SPELL_ZEPHYR, b, 7), -1);
	assert_int_equal(
	    mcuboot_version_convert("1.2", MCUBOOT_SPELL_ZEPHYR, b, sizeof(b)),
	    -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_golden),
	    cmocka_unit_test(test_golden_protected),
	    cmocka_unit_test(test_header_errors),
	    cmocka_unit_test(test_tlv_errors),
	    cmocka_unit_test(test_hash_errors),
	    cmocka_unit_test(test_encrypted),
	    cmocka_unit_test(test_stream_slices),
	    cmocka_unit_test(test_stream_large),
	    cmocka_unit_test(test_version_format),
	    cmocka_unit_test(test_version_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
