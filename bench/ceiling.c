/*
 * bench-ceiling: the link-limited ceiling of an image upload over SMP
 * serial (issue 8 item 1), the rate the benchmarks compare measurements to.
 * Every packet carries the largest chunk that fits the board's buffer.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smp.h"
#include "smp_server.h"
#include "smp_serial.h"

#define PROG "bench-ceiling"

struct opts {
	unsigned long baud;
	unsigned long line_max;
	unsigned long buf_size;
	unsigned long image_len;
	bool tsv;
};

struct result {
	size_t pkt_limit;
	size_t first_chunk;
	size_t chunk; /* the largest chunk of the other packets */
	uint64_t packets;
	uint64_t wire;     /* bytes on the line, board-bound direction */
	uint64_t rsp_wire; /* the board's replies, the other direction */
	double ceiling;    /* image bytes per second */
	double wire_s;     /* seconds the requests occupy the line */
	double rsp_s;      /* seconds the replies occupy the other line */
};

static void
usage(void)
{
	fprintf(
	    stderr,
	    "usage: " PROG " --baud N --buf-size N [--line-max N] "
	    "[--image-len N] [--tsv]\n"
	    "Image-data rate an SMP serial upload can reach at N baud (8N1)\n"
	    "with the board's buf_size (the packet plus 2 bytes of length\n"
	    "and 2 of CRC), frames of at most line-max bytes (default 127)\n"
	    "and an image of image-len bytes (default 262144).\n"
	    "--tsv prints: baud line_max buf_size image_len first_chunk\n"
	    "chunk packets wire_bytes ceiling_Bps wire_s reply_wire_bytes\n"
	    "reply_s\n");
	exit(2);
}

static unsigned long
number(const char *opt, const char *s, unsigned long min, unsigned long max)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < min ||
	    v > max) {
		fprintf(stderr,
		        PROG ": %s: \"%s\" is not a whole number from %lu to "
		             "%lu\n",
		        opt, s, min, max);
		exit(2);
	}
	return v;
}

/*
 * Bytes one packet takes on the line, counted from the framing rules
 * (docs/design.md "SMP") rather than taken from the encoder, then
 * checked against it so the two cannot drift apart unnoticed.
 */
static uint64_t
wire_len(size_t pkt_len, size_t line_max)
{
	size_t stream = 2 + pkt_len + 2; /* length prefix, packet, CRC */
	size_t b64 = (stream + 2) / 3 * 4;
	size_t per_line = (line_max - 3) / 4 * 4;
	size_t lines = (b64 + per_line - 1) / per_line;
	size_t n = b64 + lines * 3; /* 2-byte marker and newline each */

	if (n != smp_serial_encoded_len(pkt_len, line_max)) {
		fprintf(stderr,
		        PROG
		        ": framing count %zu differs from the encoder's %zu "
		        "for a %zu-byte packet\n",
		        n, smp_serial_encoded_len(pkt_len, line_max), pkt_len);
		exit(1);
	}
	return n;
}

/* Size of an upload request with n data bytes, from the real encoder. */
static size_t
req_len(uint8_t *buf, size_t cap, const uint8_t *data, bool first,
        uint32_t image_len, uint32_t off, size_t n)
{
	static const uint8_t sha[SMP_HASH_LEN];
	struct smp_upload_req q = {0};
	ssize_t len;

	q.first = first;
	q.image = 0;
	q.len = image_len;
	q.sha = first ? sha : NULL;
	q.off = off;
	q.data = data;
	q.data_len = n;
	len = smp_req_image_upload(buf, cap, SMP_V1, 0, &q);
	return len < 0 ? SIZE_MAX : (size_t)len;
}

/* The largest chunk at off whose packet fits limit; 0 if none does. */
static size_t
largest_chunk(uint8_t *buf, size_t cap, const uint8_t *data, size_t limit,
              bool first, uint32_t image_len, uint32_t off)
{
	size_t n = limit, left = image_len - off;

	if (n > left)
		n = left;
	while (n > 0 &&
	       req_len(buf, cap, data, first, image_len, off, n) > limit)
		n--;
	return n;
}

/* The board's reply to the packet ending at off, as Zephyr encodes it. */
static size_t
rsp_len(uint8_t *buf, size_t cap, uint32_t off)
{
	struct smp_hdr req = {.op = SMP_OP_WRITE,
	                      .group = SMP_GROUP_IMAGE,
	                      .id = SMP_IMAGE_UPLOAD};
	struct smp_rsp_opts o = {.version = SMP_V1, .definite_maps = false};
	struct smp_upload_rsp r = {.off = off};
	ssize_t len;

	len = smp_rspb_image_upload(buf, cap, &req, &o, &r);
	if (len < 0) {
		fprintf(stderr, PROG ": cannot encode a reply: %s\n",
		        smp_error_detail());
		exit(1);
	}
	return (size_t)len;
}

static void
compute(const struct opts *o, struct result *r)
{
	size_t cap = o->buf_size + 128;
	uint8_t *buf, *data;
	uint32_t off = 0;
	double rate = o->baud / 10.0; /* 8N1: ten bits a byte */

	memset(r, 0, sizeof(*r));
	r->pkt_limit = o->buf_size - 4;
	if ((buf = malloc(cap)) == NULL || (data = calloc(1, cap)) == NULL) {
		fprintf(stderr, PROG ": out of memory\n");
		exit(1);
	}
	while (off < o->image_len) {
		bool first = off == 0;
		size_t n, len;

		n = largest_chunk(buf, cap, data, r->pkt_limit, first,
		                  (uint32_t)o->image_len, off);
		if (n == 0) {
			fprintf(stderr,
			        PROG ": a buf_size of %lu leaves no room for "
			             "upload data\n",
			        o->buf_size);
			exit(1);
		}
		len = req_len(buf, cap, data, first, (uint32_t)o->image_len,
		              off, n);
		if (first)
			r->first_chunk = n;
		else if (n > r->chunk)
			r->chunk = n;
		r->wire += wire_len(len, o->line_max);
		off += (uint32_t)n;
		r->rsp_wire += wire_len(rsp_len(buf, cap, off), o->line_max);
		r->packets++;
	}
	r->wire_s = (double)r->wire / rate;
	r->rsp_s = (double)r->rsp_wire / rate;
	r->ceiling = (double)o->image_len / r->wire_s;
	free(buf);
	free(data);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"baud", required_argument, NULL, 'b'},
	    {"line-max", required_argument, NULL, 'l'},
	    {"buf-size", required_argument, NULL, 's'},
	    {"image-len", required_argument, NULL, 'n'},
	    {"tsv", no_argument, NULL, 't'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct opts o = {.line_max = SMP_SERIAL_LINE_MAX, .image_len = 262144};
	struct result r;
	int ch;

	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'b':
			o.baud = number("--baud", optarg, 10, 100000000);
			break;
		case 'l':
			o.line_max = number("--line-max", optarg, 7, 4096);
			break;
		case 's':
			o.buf_size = number("--buf-size", optarg, 16,
			                    SMP_SERIAL_PKT_MAX + 2);
			break;
		case 'n':
			o.image_len =
			    number("--image-len", optarg, 1, UINT32_MAX);
			break;
		case 't':
			o.tsv = true;
			break;
		default:
			usage();
		}
	}
	if (optind != argc || o.baud == 0 || o.buf_size == 0)
		usage();
	compute(&o, &r);
	if (o.tsv) {
		printf("%lu\t%lu\t%lu\t%lu\t%zu\t%zu\t%" PRIu64 "\t%" PRIu64
		       "\t%.0f\t%.4f\t%" PRIu64 "\t%.4f\n",
		       o.baud, o.line_max, o.buf_size, o.image_len,
		       r.first_chunk, r.chunk, r.packets, r.wire, r.ceiling,
		       r.wire_s, r.rsp_wire, r.rsp_s);
		return 0;
	}
	printf("baud %lu (8N1, %.0f bytes/s), line_max %lu, buf_size %lu "
	       "(packets of at most %zu bytes)\n",
	       o.baud, o.baud / 10.0, o.line_max, o.buf_size, r.pkt_limit);
	printf("image %lu bytes: %" PRIu64 " packets, first chunk %zu, "
	       "chunk %zu\n",
	       o.image_len, r.packets, r.first_chunk, r.chunk);
	printf("on the line: %" PRIu64 " bytes (%.3f s), replies %" PRIu64
	       " bytes (%.3f s)\n",
	       r.wire, r.wire_s, r.rsp_wire, r.rsp_s);
	printf("ceiling: %.0f image bytes/s (%.4f of the line)\n", r.ceiling,
	       (double)o.image_len / (double)r.wire);
	return 0;
}
