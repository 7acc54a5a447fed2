/*
 * The supervisor half of a streamed image upload: the file is read in
 * IPC_CHUNK_SIZE pieces only as the worker grants credit, rewinds follow the
 * board's offset, and a worker restart resumes where the board left off.
 */
#ifndef UPLOAD_H
#define UPLOAD_H

#include <stdint.h>
#include <stddef.h>

#include "ipc.pb-c.h"

struct worker;
struct event_base;
struct upload;

struct upload_opts {
	uint32_t image;           /* image number, 0 for single-image boards */
	uint32_t window;          /* fixed; 0: adaptive, from what the worker
	                             learnt about the board (workers.h) */
	unsigned int max_resumes; /* restarts without progress; 0 = 5 */
};

/* offset: acknowledged by the board. */
typedef void (*upload_progress_cb)(uint64_t offset, uint64_t total, void *arg);
/*
 * The end: reply->status OK (reply->upload has the numbers) or the reason
 * it failed.  Local failures (the file) come as a made-up Reply.  Call
 * upload_free() afterwards, not from inside.
 */
typedef void (*upload_done_cb)(const Ipc__Reply *reply, void *arg);

/*
 * Upload path to board board_id through worker w.  NULL with a reason in
 * err when the file cannot be read.
 */
struct upload *upload_start(struct event_base *base, struct worker *w,
                            uint32_t board_id, const char *path,
                            const struct upload_opts *o,
                            upload_progress_cb progress, upload_done_cb done,
                            void *arg, char *err, size_t errcap);
/* Ask the worker to stop at a packet boundary; done follows (ABORTED). */
void upload_abort(struct upload *u);
void upload_free(struct upload *u);

/* Bytes of the file, and resumes after a worker restart so far. */
uint64_t upload_total(const struct upload *u);
unsigned int upload_resumes(const struct upload *u);
/*
 * The packets in flight, as the worker last said; once finished, the
 * window the upload settled on.  And the times the board asked for an
 * earlier offset, over the attempts that finished.
 */
uint32_t upload_window(const struct upload *u);
uint32_t upload_rewinds(const struct upload *u);
/* Where the board already was when this upload began (0: from the start). */
uint64_t upload_resumed_from(const struct upload *u);

#endif
