/*
 * MCUboot image reader (docs/design.md "MCUboot images"): the header, the
 * version spellings, the protected and unprotected TLV areas and the SHA-256
 * hash TLV, in memory or streamed.  Pure: no I/O.  SHA-256 from OpenSSL.
 *
 * Data after the TLV area is refused: imgtool writes none unless asked to
 * pad the image to a slot with a bootloader trailer, and such a file is not
 * something to upload.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "mcuboot.h"
#include "xmalloc.h"

#define TLV_INFO_LEN 4
#define TLV_HDR_LEN  4

/* imgtool hashes the plaintext, then encrypts the body. */
#define IMAGE_F_ENCRYPTED_AES128 0x04
#define IMAGE_F_ENCRYPTED_AES256 0x08

static int fail(char *err, size_t errcap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
fail(char *err, size_t errcap, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errcap > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errcap, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static uint16_t
le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t
le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/* Versions. */

void
mcuboot_version_format(const struct mcuboot_version *v, enum mcuboot_spelling s,
                       char *buf, size_t cap)
{
	if (cap == 0)
		return;
	switch (s) {
	case MCUBOOT_SPELL_IMGTOOL:
		snprintf(buf, cap, "%u.%u.%u+%" PRIu32, v->major, v->minor,
		         v->revision, v->build);
		break;
	case MCUBOOT_SPELL_RDFM:
		if (v->build != 0)
			snprintf(buf, cap, "%u.%u.%u+%" PRIu32, v->major,
			         v->minor, v->revision, v->build);
		else
			snprintf(buf, cap, "%u.%u.%u", v->major, v->minor,
			         v->revision);
		break;
	case MCUBOOT_SPELL_ZEPHYR:
		if (v->build != 0)
			snprintf(buf, cap, "%u.%u.%u.%" PRIu32, v->major,
			         v->minor, v->revision, v->build);
		else
			snprintf(buf, cap, "%u.%u.%u", v->major, v->minor,
			         v->revision);
		break;
	default:
		buf[0] = '\0';
	}
}

/* Decimal digits only (no sign, no spaces), at most max; advances *sp. */
static int
parse_num(const char **sp, uint64_t max, uint64_t *out)
{
	const char *s = *sp;
	uint64_t v = 0;
	size_t n = 0;

	while (*s >= '0' && *s <= '9') {
		v = v * 10 + (uint64_t)(*s - '0');
		if (v > max)
			return -1;
		s++;
		n++;
	}
	if (n == 0)
		return -1;
	*sp = s;
	*out = v;
	return 0;
}

int
mcuboot_version_parse(const char *s, struct mcuboot_version *v)
{
	uint64_t major, minor, rev, build = 0;

	if (s == NULL || parse_num(&s, 255, &major) < 0 || *s++ != '.' ||
	    parse_num(&s, 255, &minor) < 0 || *s++ != '.' ||
	    parse_num(&s, 65535, &rev) < 0)
		return -1;
	if (*s == '+' || *s == '.') {
		s++;
		if (parse_num(&s, UINT32_MAX, &build) < 0)
			return -1;
	}
	if (*s != '\0')
		return -1;
	v->major = (uint8_t)major;
	v->minor = (uint8_t)minor;
	v->revision = (uint16_t)rev;
	v->build = (uint32_t)build;
	return 0;
}

int
mcuboot_version_convert(const char *in, enum mcuboot_spelling s, char *out,
                        size_t cap)
{
	struct mcuboot_version v;
	char tmp[MCUBOOT_VERSION_MAX];

	if (mcuboot_version_parse(in, &v) < 0)
		return -1;
	mcuboot_version_format(&v, s, tmp, sizeof(tmp));
	if (tmp[0] == '\0' || strlen(tmp) >= cap)
		return -1;
	memcpy(out, tmp, strlen(tmp) + 1);
	return 0;
}

/* Checks shared by the in-memory and the streamed reader. */

static int
decode_header(const uint8_t *h, struct mcuboot_image *img, char *err,
              size_t errcap)
{
	uint32_t magic = le32(h);

	memset(img, 0, sizeof(*img));
	if (magic != MCUBOOT_MAGIC)
		return fail(err, errcap,
		            "bad image magic 0x%08" PRIx32
		            " (expected 0x%08x): not an "
		            "MCUboot image",
		            magic, MCUBOOT_MAGIC);
	img->load_addr = le32(h + 4);
	img->hdr_size = le16(h + 8);
	img->protect_tlv_size = le16(h + 10);
	img->img_size = le32(h + 12);
	img->flags = le32(h + 16);
	img->version.major = h[20];
	img->version.minor = h[21];
	img->version.revision = le16(h + 22);
	img->version.build = le32(h + 24);
	if (img->hdr_size < MCUBOOT_HDR_LEN)
		return fail(err, errcap,
		            "header size %u is smaller than the %d-byte header",
		            img->hdr_size, MCUBOOT_HDR_LEN);
	if (img->protect_tlv_size > 0 && img->protect_tlv_size < TLV_INFO_LEN)
		return fail(
		    err, errcap,
		    "protected TLV size %u is smaller than the %d-byte TLV "
		    "area header",
		    img->protect_tlv_size, TLV_INFO_LEN);
	return 0;
}

/* Where the TLV areas start: right after the body. */
static uint64_t
body_end(const struct mcuboot_image *img)
{
	return (uint64_t)img->hdr_size + img->img_size;
}

/*
 * The 4-byte info header of the unprotected TLV area at offset off; returns
 * its total length.
 */
static int
check_tlv_info(const struct mcuboot_image *img, const uint8_t *info,
               uint64_t off, uint16_t *total, char *err, size_t errcap)
{
	uint16_t magic = le16(info);

	*total = le16(info + 2);
	if (magic == MCUBOOT_PTLV_MAGIC && img->protect_tlv_size == 0)
		return fail(
		    err, errcap,
		    "protected TLV area at offset %" PRIu64
		    " but the header says it has none (protect_tlv_size 0)",
		    off);
	if (magic != MCUBOOT_TLV_MAGIC)
		return fail(err, errcap,
		            "bad TLV area magic 0x%04x at offset %" PRIu64
		            " (expected 0x%04x)",
		            magic, off, MCUBOOT_TLV_MAGIC);
	if (*total < TLV_INFO_LEN)
		return fail(err, errcap,
		            "TLV area total %u at offset %" PRIu64
		            " is smaller than its %d-byte header",
		            *total, off, TLV_INFO_LEN);
	return 0;
}

/* The protected area's info header, once protect_tlv_size bytes are in. */
static int
check_ptlv_info(const struct mcuboot_image *img, const uint8_t *info, char *err,
                size_t errcap)
{
	uint16_t magic = le16(info), total = le16(info + 2);

	if (magic != MCUBOOT_PTLV_MAGIC)
		return fail(
		    err, errcap,
		    "bad protected TLV area magic 0x%04x at offset %" PRIu64
		    " (expected 0x%04x)",
		    magic, body_end(img), MCUBOOT_PTLV_MAGIC);
	if (total != img->protect_tlv_size)
		return fail(
		    err, errcap,
		    "protected TLV area total %u does not match the header's "
		    "protect_tlv_size %u",
		    total, img->protect_tlv_size);
	return 0;
}

/*
 * Walk the entries of one whole area (info header included) at file
 * offset base.  Records the SHA-256 TLV in hash/nhash.
 */
static int
walk_tlvs(const uint8_t *area, size_t len, uint64_t base, bool protected,
          const uint8_t **hash, int *nhash, char *err, size_t errcap)
{
	size_t off = TLV_INFO_LEN;
	uint16_t type, elen;
	const char *what = protected ? "protected TLV area" : "TLV area";

	while (off < len) {
		if (len - off < TLV_HDR_LEN)
			return fail(
			    err, errcap,
			    "%s: truncated entry header at offset %" PRIu64,
			    what, base + off);
		type = le16(area + off);
		elen = le16(area + off + 2);
		if (elen > len - off - TLV_HDR_LEN)
			return fail(
			    err, errcap,
			    "%s: entry type 0x%02x at offset %" PRIu64
			    " with length %u runs past the end of the area",
			    what, type, base + off, elen);
		if (type == MCUBOOT_TLV_SHA256) {
			if (protected)
				return fail(
				    err, errcap,
				    "SHA-256 TLV in the protected TLV area "
				    "(it cannot cover itself)");
			if (elen != MCUBOOT_HASH_LEN)
				return fail(
				    err, errcap,
				    "SHA-256 TLV has length %u, expected %d",
				    elen, MCUBOOT_HASH_LEN);
			if (++*nhash > 1)
				return fail(err, errcap,
				            "more than one SHA-256 TLV");
			*hash = area + off + TLV_HDR_LEN;
		}
		off += TLV_HDR_LEN + elen;
	}
	return 0;
}

static void
hex(const uint8_t *b, size_t n, char *out)
{
	size_t i;

	for (i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/*
 * Both TLV areas in memory (ptlv may be NULL when the image has none) and
 * the SHA-256 computed over header + body + protected area: walk them,
 * check the hash and fill in the rest of img.
 */
static int
check_tlvs(struct mcuboot_image *img, const uint8_t *ptlv, const uint8_t *tlv,
           size_t tlv_len, const uint8_t *computed, char *err, size_t errcap)
{
	const uint8_t *hash = NULL;
	int nhash = 0;
	char want[2 * MCUBOOT_HASH_LEN + 1], got[2 * MCUBOOT_HASH_LEN + 1];
	bool encrypted;

	if (ptlv != NULL &&
	    walk_tlvs(ptlv, img->protect_tlv_size, body_end(img), true, &hash,
	              &nhash, err, errcap) < 0)
		return -1;
	if (walk_tlvs(tlv, tlv_len, body_end(img) + img->protect_tlv_size,
	              false, &hash, &nhash, err, errcap) < 0)
		return -1;
	if (hash == NULL)
		return fail(err, errcap, "no SHA-256 TLV (type 0x%02x)",
		            MCUBOOT_TLV_SHA256);
	memcpy(img->hash, hash, MCUBOOT_HASH_LEN);
	encrypted = (img->flags & (IMAGE_F_ENCRYPTED_AES128 |
	                           IMAGE_F_ENCRYPTED_AES256)) != 0;
	img->hash_checked = !encrypted;
	if (!encrypted && memcmp(hash, computed, MCUBOOT_HASH_LEN) != 0) {
		hex(hash, MCUBOOT_HASH_LEN, want);
		hex(computed, MCUBOOT_HASH_LEN, got);
		return fail(
		    err, errcap,
		    "image hash mismatch: the SHA-256 TLV says %s, the image "
		    "hashes to %s",
		    want, got);
	}
	img->image_len =
	    (size_t)(body_end(img) + img->protect_tlv_size + tlv_len);
	return 0;
}

int
mcuboot_parse(const uint8_t *buf, size_t len, struct mcuboot_image *img,
              char *err, size_t errcap)
{
	struct mcuboot_image tmp;
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen;
	uint64_t end, tlv_off;
	uint16_t total;

	if (len < MCUBOOT_HDR_LEN)
		return fail(err, errcap,
		            "image too short: %zu bytes, a header needs %d",
		            len, MCUBOOT_HDR_LEN);
	if (decode_header(buf, &tmp, err, errcap) < 0)
		return -1;
	end = body_end(&tmp);
	if (end > len)
		return fail(err, errcap,
		            "image truncated: header and body end at %" PRIu64
		            ", the data has %zu bytes",
		            end, len);
	tlv_off = end + tmp.protect_tlv_size;
	if (tlv_off > len)
		return fail(
		    err, errcap,
		    "image truncated: the protected TLV area ends at %" PRIu64
		    ", the data has %zu bytes",
		    tlv_off, len);
	if (tmp.protect_tlv_size > 0 &&
	    check_ptlv_info(&tmp, buf + end, err, errcap) < 0)
		return -1;
	if (len - tlv_off < TLV_INFO_LEN)
		return fail(
		    err, errcap,
		    "image truncated: no TLV area header at offset %" PRIu64
		    ", the data has %zu bytes",
		    tlv_off, len);
	if (check_tlv_info(&tmp, buf + tlv_off, tlv_off, &total, err, errcap) <
	    0)
		return -1;
	if (total > len - tlv_off)
		return fail(err, errcap,
		            "image truncated: the TLV area ends at %" PRIu64
		            ", the data has %zu bytes",
		            tlv_off + total, len);
	if (total < len - tlv_off)
		return fail(err, errcap,
		            "%" PRIu64
		            " bytes of trailing data after the TLV area "
		            "(which ends at offset %" PRIu64 ")",
		            (uint64_t)(len - tlv_off - total), tlv_off + total);
	if (EVP_Digest(buf, (size_t)tlv_off, md, &mdlen, EVP_sha256(), NULL) !=
	    1)
		return fail(err, errcap, "SHA-256 failed");
	if (check_tlvs(&tmp, tmp.protect_tlv_size > 0 ? buf + end : NULL,
	               buf + tlv_off, total, md, err, errcap) < 0)
		return -1;
	*img = tmp;
	return 0;
}

/*
 * The streamed reader keeps the header and the two TLV areas (at most
 * 64 KiB each, their sizes are u16) and hashes everything else as it
 * passes.
 */
struct mcuboot_stream {
	EVP_MD_CTX *md;
	bool failed;
	char err[256];
	uint64_t off; /* bytes consumed */
	uint8_t hdr[MCUBOOT_HDR_LEN];
	struct mcuboot_image img;
	uint64_t ptlv_off, tlv_off, tlv_end; /* valid once the header is in */
	uint8_t *ptlv;
	uint8_t *tlv; /* whole area, info header included */
	uint16_t tlv_total;
};

struct mcuboot_stream *
mcuboot_stream_new(void)
{
	struct mcuboot_stream *s;

	s = xcalloc(1, sizeof(*s));
	s->md = EVP_MD_CTX_new();
	if (s->md == NULL ||
	    EVP_DigestInit_ex(s->md, EVP_sha256(), NULL) != 1) {
		s->failed = true;
		snprintf(s->err, sizeof(s->err), "SHA-256 set-up failed");
	}
	return s;
}

void
mcuboot_stream_free(struct mcuboot_stream *s)
{
	if (s == NULL)
		return;
	EVP_MD_CTX_free(s->md);
	free(s->ptlv);
	free(s->tlv);
	free(s);
}

static int
stream_fail(struct mcuboot_stream *s, char *err, size_t errcap)
{
	s->failed = true;
	return fail(err, errcap, "%s", s->err);
}

static int
hash(struct mcuboot_stream *s, const uint8_t *data, size_t n)
{
	if (EVP_DigestUpdate(s->md, data, n) != 1) {
		snprintf(s->err, sizeof(s->err), "SHA-256 failed");
		return -1;
	}
	return 0;
}

/* The header is in: fix where everything else lies. */
static int
stream_header(struct mcuboot_stream *s)
{
	if (decode_header(s->hdr, &s->img, s->err, sizeof(s->err)) < 0)
		return -1;
	s->ptlv_off = body_end(&s->img);
	s->tlv_off = s->ptlv_off + s->img.protect_tlv_size;
	s->tlv_end = s->tlv_off + TLV_INFO_LEN;
	if (s->img.protect_tlv_size > 0)
		s->ptlv = xmalloc(s->img.protect_tlv_size);
	return 0;
}

int
mcuboot_stream_feed(struct mcuboot_stream *s, const uint8_t *data, size_t len,
                    char *err, size_t errcap)
{
	uint8_t info[TLV_INFO_LEN];
	size_t n;

	if (s->failed)
		return fail(err, errcap, "%s", s->err);
	while (len > 0) {
		if (s->off < MCUBOOT_HDR_LEN) {
			n = MCUBOOT_HDR_LEN - s->off;
			n = n < len ? n : len;
			memcpy(s->hdr + s->off, data, n);
			if (hash(s, data, n) < 0)
				return stream_fail(s, err, errcap);
			s->off += n;
			if (s->off == MCUBOOT_HDR_LEN && stream_header(s) < 0)
				return stream_fail(s, err, errcap);
		} else if (s->off < s->ptlv_off) {
			n = s->ptlv_off - s->off < len
			        ? (size_t)(s->ptlv_off - s->off)
			        : len;
			if (hash(s, data, n) < 0)
				return stream_fail(s, err, errcap);
			s->off += n;
		} else if (s->off < s->tlv_off) {
			n = s->tlv_off - s->off < len
			        ? (size_t)(s->tlv_off - s->off)
			        : len;
			memcpy(s->ptlv + (s->off - s->ptlv_off), data, n);
			if (hash(s, data, n) < 0)
				return stream_fail(s, err, errcap);
			s->off += n;
			if (s->off == s->tlv_off &&
			    check_ptlv_info(&s->img, s->ptlv, s->err,
			                    sizeof(s->err)) < 0)
				return stream_fail(s, err, errcap);
		} else if (s->off < s->tlv_end) {
			n = s->tlv_end - s->off < len
			        ? (size_t)(s->tlv_end - s->off)
			        : len;
			if (s->tlv == NULL) {
				/* Room for the largest area a u16 can say. */
				s->tlv = xmalloc(MCUBOOT_TLV_AREA_MAX);
			}
			memcpy(s->tlv + (s->off - s->tlv_off), data, n);
			s->off += n;
			if (s->off == s->tlv_off + TLV_INFO_LEN) {
				memcpy(info, s->tlv, TLV_INFO_LEN);
				if (check_tlv_info(&s->img, info, s->tlv_off,
				                   &s->tlv_total, s->err,
				                   sizeof(s->err)) < 0)
					return stream_fail(s, err, errcap);
				s->tlv_end = s->tlv_off + s->tlv_total;
			}
		} else {
			snprintf(
			    s->err, sizeof(s->err),
			    "trailing data after the TLV area (which ends at "
			    "offset %" PRIu64 ")",
			    s->tlv_end);
			return stream_fail(s, err, errcap);
		}
		data += n;
		len -= n;
	}
	return 0;
}

int
mcuboot_stream_finish(struct mcuboot_stream *s, struct mcuboot_image *img,
                      char *err, size_t errcap)
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen;

	if (s->failed)
		return fail(err, errcap, "%s", s->err);
	if (s->off < MCUBOOT_HDR_LEN) {
		s->failed = true;
		return fail(err, errcap,
		            "image too short: %" PRIu64
		            " bytes, a header needs %d",
		            s->off, MCUBOOT_HDR_LEN);
	}
	if (s->off < s->tlv_end || s->tlv_total == 0) {
		s->failed = true;
		return fail(err, errcap,
		            "image truncated at %" PRIu64 " bytes: %s", s->off,
		            s->off < s->ptlv_off
		                ? "header and body are incomplete"
		            : s->off < s->tlv_off
		                ? "the protected TLV area is incomplete"
		                : "the TLV area is incomplete");
	}
	/* Finishing ends the stream either way. */
	s->failed = true;
	snprintf(s->err, sizeof(s->err), "the image stream is finished");
	if (EVP_DigestFinal_ex(s->md, md, &mdlen) != 1)
		return fail(err, errcap, "SHA-256 failed");
	if (check_tlvs(&s->img, s->ptlv, s->tlv, s->tlv_total, md, err,
	               errcap) < 0)
		return -1;
	*img = s->img;
	return 0;
}
