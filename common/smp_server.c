/*
 * The board side of SMP, for the virtual board only (smp_server.h):
 * decoding requests and encoding responses the way Zephyr's MCUmgr does.
 * Not linked into the workers.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <cbor.h>

#include "smp.h"
#include "smp_cbor.h"
#include "smp_server.h"

static int
req_echo_field(struct cb_rd *r, const char *key, struct smp_request *req,
               unsigned int *seen)
{
	int rc;

	if (strcmp(key, "d") != 0)
		return cb_skip(r);
	if ((rc = cb_seen_once(seen, 1, key)) != SMP_OK)
		return rc;
	return cb_get_text(r, key, req->u.echo.text, sizeof(req->u.echo.text),
	                   false);
}

static int
req_state_field(struct cb_rd *r, const char *key, struct smp_request *req,
                unsigned int *seen)
{
	size_t n;
	int rc;

	if (strcmp(key, "hash") == 0) {
		if ((rc = cb_seen_once(seen, 1, key)) != SMP_OK ||
		    (rc = cb_get_bytes(r, key, req->u.state.hash, SMP_HASH_LEN,
		                       &n)) != SMP_OK)
			return rc;
		if (n != SMP_HASH_LEN)
			return smp_fail(SMP_E_RANGE,
			                "\"hash\" is %zu bytes, expected %d", n,
			                SMP_HASH_LEN);
		req->u.state.has_hash = true;
		return SMP_OK;
	}
	if (strcmp(key, "confirm") == 0) {
		if ((rc = cb_seen_once(seen, 2, key)) != SMP_OK)
			return rc;
		return cb_get_bool(r, key, &req->u.state.confirm);
	}
	return cb_skip(r);
}

static int
req_upload_field(struct cb_rd *r, const char *key, struct smp_request *req,
                 unsigned int *seen)
{
	int rc;

	if (strcmp(key, "image") == 0) {
		if ((rc = cb_seen_once(seen, 1, key)) != SMP_OK)
			return rc;
		req->u.upload.has_image = true;
		return cb_get_u32(r, key, &req->u.upload.image);
	}
	if (strcmp(key, "len") == 0) {
		if ((rc = cb_seen_once(seen, 2, key)) != SMP_OK)
			return rc;
		req->u.upload.has_len = true;
		return cb_get_u32(r, key, &req->u.upload.len);
	}
	if (strcmp(key, "off") == 0) {
		if ((rc = cb_seen_once(seen, 4, key)) != SMP_OK)
			return rc;
		req->u.upload.has_off = true;
		return cb_get_u32(r, key, &req->u.upload.off);
	}
	if (strcmp(key, "sha") == 0) {
		if ((rc = cb_seen_once(seen, 8, key)) != SMP_OK)
			return rc;
		req->u.upload.has_sha = true;
		return cb_get_bytes(r, key, req->u.upload.sha, SMP_HASH_LEN,
		                    &req->u.upload.sha_len);
	}
	if (strcmp(key, "data") == 0) {
		if ((rc = cb_seen_once(seen, 16, key)) != SMP_OK)
			return rc;
		return cb_get_bytes_ref(r, key, &req->u.upload.data,
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
	if ((rc = cb_seen_once(seen, 1, key)) != SMP_OK)
		return rc;
	req->u.erase.has_slot = true;
	return cb_get_u32(r, key, &req->u.erase.slot);
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
	if ((rc = smp_hdr_check(pkt, len, h)) != SMP_OK)
		return rc;
	if (h->op != SMP_OP_READ && h->op != SMP_OP_WRITE)
		return smp_fail(SMP_E_HEADER, "op %u is not a request", h->op);
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
	if ((rc = cb_map_open(&r, &m, "payload", true)) != SMP_OK)
		return rc;
	while ((more = cb_map_next(&m, key)) == 1) {
		if (fn != NULL && key[0] != '\0')
			rc = fn(&r, key, req, &seen);
		else
			rc = cb_skip(&r);
		if (rc != SMP_OK)
			return rc;
	}
	if (more < 0)
		return more;
	if ((rc = cb_payload_end(&r)) != SMP_OK)
		return rc;

	if (fn == req_echo_field && (seen & 1) == 0)
		return smp_fail(SMP_E_MISSING, "echo request has no \"d\"");
	if (fn == req_upload_field) {
		/* Zephyr refuses these without them, whatever the packet. */
		if ((seen & 4) == 0)
			return smp_fail(SMP_E_MISSING,
			                "upload request has no \"off\"");
		if ((seen & 16) == 0)
			return smp_fail(SMP_E_MISSING,
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

	return enc_finish(e, op, o->version, req->group, req->seq, req->id);
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

	if (!smp_ver_ok(o->version))
		return -1;
	if (o->version == SMP_V2)
		v2rc = smp_rc_to_v2(req->group, req->id, rc);
	enc_start(&e, buf, cap);
	enc_map(&e, has_rsn ? 2 : 1, indef);
	if (v2rc > 0) {
		enc_tstr(&e, "err");
		enc_map(&e, 2, indef);
		enc_tstr(&e, "group");
		enc_uint(&e, req->group);
		enc_tstr(&e, "rc");
		enc_int(&e, v2rc);
		enc_end(&e, indef);
	} else {
		enc_tstr(&e, "rc");
		enc_int(&e, rc);
	}
	if (has_rsn) {
		enc_tstr(&e, "rsn");
		enc_tstr(&e, rsn);
	}
	enc_end(&e, indef);
	return rsp_finish(&e, req, o);
}

ssize_t
smp_rspb_empty(uint8_t *buf, size_t cap, const struct smp_hdr *req,
               const struct smp_rsp_opts *o)
{
	struct enc e;
	bool indef = !o->definite_maps;

	if (!smp_ver_ok(o->version))
		return -1;
	enc_start(&e, buf, cap);
	enc_map(&e, 0, indef);
	enc_end(&e, indef);
	return rsp_finish(&e, req, o);
}

ssize_t
smp_rspb_echo(uint8_t *buf, size_t cap, const struct smp_hdr *req,
              const struct smp_rsp_opts *o, const char *text)
{
	struct enc e;
	bool indef = !o->definite_maps;

	if (!smp_ver_ok(o->version))
		return -1;
	enc_start(&e, buf, cap);
	enc_map(&e, 1, indef);
	enc_tstr(&e, "r");
	enc_tstr(&e, text != NULL ? text : "");
	enc_end(&e, indef);
	return rsp_finish(&e, req, o);
}

ssize_t
smp_rspb_params(uint8_t *buf, size_t cap, const struct smp_hdr *req,
                const struct smp_rsp_opts *o, const struct smp_params *p)
{
	struct enc e;
	bool indef = !o->definite_maps;

	if (!smp_ver_ok(o->version))
		return -1;
	enc_start(&e, buf, cap);
	enc_map(&e, 2, indef);
	enc_tstr(&e, "buf_size");
	enc_uint(&e, p->buf_size);
	enc_tstr(&e, "buf_count");
	enc_uint(&e, p->buf_count);
	enc_end(&e, indef);
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

	if (!smp_ver_ok(o->version))
		return -1;
	if (list->n > SMP_MAX_SLOTS) {
		smp_fail(SMP_E_RANGE, "image list of %zu entries", list->n);
		return -1;
	}
	enc_start(&e, buf, cap);
	enc_map(&e, 2, indef);
	enc_tstr(&e, "images");
	enc_array(&e, list->n, indef);
	for (i = 0; i < list->n; i++) {
		s = &list->slots[i];
		enc_map(&e, (s->has_hash ? 9 : 8) - o->no_image_key, indef);
		if (!o->no_image_key) {
			enc_tstr(&e, "image");
			enc_uint(&e, s->image);
		}
		enc_tstr(&e, "slot");
		enc_uint(&e, s->slot);
		if (memchr(s->version, '\0', sizeof(s->version)) == NULL) {
			smp_fail(SMP_E_RANGE, "slot version is not terminated");
			return -1;
		}
		enc_tstr(&e, "version");
		enc_tstr(&e, s->version);
		if (s->has_hash) {
			enc_tstr(&e, "hash");
			enc_bstr(&e, s->hash, SMP_HASH_LEN);
		}
		enc_tstr(&e, "bootable");
		enc_bool(&e, s->bootable);
		enc_tstr(&e, "pending");
		enc_bool(&e, s->pending);
		enc_tstr(&e, "confirmed");
		enc_bool(&e, s->confirmed);
		enc_tstr(&e, "active");
		enc_bool(&e, s->active);
		enc_tstr(&e, "permanent");
		enc_bool(&e, s->permanent);
		enc_end(&e, indef);
	}
	enc_end(&e, indef);
	enc_tstr(&e, "splitStatus");
	enc_uint(&e, 0);
	enc_end(&e, indef);
	return rsp_finish(&e, req, o);
}

ssize_t
smp_rspb_image_upload(uint8_t *buf, size_t cap, const struct smp_hdr *req,
                      const struct smp_rsp_opts *o,
                      const struct smp_upload_rsp *rsp)
{
	struct enc e;
	bool indef = !o->definite_maps;

	if (!smp_ver_ok(o->version))
		return -1;
	enc_start(&e, buf, cap);
	enc_map(&e, rsp->has_match ? 2 : 1, indef);
	enc_tstr(&e, "off");
	enc_uint(&e, rsp->off);
	if (rsp->has_match) {
		enc_tstr(&e, "match");
		enc_bool(&e, rsp->match);
	}
	enc_end(&e, indef);
	return rsp_finish(&e, req, o);
}
