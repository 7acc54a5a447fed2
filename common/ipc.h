/*
 * IPC between the supervisor and its transport workers: one protobuf-c
 * Envelope (proto/ipc.proto) per SOCK_SEQPACKET message, with descriptor
 * passing (SCM_RIGHTS), queued writes and size caps, on a libevent loop.
 */
#ifndef IPC_H
#define IPC_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "ipc.pb-c.h"

/*
 * Build messages with the generated ipc__*__init() functions: the
 * IPC__*__INIT macros cast away const and trip -Wcast-qual.
 *
 * Upload flow control, precisely: UploadCredit{n} adds n chunks to what the
 * supervisor may send.  UploadRewind{offset} cancels every credit granted
 * so far; the supervisor continues from offset once the worker grants
 * credit again (the worker ignores chunks that do not start at the offset
 * it expects, so chunks already in flight are harmless).
 *
 * Worker command line (set by the supervisor): [-u USER] [-C DIR]: the
 * user to switch to and the empty directory to chroot into when the worker
 * runs as root (defaults "nobody" and "/var/empty").
 */
/* 2: SmpCommand and Reply.tree; 3: several UDP boards per worker
 * (Configure.boards, AddBoard.address). */
#define IPC_PROTOCOL_VERSION 3
#define IPC_MAX_MSG          (64 * 1024) /* largest envelope, both ways */
#define IPC_CHUNK_SIZE       4096        /* UploadChunk payload size */
#define IPC_WORKER_FD        3 /* the worker's end of the socketpair */

/* One endpoint on a SOCK_SEQPACKET socket, on a libevent loop. */
struct ipc;

/*
 * env is freed by ipc after the callback returns; fd is a received
 * descriptor (the callee owns it) or -1.
 */
typedef void (*ipc_msg_cb)(struct ipc *ipc, const Ipc__Envelope *env, int fd,
                           void *arg);
/*
 * The peer closed, or sent a malformed/oversized message (reason says
 * which); the ipc is dead, free it.
 */
typedef void (*ipc_error_cb)(struct ipc *ipc, const char *reason, void *arg);

struct ipc *ipc_new(struct event_base *base, int fd, ipc_msg_cb on_msg,
                    ipc_error_cb on_error, void *arg);
/*
 * Closes fd and drops what is still queued.  Safe from inside either
 * callback (the free is then finished when the callback returns).
 */
void ipc_free(struct ipc *ipc);
/*
 * Queued; write readiness is requested only while the queue is non-empty.
 * pass_fd is -1 or a descriptor sent with SCM_RIGHTS (not closed; it is
 * dup'ed while queued).  -1 when the envelope is too large or cannot be
 * packed, or the ipc is dead.
 */
int ipc_send(struct ipc *ipc, const Ipc__Envelope *env, int pass_fd);
/* Envelopes waiting to be written. */
size_t ipc_queued(const struct ipc *ipc);

/*
 * Pure: unpack and validate one message (size cap, a body set,
 * strings/bytes bounded); NULL + reason on error.  Free with
 * ipc__envelope__free_unpacked(env, NULL).  Fuzzed.
 */
Ipc__Envelope *ipc_decode(const uint8_t *buf, size_t len, char *err,
                          size_t errcap);

#endif
