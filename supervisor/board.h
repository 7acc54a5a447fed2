/*
 * Small asynchronous operations on one board over its worker, shared by the
 * single-board and the group state machines: read the image list, set an
 * image's state, reset and wait for the board to answer again, and watch a
 * board until it confirms or reverts a test image, each under a deadline.
 */
#ifndef BOARD_H
#define BOARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "mcuboot.h"

struct event_base;
struct worker;
struct board;

#define BOARD_MAX_SLOTS 8
#define BOARD_HASH_LEN  32

struct board_slot {
	uint32_t image;
	uint32_t slot;
	char version[MCUBOOT_VERSION_MAX]; /* as the board wrote it */
	bool has_hash;
	uint8_t hash[BOARD_HASH_LEN];
	bool bootable, pending, confirmed, active, permanent;
};

struct board_images {
	size_t nslots;
	struct board_slot slots[BOARD_MAX_SLOTS];
};

enum board_status {
	BOARD_OK,
	BOARD_ERR,      /* the request failed: err says why */
	BOARD_DEADLINE, /* reboot or confirm deadline passed */
	BOARD_REVERTED, /* board_wait_confirm: it runs another image */
};

/*
 * The end of one operation.  imgs is the board's image list when the
 * operation produced one (NULL otherwise); err is "" on BOARD_OK.  Both are
 * valid only during the call.  Always called from the loop, never from
 * inside the call that started the operation.  The callback may start the
 * next operation on the same board.
 */
typedef void (*board_cb)(struct board *b, enum board_status st, const char *err,
                         const struct board_images *imgs, void *arg);

/*
 * A board behind worker w with its id on that worker; name is for logs.
 * to gives the deadlines (reboot, confirm); the worker enforces request.
 */
struct board *board_new(struct event_base *base, const char *name,
                        struct worker *w, uint32_t board_id,
                        const struct timeouts_cfg *to);
/* Cancels what is in flight (no callback). */
void board_free(struct board *b);
const char *board_name(const struct board *b);
struct worker *board_worker(const struct board *b);
uint32_t board_id(const struct board *b);

/*
 * One operation at a time per board: each returns -1 (and logs) when one is
 * already running.
 */
int board_read(struct board *b, board_cb cb, void *arg);
/*
 * hash NULL with confirm: confirm the running image.  With a hash and
 * confirm false: test it at the next reset.  The callback gets the list the
 * board answered with.
 */
int board_set_state(struct board *b, const uint8_t *hash, bool confirm,
                    board_cb cb, void *arg);
/*
 * Reset, then read the image list until the board answers (its first
 * answer is what the callback gets) or the reboot deadline passes.
 */
int board_reset_wait(struct board *b, board_cb cb, void *arg);
/*
 * Read the image list until slot 0 of image 0 holds new_hash confirmed
 * (BOARD_OK), holds any other image (BOARD_REVERTED: the board rejected it)
 * or the confirm deadline passes.  A board that does not answer for a
 * while (it is resetting) is polled again.
 */
int board_wait_confirm(struct board *b, const uint8_t *new_hash, board_cb cb,
                       void *arg);
/* Drop the operation in flight; its callback is not called. */
void board_cancel(struct board *b);

/* Image 0's slot N in a list, or NULL. */
static inline const struct board_slot *
board_slot(const struct board_images *imgs, uint32_t slot)
{
	size_t i;

	for (i = 0; i < imgs->nslots; i++)
		if (imgs->slots[i].image == 0 && imgs->slots[i].slot == slot)
			return &imgs->slots[i];
	return NULL;
}
/*
 * A slot's version for people, in RDFM spelling (one spelling in every log
 * line): "(none)" without a slot, the board's own text when it is no
 * version.  Returns out.
 */
static inline const char *
board_slot_version(const struct board_slot *s, char *out, size_t cap)
{
	if (s == NULL)
		snprintf(out, cap, "(none)");
	else if (mcuboot_version_convert(s->version, MCUBOOT_SPELL_RDFM, out,
	                                 cap) == -1)
		snprintf(out, cap, "%s", s->version);
	return out;
}

/* Slot 0's version in RDFM spelling ("0.0.0" when empty); -1 if bad. */
int board_version_rdfm(const struct board_images *imgs, char *out, size_t cap);

#endif
