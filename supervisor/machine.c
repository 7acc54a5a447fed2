/*
 * The update machine (machine.h).  Every step runs on all members at once
 * (run_all: a single board is a group of one) and ends when each member has
 * ended its part; the journal is written before each step that changes a
 * board, and a step whose record cannot be written does not happen.
 * What to do when is decided in decide.c; this file carries it out.
 */
#include <sys/stat.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "artifact.h"
#include "board.h"
#include "decide.h"
#include "journal.h"
#include "keys.h"
#include "links.h"
#include "log.h"
#include "machine.h"
#include "machine_int.h"
#include "metrics.h"
#include "mgmt.h"
#include "rdfm.h"
#include "spool.h"
#include "upload.h"
#include "util.h"
#include "workers.h"
#include "xmalloc.h"

/* Upload progress lines at most this often, per member. */
#define PROGRESS_LOG_MS 3000
/* Between attempts to reach a member while finishing or undoing. */
#define CONVERGE_RETRY_MS 500
/* Board steps one member may take to reach its target (loop guard). */
#define CONVERGE_MAX_STEPS 8
/* A cycle due while the channel's command holds a board waits this. */
#define MGMT_WAIT_MS 200
/* The first cycles of a fleet spread over at most this. */
#define FIRST_JITTER_MS 10000
/* Cycles start on a grid this coarse, so that a fleet's share wakeups. */
#define CYCLE_GRID_MS 1000

static void cycle_read(struct machine *m);
static void do_check(struct machine *m);
static void converge(struct machine *m, enum decide_dir dir, bool recovering);
static void member_converge(struct member *mb);
static void run_all(struct machine *m, enum step s, void (*fn)(struct member *),
                    void (*after)(struct machine *));

/* --- reasons ------------------------------------------------------------- */

/*
 * Why something failed, kept only while there is one: a thousand idle
 * machines carried a kilobyte of empty reason buffers each.
 */
static const char *
text(const char *s)
{
	return s != NULL ? s : "";
}

static void
text_clear(char **dst)
{
	free(*dst);
	*dst = NULL;
}

static void
text_vset(char **dst, const char *fmt, va_list ap)
{
	char *s;

	if (vasprintf(&s, fmt, ap) == -1)
		fatalx("out of memory", NULL);
	free(*dst);
	*dst = s;
}

static void text_set(char **dst, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
text_set(char **dst, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	text_vset(dst, fmt, ap);
	va_end(ap);
}

/* --- names and log lines ------------------------------------------------ */

static const char *
step_name(const struct machine *m, enum step s)
{
	switch (s) {
	case S_IDLE:
		return "idle";
	case S_READ:
		return "read";
	case S_STARTUP_CONFIRM:
		return "startup-confirm";
	case S_CHECK:
		return "check";
	case S_DOWNLOAD:
		return "download";
	case S_ARTIFACT:
		return "artifact";
	case S_UPLOAD:
		return "upload";
	case S_VERIFY:
		return "verify";
	case S_PENDING:
		return "pending";
	case S_RESET:
		return "reboot";
	case S_WATCH:
		return "confirm";
	case S_CONVERGE:
		/* A single board's way forward is its confirm. */
		if (m->lone && m->dir == DIR_FORWARD)
			return "confirm";
		return m->dir == DIR_FORWARD ? "roll-forward" : "rollback";
	}
	return "?";
}

/* "device=\"a\"", "group=\"g\"" or "group=\"g\" member=\"a\"". */
static const char *
who(const struct machine *m, const struct member *mb, char *buf, size_t cap)
{
	if (!m->group)
		snprintf(buf, cap, "device=%s", log_q(m->name));
	else if (mb == NULL)
		snprintf(buf, cap, "group=%s", log_q(m->name));
	else {
		int n = snprintf(buf, cap, "group=%s", log_q(m->name));

		if (n > 0 && (size_t)n < cap)
			snprintf(buf + n, cap - (size_t)n, " member=%s",
			         log_q(mb->name));
	}
	return buf;
}

static void say(const struct machine *m, const struct member *mb,
                enum log_level lv, const char *msg, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* One log line about the machine (mb NULL) or one of its boards. */
static void
say(const struct machine *m, const struct member *mb, enum log_level lv,
    const char *msg, const char *fmt, ...)
{
	char w[300], tail[900];
	va_list ap;

	tail[0] = '\0';
	if (fmt != NULL) {
		va_start(ap, fmt);
		vsnprintf(tail, sizeof(tail), fmt, ap);
		va_end(ap);
	}
	who(m, mb, w, sizeof(w));
	switch (lv) {
	case LOG_LEVEL_DEBUG:
		log_debug(msg, "%s%s%s", w, tail[0] ? " " : "", tail);
		break;
	case LOG_LEVEL_INFO:
		log_info(msg, "%s%s%s", w, tail[0] ? " " : "", tail);
		break;
	case LOG_LEVEL_WARN:
		log_warnx(msg, "%s%s%s", w, tail[0] ? " " : "", tail);
		break;
	case LOG_LEVEL_ERROR:
		log_errx(msg, "%s%s%s", w, tail[0] ? " " : "", tail);
		break;
	}
}

/* "the board" for a single board, "the group member" in a group. */
static const char *
noun(const struct machine *m)
{
	return m->lone ? "board" : "group member";
}

static bool
holds(const struct board_slot *s, const uint8_t *h)
{
	return s != NULL && s->has_hash &&
	       memcmp(s->hash, h, BOARD_HASH_LEN) == 0;
}

void
machine_timer_ms(struct event *ev, int64_t ms)
{
	struct timeval tv;

	if (ms < 0)
		ms = 0;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(ev, &tv);
}

/* --- journal -------------------------------------------------------------- */

static const char *
kind_name(const struct machine *m)
{
	return m->group ? "group" : "device";
}

/* Write the entry as it stands; false (and logged) when it cannot be. */
static bool
journal_save(struct machine *m)
{
	char err[300];

	if (journal_write(kind_name(m), m->id, &m->j, err, sizeof(err)) == 0)
		return true;
	say(m, NULL, LOG_LEVEL_ERROR, "Cannot write the journal", "error=%s",
	    log_q(err));
	return false;
}

/* The crash point of a phase: "pending", or "group-pending". */
static void
crashpoint(const struct machine *m, enum journal_phase p)
{
	char name[48];
	size_t i;

	snprintf(name, sizeof(name), "%s%s", m->group ? "group-" : "",
	         journal_phase_name(p));
	for (i = 0; name[i] != '\0'; i++)
		if (name[i] == '_')
			name[i] = '-';
	journal_crashpoint(name);
}

/*
 * Every member enters phase p; then the crash point.  false when the
 * record is not on disk: the step it announces must not happen.
 */
static bool
journal_step(struct machine *m, enum journal_phase p)
{
	size_t i;

	m->j.phase = p;
	for (i = 0; i < m->j.nmembers; i++)
		m->j.members[i].phase = p;
	if (!journal_save(m))
		return false;
	crashpoint(m, p);
	return true;
}

static bool
journal_idle(struct machine *m)
{
	journal_entry_clear(&m->j);
	m->j.phase = JP_IDLE;
	return journal_save(m);
}

/* The entry describes the configured members (a changed list cannot be
 * finished from it). */
static bool
journal_fits(const struct machine *m)
{
	size_t i;

	if (m->j.nmembers != m->n)
		return false;
	for (i = 0; i < m->n; i++)
		if (strcmp(m->j.members[i].name, m->mb[i].name) != 0 ||
		    !m->j.members[i].has_new_hash)
			return false;
	return true;
}

/* --- the step running on every member ------------------------------------- */

/* Forget the offer of this cycle; its download is kept for a retry. */
static void
drop_offer(struct machine *m)
{
	size_t i;

	for (i = 0; i < m->n; i++) {
		struct member *mb = &m->mb[i];

		if (mb->up != NULL) {
			upload_free(mb->up);
			mb->up = NULL;
		}
		event_del(mb->stall_ev);
		event_del(mb->upload_done_ev);
		event_del(mb->retry_ev);
		mb->img = NULL;
	}
	if (m->art != NULL) {
		artifact_remove_files(m->art);
		artifact_free(m->art);
		m->art = NULL;
	}
	if (m->entry != NULL) {
		/* Another attempt at this offer need not download it again. */
		if (m->kept == NULL &&
		    strcmp(m->sha, m->offers.fail_sha) == 0 &&
		    strcmp(m->sha, m->offers.skip_sha) != 0)
			m->kept = m->entry;
		else
			spool_unref(m->entry);
		m->entry = NULL;
	}
	m->sha[0] = '\0';
}

/* The kept download, unless (all false) it is the one of m->sha. */
static void
release_kept(struct machine *m, bool all)
{
	if (m->kept == NULL)
		return;
	if (!all && strcmp(spool_sha256(m->kept), m->sha) == 0)
		return;
	spool_unref(m->kept);
	m->kept = NULL;
}

/* Stop everything in flight: the journal says where we were. */
static void
go_idle(struct machine *m)
{
	size_t i;

	for (i = 0; i < m->n; i++) {
		board_cancel(m->mb[i].board);
		m->mb[i].active = false;
	}
	m->outstanding = 0;
	m->after = NULL;
	drop_offer(m);
	m->step = S_IDLE;
	m->env->idle(m->env->arg);
}

static void
step_release(struct machine *m)
{
	void (*after)(struct machine *) = m->after;

	if (m->outstanding == 0 || --m->outstanding > 0)
		return;
	m->after = NULL;
	if (m->stop) {
		say(m, NULL, LOG_LEVEL_INFO,
		    "Stopped in the middle of the update; it goes on at the "
		    "next start",
		    "phase=%s", step_name(m, m->step));
		go_idle(m);
		return;
	}
	if (after != NULL)
		after(m);
}

/*
 * Runs fn on every member at once; each ends its part with member_done(),
 * and after runs when all have.  The extra count keeps a member that
 * finishes at once from ending the step before the others started.
 */
static void
run_all(struct machine *m, enum step s, void (*fn)(struct member *),
        void (*after)(struct machine *))
{
	size_t i;

	m->step = s;
	m->after = after;
	m->failed = false;
	text_clear(&m->fail_reason);
	m->outstanding = m->n + 1;
	for (i = 0; i < m->n; i++) {
		m->mb[i].active = true;
		m->mb[i].ok = false;
		text_clear(&m->mb[i].err);
	}
	for (i = 0; i < m->n; i++)
		fn(&m->mb[i]);
	step_release(m);
}

static void member_done(struct member *mb, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
member_done(struct member *mb, bool ok, const char *fmt, ...)
{
	struct machine *m = mb->m;
	va_list ap;
	size_t i;

	if (!mb->active)
		return;
	mb->active = false;
	mb->ok = ok;
	if (!ok) {
		va_start(ap, fmt);
		text_vset(&mb->err, fmt, ap);
		va_end(ap);
		if (!m->lone)
			say(m, mb, LOG_LEVEL_ERROR, "Group member failed",
			    "phase=%s reason=%s", step_name(m, m->step),
			    log_q(mb->err));
		if (!m->failed) {
			m->failed = true;
			if (m->lone)
				text_set(&m->fail_reason, "%s", mb->err);
			else
				text_set(&m->fail_reason, "member %s: %s",
				         mb->name, mb->err);
		}
		/* No point finishing the other uploads: stop them. */
		if (m->step == S_UPLOAD)
			for (i = 0; i < m->n; i++)
				if (m->mb[i].up != NULL && m->mb[i].active)
					upload_abort(m->mb[i].up);
	}
	step_release(m);
}

/* --- end of a cycle ------------------------------------------------------- */

/*
 * The next cycle in ms, rounded up to a grid of the monotonic clock (a
 * tenth of the delay, at most CYCLE_GRID_MS): a thousand boards polling
 * every 10 s then wake the daemon once a second for a hundred cycles, not
 * a hundred times, and no delay grows by more than a tenth.
 */
static void
cycle_timer(struct machine *m, int64_t ms)
{
	uint64_t now = now_ms(), at, grid = 0;

	if (ms > 0)
		grid = ms / 10 < CYCLE_GRID_MS ? (uint64_t)(ms / 10)
		                               : CYCLE_GRID_MS;
	if (grid > 1) {
		at = now + (uint64_t)ms + grid - 1;
		ms = (int64_t)(at - at % grid - now);
	}
	machine_timer_ms(m->cycle_ev, ms);
}

static void
cycle_end(struct machine *m, enum outcome o, int64_t delay_ms)
{
	drop_offer(m);
	m->step = S_IDLE;
	m->first_cycle = false;
	if (m->mgmt_update && !decide_in_flight(m->j.phase))
		mm_update_ended(m, o == O_UPDATED, m->stats.last_error);
	mm_cycle_ended(m);
	if (m->env->once) {
		m->env->cycle_done(m->env->arg,
		                   o == O_UP_TO_DATE || o == O_UPDATED);
		return;
	}
	if (m->stop || m->retire) {
		m->env->idle(m->env->arg);
		return;
	}
	cycle_timer(m, delay_ms);
}

static void fail(struct machine *m, enum fail_kind kind, enum step at,
                 int64_t server_ms, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/*
 * One ERROR line naming the machine, phase and reason, and the next cycle
 * as the retry policy says.  While stopping, a failure is only the stop.
 */
static void
fail(struct machine *m, enum fail_kind kind, enum step at, int64_t server_ms,
     const char *fmt, ...)
{
	struct fail_verdict v;
	char reason[700];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	if (m->stop) {
		say(m, NULL, LOG_LEVEL_INFO,
		    "Stopped in the middle of the update; it goes on at the "
		    "next start",
		    "phase=%s", step_name(m, at));
		go_idle(m);
		return;
	}
	v = offer_failed(&m->offers, m->sha, kind, m->env->retries,
	                 m->interval_ms, server_ms);
	stats_failed(&m->stats, step_name(m, at));
	stats_error(&m->stats, kind == FAIL_LOCAL, reason);
	if (v.counted && m->env->retries > 0)
		say(m, NULL, LOG_LEVEL_ERROR, "Update failed",
		    "phase=%s reason=%s attempt=%u/%d", step_name(m, at),
		    log_q(reason), v.attempt, m->env->retries);
	else if (v.counted)
		say(m, NULL, LOG_LEVEL_ERROR, "Update failed",
		    "phase=%s reason=%s attempt=%u", step_name(m, at),
		    log_q(reason), v.attempt);
	else
		say(m, NULL, LOG_LEVEL_ERROR, "Update failed",
		    "phase=%s reason=%s%s", step_name(m, at), log_q(reason),
		    kind == FAIL_LOCAL ? " retry=when-resolved" : "");
	if (v.give_up)
		say(m, NULL, LOG_LEVEL_WARN,
		    "Giving up on this update until the server offers another",
		    "sha256=%s attempts=%u", m->sha, v.attempt);
	cycle_end(m, O_FAILED, v.delay_ms);
}

/* A journal record that cannot be written: this host's trouble. */
static void
fail_journal(struct machine *m, enum step at)
{
	fail(m, FAIL_LOCAL, at, 0,
	     "the journal cannot be written, so the next step does not "
	     "happen; it is tried again later");
}

/*
 * A failure before the commit point: every member goes back to the image
 * it ran before, then the failure is reported.
 */
static void
roll_back(struct machine *m, enum fail_kind kind)
{
	if (!m->lone)
		say(m, NULL, LOG_LEVEL_ERROR,
		    "Group update failed before its commit point; rolling "
		    "every member back",
		    "phase=%s reason=%s", step_name(m, m->step),
		    log_q(text(m->fail_reason)));
	m->failed_step = m->step;
	m->fail_kind = kind;
	text_set(&m->rollback_reason, "%s", text(m->fail_reason));
	converge(m, DIR_BACK, false);
}

/* --- finishing and undoing ------------------------------------------------ */

static void
conv_retry(struct member *mb, const char *why)
{
	struct machine *m = mb->m;

	if (now_ms() >= mb->conv_deadline_ms) {
		member_done(mb, false,
		            "unreachable: %s; it is brought to the %s's "
		            "version when it answers again",
		            why, m->lone ? "update" : "group");
		return;
	}
	say(m, mb, LOG_LEVEL_DEBUG, "Board not answering yet", "why=%s",
	    log_q(why));
	machine_timer_ms(mb->retry_ev, CONVERGE_RETRY_MS);
}

static void
on_conv_retry(evutil_socket_t fd, short ev, void *arg)
{
	struct member *mb = arg;

	(void)fd;
	(void)ev;
	if (mb->active)
		member_converge(mb);
}

/* A step towards the target was taken (or failed): look again. */
static void
on_conv_step(struct board *b, enum board_status st, const char *err,
             const struct board_images *imgs, void *arg)
{
	struct member *mb = arg;

	(void)b;
	(void)imgs;
	if (!mb->active)
		return;
	if (st == BOARD_DEADLINE) {
		/* Only a watched board has a deadline of its own. */
		member_done(mb, false, "%s", err);
		return;
	}
	if (st != BOARD_OK && st != BOARD_REVERTED) {
		conv_retry(mb, err);
		return;
	}
	member_converge(mb);
}

static void
conv_member_finished(struct member *mb)
{
	struct machine *m = mb->m;

	m->j.members[mb->idx].phase = m->dir == DIR_BACK ? JP_IDLE : JP_DONE;
	/* Progress only: the record of the whole step is on disk already. */
	journal_save(m);
	member_done(mb, true, NULL);
}

/* Carry out decide_member()'s step; returns -1 when the board is busy. */
static int
conv_act(struct member *mb, enum member_act act, const uint8_t *target)
{
	struct machine *m = mb->m;
	const uint8_t *new_hash = m->j.members[mb->idx].new_hash;
	char msg[120];

	switch (act) {
	case ACT_CONFIRM:
		return board_set_state(mb->board,
		                       m->dir == DIR_BACK ? NULL : new_hash,
		                       true, on_conv_step, mb);
	case ACT_WATCH:
		snprintf(msg, sizeof(msg),
		         "Waiting for the %s to confirm the new image",
		         noun(m));
		say(m, mb, LOG_LEVEL_INFO, msg, NULL);
		return board_wait_confirm(mb->board, new_hash, on_conv_step,
		                          mb);
	case ACT_RESET:
		snprintf(msg, sizeof(msg), "Resetting the %s to %s", noun(m),
		         m->dir == DIR_BACK ? "undo the test boot"
		                            : "boot the new image");
		say(m, mb, LOG_LEVEL_INFO, msg, NULL);
		return board_reset_wait(mb->board, on_conv_step, mb);
	case ACT_PERMANENT:
		if (m->dir == DIR_BACK)
			snprintf(
			    msg, sizeof(msg),
			    "%s confirmed the new image; switching it back "
			    "to the old one",
			    m->lone ? "The board" : "Group member");
		else
			snprintf(
			    msg, sizeof(msg),
			    "%s is not on the new image; switching it over",
			    m->lone ? "The board" : "Group member");
		say(m, mb, LOG_LEVEL_INFO, msg, NULL);
		return board_set_state(mb->board, target, true, on_conv_step,
		                       mb);
	default:
		return 0;
	}
}

/* Slot 0 and 1 of image 0 hold the same images with the same flags. */
static bool
same_slot(const struct board_slot *a, const struct board_slot *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return a->has_hash == b->has_hash &&
	       memcmp(a->hash, b->hash, BOARD_HASH_LEN) == 0 &&
	       a->pending == b->pending && a->confirmed == b->confirmed;
}

static bool
same_slots(const struct board_images *a, const struct board_images *b)
{
	return same_slot(board_slot(a, 0), board_slot(b, 0)) &&
	       same_slot(board_slot(a, 1), board_slot(b, 1));
}

/*
 * One look at the board, then the one step decide_member() says brings it
 * closer to its old image (back) or to its new one, confirmed (forward).
 */
static void
on_conv_read(struct board *b, enum board_status st, const char *err,
             const struct board_images *imgs, void *arg)
{
	struct member *mb = arg;
	struct machine *m = mb->m;
	const uint8_t *target;
	enum member_act act;
	char why[400], msg[80], v[MCUBOOT_VERSION_MAX];
	const struct board_slot *s0;

	(void)b;
	if (!mb->active)
		return;
	if (st != BOARD_OK || imgs == NULL) {
		conv_retry(mb, err[0] != '\0' ? err : "no image list");
		return;
	}
	mb->imgs = *imgs;
	mb->has_imgs = true;
	s0 = board_slot(imgs, 0);
	if (++mb->conv_steps > CONVERGE_MAX_STEPS) {
		member_done(mb, false,
		            "still not on the %s image after %d steps (slot 0 "
		            "runs version %s)",
		            m->dir == DIR_BACK ? "old" : "new",
		            CONVERGE_MAX_STEPS,
		            board_slot_version(s0, v, sizeof(v)));
		return;
	}
	act = decide_member(m->dir, &m->j.members[mb->idx], mb->self_confirm,
	                    m->lone, imgs, &target, why, sizeof(why));
	if (act == ACT_RESET && mb->reset_sent &&
	    same_slots(&mb->before_reset, imgs)) {
		member_done(mb, false,
		            "a reset left its slots as they were (slot 1 still "
		            "pending): no bootloader acts on the marks, so "
		            "resetting again would not help");
		return;
	}
	mb->reset_sent = act == ACT_RESET;
	if (mb->reset_sent)
		mb->before_reset = *imgs;
	switch (act) {
	case ACT_DONE:
		if (m->dir == DIR_FORWARD)
			snprintf(msg, sizeof(msg),
			         "%s confirmed on the new image",
			         m->lone ? "Board" : "Group member");
		else
			snprintf(msg, sizeof(msg), "%s back on its old image",
			         m->lone ? "Board" : "Group member");
		say(m, mb, m->lone ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO, msg,
		    "version=%s", board_slot_version(s0, v, sizeof(v)));
		conv_member_finished(mb);
		return;
	case ACT_NO_OLD:
		say(m, mb, LOG_LEVEL_WARN,
		    "The board had no image before the update; nothing to "
		    "roll back to",
		    NULL);
		conv_member_finished(mb);
		return;
	case ACT_REJECTED:
		mb->rejected = true;
		member_done(mb, false, "%s", why);
		return;
	case ACT_STUCK:
		member_done(mb, false, "%s", why);
		return;
	default:
		if (conv_act(mb, act, target) == -1)
			conv_retry(mb, "the board is busy");
		return;
	}
}

static void
member_converge(struct member *mb)
{
	if (board_read(mb->board, on_conv_read, mb) == -1)
		conv_retry(mb, "the board is busy");
}

static void
conv_start_member(struct member *mb)
{
	const struct timeouts_cfg *to = mb->m->to;

	mb->conv_steps = 0;
	mb->rejected = false;
	mb->reset_sent = false;
	/* A member rebooting twice must fit; unreachable after that. */
	mb->conv_deadline_ms =
	    now_ms() + (uint64_t)to->reboot_ms * 2 + (uint64_t)to->request_ms;
	member_converge(mb);
}

static void succeed(struct machine *m);

/* Members that did not get there; logged for a group.  Rejections too. */
static size_t
conv_failures(struct machine *m, bool *rejected)
{
	size_t i, bad = 0;

	*rejected = false;
	for (i = 0; i < m->n; i++) {
		if (m->mb[i].ok)
			continue;
		bad++;
		if (m->mb[i].rejected)
			*rejected = true;
		if (!m->lone)
			say(m, &m->mb[i], LOG_LEVEL_ERROR,
			    m->dir == DIR_BACK ? "Group member not rolled back"
			                       : "Group member not rolled "
			                         "forward",
			    "reason=%s", log_q(text(m->mb[i].err)));
	}
	return bad;
}

static void
after_forward(struct machine *m, size_t bad, bool rejected)
{
	if (bad == 0) {
		succeed(m);
		return;
	}
	if (rejected) {
		/* The board's own decision ends this attempt. */
		if (journal_idle(m))
			fail(m, FAIL_ATTEMPT, S_CONVERGE, 0, "%s",
			     text(m->fail_reason));
		else
			fail_journal(m, S_CONVERGE);
		return;
	}
	/* The journal keeps the direction: the next cycle goes on. */
	if (m->lone)
		fail(m, FAIL_TRANSIENT, S_CONVERGE, 0, "%s",
		     text(m->fail_reason));
	else
		fail(m, FAIL_TRANSIENT, S_CONVERGE, 0,
		     "%zu of %zu members not yet on the group's new version",
		     bad, m->n);
}

static void
after_back(struct machine *m, size_t bad)
{
	if (bad > 0) {
		/* The journal keeps the direction: the next cycle goes on. */
		if (!m->recovering && m->lone)
			fail(m, m->fail_kind, m->failed_step, 0,
			     "%s; not rolled back yet: %s",
			     text(m->rollback_reason), text(m->mb[0].err));
		else if (!m->recovering)
			fail(m, m->fail_kind, m->failed_step, 0,
			     "%s; rolled back, except %zu member(s) (reasons "
			     "above)",
			     text(m->rollback_reason), bad);
		else
			fail(m, FAIL_TRANSIENT, S_CONVERGE, 0,
			     "%zu of %zu members not yet rolled back", bad,
			     m->n);
		return;
	}
	if (!journal_idle(m)) {
		fail_journal(m, S_CONVERGE);
		return;
	}
	if (!m->lone)
		say(m, NULL, LOG_LEVEL_INFO,
		    "Group rolled back: every member runs its old image", NULL);
	m->rolled_back = true;
	mm_version(m);
	if (m->recovering) {
		/* Nothing failed in this run: go on with a normal cycle. */
		m->recovering = false;
		cycle_read(m);
		return;
	}
	fail(m, m->fail_kind, m->failed_step, 0, "%s%s",
	     text(m->rollback_reason),
	     m->lone ? "" : "; every member rolled back");
}

static void
after_converge(struct machine *m)
{
	bool rejected;
	size_t bad = conv_failures(m, &rejected);

	if (m->dir == DIR_FORWARD)
		after_forward(m, bad, rejected);
	else
		after_back(m, bad);
}

static void
converge(struct machine *m, enum decide_dir dir, bool recovering)
{
	enum journal_phase commit = decide_commit_phase(m->n);

	m->dir = dir;
	m->recovering = recovering;
	if (dir == DIR_BACK) {
		if (!journal_step(m, JP_ROLLING_BACK)) {
			fail_journal(m, S_CONVERGE);
			return;
		}
	} else if (m->j.phase < commit && !journal_step(m, commit)) {
		fail_journal(m, S_CONVERGE);
		return;
	}
	run_all(m, S_CONVERGE, conv_start_member, after_converge);
}

/* --- the forward path ----------------------------------------------------- */

static void
on_reported(struct rdfm_dev *rd, const struct rdfm_result *res, void *arg)
{
	struct machine *m = arg;

	(void)rd;
	mm_rdfm_idle(m);
	if (res->status != RDFM_AUTHENTICATED)
		say(m, NULL, LOG_LEVEL_WARN,
		    "The server could not be told the running version yet; it "
		    "learns it at the next authentication",
		    "version=%s error=%s", m->version, log_q(res->error));
	cycle_end(m, m->report_outcome, m->report_delay_ms);
}

/*
 * The boards run another version than the server last heard: tell it at
 * once (it stores the version only when a device authenticates), then end
 * the cycle.
 */
static void
report_version_then(struct machine *m, enum outcome o, int64_t delay_ms)
{
	m->report_outcome = o;
	m->report_delay_ms = delay_ms;
	/* An open management channel has told the server already. */
	if (m->stop || mgmt_dev_connected(m->md) ||
	    rdfm_report_version(m->rd, m->version, on_reported, m) == -1)
		cycle_end(m, o, delay_ms);
}

static void
succeed(struct machine *m)
{
	char v[sizeof(m->j.target_version)];

	snprintf(v, sizeof(v), "%s",
	         m->j.target_version[0] != '\0' ? m->j.target_version
	                                        : "unknown");
	/* Nothing changes a board after this record: a failure is logged. */
	journal_step(m, JP_DONE);
	if (m->lone)
		say(m, NULL, LOG_LEVEL_INFO, "Update successful",
		    "new_version=%s", v);
	else
		say(m, NULL, LOG_LEVEL_INFO, "Update successful",
		    "members=%zu new_version=%s", m->n, v);
	stats_succeeded(&m->stats);
	snprintf(m->version, sizeof(m->version), "%s", v);
	offer_succeeded(&m->offers);
	mm_version(m);
	m->recovering = false;
	/* Check again at once: the server may offer the next hop. */
	report_version_then(m, O_UPDATED, 0);
}

/* Past every check of a group: make it permanent (the commit point). */
static void
after_watch(struct machine *m)
{
	if (m->failed) {
		roll_back(m, FAIL_ATTEMPT);
		return;
	}
	say(m, NULL, LOG_LEVEL_INFO,
	    "Every group member runs the new image; committing", NULL);
	converge(m, DIR_FORWARD, false);
}

static void
on_watched(struct board *b, enum board_status st, const char *err,
           const struct board_images *imgs, void *arg)
{
	struct member *mb = arg;

	(void)b;
	(void)imgs;
	if (st == BOARD_REVERTED)
		member_done(mb, false,
		            "rejected: the member reverted to its old image "
		            "instead of confirming the new one (%s)",
		            err);
	else if (st != BOARD_OK)
		member_done(mb, false, "%s", err);
	else
		member_done(mb, true, NULL);
}

/* Before a group's commit: its self-confirming members decide. */
static void
watch_member(struct member *mb)
{
	struct machine *m = mb->m;

	if (!mb->self_confirm) {
		/* Ours to confirm, after the commit point. */
		member_done(mb, true, NULL);
		return;
	}
	say(m, mb, LOG_LEVEL_INFO,
	    "Waiting for the group member to confirm the new image", NULL);
	if (board_wait_confirm(mb->board, m->j.members[mb->idx].new_hash,
	                       on_watched, mb) == -1)
		member_done(mb, false, "the board is busy");
}

/* Every member runs the new image. */
static void
booted(struct machine *m)
{
	if (!journal_step(m, JP_CONFIRMING)) {
		fail_journal(m, S_WATCH);
		return;
	}
	if (m->lone) {
		/* A single board has committed: confirm it, or watch it. */
		converge(m, DIR_FORWARD, false);
		return;
	}
	run_all(m, S_WATCH, watch_member, after_watch);
}

static void
after_reset(struct machine *m)
{
	if (m->failed && m->lone && m->mb[0].late) {
		/*
		 * A single board that reboots slower than timeouts.reboot may
		 * still come up on the new image: the journal stays, and the
		 * next cycle finds out (decide_recovery) instead of undoing it.
		 */
		fail(m, FAIL_ATTEMPT, S_RESET, 0, "%s", text(m->fail_reason));
		return;
	}
	if (m->failed) {
		roll_back(m, FAIL_ATTEMPT);
		return;
	}
	booted(m);
}

static void
on_booted(struct board *b, enum board_status st, const char *err,
          const struct board_images *imgs, void *arg)
{
	struct member *mb = arg;
	struct machine *m = mb->m;
	const struct board_slot *s0;
	char msg[80], v[MCUBOOT_VERSION_MAX];

	(void)b;
	mb->late = st == BOARD_DEADLINE;
	if (st != BOARD_OK || imgs == NULL) {
		member_done(mb, false, "%s", err[0] != '\0' ? err : "no list");
		return;
	}
	mb->imgs = *imgs;
	s0 = board_slot(imgs, 0);
	if (!holds(s0, m->j.members[mb->idx].new_hash)) {
		member_done(mb, false,
		            "rejected: after the reset the %s still runs "
		            "version %s, not the new image",
		            noun(m), board_slot_version(s0, v, sizeof(v)));
		return;
	}
	snprintf(msg, sizeof(msg), "The %s runs the new image", noun(m));
	say(m, mb, LOG_LEVEL_INFO, msg, "version=%s",
	    board_slot_version(s0, v, sizeof(v)));
	member_done(mb, true, NULL);
}

static void
reset_member(struct member *mb)
{
	char msg[80];

	snprintf(msg, sizeof(msg), "Resetting the %s into the new image",
	         noun(mb->m));
	say(mb->m, mb, LOG_LEVEL_INFO, msg, NULL);
	if (board_reset_wait(mb->board, on_booted, mb) == -1)
		member_done(mb, false, "the board is busy");
}

static void
do_reset(struct machine *m)
{
	if (!journal_step(m, JP_RESETTING)) {
		fail_journal(m, S_RESET);
		return;
	}
	run_all(m, S_RESET, reset_member, after_reset);
}

static void
after_pending(struct machine *m)
{
	if (m->failed) {
		roll_back(m, FAIL_ATTEMPT);
		return;
	}
	do_reset(m);
}

static void
on_pending(struct board *b, enum board_status st, const char *err,
           const struct board_images *imgs, void *arg)
{
	struct member *mb = arg;

	(void)b;
	(void)imgs;
	if (st != BOARD_OK)
		member_done(mb, false,
		            "cannot mark the image for a test boot: %s", err);
	else
		member_done(mb, true, NULL);
}

static void
pend_member(struct member *mb)
{
	if (board_set_state(mb->board, mb->m->j.members[mb->idx].new_hash,
	                    false, on_pending, mb) == -1)
		member_done(mb, false, "the board is busy");
}

static void
after_verify(struct machine *m)
{
	if (m->failed) {
		roll_back(m, FAIL_ATTEMPT);
		return;
	}
	if (!journal_step(m, JP_PENDING)) {
		fail_journal(m, S_PENDING);
		return;
	}
	run_all(m, S_PENDING, pend_member, after_pending);
}

static void
on_verified(struct board *b, enum board_status st, const char *err,
            const struct board_images *imgs, void *arg)
{
	struct member *mb = arg;
	const struct board_slot *s1;
	char h[65], want[65];

	(void)b;
	if (st != BOARD_OK || imgs == NULL) {
		member_done(mb, false, "%s", err[0] != '\0' ? err : "no list");
		return;
	}
	s1 = board_slot(imgs, 1);
	if (!holds(s1, mb->img->mcuboot.hash)) {
		if (s1 != NULL && s1->has_hash)
			hex_encode(s1->hash, BOARD_HASH_LEN, h);
		else
			snprintf(h, sizeof(h), "(none)");
		hex_encode(mb->img->mcuboot.hash, BOARD_HASH_LEN, want);
		member_done(
		    mb, false,
		    "slot 1 holds hash %s after the upload, expected %s", h,
		    want);
		return;
	}
	member_done(mb, true, NULL);
}

static void
verify_member(struct member *mb)
{
	if (board_read(mb->board, on_verified, mb) == -1)
		member_done(mb, false, "the board is busy");
}

static void
after_upload(struct machine *m)
{
	if (m->failed) {
		roll_back(m, FAIL_ATTEMPT);
		return;
	}
	if (m->cycle_bytes > 0)
		stats_uploaded(&m->stats, m->cycle_bytes, m->cycle_upload_ms, 0,
		               0);
	run_all(m, S_VERIFY, verify_member, after_verify);
}

/* --- upload (one per member, in parallel) --------------------------------- */

static void
arm_stall(struct member *mb)
{
	machine_timer_ms(mb->stall_ev, mb->m->to->stall_ms);
}

static void
on_stall(evutil_socket_t fd, short ev, void *arg)
{
	struct member *mb = arg;

	(void)fd;
	(void)ev;
	if (mb->up == NULL)
		return;
	mb->stalled = true;
	upload_abort(mb->up);
}

static void
on_upload_progress(uint64_t off, uint64_t total, void *arg)
{
	struct member *mb = arg;
	uint64_t now = now_ms(), el;

	if (off > mb->up_acked) {
		mb->up_acked = off;
		arm_stall(mb);
		mm_progress(mb->m);
	}
	if (now - mb->up_log_ms < PROGRESS_LOG_MS || total == 0)
		return;
	mb->up_log_ms = now;
	el = now - mb->up_started_ms;
	say(mb->m, mb, LOG_LEVEL_INFO, "Uploading",
	    "percent=%.1f bytes=%" PRIu64 " total=%" PRIu64 " bytes_per_s=%.0f",
	    100.0 * (double)off / (double)total, off, total,
	    el != 0 ? (double)off * 1000.0 / (double)el : 0.0);
}

/* May come from inside upload_abort(): finished from the loop. */
static void
on_upload_done(const Ipc__Reply *reply, void *arg)
{
	struct member *mb = arg;

	mb->up_status = reply->status;
	snprintf(mb->up_error, sizeof(mb->up_error), "%s", reply->error);
	event_active(mb->upload_done_ev, EV_TIMEOUT, 0);
}

static void
upload_finished(evutil_socket_t fd, short ev, void *arg)
{
	struct member *mb = arg;
	struct machine *m = mb->m;
	uint64_t el = now_ms() - mb->up_started_ms,
	         total = upload_total(mb->up);
	uint32_t win = upload_window(mb->up), rew = upload_rewinds(mb->up);

	(void)fd;
	(void)ev;
	event_del(mb->stall_ev);
	upload_free(mb->up);
	mb->up = NULL;
	if (mb->up_status == IPC__REPLY__STATUS__ABORTED && m->stop) {
		say(m, mb, LOG_LEVEL_INFO,
		    "Upload stopped; it resumes at the next start",
		    "acked=%" PRIu64, mb->up_acked);
		member_done(mb, true, NULL);
		return;
	}
	if (mb->stalled) {
		member_done(
		    mb, false,
		    "the upload made no progress for %lld ms "
		    "(timeouts.stall); last acknowledged offset %" PRIu64,
		    (long long)m->to->stall_ms, mb->up_acked);
		return;
	}
	if (mb->up_status == IPC__REPLY__STATUS__ABORTED && m->failed) {
		/* Stopped by us: the other member's failure says why. */
		member_done(mb, true, NULL);
		return;
	}
	if (mb->up_status != IPC__REPLY__STATUS__OK) {
		member_done(mb, false, "%s",
		            mb->up_error[0] ? mb->up_error : "upload failed");
		return;
	}
	say(m, mb, LOG_LEVEL_INFO, "Upload finished",
	    "bytes=%" PRIu64 " seconds=%.1f bytes_per_s=%.0f window=%u "
	    "rewinds=%u",
	    total, (double)el / 1000.0,
	    el != 0 ? (double)total * 1000.0 / (double)el : 0.0, win, rew);
	/* A group's figures: the last member's window, every rewind. */
	stats_uploaded(&m->stats, 0, 0, win, rew);
	/* The rate of the step: all members' bytes over the slowest. */
	m->cycle_bytes += total;
	if (el > m->cycle_upload_ms)
		m->cycle_upload_ms = el;
	member_done(mb, true, NULL);
}

static void
upload_member(struct member *mb)
{
	struct machine *m = mb->m;
	struct upload_opts o;
	char err[512];

	if (holds(board_slot(&mb->imgs, 1), mb->img->mcuboot.hash)) {
		say(m, mb, LOG_LEVEL_INFO,
		    "Slot 1 already holds the image; not uploading it again",
		    NULL);
		member_done(mb, true, NULL);
		return;
	}
	memset(&o, 0, sizeof(o));
	mb->stalled = false;
	mb->up_acked = 0;
	mb->up_started_ms = mb->up_log_ms = now_ms();
	say(m, mb, LOG_LEVEL_INFO, "Uploading the new image",
	    "version=%s bytes=%" PRIu64, mb->img->version_rdfm, mb->img->size);
	mb->up = upload_start(m->env->base, board_worker(mb->board),
	                      board_id(mb->board), mb->img->path, &o,
	                      on_upload_progress, on_upload_done, mb, err,
	                      sizeof(err));
	if (mb->up == NULL) {
		member_done(mb, false, "%s", err);
		return;
	}
	arm_stall(mb);
}

/* --- artifact ------------------------------------------------------------- */

/*
 * The work directory under state_dir/work, named after the id: a
 * file-name-safe spelling of it, with a hash of the id as written when
 * the spelling had to change (so "a/b" and "a_b" differ).  malloc'd.
 */
static char *
make_workdir(const struct machine *m, char *err, size_t errcap)
{
	char safe[128], *dir, *top;
	uint32_t h = 2166136261u; /* FNV-1a */
	bool changed = false;
	size_t i, n = 0;

	for (i = 0; m->id[i] != '\0'; i++) {
		char ch = m->id[i];
		bool ok = (ch >= 'a' && ch <= 'z') ||
		          (ch >= 'A' && ch <= 'Z') ||
		          (ch >= '0' && ch <= '9') || ch == '-' || ch == '.';

		h = (h ^ (uint8_t)ch) * 16777619u;
		if (!ok || n >= 100)
			changed = true;
		if (n < 100)
			safe[n++] = ok ? ch : '_';
	}
	safe[n] = '\0';
	if (changed || n == 0 || strcmp(safe, ".") == 0 ||
	    strcmp(safe, "..") == 0)
		snprintf(safe + n, sizeof(safe) - n, "-%08x", (unsigned int)h);
	xasprintf(&top, "%s/work", m->env->state_dir);
	if (mkdir(top, 0700) == -1 && errno != EEXIST) {
		snprintf(err, errcap, "%s: %s", top, strerror(errno));
		free(top);
		return NULL;
	}
	xasprintf(&dir, "%s/%s%s", top, m->group ? "group-" : "", safe);
	free(top);
	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		snprintf(err, errcap, "%s: %s", dir, strerror(errno));
		free(dir);
		return NULL;
	}
	return dir;
}

/* Every member's image; the names of those without one. */
static bool
images_for_members(struct machine *m, char *missing, size_t cap)
{
	size_t i;
	int n = 0;

	missing[0] = '\0';
	if (m->lone) {
		m->mb[0].img = &m->art->images[0];
		return true;
	}
	for (i = 0; i < m->n; i++) {
		struct member *mb = &m->mb[i];

		mb->img = artifact_image_for(m->art, mb->image);
		if (mb->img != NULL && mb->img->path != NULL)
			continue;
		mb->img = NULL;
		if (n >= 0 && (size_t)n < cap)
			n += snprintf(missing + n, cap - (size_t)n,
			              "%s%s (image \"%s\")", n > 0 ? ", " : "",
			              mb->name, mb->image);
	}
	return missing[0] == '\0';
}

/* Why the artifact does not fit this machine, or NULL when it does. */
static const char *
artifact_misfit(struct machine *m, char *why, size_t cap)
{
	enum artifact_type want =
	    m->group ? ARTIFACT_ZEPHYR_GROUP_IMAGE : ARTIFACT_ZEPHYR_IMAGE;
	char types[256] = "", missing[512];
	size_t i;
	int n = 0;

	if (m->art->type != want) {
		snprintf(why, cap, "it is a %s, a %s needs a %s",
		         artifact_type_name(m->art->type),
		         m->group ? "group" : "single board",
		         artifact_type_name(want));
		return why;
	}
	if (!artifact_compatible(m->art, m->type)) {
		for (i = 0; i < m->art->ndevice_types; i++)
			n += snprintf(
			    types + n,
			    n < (int)sizeof(types) ? sizeof(types) - n : 0,
			    "%s%s", i ? "," : "", m->art->device_types[i]);
		snprintf(why, cap, "it is for %s types [%s], not \"%s\"",
		         m->group ? "group" : "device", types, m->type);
		return why;
	}
	if (m->lone &&
	    (m->art->nimages != 1 || m->art->images[0].path == NULL)) {
		snprintf(why, cap, "%zu images extracted, expected one",
		         m->art->nimages);
		return why;
	}
	if (!images_for_members(m, missing, sizeof(missing))) {
		snprintf(why, cap,
		         "no image for member %s; no member was touched",
		         missing);
		return why;
	}
	return NULL;
}

static void
fill_journal(struct machine *m)
{
	size_t i;

	journal_entry_clear(&m->j);
	m->j.phase = JP_IDLE;
	snprintf(m->j.artifact_sha256, sizeof(m->j.artifact_sha256), "%s",
	         m->sha);
	snprintf(m->j.target_version, sizeof(m->j.target_version), "%s",
	         m->mb[0].img->version_rdfm);
	m->j.attempt = m->offers.attempts + 1;
	m->j.nmembers = m->n;
	for (i = 0; i < m->n; i++) {
		struct journal_member *jm = &m->j.members[i];
		const struct board_slot *s0 = board_slot(&m->mb[i].imgs, 0);

		snprintf(jm->name, sizeof(jm->name), "%s", m->mb[i].name);
		jm->has_old_hash = s0 != NULL && s0->has_hash;
		if (jm->has_old_hash)
			memcpy(jm->old_hash, s0->hash, BOARD_HASH_LEN);
		jm->has_new_hash = true;
		memcpy(jm->new_hash, m->mb[i].img->mcuboot.hash,
		       BOARD_HASH_LEN);
	}
}

/* Every member already runs its image of the offer. */
static bool
already_running(const struct machine *m)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		if (!holds(board_slot(&m->mb[i].imgs, 0),
		           m->mb[i].img->mcuboot.hash))
			return false;
	return true;
}

static void
offer_is_current(struct machine *m)
{
	say(m, NULL, LOG_LEVEL_INFO,
	    "The offered update is the image already running; nothing to do",
	    "running=%s offered=%s sha256=%s", m->version,
	    m->mb[0].img->version_rdfm, m->sha);
	offer_current(&m->offers, m->sha);
	m->stats.offered_version[0] = '\0';
	report_version_then(m, O_UP_TO_DATE, m->interval_ms);
}

static void
read_artifact(struct machine *m)
{
	struct artifact_opts o;
	char err[512], why[700];
	int local = 0;

	m->step = S_ARTIFACT;
	if (m->workdir == NULL &&
	    (m->workdir = make_workdir(m, err, sizeof(err))) == NULL) {
		fail(m, FAIL_LOCAL, S_ARTIFACT, 0,
		     "cannot make a work directory: %s", err);
		return;
	}
	memset(&o, 0, sizeof(o));
	o.extract_dir = m->workdir;
	o.verify_key = m->env->verify_key;
	o.local_errno = &local;
	if (artifact_read_file(spool_path(m->entry), &o, &m->art, err,
	                       sizeof(err)) == -1) {
		if (local != 0)
			fail(m, FAIL_LOCAL, S_ARTIFACT, 0,
			     "cannot extract the artifact on this host: %s",
			     err);
		else
			fail(m, FAIL_ATTEMPT, S_ARTIFACT, 0,
			     "artifact refused: %s", err);
		return;
	}
	if (artifact_misfit(m, why, sizeof(why)) != NULL) {
		fail(m, FAIL_ATTEMPT, S_ARTIFACT, 0, "artifact refused: %s",
		     why);
		return;
	}
	if (already_running(m)) {
		offer_is_current(m);
		return;
	}
	fill_journal(m);
	stats_offered(&m->stats, m->j.target_version);
	mm_offered(m);
	say(m, NULL, LOG_LEVEL_INFO, "Update artifact ready",
	    "artifact=%s running=%s offered=%s members=%zu",
	    log_q(m->art->name), m->version, m->j.target_version, m->n);
	if (!journal_step(m, JP_UPLOADING)) {
		fail_journal(m, S_UPLOAD);
		return;
	}
	mm_update_started(m);
	m->cycle_bytes = m->cycle_upload_ms = 0;
	run_all(m, S_UPLOAD, upload_member, after_upload);
}

/* --- server --------------------------------------------------------------- */

static void
on_download(struct rdfm_dev *rd, const struct rdfm_result *res, void *arg)
{
	struct machine *m = arg;

	(void)rd;
	mm_rdfm_idle(m);
	if (m->stop) {
		go_idle(m);
		return;
	}
	if (res->status != RDFM_DOWNLOADED) {
		fail(m,
		     res->status == RDFM_ERR_LOCAL ? FAIL_LOCAL : FAIL_ATTEMPT,
		     S_DOWNLOAD, (int64_t)res->retry_ms, "%s",
		     res->error[0] ? res->error : "download failed");
		return;
	}
	read_artifact(m);
}

static void
download(struct machine *m, const char *uri)
{
	char err[256];

	m->step = S_DOWNLOAD;
	release_kept(m, false);
	if (m->kept != NULL) {
		/* The download of a failed attempt at this offer. */
		m->entry = m->kept;
		m->kept = NULL;
	} else if ((m->entry = spool_ref(m->env->spool, m->sha, err,
	                                 sizeof(err))) == NULL) {
		fail(m, FAIL_LOCAL, S_DOWNLOAD, 0, "%s", err);
		return;
	}
	if (rdfm_download(m->rd, m->entry, uri, on_download, m) == -1)
		fail(m, FAIL_TRANSIENT, S_DOWNLOAD, 0,
		     "a server request is already running");
}

static void
on_offer(struct machine *m, const struct rdfm_offer *offer)
{
	snprintf(m->sha, sizeof(m->sha), "%s", offer->sha256);
	switch (offer_consider(&m->offers, m->sha)) {
	case OFFER_SKIP_CURRENT:
		say(m, NULL, LOG_LEVEL_DEBUG,
		    "Offer skipped: the boards already run it", "sha256=%s",
		    m->sha);
		m->sha[0] = '\0';
		release_kept(m, true);
		cycle_end(m, O_UP_TO_DATE, m->interval_ms);
		return;
	case OFFER_SKIP_GAVE_UP:
		say(m, NULL, LOG_LEVEL_DEBUG,
		    "Offer skipped: its retries ran out", "sha256=%s", m->sha);
		m->sha[0] = '\0';
		release_kept(m, true);
		cycle_end(m, O_SKIPPED, m->interval_ms);
		return;
	case OFFER_TRY:
		break;
	}
	say(m, NULL, LOG_LEVEL_INFO, "Update offered", "running=%s sha256=%s",
	    m->version, m->sha);
	stats_attempt(&m->stats, NULL);
	download(m, offer->uri);
}

static void
on_check(struct rdfm_dev *rd, const struct rdfm_result *res, void *arg)
{
	struct machine *m = arg;

	(void)rd;
	mm_rdfm_idle(m);
	if (m->stop) {
		go_idle(m);
		return;
	}
	switch (res->status) {
	case RDFM_NO_UPDATE:
		stats_checked(&m->stats, STATS_CHECK_UP_TO_DATE);
		m->stats.offered_version[0] = '\0';
		release_kept(m, true);
		say(m, NULL, m->env->once ? LOG_LEVEL_INFO : LOG_LEVEL_DEBUG,
		    "Up to date", "version=%s", m->version);
		cycle_end(m, O_UP_TO_DATE, m->interval_ms);
		return;
	case RDFM_UNAPPROVED:
		/* rdfm.c says so once; poll quietly. */
		stats_checked(&m->stats, STATS_CHECK_UNAPPROVED);
		cycle_end(m, O_WAITING, m->interval_ms);
		return;
	case RDFM_UPDATE:
		stats_checked(&m->stats, STATS_CHECK_OFFERED);
		on_offer(m, res->offer);
		return;
	default:
		stats_checked(&m->stats, STATS_CHECK_ERROR);
		fail(m,
		     res->status == RDFM_ERR_LOCAL ? FAIL_LOCAL
		                                   : FAIL_TRANSIENT,
		     S_CHECK, (int64_t)res->retry_ms, "%s",
		     res->error[0] ? res->error : "update check failed");
		return;
	}
}

static void
do_check(struct machine *m)
{
	m->step = S_CHECK;
	if (rdfm_check(m->rd, m->version, on_check, m) == -1)
		fail(m, FAIL_TRANSIENT, S_CHECK, 0,
		     "a server request is already running");
}

/* --- reading the boards --------------------------------------------------- */

static void
on_startup_confirmed(struct board *b, enum board_status st, const char *err,
                     const struct board_images *imgs, void *arg)
{
	struct member *mb = arg;

	(void)b;
	if (imgs != NULL)
		mb->imgs = *imgs;
	if (st != BOARD_OK)
		member_done(mb, false, "cannot confirm the running image: %s",
		            err);
	else
		member_done(mb, true, NULL);
}

/*
 * As the Go client does: an unconfirmed image that no update of ours
 * explains is confirmed, or the next reset would revert it.
 */
static void
startup_confirm_member(struct member *mb)
{
	const struct board_slot *s0 = board_slot(&mb->imgs, 0);
	char msg[120], v[MCUBOOT_VERSION_MAX];

	if (s0 == NULL || s0->confirmed) {
		member_done(mb, true, NULL);
		return;
	}
	snprintf(msg, sizeof(msg),
	         "The %s runs an unconfirmed image that is not ours in "
	         "flight; confirming it",
	         noun(mb->m));
	say(mb->m, mb, LOG_LEVEL_INFO, msg, "version=%s",
	    board_slot_version(s0, v, sizeof(v)));
	if (board_set_state(mb->board, NULL, true, on_startup_confirmed, mb) ==
	    -1)
		member_done(mb, false, "the board is busy");
}

static void
after_startup_confirm(struct machine *m)
{
	if (m->failed) {
		fail(m, FAIL_TRANSIENT, S_STARTUP_CONFIRM, 0, "%s",
		     text(m->fail_reason));
		return;
	}
	do_check(m);
}

/* Every member's version, which must agree; false when the cycle ends. */
static bool
agree_on_version(struct machine *m, bool *unconfirmed)
{
	char versions[600];
	size_t i;
	bool agree = true;
	int n = 0;

	*unconfirmed = false;
	versions[0] = '\0';
	for (i = 0; i < m->n; i++) {
		struct member *mb = &m->mb[i];
		const struct board_slot *s0 = board_slot(&mb->imgs, 0);

		if (board_version_rdfm(&mb->imgs, mb->version,
		                       sizeof(mb->version)) == -1) {
			fail(m, FAIL_TRANSIENT, S_READ, 0,
			     "%s%s reports slot 0 version \"%s\", which is no "
			     "MCUboot version",
			     m->lone ? "the board" : "member ",
			     m->lone ? "" : mb->name,
			     s0 != NULL ? s0->version : "");
			return false;
		}
		if (strcmp(mb->version, m->mb[0].version) != 0)
			agree = false;
		if (s0 != NULL && !s0->confirmed)
			*unconfirmed = true;
		if (n >= 0 && (size_t)n < sizeof(versions))
			n += snprintf(versions + n,
			              sizeof(versions) - (size_t)n, "%s%s=%s",
			              i > 0 ? " " : "", mb->name, mb->version);
	}
	if (!agree) {
		/* No journal entry explains it: never guess which is right. */
		fail(m, FAIL_TRANSIENT, S_READ, 0,
		     "the group's members run different versions (%s) and no "
		     "update of ours explains it; refusing to update the "
		     "group",
		     versions);
		return false;
	}
	snprintf(m->version, sizeof(m->version), "%s", m->mb[0].version);
	return true;
}

/* Keep counting attempts at the offer in flight across a restart. */
static void
resume_attempts(struct machine *m)
{
	snprintf(m->offers.fail_sha, sizeof(m->offers.fail_sha), "%s",
	         m->j.artifact_sha256);
	m->offers.attempts = m->j.attempt > 0 ? m->j.attempt - 1 : 0;
	snprintf(m->sha, sizeof(m->sha), "%s", m->j.artifact_sha256);
	mm_update_started(m);
}

static void
recover_back(struct machine *m)
{
	say(m, NULL, LOG_LEVEL_INFO,
	    m->lone ? "Rolling the update left in flight back"
	            : "Rolling the group update left in flight back",
	    "phase=%s version=%s", journal_phase_name(m->j.phase),
	    log_q(m->j.target_version));
	converge(m, DIR_BACK, true);
}

static void
recover_forward(struct machine *m)
{
	say(m, NULL, LOG_LEVEL_INFO,
	    m->lone ? "Finishing the update left in flight"
	            : "Rolling the group update left in flight forward",
	    "phase=%s version=%s", journal_phase_name(m->j.phase),
	    log_q(m->j.target_version));
	stats_attempt(&m->stats, m->j.target_version);
	converge(m, DIR_FORWARD, true);
}

/* The boards as read against the journal: true when recovery started. */
static bool
recover(struct machine *m, bool *mismatch)
{
	const struct board_images *imgs[JOURNAL_MAX_MEMBERS];
	char why[500];
	size_t i;

	*mismatch = false;
	for (i = 0; i < m->n; i++)
		imgs[i] = &m->mb[i].imgs;
	switch (decide_recovery(&m->j, imgs, why, sizeof(why))) {
	case REC_NONE:
		return false;
	case REC_MISMATCH:
		say(m, NULL, LOG_LEVEL_ERROR,
		    "The journal does not match the boards; the boards are "
		    "the facts, so the entry is dropped",
		    "phase=%s reason=%s", journal_phase_name(m->j.phase),
		    log_q(why));
		*mismatch = true;
		if (!journal_idle(m)) {
			fail_journal(m, S_READ);
			return true;
		}
		return false;
	case REC_BACK:
		resume_attempts(m);
		recover_back(m);
		return true;
	case REC_FORWARD:
		resume_attempts(m);
		recover_forward(m);
		return true;
	case REC_BOOTED:
		resume_attempts(m);
		say(m, NULL, LOG_LEVEL_INFO,
		    "Finishing the update left in flight: every board runs "
		    "the new image",
		    "phase=%s version=%s", journal_phase_name(m->j.phase),
		    log_q(m->j.target_version));
		stats_attempt(&m->stats, m->j.target_version);
		booted(m);
		return true;
	case REC_RESET:
		resume_attempts(m);
		say(m, NULL, LOG_LEVEL_INFO,
		    "Resuming the update left in flight at its reset",
		    "phase=%s version=%s", journal_phase_name(m->j.phase),
		    log_q(m->j.target_version));
		stats_attempt(&m->stats, m->j.target_version);
		do_reset(m);
		return true;
	case REC_REJECTED:
		resume_attempts(m);
		m->step = S_RESET;
		if (!journal_idle(m)) {
			fail_journal(m, S_RESET);
			return true;
		}
		fail(m, FAIL_ATTEMPT, S_RESET, 0,
		     "rejected: the board runs its old image again after the "
		     "update left in flight");
		return true;
	}
	return false;
}

/* Some boards did not answer while an update is in flight. */
static void
recover_unread(struct machine *m)
{
	if (m->lone) {
		fail(m, FAIL_TRANSIENT, S_READ, 0,
		     "cannot read the image list: %s", text(m->fail_reason));
		return;
	}
	/* Bring the others where the journal says; the rest later. */
	resume_attempts(m);
	if (m->j.phase == JP_ROLLING_BACK ||
	    m->j.phase < decide_commit_phase(m->n))
		recover_back(m);
	else
		recover_forward(m);
}

static void
after_read(struct machine *m)
{
	bool unconfirmed, mismatch = false;

	if (decide_in_flight(m->j.phase) && journal_fits(m)) {
		if (m->failed) {
			recover_unread(m);
			return;
		}
		if (recover(m, &mismatch))
			return;
	}
	if (m->failed) {
		fail(m, FAIL_TRANSIENT, S_READ, 0,
		     "cannot read the image list: %s", text(m->fail_reason));
		return;
	}
	if (!agree_on_version(m, &unconfirmed))
		return;
	say(m, NULL, LOG_LEVEL_DEBUG, "Boards read", "version=%s", m->version);
	if ((m->first_cycle || mismatch) && unconfirmed) {
		m->first_cycle = false;
		run_all(m, S_STARTUP_CONFIRM, startup_confirm_member,
		        after_startup_confirm);
		return;
	}
	m->first_cycle = false;
	do_check(m);
}

static void
on_read(struct board *b, enum board_status st, const char *err,
        const struct board_images *imgs, void *arg)
{
	struct member *mb = arg;

	(void)b;
	if (st != BOARD_OK || imgs == NULL) {
		mb->has_imgs = false;
		member_done(mb, false, "%s", err[0] ? err : "no list");
		return;
	}
	mb->imgs = *imgs;
	mb->has_imgs = true;
	member_done(mb, true, NULL);
}

static void
read_member(struct member *mb)
{
	if (board_read(mb->board, on_read, mb) == -1)
		member_done(mb, false, "the board is busy");
}

static void
cycle_read(struct machine *m)
{
	/*
	 * The key in memory is still the device's identity, but a key file
	 * that went away would make the next start a new, unapproved device:
	 * nothing happens until it is back (or removed from the journal of
	 * keys on purpose).
	 */
	if (keys_presence(m->env->state_dir, m->key_path) == KEYS_DISAPPEARED) {
		m->step = S_READ;
		fail(m, FAIL_LOCAL, S_READ, 0,
		     "the key file %s has disappeared; restore it, or see "
		     "check-config for starting over with a new identity",
		     m->key_path);
		return;
	}
	run_all(m, S_READ, read_member, after_read);
}

static void
on_cycle_timer(evutil_socket_t fd, short ev, void *arg)
{
	struct machine *m = arg;

	(void)fd;
	(void)ev;
	if (m->stop || m->retire)
		return;
	if (mm_busy(m)) {
		/* The channel's command on a board first. */
		machine_timer_ms(m->cycle_ev, MGMT_WAIT_MS);
		return;
	}
	cycle_read(m);
}

void
machine_cycle_now(struct machine *m)
{
	if (m->step != S_IDLE || m->stop || m->retire)
		return;
	event_del(m->cycle_ev);
	machine_timer_ms(m->cycle_ev, 0);
}

/* --- life cycle ----------------------------------------------------------- */

static struct machine *
machine_alloc(const struct machine_env *env, size_t n, size_t jcap,
              EVP_PKEY *key)
{
	struct machine *m = xcalloc(1, sizeof(*m));

	m->env = env;
	m->key = key;
	m->first_cycle = true;
	m->mb = xcalloc(n, sizeof(*m->mb));
	/* A device's record has one member: no room for a group's 32. */
	m->j.cap = jcap;
	m->j.members = xcalloc(jcap, sizeof(*m->j.members));
	if ((m->cycle_ev = evtimer_new(env->base, on_cycle_timer, m)) == NULL)
		fatalx("cannot create a timer", NULL);
	return m;
}

static int
member_init(struct machine *m, struct member *mb, char *err, size_t errcap)
{
	struct event_base *base = m->env->base;
	struct worker *w;
	uint32_t id;

	mb->m = m;
	mb->idx = m->n;
	if ((w = links_take(m->env->links, mb->name, mb->transport, m->to, &id,
	                    err, errcap)) == NULL)
		return -1;
	mb->board = board_new(base, mb->name, w, id, m->to);
	mb->stall_ev = evtimer_new(base, on_stall, mb);
	mb->upload_done_ev = evtimer_new(base, upload_finished, mb);
	mb->retry_ev = evtimer_new(base, on_conv_retry, mb);
	if (mb->stall_ev == NULL || mb->upload_done_ev == NULL ||
	    mb->retry_ev == NULL)
		fatalx("cannot create a timer", "board=%s", log_q(mb->name));
	m->n++;
	return 0;
}

/* The server sees one identity per machine, with its own type. */
static void
machine_connect(struct machine *m)
{
	m->lone = !m->group;
	m->rd =
	    rdfm_dev_new(m->env->rdfm, m->env->server, m->id, m->type, m->key);
	mm_init(m);
}

struct machine *
machine_new_device(const struct machine_env *env, const struct device_cfg *c,
                   EVP_PKEY *key, char *err, size_t errcap)
{
	struct machine *m = machine_alloc(env, 1, 1, key);

	m->dcfg = c;
	m->name = c->name;
	m->id = c->id;
	m->type = c->dev_type;
	m->key_path = c->key_path;
	m->interval_ms = c->update_interval_ms;
	m->to = &c->timeouts;
	m->mb[0].name = c->name;
	m->mb[0].self_confirm = c->self_confirm;
	m->mb[0].transport = &c->transport;
	if (member_init(m, &m->mb[0], err, errcap) == -1) {
		machine_free(m);
		return NULL;
	}
	machine_connect(m);
	return m;
}

struct machine *
machine_new_group(const struct machine_env *env, const struct group_cfg *c,
                  EVP_PKEY *key, char *err, size_t errcap)
{
	struct machine *m;
	size_t i;

	if (c->nmembers == 0 || c->nmembers > JOURNAL_MAX_MEMBERS) {
		snprintf(err, errcap,
		         "group %s has %zu members; 1 to %d are supported",
		         c->name, c->nmembers, JOURNAL_MAX_MEMBERS);
		EVP_PKEY_free(key);
		return NULL;
	}
	m = machine_alloc(env, c->nmembers, JOURNAL_MAX_MEMBERS, key);
	m->group = true;
	m->gcfg = c;
	m->name = c->name;
	m->id = c->id;
	m->type = c->type;
	m->key_path = c->key_path;
	m->interval_ms = c->update_interval_ms;
	m->to = &c->timeouts;
	for (i = 0; i < c->nmembers; i++) {
		struct member *mb = &m->mb[i];

		mb->name = c->members[i].name;
		mb->image = c->members[i].device;
		mb->self_confirm = c->members[i].self_confirm;
		mb->transport = &c->members[i].transport;
		if (member_init(m, mb, err, errcap) == -1) {
			machine_free(m);
			return NULL;
		}
	}
	machine_connect(m);
	return m;
}

/*
 * The first cycle of a long-running daemon starts at a random moment in
 * the first half interval (at most FIRST_JITTER_MS), so a large fleet does
 * not read its boards and ask the server all at once; --once starts at
 * once.
 */
static int64_t
first_delay(const struct machine *m)
{
	int64_t span = m->interval_ms / 2;

	if (m->env->once || span <= 0)
		return 0;
	if (span > FIRST_JITTER_MS)
		span = FIRST_JITTER_MS;
	return (int64_t)arc4random_uniform((uint32_t)span);
}

void
machine_start(struct machine *m)
{
	char err[300];
	int r;

	r = journal_read(kind_name(m), m->id, &m->j, err, sizeof(err));
	if (r == -1) {
		/* Never guessed from: the boards are read instead. */
		say(m, NULL, LOG_LEVEL_ERROR,
		    m->lone ? "The journal entry is unreadable; reading the "
		              "board instead"
		            : "The journal entry is unreadable; reading the "
		              "members instead",
		    "error=%s", log_q(err));
		journal_entry_clear(&m->j);
	} else if (r == 1) {
		journal_entry_clear(&m->j);
	} else if (decide_in_flight(m->j.phase) && !journal_fits(m)) {
		say(m, NULL, LOG_LEVEL_ERROR,
		    "The journal entry does not match the configured boards; "
		    "ignoring it",
		    "members=%zu", m->j.nmembers);
	}
	cycle_timer(m, first_delay(m));
}

void
machine_stop(struct machine *m)
{
	size_t i;

	m->stop = true;
	event_del(m->cycle_ev);
	switch (m->step) {
	case S_IDLE:
		m->env->idle(m->env->arg);
		break;
	case S_UPLOAD:
		for (i = 0; i < m->n; i++)
			if (m->mb[i].up != NULL)
				upload_abort(m->mb[i].up);
		break;
	case S_RESET:
	case S_WATCH:
	case S_CONVERGE:
		/* Waiting, not talking: the journal says where we were. */
		say(m, NULL, LOG_LEVEL_INFO,
		    "Stopped in the middle of the update; it goes on at the "
		    "next start",
		    "phase=%s", step_name(m, m->step));
		go_idle(m);
		break;
	case S_CHECK:
	case S_DOWNLOAD:
		/*
		 * The server is not a board: idle now.  The request (which
		 * may be writing the spool entry) is cancelled when the
		 * machine is freed, or its callback ends the cycle first.
		 */
		m->step = S_IDLE;
		m->env->idle(m->env->arg);
		break;
	default:
		/* One SMP exchange per member in flight: they end the step. */
		break;
	}
}

void
machine_retire(struct machine *m)
{
	m->retire = true;
	/* Between cycles: the next one does not start. */
	if (m->step == S_IDLE)
		event_del(m->cycle_ev);
}

bool
machine_idle(const struct machine *m)
{
	return m->step == S_IDLE;
}

void
machine_report(const struct machine *m, struct metrics_snapshot *s)
{
	struct metrics_entry e;
	size_t i;

	memset(&e, 0, sizeof(e));
	e.kind = kind_name(m);
	e.name = m->name;
	e.state = step_name(m, m->step);
	e.running_version = m->version;
	for (i = 0; i < m->n; i++)
		e.worker_restarts +=
		    worker_restarts(board_worker(m->mb[i].board));
	e.stats = &m->stats;
	metrics_snapshot_add(s, &e);
}

void
machine_free(struct machine *m)
{
	size_t i;

	if (m == NULL)
		return;
	if (m->rd != NULL)
		mm_free(m); /* made together with rd */
	/* The server request first: it may be writing the spool entry. */
	if (m->rd != NULL)
		rdfm_dev_free(m->rd);
	drop_offer(m);
	release_kept(m, true);
	for (i = 0; i < m->n; i++) {
		struct member *mb = &m->mb[i];
		struct worker *w = board_worker(mb->board);
		uint32_t id = board_id(mb->board);

		board_free(mb->board);
		links_release(m->env->links, w, id);
		free(mb->err);
		event_free(mb->stall_ev);
		event_free(mb->upload_done_ev);
		event_free(mb->retry_ev);
	}
	event_free(m->cycle_ev);
	EVP_PKEY_free(m->key);
	free(m->mb);
	free(m->j.members);
	free(m->fail_reason);
	free(m->rollback_reason);
	free(m->workdir);
	free(m);
}
