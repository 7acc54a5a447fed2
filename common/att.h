/*
 * Bluetooth ATT protocol data units (Core spec vol 3 part F): the subset a
 * GATT client needs to find and use the SMP characteristic, and a server
 * needs to offer it.  Encode and decode in both directions; pure, no I/O.
 * Multi-byte fields and UUIDs are little-endian on the wire.
 */
#ifndef ATT_H
#define ATT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ATT_OP_ERROR_RSP         0x01
#define ATT_OP_MTU_REQ           0x02
#define ATT_OP_MTU_RSP           0x03
#define ATT_OP_FIND_INFO_REQ     0x04
#define ATT_OP_FIND_INFO_RSP     0x05
#define ATT_OP_READ_BY_TYPE_REQ  0x08
#define ATT_OP_READ_BY_TYPE_RSP  0x09
#define ATT_OP_READ_BY_GROUP_REQ 0x10
#define ATT_OP_READ_BY_GROUP_RSP 0x11
#define ATT_OP_WRITE_REQ         0x12
#define ATT_OP_WRITE_RSP         0x13
#define ATT_OP_NOTIFY            0x1b
#define ATT_OP_WRITE_CMD         0x52

/* Error Response codes. */
#define ATT_ERR_INVALID_HANDLE      0x01
#define ATT_ERR_READ_NOT_PERMITTED  0x02
#define ATT_ERR_WRITE_NOT_PERMITTED 0x03
#define ATT_ERR_INVALID_PDU         0x04
#define ATT_ERR_REQ_NOT_SUPPORTED   0x06
#define ATT_ERR_ATTR_NOT_FOUND      0x0a
#define ATT_ERR_INVALID_ATTR_LEN    0x0d
#define ATT_ERR_UNSUPPORTED_GROUP   0x10

#define ATT_DEFAULT_MTU 23
#define ATT_MAX_MTU     517
/* Most entries one response can carry (4-byte entries in 517 bytes). */
#define ATT_MAX_ENTRIES 128

/* GATT declaration and descriptor types (16-bit UUIDs). */
#define ATT_UUID_PRIMARY_SERVICE 0x2800
#define ATT_UUID_CHARACTERISTIC  0x2803
#define ATT_UUID_CCCD            0x2902

/* Characteristic properties. */
#define ATT_PROP_READ         0x02
#define ATT_PROP_WRITE_NO_RSP 0x04
#define ATT_PROP_WRITE        0x08
#define ATT_PROP_NOTIFY       0x10

struct att_uuid {
	uint8_t len;   /* 2 or 16 */
	uint8_t b[16]; /* wire order (little-endian) */
};

void att_uuid16(struct att_uuid *u, uint16_t v);
/* "8d53dc1d-1db7-4cd3-868b-8a527460aa84" -> 128-bit; returns 0 or -1. */
int att_uuid_parse(struct att_uuid *u, const char *s);
bool att_uuid_eq(const struct att_uuid *a, const struct att_uuid *b);

/* One entry of a Find Information, Read By Type or By Group Type reply. */
struct att_entry {
	uint16_t handle;
	uint16_t end;         /* Read By Group Type: group end handle */
	struct att_uuid uuid; /* Find Information: the attribute type */
	const uint8_t *value; /* Read By (Group) Type: attribute value */
	size_t value_len;
};

struct att_pdu {
	uint8_t op;
	union {
		struct {
			uint8_t req_op;
			uint16_t handle;
			uint8_t code;
		} error;
		uint16_t mtu; /* MTU request and response */
		/* Find Information, Read By Type, Read By Group Type req. */
		struct {
			uint16_t start;
			uint16_t end;
			struct att_uuid type; /* not for Find Information */
		} range;
		/* Find Information, Read By Type, Read By Group Type rsp. */
		struct {
			size_t n;
			struct att_entry e[ATT_MAX_ENTRIES];
		} list;
		/* Write Request, Write Command, Notification. */
		struct {
			uint16_t handle;
			const uint8_t *value;
			size_t len;
		} write;
	} u;
};

/*
 * Decode one PDU; pointers point into buf.  Returns 0, or -1 with a reason
 * in err (unknown opcode, wrong length, inconsistent entry sizes).
 */
int att_decode(const uint8_t *buf, size_t len, struct att_pdu *pdu, char *err,
               size_t errcap);
/*
 * Encode one PDU; returns its length, or -1 when it does not fit cap (pass
 * the ATT MTU as cap) or is inconsistent (list entries of different sizes,
 * no entries, a UUID that is neither 16 nor 128 bits).
 */
ssize_t att_encode(const struct att_pdu *pdu, uint8_t *buf, size_t cap);

/* A characteristic declaration's value: properties, value handle, UUID. */
struct att_chr_decl {
	uint8_t props;
	uint16_t value_handle;
	struct att_uuid uuid;
};

int att_chr_decl_parse(const uint8_t *v, size_t len, struct att_chr_decl *c);
/* Writes 5 or 19 bytes into out (at least 19 long); returns the length. */
size_t att_chr_decl_encode(const struct att_chr_decl *c, uint8_t *out);

#endif
