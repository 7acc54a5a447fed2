/*
 * The update machine's decisions, as pure functions of what it knows: the
 * journal's record, each board's slots and the retry state of an offer.
 * No I/O and no clock here, so every rule has a unit test of its own
 * (tests/unit/test_decide.c); machine.c carries the decisions out.
 */
#ifndef DECIDE_H
#define DECIDE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "board.h"
#include "journal.h"

/*
 * The commit point: the record after which an update is finished forward,
 * never undone.  A group commits (JP_COMMITTED) once every member runs the
 * new image and every self-confirming member has confirmed it; a single
 * board (a group of one) commits once it runs the new image
 * (JP_CONFIRMING), since no other member can disagree with it.
 */
enum journal_phase decide_commit_phase(size_t nmembers);

/* Where a member is taken when an update is finished or undone. */
enum decide_dir {
	DIR_BACK,    /* to the image it ran before (journal old_hash) */
	DIR_FORWARD, /* to the new image, confirmed */
};

/* The one board step that brings a member closer to where it should be. */
enum member_act {
	ACT_DONE,      /* it is there */
	ACT_CONFIRM,   /* confirm the running image */
	ACT_WATCH,     /* self-confirming: wait for its own decision */
	ACT_RESET,     /* reset: boot a pending image, or revert a test one */
	ACT_PERMANENT, /* mark target (in slot 1) permanent; a reset follows */
	ACT_REJECTED,  /* it went back to its old image by its own decision */
	ACT_STUCK,     /* it cannot get there from these slots */
	ACT_NO_OLD,    /* DIR_BACK: it ran nothing before; left as it is */
};

/*
 * The next step for one member.  self: the member confirms new images
 * itself; lone: it is a single board, not a group member.  *target gets
 * the hash a ACT_PERMANENT marks.  why gets a reason for ACT_STUCK and
 * ACT_REJECTED.
 */
enum member_act decide_member(enum decide_dir dir,
                              const struct journal_member *jm, bool self,
                              bool lone, const struct board_images *imgs,
                              const uint8_t **target, char *why, size_t cap);

/* What to do with an update found in the journal when a cycle starts. */
enum recovery {
	REC_NONE,     /* nothing in flight: a normal cycle */
	REC_BACK,     /* roll every member back, then a normal cycle */
	REC_FORWARD,  /* finish it: confirm, or watch a self-confirming board */
	REC_BOOTED,   /* the reset happened: check and go on from confirming */
	REC_RESET,    /* a single board with the image pending: reset it */
	REC_REJECTED, /* a single board came back on its old image */
	REC_MISMATCH, /* the record does not fit the boards: report, drop it */
};

/*
 * The decision for a journal entry against the boards as read now.  j
 * must fit the configured members (same count and names); imgs[i] is
 * member i's image list.  For REC_MISMATCH, why names the member and what
 * disagrees.
 */
enum recovery decide_recovery(const struct journal_entry *j,
                              const struct board_images *const *imgs, char *why,
                              size_t cap);

/* Whether the journal's phase is an update in flight. */
bool decide_in_flight(enum journal_phase p);

/*
 * The retry policy over offers: attempts at one artifact (by its sha256)
 * count against `retries`; a different offer starts again from zero; an
 * offer whose attempts ran out is skipped until the server offers another,
 * and so is one the boards already run.
 */
struct offer_memory {
	char fail_sha[65]; /* the offer the attempts are about */
	unsigned int attempts;
	char skip_sha[65];    /* attempts ran out */
	char current_sha[65]; /* the boards already run this one */
};

enum offer_verdict {
	OFFER_TRY,
	OFFER_SKIP_GAVE_UP, /* its attempts ran out */
	OFFER_SKIP_CURRENT, /* the boards already run it */
};

/* A check answered with sha: try it or skip it (the memory is updated). */
enum offer_verdict offer_consider(struct offer_memory *o, const char *sha);

/* How a failure counts. */
enum fail_kind {
	FAIL_ATTEMPT,   /* an attempt at the offer failed: counts */
	FAIL_TRANSIENT, /* the server or a board could not be reached */
	FAIL_LOCAL,     /* a local resource (disk, descriptors, journal) */
};

struct fail_verdict {
	bool counted;         /* an attempt was used */
	unsigned int attempt; /* its number, when counted */
	bool give_up;         /* the attempts ran out: skip this offer */
	int64_t delay_ms;     /* until the next cycle */
};

/*
 * A failure while applying sha ("" when no offer was involved).  retries
 * 0 = unlimited; interval_ms the update interval; server_ms a delay the
 * server asked for (0 if none).  Counted failures back off: the interval
 * doubled per attempt, up to 16 times it.
 */
struct fail_verdict offer_failed(struct offer_memory *o, const char *sha,
                                 enum fail_kind kind, int retries,
                                 int64_t interval_ms, int64_t server_ms);

/* A successful update: the attempts start again from zero. */
void offer_succeeded(struct offer_memory *o);
/* The boards already run the image of sha: it is not applied again. */
void offer_current(struct offer_memory *o, const char *sha);

#endif
