/*
 * The test server's device management channel: /api/v1/devices/ws with the
 * real server's handshake, authentication and close-code rules, the
 * message classes it accepts from devices (MGMT-CHANNEL.md sections 2-8),
 * shell sessions on /api/v1/devices/<mac>/shell/attach/<uuid>, and the
 * state the admin side (mgmt_admin.c) drives and reads.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <json-c/json.h>
#include <openssl/evp.h>

#include "log.h"
#include "mgmt.h"
#include "mgmt_srv.h"
#include "server.h"
#include "xmalloc.h"

struct mgmt_state mg;

/* Helpers. */

void
uuid4(char out[37])
{
	char h[33];

	random_hex(h, 16);
	snprintf(out, 37, "%.8s-%.4s-4%.3s-a%.3s-%.12s", h, h + 8, h + 13,
	         h + 17, h + 20);
}

double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

struct mdev *
mdev_get(const char *id)
{
	struct mdev *d;

	for (d = mg.devs; d != NULL; d = d->next)
		if (strcmp(d->id, id) == 0)
			return d;
	d = xcalloc(1, sizeof(*d));
	d->id = xstrdup(id);
	d->progress = json_object_new_array();
	d->versions = json_object_new_array();
	d->messages = json_object_new_array();
	d->closes = json_object_new_array();
	d->logs = json_object_new_array();
	d->next = mg.devs;
	mg.devs = d;
	return d;
}

struct mdev *
mdev_find(const char *id)
{
	struct mdev *d;

	for (d = mg.devs; d != NULL; d = d->next)
		if (strcmp(d->id, id) == 0)
			return d;
	return NULL;
}

struct exec *
exec_find(const char *id)
{
	struct exec *e;

	for (e = mg.execs; e != NULL; e = e->next)
		if (strcmp(e->id, id) == 0)
			return e;
	return NULL;
}

/* The device behind "Bearer token=<t>", as the device routes check it. */
const char *
bearer_device(struct evhttp_request *req, int *status, const char **why)
{
	const char *auth = evhttp_find_header(
	    evhttp_request_get_input_headers(req), "Authorization");
	struct token *t;
	time_t now = time(NULL);

	*status = 401;
	if (auth == NULL) {
		*why = "no Authorization header was provided";
		return NULL;
	}
	if (strncmp(auth, "Bearer ", 7) != 0) {
		*why = "invalid Authorization header";
		return NULL;
	}
	if (strncmp(auth + 7, "token=", 6) != 0) {
		/* The real server's error helper is called wrongly: 500. */
		*status = 500;
		*why = "internal server error";
		return NULL;
	}
	for (t = srv.tokens; t != NULL; t = t->next)
		if (strcmp(t->tok, auth + 13) == 0 && t->expires > now)
			return t->dev->id;
	*why = "invalid token was provided";
	return NULL;
}

void
send_json(struct wsconn *c, struct json_object *o)
{
	const char *s = json_object_to_json_string_ext(
	    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);

	wsconn_send(c, true, s, strlen(s));
	json_object_put(o);
}

static void
record_close(struct mdev *d, unsigned code, const char *reason)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "time", json_object_new_double(now_s()));
	json_object_object_add(o, "code", json_object_new_int((int)code));
	json_object_object_add(o, "reason", json_object_new_string(reason));
	json_object_array_add(d->closes, o);
}

void
dev_close(struct mdev *d, unsigned code, const char *reason)
{
	struct wsconn *c = d->conn;

	if (c == NULL)
		return;
	record_close(d, code, reason);
	log_info("closing a device connection", "device=%s code=%u reason=%s",
	         log_q(d->id), code, log_q(reason));
	wsconn_close(c, code, reason);
}

/* Validation as pydantic's default mode does it, by JSON type. */

static bool
is_str(struct json_object *o, const char *k)
{
	struct json_object *v;

	return json_object_object_get_ex(o, k, &v) &&
	       json_object_is_type(v, json_type_string);
}

static bool
is_int(struct json_object *o, const char *k)
{
	struct json_object *v;

	return json_object_object_get_ex(o, k, &v) &&
	       json_object_is_type(v, json_type_int);
}

static bool
is_number(struct json_object *v)
{
	return json_object_is_type(v, json_type_int) ||
	       json_object_is_type(v, json_type_double);
}

static bool
valid_action(struct json_object *a)
{
	struct json_object *cmd, *t;
	size_t i;

	if (!json_object_is_type(a, json_type_object) ||
	    !is_str(a, "action_id") || !is_str(a, "action_name") ||
	    !is_str(a, "description") ||
	    !json_object_object_get_ex(a, "command", &cmd) ||
	    !json_object_is_type(cmd, json_type_array) ||
	    !json_object_object_get_ex(a, "timeout", &t) || !is_number(t))
		return false;
	for (i = 0; i < json_object_array_length(cmd); i++)
		if (!json_object_is_type(json_object_array_get_idx(cmd, i),
		                         json_type_string))
			return false;
	return true;
}

static bool
valid_caps(struct json_object *o)
{
	struct json_object *c;

	if (!json_object_object_get_ex(o, "capabilities", &c) ||
	    !json_object_is_type(c, json_type_object))
		return false;
	json_object_object_foreach(c, k, v)
	{
		(void)k;
		if (!json_object_is_type(v, json_type_boolean))
			return false;
	}
	return true;
}

/* Standard base64 with padding, as Python's b64decode(validate) reads. */
static bool
decode_b64(const char *s, struct json_object **out)
{
	size_t n = strlen(s), pad = 0, i;
	unsigned char *buf;
	int dl;

	*out = NULL;
	if (n % 4 != 0)
		return false;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '+' &&
		    s[i] != '/' && !(s[i] == '=' && i >= n - 2))
			return false;
	if (n == 0) {
		*out = json_object_new_string("");
		return true;
	}
	while (pad < 2 && s[n - 1 - pad] == '=')
		pad++;
	buf = xmalloc(n);
	dl = EVP_DecodeBlock(buf, (const unsigned char *)s, (int)n);
	if (dl < 0 || (size_t)dl < pad) {
		free(buf);
		return false;
	}
	*out = json_object_new_string_len((const char *)buf, dl - (int)pad);
	free(buf);
	return true;
}

/* Server -> device after the action list: the actions queued offline. */
static void
send_queued(struct mdev *d)
{
	struct json_object *o;
	struct exec *e;

	for (e = mg.execs; e != NULL; e = e->next) {
		if (e->dev != d || !e->offline || e->has_result || e->error)
			continue;
		if (!action_listed(d, e->action_id)) {
			e->error = true; /* what the real server does */
			continue;
		}
		o = json_object_new_object();
		json_object_object_add(o, "method",
		                       json_object_new_string("action_exec"));
		json_object_object_add(o, "execution_id",
		                       json_object_new_string(e->id));
		json_object_object_add(o, "action_id",
		                       json_object_new_string(e->action_id));
		e->sent++;
		send_json(d->conn, o);
	}
}

bool
action_listed(struct mdev *d, const char *action_id)
{
	size_t i;

	if (d->actions == NULL)
		return false;
	for (i = 0; i < json_object_array_length(d->actions); i++) {
		struct json_object *a =
		    json_object_array_get_idx(d->actions, i);

		if (strcmp(str_field(a, "action_id"), action_id) == 0)
			return true;
	}
	return false;
}

/* One message from a device, checked against its class. */
static void
dispatch(struct mdev *d, struct json_object *o)
{
	const char *m = str_field(o, "method"), *id;
	struct json_object *v, *arr, *out;
	struct exec *e;
	struct fsreq *f;
	size_t i;
	char reason[128];

	if (m == NULL)
		goto invalid;
	if (strcmp(m, "capability_report") == 0) {
		if (!valid_caps(o))
			goto invalid;
		json_object_object_get_ex(o, "capabilities", &v);
		json_object_put(d->caps);
		d->caps = json_object_get(v);
		if (json_object_object_get_ex(v, "action", &v) &&
		    json_object_get_boolean(v) && !d->asked_list) {
			d->asked_list = true;
			send_json(d->conn,
			          json_tokener_parse(
			              "{\"method\":\"action_list_query\"}"));
		}
	} else if (strcmp(m, "action_list_update") == 0) {
		if (!json_object_object_get_ex(o, "actions", &arr) ||
		    !json_object_is_type(arr, json_type_array))
			goto invalid;
		for (i = 0; i < json_object_array_length(arr); i++)
			if (!valid_action(json_object_array_get_idx(arr, i)))
				goto invalid;
		json_object_put(d->actions);
		d->actions = json_object_get(arr);
		if (!d->sent_queued) {
			d->sent_queued = true;
			send_queued(d);
		}
	} else if (strcmp(m, "action_exec_control") == 0) {
		if (!is_str(o, "execution_id") || !is_str(o, "status"))
			goto invalid;
		id = str_field(o, "execution_id");
		if ((e = exec_find(id)) == NULL || e->dev != d)
			goto bad_exec;
		snprintf(e->control, sizeof(e->control), "%s",
		         str_field(o, "status"));
		e->controls++;
	} else if (strcmp(m, "action_exec_result") == 0) {
		if (!is_str(o, "execution_id") || !is_int(o, "status_code") ||
		    !is_str(o, "output"))
			goto invalid;
		id = str_field(o, "execution_id");
		if ((e = exec_find(id)) == NULL || e->dev != d)
			goto bad_exec;
		if (!decode_b64(str_field(o, "output"), &out)) {
			/* An exception in the real server: no close frame. */
			log_warnx("result output is not base64: dropping the "
			          "connection",
			          "device=%s", log_q(d->id));
			record_close(d, 0, "dropped: output is not base64");
			wsconn_drop(d->conn);
			return;
		}
		json_object_object_get_ex(o, "status_code", &v);
		e->status_code = json_object_get_int(v);
		json_object_put(e->output);
		e->output = out;
		e->has_result = true;
		e->results++;
	} else if (strcmp(m, "update_progress") == 0) {
		if (!is_int(o, "progress"))
			goto invalid;
		json_object_object_get_ex(o, "progress", &v);
		json_object_array_add(d->progress, json_object_get(v));
	} else if (strcmp(m, "update_version") == 0) {
		if (!is_str(o, "version"))
			goto invalid;
		free(d->version);
		d->version = xstrdup(str_field(o, "version"));
		json_object_array_add(d->versions,
		                      json_object_new_string(d->version));
		/* As RDFM does: the device's stored metadata changes too. */
		device_set_version(d->id, d->version);
	} else if (strcmp(m, "fs_file_probe_reply") == 0) {
		if (!is_str(o, "id") || !is_int(o, "status") ||
		    !is_int(o, "size"))
			goto invalid;
		if ((f = fs_find(str_field(o, "id"), false)) == NULL ||
		    f->dev != d)
			goto bad_fs;
		fs_probe_reply(f, o);
	} else if (strcmp(m, "fs_file_download_reply") == 0) {
		if (!is_str(o, "id") || !is_int(o, "status") ||
		    !json_object_object_get_ex(o, "etags", &arr) ||
		    !json_object_is_type(arr, json_type_array))
			goto invalid;
		for (i = 0; i < json_object_array_length(arr); i++)
			if (!json_object_is_type(
			        json_object_array_get_idx(arr, i),
			        json_type_string))
				goto invalid;
		if ((f = fs_find(str_field(o, "id"), true)) == NULL ||
		    f->dev != d)
			goto bad_fs;
		fs_download_reply(f, o);
	} else
		goto invalid;
	return;
invalid:
	dev_close(d, 4001, "invalid request");
	return;
bad_exec:
	snprintf(reason, sizeof(reason), "Invalid execution %s", id);
	dev_close(d, 4001, reason);
	return;
bad_fs:
	dev_close(d, 4001, "invalid filesystem response");
}

static void
on_dev_message(struct wsconn *c, bool text, const uint8_t *data, size_t len,
               void *arg)
{
	struct mdev *d = arg;
	struct json_object *o, *rec;

	rec = json_object_new_object();
	json_object_object_add(rec, "time", json_object_new_double(now_s()));
	json_object_object_add(rec, "text", json_object_new_boolean(text));
	json_object_object_add(
	    rec, "data",
	    json_object_new_string_len((const char *)data, (int)len));
	if (json_object_array_length(d->messages) < 5000)
		json_object_array_add(d->messages, rec);
	else
		json_object_put(rec);
	if (d->conn != c)
		return;
	if (!text) {
		dev_close(d, 1003, "device socket requires text-mode encoding");
		return;
	}
	if ((o = parse_object((const char *)data, len)) == NULL) {
		dev_close(d, 4001, "invalid request");
		return;
	}
	dispatch(d, o);
	json_object_put(o);
}

static void
on_dev_end(struct wsconn *c, unsigned code, void *arg)
{
	struct mdev *d = arg;

	(void)code;
	if (d->conn == c) {
		d->conn = NULL;
		d->disconnects++;
		log_info("device disconnected from the management channel",
		         "device=%s", log_q(d->id));
	}
}

/* A second connection of a device: 101, then 4002 at once. */
static void
on_dup_end(struct wsconn *c, unsigned code, void *arg)
{
	(void)c;
	(void)code;
	(void)arg;
}

static void
handle_ws(struct evhttp_request *req)
{
	static const struct wsconn_cbs dev_cbs = {on_dev_message, on_dev_end};
	static const struct wsconn_cbs dup_cbs = {NULL, on_dup_end};
	const char *dev_id, *why;
	struct wsconn *c;
	struct mdev *d;
	int status;

	if (!wsconn_is_upgrade(req)) {
		/* The route matches WebSocket requests only. */
		struct evbuffer *b = evbuffer_new();

		evbuffer_add_printf(b, "<!doctype html><title>400 Bad "
		                       "Request</title>");
		log_request(req, 400, NULL, 0, NULL);
		evhttp_send_reply(req, 400, "Bad Request", b);
		evbuffer_free(b);
		return;
	}
	if (mg.refuse_ws != 0) {
		reply_error(req, mg.refuse_ws, "refused for the test", NULL);
		return;
	}
	if ((dev_id = bearer_device(req, &status, &why)) == NULL) {
		reply_error(req, status, why, NULL);
		return;
	}
	d = mdev_get(dev_id);
	if (d->conn != NULL) {
		if ((c = wsconn_accept(req, &dup_cbs, NULL)) == NULL)
			return;
		d->duplicates++;
		record_close(d, 4002, "duplicate connections not allowed");
		wsconn_close(c, 4002, "duplicate connections not allowed");
		return;
	}
	if ((c = wsconn_accept(req, &dev_cbs, d)) == NULL)
		return;
	d->conn = c;
	d->connections++;
	d->asked_list = false;
	d->sent_queued = false;
	json_object_put(d->actions);
	d->actions = NULL;
	wsconn_set_ping(c, mg.ping_s);
	log_info("device connected to the management channel", "device=%s",
	         log_q(d->id));
	send_json(c, json_tokener_parse("{\"method\":\"alert\",\"alert\":"
	                                "{\"message\":\"connected\"}}"));
}

/* Shell sessions: the device's second socket. */

struct shell *
shell_find(const char *uuid)
{
	struct shell *s;

	for (s = mg.shells; s != NULL; s = s->next)
		if (strcmp(s->uuid, uuid) == 0)
			return s;
	return NULL;
}

static void
on_shell_message(struct wsconn *c, bool text, const uint8_t *data, size_t len,
                 void *arg)
{
	struct shell *s = arg;

	(void)c;
	if (!text)
		evbuffer_add(s->output, data, len);
	else
		s->text_frames++;
}

static void
on_shell_end(struct wsconn *c, unsigned code, void *arg)
{
	struct shell *s = arg;

	(void)code;
	if (s->conn == c) {
		s->conn = NULL;
		s->ended = true;
	}
}

static void
on_bad_shell_end(struct wsconn *c, unsigned code, void *arg)
{
	(void)c;
	(void)code;
	(void)arg;
}

static void
handle_shell_attach(struct evhttp_request *req, const char *path)
{
	static const struct wsconn_cbs shell_cbs = {on_shell_message,
	                                            on_shell_end};
	static const struct wsconn_cbs bad_cbs = {NULL, on_bad_shell_end};
	const char *why, *uuid;
	struct shell *s;
	struct wsconn *c;
	int status;

	uuid = strrchr(path, '/') + 1;
	if (!wsconn_is_upgrade(req)) {
		reply_error(req, 400, "bad request", NULL);
		return;
	}
	if (bearer_device(req, &status, &why) == NULL) {
		reply_error(req, status, why, NULL);
		return;
	}
	mg.shell_attaches++;
	s = shell_find(uuid);
	/* Like the real server, only the uuid counts, not the mac. */
	if (s == NULL || s->conn != NULL || s->ended ||
	    now_s() - s->created > 5.0) {
		if ((c = wsconn_accept(req, &bad_cbs, NULL)) != NULL)
			wsconn_close(c, 4001,
			             "invalid shell session identifier");
		return;
	}
	if ((c = wsconn_accept(req, &shell_cbs, s)) == NULL)
		return;
	s->conn = c;
	s->attached = true;
	free(s->path);
	s->path = xstrdup(path);
	wsconn_set_ping(c, mg.ping_s);
}

void
mgmt_init(int ping_s)
{
	mg.ping_s = ping_s;
	mg.logs_route = true;
}

void
mgmt_shutdown(void)
{
	struct mdev *d;
	struct shell *s;

	for (d = mg.devs; d != NULL; d = d->next)
		if (d->conn != NULL)
			wsconn_drop(d->conn);
	for (s = mg.shells; s != NULL; s = s->next)
		if (s->conn != NULL)
			wsconn_drop(s->conn);
	mgmt_free_all();
}

bool
mgmt_route(struct evhttp_request *req, const char *path)
{
	size_t n = strlen("/api/v1/devices/");

	if (strcmp(path, "/api/v1/devices/ws") == 0)
		handle_ws(req);
	else if (strncmp(path, "/api/v1/devices/", n) == 0 &&
	         strstr(path + n, "/shell/attach/") != NULL)
		handle_shell_attach(req, path);
	else if (strncmp(path, "/local_storage_multipart/parts/", 31) == 0)
		handle_part(req, path + 31);
	else if (strcmp(path, "/api/v1/logs") == 0)
		handle_logs(req);
	else if (strncmp(path, "/admin/mgmt/", 12) == 0)
		mgmt_admin(req, path + 12);
	else
		return false;
	return true;
}
