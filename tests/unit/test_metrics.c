/*
 * metrics.c alone: the counters' bookkeeping, the Prometheus text and the
 * JSON for a fixed snapshot, label escaping, the loopback-only rule, real
 * HTTP requests to the endpoint through libevent's client, and the bounds
 * on its connections (a flood of idle ones, a trickle that never ends).
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdbool.h>
#include <unistd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <json-c/json.h>

#include "supervisor/metrics.h"

static struct board_stats st_a, st_b;

static void
fill(struct metrics_snapshot *s)
{
	struct metrics_entry a = {"device",  "sensor", "upload",
	                          "1.2.3+4", 2,        &st_a};
	struct metrics_entry b = {
	    "group", "pair \"left\\right\"", "idle", "", 0, &st_b};

	memset(&st_a, 0, sizeof(st_a));
	memset(&st_b, 0, sizeof(st_b));
	st_a.last_check = 1764070000;
	st_a.last_check_result = STATS_CHECK_OFFERED;
	stats_attempt(&st_a, NULL);
	stats_offered(&st_a, "1.3.0");
	stats_failed(&st_a, "upload");
	stats_failed(&st_a, "reboot");
	stats_failed(&st_a, "upload");
	stats_uploaded(&st_a, 20000, 2000);
	memset(s, 0, sizeof(*s));
	metrics_snapshot_add(s, &a);
	metrics_snapshot_add(s, &b);
}

static void
expect_line(const char *text, const char *line)
{
	const char *p = text;
	size_t n = strlen(line);

	while ((p = strstr(p, line)) != NULL) {
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return;
		p++;
	}
	fail_msg("no line \"%s\" in:\n%s", line, text);
}

static void
test_stats_bookkeeping(void **state)
{
	struct board_stats s;
	int i;

	(void)state;
	memset(&s, 0, sizeof(s));
	stats_attempt(&s, "2.0.0");
	assert_string_equal(s.offered_version, "2.0.0");
	stats_succeeded(&s);
	assert_string_equal(s.offered_version, "");
	assert_int_equal(s.attempts, 1);
	assert_int_equal(s.successes, 1);
	stats_checked(&s, STATS_CHECK_UP_TO_DATE);
	assert_true(s.last_check > 1700000000);
	/* More distinct phases than slots: the rest count as "other". */
	for (i = 0; i < STATS_MAX_PHASES + 3; i++) {
		char ph[16];

		snprintf(ph, sizeof(ph), "p%d", i);
		stats_failed(&s, ph);
	}
	assert_string_equal(s.failures[0].phase, "p0");
	assert_int_equal(s.failures[0].n, 1);
	assert_string_equal(s.failures[STATS_MAX_PHASES - 1].phase, "other");
	assert_int_equal(s.failures[STATS_MAX_PHASES - 1].n, 4);
	stats_uploaded(&s, 1000, 500);
	assert_true(s.last_upload_bps > 1999.0 && s.last_upload_bps < 2001.0);
}

static void
test_prometheus(void **state)
{
	struct metrics_snapshot s;
	char *t;

	(void)state;
	fill(&s);
	t = metrics_render_prometheus(&s);
	expect_line(t, "# TYPE rdfm_mcumgr_update_failures_total counter");
	expect_line(t, "rdfm_mcumgr_state{kind=\"device\",name=\"sensor\","
	               "state=\"upload\"} 1");
	expect_line(t, "rdfm_mcumgr_running_version_info{kind=\"device\","
	               "name=\"sensor\",version=\"1.2.3+4\"} 1");
	expect_line(t, "rdfm_mcumgr_offered_version_info{kind=\"device\","
	               "name=\"sensor\",version=\"1.3.0\"} 1");
	expect_line(t, "rdfm_mcumgr_last_check_timestamp_seconds{kind="
	               "\"device\",name=\"sensor\"} 1764070000");
	expect_line(t, "rdfm_mcumgr_last_check_result{kind=\"device\",name="
	               "\"sensor\",result=\"offered\"} 1");
	expect_line(t, "rdfm_mcumgr_last_check_result{kind=\"device\",name="
	               "\"sensor\",result=\"error\"} 0");
	expect_line(t, "rdfm_mcumgr_update_attempts_total{kind=\"device\","
	               "name=\"sensor\"} 1");
	expect_line(t, "rdfm_mcumgr_update_failures_total{kind=\"device\","
	               "name=\"sensor\",phase=\"upload\"} 2");
	expect_line(t, "rdfm_mcumgr_update_failures_total{kind=\"device\","
	               "name=\"sensor\",phase=\"reboot\"} 1");
	expect_line(t, "rdfm_mcumgr_uploaded_bytes_total{kind=\"device\","
	               "name=\"sensor\"} 20000");
	expect_line(t, "rdfm_mcumgr_last_upload_rate_bytes_per_second{kind="
	               "\"device\",name=\"sensor\"} 10000.0");
	expect_line(t, "rdfm_mcumgr_worker_restarts_total{kind=\"device\","
	               "name=\"sensor\"} 2");
	/* Quotes and backslashes in a name are escaped. */
	expect_line(t, "rdfm_mcumgr_state{kind=\"group\",name=\"pair "
	               "\\\"left\\\\right\\\"\",state=\"idle\"} 1");
	/* No version series for a board whose version is unknown. */
	assert_null(strstr(t, "name=\"pair \\\"left\\\\right\\\"\",version="));
	free(t);
	metrics_snapshot_clear(&s);
}

static void
test_json(void **state)
{
	struct metrics_snapshot s;
	struct json_object *root, *devs, *a, *b, *v;
	char *t;

	(void)state;
	fill(&s);
	t = metrics_render_json(&s);
	root = json_tokener_parse(t);
	assert_non_null(root);
	assert_true(json_object_object_get_ex(root, "devices", &devs));
	assert_int_equal(json_object_array_length(devs), 2);
	a = json_object_array_get_idx(devs, 0);
	b = json_object_array_get_idx(devs, 1);
	assert_true(json_object_object_get_ex(a, "state", &v));
	assert_string_equal(json_object_get_string(v), "upload");
	assert_true(json_object_object_get_ex(a, "offered_version", &v));
	assert_string_equal(json_object_get_string(v), "1.3.0");
	assert_true(json_object_object_get_ex(a, "failures", &v));
	assert_int_equal(
	    json_object_get_int(json_object_object_get(v, "upload")), 2);
	assert_true(json_object_object_get_ex(a, "last_check_result", &v));
	assert_string_equal(json_object_get_string(v), "offered");
	assert_true(json_object_object_get_ex(b, "name", &v));
	assert_string_equal(json_object_get_string(v), "pair \"left\\right\"");
	assert_true(json_object_object_get_ex(b, "running_version", &v));
	assert_null(v);
	assert_true(json_object_object_get_ex(b, "last_check", &v));
	assert_null(v);
	json_object_put(root);
	free(t);
	metrics_snapshot_clear(&s);
}

static void
test_refuses_non_loopback(void **state)
{
	struct event_base *base = event_base_new();
	static const char *bad[] = {"192.0.2.1:9464", "0.0.0.0:9464",
	                            "[::]:9464", "127.0.0.1", "[::1:9464"};
	char err[512];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_null(
		    metrics_start(base, bad[i], NULL, NULL, err, sizeof(err)));
		if (strstr(err, bad[i]) == NULL)
			fail_msg("%s: error does not name it: %s", bad[i], err);
	}
	assert_null(metrics_start(base, "192.0.2.1:9464", NULL, NULL, err,
	                          sizeof(err)));
	assert_non_null(strstr(err, "not a loopback address"));
	event_base_free(base);
}

/* --- a real request ---------------------------------------------------- */

struct got {
	int code;
	char *body;
	char *type;
	struct event_base *base;
};

static void
collect(struct metrics_snapshot *s, void *arg)
{
	(void)arg;
	fill(s);
}

static void
on_reply(struct evhttp_request *req, void *arg)
{
	struct got *g = arg;
	struct evbuffer *in;
	const char *ct;
	size_t n;

	if (req != NULL) {
		g->code = evhttp_request_get_response_code(req);
		in = evhttp_request_get_input_buffer(req);
		n = evbuffer_get_length(in);
		g->body = calloc(1, n + 1);
		evbuffer_remove(in, g->body, n);
		ct = evhttp_find_header(evhttp_request_get_input_headers(req),
		                        "Content-Type");
		g->type = strdup(ct != NULL ? ct : "");
	}
	event_base_loopbreak(g->base);
}

static void
get(struct event_base *base, int port, const char *path, struct got *g)
{
	struct evhttp_connection *c =
	    evhttp_connection_base_new(base, NULL, "127.0.0.1", (uint16_t)port);
	struct evhttp_request *r;

	memset(g, 0, sizeof(*g));
	g->base = base;
	r = evhttp_request_new(on_reply, g);
	evhttp_add_header(evhttp_request_get_output_headers(r), "Host",
	                  "localhost");
	assert_int_equal(evhttp_make_request(c, r, EVHTTP_REQ_GET, path), 0);
	event_base_dispatch(base);
	evhttp_connection_free(c);
}

static void
test_http(void **state)
{
	struct event_base *base = event_base_new();
	struct metrics *m;
	struct got g;
	char err[256];

	(void)state;
	m = metrics_start(base, "127.0.0.1:0", collect, NULL, err, sizeof(err));
	if (m == NULL)
		fail_msg("metrics_start: %s", err);
	assert_true(metrics_port(m) > 0);

	get(base, metrics_port(m), "/metrics", &g);
	assert_int_equal(g.code, 200);
	assert_non_null(strstr(g.type, "text/plain; version=0.0.4"));
	expect_line(g.body, "rdfm_mcumgr_update_attempts_total{kind=\"device\","
	                    "name=\"sensor\"} 1");
	free(g.body);
	free(g.type);

	get(base, metrics_port(m), "/status", &g);
	assert_int_equal(g.code, 200);
	assert_string_equal(g.type, "application/json");
	assert_non_null(strstr(g.body, "\"name\":\"sensor\""));
	free(g.body);
	free(g.type);

	get(base, metrics_port(m), "/nothing", &g);
	assert_int_equal(g.code, 404);
	free(g.body);
	free(g.type);

	metrics_free(m);
	event_base_free(base);
}

/* Run the loop for ms milliseconds. */
static void
run_for(struct event_base *base, int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

static int
open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory's own */
}

static int
connect_nb(int port)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

	assert_true(fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1)
		assert_int_equal(errno, EINPROGRESS);
	return fd;
}

/* The server closed it: a read sees the end. */
static bool
closed_by_server(int fd)
{
	char c;

	return recv(fd, &c, 1, MSG_DONTWAIT) == 0;
}

/*
 * A flood of idle connections: the endpoint holds at most its limit (the
 * rest wait in the kernel's queue, not in our descriptors), closes idle
 * ones, and serves again once the flood is gone.
 */
static void
test_connection_cap(void **state)
{
	struct event_base *base = event_base_new();
	struct metrics *m;
	struct got g;
	char err[256];
	int fds[40], before, i, nclosed;

	(void)state;
	m = metrics_start(base, "127.0.0.1:0", collect, NULL, err, sizeof(err));
	assert_non_null(m);
	metrics_set_limits(m, 4, 1, 30);
	before = open_fds();
	for (i = 0; i < 40; i++)
		fds[i] = connect_nb(metrics_port(m));
	run_for(base, 300);
	assert_int_equal(metrics_connections(m), 4);
	/* The 40 clients' sockets and 4 accepted ones, nothing more. */
	assert_true(open_fds() - before <= 40 + 4);
	/* Idle for a second: closed, and the next ones taken in. */
	run_for(base, 1800);
	for (i = 0, nclosed = 0; i < 40; i++)
		nclosed += closed_by_server(fds[i]);
	assert_true(nclosed >= 4);
	assert_true(nclosed < 40);
	assert_int_equal(metrics_connections(m), 4);
	for (i = 0; i < 40; i++)
		close(fds[i]);
	/* Whatever the kernel still queued is taken and dropped; then the
	 * endpoint answers again. */
	run_for(base, 2500);
	get(base, metrics_port(m), "/status", &g);
	assert_int_equal(g.code, 200);
	free(g.body);
	free(g.type);
	/* The client closed: released at the next sweep. */
	run_for(base, 700);
	assert_int_equal(metrics_connections(m), 0);
	metrics_free(m);
	event_base_free(base);
}

static void
on_trickle(evutil_socket_t fd, short what, void *arg)
{
	int *cfd = arg;

	(void)fd;
	(void)what;
	if (send(*cfd, "G", 1, MSG_NOSIGNAL) != 1)
		return;
}

/* A connection that trickles header bytes (never idle) still ends. */
static void
test_connection_lifetime(void **state)
{
	struct event_base *base = event_base_new();
	struct timeval half = {0, 250000};
	struct event *tick;
	struct metrics *m;
	char err[256];
	int cfd;

	(void)state;
	m = metrics_start(base, "127.0.0.1:0", collect, NULL, err, sizeof(err));
	assert_non_null(m);
	/* Margins wide enough for a loaded machine: idle 1 s, life 4 s. */
	metrics_set_limits(m, 4, 1, 4);
	cfd = connect_nb(metrics_port(m));
	tick = event_new(base, -1, EV_PERSIST, on_trickle, &cfd);
	event_add(tick, &half);
	run_for(base, 2000);
	/* Past the idle timeout, alive: it keeps sending. */
	assert_false(closed_by_server(cfd));
	assert_int_equal(metrics_connections(m), 1);
	run_for(base, 4000);
	assert_int_equal(metrics_connections(m), 0);
	assert_true(closed_by_server(cfd));
	event_free(tick);
	close(cfd);
	metrics_free(m);
	event_base_free(base);
}

/* Connections still open when the endpoint goes: nothing leaks or breaks. */
static void
test_free_with_connections(void **state)
{
	struct event_base *base = event_base_new();
	struct metrics *m;
	char err[256];
	int fds[3], i;

	(void)state;
	m = metrics_start(base, "127.0.0.1:0", collect, NULL, err, sizeof(err));
	assert_non_null(m);
	for (i = 0; i < 3; i++)
		fds[i] = connect_nb(metrics_port(m));
	run_for(base, 200);
	assert_int_equal(metrics_connections(m), 3);
	metrics_free(m);
	run_for(base, 100);
	event_base_free(base);
	for (i = 0; i < 3; i++)
		close(fds[i]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_stats_bookkeeping),
	    cmocka_unit_test(test_prometheus),
	    cmocka_unit_test(test_json),
	    cmocka_unit_test(test_refuses_non_loopback),
	    cmocka_unit_test(test_http),
	    cmocka_unit_test(test_connection_cap),
	    cmocka_unit_test(test_connection_lifetime),
	    cmocka_unit_test(test_free_with_connections),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
