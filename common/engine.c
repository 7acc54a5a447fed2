/*
 * The worker engine: everything a transport worker does besides moving
 * bytes on its link.  IPC dispatch, the link's life, and the SMP client:
 * one operation at a time, requests matched to replies by sequence
 * number, timeouts and retransmits.  The upload pipeline is
 * engine_upload.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "engine.h"
#include "engine_cmd.h"
#include "engine_int.h"
#include "ipc.h"
#include "log.h"
#include "sandbox.h"
#include "smp.h"
#include "xmalloc.h"

uint64_t
engine_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

uint64_t
engine_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* IPC output. */

void
engine_send(struct engine *e, Ipc__Envelope *env, uint64_t req_id,
            uint32_t board_id)
{
	env->request_id = req_id;
	env->board_id = board_id;
	if (e->h->ipc != NULL && ipc_send(e->h->ipc, env, -1) == -1)
		log_warnx("cannot send to the supervisor", "body=%d",
		          (int)env->body_case);
}

static void
engine_send_link_state(struct engine *e, bool up, const char *reason)
{
	Ipc__Envelope env;
	Ipc__LinkState ls;

	ipc__envelope__init(&env);
	ipc__link_state__init(&ls);
	ls.up = up;
	ls.reason = (char *)(uintptr_t)(reason != NULL ? reason : "");
	env.body_case = IPC__ENVELOPE__BODY_LINK_STATE;
	env.link_state = &ls;
	engine_send(e, &env, 0, e->board_id);
}

/* Reply to a request that is not (or cannot become) the current op. */
void
engine_reply_status(struct engine *e, uint64_t req_id, uint32_t board_id,
                    Ipc__Reply__Status status, const char *why)
{
	Ipc__Envelope env;
	Ipc__Reply r;

	ipc__envelope__init(&env);
	ipc__reply__init(&r);
	r.status = status;
	r.error = (char *)(uintptr_t)why;
	env.body_case = IPC__ENVELOPE__BODY_REPLY;
	env.reply = &r;
	engine_send(e, &env, req_id, board_id);
}

/* Pending SMP requests. */

typedef void (*engine_handler)(struct engine *, const Ipc__Envelope *, int);
static void engine_finish(struct engine_host *h, int status);
static struct engine *engine_board_new(struct engine_host *h, void *ctx);
static void engine_open_links(struct engine_host *h);
typedef void (*host_handler)(struct engine_host *, const Ipc__Envelope *, int);

static void engine_link_lost(struct engine *, const char *);
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

/* Operations. */

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

static void
engine_op_clear(struct engine *e)
{
	free(e->op.text);
	engine_cmd_free(e->op.cmd);
	memset(&e->op, 0, sizeof(e->op));
	engine_upload_clear(e);
}

void
engine_op_reply(struct engine *e, Ipc__Reply *r)
{
	Ipc__Envelope env;

	if (e->op.kind == OP_NONE)
		return;
	ipc__envelope__init(&env);
	env.body_case = IPC__ENVELOPE__BODY_REPLY;
	env.reply = r;
	engine_send(e, &env, e->op.req_id, e->op.board_id);
	engine_pending_drop_all(e);
	engine_op_clear(e);
}

void
engine_op_fail(struct engine *e, Ipc__Reply__Status status, const char *fmt,
               ...)
{
	Ipc__Reply r;
	va_list ap;
	char buf[512];

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (e->op.kind != OP_NONE)
		log_info("operation failed", "request=%llu error=%s",
		         (unsigned long long)e->op.req_id, log_q(buf));
	ipc__reply__init(&r);
	r.status = status;
	r.error = buf;
	engine_op_reply(e, &r);
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

/* Accept a request as the current operation, or answer BUSY. */
bool
engine_op_take(struct engine *e, const Ipc__Envelope *env, enum op_kind kind)
{
	if (e->ops->needs_board && e->have_board &&
	    env->board_id != e->board_id) {
		engine_reply_status(
		    e, env->request_id, env->board_id,
		    IPC__REPLY__STATUS__BAD_REQUEST,
		    "this worker serves one board only (one BLE board per "
		    "adapter worker)");
		return false;
	}
	if (e->op.kind != OP_NONE) {
		engine_reply_status(
		    e, env->request_id, env->board_id, IPC__REPLY__STATUS__BUSY,
		    "another operation is running on this board");
		return false;
	}
	if (e->link == LINK_DOWN) {
		char why[300];

		snprintf(why, sizeof(why), "link down: %s", e->why);
		engine_reply_status(e, env->request_id, env->board_id,
		                    IPC__REPLY__STATUS__LINK_DOWN, why);
		return false;
	}
	e->op.kind = kind;
	e->op.req_id = env->request_id;
	e->op.board_id = env->board_id;
	return true;
}

/* The upload. */

/* IPC handlers, one per message. */

/* Boards an AddBoard named (the first exists before it is named). */
static size_t
host_named(const struct engine_host *h)
{
	return h->boards[0]->have_board ? h->nboards : 0;
}

/* Everything needed to open the links has arrived. */
static void
host_check_configured(struct engine_host *h)
{
	struct engine *e = h->boards[0];

	if (h->configured || h->cfg == NULL)
		return;
	if (h->multi > 0 ? host_named(h) < h->multi
	                 : (h->ops->needs_fd && h->link_fd == -1) ||
	                       (h->ops->needs_board && !e->have_board))
		return;
	h->configured = true;
	if (h->auto_open)
		engine_open_links(h);
}

/* Timeouts and SMP version from the configuration. */
static void
engine_apply_cfg(struct engine *e)
{
	const Ipc__LinkConfig *c = e->h->cfg;

	e->ver = c->smp_version == 1 ? SMP_V2 : SMP_V1;
	e->request_ms = c->request_timeout_ms != 0 ? (int)c->request_timeout_ms
	                                           : ENGINE_REQUEST_TIMEOUT_MS;
	e->erase_ms = c->erase_timeout_ms != 0 ? (int)c->erase_timeout_ms
	                                       : ENGINE_ERASE_TIMEOUT_MS;
	e->retries = c->retries != 0 ? c->retries : ENGINE_RETRIES;
}

static void
host_dispatch_configure(struct engine_host *h, const Ipc__Envelope *env, int fd)
{
	const Ipc__LinkConfig *l = env->configure->link;
	uint32_t boards = env->configure->boards;
	size_t n, i;
	uint8_t *buf;

	(void)fd;
	if (h->cfg != NULL) {
		log_warnx("second Configure ignored", NULL);
		return;
	}
	if (boards > 0 && h->ops->ctx_new == NULL) {
		log_errx("this worker serves one board, asked for several",
		         "role=%s boards=%u", h->ops->role, boards);
		engine_finish(h, 1);
		return;
	}
	if (boards > ENGINE_MAX_BOARDS) {
		log_errx("too many boards for one worker", "boards=%u max=%d",
		         boards, ENGINE_MAX_BOARDS);
		engine_finish(h, 1);
		return;
	}
	/* Keep our own copy: env is freed when this returns. */
	n = ipc__link_config__get_packed_size(l);
	buf = xmalloc(n + 1);
	ipc__link_config__pack(l, buf);
	h->cfg = ipc__link_config__unpack(NULL, n, buf);
	free(buf);
	if (h->cfg == NULL)
		fatalx("cannot copy the link configuration", NULL);
	log_setverbose(env->configure->verbose);
	h->multi = boards;
	for (i = 0; i < h->nboards; i++)
		engine_apply_cfg(h->boards[i]);
	host_check_configured(h);
}

static void
host_dispatch_link_fd(struct engine_host *h, const Ipc__Envelope *env, int fd)
{
	struct engine *e = h->boards[0];
	char why[256];

	if (!h->ops->needs_fd || fd == -1) {
		log_warnx("LinkFd without use or without a descriptor",
		          "role=%s", h->ops->role);
		if (fd != -1)
			close(fd);
		return;
	}
	free(h->link_path);
	h->link_path = xstrdup(env->link_fd->path);
	if (e->link == LINK_UNOPENED) {
		if (h->link_fd != -1)
			close(h->link_fd);
		h->link_fd = fd;
		host_check_configured(h);
		return;
	}
	if (e->link == LINK_UP)
		e->ops->close(e->ctx);
	if (e->ops->reopen(e->ctx, fd, why, sizeof(why)) == -1) {
		snprintf(e->why, sizeof(e->why), "%s", why);
		e->link = LINK_DOWN;
		engine_send_link_state(e, false, e->why);
		return;
	}
	log_info("link up again", "path=%s", log_q(h->link_path));
	e->link = LINK_UP;
	e->why[0] = '\0';
	/* The board may be another firmware now: ask again. */
	e->params_state = PARAMS_UNKNOWN;
	if (e->link_ev != NULL)
		event_free(e->link_ev);
	e->link_ev = NULL;
	engine_open_link(e);
}

/* A board of a worker that serves several: a link of its own. */
static void
host_add_multi(struct engine_host *h, const Ipc__Envelope *env)
{
	const char *addr = env->add_board->address;
	struct engine *e;
	size_t i;

	if (h->configured || host_named(h) >= h->multi) {
		log_errx("AddBoard past the boards announced", "board=%u",
		         env->board_id);
		engine_finish(h, 1);
		return;
	}
	for (i = 0; i < h->nboards; i++)
		if (h->boards[i]->have_board &&
		    h->boards[i]->board_id == env->board_id) {
			log_errx("AddBoard for a board already served",
			         "board=%u", env->board_id);
			engine_finish(h, 1);
			return;
		}
	if (addr == NULL || addr[0] == '\0') {
		log_errx("AddBoard without an address", "board=%u",
		         env->board_id);
		engine_finish(h, 1);
		return;
	}
	/* The first board takes the state engine_run() was given. */
	if (h->boards[0]->have_board)
		e = engine_board_new(h, h->ops->ctx_new());
	else
		e = h->boards[0];
	e->have_board = true;
	e->board_id = env->board_id;
	e->address = xstrdup(addr);
	host_check_configured(h);
}

static void
host_dispatch_add_board(struct engine_host *h, const Ipc__Envelope *env, int fd)
{
	struct engine *e = h->boards[0];

	(void)fd;
	if (h->multi > 0) {
		host_add_multi(h, env);
		return;
	}
	if (h->ops->add_board == NULL) {
		log_debug("AddBoard ignored: one board per link", "board=%u",
		          env->board_id);
		return;
	}
	/*
	 * One BLE board per worker.  Requests for another board are
	 * refused (engine_op_take), never run on the wrong board.
	 */
	if ((e->have_board && env->board_id != e->board_id) ||
	    h->ops->add_board(e->ctx, env->add_board->peer_name) == -1) {
		log_errx("second board on this worker refused",
		         "board=%u "
		         "peer=%s serving=%u",
		         env->board_id, log_q(env->add_board->peer_name),
		         e->board_id);
		return;
	}
	e->have_board = true;
	e->board_id = env->board_id;
	host_check_configured(h);
}

static void
engine_dispatch_echo(struct engine *e, const Ipc__Envelope *env, int fd)
{
	(void)fd;
	if (!engine_op_take(e, env, OP_ECHO))
		return;
	e->op.text = xstrdup(env->echo->text);
	engine_op_start(e);
}

static void
engine_dispatch_image_state(struct engine *e, const Ipc__Envelope *env, int fd)
{
	(void)fd;
	if (engine_op_take(e, env, OP_STATE_READ))
		engine_op_start(e);
}

static void
engine_dispatch_image_set_state(struct engine *e, const Ipc__Envelope *env,
                                int fd)
{
	const Ipc__ImageSetState *s = env->image_set_state;

	(void)fd;
	if (s->hash.len == 0 && !s->confirm) {
		engine_reply_status(e, env->request_id, env->board_id,
		                    IPC__REPLY__STATUS__BAD_REQUEST,
		                    "marking an image for test needs its hash");
		return;
	}
	if (!engine_op_take(e, env, OP_STATE_WRITE))
		return;
	e->op.has_hash = s->hash.len == SMP_HASH_LEN;
	if (e->op.has_hash)
		memcpy(e->op.hash, s->hash.data, SMP_HASH_LEN);
	e->op.confirm = s->confirm;
	engine_op_start(e);
}

static void
engine_dispatch_reset(struct engine *e, const Ipc__Envelope *env, int fd)
{
	(void)fd;
	if (engine_op_take(e, env, OP_RESET))
		engine_op_start(e);
}

static void
engine_dispatch_params(struct engine *e, const Ipc__Envelope *env, int fd)
{
	(void)fd;
	if (engine_op_take(e, env, OP_PARAMS))
		engine_op_start(e);
}

static void
engine_dispatch_smp_command(struct engine *e, const Ipc__Envelope *env, int fd)
{
	struct engine_cmd *c;
	char why[256];

	(void)fd;
	if ((c = engine_cmd_new(env->smp_command, why, sizeof(why))) == NULL) {
		engine_reply_status(e, env->request_id, env->board_id,
		                    IPC__REPLY__STATUS__BAD_REQUEST, why);
		return;
	}
	if (!engine_op_take(e, env, OP_CMD)) {
		engine_cmd_free(c);
		return;
	}
	e->op.cmd = c;
	engine_op_start(e);
}

/* What the worker as a whole handles. */
static const host_handler host_handlers[] = {
    [IPC__ENVELOPE__BODY_CONFIGURE] = host_dispatch_configure,
    [IPC__ENVELOPE__BODY_LINK_FD] = host_dispatch_link_fd,
    [IPC__ENVELOPE__BODY_ADD_BOARD] = host_dispatch_add_board,
};

/* What one board handles: the board the request names. */
static const engine_handler engine_handlers[] = {
    [IPC__ENVELOPE__BODY_ECHO] = engine_dispatch_echo,
    [IPC__ENVELOPE__BODY_IMAGE_STATE] = engine_dispatch_image_state,
    [IPC__ENVELOPE__BODY_IMAGE_SET_STATE] = engine_dispatch_image_set_state,
    [IPC__ENVELOPE__BODY_RESET] = engine_dispatch_reset,
    [IPC__ENVELOPE__BODY_PARAMS] = engine_dispatch_params,
    [IPC__ENVELOPE__BODY_UPLOAD_BEGIN] = engine_dispatch_upload_begin,
    [IPC__ENVELOPE__BODY_UPLOAD_CHUNK] = engine_dispatch_upload_chunk,
    [IPC__ENVELOPE__BODY_UPLOAD_ABORT] = engine_dispatch_upload_abort,
    [IPC__ENVELOPE__BODY_SMP_COMMAND] = engine_dispatch_smp_command,
};

static void
engine_finish(struct engine_host *h, int status)
{
	h->finished = true;
	h->exit_status = status;
	if (h->ipc != NULL) {
		ipc_free(h->ipc);
		h->ipc = NULL;
	}
	event_base_loopbreak(h->base);
}

/* The board a request names; NULL (answered) when this worker has none. */
static struct engine *
host_board(struct engine_host *h, const Ipc__Envelope *env)
{
	char why[96];
	size_t i;

	if (h->multi == 0)
		return h->boards[0];
	for (i = 0; i < h->nboards; i++)
		if (h->boards[i]->have_board &&
		    h->boards[i]->board_id == env->board_id)
			return h->boards[i];
	snprintf(why, sizeof(why), "board %u is not served by this worker",
	         env->board_id);
	engine_reply_status(h->boards[0], env->request_id, env->board_id,
	                    IPC__REPLY__STATUS__BAD_REQUEST, why);
	return NULL;
}

static void
engine_ipc_msg(struct ipc *ipc, const Ipc__Envelope *env, int fd, void *arg)
{
	struct engine_host *h = arg;
	size_t nh = sizeof(host_handlers) / sizeof(host_handlers[0]);
	size_t n = sizeof(engine_handlers) / sizeof(engine_handlers[0]);
	size_t c = (size_t)env->body_case;
	struct engine *e;

	(void)ipc;
	if ((c >= nh || host_handlers[c] == NULL) &&
	    (c >= n || engine_handlers[c] == NULL)) {
		/* Our supervisor sent what a worker never gets: a bug. */
		log_errx("unexpected message from the supervisor", "body=%d",
		         (int)env->body_case);
		if (fd != -1)
			close(fd);
		engine_finish(h, 1);
		return;
	}
	if (fd != -1 && env->body_case != IPC__ENVELOPE__BODY_LINK_FD) {
		log_warnx("descriptor with a message that takes none closed",
		          "body=%d", (int)env->body_case);
		close(fd);
		fd = -1;
	}
	if (c < nh && host_handlers[c] != NULL) {
		host_handlers[c](h, env, fd);
		return;
	}
	if ((e = host_board(h, env)) != NULL)
		engine_handlers[c](e, env, fd);
}

static void
engine_ipc_error(struct ipc *ipc, const char *reason, void *arg)
{
	struct engine_host *h = arg;
	bool closed = strcmp(reason, "peer closed") == 0;

	(void)ipc;
	if (closed)
		log_debug("supervisor closed the socket, exiting", NULL);
	else
		log_errx("bad message from the supervisor", "reason=%s",
		         log_q(reason));
	engine_finish(h, closed ? 0 : 1);
}

/* The link. */

static void
engine_link_read(evutil_socket_t fd, short what, void *arg)
{
	struct engine *e = arg;

	(void)fd;
	(void)what;
	if (e->link == LINK_UP && e->ops->read(e->ctx, e) == -1)
		engine_link_lost(e, "read failed or link closed");
}

static void
engine_link_lost_cb(evutil_socket_t fd, short what, void *arg)
{
	struct engine *e = arg;
	struct timeval tv = {1, 0};

	(void)fd;
	(void)what;
	if (e->link != LINK_UP)
		return;
	log_debug("link lost", "reason=%s", log_q(e->why));
	e->link = LINK_DOWN;
	if (e->link_ev != NULL) {
		event_free(e->link_ev);
		e->link_ev = NULL;
	}
	e->ops->close(e->ctx);
	engine_op_fail(e, IPC__REPLY__STATUS__LINK_DOWN, "link lost: %s",
	               e->why);
	engine_send_link_state(e, false, e->why);
	if (!e->ops->needs_fd)
		evtimer_add(e->retry_ev, &tv);
}

/*
 * Link loss is handled from the loop, not from inside a transport's read
 * or send, so no transport sees its own state torn down under it.
 */
static void
engine_link_lost(struct engine *e, const char *why)
{
	if (e->link != LINK_UP)
		return;
	snprintf(e->why, sizeof(e->why), "%s", why);
	event_active(e->lost_ev, 0, 0);
}

static void
engine_link_retry(evutil_socket_t fd, short what, void *arg)
{
	struct engine *e = arg;
	struct timeval tv = {1, 0};
	char why[256];

	(void)fd;
	(void)what;
	if (e->link != LINK_DOWN || e->ops->needs_fd)
		return;
	if (e->ops->reopen(e->ctx, -1, why, sizeof(why)) == -1) {
		log_debug("reconnect failed", "reason=%s", log_q(why));
		evtimer_add(e->retry_ev, &tv);
		return;
	}
	e->params_state = PARAMS_UNKNOWN;
	e->link = LINK_UP;
	e->why[0] = '\0';
	engine_open_link(e);
}

int
engine_open_link(struct engine *e)
{
	struct engine_host *h = e->h;
	Ipc__LinkConfig cfg;
	char why[256];
	int fd;

	if (e->link == LINK_UNOPENED) {
		why[0] = '\0';
		/* A board of several: the configuration with its address. */
		cfg = *h->cfg;
		if (e->address != NULL)
			cfg.address = e->address;
		if (e->ops->open(e->ctx, &cfg, h->link_fd, why, sizeof(why)) ==
		    -1) {
			h->link_fd = -1; /* the transport closed it */
			e->link = LINK_DOWN;
			snprintf(e->why, sizeof(e->why), "%s", why);
			log_errx("cannot open the link", "reason=%s",
			         log_q(e->why));
			engine_send_link_state(e, false, e->why);
			engine_op_fail(e, IPC__REPLY__STATUS__LINK_DOWN,
			               "link down: %s", e->why);
			if (!e->ops->needs_fd) {
				struct timeval tv = {1, 0};

				evtimer_add(e->retry_ev, &tv);
			}
			return -1;
		}
		h->link_fd = -1; /* the transport owns it now */
		e->link = LINK_UP;
	}
	/* (Re)watch the transport's descriptor. */
	if (e->link_ev != NULL)
		event_free(e->link_ev);
	e->link_ev = NULL;
	if ((fd = e->ops->fd(e->ctx)) != -1) {
		e->link_ev = event_new(e->base, fd, EV_READ | EV_PERSIST,
		                       engine_link_read, e);
		if (e->link_ev == NULL || event_add(e->link_ev, NULL) == -1)
			fatalx("cannot watch the link", NULL);
	}
	engine_send_link_state(e, true, NULL);
	if (e->op.kind != OP_NONE && !e->op.started)
		engine_op_start(e);
	return 0;
}

/* Every board's link (at the start, before the sandbox). */
static void
engine_open_links(struct engine_host *h)
{
	size_t i;

	for (i = 0; i < h->nboards; i++)
		engine_open_link(h->boards[i]);
}

/* Life cycle. */

static struct engine *
engine_board_new(struct engine_host *h, void *ctx)
{
	struct engine *e = xcalloc(1, sizeof(*e));

	e->h = h;
	e->base = h->base;
	e->ops = h->ops;
	e->ctx = ctx;
	e->link = LINK_UNOPENED;
	e->ver = SMP_V1;
	e->request_ms = ENGINE_REQUEST_TIMEOUT_MS;
	e->erase_ms = ENGINE_ERASE_TIMEOUT_MS;
	e->retries = ENGINE_RETRIES;
	e->lost_ev = event_new(h->base, -1, 0, engine_link_lost_cb, e);
	e->retry_ev = evtimer_new(h->base, engine_link_retry, e);
	if (e->lost_ev == NULL || e->retry_ev == NULL)
		fatalx("cannot create engine events", NULL);
	engine_upload_init(e);
	if (h->cfg != NULL)
		engine_apply_cfg(e);
	h->boards =
	    xreallocarray(h->boards, h->nboards + 1, sizeof(*h->boards));
	h->boards[h->nboards++] = e;
	return e;
}

static void
engine_board_free(struct engine *e, bool own_ctx)
{
	struct pending *p;

	engine_pending_drop_all(e);
	while ((p = e->spare) != NULL) {
		e->spare = p->next_spare;
		event_free(p->timer);
		free(p);
	}
	engine_op_clear(e);
	engine_upload_free(e);
	if (e->link == LINK_UP)
		e->ops->close(e->ctx);
	if (e->link_ev != NULL)
		event_free(e->link_ev);
	event_free(e->lost_ev);
	event_free(e->retry_ev);
	if (own_ctx && e->ops->ctx_free != NULL)
		e->ops->ctx_free(e->ctx);
	free(e->address);
	free(e);
}

/* The worker with its first board, which is returned. */
struct engine *
engine_new(struct event_base *base, const struct link_ops *ops, void *ctx,
           int auto_open)
{
	struct engine_host *h = xcalloc(1, sizeof(*h));

	h->base = base;
	h->ops = ops;
	h->auto_open = auto_open;
	h->link_fd = -1;
	return engine_board_new(h, ctx);
}

/* The whole worker, every board; e is any of them. */
void
engine_free(struct engine *e)
{
	struct engine_host *h;
	size_t i;

	if (e == NULL)
		return;
	h = e->h;
	/* The first board's state belongs to engine_run()'s caller. */
	for (i = 0; i < h->nboards; i++)
		engine_board_free(h->boards[i], i > 0);
	free(h->boards);
	if (h->link_fd != -1)
		close(h->link_fd);
	if (h->ipc != NULL)
		ipc_free(h->ipc);
	if (h->cfg != NULL)
		ipc__link_config__free_unpacked(h->cfg, NULL);
	free(h->link_path);
	free(h);
}

int
engine_connect(struct engine *e, int ipc_fd)
{
	struct engine_host *h = e->h;
	Ipc__Envelope env;
	Ipc__Hello hello;

	h->ipc = ipc_new(h->base, ipc_fd, engine_ipc_msg, engine_ipc_error, h);
	if (h->ipc == NULL)
		return -1;
	ipc__envelope__init(&env);
	ipc__hello__init(&hello);
	hello.protocol_version = IPC_PROTOCOL_VERSION;
	hello.role = (char *)(uintptr_t)h->ops->role;
	hello.pid = (uint32_t)getpid();
	env.body_case = IPC__ENVELOPE__BODY_HELLO;
	env.hello = &hello;
	engine_send(e, &env, 0, 0);
	return 0;
}

int
engine_configured(const struct engine *e)
{
	return e->h->configured;
}

int
engine_finished(const struct engine *e, int *status)
{
	if (e->h->finished && status != NULL)
		*status = e->h->exit_status;
	return e->h->finished;
}

/*
 * A test hook: after the sandbox is up, attempt a call the sandbox forbids.
 * It can only make the worker kill itself, so it is harmless to keep.
 */
static void
engine_test_forbidden(void)
{
	const char *what = getenv("RDFM_WORKER_TEST_FORBIDDEN");
	int fd;

	if (what == NULL || strcmp(what, "open") != 0)
		return;
	log_info("test hook: creating a file inside the sandbox", NULL);
	fd = open("rdfm-sandbox-test", O_WRONLY | O_CREAT | O_TRUNC, 0600);
	log_errx("test hook: the sandbox let a file be created",
	         "fd=%d errno=%d", fd, fd == -1 ? errno : 0);
	exit(3);
}

int
engine_run(const struct link_ops *ops, void *ctx, int argc, char **argv)
{
	struct sandbox_opts sb = {.user = "nobody", .chroot_dir = "/var/empty"};
	struct event_base *base;
	struct engine *e;
	char ident[32];
	int ch, verbose = 0, status = 0;

	snprintf(ident, sizeof(ident), "worker-%s", ops->role);
	log_init(0, ident);
	/*
	 * A stop is the supervisor's to run: Ctrl-C on a terminal or
	 * systemd's SIGTERM to the whole service reaches us too, and an
	 * upload cut here would be a failure instead of a stop at a packet
	 * boundary.  We exit when the supervisor closes our socket.
	 */
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	while ((ch = getopt(argc, argv, "vqu:C:")) != -1) {
		switch (ch) {
		case 'v':
			verbose = 1;
			break;
		case 'q': /* the operator's command: errors only */
			log_setlevel(LOG_LEVEL_ERROR);
			break;
		case 'u':
			sb.user = optarg;
			break;
		case 'C':
			sb.chroot_dir = optarg;
			break;
		default:
			fatalx(
			    "usage: worker [-v|-q] [-u user] [-C chroot_dir]",
			    NULL);
		}
	}
	log_setverbose(verbose);
	sb.flags = ops->sandbox_flags;
	if ((base = event_base_new()) == NULL)
		fatalx("cannot create the event loop", NULL);
	e = engine_new(base, ops, ctx, 0);

	/* 1. The supervisor: Hello, then Configure (and LinkFd). */
	if (engine_connect(e, IPC_WORKER_FD) == -1)
		fatal("no IPC socket on fd 3", NULL);
	while (!engine_configured(e) && !engine_finished(e, &status))
		event_base_loop(base, EVLOOP_ONCE);
	if (!engine_finished(e, &status)) {
		/* 2. The links, while we may still open things. */
		engine_open_links(e->h);
		/* 3. chroot, drop user, no_new_privs, seccomp. */
		if (sandbox_enter(&sb) == -1)
			fatalx("cannot enter the sandbox", NULL);
		engine_test_forbidden();
		/* 4. Serve until the supervisor closes the socket. */
		while (!engine_finished(e, &status))
			if (event_base_loop(base, EVLOOP_ONCE) == -1)
				fatalx("event loop failed", NULL);
	}
	engine_free(e);
	event_base_free(base);
	return status;
}
