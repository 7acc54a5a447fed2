/*
 * The test server's end of a WebSocket.  libevent 2.1's evhttp has no
 * WebSocket support, so after checking an upgrade request we take its
 * connection over: our callbacks replace evhttp's on the connection's
 * bufferevent (plain or TLS), we write the 101 ourselves, and a wslay
 * server context frames messages over the bufferevent's buffers.  The
 * request stays unanswered inside evhttp; freeing the connection frees it.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/evp.h>
#include <wslay/wslay.h>

#include "log.h"
#include "mgmt.h"
#include "mgmt_srv.h"
#include "server.h"
#include "xmalloc.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define MAX_MSG (16 * 1024 * 1024)

struct wsconn {
	struct evhttp_connection *evcon;
	struct bufferevent *bev;
	wslay_event_context_ptr ctx;
	struct wsconn_cbs cbs;
	void *arg;
	struct event *ping_ev;
	int ping_s;
	bool pong_pending;
	bool closing; /* end once the output is written */
	bool stalled;
	bool ended;
	int depth;
	unsigned code_received;
};

struct frag_src {
	const uint8_t *data;
	size_t len, off, frag;
};

static void conn_end(struct wsconn *c);

static bool
header_has_token(struct evkeyvalq *h, const char *name, const char *token)
{
	struct evkeyval *kv;
	const char *v, *s;
	size_t tl = strlen(token), n;

	for (kv = h->tqh_first; kv != NULL; kv = kv->next.tqe_next) {
		if (strcasecmp(kv->key, name) != 0)
			continue;
		for (v = kv->value; *v != '\0';) {
			while (*v == ' ' || *v == ',' || *v == '\t')
				v++;
			s = v;
			while (*v != '\0' && *v != ',')
				v++;
			n = (size_t)(v - s);
			while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
				n--;
			if (n == tl && strncasecmp(s, token, tl) == 0)
				return true;
		}
	}
	return false;
}

/* The route only matches upgrade requests (else 400, as the real one). */
bool
wsconn_is_upgrade(struct evhttp_request *req)
{
	struct evkeyvalq *h = evhttp_request_get_input_headers(req);

	return evhttp_request_get_command(req) == EVHTTP_REQ_GET &&
	       header_has_token(h, "Upgrade", "websocket") &&
	       header_has_token(h, "Connection", "upgrade");
}

/* wslay over the bufferevent's buffers. */

static ssize_t
recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
        void *arg)
{
	struct wsconn *c = arg;
	int n;

	(void)flags;
	n = evbuffer_remove(bufferevent_get_input(c->bev), buf, len);
	if (n <= 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	return n;
}

static ssize_t
send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
        void *arg)
{
	struct wsconn *c = arg;

	(void)ctx;
	(void)flags;
	if (evbuffer_add(bufferevent_get_output(c->bev), data, len) != 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	return (ssize_t)len;
}

static void
msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *a,
       void *arg)
{
	struct wsconn *c = arg;

	(void)ctx;
	if (c->ended)
		return;
	switch (a->opcode) {
	case WSLAY_PONG:
		c->pong_pending = false;
		break;
	case WSLAY_CONNECTION_CLOSE:
		c->code_received = a->status_code;
		break;
	case WSLAY_TEXT_FRAME:
	case WSLAY_BINARY_FRAME:
		if (c->cbs.on_message != NULL)
			c->cbs.on_message(c, a->opcode == WSLAY_TEXT_FRAME,
			                  a->msg, a->msg_length, c->arg);
		break;
	default:
		break;
	}
}

static const struct wslay_event_callbacks wslay_cbs = {
    .recv_callback = recv_cb,
    .send_callback = send_cb,
    .on_msg_recv_callback = msg_cb,
};

/* Writes what wslay holds; the connection ends when both sides are done. */
static void
pump(struct wsconn *c)
{
	if (c->ended)
		return;
	wslay_event_send(c->ctx);
	if (!wslay_event_want_read(c->ctx) && !wslay_event_want_write(c->ctx))
		c->closing = true;
	if (c->closing &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		conn_end(c);
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	struct wsconn *c = arg;

	(void)bev;
	if (c->ended || c->stalled)
		return;
	c->depth++;
	if (wslay_event_recv(c->ctx) != 0) {
		c->depth--;
		conn_end(c);
		return;
	}
	c->depth--;
	pump(c);
}

static void
on_write(struct bufferevent *bev, void *arg)
{
	struct wsconn *c = arg;

	(void)bev;
	if (c->closing && !c->ended &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		conn_end(c);
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct wsconn *c = arg;

	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
		conn_end(c);
}

static void
conn_free(struct wsconn *c)
{
	if (c->ping_ev != NULL)
		event_free(c->ping_ev);
	wslay_event_context_free(c->ctx);
	evhttp_connection_free(c->evcon);
	free(c);
}

static void
conn_end(struct wsconn *c)
{
	if (c->ended)
		return;
	c->ended = true;
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	if (c->cbs.on_end != NULL)
		c->cbs.on_end(c, c->code_received, c->arg);
	conn_free(c);
}

static void
on_ping_timer(evutil_socket_t fd, short what, void *arg)
{
	struct wsconn *c = arg;

	(void)fd;
	(void)what;
	if (c->pong_pending) {
		/* What simple-websocket does with a peer that stopped
		 * answering. */
		wsconn_close(c, 1008, "Ping/Pong timeout");
		return;
	}
	wsconn_ping(c);
}

void
wsconn_set_ping(struct wsconn *c, int s)
{
	struct timeval tv = {s, 0};

	c->ping_s = s;
	if (c->ping_ev == NULL &&
	    (c->ping_ev =
	         event_new(srv.base, -1, EV_PERSIST, on_ping_timer, c)) == NULL)
		fatalx("cannot create a timer", NULL);
	event_del(c->ping_ev);
	if (s > 0)
		event_add(c->ping_ev, &tv);
}

bool
wsconn_pong_pending(const struct wsconn *c)
{
	return c->pong_pending;
}

static void
accept_value(const char *key, char out[29])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char buf[160];

	snprintf(buf, sizeof(buf), "%s%s", key, WS_GUID);
	if (EVP_Digest(buf, strlen(buf), md, &mdlen, EVP_sha1(), NULL) != 1)
		fatalx("sha1", NULL);
	EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen);
	out[28] = '\0';
}

struct wsconn *
wsconn_accept(struct evhttp_request *req, const struct wsconn_cbs *cbs,
              void *arg)
{
	struct evkeyvalq *h = evhttp_request_get_input_headers(req);
	const char *key = evhttp_find_header(h, "Sec-WebSocket-Key");
	const char *ver = evhttp_find_header(h, "Sec-WebSocket-Version");
	struct evhttp_connection *evcon;
	struct wsconn *c;
	struct evbuffer *out;
	char acc[29];

	if (key == NULL || strlen(key) > 100 || ver == NULL ||
	    strcmp(ver, "13") != 0) {
		/* The real server raises inside wsproto: a 500. */
		reply_error(req, 500, "internal server error", NULL);
		return NULL;
	}
	accept_value(key, acc);
	evcon = evhttp_request_get_connection(req);
	c = xcalloc(1, sizeof(*c));
	c->evcon = evcon;
	c->bev = evhttp_connection_get_bufferevent(evcon);
	c->cbs = *cbs;
	c->arg = arg;
	if (wslay_event_context_server_init(&c->ctx, &wslay_cbs, c) != 0)
		fatalx("out of memory", NULL);
	wslay_event_config_set_max_recv_msg_length(c->ctx, MAX_MSG);
	log_request(req, 101, NULL, 0, NULL);
	/* From here on the connection is ours, not evhttp's. */
	bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
	bufferevent_set_timeouts(c->bev, NULL, NULL);
	out = bufferevent_get_output(c->bev);
	evbuffer_add_printf(out,
	                    "HTTP/1.1 101 Switching Protocols\r\n"
	                    "Upgrade: WebSocket\r\n"
	                    "Connection: Upgrade\r\n"
	                    "Sec-WebSocket-Accept: %s\r\n\r\n",
	                    acc);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	return c;
}

int
wsconn_send(struct wsconn *c, bool text, const void *data, size_t len)
{
	struct wslay_event_msg m;

	if (c->ended || c->closing)
		return -1;
	m.opcode = text ? WSLAY_TEXT_FRAME : WSLAY_BINARY_FRAME;
	m.msg = data;
	m.msg_length = len;
	if (wslay_event_queue_msg(c->ctx, &m) != 0)
		return -1;
	if (c->depth == 0)
		pump(c);
	return 0;
}

static ssize_t
frag_read(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
          const union wslay_event_msg_source *source, int *eof, void *arg)
{
	struct frag_src *f = source->data;
	size_t n = f->len - f->off;

	(void)ctx;
	(void)arg;
	if (n > f->frag)
		n = f->frag;
	if (n > len)
		n = len;
	memcpy(buf, f->data + f->off, n);
	f->off += n;
	if (f->off == f->len) {
		*eof = 1;
		free((void *)(uintptr_t)f->data);
		free(f);
	}
	return (ssize_t)n;
}

int
wsconn_send_fragmented(struct wsconn *c, bool text, const void *data,
                       size_t len, size_t frag)
{
	struct wslay_event_fragmented_msg m;
	struct frag_src *f;
	uint8_t *copy;

	if (c->ended || c->closing || len == 0 || frag == 0)
		return -1;
	copy = xmalloc(len);
	memcpy(copy, data, len);
	f = xcalloc(1, sizeof(*f));
	f->data = copy;
	f->len = len;
	f->frag = frag;
	memset(&m, 0, sizeof(m));
	m.opcode = text ? WSLAY_TEXT_FRAME : WSLAY_BINARY_FRAME;
	m.source.data = f;
	m.read_callback = frag_read;
	if (wslay_event_queue_fragmented_msg(c->ctx, &m) != 0) {
		free(copy);
		free(f);
		return -1;
	}
	if (c->depth == 0)
		pump(c);
	return 0;
}

void
wsconn_send_raw(struct wsconn *c, const void *data, size_t len)
{
	if (c->ended)
		return;
	evbuffer_add(bufferevent_get_output(c->bev), data, len);
}

void
wsconn_ping(struct wsconn *c)
{
	struct wslay_event_msg m = {WSLAY_PING, NULL, 0};

	if (c->ended || c->closing)
		return;
	c->pong_pending = true;
	wslay_event_queue_msg(c->ctx, &m);
	if (c->depth == 0)
		pump(c);
}

void
wsconn_close(struct wsconn *c, unsigned code, const char *reason)
{
	if (c->ended || c->closing)
		return;
	wslay_event_queue_close(c->ctx, (uint16_t)code, (const uint8_t *)reason,
	                        reason != NULL ? strlen(reason) : 0);
	/* The server drops the socket once its close is out (as wsproto's
	 * users do); the client's answer is not awaited. */
	c->closing = true;
	if (c->depth == 0)
		pump(c);
}

void
wsconn_drop(struct wsconn *c)
{
	conn_end(c);
}

void
wsconn_stall(struct wsconn *c)
{
	c->stalled = true;
	bufferevent_disable(c->bev, EV_READ);
}
