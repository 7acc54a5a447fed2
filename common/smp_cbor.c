/*
 * The CBOR reading and writing that every SMP codec shares (smp_cbor.h):
 * libcbor's streaming decoder one item at a time, so parsing allocates
 * nothing and walks nested items without recursion, and an encoder that
 * can also only count, which the upload planner uses to measure packets.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <cbor.h>

#include "smp.h"
#include "smp_cbor.h"

/* How deep an item we skip may nest (maps in arrays in maps...). */
#define CB_MAX_DEPTH 16

static __thread char detail_buf[192];

const char *
smp_error_detail(void)
{
	return detail_buf;
}

int smp_fail(int status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Record why an operation failed and return status. */
int
smp_fail(int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail_buf, sizeof(detail_buf), fmt, ap);
	va_end(ap);
	return status;
}

/* Header. */

/*
 * Decode a header and check it against the whole packet: the payload
 * length must match what we were given exactly.
 */
int
smp_hdr_check(const uint8_t *pkt, size_t len, struct smp_hdr *h)
{
	int rc;

	if ((rc = smp_hdr_decode(pkt, len, h)) != SMP_OK)
		return rc;
	if (len - SMP_HDR_SIZE < h->len)
		return smp_fail(SMP_E_SHORT,
		                "header says %u payload bytes, packet has %zu",
		                h->len, len - SMP_HDR_SIZE);
	if (len - SMP_HDR_SIZE > h->len)
		return smp_fail(SMP_E_HEADER,
		                "header says %u payload bytes, packet has %zu",
		                h->len, len - SMP_HDR_SIZE);
	return SMP_OK;
}

/*
 * CBOR reading.  cb_next() decodes one item head (or one whole definite
 * string) through libcbor's callbacks into a struct cb_item.
 */

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

int
cb_next(struct cb_rd *r, struct cb_item *it)
{
	struct cbor_decoder_result res;
	size_t room = r->len - r->pos;

	memset(it, 0, sizeof(*it));
	it->t = CB_OTHER;
	if (room == 0)
		return smp_fail(SMP_E_CBOR,
		                "CBOR payload ends early at byte %zu", r->pos);
	res = cbor_stream_decode(r->p + r->pos, room, &cb_callbacks, it);
	if (res.status == CBOR_DECODER_NEDATA)
		return smp_fail(
		    SMP_E_CBOR,
		    "CBOR item at payload byte %zu runs past the end", r->pos);
	if (res.status != CBOR_DECODER_FINISHED || res.read == 0 ||
	    res.read > room)
		return smp_fail(SMP_E_CBOR,
		                "malformed CBOR at payload byte %zu", r->pos);
	/* Belt and braces: a string must lie inside what we handed over. */
	if ((it->t == CB_BSTR || it->t == CB_TSTR) &&
	    (it->p < r->p + r->pos || it->n > room ||
	     it->p + it->n > r->p + r->pos + res.read))
		return smp_fail(
		    SMP_E_CBOR,
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
			return smp_fail(SMP_E_CBOR,
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
		return smp_fail(SMP_E_CBOR, "CBOR nested deeper than %d levels",
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
				return smp_fail(
				    SMP_E_CBOR,
				    "CBOR break outside an indefinite-length "
				    "item at payload byte %zu",
				    r->pos - 1);
			if (f->map && f->seen % 2 != 0)
				return smp_fail(
				    SMP_E_CBOR,
				    "CBOR map ends after a key with no value");
			sp--;
			it.t = CB_OTHER;
			continue;
		}
		if (f->chunk != CB_OTHER && it.t != f->chunk)
			return smp_fail(
			    SMP_E_CBOR,
			    "indefinite-length string holds a chunk that is "
			    "not a definite string of its type");
		if (f->indef)
			f->seen++;
		else
			f->left--;
	}
}

int
cb_skip(struct cb_rd *r)
{
	struct cb_item it;
	int rc;

	if ((rc = cb_next(r, &it)) != SMP_OK)
		return rc;
	if (it.t == CB_BREAK)
		return smp_fail(
		    SMP_E_CBOR,
		    "unexpected CBOR break (a map key without a value?)");
	return cb_skip_rest(r, &it);
}

/*
 * Collect a text or byte string (definite or chunked) whose head is it.
 * With dst, copy up to cap bytes and report the full length in *n (the
 * caller decides whether longer is an error); without dst only count.
 */
int
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
			return smp_fail(
			    SMP_E_CBOR,
			    "indefinite-length string holds a chunk that is "
			    "not a definite string of its type");
		if (dst != NULL && *n < cap)
			memcpy(dst + *n, c.p, c.n < cap - *n ? c.n : cap - *n);
		*n += c.n;
	}
}

/* Typed value readers; name is the field, for the error text. */

int
cb_get_uint(struct cb_rd *r, const char *name, uint64_t max, uint64_t *out)
{
	struct cb_item it;
	int rc;

	if ((rc = cb_next(r, &it)) != SMP_OK)
		return rc;
	if (it.t == CB_NEGINT)
		return smp_fail(SMP_E_RANGE, "\"%s\" is negative", name);
	if (it.t != CB_UINT)
		return smp_fail(SMP_E_TYPE, "\"%s\" is not an unsigned integer",
		                name);
	if (it.v > max)
		return smp_fail(SMP_E_RANGE,
		                "\"%s\" = %" PRIu64 " exceeds %" PRIu64, name,
		                it.v, max);
	*out = it.v;
	return SMP_OK;
}

int
cb_get_u32(struct cb_rd *r, const char *name, uint32_t *out)
{
	uint64_t v = 0;
	int rc;

	if ((rc = cb_get_uint(r, name, UINT32_MAX, &v)) == SMP_OK)
		*out = (uint32_t)v;
	return rc;
}

int
cb_get_int(struct cb_rd *r, const char *name, int *out)
{
	struct cb_item it;
	int rc;

	if ((rc = cb_next(r, &it)) != SMP_OK)
		return rc;
	if (it.t == CB_UINT) {
		if (it.v > INT_MAX)
			return smp_fail(SMP_E_RANGE,
			                "\"%s\" = %" PRIu64
			                " does not fit an int",
			                name, it.v);
		*out = (int)it.v;
		return SMP_OK;
	}
	if (it.t == CB_NEGINT) {
		/* value = -1 - v; INT_MIN = -1 - INT_MAX */
		if (it.v > (uint64_t)INT_MAX)
			return smp_fail(SMP_E_RANGE,
			                "\"%s\" = -1-%" PRIu64
			                " does not fit an int",
			                name, it.v);
		*out = -1 - (int)it.v;
		return SMP_OK;
	}
	return smp_fail(SMP_E_TYPE, "\"%s\" is not an integer", name);
}

int
cb_get_bool(struct cb_rd *r, const char *name, bool *out)
{
	struct cb_item it;
	int rc;

	if ((rc = cb_next(r, &it)) != SMP_OK)
		return rc;
	if (it.t != CB_BOOL)
		return smp_fail(SMP_E_TYPE, "\"%s\" is not a boolean", name);
	*out = it.b;
	return SMP_OK;
}

/*
 * Text into dst (NUL-terminated).  Too long: SMP_E_RANGE, or cut when
 * truncate is set (for informational text such as "rsn").
 */
int
cb_get_text(struct cb_rd *r, const char *name, char *dst, size_t cap,
            bool truncate)
{
	struct cb_item it;
	size_t n;
	int rc;

	if ((rc = cb_next(r, &it)) != SMP_OK)
		return rc;
	if (it.t != CB_TSTR && it.t != CB_TSTR_INDEF)
		return smp_fail(SMP_E_TYPE, "\"%s\" is not a text string",
		                name);
	if ((rc = cb_collect(r, &it, CB_TSTR, (uint8_t *)dst, cap - 1, &n)) !=
	    SMP_OK)
		return rc;
	if (n > cap - 1) {
		if (!truncate)
			return smp_fail(SMP_E_RANGE,
			                "\"%s\" is %zu bytes, at most %zu fit",
			                name, n, cap - 1);
		n = cap - 1;
	}
	dst[n] = '\0';
	if (strlen(dst) != n)
		return smp_fail(SMP_E_RANGE, "\"%s\" contains a NUL character",
		                name);
	return SMP_OK;
}

/* Bytes copied into dst: more than cap is SMP_E_RANGE. */
int
cb_get_bytes(struct cb_rd *r, const char *name, uint8_t *dst, size_t cap,
             size_t *n)
{
	struct cb_item it;
	int rc;

	if ((rc = cb_next(r, &it)) != SMP_OK)
		return rc;
	if (it.t != CB_BSTR && it.t != CB_BSTR_INDEF)
		return smp_fail(SMP_E_TYPE, "\"%s\" is not a byte string",
		                name);
	if ((rc = cb_collect(r, &it, CB_BSTR, dst, cap, n)) != SMP_OK)
		return rc;
	if (*n > cap)
		return smp_fail(SMP_E_RANGE,
		                "\"%s\" is %zu bytes, at most %zu fit", name,
		                *n, cap);
	return SMP_OK;
}

/*
 * Bytes by reference into the packet.  A chunked string is accepted when
 * it has at most one chunk: more cannot be one pointer (no real client
 * splits upload data).
 */
int
cb_get_bytes_ref(struct cb_rd *r, const char *name, const uint8_t **p,
                 size_t *n)
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
		return smp_fail(SMP_E_TYPE, "\"%s\" is not a byte string",
		                name);
	*p = r->p + r->pos;
	*n = 0;
	if ((rc = cb_next(r, &c)) != SMP_OK)
		return rc;
	if (c.t == CB_BREAK)
		return SMP_OK;
	if (c.t != CB_BSTR)
		return smp_fail(
		    SMP_E_CBOR,
		    "indefinite-length string holds a chunk that is not a "
		    "definite string of its type");
	*p = c.p;
	*n = c.n;
	if ((rc = cb_next(r, &c)) != SMP_OK)
		return rc;
	if (c.t != CB_BREAK)
		return smp_fail(
		    SMP_E_TYPE,
		    "\"%s\" is split into several chunks (unsupported)", name);
	return SMP_OK;
}

/* Open a map; top says whether it is the payload itself. */
int
cb_map_open(struct cb_rd *r, struct cb_map *m, const char *what, bool top)
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
	return smp_fail(top ? SMP_E_CBOR : SMP_E_TYPE, "%s is not a CBOR map",
	                what);
}

/*
 * Next entry: returns 1 with the key in key (empty when it is not a short
 * text key: the caller must then skip the value), 0 at the end of the map,
 * or a negative status.  Entries with non-text keys are skipped here.
 */
int
cb_map_next(struct cb_map *m, char *key)
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
				return smp_fail(
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
int
cb_payload_end(const struct cb_rd *r)
{
	if (r->pos != r->len)
		return smp_fail(SMP_E_CBOR,
		                "%zu bytes of trailing data after the CBOR map",
		                r->len - r->pos);
	return SMP_OK;
}

/* Each known key may appear once. */
int
cb_seen_once(unsigned int *seen, unsigned int bit, const char *key)
{
	if (*seen & bit)
		return smp_fail(SMP_E_CBOR, "key \"%s\" appears twice", key);
	*seen |= bit;
	return SMP_OK;
}

/*
 * Client side: the parts every response shares.  A field callback reads
 * the value of a key it knows and returns SMP_OK, or 1 for a key it does
 * not know (skipped), or a negative status.
 */

static int
rsp_err_map(struct cb_rd *r, struct smp_err *e)
{
	struct cb_map m;
	char key[CB_KEY_MAX + 1];
	unsigned int seen = 0;
	uint64_t g;
	int rc, more;

	if ((rc = cb_map_open(r, &m, "\"err\"", false)) != SMP_OK)
		return rc;
	while ((more = cb_map_next(&m, key)) == 1) {
		if (strcmp(key, "group") == 0) {
			if ((rc = cb_seen_once(&seen, 1, "err.group")) !=
			        SMP_OK ||
			    (rc = cb_get_uint(r, "err.group", UINT16_MAX,
			                      &g)) != SMP_OK)
				return rc;
			e->group = (uint16_t)g;
		} else if (strcmp(key, "rc") == 0) {
			if ((rc = cb_seen_once(&seen, 2, "err.rc")) != SMP_OK ||
			    (rc = cb_get_int(r, "err.rc", &e->rc)) != SMP_OK)
				return rc;
		} else if ((rc = cb_skip(r)) != SMP_OK)
			return rc;
	}
	if (more < 0)
		return more;
	if ((seen & 1) == 0)
		return smp_fail(SMP_E_MISSING, "\"err\" has no \"group\"");
	if ((seen & 2) == 0)
		return smp_fail(SMP_E_MISSING, "\"err\" has no \"rc\"");
	return SMP_OK;
}

int
smp_parse_rsp(const uint8_t *pkt, size_t len, int group, int id,
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
	if ((rc = smp_hdr_check(pkt, len, &h)) != SMP_OK)
		return rc;
	if (h.op != SMP_OP_READ_RSP && h.op != SMP_OP_WRITE_RSP)
		return smp_fail(SMP_E_HEADER, "op %u is not a response", h.op);
	if (group >= 0 && h.group != group)
		return smp_fail(SMP_E_HEADER,
		                "response for group %u, expected group %d",
		                h.group, group);
	if (id >= 0 && h.id != id)
		return smp_fail(SMP_E_HEADER,
		                "response for command %u, expected command %d",
		                h.id, id);

	r.p = pkt + SMP_HDR_SIZE;
	r.len = h.len;
	r.pos = 0;
	if ((rc = cb_map_open(&r, &m, "payload", true)) != SMP_OK)
		return rc;
	while ((more = cb_map_next(&m, key)) == 1) {
		if (strcmp(key, "rc") == 0) {
			if ((rc = cb_seen_once(&seen, 1, key)) != SMP_OK ||
			    (rc = cb_get_int(&r, "rc", &e.rc)) != SMP_OK)
				return rc;
		} else if (strcmp(key, "rsn") == 0) {
			if ((rc = cb_seen_once(&seen, 2, key)) != SMP_OK ||
			    (rc = cb_get_text(&r, "rsn", e.rsn, sizeof(e.rsn),
			                      true)) != SMP_OK)
				return rc;
		} else if (strcmp(key, "err") == 0) {
			if ((rc = cb_seen_once(&seen, 4, key)) != SMP_OK ||
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
	if ((rc = cb_payload_end(&r)) != SMP_OK)
		return rc;

	/* A group error wins: it is the more specific of the two. */
	if (v2.rc != 0) {
		v2.v2 = true;
		memcpy(v2.rsn, e.rsn, sizeof(v2.rsn));
		if (err != NULL)
			*err = v2;
		return smp_fail(SMP_E_BOARD, "board error: group %u rc %d",
		                v2.group, v2.rc);
	}
	if (e.rc != 0) {
		if (err != NULL)
			*err = e;
		return smp_fail(SMP_E_BOARD, "board error: rc %d", e.rc);
	}
	return SMP_OK;
}

/*
 * CBOR writing.  Heads come from libcbor into a small scratch buffer; with
 * buf NULL the encoder only counts, which the planner uses to measure real
 * packet sizes.
 */

static void
enc_raw(struct enc *e, const void *p, size_t n)
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
enc_head(struct enc *e, const uint8_t *t, size_t n)
{
	if (n == 0) /* libcbor could not write the head: cannot happen */
		e->full = true;
	else
		enc_raw(e, t, n);
}

void
enc_uint(struct enc *e, uint64_t v)
{
	uint8_t t[9];

	enc_head(e, t, cbor_encode_uint(v, t, sizeof(t)));
}

void
enc_int(struct enc *e, int v)
{
	uint8_t t[9];

	if (v >= 0)
		enc_uint(e, (uint64_t)v);
	else
		enc_head(e, t,
		         cbor_encode_negint((uint64_t)(-1 - (int64_t)v), t,
		                            sizeof(t)));
}

void
enc_bool(struct enc *e, bool b)
{
	uint8_t t[1];

	enc_head(e, t, cbor_encode_bool(b, t, sizeof(t)));
}

void
enc_tstr(struct enc *e, const char *s)
{
	uint8_t t[9];
	size_t n = strlen(s);

	enc_head(e, t, cbor_encode_string_start(n, t, sizeof(t)));
	enc_raw(e, s, n);
}

void
enc_bstr(struct enc *e, const uint8_t *p, size_t n)
{
	uint8_t t[9];

	enc_head(e, t, cbor_encode_bytestring_start(n, t, sizeof(t)));
	enc_raw(e, p, n);
}

void
enc_map(struct enc *e, size_t n, bool indef)
{
	uint8_t t[9];

	if (indef)
		enc_head(e, t, cbor_encode_indef_map_start(t, sizeof(t)));
	else
		enc_head(e, t, cbor_encode_map_start(n, t, sizeof(t)));
}

void
enc_array(struct enc *e, size_t n, bool indef)
{
	uint8_t t[9];

	if (indef)
		enc_head(e, t, cbor_encode_indef_array_start(t, sizeof(t)));
	else
		enc_head(e, t, cbor_encode_array_start(n, t, sizeof(t)));
}

void
enc_end(struct enc *e, bool indef)
{
	uint8_t t[1];

	if (indef)
		enc_head(e, t, cbor_encode_break(t, sizeof(t)));
}

/* Start a packet: room for the header is reserved. */
void
enc_start(struct enc *e, uint8_t *buf, size_t cap)
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

ssize_t
enc_finish(struct enc *e, uint8_t op, int ver, uint16_t group, uint8_t seq,
           uint8_t id)
{
	struct smp_hdr h;

	if (e->full) {
		smp_fail(SMP_E_NOSPACE, "packet does not fit %zu bytes",
		         e->cap);
		return -1;
	}
	if (e->pos - SMP_HDR_SIZE > UINT16_MAX) {
		smp_fail(SMP_E_NOSPACE, "payload of %zu bytes exceeds 65535",
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

int
smp_ver_ok(int ver)
{
	if (ver == SMP_V1 || ver == SMP_V2)
		return 1;
	smp_fail(SMP_E_HEADER, "SMP version %d is neither SMP_V1 nor SMP_V2",
	         ver);
	return 0;
}
