/*
 * mcuboot-mkimage: writes unsigned MCUboot images (header, body, optional
 * protected TLVs, SHA-256 TLV) for tests and the demo, since imgtool is not
 * installable here; with --print-hash FILE it reads an image back instead.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "mcuboot.h"

#define PROG      "mcuboot-mkimage"
#define MAX_PTLV  64
#define CHUNK     65536
#define TLV_TOTAL (4 + 4 + MCUBOOT_HASH_LEN)

/* The output being written, removed if we give up half-way. */
static const char *partial;

struct ptlv {
	uint16_t type;
	size_t len;
	uint8_t *data;
};

struct opts {
	struct mcuboot_version version;
	uint32_t load_addr;
	uint32_t hdr_size;
	bool have_size;
	uint64_t size;
	uint64_t seed;
	const char *body;
	struct ptlv ptlv[MAX_PTLV];
	size_t nptlv;
	bool have_pad_to;
	uint64_t pad_to;
	const char *out;
	bool print_hash;
};

static void
usage(FILE *f)
{
	fprintf(
	    f, "usage: " PROG " [--version V] [--load-addr N] [--hdr-size N]\n"
	       "           (--size N [--seed S] | --body FILE)\n"
	       "           [--protected-tlv TYPE:HEX]... [--pad-to N]\n"
	       "           -o FILE [--print-hash]\n"
	       "       " PROG " --print-hash FILE\n"
	       "V is 1.2.3, 1.2.3+4 or 1.2.3.4; --hdr-size defaults to 0x200;\n"
	       "--pad-to N pads the body with 0xff so the file is N bytes.\n");
}

static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (partial != NULL)
		unlink(partial);
	exit(1);
}

static uint64_t
number(const char *opt, const char *s, uint64_t max)
{
	char *end;
	unsigned long long v;

	errno = 0;
	if (s[0] == '-' || s[0] == '\0')
		die("%s '%s': not a number", opt, s);
	v = strtoull(s, &end, 0);
	if (errno != 0 || *end != '\0')
		die("%s '%s': not a number", opt, s);
	if (v > max)
		die("%s %s: larger than %" PRIu64, opt, s, max);
	return v;
}

static void
add_ptlv(struct opts *o, const char *arg)
{
	const char *colon = strchr(arg, ':');
	struct ptlv *t;
	char type[16];
	long len;

	if (colon == NULL || (size_t)(colon - arg) >= sizeof(type))
		die("--protected-tlv '%s': expected TYPE:HEX", arg);
	if (o->nptlv == MAX_PTLV)
		die("--protected-tlv: at most %d entries", MAX_PTLV);
	memcpy(type, arg, (size_t)(colon - arg));
	type[colon - arg] = '\0';
	t = &o->ptlv[o->nptlv++];
	t->type = (uint16_t)number("--protected-tlv type", type, 0xffff);
	if (t->type == MCUBOOT_TLV_SHA256)
		die("--protected-tlv: type 0x10 (SHA-256) cannot be protected");
	if (colon[1] == '\0') {
		t->len = 0;
		t->data = NULL;
		return;
	}
	t->data = OPENSSL_hexstr2buf(colon + 1, &len);
	if (t->data == NULL)
		die("--protected-tlv '%s': bad hex data", arg);
	t->len = (size_t)len;
}

static void
parse_args(int argc, char **argv, struct opts *o, const char **in)
{
	static const struct option longopts[] = {
	    {"version", required_argument, NULL, 'V'},
	    {"load-addr", required_argument, NULL, 'l'},
	    {"hdr-size", required_argument, NULL, 'H'},
	    {"size", required_argument, NULL, 's'},
	    {"seed", required_argument, NULL, 'S'},
	    {"body", required_argument, NULL, 'b'},
	    {"protected-tlv", required_argument, NULL, 'p'},
	    {"pad-to", required_argument, NULL, 'P'},
	    {"print-hash", no_argument, NULL, 'x'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int c;

	memset(o, 0, sizeof(*o));
	o->hdr_size = 0x200;
	while ((c = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'V':
			if (mcuboot_version_parse(optarg, &o->version) < 0)
				die("--version '%s': expected 1.2.3, 1.2.3+4 "
				    "or 1.2.3.4 (major, minor <= 255, "
				    "revision <= 65535, build < 2^32)",
				    optarg);
			break;
		case 'l':
			o->load_addr =
			    (uint32_t)number("--load-addr", optarg, UINT32_MAX);
			break;
		case 'H':
			o->hdr_size =
			    (uint32_t)number("--hdr-size", optarg, UINT16_MAX);
			if (o->hdr_size < MCUBOOT_HDR_LEN)
				die("--hdr-size %s: at least %d", optarg,
				    MCUBOOT_HDR_LEN);
			break;
		case 's':
			o->size = number("--size", optarg, UINT32_MAX);
			o->have_size = true;
			break;
		case 'S':
			o->seed = number("--seed", optarg, UINT64_MAX);
			break;
		case 'b':
			o->body = optarg;
			break;
		case 'p':
			add_ptlv(o, optarg);
			break;
		case 'P':
			o->pad_to = number("--pad-to", optarg, UINT64_MAX);
			o->have_pad_to = true;
			break;
		case 'o':
			o->out = optarg;
			break;
		case 'x':
			o->print_hash = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(1);
		}
	}
	*in = NULL;
	if (o->out == NULL && o->print_hash && optind == argc - 1) {
		*in = argv[optind];
		return;
	}
	if (optind != argc)
		die("unexpected argument '%s'", argv[optind]);
	if (o->out == NULL)
		die("-o FILE is required");
	if (o->have_size == (o->body != NULL))
		die("give exactly one of --size N and --body FILE");
}

/* splitmix64: the same seed gives the same body on every machine. */
static uint64_t
next_rand(uint64_t *x)
{
	uint64_t z;

	*x += 0x9e3779b97f4a7c15ULL;
	z = *x;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void
put16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void
put32(uint8_t *p, uint32_t v)
{
	put16(p, v);
	put16(p + 2, v >> 16);
}

struct writer {
	FILE *f;
	const char *path;
	EVP_MD_CTX *md; /* NULL once the hashed part is written */
};

static void
emit(struct writer *w, const void *b, size_t n)
{
	if (n == 0)
		return;
	if (w->md != NULL && EVP_DigestUpdate(w->md, b, n) != 1)
		die("SHA-256 failed");
	if (fwrite(b, 1, n, w->f) != n)
		die("%s: write failed: %s", w->path, strerror(errno));
}

/* Body bytes from the seeded generator or the --body file, then padding. */
static void
emit_body(struct writer *w, const struct opts *o, FILE *body, uint64_t len,
          uint64_t pad)
{
	static uint8_t buf[CHUNK];
	uint64_t x = o->seed, r = 0, left;
	size_t n, i;

	for (left = len; left > 0; left -= n) {
		n = left < CHUNK ? (size_t)left : CHUNK;
		if (body != NULL) {
			if (fread(buf, 1, n, body) != n)
				die("%s: shorter than it was a moment ago",
				    o->body);
		} else {
			for (i = 0; i < n; i++) {
				if (i % 8 == 0)
					r = next_rand(&x);
				buf[i] = (uint8_t)(r >> (8 * (i % 8)));
			}
		}
		emit(w, buf, n);
	}
	memset(buf, 0xff, CHUNK);
	for (left = pad; left > 0; left -= n) {
		n = left < CHUNK ? (size_t)left : CHUNK;
		emit(w, buf, n);
	}
}

static void
write_image(const struct opts *o)
{
	uint8_t hdr[UINT16_MAX], tlv[TLV_TOTAL], md[EVP_MAX_MD_SIZE], b4[4];
	unsigned int mdlen;
	uint64_t body_len, pad = 0, ptlv_size = 0, fixed;
	FILE *body = NULL;
	struct stat st;
	struct writer w;
	size_t i;

	if (o->body != NULL) {
		if ((body = fopen(o->body, "rb")) == NULL)
			die("%s: %s", o->body, strerror(errno));
		if (fstat(fileno(body), &st) < 0 || !S_ISREG(st.st_mode))
			die("%s: not a regular file", o->body);
		body_len = (uint64_t)st.st_size;
	} else
		body_len = o->size;
	if (o->nptlv > 0) {
		ptlv_size = 4;
		for (i = 0; i < o->nptlv; i++)
			ptlv_size += 4 + o->ptlv[i].len;
		if (ptlv_size > UINT16_MAX)
			die("protected TLVs take %" PRIu64
			    " bytes, more than 65535",
			    ptlv_size);
	}
	fixed = o->hdr_size + ptlv_size + TLV_TOTAL;
	if (o->have_pad_to) {
		if (o->pad_to < fixed + body_len)
			die("--pad-to %" PRIu64
			    ": the image is already %" PRIu64 " bytes",
			    o->pad_to, fixed + body_len);
		pad = o->pad_to - fixed - body_len;
	}
	if (body_len + pad > UINT32_MAX)
		die("body of %" PRIu64 " bytes does not fit img_size (u32)",
		    body_len + pad);

	memset(hdr, 0, o->hdr_size);
	put32(hdr, MCUBOOT_MAGIC);
	put32(hdr + 4, o->load_addr);
	put16(hdr + 8, o->hdr_size);
	put16(hdr + 10, (uint32_t)ptlv_size);
	put32(hdr + 12, (uint32_t)(body_len + pad));
	put32(hdr + 16, 0); /* flags */
	hdr[20] = o->version.major;
	hdr[21] = o->version.minor;
	put16(hdr + 22, o->version.revision);
	put32(hdr + 24, o->version.build);

	w.path = o->out;
	if ((w.f = fopen(o->out, "wb")) == NULL)
		die("%s: %s", o->out, strerror(errno));
	partial = o->out;
	if ((w.md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(w.md, EVP_sha256(), NULL) != 1)
		die("SHA-256 set-up failed");
	emit(&w, hdr, o->hdr_size);
	emit_body(&w, o, body, body_len, pad);
	if (ptlv_size > 0) {
		put16(b4, MCUBOOT_PTLV_MAGIC);
		put16(b4 + 2, (uint32_t)ptlv_size);
		emit(&w, b4, 4);
		for (i = 0; i < o->nptlv; i++) {
			put16(b4, o->ptlv[i].type);
			put16(b4 + 2, (uint32_t)o->ptlv[i].len);
			emit(&w, b4, 4);
			emit(&w, o->ptlv[i].data, o->ptlv[i].len);
		}
	}
	if (EVP_DigestFinal_ex(w.md, md, &mdlen) != 1)
		die("SHA-256 failed");
	EVP_MD_CTX_free(w.md);
	w.md = NULL;
	put16(tlv, MCUBOOT_TLV_MAGIC);
	put16(tlv + 2, TLV_TOTAL);
	put16(tlv + 4, MCUBOOT_TLV_SHA256);
	put16(tlv + 6, MCUBOOT_HASH_LEN);
	memcpy(tlv + 8, md, MCUBOOT_HASH_LEN);
	emit(&w, tlv, sizeof(tlv));
	if (fclose(w.f) != 0)
		die("%s: write failed: %s", o->out, strerror(errno));
	partial = NULL;
	if (body != NULL)
		fclose(body);
}

/* Read an image back through the reader; exits on any error. */
static void
read_image(const char *path, struct mcuboot_image *img)
{
	static uint8_t buf[CHUNK];
	struct mcuboot_stream *s;
	char err[256];
	FILE *f;
	size_t n;

	if ((f = fopen(path, "rb")) == NULL)
		die("%s: %s", path, strerror(errno));
	s = mcuboot_stream_new();
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		if (mcuboot_stream_feed(s, buf, n, err, sizeof(err)) < 0)
			die("%s: %s", path, err);
	if (ferror(f))
		die("%s: read failed", path);
	fclose(f);
	if (mcuboot_stream_finish(s, img, err, sizeof(err)) < 0)
		die("%s: %s", path, err);
	mcuboot_stream_free(s);
}

static void
print_hash(const struct mcuboot_image *img)
{
	size_t i;

	for (i = 0; i < MCUBOOT_HASH_LEN; i++)
		printf("%02x", img->hash[i]);
	printf("\n");
}

int
main(int argc, char **argv)
{
	struct opts o;
	struct mcuboot_image img;
	const char *in;
	size_t i;

	parse_args(argc, argv, &o, &in);
	if (in != NULL) {
		read_image(in, &img);
		print_hash(&img);
		return 0;
	}
	write_image(&o);
	/* What we wrote must read back as an image. */
	read_image(o.out, &img);
	if (o.print_hash)
		print_hash(&img);
	for (i = 0; i < o.nptlv; i++)
		OPENSSL_free(o.ptlv[i].data);
	return 0;
}
