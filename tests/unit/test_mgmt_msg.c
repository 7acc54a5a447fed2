/*
 * The management channel's pure parts: every server message class and
 * every refusal, the messages we write (as the server's validator reads
 * them), the path and upload URL rules of issue 15 item 8, percentages,
 * the backoff, the shell's line editor, and the WebSocket handshake's
 * checks (ws.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "log.h"
#include "supervisor/mgmt_msg.h"
#include "supervisor/ws.h"

static char why[256];

static int
parse(const char *s, struct mgmt_msg *m)
{
	why[0] = '\0';
	return mgmt_msg_parse(s, strlen(s), m, why, sizeof(why));
}

static void
expect_refused(const char *s, const char *what)
{
	struct mgmt_msg m;

	if (parse(s, &m) == 0) {
		mgmt_msg_free(&m);
		fail_msg("accepted: %s", s);
	}
	if (strstr(why, what) == NULL)
		fail_msg("reason \"%s\" lacks \"%s\" for %s", why, what, s);
}

static void
test_parse_classes(void **state)
{
	struct mgmt_msg m;

	(void)state;
	assert_int_equal(
	    parse(
	        "{\"method\":\"alert\",\"alert\":{\"message\":\"connected\"}}",
	        &m),
	    0);
	assert_int_equal(m.method, MGMT_M_ALERT);
	assert_string_equal(m.alert, "connected");
	mgmt_msg_free(&m);

	assert_int_equal(parse(" {\"method\":\"action_list_query\"}\n", &m), 0);
	assert_int_equal(m.method, MGMT_M_ACTION_LIST_QUERY);
	mgmt_msg_free(&m);

	/* Field order and unknown fields do not matter. */
	assert_int_equal(parse("{\"action_id\":\"rdfm.mcumgr.echo\",\"x\":1,"
	                       "\"execution_id\":\"e-1\",\"method\":"
	                       "\"action_exec\"}",
	                       &m),
	                 0);
	assert_int_equal(m.method, MGMT_M_ACTION_EXEC);
	assert_string_equal(m.execution_id, "e-1");
	assert_string_equal(m.action_id, "rdfm.mcumgr.echo");
	mgmt_msg_free(&m);

	assert_int_equal(parse("{\"method\":\"shell_attach\",\"mac_addr\":"
	                       "\"aa:bb\",\"uuid\":\"u\"}",
	                       &m),
	                 0);
	assert_int_equal(m.method, MGMT_M_SHELL_ATTACH);
	assert_string_equal(m.mac, "aa:bb");
	mgmt_msg_free(&m);

	assert_int_equal(parse("{\"method\":\"fs_file_probe\",\"id\":\"p\","
	                       "\"file\":\"/lfs/a\"}",
	                       &m),
	                 0);
	assert_int_equal(m.method, MGMT_M_FS_PROBE);
	assert_string_equal(m.file, "/lfs/a");
	mgmt_msg_free(&m);

	assert_int_equal(
	    parse("{\"method\":\"fs_file_download\",\"id\":\"d\",\"file\":"
	          "\"/lfs/a\",\"upload_urls\":[\"http://h/1\",\"http://h/2\"],"
	          "\"part_size\":5}",
	          &m),
	    0);
	assert_int_equal(m.method, MGMT_M_FS_DOWNLOAD);
	assert_int_equal(m.nurls, 2);
	assert_string_equal(m.urls[1], "http://h/2");
	assert_int_equal(m.part_size, 5);
	mgmt_msg_free(&m);

	/* An unknown method parses; the caller decides. */
	assert_int_equal(parse("{\"method\":\"fs_file_delete\"}", &m), 0);
	assert_int_equal(m.method, MGMT_M_UNKNOWN);
	assert_string_equal(m.name, "fs_file_delete");
	mgmt_msg_free(&m);
}

static void
test_parse_refusals(void **state)
{
	char big[300];

	(void)state;
	expect_refused("", "not JSON");
	expect_refused("{\"method\":", "not JSON");
	expect_refused("[1]", "not a JSON object");
	expect_refused("42", "not a JSON object");
	expect_refused("{\"method\":\"alert\"} x", "after the JSON");
	expect_refused("{\"m\":1}", "no \"method\"");
	expect_refused("{\"method\":5}", "no \"method\"");
	expect_refused("{\"method\":\"action_exec\",\"action_id\":\"a\"}",
	               "no \"execution_id\"");
	expect_refused("{\"method\":\"action_exec\",\"execution_id\":1,"
	               "\"action_id\":\"a\"}",
	               "not a string");
	expect_refused("{\"method\":\"action_exec\",\"execution_id\":\"\","
	               "\"action_id\":\"a\"}",
	               "empty or longer");
	expect_refused("{\"method\":\"action_exec\",\"execution_id\":\"a\\nb\","
	               "\"action_id\":\"a\"}",
	               "not allowed");
	expect_refused("{\"method\":\"action_exec\",\"execution_id\":\"a\\u0000"
	               "b\",\"action_id\":\"a\"}",
	               "not allowed");
	memset(big, 'x', sizeof(big));
	snprintf(big, sizeof(big),
	         "{\"method\":\"action_exec\",\"action_id\":\"a\","
	         "\"execution_id\":\"%0200d\"}",
	         0);
	expect_refused(big, "longer than 128");
	expect_refused("{\"method\":\"shell_attach\",\"uuid\":\"u\"}",
	               "no \"mac_addr\"");
	expect_refused("{\"method\":\"fs_file_probe\",\"id\":\"p\"}",
	               "no \"file\"");
	expect_refused("{\"method\":\"fs_file_download\",\"id\":\"d\",\"file\":"
	               "\"/a\",\"upload_urls\":null,\"part_size\":5}",
	               "\"upload_urls\" is not an array");
	expect_refused("{\"method\":\"fs_file_download\",\"id\":\"d\",\"file\":"
	               "\"/a\",\"upload_urls\":[1],\"part_size\":5}",
	               "not a string");
	expect_refused("{\"method\":\"fs_file_download\",\"id\":\"d\",\"file\":"
	               "\"/a\",\"upload_urls\":[],\"part_size\":0}",
	               "part_size");
	expect_refused("{\"method\":\"fs_file_download\",\"id\":\"d\",\"file\":"
	               "\"/a\",\"upload_urls\":[],\"part_size\":2.5}",
	               "part_size");
	/* Invalid UTF-8 inside a string. */
	expect_refused("{\"method\":\"alert\",\"x\":\"\xff\"}", "not JSON");
}

static void
test_encoders(void **state)
{
	static const char *const argv[] = {"kernel", "uptime"};
	struct mgmt_action_desc a[2] = {
	    {"rdfm.mcumgr.echo", "Echo", "d", NULL, 0, 0},
	    {"up", "Uptime", "", argv, 2, 2.5},
	};
	char *etags[] = {"\"e1\"", "e2"};
	char *s;

	(void)state;
	s = mgmt_enc_capabilities(true, false, true);
	assert_string_equal(
	    s, "{\"method\":\"capability_report\",\"capabilities\":{\"action\":"
	       "true,\"shell\":false,\"filesystem\":true,\"update_progress\":"
	       "true}}");
	free(s);
	s = mgmt_enc_action_list(a, 2);
	assert_string_equal(
	    s, "{\"method\":\"action_list_update\",\"actions\":[{\"action_id\":"
	       "\"rdfm.mcumgr.echo\",\"action_name\":\"Echo\",\"description\":"
	       "\"d\",\"command\":[],\"timeout\":0.0},{\"action_id\":\"up\","
	       "\"action_name\":\"Uptime\",\"description\":\"\",\"command\":"
	       "[\"kernel\",\"uptime\"],\"timeout\":2.5}]}");
	free(s);
	s = mgmt_enc_action_list(a, 0);
	assert_string_equal(
	    s, "{\"method\":\"action_list_update\",\"actions\":[]}");
	free(s);
	s = mgmt_enc_exec_control("e", false);
	assert_string_equal(s, "{\"method\":\"action_exec_control\","
	                       "\"execution_id\":\"e\",\"status\":\"full\"}");
	free(s);
	s = mgmt_enc_exec_result("e", 0, "hello\n", 6);
	assert_string_equal(s, "{\"method\":\"action_exec_result\","
	                       "\"execution_id\":\"e\",\"status_code\":0,"
	                       "\"output\":\"aGVsbG8K\"}");
	free(s);
	s = mgmt_enc_exec_result("e", -1, "ab", 2);
	assert_non_null(strstr(s, "\"output\":\"YWI=\""));
	free(s);
	s = mgmt_enc_exec_result("e", 1, "", 0);
	assert_non_null(strstr(s, "\"output\":\"\""));
	free(s);
	s = mgmt_enc_progress(42);
	assert_string_equal(s,
	                    "{\"method\":\"update_progress\",\"progress\":42}");
	free(s);
	s = mgmt_enc_version("1.2.3+4");
	assert_string_equal(
	    s, "{\"method\":\"update_version\",\"version\":\"1.2.3+4\"}");
	free(s);
	s = mgmt_enc_probe_reply("p", 0, 5000000000ULL);
	assert_string_equal(s, "{\"method\":\"fs_file_probe_reply\",\"id\":"
	                       "\"p\",\"status\":0,\"size\":5000000000}");
	free(s);
	s = mgmt_enc_download_reply("d", 0, etags, 2);
	assert_string_equal(s, "{\"method\":\"fs_file_download_reply\",\"id\":"
	                       "\"d\",\"status\":0,\"etags\":[\"\\\"e1\\\"\","
	                       "\"e2\"]}");
	free(s);
	s = mgmt_enc_download_reply("d", 1, NULL, 0);
	assert_non_null(strstr(s, "\"etags\":[]"));
	free(s);
}

static void
test_logs(void **state)
{
	struct mgmt_log_entry e[2] = {{1033570800, "update", "x \"y\""},
	                              {0, "action", ""}};
	char ts[40], *s;

	(void)state;
	mgmt_rfc822(1033570800, ts);
	assert_string_equal(ts, "Wed, 02 Oct 2002 15:00:00 -0000");
	s = mgmt_enc_logs(e, 2);
	assert_string_equal(
	    s, "{\"batch\":[{\"device_timestamp\":\"Wed, 02 Oct 2002 15:00:00 "
	       "-0000\",\"name\":\"update\",\"entry\":\"x \\\"y\\\"\"},"
	       "{\"device_timestamp\":\"Thu, 01 Jan 1970 00:00:00 -0000\","
	       "\"name\":\"action\",\"entry\":\"\"}]}");
	free(s);
}

static void
test_paths(void **state)
{
	char *allowed[] = {"/lfs/logs", "/data"};
	char *root[] = {"/"};

	(void)state;
	assert_true(mgmt_path_valid("/lfs/logs/a.txt", why, sizeof(why)));
	assert_true(mgmt_path_valid("/", why, sizeof(why)));
	assert_true(mgmt_path_valid("/a/.hidden/..x", why, sizeof(why)));
	assert_false(mgmt_path_valid("", why, sizeof(why)));
	assert_non_null(strstr(why, "empty"));
	assert_false(mgmt_path_valid("lfs/a", why, sizeof(why)));
	assert_non_null(strstr(why, "not absolute"));
	assert_false(mgmt_path_valid("/lfs//a", why, sizeof(why)));
	assert_non_null(strstr(why, "empty component"));
	assert_false(mgmt_path_valid("/lfs/a/", why, sizeof(why)));
	assert_false(mgmt_path_valid("/lfs/./a", why, sizeof(why)));
	assert_false(mgmt_path_valid("/lfs/logs/../../etc", why, sizeof(why)));
	assert_non_null(strstr(why, "\"..\""));
	assert_false(mgmt_path_valid("/lfs/..", why, sizeof(why)));
	assert_false(mgmt_path_valid("/lfs/\x01", why, sizeof(why)));
	assert_false(mgmt_path_valid("/lfs/\xc3\xa9", why, sizeof(why)));

	assert_true(mgmt_path_allowed("/lfs/logs", allowed, 2));
	assert_true(mgmt_path_allowed("/lfs/logs/a", allowed, 2));
	assert_true(mgmt_path_allowed("/data/x/y", allowed, 2));
	/* Whole components: /lfs/logsX is not under /lfs/logs. */
	assert_false(mgmt_path_allowed("/lfs/logsX", allowed, 2));
	assert_false(mgmt_path_allowed("/lfs/log", allowed, 2));
	assert_false(mgmt_path_allowed("/lfs", allowed, 2));
	assert_false(mgmt_path_allowed("/database", allowed, 2));
	assert_false(mgmt_path_allowed("/lfs/logs", allowed, 0));
	assert_true(mgmt_path_allowed("/anything", root, 1));
}

static void
test_urls(void **state)
{
	char *hosts[] = {"s3.example.com", "fd00::1"};
	char host[256];

	(void)state;
	assert_int_equal(
	    mgmt_url_host("http://Srv.Example:5000/x", host, sizeof(host)), 0);
	assert_string_equal(host, "srv.example");
	assert_int_equal(mgmt_url_host("https://[::1]:8/x", host, sizeof(host)),
	                 0);
	assert_string_equal(host, "::1");
	assert_true(mgmt_upload_url_ok("http://srv.example:5000/local_storage_"
	                               "multipart/parts/a",
	                               "srv.example", NULL, 0, why,
	                               sizeof(why)));
	assert_true(mgmt_upload_url_ok("HTTPS://S3.EXAMPLE.COM/b?X-Amz=1",
	                               "srv.example", hosts, 2, why,
	                               sizeof(why)));
	assert_true(mgmt_upload_url_ok("http://[fd00::1]/p", "srv", hosts, 2,
	                               why, sizeof(why)));
	assert_false(mgmt_upload_url_ok("file:///etc/passwd", "srv.example",
	                                hosts, 2, why, sizeof(why)));
	assert_false(mgmt_upload_url_ok("ftp://srv.example/x", "srv.example",
	                                NULL, 0, why, sizeof(why)));
	assert_false(mgmt_upload_url_ok("gopher://srv.example/x", "srv.example",
	                                NULL, 0, why, sizeof(why)));
	assert_false(mgmt_upload_url_ok("http://evil.example/x", "srv.example",
	                                hosts, 2, why, sizeof(why)));
	assert_non_null(strstr(why, "evil.example"));
	assert_false(mgmt_upload_url_ok("http://srv.example.evil/x",
	                                "srv.example", NULL, 0, why,
	                                sizeof(why)));
	assert_false(mgmt_upload_url_ok("http://u:p@srv.example/x",
	                                "srv.example", NULL, 0, why,
	                                sizeof(why)));
	assert_false(mgmt_upload_url_ok("http://srv.example/a b", "srv.example",
	                                NULL, 0, why, sizeof(why)));
	assert_false(mgmt_upload_url_ok("not a url", "srv.example", NULL, 0,
	                                why, sizeof(why)));
	assert_int_equal(mgmt_parts_needed(0, 10), 0);
	assert_int_equal(mgmt_parts_needed(10, 10), 1);
	assert_int_equal(mgmt_parts_needed(11, 10), 2);
	assert_int_equal(mgmt_parts_needed(1, 10), 1);
	assert_int_equal(mgmt_parts_needed(5, 0), 0);
}

static void
test_percent_backoff(void **state)
{
	unsigned d;
	int i;

	(void)state;
	assert_int_equal(mgmt_percent(0, 0), 0);
	assert_int_equal(mgmt_percent(0, 1000), 0);
	assert_int_equal(mgmt_percent(9, 1000), 0);
	assert_int_equal(mgmt_percent(10, 1000), 1);
	assert_int_equal(mgmt_percent(999, 1000), 99);
	assert_int_equal(mgmt_percent(1000, 1000), 99);
	assert_int_equal(mgmt_percent(UINT64_MAX / 2, UINT64_MAX), 49);

	/* 200 ms doubling to 5 s, each in the upper half of its step. */
	for (i = 0; i < 100; i++) {
		d = mgmt_backoff_ms(1, 200, 5000, (uint64_t)i * 7919);
		assert_true(d >= 100 && d <= 200);
		d = mgmt_backoff_ms(3, 200, 5000, (uint64_t)i * 7919);
		assert_true(d >= 400 && d <= 800);
		d = mgmt_backoff_ms(30, 200, 5000, (uint64_t)i * 7919);
		assert_true(d >= 2500 && d <= 5000);
	}
	assert_int_equal(mgmt_backoff_ms(1000000, 200, 5000, 0), 2500);
}

static enum mgmt_key
keys(struct mgmt_line *l, const char *in, char *echo_all)
{
	enum mgmt_key k = MGMT_KEY_NONE;
	char echo[8];
	size_t n;

	echo_all[0] = '\0';
	for (; *in != '\0'; in++) {
		k = mgmt_line_key(l, (uint8_t)*in, echo, &n);
		strncat(echo_all, echo, n);
		if (k != MGMT_KEY_NONE)
			return k;
	}
	return k;
}

static void
test_line_editor(void **state)
{
	struct mgmt_line l;
	char echo[1024], *s;
	size_t n, i;

	(void)state;
	mgmt_line_reset(&l);
	assert_int_equal(keys(&l,
	                      "kernl\x7f"
	                      "el uptime\r",
	                      echo),
	                 MGMT_KEY_LINE);
	assert_string_equal(l.buf, "kernel uptime");
	assert_string_equal(echo, "kernl\b \bel uptime\r\n");
	mgmt_line_reset(&l);
	/* Arrow keys and other control bytes are dropped. */
	assert_int_equal(keys(&l, "a\x1b[A\x1b[1;5Cb\x07\tc\n", echo),
	                 MGMT_KEY_LINE);
	assert_string_equal(l.buf, "abc");
	mgmt_line_reset(&l);
	assert_int_equal(keys(&l, "abc\x03", echo), MGMT_KEY_INTERRUPT);
	assert_int_equal(l.len, 0);
	assert_int_equal(keys(&l, "x\x04", echo), MGMT_KEY_NONE);
	mgmt_line_reset(&l);
	assert_int_equal(keys(&l, "\x04", echo), MGMT_KEY_EOF);
	/* Backspace on an empty line echoes nothing. */
	mgmt_line_reset(&l);
	assert_int_equal(keys(&l, "\x7f\x08", echo), MGMT_KEY_NONE);
	assert_string_equal(echo, "");
	/* The line stops growing at MGMT_LINE_MAX. */
	mgmt_line_reset(&l);
	for (i = 0; i < 1000; i++)
		mgmt_line_key(&l, 'x', echo, &n);
	assert_int_equal(l.len, MGMT_LINE_MAX);

	{
		int rows, cols;

		assert_true(
		    mgmt_parse_resize("resize 24 80", 12, &rows, &cols));
		assert_int_equal(rows, 24);
		assert_int_equal(cols, 80);
		assert_false(mgmt_parse_resize("resize 24", 9, &rows, &cols));
		assert_false(
		    mgmt_parse_resize("resize 24 80x", 13, &rows, &cols));
		assert_false(
		    mgmt_parse_resize("resize -1 80", 12, &rows, &cols));
		assert_false(mgmt_parse_resize("hello", 5, &rows, &cols));
	}
	{
		char **argv;
		size_t argc;

		assert_int_equal(
		    mgmt_split_words("  kernel \t uptime  ", &argv, &argc), 0);
		assert_int_equal(argc, 2);
		assert_string_equal(argv[0], "kernel");
		assert_string_equal(argv[1], "uptime");
		assert_null(argv[2]);
		free(argv);
		assert_int_equal(mgmt_split_words("   ", &argv, &argc), 0);
		assert_int_equal(argc, 0);
		free(argv);
		memset(echo, 0, sizeof(echo));
		for (i = 0; i < 40; i++)
			strcat(echo, "a ");
		assert_int_equal(mgmt_split_words(echo, &argv, &argc), -1);
	}
	s = mgmt_crlf("a\nb\r\nc\n", 7, &n);
	assert_string_equal(s, "a\r\nb\r\nc\r\n");
	assert_int_equal(n, 9);
	free(s);
}

static void
test_uuid(void **state)
{
	(void)state;
	assert_true(mgmt_is_uuid("0b3e9a5c-1d2f-4a6b-8c7d-9e0f1a2b3c4d"));
	assert_true(mgmt_is_uuid("0B3E9A5C-1D2F-4A6B-8C7D-9E0F1A2B3C4D"));
	assert_false(mgmt_is_uuid("0b3e9a5c-1d2f-4a6b-8c7d-9e0f1a2b3c4"));
	assert_false(mgmt_is_uuid("0b3e9a5c-1d2f-4a6b-8c7d-9e0f1a2b3c4dd"));
	assert_false(mgmt_is_uuid("0b3e9a5c_1d2f-4a6b-8c7d-9e0f1a2b3c4d"));
	assert_false(mgmt_is_uuid("../../../../../../../../../../etc/x"));
	assert_false(mgmt_is_uuid("0b3e9a5c-1d2f-4a6b-8c7d-9e0f1a2b3c4d/.."));
	assert_false(mgmt_is_uuid(""));
}

/* ws.c's handshake checks. */
static void
test_ws_handshake(void **state)
{
	struct ws_response r;
	char acc[29];
	const char *ok =
	    "HTTP/1.1 101 Switching Protocols\r\n"
	    "Upgrade: WebSocket\r\n"
	    "connection: keep-alive, UPGRADE\r\n"
	    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
	    "\r\n\x81\x02hi";

	(void)state;
	/* RFC 6455's own example. */
	ws_accept_for_key("dGhlIHNhbXBsZSBub25jZQ==", acc);
	assert_string_equal(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");

	assert_int_equal(
	    ws_parse_response(ok, strlen(ok), &r, why, sizeof(why)), 1);
	assert_int_equal(r.status, 101);
	assert_true(r.upgrade_websocket);
	assert_true(r.connection_upgrade);
	assert_string_equal(r.accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
	assert_int_equal(r.naccept, 1);
	assert_int_equal(r.head_len, strlen(ok) - 4);
	/* Incomplete: more bytes needed. */
	assert_int_equal(ws_parse_response(ok, 40, &r, why, sizeof(why)), 0);

	{
		const char *s = "HTTP/1.1 401 UNAUTHORIZED\r\nContent-Length: "
		                "38\r\nContent-Type: application/json\r\n\r\n";
		assert_int_equal(
		    ws_parse_response(s, strlen(s), &r, why, sizeof(why)), 1);
		assert_int_equal(r.status, 401);
		assert_int_equal(r.content_len, 38);
		assert_false(r.upgrade_websocket);
	}
	{
		const char *s = "HTTP/1.1 101 x\r\nUpgrade: websocketx\r\n"
		                "Connection: upgrades\r\n\r\n";
		assert_int_equal(
		    ws_parse_response(s, strlen(s), &r, why, sizeof(why)), 1);
		assert_false(r.upgrade_websocket);
		assert_false(r.connection_upgrade);
	}
	{
		const char *s =
		    "HTTP/1.1 101 x\r\nSec-WebSocket-Accept: a\r\n"
		    "Sec-WebSocket-Accept: b\r\n"
		    "Sec-WebSocket-Extensions: permessage-deflate\r\n"
		    "\r\n";
		assert_int_equal(
		    ws_parse_response(s, strlen(s), &r, why, sizeof(why)), 1);
		assert_int_equal(r.naccept, 2);
		assert_true(r.extensions);
	}
	assert_int_equal(
	    ws_parse_response("SSH-2.0-x\r\n\r\n", 13, &r, why, sizeof(why)),
	    -1);
	assert_int_equal(ws_parse_response("HTTP/1.1 101\r\n x: y\r\n\r\n", 23,
	                                   &r, why, sizeof(why)),
	                 -1);
	assert_int_equal(ws_parse_response("HTTP/1.1 200 OK\r\nContent-Length: "
	                                   "-1\r\n\r\n",
	                                   39, &r, why, sizeof(why)),
	                 -1);
	assert_int_equal(
	    ws_parse_response("HTTP/1.1 200 OK\r\nbad header\r\n\r\n", 31, &r,
	                      why, sizeof(why)),
	    -1);
	{
		char big[9000];

		memset(big, 'a', sizeof(big));
		memcpy(big, "HTTP/1.1 200 OK\r\n", 17);
		assert_int_equal(
		    ws_parse_response(big, sizeof(big), &r, why, sizeof(why)),
		    -1);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_classes),
	    cmocka_unit_test(test_parse_refusals),
	    cmocka_unit_test(test_encoders),
	    cmocka_unit_test(test_logs),
	    cmocka_unit_test(test_paths),
	    cmocka_unit_test(test_urls),
	    cmocka_unit_test(test_percent_backoff),
	    cmocka_unit_test(test_line_editor),
	    cmocka_unit_test(test_uuid),
	    cmocka_unit_test(test_ws_handshake),
	};

	log_init(0, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
