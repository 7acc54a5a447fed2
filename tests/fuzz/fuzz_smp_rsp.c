/*
 * libFuzzer target for the SMP client's response parsers: any bytes a board
 * sends must be refused with a status or parse into values that the server
 * builders encode and the parsers read back unchanged.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "smp.h"
#include "smp_server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t pkt[SMP_MAX_PACKET + 16], out[SMP_MAX_PACKET + 16];

#define CHECK(c)                                                               \
	do {                                                                   \
		if (!(c))                                                      \
			__builtin_trap();                                      \
	} while (0)

/* Errors must be reported consistently and print within bounds. */
static void
check_err(int rc, const struct smp_err *e)
{
	char s[160];

	CHECK(rc <= SMP_OK && rc >= SMP_E_NOSPACE);
	CHECK(smp_status_str(rc) != NULL);
	CHECK(smp_error_detail()[0] != '\0' || rc == SMP_OK);
	if (rc == SMP_E_BOARD) {
		CHECK(e->rc != 0);
		CHECK(memchr(e->rsn, '\0', sizeof(e->rsn)) != NULL);
		smp_err_str(e, s, sizeof(s));
		CHECK(memchr(s, '\0', sizeof(s)) != NULL);
	}
}

static void
run(const uint8_t *p, size_t n)
{
	struct smp_rsp_opts o = {.version = SMP_V1};
	struct smp_hdr req = {0};
	struct smp_err e;
	struct smp_image_list l, l2;
	struct smp_params pa, pa2;
	struct smp_upload_rsp u, u2;
	char text[SMP_ECHO_MAX], text2[SMP_ECHO_MAX];
	ssize_t m;
	int rc;

	if (n >= SMP_HDR_SIZE) {
		req.group = (uint16_t)(p[4] << 8 | p[5]);
		req.id = p[7];
		req.seq = p[6];
		o.version = (p[0] >> 3) & 1;
		o.definite_maps = p[1] & 1;
	}

	rc = smp_rsp_image_state(p, n, &e, &l);
	check_err(rc, &e);
	if (rc == SMP_OK) {
		CHECK(l.n <= SMP_MAX_SLOTS);
		m = smp_rspb_image_state(out, sizeof(out), &req, &o, &l);
		CHECK(m > 0);
		CHECK(smp_rsp_image_state(out, (size_t)m, &e, &l2) == SMP_OK);
		CHECK(memcmp(&l, &l2, sizeof(l)) == 0);
	}

	rc = smp_rsp_params(p, n, &e, &pa);
	check_err(rc, &e);
	if (rc == SMP_OK) {
		m = smp_rspb_params(out, sizeof(out), &req, &o, &pa);
		CHECK(m > 0);
		CHECK(smp_rsp_params(out, (size_t)m, &e, &pa2) == SMP_OK);
		CHECK(memcmp(&pa, &pa2, sizeof(pa)) == 0);
	}

	rc = smp_rsp_image_upload(p, n, &e, &u);
	check_err(rc, &e);
	if (rc == SMP_OK) {
		m = smp_rspb_image_upload(out, sizeof(out), &req, &o, &u);
		CHECK(m > 0);
		CHECK(smp_rsp_image_upload(out, (size_t)m, &e, &u2) == SMP_OK);
		CHECK(memcmp(&u, &u2, sizeof(u)) == 0);
	}

	rc = smp_rsp_echo(p, n, &e, text, sizeof(text));
	check_err(rc, &e);
	if (rc == SMP_OK) {
		CHECK(strlen(text) < sizeof(text));
		m = smp_rspb_echo(out, sizeof(out), &req, &o, text);
		CHECK(m > 0);
		CHECK(smp_rsp_echo(out, (size_t)m, &e, text2, sizeof(text2)) ==
		      SMP_OK);
		CHECK(strcmp(text, text2) == 0);
	}

	rc = smp_rsp_empty(p, n, &e);
	check_err(rc, &e);
	(void)smp_rsp_empty(p, n, NULL);
}

/* Run p as it is, then as a reply to each command so every parser gets past
 * the header check. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t cmds[][2] = {
	    {SMP_GROUP_OS, SMP_OS_ECHO},
	    {SMP_GROUP_OS, SMP_OS_PARAMS},
	    {SMP_GROUP_IMAGE, SMP_IMAGE_STATE},
	    {SMP_GROUP_IMAGE, SMP_IMAGE_UPLOAD},
	};
	struct smp_hdr h;
	size_t i, plen;

	smp_hdr_decode(data, size, &h);
	(void)smp_packet_len(data, size);
	run(data, size);
	if (size < SMP_HDR_SIZE || size > sizeof(pkt))
		return 0;
	/* Fix up op and length too, so the payload is what gets tested. */
	memcpy(pkt, data, size);
	plen = size - SMP_HDR_SIZE;
	if (plen > UINT16_MAX)
		return 0;
	pkt[0] = (uint8_t)((pkt[0] & 0x08) | SMP_OP_READ_RSP);
	pkt[2] = (uint8_t)(plen >> 8);
	pkt[3] = (uint8_t)plen;
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		pkt[4] = 0;
		pkt[5] = cmds[i][0];
		pkt[7] = cmds[i][1];
		run(pkt, size);
	}
	return 0;
}
