/*
 * SMP (MCUmgr) client codecs and the upload planner: see smp.h.  The CBOR
 * underneath is smp_cbor.c's.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <cbor.h>

#include "smp.h"
#include "smp_cbor.h"

void
smp_hdr_encode(const struct smp_hdr *h, uint8_t out[SMP_HDR_SIZE])
{
	out[0] = (uint8_t)((h->op & 0x07) | ((h->version & 0x03) << 3));
	out[1] = h->flags;
	out[2] = (uint8_t)(h->len >> 8);
	out[3] = (uint8_t)h->len;
	out[4] = (uint8_t)(h->group >> 8);
	out[5] = (uint8_t)h->group;
	out[6] = h->seq;
	out[7] = h->id;
}

int
smp_hdr_decode(const uint8_t *buf, size_t len, struct smp_hdr *h)
{
	if (len < SMP_HDR_SIZE)
		return smp_fail(SMP_E_SHORT,
		                "packet of %zu bytes is shorter than "
		                "the 8-byte SMP header",
		                len);
	h->op = buf[0] & 0x07;
	h->version = (buf[0] >> 3) & 0x03;
	h->flags = buf[1];
	h->len = (uint16_t)(buf[2] << 8 | buf[3]);
	h->group = (uint16_t)(buf[4] << 8 | buf[5]);
	h->seq = buf[6];
	h->id = buf[7];
	if (h->op > SMP_OP_WRITE_RSP)
		return smp_fail(SMP_E_HEADER, "unknown SMP op %u", h->op);
	if (h->version > SMP_V2)
		return smp_fail(SMP_E_HEADER, "unknown SMP version %u",
		                h->version + 1);
	return SMP_OK;
}

size_t
smp_packet_len(const uint8_t *buf, size_t len)
{
	if (len < SMP_HDR_SIZE)
		return 0;
	return SMP_HDR_SIZE + (size_t)(buf[2] << 8 | buf[3]);
}

static int
missing(const char *key)
{
	return smp_fail(SMP_E_MISSING, "response has no \"%s\"", key);
}

struct echo_ctx {
	char *text;
	size_t cap;
	bool has;
};

static int
echo_field(struct cb_rd *r, const char *key, void *arg)
{
	struct echo_ctx *c = arg;
	int rc;

	if (strcmp(key, "r") != 0)
		return 1;
	if (c->has)
		return smp_fail(SMP_E_CBOR, "key \"r\" appears twice");
	if ((rc = cb_get_text(r, "r", c->text, c->cap, false)) == SMP_OK)
		c->has = true;
	return rc;
}

int
smp_rsp_echo(const uint8_t *pkt, size_t len, struct smp_err *err, char *text,
             size_t textcap)
{
	struct echo_ctx c = {text, textcap, false};
	int rc;

	if (textcap == 0)
		return smp_fail(SMP_E_RANGE, "no room for the echo text");
	text[0] = '\0';
	rc = smp_parse_rsp(pkt, len, SMP_GROUP_OS, SMP_OS_ECHO, err, echo_field,
	                   &c);
	if (rc != SMP_OK)
		return rc;
	return c.has ? SMP_OK : missing("r");
}

struct params_ctx {
	struct smp_params *p;
	unsigned int seen;
};

static int
params_field(struct cb_rd *r, const char *key, void *arg)
{
	struct params_ctx *c = arg;
	int rc;

	if (strcmp(key, "buf_size") == 0) {
		if ((rc = cb_seen_once(&c->seen, 1, key)) != SMP_OK)
			return rc;
		return cb_get_u32(r, key, &c->p->buf_size);
	}
	if (strcmp(key, "buf_count") == 0) {
		if ((rc = cb_seen_once(&c->seen, 2, key)) != SMP_OK)
			return rc;
		return cb_get_u32(r, key, &c->p->buf_count);
	}
	return 1;
}

int
smp_rsp_params(const uint8_t *pkt, size_t len, struct smp_err *err,
               struct smp_params *p)
{
	struct params_ctx c = {p, 0};
	int rc;

	memset(p, 0, sizeof(*p));
	rc = smp_parse_rsp(pkt, len, SMP_GROUP_OS, SMP_OS_PARAMS, err,
	                   params_field, &c);
	if (rc != SMP_OK)
		return rc;
	if ((c.seen & 1) == 0)
		return missing("buf_size");
	if ((c.seen & 2) == 0)
		return missing("buf_count");
	return SMP_OK;
}

/* One map of the "images" array. */
static int
slot_parse(struct cb_rd *r, size_t idx, struct smp_image_slot *s)
{
	static const char *const flag_names[] = {
	    "bootable", "pending", "confirmed", "active", "permanent"};
	bool *flags[] = {&s->bootable, &s->pending, &s->confirmed, &s->active,
	                 &s->permanent};
	struct cb_map m;
	char key[CB_KEY_MAX + 1], what[24];
	unsigned int seen = 0, i;
	size_t n;
	int rc, more;

	snprintf(what, sizeof(what), "images[%zu]", idx);
	memset(s, 0, sizeof(*s));
	if ((rc = cb_map_open(r, &m, what, false)) != SMP_OK)
		return rc;
	while ((more = cb_map_next(&m, key)) == 1) {
		if (strcmp(key, "image") == 0) {
			if ((rc = cb_seen_once(&seen, 1, key)) != SMP_OK ||
			    (rc = cb_get_u32(r, key, &s->image)) != SMP_OK)
				return rc;
		} else if (strcmp(key, "slot") == 0) {
			if ((rc = cb_seen_once(&seen, 2, key)) != SMP_OK ||
			    (rc = cb_get_u32(r, key, &s->slot)) != SMP_OK)
				return rc;
		} else if (strcmp(key, "version") == 0) {
			if ((rc = cb_seen_once(&seen, 4, key)) != SMP_OK ||
			    (rc = cb_get_text(r, key, s->version,
			                      sizeof(s->version), false)) !=
			        SMP_OK)
				return rc;
		} else if (strcmp(key, "hash") == 0) {
			if ((rc = cb_seen_once(&seen, 8, key)) != SMP_OK ||
			    (rc = cb_get_bytes(r, key, s->hash, sizeof(s->hash),
			                       &n)) != SMP_OK)
				return rc;
			if (n != SMP_HASH_LEN)
				return smp_fail(
				    SMP_E_RANGE,
				    "%s.hash is %zu bytes, expected %d", what,
				    n, SMP_HASH_LEN);
			s->has_hash = true;
		} else {
			for (i = 0; i < 5; i++)
				if (strcmp(key, flag_names[i]) == 0)
					break;
			if (i == 5) {
				rc = cb_skip(r);
			} else if ((rc = cb_seen_once(&seen, 16u << i, key)) ==
			           SMP_OK)
				rc = cb_get_bool(r, key, flags[i]);
			if (rc != SMP_OK)
				return rc;
		}
	}
	if (more < 0)
		return more;
	if ((seen & 2) == 0)
		return smp_fail(SMP_E_MISSING, "%s has no \"slot\"", what);
	if ((seen & 4) == 0)
		return smp_fail(SMP_E_MISSING, "%s has no \"version\"", what);
	return SMP_OK;
}

struct state_ctx {
	struct smp_image_list *list;
	bool has;
};

static int
state_field(struct cb_rd *r, const char *key, void *arg)
{
	struct state_ctx *c = arg;
	struct cb_item it;
	uint64_t left = 0;
	bool indef;
	int rc;

	if (strcmp(key, "images") != 0)
		return 1;
	if (c->has)
		return smp_fail(SMP_E_CBOR, "key \"images\" appears twice");
	c->has = true;
	if ((rc = cb_next(r, &it)) != SMP_OK)
		return rc;
	if (it.t != CB_ARRAY && it.t != CB_ARRAY_INDEF)
		return smp_fail(SMP_E_TYPE, "\"images\" is not an array");
	indef = it.t == CB_ARRAY_INDEF;
	left = it.v;
	for (;;) {
		if (!indef && left == 0)
			return SMP_OK;
		if (indef) {
			/* Peek for the break that ends the array. */
			if (r->pos < r->len && r->p[r->pos] == 0xff) {
				r->pos++;
				return SMP_OK;
			}
		} else
			left--;
		if (c->list->n == SMP_MAX_SLOTS)
			return smp_fail(SMP_E_RANGE, "more than %d images",
			                SMP_MAX_SLOTS);
		if ((rc = slot_parse(r, c->list->n,
		                     &c->list->slots[c->list->n])) != SMP_OK)
			return rc;
		c->list->n++;
	}
}

int
smp_rsp_image_state(const uint8_t *pkt, size_t len, struct smp_err *err,
                    struct smp_image_list *list)
{
	struct state_ctx c = {list, false};
	int rc;

	memset(list, 0, sizeof(*list));
	rc = smp_parse_rsp(pkt, len, SMP_GROUP_IMAGE, SMP_IMAGE_STATE, err,
	                   state_field, &c);
	if (rc != SMP_OK)
		return rc;
	return c.has ? SMP_OK : missing("images");
}

struct upload_ctx {
	struct smp_upload_rsp *rsp;
	unsigned int seen;
};

static int
upload_field(struct cb_rd *r, const char *key, void *arg)
{
	struct upload_ctx *c = arg;
	int rc;

	if (strcmp(key, "off") == 0) {
		if ((rc = cb_seen_once(&c->seen, 1, key)) != SMP_OK)
			return rc;
		return cb_get_u32(r, key, &c->rsp->off);
	}
	if (strcmp(key, "match") == 0) {
		if ((rc = cb_seen_once(&c->seen, 2, key)) != SMP_OK ||
		    (rc = cb_get_bool(r, key, &c->rsp->match)) != SMP_OK)
			return rc;
		c->rsp->has_match = true;
		return SMP_OK;
	}
	return 1;
}

int
smp_rsp_image_upload(const uint8_t *pkt, size_t len, struct smp_err *err,
                     struct smp_upload_rsp *rsp)
{
	struct upload_ctx c = {rsp, 0};
	int rc;

	memset(rsp, 0, sizeof(*rsp));
	rc = smp_parse_rsp(pkt, len, SMP_GROUP_IMAGE, SMP_IMAGE_UPLOAD, err,
	                   upload_field, &c);
	if (rc != SMP_OK)
		return rc;
	return (c.seen & 1) ? SMP_OK : missing("off");
}

int
smp_rsp_empty(const uint8_t *pkt, size_t len, struct smp_err *err)
{
	return smp_parse_rsp(pkt, len, SMP_ID_ANY, SMP_ID_ANY, err, NULL, NULL);
}

/* Readable names. */

const char *
smp_status_str(int status)
{
	switch (status) {
	case SMP_OK:
		return "ok";
	case SMP_E_BOARD:
		return "board reported an error";
	case SMP_E_SHORT:
		return "packet shorter than its header says";
	case SMP_E_HEADER:
		return "bad SMP header";
	case SMP_E_CBOR:
		return "payload is not one well-formed CBOR map";
	case SMP_E_TYPE:
		return "field of the wrong type";
	case SMP_E_MISSING:
		return "required field missing";
	case SMP_E_RANGE:
		return "value out of range";
	case SMP_E_NOSPACE:
		return "does not fit the buffer";
	}
	return "unknown status";
}

const char *
smp_rc_str(int rc)
{
	static const char *const names[] = {
	    "ok",
	    "unknown error",
	    "out of memory",
	    "invalid value",
	    "timeout",
	    "no such entry",
	    "bad state",
	    "message too large",
	    "not supported",
	    "corrupt",
	    "busy",
	    "access denied",
	    "protocol version too old",
	    "protocol version too new",
	};

	if (rc >= 0 && (size_t)rc < sizeof(names) / sizeof(names[0]))
		return names[rc];
	if (rc >= 256)
		return "application-specific error";
	return "unknown rc";
}

/* OS_MGMT_ERR_* (Zephyr os_mgmt.h). */
static const char *const os_err_names[] = {
    "ok",
    "unknown error",
    "invalid format",
    "query yields no answer",
    "RTC not set",
    "RTC command failed",
    "query response value not valid",
};

/* IMG_MGMT_ERR_* (Zephyr img_mgmt.h). */
static const char *const img_err_names[] = {
    "ok",
    "unknown error",
    "flash configuration query failed",
    "no image",
    "no TLVs",
    "invalid TLV",
    "multiple hash TLVs",
    "invalid TLV size",
    "hash not found",
    "no free slot",
    "flash open failed",
    "flash read failed",
    "flash write failed",
    "flash erase failed",
    "invalid slot",
    "no free memory",
    "flash context already set",
    "flash context not set",
    "flash area device is NULL",
    "invalid page offset",
    "invalid offset",
    "invalid length",
    "invalid image header",
    "invalid image header magic",
    "invalid hash",
    "invalid flash address",
    "version get failed",
    "current version is newer",
    "image already pending",
    "invalid image vector table",
    "image too large",
    "image data overrun",
    "image confirmation denied",
    "setting test to active slot denied",
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

const char *
smp_group_rc_str(uint16_t group, int rc)
{
	if (group == SMP_GROUP_OS && rc >= 0 &&
	    (size_t)rc < NELEM(os_err_names))
		return os_err_names[rc];
	if (group == SMP_GROUP_IMAGE && rc >= 0 &&
	    (size_t)rc < NELEM(img_err_names))
		return img_err_names[rc];
	return "unknown group error";
}

const char *
smp_err_str(const struct smp_err *err, char *buf, size_t cap)
{
	const char *grp;
	int n;

	if (cap == 0)
		return buf;
	if (err->v2) {
		grp = err->group == SMP_GROUP_OS      ? "os group "
		      : err->group == SMP_GROUP_IMAGE ? "image group "
		                                      : "";
		if (grp[0] != '\0')
			n = snprintf(buf, cap, "%src %d (%s)", grp, err->rc,
			             smp_group_rc_str(err->group, err->rc));
		else
			n = snprintf(buf, cap, "group %u rc %d", err->group,
			             err->rc);
	} else
		n = snprintf(buf, cap, "rc %d (%s)", err->rc,
		             smp_rc_str(err->rc));
	if (n >= 0 && (size_t)n < cap && err->rsn[0] != '\0')
		snprintf(buf + n, cap - (size_t)n, ": %s", err->rsn);
	return buf;
}

/* Client side: request builders. */

ssize_t
smp_req_echo(uint8_t *buf, size_t cap, int ver, uint8_t seq, const char *text)
{
	struct enc e;

	if (!smp_ver_ok(ver))
		return -1;
	if (text == NULL) {
		smp_fail(SMP_E_MISSING, "echo needs a text");
		return -1;
	}
	enc_start(&e, buf, cap);
	enc_map(&e, 1, false);
	enc_tstr(&e, "d");
	enc_tstr(&e, text);
	return enc_finish(&e, SMP_OP_WRITE, ver, SMP_GROUP_OS, seq,
	                  SMP_OS_ECHO);
}

static ssize_t
req_empty(uint8_t *buf, size_t cap, int ver, uint8_t seq, uint8_t op,
          uint16_t group, uint8_t id)
{
	struct enc e;

	if (!smp_ver_ok(ver))
		return -1;
	enc_start(&e, buf, cap);
	enc_map(&e, 0, false);
	return enc_finish(&e, op, ver, group, seq, id);
}

ssize_t
smp_req_reset(uint8_t *buf, size_t cap, int ver, uint8_t seq)
{
	return req_empty(buf, cap, ver, seq, SMP_OP_WRITE, SMP_GROUP_OS,
	                 SMP_OS_RESET);
}

ssize_t
smp_req_params(uint8_t *buf, size_t cap, int ver, uint8_t seq)
{
	return req_empty(buf, cap, ver, seq, SMP_OP_READ, SMP_GROUP_OS,
	                 SMP_OS_PARAMS);
}

ssize_t
smp_req_image_state_read(uint8_t *buf, size_t cap, int ver, uint8_t seq)
{
	return req_empty(buf, cap, ver, seq, SMP_OP_READ, SMP_GROUP_IMAGE,
	                 SMP_IMAGE_STATE);
}

ssize_t
smp_req_image_erase(uint8_t *buf, size_t cap, int ver, uint8_t seq)
{
	return req_empty(buf, cap, ver, seq, SMP_OP_WRITE, SMP_GROUP_IMAGE,
	                 SMP_IMAGE_ERASE);
}

ssize_t
smp_req_image_state_write(uint8_t *buf, size_t cap, int ver, uint8_t seq,
                          const uint8_t *hash, bool confirm)
{
	struct enc e;

	if (!smp_ver_ok(ver))
		return -1;
	if (hash == NULL && !confirm) {
		smp_fail(SMP_E_MISSING,
		         "marking an image for test needs its hash");
		return -1;
	}
	enc_start(&e, buf, cap);
	enc_map(&e, hash != NULL ? 2 : 1, false);
	if (hash != NULL) {
		enc_tstr(&e, "hash");
		enc_bstr(&e, hash, SMP_HASH_LEN);
	}
	enc_tstr(&e, "confirm");
	enc_bool(&e, confirm);
	return enc_finish(&e, SMP_OP_WRITE, ver, SMP_GROUP_IMAGE, seq,
	                  SMP_IMAGE_STATE);
}

/* Shared by the builder and the planner (which passes buf NULL). */
static ssize_t
upload_encode(struct enc *e, int ver, uint8_t seq,
              const struct smp_upload_req *req, const uint8_t *sha)
{
	if (req->first) {
		enc_map(e, sha != NULL ? 5 : 4, false);
		enc_tstr(e, "image");
		enc_uint(e, req->image);
		enc_tstr(e, "len");
		enc_uint(e, req->len);
		enc_tstr(e, "off");
		enc_uint(e, req->off);
		if (sha != NULL) {
			enc_tstr(e, "sha");
			enc_bstr(e, sha, SMP_HASH_LEN);
		}
	} else {
		enc_map(e, 2, false);
		enc_tstr(e, "off");
		enc_uint(e, req->off);
	}
	enc_tstr(e, "data");
	enc_bstr(e, req->data, req->data_len);
	return enc_finish(e, SMP_OP_WRITE, ver, SMP_GROUP_IMAGE, seq,
	                  SMP_IMAGE_UPLOAD);
}

ssize_t
smp_req_image_upload(uint8_t *buf, size_t cap, int ver, uint8_t seq,
                     const struct smp_upload_req *req)
{
	struct enc e;

	if (!smp_ver_ok(ver))
		return -1;
	if (req->data == NULL && req->data_len > 0) {
		smp_fail(SMP_E_MISSING, "upload data is NULL");
		return -1;
	}
	enc_start(&e, buf, cap);
	return upload_encode(&e, ver, seq, req, req->first ? req->sha : NULL);
}

/* Server side: request decoding. */

/* Upload planner. */

size_t
smp_pkt_limit(bool have_params, const struct smp_params *p, bool serial,
              size_t cfg_mtu)
{
	size_t l;

	if (have_params && p != NULL && p->buf_size > 0) {
		l = p->buf_size;
		if (serial) /* the buffer also holds length and CRC */
			l = l > 4 ? l - 4 : 0;
	} else if (cfg_mtu > 0)
		l = cfg_mtu;
	else
		l = SMP_DEFAULT_PKT_LIMIT;
	return l < SMP_MAX_PACKET ? l : SMP_MAX_PACKET;
}

/* Size of an upload packet, measured with the real encoder. */
static size_t
upload_pkt_size(bool first, uint32_t image_len, uint32_t off, size_t n)
{
	static const uint8_t sha[SMP_HASH_LEN];
	struct smp_upload_req q = {0};
	struct enc e;
	ssize_t sz;

	q.first = first;
	q.image = 0;
	q.len = image_len;
	q.off = off;
	q.data = NULL; /* counting only */
	q.data_len = n;
	e.buf = NULL;
	e.cap = SIZE_MAX;
	e.pos = SMP_HDR_SIZE;
	e.full = false;
	sz = upload_encode(&e, SMP_V1, 0, &q, first ? sha : NULL);
	return sz < 0 ? SIZE_MAX : (size_t)sz;
}

/* The largest n with upload_pkt_size(n) <= limit, or 0 if none. */
static size_t
largest_chunk(size_t limit, bool first, uint32_t image_len, uint32_t off)
{
	size_t base = upload_pkt_size(first, image_len, off, 0), n;

	if (base >= limit)
		return 0;
	/* The byte-string head grows by at most 8 bytes: a few steps. */
	n = limit - base;
	while (n > 0 && upload_pkt_size(first, image_len, off, n) > limit)
		n--;
	return n;
}

int
smp_plan_upload(size_t pkt_limit, unsigned int buf_count, int ver,
                uint32_t image_len, struct smp_upload_plan *plan)
{
	uint32_t last_off = image_len > 0 ? image_len - 1 : 0;

	memset(plan, 0, sizeof(*plan));
	if (!smp_ver_ok(ver))
		return SMP_E_HEADER;
	if (pkt_limit > SMP_MAX_PACKET)
		pkt_limit = SMP_MAX_PACKET;
	plan->pkt_limit = pkt_limit;
	plan->first_chunk = largest_chunk(pkt_limit, true, image_len, 0);
	plan->chunk = largest_chunk(pkt_limit, false, image_len, last_off);
	plan->window = buf_count > 1 ? buf_count - 1 : 1;
	if (plan->first_chunk == 0 || plan->chunk == 0)
		return smp_fail(
		    SMP_E_RANGE,
		    "a packet limit of %zu bytes leaves no room for upload "
		    "data (the first packet alone needs %zu)",
		    pkt_limit, upload_pkt_size(true, image_len, 0, 1));
	return SMP_OK;
}
