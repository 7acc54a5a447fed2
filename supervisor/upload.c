/*
 * Streamed upload, supervisor side: UploadBegin, then one UploadChunk per
 * credit the worker grants, from wherever the worker says the board wants
 * data next.  Memory stays at one chunk whatever the image size, and the
 * image is open only while chunks are read from it: a thousand uploads
 * hold no descriptor between two credits.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/evp.h>

#include "ipc.h"
#include "log.h"
#include "upload.h"
#include "workers.h"
#include "xmalloc.h"

#define DEFAULT_MAX_RESUMES 5
#define RESUME_DELAY_MS     250
#define MAX_CREDIT          256 /* more than any worker buffers */

struct upload {
	struct event_base *base;
	struct worker *w;
	uint32_t board_id;
	char *path;
	struct stat st; /* the file hashed at the start */
	uint64_t total;
	uint8_t sha[32];
	struct upload_opts opts;
	upload_progress_cb progress;
	upload_done_cb done;
	void *arg;

	uint64_t req_id; /* 0: none running */
	uint32_t credit;
	uint64_t next_off;   /* what the next chunk starts with */
	uint64_t acked;      /* best offset the board acknowledged */
	unsigned int stalls; /* resumes since the board last moved */
	unsigned int resumes;
	uint32_t window;    /* from the last progress; once finished, where
	                       the window settled */
	uint32_t rewinds;   /* the board's, over every attempt that told */
	bool have_start;    /* start_off is known */
	uint64_t start_off; /* the board's offset when the first attempt
	                       began: a resumed upload */
	bool aborting;
	bool finished;
	struct event *resume_ev;
};

/* Chunks are read and sent at once: one buffer serves every upload. */
static uint8_t chunk_buf[IPC_CHUNK_SIZE];

static void begin(struct upload *);

/* What the worker learnt so far: the supervisor keeps it for the board. */
static void
keep_learnt(struct upload *u, const Ipc__UploadLearnt *l)
{
	struct worker_learnt wl;

	if (l == NULL)
		return;
	wl.window = l->window;
	wl.grow_after = l->grow_after;
	worker_upload_learnt(u->w, u->board_id, &wl);
}

/* SHA-256 of a whole file (what UploadBegin's sha carries). */
static int
upload_file_sha256(int fd, uint8_t sha[32], uint64_t *size, char *err,
                   size_t errcap)
{
	EVP_MD_CTX *ctx;
	uint8_t buf[65536];
	unsigned int len = 0;
	uint64_t n = 0;
	ssize_t r;
	int ret = -1;

	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		snprintf(err, errcap, "cannot set up SHA-256");
		goto out;
	}
	for (;;) {
		r = pread(fd, buf, sizeof(buf), (off_t)n);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			snprintf(err, errcap, "read: %s", strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		EVP_DigestUpdate(ctx, buf, (size_t)r);
		n += (uint64_t)r;
	}
	if (EVP_DigestFinal_ex(ctx, sha, &len) != 1 || len != 32) {
		snprintf(err, errcap, "cannot finish SHA-256");
		goto out;
	}
	*size = n;
	ret = 0;
out:
	EVP_MD_CTX_free(ctx);
	return ret;
}

/* A failure of ours, told through the same door as the worker's. */
static void
finish_local(struct upload *u, Ipc__Reply__Status status, const char *why)
{
	Ipc__Reply reply;

	ipc__reply__init(&reply);
	if (u->req_id != 0) {
		worker_forget(u->w, u->req_id);
		u->req_id = 0;
	}
	u->finished = true;
	reply.status = status;
	reply.error = (char *)(uintptr_t)why;
	u->done(&reply, u->arg);
}

static bool
can_send(const struct upload *u)
{
	return u->req_id != 0 && u->credit > 0 && u->next_off < u->total &&
	       !u->aborting;
}

/* The image again, and still the file that was hashed; -1 with why. */
static int
reopen(struct upload *u, char *why, size_t cap)
{
	struct stat st;
	int fd;

	if ((fd = open(u->path, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(why, cap, "%s: %s", u->path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || st.st_dev != u->st.st_dev ||
	    st.st_ino != u->st.st_ino || st.st_size != u->st.st_size ||
	    st.st_mtim.tv_sec != u->st.st_mtim.tv_sec ||
	    st.st_mtim.tv_nsec != u->st.st_mtim.tv_nsec) {
		snprintf(why, cap, "%s: changed during the upload", u->path);
		close(fd);
		return -1;
	}
	return fd;
}

/* Send chunks while there is credit and data. */
static void
pump(struct upload *u)
{
	Ipc__Envelope env = IPC__ENVELOPE__INIT;
	Ipc__UploadChunk ch = IPC__UPLOAD_CHUNK__INIT;
	char why[256];
	size_t want;
	ssize_t r;
	int fd;

	if (!can_send(u))
		return;
	if ((fd = reopen(u, why, sizeof(why))) == -1) {
		upload_abort(u);
		finish_local(u, IPC__REPLY__STATUS__BAD_REQUEST, why);
		return;
	}
	while (can_send(u)) {
		want = u->total - u->next_off < IPC_CHUNK_SIZE
		           ? (size_t)(u->total - u->next_off)
		           : IPC_CHUNK_SIZE;
		do {
			r = pread(fd, chunk_buf, want, (off_t)u->next_off);
		} while (r == -1 && errno == EINTR);
		if (r != (ssize_t)want) {
			snprintf(why, sizeof(why),
			         "%s: read at offset %llu: %s", u->path,
			         (unsigned long long)u->next_off,
			         r == -1 ? strerror(errno) : "file shrank");
			close(fd);
			upload_abort(u);
			finish_local(u, IPC__REPLY__STATUS__BAD_REQUEST, why);
			return;
		}
		ch.offset = u->next_off;
		ch.data.data = chunk_buf;
		ch.data.len = want;
		env.body_case = IPC__ENVELOPE__BODY_UPLOAD_CHUNK;
		env.upload_chunk = &ch;
		if (worker_send(u->w, u->req_id, &env) == -1)
			break; /* the worker is gone; its Reply says so */
		u->credit--;
		u->next_off += want;
	}
	close(fd);
}

static void
on_credit(struct upload *u, const Ipc__UploadCredit *c)
{
	uint64_t credit = (uint64_t)u->credit + c->chunks;

	u->credit = credit > MAX_CREDIT ? MAX_CREDIT : (uint32_t)credit;
	pump(u);
}

static void
on_rewind(struct upload *u, const Ipc__UploadRewind *rw)
{
	char why[128];

	if (rw->offset > u->total) {
		snprintf(why, sizeof(why),
		         "worker asked to rewind to %llu, "
		         "past the end (%llu)",
		         (unsigned long long)rw->offset,
		         (unsigned long long)u->total);
		upload_abort(u);
		finish_local(u, IPC__REPLY__STATUS__PROTOCOL, why);
		return;
	}
	log_debug("upload rewind", "file=%s from=%llu to=%llu", log_q(u->path),
	          (unsigned long long)u->next_off,
	          (unsigned long long)rw->offset);
	/*
	 * Chunks already sent past this point are dropped by the worker,
	 * which grants credit afresh for the resend.
	 */
	u->next_off = rw->offset;
	u->credit = 0;
}

static void
on_progress(struct upload *u, const Ipc__UploadProgress *p)
{
	keep_learnt(u, p->learnt);
	if (p->offset > u->total)
		return;
	u->window = p->window;
	if (!u->have_start && u->resumes == 0 && p->resumed_from <= u->total) {
		u->have_start = true;
		u->start_off = p->resumed_from;
	}
	if (p->offset > u->acked) {
		u->acked = p->offset;
		u->stalls = 0;
	}
	if (u->progress != NULL)
		u->progress(p->offset, u->total, u->arg);
}

static void
resume_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	begin(arg);
}

static void
on_reply(struct upload *u, const Ipc__Reply *reply)
{
	struct timeval tv;
	unsigned int max =
	    u->opts.max_resumes ? u->opts.max_resumes : DEFAULT_MAX_RESUMES;

	u->req_id = 0;
	/*
	 * LINK_DOWN is the worker dying or the link going away for a moment
	 * (a serial board re-enumerating): begin again, and the board tells
	 * the new worker how far it got.
	 */
	if (reply->status == IPC__REPLY__STATUS__LINK_DOWN && !u->aborting &&
	    u->stalls < max) {
		u->stalls++;
		u->resumes++;
		log_warnx("upload interrupted, resuming",
		          "file=%s acked=%llu "
		          "attempt=%u reason=%s",
		          log_q(u->path), (unsigned long long)u->acked,
		          u->stalls, log_q(reply->error));
		tv.tv_sec = 0;
		tv.tv_usec = RESUME_DELAY_MS * 1000 * u->stalls;
		while (tv.tv_usec >= 1000000) {
			tv.tv_sec++;
			tv.tv_usec -= 1000000;
		}
		event_add(u->resume_ev, &tv);
		return;
	}
	if (reply->status == IPC__REPLY__STATUS__OK &&
	    reply->result_case == IPC__REPLY__RESULT_UPLOAD) {
		keep_learnt(u, reply->upload->learnt);
		u->window = reply->upload->window;
		u->rewinds += reply->upload->rewinds;
	}
	u->finished = true;
	u->done(reply, u->arg);
}

static void
on_msg(const Ipc__Envelope *env, void *arg)
{
	struct upload *u = arg;

	if (u->finished)
		return;
	switch (env->body_case) {
	case IPC__ENVELOPE__BODY_UPLOAD_CREDIT:
		on_credit(u, env->upload_credit);
		break;
	case IPC__ENVELOPE__BODY_UPLOAD_REWIND:
		on_rewind(u, env->upload_rewind);
		break;
	case IPC__ENVELOPE__BODY_UPLOAD_PROGRESS:
		on_progress(u, env->upload_progress);
		break;
	case IPC__ENVELOPE__BODY_REPLY:
		on_reply(u, env->reply);
		break;
	default:
		break;
	}
}

static void
begin(struct upload *u)
{
	Ipc__Envelope env = IPC__ENVELOPE__INIT;
	Ipc__UploadBegin ub = IPC__UPLOAD_BEGIN__INIT;
	Ipc__UploadLearnt hint = IPC__UPLOAD_LEARNT__INIT;
	struct worker_learnt wl;

	ub.image = u->opts.image;
	ub.total_len = u->total;
	ub.sha256.data = u->sha;
	ub.sha256.len = sizeof(u->sha);
	ub.chunk_size = IPC_CHUNK_SIZE;
	ub.window = u->opts.window;
	if (u->opts.window == 0 && worker_upload_hint(u->w, u->board_id, &wl)) {
		hint.window = wl.window;
		hint.grow_after = wl.grow_after;
		ub.hint = &hint;
	}
	env.body_case = IPC__ENVELOPE__BODY_UPLOAD_BEGIN;
	env.upload_begin = &ub;
	/* The first packet always carries offset 0; the board corrects it. */
	u->next_off = 0;
	u->credit = 0;
	u->req_id = worker_request(u->w, u->board_id, &env, on_msg, u);
	if (u->req_id == 0)
		finish_local(u, IPC__REPLY__STATUS__LINK_DOWN,
		             "the worker is stopped");
}

struct upload *
upload_start(struct event_base *base, struct worker *w, uint32_t board_id,
             const char *path, const struct upload_opts *o,
             upload_progress_cb progress, upload_done_cb done, void *arg,
             char *err, size_t errcap)
{
	struct upload *u;
	struct stat st;
	char why[200];
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(err, errcap, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		snprintf(err, errcap, "%s: not a regular file", path);
		close(fd);
		return NULL;
	}
	u = xcalloc(1, sizeof(*u));
	u->st = st;
	if (upload_file_sha256(fd, u->sha, &u->total, why, sizeof(why)) == -1) {
		snprintf(err, errcap, "%s: %s", path, why);
		close(fd);
		free(u);
		return NULL;
	}
	if (u->total == 0 || u->total > UINT32_MAX) {
		snprintf(err, errcap,
		         "%s: size %llu is not a possible image "
		         "size",
		         path, (unsigned long long)u->total);
		close(fd);
		free(u);
		return NULL;
	}
	close(fd);
	u->base = base;
	u->w = w;
	u->board_id = board_id;
	u->path = xstrdup(path);
	if (o != NULL)
		u->opts = *o;
	u->progress = progress;
	u->done = done;
	u->arg = arg;
	if ((u->resume_ev = evtimer_new(base, resume_cb, u)) == NULL)
		fatalx("cannot create upload timer", NULL);
	begin(u);
	return u;
}

void
upload_abort(struct upload *u)
{
	Ipc__Envelope env = IPC__ENVELOPE__INIT;
	Ipc__UploadAbort ua = IPC__UPLOAD_ABORT__INIT;

	if (u->finished || u->aborting)
		return;
	u->aborting = true;
	if (u->req_id == 0) {
		/* Between attempts: nothing runs on the worker. */
		event_del(u->resume_ev);
		finish_local(u, IPC__REPLY__STATUS__ABORTED, "upload aborted");
		return;
	}
	env.body_case = IPC__ENVELOPE__BODY_UPLOAD_ABORT;
	env.upload_abort = &ua;
	worker_send(u->w, u->req_id, &env);
}

void
upload_free(struct upload *u)
{
	if (u == NULL)
		return;
	if (u->req_id != 0)
		worker_forget(u->w, u->req_id);
	event_free(u->resume_ev);
	free(u->path);
	free(u);
}

uint64_t
upload_total(const struct upload *u)
{
	return u->total;
}

unsigned int
upload_resumes(const struct upload *u)
{
	return u->resumes;
}

uint32_t
upload_window(const struct upload *u)
{
	return u->window;
}

uint64_t
upload_resumed_from(const struct upload *u)
{
	return u->have_start ? u->start_off : 0;
}

uint32_t
upload_rewinds(const struct upload *u)
{
	return u->rewinds;
}
