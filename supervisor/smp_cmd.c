/*
 * The generic SMP command on the supervisor side (smp_cmd.h): the request
 * goes out as IPC SmpCommand; the answer's flat tree is rebuilt with
 * smp_tree_import(), which checks every count and limit again, because a
 * worker talks to boards and is trusted no further than they are.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "ipc.h"
#include "log.h"
#include "smp_cmd.h"
#include "workers.h"
#include "util.h"
#include "xmalloc.h"

struct smp_cmd_req {
	struct worker *w;
	uint64_t id;
	smp_cmd_cb cb;
	void *arg;
};

const char *
smp_cmd_status_name(enum smp_cmd_status s)
{
	switch (s) {
	case SMP_CMD_OK:
		return "ok";
	case SMP_CMD_BOARD_ERROR:
		return "board error";
	case SMP_CMD_TIMEOUT:
		return "timeout";
	case SMP_CMD_LINK_DOWN:
		return "link down";
	case SMP_CMD_PROTOCOL:
		return "protocol error";
	case SMP_CMD_BAD_REQUEST:
		return "bad request";
	case SMP_CMD_ABORTED:
		return "aborted";
	case SMP_CMD_BUSY:
		return "board busy";
	}
	return "unknown status";
}

static enum smp_cmd_status
status_from_ipc(Ipc__Reply__Status s)
{
	switch (s) {
	case IPC__REPLY__STATUS__OK:
		return SMP_CMD_OK;
	case IPC__REPLY__STATUS__BOARD_ERROR:
		return SMP_CMD_BOARD_ERROR;
	case IPC__REPLY__STATUS__TIMEOUT:
		return SMP_CMD_TIMEOUT;
	case IPC__REPLY__STATUS__LINK_DOWN:
		return SMP_CMD_LINK_DOWN;
	case IPC__REPLY__STATUS__BAD_REQUEST:
		return SMP_CMD_BAD_REQUEST;
	case IPC__REPLY__STATUS__ABORTED:
		return SMP_CMD_ABORTED;
	case IPC__REPLY__STATUS__BUSY:
		return SMP_CMD_BUSY;
	default:
		return SMP_CMD_PROTOCOL;
	}
}

static enum smp_vtype
vtype_from_ipc(Ipc__SmpNode__Kind k, bool *ok)
{
	*ok = true;
	switch (k) {
	case IPC__SMP_NODE__KIND__UINT:
		return SMP_V_UINT;
	case IPC__SMP_NODE__KIND__NEGINT:
		return SMP_V_NEGINT;
	case IPC__SMP_NODE__KIND__BYTES:
		return SMP_V_BYTES;
	case IPC__SMP_NODE__KIND__TEXT:
		return SMP_V_TEXT;
	case IPC__SMP_NODE__KIND__BOOL:
		return SMP_V_BOOL;
	case IPC__SMP_NODE__KIND__NIL:
		return SMP_V_NULL;
	case IPC__SMP_NODE__KIND__ARRAY:
		return SMP_V_ARRAY;
	case IPC__SMP_NODE__KIND__MAP:
		return SMP_V_MAP;
	default:
		*ok = false;
		return SMP_V_NULL;
	}
}

int
smp_cmd_tree_from_ipc(const Ipc__SmpTree *pt, struct smp_tree *t, char *why,
                      size_t whycap)
{
	struct smp_node *in;
	size_t i;
	bool ok;
	int rc;

	memset(t, 0, sizeof(*t));
	if (pt->n_nodes > SMP_TREE_MAX_NODES) {
		snprintf(why, whycap, "a tree of %zu items", pt->n_nodes);
		return -1;
	}
	in = xcalloc(pt->n_nodes ? pt->n_nodes : 1, sizeof(*in));
	for (i = 0; i < pt->n_nodes; i++) {
		const Ipc__SmpNode *pn = pt->nodes[i];

		in[i].type = vtype_from_ipc(pn->kind, &ok);
		if (!ok) {
			snprintf(why, whycap, "item %zu of unknown kind %d", i,
			         (int)pn->kind);
			free(in);
			return -1;
		}
		in[i].u = pn->uint;
		in[i].b = pn->b;
		in[i].count = pn->count;
		in[i].p = pn->data.data;
		in[i].len = pn->data.len;
		if ((in[i].type != SMP_V_BYTES && in[i].type != SMP_V_TEXT) &&
		    pn->data.len != 0) {
			snprintf(why, whycap, "item %zu: a %s with data", i,
			         smp_vtype_name(in[i].type));
			free(in);
			return -1;
		}
	}
	rc = smp_tree_import(t, in, pt->n_nodes, why, whycap);
	free(in);
	return rc;
}

static void
on_reply(const Ipc__Envelope *env, void *arg)
{
	struct smp_cmd_req *r = arg;
	const Ipc__Reply *reply;
	struct smp_cmd_result res;
	char why[256], msg[400];

	if (env->body_case != IPC__ENVELOPE__BODY_REPLY)
		return;
	reply = env->reply;
	memset(&res, 0, sizeof(res));
	res.status = status_from_ipc(reply->status);
	res.error = reply->error != NULL ? reply->error : "";
	res.board_rc = reply->board_rc;
	res.board_group = (uint16_t)reply->board_group;
	res.board_v2 = reply->board_v2;
	if (reply->result_case == IPC__REPLY__RESULT_TREE &&
	    smp_cmd_tree_from_ipc(reply->tree, &res.tree, why, sizeof(why)) ==
	        -1) {
		/* Our own worker sent a broken tree: a bug, said loudly. */
		log_warnx("malformed reply tree from the worker",
		          "worker=%s reason=%s", worker_name(r->w), log_q(why));
		snprintf(msg, sizeof(msg),
		         "malformed reply from the worker: %s", why);
		res.status = SMP_CMD_PROTOCOL;
		res.error = msg;
	} else if (res.status == SMP_CMD_OK && res.tree.n == 0) {
		res.status = SMP_CMD_PROTOCOL;
		res.error = "the worker's reply carries no payload";
	}
	r->cb(&res, r->arg);
	smp_tree_free(&res.tree);
	free(r);
}

struct smp_cmd_req *
smp_cmd_run(struct worker *w, uint32_t board_id, const struct smp_cmd *c,
            smp_cmd_cb cb, void *arg)
{
	Ipc__Envelope env;
	Ipc__SmpCommand sc;
	struct smp_cmd_req *r;

	ipc__envelope__init(&env);
	ipc__smp_command__init(&sc);
	sc.op = c->op;
	sc.group = c->group;
	sc.id = c->id;
	sc.payload.data = (uint8_t *)(uintptr_t)c->payload;
	sc.payload.len = c->payload != NULL ? c->len : 0;
	sc.timeout_ms = c->timeout_ms;
	env.body_case = IPC__ENVELOPE__BODY_SMP_COMMAND;
	env.smp_command = &sc;
	r = xcalloc(1, sizeof(*r));
	r->w = w;
	r->cb = cb;
	r->arg = arg;
	if ((r->id = worker_request(w, board_id, &env, on_reply, r)) == 0) {
		free(r);
		return NULL;
	}
	return r;
}

void
smp_cmd_cancel(struct smp_cmd_req *r)
{
	if (r == NULL)
		return;
	worker_forget(r->w, r->id);
	free(r);
}

/* Text as valid UTF-8: each byte of a bad sequence becomes U+FFFD. */
static struct json_object *
json_text(const uint8_t *p, size_t n)
{
	struct json_object *o;
	char *out = xmalloc(3 * n + 1);
	size_t i = 0, j = 0, k, len;
	uint32_t cp;

	while (i < n) {
		uint8_t c = p[i];

		len = c < 0x80             ? 1
		      : (c & 0xe0) == 0xc0 ? 2
		      : (c & 0xf0) == 0xe0 ? 3
		      : (c & 0xf8) == 0xf0 ? 4
		                           : 0;
		cp = len == 1   ? c
		     : len == 2 ? c & 0x1f
		                : c & (0xff >> (len + 1));
		for (k = 1; len > 1 && k < len; k++) {
			if (i + k >= n || (p[i + k] & 0xc0) != 0x80)
				break;
			cp = cp << 6 | (p[i + k] & 0x3f);
		}
		if (len == 0 || k < len || (len == 2 && cp < 0x80) ||
		    (len == 3 &&
		     (cp < 0x800 || (cp >= 0xd800 && cp < 0xe000))) ||
		    (len == 4 && (cp < 0x10000 || cp > 0x10ffff))) {
			memcpy(out + j, "\xef\xbf\xbd", 3);
			j += 3;
			i++;
			continue;
		}
		memcpy(out + j, p + i, len);
		j += len;
		i += len;
	}
	out[j] = '\0';
	o = json_object_new_string_len(out, (int)j);
	free(out);
	return o;
}

static struct json_object *
json_hex(const uint8_t *p, size_t n)
{
	struct json_object *o;
	char *s = xmalloc(2 * n + 1);

	hex_encode(p, n, s);
	o = json_object_new_string(s);
	free(s);
	return o;
}

/* A map key as an object key: text as it is, anything else as its JSON. */
static char *
json_key(const struct smp_tree *t, const struct smp_node *k)
{
	struct json_object *o;
	char *s;

	if (k->type == SMP_V_TEXT)
		o = json_text(k->p, k->len);
	else
		o = smp_tree_json(t, k);
	s = xstrdup(k->type == SMP_V_TEXT ? json_object_get_string(o)
	                                  : json_object_to_json_string(o));
	json_object_put(o);
	return s;
}

struct json_object *
smp_tree_json(const struct smp_tree *t, const struct smp_node *n)
{
	const struct smp_node *c, *v;
	struct json_object *o;
	char *key;

	switch (n->type) {
	case SMP_V_UINT:
		return json_object_new_uint64(n->u);
	case SMP_V_NEGINT:
		if (n->u <= (uint64_t)INT64_MAX)
			return json_object_new_int64(-1 - (int64_t)n->u);
		/* Below int64: the exact value, as text. */
		{
			char buf[32];

			if (n->u == UINT64_MAX)
				snprintf(buf, sizeof(buf),
				         "-18446744073709551616");
			else
				snprintf(buf, sizeof(buf), "-%" PRIu64,
				         n->u + 1);
			return json_object_new_string(buf);
		}
	case SMP_V_BYTES:
		return json_hex(n->p, n->len);
	case SMP_V_TEXT:
		return json_text(n->p, n->len);
	case SMP_V_BOOL:
		return json_object_new_boolean(n->b);
	case SMP_V_NULL:
		return NULL;
	case SMP_V_ARRAY:
		o = json_object_new_array();
		for (c = smp_tree_first(t, n); c != NULL;
		     c = smp_tree_next(t, n, c))
			json_object_array_add(o, smp_tree_json(t, c));
		return o;
	case SMP_V_MAP:
		o = json_object_new_object();
		for (c = smp_tree_first(t, n); c != NULL;
		     c = smp_tree_next(t, n, v)) {
			v = smp_tree_next(t, n, c);
			key = json_key(t, c);
			json_object_object_add(o, key, smp_tree_json(t, v));
			free(key);
		}
		return o;
	}
	return NULL;
}
