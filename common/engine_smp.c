/*
 * The worker's SMP client (engine_int.h): requests kept by sequence
 * number until their reply, a timeout or a retransmission; replies turned
 * into the results of the operation they answer; operations started as
 * SMP requests, after probing the board's MCUmgr parameters once.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "engine.h"
#include "engine_cmd.h"
#include "engine_int.h"
#include "ipc.h"
#include "log.h"
#include "smp.h"
#include "xmalloc.h"

static void engine_pending_timeout(evutil_socket_t, short, void *);

void
engine_pending_drop(struct engine *e, struct pending *p)
{
	if (!p->used)
		return;
	evtimer_del(p->timer);
	free(p->pkt);
	p->pkt = NULL;
	p->used = false;
	e->pend[p->seq] = NULL;
	p->next_spare = e->spare;
	e->spare = p;
	e->npending--;
}

void
engine_pending_drop_all(struct engine *e)
{
	size_t i;

	for (i = 0; i < 256 && e->npending > 0; i++)
		if (e->pend[i] != NULL)
			engine_pending_drop(e, e->pend[i]);
}

static int
engine_transmit(struct engine *e, struct pending *p)
{
	struct timeval tv;

	tv.tv_sec = p->timeout_ms / 1000;
	tv.tv_usec = (p->timeout_ms % 1000) * 1000;
	evtimer_add(p->timer, &tv);
	if (e->link != LINK_UP)
		return -1;
	if (e->ops->send(e->ctx, p->pkt, p->len) == -1) {
		engine_link_lost(e, "send failed");
		return -1;
	}
	return 0;
}

int
engine_resend(struct engine *e, struct pending *p)
{
	if (!p->used || e->link != LINK_UP)
		return -1;
	if (e->ops->send(e->ctx, p->pkt, p->len) == -1) {
		engine_link_lost(e, "send failed");
		return -1;
	}
	return 0;
}

/* A free sequence number; the caller checks npending < 256. */
static struct pending *
engine_pending_new(struct engine *e)
{
	struct pending *p;

	while (e->pend[e->next_seq] != NULL)
		e->next_seq++;
	if ((p = e->spare) != NULL)
		e->spare = p->next_spare;
	else {
		p = xcalloc(1, sizeof(*p));
		p->e = e;
		p->timer = evtimer_new(e->base, engine_pending_timeout, p);
		if (p->timer == NULL)
			fatalx("cannot create a timer", NULL);
	}
	p->next_spare = NULL;
	p->seq = e->next_seq++;
	e->pend[p->seq] = p;
	return p;
}

/*
 * Send a request packet (built with sequence number 0) from a new pending
 * slot, which keeps a copy for retransmits.  NULL when 255 are in flight
 * or the packet has no valid header.
 */
struct pending *
engine_request(struct engine *e, enum pend_kind kind, const uint8_t *pkt,
               size_t len, int timeout_ms)
{
	struct pending *p;
	struct smp_hdr h;

	if (e->npending >= 255 || smp_hdr_decode(pkt, len, &h) != SMP_OK)
		return NULL;
	p = engine_pending_new(e);
	p->used = true;
	p->kind = kind;
	p->group = h.group;
	p->id = h.id;
	p->pkt = xmalloc(len);
	memcpy(p->pkt, pkt, len);
	/* Built with sequence number 0: put in the slot's own. */
	p->pkt[6] = p->seq;
	p->len = len;
	p->tries = 0;
	p->timeout_ms = timeout_ms;
	e->npending++;
	engine_transmit(e, p);
	return p;
}

static void
engine_pending_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct pending *p = arg;
	struct engine *e = p->e;

	(void)fd;
	(void)what;
	if (!p->used)
		return;
	if (p->tries < e->retries && e->link == LINK_UP) {
		p->tries++;
		log_debug("retransmit", "seq=%u try=%u", p->seq, p->tries + 1);
		/* Same sequence number: a late reply to either copy counts. */
		engine_transmit(e, p);
		if (p->kind == PEND_UPLOAD)
			engine_upload_timed_out(e, p);
		return;
	}
	engine_pending_drop(e, p);
	if (e->link != LINK_UP)
		engine_op_fail(e, IPC__REPLY__STATUS__LINK_DOWN,
		               "link down: %s", e->why);
	else
		engine_op_fail(e, IPC__REPLY__STATUS__TIMEOUT,
		               "no reply from the board after %u tries",
		               p->tries + 1);
}

/* Fill in a Reply from a board error. */
void
engine_fail_board(struct engine *e, int rc, const struct smp_err *err)
{
	Ipc__Reply r;
	char buf[160];

	ipc__reply__init(&r);
	if (rc == SMP_E_BOARD) {
		r.status = IPC__REPLY__STATUS__BOARD_ERROR;
		r.board_rc = err->rc;
		r.board_group = err->group;
		r.board_v2 = err->v2;
		r.error = (char *)(uintptr_t)smp_err_str(err, buf, sizeof(buf));
	} else {
		r.status = IPC__REPLY__STATUS__PROTOCOL;
		snprintf(buf, sizeof(buf), "malformed reply from the board: %s",
		         smp_status_str(rc));
		r.error = buf;
	}
	engine_op_reply(e, &r);
}

/* Replies to simple operations. */

static void
engine_op_done_echo(struct engine *e, const uint8_t *pkt, size_t len)
{
	struct smp_err err;
	char text[SMP_ECHO_MAX + 1];
	Ipc__Reply r;
	int rc;

	if ((rc = smp_rsp_echo(pkt, len, &err, text, sizeof(text))) != SMP_OK) {
		engine_fail_board(e, rc, &err);
		return;
	}
	ipc__reply__init(&r);
	r.result_case = IPC__REPLY__RESULT_ECHO;
	r.echo = text;
	engine_op_reply(e, &r);
}

static void
engine_op_done_state(struct engine *e, const uint8_t *pkt, size_t len)
{
	struct smp_image_list list;
	struct smp_err err;
	Ipc__ImageSlot slots[SMP_MAX_SLOTS], *sp[SMP_MAX_SLOTS];
	Ipc__ImageList il;
	Ipc__Reply r;
	size_t i;
	int rc;

	if ((rc = smp_rsp_image_state(pkt, len, &err, &list)) != SMP_OK) {
		engine_fail_board(e, rc, &err);
		return;
	}
	ipc__image_list__init(&il);
	for (i = 0; i < list.n && i < SMP_MAX_SLOTS; i++) {
		ipc__image_slot__init(&slots[i]);
		slots[i].image = list.slots[i].image;
		slots[i].slot = list.slots[i].slot;
		slots[i].version = list.slots[i].version;
		if (list.slots[i].has_hash) {
			slots[i].hash.data = list.slots[i].hash;
			slots[i].hash.len = SMP_HASH_LEN;
		}
		slots[i].bootable = list.slots[i].bootable;
		slots[i].pending = list.slots[i].pending;
		slots[i].confirmed = list.slots[i].confirmed;
		slots[i].active = list.slots[i].active;
		slots[i].permanent = list.slots[i].permanent;
		sp[i] = &slots[i];
	}
	il.n_slots = i;
	il.slots = sp;
	ipc__reply__init(&r);
	r.result_case = IPC__REPLY__RESULT_IMAGES;
	r.images = &il;
	engine_op_reply(e, &r);
}

static void
engine_op_done_reset(struct engine *e, const uint8_t *pkt, size_t len)
{
	struct smp_err err;
	Ipc__Reply r;
	int rc;

	if ((rc = smp_rsp_empty(pkt, len, &err)) != SMP_OK) {
		engine_fail_board(e, rc, &err);
		return;
	}
	ipc__reply__init(&r);
	engine_op_reply(e, &r);
}

static void
engine_op_done_cmd(struct engine *e, const uint8_t *pkt, size_t len)
{
	struct engine_cmd_result res;

	engine_cmd_result(e->op.cmd, pkt, len, &res);
	engine_op_reply(e, &res.reply);
	engine_cmd_result_free(&res);
}

static void
engine_op_done_params(struct engine *e)
{
	Ipc__ParamsResult pr;
	Ipc__Reply r;

	ipc__params_result__init(&pr);
	pr.supported = e->params_state == PARAMS_KNOWN;
	pr.buf_size = e->params.buf_size;
	pr.buf_count = e->params.buf_count;
	ipc__reply__init(&r);
	r.result_case = IPC__REPLY__RESULT_PARAMS;
	r.params = &pr;
	engine_op_reply(e, &r);
}

/* The answer to the engine's own parameters probe. */
static void
engine_params_reply(struct engine *e, const uint8_t *pkt, size_t len)
{
	struct smp_err err;
	char buf[160];
	int rc;

	rc = smp_rsp_params(pkt, len, &err, &e->params);
	if (rc == SMP_OK && e->params.buf_size > 0) {
		e->params_state = PARAMS_KNOWN;
		log_debug("board parameters", "buf_size=%u buf_count=%u",
		          e->params.buf_size, e->params.buf_count);
	} else {
		/* rc 8 is the common case; anything else falls back too. */
		memset(&e->params, 0, sizeof(e->params));
		e->params_state = PARAMS_UNSUPPORTED;
		log_debug("board parameters unknown, using defaults",
		          "reason=%s",
		          log_q(rc == SMP_E_BOARD
		                    ? smp_err_str(&err, buf, sizeof(buf))
		                    : smp_status_str(rc)));
	}
	if (e->op.kind != OP_NONE)
		engine_op_start(e);
}

void
engine_packet(struct engine *e, const uint8_t *pkt, size_t len)
{
	struct pending *p;
	struct smp_hdr h;

	if (smp_hdr_decode(pkt, len, &h) != SMP_OK) {
		log_debug("malformed packet from the board dropped", "len=%zu",
		          len);
		return;
	}
	p = e->pend[h.seq];
	if (p == NULL || !p->used || h.group != p->group || h.id != p->id ||
	    (h.op != SMP_OP_READ_RSP && h.op != SMP_OP_WRITE_RSP)) {
		/* A late duplicate or an answer to a cancelled request. */
		log_debug("unmatched reply dropped", "seq=%u group=%u id=%u",
		          h.seq, h.group, h.id);
		return;
	}
	switch (p->kind) {
	case PEND_PARAMS:
		engine_pending_drop(e, p);
		engine_params_reply(e, pkt, len);
		break;
	case PEND_UPLOAD:
		engine_upload_reply(e, p, pkt, len);
		break;
	case PEND_OP:
		engine_pending_drop(e, p);
		switch (e->op.kind) {
		case OP_ECHO:
			engine_op_done_echo(e, pkt, len);
			break;
		case OP_STATE_READ:
		case OP_STATE_WRITE:
			engine_op_done_state(e, pkt, len);
			break;
		case OP_RESET:
			engine_op_done_reset(e, pkt, len);
			break;
		case OP_CMD:
			engine_op_done_cmd(e, pkt, len);
			break;
		default:
			break;
		}
		break;
	}
}

size_t
engine_pkt_limit(struct engine *e)
{
	size_t lim, tmax;

	lim = smp_pkt_limit(e->params_state == PARAMS_KNOWN, &e->params,
	                    e->ops->serial,
	                    e->h->cfg != NULL ? e->h->cfg->mtu : 0);
	tmax = e->ops->max_pkt(e->ctx);
	return lim < tmax ? lim : tmax;
}

/* A generic command goes out like any request, on its own timeout. */
static void
engine_cmd_send(struct engine *e)
{
	uint8_t *pkt;
	size_t n;

	pkt = engine_cmd_packet(e->op.cmd, e->ver, &n);
	if (n > engine_pkt_limit(e))
		engine_op_fail(
		    e, IPC__REPLY__STATUS__BAD_REQUEST,
		    "a request of %zu bytes does not fit the board's buffer "
		    "of %zu bytes",
		    n, engine_pkt_limit(e));
	else if (engine_request(e, PEND_OP, pkt, n,
	                        engine_cmd_timeout(e->op.cmd, e->request_ms)) ==
	         NULL)
		engine_op_fail(e, IPC__REPLY__STATUS__PROTOCOL,
		               "cannot queue the request");
	free(pkt);
}

/* Run the current operation: probe parameters first if still unknown. */
void
engine_op_start(struct engine *e)
{
	uint8_t buf[SMP_HDR_SIZE + SMP_ECHO_MAX + 64];
	ssize_t n = -1;
	uint8_t seq = 0; /* patched by engine_request() */

	if (e->link != LINK_UP) {
		if (e->link == LINK_DOWN)
			engine_op_fail(e, IPC__REPLY__STATUS__LINK_DOWN,
			               "link down: %s", e->why);
		return; /* unopened: started once the link is up */
	}
	if (e->params_state == PARAMS_UNKNOWN) {
		n = smp_req_params(buf, sizeof(buf), e->ver, seq);
		if (n < 0 || engine_request(e, PEND_PARAMS, buf, n,
		                            e->request_ms) == NULL)
			engine_op_fail(e, IPC__REPLY__STATUS__PROTOCOL,
			               "cannot build the parameters request");
		return;
	}
	if (e->op.started)
		return;
	e->op.started = true;
	switch (e->op.kind) {
	case OP_PARAMS:
		engine_op_done_params(e);
		return;
	case OP_UPLOAD:
		engine_upload_begin(e);
		return;
	case OP_CMD:
		engine_cmd_send(e);
		return;
	case OP_ECHO:
		n = smp_req_echo(buf, sizeof(buf), e->ver, seq, e->op.text);
		break;
	case OP_STATE_READ:
		n = smp_req_image_state_read(buf, sizeof(buf), e->ver, seq);
		break;
	case OP_STATE_WRITE:
		n = smp_req_image_state_write(
		    buf, sizeof(buf), e->ver, seq,
		    e->op.has_hash ? e->op.hash : NULL, e->op.confirm);
		break;
	case OP_RESET:
		n = smp_req_reset(buf, sizeof(buf), e->ver, seq);
		break;
	case OP_NONE:
		return;
	}
	if (n < 0 || (size_t)n > engine_pkt_limit(e)) {
		engine_op_fail(
		    e, IPC__REPLY__STATUS__BAD_REQUEST,
		    "request does not fit the board's buffer of %zu bytes",
		    engine_pkt_limit(e));
		return;
	}
	if (engine_request(e, PEND_OP, buf, n, e->request_ms) == NULL)
		engine_op_fail(e, IPC__REPLY__STATUS__PROTOCOL,
		               "cannot queue the request");
}
