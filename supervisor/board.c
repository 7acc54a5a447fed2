/*
 * Asynchronous board operations over a worker (board.h): one SMP request or
 * one polling sequence at a time per board, each ending in one callback
 * from the loop, with the reboot and confirm deadlines on the monotonic
 * clock (libevent timers are monotonic).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "board.h"
#include "ipc.pb-c.h"
#include "log.h"
#include "workers.h"
#include "xmalloc.h"

/* Between polls of a board that is rebooting or deciding. */
#define POLL_MS 250
/*
 * After the reset reply, before the first poll: a board answers the reset
 * and reboots a moment later (Zephyr waits 250 ms by default), and a poll
 * answered before that would look like a board that already came back.
 */
#define RESET_SETTLE_MS 600

enum board_op {
	OP_NONE,
	OP_READ,
	OP_SET,
	OP_RESET,
	OP_WAIT_BOOT,
	OP_WAIT_CONFIRM,
};

struct board {
	char *name;
	struct event_base *base;
	struct worker *w;
	uint32_t id;
	struct timeouts_cfg to;

	enum board_op op;
	uint64_t req_id;
	board_cb cb;
	void *arg;
	uint8_t new_hash[BOARD_HASH_LEN];
	bool set_confirm, set_has_hash; /* OP_SET */
	char last_err[256]; /* why the last poll failed, for the deadline */
	struct event *poll_ev;
	struct event *deadline_ev;

	/* A result waiting to be delivered from the loop. */
	struct event *done_ev;
	enum board_status st;
	char err[256];
	bool has_imgs;
	struct board_images imgs;
};

static void send_op(struct board *b);

static void
reply_reason(const Ipc__Reply *r, char *out, size_t cap)
{
	if (r->status == IPC__REPLY__STATUS__BOARD_ERROR)
		snprintf(out, cap, "board error rc=%d%s%s", r->board_rc,
		         r->error[0] != '\0' ? ": " : "", r->error);
	else
		snprintf(out, cap, "%s%s%s", worker_status_name(r->status),
		         r->error[0] != '\0' ? ": " : "", r->error);
}

int
board_version_rdfm(const struct board_images *imgs, char *out, size_t cap)
{
	const struct board_slot *s = board_slot(imgs, 0);

	if (s == NULL) {
		/* An empty board runs nothing: anything offered is newer. */
		snprintf(out, cap, "0.0.0");
		return 0;
	}
	return mcuboot_version_convert(s->version, MCUBOOT_SPELL_RDFM, out,
	                               cap);
}

/* The worker's list into ours; -1 with err on anything malformed. */
static int
copy_images(const Ipc__ImageList *l, struct board_images *out, char *err,
            size_t errcap)
{
	size_t i;

	memset(out, 0, sizeof(*out));
	if (l->n_slots > BOARD_MAX_SLOTS) {
		snprintf(err, errcap, "image list has %zu slots, at most %d",
		         l->n_slots, BOARD_MAX_SLOTS);
		return -1;
	}
	for (i = 0; i < l->n_slots; i++) {
		const Ipc__ImageSlot *s = l->slots[i];
		struct board_slot *d = &out->slots[i];

		if (strlen(s->version) >= sizeof(d->version)) {
			snprintf(err, errcap,
			         "image list: slot %u version is %zu bytes, "
			         "longer than %zu",
			         s->slot, strlen(s->version),
			         sizeof(d->version) - 1);
			return -1;
		}
		if (s->hash.len != 0 && s->hash.len != BOARD_HASH_LEN) {
			snprintf(err, errcap,
			         "image list: slot %u hash is %zu bytes, not "
			         "%d",
			         s->slot, s->hash.len, BOARD_HASH_LEN);
			return -1;
		}
		d->image = s->image;
		d->slot = s->slot;
		snprintf(d->version, sizeof(d->version), "%s", s->version);
		d->has_hash = s->hash.len == BOARD_HASH_LEN;
		if (d->has_hash)
			memcpy(d->hash, s->hash.data, BOARD_HASH_LEN);
		d->bootable = s->bootable;
		d->pending = s->pending;
		d->confirmed = s->confirmed;
		d->active = s->active;
		d->permanent = s->permanent;
	}
	out->nslots = l->n_slots;
	return 0;
}

static void
done_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct board *b = arg;
	board_cb cb = b->cb;
	struct board_images imgs;
	enum board_status st = b->st;
	char err[sizeof(b->err)];
	bool has = b->has_imgs;

	(void)fd;
	(void)ev;
	/* Copies: the callback may start the next operation. */
	imgs = b->imgs;
	memcpy(err, b->err, sizeof(err));
	b->op = OP_NONE;
	b->cb = NULL;
	if (cb != NULL)
		cb(b, st, err, has ? &imgs : NULL, b->arg);
}

/* Ends the operation; the callback runs from the loop. */
static void finish(struct board *b, enum board_status st,
                   const struct board_images *imgs, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void
finish(struct board *b, enum board_status st, const struct board_images *imgs,
       const char *fmt, ...)
{
	va_list ap;

	event_del(b->poll_ev);
	event_del(b->deadline_ev);
	if (b->req_id != 0) {
		worker_forget(b->w, b->req_id);
		b->req_id = 0;
	}
	b->st = st;
	b->err[0] = '\0';
	if (fmt != NULL) {
		va_start(ap, fmt);
		vsnprintf(b->err, sizeof(b->err), fmt, ap);
		va_end(ap);
	}
	b->has_imgs = imgs != NULL;
	if (imgs != NULL)
		b->imgs = *imgs;
	event_active(b->done_ev, EV_TIMEOUT, 0);
}

static void
poll_later(struct board *b, int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	evtimer_add(b->poll_ev, &tv);
}

static void
on_poll_timer(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	send_op(arg);
}

static void
on_deadline(evutil_socket_t fd, short ev, void *arg)
{
	struct board *b = arg;

	(void)fd;
	(void)ev;
	if (b->op == OP_WAIT_BOOT)
		finish(b, BOARD_DEADLINE, NULL,
		       "the board did not answer within %lld ms after the "
		       "reset (timeouts.reboot)%s%s",
		       (long long)b->to.reboot_ms,
		       b->last_err[0] != '\0' ? "; last error: " : "",
		       b->last_err);
	else
		finish(b, BOARD_DEADLINE, NULL,
		       "the board neither confirmed nor reverted the image "
		       "within %lld ms (timeouts.confirm)%s%s",
		       (long long)b->to.confirm_ms,
		       b->last_err[0] != '\0' ? "; last error: " : "",
		       b->last_err);
}

/* A poll of a waiting operation answered with the list. */
static void
polled(struct board *b, const struct board_images *imgs)
{
	const struct board_slot *s0 = board_slot(imgs, 0);

	if (b->op == OP_WAIT_BOOT) {
		finish(b, BOARD_OK, imgs, NULL);
		return;
	}
	if (s0 == NULL || !s0->has_hash) {
		finish(b, BOARD_REVERTED, imgs, "slot 0 is empty");
		return;
	}
	if (memcmp(s0->hash, b->new_hash, BOARD_HASH_LEN) != 0) {
		finish(b, BOARD_REVERTED, imgs,
		       "the board runs version %s, not the new image",
		       s0->version);
		return;
	}
	if (s0->confirmed) {
		finish(b, BOARD_OK, imgs, NULL);
		return;
	}
	poll_later(b, POLL_MS);
}

static void
on_msg(const Ipc__Envelope *env, void *arg)
{
	struct board *b = arg;
	const Ipc__Reply *r;
	struct board_images imgs;
	char why[200];

	if (env->body_case != IPC__ENVELOPE__BODY_REPLY)
		return;
	r = env->reply;
	b->req_id = 0;
	if (b->op == OP_RESET) {
		/*
		 * A board may reboot before its answer leaves it: anything
		 * but a refusal of the request goes on to waiting.
		 */
		if (r->status == IPC__REPLY__STATUS__BAD_REQUEST ||
		    r->status == IPC__REPLY__STATUS__BOARD_ERROR) {
			reply_reason(r, why, sizeof(why));
			finish(b, BOARD_ERR, NULL, "reset: %s", why);
			return;
		}
		b->op = OP_WAIT_BOOT;
		b->last_err[0] = '\0';
		poll_later(b, RESET_SETTLE_MS);
		return;
	}
	if (r->status != IPC__REPLY__STATUS__OK) {
		reply_reason(r, why, sizeof(why));
		if (b->op == OP_WAIT_BOOT || b->op == OP_WAIT_CONFIRM) {
			snprintf(b->last_err, sizeof(b->last_err), "%s", why);
			log_debug("board not answering yet", "board=%s why=%s",
			          log_q(b->name), log_q(why));
			poll_later(b, POLL_MS);
			return;
		}
		finish(b, BOARD_ERR, NULL, "%s: %s",
		       b->op == OP_READ ? "image list" : "image state", why);
		return;
	}
	if (r->result_case != IPC__REPLY__RESULT_IMAGES) {
		if (b->op == OP_SET) {
			/* Some boards answer a state write with nothing. */
			finish(b, BOARD_OK, NULL, NULL);
			return;
		}
		finish(b, BOARD_ERR, NULL, "the reply carries no image list");
		return;
	}
	if (copy_images(r->images, &imgs, why, sizeof(why)) == -1) {
		finish(b, BOARD_ERR, NULL, "%s", why);
		return;
	}
	if (b->op == OP_WAIT_BOOT || b->op == OP_WAIT_CONFIRM)
		polled(b, &imgs);
	else
		finish(b, BOARD_OK, &imgs, NULL);
}

static void
send_op(struct board *b)
{
	Ipc__Envelope env = IPC__ENVELOPE__INIT;
	Ipc__ImageStateRead isr = IPC__IMAGE_STATE_READ__INIT;
	Ipc__ImageSetState iss = IPC__IMAGE_SET_STATE__INIT;
	Ipc__Reset reset = IPC__RESET__INIT;

	switch (b->op) {
	case OP_READ:
	case OP_WAIT_BOOT:
	case OP_WAIT_CONFIRM:
		env.body_case = IPC__ENVELOPE__BODY_IMAGE_STATE;
		env.image_state = &isr;
		break;
	case OP_SET:
		iss.confirm = b->set_confirm;
		if (b->set_has_hash) {
			iss.hash.data = b->new_hash;
			iss.hash.len = BOARD_HASH_LEN;
		}
		env.body_case = IPC__ENVELOPE__BODY_IMAGE_SET_STATE;
		env.image_set_state = &iss;
		break;
	case OP_RESET:
		env.body_case = IPC__ENVELOPE__BODY_RESET;
		env.reset = &reset;
		worker_expect_link_drop(b->w, (uint64_t)b->to.reboot_ms +
		                                  RESET_SETTLE_MS);
		break;
	case OP_NONE:
		return;
	}
	b->req_id = worker_request(b->w, b->id, &env, on_msg, b);
	if (b->req_id == 0)
		finish(b, BOARD_ERR, NULL, "the worker is stopped");
}

static int
start(struct board *b, enum board_op op, board_cb cb, void *arg,
      int64_t deadline_ms)
{
	struct timeval tv;

	if (b->op != OP_NONE) {
		log_warnx("board busy: operation refused", "board=%s",
		          log_q(b->name));
		return -1;
	}
	b->op = op;
	b->cb = cb;
	b->arg = arg;
	b->last_err[0] = '\0';
	if (deadline_ms > 0) {
		tv.tv_sec = deadline_ms / 1000;
		tv.tv_usec = (deadline_ms % 1000) * 1000;
		evtimer_add(b->deadline_ev, &tv);
	}
	send_op(b);
	return 0;
}

int
board_read(struct board *b, board_cb cb, void *arg)
{
	return start(b, OP_READ, cb, arg, 0);
}

int
board_set_state(struct board *b, const uint8_t *hash, bool confirm, board_cb cb,
                void *arg)
{
	if (b->op == OP_NONE) {
		b->set_confirm = confirm;
		b->set_has_hash = hash != NULL;
		if (hash != NULL)
			memcpy(b->new_hash, hash, BOARD_HASH_LEN);
	}
	return start(b, OP_SET, cb, arg, 0);
}

int
board_reset_wait(struct board *b, board_cb cb, void *arg)
{
	return start(b, OP_RESET, cb, arg, b->to.reboot_ms);
}

int
board_wait_confirm(struct board *b, const uint8_t *new_hash, board_cb cb,
                   void *arg)
{
	if (b->op == OP_NONE)
		memcpy(b->new_hash, new_hash, BOARD_HASH_LEN);
	return start(b, OP_WAIT_CONFIRM, cb, arg, b->to.confirm_ms);
}

void
board_cancel(struct board *b)
{
	event_del(b->poll_ev);
	event_del(b->deadline_ev);
	event_del(b->done_ev);
	if (b->req_id != 0) {
		worker_forget(b->w, b->req_id);
		b->req_id = 0;
	}
	b->op = OP_NONE;
	b->cb = NULL;
}

struct board *
board_new(struct event_base *base, const char *name, struct worker *w,
          uint32_t id, const struct timeouts_cfg *to)
{
	struct board *b = xcalloc(1, sizeof(*b));

	b->name = xstrdup(name);
	b->base = base;
	b->w = w;
	b->id = id;
	b->to = *to;
	b->poll_ev = evtimer_new(base, on_poll_timer, b);
	b->deadline_ev = evtimer_new(base, on_deadline, b);
	b->done_ev = evtimer_new(base, done_cb, b);
	if (b->poll_ev == NULL || b->deadline_ev == NULL || b->done_ev == NULL)
		fatalx("cannot create board timers", "board=%s", log_q(name));
	return b;
}

void
board_free(struct board *b)
{
	if (b == NULL)
		return;
	board_cancel(b);
	event_free(b->poll_ev);
	event_free(b->deadline_ev);
	event_free(b->done_ev);
	free(b->name);
	free(b);
}

const char *
board_name(const struct board *b)
{
	return b->name;
}

struct worker *
board_worker(const struct board *b)
{
	return b->w;
}

uint32_t
board_id(const struct board *b)
{
	return b->id;
}
