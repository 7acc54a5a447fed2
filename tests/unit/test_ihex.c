/*
 * Unit tests for common/ihex.c: files written by hand and by a small
 * writer here, the base address records, gaps, overlaps, and every
 * malformation refused with its line number.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ihex.h"

/* A data record for n bytes at addr, with its checksum. */
static void
record(char *out, uint8_t type, uint16_t addr, const uint8_t *d, size_t n)
{
	uint8_t sum = (uint8_t)(n + (addr >> 8) + (addr & 0xff) + type);
	size_t i;

	out += sprintf(out, ":%02zX%04X%02X", n, addr, type);
	for (i = 0; i < n; i++) {
		out += sprintf(out, "%02X", d[i]);
		sum = (uint8_t)(sum + d[i]);
	}
	sprintf(out, "%02X\n", (uint8_t)(0x100 - sum));
}

static void
expect_fail(const char *text, const char *needle)
{
	struct ihex_image img;
	char why[160] = "";

	assert_int_equal(ihex_parse(text, strlen(text), &img, why, sizeof(why)),
	                 -1);
	assert_null(img.data);
	if (strstr(why, needle) == NULL)
		fail_msg("\"%s\" does not mention \"%s\"", why, needle);
}

static void
test_hand_written(void **state)
{
	/* 4 bytes at 0x0100, then the end; CRLF line ends. */
	static const char text[] = ":0401000096F3B83D7D\r\n:00000001FF\r\n";
	struct ihex_image img;
	char why[160];

	(void)state;
	assert_true(ihex_looks_like((const uint8_t *)"\n :00", 5));
	assert_false(ihex_looks_like((const uint8_t *)"\x3d\xb8", 2));
	assert_int_equal(ihex_parse(text, strlen(text), &img, why, sizeof(why)),
	                 0);
	assert_int_equal(img.base, 0x100);
	assert_int_equal(img.len, 4);
	assert_memory_equal(img.data, "\x96\xf3\xb8\x3d", 4);
	ihex_free(&img);
}

static void
test_linear_base_gap_and_overlap(void **state)
{
	uint8_t a[16], b[4] = {1, 2, 3, 4};
	char text[1024], *p = text;
	struct ihex_image img;
	char why[160];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(a); i++)
		a[i] = (uint8_t)(0xa0 + i);
	/* Base 0x00010000, 16 bytes at 0xc000, 4 bytes at 0xc020 (a gap of
	 * 16), the first 4 again (the same bytes: fine). */
	record(p, 0x04, 0, (const uint8_t *)"\x00\x01", 2);
	p += strlen(p);
	record(p, 0x00, 0xc000, a, sizeof(a));
	p += strlen(p);
	record(p, 0x00, 0xc020, b, sizeof(b));
	p += strlen(p);
	record(p, 0x00, 0xc000, a, 4);
	p += strlen(p);
	record(p, 0x05, 0, (const uint8_t *)"\x00\x01\xc0\x01", 4);
	p += strlen(p);
	strcpy(p, ":00000001FF\n\n");
	assert_int_equal(ihex_parse(text, strlen(text), &img, why, sizeof(why)),
	                 0);
	assert_int_equal(img.base, 0x1c000);
	assert_int_equal(img.len, 0x24);
	assert_memory_equal(img.data, a, 16);
	for (i = 16; i < 32; i++)
		assert_int_equal(img.data[i], 0xff);
	assert_memory_equal(img.data + 32, b, 4);
	ihex_free(&img);

	/* The same address with other data is refused. */
	p = text;
	record(p, 0x00, 0x0000, a, 4);
	p += strlen(p);
	record(p, 0x00, 0x0002, b, 2);
	p += strlen(p);
	strcpy(p, ":00000001FF\n");
	expect_fail(text, "line 2: overwrites address 0x2");
}

static void
test_segment_base(void **state)
{
	char text[256], *p = text;
	struct ihex_image img;
	char why[160];

	(void)state;
	/* Segment 0x1000: addresses are 0x10000 + offset. */
	record(p, 0x02, 0, (const uint8_t *)"\x10\x00", 2);
	p += strlen(p);
	record(p, 0x00, 0x0010, (const uint8_t *)"\x55", 1);
	p += strlen(p);
	strcpy(p, ":00000001FF\n");
	assert_int_equal(ihex_parse(text, strlen(text), &img, why, sizeof(why)),
	                 0);
	assert_int_equal(img.base, 0x10010);
	assert_int_equal(img.len, 1);
	ihex_free(&img);
}

static void
test_malformed(void **state)
{
	char text[256];

	(void)state;
	expect_fail(":0401000096F3B83D4B\n:00000001FF\n",
	            "line 1: checksum 0x4b does not match (expected 0x7d)");
	expect_fail(":0401000096F3B83D7D\n", "no end record");
	expect_fail(":0401000096F3B83D7D\n:00000001FF\n:00000001FF\n",
	            "line 3: data after the end record");
	expect_fail("0401000096F3B83D4A\n", "line 1: a record starts with ':'");
	expect_fail(":0401000096F3B8\n", "says 4 data bytes, has 2");
	expect_fail(":0401000096F3B8D\n", "is cut");
	expect_fail(":0501000096F3B83D4A\n", "says 5 data bytes, has 4");
	expect_fail(":04010000Z6F3B83D4A\n", "\"Z6\" is not a hex byte");
	expect_fail(":00000001FF\n", "no data records");
	expect_fail(":020000040001F9\n:00000001FF\n", "no data records");
	record(text, 0x07, 0, NULL, 0);
	strcat(text, ":00000001FF\n");
	expect_fail(text, "unknown record type 07");
	/* Two bytes 4 GiB apart would need a 4 GiB image. */
	record(text, 0x00, 0, (const uint8_t *)"\x01", 1);
	record(text + strlen(text), 0x04, 0, (const uint8_t *)"\xff\x00", 2);
	record(text + strlen(text), 0x00, 0, (const uint8_t *)"\x01", 1);
	strcat(text, ":00000001FF\n");
	expect_fail(text, "more than 16 MiB");
	expect_fail(":03000004000100F8\n:00000001FF\n", "base address record");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hand_written),
	    cmocka_unit_test(test_linear_base_gap_and_overlap),
	    cmocka_unit_test(test_segment_base),
	    cmocka_unit_test(test_malformed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
