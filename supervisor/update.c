/*
 * One device's update state machine (update.h): a cycle per update_interval
 * that reads the board, asks the server, and when offered an image drives
 * it through download, upload, test boot and confirm, journalling first.
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
#include "duration.h"
#include "journal.h"
#include "log.h"
#include "metrics.h"
#include "rdfm.h"
#include "spool.h"
#include "update.h"
#include "upload.h"
#include "workers.h"
#include "xmalloc.h"

/* Upload progress lines at most this often. */
#define PROGRESS_LOG_MS 3000
/* Backoff after failures: update_interval doubled per attempt, capped. */
#define BACKOFF_MAX_SHIFT 4

enum step {
	S_IDLE, /* between cycles */
	S_READ,
	S_STARTUP_CONFIRM,
	S_CHECK,
	S_DOWNLOAD,
	S_ARTIFACT,
	S_UPLOAD,
	S_VERIFY,
	S_PENDING,
	S_RESET,
	S_CONFIRM,
	S_WATCH,
};

enum outcome {
	O_UP_TO_DATE,
	O_UPDATED,
	O_WAITING, /* not approved yet */
	O_SKIPPED, /* offer skipped after its retries ran out */
	O_FAILED,
	O_STOPPED,
};

struct update_dev {
	struct daemon *d;
	const struct device_cfg *cfg;
	struct board *board;
	struct rdfm_dev *rd;
	enum step step;
	bool first_cycle;
	bool stop;
	bool retire; /* removed or changed by a reload: no new cycle */
	struct board_stats stats;

	/* The journal entry found at start-up (phase JP_IDLE when none). */
	struct journal_entry boot_j;
	bool journal_bad;
	/*
	 * The failure leaves the new image running unconfirmed: keep the
	 * journal entry, so the next cycle finishes the confirm.
	 */
	bool keep_journal;

	struct board_images imgs; /* last read */
	uint8_t old_hash[BOARD_HASH_LEN];
	bool has_old_hash;
	char version[MCUBOOT_VERSION_MAX]; /* reported to the server */

	/* The offer being applied. */
	char sha[65];
	struct spool_entry *entry;
	/* Kept between attempts at one offer so it is downloaded once. */
	struct spool_entry *kept;
	struct artifact *art;
	const struct artifact_image *img;
	char *workdir;
	struct journal_entry j;

	/* Retry policy over offers. */
	char fail_sha[65];
	unsigned int attempts;
	char skip_sha[65];

	/* The upload. */
	struct upload *up;
	bool stalled;
	uint64_t up_started_ms, up_log_ms, up_acked;
	struct event *stall_ev;
	struct event *upload_done_ev;
	Ipc__Reply__Status up_status;
	char up_error[256];

	struct event *cycle_ev;
};

static void cycle_start(struct update_dev *u);
static void do_check(struct update_dev *u);
static void do_verify(struct update_dev *u);
static void do_confirm(struct update_dev *u);

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
	case S_CONFIRM:
	case S_WATCH:
		return "confirm";
	}
	return "?";
}

/* Forget everything about the offer of this cycle. */
static void
drop_offer(struct update_dev *u)
{
	if (u->up != NULL) {
		upload_free(u->up);
		u->up = NULL;
	}
	event_del(u->stall_ev);
	event_del(u->upload_done_ev);
	if (u->art != NULL) {
		artifact_remove_files(u->art);
		artifact_free(u->art);
		u->art = NULL;
	}
	u->img = NULL;
	if (u->entry != NULL) {
		if (u->kept == NULL && u->sha[0] != '\0' &&
		    strcmp(u->sha, u->fail_sha) == 0 &&
		    strcmp(u->sha, u->skip_sha) != 0)
			u->kept = u->entry;
		else
			spool_unref(u->entry);
		u->entry = NULL;
	}
	u->sha[0] = '\0';
}

/* The kept download, when it is not for the offer in u->sha. */
static void
release_kept(struct update_dev *u, bool all)
{
	if (u->kept == NULL)
		return;
	if (!all && strcmp(spool_sha256(u->kept), u->sha) == 0)
		return;
	spool_unref(u->kept);
	u->kept = NULL;
}

static void
schedule(struct update_dev *u, int64_t ms)
{
	struct timeval tv;

	if (ms < 0)
		ms = 0;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(u->cycle_ev, &tv);
}

static void
go_idle(struct update_dev *u)
{
	drop_offer(u);
	u->step = S_IDLE;
	daemon_check_idle(u->d);
}

/* The end of a cycle: the next one after delay, or report for --once. */
static void
cycle_end(struct update_dev *u, enum outcome o, int64_t delay_ms)
{
	drop_offer(u);
	u->step = S_IDLE;
	u->first_cycle = false;
	if (daemon_once(u->d)) {
		daemon_cycle_done(u->d, o == O_UP_TO_DATE || o == O_UPDATED);
		return;
	}
	if (u->stop || u->retire || daemon_stopping(u->d)) {
		daemon_check_idle(u->d);
		return;
	}
	schedule(u, delay_ms);
}

/* Journal the offer's current step; a failure is logged, not fatal. */
static void
journal_step(struct update_dev *u, enum journal_phase p, const char *cp)
{
	char err[256];

	u->j.phase = p;
	u->j.members[0].phase = p;
	if (journal_write("device", u->cfg->id, &u->j, err, sizeof(err)) == -1)
		log_errx("Cannot write the journal", "device=%s error=%s",
		         log_q(u->cfg->name), log_q(err));
	if (cp != NULL)
		journal_crashpoint(cp);
}

static void
journal_idle(struct update_dev *u)
{
	struct journal_entry e;
	char err[256];

	memset(&e, 0, sizeof(e));
	e.phase = JP_IDLE;
	if (journal_write("device", u->cfg->id, &e, err, sizeof(err)) == -1)
		log_errx("Cannot write the journal", "device=%s error=%s",
		         log_q(u->cfg->name), log_q(err));
}

/*
 * One ERROR line naming the device, phase and reason.  counts: the failure
 * is an attempt at the offered sha256 (retries apply); otherwise the next
 * cycle simply follows the interval (or the server's backoff).
 */
static void fail(struct update_dev *u, bool counts, int64_t delay_ms,
                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void
fail(struct update_dev *u, bool counts, int64_t delay_ms, const char *fmt, ...)
{
	const struct config *c = daemon_config(u->d);
	char reason[600];
	va_list ap;
	int shift;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	stats_failed(&u->stats, step_phase(u->step));
	if (!counts || u->sha[0] == '\0') {
		log_errx("Update failed", "device=%s phase=%s reason=%s",
		         log_q(u->cfg->name), step_phase(u->step),
		         log_q(reason));
		cycle_end(u, O_FAILED,
		          delay_ms > u->cfg->update_interval_ms
		              ? delay_ms
		              : u->cfg->update_interval_ms);
		return;
	}
	if (strcmp(u->fail_sha, u->sha) != 0) {
		snprintf(u->fail_sha, sizeof(u->fail_sha), "%s", u->sha);
		u->attempts = 0;
	}
	u->attempts++;
	if (c->retries != 0)
		log_errx("Update failed",
		         "device=%s phase=%s reason=%s attempt=%u/%d",
		         log_q(u->cfg->name), step_phase(u->step),
		         log_q(reason), u->attempts, c->retries);
	else
		log_errx("Update failed",
		         "device=%s phase=%s reason=%s attempt=%u",
		         log_q(u->cfg->name), step_phase(u->step),
		         log_q(reason), u->attempts);
	if (u->j.phase != JP_IDLE && u->j.phase != JP_DONE &&
	    (!u->keep_journal ||
	     (c->retries != 0 && u->attempts >= (unsigned int)c->retries)))
		journal_idle(u);
	u->keep_journal = false;
	memset(&u->j, 0, sizeof(u->j));
	if (c->retries != 0 && u->attempts >= (unsigned int)c->retries) {
		log_warnx("Giving up on this update until the server offers "
		          "another",
		          "device=%s sha256=%s attempts=%u",
		          log_q(u->cfg->name), u->sha, u->attempts);
		snprintf(u->skip_sha, sizeof(u->skip_sha), "%s", u->sha);
		cycle_end(u, O_FAILED, u->cfg->update_interval_ms);
		return;
	}
	shift = u->attempts - 1 < BACKOFF_MAX_SHIFT ? (int)u->attempts - 1
	                                            : BACKOFF_MAX_SHIFT;
	cycle_end(u, O_FAILED, u->cfg->update_interval_ms << shift);
}

/* Called first in every callback: a stop request ends the cycle here. */
static bool
stopped(struct update_dev *u)
{
	if (!u->stop)
		return false;
	go_idle(u);
	return true;
}

static void
succeed(struct update_dev *u)
{
	const char *ver =
	    u->j.target_version[0] != '\0' ? u->j.target_version : "unknown";
	char v[sizeof(u->j.target_version)];

	snprintf(v, sizeof(v), "%s", ver);
	journal_step(u, JP_DONE, DAEMON_CP_DONE);
	log_info("Update successful", "device=%s new_version=%s",
	         log_q(u->cfg->name), v);
	stats_succeeded(&u->stats);
	snprintf(u->version, sizeof(u->version), "%s", v);
	u->attempts = 0;
	u->fail_sha[0] = '\0';
	memset(&u->j, 0, sizeof(u->j));
	/* Check again at once: the server may offer the next hop. */
	cycle_end(u, O_UPDATED, 0);
}

/* --- confirm ------------------------------------------------------------ */

static void
on_confirmed(struct board *b, enum board_status st, const char *err,
             const struct board_images *imgs, void *arg)
{
	struct update_dev *u = arg;
	const struct board_slot *s0;

	(void)b;
	if (st != BOARD_OK) {
		if (st == BOARD_REVERTED) {
			fail(u, true, 0,
			     "rejected: the board reverted to its old image "
			     "instead of confirming the new one (%s)",
			     err);
			return;
		}
		/* It still runs the new image: the next cycle confirms. */
		u->keep_journal = true;
		fail(u, true, 0, "%s", err);
		return;
	}
	if (u->cfg->self_confirm || imgs == NULL) {
		succeed(u);
		return;
	}
	s0 = board_slot(imgs, 0);
	if (s0 == NULL || !s0->has_hash || !s0->confirmed ||
	    memcmp(s0->hash, u->j.members[0].new_hash, BOARD_HASH_LEN) != 0) {
		u->keep_journal = true;
		fail(u, true, 0, "the board did not confirm the new image");
		return;
	}
	succeed(u);
}

/* The board runs the new image: confirm it, or watch it confirm itself. */
static void
do_confirm(struct update_dev *u)
{
	journal_step(u, JP_CONFIRMING, DAEMON_CP_CONFIRMING);
	if (u->cfg->self_confirm) {
		u->step = S_WATCH;
		log_info("Waiting for the board to confirm the new image",
		         "device=%s", log_q(u->cfg->name));
		board_wait_confirm(u->board, u->j.members[0].new_hash,
		                   on_confirmed, u);
	} else {
		u->step = S_CONFIRM;
		board_set_state(u->board, u->j.members[0].new_hash, true,
		                on_confirmed, u);
	}
}

/* --- test boot ---------------------------------------------------------- */

static void
on_booted(struct board *b, enum board_status st, const char *err,
          const struct board_images *imgs, void *arg)
{
	struct update_dev *u = arg;
	const struct board_slot *s0;

	(void)b;
	if (stopped(u))
		return;
	if (st != BOARD_OK || imgs == NULL) {
		fail(u, true, 0, "%s", err[0] != '\0' ? err : "no image list");
		return;
	}
	u->imgs = *imgs;
	s0 = board_slot(imgs, 0);
	if (s0 == NULL || !s0->has_hash ||
	    memcmp(s0->hash, u->j.members[0].new_hash, BOARD_HASH_LEN) != 0) {
		fail(u, true, 0,
		     "rejected: after the reset the board still runs version "
		     "%s, not the new image",
		     s0 != NULL ? s0->version : "(none)");
		return;
	}
	log_info("The board runs the new image", "device=%s version=%s",
	         log_q(u->cfg->name), log_q(s0->version));
	do_confirm(u);
}

static void
on_pending(struct board *b, enum board_status st, const char *err,
           const struct board_images *imgs, void *arg)
{
	struct update_dev *u = arg;

	(void)b;
	(void)imgs;
	if (stopped(u))
		return;
	if (st != BOARD_OK) {
		fail(u, true, 0, "cannot mark the image for a test boot: %s",
		     err);
		return;
	}
	journal_step(u, JP_RESETTING, DAEMON_CP_RESETTING);
	u->step = S_RESET;
	log_info("Resetting the board into the new image", "device=%s",
	         log_q(u->cfg->name));
	board_reset_wait(u->board, on_booted, u);
}

static void
on_verified(struct board *b, enum board_status st, const char *err,
            const struct board_images *imgs, void *arg)
{
	struct update_dev *u = arg;
	const struct board_slot *s1;
	char h[65], want[65];

	(void)b;
	if (stopped(u))
		return;
	if (st != BOARD_OK || imgs == NULL) {
		fail(u, true, 0, "%s", err[0] != '\0' ? err : "no image list");
		return;
	}
	s1 = board_slot(imgs, 1);
	board_hex(u->img->mcuboot.hash, want);
	if (s1 == NULL || !s1->has_hash ||
	    memcmp(s1->hash, u->img->mcuboot.hash, BOARD_HASH_LEN) != 0) {
		if (s1 != NULL && s1->has_hash)
			board_hex(s1->hash, h);
		else
			snprintf(h, sizeof(h), "(none)");
		fail(u, true, 0,
		     "slot 1 holds hash %s after the upload, expected %s", h,
		     want);
		return;
	}
	journal_step(u, JP_PENDING, DAEMON_CP_PENDING);
	u->step = S_PENDING;
	board_set_state(u->board, u->img->mcuboot.hash, false, on_pending, u);
}

static void
do_verify(struct update_dev *u)
{
	u->step = S_VERIFY;
	board_read(u->board, on_verified, u);
}

/* --- upload ------------------------------------------------------------- */

static void
on_stall(evutil_socket_t fd, short ev, void *arg)
{
	struct update_dev *u = arg;

	(void)fd;
	(void)ev;
	if (u->up == NULL)
		return;
	u->stalled = true;
	upload_abort(u->up);
}

static void
arm_stall(struct update_dev *u)
{
	int64_t ms = u->cfg->timeouts.stall_ms;
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	evtimer_add(u->stall_ev, &tv);
}

static void
on_upload_progress(uint64_t off, uint64_t total, void *arg)
{
	struct update_dev *u = arg;
	uint64_t now = now_ms(), el;

	if (off > u->up_acked) {
		u->up_acked = off;
		arm_stall(u);
	}
	if (now - u->up_log_ms < PROGRESS_LOG_MS || total == 0)
		return;
	u->up_log_ms = now;
	el = now - u->up_started_ms;
	log_info("Uploading",
	         "device=%s percent=%.1f bytes=%" PRIu64 " total=%" PRIu64
	         " bytes_per_s=%.0f",
	         log_q(u->cfg->name), 100.0 * (double)off / (double)total, off,
	         total, el != 0 ? (double)off * 1000.0 / (double)el : 0.0);
}

/* upload_done may come from inside upload_abort(): handled from the loop. */
static void
on_upload_done(const Ipc__Reply *reply, void *arg)
{
	struct update_dev *u = arg;

	u->up_status = reply->status;
	snprintf(u->up_error, sizeof(u->up_error), "%s", reply->error);
	event_active(u->upload_done_ev, EV_TIMEOUT, 0);
}

static void
upload_finished(evutil_socket_t fd, short ev, void *arg)
{
	struct update_dev *u = arg;
	uint64_t el = now_ms() - u->up_started_ms, total = upload_total(u->up);
	uint32_t win = upload_window(u->up), rew = upload_rewinds(u->up);

	(void)fd;
	(void)ev;
	event_del(u->stall_ev);
	upload_free(u->up);
	u->up = NULL;
	if (u->up_status == IPC__REPLY__STATUS__ABORTED && u->stop) {
		log_info("Upload stopped; it resumes at the next start",
		         "device=%s acked=%" PRIu64, log_q(u->cfg->name),
		         u->up_acked);
		go_idle(u);
		return;
	}
	if (u->stalled) {
		fail(u, true, 0,
		     "the upload made no progress for %lld ms "
		     "(timeouts.stall); last acknowledged offset %" PRIu64,
		     (long long)u->cfg->timeouts.stall_ms, u->up_acked);
		return;
	}
	if (u->up_status != IPC__REPLY__STATUS__OK) {
		fail(u, true, 0, "%s", u->up_error[0] ? u->up_error : "failed");
		return;
	}
	log_info("Upload finished",
	         "device=%s bytes=%" PRIu64
	         " seconds=%.1f bytes_per_s=%.0f window=%u rewinds=%u",
	         log_q(u->cfg->name), total, (double)el / 1000.0,
	         el != 0 ? (double)total * 1000.0 / (double)el : 0.0, win, rew);
	stats_uploaded(&u->stats, total, el, win, rew);
	do_verify(u);
}

static void
do_upload(struct update_dev *u)
{
	struct upload_opts o;
	char err[512];

	journal_step(u, JP_UPLOADING, DAEMON_CP_UPLOADING);
	u->step = S_UPLOAD;
	memset(&o, 0, sizeof(o));
	u->stalled = false;
	u->up_acked = 0;
	u->up_started_ms = u->up_log_ms = now_ms();
	log_info("Uploading the new image",
	         "device=%s version=%s bytes=%" PRIu64, log_q(u->cfg->name),
	         u->img->version_rdfm, u->img->size);
	u->up = upload_start(daemon_base(u->d), board_worker(u->board),
	                     board_id(u->board), u->img->path, &o,
	                     on_upload_progress, on_upload_done, u, err,
	                     sizeof(err));
	if (u->up == NULL) {
		fail(u, true, 0, "%s", err);
		return;
	}
	arm_stall(u);
}

/* --- artifact ----------------------------------------------------------- */

static void
fill_journal(struct update_dev *u)
{
	memset(&u->j, 0, sizeof(u->j));
	u->j.phase = JP_IDLE;
	snprintf(u->j.artifact_sha256, sizeof(u->j.artifact_sha256), "%s",
	         u->sha);
	snprintf(u->j.target_version, sizeof(u->j.target_version), "%s",
	         u->img->version_rdfm);
	u->j.attempt = u->attempts + 1;
	u->j.nmembers = 1;
	snprintf(u->j.members[0].name, sizeof(u->j.members[0].name), "%s",
	         u->cfg->name);
	u->j.members[0].has_old_hash = u->has_old_hash;
	memcpy(u->j.members[0].old_hash, u->old_hash, BOARD_HASH_LEN);
	u->j.members[0].has_new_hash = true;
	memcpy(u->j.members[0].new_hash, u->img->mcuboot.hash, BOARD_HASH_LEN);
}

static void
read_artifact(struct update_dev *u)
{
	struct artifact_opts o;
	const struct board_slot *s1;
	char err[512];
	size_t i;
	int n;

	u->step = S_ARTIFACT;
	if (u->workdir == NULL &&
	    (u->workdir = daemon_workdir(u->d, "", u->cfg->id, err,
	                                 sizeof(err))) == NULL) {
		fail(u, true, 0, "cannot make a work directory: %s", err);
		return;
	}
	memset(&o, 0, sizeof(o));
	o.extract_dir = u->workdir;
	o.verify_key = daemon_verify_key(u->d);
	if (artifact_read_file(spool_path(u->entry), &o, &u->art, err,
	                       sizeof(err)) == -1) {
		fail(u, true, 0, "artifact refused: %s", err);
		return;
	}
	if (u->art->type != ARTIFACT_ZEPHYR_IMAGE) {
		fail(u, true, 0,
		     "artifact refused: it is a %s, a single board needs a "
		     "zephyr-image",
		     artifact_type_name(u->art->type));
		return;
	}
	if (!artifact_compatible(u->art, u->cfg->dev_type)) {
		char types[256] = "";

		for (i = 0, n = 0; i < u->art->ndevice_types; i++)
			n += snprintf(
			    types + n,
			    n < (int)sizeof(types) ? sizeof(types) - n : 0,
			    "%s%s", i ? "," : "", u->art->device_types[i]);
		fail(u, true, 0,
		     "artifact refused: it is for device types [%s], not "
		     "\"%s\"",
		     types, u->cfg->dev_type);
		return;
	}
	if (u->art->nimages != 1 || u->art->images[0].path == NULL) {
		fail(u, true, 0,
		     "artifact refused: %zu images extracted, expected one",
		     u->art->nimages);
		return;
	}
	u->img = &u->art->images[0];
	stats_offered(&u->stats, u->img->version_rdfm);
	fill_journal(u);
	log_info("Update artifact ready",
	         "device=%s artifact=%s version=%s bytes=%" PRIu64,
	         log_q(u->cfg->name), log_q(u->art->name), u->img->version_rdfm,
	         u->img->size);
	s1 = board_slot(&u->imgs, 1);
	if (s1 != NULL && s1->has_hash &&
	    memcmp(s1->hash, u->img->mcuboot.hash, BOARD_HASH_LEN) == 0) {
		log_info("Slot 1 already holds the image; not uploading it "
		         "again",
		         "device=%s", log_q(u->cfg->name));
		do_verify(u);
		return;
	}
	do_upload(u);
}

/* --- server ------------------------------------------------------------- */

static void
on_download(struct rdfm_dev *rd, const struct rdfm_result *res, void *arg)
{
	struct update_dev *u = arg;

	(void)rd;
	if (stopped(u))
		return;
	if (res->status != RDFM_DOWNLOADED) {
		fail(u, true, (int64_t)res->retry_ms, "%s",
		     res->error[0] ? res->error : "download failed");
		return;
	}
	read_artifact(u);
}

static void
on_check(struct rdfm_dev *rd, const struct rdfm_result *res, void *arg)
{
	struct update_dev *u = arg;
	char err[256];

	if (stopped(u))
		return;
	switch (res->status) {
	case RDFM_NO_UPDATE:
		stats_checked(&u->stats, STATS_CHECK_UP_TO_DATE);
		u->stats.offered_version[0] = '\0';
		release_kept(u, true);
		log_debug("No update offered", "device=%s version=%s",
		          log_q(u->cfg->name), u->version);
		if (daemon_once(u->d))
			log_info("Up to date", "device=%s version=%s",
			         log_q(u->cfg->name), u->version);
		cycle_end(u, O_UP_TO_DATE, u->cfg->update_interval_ms);
		return;
	case RDFM_UNAPPROVED:
		/* rdfm.c says so once; poll quietly. */
		stats_checked(&u->stats, STATS_CHECK_UNAPPROVED);
		cycle_end(u, O_WAITING, u->cfg->update_interval_ms);
		return;
	case RDFM_UPDATE:
		stats_checked(&u->stats, STATS_CHECK_OFFERED);
		break;
	default:
		stats_checked(&u->stats, STATS_CHECK_ERROR);
		fail(u, false, (int64_t)res->retry_ms, "%s",
		     res->error[0] ? res->error : "update check failed");
		return;
	}
	snprintf(u->sha, sizeof(u->sha), "%s", res->offer->sha256);
	if (strcmp(u->sha, u->skip_sha) == 0) {
		log_debug("Offer skipped: its retries ran out",
		          "device=%s "
		          "sha256=%s",
		          log_q(u->cfg->name), u->sha);
		u->sha[0] = '\0';
		release_kept(u, true);
		cycle_end(u, O_SKIPPED, u->cfg->update_interval_ms);
		return;
	}
	u->skip_sha[0] = '\0';
	if (strcmp(u->sha, u->fail_sha) != 0) {
		u->fail_sha[0] = '\0';
		u->attempts = 0;
	}
	log_info("Update offered", "device=%s version=%s sha256=%s",
	         log_q(u->cfg->name), u->version, u->sha);
	stats_attempt(&u->stats, NULL);
	u->step = S_DOWNLOAD;
	release_kept(u, false);
	if ((u->entry = spool_ref(daemon_spool(u->d), u->sha, err,
	                          sizeof(err))) == NULL) {
		fail(u, true, 0, "%s", err);
		return;
	}
	if (rdfm_download(rd, u->entry, res->offer->uri, on_download, u) == -1)
		fail(u, true, 0, "a server request is already running");
}

static void
do_check(struct update_dev *u)
{
	if (stopped(u))
		return;
	u->step = S_CHECK;
	if (rdfm_check(u->rd, u->version, on_check, u) == -1)
		fail(u, false, 0, "a server request is already running");
}

/* --- start-up and reading the board ------------------------------------- */

static void
on_startup_confirmed(struct board *b, enum board_status st, const char *err,
                     const struct board_images *imgs, void *arg)
{
	struct update_dev *u = arg;

	(void)b;
	if (stopped(u))
		return;
	if (st != BOARD_OK) {
		fail(u, false, 0, "cannot confirm the running image: %s", err);
		return;
	}
	if (imgs != NULL)
		u->imgs = *imgs;
	log_info("Confirmed the unconfirmed image the board was running",
	         "device=%s version=%s", log_q(u->cfg->name), u->version);
	do_check(u);
}

/*
 * The look at the journal and the board before a check.  In the first
 * cycle: finish what our update left, notice a rejection, or confirm an
 * image that is not ours.  Later: finish a confirm that failed (the board
 * still runs the new image unconfirmed).  Returns true when it started
 * something; false: go on to the check.
 */
static bool
recover(struct update_dev *u, bool first)
{
	struct journal_entry later;
	const struct journal_entry *j = &u->boot_j;
	const struct journal_member *m;
	char err[256];

	if (!first) {
		if (journal_read("device", u->cfg->id, &later, err,
		                 sizeof(err)) != 0 ||
		    later.phase != JP_CONFIRMING)
			return false;
		j = &later;
	}
	m = &j->members[0];
	const struct board_slot *s0 = board_slot(&u->imgs, 0),
	                        *s1 = board_slot(&u->imgs, 1);
	bool in_flight =
	    !(first && u->journal_bad) && j->phase >= JP_UPLOADING &&
	    j->phase <= JP_CONFIRMING && j->nmembers == 1 && m->has_new_hash;
	bool runs_new = in_flight && s0 != NULL && s0->has_hash &&
	                memcmp(s0->hash, m->new_hash, BOARD_HASH_LEN) == 0;

	if (!first && !runs_new)
		return false;
	if (in_flight && first) {
		/* Keep counting attempts at that offer across the restart. */
		snprintf(u->fail_sha, sizeof(u->fail_sha), "%s",
		         j->artifact_sha256);
		u->attempts = j->attempt > 0 ? j->attempt - 1 : 0;
	}
	if (runs_new) {
		log_info("Finishing the update left in flight",
		         "device=%s phase=%s version=%s", log_q(u->cfg->name),
		         journal_phase_name(j->phase),
		         log_q(j->target_version));
		u->j = *j;
		snprintf(u->sha, sizeof(u->sha), "%s", j->artifact_sha256);
		stats_attempt(&u->stats, j->target_version);
		if (s0->confirmed)
			succeed(u);
		else
			do_confirm(u);
		return true;
	}
	if (in_flight && j->phase >= JP_RESETTING && m->has_old_hash &&
	    s0 != NULL && s0->has_hash &&
	    memcmp(s0->hash, m->old_hash, BOARD_HASH_LEN) == 0 &&
	    !(s1 != NULL && s1->pending)) {
		/* It was reset into the new image and came back on the old. */
		u->j = *j;
		snprintf(u->sha, sizeof(u->sha), "%s", j->artifact_sha256);
		u->step = S_RESET;
		fail(u, true, 0,
		     "rejected: the board runs its old image again after the "
		     "update left in flight (phase %s)",
		     journal_phase_name(j->phase));
		return true;
	}
	if (in_flight) {
		log_info("Resuming the update left in flight",
		         "device=%s phase=%s", log_q(u->cfg->name),
		         journal_phase_name(j->phase));
		return false;
	}
	if (s0 != NULL && !s0->confirmed) {
		u->step = S_STARTUP_CONFIRM;
		log_info("The board runs an unconfirmed image that is not "
		         "ours in flight; confirming it",
		         "device=%s version=%s", log_q(u->cfg->name),
		         log_q(s0->version));
		board_set_state(u->board, NULL, true, on_startup_confirmed, u);
		return true;
	}
	return false;
}

static void
on_read(struct board *b, enum board_status st, const char *err,
        const struct board_images *imgs, void *arg)
{
	struct update_dev *u = arg;
	const struct board_slot *s0;
	bool first = u->first_cycle;

	(void)b;
	if (stopped(u))
		return;
	if (st != BOARD_OK || imgs == NULL) {
		fail(u, false, 0, "cannot read the image list: %s",
		     err[0] ? err : "no list");
		return;
	}
	u->imgs = *imgs;
	s0 = board_slot(imgs, 0);
	u->has_old_hash = s0 != NULL && s0->has_hash;
	if (u->has_old_hash)
		memcpy(u->old_hash, s0->hash, BOARD_HASH_LEN);
	if (board_version_rdfm(imgs, u->version, sizeof(u->version)) == -1) {
		fail(u, false, 0,
		     "the board reports slot 0 version \"%s\", which is no "
		     "MCUboot version",
		     s0 != NULL ? s0->version : "");
		return;
	}
	log_debug("Board read", "device=%s version=%s", log_q(u->cfg->name),
	          u->version);
	u->first_cycle = false;
	if (recover(u, first))
		return;
	do_check(u);
}

static void
cycle_start(struct update_dev *u)
{
	if (u->stop || daemon_stopping(u->d))
		return;
	u->step = S_READ;
	if (board_read(u->board, on_read, u) == -1)
		fail(u, false, 0, "the board is busy");
}

static void
on_cycle_timer(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	cycle_start(arg);
}

/* --- life cycle --------------------------------------------------------- */

struct update_dev *
update_dev_new(struct daemon *d, const struct device_cfg *c, EVP_PKEY *key,
               char *err, size_t errcap)
{
	struct update_dev *u;
	struct worker *w;
	uint32_t id;
	struct event_base *base = daemon_base(d);

	if ((w = daemon_worker_for(d, c->name, &c->transport, &c->timeouts, &id,
	                           err, errcap)) == NULL)
		return NULL;
	u = xcalloc(1, sizeof(*u));
	u->d = d;
	u->cfg = c;
	u->first_cycle = true;
	u->board = board_new(base, c->name, w, id, &c->timeouts);
	u->rd = rdfm_dev_new(daemon_rdfm(d), daemon_config(d)->server, c->id,
	                     c->dev_type, key);
	u->stall_ev = evtimer_new(base, on_stall, u);
	u->upload_done_ev = evtimer_new(base, upload_finished, u);
	u->cycle_ev = evtimer_new(base, on_cycle_timer, u);
	if (u->stall_ev == NULL || u->upload_done_ev == NULL ||
	    u->cycle_ev == NULL)
		fatalx("cannot create device timers", "device=%s",
		       log_q(c->name));
	return u;
}

void
update_dev_start(struct update_dev *u)
{
	char err[256];
	int r;

	r = journal_read("device", u->cfg->id, &u->boot_j, err, sizeof(err));
	if (r == -1) {
		/* Never guessed from: the board is read instead. */
		log_errx("The journal entry is unreadable; reading the board "
		         "instead",
		         "device=%s error=%s", log_q(u->cfg->name), log_q(err));
		u->journal_bad = true;
		memset(&u->boot_j, 0, sizeof(u->boot_j));
	} else if (r == 1)
		memset(&u->boot_j, 0, sizeof(u->boot_j));
	schedule(u, 0);
}

void
update_dev_stop(struct update_dev *u)
{
	u->stop = true;
	event_del(u->cycle_ev);
	switch (u->step) {
	case S_IDLE:
		daemon_check_idle(u->d);
		break;
	case S_UPLOAD:
		if (u->up != NULL)
			upload_abort(u->up);
		break;
	case S_RESET:
	case S_WATCH:
		/* Waiting, not talking: the journal says where we were. */
		board_cancel(u->board);
		go_idle(u);
		break;
	case S_CHECK:
	case S_DOWNLOAD:
		/*
		 * The server is not the board: idle now.  The request is
		 * cancelled when the device is freed (or its callback ends
		 * the cycle first); the spool entry stays held until then.
		 */
		u->step = S_IDLE;
		daemon_check_idle(u->d);
		break;
	default:
		/* One SMP exchange in flight: its callback ends the cycle. */
		break;
	}
}

bool
update_dev_idle(const struct update_dev *u)
{
	return u->step == S_IDLE;
}

void
update_dev_free(struct update_dev *u)
{
	struct worker *w;

	if (u == NULL)
		return;
	/* The server request first: it may be writing the spool entry. */
	rdfm_dev_free(u->rd);
	drop_offer(u);
	release_kept(u, true);
	w = board_worker(u->board);
	board_free(u->board);
	daemon_worker_release(u->d, w);
	event_free(u->stall_ev);
	event_free(u->upload_done_ev);
	event_free(u->cycle_ev);
	free(u->workdir);
	free(u);
}

void
update_dev_retire(struct update_dev *u)
{
	u->retire = true;
	/* Between cycles: the next one does not start. */
	if (u->step == S_IDLE)
		event_del(u->cycle_ev);
}

void
update_dev_report(const struct update_dev *u, struct metrics_snapshot *s)
{
	struct metrics_entry e;

	memset(&e, 0, sizeof(e));
	e.kind = "device";
	e.name = u->cfg->name;
	e.state = step_phase(u->step);
	e.running_version = u->version;
	e.worker_restarts = worker_restarts(board_worker(u->board));
	e.stats = &u->stats;
	metrics_snapshot_add(s, &e);
}
