/*
 * The worker engine: everything a transport worker does besides moving
 * bytes on its link.  Here: IPC dispatch, the boards a worker process
 * serves, their links' life and the sandbox.  The SMP client is
 * engine_smp.c, the upload pipeline engine_upload.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "engine.h"
#include "engine_cmd.h"
#include "engine_int.h"
#include "ipc.h"
#include "log.h"
#include "sandbox.h"
#include "smp.h"
#include "xmalloc.h"

uint64_t
engine_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

uint64_t
engine_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* IPC output. */

void
engine_send(struct engine *e, Ipc__Envelope *env, uint64_t req_id,
            uint32_t board_id)
{
	env->request_id = req_id;
	env->board_id = board_id;
	if (e->h->ipc != NULL && ipc_send(e->h->ipc, env, -1) == -1)
		log_warnx("cannot send to the supervisor", "body=%d",
		          (int)env->body_case);
}

static void
engine_send_link_state(struct engine *e, bool up, const char *reason)
{
	Ipc__Envelope env;
	Ipc__LinkState ls;

	ipc__envelope__init(&env);
	ipc__link_state__init(&ls);
	ls.up = up;
	ls.reason = (char *)(uintptr_t)(reason != NULL ? reason : "");
	env.body_case = IPC__ENVELOPE__BODY_LINK_STATE;
	env.link_state = &ls;
	engine_send(e, &env, 0, e->board_id);
}

/* Reply to a request that is not (or cannot become) the current op. */
void
engine_reply_status(struct engine *e, uint64_t req_id, uint32_t board_id,
                    Ipc__Reply__Status status, const char *why)
{
	Ipc__Envelope env;
	Ipc__Reply r;

	ipc__envelope__init(&env);
	ipc__reply__init(&r);
	r.status = status;
	r.error = (char *)(uintptr_t)why;
	env.body_case = IPC__ENVELOPE__BODY_REPLY;
	env.reply = &r;
	engine_send(e, &env, req_id, board_id);
}

typedef void (*engine_handler)(struct engine *, const Ipc__Envelope *, int);
static void engine_finish(struct engine_host *h, int status);
static struct engine *engine_board_new(struct engine_host *h, void *ctx);
static void engine_open_links(struct engine_host *h);
static int engine_open_link(struct engine *e);
typedef void (*host_handler)(struct engine_host *, const Ipc__Envelope *, int);

/* Operations. */

static void
engine_op_clear(struct engine *e)
{
	free(e->op.text);
	engine_cmd_free(e->op.cmd);
	memset(&e->op, 0, sizeof(e->op));
	engine_upload_clear(e);
}

void
engine_op_reply(struct engine *e, Ipc__Reply *r)
{
	Ipc__Envelope env;

	if (e->op.kind == OP_NONE)
		return;
	ipc__envelope__init(&env);
	env.body_case = IPC__ENVELOPE__BODY_REPLY;
	env.reply = r;
	engine_send(e, &env, e->op.req_id, e->op.board_id);
	engine_pending_drop_all(e);
	engine_op_clear(e);
}

void
engine_op_fail(struct engine *e, Ipc__Reply__Status status, const char *fmt,
               ...)
{
	Ipc__Reply r;
	va_list ap;
	char buf[512];

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (e->op.kind != OP_NONE)
		log_info("operation failed", "request=%llu error=%s",
		         (unsigned long long)e->op.req_id, log_q(buf));
	ipc__reply__init(&r);
	r.status = status;
	r.error = buf;
	engine_op_reply(e, &r);
}

/* Accept a request as the current operation, or answer BUSY. */
bool
engine_op_take(struct engine *e, const Ipc__Envelope *env, enum op_kind kind)
{
	if (e->ops->needs_board && e->have_board &&
	    env->board_id != e->board_id) {
		engine_reply_status(
		    e, env->request_id, env->board_id,
		    IPC__REPLY__STATUS__BAD_REQUEST,
		    "this worker serves one board only (one BLE board per "
		    "adapter worker)");
		return false;
	}
	if (e->op.kind != OP_NONE) {
		engine_reply_status(
		    e, env->request_id, env->board_id, IPC__REPLY__STATUS__BUSY,
		    "another operation is running on this board");
		return false;
	}
	if (e->link == LINK_DOWN) {
		char why[300];

		snprintf(why, sizeof(why), "link down: %s", e->why);
		engine_reply_status(e, env->request_id, env->board_id,
		                    IPC__REPLY__STATUS__LINK_DOWN, why);
		return false;
	}
	e->op.kind = kind;
	e->op.req_id = env->request_id;
	e->op.board_id = env->board_id;
	return true;
}

/* The upload. */

/* IPC handlers, one per message. */

/* Boards an AddBoard named (the first exists before it is named). */
static size_t
host_named(const struct engine_host *h)
{
	return h->boards[0]->have_board ? h->nboards : 0;
}

/* Everything needed to open the links has arrived. */
static void
host_check_configured(struct engine_host *h)
{
	struct engine *e = h->boards[0];

	if (h->configured || h->cfg == NULL)
		return;
	if (h->multi > 0 ? host_named(h) < h->multi
	                 : (h->ops->needs_fd && h->link_fd == -1) ||
	                       (h->ops->needs_board && !e->have_board))
		return;
	h->configured = true;
	if (h->auto_open)
		engine_open_links(h);
}

/* Timeouts and SMP version from the configuration. */
static void
engine_apply_cfg(struct engine *e)
{
	const Ipc__LinkConfig *c = e->h->cfg;

	e->ver = c->smp_version == 1 ? SMP_V2 : SMP_V1;
	e->request_ms = c->request_timeout_ms != 0 ? (int)c->request_timeout_ms
	                                           : ENGINE_REQUEST_TIMEOUT_MS;
	e->erase_ms = c->erase_timeout_ms != 0 ? (int)c->erase_timeout_ms
	                                       : ENGINE_ERASE_TIMEOUT_MS;
	e->retries = c->retries != 0 ? c->retries : ENGINE_RETRIES;
}

static void
host_dispatch_configure(struct engine_host *h, const Ipc__Envelope *env, int fd)
{
	const Ipc__LinkConfig *l = env->configure->link;
	uint32_t boards = env->configure->boards;
	size_t n, i;
	uint8_t *buf;

	(void)fd;
	if (h->cfg != NULL) {
		log_warnx("second Configure ignored", NULL);
		return;
	}
	if (boards > 0 && h->ops->ctx_new == NULL) {
		log_errx("this worker serves one board, asked for several",
		         "role=%s boards=%u", h->ops->role, boards);
		engine_finish(h, 1);
		return;
	}
	if (boards > ENGINE_MAX_BOARDS) {
		log_errx("too many boards for one worker", "boards=%u max=%d",
		         boards, ENGINE_MAX_BOARDS);
		engine_finish(h, 1);
		return;
	}
	/* Keep our own copy: env is freed when this returns. */
	n = ipc__link_config__get_packed_size(l);
	buf = xmalloc(n + 1);
	ipc__link_config__pack(l, buf);
	h->cfg = ipc__link_config__unpack(NULL, n, buf);
	free(buf);
	if (h->cfg == NULL)
		fatalx("cannot copy the link configuration", NULL);
	log_setverbose(env->configure->verbose);
	h->multi = boards;
	for (i = 0; i < h->nboards; i++)
		engine_apply_cfg(h->boards[i]);
	host_check_configured(h);
}

static void
host_dispatch_link_fd(struct engine_host *h, const Ipc__Envelope *env, int fd)
{
	struct engine *e = h->boards[0];
	char why[256];

	if (!h->ops->needs_fd || fd == -1) {
		log_warnx("LinkFd without use or without a descriptor",
		          "role=%s", h->ops->role);
		if (fd != -1)
			close(fd);
		return;
	}
	free(h->link_path);
	h->link_path = xstrdup(env->link_fd->path);
	if (e->link == LINK_UNOPENED) {
		if (h->link_fd != -1)
			close(h->link_fd);
		h->link_fd = fd;
		host_check_configured(h);
		return;
	}
	if (e->link == LINK_UP)
		e->ops->close(e->ctx);
	if (e->ops->reopen(e->ctx, fd, why, sizeof(why)) == -1) {
		snprintf(e->why, sizeof(e->why), "%s", why);
		e->link = LINK_DOWN;
		engine_send_link_state(e, false, e->why);
		return;
	}
	log_info("link up again", "path=%s", log_q(h->link_path));
	e->link = LINK_UP;
	e->why[0] = '\0';
	/* The board may be another firmware now: ask again. */
	e->params_state = PARAMS_UNKNOWN;
	if (e->link_ev != NULL)
		event_free(e->link_ev);
	e->link_ev = NULL;
	engine_open_link(e);
}

/* A board of a worker that serves several: a link of its own. */
static void
host_add_multi(struct engine_host *h, const Ipc__Envelope *env)
{
	const char *addr = env->add_board->address;
	struct engine *e;
	size_t i;

	if (h->configured || host_named(h) >= h->multi) {
		log_errx("AddBoard past the boards announced", "board=%u",
		         env->board_id);
		engine_finish(h, 1);
		return;
	}
	for (i = 0; i < h->nboards; i++)
		if (h->boards[i]->have_board &&
		    h->boards[i]->board_id == env->board_id) {
			log_errx("AddBoard for a board already served",
			         "board=%u", env->board_id);
			engine_finish(h, 1);
			return;
		}
	if (addr == NULL || addr[0] == '\0') {
		log_errx("AddBoard without an address", "board=%u",
		         env->board_id);
		engine_finish(h, 1);
		return;
	}
	/* The first board takes the state engine_run() was given. */
	if (h->boards[0]->have_board)
		e = engine_board_new(h, h->ops->ctx_new());
	else
		e = h->boards[0];
	e->have_board = true;
	e->board_id = env->board_id;
	e->address = xstrdup(addr);
	host_check_configured(h);
}

static void
host_dispatch_add_board(struct engine_host *h, const Ipc__Envelope *env, int fd)
{
	struct engine *e = h->boards[0];

	(void)fd;
	if (h->multi > 0) {
		host_add_multi(h, env);
		return;
	}
	if (h->ops->add_board == NULL) {
		log_debug("AddBoard ignored: one board per link", "board=%u",
		          env->board_id);
		return;
	}
	/*
	 * One BLE board per worker.  Requests for another board are
	 * refused (engine_op_take), never run on the wrong board.
	 */
	if ((e->have_board && env->board_id != e->board_id) ||
	    h->ops->add_board(e->ctx, env->add_board->peer_name) == -1) {
		log_errx("second board on this worker refused",
		         "board=%u "
		         "peer=%s serving=%u",
		         env->board_id, log_q(env->add_board->peer_name),
		         e->board_id);
		return;
	}
	e->have_board = true;
	e->board_id = env->board_id;
	host_check_configured(h);
}

static void
engine_dispatch_echo(struct engine *e, const Ipc__Envelope *env, int fd)
{
	(void)fd;
	if (!engine_op_take(e, env, OP_ECHO))
		return;
	e->op.text = xstrdup(env->echo->text);
	engine_op_start(e);
}

static void
engine_dispatch_image_state(struct engine *e, const Ipc__Envelope *env, int fd)
{
	(void)fd;
	if (engine_op_take(e, env, OP_STATE_READ))
		engine_op_start(e);
}

static void
engine_dispatch_image_set_state(struct engine *e, const Ipc__Envelope *env,
                                int fd)
{
	const Ipc__ImageSetState *s = env->image_set_state;

	(void)fd;
	if (s->hash.len == 0 && !s->confirm) {
		engine_reply_status(e, env->request_id, env->board_id,
		                    IPC__REPLY__STATUS__BAD_REQUEST,
		                    "marking an image for test needs its hash");
		return;
	}
	if (!engine_op_take(e, env, OP_STATE_WRITE))
		return;
	e->op.has_hash = s->hash.len == SMP_HASH_LEN;
	if (e->op.has_hash)
		memcpy(e->op.hash, s->hash.data, SMP_HASH_LEN);
	e->op.confirm = s->confirm;
	engine_op_start(e);
}

static void
engine_dispatch_reset(struct engine *e, const Ipc__Envelope *env, int fd)
{
	(void)fd;
	if (engine_op_take(e, env, OP_RESET))
		engine_op_start(e);
}

static void
engine_dispatch_params(struct engine *e, const Ipc__Envelope *env, int fd)
{
	(void)fd;
	if (engine_op_take(e, env, OP_PARAMS))
		engine_op_start(e);
}

static void
engine_dispatch_smp_command(struct engine *e, const Ipc__Envelope *env, int fd)
{
	struct engine_cmd *c;
	char why[256];

	(void)fd;
	if ((c = engine_cmd_new(env->smp_command, why, sizeof(why))) == NULL) {
		engine_reply_status(e, env->request_id, env->board_id,
		                    IPC__REPLY__STATUS__BAD_REQUEST, why);
		return;
	}
	if (!engine_op_take(e, env, OP_CMD)) {
		engine_cmd_free(c);
		return;
	}
	e->op.cmd = c;
	engine_op_start(e);
}

/* What the worker as a whole handles. */
static const host_handler host_handlers[] = {
    [IPC__ENVELOPE__BODY_CONFIGURE] = host_dispatch_configure,
    [IPC__ENVELOPE__BODY_LINK_FD] = host_dispatch_link_fd,
    [IPC__ENVELOPE__BODY_ADD_BOARD] = host_dispatch_add_board,
};

/* What one board handles: the board the request names. */
static const engine_handler engine_handlers[] = {
    [IPC__ENVELOPE__BODY_ECHO] = engine_dispatch_echo,
    [IPC__ENVELOPE__BODY_IMAGE_STATE] = engine_dispatch_image_state,
    [IPC__ENVELOPE__BODY_IMAGE_SET_STATE] = engine_dispatch_image_set_state,
    [IPC__ENVELOPE__BODY_RESET] = engine_dispatch_reset,
    [IPC__ENVELOPE__BODY_PARAMS] = engine_dispatch_params,
    [IPC__ENVELOPE__BODY_UPLOAD_BEGIN] = engine_dispatch_upload_begin,
    [IPC__ENVELOPE__BODY_UPLOAD_CHUNK] = engine_dispatch_upload_chunk,
    [IPC__ENVELOPE__BODY_UPLOAD_ABORT] = engine_dispatch_upload_abort,
    [IPC__ENVELOPE__BODY_SMP_COMMAND] = engine_dispatch_smp_command,
};

static void
engine_finish(struct engine_host *h, int status)
{
	h->finished = true;
	h->exit_status = status;
	if (h->ipc != NULL) {
		ipc_free(h->ipc);
		h->ipc = NULL;
	}
	event_base_loopbreak(h->base);
}

/* The board a request names; NULL (answered) when this worker has none. */
static struct engine *
host_board(struct engine_host *h, const Ipc__Envelope *env)
{
	char why[96];
	size_t i;

	if (h->multi == 0)
		return h->boards[0];
	for (i = 0; i < h->nboards; i++)
		if (h->boards[i]->have_board &&
		    h->boards[i]->board_id == env->board_id)
			return h->boards[i];
	snprintf(why, sizeof(why), "board %u is not served by this worker",
	         env->board_id);
	engine_reply_status(h->boards[0], env->request_id, env->board_id,
	                    IPC__REPLY__STATUS__BAD_REQUEST, why);
	return NULL;
}

static void
engine_ipc_msg(struct ipc *ipc, const Ipc__Envelope *env, int fd, void *arg)
{
	struct engine_host *h = arg;
	size_t nh = sizeof(host_handlers) / sizeof(host_handlers[0]);
	size_t n = sizeof(engine_handlers) / sizeof(engine_handlers[0]);
	size_t c = (size_t)env->body_case;
	struct engine *e;

	(void)ipc;
	if ((c >= nh || host_handlers[c] == NULL) &&
	    (c >= n || engine_handlers[c] == NULL)) {
		/* Our supervisor sent what a worker never gets: a bug. */
		log_errx("unexpected message from the supervisor", "body=%d",
		         (int)env->body_case);
		if (fd != -1)
			close(fd);
		engine_finish(h, 1);
		return;
	}
	if (fd != -1 && env->body_case != IPC__ENVELOPE__BODY_LINK_FD) {
		log_warnx("descriptor with a message that takes none closed",
		          "body=%d", (int)env->body_case);
		close(fd);
		fd = -1;
	}
	if (c < nh && host_handlers[c] != NULL) {
		host_handlers[c](h, env, fd);
		return;
	}
	if ((e = host_board(h, env)) != NULL)
		engine_handlers[c](e, env, fd);
}

static void
engine_ipc_error(struct ipc *ipc, const char *reason, void *arg)
{
	struct engine_host *h = arg;
	bool closed = strcmp(reason, "peer closed") == 0;

	(void)ipc;
	if (closed)
		log_debug("supervisor closed the socket, exiting", NULL);
	else
		log_errx("bad message from the supervisor", "reason=%s",
		         log_q(reason));
	engine_finish(h, closed ? 0 : 1);
}

/* The link. */

static void
engine_link_read(evutil_socket_t fd, short what, void *arg)
{
	struct engine *e = arg;

	(void)fd;
	(void)what;
	if (e->link == LINK_UP && e->ops->read(e->ctx, e) == -1)
		engine_link_lost(e, "read failed or link closed");
}

static void
engine_link_lost_cb(evutil_socket_t fd, short what, void *arg)
{
	struct engine *e = arg;
	struct timeval tv = {1, 0};

	(void)fd;
	(void)what;
	if (e->link != LINK_UP)
		return;
	log_debug("link lost", "reason=%s", log_q(e->why));
	e->link = LINK_DOWN;
	if (e->link_ev != NULL) {
		event_free(e->link_ev);
		e->link_ev = NULL;
	}
	e->ops->close(e->ctx);
	engine_op_fail(e, IPC__REPLY__STATUS__LINK_DOWN, "link lost: %s",
	               e->why);
	engine_send_link_state(e, false, e->why);
	if (!e->ops->needs_fd)
		evtimer_add(e->retry_ev, &tv);
}

/*
 * Link loss is handled from the loop, not from inside a transport's read
 * or send, so no transport sees its own state torn down under it.
 */
void
engine_link_lost(struct engine *e, const char *why)
{
	if (e->link != LINK_UP)
		return;
	snprintf(e->why, sizeof(e->why), "%s", why);
	event_active(e->lost_ev, 0, 0);
}

static void
engine_link_retry(evutil_socket_t fd, short what, void *arg)
{
	struct engine *e = arg;
	struct timeval tv = {1, 0};
	char why[256];

	(void)fd;
	(void)what;
	if (e->link != LINK_DOWN || e->ops->needs_fd)
		return;
	if (e->ops->reopen(e->ctx, -1, why, sizeof(why)) == -1) {
		log_debug("reconnect failed", "reason=%s", log_q(why));
		evtimer_add(e->retry_ev, &tv);
		return;
	}
	e->params_state = PARAMS_UNKNOWN;
	e->link = LINK_UP;
	e->why[0] = '\0';
	engine_open_link(e);
}

/* Open the link from the configuration; 0, or -1 (reported as LinkState). */
static int
engine_open_link(struct engine *e)
{
	struct engine_host *h = e->h;
	Ipc__LinkConfig cfg;
	char why[256];
	int fd;

	if (e->link == LINK_UNOPENED) {
		why[0] = '\0';
		/* A board of several: the configuration with its address. */
		cfg = *h->cfg;
		if (e->address != NULL)
			cfg.address = e->address;
		if (e->ops->open(e->ctx, &cfg, h->link_fd, why, sizeof(why)) ==
		    -1) {
			h->link_fd = -1; /* the transport closed it */
			e->link = LINK_DOWN;
			snprintf(e->why, sizeof(e->why), "%s", why);
			log_errx("cannot open the link", "reason=%s",
			         log_q(e->why));
			engine_send_link_state(e, false, e->why);
			engine_op_fail(e, IPC__REPLY__STATUS__LINK_DOWN,
			               "link down: %s", e->why);
			if (!e->ops->needs_fd) {
				struct timeval tv = {1, 0};

				evtimer_add(e->retry_ev, &tv);
			}
			return -1;
		}
		h->link_fd = -1; /* the transport owns it now */
		e->link = LINK_UP;
	}
	/* (Re)watch the transport's descriptor. */
	if (e->link_ev != NULL)
		event_free(e->link_ev);
	e->link_ev = NULL;
	if ((fd = e->ops->fd(e->ctx)) != -1) {
		e->link_ev = event_new(e->base, fd, EV_READ | EV_PERSIST,
		                       engine_link_read, e);
		if (e->link_ev == NULL || event_add(e->link_ev, NULL) == -1)
			fatalx("cannot watch the link", NULL);
	}
	engine_send_link_state(e, true, NULL);
	if (e->op.kind != OP_NONE && !e->op.started)
		engine_op_start(e);
	return 0;
}

/* Every board's link (at the start, before the sandbox). */
static void
engine_open_links(struct engine_host *h)
{
	size_t i;

	for (i = 0; i < h->nboards; i++)
		engine_open_link(h->boards[i]);
}

/* Life cycle. */

static struct engine *
engine_board_new(struct engine_host *h, void *ctx)
{
	struct engine *e = xcalloc(1, sizeof(*e));

	e->h = h;
	e->base = h->base;
	e->ops = h->ops;
	e->ctx = ctx;
	e->link = LINK_UNOPENED;
	e->ver = SMP_V1;
	e->request_ms = ENGINE_REQUEST_TIMEOUT_MS;
	e->erase_ms = ENGINE_ERASE_TIMEOUT_MS;
	e->retries = ENGINE_RETRIES;
	e->lost_ev = event_new(h->base, -1, 0, engine_link_lost_cb, e);
	e->retry_ev = evtimer_new(h->base, engine_link_retry, e);
	if (e->lost_ev == NULL || e->retry_ev == NULL)
		fatalx("cannot create engine events", NULL);
	engine_upload_init(e);
	if (h->cfg != NULL)
		engine_apply_cfg(e);
	h->boards =
	    xreallocarray(h->boards, h->nboards + 1, sizeof(*h->boards));
	h->boards[h->nboards++] = e;
	return e;
}

static void
engine_board_free(struct engine *e, bool own_ctx)
{
	struct pending *p;

	engine_pending_drop_all(e);
	while ((p = e->spare) != NULL) {
		e->spare = p->next_spare;
		event_free(p->timer);
		free(p);
	}
	engine_op_clear(e);
	engine_upload_free(e);
	if (e->link == LINK_UP)
		e->ops->close(e->ctx);
	if (e->link_ev != NULL)
		event_free(e->link_ev);
	event_free(e->lost_ev);
	event_free(e->retry_ev);
	if (own_ctx && e->ops->ctx_free != NULL)
		e->ops->ctx_free(e->ctx);
	free(e->address);
	free(e);
}

/* The worker with its first board, which is returned. */
struct engine *
engine_new(struct event_base *base, const struct link_ops *ops, void *ctx,
           int auto_open)
{
	struct engine_host *h = xcalloc(1, sizeof(*h));

	h->base = base;
	h->ops = ops;
	h->auto_open = auto_open;
	h->link_fd = -1;
	return engine_board_new(h, ctx);
}

/* The whole worker, every board; e is any of them. */
void
engine_free(struct engine *e)
{
	struct engine_host *h;
	size_t i;

	if (e == NULL)
		return;
	h = e->h;
	/* The first board's state belongs to engine_run()'s caller. */
	for (i = 0; i < h->nboards; i++)
		engine_board_free(h->boards[i], i > 0);
	free(h->boards);
	if (h->link_fd != -1)
		close(h->link_fd);
	if (h->ipc != NULL)
		ipc_free(h->ipc);
	if (h->cfg != NULL)
		ipc__link_config__free_unpacked(h->cfg, NULL);
	free(h->link_path);
	free(h);
}

int
engine_connect(struct engine *e, int ipc_fd)
{
	struct engine_host *h = e->h;
	Ipc__Envelope env;
	Ipc__Hello hello;

	h->ipc = ipc_new(h->base, ipc_fd, engine_ipc_msg, engine_ipc_error, h);
	if (h->ipc == NULL)
		return -1;
	ipc__envelope__init(&env);
	ipc__hello__init(&hello);
	hello.protocol_version = IPC_PROTOCOL_VERSION;
	hello.role = (char *)(uintptr_t)h->ops->role;
	hello.pid = (uint32_t)getpid();
	env.body_case = IPC__ENVELOPE__BODY_HELLO;
	env.hello = &hello;
	engine_send(e, &env, 0, 0);
	return 0;
}

int
engine_configured(const struct engine *e)
{
	return e->h->configured;
}

int
engine_finished(const struct engine *e, int *status)
{
	if (e->h->finished && status != NULL)
		*status = e->h->exit_status;
	return e->h->finished;
}

/*
 * A test hook: after the sandbox is up, attempt a call the sandbox forbids.
 * It can only make the worker kill itself, so it is harmless to keep.
 */
static void
engine_test_forbidden(void)
{
	const char *what = getenv("RDFM_WORKER_TEST_FORBIDDEN");
	int fd;

	if (what == NULL || strcmp(what, "open") != 0)
		return;
	log_info("test hook: creating a file inside the sandbox", NULL);
	fd = open("rdfm-sandbox-test", O_WRONLY | O_CREAT | O_TRUNC, 0600);
	log_errx("test hook: the sandbox let a file be created",
	         "fd=%d errno=%d", fd, fd == -1 ? errno : 0);
	exit(3);
}

int
engine_run(const struct link_ops *ops, void *ctx, int argc, char **argv)
{
	struct sandbox_opts sb = {.user = "nobody", .chroot_dir = "/var/empty"};
	struct event_base *base;
	struct engine *e;
	char ident[32];
	int ch, verbose = 0, status = 0;

	snprintf(ident, sizeof(ident), "worker-%s", ops->role);
	log_init(0, ident);
	/*
	 * A stop is the supervisor's to run: Ctrl-C on a terminal or
	 * systemd's SIGTERM to the whole service reaches us too, and an
	 * upload cut here would be a failure instead of a stop at a packet
	 * boundary.  We exit when the supervisor closes our socket.
	 */
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	while ((ch = getopt(argc, argv, "vqu:C:")) != -1) {
		switch (ch) {
		case 'v':
			verbose = 1;
			break;
		case 'q': /* the operator's command: errors only */
			log_setlevel(LOG_LEVEL_ERROR);
			break;
		case 'u':
			sb.user = optarg;
			break;
		case 'C':
			sb.chroot_dir = optarg;
			break;
		default:
			fatalx(
			    "usage: worker [-v|-q] [-u user] [-C chroot_dir]",
			    NULL);
		}
	}
	log_setverbose(verbose);
	sb.flags = ops->sandbox_flags;
	if ((base = event_base_new()) == NULL)
		fatalx("cannot create the event loop", NULL);
	e = engine_new(base, ops, ctx, 0);

	/* 1. The supervisor: Hello, then Configure (and LinkFd). */
	if (engine_connect(e, IPC_WORKER_FD) == -1)
		fatal("no IPC socket on fd 3", NULL);
	while (!engine_configured(e) && !engine_finished(e, &status))
		event_base_loop(base, EVLOOP_ONCE);
	if (!engine_finished(e, &status)) {
		/* 2. The links, while we may still open things. */
		engine_open_links(e->h);
		/* 3. chroot, drop user, no_new_privs, seccomp. */
		if (sandbox_enter(&sb) == -1)
			fatalx("cannot enter the sandbox", NULL);
		engine_test_forbidden();
		/* 4. Serve until the supervisor closes the socket. */
		while (!engine_finished(e, &status))
			if (event_base_loop(base, EVLOOP_ONCE) == -1)
				fatalx("event loop failed", NULL);
	}
	engine_free(e);
	event_base_free(base);
	return status;
}
