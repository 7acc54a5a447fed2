/*
 * Config loading: the Go client's example and etc/config.json load with the
 * values they say, flags win over the file, the search order holds, and
 * every class of error names the file, the key path and what was expected.
 */
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"
#include "supervisor/config.h"

static char tmpdir[] = "/tmp/test_config.XXXXXX";
static char cfgpath[PATH_MAX];
static char srcdir[PATH_MAX];
static char errbuf[2048];

/* Config text with ' for " keeps the cases readable. */
#define HDR         "{'server':'http://rdfm.test:5000','key_dir':'keys',"
#define SERIAL(dev) "'transport':{'type':'serial','device':'" dev "'}"
#define UDP(addr)   "'transport':{'type':'udp','address':'" addr "'}"
#define DEV(name, id, tr)                                                      \
	"{'name':'" name "','id':'" id "','dev_type':'t','key':'" name         \
	".key'," tr "}"

static void
write_cfg(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	const char *p;

	assert_non_null(f);
	for (p = text; *p != '\0'; p++)
		fputc(*p == '\'' ? '"' : *p, f);
	fclose(f);
}

static struct config *
load_str(const char *text, const struct config_overrides *ov)
{
	write_cfg(cfgpath, text);
	errbuf[0] = '\0';
	return config_load(cfgpath, ov, errbuf, sizeof(errbuf));
}

/* The load fails and the message names the file, the key path and what. */
static void
expect_error(const char *text, const char *keypath, const char *what)
{
	struct config *c = load_str(text, NULL);
	char want[PATH_MAX + 256];

	if (c != NULL) {
		config_free(c);
		fail_msg("accepted: %s", text);
	}
	snprintf(want, sizeof(want), "%s: %s: ", cfgpath, keypath);
	if (strncmp(errbuf, want, strlen(want)) != 0)
		fail_msg("message \"%s\" does not start with \"%s\"", errbuf,
		         want);
	if (strstr(errbuf, what) == NULL)
		fail_msg("message \"%s\" lacks \"%s\"", errbuf, what);
}

static struct config *
load_file(const char *rel, const struct config_overrides *ov)
{
	char path[PATH_MAX * 2];
	struct config *c;

	snprintf(path, sizeof(path), "%s/%s", srcdir, rel);
	if ((c = config_load(path, ov, errbuf, sizeof(errbuf))) == NULL)
		fail_msg("%s: %s", rel, errbuf);
	return c;
}

static void
test_go_example(void **state)
{
	struct config *c;
	char want[PATH_MAX + 32];
	const struct member_cfg *m;

	(void)state;
	/* This file has the trailing comma users copied from the Go docs. */
	c = load_file("tests/data/config/go-example.json", NULL);
	assert_string_equal(c->server, "http://localhost:5000");
	snprintf(want, sizeof(want), "%s/keys", tmpdir);
	assert_string_equal(c->key_dir, want);
	assert_string_equal(c->state_dir, CONFIG_DEFAULT_STATE_DIR);
	assert_int_equal(c->update_interval_ms, 10000);
	assert_int_equal(c->retries, 3);
	assert_int_equal(c->timeouts.request_ms, 5000);
	assert_int_equal(c->timeouts.erase_ms, 60000);
	assert_int_equal(c->timeouts.reboot_ms, 60000);
	assert_int_equal(c->timeouts.confirm_ms, 300000);
	assert_int_equal(c->timeouts.stall_ms, 60000);

	assert_int_equal(c->ndevices, 2);
	assert_string_equal(c->devices[0].name, "zephyr-ble");
	assert_string_equal(c->devices[0].id, "11:11:11:11:11:11");
	assert_string_equal(c->devices[0].dev_type, "zeph-ble");
	assert_int_equal(c->devices[0].update_interval_ms, 15000);
	assert_false(c->devices[0].self_confirm);
	assert_int_equal(c->devices[0].transport.type, TRANSPORT_BLE);
	assert_int_equal(c->devices[0].transport.device_index, 0);
	assert_string_equal(c->devices[0].transport.peer_name, "test0");
	snprintf(want, sizeof(want), "%s/keys/ble.key", tmpdir);
	assert_string_equal(c->devices[0].key_path, want);

	assert_true(c->devices[1].self_confirm);
	assert_int_equal(c->devices[1].update_interval_ms, 10000);
	assert_int_equal(c->devices[1].transport.type, TRANSPORT_SERIAL);
	assert_string_equal(c->devices[1].transport.device, "/dev/ttyACM0");
	assert_int_equal(c->devices[1].transport.baud, 115200);
	assert_int_equal(c->devices[1].transport.mtu, 128);

	assert_int_equal(c->ngroups, 1);
	assert_string_equal(c->groups[0].id, "gr1");
	assert_string_equal(c->groups[0].type, "group1");
	assert_int_equal(c->groups[0].update_interval_ms, 10000);
	assert_int_equal(c->groups[0].nmembers, 3);
	m = &c->groups[0].members[1];
	assert_string_equal(m->name, "udpr");
	assert_string_equal(m->device, "udp-right");
	assert_int_equal(m->transport.type, TRANSPORT_UDP);
	assert_string_equal(m->transport.address, "192.168.1.3:1337");
	assert_string_equal(m->transport.host, "192.168.1.3");
	assert_int_equal(m->transport.port, 1337);
	assert_true(c->groups[0].members[2].self_confirm);
	assert_string_equal(c->groups[0].members[2].transport.peer_name,
	                    "ble_head");
	config_free(c);
}

static void
test_etc_config(void **state)
{
	struct config *c;

	(void)state;
	c = load_file("etc/config.json", NULL);
	assert_string_equal(c->user, "rdfm-mcumgr");
	assert_string_equal(c->key_dir, "/var/lib/rdfm-mcumgr/keys");
	assert_int_equal(c->update_interval_ms, 15 * 60000);
	/* Per-device and per-group timeouts override only what they name. */
	assert_int_equal(c->devices[0].timeouts.reboot_ms, 60000);
	assert_int_equal(c->devices[1].timeouts.reboot_ms, 120000);
	assert_int_equal(c->devices[1].timeouts.request_ms, 5000);
	assert_int_equal(c->devices[1].update_interval_ms, 30 * 60000);
	assert_int_equal(c->groups[0].timeouts.confirm_ms, 600000);
	assert_int_equal(c->groups[0].timeouts.stall_ms, 60000);
	assert_int_equal(c->groups[0].update_interval_ms, 3600000);
	assert_string_equal(c->groups[0].members[1].transport.host, "fd00::3");
	assert_int_equal(c->groups[0].members[1].transport.port, 1337);
	assert_int_equal(c->devices[0].transport.mtu, 256);
	config_free(c);
}

static void
test_flags_override_file(void **state)
{
	struct config_overrides ov = {0};
	struct config *c;
	char want[PATH_MAX + 32];

	(void)state;
	ov.server = "https://other.test";
	ov.key_dir = "k2";
	ov.state_dir = "/srv/state";
	ov.retries = 7;
	ov.has_retries = true;
	ov.interval_ms = 42000;
	ov.has_interval = true;
	c = load_file("tests/data/config/go-example.json", &ov);
	assert_string_equal(c->server, "https://other.test");
	snprintf(want, sizeof(want), "%s/k2", tmpdir);
	assert_string_equal(c->key_dir, want);
	snprintf(want, sizeof(want), "%s/k2/serial.key", tmpdir);
	assert_string_equal(c->devices[1].key_path, want);
	assert_string_equal(c->state_dir, "/srv/state");
	assert_int_equal(c->retries, 7);
	assert_int_equal(c->update_interval_ms, 42000);
	/* A device's own interval still wins; the others take the flag's. */
	assert_int_equal(c->devices[0].update_interval_ms, 15000);
	assert_int_equal(c->devices[1].update_interval_ms, 42000);
	assert_int_equal(c->groups[0].update_interval_ms, 42000);
	config_free(c);

	/* retries 0 from a flag means unlimited, and beats the file's 3. */
	memset(&ov, 0, sizeof(ov));
	ov.has_retries = true;
	c = load_file("tests/data/config/go-example.json", &ov);
	assert_int_equal(c->retries, 0);
	config_free(c);

	/* A server given only as a flag is enough. */
	memset(&ov, 0, sizeof(ov));
	ov.server = "http://flag.test";
	c = load_str("{'key_dir':'k','devices':[" DEV(
	                 "a", "1", SERIAL("/dev/ttyS0")) "]}",
	             &ov);
	assert_non_null(c);
	assert_string_equal(c->server, "http://flag.test");
	config_free(c);
}

static void
test_search_order(void **state)
{
	char home[PATH_MAX + 16], homecfg[PATH_MAX + 64], *oldhome;
	struct config *c;

	(void)state;
	snprintf(home, sizeof(home), "%s/home", tmpdir);
	snprintf(homecfg, sizeof(homecfg), "%s/.config/rdfm-mcumgr", home);
	assert_int_equal(system("mkdir -p home/.config/rdfm-mcumgr"), 0);
	oldhome = getenv("HOME") != NULL ? strdup(getenv("HOME")) : NULL;
	setenv("HOME", home, 1);
	strcat(homecfg, "/config.json");
	write_cfg(homecfg, HDR "'devices':[" DEV("from-home", "1",
	                                         SERIAL("/dev/ttyS0")) "]}");
	c = config_load(NULL, NULL, errbuf, sizeof(errbuf));
	assert_non_null(c);
	assert_string_equal(c->devices[0].name, "from-home");
	assert_string_equal(c->path, homecfg);
	config_free(c);

	/* ./config.json comes first. */
	write_cfg(
	    "config.json",
	    HDR "'devices':[" DEV("from-cwd", "1", SERIAL("/dev/ttyS0")) "]}");
	c = config_load(NULL, NULL, errbuf, sizeof(errbuf));
	assert_non_null(c);
	assert_string_equal(c->devices[0].name, "from-cwd");
	config_free(c);
	unlink("config.json");
	unlink(homecfg);

	if (access("/etc/rdfm-mcumgr/config.json", F_OK) != 0) {
		assert_null(config_load(NULL, NULL, errbuf, sizeof(errbuf)));
		assert_non_null(strstr(errbuf, "no config file found"));
		assert_non_null(strstr(errbuf, "-c/--config"));
	}
	if (oldhome != NULL)
		setenv("HOME", oldhome, 1);
	free(oldhome);
}

static void
test_err_unreadable_file(void **state)
{
	char path[PATH_MAX + 32];

	(void)state;
	snprintf(path, sizeof(path), "%s/nope.json", tmpdir);
	assert_null(config_load(path, NULL, errbuf, sizeof(errbuf)));
	assert_non_null(strstr(errbuf, path));
	assert_non_null(strstr(errbuf, "cannot read: No such file"));
	assert_null(config_load(tmpdir, NULL, errbuf, sizeof(errbuf)));
	assert_non_null(strstr(errbuf, "not a regular file"));
}

static void
test_err_bad_json(void **state)
{
	char want[PATH_MAX + 64];

	(void)state;
	assert_null(load_str("{\n'server': 'x',\n'key_dir' 'k'\n}", NULL));
	snprintf(want, sizeof(want), "%s:3:", cfgpath);
	if (strstr(errbuf, want) == NULL || !strstr(errbuf, "invalid JSON"))
		fail_msg("\"%s\" lacks \"%s\"", errbuf, want);
	assert_null(load_str("{'server':'x'", NULL));
	assert_non_null(strstr(errbuf, "unexpected end of file"));
	assert_null(load_str("{} {}", NULL));
	assert_non_null(strstr(errbuf, "unexpected text after"));
	expect_error("[1,2]", "(top level)", "expected a JSON object");
}

static void
test_err_wrong_types(void **state)
{
	(void)state;
	expect_error(HDR "'retries':'3','devices':[" DEV(
	                 "a", "1", SERIAL("/dev/ttyS0")) "]}",
	             "retries", "expected an integer, found a string");
	expect_error(HDR "'retries':-1,'devices':[" DEV(
	                 "a", "1", SERIAL("/dev/ttyS0")) "]}",
	             "retries", "expected an integer from 0");
	expect_error(HDR "'devices':{}}", "devices",
	             "expected an array, found an object");
	expect_error(
	    HDR "'devices':[" DEV("a", "1",
	                          SERIAL("/dev/ttyS0")) ","
	                                                "{'name':'b','id':2}]}",
	    "devices[1].id", "expected a string");
	expect_error(HDR "'devices':[{'name':'a','id':'1','dev_type':'t',"
	                 "'key':'a.key','self_confirm':'yes'," SERIAL(
	                     "/dev/ttyS0") "}]}",
	             "devices[0].self_confirm", "expected true or false");
	expect_error(HDR "'devices':[" DEV(
	                 "a", "1",
	                 "'transport':{'type':'serial','device':'/dev/ttyS0',"
	                 "'baud':'115200'}") "]}",
	             "devices[0].transport.baud",
	             "expected an integer, found a string");
	expect_error(HDR "'devices':[" DEV(
	                 "a", "1",
	                 "'transport':{'type':'serial','device':'/dev/ttyS0',"
	                 "'mtu':12.5}") "]}",
	             "devices[0].transport.mtu", "expected an integer");
	expect_error(HDR "'devices':[" DEV("a", "1", "'transport':'udp'") "]}",
	             "devices[0].transport", "expected an object");
	expect_error(HDR "'devices':[42]}", "devices[0]", "expected an object");
	expect_error("{'server':'ftp://x','key_dir':'k','devices':[" DEV(
	                 "a", "1", SERIAL("/dev/ttyS0")) "]}",
	             "server", "not an http:// or https:// URL");
}

static void
test_err_unknown_transport(void **state)
{
	(void)state;
	expect_error(
	    HDR "'devices':[" DEV("a", "1", "'transport':{'type':'usb'}") "]}",
	    "devices[0].transport.type",
	    "unknown transport type \"usb\" (expected serial, udp or ble)");
}

static void
test_err_missing_keys(void **state)
{
	(void)state;
	expect_error("{'key_dir':'k','devices':[" DEV(
	                 "a", "1", SERIAL("/dev/ttyS0")) "]}",
	             "server", "missing");
	expect_error("{'server':'http://s','devices':[" DEV(
	                 "a", "1", SERIAL("/dev/ttyS0")) "]}",
	             "key_dir", "-k/--key-dir");
	expect_error(HDR
	             "'devices':[{'name':'a','dev_type':'t','key':'k'," SERIAL(
	                 "/dev/ttyS0") "}]}",
	             "devices[0].id", "missing: expected a string");
	expect_error(HDR "'devices':[{'name':'a','id':'1','key':'k'," SERIAL(
	                 "/dev/ttyS0") "}]}",
	             "devices[0].dev_type", "missing");
	expect_error(HDR "'devices':[{'name':'a','id':'1','dev_type':'t',"
	                 "'key':'k'}]}",
	             "devices[0].transport", "missing");
	expect_error(HDR "'devices':[" DEV(
	                 "a", "1", "'transport':{'type':'serial'}") "]}",
	             "devices[0].transport.device", "missing");
	expect_error(
	    HDR "'devices':[" DEV("a", "1", "'transport':{'type':'ble'}") "]}",
	    "devices[0].transport.peer_name", "missing");
	expect_error(HDR "'groups':[{'name':'g','id':'g','type':'t','key':'g',"
	                 "'members':[{'name':'m'," UDP("10.0.0.1:1") "}]}]}",
	             "groups[0].members[0].device", "missing");
	expect_error(HDR "'groups':[{'name':'g','id':'g','key':'g',"
	                 "'members':[{'name':'m','device':'d'," UDP(
	                     "10.0.0.1:1") "}]}]}",
	             "groups[0].type", "missing");
}

static void
test_err_duplicate_ids_names(void **state)
{
	(void)state;
	expect_error(HDR
	             "'devices':[" DEV("a", "1", SERIAL("/dev/ttyS0")) "," DEV(
	                 "b", "1", SERIAL("/dev/ttyS1")) "]}",
	             "devices[1].id", "already the id of devices[0].id");
	expect_error(HDR "'devices':[" DEV(
	                 "a", "1",
	                 SERIAL("/dev/ttyS0")) ","
	                                       "{'name':'a','id':'2','dev_type'"
	                                       ":'t','key':'b.key'," SERIAL(
	                                           "/dev/ttyS1") "}]}",
	             "devices[1].name", "already the name of devices[0].name");
	/* Devices and groups share the server's id space. */
	expect_error(
	    HDR "'devices':[" DEV(
	        "a", "1",
	        SERIAL(
	            "/dev/ttyS0")) "],"
	                           "'groups':[{'name':'g','id':'1','type':'t','"
	                           "key':'g',"
	                           "'members':[{'name':'m','device':'d'," UDP(
	                               "10.0.0.1:1") "}]}]}",
	    "groups[0].id", "already the id of devices[0].id");
	/* Two boards with one key would be one identity on the server. */
	expect_error(HDR "'devices':[" DEV(
	                 "a", "1",
	                 SERIAL("/dev/ttyS0")) ","
	                                       "{'name':'b','id':'2','dev_type'"
	                                       ":'t','key':'a.key'," SERIAL(
	                                           "/dev/ttyS1") "}]}",
	             "devices[1].key",
	             "already the key file of devices[0].key");
}

static void
test_err_same_link(void **state)
{
	(void)state;
	expect_error(HDR
	             "'devices':[" DEV("a", "1", SERIAL("/dev/ttyS0")) "," DEV(
	                 "b", "2", SERIAL("/dev/ttyS0")) "]}",
	             "devices[1].transport.device",
	             "the same serial device as devices[0].transport");
	expect_error(
	    HDR "'devices':[" DEV(
	        "a", "1",
	        UDP("10.0.0.1:1337")) "],"
	                              "'groups':[{'name':'g','id':'g','type':'"
	                              "t','key':'g',"
	                              "'members':[{'name':'m','device':'d'"
	                              "," UDP("10.0.0.1:1337") "}]}]}",
	    "groups[0].members[0].transport.address",
	    "the same UDP address as devices[0].transport");
	expect_error(HDR
	             "'devices':[" DEV("a", "1", UDP("Board.local:7")) "," DEV(
	                 "b", "2", UDP("board.LOCAL:7")) "]}",
	             "devices[1].transport.address", "the same UDP address");
}

static void
test_err_empty_devices_and_groups(void **state)
{
	(void)state;
	expect_error(HDR "'devices':[],'groups':[]}", "devices",
	             "no devices and no groups");
	expect_error("{'server':'http://s','key_dir':'k'}", "devices",
	             "no devices and no groups");
}

static void
test_err_group_without_members(void **state)
{
	(void)state;
	expect_error(HDR "'groups':[{'name':'g','id':'g','type':'t','key':'g',"
	                 "'members':[]}]}",
	             "groups[0].members",
	             "empty: expected an array of at least one");
	expect_error(HDR "'groups':[{'name':'g','id':'g','type':'t',"
	                 "'key':'g'}]}",
	             "groups[0].members", "missing");
}

static void
test_err_duplicate_member_device(void **state)
{
	(void)state;
	expect_error(
	    HDR "'groups':[{'name':'g','id':'g','type':'t','key':'g',"
	        "'members':[{'name':'m1','device':'d'," UDP(
	            "10.0.0.1:1") "},{'name':'m2','device':'d'," UDP("10.0.0.2:"
	                                                             "1") "}]}]"
	                                                                  "}",
	    "groups[0].members[1].device",
	    "already the image (device) name in this group of "
	    "groups[0].members[0].device");
}

static void
test_err_bad_duration(void **state)
{
	(void)state;
	expect_error(HDR "'update_interval':'10 minutes','devices':[" DEV(
	                 "a", "1", SERIAL("/dev/ttyS0")) "]}",
	             "update_interval", "is not a duration");
	expect_error(
	    HDR "'devices':[{'name':'a','id':'1','dev_type':'t',"
	        "'key':'a','update_interval':'15'," SERIAL("/dev/ttyS0") "}]}",
	    "devices[0].update_interval", "missing unit");
	expect_error(HDR "'timeouts':{'erase':'0s'},'devices':[" DEV(
	                 "a", "1", SERIAL("/dev/ttyS0")) "]}",
	             "timeouts.erase", "must be longer than 0");
	expect_error(HDR "'update_interval':10,'devices':[" DEV(
	                 "a", "1", SERIAL("/dev/ttyS0")) "]}",
	             "update_interval", "expected a duration string");
	expect_error(HDR "'groups':[{'name':'g','id':'g','type':'t','key':'g',"
	                 "'timeouts':{'confirm':'5x'},'members':[{'name':'m',"
	                 "'device':'d'," UDP("10.0.0.1:1") "}]}]}",
	             "groups[0].timeouts.confirm", "unknown unit");
}

static void
test_err_address_without_port(void **state)
{
	static const struct {
		const char *addr, *what;
	} cases[] = {
	    {"192.168.1.2", "has no port"},
	    {"192.168.1.2:", "has no port"},
	    {"[::1]", "has no port"},
	    {"::1:1337", "needs brackets"},
	    {"10.0.0.1:70000", "from 1 to 65535"},
	    {"10.0.0.1:0", "from 1 to 65535"},
	    {"10.0.0.1:12ab", "from 1 to 65535"},
	    {"[::g]:1", "not an IPv6 address"},
	    {"bad host:1", "not an IPv4 address or host name"},
	};
	char text[512];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text),
		         HDR
		         "'groups':[{'name':'g','id':'g','type':'t','key':'g',"
		         "'members':[{'name':'m','device':'d','transport':"
		         "{'type':'udp','address':'%s'}}]}]}",
		         cases[i].addr);
		expect_error(text, "groups[0].members[0].transport.address",
		             cases[i].what);
	}
}

static void
test_err_nonstandard_baud(void **state)
{
	(void)state;
	expect_error(HDR "'devices':[" DEV(
	                 "a", "1",
	                 "'transport':{'type':'serial','device':'/dev/ttyS0',"
	                 "'baud':12345}") "]}",
	             "devices[0].transport.baud",
	             "12345 is not a standard serial rate");
	expect_error(HDR "'devices':[" DEV(
	                 "a", "1",
	                 "'transport':{'type':'serial','device':'/dev/ttyS0',"
	                 "'baud':0}") "]}",
	             "devices[0].transport.baud", "expected an integer from 1");
}

static void
test_unknown_keys_warn(void **state)
{
	char cap[PATH_MAX + 32], *out;
	struct config *c;
	int saved;
	FILE *f;
	size_t n;

	(void)state;
	snprintf(cap, sizeof(cap), "%s/stderr.txt", tmpdir);
	f = fopen(cap, "w+");
	assert_non_null(f);
	fflush(stderr);
	saved = dup(2);
	dup2(fileno(f), 2);
	c = load_str(HDR "'colour':'blue','devices':[{'name':'a','id':'1',"
	                 "'device_type':'alias','key':'a',"
	                 "'transport':{'type':'serial','device':'/dev/ttyS0',"
	                 "'parity':'none'}}]}",
	             NULL);
	dup2(saved, 2);
	close(saved);
	assert_non_null(c);
	/* device_type is the Go documentation's spelling of dev_type. */
	assert_string_equal(c->devices[0].dev_type, "alias");
	config_free(c);
	out = calloc(1, 8192);
	rewind(f);
	n = fread(out, 1, 8191, f);
	out[n] = '\0';
	fclose(f);
	assert_non_null(strstr(out, "level=WARN"));
	assert_non_null(strstr(out, "key=\"colour\""));
	assert_non_null(strstr(out, "key=\"devices[0].transport.parity\""));
	free(out);
}

/*
 * What a reload compares: the same entry loaded twice is equal; any one
 * value that differs (transport, interval, inherited timeouts, a member)
 * makes it a changed entry.
 */
static void
test_entries_equal(void **state)
{
	const char *base = HDR "'devices':[" DEV(
	    "a", "1",
	    SERIAL("/dev/ttyS0")) "],"
	                          "'groups':[{'name':'g','id':'2','type':'gt','"
	                          "key':'g',"
	                          "'members':[{'name':'m','device':'m'," UDP(
	                              "10.0.0.1:1337") "}]}]}";
	struct {
		const char *text;
		bool dev_equal, grp_equal;
	} cases[] = {
	    {HDR "'devices':[" DEV(
	         "a", "1",
	         SERIAL(
	             "/dev/ttyS0")) "],"
	                            "'groups':[{'name':'g','id':'2','type':'gt'"
	                            ",'key':'g',"
	                            "'members':[{'name':'m','device':'m'," UDP(
	                                "10.0.0.1:1337") "}]}]}",
	     true, true},
	    {HDR "'devices':[" DEV(
	         "a", "1",
	         SERIAL(
	             "/dev/ttyS1")) "],"
	                            "'groups':[{'name':'g','id':'2','type':'gt'"
	                            ",'key':'g',"
	                            "'members':[{'name':'m','device':'m'," UDP(
	                                "10.0.0.1:1338") "}]}]}",
	     false, false},
	    {HDR "'update_interval':'1m','devices':[" DEV(
	         "a", "1",
	         SERIAL(
	             "/dev/ttyS0")) "],"
	                            "'groups':[{'name':'g','id':'2','type':'gt'"
	                            ",'key':'g',"
	                            "'members':[{'name':'m','device':'m'," UDP(
	                                "10.0.0.1:1337") "}]}]}",
	     false, false},
	    {HDR "'timeouts':{'reboot':'2m'},'devices':[" DEV(
	         "a", "1",
	         SERIAL("/dev/ttyS0")) "],"
	                               "'groups':[{'name':'g','id':'2','type':'"
	                               "gt','key':'g',"
	                               "'members':[{'name':'m','device':'m','"
	                               "self_confirm':true," UDP(
	                                   "10.0.0.1:1337") "}]}]}",
	     false, false},
	    {HDR "'retries':7,'devices':[{'name':'a','id':'1','dev_type':'t',"
	         "'key':'a.key','self_confirm':true," SERIAL(
	             "/dev/ttyS0") "}],"
	                           "'groups':[{'name':'g','id':'2','type':'gt',"
	                           "'key':'g',"
	                           "'members':[{'name':'m','device':'m'," UDP(
	                               "10.0.0.1:1337") "}]}]}",
	     false, true},
	};
	struct config *a, *b;
	size_t i;

	(void)state;
	assert_non_null(a = load_str(base, NULL));
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_non_null(b = load_str(cases[i].text, NULL));
		assert_int_equal(
		    device_cfg_equal(&a->devices[0], &b->devices[0]),
		    cases[i].dev_equal);
		assert_int_equal(group_cfg_equal(&a->groups[0], &b->groups[0]),
		                 cases[i].grp_equal);
		config_free(b);
	}
	config_free(a);
}

/*
 * A reload keeps the running values of keys that need a restart (and
 * nothing else): the new config carries them, each change warned about.
 */
static void
test_keep_restart_only(void **state)
{
	struct config *run, *next;

	(void)state;
	assert_non_null(
	    run = load_str(
	        HDR "'state_dir':'/var/a','retries':1,"
	            "'spool_max_bytes':2000000,'metrics':'127.0.0.1:1',"
	            "'devices':[" DEV("a", "1", SERIAL("/dev/ttyS0")) "]}",
	        NULL));
	assert_non_null(
	    next = load_str(
	        HDR "'state_dir':'/var/b','retries':5,"
	            "'spool_max_bytes':3000000,"
	            "'devices':[" DEV("a", "1", SERIAL("/dev/ttyS0")) "]}",
	        NULL));
	config_keep_restart_only(run, next);
	assert_string_equal(next->state_dir, "/var/a");
	assert_string_equal(next->metrics, "127.0.0.1:1");
	assert_int_equal(next->spool_max_bytes, 2000000);
	/* Everything else is the new config's. */
	assert_int_equal(next->retries, 5);
	/* The running config keeps valid strings of its own to free. */
	assert_string_equal(run->state_dir, "/var/b");
	assert_null(run->metrics);
	config_free(run);
	config_free(next);
}

/* Load text with the report interface; the report stays for inspection. */
static struct config_report rep;

static struct config *
load_report(const char *text)
{
	write_cfg(cfgpath, text);
	config_report_free(&rep);
	return config_load_report(cfgpath, NULL, &rep);
}

/* The report has an error at keypath whose message contains what. */
static void
expect_in_report(const struct config_issue *v, size_t n, const char *keypath,
                 const char *what)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (v[i].keypath != NULL &&
		    strcmp(v[i].keypath, keypath) == 0 &&
		    strstr(v[i].msg, what) != NULL)
			return;
	for (i = 0; i < n; i++)
		print_message("  have %s: %s\n",
		              v[i].keypath != NULL ? v[i].keypath : "-",
		              v[i].msg);
	fail_msg("no issue at %s with \"%s\"", keypath, what);
}

/* One run lists every error, in the order of the file, one per line. */
static void
test_every_error_listed(void **state)
{
	struct config *c;
	char err[4096], *line;

	(void)state;
	c = load_report("{'server':'ftp://x','retries':-1,'devices':["
	                "{'name':'a','dev_type':'t','key':'a.key',"
	                "'transport':{'type':'serial','device':'/dev/ttyS0',"
	                "'baud':115201}},"
	                "{'name':'b','id':'2','dev_type':'t','key':'../b.key',"
	                "'transport':{'type':'udp','address':'127.0.0.1'}}]}");
	assert_null(c);
	expect_in_report(rep.errors, rep.nerrors, "retries",
	                 "expected an integer from 0");
	expect_in_report(rep.errors, rep.nerrors, "server",
	                 "not an http:// or https:// URL");
	expect_in_report(rep.errors, rep.nerrors, "key_dir", "missing");
	expect_in_report(rep.errors, rep.nerrors, "devices[0].id", "missing");
	expect_in_report(rep.errors, rep.nerrors, "devices[0].transport.baud",
	                 "115201 is not a standard serial rate");
	expect_in_report(rep.errors, rep.nerrors, "devices[1].key",
	                 "is not a file name");
	expect_in_report(rep.errors, rep.nerrors,
	                 "devices[1].transport.address", "has no port");
	assert_int_equal(rep.nerrors, 7);
	line = config_issue_line(&rep.errors[0]);
	assert_non_null(strstr(line, cfgpath));
	free(line);

	/* The one-message interface carries them all, one per line. */
	write_cfg(
	    cfgpath,
	    "{'server':'ftp://x','retries':-1,'key_dir':'k','devices':[]}");
	assert_null(config_load(cfgpath, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "retries: expected"));
	assert_non_null(strstr(err, "\n"));
	assert_non_null(strstr(err, "server: \"ftp://x\""));
}

/* A wrong value is not "missing" as well. */
static void
test_no_knock_on_errors(void **state)
{
	(void)state;
	assert_null(load_report("{'server':5,'key_dir':'k','devices':[" DEV(
	    "a", "1", SERIAL("/dev/ttyS0")) "]}"));
	assert_int_equal(rep.nerrors, 1);
	expect_in_report(rep.errors, rep.nerrors, "server",
	                 "expected a string");
	assert_null(load_report(HDR "'devices':5}"));
	assert_int_equal(rep.nerrors, 1);
}

/* A hostile config with thousands of errors: bounded, and it says so. */
static void
test_error_cap(void **state)
{
	char *text, *p;
	size_t i, n = 500;

	(void)state;
	text = malloc(n * 64 + 256);
	p = text + sprintf(text, HDR "'devices':[");
	for (i = 0; i < n; i++)
		p += sprintf(p, "%s{'name':5}", i ? "," : "");
	strcpy(p, "]}");
	assert_null(load_report(text));
	free(text);
	assert_int_equal(rep.nerrors, CONFIG_MAX_ERRORS);
	assert_non_null(
	    strstr(rep.errors[rep.nerrors - 1].msg, "more errors not listed"));
}

static void
test_did_you_mean(void **state)
{
	struct config *c;

	(void)state;
	c = load_report("{'sever':'http://s','server':'http://s','key_dir':'k',"
	                "'upate_interval':'1m','devices':[{'name':'a','id':'1',"
	                "'dev_type':'t','key':'a','selfconfirm':true,"
	                "'transport':{'type':'serial','device':'/dev/ttyS0',"
	                "'baudrate':9600,'address':'x:1'}}]}");
	assert_non_null(c);
	config_free(c);
	expect_in_report(rep.warnings, rep.nwarnings, "sever",
	                 "did you mean \"server\"?");
	expect_in_report(rep.warnings, rep.nwarnings, "upate_interval",
	                 "did you mean \"update_interval\"?");
	expect_in_report(rep.warnings, rep.nwarnings, "devices[0].selfconfirm",
	                 "did you mean \"self_confirm\"?");
	expect_in_report(rep.warnings, rep.nwarnings,
	                 "devices[0].transport.baudrate",
	                 "did you mean \"baud\"?");
	expect_in_report(rep.warnings, rep.nwarnings,
	                 "devices[0].transport.address",
	                 "belongs to the udp transport");
	/* Nothing close: no guess. */
	c = load_report(HDR "'colour':'blue','devices':[" DEV(
	    "a", "1", SERIAL("/dev/ttyS0")) "]}");
	assert_non_null(c);
	config_free(c);
	assert_int_equal(rep.nwarnings, 1);
	assert_null(strstr(rep.warnings[0].msg, "did you mean"));
}

static void
test_err_key_outside_key_dir(void **state)
{
	static const char *const bad[] = {"../../x", "sub/dev.key", "/abs.key",
	                                  "..", "."};
	struct config *c;
	char text[512];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text),
		         HDR "'devices':[{'name':'a','id':'1','dev_type':'t',"
		             "'key':'%s'," SERIAL("/dev/ttyS0") "}]}",
		         bad[i]);
		expect_error(text, "devices[0].key", "is not a file name");
	}
	expect_error(HDR
	             "'groups':[{'name':'g','id':'g','type':'t',"
	             "'key':'../g','members':[{'name':'m','device':'d'," UDP(
	                 "10.0.0.1:1") "}]}]}",
	             "groups[0].key", "without '/' or \"..\"");
	/* Dots inside a name are fine. */
	assert_non_null(
	    c = load_report(HDR "'devices':[{'name':'a','id':'1',"
	                        "'dev_type':'t','key':'a..b.key'," SERIAL(
	                            "/dev/ttyS0") "}]}"));
	config_free(c);
}

/* A group of n members on distinct UDP addresses. */
static char *
group_of(int n)
{
	char *text = malloc(8192), *p;
	int i;

	p = text + sprintf(text, HDR "'groups':[{'name':'g','id':'g','type':"
	                             "'t','key':'g','members':[");
	for (i = 0; i < n; i++)
		p +=
		    sprintf(p,
		            "%s{'name':'m%d','device':'d%d','transport':{'type'"
		            ":'udp','address':'10.0.0.%d:1337'}}",
		            i ? "," : "", i, i, i + 1);
	strcpy(p, "]}]}");
	return text;
}

static void
test_err_too_many_members(void **state)
{
	char *text;

	(void)state;
	text = group_of(CONFIG_MAX_MEMBERS + 1);
	expect_error(text, "groups[0].members", "33 members: at most 32");
	free(text);
	text = group_of(CONFIG_MAX_MEMBERS);
	config_free(load_report(text));
	assert_int_equal(rep.nerrors, 0);
	free(text);
}

static void
test_download_limits(void **state)
{
	struct config *c;

	(void)state;
	c = load_report(HDR
	                "'devices':[" DEV("a", "1", SERIAL("/dev/ttyS0")) "]}");
	assert_int_equal(c->download_min_rate,
	                 CONFIG_DEFAULT_DOWNLOAD_MIN_RATE);
	assert_int_equal(c->download_grace_ms,
	                 CONFIG_DEFAULT_DOWNLOAD_GRACE_MS);
	config_free(c);
	c = load_report(HDR
	                "'download_min_rate':4096,'download_grace':'10s',"
	                "'devices':[" DEV("a", "1", SERIAL("/dev/ttyS0")) "]}");
	assert_int_equal(c->download_min_rate, 4096);
	assert_int_equal(c->download_grace_ms, 10000);
	config_free(c);
	expect_error(HDR "'download_min_rate':0,'devices':[" DEV(
	                 "a", "1", SERIAL("/dev/ttyS0")) "]}",
	             "download_min_rate", "expected an integer from 1");
}

/* $XDG_CONFIG_HOME comes before ~/.config, as os.UserConfigDir() does. */
static void
test_search_xdg(void **state)
{
	char xdg[PATH_MAX + 16], cfg[PATH_MAX + 64], *oldhome, *oldxdg;
	struct config *c;

	(void)state;
	snprintf(xdg, sizeof(xdg), "%s/xdg", tmpdir);
	snprintf(cfg, sizeof(cfg), "%s/rdfm-mcumgr/config.json", xdg);
	assert_int_equal(system("mkdir -p xdg/rdfm-mcumgr "
	                        "xhome/.config/rdfm-mcumgr"),
	                 0);
	oldhome = getenv("HOME") != NULL ? strdup(getenv("HOME")) : NULL;
	oldxdg = getenv("XDG_CONFIG_HOME") != NULL
	             ? strdup(getenv("XDG_CONFIG_HOME"))
	             : NULL;
	write_cfg(cfg, HDR "'devices':[" DEV("from-xdg", "1",
	                                     SERIAL("/dev/ttyS0")) "]}");
	write_cfg(
	    "xhome/.config/rdfm-mcumgr/config.json",
	    HDR "'devices':[" DEV("from-home", "1", SERIAL("/dev/ttyS0")) "]}");
	snprintf(cfg, sizeof(cfg), "%s/xhome", tmpdir);
	setenv("HOME", cfg, 1);
	setenv("XDG_CONFIG_HOME", xdg, 1);
	c = config_load(NULL, NULL, errbuf, sizeof(errbuf));
	assert_non_null(c);
	assert_string_equal(c->devices[0].name, "from-xdg");
	config_free(c);
	/* Without it (or relative, which the spec ignores): ~/.config. */
	setenv("XDG_CONFIG_HOME", "xdg", 1);
	c = config_load(NULL, NULL, errbuf, sizeof(errbuf));
	assert_non_null(c);
	assert_string_equal(c->devices[0].name, "from-home");
	config_free(c);
	if (oldhome != NULL)
		setenv("HOME", oldhome, 1);
	if (oldxdg != NULL)
		setenv("XDG_CONFIG_HOME", oldxdg, 1);
	else
		unsetenv("XDG_CONFIG_HOME");
	free(oldhome);
	free(oldxdg);
}

/* The checks `smp` shares, with the config's messages. */
static void
test_public_validators(void **state)
{
	char why[512], *host;
	int port;

	(void)state;
	assert_int_equal(config_check_baud(115200, why, sizeof(why)), 0);
	assert_int_equal(config_check_baud(115201, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "115201 is not a standard serial rate"));
	assert_non_null(strstr(why, "921600"));
	assert_int_equal(config_check_mtu(31, why, sizeof(why)), -1);
	assert_int_equal(config_check_mtu(256, why, sizeof(why)), 0);
	assert_int_equal(config_split_address("127.0.0.1", 1, &host, &port, why,
	                                      sizeof(why)),
	                 -1);
	assert_null(host);
	assert_non_null(strstr(why, "has no port"));
	assert_int_equal(config_split_address("[::1]:1337", 1, &host, &port,
	                                      why, sizeof(why)),
	                 0);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 1337);
	free(host);
	assert_int_equal(config_check_key_name("a/b", why, sizeof(why)), -1);
	assert_int_equal(config_check_key_name("a.key", why, sizeof(why)), 0);
}

/* A serial device must be a terminal; checked with stat(), never opened. */
static void
test_serial_device_check(void **state)
{
	char why[PATH_MAX + 256];
	bool absent;
	int ptm;

	(void)state;
	assert_int_equal(
	    config_check_serial_device("/dev/null", &absent, why, sizeof(why)),
	    -1);
	if (access("/sys/dev/char", F_OK) == 0)
		assert_non_null(
		    strstr(why, "a mem device (1:3), not a terminal"));
	assert_int_equal(
	    config_check_serial_device(cfgpath, &absent, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "is a regular file, not a serial device"));
	assert_int_equal(
	    config_check_serial_device(tmpdir, &absent, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "is a directory"));
	assert_int_equal(
	    config_check_serial_device("/dev/tty", &absent, why, sizeof(why)),
	    -1);
	assert_non_null(strstr(why, "not a serial line"));
	assert_int_equal(config_check_serial_device("/dev/ttyACM-none", &absent,
	                                            why, sizeof(why)),
	                 0);
	assert_true(absent);
	/* A pseudo-terminal (the virtual board's serial link) is fine. */
	ptm = posix_openpt(O_RDWR | O_NOCTTY);
	assert_true(ptm >= 0);
	assert_int_equal(grantpt(ptm), 0);
	assert_int_equal(unlockpt(ptm), 0);
	assert_int_equal(
	    config_check_serial_device(ptsname(ptm), &absent, why, sizeof(why)),
	    0);
	assert_false(absent);
	close(ptm);
	/* A real UART node is a tty in sysfs, whether or not one is fitted. */
	if (access("/dev/ttyS0", F_OK) == 0 &&
	    access("/sys/dev/char", F_OK) == 0)
		assert_int_equal(config_check_serial_device(
		                     "/dev/ttyS0", &absent, why, sizeof(why)),
		                 0);
}

/* Host checks: what a start would trip over, every one in one report. */
static void
test_host_checks(void **state)
{
	char text[4 * PATH_MAX + 1024], ca[PATH_MAX + 64],
	    notpem[PATH_MAX + 32], stfile[PATH_MAX + 32];
	struct config *c;
	FILE *f;

	(void)state;
	snprintf(ca, sizeof(ca), "%s/tests/data/config/ca.pem", srcdir);
	snprintf(notpem, sizeof(notpem), "%s/notpem", tmpdir);
	snprintf(stfile, sizeof(stfile), "%s/statefile", tmpdir);
	f = fopen(notpem, "w");
	fputs("hello\n", f);
	fclose(f);
	f = fopen(stfile, "w");
	fclose(f);

	/* A good one: no errors. */
	snprintf(text, sizeof(text),
	         HDR "'state_dir':'%s/st/new','ca_file':'%s',"
	             "'metrics':'localhost:0','devices':[" DEV(
	                 "a", "1", SERIAL("/dev/ttyACM-none")) "]}",
	         tmpdir, ca);
	assert_non_null(c = load_report(text));
	assert_int_equal(config_check_host(c, &rep), 0);
	/* The absent serial device is a warning only. */
	expect_in_report(rep.warnings, rep.nwarnings,
	                 "devices[0].transport.device", "does not exist now");
	config_free(c);

	snprintf(
	    text, sizeof(text),
	    HDR "'user':'no-such-user-here','state_dir':'%s',"
	        "'ca_file':'%s','metrics':'8.8.8.8:9464',"
	        "'devices':[" DEV(
	            "a", "1",
	            SERIAL("/dev/null")) "],"
	                                 "'groups':[{'name':'g','id':'g','type'"
	                                 ":'t','key':'g',"
	                                 "'members':[{'name':'m','device':'d','"
	                                 "transport':"
	                                 "{'type':'serial','device':'%s'}}]}]}",
	    stfile, notpem, notpem);
	assert_non_null(c = load_report(text));
	assert_int_equal(config_check_host(c, &rep), geteuid() == 0 ? 6 : 5);
	if (geteuid() == 0)
		expect_in_report(rep.errors, rep.nerrors, "user",
		                 "no user \"no-such-user-here\"");
	else
		expect_in_report(rep.warnings, rep.nwarnings, "user",
		                 "no user \"no-such-user-here\"");
	expect_in_report(rep.errors, rep.nerrors, "ca_file",
	                 "holds no PEM certificate");
	expect_in_report(rep.errors, rep.nerrors, "state_dir",
	                 "is a regular file (expected a directory");
	expect_in_report(rep.errors, rep.nerrors, "metrics",
	                 "is not a loopback address");
	expect_in_report(rep.errors, rep.nerrors, "devices[0].transport.device",
	                 "not a terminal");
	expect_in_report(rep.errors, rep.nerrors,
	                 "groups[0].members[0].transport.device",
	                 "is a regular file, not a serial device");
	config_free(c);

	/* The group member's regular file, a CA directory, a journal file. */
	snprintf(text, sizeof(text), "mkdir -p %s/st2 && touch %s/st2/journal",
	         tmpdir, tmpdir);
	assert_int_equal(system(text), 0);
	snprintf(text, sizeof(text),
	         HDR "'state_dir':'%s/st2','ca_file':'%s',"
	             "'groups':[{'name':'g','id':'g','type':'t','key':'g',"
	             "'members':[{'name':'m','device':'d','transport':"
	             "{'type':'serial','device':'%s'}}]}]}",
	         tmpdir, tmpdir, notpem);
	assert_non_null(c = load_report(text));
	assert_int_equal(config_check_host(c, &rep), 3);
	expect_in_report(rep.errors, rep.nerrors, "ca_file", "is a directory");
	expect_in_report(rep.errors, rep.nerrors, "state_dir",
	                 "st2/journal\" is a regular file");
	expect_in_report(rep.errors, rep.nerrors,
	                 "groups[0].members[0].transport.device",
	                 "is a regular file, not a serial device");
	config_free(c);

	/* A directory that cannot be created under a file. */
	snprintf(text, sizeof(text),
	         "{'server':'http://s','key_dir':'%s/k','state_dir':'%s/x/y',"
	         "'devices':[" DEV("a", "1", SERIAL("/dev/ttyS0")) "]}",
	         stfile, stfile);
	assert_non_null(c = load_report(text));
	assert_int_equal(config_check_host(c, &rep), 2);
	expect_in_report(rep.errors, rep.nerrors, "key_dir", "cannot create");
	expect_in_report(rep.errors, rep.nerrors, "state_dir", "cannot create");
	config_free(c);
	config_report_free(&rep);
}

static int
setup(void **state)
{
	const char *src = getenv("SRC");

	(void)state;
	log_init(0, NULL);
	if (realpath(src != NULL ? src : ".", srcdir) == NULL ||
	    mkdtemp(tmpdir) == NULL || chdir(tmpdir) == -1)
		return -1;
	/* Relative paths resolve against the working directory. */
	snprintf(cfgpath, sizeof(cfgpath), "%s/cfg.json", tmpdir);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[256];

	(void)state;
	if (chdir("/") == -1)
		return -1;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_go_example),
	    cmocka_unit_test(test_etc_config),
	    cmocka_unit_test(test_flags_override_file),
	    cmocka_unit_test(test_search_order),
	    cmocka_unit_test(test_err_unreadable_file),
	    cmocka_unit_test(test_err_bad_json),
	    cmocka_unit_test(test_err_wrong_types),
	    cmocka_unit_test(test_err_unknown_transport),
	    cmocka_unit_test(test_err_missing_keys),
	    cmocka_unit_test(test_err_duplicate_ids_names),
	    cmocka_unit_test(test_err_same_link),
	    cmocka_unit_test(test_err_empty_devices_and_groups),
	    cmocka_unit_test(test_err_group_without_members),
	    cmocka_unit_test(test_err_duplicate_member_device),
	    cmocka_unit_test(test_err_bad_duration),
	    cmocka_unit_test(test_err_address_without_port),
	    cmocka_unit_test(test_err_nonstandard_baud),
	    cmocka_unit_test(test_unknown_keys_warn),
	    cmocka_unit_test(test_entries_equal),
	    cmocka_unit_test(test_keep_restart_only),
	    cmocka_unit_test(test_every_error_listed),
	    cmocka_unit_test(test_no_knock_on_errors),
	    cmocka_unit_test(test_error_cap),
	    cmocka_unit_test(test_did_you_mean),
	    cmocka_unit_test(test_err_key_outside_key_dir),
	    cmocka_unit_test(test_err_too_many_members),
	    cmocka_unit_test(test_download_limits),
	    cmocka_unit_test(test_search_xdg),
	    cmocka_unit_test(test_public_validators),
	    cmocka_unit_test(test_serial_device_check),
	    cmocka_unit_test(test_host_checks),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
