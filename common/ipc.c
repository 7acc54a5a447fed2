/*
 * IPC endpoint: one protobuf-c Envelope per SOCK_SEQPACKET message, with an
 * optional descriptor (SCM_RIGHTS), queued writes and size caps.  Anything
 * malformed from the peer ends the conversation: the owner gets on_error.
 */
#include <sys/queue.h>
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "ipc.h"
#include "smp_tree.h"
#include "log.h"
#include "xmalloc.h"

/* Bounds on variable-length fields; far above any honest value. */
#define IPC_MAX_ROLE        16
#define IPC_MAX_ADDRESS     256
#define IPC_MAX_ATT_SOCKET  108 /* sun_path */
#define IPC_MAX_PATH        4096
#define IPC_MAX_PEER_NAME   248 /* BLE device name */
#define IPC_MAX_TEXT        1024
#define IPC_MAX_ERROR       1024
#define IPC_MAX_LOG         4096
#define IPC_MAX_VERSION     64
#define IPC_MAX_SLOTS       16
#define IPC_HASH_LEN        32
#define IPC_MAX_CHUNK_SIZE  (32 * 1024)
#define IPC_MAX_SMP_PAYLOAD 65535 /* an SMP header's length field */
#define IPC_READS_PER_EVENT 32

struct ipc_msg {
	TAILQ_ENTRY(ipc_msg) entry;
	uint8_t *buf;
	size_t len;
	int fd; /* a dup of the descriptor to pass, or -1 */
};

struct ipc {
	int fd;
	struct event *rev;
	struct event *wev;
	ipc_msg_cb on_msg;
	ipc_error_cb on_error;
	void *arg;
	TAILQ_HEAD(, ipc_msg) queue;
	size_t nqueued;
	int dead;        /* on_error was called: no more reads or writes */
	int in_callback; /* ipc_free() from a callback is deferred */
	int free_deferred;
	uint8_t *rbuf; /* IPC_MAX_MSG + 1 so that oversize shows */
};

static void ipc_read_cb(evutil_socket_t, short, void *);
static void ipc_write_cb(evutil_socket_t, short, void *);

static void __attribute__((format(printf, 3, 4)))
seterr(char *err, size_t errcap, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errcap == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errcap, fmt, ap);
	va_end(ap);
}

struct ipc *
ipc_new(struct event_base *base, int fd, ipc_msg_cb on_msg,
        ipc_error_cb on_error, void *arg)
{
	struct ipc *ipc;
	int fl;

	fl = fcntl(fd, F_GETFL);
	if (fl == -1 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1)
		return NULL;
	ipc = xcalloc(1, sizeof(*ipc));
	ipc->fd = fd;
	ipc->on_msg = on_msg;
	ipc->on_error = on_error;
	ipc->arg = arg;
	TAILQ_INIT(&ipc->queue);
	ipc->rbuf = xmalloc(IPC_MAX_MSG + 1);
	ipc->rev = event_new(base, fd, EV_READ | EV_PERSIST, ipc_read_cb, ipc);
	ipc->wev =
	    event_new(base, fd, EV_WRITE | EV_PERSIST, ipc_write_cb, ipc);
	if (ipc->rev == NULL || ipc->wev == NULL ||
	    event_add(ipc->rev, NULL) == -1) {
		if (ipc->rev != NULL)
			event_free(ipc->rev);
		if (ipc->wev != NULL)
			event_free(ipc->wev);
		free(ipc->rbuf);
		free(ipc);
		return NULL;
	}
	return ipc;
}

static void
ipc_msg_free(struct ipc_msg *m)
{
	if (m->fd != -1)
		close(m->fd);
	free(m->buf);
	free(m);
}

static void
ipc_destroy(struct ipc *ipc)
{
	struct ipc_msg *m;

	while ((m = TAILQ_FIRST(&ipc->queue)) != NULL) {
		TAILQ_REMOVE(&ipc->queue, m, entry);
		ipc_msg_free(m);
	}
	event_free(ipc->rev);
	event_free(ipc->wev);
	close(ipc->fd);
	free(ipc->rbuf);
	free(ipc);
}

void
ipc_free(struct ipc *ipc)
{
	if (ipc == NULL)
		return;
	if (ipc->in_callback) {
		/* Freed by the read loop once the callback returns. */
		ipc->free_deferred = 1;
		event_del(ipc->rev);
		event_del(ipc->wev);
		return;
	}
	ipc_destroy(ipc);
}

size_t
ipc_queued(const struct ipc *ipc)
{
	return ipc->nqueued;
}

/* Stop all I/O and tell the owner once. */
static void
ipc_fail(struct ipc *ipc, const char *reason)
{
	if (ipc->dead)
		return;
	ipc->dead = 1;
	event_del(ipc->rev);
	event_del(ipc->wev);
	ipc->on_error(ipc, reason, ipc->arg);
}

int
ipc_send(struct ipc *ipc, const Ipc__Envelope *env, int pass_fd)
{
	struct ipc_msg *m;
	size_t len;

	if (ipc->dead || ipc->free_deferred)
		return -1;
	len = ipc__envelope__get_packed_size(env);
	if (len == 0 || len > IPC_MAX_MSG) {
		log_warnx("ipc message not sent", "size=%zu max=%d", len,
		          IPC_MAX_MSG);
		return -1;
	}
	m = xcalloc(1, sizeof(*m));
	m->buf = xmalloc(len);
	m->len = ipc__envelope__pack(env, m->buf);
	m->fd = -1;
	if (pass_fd != -1 &&
	    (m->fd = fcntl(pass_fd, F_DUPFD_CLOEXEC, 0)) == -1) {
		log_warn("ipc cannot duplicate descriptor", "fd=%d", pass_fd);
		ipc_msg_free(m);
		return -1;
	}
	TAILQ_INSERT_TAIL(&ipc->queue, m, entry);
	if (ipc->nqueued++ == 0)
		event_add(ipc->wev, NULL);
	return 0;
}

static int
ipc_write_one(struct ipc *ipc, struct ipc_msg *m)
{
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(int))];
	} cmsgbuf;
	struct iovec iov = {.iov_base = m->buf, .iov_len = m->len};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	struct cmsghdr *cmsg;

	if (m->fd != -1) {
		memset(&cmsgbuf, 0, sizeof(cmsgbuf));
		msg.msg_control = cmsgbuf.buf;
		msg.msg_controllen = sizeof(cmsgbuf.buf);
		cmsg = CMSG_FIRSTHDR(&msg);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cmsg), &m->fd, sizeof(int));
	}
	return sendmsg(ipc->fd, &msg, MSG_NOSIGNAL) == -1 ? -1 : 0;
}

static void
ipc_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ipc *ipc = arg;
	struct ipc_msg *m;

	(void)fd;
	(void)what;
	while ((m = TAILQ_FIRST(&ipc->queue)) != NULL) {
		if (ipc_write_one(ipc, m) == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK ||
			    errno == EINTR || errno == ENOBUFS)
				return;
			ipc_fail(ipc, errno == EPIPE || errno == ECONNRESET
			                  ? "peer closed"
			                  : "write error");
			return;
		}
		TAILQ_REMOVE(&ipc->queue, m, entry);
		ipc->nqueued--;
		ipc_msg_free(m);
	}
	event_del(ipc->wev);
}

/* Descriptors in the control data: keep the first, close the rest. */
static int
ipc_take_fds(struct msghdr *msg, int *nfds)
{
	struct cmsghdr *cmsg;
	int fd = -1, one;
	size_t i, n;

	*nfds = 0;
	for (cmsg = CMSG_FIRSTHDR(msg); cmsg != NULL;
	     cmsg = CMSG_NXTHDR(msg, cmsg)) {
		if (cmsg->cmsg_level != SOL_SOCKET ||
		    cmsg->cmsg_type != SCM_RIGHTS)
			continue;
		n = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < n; i++) {
			memcpy(&one, CMSG_DATA(cmsg) + i * sizeof(int),
			       sizeof(int));
			if (fd == -1)
				fd = one;
			else
				close(one);
			(*nfds)++;
		}
	}
	return fd;
}

/* 1: a message was handled, 0: nothing to read, -1: the ipc failed. */
static int
ipc_read_one(struct ipc *ipc)
{
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(4 * sizeof(int))];
	} cmsgbuf;
	struct iovec iov = {.iov_base = ipc->rbuf, .iov_len = IPC_MAX_MSG + 1};
	struct msghdr msg = {.msg_iov = &iov,
	                     .msg_iovlen = 1,
	                     .msg_control = cmsgbuf.buf,
	                     .msg_controllen = sizeof(cmsgbuf.buf)};
	Ipc__Envelope *env;
	char err[128], reason[192];
	ssize_t n;
	int fd, nfds;

	n = recvmsg(ipc->fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	if (n == -1) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return 0;
		ipc_fail(ipc,
		         errno == ECONNRESET ? "peer closed" : "read error");
		return -1;
	}
	fd = ipc_take_fds(&msg, &nfds);
	if (n == 0) {
		if (fd != -1)
			close(fd);
		ipc_fail(ipc, "peer closed");
		return -1;
	}
	if ((msg.msg_flags & MSG_TRUNC) || (size_t)n > IPC_MAX_MSG) {
		if (fd != -1)
			close(fd);
		ipc_fail(ipc, "oversized message");
		return -1;
	}
	if ((msg.msg_flags & MSG_CTRUNC) || nfds > 1) {
		if (fd != -1)
			close(fd);
		ipc_fail(ipc, "more than one descriptor in a message");
		return -1;
	}
	if ((env = ipc_decode(ipc->rbuf, n, err, sizeof(err))) == NULL) {
		if (fd != -1)
			close(fd);
		snprintf(reason, sizeof(reason), "malformed message: %s", err);
		ipc_fail(ipc, reason);
		return -1;
	}
	ipc->in_callback++;
	ipc->on_msg(ipc, env, fd, ipc->arg);
	ipc->in_callback--;
	ipc__envelope__free_unpacked(env, NULL);
	return 1;
}

static void
ipc_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ipc *ipc = arg;
	int i;

	(void)fd;
	(void)what;
	/* A few messages per wakeup, so one busy peer cannot starve the loop.
	 */
	ipc->in_callback++;
	for (i = 0; i < IPC_READS_PER_EVENT; i++) {
		if (ipc->dead || ipc->free_deferred)
			break;
		if (ipc_read_one(ipc) != 1)
			break;
	}
	ipc->in_callback--;
	if (ipc->free_deferred && ipc->in_callback == 0)
		ipc_destroy(ipc);
}

/* Validation of decoded messages. */

static int
check_str(const char *s, size_t max, const char *what, char *err, size_t errcap)
{
	if (s != NULL && strlen(s) > max) {
		seterr(err, errcap, "%s longer than %zu bytes", what, max);
		return -1;
	}
	return 0;
}

static int
check_hash(const ProtobufCBinaryData *b, const char *what, char *err,
           size_t errcap)
{
	if (b->len != 0 && b->len != IPC_HASH_LEN) {
		seterr(err, errcap, "%s is %zu bytes, not %d", what, b->len,
		       IPC_HASH_LEN);
		return -1;
	}
	return 0;
}

static int
check_link(const Ipc__LinkConfig *l, char *err, size_t errcap)
{
	if (l == NULL) {
		seterr(err, errcap, "configure without link");
		return -1;
	}
	if (l->kind != IPC__LINK_CONFIG__KIND__SERIAL &&
	    l->kind != IPC__LINK_CONFIG__KIND__UDP &&
	    l->kind != IPC__LINK_CONFIG__KIND__BLE) {
		seterr(err, errcap, "unknown link kind %d", (int)l->kind);
		return -1;
	}
	if (l->smp_version > 1) {
		seterr(err, errcap, "smp_version %u is not 0 or 1",
		       l->smp_version);
		return -1;
	}
	if (check_str(l->address, IPC_MAX_ADDRESS, "address", err, errcap) ||
	    check_str(l->att_socket, IPC_MAX_ATT_SOCKET, "att_socket", err,
	              errcap))
		return -1;
	return 0;
}

/* A reply tree within smp_tree.h's limits; its shape is checked on import. */
static int
check_tree(const Ipc__SmpTree *t, char *err, size_t errcap)
{
	size_t i, data = 0;

	if (t->n_nodes > SMP_TREE_MAX_NODES) {
		seterr(err, errcap, "reply tree of %zu items, at most %d",
		       t->n_nodes, SMP_TREE_MAX_NODES);
		return -1;
	}
	for (i = 0; i < t->n_nodes; i++) {
		if (t->nodes[i]->kind < IPC__SMP_NODE__KIND__UINT ||
		    t->nodes[i]->kind > IPC__SMP_NODE__KIND__MAP) {
			seterr(err, errcap, "reply tree item of kind %d",
			       (int)t->nodes[i]->kind);
			return -1;
		}
		data += t->nodes[i]->data.len;
	}
	if (data > SMP_TREE_MAX_DATA) {
		seterr(err, errcap, "reply tree with %zu bytes of strings",
		       data);
		return -1;
	}
	return 0;
}

static int
check_reply(const Ipc__Reply *r, char *err, size_t errcap)
{
	size_t i;

	if (r->status < IPC__REPLY__STATUS__OK ||
	    r->status > IPC__REPLY__STATUS__BUSY) {
		seterr(err, errcap, "unknown reply status %d", (int)r->status);
		return -1;
	}
	if (check_str(r->error, IPC_MAX_ERROR, "reply error", err, errcap) ||
	    check_str(r->echo, IPC_MAX_TEXT, "echo reply", err, errcap))
		return -1;
	if (r->result_case == IPC__REPLY__RESULT_IMAGES) {
		if (r->images->n_slots > IPC_MAX_SLOTS) {
			seterr(err, errcap, "%zu image slots, at most %d",
			       r->images->n_slots, IPC_MAX_SLOTS);
			return -1;
		}
		for (i = 0; i < r->images->n_slots; i++) {
			if (check_str(r->images->slots[i]->version,
			              IPC_MAX_VERSION, "image version", err,
			              errcap) ||
			    check_hash(&r->images->slots[i]->hash, "image hash",
			               err, errcap))
				return -1;
		}
	}
	if (r->result_case == IPC__REPLY__RESULT_TREE)
		return check_tree(r->tree, err, errcap);
	return 0;
}

static int
check_body(const Ipc__Envelope *e, char *err, size_t errcap)
{
	switch (e->body_case) {
	case IPC__ENVELOPE__BODY_HELLO:
		return check_str(e->hello->role, IPC_MAX_ROLE, "role", err,
		                 errcap);
	case IPC__ENVELOPE__BODY_CONFIGURE:
		return check_link(e->configure->link, err, errcap);
	case IPC__ENVELOPE__BODY_LINK_FD:
		return check_str(e->link_fd->path, IPC_MAX_PATH, "path", err,
		                 errcap);
	case IPC__ENVELOPE__BODY_ADD_BOARD:
		return check_str(e->add_board->peer_name, IPC_MAX_PEER_NAME,
		                 "peer_name", err, errcap);
	case IPC__ENVELOPE__BODY_ECHO:
		return check_str(e->echo->text, IPC_MAX_TEXT, "echo text", err,
		                 errcap);
	case IPC__ENVELOPE__BODY_IMAGE_SET_STATE:
		return check_hash(&e->image_set_state->hash, "hash", err,
		                  errcap);
	case IPC__ENVELOPE__BODY_UPLOAD_BEGIN:
		if (e->upload_begin->chunk_size > IPC_MAX_CHUNK_SIZE) {
			seterr(err, errcap, "chunk_size %u above %d",
			       e->upload_begin->chunk_size, IPC_MAX_CHUNK_SIZE);
			return -1;
		}
		return check_hash(&e->upload_begin->sha256, "sha256", err,
		                  errcap);
	case IPC__ENVELOPE__BODY_UPLOAD_CHUNK:
		if (e->upload_chunk->data.len > IPC_MAX_CHUNK_SIZE) {
			seterr(err, errcap, "chunk of %zu bytes above %d",
			       e->upload_chunk->data.len, IPC_MAX_CHUNK_SIZE);
			return -1;
		}
		return 0;
	case IPC__ENVELOPE__BODY_SMP_COMMAND:
		if (e->smp_command->payload.len > IPC_MAX_SMP_PAYLOAD) {
			seterr(err, errcap, "SMP payload of %zu bytes above %d",
			       e->smp_command->payload.len,
			       IPC_MAX_SMP_PAYLOAD);
			return -1;
		}
		return 0;
	case IPC__ENVELOPE__BODY_REPLY:
		return check_reply(e->reply, err, errcap);
	case IPC__ENVELOPE__BODY_LINK_STATE:
		return check_str(e->link_state->reason, IPC_MAX_ERROR,
		                 "link reason", err, errcap);
	case IPC__ENVELOPE__BODY_LOG:
		return check_str(e->log->msg, IPC_MAX_LOG, "log message", err,
		                 errcap);
	case IPC__ENVELOPE__BODY_IMAGE_STATE:
	case IPC__ENVELOPE__BODY_RESET:
	case IPC__ENVELOPE__BODY_PARAMS:
	case IPC__ENVELOPE__BODY_UPLOAD_ABORT:
	case IPC__ENVELOPE__BODY_UPLOAD_PROGRESS:
	case IPC__ENVELOPE__BODY_UPLOAD_CREDIT:
	case IPC__ENVELOPE__BODY_UPLOAD_REWIND:
		return 0;
	default:
		seterr(err, errcap, "no message body");
		return -1;
	}
}

Ipc__Envelope *
ipc_decode(const uint8_t *buf, size_t len, char *err, size_t errcap)
{
	Ipc__Envelope *env;

	if (len == 0) {
		seterr(err, errcap, "empty message");
		return NULL;
	}
	if (len > IPC_MAX_MSG) {
		seterr(err, errcap, "message of %zu bytes above %d", len,
		       IPC_MAX_MSG);
		return NULL;
	}
	if ((env = ipc__envelope__unpack(NULL, len, buf)) == NULL) {
		seterr(err, errcap, "not a protobuf envelope");
		return NULL;
	}
	if (check_body(env, err, errcap) == -1) {
		ipc__envelope__free_unpacked(env, NULL);
		return NULL;
	}
	return env;
}
