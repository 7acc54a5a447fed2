/* Unit tests for supervisor/journal.c: atomic records, corruption, crashes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "supervisor/journal.h"

static char dir[] = "/tmp/test-journal.XXXXXX";

static int
setup(void **state)
{
	char err[256];

	(void)state;
	strcpy(dir, "/tmp/test-journal.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	return journal_open(dir, err, sizeof(err));
}

static int
teardown(void **state)
{
	char cmd[300];

	(void)state;
	journal_close();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* An entry with room for a group's members, as a group's machine has. */
static struct journal_entry *
roomy(struct journal_entry *e)
{
	static struct journal_member pool[8][JOURNAL_MAX_MEMBERS];
	static size_t next;

	memset(e, 0, sizeof(*e));
	e->members = pool[next++ % 8];
	e->cap = JOURNAL_MAX_MEMBERS;
	journal_entry_clear(e);
	return e;
}

static void
fill(struct journal_entry *e)
{
	roomy(e);
	e->phase = JP_RESETTING;
	strcpy(e->artifact_sha256, "ab01");
	strcpy(e->target_version, "1.2.3+4");
	e->attempt = 2;
	e->nmembers = 2;
	strcpy(e->members[0].name, "udp-left");
	e->members[0].phase = JP_PENDING;
	e->members[0].has_old_hash = true;
	memset(e->members[0].old_hash, 0xa5, JOURNAL_HASH_LEN);
	e->members[0].has_new_hash = true;
	memset(e->members[0].new_hash, 0x5a, JOURNAL_HASH_LEN);
	strcpy(e->members[1].name, "ble");
	e->members[1].phase = JP_CONFIRMING;
}

static void
test_round_trip(void **state)
{
	struct journal_entry in, out;
	char err[256];

	(void)state;
	fill(&in);
	roomy(&out);
	assert_int_equal(journal_write("group", "gr1", &in, err, sizeof(err)),
	                 0);
	assert_int_equal(journal_read("group", "gr1", &out, err, sizeof(err)),
	                 0);
	assert_int_equal(out.phase, JP_RESETTING);
	assert_string_equal(out.artifact_sha256, "ab01");
	assert_string_equal(out.target_version, "1.2.3+4");
	assert_int_equal(out.attempt, 2);
	assert_int_equal(out.nmembers, 2);
	assert_string_equal(out.members[0].name, "udp-left");
	assert_int_equal(out.members[0].phase, JP_PENDING);
	assert_true(out.members[0].has_old_hash);
	assert_memory_equal(out.members[0].old_hash, in.members[0].old_hash,
	                    JOURNAL_HASH_LEN);
	assert_memory_equal(out.members[0].new_hash, in.members[0].new_hash,
	                    JOURNAL_HASH_LEN);
	assert_false(out.members[1].has_old_hash);
	assert_int_equal(out.members[1].phase, JP_CONFIRMING);
}

static void
test_absent_and_remove(void **state)
{
	struct journal_entry e;
	char err[256];

	(void)state;
	roomy(&e);
	assert_int_equal(journal_read("device", "nope", &e, err, sizeof(err)),
	                 1);
	fill(&e);
	assert_int_equal(journal_write("device", "x", &e, err, sizeof(err)), 0);
	assert_int_equal(journal_remove("device", "x", err, sizeof(err)), 0);
	assert_int_equal(journal_read("device", "x", &e, err, sizeof(err)), 1);
	/* Removing what is not there is not an error. */
	assert_int_equal(journal_remove("device", "x", err, sizeof(err)), 0);
}

/* Ids are free text: a MAC address and a traversal attempt stay inside. */
static void
test_id_escaping(void **state)
{
	struct journal_entry e, out;
	char err[256], path[512];
	struct stat st;

	(void)state;
	fill(&e);
	roomy(&out);
	assert_int_equal(
	    journal_write("device", "11:22:33:44:55:66", &e, err, sizeof(err)),
	    0);
	snprintf(path, sizeof(path),
	         "%s/journal/device-11%%3A22%%3A33%%3A44"
	         "%%3A55%%3A66.json",
	         dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(
	    journal_write("device", "../../evil", &e, err, sizeof(err)), 0);
	snprintf(path, sizeof(path),
	         "%s/journal/device-%%2E.%%2F..%%2Fevil"
	         ".json",
	         dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(
	    journal_read("device", "../../evil", &out, err, sizeof(err)), 0);
	/* Different ids never share a file. */
	assert_int_equal(
	    journal_read("device", "11:22:33:44:55:67", &out, err, sizeof(err)),
	    1);
}

/* Files in the journal directory: records, and their spares (dot files). */
static void
count_files(int *records, int *spares)
{
	char path[512];
	struct dirent *d;
	DIR *dp;

	*records = *spares = 0;
	snprintf(path, sizeof(path), "%s/journal", dir);
	assert_non_null(dp = opendir(path));
	while ((d = readdir(dp)) != NULL) {
		if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
			continue;
		if (d->d_name[0] == '.')
			(*spares)++;
		else
			(*records)++;
	}
	closedir(dp);
}

/*
 * A record is rewritten by swapping a new copy in: the old copy stays as
 * the next write's spare, one per record whatever the writes (no inode
 * made and deleted each time), and goes with the record.
 */
static void
test_spare_bounded(void **state)
{
	struct journal_entry e, out;
	char err[256], path[512];
	struct stat st1, st2;
	int records, spares, i;

	(void)state;
	fill(&e);
	roomy(&out);
	for (i = 0; i < 5; i++) {
		e.attempt = (unsigned int)i;
		assert_int_equal(
		    journal_write("device", "a", &e, err, sizeof(err)), 0);
	}
	count_files(&records, &spares);
	assert_int_equal(records, 1);
	assert_true(spares <= 1);
	assert_int_equal(journal_read("device", "a", &out, err, sizeof(err)),
	                 0);
	assert_int_equal(out.attempt, 4);
	/* The record and its spare trade places: no new inode. */
	snprintf(path, sizeof(path), "%s/journal/device-a.json", dir);
	assert_int_equal(stat(path, &st1), 0);
	assert_int_equal(journal_write("device", "a", &e, err, sizeof(err)), 0);
	assert_int_equal(journal_write("device", "a", &e, err, sizeof(err)), 0);
	assert_int_equal(stat(path, &st2), 0);
	assert_true(st1.st_ino == st2.st_ino);
	assert_int_equal(journal_remove("device", "a", err, sizeof(err)), 0);
	count_files(&records, &spares);
	assert_int_equal(records + spares, 0);
}

static void
write_raw(const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/journal/%s", dir, name);
	assert_non_null(f = fopen(path, "w"));
	fputs(text, f);
	fclose(f);
}

/* A corrupt journal is reported with the file's name, never guessed from. */
static void
test_corrupt(void **state)
{
	static const struct {
		const char *text, *why;
	} cases[] = {
	    {"{\"format\":1,\"kind\":\"device\",\"id\":\"c\",\"pha",
	     "not valid JSON"},
	    {"[1,2]", "not a JSON object"},
	    {"{\"format\":9,\"kind\":\"device\",\"id\":\"c\"}", "format"},
	    {"{\"format\":1,\"kind\":\"group\",\"id\":\"c\"}", "kind"},
	    {"{\"format\":1,\"kind\":\"device\",\"id\":\"d\"}",
	     "id does not match"},
	    {"{\"format\":1,\"kind\":\"device\",\"id\":\"c\",\"phase\":"
	     "\"flying\",\"members\":[]}",
	     "bad phase"},
	    {"{\"format\":1,\"kind\":\"device\",\"id\":\"c\",\"phase\":"
	     "\"idle\"}",
	     "bad members"},
	    {"{\"format\":1,\"kind\":\"device\",\"id\":\"c\",\"phase\":"
	     "\"idle\",\"members\":[{\"name\":\"m\",\"phase\":\"idle\",\"old_"
	     "hash\":\"zz\"}]}",
	     "old_hash"},
	    {"{\"format\":1,\"kind\":\"device\",\"id\":\"c\",\"phase\":"
	     "\"idle\",\"attempt\":-1,\"members\":[]}",
	     "attempt"},
	    {"{\"format\":1,\"kind\":\"device\",\"id\":\"c\",\"phase\":"
	     "\"idle\",\"members\":[]} trailing",
	     "not valid JSON"},
	};
	struct journal_entry e;
	char err[256];
	size_t i;

	(void)state;
	roomy(&e);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		write_raw("device-c.json", cases[i].text);
		err[0] = '\0';
		assert_int_equal(
		    journal_read("device", "c", &e, err, sizeof(err)), -1);
		if (strstr(err, cases[i].why) == NULL ||
		    strstr(err, "device-c.json") == NULL)
			fail_msg("case %zu: error '%s' lacks '%s'", i, err,
			         cases[i].why);
	}
}

/*
 * A single device's machine has room for one member: a record with more
 * is refused with the reason, never written past its room.
 */
static void
test_room(void **state)
{
	struct journal_member one;
	struct journal_entry in, e = {.cap = 1, .members = &one};
	char err[256];

	(void)state;
	fill(&in);
	assert_int_equal(journal_write("device", "r", &in, err, sizeof(err)),
	                 0);
	assert_int_equal(journal_read("device", "r", &e, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "2 members, more than the 1 configured"));
	in.nmembers = 1;
	assert_int_equal(journal_write("device", "r", &in, err, sizeof(err)),
	                 0);
	assert_int_equal(journal_read("device", "r", &e, err, sizeof(err)), 0);
	assert_int_equal(e.nmembers, 1);
	assert_string_equal(e.members[0].name, "udp-left");
	/* Nor written from more members than its room. */
	e.nmembers = 2;
	assert_int_equal(journal_write("device", "r", &e, err, sizeof(err)),
	                 -1);
}

static void
test_phase_names(void **state)
{
	enum journal_phase p;
	int i;

	(void)state;
	for (i = 0; i < JP__COUNT; i++) {
		assert_int_equal(
		    journal_phase_parse(
		        journal_phase_name((enum journal_phase)i), &p),
		    0);
		assert_int_equal(p, i);
	}
	assert_int_equal(journal_phase_parse("nope", &p), -1);
}

/* The crash point kills the process only when named by RDFM_CRASH_AT. */
static void
test_crashpoint(void **state)
{
	pid_t pid;
	int status;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		setenv("RDFM_CRASH_AT", "after-pending", 1);
		journal_crashpoint("before-reset");
		journal_crashpoint("after-pending");
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGKILL);

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		unsetenv("RDFM_CRASH_AT");
		journal_crashpoint("after-pending");
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_absent_and_remove, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_id_escaping, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_spare_bounded, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_corrupt, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_room, setup, teardown),
	    cmocka_unit_test(test_phase_names),
	    cmocka_unit_test(test_crashpoint),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
