/*
 * Unit tests for common/smp_groups.c: every request payload against
 * hand-written CBOR, every decoder against replies captured from the real
 * Zephyr smp_svr (../shared/zephyr-peer: taskstat, os info, stat) or
 * written from Zephyr's group sources, and the wrong types and missing
 * fields each decoder refuses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smp.h"
#include "smp_groups.h"
#include "smp_tree.h"

static size_t
unhex(const char *s, uint8_t *buf, size_t cap)
{
	size_t n = 0;
	unsigned int v;

	while (*s != '\0') {
		if (*s == ' ') {
			s++;
			continue;
		}
		assert_int_equal(sscanf(s, "%2x", &v), 1);
		assert_true(n < cap);
		buf[n++] = (uint8_t)v;
		s += 2;
	}
	return n;
}

/* A payload we encoded equals the hex. */
static void
expect_payload(ssize_t n, const uint8_t *buf, const char *hex)
{
	uint8_t want[512];
	size_t wn = unhex(hex, want, sizeof(want));

	assert_int_equal(n, (ssize_t)wn);
	assert_memory_equal(buf, want, wn);
}

static void
tree(const char *hex, struct smp_tree *t)
{
	uint8_t buf[1024];
	size_t n = unhex(hex, buf, sizeof(buf));
	char why[160];

	if (smp_tree_from_cbor(buf, n, t, why, sizeof(why)) != 0)
		fail_msg("test tree does not parse: %s", why);
}

static void
expect_why(const char *why, const char *needle)
{
	if (strstr(why, needle) == NULL)
		fail_msg("\"%s\" does not mention \"%s\"", why, needle);
}

static void
test_encoders(void **state)
{
	static char *const argv[] = {"kernel", "uptime"};
	uint8_t buf[256], data[3] = {1, 2, 3};

	(void)state;
	expect_payload(smpg_enc_empty(buf, sizeof(buf)), buf, "a0");
	expect_payload(smpg_enc_image_erase(buf, sizeof(buf), -1), buf, "a0");
	/* {"slot": 1} */
	expect_payload(smpg_enc_image_erase(buf, sizeof(buf), 1), buf,
	               "a1 64736c6f74 01");
	/* {"format": "sv"} */
	expect_payload(smpg_enc_os_info(buf, sizeof(buf), "sv"), buf,
	               "a1 66666f726d6174 627376");
	/* {"datetime": "2024-05-01T12:00:00"} */
	expect_payload(
	    smpg_enc_datetime_set(buf, sizeof(buf), "2024-05-01T12:00:00"), buf,
	    "a1 686461746574696d65 73 323032342d30352d30315431323a30303a3030");
	assert_true(smpg_enc_datetime_set(buf, sizeof(buf),
	                                  "2024-05-01T12:00:00.123") > 0);
	assert_int_equal(
	    smpg_enc_datetime_set(buf, sizeof(buf), "2024-05-01 12:00:00"), -1);
	assert_int_equal(smpg_enc_datetime_set(buf, sizeof(buf), "yesterday"),
	                 -1);
	assert_int_equal(
	    smpg_enc_datetime_set(buf, sizeof(buf), "2024-05-01T12:00:00.1234"),
	    -1);
	/* {"query": "mode"} */
	expect_payload(smpg_enc_bootloader(buf, sizeof(buf), "mode"), buf,
	               "a1 657175657279 646d6f6465");
	expect_payload(smpg_enc_bootloader(buf, sizeof(buf), NULL), buf, "a0");
	/* {"name": "st"} */
	expect_payload(smpg_enc_stat_show(buf, sizeof(buf), "st"), buf,
	               "a1 646e616d65 627374");
	assert_int_equal(smpg_enc_stat_show(buf, sizeof(buf), ""), -1);
	/* {"argv": ["kernel", "uptime"]} */
	expect_payload(smpg_enc_shell_exec(buf, sizeof(buf), 2, argv), buf,
	               "a1 6461726776 82 666b65726e656c 66757074696d65");
	assert_int_equal(smpg_enc_shell_exec(buf, sizeof(buf), 0, argv), -1);
	/* First chunk: {"off": 0, "data": h'010203', "name": "/f", "len": 5} */
	expect_payload(
	    smpg_enc_fs_upload(buf, sizeof(buf), "/f", 0, data, 3, 5), buf,
	    "a4 636f6666 00 6464617461 43010203 646e616d65 622f66 636c656e 05");
	/* Later chunks carry no "len". */
	expect_payload(
	    smpg_enc_fs_upload(buf, sizeof(buf), "/f", 3, data, 2, 5), buf,
	    "a3 636f6666 03 6464617461 420102 646e616d65 622f66");
	assert_int_equal(
	    smpg_enc_fs_upload(buf, sizeof(buf), "/f", 4, data, 3, 5), -1);
	/* The overhead is what a chunk costs besides its data, or more. */
	assert_true(
	    smpg_fs_upload_overhead("/f", 0, 5) + 3 >=
	    (size_t)smpg_enc_fs_upload(buf, sizeof(buf), "/f", 0, data, 3, 5));
	assert_true(
	    smpg_fs_upload_overhead("/f", 0, 5) <=
	    (size_t)smpg_enc_fs_upload(buf, sizeof(buf), "/f", 0, data, 3, 5) +
	        2);
	/* {"off": 300, "name": "/f"} */
	expect_payload(smpg_enc_fs_download(buf, sizeof(buf), "/f", 300), buf,
	               "a2 636f6666 19012c 646e616d65 622f66");
	expect_payload(smpg_enc_fs_stat(buf, sizeof(buf), "/f"), buf,
	               "a1 646e616d65 622f66");
	expect_payload(smpg_enc_fs_hash(buf, sizeof(buf), "/f", NULL, 0, 0),
	               buf, "a1 646e616d65 622f66");
	/* {"name": "/f", "type": "sha256", "len": 10} */
	expect_payload(
	    smpg_enc_fs_hash(buf, sizeof(buf), "/f", "sha256", 0, 10), buf,
	    "a3 646e616d65 622f66 6474797065 66736861323536 636c656e 0a");
	/* Too small a buffer is -1, never a cut payload. */
	assert_int_equal(smpg_enc_stat_show(buf, 5, "st"), -1);
	assert_int_equal(smpg_enc_shell_exec(buf, 10, 2, argv), -1);
}

/* The real peer's taskstat reply (Zephyr 3.2.99 smp_svr, native_posix). */
#define PEER_TASKSTAT                                                          \
	"bf657461736b73bf6133bf647072696f0363746964006573746174651880ff622d31" \
	"bf647072696f20637469640165737461746502ff623135bf647072696f0f63746964" \
	"0265737461746500ff6130bf647072696f00637469640365737461746510ffffff"

static void
test_taskstat(void **state)
{
	struct smpg_taskstat ts;
	struct smp_tree t;
	char why[160];

	(void)state;
	tree(PEER_TASKSTAT, &t);
	assert_int_equal(smpg_dec_taskstat(&t, &ts, why, sizeof(why)), 0);
	assert_int_equal(ts.n, 4);
	assert_string_equal(ts.tasks[0].name, "3");
	assert_int_equal(ts.tasks[0].prio, 3);
	assert_int_equal(ts.tasks[0].state, 128);
	assert_string_equal(ts.tasks[1].name, "-1");
	assert_true(ts.tasks[1].has_prio);
	assert_int_equal(ts.tasks[1].prio, -1); /* a signed priority */
	assert_int_equal(ts.tasks[1].tid, 1);
	assert_false(ts.tasks[1].has_stack);
	assert_false(ts.tasks[1].has_runtime);
	smpg_taskstat_free(&ts);
	smp_tree_free(&t);

	/* Stack, runtime and switches when the build reports them. */
	tree("a1 657461736b73 a1 646d61696e a5 647072696f 00"
	     " 6673746b73697a 1904 00 667374 6b757365 18 40"
	     " 6772756e74696d65 1a000f4240 66637377636e74 07",
	     &t);
	assert_int_equal(smpg_dec_taskstat(&t, &ts, why, sizeof(why)), 0);
	assert_int_equal(ts.n, 1);
	assert_true(ts.tasks[0].has_stack);
	assert_int_equal(ts.tasks[0].stksiz, 1024);
	assert_int_equal(ts.tasks[0].stkuse, 64);
	assert_int_equal(ts.tasks[0].runtime, 1000000);
	assert_int_equal(ts.tasks[0].cswcnt, 7);
	smpg_taskstat_free(&ts);
	smp_tree_free(&t);

	tree("a1 657461736b73 01", &t);
	assert_int_equal(smpg_dec_taskstat(&t, &ts, why, sizeof(why)), -1);
	expect_why(why, "\"tasks\": expected map, got unsigned integer");
	smp_tree_free(&t);
	tree("a1 657461736b73 a1 6161 01", &t);
	assert_int_equal(smpg_dec_taskstat(&t, &ts, why, sizeof(why)), -1);
	expect_why(why, "task \"a\"");
	smp_tree_free(&t);
	tree("a1 657461736b73 a1 6161 a1 647072696f 6178", &t);
	assert_int_equal(smpg_dec_taskstat(&t, &ts, why, sizeof(why)), -1);
	expect_why(why, "\"prio\"");
	smp_tree_free(&t);
	tree("a0", &t);
	assert_int_equal(smpg_dec_taskstat(&t, &ts, why, sizeof(why)), -1);
	expect_why(why, "no \"tasks\"");
	smp_tree_free(&t);
}

static void
test_mpstat(void **state)
{
	struct smpg_mpstat ms;
	struct smp_tree t;
	char why[160];

	(void)state;
	/* {"mpools": {"heap": {"blksiz": 8, "nblks": 100, "nfree": 40,
	 *  "min": 10}}} */
	tree("a1 666d706f6f6c73 a1 6468656170 a4 66626c6b73697a 08"
	     " 656e626c6b73 1864 656e66726565 1828 636d696e 0a",
	     &t);
	assert_int_equal(smpg_dec_mpstat(&t, &ms, why, sizeof(why)), 0);
	assert_int_equal(ms.n, 1);
	assert_string_equal(ms.pools[0].name, "heap");
	assert_int_equal(ms.pools[0].blksiz, 8);
	assert_int_equal(ms.pools[0].nblks, 100);
	assert_int_equal(ms.pools[0].nfree, 40);
	assert_true(ms.pools[0].has_min);
	assert_int_equal(ms.pools[0].min, 10);
	smpg_mpstat_free(&ms);
	smp_tree_free(&t);
	tree("a1 666d706f6f6c73 a1 6468656170 a1 66626c6b73697a 08", &t);
	assert_int_equal(smpg_dec_mpstat(&t, &ms, why, sizeof(why)), -1);
	expect_why(why, "no \"nblks\"");
	smp_tree_free(&t);
}

static void
test_info_datetime_bootloader(void **state)
{
	struct smpg_bootloader bl;
	struct smp_tree t;
	const char *s;
	char why[160];

	(void)state;
	/* The peer's os info: {_ "output": "Zephyr"} */
	tree("bf666f7574707574665a6570687972ff", &t);
	assert_int_equal(smpg_dec_os_info(&t, &s, why, sizeof(why)), 0);
	assert_string_equal(s, "Zephyr");
	smp_tree_free(&t);
	tree("a1 666f7574707574 01", &t);
	assert_int_equal(smpg_dec_os_info(&t, &s, why, sizeof(why)), -1);
	expect_why(why, "\"output\"");
	smp_tree_free(&t);
	/* A NUL inside a text we use as a C string is refused. */
	tree("a1 666f7574707574 63 610062", &t);
	assert_int_equal(smpg_dec_os_info(&t, &s, why, sizeof(why)), -1);
	expect_why(why, "NUL");
	smp_tree_free(&t);

	tree("a1 686461746574696d65 73 323032342d30352d30315431323a30303a3030",
	     &t);
	assert_int_equal(smpg_dec_datetime(&t, &s, why, sizeof(why)), 0);
	assert_string_equal(s, "2024-05-01T12:00:00");
	smp_tree_free(&t);

	/* {"bootloader": "MCUboot"} */
	tree("a1 6a626f6f746c6f61646572 674d4355626f6f74", &t);
	assert_int_equal(smpg_dec_bootloader(&t, &bl, why, sizeof(why)), 0);
	assert_string_equal(bl.bootloader, "MCUboot");
	assert_false(bl.has_mode);
	smp_tree_free(&t);
	/* {"mode": 3, "no-downgrade": true} */
	tree("a2 646d6f6465 03 6c6e6f2d646f776e6772616465 f5", &t);
	assert_int_equal(smpg_dec_bootloader(&t, &bl, why, sizeof(why)), 0);
	assert_null(bl.bootloader);
	assert_int_equal(bl.mode, 3);
	assert_string_equal(smpg_mcuboot_mode_name(bl.mode), "swap using move");
	assert_true(bl.has_no_downgrade && bl.no_downgrade);
	smp_tree_free(&t);
	/* {"mode": -1}: MCUboot in a mode Zephyr does not know */
	tree("a1 646d6f6465 20", &t);
	assert_int_equal(smpg_dec_bootloader(&t, &bl, why, sizeof(why)), 0);
	assert_string_equal(smpg_mcuboot_mode_name(bl.mode), "unknown");
	smp_tree_free(&t);
	tree("a0", &t);
	assert_int_equal(smpg_dec_bootloader(&t, &bl, why, sizeof(why)), -1);
	smp_tree_free(&t);
}

static void
test_stat(void **state)
{
	struct smpg_stat_list sl;
	struct smpg_stat_show ss;
	struct smp_tree t;
	char why[160];

	(void)state;
	/* The peer's stat list and stat show smp_svr_stats. */
	tree("bf6272630069737461745f6c6973749f6f666c6173685f73696d5f7374617473"
	     "74666c6173685f73696d5f7468726573686f6c64736d736d705f7376725f7374"
	     "617473ffff",
	     &t);
	assert_int_equal(smpg_dec_stat_list(&t, &sl, why, sizeof(why)), 0);
	assert_int_equal(sl.n, 3);
	assert_string_equal(sl.names[2], "smp_svr_stats");
	smpg_stat_list_free(&sl);
	smp_tree_free(&t);
	tree("bf646e616d656d736d705f7376725f7374617473666669656c6473bf65746963"
	     "6b730062733100ffff",
	     &t);
	assert_int_equal(smpg_dec_stat_show(&t, &ss, why, sizeof(why)), 0);
	assert_string_equal(ss.name, "smp_svr_stats");
	assert_int_equal(ss.n, 2);
	assert_string_equal(ss.fields[0].name, "ticks");
	assert_string_equal(ss.fields[1].name, "s1");
	assert_int_equal(ss.fields[1].value, 0);
	smpg_stat_show_free(&ss);
	smp_tree_free(&t);

	tree("a1 6973746174 5f6c697374 82 6161 01", &t);
	assert_int_equal(smpg_dec_stat_list(&t, &sl, why, sizeof(why)), -1);
	expect_why(why, "a name in \"stat_list\"");
	smp_tree_free(&t);
	tree("a1 666669656c6473 a1 6161 20", &t);
	assert_int_equal(smpg_dec_stat_show(&t, &ss, why, sizeof(why)), -1);
	expect_why(why, "field \"a\"");
	smp_tree_free(&t);
}

static void
test_shell(void **state)
{
	struct smpg_shell sh;
	struct smp_tree t;
	char why[160];

	(void)state;
	/* {"o": "up\n", "ret": 0} */
	tree("a2 616f 6375700a 63726574 00", &t);
	assert_int_equal(smpg_dec_shell(&t, &sh, why, sizeof(why)), 0);
	assert_int_equal(sh.out_len, 3);
	assert_memory_equal(sh.out, "up\n", 3);
	assert_true(sh.has_ret);
	assert_false(sh.legacy_rc);
	assert_int_equal(sh.ret, 0);
	smp_tree_free(&t);
	/* A failing command: {"o": "", "ret": -8} */
	tree("a2 616f 60 63726574 27", &t);
	assert_int_equal(smpg_dec_shell(&t, &sh, why, sizeof(why)), 0);
	assert_int_equal(sh.ret, -8);
	smp_tree_free(&t);
	/* A legacy build: {"o": "x", "rc": 2} */
	tree("a2 616f 6178 627263 02", &t);
	assert_int_equal(smpg_dec_shell(&t, &sh, why, sizeof(why)), 0);
	assert_true(sh.legacy_rc);
	assert_int_equal(sh.ret, 2);
	smp_tree_free(&t);
	/* Output with a NUL byte is output, not an error. */
	tree("a1 616f 63 610062", &t);
	assert_int_equal(smpg_dec_shell(&t, &sh, why, sizeof(why)), 0);
	assert_int_equal(sh.out_len, 3);
	assert_false(sh.has_ret);
	smp_tree_free(&t);
	tree("a1 63726574 00", &t);
	assert_int_equal(smpg_dec_shell(&t, &sh, why, sizeof(why)), -1);
	expect_why(why, "no \"o\"");
	smp_tree_free(&t);
	tree("a1 616f 4100", &t);
	assert_int_equal(smpg_dec_shell(&t, &sh, why, sizeof(why)), -1);
	expect_why(why, "\"o\": expected text string, got byte string");
	smp_tree_free(&t);
}

static void
test_fs(void **state)
{
	struct smpg_fs_chunk ch;
	struct smpg_fs_hash h;
	struct smp_tree t;
	uint64_t v;
	char why[160];

	(void)state;
	tree("a1 636f6666 1901f4", &t);
	assert_int_equal(smpg_dec_fs_upload(&t, &v, why, sizeof(why)), 0);
	assert_int_equal(v, 500);
	smp_tree_free(&t);
	/* {"off": 0, "data": h'0102', "len": 9} */
	tree("a3 636f6666 00 6464617461 420102 636c656e 09", &t);
	assert_int_equal(smpg_dec_fs_download(&t, &ch, why, sizeof(why)), 0);
	assert_int_equal(ch.off, 0);
	assert_int_equal(ch.len, 2);
	assert_true(ch.has_total);
	assert_int_equal(ch.total, 9);
	smp_tree_free(&t);
	tree("a2 636f6666 02 6464617461 40", &t);
	assert_int_equal(smpg_dec_fs_download(&t, &ch, why, sizeof(why)), 0);
	assert_false(ch.has_total);
	assert_int_equal(ch.len, 0);
	smp_tree_free(&t);
	tree("a2 636f6666 02 6464617461 6178", &t);
	assert_int_equal(smpg_dec_fs_download(&t, &ch, why, sizeof(why)), -1);
	expect_why(why, "\"data\": expected byte string, got text string");
	smp_tree_free(&t);
	tree("a1 636c656e 1904d2", &t);
	assert_int_equal(smpg_dec_fs_stat(&t, &v, why, sizeof(why)), 0);
	assert_int_equal(v, 1234);
	smp_tree_free(&t);
	/* {"type": "sha256", "len": 9, "output": h'aabb'} */
	tree("a3 6474797065 66736861323536 636c656e 09 666f7574707574 42aabb",
	     &t);
	assert_int_equal(smpg_dec_fs_hash(&t, &h, why, sizeof(why)), 0);
	assert_string_equal(h.type, "sha256");
	assert_true(h.is_bytes);
	assert_int_equal(h.nbytes, 2);
	smp_tree_free(&t);
	/* {"type": "crc32", "len": 9, "output": 305419896} */
	tree("a3 6474797065 6563726333 32 636c656e 09 666f7574707574 "
	     "1a12345678",
	     &t);
	assert_int_equal(smpg_dec_fs_hash(&t, &h, why, sizeof(why)), 0);
	assert_false(h.is_bytes);
	assert_int_equal(h.number, 0x12345678);
	smp_tree_free(&t);
}

static void
test_not_supported(void **state)
{
	char buf[256];

	(void)state;
	assert_true(smpg_not_supported(SMP_RC_NOTSUP, false));
	assert_false(smpg_not_supported(SMP_RC_NOTSUP, true));
	assert_false(smpg_not_supported(SMP_RC_INVAL, false));
	smpg_not_supported_msg(&smpg_os_mpstat, buf, sizeof(buf));
	assert_string_equal(buf, "the board does not support os mpstat (a "
	                         "Zephyr build enables it with "
	                         "CONFIG_MCUMGR_GRP_OS_MPSTAT, with "
	                         "CONFIG_SYS_HEAP_RUNTIME_STATS)");
	assert_int_equal(smpg_shell_exec.group, 9);
	assert_int_equal(smpg_shell_exec.op, SMP_OP_WRITE);
	assert_int_equal(smpg_fs_hash.id, 2);
	assert_int_equal(smpg_os_bootloader.id, 8);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_encoders),
	    cmocka_unit_test(test_taskstat),
	    cmocka_unit_test(test_mpstat),
	    cmocka_unit_test(test_info_datetime_bootloader),
	    cmocka_unit_test(test_stat),
	    cmocka_unit_test(test_shell),
	    cmocka_unit_test(test_fs),
	    cmocka_unit_test(test_not_supported),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
