/*
 * The generic SMP command on the worker side (engine_cmd.h): any group and
 * command id, the payload passed through as the caller's CBOR map, the
 * answer converted into a bounded tree here, inside the sandbox, so that
 * the supervisor never parses a board's CBOR.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_cmd.h"
#include "smp.h"
#include "smp_cbor.h"
#include "xmalloc.h"

/* Room left in an envelope for everything but the tree. */
#define ENVELOPE_SLACK 1024

struct engine_cmd {
	uint8_t op;
	uint16_t group;
	uint8_t id;
	uint8_t *payload;
	size_t len;
	uint32_t timeout_ms;
};

struct engine_cmd *
engine_cmd_new(const Ipc__SmpCommand *c, char *why, size_t whycap)
{
	struct engine_cmd *ec;
	struct smp_tree t;
	char tw[160];

	if (c->op != SMP_OP_READ && c->op != SMP_OP_WRITE) {
		snprintf(why, whycap, "SMP op %u is not 0 (read) or 2 (write)",
		         c->op);
		return NULL;
	}
	if (c->group > UINT16_MAX || c->id > UINT8_MAX) {
		snprintf(why, whycap,
		         "SMP group %u or command %u out of range "
		         "(0-65535, 0-255)",
		         c->group, c->id);
		return NULL;
	}
	if (c->payload.len > UINT16_MAX) {
		snprintf(why, whycap, "SMP payload of %zu bytes",
		         c->payload.len);
		return NULL;
	}
	/* What we send must be what a board can read: one CBOR map. */
	if (smp_tree_from_cbor(c->payload.data, c->payload.len, &t, tw,
	                       sizeof(tw)) == -1) {
		snprintf(why, whycap, "SMP payload is not one CBOR map: %s",
		         tw);
		return NULL;
	}
	smp_tree_free(&t);
	ec = xcalloc(1, sizeof(*ec));
	ec->op = (uint8_t)c->op;
	ec->group = (uint16_t)c->group;
	ec->id = (uint8_t)c->id;
	ec->timeout_ms = c->timeout_ms;
	/* An empty payload goes out as an empty map, as boards expect. */
	ec->len = c->payload.len > 0 ? c->payload.len : 1;
	ec->payload = xmalloc(ec->len);
	if (c->payload.len > 0)
		memcpy(ec->payload, c->payload.data, c->payload.len);
	else
		ec->payload[0] = 0xa0;
	return ec;
}

void
engine_cmd_free(struct engine_cmd *c)
{
	if (c == NULL)
		return;
	free(c->payload);
	free(c);
}

uint8_t *
engine_cmd_packet(const struct engine_cmd *c, int ver, size_t *len)
{
	struct smp_hdr h;
	uint8_t *pkt = xmalloc(SMP_HDR_SIZE + c->len);

	memset(&h, 0, sizeof(h));
	h.op = c->op;
	h.version = ver == SMP_V2 ? SMP_V2 : SMP_V1;
	h.len = (uint16_t)c->len;
	h.group = c->group;
	h.id = c->id;
	smp_hdr_encode(&h, pkt);
	memcpy(pkt + SMP_HDR_SIZE, c->payload, c->len);
	*len = SMP_HDR_SIZE + c->len;
	return pkt;
}

int
engine_cmd_timeout(const struct engine_cmd *c, int dflt_ms)
{
	return c->timeout_ms != 0 && c->timeout_ms <= 3600000
	           ? (int)c->timeout_ms
	           : dflt_ms;
}

static Ipc__SmpNode__Kind
node_kind(enum smp_vtype t)
{
	switch (t) {
	case SMP_V_UINT:
		return IPC__SMP_NODE__KIND__UINT;
	case SMP_V_NEGINT:
		return IPC__SMP_NODE__KIND__NEGINT;
	case SMP_V_BYTES:
		return IPC__SMP_NODE__KIND__BYTES;
	case SMP_V_TEXT:
		return IPC__SMP_NODE__KIND__TEXT;
	case SMP_V_BOOL:
		return IPC__SMP_NODE__KIND__BOOL;
	case SMP_V_NULL:
		return IPC__SMP_NODE__KIND__NIL;
	case SMP_V_ARRAY:
		return IPC__SMP_NODE__KIND__ARRAY;
	case SMP_V_MAP:
		break;
	}
	return IPC__SMP_NODE__KIND__MAP;
}

/* The tree into the Reply's flat node list (pointing into res->tree). */
static void
tree_to_reply(struct engine_cmd_result *res)
{
	size_t i, n = res->tree.n;

	res->pnodes = xreallocarray(NULL, n, sizeof(*res->pnodes));
	res->pnode_ptrs = xreallocarray(NULL, n, sizeof(*res->pnode_ptrs));
	for (i = 0; i < n; i++) {
		const struct smp_node *sn = &res->tree.nodes[i];
		Ipc__SmpNode *pn = &res->pnodes[i];

		ipc__smp_node__init(pn);
		pn->kind = node_kind(sn->type);
		pn->uint = sn->u;
		pn->b = sn->b;
		pn->count = sn->count;
		if (sn->type == SMP_V_BYTES || sn->type == SMP_V_TEXT) {
			pn->data.data = (uint8_t *)(uintptr_t)sn->p;
			pn->data.len = sn->len;
		}
		res->pnode_ptrs[i] = pn;
	}
	ipc__smp_tree__init(&res->ptree);
	res->ptree.n_nodes = n;
	res->ptree.nodes = res->pnode_ptrs;
	res->reply.result_case = IPC__REPLY__RESULT_TREE;
	res->reply.tree = &res->ptree;
}

static void
result_protocol(struct engine_cmd_result *res, const char *what,
                const char *detail)
{
	res->reply.status = IPC__REPLY__STATUS__PROTOCOL;
	res->reply.result_case = IPC__REPLY__RESULT__NOT_SET;
	snprintf(res->error, sizeof(res->error), "%s: %s", what, detail);
	res->reply.error = res->error;
}

void
engine_cmd_result(const struct engine_cmd *c, const uint8_t *pkt, size_t len,
                  struct engine_cmd_result *res)
{
	struct smp_err err;
	struct smp_hdr h;
	char why[200];
	int rc;

	memset(res, 0, sizeof(*res));
	ipc__reply__init(&res->reply);
	if (smp_hdr_check(pkt, len, &h) != SMP_OK) {
		result_protocol(res, "malformed reply from the board",
		                smp_error_detail());
		return;
	}
	if (h.op != c->op + 1) {
		snprintf(why, sizeof(why), "op %u answers a request of op %u",
		         h.op, c->op);
		result_protocol(res, "malformed reply from the board", why);
		return;
	}
	rc = smp_parse_rsp(pkt, len, c->group, c->id, &err, NULL, NULL);
	if (rc != SMP_OK && rc != SMP_E_BOARD) {
		result_protocol(res, "malformed reply from the board",
		                smp_error_detail());
		return;
	}
	if (smp_tree_from_cbor(pkt + SMP_HDR_SIZE, h.len, &res->tree, why,
	                       sizeof(why)) == -1) {
		result_protocol(res, "the board's reply cannot be passed on",
		                why);
		return;
	}
	if (rc == SMP_E_BOARD) {
		res->reply.status = IPC__REPLY__STATUS__BOARD_ERROR;
		res->reply.board_rc = err.rc;
		res->reply.board_group = err.group;
		res->reply.board_v2 = err.v2;
		res->reply.error = (char *)(uintptr_t)smp_err_str(
		    &err, res->error, sizeof(res->error));
	}
	tree_to_reply(res);
	if (ipc__reply__get_packed_size(&res->reply) >
	    IPC_MAX_MSG - ENVELOPE_SLACK) {
		snprintf(why, sizeof(why),
		         "%zu items, more than one IPC message holds",
		         res->tree.n);
		result_protocol(res, "the board's reply cannot be passed on",
		                why);
	}
}

void
engine_cmd_result_free(struct engine_cmd_result *res)
{
	free(res->pnodes);
	free(res->pnode_ptrs);
	smp_tree_free(&res->tree);
	memset(res, 0, sizeof(*res));
}
