/* Unit tests for common/log.c: line format, quoting, levels. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>

#include <cmocka.h>

#include "log.h"

/* Run fn with stderr redirected to a pipe and return what it wrote. */
static char *
capture(void (*fn)(void))
{
	static char buf[8192];
	int fds[2], saved;
	ssize_t n;

	assert_int_equal(pipe(fds), 0);
	saved = dup(STDERR_FILENO);
	dup2(fds[1], STDERR_FILENO);
	fn();
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(fds[1]);
	n = read(fds[0], buf, sizeof(buf) - 1);
	close(fds[0]);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static void
emit_info(void)
{
	log_init(0, NULL);
	log_info("Update successful", "device=%s new_version=%s", "serial",
	         "1.2.3+4");
}

static void
test_info_line(void **state)
{
	const char *out = capture(emit_info);

	(void)state;
	assert_non_null(strstr(out, " level=INFO msg=\"Update successful\" "
	                            "device=serial new_version=1.2.3+4\n"));
	assert_memory_equal(out, "time=", 5);
}

static void
emit_quoted(void)
{
	log_init(0, "worker-udp");
	log_warnx("bad \"reply\"\nfrom board", "value=%s", log_q("a b\tc"));
}

static void
test_quoting(void **state)
{
	const char *out = capture(emit_quoted);

	(void)state;
	assert_non_null(strstr(out, "level=WARN proc=worker-udp "
	                            "msg=\"bad \\\"reply\\\"\\nfrom board\" "
	                            "value=\"a b\\x09c\"\n"));
}

static void
emit_debug_off_on(void)
{
	log_init(0, NULL);
	log_debug("hidden", NULL);
	log_setverbose(1);
	log_debug("shown", NULL);
}

static void
test_debug_needs_verbose(void **state)
{
	const char *out = capture(emit_debug_off_on);

	(void)state;
	assert_null(strstr(out, "hidden"));
	assert_non_null(strstr(out, "level=DEBUG msg=\"shown\""));
}

static void
emit_errno(void)
{
	log_init(0, NULL);
	errno = ENOENT;
	log_warn("cannot open", "path=%s", "/nope");
}

static void
test_errno_appended(void **state)
{
	const char *out = capture(emit_errno);

	(void)state;
	assert_non_null(strstr(out, "path=/nope error=\"No such file or "
	                            "directory\"\n"));
}

static void
prewrite(void)
{
	(void)!write(STDERR_FILENO, "[clear]", 7);
}

static void
emit_levels(void)
{
	log_init(0, NULL);
	log_setlevel(LOG_LEVEL_WARN);
	log_info("info hidden", NULL);
	log_warnx("warn shown", NULL);
	/* Verbose off does not undo a quieter level (a worker's -q). */
	log_setlevel(LOG_LEVEL_ERROR);
	log_setverbose(0);
	log_warnx("warn hidden", NULL);
	log_set_prewrite(prewrite);
	log_errx("error shown", NULL);
	log_set_prewrite(NULL);
	log_setverbose(1);
	log_debug("debug shown", NULL);
	log_setlevel(LOG_LEVEL_INFO);
}

static void
test_levels_and_prewrite(void **state)
{
	const char *out = capture(emit_levels);

	(void)state;
	assert_null(strstr(out, "info hidden"));
	assert_non_null(strstr(out, "msg=\"warn shown\""));
	assert_null(strstr(out, "warn hidden"));
	/* The hook runs before the line, whole. */
	assert_non_null(strstr(out, "[clear]time="));
	assert_non_null(strstr(out, "msg=\"error shown\""));
	assert_non_null(strstr(out, "level=DEBUG msg=\"debug shown\""));
	assert_int_equal(log_getlevel(), LOG_LEVEL_INFO);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_info_line),
	    cmocka_unit_test(test_quoting),
	    cmocka_unit_test(test_debug_needs_verbose),
	    cmocka_unit_test(test_errno_appended),
	    cmocka_unit_test(test_levels_and_prewrite),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
