/*
 * The worker engine shared by the serial, UDP and BLE workers: IPC dispatch,
 * the SMP client (pending requests keyed by sequence number, timeouts and
 * retransmits), the streamed, pipelined upload with credit flow control.
 * Each worker only fills in a struct link_ops and calls engine_run().
 */
#ifndef ENGINE_H
#define ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "ipc.h"

struct engine;

/* Defaults for LinkConfig fields left at 0. */
#define ENGINE_REQUEST_TIMEOUT_MS 5000
#define ENGINE_ERASE_TIMEOUT_MS   60000
#define ENGINE_RETRIES            3
#define ENGINE_MAX_WINDOW         32
#define ENGINE_PROGRESS_MS        100
#define ENGINE_MAX_BOARDS         256 /* boards one worker may serve */

/* What a transport provides.  ctx is the transport's own state. */
struct link_ops {
	const char *role; /* "serial", "udp", "ble": Hello and logs */
	int needs_fd;     /* the link is a descriptor passed with LinkFd */
	int needs_board;  /* open only after AddBoard named the peer (BLE) */
	int serial;       /* buf_size counts 4 bytes of framing */
	unsigned int sandbox_flags; /* SANDBOX_ALLOW_* the link needs */
	/*
	 * Open the link (called once, before the sandbox).  fd: from LinkFd
	 * or -1.  0, or -1 with the reason written to why.
	 */
	int (*open)(void *ctx, const Ipc__LinkConfig *cfg, int fd, char *why,
	            size_t whycap);
	/* Open again after a loss: a fresh fd (serial) or -1 (reconnect). */
	int (*reopen)(void *ctx, int fd, char *why, size_t whycap);
	void (*close)(void *ctx);
	/* The descriptor to watch for reading while the link is up. */
	int (*fd)(void *ctx);
	/*
	 * Read what is ready, calling engine_packet() for each whole SMP
	 * packet.  0, or -1 when the link is lost.
	 */
	int (*read)(void *ctx, struct engine *e);
	/* Send one SMP packet.  0, or -1 when the link is lost. */
	int (*send)(void *ctx, const uint8_t *pkt, size_t len);
	/* The largest SMP packet the transport itself can carry. */
	size_t (*max_pkt)(void *ctx);
	/*
	 * Optional: the bytes an SMP packet of len bytes takes on the link,
	 * so uploads can pick the packet size that carries the most image
	 * per byte sent (serial framing); NULL when that is len.
	 */
	size_t (*wire_len)(void *ctx, size_t len);
	/* BLE: a board by its advertised name; NULL for other links. */
	int (*add_board)(void *ctx, const char *peer_name);
	/*
	 * Several boards per worker (Configure.boards): the state of another
	 * board's link, opened with its own address; NULL when a worker of
	 * this transport serves one board.
	 */
	void *(*ctx_new)(void);
	void (*ctx_free)(void *ctx);
};

/*
 * The whole life of a worker process: IPC on fd 3, Hello, Configure (and
 * LinkFd), open the link, sandbox_enter(), event loop until the supervisor
 * closes the socket.  argv: [-v] [-u USER] [-C DIR].  Returns the exit code.
 */
int engine_run(const struct link_ops *ops, void *ctx, int argc, char **argv);

/* Called by a transport's read() for every whole packet from the board. */
void engine_packet(struct engine *e, const uint8_t *pkt, size_t len);

/*
 * The pieces engine_run() is made of, for tests with a stub transport.
 * With auto_open the link is opened as soon as Configure (and LinkFd when
 * needed) arrived; engine_run() instead opens it itself before the sandbox.
 */
struct engine *engine_new(struct event_base *base, const struct link_ops *ops,
                          void *ctx, int auto_open);
void engine_free(struct engine *e);
/* Take the IPC socket and say Hello.  0 or -1. */
int engine_connect(struct engine *e, int ipc_fd);
/* Configure (and LinkFd) received: the link can be opened. */
int engine_configured(const struct engine *e);
/* The IPC is gone: the worker should exit (code in *status). */
int engine_finished(const struct engine *e, int *status);

#endif
