/* Unit tests for common/att.c: golden PDU bytes both ways, and refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "att.h"

static struct att_pdu pdu; /* large */

static void
roundtrip(const uint8_t *wire, size_t len)
{
	uint8_t out[ATT_MAX_MTU];
	char err[96];
	ssize_t n;

	assert_int_equal(att_decode(wire, len, &pdu, err, sizeof(err)), 0);
	n = att_encode(&pdu, out, sizeof(out));
	assert_int_equal(n, (ssize_t)len);
	assert_memory_equal(out, wire, len);
}

static void
test_uuid(void **state)
{
	static const uint8_t smp_le[16] = {0x84, 0xaa, 0x60, 0x74, 0x52, 0x8a,
	                                   0x8b, 0x86, 0xd3, 0x4c, 0xb7, 0x1d,
	                                   0x1d, 0xdc, 0x53, 0x8d};
	struct att_uuid u, v;

	(void)state;
	assert_int_equal(
	    att_uuid_parse(&u, "8D53DC1D-1DB7-4CD3-868B-8A527460AA84"), 0);
	assert_int_equal(u.len, 16);
	assert_memory_equal(u.b, smp_le, 16);
	assert_int_equal(
	    att_uuid_parse(&u, "8d53dc1d1db7-4cd3-868b-8a527460aa84"), -1);
	assert_int_equal(
	    att_uuid_parse(&u, "8d53dc1d-1db7-4cd3-868b-8a527460aa8"), -1);
	assert_int_equal(
	    att_uuid_parse(&u, "8d53dc1d-1db7-4cd3-868b-8a527460aa84x"), -1);
	assert_int_equal(
	    att_uuid_parse(&u, "8d53dc1d-1db7-4cd3-868b-8a527460aag4"), -1);
	/* 0x2902 equals its 128-bit form on the base UUID. */
	att_uuid16(&u, 0x2902);
	assert_int_equal(
	    att_uuid_parse(&v, "00002902-0000-1000-8000-00805f9b34fb"), 0);
	assert_true(att_uuid_eq(&u, &v));
	att_uuid16(&v, 0x2803);
	assert_false(att_uuid_eq(&u, &v));
}

static void
test_fixed_pdus(void **state)
{
	static const uint8_t mtu_req[] = {0x02, 0xf7, 0x00};
	static const uint8_t err_rsp[] = {0x01, 0x10, 0x14, 0x00, 0x0a};
	static const uint8_t find_req[] = {0x04, 0x13, 0x00, 0xff, 0xff};
	static const uint8_t group_req[] = {0x10, 0x01, 0x00, 0xff,
	                                    0xff, 0x00, 0x28};
	static const uint8_t write_cmd[] = {0x52, 0x12, 0x00, 0x02, 0x00};
	static const uint8_t notify[] = {0x1b, 0x12, 0x00};
	static const uint8_t write_rsp[] = {0x13};

	(void)state;
	roundtrip(mtu_req, sizeof(mtu_req));
	assert_int_equal(pdu.u.mtu, 247);
	roundtrip(err_rsp, sizeof(err_rsp));
	assert_int_equal(pdu.u.error.req_op, 0x10);
	assert_int_equal(pdu.u.error.handle, 0x14);
	assert_int_equal(pdu.u.error.code, ATT_ERR_ATTR_NOT_FOUND);
	roundtrip(find_req, sizeof(find_req));
	assert_int_equal(pdu.u.range.start, 0x13);
	assert_int_equal(pdu.u.range.end, 0xffff);
	roundtrip(group_req, sizeof(group_req));
	assert_int_equal(pdu.u.range.type.len, 2);
	roundtrip(write_cmd, sizeof(write_cmd));
	assert_int_equal(pdu.u.write.handle, 0x12);
	assert_int_equal(pdu.u.write.len, 2);
	roundtrip(notify, sizeof(notify));
	assert_int_equal(pdu.u.write.len, 0);
	roundtrip(write_rsp, sizeof(write_rsp));
}

static void
test_lists(void **state)
{
	/* Read By Group Type: one 128-bit service, handles 0x10-0x13. */
	static const uint8_t group_rsp[] = {
	    0x11, 0x14, 0x10, 0x00, 0x13, 0x00, 0x84, 0xaa, 0x60, 0x74, 0x52,
	    0x8a, 0x8b, 0x86, 0xd3, 0x4c, 0xb7, 0x1d, 0x1d, 0xdc, 0x53, 0x8d};
	/* Read By Type: one characteristic declaration, 16-bit UUID. */
	static const uint8_t type_rsp[] = {0x09, 0x07, 0x02, 0x00, 0x02,
	                                   0x03, 0x00, 0x00, 0x2a};
	/* Find Information, 16-bit: the CCCD at 0x13. */
	static const uint8_t info_rsp[] = {0x05, 0x01, 0x13, 0x00, 0x02, 0x29};
	struct att_uuid svc, cccd;
	struct att_chr_decl d;

	(void)state;
	att_uuid_parse(&svc, "8d53dc1d-1db7-4cd3-868b-8a527460aa84");
	roundtrip(group_rsp, sizeof(group_rsp));
	assert_int_equal(pdu.u.list.n, 1);
	assert_int_equal(pdu.u.list.e[0].handle, 0x10);
	assert_int_equal(pdu.u.list.e[0].end, 0x13);
	assert_true(att_uuid_eq(&pdu.u.list.e[0].uuid, &svc));
	roundtrip(type_rsp, sizeof(type_rsp));
	assert_int_equal(pdu.u.list.n, 1);
	assert_int_equal(att_chr_decl_parse(pdu.u.list.e[0].value,
	                                    pdu.u.list.e[0].value_len, &d),
	                 0);
	assert_int_equal(d.props, ATT_PROP_READ);
	assert_int_equal(d.value_handle, 3);
	roundtrip(info_rsp, sizeof(info_rsp));
	att_uuid16(&cccd, ATT_UUID_CCCD);
	assert_true(att_uuid_eq(&pdu.u.list.e[0].uuid, &cccd));
}

static void
test_decode_refusals(void **state)
{
	static const struct {
		const char *why;
		uint8_t b[8];
		size_t len;
	} bad[] = {
	    {"empty", {0}, 0},
	    {"short mtu", {0x02, 0x17}, 2},
	    {"long error", {0x01, 1, 2, 3, 4, 5}, 6},
	    {"type req uuid 3 bytes", {0x08, 1, 0, 2, 0, 1, 2, 3}, 8},
	    {"list not whole", {0x09, 0x04, 1, 0, 2}, 5},
	    {"list no entries", {0x09, 0x04}, 2},
	    {"info bad format", {0x05, 0x03, 1, 0, 2, 0}, 6},
	    {"group elen < 6", {0x11, 0x04, 1, 0, 2, 0}, 6},
	    {"group uuid 3 bytes", {0x11, 0x07, 1, 0, 2, 0, 1, 2}, 8},
	    {"unknown op", {0x0a, 1, 0}, 3},
	    {"write truncated", {0x52, 0x12}, 2},
	    {"write rsp long", {0x13, 0}, 2},
	};
	char err[96];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (att_decode(bad[i].b, bad[i].len, &pdu, err, sizeof(err)) !=
		    -1)
			fail_msg("accepted: %s", bad[i].why);
		assert_true(strlen(err) > 0);
	}
}

static void
test_encode_refusals(void **state)
{
	uint8_t out[ATT_MAX_MTU], v[4] = {1, 2, 3, 4}, big[32] = {0};
	size_t i;

	(void)state;
	memset(&pdu, 0, sizeof(pdu));
	pdu.op = ATT_OP_READ_BY_TYPE_RSP;
	assert_int_equal(att_encode(&pdu, out, sizeof(out)), -1); /* none */
	pdu.u.list.n = 2;
	pdu.u.list.e[0].value = v;
	pdu.u.list.e[0].value_len = 4;
	pdu.u.list.e[1].value = v;
	pdu.u.list.e[1].value_len = 3;
	assert_int_equal(att_encode(&pdu, out, sizeof(out)), -1); /* sizes */
	pdu.u.list.e[1].value_len = 4;
	assert_int_equal(att_encode(&pdu, out, sizeof(out)), 14);
	assert_int_equal(att_encode(&pdu, out, 13), -1); /* cap */
	/* A notification must fit the MTU. */
	pdu.op = ATT_OP_NOTIFY;
	pdu.u.write.handle = 0x12;
	pdu.u.write.value = big;
	pdu.u.write.len = 21;
	assert_int_equal(att_encode(&pdu, out, ATT_DEFAULT_MTU), -1);
	pdu.u.write.len = 20;
	assert_int_equal(att_encode(&pdu, out, ATT_DEFAULT_MTU), 23);
	pdu.op = ATT_OP_READ_BY_GROUP_REQ;
	pdu.u.range.type.len = 4;
	assert_int_equal(att_encode(&pdu, out, sizeof(out)), -1);
	pdu.op = 0x0a;
	assert_int_equal(att_encode(&pdu, out, sizeof(out)), -1);
	for (i = 0; i < 5; i++) {
		pdu.op = ATT_OP_ERROR_RSP;
		assert_int_equal(att_encode(&pdu, out, i), -1);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_uuid),
	    cmocka_unit_test(test_fixed_pdus),
	    cmocka_unit_test(test_lists),
	    cmocka_unit_test(test_decode_refusals),
	    cmocka_unit_test(test_encode_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
