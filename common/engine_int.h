/*
 * The worker engine's insides, shared by its parts: engine.c (IPC
 * dispatch, the link, the operation in hand), engine_smp.c (the SMP
 * client and its pending requests) and engine_upload.c (the upload
 * pipeline).  Transports use engine.h only.
 */
#ifndef ENGINE_INT_H
#define ENGINE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "engine.h"
#include "ipc.h"
#include "smp.h"

enum link_state {
	LINK_UNOPENED, /* before engine_open_link() */
	LINK_UP,
	LINK_DOWN, /* lost, or failed to open: why says which */
};

enum op_kind {
	OP_NONE,
	OP_ECHO,
	OP_STATE_READ,
	OP_STATE_WRITE,
	OP_RESET,
	OP_PARAMS,
	OP_UPLOAD,
	OP_CMD, /* any SMP command: engine_cmd.c */
};

enum pend_kind {
	PEND_PARAMS, /* the engine's own probe for MCUmgr parameters */
	PEND_OP,     /* the request of a simple operation */
	PEND_UPLOAD, /* one upload packet */
};

enum params_state {
	PARAMS_UNKNOWN,
	PARAMS_KNOWN,
	PARAMS_UNSUPPORTED, /* rc 8 or an error: the planner's fallback */
};

struct pending {
	struct engine *e;
	struct pending *next_spare; /* dropped: kept for the next request */
	bool used;
	uint8_t seq;
	enum pend_kind kind;
	uint16_t group; /* expected in the reply header */
	uint8_t id;
	uint8_t *pkt;
	size_t len;
	uint32_t off, dlen; /* upload: data offset and length */
	uint32_t pkt_no;    /* upload: numbered in sending order */
	uint64_t t_sent_us; /* upload: last (re)sent */
	bool resent;        /* upload: its reply times no round trip */
	unsigned int tries;
	int timeout_ms;
	struct event *timer;
};

/*
 * What the pipeline learnt about its board's capacity; it outlives uploads
 * (and, through the supervisor, the worker).  window 0: nothing yet.
 */
struct upload_learnt {
	unsigned int window;     /* packets in flight the board took */
	unsigned int grow_after; /* clean packets before trying one more */
};

/*
 * The pipeline of one board: the upload running (if any), the window
 * controller, and what was learnt.  engine_upload_clear() ends an upload
 * and keeps learnt and the timer.
 */
struct upload {
	uint32_t image;
	uint32_t total;
	uint8_t sha[SMP_HASH_LEN];
	bool has_sha;
	uint32_t chunk_size; /* IPC chunk */
	struct smp_upload_plan plan;
	bool first_inflight; /* the first packet (off 0) is out */
	bool first_done;     /* and answered: pipeline from here */
	uint32_t acked;      /* the board's offset */
	uint32_t next_off;   /* next byte to send */
	unsigned int inflight;
	/* Image bytes [buf_off, buf_off + buf_len); buf_off + buf_len is
	 * the offset of the next chunk accepted from the supervisor. */
	uint8_t *buf;
	size_t buf_cap;  /* what credits are granted against */
	size_t buf_hard; /* allocated: tolerates extra chunks */
	uint32_t buf_off;
	size_t buf_len;
	unsigned int credit_out; /* granted, not yet received */
	uint32_t start_off;      /* the board's offset at the first reply */
	uint64_t t_start, t_progress;

	/* The window controller (engine_upload.c explains it). */
	unsigned int fixed;      /* UploadBegin.window: no learning */
	unsigned int window;     /* packets allowed in flight now */
	unsigned int window_max; /* what the board's parameters allow */
	unsigned int grow_after; /* clean acks needed before window + 1 */
	unsigned int clean;      /* acks since the window last changed */
	bool probing;            /* the window grew and has not proved it */
	uint32_t pkt_seq;        /* upload packets sent so far */
	uint32_t loss_mark;      /* losses of packets below: counted */
	bool have_rtt;
	double srtt_us, rttvar_us;
	uint64_t t_reply_us;    /* the last reply to an upload packet */
	unsigned int backoff;   /* early resends since the last reply */
	struct event *loss_ev;  /* no reply for too long: a loss */
	Ipc__UploadLearnt hint; /* from UploadBegin */
	bool has_hint;

	uint32_t retransmits, rewinds, losses;
	struct upload_learnt learnt;
};

struct op {
	enum op_kind kind;
	uint64_t req_id;
	uint32_t board_id;
	char *text;
	bool has_hash;
	uint8_t hash[SMP_HASH_LEN];
	bool confirm;
	struct engine_cmd *cmd;
	bool started; /* past the parameters probe */
};

/*
 * The worker process: its IPC, its configuration and the boards it serves.
 * Configured with boards > 0 (UDP), it serves that many, each named by an
 * AddBoard with its address before the links open, each with its own
 * link, sequence numbers, pending requests, window and deadlines, and
 * routes every request by its board id; otherwise one board, boards[0],
 * takes every request.
 */
struct engine_host {
	struct event_base *base;
	const struct link_ops *ops;
	int auto_open;
	struct ipc *ipc;
	bool finished;
	int exit_status;

	/* Handshake. */
	Ipc__LinkConfig *cfg; /* owned copy of Configure.link */
	bool configured;
	int link_fd; /* from LinkFd, until the link is opened */
	char *link_path;
	uint32_t multi; /* Configure.boards: 0 for one board */

	struct engine **boards;
	size_t nboards;
};

/* One board: its link and SMP client (one per worker but in multi mode). */
struct engine {
	struct engine_host *h;
	struct event_base *base; /* h's */
	const struct link_ops *ops;
	void *ctx;         /* the transport's state for this board's link */
	bool have_board;   /* AddBoard seen (links that need one) */
	uint32_t board_id; /* and the board it named */
	char *address;     /* multi: this board's address (UDP) */

	enum link_state link;
	char why[256];
	struct event *link_ev;
	struct event *lost_ev;  /* deferred link-loss handling */
	struct event *retry_ev; /* reconnect timer (no-fd links) */

	int ver; /* SMP_V1 or SMP_V2 */
	int request_ms, erase_ms;
	unsigned int retries;

	enum params_state params_state;
	struct smp_params params;

	/*
	 * In flight, by sequence number (NULL: free).  A board has a window's
	 * worth at most, so they come from a list of spares rather than 256
	 * slots for each of a worker's boards.
	 */
	struct pending *pend[256];
	struct pending *spare;
	uint8_t next_seq;
	unsigned int npending;

	struct op op;
	struct upload up;
};

/* engine.c: the IPC, the link and the operation in hand. */
uint64_t engine_now_ms(void);
uint64_t engine_now_us(void);
void engine_send(struct engine *e, Ipc__Envelope *env, uint64_t req_id,
                 uint32_t board_id);
void engine_reply_status(struct engine *e, uint64_t req_id, uint32_t board_id,
                         Ipc__Reply__Status status, const char *why);
/* The link went down: fail what is in flight, tell the supervisor. */
void engine_link_lost(struct engine *e, const char *why);
bool engine_op_take(struct engine *e, const Ipc__Envelope *env,
                    enum op_kind kind);
void engine_op_reply(struct engine *e, Ipc__Reply *r);
void engine_op_fail(struct engine *e, Ipc__Reply__Status status,
                    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* engine_smp.c: the SMP client (pending requests, replies, operations). */
struct pending *engine_request(struct engine *e, enum pend_kind kind,
                               const uint8_t *pkt, size_t len, int timeout_ms);
void engine_pending_drop(struct engine *e, struct pending *p);
void engine_pending_drop_all(struct engine *e);
/* Send a pending request again now, leaving its timeout as it is. */
int engine_resend(struct engine *e, struct pending *p);
size_t engine_pkt_limit(struct engine *e);
/* Start the operation taken, probing the board's parameters first. */
void engine_op_start(struct engine *e);
void engine_fail_board(struct engine *e, int rc, const struct smp_err *err);

/* engine_upload.c: the pipeline, for the engine. */
void engine_upload_init(struct engine *e);
void engine_upload_free(struct engine *e);
/* The operation ended: forget the upload, keep what was learnt. */
void engine_upload_clear(struct engine *e);
/* A packet was sent again after its full timeout. */
void engine_upload_timed_out(struct engine *e, struct pending *p);
void engine_upload_begin(struct engine *e);
void engine_upload_reply(struct engine *e, struct pending *p,
                         const uint8_t *pkt, size_t len);
void engine_dispatch_upload_begin(struct engine *e, const Ipc__Envelope *env,
                                  int fd);
void engine_dispatch_upload_chunk(struct engine *e, const Ipc__Envelope *env,
                                  int fd);
void engine_dispatch_upload_abort(struct engine *e, const Ipc__Envelope *env,
                                  int fd);

#endif
