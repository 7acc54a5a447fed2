/*
 * The status and metrics endpoint (metrics.h): libevent's HTTP server on a
 * loopback address, rendering a fresh snapshot of the daemon's devices and
 * groups for every request; the same snapshot feeds the SIGUSR1 log dump.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>

#include <inttypes.h>
#include <time.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <json-c/json.h>

#include "config.h"
#include "log.h"
#include "metrics.h"
#include "xmalloc.h"

#define PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Every check result, so each gets a 0/1 series. */
static const enum stats_check all_checks[] = {
    STATS_CHECK_UP_TO_DATE,
    STATS_CHECK_OFFERED,
    STATS_CHECK_UNAPPROVED,
    STATS_CHECK_ERROR,
};

struct mconn;

struct metrics {
	struct evhttp *http;
	struct evhttp_bound_socket *bound;
	int port;
	metrics_collect_fn collect;
	void *arg;
	/* Connections open, and what bounds them. */
	struct mconn *conns;
	struct event *sweep_ev;
	unsigned int nconns, max_conns;
	int lifetime_s;
	bool paused;
	struct timespec last_warned;
};

/*
 * One connection.  We hold a reference to its bufferevent: when evhttp is
 * done with it (bufferevent_free() clears its callbacks), the socket stays
 * ours until the sweep sees that and lets it go, so we always know how
 * many are open.
 */
struct mconn {
	struct mconn *next;
	struct bufferevent *bev;
	struct timespec born;
	bool expired;
};

static const char *
stats_check_name(enum stats_check r)
{
	switch (r) {
	case STATS_CHECK_NONE:
		return "none";
	case STATS_CHECK_UP_TO_DATE:
		return "up-to-date";
	case STATS_CHECK_OFFERED:
		return "offered";
	case STATS_CHECK_UNAPPROVED:
		return "unapproved";
	case STATS_CHECK_ERROR:
		return "error";
	}
	return "?";
}

void
metrics_snapshot_add(struct metrics_snapshot *s, const struct metrics_entry *e)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 8;
		s->v = xreallocarray(s->v, s->cap, sizeof(*s->v));
	}
	s->v[s->n++] = *e;
}

void
metrics_snapshot_clear(struct metrics_snapshot *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}

/* --- Prometheus text format --------------------------------------------- */

/* A label value: backslash, double quote and newline escaped. */
static void
add_label_value(struct evbuffer *b, const char *v)
{
	for (; *v != '\0'; v++) {
		if (*v == '\\')
			evbuffer_add(b, "\\\\", 2);
		else if (*v == '"')
			evbuffer_add(b, "\\\"", 2);
		else if (*v == '\n')
			evbuffer_add(b, "\\n", 2);
		else
			evbuffer_add(b, v, 1);
	}
}

static void
add_help(struct evbuffer *b, const char *name, const char *type,
         const char *help)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
	                    type);
}

/*
 * name{kind="...",name="..."[,extra="value"]} — extra may be NULL.  The
 * value follows, written by the caller.
 */
static void
add_series(struct evbuffer *b, const char *metric,
           const struct metrics_entry *e, const char *extra,
           const char *extra_value)
{
	evbuffer_add_printf(b, "%s{kind=\"", metric);
	add_label_value(b, e->kind);
	evbuffer_add_printf(b, "\",name=\"");
	add_label_value(b, e->name);
	if (extra != NULL) {
		evbuffer_add_printf(b, "\",%s=\"", extra);
		add_label_value(b, extra_value);
	}
	evbuffer_add(b, "\"} ", 3);
}

static char *
buffer_string(struct evbuffer *b)
{
	size_t n = evbuffer_get_length(b);
	char *s = xmalloc(n + 1);

	evbuffer_remove(b, s, n);
	s[n] = '\0';
	evbuffer_free(b);
	return s;
}

static void
prom_states(struct evbuffer *b, const struct metrics_snapshot *s)
{
	size_t i;

	add_help(b, "rdfm_mcumgr_state", "gauge",
	         "1 for the step the device or group is in");
	for (i = 0; i < s->n; i++) {
		add_series(b, "rdfm_mcumgr_state", &s->v[i], "state",
		           s->v[i].state);
		evbuffer_add(b, "1\n", 2);
	}
	add_help(b, "rdfm_mcumgr_running_version_info", "gauge",
	         "1, labelled with the version the board runs");
	for (i = 0; i < s->n; i++)
		if (s->v[i].running_version[0] != '\0') {
			add_series(b, "rdfm_mcumgr_running_version_info",
			           &s->v[i], "version",
			           s->v[i].running_version);
			evbuffer_add(b, "1\n", 2);
		}
	add_help(b, "rdfm_mcumgr_offered_version_info", "gauge",
	         "1, labelled with the version being installed");
	for (i = 0; i < s->n; i++)
		if (s->v[i].stats->offered_version[0] != '\0') {
			add_series(b, "rdfm_mcumgr_offered_version_info",
			           &s->v[i], "version",
			           s->v[i].stats->offered_version);
			evbuffer_add(b, "1\n", 2);
		}
}

static void
prom_checks(struct evbuffer *b, const struct metrics_snapshot *s)
{
	size_t i, k;

	add_help(b, "rdfm_mcumgr_last_check_timestamp_seconds", "gauge",
	         "Unix time of the last update check (0: none yet)");
	for (i = 0; i < s->n; i++) {
		add_series(b, "rdfm_mcumgr_last_check_timestamp_seconds",
		           &s->v[i], NULL, NULL);
		evbuffer_add_printf(b, "%" PRId64 "\n",
		                    s->v[i].stats->last_check);
	}
	add_help(b, "rdfm_mcumgr_last_check_result", "gauge",
	         "1 for the result of the last update check");
	for (i = 0; i < s->n; i++)
		for (k = 0; k < sizeof(all_checks) / sizeof(all_checks[0]);
		     k++) {
			add_series(b, "rdfm_mcumgr_last_check_result", &s->v[i],
			           "result", stats_check_name(all_checks[k]));
			evbuffer_add_printf(b, "%d\n",
			                    s->v[i].stats->last_check_result ==
			                        all_checks[k]);
		}
}

static void
prom_counter(struct evbuffer *b, const struct metrics_snapshot *s,
             const char *name, const char *help, size_t off)
{
	size_t i;
	uint64_t v;

	add_help(b, name, "counter", help);
	for (i = 0; i < s->n; i++) {
		memcpy(&v, (const char *)s->v[i].stats + off, sizeof(v));
		add_series(b, name, &s->v[i], NULL, NULL);
		evbuffer_add_printf(b, "%" PRIu64 "\n", v);
	}
}

static void
prom_updates(struct evbuffer *b, const struct metrics_snapshot *s)
{
	const struct stats_phase_count *f;
	size_t i, k;

	prom_counter(b, s, "rdfm_mcumgr_update_attempts_total",
	             "updates started", offsetof(struct board_stats, attempts));
	prom_counter(b, s, "rdfm_mcumgr_update_successes_total",
	             "updates finished",
	             offsetof(struct board_stats, successes));
	add_help(b, "rdfm_mcumgr_update_failures_total", "counter",
	         "failed attempts, by the phase that failed");
	for (i = 0; i < s->n; i++)
		for (k = 0; k < STATS_MAX_PHASES; k++) {
			f = &s->v[i].stats->failures[k];
			if (f->phase[0] == '\0')
				break;
			add_series(b, "rdfm_mcumgr_update_failures_total",
			           &s->v[i], "phase", f->phase);
			evbuffer_add_printf(b, "%" PRIu64 "\n", f->n);
		}
	prom_counter(b, s, "rdfm_mcumgr_local_failures_total",
	             "failures of this host (journal not writable, disk full, "
	             "no descriptors): retried, never counted as attempts",
	             offsetof(struct board_stats, local_failures));
	prom_counter(b, s, "rdfm_mcumgr_uploaded_bytes_total",
	             "image bytes uploaded in finished uploads",
	             offsetof(struct board_stats, bytes_uploaded));
	add_help(b, "rdfm_mcumgr_last_upload_rate_bytes_per_second", "gauge",
	         "speed of the last finished upload");
	for (i = 0; i < s->n; i++) {
		add_series(b, "rdfm_mcumgr_last_upload_rate_bytes_per_second",
		           &s->v[i], NULL, NULL);
		evbuffer_add_printf(b, "%.1f\n",
		                    s->v[i].stats->last_upload_bps);
	}
	add_help(b, "rdfm_mcumgr_upload_window", "gauge",
	         "packets in flight the last finished upload settled on");
	for (i = 0; i < s->n; i++) {
		add_series(b, "rdfm_mcumgr_upload_window", &s->v[i], NULL,
		           NULL);
		evbuffer_add_printf(b, "%u\n", s->v[i].stats->upload_window);
	}
	prom_counter(b, s, "rdfm_mcumgr_upload_rewinds_total",
	             "times a board asked for upload data again (lost "
	             "packets, resets) in finished uploads",
	             offsetof(struct board_stats, upload_rewinds));
	add_help(b, "rdfm_mcumgr_worker_restarts_total", "counter",
	         "restarts of the worker of the board's link (a group: all "
	         "its members')");
	for (i = 0; i < s->n; i++) {
		add_series(b, "rdfm_mcumgr_worker_restarts_total", &s->v[i],
		           NULL, NULL);
		evbuffer_add_printf(b, "%u\n", s->v[i].worker_restarts);
	}
}

char *
metrics_render_prometheus(const struct metrics_snapshot *s)
{
	struct evbuffer *b = evbuffer_new();

	if (b == NULL)
		fatalx("out of memory", NULL);
	add_help(b, "rdfm_mcumgr_build_info", "gauge",
	         "1, labelled with the client's version");
	evbuffer_add_printf(b, "rdfm_mcumgr_build_info{version=\"%s\"} 1\n",
	                    VERSION);
	prom_states(b, s);
	prom_checks(b, s);
	prom_updates(b, s);
	return buffer_string(b);
}

/* --- JSON ---------------------------------------------------------------- */

static struct json_object *
json_str_or_null(const char *v)
{
	return v != NULL && v[0] != '\0' ? json_object_new_string(v) : NULL;
}

static struct json_object *
entry_json(const struct metrics_entry *e)
{
	const struct board_stats *st = e->stats;
	struct json_object *o = json_object_new_object(),
	                   *f = json_object_new_object();
	size_t k;

	json_object_object_add(o, "name", json_object_new_string(e->name));
	json_object_object_add(o, "kind", json_object_new_string(e->kind));
	json_object_object_add(o, "state", json_object_new_string(e->state));
	json_object_object_add(o, "running_version",
	                       json_str_or_null(e->running_version));
	json_object_object_add(o, "offered_version",
	                       json_str_or_null(st->offered_version));
	json_object_object_add(
	    o, "last_check",
	    st->last_check != 0 ? json_object_new_int64(st->last_check) : NULL);
	json_object_object_add(o, "last_check_result",
	                       st->last_check_result != STATS_CHECK_NONE
	                           ? json_object_new_string(stats_check_name(
	                                 st->last_check_result))
	                           : NULL);
	json_object_object_add(o, "attempts",
	                       json_object_new_uint64(st->attempts));
	json_object_object_add(o, "successes",
	                       json_object_new_uint64(st->successes));
	for (k = 0; k < STATS_MAX_PHASES && st->failures[k].phase[0]; k++)
		json_object_object_add(
		    f, st->failures[k].phase,
		    json_object_new_uint64(st->failures[k].n));
	json_object_object_add(o, "failures", f);
	json_object_object_add(o, "local_failures",
	                       json_object_new_uint64(st->local_failures));
	json_object_object_add(o, "last_error",
	                       json_str_or_null(st->last_error));
	json_object_object_add(o, "bytes_uploaded",
	                       json_object_new_uint64(st->bytes_uploaded));
	json_object_object_add(o, "last_upload_rate",
	                       json_object_new_double(st->last_upload_bps));
	json_object_object_add(o, "upload_window",
	                       json_object_new_int64(st->upload_window));
	json_object_object_add(o, "upload_rewinds",
	                       json_object_new_uint64(st->upload_rewinds));
	json_object_object_add(o, "worker_restarts",
	                       json_object_new_uint64(e->worker_restarts));
	return o;
}

char *
metrics_render_json(const struct metrics_snapshot *s)
{
	struct json_object *root = json_object_new_object(),
	                   *arr = json_object_new_array();
	char *out;
	size_t i;

	json_object_object_add(root, "version",
	                       json_object_new_string(VERSION));
	for (i = 0; i < s->n; i++)
		json_object_array_add(arr, entry_json(&s->v[i]));
	json_object_object_add(root, "devices", arr);
	xasprintf(&out, "%s\n",
	          json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN));
	json_object_put(root);
	return out;
}

/* --- SIGUSR1 ------------------------------------------------------------- */

void
metrics_log_status(const struct metrics_snapshot *s)
{
	const struct board_stats *st;
	char failures[256];
	size_t i, k;
	int n;

	for (i = 0; i < s->n; i++) {
		st = s->v[i].stats;
		failures[0] = '\0';
		for (k = 0, n = 0;
		     k < STATS_MAX_PHASES && st->failures[k].phase[0]; k++)
			n += snprintf(failures + n,
			              n < (int)sizeof(failures)
			                  ? sizeof(failures) - (size_t)n
			                  : 0,
			              "%s%s:%" PRIu64, k ? "," : "",
			              st->failures[k].phase, st->failures[k].n);
		log_info("Status",
		         "%s=%s state=%s running_version=%s offered_version=%s "
		         "last_check=%" PRId64 " last_check_result=%s "
		         "attempts=%" PRIu64 " successes=%" PRIu64
		         " failures=%s bytes_uploaded=%" PRIu64
		         " last_upload_rate=%.0f upload_window=%u "
		         "upload_rewinds=%" PRIu64 " worker_restarts=%u",
		         s->v[i].kind, log_q(s->v[i].name), s->v[i].state,
		         log_q(s->v[i].running_version),
		         log_q(st->offered_version), st->last_check,
		         stats_check_name(st->last_check_result), st->attempts,
		         st->successes, log_q(failures), st->bytes_uploaded,
		         st->last_upload_bps, st->upload_window,
		         st->upload_rewinds, s->v[i].worker_restarts);
	}
	if (s->n == 0)
		log_info("Status", "devices=0 groups=0");
}

/* --- HTTP ---------------------------------------------------------------- */

static void
reply(struct evhttp_request *req, int code, const char *reason,
      const char *type, char *body)
{
	struct evbuffer *out = evhttp_request_get_output_buffer(req);

	evhttp_add_header(evhttp_request_get_output_headers(req),
	                  "Content-Type", type);
	evhttp_add_header(evhttp_request_get_output_headers(req),
	                  "Cache-Control", "no-store");
	evbuffer_add(out, body, strlen(body));
	evhttp_send_reply(req, code, reason, NULL);
	free(body);
}

static void
on_request(struct evhttp_request *req, void *arg)
{
	struct metrics *m = arg;
	struct metrics_snapshot s;
	const char *path =
	    evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));

	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET &&
	    evhttp_request_get_command(req) != EVHTTP_REQ_HEAD) {
		reply(req, 405, "Method Not Allowed", "text/plain",
		      xstrdup("only GET\n"));
		return;
	}
	if (path == NULL ||
	    (strcmp(path, "/metrics") != 0 && strcmp(path, "/status") != 0)) {
		reply(req, 404, "Not Found", "text/plain",
		      xstrdup("not found: try /metrics or /status\n"));
		return;
	}
	memset(&s, 0, sizeof(s));
	m->collect(&s, m->arg);
	if (strcmp(path, "/metrics") == 0)
		reply(req, 200, "OK", PROM_CONTENT_TYPE,
		      metrics_render_prometheus(&s));
	else
		reply(req, 200, "OK", "application/json",
		      metrics_render_json(&s));
	metrics_snapshot_clear(&s);
}

/* --- connections ---------------------------------------------------------- */

/* How often connections evhttp has finished with are released. */
#define SWEEP_MS 250
/* Input a connection may hold: requests are small (headers 8 KiB). */
#define CONN_READ_MAX (64 * 1024)

/*
 * A flood of idle connections must not take the daemon's descriptors or
 * its loop: at max_conns the listener stops accepting (the kernel queues
 * the rest, at no cost to us) until one ends; evhttp closes a connection
 * idle for METRICS_IDLE_S, and none lives past its lifetime.
 */
static void
listener_pause(struct metrics *m, bool pause)
{
	struct evconnlistener *l = evhttp_bound_socket_get_listener(m->bound);
	struct timespec now;

	if (m->paused == pause)
		return;
	m->paused = pause;
	if (!pause) {
		evconnlistener_enable(l);
		return;
	}
	evconnlistener_disable(l);
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (m->last_warned.tv_sec == 0 ||
	    now.tv_sec - m->last_warned.tv_sec >= 60) {
		m->last_warned = now;
		log_warnx("Status and metrics: connection limit reached; new "
		          "connections wait",
		          "limit=%u", m->max_conns);
	}
}

/* Whether evhttp has let the connection go (its callbacks are cleared). */
static bool
conn_released(const struct mconn *c)
{
	bufferevent_event_cb ecb = NULL;

	bufferevent_getcb(c->bev, NULL, NULL, &ecb, NULL);
	return ecb == NULL;
}

/*
 * Release what evhttp is done with (our reference was the last: the
 * socket closes), and end what has lived too long: evhttp takes a
 * timeout event for an idle one and frees it.
 */
static void
on_sweep(evutil_socket_t fd, short what, void *arg)
{
	struct metrics *m = arg;
	struct mconn **pp = &m->conns, *c;
	struct timeval tv = {0, SWEEP_MS * 1000};
	struct timespec now;

	(void)fd;
	(void)what;
	clock_gettime(CLOCK_MONOTONIC, &now);
	while ((c = *pp) != NULL) {
		if (conn_released(c)) {
			*pp = c->next;
			bufferevent_decref(c->bev);
			free(c);
			m->nconns--;
			continue;
		}
		if (!c->expired &&
		    now.tv_sec - c->born.tv_sec >= m->lifetime_s) {
			c->expired = true;
			bufferevent_trigger_event(
			    c->bev, BEV_EVENT_READING | BEV_EVENT_TIMEOUT, 0);
		}
		pp = &c->next;
	}
	if (m->nconns < m->max_conns)
		listener_pause(m, false);
	if (m->conns != NULL)
		evtimer_add(m->sweep_ev, &tv);
}

/* evhttp asks for each new connection's bufferevent. */
static struct bufferevent *
conn_new(struct event_base *base, void *arg)
{
	struct metrics *m = arg;
	struct timeval tv = {0, SWEEP_MS * 1000};
	struct mconn *c;

	c = xcalloc(1, sizeof(*c));
	if ((c->bev = bufferevent_socket_new(base, -1,
	                                     BEV_OPT_CLOSE_ON_FREE)) == NULL)
		fatalx("cannot set up a metrics connection", NULL);
	bufferevent_incref(c->bev);
	/* Once evhttp lets go, nothing reads far ahead of the sweep. */
	bufferevent_setwatermark(c->bev, EV_READ, 0, CONN_READ_MAX);
	clock_gettime(CLOCK_MONOTONIC, &c->born);
	c->next = m->conns;
	m->conns = c;
	if (++m->nconns >= m->max_conns)
		listener_pause(m, true);
	if (!evtimer_pending(m->sweep_ev, NULL))
		evtimer_add(m->sweep_ev, &tv);
	return c->bev;
}

struct metrics *
metrics_start(struct event_base *base, const char *listen,
              metrics_collect_fn fn, void *arg, char *err, size_t errcap)
{
	struct evhttp_bound_socket *bs;
	struct metrics *m;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char addr[INET6_ADDRSTRLEN + 8], port[16], bound[INET6_ADDRSTRLEN];
	long pn;

	if (config_listen_address(listen, addr, sizeof(addr), port,
	                          sizeof(port), err, errcap) == -1)
		return NULL;
	pn = strtol(port, NULL, 10);
	m = xcalloc(1, sizeof(*m));
	m->collect = fn;
	m->arg = arg;
	m->max_conns = METRICS_MAX_CONNS;
	m->lifetime_s = METRICS_CONN_LIFETIME_S;
	if ((m->sweep_ev = evtimer_new(base, on_sweep, m)) == NULL)
		fatalx("cannot create the metrics timer", NULL);
	if ((m->http = evhttp_new(base)) == NULL)
		fatalx("cannot create the metrics HTTP server", NULL);
	evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
	evhttp_set_gencb(m->http, on_request, m);
	/* Requests are tiny; anything large is not for us. */
	evhttp_set_max_headers_size(m->http, 8192);
	evhttp_set_max_body_size(m->http, 1024);
	evhttp_set_timeout(m->http, METRICS_IDLE_S);
	evhttp_set_bevcb(m->http, conn_new, m);
	if ((bs = evhttp_bind_socket_with_handle(m->http, addr,
	                                         (ev_uint16_t)pn)) == NULL) {
		snprintf(err, errcap, "metrics \"%s\": cannot listen on %s:%ld",
		         listen, addr, pn);
		metrics_free(m);
		return NULL;
	}
	m->bound = bs;
	if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&ss,
	                &sl) == 0 &&
	    getnameinfo((struct sockaddr *)&ss, sl, bound, sizeof(bound), port,
	                sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV) == 0) {
		m->port = atoi(port);
		log_info("Serving status and metrics", "address=%s%s%s:%s",
		         ss.ss_family == AF_INET6 ? "[" : "", bound,
		         ss.ss_family == AF_INET6 ? "]" : "", port);
	}
	return m;
}

int
metrics_port(const struct metrics *m)
{
	return m->port;
}

void
metrics_set_limits(struct metrics *m, unsigned int max_conns, int idle_s,
                   int lifetime_s)
{
	m->max_conns = max_conns > 0 ? max_conns : 1;
	m->lifetime_s = lifetime_s > 0 ? lifetime_s : 1;
	evhttp_set_timeout(m->http, idle_s > 0 ? idle_s : 1);
	listener_pause(m, m->nconns >= m->max_conns);
}

unsigned int
metrics_connections(const struct metrics *m)
{
	return m->nconns;
}

void
metrics_free(struct metrics *m)
{
	struct mconn *c;

	if (m == NULL)
		return;
	/* evhttp lets every connection go; ours are the last references. */
	if (m->http != NULL)
		evhttp_free(m->http);
	while ((c = m->conns) != NULL) {
		m->conns = c->next;
		bufferevent_decref(c->bev);
		free(c);
	}
	if (m->sweep_ev != NULL)
		event_free(m->sweep_ev);
	free(m);
}
