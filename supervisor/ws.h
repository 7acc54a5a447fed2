/*
 * A WebSocket client (RFC 6455) on the supervisor's libevent loop: libcurl
 * connects (CURLOPT_CONNECT_ONLY, with the HTTP API's TLS settings), we
 * write the upgrade request and check the 101 reply, and libwslay frames
 * messages over curl_easy_send/curl_easy_recv.
 */
#ifndef WS_H
#define WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct curlev;
struct ws_client;
struct ws;

/* Why a connection ended. */
enum ws_end {
	WS_END_CONNECT,   /* TCP or TLS failed (detail: libcurl's words) */
	WS_END_REFUSED,   /* the server answered the upgrade with status */
	WS_END_HANDSHAKE, /* a 101 we cannot accept (detail says why) */
	WS_END_CLOSED,    /* the server's close frame: code and reason */
	WS_END_PROTOCOL,  /* a bad frame or a message over the cap; we
	                     closed with code */
	WS_END_DROPPED,   /* the connection went away without a close */
	WS_END_TIMEOUT,   /* no handshake, or silence for idle_ms */
};

struct ws_end_info {
	enum ws_end kind;
	long status;   /* WS_END_REFUSED: the HTTP status */
	unsigned code; /* WS_END_CLOSED: received; _PROTOCOL: sent */
	char detail[160];
	char body[256]; /* WS_END_REFUSED: the start of the response body */
	size_t body_len;
};

struct ws_callbacks {
	/* The 101 was accepted; messages may be sent. */
	void (*on_open)(struct ws *ws, void *arg);
	/* One whole message (fragments joined), at most max_msg bytes. */
	void (*on_message)(struct ws *ws, bool text, const uint8_t *data,
	                   size_t len, void *arg);
	/* Everything queued so far has been written to the connection. */
	void (*on_drained)(struct ws *ws, void *arg);
	/* The connection ended; ws is freed when this returns. */
	void (*on_end)(struct ws *ws, const struct ws_end_info *why, void *arg);
};

struct ws_opts {
	const char *url;  /* http:// or https://, path included */
	const char *auth; /* Authorization header value, or NULL */
	size_t max_msg;   /* largest message accepted */
	int idle_ms;      /* end a connection silent this long; 0: never */
	size_t max_queue; /* bytes of unsent output before ws_send fails */
};

/* One per process; ca_file (may be NULL) as the HTTP API's. */
struct ws_client *ws_client_new(struct event_base *base, struct curlev *cv,
                                const char *ca_file);
/* Every connection must have been freed first. */
void ws_client_free(struct ws_client *c);
/* Connections of this client that are open (after the 101). */
size_t ws_client_open_count(const struct ws_client *c);

/*
 * Starts connecting; the callbacks run from the loop, never inside this
 * call.  NULL with err when the options are unusable (bad URL, a header
 * value with control characters).
 */
struct ws *ws_open(struct ws_client *c, const struct ws_opts *o,
                   const struct ws_callbacks *cb, void *arg, char *err,
                   size_t errcap);
/* Ends the connection at once, without on_end; safe inside callbacks. */
void ws_free(struct ws *ws);
/*
 * Queues one message.  -1 when the connection is not open or more than
 * max_queue bytes wait to be written (the peer does not read).
 */
int ws_send(struct ws *ws, bool text, const void *data, size_t len);
/*
 * Sends a close frame and ends the connection once the server answered
 * (or after a short wait); on_end reports WS_END_CLOSED.
 */
void ws_close(struct ws *ws, unsigned code, const char *reason);
/* Stops (false) or resumes reading; output still flows. */
void ws_set_reading(struct ws *ws, bool on);

/*
 * The pure parts, for tests.  The Sec-WebSocket-Accept value for a key
 * (28 characters and a NUL).
 */
void ws_accept_for_key(const char *key, char out[29]);

struct ws_response {
	long status;
	size_t head_len;         /* bytes up to and including CRLF CRLF */
	long long content_len;   /* -1 when absent */
	bool upgrade_websocket;  /* Upgrade: websocket */
	bool connection_upgrade; /* Connection lists "upgrade" */
	char accept[64];         /* Sec-WebSocket-Accept, "" when absent */
	int naccept;             /* how many Sec-WebSocket-Accept headers */
	bool extensions;         /* Sec-WebSocket-Extensions present */
	bool protocol;           /* Sec-WebSocket-Protocol present */
};

/*
 * Parses an HTTP/1.1 response head from the start of buf: 1 when whole
 * (r filled), 0 when more bytes are needed, -1 when malformed (why says
 * what).  Header names and the Upgrade/Connection values are compared
 * without regard to case.
 */
int ws_parse_response(const char *buf, size_t len, struct ws_response *r,
                      char *why, size_t whycap);

#endif
