/*
 * ATT PDU codec: the discovery, write and notification PDUs that SMP over
 * GATT uses, both directions, so the virtual board's ATT server and the BLE
 * worker's client share one implementation.  Checks every length.
 */
#include <stdio.h>
#include <string.h>

#include "att.h"

static uint16_t
get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static void
put16(uint8_t *p, uint16_t v)
{
	p[0] = v & 0xff;
	p[1] = v >> 8;
}

/* The Bluetooth base UUID, 0000xxxx-0000-1000-8000-00805f9b34fb. */
static const uint8_t base_uuid[16] = {0xfb, 0x34, 0x9b, 0x5f, 0x80, 0x00,
                                      0x00, 0x80, 0x00, 0x10, 0x00, 0x00,
                                      0x00, 0x00, 0x00, 0x00};

void
att_uuid16(struct att_uuid *u, uint16_t v)
{
	memset(u, 0, sizeof(*u));
	u->len = 2;
	put16(u->b, v);
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
att_uuid_parse(struct att_uuid *u, const char *s)
{
	uint8_t be[16];
	size_t i, n = 0;
	int hi, lo;

	for (i = 0; s[i] != '\0'; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return -1;
			continue;
		}
		if (n == 16 || (hi = hexval(s[i])) == -1 || s[i + 1] == '\0' ||
		    (lo = hexval(s[i + 1])) == -1)
			return -1;
		be[n++] = (uint8_t)(hi << 4 | lo);
		i++;
	}
	if (n != 16 || i != 36)
		return -1;
	memset(u, 0, sizeof(*u));
	u->len = 16;
	for (i = 0; i < 16; i++)
		u->b[i] = be[15 - i];
	return 0;
}

/* 16-bit UUIDs compare equal to their 128-bit form on the base UUID. */
static void
uuid_to128(const struct att_uuid *u, uint8_t out[16])
{
	if (u->len == 16) {
		memcpy(out, u->b, 16);
		return;
	}
	memcpy(out, base_uuid, 16);
	out[12] = u->b[0];
	out[13] = u->b[1];
}

bool
att_uuid_eq(const struct att_uuid *a, const struct att_uuid *b)
{
	uint8_t x[16], y[16];

	if ((a->len != 2 && a->len != 16) || (b->len != 2 && b->len != 16))
		return false;
	uuid_to128(a, x);
	uuid_to128(b, y);
	return memcmp(x, y, 16) == 0;
}

static int
fail(char *err, size_t errcap, const char *what, uint8_t op, size_t len)
{
	if (err != NULL && errcap > 0)
		snprintf(err, errcap, "%s (opcode 0x%02x, %zu bytes)", what, op,
		         len);
	return -1;
}

static int
decode_uuid(const uint8_t *p, size_t n, struct att_uuid *u)
{
	if (n != 2 && n != 16)
		return -1;
	memset(u, 0, sizeof(*u));
	u->len = (uint8_t)n;
	memcpy(u->b, p, n);
	return 0;
}

static int
decode_list(const uint8_t *buf, size_t len, struct att_pdu *pdu, char *err,
            size_t errcap)
{
	uint8_t op = buf[0];
	size_t elen, hdr, i, n;

	if (len < 2)
		return fail(err, errcap, "truncated list response", op, len);
	if (op == ATT_OP_FIND_INFO_RSP) {
		if (buf[1] != 1 && buf[1] != 2)
			return fail(err, errcap, "bad UUID format", op, len);
		elen = buf[1] == 1 ? 4 : 18;
	} else
		elen = buf[1];
	hdr = op == ATT_OP_READ_BY_GROUP_RSP ? 4 : 2;
	if (elen < hdr || (op == ATT_OP_READ_BY_GROUP_RSP && elen < 6))
		return fail(err, errcap, "entry length too small", op, len);
	if (len == 2 || (len - 2) % elen != 0)
		return fail(err, errcap, "response is not whole entries", op,
		            len);
	n = (len - 2) / elen;
	if (n > ATT_MAX_ENTRIES)
		return fail(err, errcap, "too many entries", op, len);
	pdu->u.list.n = n;
	for (i = 0; i < n; i++) {
		const uint8_t *p = buf + 2 + i * elen;
		struct att_entry *e = &pdu->u.list.e[i];

		memset(e, 0, sizeof(*e));
		e->handle = get16(p);
		if (op == ATT_OP_FIND_INFO_RSP) {
			decode_uuid(p + 2, elen - 2, &e->uuid);
			continue;
		}
		if (op == ATT_OP_READ_BY_GROUP_RSP)
			e->end = get16(p + 2);
		e->value = p + hdr;
		e->value_len = elen - hdr;
		/* A service declaration's value is the service UUID. */
		if (op == ATT_OP_READ_BY_GROUP_RSP &&
		    decode_uuid(e->value, e->value_len, &e->uuid) == -1)
			return fail(err, errcap,
			            "service UUID is neither 16 "
			            "nor 128 bits",
			            op, len);
	}
	return 0;
}

int
att_decode(const uint8_t *buf, size_t len, struct att_pdu *pdu, char *err,
           size_t errcap)
{
	uint8_t op;

	if (len == 0)
		return fail(err, errcap, "empty PDU", 0, len);
	/* Clear the fixed-size members; list entries are set one by one. */
	memset(&pdu->u, 0,
	       sizeof(pdu->u.range) > sizeof(pdu->u.write)
	           ? sizeof(pdu->u.range)
	           : sizeof(pdu->u.write));
	op = pdu->op = buf[0];
	switch (op) {
	case ATT_OP_ERROR_RSP:
		if (len != 5)
			return fail(err, errcap, "bad length", op, len);
		pdu->u.error.req_op = buf[1];
		pdu->u.error.handle = get16(buf + 2);
		pdu->u.error.code = buf[4];
		return 0;
	case ATT_OP_MTU_REQ:
	case ATT_OP_MTU_RSP:
		if (len != 3)
			return fail(err, errcap, "bad length", op, len);
		pdu->u.mtu = get16(buf + 1);
		return 0;
	case ATT_OP_FIND_INFO_REQ:
		if (len != 5)
			return fail(err, errcap, "bad length", op, len);
		pdu->u.range.start = get16(buf + 1);
		pdu->u.range.end = get16(buf + 3);
		return 0;
	case ATT_OP_READ_BY_TYPE_REQ:
	case ATT_OP_READ_BY_GROUP_REQ:
		if (len != 7 && len != 21)
			return fail(err, errcap, "bad length", op, len);
		pdu->u.range.start = get16(buf + 1);
		pdu->u.range.end = get16(buf + 3);
		decode_uuid(buf + 5, len - 5, &pdu->u.range.type);
		return 0;
	case ATT_OP_FIND_INFO_RSP:
	case ATT_OP_READ_BY_TYPE_RSP:
	case ATT_OP_READ_BY_GROUP_RSP:
		return decode_list(buf, len, pdu, err, errcap);
	case ATT_OP_WRITE_REQ:
	case ATT_OP_WRITE_CMD:
	case ATT_OP_NOTIFY:
		if (len < 3)
			return fail(err, errcap, "truncated", op, len);
		pdu->u.write.handle = get16(buf + 1);
		pdu->u.write.value = buf + 3;
		pdu->u.write.len = len - 3;
		return 0;
	case ATT_OP_WRITE_RSP:
		if (len != 1)
			return fail(err, errcap, "bad length", op, len);
		return 0;
	default:
		return fail(err, errcap, "unsupported opcode", op, len);
	}
}

static ssize_t
encode_list(const struct att_pdu *pdu, uint8_t *buf, size_t cap)
{
	const struct att_entry *e = pdu->u.list.e;
	size_t n = pdu->u.list.n, i, elen, hdr, vlen, pos;

	if (n == 0 || n > ATT_MAX_ENTRIES)
		return -1;
	hdr = pdu->op == ATT_OP_READ_BY_GROUP_RSP ? 4 : 2;
	if (pdu->op == ATT_OP_FIND_INFO_RSP) {
		if (e[0].uuid.len != 2 && e[0].uuid.len != 16)
			return -1;
		vlen = e[0].uuid.len;
	} else
		vlen = e[0].value_len;
	elen = hdr + vlen;
	if (elen > 255 || 2 + n * elen > cap)
		return -1;
	buf[0] = pdu->op;
	buf[1] = pdu->op == ATT_OP_FIND_INFO_RSP ? (vlen == 2 ? 1 : 2)
	                                         : (uint8_t)elen;
	pos = 2;
	for (i = 0; i < n; i++) {
		if (pdu->op == ATT_OP_FIND_INFO_RSP
		        ? e[i].uuid.len != vlen
		        : e[i].value_len != vlen ||
		              (vlen > 0 && e[i].value == NULL))
			return -1;
		put16(buf + pos, e[i].handle);
		if (pdu->op == ATT_OP_READ_BY_GROUP_RSP)
			put16(buf + pos + 2, e[i].end);
		if (pdu->op == ATT_OP_FIND_INFO_RSP)
			memcpy(buf + pos + 2, e[i].uuid.b, vlen);
		else if (vlen > 0)
			memcpy(buf + pos + hdr, e[i].value, vlen);
		pos += elen;
	}
	return (ssize_t)pos;
}

ssize_t
att_encode(const struct att_pdu *pdu, uint8_t *buf, size_t cap)
{
	size_t n;

	switch (pdu->op) {
	case ATT_OP_ERROR_RSP:
		if (cap < 5)
			return -1;
		buf[0] = pdu->op;
		buf[1] = pdu->u.error.req_op;
		put16(buf + 2, pdu->u.error.handle);
		buf[4] = pdu->u.error.code;
		return 5;
	case ATT_OP_MTU_REQ:
	case ATT_OP_MTU_RSP:
		if (cap < 3)
			return -1;
		buf[0] = pdu->op;
		put16(buf + 1, pdu->u.mtu);
		return 3;
	case ATT_OP_FIND_INFO_REQ:
		if (cap < 5)
			return -1;
		buf[0] = pdu->op;
		put16(buf + 1, pdu->u.range.start);
		put16(buf + 3, pdu->u.range.end);
		return 5;
	case ATT_OP_READ_BY_TYPE_REQ:
	case ATT_OP_READ_BY_GROUP_REQ:
		n = pdu->u.range.type.len;
		if ((n != 2 && n != 16) || cap < 5 + n)
			return -1;
		buf[0] = pdu->op;
		put16(buf + 1, pdu->u.range.start);
		put16(buf + 3, pdu->u.range.end);
		memcpy(buf + 5, pdu->u.range.type.b, n);
		return (ssize_t)(5 + n);
	case ATT_OP_FIND_INFO_RSP:
	case ATT_OP_READ_BY_TYPE_RSP:
	case ATT_OP_READ_BY_GROUP_RSP:
		return encode_list(pdu, buf, cap);
	case ATT_OP_WRITE_REQ:
	case ATT_OP_WRITE_CMD:
	case ATT_OP_NOTIFY:
		n = pdu->u.write.len;
		if (cap < 3 || n > cap - 3 ||
		    (n > 0 && pdu->u.write.value == NULL))
			return -1;
		buf[0] = pdu->op;
		put16(buf + 1, pdu->u.write.handle);
		if (n > 0)
			memcpy(buf + 3, pdu->u.write.value, n);
		return (ssize_t)(3 + n);
	case ATT_OP_WRITE_RSP:
		if (cap < 1)
			return -1;
		buf[0] = pdu->op;
		return 1;
	default:
		return -1;
	}
}

int
att_chr_decl_parse(const uint8_t *v, size_t len, struct att_chr_decl *c)
{
	if (len != 5 && len != 19)
		return -1;
	c->props = v[0];
	c->value_handle = get16(v + 1);
	return decode_uuid(v + 3, len - 3, &c->uuid);
}

size_t
att_chr_decl_encode(const struct att_chr_decl *c, uint8_t *out)
{
	size_t n = c->uuid.len == 16 ? 16 : 2;

	out[0] = c->props;
	put16(out + 1, c->value_handle);
	memcpy(out + 3, c->uuid.b, n);
	return 3 + n;
}
