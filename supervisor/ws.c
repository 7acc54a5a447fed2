/*
 * The WebSocket client: a CONNECT_ONLY libcurl transfer opens TCP (and TLS
 * with the HTTP API's settings), we send the upgrade and check the 101, and
 * a wslay event context frames messages over curl_easy_send/recv, driven by
 * an event on the connection's socket.
 *
 * Memory per idle connection matters (a daemon holds one per board): the
 * wslay context (two 4 KiB buffers) exists only while a frame is being
 * read or written, and is dropped again between frames.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <wslay/wslay.h>

#include "curlev.h"
#include "log.h"
#include "rdfm.h"
#include "ws.h"
#include "xmalloc.h"

#define ERR(...) snprintf(err, errcap, __VA_ARGS__)

#define WS_GUID         "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define HEAD_MAX        8192 /* largest response head accepted */
#define BODY_MAX        4096 /* of a refusal, kept for the message */
#define CLOSE_WAIT_MS   2000 /* for the server's answer to our close */
#define SWEEP_MS        1000
#define HANDSHAKE_MS    (RDFM_API_TIMEOUT_S * 1000)
#define DEFAULT_MAX_MSG (1024 * 1024)
#define DEFAULT_MAX_Q   (1024 * 1024)

enum ws_state { ST_CONNECTING, ST_REQUEST, ST_RESPONSE, ST_OPEN, ST_CLOSING };

struct ws_client {
	struct event_base *base;
	struct curlev *cv;
	char *ca_file;
	struct ws *list;
	struct event *sweep;
	struct event *reap; /* ends connections outside API calls */
	size_t nopen;
};

struct ws {
	struct ws *next, *prev;
	struct ws_client *c;
	struct curlev_xfer x;
	enum ws_state state;
	struct ws_callbacks cb;
	void *arg;
	size_t max_msg, max_queue;
	int idle_ms;
	curl_socket_t fd;
	struct event *ev;
	short ev_flags;
	bool reading;
	bool counted;     /* in c->nopen */
	int64_t deadline; /* handshake or close wait, monotonic ms */
	int64_t last_rx;
	unsigned close_code; /* ours, from ws_close */

	/* Handshake: the request, then the response head (and the rest). */
	char *req;
	size_t reqlen, reqoff;
	char *in;
	size_t inlen, incap;
	char accept[29];

	/* Bytes that came after the 101, handed to wslay first. */
	uint8_t *left;
	size_t leftlen, leftoff;

	/* Framing; ctx exists only while a frame is in progress. */
	wslay_event_context_ptr ctx;
	uint64_t rx_fed, rx_framed, rx_frame;
	bool rx_in_msg;
	bool in_recv;
	bool eof, io_error;
	char errtext[96]; /* an I/O error */
	char reason[96];  /* the server's close reason */

	int depth;
	bool freed;
	bool ended;
	struct ws_end_info end;
};

static void ws_io(struct ws *);
static void release(struct ws *);
static void close_received(struct ws *);

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Pure parts. */

void
ws_accept_for_key(const char *key, char out[29])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char buf[128];
	int n;

	n = snprintf(buf, sizeof(buf), "%s%s", key, WS_GUID);
	if (n < 0 || (size_t)n >= sizeof(buf) ||
	    EVP_Digest(buf, (size_t)n, md, &mdlen, EVP_sha1(), NULL) != 1 ||
	    mdlen != 20)
		fatalx("cannot compute a WebSocket accept value", NULL);
	/* 20 bytes are 28 base64 characters, with one '='. */
	EVP_EncodeBlock((unsigned char *)out, md, 20);
	out[28] = '\0';
}

static bool
token_in_list(const char *v, size_t n, const char *token)
{
	size_t tl = strlen(token), i = 0, s, e;

	while (i < n) {
		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		s = i;
		while (i < n && v[i] != ',')
			i++;
		e = i;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (e - s == tl && strncasecmp(v + s, token, tl) == 0)
			return true;
	}
	return false;
}

static bool
value_is(const char *v, size_t n, const char *want)
{
	return n == strlen(want) && strncasecmp(v, want, n) == 0;
}

static int
parse_header(const char *line, size_t n, struct ws_response *r, char *why,
             size_t whycap)
{
	const char *colon = memchr(line, ':', n), *v;
	size_t nl, vl, i;
	char num[24];
	char *ep;

	if (colon == NULL || colon == line) {
		snprintf(why, whycap, "a header line without a name");
		return -1;
	}
	nl = (size_t)(colon - line);
	for (i = 0; i < nl; i++)
		if (line[i] <= ' ' || line[i] >= 0x7f) {
			snprintf(why, whycap,
			         "a header name with spaces or "
			         "control characters");
			return -1;
		}
	v = colon + 1;
	vl = n - nl - 1;
	while (vl > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		vl--;
	}
	while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
		vl--;
#define NAME_IS(s) (nl == strlen(s) && strncasecmp(line, s, nl) == 0)
	if (NAME_IS("Upgrade"))
		r->upgrade_websocket = value_is(v, vl, "websocket");
	else if (NAME_IS("Connection"))
		r->connection_upgrade = token_in_list(v, vl, "upgrade");
	else if (NAME_IS("Sec-WebSocket-Accept")) {
		r->naccept++;
		if (vl >= sizeof(r->accept))
			vl = sizeof(r->accept) - 1;
		memcpy(r->accept, v, vl);
		r->accept[vl] = '\0';
	} else if (NAME_IS("Sec-WebSocket-Extensions"))
		r->extensions = true;
	else if (NAME_IS("Sec-WebSocket-Protocol"))
		r->protocol = true;
	else if (NAME_IS("Content-Length")) {
		if (vl == 0 || vl >= sizeof(num)) {
			snprintf(why, whycap, "a bad Content-Length");
			return -1;
		}
		memcpy(num, v, vl);
		num[vl] = '\0';
		errno = 0;
		r->content_len = strtoll(num, &ep, 10);
		if (*ep != '\0' || errno != 0 || r->content_len < 0 ||
		    !isdigit((unsigned char)num[0])) {
			snprintf(why, whycap, "a bad Content-Length");
			return -1;
		}
	}
#undef NAME_IS
	return 0;
}

int
ws_parse_response(const char *buf, size_t len, struct ws_response *r, char *why,
                  size_t whycap)
{
	const char *end = NULL, *p, *eol;
	size_t i;

	memset(r, 0, sizeof(*r));
	r->content_len = -1;
	for (i = 0; i + 3 < len; i++)
		if (memcmp(buf + i, "\r\n\r\n", 4) == 0) {
			end = buf + i;
			break;
		}
	if (end == NULL) {
		if (len >= HEAD_MAX) {
			snprintf(why, whycap, "response head over %d bytes",
			         HEAD_MAX);
			return -1;
		}
		return 0;
	}
	r->head_len = (size_t)(end - buf) + 4;
	for (p = buf; p < end; p++)
		if (*p == '\0') {
			snprintf(why, whycap, "a NUL in the response head");
			return -1;
		}
	/* Status line: HTTP/1.x NNN reason */
	eol = memchr(buf, '\r', (size_t)(end - buf) + 1);
	if (eol == NULL || eol - buf < 12 || strncmp(buf, "HTTP/1.", 7) != 0 ||
	    !isdigit((unsigned char)buf[7]) || buf[8] != ' ' ||
	    !isdigit((unsigned char)buf[9]) ||
	    !isdigit((unsigned char)buf[10]) ||
	    !isdigit((unsigned char)buf[11]) ||
	    (eol - buf > 12 && buf[12] != ' ')) {
		snprintf(why, whycap, "not an HTTP/1.x status line");
		return -1;
	}
	r->status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + buf[11] - '0';
	p = eol + 2;
	while (p < end + 2) {
		eol = memchr(p, '\r', (size_t)(end + 2 - p));
		if (eol == NULL || eol[1] != '\n') {
			snprintf(why, whycap, "a header line without CRLF");
			return -1;
		}
		if (*p == ' ' || *p == '\t') {
			snprintf(why, whycap, "a folded header line");
			return -1;
		}
		if (parse_header(p, (size_t)(eol - p), r, why, whycap) == -1)
			return -1;
		p = eol + 2;
	}
	return 1;
}

/*
 * Re-entrancy.  Every entry from the loop (socket event, connect done,
 * sweep) and every call of the API runs between enter() and leave(); user
 * callbacks run inside, so a ws_free() or an end there only sets a flag.
 * leave() from the loop then ends the connection (on_end, release); from
 * an API call it leaves that to the reaper, so on_end never runs inside
 * the caller's ws_send() or ws_close().
 */
static void
enter(struct ws *ws)
{
	ws->depth++;
}

static void
deliver_end(struct ws *ws)
{
	if (ws->cb.on_end != NULL) {
		ws->depth++;
		ws->cb.on_end(ws, &ws->end, ws->arg);
		ws->depth--;
	}
	release(ws);
}

static void
leave(struct ws *ws, bool from_loop)
{
	if (--ws->depth > 0)
		return;
	if (ws->freed)
		release(ws);
	else if (ws->ended) {
		if (from_loop)
			deliver_end(ws);
		else
			event_active(ws->c->reap, EV_TIMEOUT, 0);
	}
}

static bool
gone(const struct ws *ws)
{
	return ws->ended || ws->freed;
}

static void
ws_finish(struct ws *ws, const struct ws_end_info *why)
{
	if (ws->ended)
		return;
	ws->ended = true;
	if (why != &ws->end)
		ws->end = *why;
}

static void finish(struct ws *, enum ws_end, unsigned, const char *, ...)
    __attribute__((format(printf, 4, 5)));

static void
finish(struct ws *ws, enum ws_end kind, unsigned code, const char *fmt, ...)
{
	struct ws_end_info e;
	va_list ap;

	memset(&e, 0, sizeof(e));
	e.kind = kind;
	e.code = code;
	va_start(ap, fmt);
	vsnprintf(e.detail, sizeof(e.detail), fmt, ap);
	va_end(ap);
	ws_finish(ws, &e);
}

/* The connection's socket event. */

static void
on_io_event(evutil_socket_t fd, short what, void *arg)
{
	struct ws *ws = arg;

	(void)fd;
	(void)what;
	enter(ws);
	ws_io(ws);
	leave(ws, true);
}

/* Watch the socket for reading (unless paused) and, when wanted, writing. */
static void
watch(struct ws *ws, bool want_write)
{
	short flags = EV_PERSIST;

	if (ws->fd == CURL_SOCKET_BAD)
		return;
	if (ws->reading)
		flags |= EV_READ;
	if (want_write)
		flags |= EV_WRITE;
	if (ws->ev != NULL && flags == ws->ev_flags)
		return;
	if (ws->ev == NULL)
		ws->ev = event_new(ws->c->base, ws->fd, flags, on_io_event, ws);
	else {
		event_del(ws->ev);
		event_assign(ws->ev, ws->c->base, ws->fd, flags, on_io_event,
		             ws);
	}
	if (ws->ev == NULL || event_add(ws->ev, NULL) == -1)
		fatalx("cannot watch a WebSocket connection", NULL);
	ws->ev_flags = flags;
}

static void
unlink_ws(struct ws *ws)
{
	if (ws->prev != NULL)
		ws->prev->next = ws->next;
	else
		ws->c->list = ws->next;
	if (ws->next != NULL)
		ws->next->prev = ws->prev;
	ws->next = ws->prev = NULL;
}

static void
release(struct ws *ws)
{
	if (ws->counted)
		ws->c->nopen--;
	unlink_ws(ws);
	if (ws->ev != NULL)
		event_free(ws->ev);
	if (ws->ctx != NULL)
		wslay_event_context_free(ws->ctx);
	if (ws->x.easy != NULL) {
		curlev_remove(ws->c->cv, &ws->x);
		curl_easy_cleanup(ws->x.easy);
	}
	if (ws->req != NULL)
		explicit_bzero(ws->req, ws->reqlen); /* it holds the token */
	free(ws->req);
	free(ws->in);
	free(ws->left);
	free(ws);
}

/* wslay's I/O and event callbacks. */

static ssize_t
recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
        void *arg)
{
	struct ws *ws = arg;
	CURLcode rc;
	size_t n = 0;

	(void)flags;
	if (ws->leftoff < ws->leftlen) {
		n = ws->leftlen - ws->leftoff;
		if (n > len)
			n = len;
		memcpy(buf, ws->left + ws->leftoff, n);
		ws->leftoff += n;
		ws->rx_fed += n;
		return (ssize_t)n;
	}
	rc = curl_easy_recv(ws->x.easy, buf, len, &n);
	if (rc == CURLE_AGAIN) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	if (rc != CURLE_OK || n == 0) {
		if (rc == CURLE_OK)
			ws->eof = true;
		else {
			ws->io_error = true;
			snprintf(ws->errtext, sizeof(ws->errtext), "%s",
			         curl_easy_strerror(rc));
		}
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	ws->rx_fed += n;
	ws->last_rx = now_ms();
	return (ssize_t)n;
}

static ssize_t
send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
        void *arg)
{
	struct ws *ws = arg;
	CURLcode rc;
	size_t n = 0;

	(void)flags;
	rc = curl_easy_send(ws->x.easy, data, len, &n);
	if (rc == CURLE_AGAIN || (rc == CURLE_OK && n == 0)) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	if (rc != CURLE_OK) {
		ws->io_error = true;
		snprintf(ws->errtext, sizeof(ws->errtext), "%s",
		         curl_easy_strerror(rc));
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	return (ssize_t)n;
}

static int
genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *arg)
{
	(void)ctx;
	(void)arg;
	return RAND_bytes(buf, (int)len) == 1 ? 0 : -1;
}

/* Frame sizes, to know when every byte read belongs to whole frames. */
static void
frame_start_cb(wslay_event_context_ptr ctx,
               const struct wslay_event_on_frame_recv_start_arg *a, void *arg)
{
	struct ws *ws = arg;
	uint64_t hdr = 2;

	(void)ctx;
	if (a->payload_length > 65535)
		hdr += 8;
	else if (a->payload_length > 125)
		hdr += 2;
	ws->rx_frame = hdr + a->payload_length;
	if ((a->opcode == WSLAY_TEXT_FRAME ||
	     a->opcode == WSLAY_BINARY_FRAME) &&
	    !a->fin)
		ws->rx_in_msg = true;
	else if (a->opcode == WSLAY_CONTINUATION_FRAME && a->fin)
		ws->rx_in_msg = false;
}

static void
frame_end_cb(wslay_event_context_ptr ctx, void *arg)
{
	struct ws *ws = arg;

	(void)ctx;
	ws->rx_framed += ws->rx_frame;
	ws->rx_frame = 0;
}

static void
msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *a,
       void *arg)
{
	struct ws *ws = arg;
	size_t n, i;

	(void)ctx;
	if (gone(ws))
		return;
	if (a->opcode == WSLAY_CONNECTION_CLOSE) {
		/* The reason, printable, for the end report. */
		n = a->msg_length > 2 ? a->msg_length - 2 : 0;
		if (n > sizeof(ws->reason) - 1)
			n = sizeof(ws->reason) - 1;
		for (i = 0; i < n; i++)
			ws->reason[i] =
			    a->msg[2 + i] >= 0x20 && a->msg[2 + i] < 0x7f
			        ? (char)a->msg[2 + i]
			        : '?';
		ws->reason[n] = '\0';
		return;
	}
	if ((a->opcode == WSLAY_TEXT_FRAME ||
	     a->opcode == WSLAY_BINARY_FRAME) &&
	    ws->state == ST_OPEN && ws->cb.on_message != NULL)
		ws->cb.on_message(ws, a->opcode == WSLAY_TEXT_FRAME, a->msg,
		                  a->msg_length, ws->arg);
}

static const struct wslay_event_callbacks wslay_cbs = {
    .recv_callback = recv_cb,
    .send_callback = send_cb,
    .genmask_callback = genmask_cb,
    .on_frame_recv_start_callback = frame_start_cb,
    .on_frame_recv_end_callback = frame_end_cb,
    .on_msg_recv_callback = msg_cb,
};

static void
ctx_need(struct ws *ws)
{
	if (ws->ctx != NULL)
		return;
	if (wslay_event_context_client_init(&ws->ctx, &wslay_cbs, ws) != 0)
		fatalx("out of memory", NULL);
	wslay_event_config_set_max_recv_msg_length(ws->ctx, ws->max_msg);
}

/*
 * Between frames, with nothing to write and no message half assembled, a
 * fresh context is the same as this one: drop it.
 */
static void
ctx_maybe_drop(struct ws *ws)
{
	if (ws->ctx == NULL || ws->state != ST_OPEN || gone(ws) ||
	    ws->in_recv || ws->rx_fed != ws->rx_framed || ws->rx_in_msg ||
	    ws->leftoff < ws->leftlen || wslay_event_want_write(ws->ctx) ||
	    wslay_event_get_close_sent(ws->ctx) ||
	    wslay_event_get_close_received(ws->ctx) ||
	    !wslay_event_get_read_enabled(ws->ctx))
		return;
	wslay_event_context_free(ws->ctx);
	ws->ctx = NULL;
	free(ws->left);
	ws->left = NULL;
	ws->leftlen = ws->leftoff = 0;
}

/*
 * A write failed: the server may have closed with a reason we have not read
 * yet (a 4002 right after the 101, then its socket gone).  Read what is
 * there before calling it a drop.
 */
static void
write_failed(struct ws *ws)
{
	char err[sizeof(ws->errtext)];

	snprintf(err, sizeof(err), "%s", ws->errtext);
	if (!ws->in_recv && wslay_event_get_read_enabled(ws->ctx)) {
		ws->io_error = false;
		ws->errtext[0] = '\0';
		ws->in_recv = true;
		(void)wslay_event_recv(ws->ctx);
		ws->in_recv = false;
	}
	if (wslay_event_get_close_received(ws->ctx)) {
		close_received(ws);
		return;
	}
	finish(ws, WS_END_DROPPED, 0, "cannot write: %s", err);
}

/* Writes what wslay holds; a write error ends the connection. */
static void
ws_flush(struct ws *ws)
{
	bool had;

	if (ws->ctx == NULL || gone(ws)) {
		watch(ws, false);
		return;
	}
	had = wslay_event_want_write(ws->ctx);
	if (wslay_event_send(ws->ctx) != 0 && ws->io_error) {
		write_failed(ws);
		return;
	}
	if (wslay_event_want_write(ws->ctx)) {
		watch(ws, true);
		return;
	}
	watch(ws, false);
	if (had && ws->cb.on_drained != NULL)
		ws->cb.on_drained(ws, ws->arg);
}

/* The server's close frame ends the connection with its code. */
static void
close_received(struct ws *ws)
{
	unsigned got = wslay_event_get_status_code_received(ws->ctx);

	if (got == 1005) /* the frame had no code */
		got = ws->state == ST_CLOSING ? ws->close_code : 0;
	finish(ws, WS_END_CLOSED, got, "%s", ws->reason);
}

/*
 * After reading and writing: has the exchange of close frames, or a frame
 * wslay refused, ended the connection?
 */
static void
check_closed(struct ws *ws)
{
	if (ws->ctx == NULL || gone(ws))
		return;
	if (wslay_event_get_close_received(ws->ctx)) {
		/* Our answer went out with the flush (or could not). */
		close_received(ws);
		return;
	}
	if (ws->state == ST_OPEN && !wslay_event_get_read_enabled(ws->ctx)) {
		/* wslay refused a frame and queued a close with its code. */
		if (!wslay_event_get_close_sent(ws->ctx)) {
			ws->deadline = now_ms() + CLOSE_WAIT_MS;
			return; /* still going out; the sweep has the rest */
		}
		finish(ws, WS_END_PROTOCOL,
		       wslay_event_get_status_code_sent(ws->ctx), "%s",
		       wslay_event_get_status_code_sent(ws->ctx) == 1009
		           ? "a message over the size limit"
		       : wslay_event_get_status_code_sent(ws->ctx) == 1007
		           ? "a text message that is not UTF-8"
		           : "a frame that breaks RFC 6455");
	}
}

static void
read_frames(struct ws *ws)
{
	int rc;

	ctx_need(ws);
	ws->in_recv = true;
	rc = wslay_event_recv(ws->ctx);
	ws->in_recv = false;
	if (gone(ws))
		return;
	if (ws->eof || ws->io_error || rc != 0) {
		if (wslay_event_get_close_received(ws->ctx)) {
			check_closed(ws);
			return;
		}
		finish(ws, WS_END_DROPPED, 0, "%s",
		       ws->eof        ? "the server closed the connection"
		       : ws->io_error ? ws->errtext
		                      : "out of memory while reading");
		return;
	}
	ws_flush(ws);
	if (wslay_event_get_close_received(ws->ctx) ||
	    !wslay_event_get_read_enabled(ws->ctx)) {
		check_closed(ws);
		return;
	}
	ctx_maybe_drop(ws);
}

/* The handshake. */

static void
handshake_done(struct ws *ws)
{
	struct ws_response r;
	char why[128];
	size_t rest;

	if (ws_parse_response(ws->in, ws->inlen, &r, why, sizeof(why)) != 1) {
		finish(ws, WS_END_HANDSHAKE, 0, "%s", why);
		return;
	}
	if (!r.upgrade_websocket || !r.connection_upgrade)
		finish(ws, WS_END_HANDSHAKE, 0,
		       "101 without Upgrade: websocket and Connection: "
		       "Upgrade");
	else if (r.naccept != 1 || strcmp(r.accept, ws->accept) != 0)
		finish(ws, WS_END_HANDSHAKE, 0,
		       "wrong Sec-WebSocket-Accept (expected %s)", ws->accept);
	else if (r.extensions || r.protocol)
		finish(ws, WS_END_HANDSHAKE, 0,
		       "an extension or subprotocol we did not offer");
	if (gone(ws))
		return;
	rest = ws->inlen - r.head_len;
	if (rest > 0) {
		ws->left = xmalloc(rest);
		memcpy(ws->left, ws->in + r.head_len, rest);
		ws->leftlen = rest;
	}
	free(ws->in);
	ws->in = NULL;
	ws->inlen = ws->incap = 0;
	ws->state = ST_OPEN;
	ws->counted = true;
	ws->c->nopen++;
	ws->last_rx = now_ms();
	watch(ws, false);
	/*
	 * What on_open sends waits for the read below, which takes what came
	 * with the 101 (a close right after it, say) first.
	 */
	ws->in_recv = true;
	if (ws->cb.on_open != NULL)
		ws->cb.on_open(ws, ws->arg);
	ws->in_recv = false;
	if (gone(ws))
		return;
	read_frames(ws);
}

static void
refusal_done(struct ws *ws, long status, size_t head_len)
{
	struct ws_end_info e;
	size_t n = ws->inlen - head_len, i;

	memset(&e, 0, sizeof(e));
	e.kind = WS_END_REFUSED;
	e.status = status;
	snprintf(e.detail, sizeof(e.detail), "HTTP %ld", status);
	if (n > sizeof(e.body) - 1)
		n = sizeof(e.body) - 1;
	memcpy(e.body, ws->in + head_len, n);
	for (i = 0; i < n; i++)
		if (e.body[i] == '\0')
			e.body[i] = ' ';
	e.body[n] = '\0';
	e.body_len = n;
	ws_finish(ws, &e);
}

static void
read_response(struct ws *ws)
{
	struct ws_response r;
	char why[128];
	CURLcode rc;
	size_t n;
	int pr;

	for (;;) {
		if (ws->inlen == ws->incap) {
			if (ws->incap >= HEAD_MAX + BODY_MAX) {
				finish(ws, WS_END_HANDSHAKE, 0,
				       "response larger than %d bytes",
				       HEAD_MAX + BODY_MAX);
				return;
			}
			ws->incap = ws->incap == 0 ? 1024 : ws->incap * 2;
			ws->in = xreallocarray(ws->in, ws->incap, 1);
		}
		n = 0;
		rc = curl_easy_recv(ws->x.easy, ws->in + ws->inlen,
		                    ws->incap - ws->inlen, &n);
		if (rc == CURLE_AGAIN)
			return;
		if (rc != CURLE_OK || n == 0) {
			pr = ws_parse_response(ws->in, ws->inlen, &r, why,
			                       sizeof(why));
			if (pr == 1 && r.status != 101)
				refusal_done(ws, r.status, r.head_len);
			else
				finish(ws, WS_END_DROPPED, 0,
				       "connection closed during the "
				       "handshake%s%s",
				       rc != CURLE_OK ? ": " : "",
				       rc != CURLE_OK ? curl_easy_strerror(rc)
				                      : "");
			return;
		}
		ws->inlen += n;
		pr = ws_parse_response(ws->in, ws->inlen, &r, why, sizeof(why));
		if (pr == -1) {
			finish(ws, WS_END_HANDSHAKE, 0, "%s", why);
			return;
		}
		if (pr == 0)
			continue;
		if (r.status == 101) {
			handshake_done(ws);
			return;
		}
		/* A refusal: keep reading its (short) body for the log. */
		if (r.content_len < 0 ||
		    ws->inlen - r.head_len >= (size_t)r.content_len ||
		    ws->inlen - r.head_len >= BODY_MAX) {
			refusal_done(ws, r.status, r.head_len);
			return;
		}
	}
}

static void
send_request(struct ws *ws)
{
	CURLcode rc;
	size_t n;

	while (ws->reqoff < ws->reqlen) {
		n = 0;
		rc = curl_easy_send(ws->x.easy, ws->req + ws->reqoff,
		                    ws->reqlen - ws->reqoff, &n);
		if (rc == CURLE_AGAIN || (rc == CURLE_OK && n == 0)) {
			watch(ws, true);
			return;
		}
		if (rc != CURLE_OK) {
			finish(ws, WS_END_DROPPED, 0,
			       "cannot send the upgrade request: %s",
			       curl_easy_strerror(rc));
			return;
		}
		ws->reqoff += n;
	}
	explicit_bzero(ws->req, ws->reqlen);
	free(ws->req);
	ws->req = NULL;
	ws->state = ST_RESPONSE;
	watch(ws, false);
	read_response(ws);
}

static void
ws_io(struct ws *ws)
{
	switch (ws->state) {
	case ST_REQUEST:
		send_request(ws);
		break;
	case ST_RESPONSE:
		read_response(ws);
		break;
	case ST_OPEN:
	case ST_CLOSING:
		if (ws->ctx != NULL && wslay_event_want_write(ws->ctx)) {
			ws_flush(ws);
			if (gone(ws))
				return;
			if (wslay_event_get_close_received(ws->ctx) ||
			    !wslay_event_get_read_enabled(ws->ctx)) {
				check_closed(ws);
				return;
			}
		}
		if (ws->reading || ws->state == ST_CLOSING)
			read_frames(ws);
		break;
	case ST_CONNECTING:
		break;
	}
}

static void
connect_done(struct curlev_xfer *x, CURLcode rc)
{
	struct ws *ws = (struct ws *)((char *)x - offsetof(struct ws, x));
	curl_socket_t fd = CURL_SOCKET_BAD;

	enter(ws);
	if (rc != CURLE_OK)
		finish(ws, WS_END_CONNECT, 0, "%s", curl_easy_strerror(rc));
	else if (curl_easy_getinfo(x->easy, CURLINFO_ACTIVESOCKET, &fd) !=
	             CURLE_OK ||
	         fd == CURL_SOCKET_BAD)
		finish(ws, WS_END_CONNECT, 0, "no socket after connecting");
	else {
		ws->fd = fd;
		ws->state = ST_REQUEST;
		send_request(ws);
	}
	leave(ws, true);
}

/* TLS buffers are released while a connection idles (OpenSSL keeps 34 KiB
 * per connection otherwise). */
static CURLcode
ssl_ctx_cb(CURL *e, void *sslctx, void *arg)
{
	(void)e;
	(void)arg;
	SSL_CTX_set_mode((SSL_CTX *)sslctx, SSL_MODE_RELEASE_BUFFERS);
	return CURLE_OK;
}

static bool
header_safe(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

/* "GET path HTTP/1.1" and the headers, from the URL's parts. */
static char *
build_request(const char *url, const char *auth, const char *key, char *err,
              size_t errcap)
{
	CURLU *u;
	char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL,
	     *query = NULL, *req = NULL;

	if ((u = curl_url()) == NULL)
		fatalx("out of memory", NULL);
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK) {
		ERR("\"%s\" is not a URL", url);
		goto out;
	}
	if (strcasecmp(scheme, "http") != 0 &&
	    strcasecmp(scheme, "https") != 0) {
		ERR("\"%s\" is not an http:// or https:// URL", url);
		goto out;
	}
	(void)curl_url_get(u, CURLUPART_PORT, &port, 0);
	(void)curl_url_get(u, CURLUPART_QUERY, &query, 0);
	if (!header_safe(host) || !header_safe(path) ||
	    (query != NULL && !header_safe(query))) {
		ERR("\"%s\" has characters a request line cannot carry", url);
		goto out;
	}
	xasprintf(&req,
	          "GET %s%s%s HTTP/1.1\r\n"
	          "Host: %s%s%s\r\n"
	          "Upgrade: websocket\r\n"
	          "Connection: Upgrade\r\n"
	          "Sec-WebSocket-Key: %s\r\n"
	          "Sec-WebSocket-Version: 13\r\n"
	          "%s%s%s"
	          "User-Agent: rdfm-mcumgr-client/" VERSION "\r\n"
	          "\r\n",
	          path, query != NULL ? "?" : "", query != NULL ? query : "",
	          host, port != NULL ? ":" : "", port != NULL ? port : "", key,
	          auth != NULL ? "Authorization: " : "",
	          auth != NULL ? auth : "", auth != NULL ? "\r\n" : "");
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(path);
	curl_free(query);
	curl_url_cleanup(u);
	return req;
}

struct ws *
ws_open(struct ws_client *c, const struct ws_opts *o,
        const struct ws_callbacks *cb, void *arg, char *err, size_t errcap)
{
	unsigned char raw[16];
	char key[25];
	struct ws *ws;
	char *req;

	if (o->auth != NULL && !header_safe(o->auth)) {
		ERR("the Authorization value has control characters");
		return NULL;
	}
	if (RAND_bytes(raw, sizeof(raw)) != 1)
		fatalx("no random bytes", NULL);
	EVP_EncodeBlock((unsigned char *)key, raw, sizeof(raw));
	key[24] = '\0';
	if ((req = build_request(o->url, o->auth, key, err, errcap)) == NULL)
		return NULL;
	ws = xcalloc(1, sizeof(*ws));
	ws->c = c;
	ws->cb = *cb;
	ws->arg = arg;
	ws->max_msg = o->max_msg > 0 ? o->max_msg : DEFAULT_MAX_MSG;
	ws->max_queue = o->max_queue > 0 ? o->max_queue : DEFAULT_MAX_Q;
	ws->idle_ms = o->idle_ms;
	ws->fd = CURL_SOCKET_BAD;
	ws->reading = true;
	ws->req = req;
	ws->reqlen = strlen(req);
	ws_accept_for_key(key, ws->accept);
	ws->deadline = now_ms() + HANDSHAKE_MS;
	ws->state = ST_CONNECTING;

	if ((ws->x.easy = curl_easy_init()) == NULL)
		fatalx("cannot create a curl handle", NULL);
	rdfm_curl_setup(ws->x.easy, c->ca_file);
	curl_easy_setopt(ws->x.easy, CURLOPT_URL, o->url);
	curl_easy_setopt(ws->x.easy, CURLOPT_CONNECT_ONLY, 1L);
	curl_easy_setopt(ws->x.easy, CURLOPT_TIMEOUT, (long)RDFM_API_TIMEOUT_S);
	/* curl's own buffer is unused after connecting: keep it small. */
	curl_easy_setopt(ws->x.easy, CURLOPT_BUFFERSIZE, 1024L);
	curl_easy_setopt(ws->x.easy, CURLOPT_SSL_CTX_FUNCTION, ssl_ctx_cb);
	ws->x.keep = true;
	ws->x.done = connect_done;

	ws->next = c->list;
	if (c->list != NULL)
		c->list->prev = ws;
	c->list = ws;
	if (!evtimer_pending(c->sweep, NULL)) {
		struct timeval tv = {SWEEP_MS / 1000, (SWEEP_MS % 1000) * 1000};

		evtimer_add(c->sweep, &tv);
	}
	curlev_add(c->cv, &ws->x);
	return ws;
}

void
ws_free(struct ws *ws)
{
	if (ws == NULL)
		return;
	if (ws->depth > 0) {
		ws->freed = true;
		return;
	}
	release(ws);
}

int
ws_send(struct ws *ws, bool text, const void *data, size_t len)
{
	struct wslay_event_msg m;
	int rc = -1;

	if (ws->state != ST_OPEN || gone(ws))
		return -1;
	enter(ws);
	ctx_need(ws);
	if (wslay_event_get_queued_msg_length(ws->ctx) + len > ws->max_queue)
		goto out;
	m.opcode = text ? WSLAY_TEXT_FRAME : WSLAY_BINARY_FRAME;
	m.msg = data;
	m.msg_length = len;
	if (wslay_event_queue_msg(ws->ctx, &m) != 0)
		goto out;
	rc = 0;
	if (ws->in_recv)
		watch(ws, true); /* written once the read loop is done */
	else {
		ws_flush(ws);
		ctx_maybe_drop(ws);
	}
out:
	leave(ws, false);
	return rc;
}

void
ws_close(struct ws *ws, unsigned code, const char *reason)
{
	size_t n = reason != NULL ? strlen(reason) : 0;

	if (ws->state != ST_OPEN || gone(ws))
		return;
	enter(ws);
	ctx_need(ws);
	if (n > 123)
		n = 123;
	wslay_event_queue_close(ws->ctx, (uint16_t)code,
	                        (const uint8_t *)reason, n);
	ws->state = ST_CLOSING;
	ws->close_code = code;
	ws->deadline = now_ms() + CLOSE_WAIT_MS;
	if (ws->in_recv)
		watch(ws, true);
	else
		ws_flush(ws);
	leave(ws, false);
}

void
ws_set_reading(struct ws *ws, bool on)
{
	if (ws->reading == on || gone(ws))
		return;
	ws->reading = on;
	if (ws->state < ST_OPEN)
		return;
	enter(ws);
	watch(ws, ws->ctx != NULL && wslay_event_want_write(ws->ctx));
	/* Bytes may wait in TLS buffers with the socket quiet. */
	if (on && !ws->in_recv)
		read_frames(ws);
	leave(ws, false);
}

/* Deadlines: handshakes, closes and silent connections. */

/* Reports every ended connection; each report may end or free others. */
static void
reap_all(struct ws_client *c)
{
	struct ws *ws;

again:
	for (ws = c->list; ws != NULL; ws = ws->next)
		if (ws->ended && !ws->freed && ws->depth == 0) {
			deliver_end(ws);
			goto again;
		}
}

static void
on_sweep(evutil_socket_t fd, short what, void *arg)
{
	struct ws_client *c = arg;
	struct timeval tv = {SWEEP_MS / 1000, (SWEEP_MS % 1000) * 1000};
	struct ws *ws;
	int64_t now = now_ms();

	(void)fd;
	(void)what;
	/* Mark first, report after: an on_end may free other connections. */
	for (ws = c->list; ws != NULL; ws = ws->next) {
		if (gone(ws))
			continue;
		if (ws->state < ST_OPEN && now >= ws->deadline)
			finish(ws, WS_END_TIMEOUT, 0,
			       "no WebSocket handshake within %d s",
			       HANDSHAKE_MS / 1000);
		else if (ws->state == ST_CLOSING && now >= ws->deadline)
			finish(ws, WS_END_CLOSED, ws->close_code,
			       "closed by us; the server did not answer");
		else if (ws->state == ST_OPEN && ws->ctx != NULL &&
		         !wslay_event_get_read_enabled(ws->ctx) &&
		         now >= ws->deadline)
			finish(ws, WS_END_PROTOCOL,
			       wslay_event_get_status_code_sent(ws->ctx),
			       "a frame we refused");
		else if (ws->state == ST_OPEN && ws->idle_ms > 0 &&
		         now - ws->last_rx >= ws->idle_ms)
			finish(ws, WS_END_TIMEOUT, 0,
			       "nothing from the server for %d s",
			       ws->idle_ms / 1000);
	}
	reap_all(c);
	if (c->list != NULL)
		evtimer_add(c->sweep, &tv);
}

/* Connections that ended inside an API call: report them from the loop. */
static void
on_reap(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	reap_all(arg);
}

struct ws_client *
ws_client_new(struct event_base *base, struct curlev *cv, const char *ca_file)
{
	struct ws_client *c;

	c = xcalloc(1, sizeof(*c));
	c->base = base;
	c->cv = cv;
	c->ca_file = ca_file != NULL ? xstrdup(ca_file) : NULL;
	if ((c->sweep = evtimer_new(base, on_sweep, c)) == NULL ||
	    (c->reap = event_new(base, -1, 0, on_reap, c)) == NULL)
		fatalx("cannot create a timer", NULL);
	return c;
}

void
ws_client_free(struct ws_client *c)
{
	if (c == NULL)
		return;
	if (c->list != NULL)
		fatalx("WebSocket client freed with connections", NULL);
	event_free(c->sweep);
	event_free(c->reap);
	free(c->ca_file);
	free(c);
}

size_t
ws_client_open_count(const struct ws_client *c)
{
	return c->nopen;
}
