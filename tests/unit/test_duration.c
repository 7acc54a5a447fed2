/*
 * Go duration syntax: what Go's time.ParseDuration accepts must parse to the
 * same value, what it rejects must be rejected, and formatting must print
 * what Go's Duration.String prints.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "duration.h"

static void
expect_ms(const char *s, int64_t want)
{
	char err[128] = "";
	int64_t ms = -12345;

	if (duration_parse(s, &ms, err, sizeof(err)) != 0)
		fail_msg("\"%s\" rejected: %s", s, err);
	if (ms != want)
		fail_msg("\"%s\" parsed as %lld, want %lld", s, (long long)ms,
		         (long long)want);
}

static void
expect_bad(const char *s, const char *why)
{
	char err[128] = "";
	int64_t ms = 777;

	if (duration_parse(s, &ms, err, sizeof(err)) == 0)
		fail_msg("\"%s\" accepted as %lld", s, (long long)ms);
	assert_int_equal(ms, 777);
	if (strstr(err, why) == NULL)
		fail_msg("\"%s\": message \"%s\" lacks \"%s\"", s, err, why);
}

static void
test_parse_go_forms(void **state)
{
	(void)state;
	expect_ms("10s", 10000);
	expect_ms("15m", 15 * 60000);
	expect_ms("1h30m", 90 * 60000);
	expect_ms("500ms", 500);
	expect_ms("1.5h", 90 * 60000);
	expect_ms("0", 0);
	expect_ms("0s", 0);
	expect_ms("+5s", 5000);
	expect_ms("-0", 0);
	expect_ms("1h2m3s4ms", 3723004);
	expect_ms(".5s", 500);
	expect_ms("2.s", 2000);
	expect_ms("2500us", 2);
	expect_ms("1500000ns", 1);
	expect_ms("3000\xc2\xb5s", 3);
	expect_ms("3000\xce\xbcs", 3);
	expect_ms("1.0000000000000000000001s", 1000);
	expect_ms("2562047h", 2562047LL * 3600 * 1000);
}

static void
test_parse_rejects(void **state)
{
	(void)state;
	expect_bad("", "empty");
	expect_bad("10", "missing unit");
	expect_bad("10x", "unknown unit");
	expect_bad("10 s", "unknown unit");
	expect_bad("s", "expected a number");
	expect_bad(".s", "expected a number");
	expect_bad("-", "no number");
	expect_bad("-5s", "negative");
	expect_bad("1h-5m", "unknown unit");
	expect_bad("10sec", "unknown unit");
	expect_bad("1d", "unknown unit");
	expect_bad("500us", "shorter than 1ms");
	expect_bad("9999999999h", "too large");
	expect_bad("99999999999999999999s", "too large");
	expect_bad("2562048h", "too large");
}

static void
expect_fmt(int64_t ms, const char *want)
{
	char buf[DURATION_BUFSZ];

	assert_string_equal(duration_format(ms, buf, sizeof(buf)), want);
}

static void
test_format_like_go(void **state)
{
	(void)state;
	expect_fmt(0, "0s");
	expect_fmt(500, "500ms");
	expect_fmt(10000, "10s");
	expect_fmt(60000, "1m0s");
	expect_fmt(90 * 60000, "1h30m0s");
	expect_fmt(1500, "1.5s");
	expect_fmt(61250, "1m1.25s");
	expect_fmt(72LL * 3600 * 1000, "72h0m0s");
	expect_fmt(-2000, "-2s");
}

static void
test_round_trip(void **state)
{
	static const int64_t vals[] = {1,     999,     1000,    1001,
	                               59999, 3600000, 3723004, 86400000};
	char buf[DURATION_BUFSZ];
	int64_t ms;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		duration_format(vals[i], buf, sizeof(buf));
		assert_int_equal(duration_parse(buf, &ms, NULL, 0), 0);
		assert_int_equal(ms, vals[i]);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_go_forms),
	    cmocka_unit_test(test_parse_rejects),
	    cmocka_unit_test(test_format_like_go),
	    cmocka_unit_test(test_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
