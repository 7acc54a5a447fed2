/*
 * The update machine's decisions (decide.h): which board step comes next
 * for a member being finished or undone, what to do with an update the
 * journal says was in flight, and how a failure counts against an offer.
 */
#include <stdio.h>
#include <string.h>

#include "decide.h"
#include "util.h"

/* Backoff after counted failures: the interval doubled, at most 2^4. */
#define BACKOFF_MAX_SHIFT 4

enum journal_phase
decide_commit_phase(size_t nmembers)
{
	return nmembers == 1 ? JP_CONFIRMING : JP_COMMITTED;
}

bool
decide_in_flight(enum journal_phase p)
{
	return p >= JP_UPLOADING && p <= JP_ROLLING_BACK;
}

static bool
holds(const struct board_slot *s, const uint8_t *h)
{
	return s != NULL && s->has_hash &&
	       memcmp(s->hash, h, BOARD_HASH_LEN) == 0;
}

static enum member_act
back_act(const struct journal_member *jm, const struct board_images *imgs,
         const uint8_t **target, char *why, size_t cap)
{
	const struct board_slot *s0 = board_slot(imgs, 0),
	                        *s1 = board_slot(imgs, 1);
	char h[65], v[MCUBOOT_VERSION_MAX];

	if (!jm->has_old_hash)
		return ACT_NO_OLD;
	if (holds(s0, jm->old_hash)) {
		/* A pending slot 1 cannot be un-marked: boot it, then revert.
		 */
		if (s1 != NULL && s1->pending)
			return ACT_RESET;
		return s0->confirmed ? ACT_DONE : ACT_CONFIRM;
	}
	if (jm->has_new_hash && holds(s0, jm->new_hash)) {
		if (!s0->confirmed)
			return ACT_RESET; /* MCUboot reverts a test image */
		if (holds(s1, jm->old_hash)) {
			if (s1->pending)
				return ACT_RESET;
			*target = jm->old_hash;
			return ACT_PERMANENT;
		}
	}
	if (s0 != NULL && s0->has_hash)
		hex_encode(s0->hash, BOARD_HASH_LEN, h);
	else
		snprintf(h, sizeof(h), "(none)");
	snprintf(why, cap,
	         "cannot roll back: it runs version %s (hash %s), and its old "
	         "image is not in slot 1",
	         board_slot_version(s0, v, sizeof(v)), h);
	return ACT_STUCK;
}

static enum member_act
forward_act(const struct journal_member *jm, bool self, bool lone,
            const struct board_images *imgs, const uint8_t **target, char *why,
            size_t cap)
{
	const struct board_slot *s0 = board_slot(imgs, 0),
	                        *s1 = board_slot(imgs, 1);
	char v[MCUBOOT_VERSION_MAX];

	if (holds(s0, jm->new_hash)) {
		if (s0->confirmed)
			return ACT_DONE;
		/* The client never confirms for a self-confirming board. */
		return self ? ACT_WATCH : ACT_CONFIRM;
	}
	if (holds(s1, jm->new_hash)) {
		if (s1->pending)
			return ACT_RESET;
		if (self && lone) {
			/* It booted the image and went back: its decision. */
			snprintf(
			    why, cap,
			    "rejected: the board reverted to its old image "
			    "(version %s) instead of confirming the new one",
			    board_slot_version(s0, v, sizeof(v)));
			return ACT_REJECTED;
		}
		*target = jm->new_hash;
		return ACT_PERMANENT;
	}
	snprintf(
	    why, cap,
	    "cannot roll forward: the new image is in neither slot (slot 0 "
	    "runs version %s)",
	    board_slot_version(s0, v, sizeof(v)));
	return ACT_STUCK;
}

enum member_act
decide_member(enum decide_dir dir, const struct journal_member *jm, bool self,
              bool lone, const struct board_images *imgs,
              const uint8_t **target, char *why, size_t cap)
{
	*target = NULL;
	if (cap > 0)
		why[0] = '\0';
	if (dir == DIR_BACK)
		return back_act(jm, imgs, target, why, cap);
	if (!jm->has_new_hash) {
		snprintf(why, cap, "the journal names no new image");
		return ACT_STUCK;
	}
	return forward_act(jm, self, lone, imgs, target, why, cap);
}

/* Slot 0 is what the record says: the image before, or the new one. */
static bool
member_fits(const struct journal_member *jm, const struct board_images *imgs,
            char *why, size_t cap)
{
	const struct board_slot *s0 = board_slot(imgs, 0);
	char h[65], o[65], n[65];

	if (jm->has_new_hash && holds(s0, jm->new_hash))
		return true;
	if (jm->has_old_hash ? holds(s0, jm->old_hash)
	                     : s0 == NULL || !s0->has_hash)
		return true;
	if (s0 != NULL && s0->has_hash)
		hex_encode(s0->hash, BOARD_HASH_LEN, h);
	else
		snprintf(h, sizeof(h), "nothing");
	if (jm->has_old_hash)
		hex_encode(jm->old_hash, BOARD_HASH_LEN, o);
	else
		snprintf(o, sizeof(o), "nothing");
	if (jm->has_new_hash)
		hex_encode(jm->new_hash, BOARD_HASH_LEN, n);
	else
		snprintf(n, sizeof(n), "nothing");
	snprintf(why, cap,
	         "%s: slot 0 holds %s, but the journal records an update from "
	         "%s to %s",
	         jm->name, h, o, n);
	return false;
}

static enum recovery
lone_recovery(const struct journal_entry *j, const struct board_images *imgs)
{
	const struct journal_member *m = &j->members[0];
	const struct board_slot *s0 = board_slot(imgs, 0),
	                        *s1 = board_slot(imgs, 1);
	bool pending_new = holds(s1, m->new_hash) && s1->pending;

	if (j->phase >= JP_RESETTING && m->has_old_hash &&
	    holds(s0, m->old_hash) && holds(s1, m->new_hash) && !s1->pending)
		return REC_REJECTED;
	if ((j->phase == JP_PENDING || j->phase == JP_RESETTING) && pending_new)
		return REC_RESET;
	return REC_BACK;
}

enum recovery
decide_recovery(const struct journal_entry *j,
                const struct board_images *const *imgs, char *why, size_t cap)
{
	size_t i;
	bool all_new = true;

	if (cap > 0)
		why[0] = '\0';
	if (!decide_in_flight(j->phase) || j->nmembers == 0)
		return REC_NONE;
	for (i = 0; i < j->nmembers; i++) {
		if (!member_fits(&j->members[i], imgs[i], why, cap))
			return REC_MISMATCH;
		if (!j->members[i].has_new_hash ||
		    !holds(board_slot(imgs[i], 0), j->members[i].new_hash))
			all_new = false;
	}
	if (j->phase == JP_ROLLING_BACK)
		return REC_BACK;
	if (j->phase >= decide_commit_phase(j->nmembers))
		return REC_FORWARD;
	if (j->phase == JP_RESETTING && all_new)
		return REC_BOOTED;
	if (j->nmembers == 1 && j->members[0].has_new_hash)
		return lone_recovery(j, imgs[0]);
	return REC_BACK;
}

enum offer_verdict
offer_consider(struct offer_memory *o, const char *sha)
{
	if (strcmp(sha, o->current_sha) == 0)
		return OFFER_SKIP_CURRENT;
	if (strcmp(sha, o->skip_sha) == 0)
		return OFFER_SKIP_GAVE_UP;
	/* Another offer: what was remembered about the last one is moot. */
	o->current_sha[0] = '\0';
	o->skip_sha[0] = '\0';
	if (strcmp(sha, o->fail_sha) != 0) {
		o->fail_sha[0] = '\0';
		o->attempts = 0;
	}
	return OFFER_TRY;
}

struct fail_verdict
offer_failed(struct offer_memory *o, const char *sha, enum fail_kind kind,
             int retries, int64_t interval_ms, int64_t server_ms)
{
	struct fail_verdict v;
	unsigned int shift;

	memset(&v, 0, sizeof(v));
	v.delay_ms = server_ms > interval_ms ? server_ms : interval_ms;
	if (kind != FAIL_ATTEMPT || sha == NULL || sha[0] == '\0')
		return v;
	if (strcmp(o->fail_sha, sha) != 0) {
		snprintf(o->fail_sha, sizeof(o->fail_sha), "%s", sha);
		o->attempts = 0;
	}
	o->attempts++;
	v.counted = true;
	v.attempt = o->attempts;
	if (retries > 0 && o->attempts >= (unsigned int)retries) {
		v.give_up = true;
		snprintf(o->skip_sha, sizeof(o->skip_sha), "%s", sha);
		return v;
	}
	shift = o->attempts - 1 < BACKOFF_MAX_SHIFT ? o->attempts - 1
	                                            : BACKOFF_MAX_SHIFT;
	if (interval_ms << shift > v.delay_ms)
		v.delay_ms = interval_ms << shift;
	return v;
}

void
offer_succeeded(struct offer_memory *o)
{
	o->attempts = 0;
	o->fail_sha[0] = '\0';
}

void
offer_current(struct offer_memory *o, const char *sha)
{
	snprintf(o->current_sha, sizeof(o->current_sha), "%s", sha);
	offer_succeeded(o);
}
