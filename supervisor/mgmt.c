/*
 * The management channel of each device and group: its WebSocket to
 * /api/v1/devices/ws (connected with the device's token, reconnected with
 * backoff), the capability report, actions (listed, queued per board,
 * deduplicated by execution id, results retried across reconnections),
 * update progress and version, and the board operation queue shared with
 * the shell (mgmt_shell.c) and file downloads (mgmt_fs.c).
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "curlev.h"
#include "log.h"
#include "mgmt.h"
#include "mgmt_int.h"
#include "mgmt_msg.h"
#include "rdfm.h"
#include "ws.h"
#include "xmalloc.h"

#define CHECK_ID      "rdfm.builtins.trigger_update_check"
#define LONG_UP_MS    10000            /* a connection this long resets */
#define NO_CHANNEL_MS (10 * 60 * 1000) /* retry after a 404 handshake */
#define DEFAULT_IDLE  80000
#define SETTLE_MS     3000 /* a connection that held this long counts */

static void dev_connect(struct mgmt_dev *);
static void say_down(struct mgmt_dev *);
static void board_kick(struct mgmt_dev *, struct board *);

int64_t
mgmt_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t
rng_next(struct mgmt *m)
{
	/* xorshift64*: only spreads reconnections apart. */
	m->rng ^= m->rng >> 12;
	m->rng ^= m->rng << 25;
	m->rng ^= m->rng >> 27;
	return m->rng * 0x2545F4914F6CDD1DULL;
}

bool
dev_once(struct mgmt_dev *dev, enum mgmt_once what)
{
	uint64_t bit = 1ULL << what;

	if (dev->once & bit)
		return false;
	dev->once |= bit;
	return true;
}

int
dev_send(struct mgmt_dev *dev, char *json)
{
	int rc = -1;

	if (dev->ws != NULL && dev->cstate == C_OPEN)
		rc = ws_send(dev->ws, true, json, strlen(json));
	if (rc == -1 && dev->cstate == C_OPEN)
		ONCE(dev, ONCE_OUTBOX_FULL,
		     "management channel: the server does not read; a "
		     "message was dropped",
		     "device=%s", log_q(dev->name));
	free(json);
	return rc;
}

bool
dev_busy(struct mgmt_dev *dev)
{
	return dev->ops->update_in_progress(dev->ctx);
}

/* Capabilities and the action list. */

static bool
action_offered(const struct mgmt_dev *dev, const struct action *a)
{
	return a->kind != ACT_SHELL || !dev->boards[a->board].no_shell;
}

static void
caps_now(const struct mgmt_dev *dev, bool *shell, bool *fs)
{
	size_t i;

	*shell = *fs = false;
	for (i = 0; i < dev->nboards; i++) {
		if (dev->boards[i].shell && !dev->boards[i].no_shell)
			*shell = true;
		if (dev->boards[i].npaths > 0 && !dev->boards[i].no_fs)
			*fs = true;
	}
}

static void
send_caps(struct mgmt_dev *dev)
{
	bool shell, fs;

	caps_now(dev, &shell, &fs);
	dev->sent_caps_shell = shell;
	dev->sent_caps_fs = fs;
	dev_send(dev, mgmt_enc_capabilities(true, shell, fs));
}

static void
send_action_list(struct mgmt_dev *dev)
{
	struct mgmt_action_desc *d;
	size_t i, n = 0;

	d = xcalloc(dev->nactions + 1, sizeof(*d));
	for (i = 0; i < dev->nactions; i++) {
		const struct action *a = &dev->actions[i];

		if (!action_offered(dev, a))
			continue;
		d[n].id = a->id;
		d[n].name = a->name;
		d[n].description = a->description;
		d[n].argv = (const char *const *)a->argv;
		d[n].argc = a->argc;
		d[n].timeout_s = (double)a->timeout_ms / 1000.0;
		n++;
	}
	dev_send(dev, mgmt_enc_action_list(d, n));
	free(d);
}

/* A board turned out to lack a group: claim only what it has. */
void
dev_caps_changed(struct mgmt_dev *dev)
{
	bool shell, fs;

	caps_now(dev, &shell, &fs);
	if (dev->cstate != C_OPEN)
		return;
	if (shell != dev->sent_caps_shell || fs != dev->sent_caps_fs)
		send_caps(dev);
	/* An unsolicited update replaces the server's list. */
	send_action_list(dev);
}

/* The board operation queue: one operation per board at a time. */

struct job *
job_new(struct mgmt_dev *dev, unsigned board, enum mgmt_op op)
{
	struct job *j = xcalloc(1, sizeof(*j));

	j->dev = dev;
	j->board = board;
	j->op.op = op;
	j->op.board = board;
	return j;
}

static void
job_free(struct job *j)
{
	if (j->guard != NULL)
		event_free(j->guard);
	free(j->argv_own);
	free(j->path_own);
	free(j);
}

static void
job_finish(struct job *j, const struct mgmt_result *res)
{
	void (*done)(struct job *, const struct mgmt_result *) = j->done;

	j->done = NULL;
	if (done != NULL)
		done(j, res);
}

static void
on_job_guard(evutil_socket_t fd, short what, void *arg)
{
	struct job *j = arg;
	struct mgmt_result res;
	char msg[96];

	(void)fd;
	(void)what;
	/*
	 * The daemon still owes its answer (the board stays taken until it
	 * comes); the operator gets one now.
	 */
	snprintf(msg, sizeof(msg), "timed out after %lld s",
	         (long long)((mgmt_now_ms() - j->started + 500) / 1000));
	memset(&res, 0, sizeof(res));
	res.status = MGMT_FAILED;
	res.data = msg;
	res.len = strlen(msg);
	job_finish(j, &res);
}

static void
job_refuse_busy(struct job *j)
{
	static const char busy[] = "busy: update in progress";
	struct mgmt_result res;

	memset(&res, 0, sizeof(res));
	res.status = MGMT_BUSY;
	res.data = busy;
	res.len = sizeof(busy) - 1;
	job_finish(j, &res);
}

static void
board_kick(struct mgmt_dev *dev, struct board *b)
{
	struct job *j;
	struct timeval tv;
	int64_t ms;

	if (b->kicking)
		return;
	b->kicking = true;
	while (b->running == NULL && (j = b->head) != NULL) {
		b->head = j->next;
		if (b->head == NULL)
			b->tail = NULL;
		j->next = NULL;
		if (dev_busy(dev)) {
			/* Nothing reaches a board while an update holds it. */
			if (j->is_action)
				b->nactions--;
			job_refuse_busy(j);
			job_free(j);
			continue;
		}
		b->running = j;
		j->started = mgmt_now_ms();
		ms = (j->op.timeout_ms > 0 ? j->op.timeout_ms : 30000) +
		     MGMT_GRACE_MS;
		tv.tv_sec = ms / 1000;
		tv.tv_usec = (ms % 1000) * 1000;
		if ((j->guard = evtimer_new(dev->m->base, on_job_guard, j)) ==
		        NULL ||
		    evtimer_add(j->guard, &tv) == -1)
			fatalx("cannot create a timer", NULL);
		dev->ops->run(dev->ctx, &j->op, (struct mgmt_req *)j);
	}
	b->kicking = false;
}

void
job_submit(struct job *j)
{
	struct board *b = &j->dev->boards[j->board];

	if (b->tail != NULL)
		b->tail->next = j;
	else
		b->head = j;
	b->tail = j;
	if (j->is_action)
		b->nactions++;
	board_kick(j->dev, b);
}

void
job_cancel(struct job *j)
{
	struct board *b;
	struct job **pp;

	if (j == NULL)
		return;
	j->done = NULL;
	j->owner = NULL;
	if (j->dev == NULL)
		return;
	b = &j->dev->boards[j->board];
	if (b->running == j)
		return; /* orphaned: freed when the daemon answers */
	for (pp = &b->head; *pp != NULL; pp = &(*pp)->next)
		if (*pp == j) {
			*pp = j->next;
			if (b->tail == j) {
				struct job *t;

				b->tail = NULL;
				for (t = b->head; t != NULL; t = t->next)
					b->tail = t;
			}
			if (j->is_action)
				b->nactions--;
			job_free(j);
			return;
		}
}

void
mgmt_req_done(struct mgmt_req *req, const struct mgmt_result *res)
{
	struct job *j = (struct job *)req;
	struct mgmt_dev *dev = j->dev;
	struct board *b;

	if (dev == NULL) {
		/* The device went away meanwhile. */
		job_free(j);
		return;
	}
	b = &dev->boards[j->board];
	if (b->running == j)
		b->running = NULL;
	if (j->is_action)
		b->nactions--;
	if (res->status == MGMT_UNSUPPORTED)
		mgmt_board_unsupported(dev, j->board, j->op.op);
	job_finish(j, res);
	job_free(j);
	board_kick(dev, b);
}

void
mgmt_board_unsupported(struct mgmt_dev *dev, unsigned board, enum mgmt_op op)
{
	struct board *b;
	bool changed = false;

	if (dev == NULL || board >= dev->nboards)
		return;
	b = &dev->boards[board];
	if (op == MGMT_OP_SHELL && !b->no_shell)
		changed = b->no_shell = true;
	if ((op == MGMT_OP_FS_STAT || op == MGMT_OP_FS_READ) && !b->no_fs)
		changed = b->no_fs = true;
	if (!changed)
		return;
	log_info("The board does not support this SMP group; no longer "
	         "offered",
	         "device=%s board=%s group=%s", log_q(dev->name),
	         log_q(b->name), op == MGMT_OP_SHELL ? "shell" : "fs");
	dev_caps_changed(dev);
}

/* Retried messages: results and the version. */

/*
 * Marked before sending: ws_send() may report everything written (and so
 * drop what is on the wire) before it returns.
 */
static void
send_out(struct mgmt_dev *dev, struct outmsg *o)
{
	o->on_wire = true;
	if (ws_send(dev->ws, true, o->json, strlen(o->json)) == -1)
		o->on_wire = false;
}

static void
outbox_add(struct mgmt_dev *dev, enum out_kind kind, const char *id,
           const char *json)
{
	struct outmsg *o, **pp;

	/* One version: the newest. */
	for (pp = &dev->outbox; kind == OUT_VERSION && *pp != NULL;
	     pp = &(*pp)->next)
		if ((*pp)->kind == OUT_VERSION) {
			o = *pp;
			*pp = o->next;
			free(o->json);
			free(o);
			dev->noutbox--;
			break;
		}
	if (dev->noutbox >= MGMT_OUTBOX_MAX && dev->outbox != NULL) {
		o = dev->outbox;
		dev->outbox = o->next;
		ONCE(dev, ONCE_RESULT_DROPPED,
		     "management channel: too many undelivered results; "
		     "dropping the oldest",
		     "device=%s id=%s", log_q(dev->name), log_q(o->id));
		free(o->json);
		free(o);
		dev->noutbox--;
	}
	o = xcalloc(1, sizeof(*o));
	o->kind = kind;
	snprintf(o->id, sizeof(o->id), "%s", id != NULL ? id : "");
	o->json = xstrdup(json);
	for (pp = &dev->outbox; *pp != NULL; pp = &(*pp)->next)
		;
	*pp = o;
	dev->noutbox++;
	if (dev->cstate == C_OPEN)
		send_out(dev, o);
}

static void
outbox_flush(struct mgmt_dev *dev)
{
	struct outmsg *o, *next;

	/* A send may free what is on the wire, never what is not yet. */
	for (o = dev->outbox; o != NULL && dev->cstate == C_OPEN; o = next) {
		next = o->next;
		if (!o->on_wire)
			send_out(dev, o);
	}
}

static void
outbox_drop(struct mgmt_dev *dev,
            bool (*match)(const struct outmsg *, const void *), const void *arg)
{
	struct outmsg **pp = &dev->outbox, *o;

	while ((o = *pp) != NULL) {
		if (match(o, arg)) {
			*pp = o->next;
			free(o->json);
			free(o);
			dev->noutbox--;
		} else
			pp = &o->next;
	}
}

static bool
match_on_wire(const struct outmsg *o, const void *arg)
{
	(void)arg;
	return o->on_wire;
}

static bool
match_result(const struct outmsg *o, const void *arg)
{
	return o->kind == OUT_RESULT && strcmp(o->id, arg) == 0;
}

/* Execution ids: the server sends pending actions at every connection. */

static struct seen *
seen_find(struct mgmt_dev *dev, const char *id)
{
	size_t i;

	for (i = 0; i < dev->nseen; i++)
		if (strcmp(dev->seen[i].id, id) == 0)
			return &dev->seen[i];
	return NULL;
}

static struct seen *
seen_add(struct mgmt_dev *dev, const char *id)
{
	struct seen *s;

	if (dev->seen == NULL)
		dev->seen = xcalloc(MGMT_SEEN_MAX, sizeof(*dev->seen));
	if (dev->nseen < MGMT_SEEN_MAX)
		s = &dev->seen[dev->nseen++];
	else {
		/* The oldest finished one makes room. */
		size_t i, k;

		for (i = 0; i < MGMT_SEEN_MAX; i++) {
			k = (dev->seen_next + i) % MGMT_SEEN_MAX;
			if (dev->seen[k].state == SEEN_DONE)
				break;
		}
		k = (dev->seen_next + i) % MGMT_SEEN_MAX;
		dev->seen_next = (k + 1) % MGMT_SEEN_MAX;
		s = &dev->seen[k];
		free(s->result);
	}
	memset(s, 0, sizeof(*s));
	snprintf(s->id, sizeof(s->id), "%s", id);
	s->state = SEEN_RUNNING;
	return s;
}

static void
result_out(struct mgmt_dev *dev, struct seen *s, int status, const void *out,
           size_t len)
{
	char *json;

	if (len > MGMT_OUTPUT_MAX)
		len = MGMT_OUTPUT_MAX;
	json = mgmt_enc_exec_result(s->id, status, out, len);
	s->state = SEEN_DONE;
	s->resent_on = dev->conn_gen;
	free(s->result);
	s->result = json;
	outbox_add(dev, OUT_RESULT, s->id, json);
}

static void
result_now(struct mgmt_dev *dev, const char *id, int status, const char *text)
{
	struct seen *s = seen_find(dev, id);

	if (s == NULL)
		s = seen_add(dev, id);
	result_out(dev, s, status, text, strlen(text));
}

/* Actions. */

static const struct action *
action_find(const struct mgmt_dev *dev, const char *id)
{
	size_t i;

	for (i = 0; i < dev->nactions; i++)
		if (strcmp(dev->actions[i].id, id) == 0 &&
		    action_offered(dev, &dev->actions[i]))
			return &dev->actions[i];
	return NULL;
}

struct exec_ctx {
	char id[MGMT_ID_MAX + 1];
	const struct action *a;
};

static void
exec_done(struct job *j, const struct mgmt_result *res)
{
	struct exec_ctx *x = j->owner;
	struct mgmt_dev *dev = j->dev;
	struct seen *s;
	int status;
	const char *out = res->data != NULL ? res->data : "";
	size_t len = res->data != NULL ? res->len : 0;
	char buf[160];

	if (x == NULL)
		return;
	j->owner = NULL;
	switch (res->status) {
	case MGMT_DONE:
		status = res->rc;
		break;
	case MGMT_UNSUPPORTED:
		snprintf(buf, sizeof(buf), "not supported by the board%s%.*s",
		         len > 0 ? ": " : "", (int)(len > 100 ? 100 : len),
		         out);
		out = buf;
		len = strlen(buf);
		status = -1;
		break;
	default:
		status = -1;
		break;
	}
	if ((s = seen_find(dev, x->id)) == NULL)
		s = seen_add(dev, x->id);
	result_out(dev, s, status, out, len);
	log_info("Action ran", "device=%s action=%s status=%d ms=%lld",
	         log_q(dev->name), log_q(x->a->id), status,
	         (long long)(mgmt_now_ms() - j->started));
	mgmt_log(dev, "action", "%s on %s: status %d", x->a->id,
	         dev->boards[j->board].name, status);
	free(x);
}

static void
handle_exec(struct mgmt_dev *dev, const struct mgmt_msg *m)
{
	const struct action *a;
	struct exec_ctx *x;
	struct board *b;
	struct seen *s;
	struct job *j;

	if ((s = seen_find(dev, m->execution_id)) != NULL) {
		/* Sent again (a pending action at reconnection): never run
		 * twice; a result we hold goes again. */
		log_debug("Action already seen", "device=%s id=%s",
		          log_q(dev->name), log_q(m->execution_id));
		dev_send(dev, mgmt_enc_exec_control(m->execution_id, true));
		/* Once per connection: a flood of repeats gets no flood back.
		 */
		if (s->state == SEEN_DONE && s->result != NULL &&
		    s->resent_on != dev->conn_gen) {
			s->resent_on = dev->conn_gen;
			outbox_drop(dev, match_result, s->id);
			outbox_add(dev, OUT_RESULT, s->id, s->result);
		}
		return;
	}
	if ((a = action_find(dev, m->action_id)) == NULL) {
		ONCE(dev, ONCE_NOT_LISTED,
		     "management channel: the server asked for an action "
		     "this device does not offer; refused",
		     "device=%s action=%s", log_q(dev->name),
		     log_q(m->action_id));
		dev_send(dev, mgmt_enc_exec_control(m->execution_id, true));
		result_now(dev, m->execution_id, -1,
		           "error: this device offers no such action");
		return;
	}
	if (a->kind == ACT_CHECK) {
		dev_send(dev, mgmt_enc_exec_control(m->execution_id, true));
		dev->ops->check_now(dev->ctx);
		log_info("Action ran", "device=%s action=%s status=0",
		         log_q(dev->name), log_q(a->id));
		result_now(dev, m->execution_id, 0, "update check requested");
		mgmt_log(dev, "action", "%s: status 0", a->id);
		return;
	}
	b = &dev->boards[a->board];
	if (dev_busy(dev)) {
		dev_send(dev, mgmt_enc_exec_control(m->execution_id, true));
		result_now(dev, m->execution_id, -1,
		           "busy: update in progress");
		return;
	}
	if (b->nactions >= MGMT_ACTIONS_MAX) {
		ONCE(dev, ONCE_QUEUE_FULL,
		     "management channel: a board's action queue is full; "
		     "the server will ask again",
		     "device=%s board=%s", log_q(dev->name), log_q(b->name));
		dev_send(dev, mgmt_enc_exec_control(m->execution_id, false));
		return;
	}
	dev_send(dev, mgmt_enc_exec_control(m->execution_id, true));
	seen_add(dev, m->execution_id);
	x = xcalloc(1, sizeof(*x));
	snprintf(x->id, sizeof(x->id), "%s", m->execution_id);
	x->a = a;
	j = job_new(dev, a->board, a->op);
	j->is_action = true;
	j->done = exec_done;
	j->owner = x;
	j->op.timeout_ms = a->kind == ACT_SHELL ? a->timeout_ms : 0;
	if (a->kind == ACT_SHELL) {
		j->op.argv = (const char *const *)a->argv;
		j->op.argc = a->argc;
	}
	if (a->op == MGMT_OP_ECHO)
		j->op.text = "rdfm-mcumgr-client";
	job_submit(j);
}

/* Messages from the server. */

static void
dispatch(struct mgmt_dev *dev, const struct mgmt_msg *m)
{
	switch (m->method) {
	case MGMT_M_ALERT:
		if (m->alert_error)
			ONCE(dev, ONCE_ALERT,
			     "management channel: the server reports an error",
			     "device=%s error=%s", log_q(dev->name),
			     log_q(m->alert));
		else
			log_debug("Management channel: server alert",
			          "device=%s text=%s", log_q(dev->name),
			          log_q(m->alert));
		break;
	case MGMT_M_ACTION_LIST_QUERY:
		send_action_list(dev);
		break;
	case MGMT_M_ACTION_EXEC:
		handle_exec(dev, m);
		break;
	case MGMT_M_SHELL_ATTACH:
		shell_attach(dev, m);
		break;
	case MGMT_M_FS_PROBE:
		fs_probe(dev, m);
		break;
	case MGMT_M_FS_DOWNLOAD:
		fs_download(dev, m);
		break;
	case MGMT_M_UNKNOWN:
		ONCE(dev, ONCE_UNKNOWN_METHOD,
		     "management channel: a message with a method we do not "
		     "know; ignored",
		     "device=%s method=%s", log_q(dev->name), log_q(m->name));
		break;
	}
}

/*
 * A connection counts (for the log and the backoff) once the server spoke
 * on it or it held a while: a 4002 comes right after the 101.
 */
static void
established(struct mgmt_dev *dev)
{
	if (dev->established)
		return;
	dev->established = true;
	dev->up_since = mgmt_now_ms();
	if (!dev->ever_up)
		log_info("Management channel up", "device=%s",
		         log_q(dev->name));
	else if (dev->told_down)
		log_info("Management channel up again", "device=%s",
		         log_q(dev->name));
	else
		log_debug("Management channel up again", "device=%s",
		          log_q(dev->name));
	dev->ever_up = true;
	dev->told_down = false;
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct mgmt_dev *dev = arg;

	(void)fd;
	(void)what;
	if (dev->cstate == C_OPEN) {
		established(dev);
		ws_set_reading(dev->ws, true); /* the flood pause is over */
	} else if (dev->cstate == C_IDLE)
		dev_connect(dev);
}

static void
later(struct mgmt_dev *dev, int64_t ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	evtimer_add(dev->timer, &tv);
}

/* A server that floods: stop reading for the rest of the second. */
static bool
flood_check(struct mgmt_dev *dev)
{
	int64_t now = mgmt_now_ms();

	if (now - dev->win_start >= 1000) {
		dev->win_start = now;
		dev->win_count = 0;
	}
	if (++dev->win_count <= dev->m->t.flood_per_s)
		return false;
	ONCE(dev, ONCE_FLOOD,
	     "management channel: the server sends more than the limit of "
	     "messages a second; reading paused",
	     "device=%s limit=%u", log_q(dev->name), dev->m->t.flood_per_s);
	ws_set_reading(dev->ws, false);
	later(dev, 1000 - (now - dev->win_start));
	return true;
}

static void
on_message(struct ws *ws, bool text, const uint8_t *data, size_t len, void *arg)
{
	struct mgmt_dev *dev = arg;
	struct mgmt_msg m;
	char why[200];

	(void)ws;
	established(dev);
	flood_check(dev);
	if (!text) {
		ONCE(dev, ONCE_BINARY,
		     "management channel: a binary message; ignored",
		     "device=%s bytes=%zu", log_q(dev->name), len);
		return;
	}
	if (mgmt_msg_parse((const char *)data, len, &m, why, sizeof(why)) ==
	    -1) {
		ONCE(dev, ONCE_BAD_MESSAGE,
		     "management channel: a malformed message; ignored",
		     "device=%s error=%s", log_q(dev->name), log_q(why));
		return;
	}
	dispatch(dev, &m);
	mgmt_msg_free(&m);
}

static void
on_drained(struct ws *ws, void *arg)
{
	struct mgmt_dev *dev = arg;

	(void)ws;
	/* Written: a result or version needs no retry any more. */
	outbox_drop(dev, match_on_wire, NULL);
	dev->done_pending = false;
}

static void
on_open(struct ws *ws, void *arg)
{
	struct mgmt_dev *dev = arg;
	int64_t now = mgmt_now_ms();

	(void)ws;
	dev->cstate = C_OPEN;
	dev->established = false;
	dev->conn_gen++;
	dev->win_start = now;
	dev->win_count = 0;
	later(dev, SETTLE_MS);
	/* The capability report first: the server sends nothing before. */
	send_caps(dev);
	outbox_flush(dev);
	if (dev->done_pending)
		dev_send(dev, mgmt_enc_progress(100));
}

/* "Invalid execution <id>": the server forgot it; stop retrying it. */
static void
forget_refused_result(struct mgmt_dev *dev, const char *reason)
{
	static const char prefix[] = "Invalid execution ";
	struct seen *s;

	if (strncmp(reason, prefix, sizeof(prefix) - 1) != 0)
		return;
	reason += sizeof(prefix) - 1;
	outbox_drop(dev, match_result, reason);
	if ((s = seen_find(dev, reason)) != NULL) {
		free(s->result);
		s->result = NULL;
	}
}

static void
describe_end(struct mgmt_dev *dev, const struct ws_end_info *e)
{
	char err[128];

	switch (e->kind) {
	case WS_END_REFUSED:
		rdfm_parse_error(e->body, e->body_len, err, sizeof(err));
		snprintf(dev->last_error, sizeof(dev->last_error),
		         "handshake refused with HTTP %ld%s%s", e->status,
		         err[0] != '\0' ? ": " : "", err);
		break;
	case WS_END_CLOSED:
		snprintf(dev->last_error, sizeof(dev->last_error),
		         "closed with code %u%s%s", e->code,
		         e->detail[0] != '\0' ? ": " : "", e->detail);
		break;
	case WS_END_PROTOCOL:
		snprintf(dev->last_error, sizeof(dev->last_error),
		         "closed with code %u: the server sent %s", e->code,
		         e->detail);
		break;
	default:
		snprintf(dev->last_error, sizeof(dev->last_error), "%s",
		         e->detail);
		break;
	}
}

/* One line when a channel stays down long. */
static void
say_down(struct mgmt_dev *dev)
{
	int64_t now = mgmt_now_ms();

	if (dev->told_down || now - dev->down_since < dev->m->t.down_log_ms)
		return;
	log_warnx("Management channel down", "device=%s for_s=%lld error=%s",
	          log_q(dev->name), (long long)((now - dev->down_since) / 1000),
	          log_q(dev->last_error));
	dev->told_down = true;
}

static void
on_end(struct ws *ws, const struct ws_end_info *e, void *arg)
{
	struct mgmt_dev *dev = arg;
	int64_t now = mgmt_now_ms(), delay, max;
	struct outmsg *o;
	bool was_open = dev->cstate == C_OPEN && dev->established;

	(void)ws;
	evtimer_del(dev->timer);
	dev->ws = NULL;
	dev->cstate = C_IDLE;
	for (o = dev->outbox; o != NULL; o = o->next)
		o->on_wire = false;
	/* Replies to this connection's requests have nowhere to go. */
	fs_abort(dev, false, "the management connection ended");
	describe_end(dev, e);
	if (was_open) {
		if (now - dev->up_since > LONG_UP_MS)
			dev->failures = 0;
		dev->down_since = now;
	}
	dev->failures++;
	max = now - dev->down_since >= 60000 ? dev->m->t.backoff_slow_ms
	                                     : dev->m->t.backoff_max_ms;
	delay = mgmt_backoff_ms(dev->failures, dev->m->t.backoff_min_ms,
	                        (unsigned)max, rng_next(dev->m));
	if (e->kind == WS_END_REFUSED && e->status == 401)
		dev->token_refused = true;
	else if (e->kind == WS_END_REFUSED &&
	         (e->status == 404 || e->status == 400)) {
		ONCE(dev, ONCE_NO_CHANNEL,
		     "management channel: the server has none; asking again "
		     "in 10 minutes",
		     "device=%s error=%s", log_q(dev->name),
		     log_q(dev->last_error));
		delay = NO_CHANNEL_MS;
	} else if (e->kind == WS_END_CLOSED && e->code == 4001) {
		ONCE(dev, ONCE_REFUSED_REQUEST,
		     "management channel: the server refused a message of "
		     "ours",
		     "device=%s error=%s", log_q(dev->name),
		     log_q(dev->last_error));
		forget_refused_result(dev, e->detail);
	} else if (e->kind == WS_END_PROTOCOL && e->code == 1009)
		ONCE(dev, ONCE_TOO_BIG,
		     "management channel: the server sent a message over the "
		     "size limit",
		     "device=%s limit=%d", log_q(dev->name), MGMT_MAX_MSG);
	else if (e->kind == WS_END_PROTOCOL)
		ONCE(dev, ONCE_BAD_FRAME,
		     "management channel: the server sent a bad frame",
		     "device=%s error=%s", log_q(dev->name),
		     log_q(dev->last_error));
	else if (e->kind == WS_END_HANDSHAKE)
		ONCE(dev, ONCE_REFUSED_HANDSHAKE,
		     "management channel: the server's handshake is wrong",
		     "device=%s error=%s", log_q(dev->name),
		     log_q(dev->last_error));
	log_debug("Management channel ended",
	          "device=%s error=%s retry_ms=%lld", log_q(dev->name),
	          log_q(dev->last_error), (long long)delay);
	say_down(dev);
	later(dev, delay);
}

static const struct ws_callbacks main_cbs = {
    .on_open = on_open,
    .on_message = on_message,
    .on_drained = on_drained,
    .on_end = on_end,
};

static void
dev_connect(struct mgmt_dev *dev)
{
	struct ws_opts o;
	const char *tok;
	char *auth, err[200];
	bool refused;

	if (dev->ws != NULL)
		return;
	refused = dev->token_refused;
	tok = dev->ops->token(dev->ctx, refused);
	dev->token_refused = false;
	if (tok == NULL) {
		dev->cstate = C_WAIT_TOKEN;
		/*
		 * A token being renewed is a step, not the reason the channel
		 * is down: the failure before it (a close code, a refusal)
		 * stays the one the down line names, unless there was none or
		 * it was the server refusing the token.
		 */
		if (dev->last_error[0] == '\0' || refused)
			snprintf(dev->last_error, sizeof(dev->last_error),
			         "no token: the device is not authenticated");
		say_down(dev);
		return;
	}
	xasprintf(&auth, "Bearer token=%s", tok);
	memset(&o, 0, sizeof(o));
	o.url = dev->m->ws_url;
	o.auth = auth;
	o.max_msg = MGMT_MAX_MSG;
	o.max_queue = MGMT_MAX_QUEUE;
	o.idle_ms = dev->m->t.idle_ms;
	dev->ws = ws_open(dev->m->wsc, &o, &main_cbs, dev, err, sizeof(err));
	explicit_bzero(auth, strlen(auth));
	free(auth);
	if (dev->ws == NULL) {
		ONCE(dev, ONCE_REFUSED_HANDSHAKE,
		     "management channel: cannot connect", "device=%s error=%s",
		     log_q(dev->name), log_q(err));
		dev->cstate = C_IDLE;
		later(dev, NO_CHANNEL_MS);
		return;
	}
	dev->cstate = C_CONNECTING;
}

void
mgmt_token_ready(struct mgmt_dev *dev)
{
	if (dev == NULL)
		return;
	if (dev->cstate == C_WAIT_TOKEN) {
		dev->cstate = C_IDLE;
		if (!evtimer_pending(dev->timer, NULL))
			later(dev, 0);
	}
	logs_token_ready(dev);
}

/* Construction. */

static void
action_builtin(struct mgmt_dev *dev, const char *id, const char *name,
               const char *desc, enum act_kind kind, enum mgmt_op op,
               unsigned board)
{
	struct action *a = &dev->actions[dev->nactions++];

	a->kind = kind;
	a->op = op;
	a->board = board;
	if (dev->group && kind != ACT_CHECK) {
		/* A group's actions name the member they run on. */
		xasprintf(&a->own_id, "%s@%s", id, dev->boards[board].name);
		xasprintf(&a->own_name, "%s (%s)", name,
		          dev->boards[board].name);
		a->id = a->own_id;
		a->name = a->own_name;
	} else {
		a->id = id;
		a->name = name;
	}
	a->description = desc;
}

static void
actions_build(struct mgmt_dev *dev, const struct mgmt_cfg *mc)
{
	size_t i, j, n;

	n = 1 + (dev->group ? 2 * dev->nboards : 4) + mc->nactions;
	dev->actions = xcalloc(n, sizeof(*dev->actions));
	action_builtin(dev, CHECK_ID, "Check for an update now",
	               "Ask the server for an update at once", ACT_CHECK,
	               MGMT_OP_ECHO, 0);
	for (i = 0; i < dev->nboards; i++) {
		if (!dev->group) {
			action_builtin(dev, "rdfm.mcumgr.reset",
			               "Reset the board", "SMP OS reset",
			               ACT_OP, MGMT_OP_RESET, i);
			action_builtin(dev, "rdfm.mcumgr.confirm",
			               "Confirm the running image",
			               "SMP image state write: confirm", ACT_OP,
			               MGMT_OP_CONFIRM, i);
		}
		action_builtin(dev, "rdfm.mcumgr.image_list", "List images",
		               "SMP image state read", ACT_OP,
		               MGMT_OP_IMAGE_LIST, i);
		action_builtin(dev, "rdfm.mcumgr.echo", "Echo",
		               "SMP OS echo: is the board answering?", ACT_OP,
		               MGMT_OP_ECHO, i);
	}
	for (i = 0; i < mc->nactions; i++) {
		const struct action_cfg *c = &mc->actions[i];
		struct action *a = &dev->actions[dev->nactions++];

		a->kind = ACT_SHELL;
		a->op = MGMT_OP_SHELL;
		a->own_id = xstrdup(c->id);
		a->own_name = xstrdup(c->name);
		a->own_desc = xstrdup(c->description);
		a->id = a->own_id;
		a->name = a->own_name;
		a->description = a->own_desc;
		a->timeout_ms = c->timeout_ms;
		a->argc = c->ncommand;
		a->argv = xcalloc(c->ncommand + 1, sizeof(*a->argv));
		for (j = 0; j < c->ncommand; j++)
			a->argv[j] = xstrdup(c->command[j]);
		for (j = 0; dev->group && j < dev->nboards; j++)
			if (strcmp(dev->boards[j].name, c->member) == 0)
				a->board = (unsigned)j;
	}
}

static void
board_init(struct board *b, const char *name, const struct board_mgmt_cfg *c)
{
	size_t i;

	b->name = xstrdup(name);
	b->shell = c->shell;
	b->npaths = c->nfile_paths;
	b->paths = xcalloc(c->nfile_paths + 1, sizeof(*b->paths));
	for (i = 0; i < c->nfile_paths; i++)
		b->paths[i] = xstrdup(c->file_paths[i]);
}

static struct mgmt_dev *
dev_new(struct mgmt *m, const char *id, const char *name, bool group,
        size_t nboards, const struct mgmt_board_ops *ops, void *ctx)
{
	struct mgmt_dev *dev = xcalloc(1, sizeof(*dev));

	dev->m = m;
	dev->id = xstrdup(id);
	dev->name = xstrdup(name);
	dev->group = group;
	dev->ops = ops;
	dev->ctx = ctx;
	dev->nboards = nboards;
	dev->boards = xcalloc(nboards, sizeof(*dev->boards));
	dev->last_percent = -1;
	dev->down_since = mgmt_now_ms();
	if ((dev->timer = evtimer_new(m->base, on_timer, dev)) == NULL)
		fatalx("cannot create a timer", NULL);
	dev->next = m->devs;
	m->devs = dev;
	return dev;
}

struct mgmt_dev *
mgmt_dev_new_device(struct mgmt *m, const struct device_cfg *d,
                    const struct mgmt_board_ops *ops, void *ctx)
{
	struct mgmt_dev *dev;

	if (m == NULL)
		return NULL;
	dev = dev_new(m, d->id, d->name, false, 1, ops, ctx);
	board_init(&dev->boards[0], d->name, &d->mgmt_board);
	dev->file_max = d->mgmt.file_max_bytes;
	actions_build(dev, &d->mgmt);
	dev_connect(dev);
	return dev;
}

struct mgmt_dev *
mgmt_dev_new_group(struct mgmt *m, const struct group_cfg *g,
                   const struct mgmt_board_ops *ops, void *ctx)
{
	struct mgmt_dev *dev;
	size_t i;

	if (m == NULL)
		return NULL;
	dev = dev_new(m, g->id, g->name, true, g->nmembers, ops, ctx);
	for (i = 0; i < g->nmembers; i++)
		board_init(&dev->boards[i], g->members[i].name,
		           &g->members[i].mgmt_board);
	dev->file_max = g->mgmt.file_max_bytes;
	actions_build(dev, &g->mgmt);
	dev_connect(dev);
	return dev;
}

static void
board_free(struct board *b)
{
	struct job *j;
	size_t i;

	while ((j = b->head) != NULL) {
		b->head = j->next;
		job_free(j);
	}
	if ((j = b->running) != NULL) {
		/* The daemon still answers; then it is freed. */
		j->dev = NULL;
		j->done = NULL;
		if (j->guard != NULL)
			event_del(j->guard);
	}
	for (i = 0; i < b->npaths; i++)
		free(b->paths[i]);
	free(b->paths);
	free(b->name);
}

void
mgmt_dev_free(struct mgmt_dev *dev)
{
	struct mgmt_dev **pp;
	struct outmsg *o;
	size_t i;

	if (dev == NULL)
		return;
	for (pp = &dev->m->devs; *pp != NULL; pp = &(*pp)->next)
		if (*pp == dev) {
			*pp = dev->next;
			break;
		}
	shells_free(dev);
	fs_abort(dev, false, "the device was removed");
	logs_free(dev);
	/* Waiting jobs' owners (exec contexts) go with the jobs. */
	for (i = 0; i < dev->nboards; i++) {
		struct job *j;

		for (j = dev->boards[i].head; j != NULL; j = j->next)
			if (j->done == exec_done)
				free(j->owner);
		if ((j = dev->boards[i].running) != NULL &&
		    j->done == exec_done)
			free(j->owner);
		board_free(&dev->boards[i]);
	}
	free(dev->boards);
	ws_free(dev->ws);
	event_free(dev->timer);
	while ((o = dev->outbox) != NULL) {
		dev->outbox = o->next;
		free(o->json);
		free(o);
	}
	for (i = 0; i < dev->nseen; i++)
		free(dev->seen[i].result);
	free(dev->seen);
	for (i = 0; i < dev->nactions; i++) {
		struct action *a = &dev->actions[i];
		size_t k;

		free(a->own_id);
		free(a->own_name);
		free(a->own_desc);
		for (k = 0; k < a->argc; k++)
			free(a->argv[k]);
		free(a->argv);
	}
	free(dev->actions);
	free(dev->id);
	free(dev->name);
	free(dev);
}

struct mgmt *
mgmt_new(struct event_base *base, const struct config *cfg,
         const struct mgmt_tuning *t)
{
	struct mgmt *m;
	size_t i, n;

	if (!cfg->management)
		return NULL;
	m = xcalloc(1, sizeof(*m));
	m->base = base;
	m->server = xstrdup(cfg->server);
	n = strlen(m->server);
	while (n > 0 && m->server[n - 1] == '/')
		m->server[--n] = '\0';
	xasprintf(&m->ws_url, "%s/api/v1/devices/ws", m->server);
	if (mgmt_url_host(m->server, m->server_host, sizeof(m->server_host)) ==
	    -1)
		m->server_host[0] = '\0'; /* config.c checked the URL */
	m->nupload_hosts = cfg->nupload_hosts;
	m->upload_hosts =
	    xcalloc(cfg->nupload_hosts + 1, sizeof(*m->upload_hosts));
	for (i = 0; i < cfg->nupload_hosts; i++)
		m->upload_hosts[i] = xstrdup(cfg->upload_hosts[i]);
	m->ca_file = cfg->ca_file != NULL ? xstrdup(cfg->ca_file) : NULL;
	if (t != NULL)
		m->t = *t;
#define DEF(f, v)                                                              \
	if (m->t.f == 0)                                                       \
	m->t.f = (v)
	DEF(backoff_min_ms, 200);
	DEF(backoff_max_ms, 5000);
	DEF(backoff_slow_ms, 30000);
	DEF(idle_ms, DEFAULT_IDLE);
	DEF(flood_per_s, 200);
	DEF(log_flush_ms, 2000);
	DEF(shell_timeout_ms, 10000);
	DEF(down_log_ms, 60000);
#undef DEF
	if (m->t.backoff_max_ms < m->t.backoff_min_ms)
		m->t.backoff_max_ms = m->t.backoff_min_ms;
	if (m->t.backoff_slow_ms < m->t.backoff_max_ms)
		m->t.backoff_slow_ms = m->t.backoff_max_ms;
	m->rng = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^
	         (uint64_t)(uintptr_t)m;
	m->cv = curlev_new(base);
	m->wsc = ws_client_new(base, m->cv, m->ca_file);
	return m;
}

void
mgmt_free(struct mgmt *m)
{
	size_t i;

	if (m == NULL)
		return;
	if (m->devs != NULL)
		fatalx("management channel freed with devices", NULL);
	ws_client_free(m->wsc);
	curlev_free(m->cv);
	for (i = 0; i < m->nupload_hosts; i++)
		free(m->upload_hosts[i]);
	free(m->upload_hosts);
	free(m->ca_file);
	free(m->ws_url);
	free(m->server);
	free(m);
}

/* Update progress and version. */

void
mgmt_update_started(struct mgmt_dev *dev)
{
	if (dev == NULL)
		return;
	fs_abort(dev, true, "an update started");
	dev->last_percent = -1;
}

void
mgmt_progress(struct mgmt_dev *dev, uint64_t done, uint64_t total)
{
	int p;

	if (dev == NULL)
		return;
	p = mgmt_percent(done, total);
	if (p == dev->last_percent)
		return;
	dev->last_percent = p;
	dev->done_pending = false;
	if (dev->cstate == C_OPEN)
		dev_send(dev, mgmt_enc_progress(p));
}

void
mgmt_update_ended(struct mgmt_dev *dev)
{
	if (dev == NULL)
		return;
	dev->last_percent = -1;
	/* 100 clears the server's progress rows: worth a retry. */
	dev->done_pending = true;
	if (dev->cstate == C_OPEN)
		dev_send(dev, mgmt_enc_progress(100));
}

void
mgmt_version(struct mgmt_dev *dev, const char *version)
{
	char *json;

	if (dev == NULL || version == NULL)
		return;
	json = mgmt_enc_version(version);
	outbox_add(dev, OUT_VERSION, NULL, json);
	free(json);
}

void
mgmt_log_update(struct mgmt_dev *dev, enum mgmt_outcome what, const char *from,
                const char *to, int64_t ms, const char *detail)
{
	static const char *const words[] = {
	    [MGMT_OUT_OFFERED] = "offered",
	    [MGMT_OUT_UPLOADED] = "uploaded",
	    [MGMT_OUT_REJECTED] = "rejected",
	    [MGMT_OUT_ROLLED_BACK] = "rolled back",
	    [MGMT_OUT_UPDATED] = "updated",
	    [MGMT_OUT_FAILED] = "failed",
	};
	char dur[32] = "";

	if (dev == NULL)
		return;
	if (ms >= 0)
		snprintf(dur, sizeof(dur), " in %lld.%03lld s",
		         (long long)(ms / 1000), (long long)(ms % 1000));
	mgmt_log(dev, "update", "%s%s%s%s%s%s%s%s", words[what],
	         from != NULL ? " from " : "", from != NULL ? from : "",
	         to != NULL ? " to " : "", to != NULL ? to : "", dur,
	         detail != NULL ? ": " : "", detail != NULL ? detail : "");
}

void
mgmt_log(struct mgmt_dev *dev, const char *name, const char *fmt, ...)
{
	va_list ap;
	char entry[512];

	if (dev == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(entry, sizeof(entry), fmt, ap);
	va_end(ap);
	logs_add(dev, name, entry);
}

bool
mgmt_dev_connected(const struct mgmt_dev *dev)
{
	return dev != NULL && dev->cstate == C_OPEN;
}

size_t
mgmt_connected_count(const struct mgmt *m)
{
	return m != NULL ? ws_client_open_count(m->wsc) : 0;
}

unsigned
mgmt_fds_per_device(void)
{
	return 1 + MGMT_SHELLS_MAX + 2;
}

int
dev_board_for_path(struct mgmt_dev *dev, const char *file, const char **path)
{
	size_t i, n, best = 0;
	int found = -1;

	if (!dev->group) {
		*path = file;
		return 0;
	}
	/* "<member>:<path>": the longest member name that fits. */
	for (i = 0; i < dev->nboards; i++) {
		n = strlen(dev->boards[i].name);
		if (strncmp(file, dev->boards[i].name, n) == 0 &&
		    file[n] == ':' && n >= best) {
			best = n;
			found = (int)i;
		}
	}
	if (found >= 0)
		*path = file + best + 1;
	return found;
}

/* check-config. */

void
mgmt_plan_board(const char *indent, const struct board_mgmt_cfg *b)
{
	size_t i;

	if (!b->shell && b->nfile_paths == 0)
		return;
	printf("%smanagement: shell %s, files", indent,
	       b->shell ? "on" : "off");
	for (i = 0; i < b->nfile_paths; i++)
		printf("%s%s", i == 0 ? " under " : ", ", b->file_paths[i]);
	printf("%s\n", b->nfile_paths == 0 ? " off" : "");
}

void
mgmt_plan_actions(const char *indent, const struct mgmt_cfg *m)
{
	size_t i, j;

	for (i = 0; i < m->nactions; i++) {
		const struct action_cfg *a = &m->actions[i];

		printf("%saction %s%s%s: shell", indent, a->id,
		       a->member != NULL ? " on " : "",
		       a->member != NULL ? a->member : "");
		for (j = 0; j < a->ncommand; j++)
			printf(" %s", a->command[j]);
		printf(" (timeout %lld ms)\n", (long long)a->timeout_ms);
	}
}

/*
 * The channel's part of check-config's plan; the descriptors it needs are
 * counted with the rest of the fleet's (fdlimit.c), on the plan's
 * "descriptors:" line.
 */
void
mgmt_plan_summary(const struct config *c)
{
	size_t i;

	if (!c->management) {
		printf("management: off\n");
		return;
	}
	printf("management: on, file_max_bytes %lld",
	       (long long)c->file_max_bytes);
	for (i = 0; i < c->nupload_hosts; i++)
		printf("%s%s", i == 0 ? ", upload_hosts " : ", ",
		       c->upload_hosts[i]);
	printf("\n");
}
