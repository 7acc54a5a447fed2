/*
 * SMP (MCUmgr) message codecs and the upload planner: see smp.h.  CBOR is
 * read with libcbor's streaming decoder one item at a time, so parsing
 * allocates nothing and walks nested items without recursion.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <cbor.h>

#include "smp.h"

/* How deep an item we skip may nest (maps in arrays in maps...). */
#define CB_MAX_DEPTH 16
/* Longest map key we look at; longer keys are unknown by construction. */
#define CB_KEY_MAX 16

static __thread char detail_buf[192];

const char *
smp_error_detail(void)
{
	return detail_buf;
}

static int fail(int status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Record why an operation failed and return status. */
static int
fail(int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail_buf, sizeof(detail_buf), fmt, ap);
	va_end(ap);
	return status;
}

/* Header. */

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
		return fail(SMP_E_SHORT,
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
		return fail(SMP_E_HEADER, "unknown SMP op %u", h->op);
	if (h->version > SMP_V2)
		return fail(SMP_E_HEADER, "unknown SMP version %u",
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

/*
 * Decode a header and check it against the whole packet: the payload
 * length must match what we were given exactly.
 */
static int
hdr_check(const uint8_t *pkt, size_t len, struct smp_hdr *h)
{
	int rc;

	if ((rc = smp_hdr_decode(pkt, len, h)) != SMP_OK)
		return rc;
	if (len - SMP_HDR_SIZE < h->len)
		return fail(SMP_E_SHORT,
		            "header says %u payload bytes, packet has %zu",
		            h->len, len - SMP_HDR_SIZE);
	if (len - SMP_HDR_SIZE > h->len)
		return fail(SMP_E_HEADER,
		            "header says %u payload bytes, packet has %zu",
		            h->len, len - SMP_HDR_SIZE);
	return SMP_OK;
}

/*
 * CBOR reading.  cb_next() decodes one item head (or one whole definite
 * string) through libcbor's callbacks into a struct cb_item.
 */

enum cb_type {
	CB_OTHER, /* a scalar we have no use for (float, simple value) */
	CB_UINT,
	CB_NEGINT, /* value is -1 - v */
	CB_BSTR,
	CB_TSTR,
	CB_BSTR_INDEF,
	CB_TSTR_INDEF,
	CB_ARRAY,
	CB_ARRAY_INDEF,
	CB_MAP,
	CB_MAP_INDEF,
	CB_TAG,
	CB_BOOL,
	CB_NULL,
	CB_BREAK,
};

struct cb_item {
	enum cb_type t;
	uint64_t v; /* integer value, container count, tag */
	const uint8_t *p;
	size_t n; /* string bytes */
	bool b;
};

struct cb_rd {
	const uint8_t *p;
	size_t len;
	size_t pos;
};

static void
cb_set_uint(void *ctx, uint64_t v)
{
	struct cb_item *it = ctx;

	it->t = CB_UINT;
	it->v = v;
}

static void
cb_uint8(void *ctx, uint8_t v)
{
	cb_set_uint(ctx, v);
}

static void
cb_uint16(void *ctx, uint16_t v)
{
	cb_set_uint(ctx, v);
}

static void
cb_uint32(void *ctx, uint32_t v)
{
	cb_set_uint(ctx, v);
}

static void
cb_set_negint(void *ctx, uint64_t v)
{
	struct cb_item *it = ctx;

	it->t = CB_NEGINT;
	it->v = v;
}

static void
cb_negint8(void *ctx, uint8_t v)
{
	cb_set_negint(ctx, v);
}

static void
cb_negint16(void *ctx, uint16_t v)
{
	cb_set_negint(ctx, v);
}

static void
cb_negint32(void *ctx, uint32_t v)
{
	cb_set_negint(ctx, v);
}

static void
cb_bstr(void *ctx, cbor_data p, size_t n)
{
	struct cb_item *it = ctx;

	it->t = CB_BSTR;
	it->p = p;
	it->n = n;
}

static void
cb_tstr(void *ctx, cbor_data p, size_t n)
{
	struct cb_item *it = ctx;

	it->t = CB_TSTR;
	it->p = p;
	it->n = n;
}

static void
cb_bstr_indef(void *ctx)
{
	((struct cb_item *)ctx)->t = CB_BSTR_INDEF;
}

static void
cb_tstr_indef(void *ctx)
{
	((struct cb_item *)ctx)->t = CB_TSTR_INDEF;
}

static void
cb_array(void *ctx, size_t n)
{
	struct cb_item *it = ctx;

	it->t = CB_ARRAY;
	it->v = n;
}

static void
cb_array_indef(void *ctx)
{
	((struct cb_item *)ctx)->t = CB_ARRAY_INDEF;
}

static void
cb_map(void *ctx, size_t n)
{
	struct cb_item *it = ctx;

	it->t = CB_MAP;
	it->v = n;
}

static void
cb_map_indef(void *ctx)
{
	((struct cb_item *)ctx)->t = CB_MAP_INDEF;
}

static void
cb_tag(void *ctx, uint64_t v)
{
	struct cb_item *it = ctx;

	it->t = CB_TAG;
	it->v = v;
}

static void
cb_float(void *ctx, float f)
{
	(void)f;
	((struct cb_item *)ctx)->t = CB_OTHER;
}

static void
cb_double(void *ctx, double d)
{
	(void)d;
	((struct cb_item *)ctx)->t = CB_OTHER;
}

static void
cb_null(void *ctx)
{
	((struct cb_item *)ctx)->t = CB_NULL;
}

static void
cb_undef(void *ctx)
{
	((struct cb_item *)ctx)->t = CB_OTHER;
}

static void
cb_bool(void *ctx, bool b)
{
	struct cb_item *it = ctx;

	it->t = CB_BOOL;
	it->b = b;
}

static void
cb_break(void *ctx)
{
	((struct cb_item *)ctx)->t = CB_BREAK;
}

static const struct cbor_callbacks cb_callbacks = {
    .uint8 = cb_uint8,
    .uint16 = cb_uint16,
    .uint32 = cb_uint32,
    .uint64 = cb_set_uint,
    .negint8 = cb_negint8,
    .negint16 = cb_negint16,
    .negint32 = cb_negint32,
    .negint64 = cb_set_negint,
    .byte_string_start = cb_bstr_indef,
    .byte_string = cb_bstr,
    .string = cb_tstr,
    .string_start = cb_tstr_indef,
    .indef_array_start = cb_array_indef,
    .array_start = cb_array,
    .indef_map_start = cb_map_indef,
    .map_start = cb_map,
    .tag = cb_tag,
    .float2 = cb_float,
    .float4 = cb_float,
    .float8 = cb_double,
    .undefined = cb_undef,
    .null = cb_null,
    .boolean = cb_bool,
    .indef_break = cb_break,
};

static int
cb_next(struct cb_rd *r, struct cb_item *it)
{
	struct cbor_decoder_result res;
	size_t room = r->len - r->pos;

	memset(it, 0, sizeof(*it));
	it->t = CB_OTHER;
	if (room == 0)
		return fail(SMP_E_CBOR, "CBOR payload ends early at byte %zu",
		            r->pos);
	res = cbor_stream_decode(r->p + r->pos, room, &cb_callbacks, it);
	if (res.status == CBOR_DECODER_NEDATA)
		return fail(SMP_E_CBOR,
		            "CBOR item at payload byte %zu runs past the end",
		            r->pos);
	if (res.status != CBOR_DECODER_FINISHED || res.read == 0 ||
	    res.read > room)
		return fail(SMP_E_CBOR, "malformed CBOR at payload byte %zu",
		            r->pos);
	/* Belt and braces: a string must lie inside what we handed over. */
	if ((it->t == CB_BSTR || it->t == CB_TSTR) &&
	    (it->p < r->p + r->pos || it->n > room ||
	     it->p + it->n > r->p + r->pos + res.read))
		return fail(SMP_E_CBOR,
		            "CBOR string at payload byte %zu runs past the end",
		            r->pos);
	r->pos += res.read;
	return SMP_OK;
}

/* One open container while skipping. */
struct cb_frame {
	uint64_t left; /* items still to come (definite) */
	uint64_t seen; /* items seen (indefinite), for map parity */
	bool indef;
	bool map;
	enum cb_type chunk; /* indefinite strings: required chunk type */
};

/* Push a frame when it opens a container; scalars push nothing. */
static int
cb_push(struct cb_frame *st, int *sp, const struct cb_item *it)
{
	struct cb_frame f = {0};

	f.chunk = CB_OTHER;
	switch (it->t) {
	case CB_ARRAY:
		f.left = it->v;
		break;
	case CB_MAP:
		if (it->v > UINT64_MAX / 2)
			return fail(SMP_E_CBOR,
			            "CBOR map with %" PRIu64
			            " entries cannot fit the payload",
			            it->v);
		f.left = it->v * 2;
		f.map = true;
		break;
	case CB_TAG:
		f.left = 1;
		break;
	case CB_ARRAY_INDEF:
		f.indef = true;
		break;
	case CB_MAP_INDEF:
		f.indef = f.map = true;
		break;
	case CB_BSTR_INDEF:
		f.indef = true;
		f.chunk = CB_BSTR;
		break;
	case CB_TSTR_INDEF:
		f.indef = true;
		f.chunk = CB_TSTR;
		break;
	default:
		return SMP_OK;
	}
	if (*sp >= CB_MAX_DEPTH)
		return fail(SMP_E_CBOR, "CBOR nested deeper than %d levels",
		            CB_MAX_DEPTH);
	st[(*sp)++] = f;
	return SMP_OK;
}

/*
 * Consume whatever belongs to an item whose head was just read (the
 * members of a container, the chunks of an indefinite string, the item
 * under a tag).  Iterative with a bounded stack: a nesting bomb is an
 * error, not a crash.
 */
static int
cb_skip_rest(struct cb_rd *r, const struct cb_item *head)
{
	struct cb_frame st[CB_MAX_DEPTH], *f;
	struct cb_item it = *head;
	int sp = 0, rc;

	for (;;) {
		if ((rc = cb_push(st, &sp, &it)) != SMP_OK)
			return rc;
		while (sp > 0 && !st[sp - 1].indef && st[sp - 1].left == 0)
			sp--;
		if (sp == 0)
			return SMP_OK;
		if ((rc = cb_next(r, &it)) != SMP_OK)
			return rc;
		f = &st[sp - 1];
		if (it.t == CB_BREAK) {
			if (!f->indef)
				return fail(
				    SMP_E_CBOR,
				    "CBOR break outside an indefinite-length "
				    "item at payload byte %zu",
				    r->pos - 1);
			if (f->map && f->seen % 2 != 0)
				return fail(
				    SMP_E_CBOR,
				    "CBOR map ends after a key with no value");
			sp--;
			it.t = CB_OTHER;
			continue;
		}
		if (f->chunk != CB_OTHER && it.t != f->chunk)
			return fail(
			    SMP_E_CBOR,
			    "indefinite-length string holds a chunk that is "
			    "not a definite string of its type");
		if (f->indef)
			f->seen++;
		else
			f->left--;
	}
}

static int
cb_skip(struct cb_rd *r)
{
	struct cb_item it;
	int rc;

	if ((rc = cb_next(r, &it)) != SMP_OK)
		return rc;
	if (it.t == CB_BREAK)
		return fail(
		    SMP_E_CBOR,
		    "unexpected CBOR break (a map key without a value?)");
	return cb_skip_rest(r, &it);
}

/*
 * Collect a text or byte string (definite or chunked) whose head is it.
 * With dst, copy up to cap bytes and report the full length in *n (the
 * caller decides whether longer is an error); without dst only count.
 */
static int
cb_collect(struct cb_rd *r, const struct cb_item *it, enum cb_type want,
           uint8_t *dst, size_t cap, size_t *n)
{
	struct cb_item c;
	int rc;

	*n = 0;
	if (it->t == want) {
		if (dst != NULL)
			memcpy(dst, it->p, it->n < cap ? it->n : cap);
		*n = it->n;
		return SMP_OK;
	}
	for (;;) {
		if ((rc = cb_next(r, &c)) != SMP_OK)
			return rc;
		if (c.t == CB_BREAK)
			return SMP_OK;
		if (c.t != want)
			return fail(
			    SMP_E_CBOR,
			    "indefinite-length string holds a chunk that is "
			    "not a definite string of its type");
		if (dst != NULL && *n < cap)
			memcpy(dst + *n, c.p, c.n < cap - *n ? c.n : cap - *n);
		*n += c.n;
	}
}

/* Typed value readers; name is the field, for the error text. */

static int
rd_uint(struct cb_rd *r, const char *name, uint64_t max, uint64_t *out)
{
	struct cb_item it;
	int rc;

	if ((rc = cb_next(r, &it)) != SMP_OK)
		return rc;
	if (it.t == CB_NEGINT)
		return fail(SMP_E_RANGE, "\"%s\" is negative", name);
	if (it.t != CB_UINT)
		return fail(SMP_E_TYPE, "\"%s\" is not an unsigned integer",
		            name);
	if (it.v > max)
		return fail(SMP_E_RANGE,
		            "\"%s\" = %" PRIu64 " exceeds %" PRIu64, name, it.v,
		            max);
	*out = it.v;
	return SMP_OK;
}

static int
rd_u32(struct cb_rd *r, const char *name, uint32_t *out)
{
	uint64_t v = 0;
	int rc;

	if ((rc = rd_uint(r, name, UINT32_MAX, &v)) == SMP_OK)
		*out = (uint32_t)v;
	return rc;
}

static int
rd_int(struct cb_rd *r, const char *name, int *out)
{
	struct cb_item it;
	int rc;

	if ((rc = cb_next(r, &it)) != SMP_OK)
		return rc;
	if (it.t == CB_UINT) {
		if (it.v > INT_MAX)
			return fail(SMP_E_RANGE,
			            "\"%s\" = %" PRIu64 " does not fit an int",
			            name, it.v);
		*out = (int)it.v;
		return SMP_OK;
	}
	if (it.t == CB_NEGINT) {
		/* value = -1 - v; INT_MIN = -1 - INT_MAX */
		if (it.v > (uint64_t)INT_MAX)
			return fail(SMP_E_RANGE,
			            "\"%s\" = -1-%" PRIu64
			            " does not fit an int",
			            name, it.v);
		*out = -1 - (int)it.v;
		return SMP_OK;
	}
	return fail(SMP_E_TYPE, "\"%s\" is not an integer", name);
}

static int
rd_bool(struct cb_rd *r, const char *name, bool *out)
{
	struct cb_item it;
	int rc;

	if ((rc = cb_next(r, &it)) != SMP_OK)
		return rc;
	if (it.t != CB_BOOL)
		return fail(SMP_E_TYPE, "\"%s\" is not a boolean", name);
	*out = it.b;
	return SMP_OK;
}

/*
 * Text into dst (NUL-terminated).  Too long: SMP_E_RANGE, or cut when
 * truncate is set (for informational text such as "rsn").
 */
static int
rd_text(struct cb_rd *r, const char *name, char *dst, size_t cap, bool truncate)
{
	struct cb_item it;
	size_t n;
	int rc;

	if ((rc = cb_next(r, &it)) != SMP_OK)
		return rc;
	if (it.t != CB_TSTR && it.t != CB_TSTR_INDEF)
		return fail(SMP_E_TYPE, "\"%s\" is not a text string", name);
	if ((rc = cb_collect(r, &it, CB_TSTR, (uint8_t *)dst, cap - 1, &n)) !=
	    SMP_OK)
		return rc;
	if (n > cap - 1) {
		if (!truncate)
			return fail(SMP_E_RANGE,
			            "\"%s\" is %zu bytes, at most %zu fit",
			            name, n, cap - 1);
		n = cap - 1;
	}
	dst[n] = '\0';
	if (strlen(dst) != n)
		return fail(SMP_E_RANGE, "\"%s\" contains a NUL character",
		            name);
	return SMP_OK;
}

/* Bytes copied into dst: more than cap is SMP_E_RANGE. */
static int
rd_bytes(struct cb_rd *r, const char *name, uint8_t *dst, size_t cap, size_t *n)
{
	struct cb_item it;
	int rc;

	if ((rc = cb_next(r, &it)) != SMP_OK)
		return rc;
	if (it.t != CB_BSTR && it.t != CB_BSTR_INDEF)
		return fail(SMP_E_TYPE, "\"%s\" is not a byte string", name);
	if ((rc = cb_collect(r, &it, CB_BSTR, dst, cap, n)) != SMP_OK)
		return rc;
	if (*n > cap)
		return fail(SMP_E_RANGE, "\"%s\" is %zu bytes, at most %zu fit",
		            name, *n, cap);
	return SMP_OK;
}

/*
 * Bytes by reference into the packet.  A chunked string is accepted when
 * it has at most one chunk: more cannot be one pointer (no real client
 * splits upload data).
 */
static int
rd_bytes_ref(struct cb_rd *r, const char *name, const uint8_t **p, size_t *n)
{
	struct cb_item it, c;
	int rc;

	if ((rc = cb_next(r, &it)) != SMP_OK)
		return rc;
	if (it.t == CB_BSTR) {
		*p = it.p;
		*n = it.n;
		return SMP_OK;
	}
	if (it.t != CB_BSTR_INDEF)
		return fail(SMP_E_TYPE, "\"%s\" is not a byte string", name);
	*p = r->p + r->pos;
	*n = 0;
	if ((rc = cb_next(r, &c)) != SMP_OK)
		return rc;
	if (c.t == CB_BREAK)
		return SMP_OK;
	if (c.t != CB_BSTR)
		return fail(
		    SMP_E_CBOR,
		    "indefinite-length string holds a chunk that is not a "
		    "definite string of its type");
	*p = c.p;
	*n = c.n;
	if ((rc = cb_next(r, &c)) != SMP_OK)
		return rc;
	if (c.t != CB_BREAK)
		return fail(SMP_E_TYPE,
		            "\"%s\" is split into several chunks (unsupported)",
		            name);
	return SMP_OK;
}

/* Iterating over a map's text keys. */
struct cb_map {
	struct cb_rd *r;
	bool indef;
	uint64_t left;
};

/* Open a map; top says whether it is the payload itself. */
static int
map_open(struct cb_rd *r, struct cb_map *m, const char *what, bool top)
{
	struct cb_item it;
	int rc;

	m->r = r;
	m->indef = false;
	m->left = 0;
	if (top && r->len == 0)
		return SMP_OK; /* an empty payload reads as an empty map */
	if ((rc = cb_next(r, &it)) != SMP_OK)
		return rc;
	if (it.t == CB_MAP_INDEF) {
		m->indef = true;
		return SMP_OK;
	}
	if (it.t == CB_MAP) {
		m->left = it.v;
		return SMP_OK;
	}
	return fail(top ? SMP_E_CBOR : SMP_E_TYPE, "%s is not a CBOR map",
	            what);
}

/*
 * Next entry: returns 1 with the key in key (empty when it is not a short
 * text key: the caller must then skip the value), 0 at the end of the map,
 * or a negative status.  Entries with non-text keys are skipped here.
 */
static int
map_next(struct cb_map *m, char *key)
{
	struct cb_item it;
	size_t n;
	int rc;

	for (;;) {
		if (!m->indef && m->left == 0)
			return 0;
		if ((rc = cb_next(m->r, &it)) != SMP_OK)
			return rc;
		if (it.t == CB_BREAK) {
			if (!m->indef)
				return fail(
				    SMP_E_CBOR,
				    "CBOR break inside a definite-length map");
			return 0;
		}
		if (!m->indef)
			m->left--;
		if (it.t == CB_TSTR || it.t == CB_TSTR_INDEF) {
			if ((rc = cb_collect(m->r, &it, CB_TSTR, (uint8_t *)key,
			                     CB_KEY_MAX, &n)) != SMP_OK)
				return rc;
			if (n >= CB_KEY_MAX || memchr(key, '\0', n) != NULL)
				n = 0;
			key[n] = '\0';
			return 1;
		}
		if ((rc = cb_skip_rest(m->r, &it)) != SMP_OK ||
		    (rc = cb_skip(m->r)) != SMP_OK)
			return rc;
	}
}

/* Require the map to have been the whole payload. */
static int
payload_end(const struct cb_rd *r)
{
	if (r->pos != r->len)
		return fail(SMP_E_CBOR,
		            "%zu bytes of trailing data after the CBOR map",
		            r->len - r->pos);
	return SMP_OK;
}

/* Each known key may appear once. */
static int
seen_once(unsigned int *seen, unsigned int bit, const char *key)
{
	if (*seen & bit)
		return fail(SMP_E_CBOR, "key \"%s\" appears twice", key);
	*seen |= bit;
	return SMP_OK;
}

/*
 * Client side: the parts every response shares.  A field callback reads
 * the value of a key it knows and returns SMP_OK, or 1 for a key it does
 * not know (skipped), or a negative status.
 */
typedef int (*field_fn)(struct cb_rd *r, const char *key, void *arg);

#define ID_ANY -1

static int
rsp_err_map(struct cb_rd *r, struct smp_err *e)
{
	struct cb_map m;
	char key[CB_KEY_MAX + 1];
	unsigned int seen = 0;
	uint64_t g;
	int rc, more;

	if ((rc = map_open(r, &m, "\"err\"", false)) != SMP_OK)
		return rc;
	while ((more = map_next(&m, key)) == 1) {
		if (strcmp(key, "group") == 0) {
			if ((rc = seen_once(&seen, 1, "err.group")) != SMP_OK ||
			    (rc = rd_uint(r, "err.group", UINT16_MAX, &g)) !=
			        SMP_OK)
				return rc;
			e->group = (uint16_t)g;
		} else if (strcmp(key, "rc") == 0) {
			if ((rc = seen_once(&seen, 2, "err.rc")) != SMP_OK ||
			    (rc = rd_int(r, "err.rc", &e->rc)) != SMP_OK)
				return rc;
		} else if ((rc = cb_skip(r)) != SMP_OK)
			return rc;
	}
	if (more < 0)
		return more;
	if ((seen & 1) == 0)
		return fail(SMP_E_MISSING, "\"err\" has no \"group\"");
	if ((seen & 2) == 0)
		return fail(SMP_E_MISSING, "\"err\" has no \"rc\"");
	return SMP_OK;
}

static int
parse_rsp(const uint8_t *pkt, size_t len, int group, int id,
          struct smp_err *err, field_fn fn, void *arg)
{
	struct smp_hdr h;
	struct smp_err e, v2;
	struct cb_rd r;
	struct cb_map m;
	char key[CB_KEY_MAX + 1];
	unsigned int seen = 0;
	int rc, more;

	memset(&e, 0, sizeof(e));
	memset(&v2, 0, sizeof(v2));
	if (err != NULL)
		memset(err, 0, sizeof(*err));
	if ((rc = hdr_check(pkt, len, &h)) != SMP_OK)
		return rc;
	if (h.op != SMP_OP_READ_RSP && h.op != SMP_OP_WRITE_RSP)
		return fail(SMP_E_HEADER, "op %u is not a response", h.op);
	if (group >= 0 && h.group != group)
		return fail(SMP_E_HEADER,
		            "response for group %u, expected group %d", h.group,
		            group);
	if (id >= 0 && h.id != id)
		return fail(SMP_E_HEADER,
		            "response for command %u, expected command %d",
		            h.id, id);

	r.p = pkt + SMP_HDR_SIZE;
	r.len = h.len;
	r.pos = 0;
	if ((rc = map_open(&r, &m, "payload", true)) != SMP_OK)
		return rc;
	while ((more = map_next(&m, key)) == 1) {
		if (strcmp(key, "rc") == 0) {
			if ((rc = seen_once(&seen, 1, key)) != SMP_OK ||
			    (rc = rd_int(&r, "rc", &e.rc)) != SMP_OK)
				return rc;
		} else if (strcmp(key, "rsn") == 0) {
			if ((rc = seen_once(&seen, 2, key)) != SMP_OK ||
			    (rc = rd_text(&r, "rsn", e.rsn, sizeof(e.rsn),
			                  true)) != SMP_OK)
				return rc;
		} else if (strcmp(key, "err") == 0) {
			if ((rc = seen_once(&seen, 4, key)) != SMP_OK ||
			    (rc = rsp_err_map(&r, &v2)) != SMP_OK)
				return rc;
		} else {
			rc =
			    key[0] != '\0' && fn != NULL ? fn(&r, key, arg) : 1;
			if (rc == 1)
				rc = cb_skip(&r);
			if (rc != SMP_OK)
				return rc;
		}
	}
	if (more < 0)
		return more;
	if ((rc = payload_end(&r)) != SMP_OK)
		return rc;

	/* A group error wins: it is the more specific of the two. */
	if (v2.rc != 0) {
		v2.v2 = true;
		memcpy(v2.rsn, e.rsn, sizeof(v2.rsn));
		if (err != NULL)
			*err = v2;
		return fail(SMP_E_BOARD, "board error: group %u rc %d",
		            v2.group, v2.rc);
	}
	if (e.rc != 0) {
		if (err != NULL)
			*err = e;
		return fail(SMP_E_BOARD, "board error: rc %d", e.rc);
	}
	return SMP_OK;
}

static int
missing(const char *key)
{
	return fail(SMP_E_MISSING, "response has no \"%s\"", key);
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
		return fail(SMP_E_CBOR, "key \"r\" appears twice");
	if ((rc = rd_text(r, "r", c->text, c->cap, false)) == SMP_OK)
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
		return fail(SMP_E_RANGE, "no room for the echo text");
	text[0] = '\0';
	rc =
	    parse_rsp(pkt, len, SMP_GROUP_OS, SMP_OS_ECHO, err, echo_field, &c);
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
		if ((rc = seen_once(&c->seen, 1, key)) != SMP_OK)
			return rc;
		return rd_u32(r, key, &c->p->buf_size);
	}
	if (strcmp(key, "buf_count") == 0) {
		if ((rc = seen_once(&c->seen, 2, key)) != SMP_OK)
			return rc;
		return rd_u32(r, key, &c->p->buf_count);
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
	rc = parse_rsp(pkt, len, SMP_GROUP_OS, SMP_OS_PARAMS, err, params_field,
	               &c);
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
	if ((rc = map_open(r, &m, what, false)) != SMP_OK)
		return rc;
	while ((more = map_next(&m, key)) == 1) {
		if (strcmp(key, "image") == 0) {
			if ((rc = seen_once(&seen, 1, key)) != SMP_OK ||
			    (rc = rd_u32(r, key, &s->image)) != SMP_OK)
				return rc;
		} else if (strcmp(key, "slot") == 0) {
			if ((rc = seen_once(&seen, 2, key)) != SMP_OK ||
			    (rc = rd_u32(r, key, &s->slot)) != SMP_OK)
				return rc;
		} else if (strcmp(key, "version") == 0) {
			if ((rc = seen_once(&seen, 4, key)) != SMP_OK ||
			    (rc = rd_text(r, key, s->version,
			                  sizeof(s->version), false)) != SMP_OK)
				return rc;
		} else if (strcmp(key, "hash") == 0) {
			if ((rc = seen_once(&seen, 8, key)) != SMP_OK ||
			    (rc = rd_bytes(r, key, s->hash, sizeof(s->hash),
			                   &n)) != SMP_OK)
				return rc;
			if (n != SMP_HASH_LEN)
				return fail(SMP_E_RANGE,
				            "%s.hash is %zu bytes, expected %d",
				            what, n, SMP_HASH_LEN);
			s->has_hash = true;
		} else {
			for (i = 0; i < 5; i++)
				if (strcmp(key, flag_names[i]) == 0)
					break;
			if (i == 5) {
				rc = cb_skip(r);
			} else if ((rc = seen_once(&seen, 16u << i, key)) ==
			           SMP_OK)
				rc = rd_bool(r, key, flags[i]);
			if (rc != SMP_OK)
				return rc;
		}
	}
	if (more < 0)
		return more;
	if ((seen & 2) == 0)
		return fail(SMP_E_MISSING, "%s has no \"slot\"", what);
	if ((seen & 4) == 0)
		return fail(SMP_E_MISSING, "%s has no \"version\"", what);
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
		return fail(SMP_E_CBOR, "key \"images\" appears twice");
	c->has = true;
	if ((rc = cb_next(r, &it)) != SMP_OK)
		return rc;
	if (it.t != CB_ARRAY && it.t != CB_ARRAY_INDEF)
		return fail(SMP_E_TYPE, "\"images\" is not an array");
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
			return fail(SMP_E_RANGE, "more than %d images",
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
	rc = parse_rsp(pkt, len, SMP_GROUP_IMAGE, SMP_IMAGE_STATE, err,
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
		if ((rc = seen_once(&c->seen, 1, key)) != SMP_OK)
			return rc;
		return rd_u32(r, key, &c->rsp->off);
	}
	if (strcmp(key, "match") == 0) {
		if ((rc = seen_once(&c->seen, 2, key)) != SMP_OK ||
		    (rc = rd_bool(r, key, &c->rsp->match)) != SMP_OK)
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
	rc = parse_rsp(pkt, len, SMP_GROUP_IMAGE, SMP_IMAGE_UPLOAD, err,
	               upload_field, &c);
	if (rc != SMP_OK)
		return rc;
	return (c.seen & 1) ? SMP_OK : missing("off");
}

int
smp_rsp_empty(const uint8_t *pkt, size_t len, struct smp_err *err)
{
	return parse_rsp(pkt, len, ID_ANY, ID_ANY, err, NULL, NULL);
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

/*
 * CBOR writing.  Heads come from libcbor into a small scratch buffer; with
 * buf NULL the encoder only counts, which the planner uses to measure real
 * packet sizes.
 */
struct enc {
	uint8_t *buf;
	size_t cap;
	size_t pos;
	bool full;
};

static void
e_raw(struct enc *e, const void *p, size_t n)
{
	if (e->full || n > e->cap - e->pos) {
		e->full = true;
		return;
	}
	if (e->buf != NULL && n > 0)
		memcpy(e->buf + e->pos, p, n);
	e->pos += n;
}

static void
e_head(struct enc *e, const uint8_t *t, size_t n)
{
	if (n == 0) /* libcbor could not write the head: cannot happen */
		e->full = true;
	else
		e_raw(e, t, n);
}

static void
e_uint(struct enc *e, uint64_t v)
{
	uint8_t t[9];

	e_head(e, t, cbor_encode_uint(v, t, sizeof(t)));
}

static void
e_int(struct enc *e, int v)
{
	uint8_t t[9];

	if (v >= 0)
		e_uint(e, (uint64_t)v);
	else
		e_head(e, t,
		       cbor_encode_negint((uint64_t)(-1 - (int64_t)v), t,
		                          sizeof(t)));
}

static void
e_bool(struct enc *e, bool b)
{
	uint8_t t[1];

	e_head(e, t, cbor_encode_bool(b, t, sizeof(t)));
}

static void
e_tstr(struct enc *e, const char *s)
{
	uint8_t t[9];
	size_t n = strlen(s);

	e_head(e, t, cbor_encode_string_start(n, t, sizeof(t)));
	e_raw(e, s, n);
}

static void
e_bstr(struct enc *e, const uint8_t *p, size_t n)
{
	uint8_t t[9];

	e_head(e, t, cbor_encode_bytestring_start(n, t, sizeof(t)));
	e_raw(e, p, n);
}

static void
e_map(struct enc *e, size_t n, bool indef)
{
	uint8_t t[9];

	if (indef)
		e_head(e, t, cbor_encode_indef_map_start(t, sizeof(t)));
	else
		e_head(e, t, cbor_encode_map_start(n, t, sizeof(t)));
}

static void
e_array(struct enc *e, size_t n, bool indef)
{
	uint8_t t[9];

	if (indef)
		e_head(e, t, cbor_encode_indef_array_start(t, sizeof(t)));
	else
		e_head(e, t, cbor_encode_array_start(n, t, sizeof(t)));
}

static void
e_end(struct enc *e, bool indef)
{
	uint8_t t[1];

	if (indef)
		e_head(e, t, cbor_encode_break(t, sizeof(t)));
}

/* Start a packet: room for the header is reserved. */
static void
e_start(struct enc *e, uint8_t *buf, size_t cap)
{
	e->buf = buf;
	e->cap = cap;
	e->pos = 0;
	e->full = false;
	if (cap < SMP_HDR_SIZE)
		e->full = true;
	else
		e->pos = SMP_HDR_SIZE;
}

static ssize_t
e_finish(struct enc *e, uint8_t op, int ver, uint16_t group, uint8_t seq,
         uint8_t id)
{
	struct smp_hdr h;

	if (e->full) {
		fail(SMP_E_NOSPACE, "packet does not fit %zu bytes", e->cap);
		return -1;
	}
	if (e->pos - SMP_HDR_SIZE > UINT16_MAX) {
		fail(SMP_E_NOSPACE, "payload of %zu bytes exceeds 65535",
		     e->pos - SMP_HDR_SIZE);
		return -1;
	}
	h.op = op;
	h.version = (uint8_t)ver;
	h.flags = 0;
	h.len = (uint16_t)(e->pos - SMP_HDR_SIZE);
	h.group = group;
	h.seq = seq;
	h.id = id;
	if (e->buf != NULL)
		smp_hdr_encode(&h, e->buf);
	return (ssize_t)e->pos;
}

static int
ver_ok(int ver)
{
	if (ver == SMP_V1 || ver == SMP_V2)
		return 1;
	fail(SMP_E_HEADER, "SMP version %d is neither SMP_V1 nor SMP_V2", ver);
	return 0;
}

/* Client side: request builders. */

ssize_t
smp_req_echo(uint8_t *buf, size_t cap, int ver, uint8_t seq, const char *text)
{
	struct enc e;

	if (!ver_ok(ver))
		return -1;
	if (text == NULL) {
		fail(SMP_E_MISSING, "echo needs a text");
		return -1;
	}
	e_start(&e, buf, cap);
	e_map(&e, 1, false);
	e_tstr(&e, "d");
	e_tstr(&e, text);
	return e_finish(&e, SMP_OP_WRITE, ver, SMP_GROUP_OS, seq, SMP_OS_ECHO);
}

static ssize_t
req_empty(uint8_t *buf, size_t cap, int ver, uint8_t seq, uint8_t op,
          uint16_t group, uint8_t id)
{
	struct enc e;

	if (!ver_ok(ver))
		return -1;
	e_start(&e, buf, cap);
	e_map(&e, 0, false);
	return e_finish(&e, op, ver, group, seq, id);
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

	if (!ver_ok(ver))
		return -1;
	if (hash == NULL && !confirm) {
		fail(SMP_E_MISSING, "marking an image for test needs its hash");
		return -1;
	}
	e_start(&e, buf, cap);
	e_map(&e, hash != NULL ? 2 : 1, false);
	if (hash != NULL) {
		e_tstr(&e, "hash");
		e_bstr(&e, hash, SMP_HASH_LEN);
	}
	e_tstr(&e, "confirm");
	e_bool(&e, confirm);
	return e_finish(&e, SMP_OP_WRITE, ver, SMP_GROUP_IMAGE, seq,
	                SMP_IMAGE_STATE);
}

/* Shared by the builder and the planner (which passes buf NULL). */
static ssize_t
enc_upload(struct enc *e, int ver, uint8_t seq,
           const struct smp_upload_req *req, const uint8_t *sha)
{
	if (req->first) {
		e_map(e, sha != NULL ? 5 : 4, false);
		e_tstr(e, "image");
		e_uint(e, req->image);
		e_tstr(e, "len");
		e_uint(e, req->len);
		e_tstr(e, "off");
		e_uint(e, req->off);
		if (sha != NULL) {
			e_tstr(e, "sha");
			e_bstr(e, sha, SMP_HASH_LEN);
		}
	} else {
		e_map(e, 2, false);
		e_tstr(e, "off");
		e_uint(e, req->off);
	}
	e_tstr(e, "data");
	e_bstr(e, req->data, req->data_len);
	return e_finish(e, SMP_OP_WRITE, ver, SMP_GROUP_IMAGE, seq,
	                SMP_IMAGE_UPLOAD);
}

ssize_t
smp_req_image_upload(uint8_t *buf, size_t cap, int ver, uint8_t seq,
                     const struct smp_upload_req *req)
{
	struct enc e;

	if (!ver_ok(ver))
		return -1;
	if (req->data == NULL && req->data_len > 0) {
		fail(SMP_E_MISSING, "upload data is NULL");
		return -1;
	}
	e_start(&e, buf, cap);
	return enc_upload(&e, ver, seq, req, req->first ? req->sha : NULL);
}

/* Server side: request decoding. */

static int
req_echo_field(struct cb_rd *r, const char *key, struct smp_request *req,
               unsigned int *seen)
{
	int rc;

	if (strcmp(key, "d") != 0)
		return cb_skip(r);
	if ((rc = seen_once(seen, 1, key)) != SMP_OK)
		return rc;
	return rd_text(r, key, req->u.echo.text, sizeof(req->u.echo.text),
	               false);
}

static int
req_state_field(struct cb_rd *r, const char *key, struct smp_request *req,
                unsigned int *seen)
{
	size_t n;
	int rc;

	if (strcmp(key, "hash") == 0) {
		if ((rc = seen_once(seen, 1, key)) != SMP_OK ||
		    (rc = rd_bytes(r, key, req->u.state.hash, SMP_HASH_LEN,
		                   &n)) != SMP_OK)
			return rc;
		if (n != SMP_HASH_LEN)
			return fail(SMP_E_RANGE,
			            "\"hash\" is %zu bytes, expected %d", n,
			            SMP_HASH_LEN);
		req->u.state.has_hash = true;
		return SMP_OK;
	}
	if (strcmp(key, "confirm") == 0) {
		if ((rc = seen_once(seen, 2, key)) != SMP_OK)
			return rc;
		return rd_bool(r, key, &req->u.state.confirm);
	}
	return cb_skip(r);
}

static int
req_upload_field(struct cb_rd *r, const char *key, struct smp_request *req,
                 unsigned int *seen)
{
	int rc;

	if (strcmp(key, "image") == 0) {
		if ((rc = seen_once(seen, 1, key)) != SMP_OK)
			return rc;
		req->u.upload.has_image = true;
		return rd_u32(r, key, &req->u.upload.image);
	}
	if (strcmp(key, "len") == 0) {
		if ((rc = seen_once(seen, 2, key)) != SMP_OK)
			return rc;
		req->u.upload.has_len = true;
		return rd_u32(r, key, &req->u.upload.len);
	}
	if (strcmp(key, "off") == 0) {
		if ((rc = seen_once(seen, 4, key)) != SMP_OK)
			return rc;
		req->u.upload.has_off = true;
		return rd_u32(r, key, &req->u.upload.off);
	}
	if (strcmp(key, "sha") == 0) {
		if ((rc = seen_once(seen, 8, key)) != SMP_OK)
			return rc;
		req->u.upload.has_sha = true;
		return rd_bytes(r, key, req->u.upload.sha, SMP_HASH_LEN,
		                &req->u.upload.sha_len);
	}
	if (strcmp(key, "data") == 0) {
		if ((rc = seen_once(seen, 16, key)) != SMP_OK)
			return rc;
		return rd_bytes_ref(r, key, &req->u.upload.data,
		                    &req->u.upload.data_len);
	}
	return cb_skip(r);
}

static int
req_erase_field(struct cb_rd *r, const char *key, struct smp_request *req,
                unsigned int *seen)
{
	int rc;

	if (strcmp(key, "slot") != 0)
		return cb_skip(r);
	if ((rc = seen_once(seen, 1, key)) != SMP_OK)
		return rc;
	req->u.erase.has_slot = true;
	return rd_u32(r, key, &req->u.erase.slot);
}

typedef int (*req_field_fn)(struct cb_rd *, const char *, struct smp_request *,
                            unsigned int *);

int
smp_req_decode(const uint8_t *pkt, size_t len, struct smp_request *req)
{
	struct cb_rd r;
	struct cb_map m;
	struct smp_hdr *h = &req->hdr;
	req_field_fn fn = NULL;
	char key[CB_KEY_MAX + 1];
	unsigned int seen = 0;
	int rc, more;

	memset(req, 0, sizeof(*req));
	if ((rc = hdr_check(pkt, len, h)) != SMP_OK)
		return rc;
	if (h->op != SMP_OP_READ && h->op != SMP_OP_WRITE)
		return fail(SMP_E_HEADER, "op %u is not a request", h->op);
	if (h->group == SMP_GROUP_OS && h->id == SMP_OS_ECHO)
		fn = req_echo_field;
	else if (h->group == SMP_GROUP_IMAGE && h->op == SMP_OP_WRITE) {
		if (h->id == SMP_IMAGE_STATE)
			fn = req_state_field;
		else if (h->id == SMP_IMAGE_UPLOAD)
			fn = req_upload_field;
		else if (h->id == SMP_IMAGE_ERASE)
			fn = req_erase_field;
	}

	r.p = pkt + SMP_HDR_SIZE;
	r.len = h->len;
	r.pos = 0;
	if ((rc = map_open(&r, &m, "payload", true)) != SMP_OK)
		return rc;
	while ((more = map_next(&m, key)) == 1) {
		if (fn != NULL && key[0] != '\0')
			rc = fn(&r, key, req, &seen);
		else
			rc = cb_skip(&r);
		if (rc != SMP_OK)
			return rc;
	}
	if (more < 0)
		return more;
	if ((rc = payload_end(&r)) != SMP_OK)
		return rc;

	if (fn == req_echo_field && (seen & 1) == 0)
		return fail(SMP_E_MISSING, "echo request has no \"d\"");
	if (fn == req_upload_field) {
		/* Zephyr refuses these without them, whatever the packet. */
		if ((seen & 4) == 0)
			return fail(SMP_E_MISSING,
			            "upload request has no \"off\"");
		if ((seen & 16) == 0)
			return fail(SMP_E_MISSING,
			            "upload request has no \"data\"");
	}
	return SMP_OK;
}

/* Server side: response builders. */

static ssize_t
rsp_finish(struct enc *e, const struct smp_hdr *req,
           const struct smp_rsp_opts *o)
{
	uint8_t op =
	    req->op == SMP_OP_READ ? SMP_OP_READ_RSP : SMP_OP_WRITE_RSP;

	return e_finish(e, op, o->version, req->group, req->seq, req->id);
}

/*
 * The v1 codes the virtual board uses, turned into what Zephyr's SMP v2
 * handlers send for the same refusal (img_mgmt's smp_add_cmd_err calls).
 * Generic errors have no group form: Zephyr sends them as {"rc": N} in v2
 * too, and so do we.
 */
int
smp_rc_to_v2(uint16_t group, uint8_t id, int rc)
{
	if (group != SMP_GROUP_IMAGE)
		return -1;
	switch (id) {
	case SMP_IMAGE_UPLOAD:
		if (rc == SMP_RC_INVAL) /* "magic mismatch" */
			return 23;      /* INVALID_IMAGE_HEADER_MAGIC */
		if (rc == SMP_RC_NOENT) /* "no slot" */
			return 9;       /* NO_FREE_SLOT */
		if (rc == SMP_RC_BADSTATE)
			return 28; /* IMAGE_ALREADY_PENDING */
		if (rc == SMP_RC_NOMEM)
			return 15; /* NO_FREE_MEMORY */
		break;
	case SMP_IMAGE_STATE:
		if (rc == SMP_RC_INVAL || rc == SMP_RC_NOENT)
			return 8; /* HASH_NOT_FOUND: no slot has that hash */
		if (rc == SMP_RC_BADSTATE)
			return 28; /* IMAGE_ALREADY_PENDING */
		break;
	case SMP_IMAGE_ERASE:
		if (rc == SMP_RC_BADSTATE)
			return 9; /* NO_FREE_SLOT: the slot is in use */
		break;
	}
	return -1;
}

ssize_t
smp_rspb_error(uint8_t *buf, size_t cap, const struct smp_hdr *req,
               const struct smp_rsp_opts *o, int rc, const char *rsn)
{
	struct enc e;
	bool indef = !o->definite_maps, has_rsn = rsn != NULL && *rsn != '\0';
	int v2rc = -1;

	if (!ver_ok(o->version))
		return -1;
	if (o->version == SMP_V2)
		v2rc = smp_rc_to_v2(req->group, req->id, rc);
	e_start(&e, buf, cap);
	e_map(&e, has_rsn ? 2 : 1, indef);
	if (v2rc > 0) {
		e_tstr(&e, "err");
		e_map(&e, 2, indef);
		e_tstr(&e, "group");
		e_uint(&e, req->group);
		e_tstr(&e, "rc");
		e_int(&e, v2rc);
		e_end(&e, indef);
	} else {
		e_tstr(&e, "rc");
		e_int(&e, rc);
	}
	if (has_rsn) {
		e_tstr(&e, "rsn");
		e_tstr(&e, rsn);
	}
	e_end(&e, indef);
	return rsp_finish(&e, req, o);
}

ssize_t
smp_rspb_empty(uint8_t *buf, size_t cap, const struct smp_hdr *req,
               const struct smp_rsp_opts *o)
{
	struct enc e;
	bool indef = !o->definite_maps;

	if (!ver_ok(o->version))
		return -1;
	e_start(&e, buf, cap);
	e_map(&e, 0, indef);
	e_end(&e, indef);
	return rsp_finish(&e, req, o);
}

ssize_t
smp_rspb_echo(uint8_t *buf, size_t cap, const struct smp_hdr *req,
              const struct smp_rsp_opts *o, const char *text)
{
	struct enc e;
	bool indef = !o->definite_maps;

	if (!ver_ok(o->version))
		return -1;
	e_start(&e, buf, cap);
	e_map(&e, 1, indef);
	e_tstr(&e, "r");
	e_tstr(&e, text != NULL ? text : "");
	e_end(&e, indef);
	return rsp_finish(&e, req, o);
}

ssize_t
smp_rspb_params(uint8_t *buf, size_t cap, const struct smp_hdr *req,
                const struct smp_rsp_opts *o, const struct smp_params *p)
{
	struct enc e;
	bool indef = !o->definite_maps;

	if (!ver_ok(o->version))
		return -1;
	e_start(&e, buf, cap);
	e_map(&e, 2, indef);
	e_tstr(&e, "buf_size");
	e_uint(&e, p->buf_size);
	e_tstr(&e, "buf_count");
	e_uint(&e, p->buf_count);
	e_end(&e, indef);
	return rsp_finish(&e, req, o);
}

ssize_t
smp_rspb_image_state(uint8_t *buf, size_t cap, const struct smp_hdr *req,
                     const struct smp_rsp_opts *o,
                     const struct smp_image_list *list)
{
	const struct smp_image_slot *s;
	struct enc e;
	bool indef = !o->definite_maps;
	size_t i;

	if (!ver_ok(o->version))
		return -1;
	if (list->n > SMP_MAX_SLOTS) {
		fail(SMP_E_RANGE, "image list of %zu entries", list->n);
		return -1;
	}
	e_start(&e, buf, cap);
	e_map(&e, 2, indef);
	e_tstr(&e, "images");
	e_array(&e, list->n, indef);
	for (i = 0; i < list->n; i++) {
		s = &list->slots[i];
		e_map(&e, s->has_hash ? 9 : 8, indef);
		e_tstr(&e, "image");
		e_uint(&e, s->image);
		e_tstr(&e, "slot");
		e_uint(&e, s->slot);
		if (memchr(s->version, '\0', sizeof(s->version)) == NULL) {
			fail(SMP_E_RANGE, "slot version is not terminated");
			return -1;
		}
		e_tstr(&e, "version");
		e_tstr(&e, s->version);
		if (s->has_hash) {
			e_tstr(&e, "hash");
			e_bstr(&e, s->hash, SMP_HASH_LEN);
		}
		e_tstr(&e, "bootable");
		e_bool(&e, s->bootable);
		e_tstr(&e, "pending");
		e_bool(&e, s->pending);
		e_tstr(&e, "confirmed");
		e_bool(&e, s->confirmed);
		e_tstr(&e, "active");
		e_bool(&e, s->active);
		e_tstr(&e, "permanent");
		e_bool(&e, s->permanent);
		e_end(&e, indef);
	}
	e_end(&e, indef);
	e_tstr(&e, "splitStatus");
	e_uint(&e, 0);
	e_end(&e, indef);
	return rsp_finish(&e, req, o);
}

ssize_t
smp_rspb_image_upload(uint8_t *buf, size_t cap, const struct smp_hdr *req,
                      const struct smp_rsp_opts *o,
                      const struct smp_upload_rsp *rsp)
{
	struct enc e;
	bool indef = !o->definite_maps;

	if (!ver_ok(o->version))
		return -1;
	e_start(&e, buf, cap);
	e_map(&e, rsp->has_match ? 2 : 1, indef);
	e_tstr(&e, "off");
	e_uint(&e, rsp->off);
	if (rsp->has_match) {
		e_tstr(&e, "match");
		e_bool(&e, rsp->match);
	}
	e_end(&e, indef);
	return rsp_finish(&e, req, o);
}

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
	sz = enc_upload(&e, SMP_V1, 0, &q, first ? sha : NULL);
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
	if (!ver_ok(ver))
		return SMP_E_HEADER;
	if (pkt_limit > SMP_MAX_PACKET)
		pkt_limit = SMP_MAX_PACKET;
	plan->pkt_limit = pkt_limit;
	plan->first_chunk = largest_chunk(pkt_limit, true, image_len, 0);
	plan->chunk = largest_chunk(pkt_limit, false, image_len, last_off);
	plan->window = buf_count > 1 ? buf_count - 1 : 1;
	if (plan->first_chunk == 0 || plan->chunk == 0)
		return fail(
		    SMP_E_RANGE,
		    "a packet limit of %zu bytes leaves no room for upload "
		    "data (the first packet alone needs %zu)",
		    pkt_limit, upload_pkt_size(true, image_len, 0, 1));
	return SMP_OK;
}
