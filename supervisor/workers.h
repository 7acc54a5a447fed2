/*
 * The supervisor side of the transport workers: spawn one worker process per
 * link, handshake, route its replies and events to per-request callbacks,
 * and restart it with backoff when it dies, hangs or misbehaves.
 */
#ifndef WORKERS_H
#define WORKERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ipc.pb-c.h"

struct event_base;
struct workers;
struct worker;

enum worker_kind {
	WORKER_SERIAL,
	WORKER_UDP,
	WORKER_BLE,
};

/* What a worker needs to know about its link; strings are copied. */
struct worker_link {
	enum worker_kind kind;
	const char *device;  /* serial: tty path the supervisor opens */
	uint32_t baud;       /* serial */
	uint32_t mtu;        /* serial: 0 = worker default */
	uint32_t line_max;   /* serial: 0 = worker default */
	const char *address; /* udp: "host:port", "[v6]:port" */
	/*
	 * UDP: one worker for several boards, each added with its address
	 * (worker_add_board) before the worker starts from the loop; address
	 * is then unused.
	 */
	bool multi;
	uint32_t device_index;  /* ble: hciN */
	const char *att_socket; /* ble, simulation only: "@name" or NULL */
	uint32_t smp_version;   /* 0 = v1, 1 = v2 */
	uint32_t request_timeout_ms;
	uint32_t erase_timeout_ms;
	uint32_t retries;
	/* Drop to this user when root (-u), or NULL. */
	const char *user;
	/* An empty directory to chroot into (-C), or NULL. */
	const char *chroot_dir;
};

/*
 * Called for every message the worker sends about a request (progress,
 * credit, rewind) and last for its Reply; after the Reply the request is
 * forgotten.  When the worker dies or cannot be reached the callback gets a
 * Reply made up here with status LINK_DOWN and a reason.  env is only
 * valid during the call.
 */
typedef void (*worker_msg_cb)(const Ipc__Envelope *env, void *arg);

/* One set per event loop: owns the SIGCHLD handler. */
struct workers *workers_new(struct event_base *base);
/* Stops every worker (closes its socket, waits briefly, then kills). */
void workers_free(struct workers *ws);

/*
 * Start a worker for a link.  name is used in logs.  Fails (NULL, reason in
 * err) only for a bad link description or a missing worker executable;
 * everything later (the process dying, the device being absent) is retried
 * in the background.
 */
struct worker *worker_spawn(struct workers *ws, const char *name,
                            const struct worker_link *link, char *err,
                            size_t errcap);
/* Stop one worker and forget it; pending requests get LINK_DOWN. */
void worker_stop(struct worker *w);

/*
 * A board of this worker: BLE by its advertised name (peer_name); a multi
 * worker's by its address, only until the worker started (its sandbox
 * then keeps it from opening links).  -1 when w cannot take it.
 */
int worker_add_board(struct worker *w, uint32_t board_id, const char *peer_name,
                     const char *address);
/* A board w serves no longer; its requests fail.  Boards left. */
size_t worker_remove_board(struct worker *w, uint32_t board_id);
/* A multi worker that has not started and has fewer than cap boards. */
bool worker_takes_boards(const struct worker *w, size_t cap);

/*
 * Send a request (env's body set by the caller; request_id and board_id
 * are filled in here) and route what comes back to cb.  Requests made
 * before the worker is ready wait for it (and fail with LINK_DOWN when they
 * wait too long).  Returns the request id, or 0 when env does not fit in
 * one IPC message (a bug in the caller; logged) or the worker is stopped.
 */
uint64_t worker_request(struct worker *w, uint32_t board_id, Ipc__Envelope *env,
                        worker_msg_cb cb, void *arg);
/*
 * A follow-up message of a running request (UploadChunk, UploadAbort).
 * Returns -1 when the request is not known to the running worker (it died:
 * the callback has been or will be told).
 */
int worker_send(struct worker *w, uint64_t request_id, Ipc__Envelope *env);
/* Stop routing messages for a request to its callback. */
void worker_forget(struct worker *w, uint64_t request_id);

/*
 * A reset was sent to a board on w: for the next for_ms a lost link is the
 * board rebooting (logged at INFO), not trouble.
 */
void worker_expect_link_drop(struct worker *w, uint64_t for_ms);

/*
 * What uploads learnt about how many packets a board takes in flight
 * (UploadLearnt, opaque here): kept per board in the worker object, which
 * outlives the worker's processes, and handed back as UploadBegin's hint
 * so that a restarted worker does not learn again from scratch.
 */
struct worker_learnt {
	uint32_t window; /* 0: nothing learnt */
	uint32_t grow_after;
};
/* false when nothing was learnt for the board yet. */
bool worker_upload_hint(const struct worker *w, uint32_t board_id,
                        struct worker_learnt *out);
void worker_upload_learnt(struct worker *w, uint32_t board_id,
                          const struct worker_learnt *in);

/* Observability, mostly for tests and logs. */
int worker_pid(const struct worker *w); /* -1 when not running */
unsigned int worker_restarts(const struct worker *w);
const char *worker_name(const struct worker *w);
/* A reply status in words: "no answer", "link down"... */
const char *worker_status_name(Ipc__Reply__Status s);
/*
 * The worker executable's path (malloc'd): next to the client's own
 * executable, then in ../libexec/rdfm-mcumgr from it (any PREFIX, any
 * DESTDIR), then in the LIBEXECDIR it was built with.  NULL with err
 * naming every place looked in.
 */
char *workers_find_exe(enum worker_kind kind, char *err, size_t errcap);

#endif
