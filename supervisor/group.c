/*
 * A group's update state machine (group.h): read every member, check with
 * the group's identity, upload to all members in parallel, test-boot them
 * together, and commit only when all run the new image; roll back or
 * forward from the journal so that the members end on one version.
 */
#include <sys/stat.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "artifact.h"
#include "board.h"
#include "daemon.h"
#include "group.h"
#include "journal.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "rdfm.h"
#include "spool.h"
#include "upload.h"
#include "workers.h"
#include "xmalloc.h"

/* Upload progress lines at most this often, per member. */
#define PROGRESS_LOG_MS 3000
/* Backoff after failures: update_interval doubled per attempt, capped. */
#define BACKOFF_MAX_SHIFT 4
/* Between attempts to reach a member while rolling back or forward. */
#define CONVERGE_RETRY_MS 500
/* Board steps one member may take to reach its target (loop guard). */
#define CONVERGE_MAX_STEPS 8

enum step {
	S_IDLE,
	S_READ,
	S_STARTUP_CONFIRM,
	S_CHECK,
	S_DOWNLOAD,
	S_UPLOAD,
	S_VERIFY,
	S_PENDING,
	S_RESET,
	S_WATCH,
	S_CONVERGE,
};

enum outcome { O_UP_TO_DATE, O_UPDATED, O_WAITING, O_SKIPPED, O_FAILED };

/* Where a converging member is taken: its old image or the new one. */
enum direction { BACK, FORWARD };

struct group;

struct member {
	struct group *g;
	const struct member_cfg *cfg;
	size_t idx;
	struct board *board;

	/* The step running on every member: this one's part of it. */
	bool active;
	bool ok;
	char err[400];

	struct board_images imgs; /* last read */
	bool has_imgs;
	char version[MCUBOOT_VERSION_MAX];
	const struct artifact_image *img; /* this member's image */

	/* The upload. */
	struct upload *up;
	bool stalled;
	uint64_t up_started_ms, up_log_ms, up_acked;
	struct event *stall_ev;
	struct event *upload_done_ev;
	Ipc__Reply__Status up_status;
	char up_error[256];

	/* Rolling back or forward. */
	unsigned int conv_steps;
	uint64_t conv_deadline_ms;
	struct event *retry_ev;
};

struct group {
	struct daemon *d;
	const struct group_cfg *cfg;
	EVP_PKEY *key;
	struct rdfm_dev *rd;
	struct member *m;
	size_t n;

	enum step step;
	bool first_cycle;
	bool stop;
	bool retire; /* removed or changed by a reload: no new cycle */
	struct board_stats stats;
	uint64_t cycle_bytes, cycle_upload_ms; /* every member's upload */

	/* The step running on every member. */
	size_t outstanding;
	bool failed;
	char fail_reason[600];
	void (*after)(struct group *);

	char version[MCUBOOT_VERSION_MAX]; /* agreed by all members */

	/* The journal entry: read at start, then kept in step with disk. */
	struct journal_entry j;

	/* The offer being applied. */
	char sha[65];
	struct spool_entry *entry;
	struct artifact *art;
	char *workdir;

	/* Rolling back or forward. */
	enum direction dir;
	bool recovering;       /* from the journal, not from a failure */
	enum step failed_step; /* the step whose failure is undone */
	char rollback_reason[600];

	/* Retry policy over offers. */
	char fail_sha[65];
	unsigned int attempts;
	char skip_sha[65];

	struct event *cycle_ev;
};

static void cycle_read(struct group *g);
static void do_check(struct group *g);
static void converge(struct group *g, enum direction dir, bool recovering);
static void member_converge(struct member *m);

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static const char *
step_phase(enum step s)
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
		return "converge";
	}
	return "?";
}

static bool
hash_eq(const struct board_slot *s, const uint8_t *h)
{
	return s != NULL && s->has_hash &&
	       memcmp(s->hash, h, BOARD_HASH_LEN) == 0;
}

static void
timer_ms(struct event *ev, int64_t ms)
{
	struct timeval tv;

	if (ms < 0)
		ms = 0;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(ev, &tv);
}

/* --- journal ------------------------------------------------------------ */

static void
journal_save(struct group *g)
{
	char err[256];

	if (journal_write("group", g->cfg->id, &g->j, err, sizeof(err)) == -1)
		log_errx("Cannot write the journal", "group=%s error=%s",
		         log_q(g->cfg->name), log_q(err));
}

/* Every member enters phase p with the group; then the crash point. */
static void
journal_step(struct group *g, enum journal_phase p, const char *cp)
{
	size_t i;

	g->j.phase = p;
	for (i = 0; i < g->j.nmembers; i++)
		g->j.members[i].phase = p;
	journal_save(g);
	if (cp != NULL)
		journal_crashpoint(cp);
}

static void
journal_idle(struct group *g)
{
	memset(&g->j, 0, sizeof(g->j));
	g->j.phase = JP_IDLE;
	journal_save(g);
}

/*
 * An entry with an update in flight that fits the configured members (a
 * changed member list cannot be finished from it).
 */
static bool
journal_in_flight(const struct group *g)
{
	size_t i;

	if (g->j.phase < JP_UPLOADING || g->j.phase > JP_ROLLING_BACK)
		return false;
	if (g->j.nmembers != g->n)
		return false;
	for (i = 0; i < g->n; i++)
		if (strcmp(g->j.members[i].name, g->m[i].cfg->name) != 0 ||
		    !g->j.members[i].has_new_hash)
			return false;
	return true;
}

/* --- the step running on every member ----------------------------------- */

static void
drop_offer(struct group *g)
{
	size_t i;

	for (i = 0; i < g->n; i++) {
		struct member *m = &g->m[i];

		if (m->up != NULL) {
			upload_free(m->up);
			m->up = NULL;
		}
		event_del(m->stall_ev);
		event_del(m->upload_done_ev);
		event_del(m->retry_ev);
		m->img = NULL;
	}
	if (g->art != NULL) {
		artifact_remove_files(g->art);
		artifact_free(g->art);
		g->art = NULL;
	}
	if (g->entry != NULL) {
		spool_unref(g->entry);
		g->entry = NULL;
	}
	g->sha[0] = '\0';
}

/* Stop everything in flight: the journal says where we were. */
static void
go_idle(struct group *g)
{
	size_t i;

	for (i = 0; i < g->n; i++) {
		board_cancel(g->m[i].board);
		g->m[i].active = false;
	}
	g->outstanding = 0;
	g->after = NULL;
	drop_offer(g);
	g->step = S_IDLE;
	daemon_check_idle(g->d);
}

static void
step_release(struct group *g)
{
	void (*after)(struct group *) = g->after;

	if (g->outstanding == 0 || --g->outstanding > 0)
		return;
	g->after = NULL;
	if (g->stop) {
		go_idle(g);
		return;
	}
	if (after != NULL)
		after(g);
}

/*
 * Runs fn on every member at once; each ends its part with member_done(),
 * and after runs when all have.  The extra count keeps a member that
 * finishes at once from ending the step before the others started.
 */
static void
run_all(struct group *g, enum step s, void (*fn)(struct member *),
        void (*after)(struct group *))
{
	size_t i;

	g->step = s;
	g->after = after;
	g->failed = false;
	g->fail_reason[0] = '\0';
	g->outstanding = g->n + 1;
	for (i = 0; i < g->n; i++) {
		g->m[i].active = true;
		g->m[i].ok = false;
		g->m[i].err[0] = '\0';
	}
	for (i = 0; i < g->n; i++)
		fn(&g->m[i]);
	step_release(g);
}

static void member_done(struct member *m, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void
member_done(struct member *m, bool ok, const char *fmt, ...)
{
	struct group *g = m->g;
	va_list ap;
	size_t i;

	if (!m->active)
		return;
	m->active = false;
	m->ok = ok;
	if (!ok) {
		va_start(ap, fmt);
		vsnprintf(m->err, sizeof(m->err), fmt, ap);
		va_end(ap);
		log_errx("Group member failed",
		         "group=%s member=%s phase=%s reason=%s",
		         log_q(g->cfg->name), log_q(m->cfg->name),
		         step_phase(g->step), log_q(m->err));
		if (!g->failed) {
			g->failed = true;
			snprintf(g->fail_reason, sizeof(g->fail_reason),
			         "member %s: %s", m->cfg->name, m->err);
		}
		/* No point finishing the other uploads: stop them. */
		if (g->step == S_UPLOAD)
			for (i = 0; i < g->n; i++)
				if (g->m[i].up != NULL && g->m[i].active)
					upload_abort(g->m[i].up);
	}
	step_release(g);
}

/* --- end of a cycle ----------------------------------------------------- */

static void
cycle_end(struct group *g, enum outcome o, int64_t delay_ms)
{
	drop_offer(g);
	g->step = S_IDLE;
	g->first_cycle = false;
	if (daemon_once(g->d)) {
		daemon_cycle_done(g->d, o == O_UP_TO_DATE || o == O_UPDATED);
		return;
	}
	if (g->stop || g->retire || daemon_stopping(g->d)) {
		daemon_check_idle(g->d);
		return;
	}
	timer_ms(g->cycle_ev, delay_ms);
}

/*
 * One ERROR line naming the group, phase and reason.  counts: an attempt
 * at the offered sha256 failed (retries apply); otherwise the next cycle
 * follows the interval.
 */
static void fail(struct group *g, bool counts, enum step at, int64_t delay_ms,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void
fail(struct group *g, bool counts, enum step at, int64_t delay_ms,
     const char *fmt, ...)
{
	const struct config *c = daemon_config(g->d);
	int64_t ival = g->cfg->update_interval_ms;
	char reason[700];
	va_list ap;
	int shift;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	stats_failed(&g->stats, step_phase(at));
	if (!counts || g->sha[0] == '\0') {
		log_errx("Update failed", "group=%s phase=%s reason=%s",
		         log_q(g->cfg->name), step_phase(at), log_q(reason));
		cycle_end(g, O_FAILED, delay_ms > ival ? delay_ms : ival);
		return;
	}
	if (strcmp(g->fail_sha, g->sha) != 0) {
		snprintf(g->fail_sha, sizeof(g->fail_sha), "%s", g->sha);
		g->attempts = 0;
	}
	g->attempts++;
	if (c->retries != 0)
		log_errx("Update failed",
		         "group=%s phase=%s reason=%s attempt=%u/%d",
		         log_q(g->cfg->name), step_phase(at), log_q(reason),
		         g->attempts, c->retries);
	else
		log_errx("Update failed",
		         "group=%s phase=%s reason=%s attempt=%u",
		         log_q(g->cfg->name), step_phase(at), log_q(reason),
		         g->attempts);
	if (c->retries != 0 && g->attempts >= (unsigned int)c->retries) {
		log_warnx("Giving up on this update until the server offers "
		          "another",
		          "group=%s sha256=%s attempts=%u", log_q(g->cfg->name),
		          g->sha, g->attempts);
		snprintf(g->skip_sha, sizeof(g->skip_sha), "%s", g->sha);
		cycle_end(g, O_FAILED, ival);
		return;
	}
	shift = g->attempts - 1 < BACKOFF_MAX_SHIFT ? (int)g->attempts - 1
	                                            : BACKOFF_MAX_SHIFT;
	cycle_end(g, O_FAILED, ival << shift);
}

/*
 * A failure before the commit point: every member goes back to the image
 * it ran before, then the failure is reported.
 */
static void
roll_back(struct group *g)
{
	log_errx("Group update failed before its commit point; rolling every "
	         "member back",
	         "group=%s phase=%s reason=%s", log_q(g->cfg->name),
	         step_phase(g->step), log_q(g->fail_reason));
	g->failed_step = g->step;
	snprintf(g->rollback_reason, sizeof(g->rollback_reason), "%s",
	         g->fail_reason);
	converge(g, BACK, false);
}

/* --- rolling back and forward ------------------------------------------- */

static void
conv_retry(struct member *m, const char *why)
{
	if (now_ms() >= m->conv_deadline_ms) {
		member_done(m, false,
		            "unreachable: %s; it is brought to the group's "
		            "version when it answers again",
		            why);
		return;
	}
	log_debug("Group member not answering yet", "group=%s member=%s why=%s",
	          log_q(m->g->cfg->name), log_q(m->cfg->name), log_q(why));
	timer_ms(m->retry_ev, CONVERGE_RETRY_MS);
}

static void
on_conv_retry(evutil_socket_t fd, short ev, void *arg)
{
	struct member *m = arg;

	(void)fd;
	(void)ev;
	if (m->active)
		member_converge(m);
}

/* A step towards the target was taken (or failed): look again. */
static void
on_conv_step(struct board *b, enum board_status st, const char *err,
             const struct board_images *imgs, void *arg)
{
	struct member *m = arg;

	(void)b;
	(void)imgs;
	if (!m->active)
		return;
	if (st != BOARD_OK) {
		conv_retry(m, err);
		return;
	}
	member_converge(m);
}

static void
conv_member_finished(struct member *m)
{
	struct group *g = m->g;

	g->j.members[m->idx].phase = g->dir == BACK ? JP_IDLE : JP_DONE;
	journal_save(g);
	member_done(m, true, NULL);
}

/*
 * One look at the board and the one step that brings it closer to its
 * old image (BACK) or its new one, confirmed (FORWARD):
 *   BACK:    old pending-free and confirmed → done; a pending slot 1 or
 *            an unconfirmed new image → reset (MCUboot reverts a test
 *            image); the new image confirmed → mark the old one, now in
 *            slot 1, permanent and reset.
 *   FORWARD: new in slot 0 → confirm it; new in slot 1 → mark it
 *            permanent, then reset.
 */
static void
on_conv_read(struct board *b, enum board_status st, const char *err,
             const struct board_images *imgs, void *arg)
{
	struct member *m = arg;
	struct group *g = m->g;
	const struct journal_member *jm = &g->j.members[m->idx];
	const struct board_slot *s0, *s1;
	char h[65];
	int r = 0;

	(void)b;
	if (!m->active)
		return;
	if (st != BOARD_OK || imgs == NULL) {
		conv_retry(m, err[0] != '\0' ? err : "no image list");
		return;
	}
	m->imgs = *imgs;
	m->has_imgs = true;
	s0 = board_slot(imgs, 0);
	s1 = board_slot(imgs, 1);
	if (++m->conv_steps > CONVERGE_MAX_STEPS) {
		member_done(m, false,
		            "still not on the %s image after %d steps (slot 0 "
		            "runs version %s)",
		            g->dir == BACK ? "old" : "new", CONVERGE_MAX_STEPS,
		            s0 != NULL ? s0->version : "(none)");
		return;
	}
	if (g->dir == BACK) {
		if (!jm->has_old_hash) {
			log_warnx(
			    "Group member had no image before the update; "
			    "nothing to roll back to",
			    "group=%s member=%s", log_q(g->cfg->name),
			    log_q(m->cfg->name));
			conv_member_finished(m);
			return;
		}
		if (hash_eq(s0, jm->old_hash)) {
			if (s1 != NULL && s1->pending) {
				/* Cannot be un-marked: boot it, then revert. */
				log_info(
				    "Group member has the new image pending; "
				    "resetting it to boot and then revert it",
				    "group=%s member=%s", log_q(g->cfg->name),
				    log_q(m->cfg->name));
				r = board_reset_wait(m->board, on_conv_step, m);
			} else if (!s0->confirmed) {
				r = board_set_state(m->board, NULL, true,
				                    on_conv_step, m);
			} else {
				log_info("Group member back on its old image",
				         "group=%s member=%s version=%s",
				         log_q(g->cfg->name),
				         log_q(m->cfg->name),
				         log_q(s0->version));
				conv_member_finished(m);
				return;
			}
		} else if (hash_eq(s0, jm->new_hash) && !s0->confirmed) {
			log_info(
			    "Resetting group member to revert the test image",
			    "group=%s member=%s", log_q(g->cfg->name),
			    log_q(m->cfg->name));
			r = board_reset_wait(m->board, on_conv_step, m);
		} else if (hash_eq(s0, jm->new_hash) &&
		           hash_eq(s1, jm->old_hash)) {
			if (s1->pending)
				r = board_reset_wait(m->board, on_conv_step, m);
			else {
				log_info("Group member confirmed the new "
				         "image; switching it back to the old "
				         "one",
				         "group=%s member=%s",
				         log_q(g->cfg->name),
				         log_q(m->cfg->name));
				r = board_set_state(m->board, jm->old_hash,
				                    true, on_conv_step, m);
			}
		} else {
			if (s0 != NULL && s0->has_hash)
				board_hex(s0->hash, h);
			else
				snprintf(h, sizeof(h), "(none)");
			member_done(
			    m, false,
			    "cannot roll back: it runs version %s (hash "
			    "%s), and its old image is not in slot 1",
			    s0 != NULL ? s0->version : "(none)", h);
			return;
		}
	} else {
		if (hash_eq(s0, jm->new_hash)) {
			if (s0->confirmed) {
				log_info("Group member confirmed on the new "
				         "image",
				         "group=%s member=%s version=%s",
				         log_q(g->cfg->name),
				         log_q(m->cfg->name),
				         log_q(s0->version));
				conv_member_finished(m);
				return;
			}
			r = board_set_state(m->board, jm->new_hash, true,
			                    on_conv_step, m);
		} else if (hash_eq(s1, jm->new_hash)) {
			if (s1->pending)
				r = board_reset_wait(m->board, on_conv_step, m);
			else {
				log_info(
				    "Group member is not on the new image; "
				    "switching it over",
				    "group=%s member=%s", log_q(g->cfg->name),
				    log_q(m->cfg->name));
				r = board_set_state(m->board, jm->new_hash,
				                    true, on_conv_step, m);
			}
		} else {
			member_done(m, false,
			            "cannot roll forward: the new image is in "
			            "neither slot (slot 0 runs version %s)",
			            s0 != NULL ? s0->version : "(none)");
			return;
		}
	}
	if (r == -1)
		conv_retry(m, "the board is busy");
}

static void
member_converge(struct member *m)
{
	if (board_read(m->board, on_conv_read, m) == -1)
		conv_retry(m, "the board is busy");
}

static void
conv_start_member(struct member *m)
{
	const struct timeouts_cfg *to = &m->g->cfg->timeouts;

	m->conv_steps = 0;
	/* A member rebooting twice must fit; unreachable after that. */
	m->conv_deadline_ms =
	    now_ms() + (uint64_t)to->reboot_ms * 2 + (uint64_t)to->request_ms;
	member_converge(m);
}

static void succeed(struct group *g);

static void
after_converge(struct group *g)
{
	size_t i, bad = 0;

	for (i = 0; i < g->n; i++)
		if (!g->m[i].ok)
			bad++;
	if (bad > 0) {
		/* The journal keeps the direction: the next cycle goes on. */
		for (i = 0; i < g->n; i++)
			if (!g->m[i].ok)
				log_errx(
				    g->dir == BACK
				        ? "Group member not rolled back"
				        : "Group member not rolled forward",
				    "group=%s member=%s reason=%s",
				    log_q(g->cfg->name),
				    log_q(g->m[i].cfg->name),
				    log_q(g->m[i].err));
		if (g->dir == BACK && !g->recovering)
			fail(g, true, g->failed_step, 0,
			     "%s; rolled back, except %zu member(s) that did "
			     "not answer",
			     g->rollback_reason, bad);
		else
			fail(g, false, S_CONVERGE, 0,
			     "%zu of %zu members not yet %s", bad, g->n,
			     g->dir == BACK ? "rolled back"
			                    : "on the group's new version");
		return;
	}
	if (g->dir == FORWARD) {
		succeed(g);
		return;
	}
	journal_idle(g);
	log_info("Group rolled back: every member runs its old image",
	         "group=%s", log_q(g->cfg->name));
	if (g->recovering) {
		/* Nothing failed in this run: go on with a normal cycle. */
		g->recovering = false;
		cycle_read(g);
		return;
	}
	fail(g, true, g->failed_step, 0, "%s; every member rolled back",
	     g->rollback_reason);
}

static void
converge(struct group *g, enum direction dir, bool recovering)
{
	g->dir = dir;
	g->recovering = recovering;
	if (dir == BACK)
		journal_step(g, JP_ROLLING_BACK, GROUP_CP_ROLLING_BACK);
	else if (g->j.phase != JP_COMMITTED)
		journal_step(g, JP_COMMITTED, GROUP_CP_COMMITTED);
	run_all(g, S_CONVERGE, conv_start_member, after_converge);
}

/* --- the forward path ----------------------------------------------------- */

static void
succeed(struct group *g)
{
	char v[sizeof(g->j.target_version)];

	snprintf(v, sizeof(v), "%s",
	         g->j.target_version[0] != '\0' ? g->j.target_version
	                                        : "unknown");
	journal_step(g, JP_DONE, GROUP_CP_DONE);
	log_info("Update successful", "group=%s members=%zu new_version=%s",
	         log_q(g->cfg->name), g->n, v);
	stats_succeeded(&g->stats);
	snprintf(g->version, sizeof(g->version), "%s", v);
	g->attempts = 0;
	g->fail_sha[0] = '\0';
	g->recovering = false;
	/* Check again at once: the server may offer the next hop. */
	cycle_end(g, O_UPDATED, 0);
}

/* Past every check: make it permanent (the commit point). */
static void
after_watch(struct group *g)
{
	if (g->failed) {
		roll_back(g);
		return;
	}
	log_info("Every group member runs the new image; committing",
	         "group=%s", log_q(g->cfg->name));
	journal_step(g, JP_COMMITTED, GROUP_CP_COMMITTED);
	converge(g, FORWARD, false);
}

static void
on_watched(struct board *b, enum board_status st, const char *err,
           const struct board_images *imgs, void *arg)
{
	struct member *m = arg;

	(void)b;
	(void)imgs;
	if (st == BOARD_REVERTED)
		member_done(m, false,
		            "rejected: the member reverted to its old image "
		            "instead of confirming the new one (%s)",
		            err);
	else if (st != BOARD_OK)
		member_done(m, false, "%s", err);
	else
		member_done(m, true, NULL);
}

static void
watch_member(struct member *m)
{
	struct group *g = m->g;

	if (!m->cfg->self_confirm) {
		/* Ours to confirm, after the commit point. */
		member_done(m, true, NULL);
		return;
	}
	log_info("Waiting for the group member to confirm the new image",
	         "group=%s member=%s", log_q(g->cfg->name),
	         log_q(m->cfg->name));
	if (board_wait_confirm(m->board, g->j.members[m->idx].new_hash,
	                       on_watched, m) == -1)
		member_done(m, false, "the board is busy");
}

static void
after_reset(struct group *g)
{
	if (g->failed) {
		roll_back(g);
		return;
	}
	journal_step(g, JP_CONFIRMING, GROUP_CP_CONFIRMING);
	run_all(g, S_WATCH, watch_member, after_watch);
}

static void
on_booted(struct board *b, enum board_status st, const char *err,
          const struct board_images *imgs, void *arg)
{
	struct member *m = arg;
	const struct board_slot *s0;

	(void)b;
	if (st != BOARD_OK || imgs == NULL) {
		member_done(m, false, "%s", err[0] != '\0' ? err : "no list");
		return;
	}
	m->imgs = *imgs;
	s0 = board_slot(imgs, 0);
	if (!hash_eq(s0, m->g->j.members[m->idx].new_hash)) {
		member_done(m, false,
		            "rejected: after the reset it still runs version "
		            "%s, not the new image",
		            s0 != NULL ? s0->version : "(none)");
		return;
	}
	log_info("The group member runs the new image",
	         "group=%s member=%s version=%s", log_q(m->g->cfg->name),
	         log_q(m->cfg->name), log_q(s0->version));
	member_done(m, true, NULL);
}

static void
reset_member(struct member *m)
{
	log_info("Resetting the group member into the new image",
	         "group=%s member=%s", log_q(m->g->cfg->name),
	         log_q(m->cfg->name));
	if (board_reset_wait(m->board, on_booted, m) == -1)
		member_done(m, false, "the board is busy");
}

static void
after_pending(struct group *g)
{
	if (g->failed) {
		roll_back(g);
		return;
	}
	journal_step(g, JP_RESETTING, GROUP_CP_RESETTING);
	run_all(g, S_RESET, reset_member, after_reset);
}

static void
on_pending(struct board *b, enum board_status st, const char *err,
           const struct board_images *imgs, void *arg)
{
	struct member *m = arg;

	(void)b;
	(void)imgs;
	if (st != BOARD_OK)
		member_done(m, false,
		            "cannot mark the image for a test boot: %s", err);
	else
		member_done(m, true, NULL);
}

static void
pend_member(struct member *m)
{
	if (board_set_state(m->board, m->g->j.members[m->idx].new_hash, false,
	                    on_pending, m) == -1)
		member_done(m, false, "the board is busy");
}

static void
after_verify(struct group *g)
{
	if (g->failed) {
		roll_back(g);
		return;
	}
	journal_step(g, JP_PENDING, GROUP_CP_PENDING);
	run_all(g, S_PENDING, pend_member, after_pending);
}

static void
on_verified(struct board *b, enum board_status st, const char *err,
            const struct board_images *imgs, void *arg)
{
	struct member *m = arg;
	const struct board_slot *s1;
	char h[65], want[65];

	(void)b;
	if (st != BOARD_OK || imgs == NULL) {
		member_done(m, false, "%s", err[0] != '\0' ? err : "no list");
		return;
	}
	s1 = board_slot(imgs, 1);
	if (!hash_eq(s1, m->img->mcuboot.hash)) {
		if (s1 != NULL && s1->has_hash)
			board_hex(s1->hash, h);
		else
			snprintf(h, sizeof(h), "(none)");
		board_hex(m->img->mcuboot.hash, want);
		member_done(
		    m, false,
		    "slot 1 holds hash %s after the upload, expected %s", h,
		    want);
		return;
	}
	member_done(m, true, NULL);
}

static void
verify_member(struct member *m)
{
	if (board_read(m->board, on_verified, m) == -1)
		member_done(m, false, "the board is busy");
}

static void
after_upload(struct group *g)
{
	if (g->failed) {
		roll_back(g);
		return;
	}
	stats_uploaded(&g->stats, g->cycle_bytes, g->cycle_upload_ms, 0, 0);
	run_all(g, S_VERIFY, verify_member, after_verify);
}

/* --- upload (one per member, in parallel) -------------------------------- */

static void
arm_stall(struct member *m)
{
	timer_ms(m->stall_ev, m->g->cfg->timeouts.stall_ms);
}

static void
on_stall(evutil_socket_t fd, short ev, void *arg)
{
	struct member *m = arg;

	(void)fd;
	(void)ev;
	if (m->up == NULL)
		return;
	m->stalled = true;
	upload_abort(m->up);
}

static void
on_upload_progress(uint64_t off, uint64_t total, void *arg)
{
	struct member *m = arg;
	uint64_t now = now_ms(), el;

	if (off > m->up_acked) {
		m->up_acked = off;
		arm_stall(m);
	}
	if (now - m->up_log_ms < PROGRESS_LOG_MS || total == 0)
		return;
	m->up_log_ms = now;
	el = now - m->up_started_ms;
	log_info("Uploading",
	         "group=%s member=%s percent=%.1f bytes=%" PRIu64
	         " total=%" PRIu64 " bytes_per_s=%.0f",
	         log_q(m->g->cfg->name), log_q(m->cfg->name),
	         100.0 * (double)off / (double)total, off, total,
	         el != 0 ? (double)off * 1000.0 / (double)el : 0.0);
}

/* May come from inside upload_abort(): finished from the loop. */
static void
on_upload_done(const Ipc__Reply *reply, void *arg)
{
	struct member *m = arg;

	m->up_status = reply->status;
	snprintf(m->up_error, sizeof(m->up_error), "%s", reply->error);
	event_active(m->upload_done_ev, EV_TIMEOUT, 0);
}

static void
upload_finished(evutil_socket_t fd, short ev, void *arg)
{
	struct member *m = arg;
	uint64_t el = now_ms() - m->up_started_ms, total = upload_total(m->up);
	uint32_t win = upload_window(m->up), rew = upload_rewinds(m->up);

	(void)fd;
	(void)ev;
	event_del(m->stall_ev);
	upload_free(m->up);
	m->up = NULL;
	if (m->stalled) {
		member_done(m, false,
		            "the upload made no progress for %lld ms "
		            "(timeouts.stall) at offset %" PRIu64,
		            (long long)m->g->cfg->timeouts.stall_ms,
		            m->up_acked);
		return;
	}
	if (m->up_status == IPC__REPLY__STATUS__ABORTED &&
	    (m->g->failed || m->g->stop)) {
		/* Stopped by us: the other member's failure says why. */
		member_done(m, true, NULL);
		return;
	}
	if (m->up_status != IPC__REPLY__STATUS__OK) {
		member_done(m, false, "upload: %s",
		            m->up_error[0] ? m->up_error : "failed");
		return;
	}
	log_info("Upload finished",
	         "group=%s member=%s bytes=%" PRIu64
	         " seconds=%.1f bytes_per_s=%.0f window=%u rewinds=%u",
	         log_q(m->g->cfg->name), log_q(m->cfg->name), total,
	         (double)el / 1000.0,
	         el != 0 ? (double)total * 1000.0 / (double)el : 0.0, win, rew);
	/* The group's figures: the last member's window, all rewinds. */
	stats_uploaded(&m->g->stats, 0, 0, win, rew);
	/* The group's rate: all members' bytes over the slowest upload. */
	m->g->cycle_bytes += total;
	if (el > m->g->cycle_upload_ms)
		m->g->cycle_upload_ms = el;
	member_done(m, true, NULL);
}

static void
upload_member(struct member *m)
{
	struct group *g = m->g;
	struct upload_opts o;
	const struct board_slot *s1 = board_slot(&m->imgs, 1);
	char err[512];

	if (hash_eq(s1, m->img->mcuboot.hash)) {
		log_info("Slot 1 already holds the image; not uploading it "
		         "again",
		         "group=%s member=%s", log_q(g->cfg->name),
		         log_q(m->cfg->name));
		member_done(m, true, NULL);
		return;
	}
	memset(&o, 0, sizeof(o));
	m->stalled = false;
	m->up_acked = 0;
	m->up_started_ms = m->up_log_ms = now_ms();
	log_info("Uploading the new image",
	         "group=%s member=%s version=%s bytes=%" PRIu64,
	         log_q(g->cfg->name), log_q(m->cfg->name), m->img->version_rdfm,
	         m->img->size);
	m->up = upload_start(daemon_base(g->d), board_worker(m->board),
	                     board_id(m->board), m->img->path, &o,
	                     on_upload_progress, on_upload_done, m, err,
	                     sizeof(err));
	if (m->up == NULL) {
		member_done(m, false, "%s", err);
		return;
	}
	arm_stall(m);
}

/* --- artifact ------------------------------------------------------------- */

/* Every member needs its image; the names of those without one. */
static bool
all_members_have_images(struct group *g, char *missing, size_t cap)
{
	size_t i;
	int n = 0;

	missing[0] = '\0';
	for (i = 0; i < g->n; i++) {
		struct member *m = &g->m[i];

		m->img = artifact_image_for(g->art, m->cfg->device);
		if (m->img != NULL && m->img->path != NULL)
			continue;
		m->img = NULL;
		if (n >= 0 && (size_t)n < cap)
			n += snprintf(missing + n, cap - (size_t)n,
			              "%s%s (image \"%s\")", n > 0 ? ", " : "",
			              m->cfg->name, m->cfg->device);
	}
	return missing[0] == '\0';
}

static void
fill_journal(struct group *g)
{
	size_t i;

	memset(&g->j, 0, sizeof(g->j));
	g->j.phase = JP_IDLE;
	snprintf(g->j.artifact_sha256, sizeof(g->j.artifact_sha256), "%s",
	         g->sha);
	snprintf(g->j.target_version, sizeof(g->j.target_version), "%s",
	         g->m[0].img->version_rdfm);
	g->j.attempt = g->attempts + 1;
	g->j.nmembers = g->n;
	for (i = 0; i < g->n; i++) {
		struct journal_member *jm = &g->j.members[i];
		const struct board_slot *s0 = board_slot(&g->m[i].imgs, 0);

		snprintf(jm->name, sizeof(jm->name), "%s", g->m[i].cfg->name);
		jm->has_old_hash = s0 != NULL && s0->has_hash;
		if (jm->has_old_hash)
			memcpy(jm->old_hash, s0->hash, BOARD_HASH_LEN);
		jm->has_new_hash = true;
		memcpy(jm->new_hash, g->m[i].img->mcuboot.hash, BOARD_HASH_LEN);
	}
}

static void
read_artifact(struct group *g)
{
	struct artifact_opts o;
	char err[512], missing[512];

	if (g->workdir == NULL &&
	    (g->workdir = daemon_workdir(g->d, "group-", g->cfg->id, err,
	                                 sizeof(err))) == NULL) {
		fail(g, true, S_DOWNLOAD, 0, "cannot make a work directory: %s",
		     err);
		return;
	}
	memset(&o, 0, sizeof(o));
	o.extract_dir = g->workdir;
	o.verify_key = daemon_verify_key(g->d);
	if (artifact_read_file(spool_path(g->entry), &o, &g->art, err,
	                       sizeof(err)) == -1) {
		fail(g, true, S_DOWNLOAD, 0, "artifact refused: %s", err);
		return;
	}
	if (g->art->type != ARTIFACT_ZEPHYR_GROUP_IMAGE) {
		fail(g, true, S_DOWNLOAD, 0,
		     "artifact refused: it is a %s, a group needs a "
		     "zephyr-group-image",
		     artifact_type_name(g->art->type));
		return;
	}
	if (!artifact_compatible(g->art, g->cfg->type)) {
		fail(g, true, S_DOWNLOAD, 0,
		     "artifact refused: it is not for group type \"%s\"",
		     g->cfg->type);
		return;
	}
	if (!all_members_have_images(g, missing, sizeof(missing))) {
		fail(g, true, S_DOWNLOAD, 0,
		     "artifact refused: no image for member %s; no member "
		     "was touched",
		     missing);
		return;
	}
	if (g->n > JOURNAL_MAX_MEMBERS) {
		fail(g, false, S_DOWNLOAD, 0,
		     "the group has %zu members; the journal holds at most %d",
		     g->n, JOURNAL_MAX_MEMBERS);
		return;
	}
	fill_journal(g);
	stats_offered(&g->stats, g->j.target_version);
	log_info("Update artifact ready",
	         "group=%s artifact=%s version=%s members=%zu",
	         log_q(g->cfg->name), log_q(g->art->name), g->j.target_version,
	         g->n);
	journal_step(g, JP_UPLOADING, GROUP_CP_UPLOADING);
	g->cycle_bytes = g->cycle_upload_ms = 0;
	run_all(g, S_UPLOAD, upload_member, after_upload);
}

/* --- server --------------------------------------------------------------- */

static void
on_download(struct rdfm_dev *rd, const struct rdfm_result *res, void *arg)
{
	struct group *g = arg;

	(void)rd;
	if (g->stop) {
		go_idle(g);
		return;
	}
	if (res->status != RDFM_DOWNLOADED) {
		fail(g, true, S_DOWNLOAD, (int64_t)res->retry_ms, "%s",
		     res->error[0] ? res->error : "download failed");
		return;
	}
	read_artifact(g);
}

static void
on_check(struct rdfm_dev *rd, const struct rdfm_result *res, void *arg)
{
	struct group *g = arg;
	char err[256];

	if (g->stop) {
		go_idle(g);
		return;
	}
	switch (res->status) {
	case RDFM_NO_UPDATE:
		stats_checked(&g->stats, STATS_CHECK_UP_TO_DATE);
		g->stats.offered_version[0] = '\0';
		if (daemon_once(g->d))
			log_info("Up to date", "group=%s version=%s",
			         log_q(g->cfg->name), g->version);
		cycle_end(g, O_UP_TO_DATE, g->cfg->update_interval_ms);
		return;
	case RDFM_UNAPPROVED:
		stats_checked(&g->stats, STATS_CHECK_UNAPPROVED);
		cycle_end(g, O_WAITING, g->cfg->update_interval_ms);
		return;
	case RDFM_UPDATE:
		stats_checked(&g->stats, STATS_CHECK_OFFERED);
		break;
	default:
		stats_checked(&g->stats, STATS_CHECK_ERROR);
		fail(g, false, S_CHECK, (int64_t)res->retry_ms, "%s",
		     res->error[0] ? res->error : "update check failed");
		return;
	}
	snprintf(g->sha, sizeof(g->sha), "%s", res->offer->sha256);
	if (strcmp(g->sha, g->skip_sha) == 0) {
		log_debug("Offer skipped: its retries ran out",
		          "group=%s sha256=%s", log_q(g->cfg->name), g->sha);
		g->sha[0] = '\0';
		cycle_end(g, O_SKIPPED, g->cfg->update_interval_ms);
		return;
	}
	g->skip_sha[0] = '\0';
	if (strcmp(g->sha, g->fail_sha) != 0) {
		g->fail_sha[0] = '\0';
		g->attempts = 0;
	}
	log_info("Update offered", "group=%s version=%s sha256=%s",
	         log_q(g->cfg->name), g->version, g->sha);
	stats_attempt(&g->stats, NULL);
	g->step = S_DOWNLOAD;
	if ((g->entry = spool_ref(daemon_spool(g->d), g->sha, err,
	                          sizeof(err))) == NULL) {
		fail(g, true, S_DOWNLOAD, 0, "%s", err);
		return;
	}
	if (rdfm_download(rd, g->entry, res->offer->uri, on_download, g) == -1)
		fail(g, true, S_DOWNLOAD, 0,
		     "a server request is already running");
}

static void
do_check(struct group *g)
{
	g->step = S_CHECK;
	if (rdfm_check(g->rd, g->version, on_check, g) == -1)
		fail(g, false, S_CHECK, 0,
		     "a server request is already running");
}

/* --- reading the members -------------------------------------------------- */

static void
on_startup_confirmed(struct board *b, enum board_status st, const char *err,
                     const struct board_images *imgs, void *arg)
{
	struct member *m = arg;

	(void)b;
	(void)imgs;
	if (st != BOARD_OK)
		member_done(m, false, "cannot confirm the running image: %s",
		            err);
	else
		member_done(m, true, NULL);
}

/*
 * As for single boards (and the Go client): an unconfirmed image that no
 * update of ours left is confirmed, or the next reset would revert it.
 */
static void
startup_confirm_member(struct member *m)
{
	const struct board_slot *s0 = board_slot(&m->imgs, 0);

	if (s0 == NULL || s0->confirmed) {
		member_done(m, true, NULL);
		return;
	}
	log_info("The group member runs an unconfirmed image that is not "
	         "ours in flight; confirming it",
	         "group=%s member=%s version=%s", log_q(m->g->cfg->name),
	         log_q(m->cfg->name), log_q(s0->version));
	if (board_set_state(m->board, NULL, true, on_startup_confirmed, m) ==
	    -1)
		member_done(m, false, "the board is busy");
}

static void
after_startup_confirm(struct group *g)
{
	if (g->failed) {
		fail(g, false, S_STARTUP_CONFIRM, 0, "%s", g->fail_reason);
		return;
	}
	do_check(g);
}

static void
after_read(struct group *g)
{
	char versions[600];
	size_t i;
	bool agree = true, unconfirmed = false;
	int n = 0;

	if (journal_in_flight(g)) {
		log_info(g->j.phase == JP_COMMITTED
		             ? "Rolling the group update left in flight "
		               "forward"
		             : "Rolling the group update left in flight back",
		         "group=%s phase=%s version=%s", log_q(g->cfg->name),
		         journal_phase_name(g->j.phase),
		         log_q(g->j.target_version));
		snprintf(g->fail_sha, sizeof(g->fail_sha), "%s",
		         g->j.artifact_sha256);
		snprintf(g->sha, sizeof(g->sha), "%s", g->j.artifact_sha256);
		if (g->j.phase == JP_COMMITTED)
			stats_attempt(&g->stats, g->j.target_version);
		converge(g, g->j.phase == JP_COMMITTED ? FORWARD : BACK, true);
		return;
	}
	if (g->failed) {
		fail(g, false, S_READ, 0, "cannot read the image list: %s",
		     g->fail_reason);
		return;
	}
	versions[0] = '\0';
	for (i = 0; i < g->n; i++) {
		struct member *m = &g->m[i];
		const struct board_slot *s0 = board_slot(&m->imgs, 0);

		if (board_version_rdfm(&m->imgs, m->version,
		                       sizeof(m->version)) == -1) {
			fail(g, false, S_READ, 0,
			     "member %s reports slot 0 version \"%s\", which "
			     "is no MCUboot version",
			     m->cfg->name, s0 != NULL ? s0->version : "");
			return;
		}
		if (strcmp(m->version, g->m[0].version) != 0)
			agree = false;
		if (s0 != NULL && !s0->confirmed)
			unconfirmed = true;
		if (n >= 0 && (size_t)n < sizeof(versions))
			n +=
			    snprintf(versions + n, sizeof(versions) - (size_t)n,
			             "%s%s=%s", i > 0 ? " " : "", m->cfg->name,
			             m->version);
	}
	if (!agree) {
		/* No journal entry explains it: never guess which is right. */
		fail(g, false, S_READ, 0,
		     "the group's members run different versions (%s) and no "
		     "update of ours explains it; refusing to update the "
		     "group",
		     versions);
		return;
	}
	snprintf(g->version, sizeof(g->version), "%s", g->m[0].version);
	log_debug("Group read", "group=%s version=%s", log_q(g->cfg->name),
	          g->version);
	if (g->first_cycle && unconfirmed) {
		g->first_cycle = false;
		run_all(g, S_STARTUP_CONFIRM, startup_confirm_member,
		        after_startup_confirm);
		return;
	}
	g->first_cycle = false;
	do_check(g);
}

static void
on_read(struct board *b, enum board_status st, const char *err,
        const struct board_images *imgs, void *arg)
{
	struct member *m = arg;

	(void)b;
	if (st != BOARD_OK || imgs == NULL) {
		m->has_imgs = false;
		member_done(m, false, "%s", err[0] ? err : "no list");
		return;
	}
	m->imgs = *imgs;
	m->has_imgs = true;
	member_done(m, true, NULL);
}

static void
read_member(struct member *m)
{
	if (board_read(m->board, on_read, m) == -1)
		member_done(m, false, "the board is busy");
}

static void
cycle_read(struct group *g)
{
	run_all(g, S_READ, read_member, after_read);
}

static void
on_cycle_timer(evutil_socket_t fd, short ev, void *arg)
{
	struct group *g = arg;

	(void)fd;
	(void)ev;
	if (g->stop || daemon_stopping(g->d))
		return;
	cycle_read(g);
}

/* --- life cycle ----------------------------------------------------------- */

struct group *
group_new(struct daemon *d, const struct group_cfg *c, char *err, size_t errcap)
{
	struct event_base *base = daemon_base(d);
	struct group *g;
	struct worker *w;
	char kerr[512];
	uint32_t id;
	size_t i;

	if (c->nmembers == 0) {
		snprintf(err, errcap, "group %s has no members", c->name);
		return NULL;
	}
	if (c->nmembers > JOURNAL_MAX_MEMBERS) {
		snprintf(err, errcap,
		         "group %s has %zu members; at most %d are supported",
		         c->name, c->nmembers, JOURNAL_MAX_MEMBERS);
		return NULL;
	}
	g = xcalloc(1, sizeof(*g));
	g->d = d;
	g->cfg = c;
	g->first_cycle = true;
	g->m = xcalloc(c->nmembers, sizeof(*g->m));
	if ((g->key = keys_load(c->key_path, kerr, sizeof(kerr))) == NULL) {
		snprintf(err, errcap, "group %s: key: %s", c->name, kerr);
		group_free(g);
		return NULL;
	}
	for (i = 0; i < c->nmembers; i++) {
		struct member *m = &g->m[i];

		m->g = g;
		m->cfg = &c->members[i];
		m->idx = i;
		if ((w = daemon_worker_for(d, m->cfg->name, &m->cfg->transport,
		                           &c->timeouts, &id, err, errcap)) ==
		    NULL) {
			group_free(g);
			return NULL;
		}
		m->board = board_new(base, m->cfg->name, w, id, &c->timeouts);
		m->stall_ev = evtimer_new(base, on_stall, m);
		m->upload_done_ev = evtimer_new(base, upload_finished, m);
		m->retry_ev = evtimer_new(base, on_conv_retry, m);
		if (m->stall_ev == NULL || m->upload_done_ev == NULL ||
		    m->retry_ev == NULL)
			fatalx("cannot create member timers", "member=%s",
			       log_q(m->cfg->name));
		g->n++;
	}
	/* The group is one identity to the server, with its own type. */
	g->rd = rdfm_dev_new(daemon_rdfm(d), daemon_config(d)->server, c->id,
	                     c->type, g->key);
	if ((g->cycle_ev = evtimer_new(base, on_cycle_timer, g)) == NULL)
		fatalx("cannot create group timers", "group=%s",
		       log_q(c->name));
	return g;
}

void
group_start(struct group *g)
{
	char err[256];
	int r;

	r = journal_read("group", g->cfg->id, &g->j, err, sizeof(err));
	if (r == -1) {
		/* Never guessed from: the members are read instead. */
		log_errx("The journal entry is unreadable; reading the "
		         "members instead",
		         "group=%s error=%s", log_q(g->cfg->name), log_q(err));
		memset(&g->j, 0, sizeof(g->j));
	} else if (r == 1)
		memset(&g->j, 0, sizeof(g->j));
	else if (g->j.phase >= JP_UPLOADING && g->j.phase <= JP_ROLLING_BACK &&
	         !journal_in_flight(g))
		log_errx("The journal entry does not match the group's "
		         "members; ignoring it",
		         "group=%s members=%zu", log_q(g->cfg->name),
		         g->j.nmembers);
	timer_ms(g->cycle_ev, 0);
}

void
group_stop(struct group *g)
{
	size_t i;

	g->stop = true;
	event_del(g->cycle_ev);
	switch (g->step) {
	case S_IDLE:
		daemon_check_idle(g->d);
		break;
	case S_UPLOAD:
		for (i = 0; i < g->n; i++)
			if (g->m[i].up != NULL)
				upload_abort(g->m[i].up);
		break;
	case S_RESET:
	case S_WATCH:
	case S_CONVERGE:
		/* Waiting, not talking: the journal says where we were. */
		go_idle(g);
		break;
	case S_CHECK:
	case S_DOWNLOAD:
		/*
		 * The server is not a board: idle now.  The request (which
		 * may be writing the spool entry) is cancelled when the
		 * group is freed, or its callback ends the cycle first.
		 */
		g->step = S_IDLE;
		daemon_check_idle(g->d);
		break;
	default:
		/* One SMP exchange per member in flight: they end the step. */
		break;
	}
}

bool
group_idle(const struct group *g)
{
	return g->step == S_IDLE;
}

void
group_free(struct group *g)
{
	size_t i;

	if (g == NULL)
		return;
	if (g->rd != NULL)
		rdfm_dev_free(g->rd);
	drop_offer(g);
	for (i = 0; i < g->n; i++) {
		struct member *m = &g->m[i];
		struct worker *w = board_worker(m->board);

		board_free(m->board);
		daemon_worker_release(g->d, w);
		event_free(m->stall_ev);
		event_free(m->upload_done_ev);
		event_free(m->retry_ev);
	}
	if (g->cycle_ev != NULL)
		event_free(g->cycle_ev);
	EVP_PKEY_free(g->key);
	free(g->m);
	free(g->workdir);
	free(g);
}

void
group_retire(struct group *g)
{
	g->retire = true;
	/* Between cycles: the next one does not start. */
	if (g->step == S_IDLE)
		event_del(g->cycle_ev);
}

void
group_report(const struct group *g, struct metrics_snapshot *s)
{
	struct metrics_entry e;
	size_t i;

	memset(&e, 0, sizeof(e));
	e.kind = "group";
	e.name = g->cfg->name;
	e.state = step_phase(g->step);
	e.running_version = g->version;
	for (i = 0; i < g->n; i++)
		e.worker_restarts +=
		    worker_restarts(board_worker(g->m[i].board));
	e.stats = &g->stats;
	metrics_snapshot_add(s, &e);
}
