/*
 * The management channel's config keys: defaults, what they load as, and
 * every refusal naming the file, the key path and what was expected.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "log.h"
#include "supervisor/config.h"

static char errbuf[2048];

#define HDR "{'server':'http://rdfm.test:5000','key_dir':'keys',"
#define DEV(extra)                                                             \
	"{'name':'d','id':'d1','dev_type':'t','key':'d.key',"                  \
	"'transport':{'type':'udp','address':'127.0.0.1:1'}" extra "}"
#define GROUP(extra)                                                           \
	"{'name':'g','id':'g1','type':'t','key':'g.key','members':["           \
	"{'name':'a','device':'a','transport':{'type':'udp','address':"        \
	"'127.0.0.1:2'},'shell':true,'file_paths':['/lfs']},"                  \
	"{'name':'b','device':'b','transport':{'type':'udp','address':"        \
	"'127.0.0.1:3'}}]" extra "}"

static struct config *
load(const char *text)
{
	char *buf = strdup(text), *p;

	for (p = buf; *p != '\0'; p++)
		if (*p == '\'')
			*p = '"';
	errbuf[0] = '\0';
	struct config *c = config_load_buffer("c.json", buf, strlen(buf), NULL,
	                                      errbuf, sizeof(errbuf));
	free(buf);
	return c;
}

static void
expect_error(const char *text, const char *keypath, const char *what)
{
	struct config *c = load(text);
	char want[256];

	if (c != NULL) {
		config_free(c);
		fail_msg("accepted: %s", text);
	}
	snprintf(want, sizeof(want), "c.json: %s: ", keypath);
	if (strncmp(errbuf, want, strlen(want)) != 0)
		fail_msg("message \"%s\" does not start with \"%s\"", errbuf,
		         want);
	if (strstr(errbuf, what) == NULL)
		fail_msg("message \"%s\" lacks \"%s\"", errbuf, what);
}

static void
test_defaults(void **state)
{
	struct config *c = load(HDR "'devices':[" DEV("") "]}");

	(void)state;
	assert_non_null(c);
	assert_true(c->management);
	assert_int_equal(c->nupload_hosts, 0);
	assert_int_equal(c->file_max_bytes, CONFIG_DEFAULT_FILE_MAX);
	assert_false(c->devices[0].mgmt_board.shell);
	assert_int_equal(c->devices[0].mgmt_board.nfile_paths, 0);
	assert_int_equal(c->devices[0].mgmt.nactions, 0);
	assert_int_equal(c->devices[0].mgmt.file_max_bytes,
	                 CONFIG_DEFAULT_FILE_MAX);
	config_free(c);
}

static void
test_device_keys(void **state)
{
	struct config *c =
	    load(HDR "'management':true,'file_max_bytes':4096,"
	             "'upload_hosts':['S3.Example.com','[FD00::1]'],"
	             "'devices':[" DEV(
	                 ",'shell':true,'file_paths':['/lfs/logs','/'],"
	                 "'file_max_bytes':100,'actions':[{'id':'uptime',"
	                 "'name':'Uptime','description':'How long it runs',"
	                 "'command':['kernel','uptime'],'timeout':'3s'},"
	                 "{'id':'x','command':['x']}]") "]}");
	const struct action_cfg *a;

	(void)state;
	assert_non_null(c);
	assert_int_equal(c->file_max_bytes, 4096);
	assert_int_equal(c->nupload_hosts, 2);
	assert_string_equal(c->upload_hosts[0], "s3.example.com");
	assert_string_equal(c->upload_hosts[1], "fd00::1");
	assert_true(c->devices[0].mgmt_board.shell);
	assert_int_equal(c->devices[0].mgmt_board.nfile_paths, 2);
	assert_string_equal(c->devices[0].mgmt_board.file_paths[0],
	                    "/lfs/logs");
	assert_int_equal(c->devices[0].mgmt.file_max_bytes, 100);
	assert_int_equal(c->devices[0].mgmt.nactions, 2);
	a = &c->devices[0].mgmt.actions[0];
	assert_string_equal(a->id, "uptime");
	assert_string_equal(a->name, "Uptime");
	assert_string_equal(a->description, "How long it runs");
	assert_int_equal(a->ncommand, 2);
	assert_string_equal(a->command[1], "uptime");
	assert_null(a->command[2]);
	assert_int_equal(a->timeout_ms, 3000);
	assert_null(a->member);
	a = &c->devices[0].mgmt.actions[1];
	assert_string_equal(a->name, "x");
	assert_string_equal(a->description, "");
	assert_int_equal(a->timeout_ms, CONFIG_DEFAULT_ACTION_TIMEOUT);
	config_free(c);
}

static void
test_group_keys(void **state)
{
	struct config *c = load(HDR "'management':false,'groups':[" GROUP(
	    ",'file_max_bytes':7,'actions':[{'id':'up','member':'b',"
	    "'command':['kernel','uptime']}]") "]}");

	(void)state;
	assert_non_null(c);
	assert_false(c->management);
	assert_true(c->groups[0].members[0].mgmt_board.shell);
	assert_false(c->groups[0].members[1].mgmt_board.shell);
	assert_int_equal(c->groups[0].members[0].mgmt_board.nfile_paths, 1);
	assert_int_equal(c->groups[0].mgmt.file_max_bytes, 7);
	assert_string_equal(c->groups[0].mgmt.actions[0].member, "b");
	config_free(c);
}

static void
test_errors(void **state)
{
	(void)state;
	expect_error(HDR "'management':1,'devices':[" DEV("") "]}",
	             "management", "expected true or false");
	expect_error(HDR "'upload_hosts':['a b'],'devices':[" DEV("") "]}",
	             "upload_hosts[0]", "not a host name");
	expect_error(HDR "'file_max_bytes':0,'devices':[" DEV("") "]}",
	             "file_max_bytes", "expected an integer from 1");
	expect_error(HDR "'devices':[" DEV(",'shell':'yes'") "]}",
	             "devices[0].shell", "expected true or false");
	expect_error(HDR "'devices':[" DEV(",'file_paths':['lfs']") "]}",
	             "devices[0].file_paths[0]", "not absolute");
	expect_error(HDR "'devices':[" DEV(",'file_paths':['/a//b']") "]}",
	             "devices[0].file_paths[0]", "empty component");
	expect_error(HDR "'devices':[" DEV(",'file_paths':['/a/../b']") "]}",
	             "devices[0].file_paths[0]", "\"..\"");
	expect_error(HDR "'devices':[" DEV(",'file_paths':'/lfs'") "]}",
	             "devices[0].file_paths", "expected an array");
	expect_error(HDR
	             "'devices':[" DEV(",'actions':[{'command':['x']}]") "]}",
	             "devices[0].actions[0].id", "missing");
	expect_error(HDR "'devices':[" DEV(
	                 ",'actions':[{'id':'a b','command':['x']}]") "]}",
	             "devices[0].actions[0].id", "without spaces");
	expect_error(HDR "'devices':[" DEV(
	                 ",'actions':[{'id':'rdfm.x','command':['x']}]") "]}",
	             "devices[0].actions[0].id", "built-in");
	expect_error(HDR "'devices':[" DEV(",'actions':[{'id':'a'}]") "]}",
	             "devices[0].actions[0].command", "missing");
	expect_error(
	    HDR "'devices':[" DEV(",'actions':[{'id':'a','command':[]}]") "]}",
	    "devices[0].actions[0].command", "1 to 32 words");
	expect_error(HDR "'devices':[" DEV(
	                 ",'actions':[{'id':'a','command':['x\\n']}]") "]}",
	             "devices[0].actions[0].command", "printable");
	expect_error(HDR
	             "'devices':[" DEV(",'actions':[{'id':'a','command':['x'],"
	                               "'timeout':'11m'}]") "]}",
	             "devices[0].actions[0].timeout", "longer than 10m");
	expect_error(HDR
	             "'devices':[" DEV(",'actions':[{'id':'a','command':['x'],"
	                               "'member':'m'}]") "]}",
	             "devices[0].actions[0].member", "only a group");
	expect_error(
	    HDR "'devices':[" DEV(",'actions':[{'id':'a','command':['x']},"
	                          "{'id':'a','command':['y']}]") "]}",
	    "devices[0].actions[1].id", "already the id of actions[0]");
	expect_error(HDR "'groups':[" GROUP(
	                 ",'actions':[{'id':'a','command':['x']}]") "]}",
	             "groups[0].actions[0].member", "missing");
	expect_error(HDR
	             "'groups':[" GROUP(",'actions':[{'id':'a','member':'zz',"
	                                "'command':['x']}]") "]}",
	             "groups[0].actions[0].member", "not a member");
	expect_error(HDR "'groups':[{'name':'g','id':'g1','type':'t','key':"
	                 "'g.key','members':[{'name':'a','device':'a',"
	                 "'transport':{'type':'udp','address':'127.0.0.1:2'},"
	                 "'file_paths':['/ok','rel']}]}]}",
	             "groups[0].members[0].file_paths[1]", "not absolute");
}

static void
test_equal(void **state)
{
	struct config *a = load(HDR "'devices':[" DEV(
	    ",'actions':[{'id':'u','command':['kernel','uptime']}]") "]}");
	struct config *b = load(HDR "'devices':[" DEV(
	    ",'actions':[{'id':'u','command':['kernel','reboot']}]") "]}");
	struct config *c = load(HDR "'devices':[" DEV(
	    ",'actions':[{'id':'u','command':['kernel','uptime']}]") "]}");

	(void)state;
	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(c);
	assert_false(device_cfg_equal(&a->devices[0], &b->devices[0]));
	assert_true(device_cfg_equal(&a->devices[0], &c->devices[0]));
	config_free(a);
	config_free(b);
	config_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_device_keys),
	    cmocka_unit_test(test_group_keys),
	    cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_equal),
	};

	log_init(0, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
