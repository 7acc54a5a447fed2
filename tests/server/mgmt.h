/*
 * The test server's device management channel (MGMT-CHANNEL.md): the
 * WebSocket endpoint and its shell sessions, the local-storage multipart
 * upload, device logs, and the /admin/mgmt/ side that drives and observes
 * it.  wsconn.c is the server end of a WebSocket (libwslay framing on an
 * evhttp connection taken over after the upgrade), mgmt*.c the rest.
 */
#ifndef RDFM_TEST_MGMT_H
#define RDFM_TEST_MGMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/http.h>

struct wsconn;

struct wsconn_cbs {
	void (*on_message)(struct wsconn *c, bool text, const uint8_t *data,
	                   size_t len, void *arg);
	/* Gone (close exchanged, dropped, or freed by us); freed after. */
	void (*on_end)(struct wsconn *c, unsigned code_received, void *arg);
};

/*
 * Takes the connection of an upgrade request over and answers 101 (the
 * caller checked the request); NULL after answering 400 or 500 as the real
 * server does when Upgrade headers, the key or the version are wrong.
 */
struct wsconn *wsconn_accept(struct evhttp_request *req,
                             const struct wsconn_cbs *cbs, void *arg);
int wsconn_send(struct wsconn *c, bool text, const void *data, size_t len);
/* One message as frames of at most frag bytes. */
int wsconn_send_fragmented(struct wsconn *c, bool text, const void *data,
                           size_t len, size_t frag);
/* Bytes as they are, past the framing (hostile frames for tests). */
void wsconn_send_raw(struct wsconn *c, const void *data, size_t len);
void wsconn_ping(struct wsconn *c);
/* The close frame; the connection ends once it is written. */
void wsconn_close(struct wsconn *c, unsigned code, const char *reason);
/* Closes the TCP connection without a close frame (on_end runs). */
void wsconn_drop(struct wsconn *c);
/* Stop reading (a half-open peer as the client sees it). */
void wsconn_stall(struct wsconn *c);
/* Pings every s seconds; a ping unanswered at the next closes 1008. */
void wsconn_set_ping(struct wsconn *c, int s);
bool wsconn_pong_pending(const struct wsconn *c);

/* mgmt.c, for main.c */
void mgmt_init(int ping_s);
void mgmt_shutdown(void);
/* true when the request was one of ours (and was answered) */
bool mgmt_route(struct evhttp_request *req, const char *path);

#endif
