/*
 * Unit tests for common/smp.c: golden packets written by hand from the SMP
 * and CBOR format descriptions (each byte annotated), round trips between
 * the client and server halves, every error path, and the upload planner's
 * boundary.  With SMP_CORPUS_DIR set, also writes the fuzzers' seed corpora.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smp.h"
#include "smp_server.h"

#define HASH32                                                                 \
	0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a,      \
	    0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15,  \
	    0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f

static const uint8_t hash32[SMP_HASH_LEN] = {HASH32};

/* Save a packet as a seed for a fuzzer when SMP_CORPUS_DIR is set. */
static void
seed(const char *fuzzer, const char *name, const uint8_t *p, size_t n)
{
	const char *dir = getenv("SMP_CORPUS_DIR");
	char path[512];
	FILE *f;

	if (dir == NULL)
		return;
	snprintf(path, sizeof(path), "%s/%s/%s", dir, fuzzer, name);
	if ((f = fopen(path, "wb")) == NULL)
		return;
	fwrite(p, 1, n, f);
	fclose(f);
}

/* Requests we build, against hand-written bytes. */

static void
test_req_echo_golden(void **state)
{
	static const uint8_t want[] = {
	    0x02,            /* op 2 write, version 0 (v1) */
	    0x00,            /* flags */
	    0x00, 0x06,      /* payload length 6, big-endian */
	    0x00, 0x00,      /* group 0 (OS), big-endian */
	    0x42,            /* sequence */
	    0x00,            /* id 0: echo */
	    0xa1,            /* map of 1 pair */
	    0x61, 'd',       /* text(1) "d" */
	    0x62, 'h',  'i', /* text(2) "hi" */
	};
	uint8_t buf[64];
	ssize_t n;

	(void)state;
	n = smp_req_echo(buf, sizeof(buf), SMP_V1, 0x42, "hi");
	assert_int_equal(n, sizeof(want));
	assert_memory_equal(buf, want, sizeof(want));
	seed("fuzz_smp_req", "echo", buf, (size_t)n);

	/* v2 sets bits 3-4 of byte 0 to 1: 0x02 | 1 << 3. */
	n = smp_req_echo(buf, sizeof(buf), SMP_V2, 0x42, "hi");
	assert_int_equal(n, sizeof(want));
	assert_int_equal(buf[0], 0x0a);
	assert_memory_equal(buf + 1, want + 1, sizeof(want) - 1);

	/* Exactly the size fits, one byte less does not. */
	assert_int_equal(smp_req_echo(buf, sizeof(want), SMP_V1, 0, "hi"),
	                 sizeof(want));
	assert_int_equal(smp_req_echo(buf, sizeof(want) - 1, SMP_V1, 0, "hi"),
	                 -1);
	assert_int_equal(smp_req_echo(buf, 4, SMP_V1, 0, "hi"), -1);
	assert_int_equal(smp_req_echo(buf, sizeof(buf), 2, 0, "hi"), -1);
	assert_int_equal(smp_req_echo(buf, sizeof(buf), SMP_V1, 0, NULL), -1);
}

static void
test_req_empty_golden(void **state)
{
	/* op, flags, len (2), group (2), seq, id, then a0 = empty map */
	static const uint8_t reset[] = {0x02, 0, 0x00, 0x01, 0x00,
	                                0x00, 7, 0x05, 0xa0};
	static const uint8_t params[] = {0x00, 0, 0x00, 0x01, 0x00,
	                                 0x00, 8, 0x06, 0xa0};
	static const uint8_t state_read[] = {
	    0x08, 0, 0x00, 0x01, 0x00,
	    0x01, 9, 0x00, 0xa0}; /* v2: 0x00 | 1 << 3 */
	static const uint8_t erase[] = {0x02, 0,  0x00, 0x01, 0x00,
	                                0x01, 10, 0x05, 0xa0};
	uint8_t buf[16];

	(void)state;
	assert_int_equal(smp_req_reset(buf, sizeof(buf), SMP_V1, 7), 9);
	assert_memory_equal(buf, reset, 9);
	seed("fuzz_smp_req", "reset", buf, 9);
	assert_int_equal(smp_req_params(buf, sizeof(buf), SMP_V1, 8), 9);
	assert_memory_equal(buf, params, 9);
	seed("fuzz_smp_req", "params", buf, 9);
	assert_int_equal(smp_req_image_state_read(buf, sizeof(buf), SMP_V2, 9),
	                 9);
	assert_memory_equal(buf, state_read, 9);
	seed("fuzz_smp_req", "state_read", buf, 9);
	assert_int_equal(smp_req_image_erase(buf, sizeof(buf), SMP_V1, 10), 9);
	assert_memory_equal(buf, erase, 9);
	seed("fuzz_smp_req", "erase", buf, 9);
	assert_int_equal(smp_req_reset(buf, 8, SMP_V1, 7), -1);
}

static void
test_req_state_write_golden(void **state)
{
	static const uint8_t test[] = {
	    0x02, 0x00, 0x00,   0x31,      /* write v1, length 49 */
	    0x00, 0x01, 0x03,   0x00,      /* group 1 (image), seq 3, id 0 */
	    0xa2,                          /* map of 2 pairs */
	    0x64, 'h',  'a',    's',  'h', /* text(4) "hash" */
	    0x58, 0x20, HASH32,            /* bytes, 1-byte length 32 */
	    0x67, 'c',  'o',    'n',  'f', 'i', 'r', 'm', /* text(7) */
	    0xf4,                                         /* false */
	};
	static const uint8_t confirm[] = {
	    0x02, 0x00, 0x00, 0x0a, 0x00, 0x01, 0x04, 0x00,       /* len 10 */
	    0xa1,                                                 /* map(1) */
	    0x67, 'c',  'o',  'n',  'f',  'i',  'r',  'm',  0xf5, /* true */
	};
	uint8_t buf[128];

	(void)state;
	assert_int_equal(sizeof(test), 8 + 49);
	assert_int_equal(smp_req_image_state_write(buf, sizeof(buf), SMP_V1, 3,
	                                           hash32, false),
	                 sizeof(test));
	assert_memory_equal(buf, test, sizeof(test));
	seed("fuzz_smp_req", "state_test", buf, sizeof(test));
	assert_int_equal(
	    smp_req_image_state_write(buf, sizeof(buf), SMP_V1, 4, NULL, true),
	    sizeof(confirm));
	assert_memory_equal(buf, confirm, sizeof(confirm));
	seed("fuzz_smp_req", "state_confirm", buf, sizeof(confirm));
	/* Testing needs a hash. */
	assert_int_equal(
	    smp_req_image_state_write(buf, sizeof(buf), SMP_V1, 4, NULL, false),
	    -1);
	assert_non_null(strstr(smp_error_detail(), "hash"));
}

static void
test_req_upload_golden(void **state)
{
	static const uint8_t first[] = {
	    0x02, 0x00, 0x00, 0x43, /* write v1, payload 67 */
	    0x00, 0x01, 0x05, 0x01, /* group 1, seq 5, id 1 upload */
	    0xa5,                   /* map of 5 pairs */
	    0x65, 'i',  'm',  'a',  'g',  'e',  0x00,   /* "image": 0 */
	    0x63, 'l',  'e',  'n',  0x19, 0x01, 0x2c,   /* "len": 300 (2 B) */
	    0x63, 'o',  'f',  'f',  0x00,               /* "off": 0 */
	    0x63, 's',  'h',  'a',  0x58, 0x20, HASH32, /* "sha": h'..' */
	    0x64, 'd',  'a',  't',  'a',  0x43, 'a',    'b', 'c', /* bytes(3) */
	};
	static const uint8_t later[] = {
	    0x02, 0x00, 0x00, 0x10,                   /* write v1, payload 16 */
	    0x00, 0x01, 0x06, 0x01,                   /* group 1, seq 6, id 1 */
	    0xa2,                                     /* map(2) */
	    0x63, 'o',  'f',  'f',  0x19, 0x01, 0x00, /* "off": 256 */
	    0x64, 'd',  'a',  't',  'a',  0x42, 0x01, 0x02, /* h'0102' */
	};
	struct smp_upload_req q = {0};
	uint8_t buf[128];
	static const uint8_t d2[] = {1, 2};

	(void)state;
	assert_int_equal(sizeof(first), 8 + 67);
	q.first = true;
	q.image = 0;
	q.len = 300;
	q.sha = hash32;
	q.off = 0;
	q.data = (const uint8_t *)"abc";
	q.data_len = 3;
	assert_int_equal(smp_req_image_upload(buf, sizeof(buf), SMP_V1, 5, &q),
	                 sizeof(first));
	assert_memory_equal(buf, first, sizeof(first));
	seed("fuzz_smp_req", "upload_first", buf, sizeof(first));

	memset(&q, 0, sizeof(q));
	q.off = 256;
	q.data = d2;
	q.data_len = 2;
	assert_int_equal(smp_req_image_upload(buf, sizeof(buf), SMP_V1, 6, &q),
	                 sizeof(later));
	assert_memory_equal(buf, later, sizeof(later));
	seed("fuzz_smp_req", "upload_later", buf, sizeof(later));

	q.data = NULL;
	assert_int_equal(smp_req_image_upload(buf, sizeof(buf), SMP_V1, 6, &q),
	                 -1);
}

static void
test_hdr(void **state)
{
	static const uint8_t raw[] = {0x0b, 0x5a, 0x12, 0x34,
	                              0xab, 0xcd, 0xfe, 0x07};
	struct smp_hdr h;
	uint8_t out[SMP_HDR_SIZE];

	(void)state;
	assert_int_equal(smp_hdr_decode(raw, sizeof(raw), &h), SMP_OK);
	assert_int_equal(h.op, SMP_OP_WRITE_RSP);
	assert_int_equal(h.version, SMP_V2);
	assert_int_equal(h.flags, 0x5a);
	assert_int_equal(h.len, 0x1234);
	assert_int_equal(h.group, 0xabcd);
	assert_int_equal(h.seq, 0xfe);
	assert_int_equal(h.id, 7);
	smp_hdr_encode(&h, out);
	assert_memory_equal(out, raw, sizeof(raw));
	assert_int_equal(smp_packet_len(raw, 8), 8 + 0x1234);
	assert_int_equal(smp_packet_len(raw, 7), 0);
	assert_int_equal(smp_hdr_decode(raw, 7, &h), SMP_E_SHORT);
	/* Version 2 (bits 3-4 = 2) does not exist. */
	assert_int_equal(
	    smp_hdr_decode((const uint8_t[]){0x11, 0, 0, 0, 0, 0, 0, 0}, 8, &h),
	    SMP_E_HEADER);
	/* op 4..7 do not exist. */
	assert_int_equal(
	    smp_hdr_decode((const uint8_t[]){0x04, 0, 0, 0, 0, 0, 0, 0}, 8, &h),
	    SMP_E_HEADER);
}

/* Responses written by hand, parsed by the client. */

/* A Zephyr-style image list reply: every map indefinite-length. */
static const uint8_t state_reply[] = {
    0x01, 0x00, 0x00, 0x8f, /* read response v1, payload 143 */
    0x00, 0x01, 0x11, 0x00, /* group 1 image, seq 0x11, id 0 state */
    0xbf,                   /* indefinite map */
    0x66, 'i',  'm',  'a',  'g', 'e',  's',          /* "images" */
    0x9f,                                            /* indefinite array */
    0xbf,                                            /* indefinite map */
    0x65, 'i',  'm',  'a',  'g', 'e',  0x00,         /* "image": 0 */
    0x64, 's',  'l',  'o',  't', 0x00,               /* "slot": 0 */
    0x67, 'v',  'e',  'r',  's', 'i',  'o',  'n',    /* "version" */
    0x67, '1',  '.',  '2',  '.', '3',  '.',  '4',    /* "1.2.3.4" */
    0x64, 'h',  'a',  's',  'h', 0x58, 0x20, HASH32, /* "hash": h'00..1f' */
    0x68, 'b',  'o',  'o',  't', 'a',  'b',  'l',    'e',  0xf5, /* true */
    0x67, 'p',  'e',  'n',  'd', 'i',  'n',  'g',    0xf4,       /* false */
    0x69, 'c',  'o',  'n',  'f', 'i',  'r',  'm',    'e',  'd',  0xf5,
    0x66, 'a',  'c',  't',  'i', 'v',  'e',  0xf5,   0x69, 'p',  'e',
    'r',  'm',  'a',  'n',  'e', 'n',  't',  0xf4,   0xff, /* end of the image
                                                              map */
    0xff, /* end of the array */
    0x6b, 's',  'p',  'l',  'i', 't',  'S',  't',    'a',  't',  'u',
    's',  0x00, 0xff, /* end of the payload map */
};

static void
test_rsp_state_golden(void **state)
{
	struct smp_image_list l;
	struct smp_err e;
	const struct smp_image_slot *s = &l.slots[0];

	(void)state;
	assert_int_equal(sizeof(state_reply), 8 + 143);
	assert_int_equal(
	    smp_rsp_image_state(state_reply, sizeof(state_reply), &e, &l),
	    SMP_OK);
	assert_int_equal(l.n, 1);
	assert_int_equal(s->image, 0);
	assert_int_equal(s->slot, 0);
	assert_string_equal(s->version, "1.2.3.4");
	assert_true(s->has_hash);
	assert_memory_equal(s->hash, hash32, SMP_HASH_LEN);
	assert_true(s->bootable);
	assert_false(s->pending);
	assert_true(s->confirmed);
	assert_true(s->active);
	assert_false(s->permanent);
	assert_int_equal(e.rc, 0);
	seed("fuzz_smp_rsp", "state_indef", state_reply, sizeof(state_reply));
}

/* Copy a packet, fixing the header length to the payload given. */
static size_t
mkpkt(uint8_t *out, uint8_t op_ver, uint16_t group, uint8_t id,
      const uint8_t *payload, size_t plen)
{
	out[0] = op_ver;
	out[1] = 0;
	out[2] = (uint8_t)(plen >> 8);
	out[3] = (uint8_t)plen;
	out[4] = (uint8_t)(group >> 8);
	out[5] = (uint8_t)group;
	out[6] = 0;
	out[7] = id;
	memcpy(out + 8, payload, plen);
	return 8 + plen;
}

#define UPLOAD_RSP(pkt, payload)                                               \
	mkpkt(pkt, 0x03, SMP_GROUP_IMAGE, SMP_IMAGE_UPLOAD, payload,           \
	      sizeof(payload))

static int
parse_upload(const uint8_t *payload, size_t plen, struct smp_upload_rsp *r,
             struct smp_err *e)
{
	uint8_t pkt[8192];
	size_t n;

	assert_true(plen <= sizeof(pkt) - SMP_HDR_SIZE);
	n = mkpkt(pkt, 0x03, SMP_GROUP_IMAGE, SMP_IMAGE_UPLOAD, payload, plen);

	return smp_rsp_image_upload(pkt, n, e, r);
}

#define PARSE_UPLOAD(p, r, e) parse_upload(p, sizeof(p), r, e)

static void
test_rsp_errors_v1_v2(void **state)
{
	/* {"rc": 3, "rsn": "magic mismatch"} definite */
	static const uint8_t v1[] = {
	    0xa2, 0x62, 'r', 'c', 0x03, 0x63, 'r', 's', 'n', 0x6e, 'm', 'a',
	    'g',  'i',  'c', ' ', 'm',  'i',  's', 'm', 'a', 't',  'c', 'h'};
	/* {"err": {"group": 1, "rc": 9}} */
	static const uint8_t v2[] = {0xa1, 0x63, 'e', 'r', 'r', 0xa2,
	                             0x65, 'g',  'r', 'o', 'u', 'p',
	                             0x01, 0x62, 'r', 'c', 0x09};
	/* {"rc": 0, "off": 10}: rc 0 is success */
	static const uint8_t rc0[] = {0xa2, 0x62, 'r', 'c', 0x00,
	                              0x63, 'o',  'f', 'f', 0x0a};
	/* {"err": {"group": 1, "rc": 0}, "off": 1}: no error either */
	static const uint8_t err0[] = {
	    0xa2, 0x63, 'e',  'r', 'r', 0xa2, 0x65, 'g', 'r', 'o', 'u',
	    'p',  0x01, 0x62, 'r', 'c', 0x00, 0x63, 'o', 'f', 'f', 0x01};
	/* {"rc": -1} (negint 0x20 = -1) */
	static const uint8_t neg[] = {0xa1, 0x62, 'r', 'c', 0x20};
	/* {"err": {"rc": 9}}: group missing */
	static const uint8_t nogroup[] = {0xa1, 0x63, 'e', 'r', 'r',
	                                  0xa1, 0x62, 'r', 'c', 0x09};
	/* {"err": 5}: not a map */
	static const uint8_t errint[] = {0xa1, 0x63, 'e', 'r', 'r', 0x05};
	/* {"rc": "x"} */
	static const uint8_t rctext[] = {0xa1, 0x62, 'r', 'c', 0x61, 'x'};
	/* {"rc": 4294967296} does not fit an int */
	static const uint8_t rcbig[] = {0xa1, 0x62, 'r', 'c', 0x1b, 0, 0,
	                                0,    1,    0,   0,   0,    0};
	struct smp_upload_rsp r;
	struct smp_err e;
	char s[128];
	uint8_t pkt[64];
	size_t n;

	(void)state;
	assert_int_equal(PARSE_UPLOAD(v1, &r, &e), SMP_E_BOARD);
	assert_false(e.v2);
	assert_int_equal(e.rc, 3);
	assert_string_equal(e.rsn, "magic mismatch");
	assert_string_equal(smp_err_str(&e, s, sizeof(s)),
	                    "rc 3 (invalid value): magic mismatch");
	n = UPLOAD_RSP(pkt, v1);
	seed("fuzz_smp_rsp", "err_v1", pkt, n);

	assert_int_equal(PARSE_UPLOAD(v2, &r, &e), SMP_E_BOARD);
	assert_true(e.v2);
	assert_int_equal(e.group, 1);
	assert_int_equal(e.rc, 9);
	assert_string_equal(smp_err_str(&e, s, sizeof(s)),
	                    "image group rc 9 (no free slot)");
	n = UPLOAD_RSP(pkt, v2);
	seed("fuzz_smp_rsp", "err_v2", pkt, n);

	assert_int_equal(PARSE_UPLOAD(rc0, &r, &e), SMP_OK);
	assert_int_equal(r.off, 10);
	assert_int_equal(PARSE_UPLOAD(err0, &r, &e), SMP_OK);
	assert_int_equal(r.off, 1);
	assert_int_equal(PARSE_UPLOAD(neg, &r, &e), SMP_E_BOARD);
	assert_int_equal(e.rc, -1);
	assert_int_equal(PARSE_UPLOAD(nogroup, &r, &e), SMP_E_MISSING);
	assert_int_equal(PARSE_UPLOAD(errint, &r, &e), SMP_E_TYPE);
	assert_int_equal(PARSE_UPLOAD(rctext, &r, &e), SMP_E_TYPE);
	assert_int_equal(PARSE_UPLOAD(rcbig, &r, &e), SMP_E_RANGE);
	/* err may be NULL. */
	assert_int_equal(PARSE_UPLOAD(v2, &r, NULL), SMP_E_BOARD);

	/* Other groups and unknown codes still read. */
	e.v2 = true;
	e.group = 9;
	e.rc = 2;
	e.rsn[0] = '\0';
	assert_string_equal(smp_err_str(&e, s, sizeof(s)), "group 9 rc 2");
	e.group = 0;
	assert_string_equal(smp_err_str(&e, s, sizeof(s)),
	                    "os group rc 2 (invalid format)");
	assert_string_equal(smp_rc_str(8), "not supported");
	assert_string_equal(smp_rc_str(99), "unknown rc");
	assert_string_equal(smp_status_str(SMP_E_CBOR),
	                    "payload is not one well-formed CBOR map");
}

static void
test_rsp_rsn_truncated(void **state)
{
	uint8_t p[128];
	struct smp_upload_rsp r;
	struct smp_err e;
	size_t i;

	(void)state;
	/* {"rc": 1, "rsn": 100 x 'a'}: the reason is cut, not an error. */
	p[0] = 0xa2;
	memcpy(p + 1, "\x62rc\x01\x63rsn\x78\x64", 10);
	for (i = 0; i < 100; i++)
		p[11 + i] = 'a';
	assert_int_equal(parse_upload(p, 111, &r, &e), SMP_E_BOARD);
	assert_int_equal(strlen(e.rsn), SMP_RSN_STRLEN - 1);
}

static void
test_rsp_int_widths(void **state)
{
	/* "off" as 1-, 2-, 4- and 8-byte integers, all 256 or less. */
	static const uint8_t w1[] = {0xa1, 0x63, 'o', 'f', 'f', 0x18, 0xff};
	static const uint8_t w4[] = {0xa1, 0x63, 'o', 'f', 'f',
	                             0x1a, 0,    0,   1,   0};
	static const uint8_t w8[] = {0xa1, 0x63, 'o', 'f', 'f', 0x1b, 0,
	                             0,    0,    0,   0,   0,   1,    0};
	static const uint8_t max32[] = {0xa1, 0x63, 'o',  'f',  'f',
	                                0x1a, 0xff, 0xff, 0xff, 0xff};
	/* 2^32 overflows the uint32 field */
	static const uint8_t over[] = {0xa1, 0x63, 'o', 'f', 'f', 0x1b, 0,
	                               0,    0,    1,   0,   0,   0,    0};
	static const uint8_t negative[] = {0xa1, 0x63, 'o', 'f', 'f', 0x20};
	static const uint8_t text[] = {0xa1, 0x63, 'o', 'f', 'f', 0x61, '1'};
	static const uint8_t flt[] = {0xa1, 0x63, 'o',  'f',
	                              'f',  0xf9, 0x3c, 0x00};
	/* {"off": 5, "match": 1}: match must be a boolean */
	static const uint8_t matchint[] = {0xa2, 0x63, 'o', 'f', 'f',
	                                   0x05, 0x65, 'm', 'a', 't',
	                                   'c',  'h',  0x01};
	static const uint8_t match[] = {0xa2, 0x63, 'o', 'f', 'f', 0x05, 0x65,
	                                'm',  'a',  't', 'c', 'h', 0xf5};
	struct smp_upload_rsp r;

	(void)state;
	assert_int_equal(PARSE_UPLOAD(w1, &r, NULL), SMP_OK);
	assert_int_equal(r.off, 255);
	assert_false(r.has_match);
	assert_int_equal(PARSE_UPLOAD(w4, &r, NULL), SMP_OK);
	assert_int_equal(r.off, 256);
	assert_int_equal(PARSE_UPLOAD(w8, &r, NULL), SMP_OK);
	assert_int_equal(r.off, 256);
	assert_int_equal(PARSE_UPLOAD(max32, &r, NULL), SMP_OK);
	assert_int_equal(r.off, UINT32_MAX);
	assert_int_equal(PARSE_UPLOAD(over, &r, NULL), SMP_E_RANGE);
	assert_non_null(strstr(smp_error_detail(), "\"off\""));
	assert_int_equal(PARSE_UPLOAD(negative, &r, NULL), SMP_E_RANGE);
	assert_int_equal(PARSE_UPLOAD(text, &r, NULL), SMP_E_TYPE);
	assert_string_equal(smp_error_detail(),
	                    "\"off\" is not an unsigned integer");
	assert_int_equal(PARSE_UPLOAD(flt, &r, NULL), SMP_E_TYPE);
	assert_int_equal(PARSE_UPLOAD(matchint, &r, NULL), SMP_E_TYPE);
	assert_int_equal(PARSE_UPLOAD(match, &r, NULL), SMP_OK);
	assert_true(r.has_match);
	assert_true(r.match);
}

static void
test_rsp_unknown_keys_and_chunks(void **state)
{
	/*
	 * {_ 7: [1], "x": {"y": [_ 1, {"z": h'00'}, (_ "a", "b")], 1.5: null},
	 *    (_ "o", "ff"): 7, "zz": 0(1) }
	 * unknown keys of every shape, a non-text key, and the key "off"
	 * itself sent as a chunked text string.
	 */
	static const uint8_t p[] = {
	    0xbf,                                     /* indefinite map */
	    0x07, 0x81, 0x01,                         /* 7: [1] */
	    0x61, 'x',                                /* "x": */
	    0xa2,                                     /* map(2) */
	    0x61, 'y',                                /* "y": */
	    0x9f,                                     /* indefinite array */
	    0x01,                                     /* 1 */
	    0xa1, 0x61, 'z',  0x41, 0x00,             /* {"z": h'00'} */
	    0x7f, 0x61, 'a',  0x61, 'b',  0xff,       /* (_ "a", "b") */
	    0xff,                                     /* end array */
	    0xf9, 0x3e, 0x00,                         /* 1.5 (half float) */
	    0xf6,                                     /* null */
	    0x7f, 0x61, 'o',  0x62, 'f',  'f',  0xff, /* (_ "o", "ff") */
	    0x07,                                     /* 7 */
	    0x62, 'z',  'z',  0xc0, 0x01,             /* "zz": 0(1) */
	    0xff,
	};
	/* {"r": (_ "h", "i")} as an echo reply */
	static const uint8_t echo[] = {0xa1, 0x61, 'r', 0x7f, 0x61,
	                               'h',  0x61, 'i', 0xff};
	/* {"r": (_ "h", h'69')}: a chunk of the wrong type */
	static const uint8_t badchunk[] = {0xa1, 0x61, 'r', 0x7f, 0x61,
	                                   'h',  0x41, 'i', 0xff};
	struct smp_upload_rsp r;
	uint8_t pkt[64];
	char text[8];
	size_t n;

	(void)state;
	assert_int_equal(PARSE_UPLOAD(p, &r, NULL), SMP_OK);
	assert_int_equal(r.off, 7);
	n = UPLOAD_RSP(pkt, p);
	seed("fuzz_smp_rsp", "unknown_keys", pkt, n);

	n = mkpkt(pkt, 0x03, SMP_GROUP_OS, SMP_OS_ECHO, echo, sizeof(echo));
	assert_int_equal(smp_rsp_echo(pkt, n, NULL, text, sizeof(text)),
	                 SMP_OK);
	assert_string_equal(text, "hi");
	seed("fuzz_smp_rsp", "echo_chunked", pkt, n);
	/* No room for "hi" + NUL in 2 bytes. */
	assert_int_equal(smp_rsp_echo(pkt, n, NULL, text, 2), SMP_E_RANGE);
	n = mkpkt(pkt, 0x03, SMP_GROUP_OS, SMP_OS_ECHO, badchunk,
	          sizeof(badchunk));
	assert_int_equal(smp_rsp_echo(pkt, n, NULL, text, sizeof(text)),
	                 SMP_E_CBOR);
}

static void
test_rsp_nesting_bomb(void **state)
{
	uint8_t p[4096];
	struct smp_upload_rsp r;
	size_t i, n;

	(void)state;
	/* {"x": [[[[ ... 40 deep ... ]]]], "off": 1} */
	n = 0;
	p[n++] = 0xa2;
	p[n++] = 0x61;
	p[n++] = 'x';
	for (i = 0; i < 40; i++)
		p[n++] = 0x81;
	p[n++] = 0x00;
	memcpy(p + n, "\x63off\x01", 5);
	n += 5;
	assert_int_equal(parse_upload(p, n, &r, NULL), SMP_E_CBOR);
	assert_non_null(strstr(smp_error_detail(), "nested"));

	/* 15 levels is fine. */
	n = 3;
	for (i = 0; i < 15; i++)
		p[n++] = 0x81;
	p[n++] = 0x00;
	memcpy(p + n, "\x63off\x01", 5);
	n += 5;
	assert_int_equal(parse_upload(p, n, &r, NULL), SMP_OK);
	assert_int_equal(r.off, 1);

	/* 4000 indefinite arrays that never close, and tags on tags. */
	n = 3;
	for (i = 0; i < 4000; i++)
		p[n++] = 0x9f;
	assert_int_equal(parse_upload(p, n, &r, NULL), SMP_E_CBOR);
	n = 3;
	for (i = 0; i < 4000; i++)
		p[n++] = 0xc6;
	p[n++] = 0;
	assert_int_equal(parse_upload(p, n, &r, NULL), SMP_E_CBOR);
}

static void
test_rsp_huge_lengths(void **state)
{
	/* {"x": bytes of length 2^64 - 1} */
	static const uint8_t bstr[] = {0xa1, 0x61, 'x',  0x5b, 0xff, 0xff, 0xff,
	                               0xff, 0xff, 0xff, 0xff, 0xff, 0x00};
	/* {"x": bytes of length 2^64 - 8}: 9 + len wraps around */
	static const uint8_t wrap[] = {0xa1, 0x61, 'x',  0x5b, 0xff, 0xff, 0xff,
	                               0xff, 0xff, 0xff, 0xff, 0xf8, 0x00};
	/* {"x": text of 4 GiB} */
	static const uint8_t tstr[] = {0xa1, 0x61, 'x',  0x7a, 0xff,
	                               0xff, 0xff, 0xff, 'a'};
	/* {"x": array of 2^63 items}, and a top-level map of 2^63 pairs */
	static const uint8_t arr[] = {0xa1, 0x61, 'x', 0x9b, 0x80, 0,   0,
	                              0,    0,    0,   0,    0,    0x01};
	static const uint8_t map[] = {0xbb, 0x80, 0, 0,    0,   0,
	                              0,    0,    0, 0x61, 'x', 0x01};
	static const uint8_t inner[] = {0xa1, 0x61, 'x',  0xbb, 0xff,
	                                0xff, 0xff, 0xff, 0xff, 0xff,
	                                0xff, 0xff, 0x01};
	/* "off" announced with a value that is cut off */
	static const uint8_t cut[] = {0xa1, 0x63, 'o', 'f', 'f', 0x1a, 0x00};
	/* a map that says 2 pairs but has 1 */
	static const uint8_t short_map[] = {0xa2, 0x63, 'o', 'f', 'f', 0x01};
	/* a break inside a definite map */
	static const uint8_t brk[] = {0xa2, 0x63, 'o', 'f', 'f', 0x01, 0xff};
	/* an indefinite map that ends after a key */
	static const uint8_t oddmap[] = {0xbf, 0x63, 'o', 'f', 'f',
	                                 0x01, 0x61, 'x', 0xff};
	/* a reserved additional-info byte (0x1c) */
	static const uint8_t reserved[] = {0xa1, 0x63, 'o', 'f', 'f', 0x1c};
	struct smp_upload_rsp r;

	(void)state;
	assert_int_equal(PARSE_UPLOAD(bstr, &r, NULL), SMP_E_CBOR);
	assert_string_equal(smp_error_detail(),
	                    "CBOR item at payload byte 3 runs past the end");
	assert_int_equal(PARSE_UPLOAD(wrap, &r, NULL), SMP_E_CBOR);
	assert_string_equal(smp_error_detail(),
	                    "CBOR item at payload byte 3 runs past the end");
	assert_int_equal(PARSE_UPLOAD(tstr, &r, NULL), SMP_E_CBOR);
	assert_int_equal(PARSE_UPLOAD(arr, &r, NULL), SMP_E_CBOR);
	assert_int_equal(PARSE_UPLOAD(map, &r, NULL), SMP_E_CBOR);
	assert_int_equal(PARSE_UPLOAD(inner, &r, NULL), SMP_E_CBOR);
	assert_non_null(strstr(smp_error_detail(), "cannot fit"));
	assert_int_equal(PARSE_UPLOAD(cut, &r, NULL), SMP_E_CBOR);
	assert_int_equal(PARSE_UPLOAD(short_map, &r, NULL), SMP_E_CBOR);
	assert_int_equal(PARSE_UPLOAD(brk, &r, NULL), SMP_E_CBOR);
	assert_string_equal(smp_error_detail(),
	                    "CBOR break inside a definite-length map");
	assert_int_equal(PARSE_UPLOAD(oddmap, &r, NULL), SMP_E_CBOR);
	assert_int_equal(PARSE_UPLOAD(reserved, &r, NULL), SMP_E_CBOR);
}

static void
test_rsp_truncated_and_header(void **state)
{
	uint8_t pkt[512];
	struct smp_image_list l;
	struct smp_upload_rsp r;
	size_t n;
	static const uint8_t off[] = {0xa1, 0x63, 'o', 'f', 'f', 0x01};

	(void)state;
	/* Every cut of the packet as it arrives: shorter than the header. */
	for (n = 0; n < sizeof(state_reply); n++)
		assert_int_equal(smp_rsp_image_state(state_reply, n, NULL, &l),
		                 SMP_E_SHORT);
	/* Every cut of the payload with a header that agrees: bad CBOR. */
	for (n = 0; n < sizeof(state_reply) - 8; n++) {
		int rc;

		mkpkt(pkt, state_reply[0], SMP_GROUP_IMAGE, SMP_IMAGE_STATE,
		      state_reply + 8, n);
		rc = smp_rsp_image_state(pkt, 8 + n, NULL, &l);
		if (n == 0)
			assert_int_equal(rc, SMP_E_MISSING); /* {} */
		else
			assert_int_equal(rc, SMP_E_CBOR);
	}
	/* A byte more than the header says. */
	memcpy(pkt, state_reply, sizeof(state_reply));
	pkt[sizeof(state_reply)] = 0;
	assert_int_equal(
	    smp_rsp_image_state(pkt, sizeof(state_reply) + 1, NULL, &l),
	    SMP_E_HEADER);
	/* Trailing CBOR after the map, inside the payload. */
	n = mkpkt(pkt, 0x03, SMP_GROUP_IMAGE, SMP_IMAGE_UPLOAD, off,
	          sizeof(off));
	pkt[3]++;
	pkt[n++] = 0x00;
	assert_int_equal(smp_rsp_image_upload(pkt, n, NULL, &r), SMP_E_CBOR);
	/* A payload that is not a map. */
	pkt[8] = 0x81;
	assert_int_equal(smp_rsp_image_upload(pkt, n, NULL, &r), SMP_E_CBOR);

	n = mkpkt(pkt, 0x03, SMP_GROUP_IMAGE, SMP_IMAGE_UPLOAD, off,
	          sizeof(off));
	assert_int_equal(smp_rsp_image_upload(pkt, n, NULL, &r), SMP_OK);
	/* v2 responses are fine (0x0b = write response, v2). */
	pkt[0] = 0x0b;
	assert_int_equal(smp_rsp_image_upload(pkt, n, NULL, &r), SMP_OK);
	pkt[0] = 0x02; /* a request, not a response */
	assert_int_equal(smp_rsp_image_upload(pkt, n, NULL, &r), SMP_E_HEADER);
	pkt[0] = 0x03;
	pkt[7] = SMP_IMAGE_STATE; /* wrong command */
	assert_int_equal(smp_rsp_image_upload(pkt, n, NULL, &r), SMP_E_HEADER);
	pkt[7] = SMP_IMAGE_UPLOAD;
	pkt[5] = SMP_GROUP_OS; /* wrong group */
	assert_int_equal(smp_rsp_image_upload(pkt, n, NULL, &r), SMP_E_HEADER);
	/* smp_rsp_empty takes any group and command. */
	assert_int_equal(smp_rsp_empty(pkt, n, NULL), SMP_OK);
	pkt[0] = 0x00;
	assert_int_equal(smp_rsp_empty(pkt, n, NULL), SMP_E_HEADER);
	/* An empty payload is an empty map. */
	n = mkpkt(pkt, 0x03, SMP_GROUP_OS, SMP_OS_RESET, off, 0);
	assert_int_equal(smp_rsp_empty(pkt, n, NULL), SMP_OK);
	seed("fuzz_smp_rsp", "empty", pkt, n);
}

static void
test_rsp_missing_and_types(void **state)
{
	/* {"buf_size": 384}: no buf_count */
	static const uint8_t params1[] = {0xa1, 0x68, 'b', 'u',  'f',  '_', 's',
	                                  'i',  'z',  'e', 0x19, 0x01, 0x80};
	/* {"buf_size": 384, "buf_count": 4} */
	static const uint8_t params2[] = {
	    0xa2, 0x68, 'b', 'u', 'f', '_', 's', 'i', 'z', 'e', 0x19, 0x01,
	    0x80, 0x69, 'b', 'u', 'f', '_', 'c', 'o', 'u', 'n', 't',  0x04};
	/* {"splitStatus": 0}: no images */
	static const uint8_t noimages[] = {0xa1, 0x6b, 's', 'p', 'l',
	                                   'i',  't',  'S', 't', 'a',
	                                   't',  'u',  's', 0x00};
	/* {"images": {}} */
	static const uint8_t imgmap[] = {0xa1, 0x66, 'i', 'm', 'a',
	                                 'g',  'e',  's', 0xa0};
	/* {"images": [1]} */
	static const uint8_t imgint[] = {0xa1, 0x66, 'i', 'm',  'a',
	                                 'g',  'e',  's', 0x81, 0x01};
	/* {"images": [{"version": "1"}]}: no slot */
	static const uint8_t noslot[] = {0xa1, 0x66, 'i',  'm',  'a',  'g', 'e',
	                                 's',  0x81, 0xa1, 0x67, 'v',  'e', 'r',
	                                 's',  'i',  'o',  'n',  0x61, '1'};
	/* {"images": [{"slot": 1}]}: no version */
	static const uint8_t nover[] = {0xa1, 0x66, 'i',  'm',  'a',  'g',
	                                'e',  's',  0x81, 0xa1, 0x64, 's',
	                                'l',  'o',  't',  0x01};
	/* {"images": [{"slot": 1, "version": "1", "hash": h'00'}]} */
	static const uint8_t shorthash[] = {
	    0xa1, 0x66, 'i',  'm', 'a',  'g',  'e', 's', 0x81, 0xa3, 0x64,
	    's',  'l',  'o',  't', 0x01, 0x67, 'v', 'e', 'r',  's',  'i',
	    'o',  'n',  0x61, '1', 0x64, 'h',  'a', 's', 'h',  0x41, 0x00};
	/* {"images": [{"slot": 1, "version": "1", "active": 1}]} */
	static const uint8_t intflag[] = {
	    0xa1, 0x66, 'i',  'm',  'a',  'g', 'e', 's', 0x81, 0xa3, 0x64, 's',
	    'l',  'o',  't',  0x01, 0x67, 'v', 'e', 'r', 's',  'i',  'o',  'n',
	    0x61, '1',  0x66, 'a',  'c',  't', 'i', 'v', 'e',  0x01};
	/* {"images": [], "images": []} */
	static const uint8_t dup[] = {0xa2, 0x66, 'i',  'm',  'a', 'g',
	                              'e',  's',  0x80, 0x66, 'i', 'm',
	                              'a',  'g',  'e',  's',  0x80};
	/* {"images": [], "splitStatus": 0}: an empty board */
	static const uint8_t empty[] = {
	    0xa2, 0x66, 'i', 'm', 'a', 'g', 'e', 's', 0x80, 0x6b, 's',
	    'p',  'l',  'i', 't', 'S', 't', 'a', 't', 'u',  's',  0x00};
	/* {"upload": 1}: no off */
	static const uint8_t nooff[] = {0xa1, 0x61, 'u', 0x01};
	uint8_t pkt[600];
	struct smp_params pa;
	struct smp_image_list l;
	struct smp_upload_rsp r;
	size_t n, i;

	(void)state;
#define PARAMS(p)                                                              \
	(n = mkpkt(pkt, 0x01, SMP_GROUP_OS, SMP_OS_PARAMS, p, sizeof(p)),      \
	 smp_rsp_params(pkt, n, NULL, &pa))
#define STATE(p)                                                               \
	(n = mkpkt(pkt, 0x01, SMP_GROUP_IMAGE, SMP_IMAGE_STATE, p, sizeof(p)), \
	 smp_rsp_image_state(pkt, n, NULL, &l))
	assert_int_equal(PARAMS(params1), SMP_E_MISSING);
	assert_string_equal(smp_error_detail(),
	                    "response has no \"buf_count\"");
	assert_int_equal(PARAMS(params2), SMP_OK);
	assert_int_equal(pa.buf_size, 384);
	assert_int_equal(pa.buf_count, 4);
	seed("fuzz_smp_rsp", "params", pkt, n);
	assert_int_equal(STATE(noimages), SMP_E_MISSING);
	assert_int_equal(STATE(imgmap), SMP_E_TYPE);
	assert_int_equal(STATE(imgint), SMP_E_TYPE);
	assert_int_equal(STATE(noslot), SMP_E_MISSING);
	assert_string_equal(smp_error_detail(), "images[0] has no \"slot\"");
	assert_int_equal(STATE(nover), SMP_E_MISSING);
	assert_int_equal(STATE(shorthash), SMP_E_RANGE);
	assert_int_equal(STATE(intflag), SMP_E_TYPE);
	assert_int_equal(STATE(dup), SMP_E_CBOR);
	assert_int_equal(STATE(empty), SMP_OK);
	assert_int_equal(l.n, 0);
	seed("fuzz_smp_rsp", "state_empty", pkt, n);
	assert_int_equal(PARSE_UPLOAD(nooff, &r, NULL), SMP_E_MISSING);

	/* Nine images do not fit SMP_MAX_SLOTS. */
	{
		uint8_t p[300];
		size_t k = 0;

		/* {"images": [9 x {"slot": 1, "version": "1"}]} */
		memcpy(p, "\xa1\x66images\x89", 9);
		k = 9;
		for (i = 0; i < 9; i++) {
			memcpy(p + k,
			       "\xa2\x64slot\x01\x67version\x61"
			       "1",
			       17);
			k += 17;
		}
		n = mkpkt(pkt, 0x01, SMP_GROUP_IMAGE, SMP_IMAGE_STATE, p, k);
		assert_int_equal(smp_rsp_image_state(pkt, n, NULL, &l),
		                 SMP_E_RANGE);
		/* Eight do. */
		p[8] = 0x88;
		n = mkpkt(pkt, 0x01, SMP_GROUP_IMAGE, SMP_IMAGE_STATE, p,
		          k - 17);
		assert_int_equal(smp_rsp_image_state(pkt, n, NULL, &l), SMP_OK);
		assert_int_equal(l.n, 8);
	}
	/* A version string longer than the field. */
	{
		uint8_t p[100];
		size_t k;

		/* {"images": [{"slot": 1, "version": text(32)}]} */
		memcpy(p,
		       "\xa1\x66images\x81\xa2\x64slot\x01\x67version\x78\x20",
		       26);
		k = 26;
		memset(p + k, '9', 32);
		k += 32;
		n = mkpkt(pkt, 0x01, SMP_GROUP_IMAGE, SMP_IMAGE_STATE, p, k);
		assert_int_equal(smp_rsp_image_state(pkt, n, NULL, &l),
		                 SMP_E_RANGE);
		assert_non_null(strstr(smp_error_detail(), "version"));
		p[25] = 0x1f; /* 31 characters fit */
		n = mkpkt(pkt, 0x01, SMP_GROUP_IMAGE, SMP_IMAGE_STATE, p,
		          k - 1);
		assert_int_equal(smp_rsp_image_state(pkt, n, NULL, &l), SMP_OK);
		assert_int_equal(strlen(l.slots[0].version), 31);
		/* A NUL inside the text is refused. */
		p[30] = '\0';
		n = mkpkt(pkt, 0x01, SMP_GROUP_IMAGE, SMP_IMAGE_STATE, p,
		          k - 1);
		assert_int_equal(smp_rsp_image_state(pkt, n, NULL, &l),
		                 SMP_E_RANGE);
	}
#undef PARAMS
#undef STATE
}

/* Server builders: golden bytes, then parsed back by the client. */

static void
test_rspb_golden(void **state)
{
	static const uint8_t err_v1[] = {
	    0x03, 0x00, 0x00, 0x19, /* write response v1, payload 25 */
	    0x00, 0x01, 0x07, 0x01, /* group 1, seq 7, id 1 upload */
	    0xbf,                   /* indefinite map */
	    0x62, 'r',  'c',  0x03, /* "rc": 3 */
	    0x63, 'r',  's',  'n',  /* "rsn": */
	    0x6e, 'm',  'a',  'g',  'i', 'c', ' ', 'm',
	    'i',  's',  'm',  'a',  't', 'c', 'h', /* text(14) */
	    0xff,
	};
	static const uint8_t err_v2[] = {
	    0x0b, 0x00, 0x00, 0x26,       /* write response v2, payload 38 */
	    0x00, 0x01, 0x07, 0x01, 0xbf, /* indefinite map */
	    0x63, 'e',  'r',  'r',  0xbf, /* "err": indefinite map */
	    0x65, 'g',  'r',  'o',  'u',  'p',  0x01, /* "group": 1 */
	    0x62, 'r',  'c',  0x17, /* "rc": 23, magic mismatch */
	    0xff, 0x63, 'r',  's',  'n',  0x6e, 'm',  'a', 'g', 'i',  'c',
	    ' ',  'm',  'i',  's',  'm',  'a',  't',  'c', 'h', 0xff,
	};
	static const uint8_t off_def[] = {
	    0x03, 0x00, 0x00, 0x08, 0x00, 0x01, 0x07, 0x01,
	    0xa1, 0x63, 'o',  'f',  'f',  0x19, 0x01, 0x2c, /* {"off": 300} */
	};
	static const uint8_t echo_indef[] = {
	    0x03, 0x00, 0x00, 0x07, 0x00, 0x00, 0x07, 0x00,
	    0xbf, 0x61, 'r',  0x62, 'h',  'i',  0xff, /* {_ "r": "hi"} */
	};
	/* v2 rc 8 (not supported) stays a plain {"rc": 8} */
	static const uint8_t notsup_v2[] = {
	    0x09, 0x00, 0x00, 0x05, 0x00, 0x00, 0x07, 0x06, /* read rsp v2 */
	    0xa1, 0x62, 'r',  'c',  0x08,
	};
	struct smp_hdr req = {SMP_OP_WRITE,    SMP_V1, 0, 0, SMP_GROUP_IMAGE, 7,
	                      SMP_IMAGE_UPLOAD};
	struct smp_rsp_opts o1 = {SMP_V1, false, false},
	                    o2 = {SMP_V2, false, false},
	                    d2 = {SMP_V2, true, false},
	                    d1 = {SMP_V1, true, false};
	struct smp_upload_rsp up = {300, false, false}, r;
	struct smp_err e;
	uint8_t buf[128];
	char text[8];
	ssize_t n;

	(void)state;
	assert_int_equal(sizeof(err_v1), 8 + 25);
	assert_int_equal(sizeof(err_v2), 8 + 38);
	n = smp_rspb_error(buf, sizeof(buf), &req, &o1, SMP_RC_INVAL,
	                   "magic mismatch");
	assert_int_equal(n, sizeof(err_v1));
	assert_memory_equal(buf, err_v1, sizeof(err_v1));
	assert_int_equal(smp_rsp_image_upload(buf, (size_t)n, &e, &r),
	                 SMP_E_BOARD);
	assert_int_equal(e.rc, 3);
	assert_string_equal(e.rsn, "magic mismatch");

	n = smp_rspb_error(buf, sizeof(buf), &req, &o2, SMP_RC_INVAL,
	                   "magic mismatch");
	assert_int_equal(n, sizeof(err_v2));
	assert_memory_equal(buf, err_v2, sizeof(err_v2));
	assert_int_equal(smp_rsp_image_upload(buf, (size_t)n, &e, &r),
	                 SMP_E_BOARD);
	assert_true(e.v2);
	assert_int_equal(e.group, 1);
	assert_int_equal(e.rc, 23);
	seed("fuzz_smp_rsp", "err_v2_indef", buf, (size_t)n);

	n = smp_rspb_image_upload(buf, sizeof(buf), &req, &d1, &up);
	assert_int_equal(n, sizeof(off_def));
	assert_memory_equal(buf, off_def, sizeof(off_def));
	assert_int_equal(smp_rsp_image_upload(buf, (size_t)n, &e, &r), SMP_OK);
	assert_int_equal(r.off, 300);
	seed("fuzz_smp_rsp", "upload", buf, (size_t)n);

	req.group = SMP_GROUP_OS;
	req.id = SMP_OS_ECHO;
	n = smp_rspb_echo(buf, sizeof(buf), &req, &o1, "hi");
	assert_int_equal(n, sizeof(echo_indef));
	assert_memory_equal(buf, echo_indef, sizeof(echo_indef));
	assert_int_equal(smp_rsp_echo(buf, (size_t)n, &e, text, sizeof(text)),
	                 SMP_OK);
	assert_string_equal(text, "hi");
	seed("fuzz_smp_rsp", "echo", buf, (size_t)n);

	req.op = SMP_OP_READ;
	req.id = SMP_OS_PARAMS;
	n = smp_rspb_error(buf, sizeof(buf), &req, &d2, SMP_RC_NOTSUP, NULL);
	assert_int_equal(n, sizeof(notsup_v2));
	assert_memory_equal(buf, notsup_v2, sizeof(notsup_v2));
	assert_int_equal(
	    smp_rsp_params(buf, (size_t)n, &e, &(struct smp_params){0}),
	    SMP_E_BOARD);
	assert_false(e.v2);
	assert_int_equal(e.rc, SMP_RC_NOTSUP);

	assert_int_equal(smp_rspb_echo(buf, 12, &req, &o1, "hi"), -1);
	assert_int_equal(smp_rspb_echo(buf, 15, &req, &o1, "hi"), 15);
	assert_int_equal(smp_rspb_echo(buf, 14, &req, &o1, "hi"), -1);
}

static void
test_v2_mapping(void **state)
{
	(void)state;
	assert_int_equal(
	    smp_rc_to_v2(SMP_GROUP_IMAGE, SMP_IMAGE_UPLOAD, SMP_RC_INVAL), 23);
	assert_int_equal(
	    smp_rc_to_v2(SMP_GROUP_IMAGE, SMP_IMAGE_UPLOAD, SMP_RC_NOENT), 9);
	assert_int_equal(
	    smp_rc_to_v2(SMP_GROUP_IMAGE, SMP_IMAGE_STATE, SMP_RC_INVAL), 8);
	assert_int_equal(
	    smp_rc_to_v2(SMP_GROUP_IMAGE, SMP_IMAGE_ERASE, SMP_RC_BADSTATE), 9);
	assert_int_equal(
	    smp_rc_to_v2(SMP_GROUP_IMAGE, SMP_IMAGE_UPLOAD, SMP_RC_NOTSUP), -1);
	assert_int_equal(smp_rc_to_v2(SMP_GROUP_OS, SMP_OS_ECHO, SMP_RC_INVAL),
	                 -1);
	assert_string_equal(smp_group_rc_str(SMP_GROUP_IMAGE, 23),
	                    "invalid image header magic");
	assert_string_equal(smp_group_rc_str(SMP_GROUP_IMAGE, 33),
	                    "setting test to active slot denied");
	assert_string_equal(smp_group_rc_str(SMP_GROUP_IMAGE, 34),
	                    "unknown group error");
}

static void
fill_list(struct smp_image_list *l, size_t n)
{
	size_t i;

	memset(l, 0, sizeof(*l));
	l->n = n;
	for (i = 0; i < n; i++) {
		l->slots[i].image = (uint32_t)(i / 2);
		l->slots[i].slot = (uint32_t)(i % 2);
		snprintf(l->slots[i].version, SMP_VERSION_STRLEN, "%zu.2.3.%zu",
		         i, i * 1000);
		l->slots[i].has_hash = i != 1;
		if (l->slots[i].has_hash)
			memset(l->slots[i].hash, (int)(0xa0 + i), SMP_HASH_LEN);
		l->slots[i].bootable = true;
		l->slots[i].pending = i == 1;
		l->slots[i].confirmed = i == 0;
		l->slots[i].active = i == 0;
		l->slots[i].permanent = i == 2;
	}
}

static void
test_roundtrip_responses(void **state)
{
	struct smp_rsp_opts opts[5] = {{SMP_V1, false, false},
	                               {SMP_V1, true, false},
	                               {SMP_V2, false, false},
	                               {SMP_V2, true, false},
	                               {SMP_V1, false, true}};
	struct smp_hdr req = {
	    SMP_OP_READ, SMP_V2, 0, 0, SMP_GROUP_IMAGE, 200, SMP_IMAGE_STATE};
	struct smp_image_list in, out;
	struct smp_params p = {2475, 5}, pout;
	struct smp_upload_rsp up = {0x12345678, true, true}, upout;
	struct smp_err e;
	struct smp_hdr h;
	uint8_t buf[2048];
	char name[32];
	ssize_t n;
	size_t k, i;

	(void)state;
	for (k = 0; k < 5; k++) {
		for (i = 0; i <= SMP_MAX_SLOTS; i++) {
			size_t j;

			fill_list(&in, i);
			/* Without the key, the decoder reads image 0. */
			for (j = 0; opts[k].no_image_key && j < i; j++)
				in.slots[j].image = 0;
			req.group = SMP_GROUP_IMAGE;
			req.id = SMP_IMAGE_STATE;
			n = smp_rspb_image_state(buf, sizeof(buf), &req,
			                         &opts[k], &in);
			assert_true(n > 0);
			assert_int_equal(smp_hdr_decode(buf, (size_t)n, &h),
			                 SMP_OK);
			assert_int_equal(h.op, SMP_OP_READ_RSP);
			assert_int_equal(h.version, opts[k].version);
			assert_int_equal(h.seq, 200);
			assert_int_equal(
			    smp_rsp_image_state(buf, (size_t)n, &e, &out),
			    SMP_OK);
			assert_memory_equal(&in, &out, sizeof(in));
			/* Zephyr 3.2's single-image lists name no image. */
			assert_true((memmem(buf, (size_t)n, "\x65image", 6) ==
			             NULL) == (opts[k].no_image_key || i == 0));
			if (i == 2) {
				snprintf(name, sizeof(name), "state2_%zu", k);
				seed("fuzz_smp_rsp", name, buf, (size_t)n);
			}
			/* One byte short of the buffer it needs. */
			assert_int_equal(
			    smp_rspb_image_state(buf, (size_t)n - 1, &req,
			                         &opts[k], &in),
			    -1);
		}
		req.group = SMP_GROUP_OS;
		req.id = SMP_OS_PARAMS;
		n = smp_rspb_params(buf, sizeof(buf), &req, &opts[k], &p);
		assert_int_equal(smp_rsp_params(buf, (size_t)n, &e, &pout),
		                 SMP_OK);
		assert_int_equal(pout.buf_size, 2475);
		assert_int_equal(pout.buf_count, 5);

		req.group = SMP_GROUP_IMAGE;
		req.id = SMP_IMAGE_UPLOAD;
		req.op = SMP_OP_WRITE;
		n = smp_rspb_image_upload(buf, sizeof(buf), &req, &opts[k],
		                          &up);
		assert_int_equal(
		    smp_rsp_image_upload(buf, (size_t)n, &e, &upout), SMP_OK);
		assert_int_equal(upout.off, up.off);
		assert_true(upout.has_match && upout.match);
		assert_int_equal(buf[0] & 7, SMP_OP_WRITE_RSP);

		req.id = SMP_IMAGE_ERASE;
		n = smp_rspb_empty(buf, sizeof(buf), &req, &opts[k]);
		assert_int_equal(smp_rsp_empty(buf, (size_t)n, &e), SMP_OK);
		n = smp_rspb_error(buf, sizeof(buf), &req, &opts[k],
		                   SMP_RC_BADSTATE, "");
		assert_int_equal(smp_rsp_empty(buf, (size_t)n, &e),
		                 SMP_E_BOARD);
		assert_int_equal(e.v2, opts[k].version == SMP_V2);
		assert_int_equal(e.rc, opts[k].version == SMP_V2 ? 9 : 6);
		assert_string_equal(e.rsn, "");
		req.op = SMP_OP_READ;
	}
}

static void
test_roundtrip_requests(void **state)
{
	struct smp_request rq;
	struct smp_upload_req q = {0};
	uint8_t buf[1024], data[600];
	char text[SMP_ECHO_MAX + 1];
	ssize_t n;
	int v;

	(void)state;
	memset(data, 0x5c, sizeof(data));
	for (v = SMP_V1; v <= SMP_V2; v++) {
		n = smp_req_echo(buf, sizeof(buf), v, 1, "hello");
		assert_int_equal(smp_req_decode(buf, (size_t)n, &rq), SMP_OK);
		assert_int_equal(rq.hdr.version, v);
		assert_int_equal(rq.hdr.op, SMP_OP_WRITE);
		assert_string_equal(rq.u.echo.text, "hello");

		n = smp_req_image_state_write(buf, sizeof(buf), v, 2, hash32,
		                              true);
		assert_int_equal(smp_req_decode(buf, (size_t)n, &rq), SMP_OK);
		assert_true(rq.u.state.has_hash);
		assert_true(rq.u.state.confirm);
		assert_memory_equal(rq.u.state.hash, hash32, SMP_HASH_LEN);

		n = smp_req_image_state_write(buf, sizeof(buf), v, 2, NULL,
		                              true);
		assert_int_equal(smp_req_decode(buf, (size_t)n, &rq), SMP_OK);
		assert_false(rq.u.state.has_hash);
		assert_true(rq.u.state.confirm);

		q.first = true;
		q.image = 1;
		q.len = 70000;
		q.sha = hash32;
		q.off = 0;
		q.data = data;
		q.data_len = sizeof(data);
		n = smp_req_image_upload(buf, sizeof(buf), v, 3, &q);
		assert_int_equal(smp_req_decode(buf, (size_t)n, &rq), SMP_OK);
		assert_int_equal(rq.hdr.id, SMP_IMAGE_UPLOAD);
		assert_true(rq.u.upload.has_image && rq.u.upload.has_len &&
		            rq.u.upload.has_off && rq.u.upload.has_sha);
		assert_int_equal(rq.u.upload.image, 1);
		assert_int_equal(rq.u.upload.len, 70000);
		assert_int_equal(rq.u.upload.off, 0);
		assert_int_equal(rq.u.upload.sha_len, SMP_HASH_LEN);
		assert_memory_equal(rq.u.upload.sha, hash32, SMP_HASH_LEN);
		assert_int_equal(rq.u.upload.data_len, sizeof(data));
		assert_memory_equal(rq.u.upload.data, data, sizeof(data));
		assert_true(rq.u.upload.data > buf &&
		            rq.u.upload.data + rq.u.upload.data_len == buf + n);

		q.first = false;
		q.off = 65536;
		q.data_len = 10;
		n = smp_req_image_upload(buf, sizeof(buf), v, 4, &q);
		assert_int_equal(smp_req_decode(buf, (size_t)n, &rq), SMP_OK);
		assert_false(rq.u.upload.has_len || rq.u.upload.has_sha ||
		             rq.u.upload.has_image);
		assert_int_equal(rq.u.upload.off, 65536);
		assert_int_equal(rq.u.upload.data_len, 10);

		n = smp_req_image_erase(buf, sizeof(buf), v, 5);
		assert_int_equal(smp_req_decode(buf, (size_t)n, &rq), SMP_OK);
		assert_false(rq.u.erase.has_slot);
		n = smp_req_reset(buf, sizeof(buf), v, 6);
		assert_int_equal(smp_req_decode(buf, (size_t)n, &rq), SMP_OK);
		assert_int_equal(rq.hdr.id, SMP_OS_RESET);
	}
	/* The longest echo text that fits, and one more. */
	memset(text, 'e', sizeof(text));
	text[SMP_ECHO_MAX - 1] = '\0';
	n = smp_req_echo(buf, sizeof(buf), SMP_V1, 1, text);
	assert_int_equal(smp_req_decode(buf, (size_t)n, &rq), SMP_OK);
	assert_int_equal(strlen(rq.u.echo.text), SMP_ECHO_MAX - 1);
	text[SMP_ECHO_MAX - 1] = 'e';
	text[SMP_ECHO_MAX] = '\0';
	n = smp_req_echo(buf, sizeof(buf), SMP_V1, 1, text);
	assert_int_equal(smp_req_decode(buf, (size_t)n, &rq), SMP_E_RANGE);
}

static int
decode_req(uint8_t op, uint16_t group, uint8_t id, const uint8_t *p,
           size_t plen, struct smp_request *rq)
{
	uint8_t pkt[256];
	size_t n = mkpkt(pkt, op, group, id, p, plen);

	return smp_req_decode(pkt, n, rq);
}

#define DECODE(op, g, id, p, rq) decode_req(op, g, id, p, sizeof(p), rq)

static void
test_req_decode_errors(void **state)
{
	/* {"off": 0}: no data */
	static const uint8_t nodata[] = {0xa1, 0x63, 'o', 'f', 'f', 0x00};
	/* {"data": h''}: no off */
	static const uint8_t nooff[] = {0xa1, 0x64, 'd', 'a', 't', 'a', 0x40};
	/* {"off": 0, "data": (_ h'01', h'02')}: two chunks */
	static const uint8_t chunks[] = {0xa2, 0x63, 'o',  'f',  'f', 0x00,
	                                 0x64, 'd',  'a',  't',  'a', 0x5f,
	                                 0x41, 0x01, 0x41, 0x02, 0xff};
	/* {"off": 0, "data": (_ h'0102')}: one chunk is fine */
	static const uint8_t chunk1[] = {0xa2, 0x63, 'o',  'f', 'f', 0x00,
	                                 0x64, 'd',  'a',  't', 'a', 0x5f,
	                                 0x42, 0x01, 0x02, 0xff};
	/* {"off": 0, "data": h'', "sha": 33 bytes} */
	uint8_t longsha[64];
	/* {"hash": h'00', "confirm": false} */
	static const uint8_t shorthash[] = {0xa2, 0x64, 'h',  'a', 's', 'h',
	                                    0x41, 0x00, 0x67, 'c', 'o', 'n',
	                                    'f',  'i',  'r',  'm', 0xf4};
	/* {"confirm": 1} */
	static const uint8_t confint[] = {0xa1, 0x67, 'c', 'o', 'n',
	                                  'f',  'i',  'r', 'm', 0x01};
	/* {"slot": 1} erase */
	static const uint8_t slot[] = {0xa1, 0x64, 's', 'l', 'o', 't', 0x01};
	/* {"d": 5} echo */
	static const uint8_t dint[] = {0xa1, 0x61, 'd', 0x05};
	/* {} echo */
	static const uint8_t none[] = {0xa0};
	/* {"x": [1, 2]} for a command nobody knows */
	static const uint8_t other[] = {0xa1, 0x61, 'x', 0x82, 0x01, 0x02};
	/* not a map at all */
	static const uint8_t notmap[] = {0x01};
	struct smp_request rq;

	(void)state;
	assert_int_equal(DECODE(0x02, 1, 1, nodata, &rq), SMP_E_MISSING);
	assert_int_equal(DECODE(0x02, 1, 1, nooff, &rq), SMP_E_MISSING);
	assert_int_equal(DECODE(0x02, 1, 1, chunks, &rq), SMP_E_TYPE);
	assert_int_equal(DECODE(0x02, 1, 1, chunk1, &rq), SMP_OK);
	assert_int_equal(rq.u.upload.data_len, 2);
	assert_int_equal(rq.u.upload.data[1], 0x02);
	memcpy(longsha,
	       "\xa3\x63off\x00\x64"
	       "data\x40\x63sha\x58\x21",
	       18);
	memset(longsha + 18, 0x77, 33);
	assert_int_equal(decode_req(0x02, 1, 1, longsha, 51, &rq), SMP_E_RANGE);
	longsha[17] = 0x1f; /* 31 bytes: Zephyr takes up to 32 */
	assert_int_equal(decode_req(0x02, 1, 1, longsha, 49, &rq), SMP_OK);
	assert_int_equal(rq.u.upload.sha_len, 31);
	assert_int_equal(DECODE(0x02, 1, 0, shorthash, &rq), SMP_E_RANGE);
	assert_int_equal(DECODE(0x02, 1, 0, confint, &rq), SMP_E_TYPE);
	assert_int_equal(DECODE(0x02, 1, 5, slot, &rq), SMP_OK);
	assert_true(rq.u.erase.has_slot);
	assert_int_equal(rq.u.erase.slot, 1);
	assert_int_equal(DECODE(0x02, 0, 0, dint, &rq), SMP_E_TYPE);
	assert_int_equal(DECODE(0x02, 0, 0, none, &rq), SMP_E_MISSING);
	/* A state read carries nothing: its map is just checked. */
	assert_int_equal(DECODE(0x00, 1, 0, none, &rq), SMP_OK);
	assert_int_equal(DECODE(0x02, 64, 3, other, &rq), SMP_OK);
	assert_int_equal(rq.hdr.group, 64);
	assert_int_equal(DECODE(0x02, 64, 3, notmap, &rq), SMP_E_CBOR);
	/* A response is not a request. */
	assert_int_equal(DECODE(0x03, 1, 5, slot, &rq), SMP_E_HEADER);
	assert_int_equal(DECODE(0x01, 1, 5, slot, &rq), SMP_E_HEADER);
}

/* Planner. */

static ssize_t
build_upload(uint8_t *buf, size_t cap, int ver, bool first, uint32_t image_len,
             uint32_t off, const uint8_t *data, size_t n)
{
	struct smp_upload_req q = {0};

	q.first = first;
	q.image = 0;
	q.len = image_len;
	q.sha = hash32;
	q.off = off;
	q.data = data;
	q.data_len = n;
	return smp_req_image_upload(buf, cap, ver, 0, &q);
}

static void
test_plan_boundary(void **state)
{
	static const size_t limits[] = {80,   100,  127,   128,
	                                252,  256,  380,   1024,
	                                2471, 4096, 65535, SMP_MAX_PACKET};
	static const uint32_t lens[] = {1,     23,    24,       25,
	                                255,   256,   257,      65535,
	                                65536, 65537, 1u << 20, UINT32_MAX};
	static uint8_t buf[SMP_MAX_PACKET + 64], data[SMP_MAX_PACKET];
	struct smp_upload_plan pl;
	size_t li, ii;
	uint32_t last;
	ssize_t n;
	int v;

	(void)state;
	for (v = SMP_V1; v <= SMP_V2; v++)
		for (li = 0; li < sizeof(limits) / sizeof(limits[0]); li++)
			for (ii = 0; ii < sizeof(lens) / sizeof(lens[0]);
			     ii++) {
				size_t lim = limits[li];

				assert_int_equal(
				    smp_plan_upload(lim, 4, v, lens[ii], &pl),
				    SMP_OK);
				assert_int_equal(pl.pkt_limit, lim);
				assert_int_equal(pl.window, 3);
				/* First packet: chunk fits, chunk + 1 not. */
				n = build_upload(buf, sizeof(buf), v, true,
				                 lens[ii], 0, data,
				                 pl.first_chunk);
				assert_true(n > 0 && (size_t)n <= lim);
				n = build_upload(buf, sizeof(buf), v, true,
				                 lens[ii], 0, data,
				                 pl.first_chunk + 1);
				assert_true(n < 0 || (size_t)n > lim);
				/* Also with the buffer capped at the limit. */
				assert_int_equal(
				    build_upload(buf, lim, v, true, lens[ii], 0,
				                 data, pl.first_chunk + 1),
				    -1);
				/* Later packets at the largest offset. */
				last = lens[ii] - 1;
				n = build_upload(buf, sizeof(buf), v, false,
				                 lens[ii], last, data,
				                 pl.chunk);
				assert_true(n > 0 && (size_t)n <= lim);
				n = build_upload(buf, sizeof(buf), v, false,
				                 lens[ii], last, data,
				                 pl.chunk + 1);
				assert_true(n < 0 || (size_t)n > lim);
				/* And at any smaller offset. */
				n = build_upload(buf, sizeof(buf), v, false,
				                 lens[ii], last / 2, data,
				                 pl.chunk);
				assert_true(n > 0 && (size_t)n <= lim);
				assert_true(pl.first_chunk < pl.chunk);
			}
}

static void
test_plan_limits(void **state)
{
	struct smp_params p = {384, 4};
	struct smp_upload_plan pl;
	uint8_t buf[128], data[128] = {0};

	(void)state;
	assert_int_equal(smp_pkt_limit(true, &p, true, 0), 380);
	assert_int_equal(smp_pkt_limit(true, &p, false, 0), 384);
	assert_int_equal(smp_pkt_limit(true, &p, true, 256), 380);
	assert_int_equal(smp_pkt_limit(false, &p, true, 256), 256);
	assert_int_equal(smp_pkt_limit(false, NULL, true, 0),
	                 SMP_DEFAULT_PKT_LIMIT);
	p.buf_size = 0; /* a board that answers nonsense */
	assert_int_equal(smp_pkt_limit(true, &p, true, 200), 200);
	p.buf_size = 3;
	assert_int_equal(smp_pkt_limit(true, &p, true, 0), 0);
	assert_int_equal(smp_pkt_limit(false, NULL, false, 1000000),
	                 SMP_MAX_PACKET);

	assert_int_equal(smp_plan_upload(380, 0, SMP_V1, 1000, &pl), SMP_OK);
	assert_int_equal(pl.window, 1);
	assert_int_equal(smp_plan_upload(380, 1, SMP_V1, 1000, &pl), SMP_OK);
	assert_int_equal(pl.window, 1);
	assert_int_equal(smp_plan_upload(380, 2, SMP_V1, 1000, &pl), SMP_OK);
	assert_int_equal(pl.window, 1);
	assert_int_equal(smp_plan_upload(1000000, 9, SMP_V1, 10, &pl), SMP_OK);
	assert_int_equal(pl.pkt_limit, SMP_MAX_PACKET);
	assert_int_equal(pl.window, 8);

	/*
	 * Hand count for a 1000-byte image: the first packet without data is
	 * 8 header + a5 + "image" 0 (7) + "len" 1000 (4 + 3) + "off" 0 (5) +
	 * "sha" h'32' (4 + 34) + "data" (5) + 1 byte of bytes head = 72, so
	 * 128 leaves 56 bytes (head stays 1 byte below 24 bytes of data, 2
	 * from 24 to 255: 128 - 71 - 2 = 55).
	 */
	assert_int_equal(smp_plan_upload(128, 4, SMP_V1, 1000, &pl), SMP_OK);
	assert_int_equal(pl.first_chunk, 55);
	assert_int_equal(
	    build_upload(buf, sizeof(buf), SMP_V1, true, 1000, 0, data, 55),
	    128);
	/* later: 8 + a2 + "off" 999 (4 + 3) + "data" (5) + 2 = 23 -> 105 */
	assert_int_equal(pl.chunk, 105);

	/* No room for a single byte. */
	assert_int_equal(smp_plan_upload(64, 4, SMP_V1, 1000, &pl),
	                 SMP_E_RANGE);
	assert_non_null(strstr(smp_error_detail(), "64"));
	assert_int_equal(smp_plan_upload(0, 4, SMP_V1, 1000, &pl), SMP_E_RANGE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_req_echo_golden),
	    cmocka_unit_test(test_req_empty_golden),
	    cmocka_unit_test(test_req_state_write_golden),
	    cmocka_unit_test(test_req_upload_golden),
	    cmocka_unit_test(test_hdr),
	    cmocka_unit_test(test_rsp_state_golden),
	    cmocka_unit_test(test_rsp_errors_v1_v2),
	    cmocka_unit_test(test_rsp_rsn_truncated),
	    cmocka_unit_test(test_rsp_int_widths),
	    cmocka_unit_test(test_rsp_unknown_keys_and_chunks),
	    cmocka_unit_test(test_rsp_nesting_bomb),
	    cmocka_unit_test(test_rsp_huge_lengths),
	    cmocka_unit_test(test_rsp_truncated_and_header),
	    cmocka_unit_test(test_rsp_missing_and_types),
	    cmocka_unit_test(test_rspb_golden),
	    cmocka_unit_test(test_v2_mapping),
	    cmocka_unit_test(test_roundtrip_responses),
	    cmocka_unit_test(test_roundtrip_requests),
	    cmocka_unit_test(test_req_decode_errors),
	    cmocka_unit_test(test_plan_boundary),
	    cmocka_unit_test(test_plan_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
