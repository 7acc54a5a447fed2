/*
 * The worker engine's upload pipeline: an image streamed from the
 * supervisor under credit-based flow control, re-cut into SMP packets
 * sized for the board, kept in flight under a window, and resent from
 * wherever the board's replies say it is.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "engine.h"
#include "engine_int.h"
#include "ipc.h"
#include "log.h"
#include "smp.h"
#include "xmalloc.h"

static void engine_upload_pump(struct engine *);

static void
engine_send_credit(struct engine *e, unsigned int n)
{
	Ipc__Envelope env;
	Ipc__UploadCredit c;

	ipc__envelope__init(&env);
	ipc__upload_credit__init(&c);
	c.chunks = n;
	env.body_case = IPC__ENVELOPE__BODY_UPLOAD_CREDIT;
	env.upload_credit = &c;
	engine_send(e, &env, e->op.req_id, e->op.board_id);
}

static void
engine_send_rewind(struct engine *e, uint32_t off)
{
	Ipc__Envelope env;
	Ipc__UploadRewind r;

	ipc__envelope__init(&env);
	ipc__upload_rewind__init(&r);
	r.offset = off;
	env.body_case = IPC__ENVELOPE__BODY_UPLOAD_REWIND;
	env.upload_rewind = &r;
	engine_send(e, &env, e->op.req_id, e->op.board_id);
}

static void
engine_send_progress(struct engine *e, bool force)
{
	Ipc__Envelope env;
	Ipc__UploadProgress p;
	uint64_t t = engine_now_ms();

	if (!force && t - e->up.t_progress < ENGINE_PROGRESS_MS)
		return;
	e->up.t_progress = t;
	ipc__envelope__init(&env);
	ipc__upload_progress__init(&p);
	p.offset = e->up.acked;
	p.total = e->up.total;
	env.body_case = IPC__ENVELOPE__BODY_UPLOAD_PROGRESS;
	env.upload_progress = &p;
	engine_send(e, &env, e->op.req_id, e->op.board_id);
}

static void
engine_upload_finish(struct engine *e)
{
	Ipc__UploadResult ur;
	Ipc__Reply r;
	uint64_t elapsed = engine_now_ms() - e->up.t_start;

	engine_send_progress(e, true);
	log_info("upload done",
	         "bytes=%u elapsed_ms=%llu window=%u chunk=%zu "
	         "retransmits=%u",
	         e->up.total - e->up.start_off, (unsigned long long)elapsed,
	         e->up.window, e->up.plan.chunk, e->up.retransmits);
	ipc__upload_result__init(&ur);
	ur.bytes = e->up.total - e->up.start_off;
	ur.elapsed_ms = elapsed;
	ur.window = e->up.window;
	ur.chunk = e->up.plan.chunk;
	ur.retransmits = e->up.retransmits;
	ipc__reply__init(&r);
	r.result_case = IPC__REPLY__RESULT_UPLOAD;
	r.upload = &ur;
	engine_op_reply(e, &r);
}

/* Grant the supervisor credit for the buffer space not yet promised. */
static void
engine_upload_grant(struct engine *e)
{
	struct upload *u = &e->up;
	uint64_t promised, want_end;
	size_t space;
	unsigned int n, left;

	promised = (uint64_t)u->buf_off + u->buf_len +
	           (uint64_t)u->credit_out * u->chunk_size;
	if (promised >= u->total)
		return;
	space = u->buf_len + (size_t)u->credit_out * u->chunk_size;
	if (space >= u->buf_cap)
		return;
	n = (u->buf_cap - space) / u->chunk_size;
	want_end = u->total - promised;
	left = (want_end + u->chunk_size - 1) / u->chunk_size;
	if (n > left)
		n = left;
	if (n == 0)
		return;
	u->credit_out += n;
	engine_send_credit(e, n);
}

/* Ask the supervisor to continue from off; drop what is buffered. */
static void
engine_upload_rewind(struct engine *e, uint32_t off)
{
	struct upload *u = &e->up;

	log_debug("asking the supervisor to rewind", "offset=%u", off);
	u->buf_off = off;
	u->buf_len = 0;
	u->credit_out = 0;
	engine_send_rewind(e, off);
	engine_upload_grant(e);
}

/* Forget buffered bytes the board has acknowledged. */
static void
engine_upload_trim(struct upload *u)
{
	size_t d;

	if (u->acked <= u->buf_off)
		return;
	d = u->acked - u->buf_off;
	if (d > u->buf_len)
		d = u->buf_len;
	memmove(u->buf, u->buf + d, u->buf_len - d);
	u->buf_off += d;
	u->buf_len -= d;
}

static int
engine_upload_send(struct engine *e, uint32_t off, size_t len)
{
	struct upload *u = &e->up;
	struct smp_upload_req req;
	struct pending *p;
	uint8_t *pkt;
	size_t cap = u->plan.pkt_limit + 64;
	ssize_t n;

	memset(&req, 0, sizeof(req));
	req.first = off == 0;
	req.image = u->image;
	req.len = u->total;
	req.sha = u->has_sha ? u->sha : NULL;
	req.off = off;
	req.data = u->buf + (off - u->buf_off);
	req.data_len = len;
	pkt = xmalloc(cap);
	n = smp_req_image_upload(pkt, cap, e->ver, 0, &req);
	if (n < 0 || (size_t)n > u->plan.pkt_limit) {
		free(pkt);
		engine_op_fail(
		    e, IPC__REPLY__STATUS__PROTOCOL,
		    "upload packet at offset %u does not fit %zu bytes", off,
		    u->plan.pkt_limit);
		return -1;
	}
	p = engine_request(e, PEND_UPLOAD, pkt, n,
	                   req.first ? e->erase_ms : e->request_ms);
	free(pkt);
	if (p == NULL) {
		engine_op_fail(e, IPC__REPLY__STATUS__PROTOCOL,
		               "cannot queue an upload packet");
		return -1;
	}
	p->off = off;
	p->dlen = len;
	u->inflight++;
	return 0;
}

/* Send what the window and the buffered data allow. */
static void
engine_upload_pump(struct engine *e)
{
	struct upload *u = &e->up;
	uint64_t have_end, coming_end;
	size_t len;

	while (e->op.kind == OP_UPLOAD && e->link == LINK_UP) {
		if (u->next_off >= u->total)
			break;
		/* The first packet (it makes the board erase) goes alone. */
		if (u->first_inflight && !u->first_done)
			break;
		if (u->first_done && u->inflight >= u->window)
			break;
		len = u->next_off == 0 ? u->plan.first_chunk : u->plan.chunk;
		if (len > u->total - u->next_off)
			len = u->total - u->next_off;
		have_end = (uint64_t)u->buf_off + u->buf_len;
		coming_end = have_end + (uint64_t)u->credit_out * u->chunk_size;
		if (u->next_off < u->buf_off || u->next_off > coming_end) {
			engine_upload_rewind(e, u->next_off);
			break;
		}
		if (u->next_off + len > have_end)
			break; /* wait for chunks */
		if (engine_upload_send(e, u->next_off, len) == -1)
			return;
		if (u->next_off == 0)
			u->first_inflight = true;
		u->next_off += len;
	}
	if (e->op.kind != OP_UPLOAD)
		return;
	engine_upload_trim(u);
	engine_upload_grant(e);
}

/*
 * The board's offset acknowledges every packet below it: a packet whose
 * reply was lost need not hold a window slot until its timeout.
 */
static void
engine_upload_acked(struct engine *e, uint32_t off)
{
	struct pending *p;
	size_t i;

	for (i = 0; i < 256; i++) {
		p = &e->pend[i];
		if (p->used && p->kind == PEND_UPLOAD &&
		    p->off + p->dlen <= off) {
			engine_pending_drop(e, p);
			if (e->up.inflight > 0)
				e->up.inflight--;
		}
	}
}

void
engine_upload_reply(struct engine *e, struct pending *p, const uint8_t *pkt,
                    size_t len)
{
	struct upload *u = &e->up;
	struct smp_upload_rsp rsp;
	struct smp_err err;
	uint32_t expect = p->off + p->dlen, poff = p->off;
	int rc;

	engine_pending_drop(e, p);
	if (u->inflight > 0)
		u->inflight--;
	if ((rc = smp_rsp_image_upload(pkt, len, &err, &rsp)) != SMP_OK) {
		engine_fail_board(e, rc, &err);
		return;
	}
	if (rsp.off > u->total) {
		engine_op_fail(
		    e, IPC__REPLY__STATUS__PROTOCOL,
		    "board reports offset %u beyond the image of %u bytes",
		    rsp.off, u->total);
		return;
	}
	if (poff == 0 && !u->first_done) {
		u->first_done = true;
		/* Any other answer than "took the first packet": resume. */
		u->start_off = rsp.off == expect ? 0 : rsp.off;
		if (u->start_off > 0)
			log_info("upload resumes", "offset=%u", rsp.off);
	}
	if (rsp.off == u->total) {
		if (rsp.has_match && !rsp.match) {
			engine_op_fail(
			    e, IPC__REPLY__STATUS__BOARD_ERROR,
			    "board reports the image does not match its sha");
			return;
		}
		u->acked = rsp.off;
		engine_upload_finish(e);
		return;
	}
	if (rsp.off < expect) {
		/*
		 * The board wants earlier data (a packet was lost or it
		 * rebooted): everything in flight is moot.
		 */
		log_debug("board rewinds", "offset=%u expected=%u", rsp.off,
		          expect);
		engine_pending_drop_all(e);
		u->acked = rsp.off;
		u->next_off = rsp.off;
		if (rsp.off == 0) {
			u->first_inflight = false;
			u->first_done = false;
		}
	} else {
		if (rsp.off > u->acked)
			u->acked = rsp.off;
		if (rsp.off > u->next_off)
			u->next_off = rsp.off;
		engine_upload_acked(e, rsp.off);
	}
	engine_send_progress(e, false);
	engine_upload_pump(e);
}

void
engine_upload_begin(struct engine *e)
{
	struct upload *u = &e->up;
	size_t cap;
	unsigned int window;

	if (smp_plan_upload(engine_pkt_limit(e), e->params.buf_count, e->ver,
	                    u->total, &u->plan) != 0 ||
	    u->plan.chunk == 0 || u->plan.first_chunk == 0) {
		engine_op_fail(
		    e, IPC__REPLY__STATUS__BAD_REQUEST,
		    "no upload plan fits a packet limit of %zu bytes",
		    engine_pkt_limit(e));
		return;
	}
	window = u->window != 0 ? u->window : u->plan.window;
	if (window == 0)
		window = 1;
	if (window > ENGINE_MAX_WINDOW)
		window = ENGINE_MAX_WINDOW;
	u->window = window;
	/* Room for a full window behind the acked offset, plus refill. */
	cap = (size_t)window * u->plan.chunk + u->plan.first_chunk +
	      2 * (size_t)u->chunk_size;
	cap = (cap + u->chunk_size - 1) / u->chunk_size * u->chunk_size;
	if (cap < 4 * (size_t)u->chunk_size)
		cap = 4 * (size_t)u->chunk_size;
	u->buf_cap = cap;
	u->buf_hard = 2 * cap;
	u->buf = xmalloc(u->buf_hard);
	u->t_start = engine_now_ms();
	log_info("upload starts",
	         "len=%u pkt_limit=%zu chunk=%zu first_chunk=%zu window=%u",
	         u->total, u->plan.pkt_limit, u->plan.chunk,
	         u->plan.first_chunk, window);
	engine_upload_grant(e);
}

void
engine_dispatch_upload_begin(struct engine *e, const Ipc__Envelope *env, int fd)
{
	const Ipc__UploadBegin *b = env->upload_begin;
	const char *bad = NULL;

	(void)fd;
	if (b->total_len == 0 || b->total_len > UINT32_MAX)
		bad = "image length must be 1 byte to 4 GiB";
	else if (b->chunk_size == 0)
		bad = "chunk_size must not be 0";
	if (bad != NULL) {
		engine_reply_status(e, env->request_id, env->board_id,
		                    IPC__REPLY__STATUS__BAD_REQUEST, bad);
		return;
	}
	if (!engine_op_take(e, env, OP_UPLOAD))
		return;
	e->up.image = b->image;
	e->up.total = (uint32_t)b->total_len;
	e->up.has_sha = b->sha256.len == SMP_HASH_LEN;
	if (e->up.has_sha)
		memcpy(e->up.sha, b->sha256.data, SMP_HASH_LEN);
	e->up.chunk_size = b->chunk_size;
	e->up.window = b->window;
	engine_op_start(e);
}

void
engine_dispatch_upload_chunk(struct engine *e, const Ipc__Envelope *env, int fd)
{
	const Ipc__UploadChunk *c = env->upload_chunk;
	struct upload *u = &e->up;
	uint64_t want = (uint64_t)u->buf_off + u->buf_len;

	(void)fd;
	if (e->op.kind != OP_UPLOAD || env->request_id != e->op.req_id ||
	    u->buf == NULL)
		return; /* after the end or an abort: in flight, harmless */
	if (c->offset != want) {
		log_debug("chunk ignored", "offset=%llu expected=%llu",
		          (unsigned long long)c->offset,
		          (unsigned long long)want);
		return;
	}
	if (c->data.len == 0 || c->offset + c->data.len > u->total ||
	    (c->data.len != u->chunk_size &&
	     c->offset + c->data.len != u->total)) {
		engine_op_fail(
		    e, IPC__REPLY__STATUS__BAD_REQUEST,
		    "chunk at offset %llu has %zu bytes, expected %u",
		    (unsigned long long)c->offset, c->data.len, u->chunk_size);
		return;
	}
	if (u->buf_len + c->data.len > u->buf_hard) {
		/* More than was granted: start over from here. */
		log_warnx("chunk beyond the granted credit", "offset=%llu",
		          (unsigned long long)c->offset);
		engine_upload_rewind(e, (uint32_t)want);
		return;
	}
	memcpy(u->buf + u->buf_len, c->data.data, c->data.len);
	u->buf_len += c->data.len;
	if (u->credit_out > 0)
		u->credit_out--;
	engine_upload_pump(e);
}

void
engine_dispatch_upload_abort(struct engine *e, const Ipc__Envelope *env, int fd)
{
	(void)fd;
	if (e->op.kind != OP_UPLOAD || env->request_id != e->op.req_id)
		return;
	log_info("upload aborted", "offset=%u", e->up.acked);
	/* Nothing half-sent: packets go out whole, so stop here. */
	engine_op_fail(e, IPC__REPLY__STATUS__ABORTED, "aborted at offset %u",
	               e->up.acked);
}
