/*
 * The worker engine's upload pipeline: an image streamed from the
 * supervisor under credit-based flow control, re-cut into SMP packets
 * sized for the board, kept in flight under a window that learns what the
 * board takes, and resent from wherever the board's replies say it is.
 *
 * The window.  MCUmgr's parameters promise buf_count packet buffers, but
 * what a board really absorbs depends on the stack beneath them (Zephyr's
 * UART driver keeps two 128-byte lines; network and Bluetooth buffers
 * differ again), so buf_count - 1 is where the window starts, not a
 * promise.  Every sign of lost capacity halves it at once (at least 1,
 * which is stop-and-wait): the board asking for an earlier offset (a
 * rewind), a reply missing while a later one arrived, no reply within a
 * few round trips (the early-loss timer, long before the request
 * timeout), a packet resent after its full timeout.  While packets are
 * acknowledged cleanly it grows by one after grow_after of them; a window
 * that fails before proving itself doubles grow_after, so a board that
 * cannot take more is probed ever more rarely.  What was learnt stays for
 * the board's next upload, in this worker and, through UploadResult and
 * UploadProgress, in the supervisor, which hands it back in UploadBegin.
 * The same for every transport: nothing here knows the link.
 */
#include <math.h>
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

/* Clean acks before the first try of a window one larger. */
#define GROW_AFTER_MIN 8
/* ... and at most, for a board that never takes more. */
#define GROW_AFTER_MAX 1024
/* The early-loss timer never fires sooner: a loaded host is late. */
#define RTO_MIN_US 50000

static void upload_pump(struct engine *);
static void upload_lost(struct engine *, const struct pending *, const char *);

/* What the board took cleanly: a window still on trial does not count. */
static unsigned int
upload_proven(const struct upload *u)
{
	return u->probing && u->window > 1 ? u->window - 1 : u->window;
}

static void
upload_learnt_ipc(const struct upload *u, Ipc__UploadLearnt *l)
{
	ipc__upload_learnt__init(l);
	l->window = upload_proven(u);
	l->grow_after = u->grow_after;
}

static void
send_credit(struct engine *e, unsigned int n)
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
send_rewind(struct engine *e, uint32_t off)
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
send_progress(struct engine *e, bool force)
{
	Ipc__Envelope env;
	Ipc__UploadProgress p;
	Ipc__UploadLearnt l;
	uint64_t t = engine_now_ms();

	if (!force && t - e->up.t_progress < ENGINE_PROGRESS_MS)
		return;
	e->up.t_progress = t;
	ipc__envelope__init(&env);
	ipc__upload_progress__init(&p);
	p.offset = e->up.acked;
	p.total = e->up.total;
	p.window = e->up.window;
	p.resumed_from = e->up.start_off;
	if (!e->up.fixed) {
		upload_learnt_ipc(&e->up, &l);
		p.learnt = &l;
	}
	env.body_case = IPC__ENVELOPE__BODY_UPLOAD_PROGRESS;
	env.upload_progress = &p;
	engine_send(e, &env, e->op.req_id, e->op.board_id);
}

static void
upload_finish(struct engine *e)
{
	struct upload *u = &e->up;
	Ipc__UploadResult ur;
	Ipc__UploadLearnt l;
	Ipc__Reply r;
	uint64_t elapsed = engine_now_ms() - u->t_start;

	send_progress(e, true);
	log_debug("upload done",
	          "bytes=%u elapsed_ms=%llu window=%u chunk=%zu "
	          "pkt_limit=%zu rewinds=%u retransmits=%u",
	          u->total - u->start_off, (unsigned long long)elapsed,
	          u->window, u->plan.chunk, u->plan.pkt_limit, u->rewinds,
	          u->retransmits);
	ipc__upload_result__init(&ur);
	ur.bytes = u->total - u->start_off;
	ur.elapsed_ms = elapsed;
	ur.window = u->window;
	ur.chunk = u->plan.chunk;
	ur.retransmits = u->retransmits;
	ur.rewinds = u->rewinds;
	if (!u->fixed) {
		upload_learnt_ipc(u, &l);
		ur.learnt = &l;
	}
	ipc__reply__init(&r);
	r.result_case = IPC__REPLY__RESULT_UPLOAD;
	r.upload = &ur;
	engine_op_reply(e, &r);
}

/* Drop every packet in flight: the board's offset decides what follows. */
static void
upload_drop_inflight(struct engine *e)
{
	engine_pending_drop_all(e);
	e->up.inflight = 0;
	evtimer_del(e->up.loss_ev);
}

/* Grant the supervisor credit for the buffer space not yet promised. */
static void
upload_grant(struct engine *e)
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
	send_credit(e, n);
}

/* Ask the supervisor to continue from off; drop what is buffered. */
static void
upload_rewind(struct engine *e, uint32_t off)
{
	struct upload *u = &e->up;

	log_debug("asking the supervisor to rewind", "offset=%u", off);
	u->buf_off = off;
	u->buf_len = 0;
	u->credit_out = 0;
	send_rewind(e, off);
	upload_grant(e);
}

/* Forget buffered bytes the board has acknowledged. */
static void
upload_trim(struct upload *u)
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

/* --- the window controller ------------------------------------------- */

/* How long without any reply before the oldest packet counts as lost. */
static uint64_t
upload_rto_us(const struct upload *u, const struct engine *e)
{
	double rto = u->srtt_us + 4 * u->rttvar_us;
	uint64_t cap = (uint64_t)e->request_ms * 1000;

	if (rto < 2 * u->srtt_us)
		rto = 2 * u->srtt_us;
	if (rto < RTO_MIN_US)
		rto = RTO_MIN_US;
	rto *= (double)(1u << (u->backoff < 8 ? u->backoff : 8));
	return rto > (double)cap ? cap : (uint64_t)rto;
}

/* The packet in flight that the board should answer next. */
static struct pending *
upload_oldest(struct engine *e)
{
	struct pending *p, *best = NULL;
	size_t i;

	for (i = 0; i < 256; i++) {
		p = e->pend[i];
		if (p != NULL && p->used && p->kind == PEND_UPLOAD &&
		    (best == NULL || p->pkt_no < best->pkt_no))
			best = p;
	}
	return best;
}

/*
 * (Re)arm the early-loss timer: it fires when nothing was heard for a
 * retransmission timeout since the last reply or the oldest packet left,
 * whichever is later.  Only once a round trip was measured, and never for
 * the first packet, whose erase takes the erase timeout.
 */
static void
upload_arm(struct engine *e)
{
	struct upload *u = &e->up;
	struct pending *p = upload_oldest(e);
	uint64_t from, at, now = engine_now_us();
	struct timeval tv;

	evtimer_del(u->loss_ev);
	if (p == NULL || !u->have_rtt || !u->first_done)
		return;
	from = p->t_sent_us > u->t_reply_us ? p->t_sent_us : u->t_reply_us;
	at = from + upload_rto_us(u, e);
	at = at > now ? at - now : 0;
	tv.tv_sec = (time_t)(at / 1000000);
	tv.tv_usec = (suseconds_t)(at % 1000000);
	evtimer_add(u->loss_ev, &tv);
}

/* The early-loss timer: resend the oldest packet now, shrink. */
static void
upload_loss_timer(evutil_socket_t fd, short what, void *arg)
{
	struct engine *e = arg;
	struct upload *u = &e->up;
	struct pending *p;

	(void)fd;
	(void)what;
	if (e->op.kind != OP_UPLOAD || (p = upload_oldest(e)) == NULL)
		return;
	upload_lost(e, p, "no reply");
	u->retransmits++;
	u->backoff++;
	p->resent = true;
	p->t_sent_us = engine_now_us();
	log_debug("early resend", "seq=%u offset=%u window=%u", p->seq, p->off,
	          u->window);
	/* Its own timeout keeps running: a dead board still fails. */
	if (engine_resend(e, p) == -1)
		return;
	upload_arm(e);
}

/* One round trip measured (RFC 6298's smoothing). */
static void
upload_rtt(struct upload *u, const struct pending *p, uint64_t now)
{
	double r = (double)(now - p->t_sent_us);

	if (p->resent || p->off == 0)
		return;
	if (!u->have_rtt) {
		u->srtt_us = r;
		u->rttvar_us = r / 2;
		u->have_rtt = true;
		return;
	}
	u->rttvar_us = 0.75 * u->rttvar_us + 0.25 * fabs(u->srtt_us - r);
	u->srtt_us = 0.875 * u->srtt_us + 0.125 * r;
}

/*
 * Capacity was lost around packet p: halve the window, once per episode
 * (losses of packets sent before the last one counted are its echoes).
 */
static void
upload_lost(struct engine *e, const struct pending *p, const char *why)
{
	struct upload *u = &e->up;
	unsigned int was = u->window;

	u->losses++;
	if (p->pkt_no < u->loss_mark)
		return;
	u->loss_mark = u->pkt_seq;
	if (u->fixed)
		return;
	if (u->probing && u->grow_after < GROW_AFTER_MAX)
		u->grow_after *= 2;
	u->window = u->window / 2 > 1 ? u->window / 2 : 1;
	u->clean = 0;
	u->probing = false;
	log_debug("upload window shrinks",
	          "why=%s offset=%u window=%u->%u "
	          "grow_after=%u",
	          why, p->off, was, u->window, u->grow_after);
}

/* A clean acknowledgement: after grow_after of them, one more. */
static void
upload_clean(struct upload *u)
{
	u->clean++;
	if (u->fixed || u->window >= u->window_max)
		return;
	if (u->probing && u->clean >= u->grow_after)
		u->probing = false; /* the window proved itself */
	if (u->clean < u->grow_after)
		return;
	u->window++;
	u->clean = 0;
	u->probing = true;
	log_debug("upload window grows", "window=%u grow_after=%u", u->window,
	          u->grow_after);
}

/*
 * Where the window starts: fixed, learnt here, hinted by the supervisor,
 * or what the parameters allow.  Returns which, for the log.
 */
static const char *
upload_window_start(struct upload *u)
{
	struct upload_learnt l = u->learnt;
	const char *from = "learnt";

	u->window_max = u->plan.window;
	if (u->window_max == 0)
		u->window_max = 1;
	if (u->window_max > ENGINE_MAX_WINDOW)
		u->window_max = ENGINE_MAX_WINDOW;
	if (u->fixed) {
		u->window =
		    u->fixed < ENGINE_MAX_WINDOW ? u->fixed : ENGINE_MAX_WINDOW;
		u->window_max = u->window;
		return "fixed";
	}
	if (l.window == 0 && u->has_hint && u->hint.window != 0) {
		l.window = u->hint.window;
		l.grow_after = u->hint.grow_after;
		from = "hint";
	}
	if (l.window == 0) {
		l.window = u->window_max;
		l.grow_after = GROW_AFTER_MIN;
		from = "params";
	}
	u->window = l.window < u->window_max ? l.window : u->window_max;
	u->grow_after = l.grow_after < GROW_AFTER_MIN   ? GROW_AFTER_MIN
	                : l.grow_after > GROW_AFTER_MAX ? GROW_AFTER_MAX
	                                                : l.grow_after;
	return from;
}

/* --- packets ----------------------------------------------------------- */

static int
upload_send(struct engine *e, uint32_t off, size_t len)
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
	p->pkt_no = u->pkt_seq++;
	p->t_sent_us = engine_now_us();
	p->resent = false;
	u->inflight++;
	if (!evtimer_pending(u->loss_ev, NULL))
		upload_arm(e);
	return 0;
}

/* Send what the window and the buffered data allow. */
static void
upload_pump(struct engine *e)
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
			upload_rewind(e, u->next_off);
			break;
		}
		if (u->next_off + len > have_end)
			break; /* wait for chunks */
		if (upload_send(e, u->next_off, len) == -1)
			return;
		if (u->next_off == 0)
			u->first_inflight = true;
		u->next_off += len;
	}
	if (e->op.kind != OP_UPLOAD)
		return;
	upload_trim(u);
	upload_grant(e);
}

/*
 * The board's offset acknowledges every packet below it.  One still
 * waiting for its own reply lost that reply (replies come in order): the
 * board or the link dropped something, a sign of lost capacity.
 */
static void
upload_acked(struct engine *e, uint32_t off, uint32_t answered)
{
	struct pending *p;
	bool missing = false;
	size_t i;

	for (i = 0; i < 256; i++) {
		p = e->pend[i];
		if (p == NULL || !p->used || p->kind != PEND_UPLOAD ||
		    p->off + p->dlen > off)
			continue;
		if (p->pkt_no < answered && !missing) {
			missing = true;
			upload_lost(e, p, "reply missing");
		}
		engine_pending_drop(e, p);
		if (e->up.inflight > 0)
			e->up.inflight--;
	}
}

/* The board wants earlier data (a packet was lost, or it rebooted). */
static void
upload_board_rewinds(struct engine *e, const struct pending *p, uint32_t off,
                     uint32_t expect)
{
	struct upload *u = &e->up;

	log_debug("board rewinds", "offset=%u expected=%u window=%u", off,
	          expect, u->window);
	/* The first packet's answer is where a resumed upload stands. */
	if (p->off != 0) {
		u->rewinds++;
		upload_lost(e, p, "rewind");
	}
	/* Everything in flight is moot. */
	upload_drop_inflight(e);
	u->acked = off;
	u->next_off = off;
	if (off == 0) {
		u->first_inflight = false;
		u->first_done = false;
	}
}

void
engine_upload_reply(struct engine *e, struct pending *p, const uint8_t *pkt,
                    size_t len)
{
	struct upload *u = &e->up;
	struct smp_upload_rsp rsp;
	struct smp_err err;
	struct pending copy = *p;
	uint32_t expect = p->off + p->dlen;
	uint64_t now = engine_now_us();
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
	u->t_reply_us = now;
	u->backoff = 0;
	if (copy.off == 0 && !u->first_done) {
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
		upload_finish(e);
		return;
	}
	if (rsp.off < expect) {
		upload_board_rewinds(e, &copy, rsp.off, expect);
	} else {
		upload_rtt(u, &copy, now);
		if (rsp.off > u->acked) {
			u->acked = rsp.off;
			upload_clean(u);
		}
		if (rsp.off > u->next_off)
			u->next_off = rsp.off;
		upload_acked(e, rsp.off, copy.pkt_no);
	}
	send_progress(e, false);
	upload_pump(e);
	if (e->op.kind == OP_UPLOAD)
		upload_arm(e);
}

void
engine_upload_timed_out(struct engine *e, struct pending *p)
{
	e->up.retransmits++;
	p->resent = true;
	p->t_sent_us = engine_now_us();
	upload_lost(e, p, "timeout");
}

/*
 * The packet size: the board's limit, or a little less when the link
 * carries that in fewer bytes per byte of image (serial framing fills
 * whole lines of base64; a packet that spills a few bytes onto a new line
 * pays for the line's marker and newline).
 */
static size_t
upload_pkt_size(struct engine *e, size_t limit)
{
	struct smp_upload_plan plan;
	size_t n, best = limit, low = limit - limit / 4;
	double eff, best_eff = 0;

	if (e->ops->wire_len == NULL)
		return limit;
	for (n = limit; n >= low && n > 0; n--) {
		if (smp_plan_upload(n, 0, e->ver, e->up.total, &plan) != 0 ||
		    plan.chunk == 0)
			break;
		eff = (double)plan.chunk / (double)e->ops->wire_len(e->ctx, n);
		/* Ties go to the larger packet: fewer replies. */
		if (eff > best_eff * 1.0001) {
			best_eff = eff;
			best = n;
		}
	}
	return best;
}

void
engine_upload_begin(struct engine *e)
{
	struct upload *u = &e->up;
	size_t cap, limit = engine_pkt_limit(e);
	const char *from;

	if (smp_plan_upload(upload_pkt_size(e, limit), e->params.buf_count,
	                    e->ver, u->total, &u->plan) != 0 ||
	    u->plan.chunk == 0 || u->plan.first_chunk == 0) {
		engine_op_fail(
		    e, IPC__REPLY__STATUS__BAD_REQUEST,
		    "no upload plan fits a packet limit of %zu bytes", limit);
		return;
	}
	from = upload_window_start(u);
	/* Room for the largest window behind the acked offset, plus
	 * refill. */
	cap = (size_t)u->window_max * u->plan.chunk + u->plan.first_chunk +
	      2 * (size_t)u->chunk_size;
	cap = (cap + u->chunk_size - 1) / u->chunk_size * u->chunk_size;
	if (cap < 4 * (size_t)u->chunk_size)
		cap = 4 * (size_t)u->chunk_size;
	u->buf_cap = cap;
	u->buf_hard = 2 * cap;
	u->buf = xmalloc(u->buf_hard);
	u->t_start = engine_now_ms();
	log_debug("upload starts",
	          "len=%u pkt_limit=%zu chunk=%zu first_chunk=%zu window=%u "
	          "window_max=%u window_from=%s grow_after=%u",
	          u->total, u->plan.pkt_limit, u->plan.chunk,
	          u->plan.first_chunk, u->window, u->window_max, from,
	          u->grow_after);
	upload_grant(e);
}

void
engine_upload_init(struct engine *e)
{
	e->up.loss_ev = evtimer_new(e->base, upload_loss_timer, e);
	if (e->up.loss_ev == NULL)
		fatalx("cannot create the upload timer", NULL);
}

void
engine_upload_free(struct engine *e)
{
	engine_upload_clear(e);
	event_free(e->up.loss_ev);
	e->up.loss_ev = NULL;
}

void
engine_upload_clear(struct engine *e)
{
	struct upload *u = &e->up;
	struct upload_learnt learnt = u->learnt;
	struct event *ev = u->loss_ev;

	/* An upload that ran adaptively taught something, even if it
	 * failed. */
	if (u->buf != NULL && !u->fixed && u->window != 0) {
		learnt.window = upload_proven(u);
		learnt.grow_after = u->grow_after;
	}
	if (ev != NULL)
		evtimer_del(ev);
	free(u->buf);
	memset(u, 0, sizeof(*u));
	u->learnt = learnt;
	u->loss_ev = ev;
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
	e->up.fixed = b->window;
	e->up.has_hint = b->hint != NULL;
	if (b->hint != NULL) {
		ipc__upload_learnt__init(&e->up.hint);
		e->up.hint.window = b->hint->window;
		e->up.hint.grow_after = b->hint->grow_after;
	}
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
		upload_rewind(e, (uint32_t)want);
		return;
	}
	memcpy(u->buf + u->buf_len, c->data.data, c->data.len);
	u->buf_len += c->data.len;
	if (u->credit_out > 0)
		u->credit_out--;
	upload_pump(e);
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
