/*
 * Unit tests of the advertising report parser (workers/ble/adv.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "workers/ble/adv.h"

/* One report from 11:22:33:44:55:66 (random) with flags and a name. */
static const uint8_t report[] = {
    0x04, 0x3e, 0x1a, 0x02, 0x01,       /* event, LE meta, adv report */
    0x00, 0x01,                         /* ADV_IND, random address */
    0x66, 0x55, 0x44, 0x33, 0x22, 0x11, /* address */
    0x0e,                               /* data length */
    0x02, 0x01, 0x06,                   /* flags */
    0x09, 0x09, 'z',  'e',  'p',  'h',  'y', 'r', '-', '1', /* name */
    0x00, 0xc5,                                             /* padding, rssi */
};

static void
test_finds_complete_name(void **state)
{
	struct adv_addr a;

	(void)state;
	assert_int_equal(adv_find_name(report, sizeof(report), "zephyr-1", &a),
	                 1);
	assert_int_equal(a.type, 1);
	assert_int_equal(a.b[0], 0x66);
	assert_int_equal(a.b[5], 0x11);
}

static void
test_other_names_do_not_match(void **state)
{
	struct adv_addr a;

	(void)state;
	assert_int_equal(adv_find_name(report, sizeof(report), "zephyr", &a),
	                 0);
	assert_int_equal(adv_find_name(report, sizeof(report), "zephyr-10", &a),
	                 0);
}

static void
test_truncations_are_malformed(void **state)
{
	struct adv_addr a;
	uint8_t b[sizeof(report)];
	size_t n;

	(void)state;
	/* Cut anywhere inside the event: never a match, never a crash. */
	for (n = 3; n < sizeof(report); n++)
		assert_true(adv_find_name(report, n, "zephyr-1", &a) <= 0);
	/* An AD length running past the report data. */
	memcpy(b, report, sizeof(b));
	b[17] = 0x20;
	assert_int_equal(adv_find_name(b, sizeof(b), "zephyr-1", &a), -1);
	/* Two reports announced, one present. */
	memcpy(b, report, sizeof(b));
	b[4] = 2;
	b[14 + 10] = 'X'; /* and the name no longer matches */
	assert_int_equal(adv_find_name(b, sizeof(b), "zephyr-1", &a), -1);
}

static void
test_other_events_ignored(void **state)
{
	const uint8_t cmd_complete[] = {0x04, 0x0e, 0x04, 0x01,
	                                0x0c, 0x20, 0x00};
	struct adv_addr a;

	(void)state;
	assert_int_equal(
	    adv_find_name(cmd_complete, sizeof(cmd_complete), "x", &a), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_finds_complete_name),
	    cmocka_unit_test(test_other_names_do_not_match),
	    cmocka_unit_test(test_truncations_are_malformed),
	    cmocka_unit_test(test_other_events_ignored),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
