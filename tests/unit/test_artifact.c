/*
 * Unit tests for supervisor/artifact.c: artifacts assembled here with
 * libarchive's writer, so each test controls every byte (entry types,
 * names, order, compression, signatures) and extraction into a spool
 * directory can be checked file by file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>

#include "supervisor/artifact.h"

#define CAP (1024 * 1024)

/* ---- MCUboot images ------------------------------------------------- */

static void
put16(uint8_t *p, uint16_t v)
{
	p[0] = v & 0xff;
	p[1] = v >> 8;
}

static void
put32(uint8_t *p, uint32_t v)
{
	put16(p, v & 0xffff);
	put16(p + 2, v >> 16);
}

/* A minimal valid image: 32-byte header, body, TLV area with the hash. */
static uint8_t *
make_image(uint8_t maj, uint8_t min, uint16_t rev, uint32_t build, size_t body,
           unsigned seed, size_t *len)
{
	size_t off = 32 + body, i;
	uint8_t *b = calloc(1, off + 40);

	put32(b, 0x96f3b83d);
	put16(b + 8, 32);
	put32(b + 12, (uint32_t)body);
	b[20] = maj;
	b[21] = min;
	put16(b + 22, rev);
	put32(b + 24, build);
	for (i = 0; i < body; i++)
		b[32 + i] = (uint8_t)(i * 31 + seed * 7);
	put16(b + off, 0x6907);
	put16(b + off + 2, 40);
	put16(b + off + 4, 0x10);
	put16(b + off + 6, 32);
	SHA256(b, off, b + off + 8);
	*len = off + 40;
	return b;
}

static void
hexstr(const uint8_t *in, size_t n, char *out)
{
	size_t i;

	for (i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", in[i]);
}

static void
sha_hex(const void *buf, size_t len, char out[65])
{
	uint8_t h[32];

	SHA256(buf, len, h);
	hexstr(h, 32, out);
}

/* ---- tar writing ---------------------------------------------------- */

struct ent {
	const char *name;
	const void *data;
	size_t len;
	int type;         /* 0: regular file */
	const char *link; /* for links */
};

static uint8_t *
tar_build(const struct ent *e, size_t n, int filter, size_t *outlen)
{
	struct archive *a = archive_write_new();
	struct archive_entry *ae;
	uint8_t *buf = malloc(CAP);
	size_t used = 0, i;

	assert_int_equal(archive_write_set_format_ustar(a), ARCHIVE_OK);
	switch (filter) {
	case ARCHIVE_FILTER_GZIP:
		archive_write_add_filter_gzip(a);
		break;
	case ARCHIVE_FILTER_XZ:
		archive_write_add_filter_xz(a);
		break;
	case ARCHIVE_FILTER_ZSTD:
		archive_write_add_filter_zstd(a);
		break;
	}
	archive_write_set_bytes_in_last_block(a, 1);
	assert_int_equal(archive_write_open_memory(a, buf, CAP, &used),
	                 ARCHIVE_OK);
	for (i = 0; i < n; i++) {
		ae = archive_entry_new();
		archive_entry_set_pathname(ae, e[i].name);
		archive_entry_set_perm(ae, 0644);
		if (e[i].type == AE_IFLNK) {
			archive_entry_set_filetype(ae, AE_IFLNK);
			archive_entry_set_symlink(ae, e[i].link);
		} else if (e[i].type == -1) {
			archive_entry_set_filetype(ae, AE_IFREG);
			archive_entry_set_hardlink(ae, e[i].link);
		} else if (e[i].type != 0) {
			archive_entry_set_filetype(ae, (unsigned)e[i].type);
		} else {
			archive_entry_set_filetype(ae, AE_IFREG);
			archive_entry_set_size(ae, (la_int64_t)e[i].len);
		}
		assert_int_equal(archive_write_header(a, ae), ARCHIVE_OK);
		if (e[i].type == 0 && e[i].len > 0)
			assert_int_equal(
			    archive_write_data(a, e[i].data, e[i].len),
			    (la_ssize_t)e[i].len);
		archive_entry_free(ae);
	}
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
	*outlen = used;
	return buf;
}

/* ---- artifacts ------------------------------------------------------ */

struct file {
	const char *name;
	uint8_t *data;
	size_t len;
};

/* Everything a test may change before the outer tar is written. */
struct parts {
	const char *type;
	const char *version; /* provides version */
	struct file files[4];
	size_t nfiles;
	int hfilter, dfilter;
	const char *hname, *dname; /* default from the filters */
	char header_info[2048];
	char type_info[2048];
	char vfile[256];
	char manifest[4096];
	char sig[1024];
	bool has_sig;
	EVP_PKEY *sign_key;
	bool ec_der; /* ECDSA signature as DER instead of r || s */
	struct ent hextra[2];
	size_t nhextra;
	struct ent dextra[2];
	size_t ndextra;
	uint8_t *header, *data;
	size_t header_len, data_len;
};

static const char *
filter_ext(int f)
{
	switch (f) {
	case ARCHIVE_FILTER_GZIP:
		return ".gz";
	case ARCHIVE_FILTER_XZ:
		return ".xz";
	case ARCHIVE_FILTER_ZSTD:
		return ".zst";
	}
	return "";
}

static void
parts_init(struct parts *p, const char *type)
{
	size_t len;

	memset(p, 0, sizeof(*p));
	p->type = type;
	p->version = "1.2.3+4";
	if (strcmp(type, "zephyr-group-image") == 0) {
		p->files[0].name = "left";
		p->files[0].data = make_image(1, 2, 3, 4, 300, 1, &len);
		p->files[0].len = len;
		p->files[1].name = "right";
		p->files[1].data = make_image(1, 2, 3, 4, 500, 2, &len);
		p->files[1].len = len;
		p->nfiles = 2;
	} else {
		p->files[0].name = "zephyr.signed.bin";
		p->files[0].data = make_image(1, 2, 3, 4, 1000, 1, &len);
		p->files[0].len = len;
		p->nfiles = 1;
	}
	snprintf(p->vfile, sizeof(p->vfile),
	         "{\"format\":\"mender\",\"version\":3}");
}

static void
parts_free(struct parts *p)
{
	size_t i;

	for (i = 0; i < p->nfiles; i++)
		free(p->files[i].data);
	free(p->header);
	free(p->data);
}

/* Header JSON from the files (unless a test already wrote it). */
static void
make_headers(struct parts *p)
{
	char h[65], prov[1024] = "";
	size_t i, o = 0;

	if (p->header_info[0] == '\0')
		snprintf(
		    p->header_info, sizeof(p->header_info),
		    "{\"payloads\":[{\"type\":\"%s\"}],"
		    "\"artifact_provides\":{\"artifact_name\":\"test\"},"
		    "\"artifact_depends\":{\"device_type\":[\"a\",\"b\"]}}",
		    p->type);
	if (p->type_info[0] != '\0')
		return;
	if (strcmp(p->type, "zephyr-group-image") == 0) {
		for (i = 0; i < p->nfiles; i++) {
			sha_hex(p->files[i].data, p->files[i].len, h);
			o += (size_t)snprintf(
			    prov + o, sizeof(prov) - o,
			    "\"zephyr-group-image.target.%s\":\"%s\",",
			    p->files[i].name, h);
		}
		snprintf(p->type_info, sizeof(p->type_info),
		         "{\"type\":\"%s\",\"artifact_provides\":{%s"
		         "\"zephyr-group-image.version\":\"%s\"}}",
		         p->type, prov, p->version);
	} else {
		sha_hex(p->files[0].data, p->files[0].len, h);
		snprintf(p->type_info, sizeof(p->type_info),
		         "{\"type\":\"%s\",\"artifact_provides\":{"
		         "\"zephyr-image.checksum\":\"%s\","
		         "\"zephyr-image.version\":\"%s\"}}",
		         p->type, h, p->version);
	}
}

static char hname_buf[32], dname_buf[32];

/* Inner tars, manifest and signature (each only if not already set). */
static void
make_inner(struct parts *p)
{
	struct ent e[8];
	char h[65];
	size_t i, n = 0, o;

	make_headers(p);
	if (p->hname == NULL) {
		snprintf(hname_buf, sizeof(hname_buf), "header.tar%s",
		         filter_ext(p->hfilter));
		p->hname = hname_buf;
	}
	if (p->dname == NULL) {
		snprintf(dname_buf, sizeof(dname_buf), "data/0000.tar%s",
		         filter_ext(p->dfilter));
		p->dname = dname_buf;
	}
	if (p->header == NULL) {
		e[n++] = (struct ent){"header-info", p->header_info,
		                      strlen(p->header_info), 0, NULL};
		e[n++] = (struct ent){"headers/0000/type-info", p->type_info,
		                      strlen(p->type_info), 0, NULL};
		for (i = 0; i < p->nhextra; i++)
			e[n++] = p->hextra[i];
		p->header = tar_build(e, n, p->hfilter, &p->header_len);
	}
	if (p->data == NULL) {
		n = 0;
		for (i = 0; i < p->nfiles; i++)
			e[n++] =
			    (struct ent){p->files[i].name, p->files[i].data,
			                 p->files[i].len, 0, NULL};
		for (i = 0; i < p->ndextra; i++)
			e[n++] = p->dextra[i];
		p->data = tar_build(e, n, p->dfilter, &p->data_len);
	}
	if (p->manifest[0] == '\0') {
		o = 0;
		for (i = 0; i < p->nfiles; i++) {
			sha_hex(p->files[i].data, p->files[i].len, h);
			o += (size_t)snprintf(
			    p->manifest + o, sizeof(p->manifest) - o,
			    "%s  data/0000/%s\n", h, p->files[i].name);
		}
		sha_hex(p->header, p->header_len, h);
		o += (size_t)snprintf(p->manifest + o, sizeof(p->manifest) - o,
		                      "%s  %s\n", h, p->hname);
		sha_hex(p->vfile, strlen(p->vfile), h);
		snprintf(p->manifest + o, sizeof(p->manifest) - o,
		         "%s  version\n", h);
	}
	if (p->sign_key != NULL && !p->has_sig) {
		EVP_MD_CTX *md = EVP_MD_CTX_new();
		unsigned char sig[512], raw[64];
		size_t siglen = sizeof(sig);
		const unsigned char *q = sig;

		assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(),
		                                    NULL, p->sign_key),
		                 1);
		assert_int_equal(EVP_DigestSign(md, sig, &siglen,
		                                (unsigned char *)p->manifest,
		                                strlen(p->manifest)),
		                 1);
		EVP_MD_CTX_free(md);
		if (EVP_PKEY_base_id(p->sign_key) == EVP_PKEY_EC &&
		    !p->ec_der) {
			/* mender-artifact's form: r || s. */
			ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &q, (long)siglen);
			assert_non_null(es);
			BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 32);
			BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 32, 32);
			ECDSA_SIG_free(es);
			memcpy(sig, raw, 64);
			siglen = 64;
		}
		EVP_EncodeBlock((unsigned char *)p->sig, sig, (int)siglen);
		p->has_sig = true;
	}
}

/* The outer tar in the usual order. */
static uint8_t *
pack(struct parts *p, size_t *len)
{
	struct ent e[5];
	size_t n = 0;

	make_inner(p);
	e[n++] = (struct ent){"version", p->vfile, strlen(p->vfile), 0, NULL};
	e[n++] =
	    (struct ent){"manifest", p->manifest, strlen(p->manifest), 0, NULL};
	if (p->has_sig)
		e[n++] = (struct ent){"manifest.sig", p->sig, strlen(p->sig), 0,
		                      NULL};
	e[n++] = (struct ent){p->hname, p->header, p->header_len, 0, NULL};
	e[n++] = (struct ent){p->dname, p->data, p->data_len, 0, NULL};
	return tar_build(e, n, ARCHIVE_FILTER_NONE, len);
}

static char errbuf[512];

/* Reads buf; returns the artifact, or NULL with errbuf set. */
static struct artifact *
read_mem(const uint8_t *buf, size_t len, const struct artifact_opts *o)
{
	struct artifact *a = NULL;

	errbuf[0] = '\0';
	if (artifact_read_memory(buf, len, o, &a, errbuf, sizeof(errbuf)) ==
	    -1) {
		assert_null(a);
		assert_true(errbuf[0] != '\0');
		return NULL;
	}
	assert_non_null(a);
	return a;
}

/* Pack p, expect rejection with reason containing want. */
static void
expect_reject(struct parts *p, const struct artifact_opts *o, const char *want)
{
	size_t len;
	uint8_t *buf = pack(p, &len);
	struct artifact *a = read_mem(buf, len, o);

	if (a != NULL)
		fail_msg("accepted, expected '%s'", want);
	if (strstr(errbuf, want) == NULL)
		fail_msg("error '%s' lacks '%s'", errbuf, want);
	free(buf);
	parts_free(p);
}

static void
expect_accept(struct parts *p, const struct artifact_opts *o)
{
	size_t len;
	uint8_t *buf = pack(p, &len);
	struct artifact *a = read_mem(buf, len, o);

	if (a == NULL)
		fail_msg("rejected: %s", errbuf);
	artifact_free(a);
	free(buf);
	parts_free(p);
}

static int
count_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static char *
file_contents(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *b = malloc(CAP);

	assert_non_null(f);
	*len = fread(b, 1, CAP, f);
	fclose(f);
	return b;
}

static char spool[64];

static int
setup(void **state)
{
	(void)state;
	snprintf(spool, sizeof(spool), "/tmp/test_artifact.XXXXXX");
	return mkdtemp(spool) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	DIR *d = opendir(spool);
	struct dirent *de;
	char p[512];

	(void)state;
	while (d != NULL && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", spool, de->d_name);
		unlink(p);
	}
	if (d != NULL)
		closedir(d);
	return rmdir(spool);
}

/* ---- tests ---------------------------------------------------------- */

static void
test_single_extract(void **state)
{
	struct artifact_opts o = {.extract_dir = spool};
	struct parts p;
	struct artifact *a;
	const struct artifact_image *img;
	uint8_t *buf, hash[32];
	char hex[65], path[256], *got;
	size_t len, glen;

	(void)state;
	parts_init(&p, "zephyr-image");
	buf = pack(&p, &len);
	/* A stale file of the same name is replaced. */
	snprintf(path, sizeof(path), "%s/zephyr.signed.bin", spool);
	close(open(path, O_WRONLY | O_CREAT, 0600));
	a = read_mem(buf, len, &o);
	if (a == NULL)
		fail_msg("rejected: %s", errbuf);
	assert_int_equal(a->type, ARTIFACT_ZEPHYR_IMAGE);
	assert_string_equal(a->format, "mender");
	assert_string_equal(a->name, "test");
	assert_string_equal(a->version, "1.2.3+4");
	assert_int_equal(a->ndevice_types, 2);
	assert_true(artifact_compatible(a, "a"));
	assert_true(artifact_compatible(a, "b"));
	assert_false(artifact_compatible(a, "c"));
	assert_false(a->is_signed);
	assert_int_equal(a->nimages, 1);
	img = &a->images[0];
	assert_null(img->target);
	assert_string_equal(img->file, "zephyr.signed.bin");
	assert_string_equal(img->path, path);
	assert_int_equal(img->size, p.files[0].len);
	sha_hex(p.files[0].data, p.files[0].len, hex);
	assert_string_equal(img->sha256_hex, hex);
	SHA256(p.files[0].data, p.files[0].len - 40, hash);
	hexstr(hash, 32, hex);
	assert_string_equal(img->hash_hex, hex);
	assert_memory_equal(img->mcuboot.hash, hash, 32);
	assert_string_equal(img->version_imgtool, "1.2.3+4");
	assert_string_equal(img->version_rdfm, "1.2.3+4");
	assert_string_equal(img->version_zephyr, "1.2.3.4");
	got = file_contents(path, &glen);
	assert_int_equal(glen, p.files[0].len);
	assert_memory_equal(got, p.files[0].data, glen);
	free(got);
	artifact_remove_files(a);
	assert_int_equal(count_files(spool), 0);
	artifact_free(a);
	free(buf);
	parts_free(&p);
}

static void
test_group_extract(void **state)
{
	struct artifact_opts o = {.extract_dir = spool};
	struct parts p;
	struct artifact *a;
	const struct artifact_image *l, *r;
	uint8_t *buf;
	size_t len;

	(void)state;
	parts_init(&p, "zephyr-group-image");
	p.hfilter = ARCHIVE_FILTER_GZIP;
	p.dfilter = ARCHIVE_FILTER_XZ;
	buf = pack(&p, &len);
	a = read_mem(buf, len, &o);
	if (a == NULL)
		fail_msg("rejected: %s", errbuf);
	assert_int_equal(a->type, ARTIFACT_ZEPHYR_GROUP_IMAGE);
	assert_int_equal(a->nimages, 2);
	l = artifact_image_for(a, "left");
	r = artifact_image_for(a, "right");
	assert_non_null(l);
	assert_non_null(r);
	assert_null(artifact_image_for(a, "middle"));
	assert_int_equal(l->size, p.files[0].len);
	assert_int_equal(r->size, p.files[1].len);
	assert_int_equal(count_files(spool), 2);
	artifact_remove_files(a);
	artifact_free(a);
	free(buf);
	parts_free(&p);
}

/* A failure on the second member removes the first one's file too. */
static void
test_failure_removes_files(void **state)
{
	struct artifact_opts o = {.extract_dir = spool};
	struct parts p;

	(void)state;
	parts_init(&p, "zephyr-group-image");
	make_headers(&p);
	/* right's image gets a different version than the group's. */
	free(p.files[1].data);
	p.files[1].data = make_image(1, 2, 3, 5, 500, 2, &p.files[1].len);
	p.type_info[0] = '\0';
	expect_reject(&p, &o, "'right' is version 1.2.3+5");
	assert_int_equal(count_files(spool), 0);
}

static void
test_compressions(void **state)
{
	static const int f[] = {ARCHIVE_FILTER_NONE, ARCHIVE_FILTER_GZIP,
	                        ARCHIVE_FILTER_XZ, ARCHIVE_FILTER_ZSTD};
	struct parts p;
	size_t i;

	(void)state;
	for (i = 0; i < 4; i++) {
		parts_init(&p, "zephyr-image");
		p.hfilter = f[i];
		p.dfilter = f[(i + 1) % 4];
		expect_accept(&p, NULL);
	}
	/* Named .xz, written as gzip. */
	parts_init(&p, "zephyr-image");
	p.dfilter = ARCHIVE_FILTER_GZIP;
	p.dname = "data/0000.tar.xz";
	expect_reject(&p, NULL, "compression does not match its name");
	parts_init(&p, "zephyr-image");
	p.hname = "header.tar.bz2";
	expect_reject(&p, NULL, "unexpected path 'header.tar.bz2'");
}

static void
test_file_and_fd_readers(void **state)
{
	struct parts p;
	struct artifact *a;
	uint8_t *buf;
	size_t len;
	char path[256];
	FILE *f;

	(void)state;
	parts_init(&p, "zephyr-image");
	buf = pack(&p, &len);
	snprintf(path, sizeof(path), "%s/art.rdfm", spool);
	f = fopen(path, "wb");
	assert_int_equal(fwrite(buf, 1, len, f), len);
	fclose(f);
	assert_int_equal(
	    artifact_read_file(path, NULL, &a, errbuf, sizeof(errbuf)), 0);
	assert_int_equal(a->nimages, 1);
	assert_null(a->images[0].path);
	artifact_free(a);
	unlink(path);
	assert_int_equal(
	    artifact_read_file(path, NULL, &a, errbuf, sizeof(errbuf)), -1);
	assert_non_null(strstr(errbuf, "cannot open"));
	free(buf);
	parts_free(&p);
}

static EVP_PKEY *
ec_key(void)
{
	return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

static void
test_signatures(void **state)
{
	EVP_PKEY *rsa = EVP_RSA_gen(2048), *ec = ec_key(), *ec2 = ec_key();
	struct artifact_opts o = {0};
	struct parts p;
	struct artifact *a;
	uint8_t *buf;
	size_t len;

	(void)state;
	assert_non_null(rsa);
	assert_non_null(ec);
	/* RSA PKCS#1 v1.5, checked. */
	parts_init(&p, "zephyr-image");
	p.sign_key = rsa;
	buf = pack(&p, &len);
	o.verify_key = rsa;
	a = read_mem(buf, len, &o);
	if (a == NULL)
		fail_msg("rejected: %s", errbuf);
	assert_true(a->is_signed);
	assert_true(a->sig_verified);
	artifact_free(a);
	/* Not checked without a key, but reported. */
	a = read_mem(buf, len, NULL);
	assert_non_null(a);
	assert_true(a->is_signed);
	assert_false(a->sig_verified);
	artifact_free(a);
	/* Wrong key type. */
	o.verify_key = ec;
	assert_null(read_mem(buf, len, &o));
	assert_non_null(strstr(errbuf, "does not verify"));
	free(buf);
	parts_free(&p);

	/* ECDSA as r || s and as DER. */
	o.verify_key = ec;
	parts_init(&p, "zephyr-group-image");
	p.sign_key = ec;
	expect_accept(&p, &o);
	parts_init(&p, "zephyr-image");
	p.sign_key = ec;
	p.ec_der = true;
	expect_accept(&p, &o);
	parts_init(&p, "zephyr-image");
	p.sign_key = ec2;
	expect_reject(&p, &o, "does not verify with the configured key");
	/* Unsigned with a key configured. */
	parts_init(&p, "zephyr-image");
	expect_reject(&p, &o, "artifact is not signed");
	/* Garbage signature text. */
	parts_init(&p, "zephyr-image");
	snprintf(p.sig, sizeof(p.sig), "not base64!");
	p.has_sig = true;
	expect_reject(&p, &o, "manifest.sig: not base64");
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(ec2);
}

static void
test_key_load(void **state)
{
	char path[256];
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/key.pem", spool);
	f = fopen(path, "w");
	fputs(
	    "-----BEGIN PUBLIC KEY-----\nnonsense\n-----END PUBLIC KEY-----\n",
	    f);
	fclose(f);
	assert_null(artifact_key_load(path, errbuf, sizeof(errbuf)));
	assert_non_null(strstr(errbuf, "no PEM public or private key"));
	unlink(path);
	assert_null(artifact_key_load(path, errbuf, sizeof(errbuf)));
	assert_non_null(strstr(errbuf, "cannot open"));
}

static void
test_hostile_entries(void **state)
{
	struct parts p;
	static const char blob[] = "x";

	(void)state;
	parts_init(&p, "zephyr-image");
	p.dextra[p.ndextra++] =
	    (struct ent){"evil", NULL, 0, AE_IFLNK, "/etc/passwd"};
	expect_reject(&p, NULL, "'evil' is a symbolic link");

	parts_init(&p, "zephyr-image");
	p.dextra[p.ndextra++] = (struct ent){"dev", NULL, 0, AE_IFCHR, NULL};
	expect_reject(&p, NULL, "'dev' is not a regular file");

	parts_init(&p, "zephyr-image");
	p.dextra[p.ndextra++] = (struct ent){"sub", NULL, 0, AE_IFDIR, NULL};
	expect_reject(&p, NULL, "'sub/' is a directory");

	parts_init(&p, "zephyr-image");
	p.dextra[p.ndextra++] =
	    (struct ent){"hard", NULL, 0, -1, "zephyr.signed.bin"};
	expect_reject(&p, NULL, "'hard' is a hard link");

	parts_init(&p, "zephyr-image");
	p.hextra[p.nhextra++] = (struct ent){"/etc/cron.d/x", blob, 1, 0, NULL};
	expect_reject(&p, NULL, "absolute name '/etc/cron.d/x'");

	parts_init(&p, "zephyr-image");
	p.hextra[p.nhextra++] =
	    (struct ent){"headers/0000/../../x", blob, 1, 0, NULL};
	expect_reject(&p, NULL, "path traversal");

	parts_init(&p, "zephyr-image");
	p.hextra[p.nhextra++] =
	    (struct ent){"scripts/ArtifactInstall_Enter", blob, 1, 0, NULL};
	expect_reject(&p, NULL, "state scripts are not supported");

	parts_init(&p, "zephyr-image");
	p.hextra[p.nhextra++] = (struct ent){"header-info", blob, 1, 0, NULL};
	expect_reject(&p, NULL, "duplicate entry 'header-info'");

	parts_init(&p, "zephyr-image");
	p.hextra[p.nhextra++] =
	    (struct ent){"bad\033[2Jname", blob, 1, 0, NULL};
	expect_reject(&p, NULL, "unprintable characters");

	/* Two payload files both named for a group member. */
	parts_init(&p, "zephyr-group-image");
	p.dextra[p.ndextra++] =
	    (struct ent){"left", p.files[0].data, p.files[0].len, 0, NULL};
	expect_reject(&p, NULL, "duplicate entry 'left'");
}

static void
test_bad_json(void **state)
{
	struct parts p;

	(void)state;
	parts_init(&p, "zephyr-image");
	snprintf(p.header_info, sizeof(p.header_info),
	         "{\"payloads\":[{\"type\":\"zephyr-image\"},{\"type\":"
	         "\"zephyr-image\"}],\"artifact_provides\":{\"artifact_name\":"
	         "\"x\"},\"artifact_depends\":{\"device_type\":[\"a\"]}}");
	expect_reject(&p, NULL, "more than one payload");

	parts_init(&p, "zephyr-image");
	snprintf(p.header_info, sizeof(p.header_info),
	         "{\"payloads\":[{\"type\":\"zephyr-image\"}],"
	         "\"artifact_provides\":{\"artifact_name\":\"x\"}}");
	expect_reject(&p, NULL, "no artifact_depends.device_type");

	parts_init(&p, "zephyr-image");
	snprintf(p.header_info, sizeof(p.header_info),
	         "{\"payloads\":[{\"type\":\"zephyr-image\"}],"
	         "\"artifact_provides\":{\"artifact_name\":\"x\"},"
	         "\"artifact_depends\":{\"device_type\":[\"a\"]}} trailing");
	expect_reject(&p, NULL, "trailing data");

	parts_init(&p, "zephyr-image");
	snprintf(p.type_info, sizeof(p.type_info),
	         "{\"type\":\"zephyr-group-image\",\"artifact_provides\":{}}");
	expect_reject(&p, NULL, "differs from header-info's");

	parts_init(&p, "zephyr-image");
	snprintf(p.type_info, sizeof(p.type_info),
	         "{\"type\":\"zephyr-image\",\"artifact_provides\":{"
	         "\"zephyr-image.version\":\"1.2.3+4\"}}");
	expect_reject(&p, NULL, "no zephyr-image.checksum provides");

	parts_init(&p, "zephyr-group-image");
	snprintf(p.type_info, sizeof(p.type_info),
	         "{\"type\":\"zephyr-group-image\",\"artifact_provides\":{"
	         "\"zephyr-group-image.version\":\"1.2.3+4\","
	         "\"zephyr-group-image.target.a/b\":\"00\"}}");
	expect_reject(&p, NULL, "contains '/'");

	parts_init(&p, "zephyr-image");
	snprintf(p.vfile, sizeof(p.vfile), "{\"format\":\"mender\"}");
	expect_reject(&p, NULL, "no integer \"version\"");
}

static void
test_bad_manifest(void **state)
{
	struct parts p;
	char *nl;

	(void)state;
	parts_init(&p, "zephyr-image");
	make_inner(&p);
	/* One space instead of two. */
	memmove(p.manifest + 65, p.manifest + 66, strlen(p.manifest + 65));
	expect_reject(&p, NULL, "manifest line 1: expected");

	parts_init(&p, "zephyr-image");
	make_inner(&p);
	nl = strchr(p.manifest, '\n');
	memmove(p.manifest + (nl - p.manifest) + 1, p.manifest,
	        strlen(p.manifest) + 1);
	memcpy(p.manifest + (nl - p.manifest) + 1, p.manifest,
	       (size_t)(nl - p.manifest) + 1);
	expect_reject(&p, NULL, "twice");

	parts_init(&p, "zephyr-image");
	make_inner(&p);
	p.manifest[3] = 'g';
	expect_reject(&p, NULL, "bad sha256");

	parts_init(&p, "zephyr-image");
	make_inner(&p);
	strcat(p.manifest, "0000000000000000000000000000000000000000000000"
	                   "000000000000000000  etc/passwd\n");
	expect_reject(&p, NULL, "manifest lists unexpected path 'etc/passwd'");
}

/* The data tar ends inside the payload file. */
static void
test_truncated_data(void **state)
{
	struct artifact_opts o = {.extract_dir = spool};
	struct parts p;

	(void)state;
	parts_init(&p, "zephyr-image");
	make_inner(&p);
	p.data_len = 512 + 600;
	expect_reject(&p, &o, "runcated");
	assert_int_equal(count_files(spool), 0);
}

/* A payload that fails its manifest checksum leaves nothing behind. */
static void
test_bad_payload_removed(void **state)
{
	struct artifact_opts o = {.extract_dir = spool};
	struct parts p;

	(void)state;
	parts_init(&p, "zephyr-image");
	make_inner(&p);
	p.manifest[0] = p.manifest[0] == '0' ? '1' : '0';
	expect_reject(
	    &p, &o, "checksum of 'data/0000/zephyr.signed.bin' does not match");
	assert_int_equal(count_files(spool), 0);
}

/* 16 MiB of zeros, gzip'ed: refused at the first block, nothing kept. */
static void
test_zero_bomb(void **state)
{
	struct artifact_opts o = {.extract_dir = spool};
	struct parts p;

	(void)state;
	parts_init(&p, "zephyr-image");
	free(p.files[0].data);
	p.files[0].len = 16 << 20;
	p.files[0].data = calloc(1, p.files[0].len);
	p.dfilter = ARCHIVE_FILTER_GZIP;
	expect_reject(&p, &o, "is not a valid MCUboot image");
	assert_int_equal(count_files(spool), 0);
}

static void
test_extract_dir_missing(void **state)
{
	struct artifact_opts o = {.extract_dir = "/nonexistent/spool"};
	struct parts p;

	(void)state;
	parts_init(&p, "zephyr-image");
	expect_reject(&p, &o, "cannot open /nonexistent/spool");
}

static void
test_garbage(void **state)
{
	static const uint8_t junk[600] = {1, 2, 3};

	(void)state;
	assert_null(read_mem(junk, sizeof(junk), NULL));
	assert_null(read_mem(junk, 0, NULL));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_single_extract, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_group_extract, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_failure_removes_files, setup,
	                                    teardown),
	    cmocka_unit_test(test_compressions),
	    cmocka_unit_test_setup_teardown(test_file_and_fd_readers, setup,
	                                    teardown),
	    cmocka_unit_test(test_signatures),
	    cmocka_unit_test_setup_teardown(test_key_load, setup, teardown),
	    cmocka_unit_test(test_hostile_entries),
	    cmocka_unit_test(test_bad_json),
	    cmocka_unit_test(test_bad_manifest),
	    cmocka_unit_test_setup_teardown(test_truncated_data, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_bad_payload_removed, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_zero_bomb, setup, teardown),
	    cmocka_unit_test(test_extract_dir_missing),
	    cmocka_unit_test(test_garbage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
