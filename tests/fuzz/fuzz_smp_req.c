/*
 * libFuzzer target for smp_req_decode(), the virtual board's request
 * decoder: any bytes must be refused with a status or decode to fields that
 * stay inside the packet and re-encode to the same request.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "smp.h"
#include "smp_server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t out[SMP_MAX_PACKET + 16];

#define CHECK(c)                                                               \
	do {                                                                   \
		if (!(c))                                                      \
			__builtin_trap();                                      \
	} while (0)

static void
check_upload(const uint8_t *data, size_t size, const struct smp_request *rq)
{
	struct smp_upload_req q = {0};
	struct smp_request rq2;
	ssize_t m;

	CHECK(rq->u.upload.has_off);
	CHECK(rq->u.upload.sha_len <= SMP_HASH_LEN);
	CHECK(rq->u.upload.data_len <= size);
	if (rq->u.upload.data_len > 0)
		CHECK(rq->u.upload.data >= data &&
		      rq->u.upload.data + rq->u.upload.data_len <= data + size);
	/* A full first packet re-encodes to the same fields. */
	if (!rq->u.upload.has_image || !rq->u.upload.has_len ||
	    rq->u.upload.sha_len != SMP_HASH_LEN)
		return;
	q.first = true;
	q.image = rq->u.upload.image;
	q.len = rq->u.upload.len;
	q.sha = rq->u.upload.sha;
	q.off = rq->u.upload.off;
	q.data = rq->u.upload.data;
	q.data_len = rq->u.upload.data_len;
	m = smp_req_image_upload(out, sizeof(out), rq->hdr.version, rq->hdr.seq,
	                         &q);
	if (m < 0)
		return; /* can be larger than 64 KiB of payload */
	CHECK(smp_req_decode(out, (size_t)m, &rq2) == SMP_OK);
	CHECK(rq2.u.upload.image == q.image && rq2.u.upload.len == q.len &&
	      rq2.u.upload.off == q.off);
	CHECK(memcmp(rq2.u.upload.sha, q.sha, SMP_HASH_LEN) == 0);
	CHECK(rq2.u.upload.data_len == q.data_len);
	if (q.data_len > 0)
		CHECK(memcmp(rq2.u.upload.data, q.data, q.data_len) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smp_request rq, rq2;
	struct smp_rsp_opts o;
	struct smp_err e;
	ssize_t m;
	int rc;

	rc = smp_req_decode(data, size, &rq);
	CHECK(rc <= SMP_OK && rc >= SMP_E_NOSPACE);
	if (rc != SMP_OK)
		return 0;
	CHECK(rq.hdr.op == SMP_OP_READ || rq.hdr.op == SMP_OP_WRITE);
	CHECK((size_t)rq.hdr.len + SMP_HDR_SIZE == size);

	if (rq.hdr.group == SMP_GROUP_OS && rq.hdr.id == SMP_OS_ECHO) {
		CHECK(strlen(rq.u.echo.text) < SMP_ECHO_MAX);
		m = smp_req_echo(out, sizeof(out), rq.hdr.version, rq.hdr.seq,
		                 rq.u.echo.text);
		CHECK(m > 0);
		CHECK(smp_req_decode(out, (size_t)m, &rq2) == SMP_OK);
		CHECK(strcmp(rq.u.echo.text, rq2.u.echo.text) == 0);
	} else if (rq.hdr.group == SMP_GROUP_IMAGE &&
	           rq.hdr.id == SMP_IMAGE_UPLOAD && rq.hdr.op == SMP_OP_WRITE)
		check_upload(data, size, &rq);

	/* The board's answer to it reads back as that error. */
	o.version = rq.hdr.version;
	o.definite_maps = size & 1;
	o.no_image_key = false;
	m = smp_rspb_error(out, sizeof(out), &rq.hdr, &o, SMP_RC_NOTSUP,
	                   "fuzz");
	CHECK(m > 0);
	CHECK(smp_rsp_empty(out, (size_t)m, &e) == SMP_E_BOARD);
	CHECK(e.rc == SMP_RC_NOTSUP && strcmp(e.rsn, "fuzz") == 0);
	return 0;
}
