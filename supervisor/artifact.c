/*
 * Mender v3 artifact reader: libarchive walks the outer tar once; the
 * header and data tars inside are read through a callback that feeds the
 * outer entry's bytes, so no artifact is ever held in memory whole.
 * Everything in an artifact is hostile until the manifest (and, with a
 * key, its signature) vouches for it.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <json-c/json.h>
#include <lzma.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/decoder.h>
#include <openssl/sha.h>

#include "artifact.h"
#include "mcuboot.h"
#include "util.h"
#include "xmalloc.h"

#define FEED_BUF_LEN (64 * 1024)
#define DATA_BUF_LEN (64 * 1024)
#define VERSION_MAX  4096
#define MANIFEST_MAX ARTIFACT_MANIFEST_MAX
#define JSON_DEPTH   32
/* The largest dictionary xz presets use (-9, and mender-artifact: 64 MiB). */
#define XZ_MEMLIMIT   ((uint64_t)66 << 20)
#define DATA_PREFIX   "data/0000/"
#define SINGLE_FILE   "zephyr.signed.bin"
#define SINGLE_PREFIX "zephyr-image."
#define GROUP_PREFIX  "zephyr-group-image."
#define GROUP_TARGET  GROUP_PREFIX "target."

/*
 * Fuzz builds accept any checksum, so that mutated input gets past the
 * manifest to the JSON, provides and payload checks behind it.
 */
#ifdef FUZZING
#define SHA_EQUAL(x, y) ((void)(x), (void)(y), 1)
#else
#define SHA_EQUAL(x, y) (memcmp((x), (y), 32) == 0)
#endif

/* Outer entries, in the order they must appear. */
enum outer_rank {
	R_VERSION,
	R_MANIFEST,
	R_SIG,
	R_HEADER,
	R_DATA,
};

struct manifest_entry {
	char *path;
	uint8_t sha[32];
	bool seen;
};

struct target {
	char *name;
	uint8_t sha[32];
	bool found;
};

struct reader {
	const struct artifact_opts *opts;
	struct artifact *a;
	char *err;
	size_t errcap;
	bool failed;

	struct archive *outer;
	const char *cur; /* outer entry being fed to an inner archive */
	EVP_MD_CTX *feed_md;
	uint8_t *feedbuf;
	uint8_t *xzbuf;
	lzma_stream lz;
	bool xz, xz_in_eof, xz_end;
	uint8_t *databuf;
	int dirfd;

	int last_rank;
	uint8_t version_sha[32];
	char *manifest;
	size_t manifest_len;
	struct manifest_entry *mf;
	size_t nmf;
	bool have_sig;

	/* From the header. */
	bool have_header;
	uint8_t single_sha[32];
	struct mcuboot_version want_version;
	struct target *targets;
	size_t ntargets;
};

static int fail(struct reader *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
fail(struct reader *r, const char *fmt, ...)
{
	va_list ap;

	if (!r->failed) {
		va_start(ap, fmt);
		vsnprintf(r->err, r->errcap, fmt, ap);
		va_end(ap);
		r->failed = true;
	}
	return -1;
}

/* A failure of this host, not of the artifact: the caller may retry. */
static int local_fail(struct reader *r, int e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
local_fail(struct reader *r, int e, const char *fmt, ...)
{
	va_list ap;

	if (r->failed)
		return -1;
	va_start(ap, fmt);
	vsnprintf(r->err, r->errcap, fmt, ap);
	va_end(ap);
	r->failed = true;
	if (r->opts->local_errno != NULL)
		*r->opts->local_errno = e;
	return -1;
}

/*
 * A name from the archive made safe to print: anything that is not
 * printable ASCII becomes '?', and long names are cut.
 */
static const char *
pname(const char *s)
{
	static char bufs[4][96];
	static int i;
	char *b = bufs[i++ % 4];
	size_t n;

	if (s == NULL)
		return "(none)";
	for (n = 0; s[n] != '\0' && n < sizeof(bufs[0]) - 4; n++)
		b[n] = (s[n] >= 0x20 && s[n] < 0x7f) ? s[n] : '?';
	if (s[n] != '\0') {
		memcpy(b + n, "...", 3);
		n += 3;
	}
	b[n] = '\0';
	return b;
}

static int
hex_nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Exactly 64 hex digits into 32 bytes. */
static int
sha_decode(const char *s, size_t len, uint8_t out[32])
{
	size_t i;
	int hi, lo;

	if (len != 64)
		return -1;
	for (i = 0; i < 32; i++) {
		hi = hex_nibble(s[2 * i]);
		lo = hex_nibble(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

/*
 * Names inside an artifact: no absolute paths, no "." or ".." components,
 * no empty components, printable ASCII only; with flat set, no '/' at all
 * (payload files become file names in the spool).
 */
static int
check_name(struct reader *r, const char *where, const char *name, bool flat)
{
	const char *p, *c;
	size_t len;

	if (name == NULL || *name == '\0')
		return fail(r, "%s: entry without a name", where);
	len = strlen(name);
	if (len > ARTIFACT_NAME_MAX)
		return fail(r, "%s: entry name too long (%zu bytes)", where,
		            len);
	if (name[0] == '/')
		return fail(r, "%s: absolute name '%s'", where, pname(name));
	for (p = name; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f || (unsigned char)*p >= 0x80)
			return fail(r,
			            "%s: name '%s' has unprintable characters",
			            where, pname(name));
	for (c = name; c != NULL; c = p != NULL ? p + 1 : NULL) {
		p = strchr(c, '/');
		len = p != NULL ? (size_t)(p - c) : strlen(c);
		if (len == 2 && c[0] == '.' && c[1] == '.')
			return fail(r, "%s: path traversal in name '%s'", where,
			            pname(name));
		if (len == 0 || (len == 1 && c[0] == '.'))
			return fail(r, "%s: malformed name '%s'", where,
			            pname(name));
	}
	if (flat && strchr(name, '/') != NULL)
		return fail(r, "%s: payload name '%s' contains '/'", where,
		            pname(name));
	return 0;
}

/* Only plain regular files with a known size belong in an artifact. */
static int
check_entry(struct reader *r, const char *where, struct archive_entry *e,
            bool flat)
{
	const char *name = archive_entry_pathname(e);

	if (archive_entry_hardlink(e) != NULL)
		return fail(r, "%s: '%s' is a hard link", where, pname(name));
	switch (archive_entry_filetype(e)) {
	case AE_IFREG:
		break;
	case AE_IFLNK:
		return fail(r, "%s: '%s' is a symbolic link", where,
		            pname(name));
	case AE_IFDIR:
		return fail(r, "%s: '%s' is a directory", where, pname(name));
	default:
		return fail(r, "%s: '%s' is not a regular file", where,
		            pname(name));
	}
	if (check_name(r, where, name, flat) == -1)
		return -1;
	if (!archive_entry_size_is_set(e) || archive_entry_size(e) < 0)
		return fail(r, "%s: '%s' has no size", where, pname(name));
	if (archive_entry_sparse_count(e) > 0)
		return fail(r, "%s: '%s' is a sparse file", where, pname(name));
	return 0;
}

/* Reads a whole (small) entry of archive ar into a NUL-terminated buffer. */
static int
read_small(struct reader *r, struct archive *ar, const char *where,
           struct archive_entry *e, size_t cap, char **out, size_t *outlen)
{
	la_int64_t size = archive_entry_size(e);
	size_t len = 0;
	la_ssize_t n;
	char *buf;

	if (size > (la_int64_t)cap)
		return fail(r, "%s: '%s' is too large (%lld bytes, limit %zu)",
		            where, pname(archive_entry_pathname(e)),
		            (long long)size, cap);
	buf = xmalloc((size_t)size + 1);
	for (;;) {
		n = archive_read_data(ar, buf + len, (size_t)size - len);
		if (n < 0) {
			free(buf);
			return fail(r, "%s: cannot read '%s': %s", where,
			            pname(archive_entry_pathname(e)),
			            archive_error_string(ar));
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == (size_t)size) {
			/* Reaches the entry's end so truncation shows. */
			n = archive_read_data(ar, buf, 0);
			if (n < 0) {
				free(buf);
				return fail(r, "%s: cannot read '%s': %s",
				            where,
				            pname(archive_entry_pathname(e)),
				            archive_error_string(ar));
			}
			break;
		}
	}
	if (len != (size_t)size) {
		free(buf);
		return fail(r, "%s: '%s' is %zu bytes, its header says %lld",
		            where, pname(archive_entry_pathname(e)), len,
		            (long long)size);
	}
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	return 0;
}

/* Parse a JSON document that must be one object and nothing else. */
static json_object *
parse_json(struct reader *r, const char *what, const char *buf, size_t len)
{
	json_tokener *tok;
	json_object *obj;
	size_t end;

	if (memchr(buf, '\0', len) != NULL) {
		fail(r, "%s: NUL byte in JSON", what);
		return NULL;
	}
	tok = json_tokener_new_ex(JSON_DEPTH);
	if (tok == NULL) {
		fail(r, "%s: out of memory", what);
		return NULL;
	}
	obj = json_tokener_parse_ex(tok, buf, (int)len);
	if (obj == NULL) {
		fail(r, "%s: invalid JSON: %s", what,
		     json_tokener_error_desc(json_tokener_get_error(tok)));
		json_tokener_free(tok);
		return NULL;
	}
	for (end = json_tokener_get_parse_end(tok); end < len; end++) {
		if (!isspace((unsigned char)buf[end])) {
			fail(r, "%s: trailing data after the JSON object",
			     what);
			json_object_put(obj);
			json_tokener_free(tok);
			return NULL;
		}
	}
	json_tokener_free(tok);
	if (!json_object_is_type(obj, json_type_object)) {
		fail(r, "%s: not a JSON object", what);
		json_object_put(obj);
		return NULL;
	}
	return obj;
}

static struct manifest_entry *
manifest_find(struct reader *r, const char *path)
{
	size_t i;

	for (i = 0; i < r->nmf; i++)
		if (strcmp(r->mf[i].path, path) == 0)
			return &r->mf[i];
	return NULL;
}

/* The manifest's checksum for path must equal sha; marks it seen. */
static int
manifest_check(struct reader *r, const char *path, const uint8_t sha[32])
{
	struct manifest_entry *m = manifest_find(r, path);

	if (m == NULL)
		return fail(r, "'%s' is not listed in the manifest",
		            pname(path));
	if (m->seen)
		return fail(r, "duplicate entry '%s'", pname(path));
	m->seen = true;
	if (!SHA_EQUAL(m->sha, sha))
		return fail(r, "checksum of '%s' does not match the manifest",
		            pname(path));
	return 0;
}

static int
parse_version(struct reader *r, const char *buf, size_t len)
{
	json_object *obj, *fmt, *ver;
	const char *f;
	int ret = -1;

	if ((obj = parse_json(r, "version", buf, len)) == NULL)
		return -1;
	if (!json_object_object_get_ex(obj, "format", &fmt) ||
	    !json_object_is_type(fmt, json_type_string)) {
		fail(r, "version: no \"format\" string");
		goto out;
	}
	f = json_object_get_string(fmt);
	if (strcmp(f, "mender") != 0 && strcmp(f, "rdfm") != 0) {
		fail(r, "version: unknown format '%s'", pname(f));
		goto out;
	}
	if (!json_object_object_get_ex(obj, "version", &ver) ||
	    !json_object_is_type(ver, json_type_int)) {
		fail(r, "version: no integer \"version\"");
		goto out;
	}
	if (json_object_get_int64(ver) != 3) {
		fail(r, "version: unsupported format version %lld (only 3)",
		     (long long)json_object_get_int64(ver));
		goto out;
	}
	snprintf(r->a->format, sizeof(r->a->format), "%s", f);
	r->a->format_version = 3;
	ret = 0;
out:
	json_object_put(obj);
	return ret;
}

/* Which manifest paths can exist at all. */
static bool
manifest_path_ok(const char *p)
{
	return strcmp(p, "version") == 0 || strcmp(p, "header.tar") == 0 ||
	       strcmp(p, "header.tar.gz") == 0 ||
	       strcmp(p, "header.tar.xz") == 0 ||
	       strcmp(p, "header.tar.zst") == 0 ||
	       strncmp(p, DATA_PREFIX, strlen(DATA_PREFIX)) == 0;
}

/* Lines "<64 hex>  <path>\n". */
static int
parse_manifest(struct reader *r)
{
	const char *p = r->manifest, *end = r->manifest + r->manifest_len;
	const char *nl, *path;
	struct manifest_entry *m;
	size_t lineno = 0, cap = 0;
	char *name;

	while (p < end) {
		lineno++;
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			nl = end;
		if (nl - p < 67 || p[64] != ' ' || p[65] != ' ')
			return fail(r,
			            "manifest line %zu: expected "
			            "'<sha256>  <path>'",
			            lineno);
		path = p + 66;
		name = xstrndup(path, (size_t)(nl - path));
		if (strlen(name) != (size_t)(nl - path)) {
			free(name);
			return fail(r, "manifest line %zu: NUL byte", lineno);
		}
		if (r->nmf == cap) {
			cap = cap ? cap * 2 : 8;
			r->mf = xreallocarray(r->mf, cap, sizeof(*r->mf));
		}
		m = &r->mf[r->nmf];
		m->path = name;
		m->seen = false;
		r->nmf++;
		if (sha_decode(p, 64, m->sha) == -1)
			return fail(r, "manifest line %zu: bad sha256 '%.64s'",
			            lineno, pname(p));
		if (check_name(r, "manifest", name, false) == -1)
			return -1;
		if (!manifest_path_ok(name))
			return fail(r, "manifest lists unexpected path '%s'",
			            pname(name));
		if (strncmp(name, DATA_PREFIX, strlen(DATA_PREFIX)) == 0 &&
		    check_name(r, "manifest", name + strlen(DATA_PREFIX),
		               true) == -1)
			return -1;
		if (manifest_find(r, name) != m)
			return fail(r, "manifest lists '%s' twice",
			            pname(name));
		p = nl + 1;
	}
	if (r->nmf == 0)
		return fail(r, "manifest is empty");
	return manifest_check(r, "version", r->version_sha);
}

/* Base64 (standard alphabet, padded) of the raw or DER signature. */
static int
verify_signature(struct reader *r, const char *b64, size_t len)
{
	unsigned char *sig = NULL, *der = NULL;
	EVP_MD_CTX *md = NULL;
	ECDSA_SIG *es = NULL;
	BIGNUM *br = NULL, *bs = NULL;
	const unsigned char *v;
	size_t siglen, vlen;
	int n, der_len, ret = -1;

	while (len > 0 && isspace((unsigned char)b64[len - 1]))
		len--;
	if (len == 0 || len % 4 != 0)
		return fail(r, "manifest.sig: not base64");
	sig = xmalloc(len);
	n = EVP_DecodeBlock(sig, (const unsigned char *)b64, (int)len);
	if (n < 0) {
		fail(r, "manifest.sig: not base64");
		goto out;
	}
	siglen = (size_t)n;
	if (b64[len - 1] == '=')
		siglen--;
	if (b64[len - 2] == '=')
		siglen--;
	r->a->is_signed = true;
	if (r->opts->verify_key == NULL) {
		ret = 0;
		goto out;
	}
	v = sig;
	vlen = siglen;
	/*
	 * mender-artifact writes ECDSA P-256 signatures as r || s, 32 bytes
	 * each; OpenSSL wants DER.  Other lengths are taken as DER already.
	 */
	if (EVP_PKEY_base_id(r->opts->verify_key) == EVP_PKEY_EC &&
	    siglen == 64) {
		es = ECDSA_SIG_new();
		br = BN_bin2bn(sig, 32, NULL);
		bs = BN_bin2bn(sig + 32, 32, NULL);
		if (es == NULL || br == NULL || bs == NULL ||
		    ECDSA_SIG_set0(es, br, bs) != 1) {
			BN_free(br);
			BN_free(bs);
			fail(r, "manifest.sig: out of memory");
			goto out;
		}
		der_len = i2d_ECDSA_SIG(es, &der);
		if (der_len <= 0) {
			fail(r, "manifest.sig: cannot encode the signature");
			goto out;
		}
		v = der;
		vlen = (size_t)der_len;
	}
	md = EVP_MD_CTX_new();
	if (md == NULL || EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL,
	                                       r->opts->verify_key) != 1) {
		fail(r, "manifest.sig: cannot set up verification");
		goto out;
	}
	if (EVP_DigestVerify(md, v, vlen, (const unsigned char *)r->manifest,
	                     r->manifest_len) != 1) {
		fail(r, "manifest.sig: signature does not verify with the "
		        "configured key");
		goto out;
	}
	r->a->sig_verified = true;
	ret = 0;
out:
	ERR_clear_error();
	EVP_MD_CTX_free(md);
	ECDSA_SIG_free(es);
	OPENSSL_free(der);
	free(sig);
	return ret;
}

/* Reads the next stored bytes of the outer entry into feedbuf, hashing. */
static la_ssize_t
feed_raw(struct reader *r)
{
	la_ssize_t n;

	n = archive_read_data(r->outer, r->feedbuf, FEED_BUF_LEN);
	if (n < 0) {
		fail(r, "cannot read '%s': %s", r->cur,
		     archive_error_string(r->outer));
		return -1;
	}
	if (n > 0)
		EVP_DigestUpdate(r->feed_md, r->feedbuf, (size_t)n);
	return n;
}

/*
 * xz through liblzma with a memory limit: libarchive's own xz filter has
 * none, and a hostile stream could ask for a 1.5 GiB dictionary.
 */
static la_ssize_t
feed_xz(struct reader *r)
{
	lzma_ret ret;
	la_ssize_t n;

	r->lz.next_out = r->xzbuf;
	r->lz.avail_out = FEED_BUF_LEN;
	while (!r->xz_end && r->lz.avail_out == FEED_BUF_LEN) {
		if (r->lz.avail_in == 0 && !r->xz_in_eof) {
			if ((n = feed_raw(r)) < 0)
				return -1;
			r->lz.next_in = r->feedbuf;
			r->lz.avail_in = (size_t)n;
			r->xz_in_eof = n == 0;
		}
		ret = lzma_code(&r->lz, r->xz_in_eof ? LZMA_FINISH : LZMA_RUN);
		if (ret == LZMA_STREAM_END)
			r->xz_end = true;
		else if (ret == LZMA_MEMLIMIT_ERROR) {
			fail(r,
			     "%s: xz stream needs %llu MiB to decompress "
			     "(limit %llu MiB)",
			     r->cur,
			     (unsigned long long)(lzma_memusage(&r->lz) >> 20),
			     (unsigned long long)(XZ_MEMLIMIT >> 20));
			return -1;
		} else if (ret == LZMA_FORMAT_ERROR) {
			fail(r,
			     "%s: compression does not match its name "
			     "(not xz)",
			     r->cur);
			return -1;
		} else if (ret == LZMA_BUF_ERROR && r->xz_in_eof) {
			fail(r, "%s: truncated xz stream", r->cur);
			return -1;
		} else if (ret != LZMA_OK) {
			fail(r, "%s: corrupt xz stream (liblzma error %d)",
			     r->cur, (int)ret);
			return -1;
		}
	}
	return (la_ssize_t)(FEED_BUF_LEN - r->lz.avail_out);
}

/* Feeds an inner archive with the current outer entry. */
static la_ssize_t
feed_read(struct archive *in, void *cd, const void **buf)
{
	struct reader *r = cd;
	la_ssize_t n;

	n = r->xz ? feed_xz(r) : feed_raw(r);
	if (n < 0) {
		archive_set_error(in, EIO, "outer entry unreadable");
		return -1;
	}
	*buf = r->xz ? r->xzbuf : r->feedbuf;
	return n;
}

/*
 * The rest of the outer entry after the inner tar ended (xz leftovers
 * included): hashed, then the hash of all the stored bytes.
 */
static int
feed_finish(struct reader *r, uint8_t sha[32])
{
	la_ssize_t n;

	if (r->xz) {
		lzma_end(&r->lz);
		r->xz = false;
	}
	do {
		n = feed_raw(r);
	} while (n > 0);
	if (n < 0)
		return -1;
	EVP_DigestFinal_ex(r->feed_md, sha, NULL);
	return 0;
}

/* Compression from the entry name: "", ".gz", ".xz", ".zst". */
static int
filter_for(const char *suffix)
{
	if (*suffix == '\0')
		return ARCHIVE_FILTER_NONE;
	if (strcmp(suffix, ".gz") == 0)
		return ARCHIVE_FILTER_GZIP;
	if (strcmp(suffix, ".xz") == 0)
		return ARCHIVE_FILTER_XZ;
	if (strcmp(suffix, ".zst") == 0)
		return ARCHIVE_FILTER_ZSTD;
	return -1;
}

static struct archive *
inner_open(struct reader *r, const char *name, int filter)
{
	static const lzma_stream lz_init = LZMA_STREAM_INIT;
	struct archive *in;
	int count, want;

	r->cur = name;
	EVP_DigestInit_ex(r->feed_md, EVP_sha256(), NULL);
	if (filter == ARCHIVE_FILTER_XZ) {
		r->lz = lz_init;
		if (lzma_stream_decoder(&r->lz, XZ_MEMLIMIT, 0) != LZMA_OK) {
			fail(r, "%s: cannot set up the xz decoder", name);
			return NULL;
		}
		r->xz = true;
		r->xz_in_eof = r->xz_end = false;
		filter = ARCHIVE_FILTER_NONE; /* libarchive sees plain tar */
	}
	in = archive_read_new();
	if (in == NULL) {
		fail(r, "%s: out of memory", name);
		return NULL;
	}
	archive_read_support_format_tar(in);
	/* Built-in decoders only: a WARN here would mean an external one. */
	archive_read_support_filter_gzip(in);
	archive_read_support_filter_zstd(in);
	if (archive_read_open(in, r, NULL, feed_read, NULL) != ARCHIVE_OK) {
		fail(r, "%s: not a tar archive: %s", name,
		     archive_error_string(in));
		archive_read_free(in);
		return NULL;
	}
	count = archive_filter_count(in);
	want = filter == ARCHIVE_FILTER_NONE ? 1 : 2;
	if (count != want || archive_filter_code(in, 0) != filter) {
		fail(r, "%s: compression does not match its name (found %s)",
		     name, archive_filter_name(in, 0));
		archive_read_free(in);
		return NULL;
	}
	return in;
}

/* Reads type-info's provides into the reader and the artifact. */
static int
parse_provides(struct reader *r, json_object *prov)
{
	struct artifact *a = r->a;
	json_object *v;
	const char *key, *val, *vkey;
	size_t plen = strlen(GROUP_TARGET);
	struct target *t;

	vkey = a->type == ARTIFACT_ZEPHYR_IMAGE ? SINGLE_PREFIX "version"
	                                        : GROUP_PREFIX "version";
	if (!json_object_object_get_ex(prov, vkey, &v) ||
	    !json_object_is_type(v, json_type_string))
		return fail(r, "type-info: no %s provides", vkey);
	val = json_object_get_string(v);
	if (mcuboot_version_parse(val, &r->want_version) == -1)
		return fail(r, "type-info: %s '%s' is not a version", vkey,
		            pname(val));
	a->version = xstrdup(val);

	if (a->type == ARTIFACT_ZEPHYR_IMAGE) {
		if (!json_object_object_get_ex(prov, SINGLE_PREFIX "checksum",
		                               &v) ||
		    !json_object_is_type(v, json_type_string))
			return fail(r, "type-info: no " SINGLE_PREFIX
			               "checksum provides");
		val = json_object_get_string(v);
		if (sha_decode(val, strlen(val), r->single_sha) == -1)
			return fail(r,
			            "type-info: " SINGLE_PREFIX
			            "checksum '%s' is not a sha256",
			            pname(val));
		return 0;
	}

	json_object_object_foreach(prov, k, pv)
	{
		key = k;
		if (strncmp(key, GROUP_TARGET, plen) != 0)
			continue;
		if (!json_object_is_type(pv, json_type_string))
			return fail(r, "type-info: %s is not a string",
			            pname(key));
		if (check_name(r, "type-info", key + plen, true) == -1)
			return -1;
		if (r->ntargets == ARTIFACT_MAX_IMAGES)
			return fail(r, "type-info: more than %d targets",
			            ARTIFACT_MAX_IMAGES);
		val = json_object_get_string(pv);
		r->targets = xreallocarray(r->targets, r->ntargets + 1,
		                           sizeof(*r->targets));
		t = &r->targets[r->ntargets++];
		t->name = xstrdup(key + plen);
		t->found = false;
		if (sha_decode(val, strlen(val), t->sha) == -1)
			return fail(r, "type-info: %s '%s' is not a sha256",
			            pname(key), pname(val));
	}
	if (r->ntargets == 0)
		return fail(r, "type-info: no " GROUP_TARGET "<name> provides");
	return 0;
}

static int
parse_header_info(struct reader *r, const char *buf, size_t len)
{
	struct artifact *a = r->a;
	json_object *obj, *payloads, *p0, *type, *prov, *name, *dep, *dt, *d;
	const char *t;
	size_t i, n;
	int ret = -1;

	if ((obj = parse_json(r, "header-info", buf, len)) == NULL)
		return -1;
	if (!json_object_object_get_ex(obj, "payloads", &payloads) ||
	    !json_object_is_type(payloads, json_type_array)) {
		fail(r, "header-info: no \"payloads\" array");
		goto out;
	}
	n = json_object_array_length(payloads);
	if (n == 0) {
		fail(r, "header-info: no payload");
		goto out;
	}
	if (n > 1) {
		fail(r, "header-info: more than one payload (%zu)", n);
		goto out;
	}
	p0 = json_object_array_get_idx(payloads, 0);
	if (!json_object_is_type(p0, json_type_object) ||
	    !json_object_object_get_ex(p0, "type", &type) ||
	    !json_object_is_type(type, json_type_string)) {
		fail(r, "header-info: payload without a \"type\"");
		goto out;
	}
	t = json_object_get_string(type);
	if (strcmp(t, "zephyr-image") == 0)
		a->type = ARTIFACT_ZEPHYR_IMAGE;
	else if (strcmp(t, "zephyr-group-image") == 0)
		a->type = ARTIFACT_ZEPHYR_GROUP_IMAGE;
	else {
		fail(r,
		     "unsupported payload type '%s' (want zephyr-image or "
		     "zephyr-group-image)",
		     pname(t));
		goto out;
	}
	if (!json_object_object_get_ex(obj, "artifact_provides", &prov) ||
	    !json_object_is_type(prov, json_type_object) ||
	    !json_object_object_get_ex(prov, "artifact_name", &name) ||
	    !json_object_is_type(name, json_type_string)) {
		fail(r, "header-info: no artifact_provides.artifact_name");
		goto out;
	}
	a->name = xstrdup(json_object_get_string(name));
	if (!json_object_object_get_ex(obj, "artifact_depends", &dep) ||
	    !json_object_is_type(dep, json_type_object) ||
	    !json_object_object_get_ex(dep, "device_type", &dt) ||
	    !json_object_is_type(dt, json_type_array) ||
	    json_object_array_length(dt) == 0) {
		fail(r, "header-info: no artifact_depends.device_type list");
		goto out;
	}
	n = json_object_array_length(dt);
	a->device_types = xcalloc(n, sizeof(*a->device_types));
	for (i = 0; i < n; i++) {
		d = json_object_array_get_idx(dt, i);
		if (!json_object_is_type(d, json_type_string)) {
			fail(r,
			     "header-info: device_type[%zu] is not a "
			     "string",
			     i);
			goto out;
		}
		a->device_types[a->ndevice_types++] =
		    xstrdup(json_object_get_string(d));
	}
	ret = 0;
out:
	json_object_put(obj);
	return ret;
}

static int
parse_type_info(struct reader *r, const char *buf, size_t len)
{
	json_object *obj, *type, *prov;
	const char *want = artifact_type_name(r->a->type);
	int ret = -1;

	if ((obj = parse_json(r, "type-info", buf, len)) == NULL)
		return -1;
	if (!json_object_object_get_ex(obj, "type", &type) ||
	    !json_object_is_type(type, json_type_string)) {
		fail(r, "type-info: no \"type\"");
		goto out;
	}
	if (strcmp(json_object_get_string(type), want) != 0) {
		fail(r, "type-info: type '%s' differs from header-info's '%s'",
		     pname(json_object_get_string(type)), want);
		goto out;
	}
	if (!json_object_object_get_ex(obj, "artifact_provides", &prov) ||
	    !json_object_is_type(prov, json_type_object)) {
		fail(r, "type-info: no artifact_provides");
		goto out;
	}
	ret = parse_provides(r, prov);
out:
	json_object_put(obj);
	return ret;
}

/*
 * header.tar: header-info, headers/0000/type-info, optional
 * headers/0000/meta-data.  The JSON is kept until the manifest checksum of
 * the whole header has been checked, then parsed.
 */
static int
read_header(struct reader *r, const char *name, int filter)
{
	struct archive *in;
	struct archive_entry *e;
	char *info = NULL, *tinfo = NULL, *meta = NULL, **slot;
	size_t info_len = 0, tinfo_len = 0, meta_len = 0, *slot_len;
	uint8_t sha[32];
	const char *en;
	json_object *mobj;
	int rc, ret = -1;

	if ((in = inner_open(r, name, filter)) == NULL)
		return -1;
	for (;;) {
		rc = archive_read_next_header(in, &e);
		if (rc == ARCHIVE_EOF)
			break;
		if (rc != ARCHIVE_OK) {
			fail(r, "%s: %s", name, archive_error_string(in));
			goto out;
		}
		if (check_entry(r, name, e, false) == -1)
			goto out;
		en = archive_entry_pathname(e);
		if (strcmp(en, "header-info") == 0) {
			slot = &info;
			slot_len = &info_len;
		} else if (strcmp(en, "headers/0000/type-info") == 0) {
			slot = &tinfo;
			slot_len = &tinfo_len;
		} else if (strcmp(en, "headers/0000/meta-data") == 0) {
			slot = &meta;
			slot_len = &meta_len;
		} else if (strncmp(en, "headers/", 8) == 0 &&
		           strncmp(en, "headers/0000/", 13) != 0) {
			fail(r, "%s: more than one payload ('%s')", name,
			     pname(en));
			goto out;
		} else if (strncmp(en, "scripts/", 8) == 0) {
			fail(r, "%s: state scripts are not supported ('%s')",
			     name, pname(en));
			goto out;
		} else {
			fail(r, "%s: unexpected entry '%s'", name, pname(en));
			goto out;
		}
		if (*slot != NULL) {
			fail(r, "%s: duplicate entry '%s'", name, pname(en));
			goto out;
		}
		if (slot != &info && info == NULL) {
			fail(r, "%s: '%s' before header-info", name, pname(en));
			goto out;
		}
		if (slot == &meta && tinfo == NULL) {
			fail(r, "%s: meta-data before type-info", name);
			goto out;
		}
		if (read_small(r, in, name, e, ARTIFACT_JSON_MAX, slot,
		               slot_len) == -1)
			goto out;
	}
	archive_read_free(in);
	in = NULL;
	if (feed_finish(r, sha) == -1 || manifest_check(r, name, sha) == -1)
		goto out;
	if (info == NULL) {
		fail(r, "%s: no header-info", name);
		goto out;
	}
	if (tinfo == NULL) {
		fail(r, "%s: no headers/0000/type-info", name);
		goto out;
	}
	if (parse_header_info(r, info, info_len) == -1 ||
	    parse_type_info(r, tinfo, tinfo_len) == -1)
		goto out;
	if (meta != NULL && meta_len > 0) {
		if ((mobj = parse_json(r, "meta-data", meta, meta_len)) == NULL)
			goto out;
		json_object_put(mobj);
	}
	r->have_header = true;
	ret = 0;
out:
	if (in != NULL)
		archive_read_free(in);
	free(info);
	free(tinfo);
	free(meta);
	return ret;
}

static int
write_all(int fd, const uint8_t *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, buf, len);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Streams one payload file: hash, MCUboot check and (maybe) the spool. */
static int
read_payload(struct reader *r, struct archive *in, struct archive_entry *e,
             struct artifact_image *img)
{
	struct mcuboot_stream *ms;
	char why[256], mpath[sizeof(DATA_PREFIX) + ARTIFACT_NAME_MAX];
	la_int64_t size = archive_entry_size(e);
	EVP_MD_CTX *md;
	uint64_t total = 0;
	la_ssize_t n;
	int fd = -1, ret = -1;

	md = EVP_MD_CTX_new();
	ms = mcuboot_stream_new();
	if (md == NULL || ms == NULL ||
	    EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		fail(r, "out of memory");
		goto out;
	}
	if (r->dirfd != -1) {
		if (unlinkat(r->dirfd, img->file, 0) == -1 && errno != ENOENT) {
			local_fail(r, errno, "cannot replace %s/%s: %s",
			           r->opts->extract_dir, img->file,
			           strerror(errno));
			goto out;
		}
		fd = openat(
		    r->dirfd, img->file,
		    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd == -1) {
			local_fail(r, errno, "cannot create %s/%s: %s",
			           r->opts->extract_dir, img->file,
			           strerror(errno));
			goto out;
		}
		xasprintf(&img->path, "%s/%s", r->opts->extract_dir, img->file);
	}
	snprintf(why, sizeof(why), "invalid image");
	for (;;) {
		n = archive_read_data(in, r->databuf, DATA_BUF_LEN);
		if (n < 0) {
			fail(r, "cannot read '%s': %s", pname(img->file),
			     archive_error_string(in));
			goto out;
		}
		if (n == 0)
			break;
		total += (uint64_t)n;
		EVP_DigestUpdate(md, r->databuf, (size_t)n);
		/*
		 * Stop at the first bad byte: a decompression bomb of zeros
		 * never gets further than its first block.
		 */
		if (mcuboot_stream_feed(ms, r->databuf, (size_t)n, why,
		                        sizeof(why)) == -1) {
			fail(r, "'%s' is not a valid MCUboot image: %s",
			     pname(img->file), why);
			goto out;
		}
		if (fd != -1 && write_all(fd, r->databuf, (size_t)n) == -1) {
			local_fail(r, errno, "cannot write %s: %s", img->path,
			           strerror(errno));
			goto out;
		}
	}
	if (total != (uint64_t)size) {
		fail(r, "'%s' is %llu bytes, its header says %lld",
		     pname(img->file), (unsigned long long)total,
		     (long long)size);
		goto out;
	}
	if (fd != -1) {
		if (fsync(fd) == -1 || close(fd) == -1) {
			fd = -1;
			local_fail(r, errno, "cannot write %s: %s", img->path,
			           strerror(errno));
			goto out;
		}
		fd = -1;
	}
	img->size = total;
	EVP_DigestFinal_ex(md, img->sha256, NULL);
	hex_encode(img->sha256, 32, img->sha256_hex);
	snprintf(mpath, sizeof(mpath), DATA_PREFIX "%s", img->file);
	if (manifest_check(r, mpath, img->sha256) == -1)
		goto out;
	if (mcuboot_stream_finish(ms, &img->mcuboot, why, sizeof(why)) == -1) {
		fail(r, "'%s' is not a valid MCUboot image: %s",
		     pname(img->file), why);
		goto out;
	}
	hex_encode(img->mcuboot.hash, MCUBOOT_HASH_LEN, img->hash_hex);
	mcuboot_version_format(&img->mcuboot.version, MCUBOOT_SPELL_IMGTOOL,
	                       img->version_imgtool,
	                       sizeof(img->version_imgtool));
	mcuboot_version_format(&img->mcuboot.version, MCUBOOT_SPELL_RDFM,
	                       img->version_rdfm, sizeof(img->version_rdfm));
	mcuboot_version_format(&img->mcuboot.version, MCUBOOT_SPELL_ZEPHYR,
	                       img->version_zephyr,
	                       sizeof(img->version_zephyr));
	ret = 0;
out:
	if (fd != -1)
		close(fd);
	mcuboot_stream_free(ms);
	EVP_MD_CTX_free(md);
	return ret;
}

static bool
version_equal(const struct mcuboot_version *x, const struct mcuboot_version *y)
{
	return x->major == y->major && x->minor == y->minor &&
	       x->revision == y->revision && x->build == y->build;
}

/* The provides must describe exactly what was extracted. */
static int
check_image_provides(struct reader *r, struct artifact_image *img)
{
	struct target *t = NULL;
	size_t i;

	if (r->a->type == ARTIFACT_ZEPHYR_IMAGE) {
		if (!SHA_EQUAL(img->sha256, r->single_sha))
			return fail(r,
			            SINGLE_PREFIX "checksum does not match "
			                          "'%s'",
			            SINGLE_FILE);
	} else {
		for (i = 0; i < r->ntargets; i++)
			if (strcmp(r->targets[i].name, img->target) == 0)
				t = &r->targets[i];
		if (t == NULL)
			return fail(r,
			            "no " GROUP_TARGET "%s provides for "
			            "payload file '%s'",
			            pname(img->target), pname(img->file));
		if (!SHA_EQUAL(img->sha256, t->sha))
			return fail(r,
			            GROUP_TARGET "%s does not match the "
			                         "payload file",
			            pname(img->target));
		t->found = true;
	}
	if (!version_equal(&img->mcuboot.version, &r->want_version))
		return fail(r, "'%s' is version %s, the artifact provides %s",
		            pname(img->file), img->version_imgtool,
		            pname(r->a->version));
	return 0;
}

static int
read_data(struct reader *r, const char *name, int filter)
{
	struct artifact *a = r->a;
	struct archive *in;
	struct archive_entry *e;
	struct artifact_image *img;
	const char *en;
	uint8_t sha[32];
	size_t i;
	int rc, ret = -1;

	if ((in = inner_open(r, name, filter)) == NULL)
		return -1;
	for (;;) {
		rc = archive_read_next_header(in, &e);
		if (rc == ARCHIVE_EOF)
			break;
		if (rc != ARCHIVE_OK) {
			fail(r, "%s: %s", name, archive_error_string(in));
			goto out;
		}
		if (check_entry(r, name, e, true) == -1)
			goto out;
		en = archive_entry_pathname(e);
		for (i = 0; i < a->nimages; i++)
			if (strcmp(a->images[i].file, en) == 0) {
				fail(r, "%s: duplicate entry '%s'", name,
				     pname(en));
				goto out;
			}
		if (a->type == ARTIFACT_ZEPHYR_IMAGE) {
			if (strcmp(en, SINGLE_FILE) != 0) {
				fail(r,
				     "%s: unexpected payload file '%s' "
				     "(zephyr-image carries only " SINGLE_FILE
				     ")",
				     name, pname(en));
				goto out;
			}
		} else if (a->nimages == ARTIFACT_MAX_IMAGES) {
			fail(r, "%s: more than %d payload files", name,
			     ARTIFACT_MAX_IMAGES);
			goto out;
		}
		a->images = xreallocarray(a->images, a->nimages + 1,
		                          sizeof(*a->images));
		img = &a->images[a->nimages++];
		memset(img, 0, sizeof(*img));
		img->file = xstrdup(en);
		if (a->type == ARTIFACT_ZEPHYR_GROUP_IMAGE)
			img->target = xstrdup(en);
		if (read_payload(r, in, e, img) == -1 ||
		    check_image_provides(r, img) == -1)
			goto out;
	}
	archive_read_free(in);
	in = NULL;
	if (feed_finish(r, sha) == -1)
		goto out;
	if (a->nimages == 0) {
		fail(r, "%s: no payload file", name);
		goto out;
	}
	for (i = 0; i < r->ntargets; i++)
		if (!r->targets[i].found) {
			fail(r, "no payload file for target '%s'",
			     pname(r->targets[i].name));
			goto out;
		}
	ret = 0;
out:
	if (in != NULL)
		archive_read_free(in);
	return ret;
}

/* Position of an outer entry in the required order, or -1 (err set). */
static int
outer_rank(struct reader *r, const char *name, int *filter)
{

	if (strcmp(name, "version") == 0)
		return R_VERSION;
	if (strcmp(name, "manifest") == 0)
		return R_MANIFEST;
	if (strcmp(name, "manifest.sig") == 0)
		return R_SIG;
	if (strncmp(name, "header.tar", 10) == 0 &&
	    (*filter = filter_for(name + 10)) != -1)
		return R_HEADER;
	if (strncmp(name, "data/0000.tar", 13) == 0 &&
	    (*filter = filter_for(name + 13)) != -1)
		return R_DATA;
	if (strncmp(name, "data/", 5) == 0)
		return fail(r, "more than one payload ('%s')", pname(name));
	return fail(r, "unexpected entry '%s' in the artifact", pname(name));
}

static const char *const rank_names[] = {
    "version", "manifest", "manifest.sig", "header.tar", "data/0000.tar",
};

static int
read_outer(struct reader *r)
{
	struct archive_entry *e;
	const char *name;
	char *buf;
	size_t len, i;
	int rc, rank, filter = ARCHIVE_FILTER_NONE;

	r->last_rank = -1;
	for (;;) {
		rc = archive_read_next_header(r->outer, &e);
		if (rc == ARCHIVE_EOF)
			break;
		if (rc != ARCHIVE_OK)
			return fail(r, "%s: %s",
			            r->last_rank == -1
			                ? "not a tar archive"
			                : "truncated or corrupt artifact",
			            archive_error_string(r->outer));
		if (check_entry(r, "artifact", e, false) == -1)
			return -1;
		name = archive_entry_pathname(e);
		if ((rank = outer_rank(r, name, &filter)) == -1)
			return -1;
		if (rank == r->last_rank)
			return fail(r, "duplicate entry '%s'", pname(name));
		if (rank < r->last_rank)
			return fail(r, "'%s' out of order (after '%s')",
			            pname(name), rank_names[r->last_rank]);
		if (r->last_rank == -1 && rank != R_VERSION)
			return fail(r,
			            "'%s' out of order: 'version' must "
			            "come first",
			            pname(name));
		if (rank >= R_SIG && r->last_rank < R_MANIFEST)
			return fail(r, "'%s' before the manifest", pname(name));
		if (rank == R_DATA && r->last_rank < R_HEADER)
			return fail(r, "'%s' before the header", pname(name));
		if (rank > R_SIG && r->opts->verify_key != NULL && !r->have_sig)
			return fail(r, "artifact is not signed and a verify "
			               "key is configured");
		r->last_rank = rank;
		switch (rank) {
		case R_VERSION:
			if (read_small(r, r->outer, "artifact", e, VERSION_MAX,
			               &buf, &len) == -1)
				return -1;
			SHA256((unsigned char *)buf, len, r->version_sha);
			rc = parse_version(r, buf, len);
			free(buf);
			if (rc == -1)
				return -1;
			break;
		case R_MANIFEST:
			if (read_small(r, r->outer, "artifact", e, MANIFEST_MAX,
			               &r->manifest, &r->manifest_len) == -1 ||
			    parse_manifest(r) == -1)
				return -1;
			break;
		case R_SIG:
			if (read_small(r, r->outer, "artifact", e,
			               ARTIFACT_SIG_MAX, &buf, &len) == -1)
				return -1;
			r->have_sig = true;
			rc = verify_signature(r, buf, len);
			free(buf);
			if (rc == -1)
				return -1;
			break;
		case R_HEADER:
			if (read_header(r, name, filter) == -1)
				return -1;
			break;
		case R_DATA:
			if (read_data(r, name, filter) == -1)
				return -1;
			break;
		}
	}
	if (r->last_rank < R_DATA)
		return fail(r, "artifact ends before %s",
		            r->last_rank < R_MANIFEST ? "its manifest"
		            : r->last_rank < R_HEADER
		                ? "its header"
		                : "its payload (data/0000.tar)");
	for (i = 0; i < r->nmf; i++)
		if (!r->mf[i].seen)
			return fail(r, "'%s' listed in the manifest is missing",
			            pname(r->mf[i].path));
	return 0;
}

void
artifact_remove_files(const struct artifact *a)
{
	size_t i;

	if (a == NULL)
		return;
	for (i = 0; i < a->nimages; i++)
		if (a->images[i].path != NULL)
			unlink(a->images[i].path);
}

void
artifact_free(struct artifact *a)
{
	size_t i;

	if (a == NULL)
		return;
	for (i = 0; i < a->ndevice_types; i++)
		free(a->device_types[i]);
	free(a->device_types);
	for (i = 0; i < a->nimages; i++) {
		free(a->images[i].target);
		free(a->images[i].file);
		free(a->images[i].path);
	}
	free(a->images);
	free(a->name);
	free(a->version);
	free(a);
}

static void
reader_free(struct reader *r)
{
	size_t i;

	for (i = 0; i < r->nmf; i++)
		free(r->mf[i].path);
	free(r->mf);
	for (i = 0; i < r->ntargets; i++)
		free(r->targets[i].name);
	free(r->targets);
	free(r->manifest);
	free(r->feedbuf);
	free(r->xzbuf);
	if (r->xz)
		lzma_end(&r->lz);
	free(r->databuf);
	EVP_MD_CTX_free(r->feed_md);
	if (r->dirfd != -1)
		close(r->dirfd);
	if (r->outer != NULL)
		archive_read_free(r->outer);
}

/* open_fn opens r->outer on the caller's source. */
static int
artifact_read(const struct artifact_opts *opts, struct artifact **out,
              char *err, size_t errcap,
              int (*open_fn)(struct archive *, void *), void *arg)
{
	static const struct artifact_opts noopts;
	struct reader r;
	int ret = -1;

	*out = NULL;
	memset(&r, 0, sizeof(r));
	r.opts = opts != NULL ? opts : &noopts;
	r.err = err;
	r.errcap = errcap;
	r.dirfd = -1;
	r.a = xcalloc(1, sizeof(*r.a));
	r.feedbuf = xmalloc(FEED_BUF_LEN);
	r.xzbuf = xmalloc(FEED_BUF_LEN);
	r.databuf = xmalloc(DATA_BUF_LEN);
	r.feed_md = EVP_MD_CTX_new();
	r.outer = archive_read_new();
	if (r.feed_md == NULL || r.outer == NULL) {
		fail(&r, "out of memory");
		goto out;
	}
	if (r.opts->extract_dir != NULL) {
		r.dirfd = open(r.opts->extract_dir,
		               O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (r.dirfd == -1) {
			local_fail(&r, errno, "cannot open %s: %s",
			           r.opts->extract_dir, strerror(errno));
			goto out;
		}
	}
	/* The outer tar is never compressed. */
	archive_read_support_format_tar(r.outer);
	if (open_fn(r.outer, arg) != ARCHIVE_OK) {
		fail(&r, "not a tar archive: %s",
		     archive_error_string(r.outer));
		goto out;
	}
	ret = read_outer(&r);
out:
	if (ret == -1) {
		if (!r.failed)
			fail(&r, "cannot read the artifact");
		artifact_remove_files(r.a);
		artifact_free(r.a);
	} else
		*out = r.a;
	reader_free(&r);
	return ret;
}

static int
open_fd(struct archive *ar, void *arg)
{
	return archive_read_open_fd(ar, *(int *)arg, FEED_BUF_LEN);
}

struct memsrc {
	const void *buf;
	size_t len;
};

static int
open_mem(struct archive *ar, void *arg)
{
	struct memsrc *m = arg;

	return archive_read_open_memory(ar, m->buf, m->len);
}

static int
artifact_read_fd(int fd, const struct artifact_opts *opts,
                 struct artifact **out, char *err, size_t errcap)
{
	return artifact_read(opts, out, err, errcap, open_fd, &fd);
}

int
artifact_read_file(const char *path, const struct artifact_opts *opts,
                   struct artifact **out, char *err, size_t errcap)
{
	int fd, ret;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1) {
		int e = errno;

		snprintf(err, errcap, "cannot open %s: %s", path, strerror(e));
		if (opts != NULL && opts->local_errno != NULL)
			*opts->local_errno = e;
		return -1;
	}
	ret = artifact_read_fd(fd, opts, out, err, errcap);
	close(fd);
	return ret;
}

int
artifact_read_memory(const void *buf, size_t len,
                     const struct artifact_opts *opts, struct artifact **out,
                     char *err, size_t errcap)
{
	struct memsrc m = {buf, len};

	return artifact_read(opts, out, err, errcap, open_mem, &m);
}

const char *
artifact_type_name(enum artifact_type t)
{
	return t == ARTIFACT_ZEPHYR_GROUP_IMAGE ? "zephyr-group-image"
	                                        : "zephyr-image";
}

bool
artifact_compatible(const struct artifact *a, const char *device_type)
{
	size_t i;

	for (i = 0; i < a->ndevice_types; i++)
		if (strcmp(a->device_types[i], device_type) == 0)
			return true;
	return false;
}

const struct artifact_image *
artifact_image_for(const struct artifact *a, const char *target)
{
	size_t i;

	for (i = 0; i < a->nimages; i++)
		if (a->images[i].target != NULL &&
		    strcmp(a->images[i].target, target) == 0)
			return &a->images[i];
	return NULL;
}

EVP_PKEY *
artifact_key_load(const char *path, char *err, size_t errcap)
{
	OSSL_DECODER_CTX *dctx;
	EVP_PKEY *key = NULL;
	FILE *f;
	int id;

	if ((f = fopen(path, "r")) == NULL) {
		snprintf(err, errcap, "cannot open %s: %s", path,
		         strerror(errno));
		return NULL;
	}
	/* Any PEM key: SPKI, PKCS#1 RSA public, or a private key. */
	dctx = OSSL_DECODER_CTX_new_for_pkey(&key, "PEM", NULL, NULL, 0, NULL,
	                                     NULL);
	if (dctx == NULL || OSSL_DECODER_from_fp(dctx, f) != 1)
		key = NULL;
	OSSL_DECODER_CTX_free(dctx);
	fclose(f);
	ERR_clear_error();
	if (key == NULL) {
		snprintf(err, errcap, "%s: no PEM public or private key", path);
		return NULL;
	}
	id = EVP_PKEY_base_id(key);
	if (id != EVP_PKEY_RSA && id != EVP_PKEY_EC) {
		snprintf(err, errcap, "%s: key is neither RSA nor ECDSA", path);
		EVP_PKEY_free(key);
		return NULL;
	}
	return key;
}
