/*
 * Spawning and watching the transport workers: fork + exec with the IPC
 * socket on fd 3, the version handshake, serial descriptors handed over,
 * replies routed by request id, restarts with backoff after a death, a hang
 * or a protocol violation.  One worker's trouble never touches another.
 */
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "ipc.h"
#include "log.h"
#include "util.h"
#include "workers.h"
#include "xmalloc.h"

#define HELLO_TIMEOUT_MS   10000
#define RESTART_MIN_MS     500
#define RESTART_MAX_MS     30000
#define STABLE_MS          30000 /* up this long: the next restart is quick */
#define REOPEN_MIN_MS      100
#define REOPEN_MAX_MS      2000
#define WATCHDOG_SLACK_MS  5000
#define STOP_GRACE_MS      2000
#define DEFAULT_REQUEST_MS 5000
#define DEFAULT_ERASE_MS   60000

enum worker_state {
	WS_DOWN,     /* not running, a restart is scheduled */
	WS_HELLO,    /* started, waiting for Hello */
	WS_LINKWAIT, /* serial: handshake done, device not handed over yet */
	WS_READY,
	WS_STOPPED, /* worker_stop(): waiting to be reaped, then freed */
};

struct wreq {
	TAILQ_ENTRY(wreq) entry;
	uint64_t id;
	uint32_t board_id;
	worker_msg_cb cb;
	void *arg;
	bool upload;
	uint8_t *packed; /* while queued: the request to send */
	size_t packed_len;
	uint64_t since_ms; /* queued at, or last message about it */
};
TAILQ_HEAD(wreq_list, wreq);

struct board {
	TAILQ_ENTRY(board) entry;
	uint32_t id;
	char *peer_name;
	char *address; /* a multi worker's board */
};

/* What uploads learnt about one board's capacity (worker_upload_*). */
struct learnt {
	TAILQ_ENTRY(learnt) entry;
	uint32_t board_id;
	struct worker_learnt l;
};

/* Ties an ipc to its worker; outlives the worker's use of it (see gc). */
struct wipc {
	TAILQ_ENTRY(wipc) entry;
	struct ipc *ipc;
	struct worker *w;
};

struct worker {
	TAILQ_ENTRY(worker) entry;
	struct workers *ws;
	char *name;
	uint64_t drop_expected_until; /* a reset was sent: the link may go */
	char *exe;
	struct worker_link link; /* strings owned */
	TAILQ_HEAD(, board) boards;
	size_t nboards;
	bool first_start; /* multi: boards are still being added */
	/* Outlives the worker's processes: a restarted one starts from it. */
	TAILQ_HEAD(, learnt) learnts;

	enum worker_state state;
	pid_t pid;
	struct wipc *wipc;
	uint64_t started_ms, ready_ms;
	unsigned int restarts;
	unsigned int backoff_ms;
	struct event *restart_ev;
	unsigned int tick; /* the watchdog's round that last looked at it */

	int link_fd;
	unsigned int reopen_ms;
	struct event *reopen_ev;
	char link_err[160];
	char kill_reason[160]; /* why we ended it, until it is reaped */

	struct wreq_list queued;
	struct wreq_list inflight;
	uint64_t next_id;
};

struct workers {
	struct event_base *base;
	struct event *sigchld_ev;
	struct event *gc_ev;
	struct event *watchdog_ev; /* once a second, for every worker */
	unsigned int tick;
	TAILQ_HEAD(, worker) list;
	TAILQ_HEAD(, wipc) garbage;
};

static void worker_start(struct worker *);
static void worker_kill(struct worker *, const char *);
static void worker_open_link(struct worker *);

static struct timeval
tv_ms(unsigned int ms)
{
	struct timeval tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	return tv;
}

const char *
worker_status_name(Ipc__Reply__Status s)
{
	switch (s) {
	case IPC__REPLY__STATUS__OK:
		return "ok";
	case IPC__REPLY__STATUS__BOARD_ERROR:
		return "board error";
	case IPC__REPLY__STATUS__TIMEOUT:
		return "no answer";
	case IPC__REPLY__STATUS__LINK_DOWN:
		return "link down";
	case IPC__REPLY__STATUS__PROTOCOL:
		return "protocol error";
	case IPC__REPLY__STATUS__BAD_REQUEST:
		return "bad request";
	case IPC__REPLY__STATUS__ABORTED:
		return "aborted";
	case IPC__REPLY__STATUS__BUSY:
		return "board busy";
	default:
		return "unknown status";
	}
}

/* The file name of the executable for a kind: "rdfm-mcumgr-worker-udp". */
static const char *
worker_exe_name(enum worker_kind kind)
{
	switch (kind) {
	case WORKER_SERIAL:
		return "rdfm-mcumgr-worker-serial";
	case WORKER_UDP:
		return "rdfm-mcumgr-worker-udp";
	case WORKER_BLE:
		return "rdfm-mcumgr-worker-ble";
	}
	return "rdfm-mcumgr-worker-unknown";
}

static const char *
kind_role(enum worker_kind kind)
{
	switch (kind) {
	case WORKER_SERIAL:
		return "serial";
	case WORKER_UDP:
		return "udp";
	case WORKER_BLE:
		return "ble";
	}
	return "?";
}

/* The libexec directory as installed beside bin/: PREFIX/libexec/... */
#define LIBEXEC_FROM_BIN "../libexec/rdfm-mcumgr"

/* dir/name when it is executable; NULL otherwise. */
static char *
exe_in(const char *dir, const char *name)
{
	char *path;

	xasprintf(&path, "%s/%s", dir, name);
	if (access(path, X_OK) == 0)
		return path;
	free(path);
	return NULL;
}

/*
 * Found from where the client itself is (/proc/self/exe): next to it (the
 * build tree), then PREFIX/libexec/rdfm-mcumgr for the PREFIX it is
 * installed under, whatever PREFIX and DESTDIR were at build time; then
 * the LIBEXECDIR it was built for.
 */
char *
workers_find_exe(enum worker_kind kind, char *err, size_t errcap)
{
	const char *name = worker_exe_name(kind), *dir;
	char self[PATH_MAX], *slash, *path, *rel;
	ssize_t n;

	/* Tests point this at stand-in workers; systemd units never set it. */
	if ((dir = getenv("RDFM_MCUMGR_WORKER_DIR")) != NULL && *dir != '\0') {
		if ((path = exe_in(dir, name)) != NULL)
			return path;
		snprintf(err, errcap,
		         "worker executable %s not found in "
		         "$RDFM_MCUMGR_WORKER_DIR (%s)",
		         name, dir);
		return NULL;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		if ((slash = strrchr(self, '/')) != NULL) {
			*slash = '\0';
			if ((path = exe_in(self, name)) != NULL)
				return path;
			xasprintf(&rel, "%s/" LIBEXEC_FROM_BIN, self);
			path = exe_in(rel, name);
			free(rel);
			if (path != NULL)
				return path;
		}
	}
	if ((path = exe_in(LIBEXECDIR, name)) != NULL)
		return path;
	snprintf(
	    err, errcap,
	    "worker executable %s not found next to %s, in %s/" LIBEXEC_FROM_BIN
	    " nor in %s",
	    name, n > 0 ? self : "this program", n > 0 ? self : "its directory",
	    LIBEXECDIR);
	return NULL;
}

static void
wreq_free(struct wreq *r)
{
	free(r->packed);
	free(r);
}

static struct wreq *
find_req(struct wreq_list *l, uint64_t id)
{
	struct wreq *r;

	TAILQ_FOREACH(r, l, entry)
	{
		if (r->id == id)
			return r;
	}
	return NULL;
}

/* Tell a request's owner it failed without an answer from the worker. */
static void
fail_req(struct wreq *r, const char *reason)
{
	Ipc__Envelope env = IPC__ENVELOPE__INIT;
	Ipc__Reply reply;

	ipc__reply__init(&reply);
	reply.status = IPC__REPLY__STATUS__LINK_DOWN;
	reply.error = (char *)(uintptr_t)reason;
	env.request_id = r->id;
	env.board_id = r->board_id;
	env.body_case = IPC__ENVELOPE__BODY_REPLY;
	env.reply = &reply;
	if (r->cb != NULL)
		r->cb(&env, r->arg);
	wreq_free(r);
}

/*
 * Fail every request of a worker.  The lists are detached first: a callback
 * may well make a new request (an upload resuming), which must wait for the
 * next worker rather than be failed here too.
 */
static void
fail_all(struct worker *w, const char *reason)
{
	struct wreq_list l;
	struct wreq *r;

	TAILQ_INIT(&l);
	TAILQ_CONCAT(&l, &w->inflight, entry);
	TAILQ_CONCAT(&l, &w->queued, entry);
	while ((r = TAILQ_FIRST(&l)) != NULL) {
		TAILQ_REMOVE(&l, r, entry);
		fail_req(r, reason);
	}
}

/*
 * The ipc is freed from the loop, never from inside one of its own
 * callbacks; until then messages it still delivers are ignored.
 */
static void
drop_ipc(struct worker *w)
{
	struct workers *ws = w->ws;
	struct timeval zero = {0, 0};

	if (w->wipc == NULL)
		return;
	w->wipc->w = NULL;
	TAILQ_INSERT_TAIL(&ws->garbage, w->wipc, entry);
	w->wipc = NULL;
	event_add(ws->gc_ev, &zero);
}

static void
gc_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct workers *ws = arg;
	struct wipc *h;

	(void)fd;
	(void)ev;
	while ((h = TAILQ_FIRST(&ws->garbage)) != NULL) {
		TAILQ_REMOVE(&ws->garbage, h, entry);
		ipc_free(h->ipc);
		free(h);
	}
}

static void
close_link(struct worker *w)
{
	if (w->link_fd != -1) {
		close(w->link_fd);
		w->link_fd = -1;
	}
	if (w->reopen_ev != NULL)
		event_del(w->reopen_ev);
}

static int
send_env(struct worker *w, const Ipc__Envelope *env, int pass_fd)
{
	if (w->wipc == NULL)
		return -1;
	return ipc_send(w->wipc->ipc, env, pass_fd);
}

static void
send_queued(struct worker *w)
{
	Ipc__Envelope *env;
	struct wreq *r;

	while ((r = TAILQ_FIRST(&w->queued)) != NULL) {
		TAILQ_REMOVE(&w->queued, r, entry);
		env = ipc__envelope__unpack(NULL, r->packed_len, r->packed);
		if (env == NULL || send_env(w, env, -1) == -1) {
			if (env != NULL)
				ipc__envelope__free_unpacked(env, NULL);
			fail_req(r, "cannot send the request to the worker");
			continue;
		}
		ipc__envelope__free_unpacked(env, NULL);
		free(r->packed);
		r->packed = NULL;
		r->since_ms = now_ms();
		TAILQ_INSERT_TAIL(&w->inflight, r, entry);
	}
}

static void
set_ready(struct worker *w)
{
	w->state = WS_READY;
	w->ready_ms = now_ms();
	log_debug("worker ready", "worker=%s pid=%d restarts=%u", w->name,
	          (int)w->pid, w->restarts);
	send_queued(w);
}

static void
send_add_board(struct worker *w, const struct board *b)
{
	Ipc__Envelope env = IPC__ENVELOPE__INIT;
	Ipc__AddBoard ab;

	ipc__add_board__init(&ab);
	ab.peer_name = b->peer_name;
	if (b->address != NULL)
		ab.address = b->address;
	env.board_id = b->id;
	env.body_case = IPC__ENVELOPE__BODY_ADD_BOARD;
	env.add_board = &ab;
	if (send_env(w, &env, -1) == -1)
		worker_kill(w, "cannot send AddBoard");
}

static void
send_configure(struct worker *w)
{
	Ipc__Envelope env = IPC__ENVELOPE__INIT;
	Ipc__Configure cf = IPC__CONFIGURE__INIT;
	Ipc__LinkConfig lc;
	const struct worker_link *l = &w->link;

	ipc__link_config__init(&lc);
	switch (l->kind) {
	case WORKER_SERIAL:
		lc.kind = IPC__LINK_CONFIG__KIND__SERIAL;
		break;
	case WORKER_UDP:
		lc.kind = IPC__LINK_CONFIG__KIND__UDP;
		break;
	case WORKER_BLE:
		lc.kind = IPC__LINK_CONFIG__KIND__BLE;
		break;
	}
	lc.baud = l->baud;
	lc.mtu = l->mtu;
	lc.line_max = l->line_max;
	if (l->address != NULL)
		lc.address = (char *)(uintptr_t)l->address;
	lc.device_index = l->device_index;
	if (l->att_socket != NULL)
		lc.att_socket = (char *)(uintptr_t)l->att_socket;
	lc.smp_version = l->smp_version;
	lc.request_timeout_ms = l->request_timeout_ms;
	lc.erase_timeout_ms = l->erase_timeout_ms;
	lc.retries = l->retries;
	cf.link = &lc;
	cf.verbose = log_getverbose();
	if (l->multi)
		cf.boards = (uint32_t)w->nboards;
	env.body_case = IPC__ENVELOPE__BODY_CONFIGURE;
	env.configure = &cf;
	if (send_env(w, &env, -1) == -1)
		worker_kill(w, "cannot send Configure");
}

/* --- Serial devices: opened here, used there. --- */

static void
schedule_reopen(struct worker *w, const char *why)
{
	struct timeval tv;

	if (strcmp(why, w->link_err) != 0) {
		log_warnx("serial device not available, retrying",
		          "worker=%s device=%s reason=%s", w->name,
		          log_q(w->link.device), log_q(why));
		snprintf(w->link_err, sizeof(w->link_err), "%s", why);
	}
	tv = tv_ms(w->reopen_ms);
	event_add(w->reopen_ev, &tv);
	w->reopen_ms =
	    w->reopen_ms * 2 > REOPEN_MAX_MS ? REOPEN_MAX_MS : w->reopen_ms * 2;
}

static void
reopen_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	worker_open_link(arg);
}

/*
 * Open the tty without becoming its controlling process and take it
 * exclusively (TIOCEXCL keeps other opens out, flock other instances of
 * us, root included), then hand it to the worker.  While the device is
 * absent (a CDC-ACM board re-enumerating after a reset) retry with backoff.
 */
static void
worker_open_link(struct worker *w)
{
	Ipc__Envelope env = IPC__ENVELOPE__INIT;
	Ipc__LinkFd lf;
	char why[160];
	int fd;

	ipc__link_fd__init(&lf);
	if (w->wipc == NULL || w->state == WS_STOPPED)
		return;
	close_link(w);
	fd = open(w->link.device, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd == -1) {
		snprintf(why, sizeof(why), "cannot open: %s", strerror(errno));
		schedule_reopen(w, why);
		return;
	}
	if (ioctl(fd, TIOCEXCL) == -1) {
		snprintf(why, sizeof(why), "not a terminal: %s",
		         strerror(errno));
		close(fd);
		schedule_reopen(w, why);
		return;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		snprintf(why, sizeof(why), "in use by another process: %s",
		         strerror(errno));
		close(fd);
		schedule_reopen(w, why);
		return;
	}
	lf.path = (char *)(uintptr_t)w->link.device;
	env.body_case = IPC__ENVELOPE__BODY_LINK_FD;
	env.link_fd = &lf;
	if (send_env(w, &env, fd) == -1) {
		close(fd);
		worker_kill(w, "cannot send the serial descriptor");
		return;
	}
	/* Kept open: the lock is ours while no worker holds the device. */
	w->link_fd = fd;
	w->reopen_ms = REOPEN_MIN_MS;
	w->link_err[0] = '\0';
	log_debug("serial device handed over", "worker=%s device=%s", w->name,
	          log_q(w->link.device));
	if (w->state == WS_LINKWAIT)
		set_ready(w);
}

/* --- Messages from the worker. --- */

static void
dispatch_hello(struct worker *w, const Ipc__Envelope *env)
{
	const Ipc__Hello *h = env->hello;
	struct board *b;
	char why[160];

	if (w->state != WS_HELLO) {
		worker_kill(w, "second Hello");
		return;
	}
	if (h->protocol_version != IPC_PROTOCOL_VERSION) {
		snprintf(why, sizeof(why),
		         "IPC protocol version %u, expected "
		         "%u",
		         h->protocol_version, IPC_PROTOCOL_VERSION);
		worker_kill(w, why);
		return;
	}
	if (strcmp(h->role, kind_role(w->link.kind)) != 0) {
		snprintf(why, sizeof(why), "role %s, expected %s", h->role,
		         kind_role(w->link.kind));
		worker_kill(w, why);
		return;
	}
	if ((pid_t)h->pid != w->pid) {
		snprintf(why, sizeof(why), "Hello from pid %u, expected %d",
		         h->pid, (int)w->pid);
		worker_kill(w, why);
		return;
	}
	send_configure(w);
	if (w->wipc == NULL)
		return;
	TAILQ_FOREACH(b, &w->boards, entry)
	send_add_board(w, b);
	if (w->link.kind == WORKER_SERIAL) {
		w->state = WS_LINKWAIT;
		w->reopen_ms = REOPEN_MIN_MS;
		worker_open_link(w);
	} else
		set_ready(w);
}

static void
dispatch_reply(struct worker *w, const Ipc__Envelope *env)
{
	struct wreq *r;

	if ((r = find_req(&w->inflight, env->request_id)) == NULL) {
		log_debug("reply for a forgotten request", "worker=%s id=%llu",
		          w->name, (unsigned long long)env->request_id);
		return;
	}
	TAILQ_REMOVE(&w->inflight, r, entry);
	if (r->cb != NULL)
		r->cb(env, r->arg);
	wreq_free(r);
}

/* Credit, progress and rewind: events of a running upload. */
static void
dispatch_upload_event(struct worker *w, const Ipc__Envelope *env)
{
	struct wreq *r;

	if ((r = find_req(&w->inflight, env->request_id)) == NULL)
		return;
	r->since_ms = now_ms();
	if (r->cb != NULL)
		r->cb(env, r->arg);
}

static void
dispatch_link_state(struct worker *w, const Ipc__Envelope *env)
{
	const Ipc__LinkState *ls = env->link_state;

	if (ls->up) {
		log_debug("link up", "worker=%s board=%u", w->name,
		          env->board_id);
		return;
	}
	if (now_ms() < w->drop_expected_until)
		log_info("link down while the board resets",
		         "worker=%s board=%u reason=%s", w->name, env->board_id,
		         log_q(ls->reason));
	else
		log_warnx("link down", "worker=%s board=%u reason=%s", w->name,
		          env->board_id, log_q(ls->reason));
	if (w->link.kind == WORKER_SERIAL && w->state == WS_READY) {
		w->reopen_ms = REOPEN_MIN_MS;
		worker_open_link(w);
	}
}

static void
dispatch_log(struct worker *w, const Ipc__Envelope *env)
{
	const Ipc__Log *l = env->log;

	switch (l->level) {
	case LOG_LEVEL_DEBUG:
		log_debug(l->msg, "worker=%s", w->name);
		break;
	case LOG_LEVEL_INFO:
		log_info(l->msg, "worker=%s", w->name);
		break;
	default:
		log_warnx(l->msg, "worker=%s", w->name);
		break;
	}
}

static void
on_msg(struct ipc *ipc, const Ipc__Envelope *env, int fd, void *arg)
{
	struct wipc *h = arg;
	struct worker *w = h->w;

	(void)ipc;
	if (fd != -1)
		close(fd); /* workers have no business sending descriptors */
	if (w == NULL)
		return;
	if (fd != -1) {
		worker_kill(w, "sent a descriptor");
		return;
	}
	if (w->state == WS_HELLO &&
	    env->body_case != IPC__ENVELOPE__BODY_HELLO) {
		worker_kill(w, "first message is not Hello");
		return;
	}
	switch (env->body_case) {
	case IPC__ENVELOPE__BODY_HELLO:
		dispatch_hello(w, env);
		break;
	case IPC__ENVELOPE__BODY_REPLY:
		dispatch_reply(w, env);
		break;
	case IPC__ENVELOPE__BODY_UPLOAD_PROGRESS:
	case IPC__ENVELOPE__BODY_UPLOAD_CREDIT:
	case IPC__ENVELOPE__BODY_UPLOAD_REWIND:
		dispatch_upload_event(w, env);
		break;
	case IPC__ENVELOPE__BODY_LINK_STATE:
		dispatch_link_state(w, env);
		break;
	case IPC__ENVELOPE__BODY_LOG:
		dispatch_log(w, env);
		break;
	default:
		worker_kill(w, "sent a message only the supervisor sends");
		break;
	}
}

static void
on_error(struct ipc *ipc, const char *reason, void *arg)
{
	struct wipc *h = arg;
	struct worker *w = h->w;

	(void)ipc;
	if (w == NULL)
		return;
	worker_kill(w, reason);
}

/* --- Life and death. --- */

/*
 * End a worker that misbehaved or stopped answering: its requests fail now,
 * the restart follows when SIGCHLD says it is gone.
 */
static void
worker_kill(struct worker *w, const char *why)
{
	if (w->pid == -1 || w->kill_reason[0] != '\0')
		return;
	log_warnx("ending worker", "worker=%s pid=%d reason=%s", w->name,
	          (int)w->pid, log_q(why));
	snprintf(w->kill_reason, sizeof(w->kill_reason), "%s", why);
	kill(w->pid, SIGKILL);
	drop_ipc(w);
	close_link(w);
	/* Requests made until it is reaped wait for the next worker. */
	if (w->state != WS_STOPPED)
		w->state = WS_DOWN;
}

static void
restart_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct worker *w = arg;

	(void)fd;
	(void)ev;
	if (w->first_start) {
		/* Every board added by now is the worker's. */
		w->first_start = false;
		worker_start(w);
		return;
	}
	w->restarts++;
	log_info("restarting worker", "worker=%s attempt=%u", w->name,
	         w->restarts);
	worker_start(w);
}

static void
worker_free(struct worker *w)
{
	struct board *b;
	struct learnt *l;

	TAILQ_REMOVE(&w->ws->list, w, entry);
	drop_ipc(w);
	close_link(w);
	fail_all(w, "worker stopped");
	fail_all(w, "worker stopped"); /* what the callbacks made meanwhile */
	while ((b = TAILQ_FIRST(&w->boards)) != NULL) {
		TAILQ_REMOVE(&w->boards, b, entry);
		free(b->peer_name);
		free(b->address);
		free(b);
	}
	while ((l = TAILQ_FIRST(&w->learnts)) != NULL) {
		TAILQ_REMOVE(&w->learnts, l, entry);
		free(l);
	}
	event_free(w->restart_ev);
	event_free(w->reopen_ev);
	free(w->name);
	free(w->exe);
	free((char *)(uintptr_t)w->link.device);
	free((char *)(uintptr_t)w->link.address);
	free((char *)(uintptr_t)w->link.att_socket);
	free((char *)(uintptr_t)w->link.user);
	free((char *)(uintptr_t)w->link.chroot_dir);
	free(w);
}

static void
describe_status(int status, char *buf, size_t cap)
{
	if (WIFEXITED(status))
		snprintf(buf, cap, "exited with status %d",
		         WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, cap, "killed by signal %d (%s)", WTERMSIG(status),
		         strsignal(WTERMSIG(status)));
	else
		snprintf(buf, cap, "status 0x%x", status);
}

static void
worker_reaped(struct worker *w, int status)
{
	char how[96], reason[512];
	unsigned int delay;
	struct timeval tv;

	describe_status(status, how, sizeof(how));
	w->pid = -1;
	drop_ipc(w);
	close_link(w);
	if (w->state == WS_STOPPED) {
		worker_free(w);
		return;
	}
	snprintf(reason, sizeof(reason), "worker %s %s%s%s", w->name, how,
	         w->kill_reason[0] ? "; " : "", w->kill_reason);
	fail_all(w, reason);
	if (w->ready_ms != 0 && now_ms() - w->ready_ms >= STABLE_MS)
		w->backoff_ms = RESTART_MIN_MS;
	delay = w->backoff_ms;
	w->backoff_ms = delay * 2 > RESTART_MAX_MS ? RESTART_MAX_MS : delay * 2;
	w->state = WS_DOWN;
	log_warnx("worker died, restarting",
	          "worker=%s status=%s "
	          "restart_in_ms=%u",
	          w->name, log_q(how), delay);
	tv = tv_ms(delay);
	event_add(w->restart_ev, &tv);
}

static void
sigchld_cb(evutil_socket_t sig, short ev, void *arg)
{
	struct workers *ws = arg;
	struct worker *w;
	pid_t pid;
	int status;

	(void)sig;
	(void)ev;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		TAILQ_FOREACH(w, &ws->list, entry)
		{
			if (w->pid == pid)
				break;
		}
		if (w != NULL)
			worker_reaped(w, status);
		else
			log_debug("reaped an unknown child", "pid=%d",
			          (int)pid);
	}
}

static unsigned int
req_limit_ms(const struct worker *w, const struct wreq *r)
{
	unsigned int req = w->link.request_timeout_ms
	                       ? w->link.request_timeout_ms
	                       : DEFAULT_REQUEST_MS;
	unsigned int erase = w->link.erase_timeout_ms ? w->link.erase_timeout_ms
	                                              : DEFAULT_ERASE_MS;
	unsigned int tries = w->link.retries + 1;

	if (r->upload)
		return (erase + req) * tries + WATCHDOG_SLACK_MS;
	return req * tries + WATCHDOG_SLACK_MS;
}

/*
 * A worker that never said Hello, or a request far past any deadline the
 * worker itself should have enforced, means the worker is stuck: kill it.
 * Requests that waited too long for a worker (the device absent, restarts
 * failing) fail with LINK_DOWN.  Returns true when it failed one: its
 * callback may have started or stopped workers.
 */
static bool
watchdog_check(struct worker *w, uint64_t now)
{
	struct wreq *r;
	char why[256];

	if (w->pid != -1 && w->state == WS_HELLO &&
	    now - w->started_ms > HELLO_TIMEOUT_MS) {
		worker_kill(w, "no Hello from the worker");
		return false;
	}
	TAILQ_FOREACH(r, &w->inflight, entry)
	{
		if (now - r->since_ms > req_limit_ms(w, r)) {
			snprintf(why, sizeof(why),
			         "watchdog: request %llu "
			         "silent for %llu ms",
			         (unsigned long long)r->id,
			         (unsigned long long)(now - r->since_ms));
			worker_kill(w, why);
			return false;
		}
	}
	TAILQ_FOREACH(r, &w->queued, entry)
	{
		if (now - r->since_ms > req_limit_ms(w, r)) {
			TAILQ_REMOVE(&w->queued, r, entry);
			snprintf(why, sizeof(why),
			         "worker %s not available%s%s", w->name,
			         w->link_err[0] ? ": " : "", w->link_err);
			fail_req(r, why);
			return true;
		}
	}
	return false;
}

/*
 * Once a second, one timer for every worker (a timer each would wake an
 * idle daemon a thousand times a second).  After a callback ran, the
 * list is walked again from the start, skipping the workers this round
 * has seen.
 */
static void
watchdog_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct workers *ws = arg;
	struct worker *w;
	uint64_t now = now_ms();
	bool again;

	(void)fd;
	(void)ev;
	ws->tick++;
	do {
		again = false;
		TAILQ_FOREACH(w, &ws->list, entry)
		{
			if (w->tick == ws->tick)
				continue;
			w->tick = ws->tick;
			if (watchdog_check(w, now)) {
				again = true;
				break;
			}
		}
	} while (again);
}

/* The child: the socket on fd 3, nothing else inherited but stdio. */
static void __attribute__((noreturn))
exec_worker(const struct worker *w, int fd)
{
	const char *exe = w->exe;
	char *argv[8];
	sigset_t none;
	char msg[512];
	int n, argc = 0;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGCHLD, SIG_DFL);
	if (fd == IPC_WORKER_FD) {
		if (fcntl(fd, F_SETFD, 0) == -1)
			_exit(127);
	} else if (dup2(fd, IPC_WORKER_FD) == -1)
		_exit(127);
	/* Anything a library opened without O_CLOEXEC stays behind. */
	if (close_range(IPC_WORKER_FD + 1, ~0U, CLOSE_RANGE_CLOEXEC) == -1) {
		for (n = IPC_WORKER_FD + 1; n < 1024; n++)
			fcntl(n, F_SETFD, FD_CLOEXEC);
	}
	argv[argc++] = w->exe;
	if (log_getverbose())
		argv[argc++] = (char *)(uintptr_t) "-v";
	else if (log_getlevel() > LOG_LEVEL_INFO)
		argv[argc++] = (char *)(uintptr_t) "-q";
	if (w->link.user != NULL) {
		argv[argc++] = (char *)(uintptr_t) "-u";
		argv[argc++] = (char *)(uintptr_t)w->link.user;
	}
	if (w->link.chroot_dir != NULL) {
		argv[argc++] = (char *)(uintptr_t) "-C";
		argv[argc++] = (char *)(uintptr_t)w->link.chroot_dir;
	}
	argv[argc] = NULL;
	execv(exe, argv);
	n = snprintf(msg, sizeof(msg),
	             "level=ERROR msg=\"cannot execute "
	             "worker\" path=\"%s\" error=\"%s\"\n",
	             exe, strerror(errno));
	if (n > 0 && write(STDERR_FILENO, msg, (size_t)n) < 0)
		_exit(127);
	_exit(127);
}

static void
worker_start(struct worker *w)
{
	struct workers *ws = w->ws;
	struct timeval sec = {1, 0};
	int sv[2];
	pid_t pid;
	char why[160];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1) {
		snprintf(why, sizeof(why), "socketpair: %s", strerror(errno));
		goto fail;
	}
	if ((pid = fork()) == -1) {
		snprintf(why, sizeof(why), "fork: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		goto fail;
	}
	if (pid == 0)
		exec_worker(w, sv[1]);
	close(sv[1]);
	w->pid = pid;
	w->started_ms = now_ms();
	w->ready_ms = 0;
	w->kill_reason[0] = '\0';
	w->state = WS_HELLO;
	w->wipc = xcalloc(1, sizeof(*w->wipc));
	w->wipc->w = w;
	w->wipc->ipc = ipc_new(ws->base, sv[0], on_msg, on_error, w->wipc);
	log_debug("worker started", "worker=%s pid=%d exe=%s", w->name,
	          (int)pid, log_q(w->exe));
	return;
fail:
	/* No process to reap: back off as if it had died. */
	log_warnx("cannot start worker", "worker=%s reason=%s", w->name,
	          log_q(why));
	fail_all(w, why);
	w->state = WS_DOWN;
	sec = tv_ms(w->backoff_ms);
	w->backoff_ms = w->backoff_ms * 2 > RESTART_MAX_MS ? RESTART_MAX_MS
	                                                   : w->backoff_ms * 2;
	event_add(w->restart_ev, &sec);
}

/* --- Public. --- */

struct workers *
workers_new(struct event_base *base)
{
	struct workers *ws = xcalloc(1, sizeof(*ws));
	struct timeval sec = {1, 0};

	ws->base = base;
	TAILQ_INIT(&ws->list);
	TAILQ_INIT(&ws->garbage);
	ws->sigchld_ev = evsignal_new(base, SIGCHLD, sigchld_cb, ws);
	ws->gc_ev = evtimer_new(base, gc_cb, ws);
	ws->watchdog_ev = event_new(base, -1, EV_PERSIST, watchdog_cb, ws);
	if (ws->sigchld_ev == NULL || ws->gc_ev == NULL ||
	    ws->watchdog_ev == NULL ||
	    evsignal_add(ws->sigchld_ev, NULL) == -1 ||
	    event_add(ws->watchdog_ev, &sec) == -1)
		fatalx("cannot watch SIGCHLD", NULL);
	return ws;
}

/*
 * Close every socket (a worker exits when its socket closes), give them a
 * moment, then kill what is left.  Blocking: only for shutdown.
 */
void
workers_free(struct workers *ws)
{
	struct worker *w;
	uint64_t deadline;
	bool alive;
	int status;

	if (ws == NULL)
		return;
	TAILQ_FOREACH(w, &ws->list, entry)
	{
		w->state = WS_STOPPED;
		drop_ipc(w);
	}
	gc_cb(-1, 0, ws);
	deadline = now_ms() + STOP_GRACE_MS;
	do {
		alive = false;
		TAILQ_FOREACH(w, &ws->list, entry)
		{
			if (w->pid == -1)
				continue;
			if (waitpid(w->pid, &status, WNOHANG) == w->pid)
				w->pid = -1;
			else
				alive = true;
		}
		if (alive)
			usleep(10000);
	} while (alive && now_ms() < deadline);
	TAILQ_FOREACH(w, &ws->list, entry)
	{
		if (w->pid == -1)
			continue;
		log_warnx("worker did not exit, killing it", "worker=%s pid=%d",
		          w->name, (int)w->pid);
		kill(w->pid, SIGKILL);
		waitpid(w->pid, &status, 0);
		w->pid = -1;
	}
	while ((w = TAILQ_FIRST(&ws->list)) != NULL)
		worker_free(w);
	gc_cb(-1, 0, ws);
	event_free(ws->sigchld_ev);
	event_free(ws->gc_ev);
	event_free(ws->watchdog_ev);
	free(ws);
}

struct worker *
worker_spawn(struct workers *ws, const char *name,
             const struct worker_link *link, char *err, size_t errcap)
{
	struct worker *w;
	char *exe;

	switch (link->kind) {
	case WORKER_SERIAL:
		if (link->device == NULL || link->device[0] == '\0') {
			snprintf(err, errcap, "serial link without a device");
			return NULL;
		}
		break;
	case WORKER_UDP:
		if (!link->multi &&
		    (link->address == NULL || link->address[0] == '\0')) {
			snprintf(err, errcap, "udp link without an address");
			return NULL;
		}
		break;
	case WORKER_BLE:
		break;
	default:
		snprintf(err, errcap, "unknown link kind %d", (int)link->kind);
		return NULL;
	}
	if ((exe = workers_find_exe(link->kind, err, errcap)) == NULL)
		return NULL;

	w = xcalloc(1, sizeof(*w));
	w->ws = ws;
	w->name = xstrdup(name);
	w->exe = exe;
	w->link = *link;
	w->link.device = link->device ? xstrdup(link->device) : NULL;
	w->link.address = link->address ? xstrdup(link->address) : NULL;
	w->link.att_socket =
	    link->att_socket ? xstrdup(link->att_socket) : NULL;
	w->link.user = link->user ? xstrdup(link->user) : NULL;
	w->link.chroot_dir =
	    link->chroot_dir ? xstrdup(link->chroot_dir) : NULL;
	TAILQ_INIT(&w->boards);
	TAILQ_INIT(&w->learnts);
	TAILQ_INIT(&w->queued);
	TAILQ_INIT(&w->inflight);
	w->pid = -1;
	w->link_fd = -1;
	w->backoff_ms = RESTART_MIN_MS;
	w->reopen_ms = REOPEN_MIN_MS;
	w->next_id = 1;
	w->restart_ev = evtimer_new(ws->base, restart_cb, w);
	w->reopen_ev = evtimer_new(ws->base, reopen_cb, w);
	if (w->restart_ev == NULL || w->reopen_ev == NULL)
		fatalx("cannot create worker events", NULL);
	TAILQ_INSERT_TAIL(&ws->list, w, entry);
	if (link->multi) {
		/* From the loop, with every board added until then. */
		struct timeval zero = {0, 0};

		w->first_start = true;
		event_add(w->restart_ev, &zero);
	} else
		worker_start(w);
	return w;
}

void
worker_stop(struct worker *w)
{
	char reason[160];

	snprintf(reason, sizeof(reason), "worker %s stopped", w->name);
	event_del(w->restart_ev);
	close_link(w);
	drop_ipc(w); /* the worker exits when its socket closes */
	if (w->state == WS_STOPPED)
		return;
	w->state = WS_STOPPED;
	fail_all(w, reason);
	if (w->pid == -1)
		worker_free(w);
	/* else freed when reaped */
}

int
worker_add_board(struct worker *w, uint32_t board_id, const char *peer_name,
                 const char *address)
{
	struct board *b;

	if (w->link.multi && (!w->first_start || address == NULL))
		return -1;
	b = xcalloc(1, sizeof(*b));
	b->id = board_id;
	b->peer_name = xstrdup(peer_name ? peer_name : "");
	b->address = address != NULL ? xstrdup(address) : NULL;
	TAILQ_INSERT_TAIL(&w->boards, b, entry);
	w->nboards++;
	if (w->state == WS_READY || w->state == WS_LINKWAIT)
		send_add_board(w, b);
	return 0;
}

size_t
worker_remove_board(struct worker *w, uint32_t board_id)
{
	struct board *b;

	TAILQ_FOREACH(b, &w->boards, entry)
	{
		if (b->id == board_id)
			break;
	}
	if (b == NULL)
		return w->nboards;
	TAILQ_REMOVE(&w->boards, b, entry);
	free(b->peer_name);
	free(b->address);
	free(b);
	/* A restarted worker is not told of it again. */
	return --w->nboards;
}

bool
worker_takes_boards(const struct worker *w, size_t cap)
{
	return w->link.multi && w->first_start && w->nboards < cap &&
	       w->state != WS_STOPPED;
}

static struct learnt *
find_learnt(const struct worker *w, uint32_t board_id)
{
	struct learnt *l;

	TAILQ_FOREACH(l, &w->learnts, entry)
	if (l->board_id == board_id)
		return l;
	return NULL;
}

bool
worker_upload_hint(const struct worker *w, uint32_t board_id,
                   struct worker_learnt *out)
{
	const struct learnt *l = find_learnt(w, board_id);

	if (l == NULL || l->l.window == 0)
		return false;
	*out = l->l;
	return true;
}

void
worker_upload_learnt(struct worker *w, uint32_t board_id,
                     const struct worker_learnt *in)
{
	struct learnt *l = find_learnt(w, board_id);

	if (in->window == 0)
		return;
	if (l == NULL) {
		l = xcalloc(1, sizeof(*l));
		l->board_id = board_id;
		TAILQ_INSERT_TAIL(&w->learnts, l, entry);
	}
	if (l->l.window != in->window)
		log_debug("upload window learnt",
		          "worker=%s board=%u window=%u", log_q(w->name),
		          board_id, in->window);
	l->l = *in;
}

uint64_t
worker_request(struct worker *w, uint32_t board_id, Ipc__Envelope *env,
               worker_msg_cb cb, void *arg)
{
	struct wreq *r;
	size_t len;

	if (w->state == WS_STOPPED)
		return 0;
	env->request_id = w->next_id++;
	env->board_id = board_id;
	len = ipc__envelope__get_packed_size(env);
	if (len > IPC_MAX_MSG) {
		log_warnx("request too large for IPC", "worker=%s size=%zu",
		          w->name, len);
		return 0;
	}
	r = xcalloc(1, sizeof(*r));
	r->id = env->request_id;
	r->board_id = board_id;
	r->cb = cb;
	r->arg = arg;
	r->upload = env->body_case == IPC__ENVELOPE__BODY_UPLOAD_BEGIN;
	r->since_ms = now_ms();
	if (w->state == WS_READY && send_env(w, env, -1) == 0) {
		TAILQ_INSERT_TAIL(&w->inflight, r, entry);
		return r->id;
	}
	r->packed = xmalloc(len ? len : 1);
	r->packed_len = ipc__envelope__pack(env, r->packed);
	TAILQ_INSERT_TAIL(&w->queued, r, entry);
	return r->id;
}

int
worker_send(struct worker *w, uint64_t request_id, Ipc__Envelope *env)
{
	struct wreq *r;

	if (w->state != WS_READY ||
	    (r = find_req(&w->inflight, request_id)) == NULL)
		return -1;
	env->request_id = request_id;
	env->board_id = r->board_id;
	return send_env(w, env, -1);
}

void
worker_forget(struct worker *w, uint64_t request_id)
{
	struct wreq *r;

	if ((r = find_req(&w->inflight, request_id)) != NULL)
		r->cb = NULL; /* the reply still ends it */
	else if ((r = find_req(&w->queued, request_id)) != NULL) {
		TAILQ_REMOVE(&w->queued, r, entry);
		wreq_free(r);
	}
}

int
worker_pid(const struct worker *w)
{
	return w->pid;
}

void
worker_expect_link_drop(struct worker *w, uint64_t for_ms)
{
	w->drop_expected_until = now_ms() + for_ms;
}

unsigned int
worker_restarts(const struct worker *w)
{
	return w->restarts;
}

const char *
worker_name(const struct worker *w)
{
	return w->name;
}
