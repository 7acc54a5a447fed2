/*
 * Unit tests for supervisor/decide.c: each rule of the update machine on
 * the journal record and the boards' slots, and the retry policy.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "supervisor/decide.h"

static const uint8_t OLD[32] = {1}, NEW[32] = {2}, OTHER[32] = {3};

/* A slot list: slot 0 holds h0, slot 1 h1 (NULL: absent). */
static struct board_images
imgs(const uint8_t *h0, bool conf0, const uint8_t *h1, bool pend1)
{
	struct board_images b;

	memset(&b, 0, sizeof(b));
	if (h0 != NULL) {
		b.slots[b.nslots].slot = 0;
		b.slots[b.nslots].has_hash = true;
		memcpy(b.slots[b.nslots].hash, h0, 32);
		b.slots[b.nslots].confirmed = conf0;
		snprintf(b.slots[b.nslots].version, 8, "1.0.0");
		b.nslots++;
	}
	if (h1 != NULL) {
		b.slots[b.nslots].slot = 1;
		b.slots[b.nslots].has_hash = true;
		memcpy(b.slots[b.nslots].hash, h1, 32);
		b.slots[b.nslots].pending = pend1;
		b.nslots++;
	}
	return b;
}

static struct journal_member
member(bool has_old)
{
	struct journal_member m;

	memset(&m, 0, sizeof(m));
	snprintf(m.name, sizeof(m.name), "m");
	m.has_old_hash = has_old;
	memcpy(m.old_hash, OLD, 32);
	m.has_new_hash = true;
	memcpy(m.new_hash, NEW, 32);
	return m;
}

/* The record lives on: *target points into it. */
static struct journal_member rec_m;

static enum member_act
act(enum decide_dir dir, bool self, bool lone, struct board_images b,
    const uint8_t **target)
{
	char why[300];

	rec_m = member(true);
	return decide_member(dir, &rec_m, self, lone, &b, target, why,
	                     sizeof(why));
}

static void
test_back(void **state)
{
	const uint8_t *t;

	(void)state;
	assert_int_equal(
	    act(DIR_BACK, false, false, imgs(OLD, true, NEW, false), &t),
	    ACT_DONE);
	/* A pending image cannot be un-marked: boot it, then revert. */
	assert_int_equal(
	    act(DIR_BACK, false, false, imgs(OLD, true, NEW, true), &t),
	    ACT_RESET);
	assert_int_equal(
	    act(DIR_BACK, false, false, imgs(OLD, false, NEW, false), &t),
	    ACT_CONFIRM);
	/* A test image reverts at the reset. */
	assert_int_equal(
	    act(DIR_BACK, false, false, imgs(NEW, false, OLD, false), &t),
	    ACT_RESET);
	/* A confirmed new image: mark the old one permanent. */
	assert_int_equal(
	    act(DIR_BACK, true, false, imgs(NEW, true, OLD, false), &t),
	    ACT_PERMANENT);
	assert_memory_equal(t, OLD, 32);
	assert_int_equal(
	    act(DIR_BACK, false, false, imgs(NEW, true, OLD, true), &t),
	    ACT_RESET);
	assert_int_equal(
	    act(DIR_BACK, false, false, imgs(OTHER, true, NEW, false), &t),
	    ACT_STUCK);
}

static void
test_back_without_old(void **state)
{
	struct journal_member m = member(false);
	struct board_images b = imgs(NEW, false, NULL, false);
	const uint8_t *t;
	char why[200];

	(void)state;
	assert_int_equal(
	    decide_member(DIR_BACK, &m, false, false, &b, &t, why, sizeof(why)),
	    ACT_NO_OLD);
}

static void
test_forward(void **state)
{
	const uint8_t *t;

	(void)state;
	assert_int_equal(
	    act(DIR_FORWARD, false, false, imgs(NEW, true, OLD, false), &t),
	    ACT_DONE);
	assert_int_equal(
	    act(DIR_FORWARD, false, true, imgs(NEW, false, OLD, false), &t),
	    ACT_CONFIRM);
	/* Never confirmed for a self-confirming board. */
	assert_int_equal(
	    act(DIR_FORWARD, true, true, imgs(NEW, false, OLD, false), &t),
	    ACT_WATCH);
	assert_int_equal(
	    act(DIR_FORWARD, false, false, imgs(OLD, true, NEW, true), &t),
	    ACT_RESET);
	/* A group member back on its old image after the commit. */
	assert_int_equal(
	    act(DIR_FORWARD, true, false, imgs(OLD, true, NEW, false), &t),
	    ACT_PERMANENT);
	assert_memory_equal(t, NEW, 32);
	assert_int_equal(
	    act(DIR_FORWARD, false, true, imgs(OLD, true, NEW, false), &t),
	    ACT_PERMANENT);
	/* A single self-confirming board that went back decided so. */
	assert_int_equal(
	    act(DIR_FORWARD, true, true, imgs(OLD, true, NEW, false), &t),
	    ACT_REJECTED);
	assert_int_equal(
	    act(DIR_FORWARD, false, false, imgs(OLD, true, OTHER, false), &t),
	    ACT_STUCK);
}

static struct journal_entry
entry(enum journal_phase p, size_t n)
{
	struct journal_entry e;
	size_t i;

	memset(&e, 0, sizeof(e));
	e.phase = p;
	e.nmembers = n;
	for (i = 0; i < n; i++)
		e.members[i] = member(true);
	return e;
}

static enum recovery
rec(enum journal_phase p, size_t n, struct board_images *b)
{
	const struct board_images *v[4] = {b, b, b, b};
	struct journal_entry e = entry(p, n);
	char why[400];

	return decide_recovery(&e, v, why, sizeof(why));
}

static void
test_recovery_single(void **state)
{
	struct board_images b;

	(void)state;
	b = imgs(OLD, true, NULL, false);
	assert_int_equal(rec(JP_IDLE, 1, &b), REC_NONE);
	assert_int_equal(rec(JP_DONE, 1, &b), REC_NONE);
	assert_int_equal(rec(JP_UPLOADING, 1, &b), REC_BACK);
	b = imgs(OLD, true, NEW, true);
	assert_int_equal(rec(JP_PENDING, 1, &b), REC_RESET);
	assert_int_equal(rec(JP_RESETTING, 1, &b), REC_RESET);
	b = imgs(OLD, true, NEW, false);
	assert_int_equal(rec(JP_PENDING, 1, &b), REC_BACK);
	/* Reset into the new image and back on the old: rejected. */
	assert_int_equal(rec(JP_RESETTING, 1, &b), REC_REJECTED);
	/* A slow reboot, waited out: it runs the new image. */
	b = imgs(NEW, false, OLD, false);
	assert_int_equal(rec(JP_RESETTING, 1, &b), REC_BOOTED);
	/* A single board commits at confirming. */
	assert_int_equal(rec(JP_CONFIRMING, 1, &b), REC_FORWARD);
	assert_int_equal(rec(JP_ROLLING_BACK, 1, &b), REC_BACK);
}

static void
test_recovery_group(void **state)
{
	struct board_images b;

	(void)state;
	b = imgs(NEW, false, OLD, false);
	/* Before a group's commit point: back, whatever the members run. */
	assert_int_equal(rec(JP_PENDING, 3, &b), REC_BACK);
	assert_int_equal(rec(JP_CONFIRMING, 3, &b), REC_BACK);
	assert_int_equal(rec(JP_RESETTING, 3, &b), REC_BOOTED);
	assert_int_equal(rec(JP_COMMITTED, 3, &b), REC_FORWARD);
	assert_int_equal(rec(JP_ROLLING_BACK, 3, &b), REC_BACK);
	assert_int_equal(decide_commit_phase(3), JP_COMMITTED);
	assert_int_equal(decide_commit_phase(1), JP_CONFIRMING);
}

static void
test_recovery_mismatch(void **state)
{
	struct board_images b = imgs(OTHER, false, NEW, false);
	const struct board_images *v[1] = {&b};
	struct journal_entry e = entry(JP_CONFIRMING, 1);
	char why[400];

	(void)state;
	assert_int_equal(decide_recovery(&e, v, why, sizeof(why)),
	                 REC_MISMATCH);
	assert_non_null(strstr(why, "slot 0 holds 0300"));
	assert_non_null(strstr(why, "from 0100"));
}

static void
test_offers(void **state)
{
	struct offer_memory o;
	struct fail_verdict v;

	(void)state;
	memset(&o, 0, sizeof(o));
	assert_int_equal(offer_consider(&o, "aa"), OFFER_TRY);
	v = offer_failed(&o, "aa", FAIL_ATTEMPT, 3, 1000, 0);
	assert_true(v.counted);
	assert_int_equal(v.attempt, 1);
	assert_int_equal(v.delay_ms, 1000);
	v = offer_failed(&o, "aa", FAIL_ATTEMPT, 3, 1000, 0);
	assert_int_equal(v.delay_ms, 2000); /* backoff */
	/* Transient and local failures use up nothing. */
	v = offer_failed(&o, "aa", FAIL_LOCAL, 3, 1000, 0);
	assert_false(v.counted);
	v = offer_failed(&o, "aa", FAIL_TRANSIENT, 3, 1000, 5000);
	assert_false(v.counted);
	assert_int_equal(v.delay_ms, 5000); /* the server's wish */
	assert_int_equal(offer_consider(&o, "aa"), OFFER_TRY);
	v = offer_failed(&o, "aa", FAIL_ATTEMPT, 3, 1000, 0);
	assert_true(v.give_up);
	assert_int_equal(offer_consider(&o, "aa"), OFFER_SKIP_GAVE_UP);
	/* Another offer starts from zero. */
	assert_int_equal(offer_consider(&o, "bb"), OFFER_TRY);
	v = offer_failed(&o, "bb", FAIL_ATTEMPT, 3, 1000, 0);
	assert_int_equal(v.attempt, 1);
	/* An offer the boards run already is skipped until another. */
	offer_current(&o, "bb");
	assert_int_equal(offer_consider(&o, "bb"), OFFER_SKIP_CURRENT);
	assert_int_equal(offer_consider(&o, "cc"), OFFER_TRY);
	assert_int_equal(offer_consider(&o, "bb"), OFFER_TRY);
	/* Unlimited retries never give up; the backoff is capped. */
	memset(&o, 0, sizeof(o));
	for (int i = 0; i < 10; i++)
		v = offer_failed(&o, "dd", FAIL_ATTEMPT, 0, 1000, 0);
	assert_false(v.give_up);
	assert_int_equal(v.delay_ms, 16000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_back),
	    cmocka_unit_test(test_back_without_old),
	    cmocka_unit_test(test_forward),
	    cmocka_unit_test(test_recovery_single),
	    cmocka_unit_test(test_recovery_group),
	    cmocka_unit_test(test_recovery_mismatch),
	    cmocka_unit_test(test_offers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
