/*
 * The admin side of the test server's management channel, under
 * /admin/mgmt/: what an RDFM manager would do (run an action, open a shell
 * and type, fetch a file) and what a test needs to see (every message a
 * device sent, progress, versions, close codes), plus hostile messages and
 * connection faults.  All JSON; README.md lists the requests.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <json-c/json.h>
#include <openssl/evp.h>

#include "log.h"
#include "mgmt_srv.h"
#include "server.h"
#include "xmalloc.h"

static struct json_object *
body_object(struct evhttp_request *req)
{
	struct json_object *o;
	size_t len;
	char *body;

	if ((body = request_body(req, MAX_API_BODY, &len)) == NULL)
		return NULL;
	o = parse_object(body, len);
	free(body);
	return o;
}

/* A query parameter; NULL when absent.  Valid until the next call. */
static const char *
query(struct evhttp_request *req, const char *key)
{
	static struct evkeyvalq q;
	static bool have;
	const char *s;

	if (have)
		evhttp_clear_headers(&q);
	have = false;
	s = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	if (s == NULL || evhttp_parse_query_str(s, &q) != 0)
		return NULL;
	have = true;
	return evhttp_find_header(&q, key);
}

static long long
int_field(struct json_object *o, const char *key, long long def)
{
	struct json_object *v;

	if (o == NULL || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_int))
		return def;
	return json_object_get_int64(v);
}

static struct json_object *
dev_summary(struct mdev *d, bool full)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "connected",
	                       json_object_new_boolean(d->conn != NULL));
	json_object_object_add(o, "connections",
	                       json_object_new_int(d->connections));
	json_object_object_add(o, "duplicates",
	                       json_object_new_int(d->duplicates));
	json_object_object_add(o, "disconnects",
	                       json_object_new_int(d->disconnects));
	json_object_object_add(o, "capabilities", json_object_get(d->caps));
	json_object_object_add(o, "actions", json_object_get(d->actions));
	json_object_object_add(o, "progress", json_object_get(d->progress));
	json_object_object_add(
	    o, "version",
	    d->version != NULL ? json_object_new_string(d->version) : NULL);
	json_object_object_add(o, "versions", json_object_get(d->versions));
	json_object_object_add(o, "closes", json_object_get(d->closes));
	json_object_object_add(
	    o, "nmessages",
	    json_object_new_int((int)json_object_array_length(d->messages)));
	json_object_object_add(o, "logs", json_object_get(d->logs));
	if (full)
		json_object_object_add(o, "messages",
		                       json_object_get(d->messages));
	return o;
}

static void
mgmt_admin_devices(struct evhttp_request *req)
{
	struct json_object *o = json_object_new_object();
	const char *id = query(req, "id");
	struct mdev *d;

	if (id != NULL) {
		if ((d = mdev_find(id)) == NULL) {
			json_object_put(o);
			reply_error(req, 404, "no such device", NULL);
			return;
		}
		json_object_put(o);
		reply_json(req, 200, dev_summary(d, true), NULL);
		return;
	}
	for (d = mg.devs; d != NULL; d = d->next)
		json_object_object_add(o, d->id, dev_summary(d, false));
	reply_json(req, 200, o, NULL);
}

static struct json_object *
exec_json(struct exec *e)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "execution_id",
	                       json_object_new_string(e->id));
	json_object_object_add(o, "device", json_object_new_string(e->dev->id));
	json_object_object_add(o, "action_id",
	                       json_object_new_string(e->action_id));
	json_object_object_add(o, "offline",
	                       json_object_new_boolean(e->offline));
	json_object_object_add(o, "error", json_object_new_boolean(e->error));
	json_object_object_add(o, "sent", json_object_new_int(e->sent));
	json_object_object_add(o, "controls", json_object_new_int(e->controls));
	json_object_object_add(
	    o, "control",
	    e->control[0] != '\0' ? json_object_new_string(e->control) : NULL);
	json_object_object_add(o, "results", json_object_new_int(e->results));
	json_object_object_add(o, "has_result",
	                       json_object_new_boolean(e->has_result));
	json_object_object_add(
	    o, "status_code",
	    e->has_result ? json_object_new_int(e->status_code) : NULL);
	json_object_object_add(o, "output", json_object_get(e->output));
	return o;
}

static void
send_exec(struct mdev *d, struct exec *e)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "method",
	                       json_object_new_string("action_exec"));
	json_object_object_add(o, "execution_id",
	                       json_object_new_string(e->id));
	json_object_object_add(o, "action_id",
	                       json_object_new_string(e->action_id));
	e->sent++;
	send_json(d->conn, o);
}

/*
 * {"device", "action_id", "execution_id"?, "force"?}: sent at once to a
 * connected device (force: even when it did not list the action), queued
 * for the next connection otherwise (the server's 202 path).
 */
static void
admin_exec(struct evhttp_request *req)
{
	struct json_object *o = body_object(req), *rsp, *v;
	const char *dev_id, *action, *eid;
	struct mdev *d;
	struct exec *e;
	bool force = false;

	if (o == NULL || (dev_id = str_field(o, "device")) == NULL ||
	    (action = str_field(o, "action_id")) == NULL) {
		json_object_put(o);
		reply_error(req, 400,
		            "body must be {\"device\", \"action_id\"}", NULL);
		return;
	}
	if (json_object_object_get_ex(o, "force", &v))
		force = json_object_get_boolean(v);
	d = mdev_get(dev_id);
	eid = str_field(o, "execution_id");
	if (eid != NULL && (e = exec_find(eid)) != NULL && e->dev == d &&
	    d->conn != NULL) {
		/* The same execution again, as the server does at reconnection.
		 */
		json_object_put(o);
		send_exec(d, e);
		reply_json(req, 200, exec_json(e), NULL);
		return;
	}
	e = xcalloc(1, sizeof(*e));
	e->dev = d;
	if (eid != NULL)
		snprintf(e->id, sizeof(e->id), "%s", eid);
	else
		uuid4(e->id);
	e->action_id = xstrdup(action);
	e->next = mg.execs;
	mg.execs = e;
	json_object_put(o);
	if (d->conn != NULL && (force || action_listed(d, e->action_id))) {
		send_exec(d, e);
		reply_json(req, 200, exec_json(e), NULL);
		return;
	}
	if (d->conn != NULL) {
		/* The real server: 500, and the row becomes "error". */
		char msg[256];

		e->error = true;
		snprintf(msg, sizeof(msg), "action %s not listed by the device",
		         e->action_id);
		reply_error(req, 500, msg, NULL);
		return;
	}
	e->offline = true;
	rsp = exec_json(e);
	reply_json(req, 202, rsp, NULL);
}

static void
admin_exec_get(struct evhttp_request *req)
{
	const char *id = query(req, "id");
	struct exec *e;

	if (id == NULL || (e = exec_find(id)) == NULL) {
		reply_error(req, 404, "no such execution", NULL);
		return;
	}
	reply_json(req, 200, exec_json(e), NULL);
}

/* {"execution_id"}: the server forgets it (a manager call that ended). */
static void
admin_forget(struct evhttp_request *req)
{
	struct json_object *o = body_object(req);
	struct exec **pp, *e;
	const char *id;

	if (o == NULL || (id = str_field(o, "execution_id")) == NULL) {
		json_object_put(o);
		reply_error(req, 400, "body must be {\"execution_id\"}", NULL);
		return;
	}
	for (pp = &mg.execs; *pp != NULL; pp = &(*pp)->next)
		if (strcmp((*pp)->id, id) == 0) {
			e = *pp;
			*pp = e->next;
			free(e->action_id);
			json_object_put(e->output);
			free(e);
			break;
		}
	json_object_put(o);
	reply_json(req, 200, json_object_new_object(), NULL);
}

static struct mdev *
connected_dev(struct evhttp_request *req, struct json_object *o)
{
	const char *id = str_field(o, "device");
	struct mdev *d;

	if (id == NULL || (d = mdev_find(id)) == NULL || d->conn == NULL) {
		reply_error(req, 409, "device not connected", NULL);
		return NULL;
	}
	return d;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/*
 * {"device", one of "text", "binary_b64", "raw_hex", "ping": true;
 * "fragment": N (text in frames of N bytes), "repeat": N}: hostile or
 * unusual traffic to a connected device.
 */
static void
admin_send(struct evhttp_request *req)
{
	struct json_object *o = body_object(req), *v;
	const char *text, *hex;
	long long frag, repeat, i;
	struct mdev *d;
	uint8_t *raw;
	size_t n, k;
	int dl;

	if (o == NULL || (d = connected_dev(req, o)) == NULL) {
		if (o == NULL)
			reply_error(req, 400, "body must be JSON", NULL);
		json_object_put(o);
		return;
	}
	frag = int_field(o, "fragment", 0);
	repeat = int_field(o, "repeat", 1);
	for (i = 0; i < repeat && d->conn != NULL; i++) {
		if ((text = str_field(o, "text")) != NULL) {
			if (frag > 0)
				wsconn_send_fragmented(d->conn, true, text,
				                       strlen(text),
				                       (size_t)frag);
			else
				wsconn_send(d->conn, true, text, strlen(text));
		} else if ((text = str_field(o, "binary_b64")) != NULL) {
			n = strlen(text);
			raw = xmalloc(n + 1);
			dl = EVP_DecodeBlock(raw, (const unsigned char *)text,
			                     (int)n);
			if (dl >= 0)
				wsconn_send(d->conn, false, raw, (size_t)dl);
			free(raw);
		} else if ((hex = str_field(o, "raw_hex")) != NULL) {
			n = strlen(hex) / 2;
			raw = xmalloc(n + 1);
			for (k = 0; k < n; k++)
				raw[k] = (uint8_t)(hexval(hex[2 * k]) * 16 +
				                   hexval(hex[2 * k + 1]));
			wsconn_send_raw(d->conn, raw, n);
			free(raw);
		} else if (json_object_object_get_ex(o, "ping", &v))
			wsconn_ping(d->conn);
		else if ((n = (size_t)int_field(o, "oversize", 0)) > 0) {
			/* A JSON text of n bytes, too big to be fair. */
			raw = xmalloc(n);
			memset(raw, ' ', n);
			raw[0] = '{';
			raw[n - 1] = '}';
			wsconn_send(d->conn, true, raw, n);
			free(raw);
		}
	}
	json_object_put(o);
	reply_json(req, 200, json_object_new_object(), NULL);
}

/* {"device", "code", "reason"}; {"device"} for drop and stall. */
static void
admin_conn(struct evhttp_request *req, const char *what)
{
	struct json_object *o = body_object(req);
	const char *reason;
	struct mdev *d;

	if (o == NULL || (d = connected_dev(req, o)) == NULL) {
		if (o == NULL)
			reply_error(req, 400, "body must be JSON", NULL);
		json_object_put(o);
		return;
	}
	if (strcmp(what, "close") == 0) {
		reason = str_field(o, "reason");
		dev_close(d, (unsigned)int_field(o, "code", 1000),
		          reason != NULL ? reason : "");
	} else if (strcmp(what, "drop") == 0)
		wsconn_drop(d->conn);
	else
		wsconn_stall(d->conn);
	json_object_put(o);
	reply_json(req, 200, json_object_new_object(), NULL);
}

/*
 * {"ping_interval"?, "refuse_ws"?, "logs_route"?, "logs_status"?,
 *  "token_expiry"? (seconds, for tokens issued from now on)}
 */
static void
admin_config(struct evhttp_request *req)
{
	struct json_object *o = body_object(req), *v;

	if (o == NULL) {
		reply_error(req, 400, "body must be JSON", NULL);
		return;
	}
	mg.ping_s = (int)int_field(o, "ping_interval", mg.ping_s);
	mg.refuse_ws = (int)int_field(o, "refuse_ws", mg.refuse_ws);
	mg.logs_status = (int)int_field(o, "logs_status", mg.logs_status);
	if (int_field(o, "token_expiry", 0) > 0)
		srv.token_expiry = int_field(o, "token_expiry", 0);
	if (json_object_object_get_ex(o, "logs_route", &v))
		mg.logs_route = json_object_get_boolean(v);
	json_object_put(o);
	reply_json(req, 200, json_object_new_object(), NULL);
}

/* Shell: {"device", "mac"?, "uuid"?} opens a session (shell_attach). */
static void
admin_shell(struct evhttp_request *req)
{
	struct json_object *o = body_object(req), *m, *rsp;
	const char *mac, *uuid;
	struct shell *s;
	struct mdev *d;

	if (o == NULL || (d = connected_dev(req, o)) == NULL) {
		if (o == NULL)
			reply_error(req, 400, "body must be JSON", NULL);
		json_object_put(o);
		return;
	}
	s = xcalloc(1, sizeof(*s));
	s->dev = d;
	if ((uuid = str_field(o, "uuid")) != NULL)
		snprintf(s->uuid, sizeof(s->uuid), "%s", uuid);
	else
		uuid4(s->uuid);
	s->created = now_s();
	s->output = evbuffer_new();
	s->next = mg.shells;
	mg.shells = s;
	mac = str_field(o, "mac");
	m = json_object_new_object();
	json_object_object_add(m, "method",
	                       json_object_new_string("shell_attach"));
	json_object_object_add(
	    m, "mac_addr", json_object_new_string(mac != NULL ? mac : d->id));
	json_object_object_add(m, "uuid", json_object_new_string(s->uuid));
	send_json(d->conn, m);
	json_object_put(o);
	rsp = json_object_new_object();
	json_object_object_add(rsp, "uuid", json_object_new_string(s->uuid));
	reply_json(req, 200, rsp, NULL);
}

/* {"uuid", "keys"?: typed text (binary), "text"?: a text frame} */
static void
admin_shell_input(struct evhttp_request *req)
{
	struct json_object *o = body_object(req);
	const char *uuid, *keys, *text;
	struct shell *s;

	if (o == NULL || (uuid = str_field(o, "uuid")) == NULL ||
	    (s = shell_find(uuid)) == NULL || s->conn == NULL) {
		json_object_put(o);
		reply_error(req, 409, "no such attached session", NULL);
		return;
	}
	if ((text = str_field(o, "text")) != NULL)
		wsconn_send(s->conn, true, text, strlen(text));
	if ((keys = str_field(o, "keys")) != NULL)
		wsconn_send(s->conn, false, keys, strlen(keys));
	json_object_put(o);
	reply_json(req, 200, json_object_new_object(), NULL);
}

static void
admin_shell_close(struct evhttp_request *req)
{
	struct json_object *o = body_object(req);
	const char *uuid;
	struct shell *s;

	if (o == NULL || (uuid = str_field(o, "uuid")) == NULL ||
	    (s = shell_find(uuid)) == NULL || s->conn == NULL) {
		json_object_put(o);
		reply_error(req, 409, "no such attached session", NULL);
		return;
	}
	wsconn_close(s->conn, 1000, "");
	json_object_put(o);
	reply_json(req, 200, json_object_new_object(), NULL);
}

static void
admin_shell_get(struct evhttp_request *req)
{
	const char *uuid = query(req, "uuid");
	struct json_object *o;
	struct shell *s;
	size_t n;

	if (uuid == NULL || (s = shell_find(uuid)) == NULL) {
		reply_error(req, 404, "no such session", NULL);
		return;
	}
	n = evbuffer_get_length(s->output);
	o = json_object_new_object();
	json_object_object_add(o, "attached",
	                       json_object_new_boolean(s->attached));
	json_object_object_add(o, "connected",
	                       json_object_new_boolean(s->conn != NULL));
	json_object_object_add(o, "ended", json_object_new_boolean(s->ended));
	json_object_object_add(o, "path",
	                       s->path != NULL ? json_object_new_string(s->path)
	                                       : NULL);
	json_object_object_add(o, "text_frames",
	                       json_object_new_int(s->text_frames));
	json_object_object_add(
	    o, "output",
	    json_object_new_string_len(
	        (const char *)evbuffer_pullup(s->output, (ssize_t)n), (int)n));
	reply_json(req, 200, o, NULL);
}

static void
admin_stats(struct evhttp_request *req)
{
	struct json_object *o = json_object_new_object();
	struct mdev *d;
	int connected = 0;

	for (d = mg.devs; d != NULL; d = d->next)
		if (d->conn != NULL)
			connected++;
	json_object_object_add(o, "connected", json_object_new_int(connected));
	json_object_object_add(o, "shell_attaches",
	                       json_object_new_int(mg.shell_attaches));
	reply_json(req, 200, o, NULL);
}

/* Files. */

struct fsreq *
fs_find(const char *id, bool download)
{
	struct fsreq *f;

	for (f = mg.fsreqs; f != NULL; f = f->next)
		if (strcmp(download ? f->dl_id : f->probe_id, id) == 0)
			return f;
	return NULL;
}

/* {"device", "file", "part_size"?, "download_file"?, "nurls_delta"?,
 * "urls"?} */
static void
admin_fs(struct evhttp_request *req)
{
	struct json_object *o = body_object(req), *m, *v, *rsp;
	const char *file, *dl;
	struct fsreq *f;
	struct mdev *d;

	if (o == NULL || (d = connected_dev(req, o)) == NULL) {
		if (o == NULL)
			reply_error(req, 400, "body must be JSON", NULL);
		json_object_put(o);
		return;
	}
	if ((file = str_field(o, "file")) == NULL) {
		json_object_put(o);
		reply_error(req, 400, "body needs \"file\"", NULL);
		return;
	}
	f = xcalloc(1, sizeof(*f));
	f->dev = d;
	f->file = xstrdup(file);
	dl = str_field(o, "download_file");
	f->dl_file = xstrdup(dl != NULL ? dl : file);
	f->part_size = int_field(o, "part_size", 0);
	f->quoted = json_object_object_get_ex(o, "quoted", &v) &&
	            json_object_get_boolean(v);
	f->nurls_delta = (int)int_field(o, "nurls_delta", 0);
	if (json_object_object_get_ex(o, "urls", &v))
		f->urls = json_object_get(v);
	f->probe_status = f->dl_status = -1;
	f->size = -1;
	uuid4(f->probe_id);
	f->state = "probing";
	f->next = mg.fsreqs;
	mg.fsreqs = f;
	m = json_object_new_object();
	json_object_object_add(m, "method",
	                       json_object_new_string("fs_file_probe"));
	json_object_object_add(m, "id", json_object_new_string(f->probe_id));
	json_object_object_add(m, "file", json_object_new_string(f->file));
	send_json(d->conn, m);
	json_object_put(o);
	rsp = json_object_new_object();
	json_object_object_add(rsp, "probe_id",
	                       json_object_new_string(f->probe_id));
	reply_json(req, 200, rsp, NULL);
}

void
fs_probe_reply(struct fsreq *f, struct json_object *o)
{
	struct json_object *m, *urls, *v;
	char url[512];
	long long n, i;

	json_object_object_get_ex(o, "status", &v);
	f->probe_status = json_object_get_int64(v);
	json_object_object_get_ex(o, "size", &v);
	f->size = json_object_get_int64(v);
	if (f->probe_status != 0 || f->size <= 0) {
		f->state = "failed"; /* {"status": 1, "url": ""} */
		return;
	}
	if (f->part_size <= 0)
		f->part_size = f->size;
	n = (f->size + f->part_size - 1) / f->part_size + f->nurls_delta;
	if (n < 0)
		n = 0;
	uuid4(f->dl_id);
	f->nparts = (size_t)n;
	f->names = xcalloc(f->nparts + 1, sizeof(*f->names));
	urls = json_object_new_array();
	for (i = 0; i < n; i++) {
		xasprintf(&f->names[i], "%s%s-%lld", f->quoted ? "q" : "",
		          f->dl_id, i);
		snprintf(url, sizeof(url),
		         "%s/local_storage_multipart/parts/%s", srv.base_url,
		         f->names[i]);
		json_object_array_add(urls, json_object_new_string(url));
	}
	if (f->urls != NULL) {
		json_object_put(urls);
		urls = json_object_get(f->urls);
	}
	m = json_object_new_object();
	json_object_object_add(m, "method",
	                       json_object_new_string("fs_file_download"));
	json_object_object_add(m, "id", json_object_new_string(f->dl_id));
	json_object_object_add(m, "file", json_object_new_string(f->dl_file));
	json_object_object_add(m, "upload_urls", urls);
	json_object_object_add(m, "part_size",
	                       json_object_new_int64(f->part_size));
	f->state = "downloading";
	send_json(f->dev->conn, m);
}

void
fs_download_reply(struct fsreq *f, struct json_object *o)
{
	struct json_object *v, *etags;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, k;
	EVP_MD_CTX *ctx;
	struct part *p;
	size_t i;

	json_object_object_get_ex(o, "status", &v);
	f->dl_status = json_object_get_int64(v);
	json_object_object_get_ex(o, "etags", &etags);
	json_object_put(f->etags);
	f->etags = json_object_get(etags);
	if (f->dl_status != 0) {
		f->state = "failed";
		return;
	}
	/* Local storage assembles only when the ETags match the names. */
	f->etags_match = json_object_array_length(etags) == f->nparts;
	for (i = 0; f->etags_match && i < f->nparts; i++) {
		char want[80];

		snprintf(want, sizeof(want), f->quoted ? "\"%s\"" : "%s",
		         f->names[i]);
		f->etags_match =
		    strcmp(json_object_get_string(
		               json_object_array_get_idx(etags, i)),
		           want) == 0 &&
		    part_find(f->names[i]) != NULL;
	}
	if (!f->etags_match) {
		f->state = "failed";
		return;
	}
	ctx = EVP_MD_CTX_new();
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	f->assembled = 0;
	for (i = 0; i < f->nparts; i++) {
		p = part_find(f->names[i]);
		EVP_DigestUpdate(ctx, p->data, p->len);
		f->assembled += p->len;
	}
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	for (k = 0; k < mdlen; k++)
		snprintf(f->sha256 + 2 * k, 3, "%02x", md[k]);
	f->state = "done";
}

static void
admin_fs_get(struct evhttp_request *req)
{
	const char *id = query(req, "probe_id");
	struct json_object *o;
	struct fsreq *f;

	if (id == NULL || (f = fs_find(id, false)) == NULL) {
		reply_error(req, 404, "no such file request", NULL);
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "state", json_object_new_string(f->state));
	json_object_object_add(o, "probe_status",
	                       json_object_new_int64(f->probe_status));
	json_object_object_add(o, "size", json_object_new_int64(f->size));
	json_object_object_add(o, "download_id",
	                       json_object_new_string(f->dl_id));
	json_object_object_add(o, "download_status",
	                       json_object_new_int64(f->dl_status));
	json_object_object_add(o, "nparts",
	                       json_object_new_int64((int64_t)f->nparts));
	json_object_object_add(o, "etags", json_object_get(f->etags));
	json_object_object_add(o, "etags_match",
	                       json_object_new_boolean(f->etags_match));
	json_object_object_add(o, "assembled",
	                       json_object_new_int64((int64_t)f->assembled));
	json_object_object_add(o, "sha256", json_object_new_string(f->sha256));
	reply_json(req, 200, o, NULL);
}

void
mgmt_admin(struct evhttp_request *req, const char *what)
{
	bool get = evhttp_request_get_command(req) == EVHTTP_REQ_GET;

	if (get && strcmp(what, "devices") == 0)
		mgmt_admin_devices(req);
	else if (get && strcmp(what, "exec") == 0)
		admin_exec_get(req);
	else if (get && strcmp(what, "shell") == 0)
		admin_shell_get(req);
	else if (get && strcmp(what, "fs") == 0)
		admin_fs_get(req);
	else if (get && strcmp(what, "stats") == 0)
		admin_stats(req);
	else if (get)
		reply_error(req, 404, "no such admin endpoint", NULL);
	else if (strcmp(what, "exec") == 0)
		admin_exec(req);
	else if (strcmp(what, "forget") == 0)
		admin_forget(req);
	else if (strcmp(what, "send") == 0)
		admin_send(req);
	else if (strcmp(what, "close") == 0 || strcmp(what, "drop") == 0 ||
	         strcmp(what, "stall") == 0)
		admin_conn(req, what);
	else if (strcmp(what, "config") == 0)
		admin_config(req);
	else if (strcmp(what, "shell") == 0)
		admin_shell(req);
	else if (strcmp(what, "shell/input") == 0)
		admin_shell_input(req);
	else if (strcmp(what, "shell/close") == 0)
		admin_shell_close(req);
	else if (strcmp(what, "fs") == 0)
		admin_fs(req);
	else
		reply_error(req, 404, "no such admin endpoint", NULL);
}

void
mgmt_free_all(void)
{
	size_t i;

	while (mg.devs != NULL) {
		struct mdev *d = mg.devs;

		mg.devs = d->next;
		free(d->id);
		free(d->version);
		json_object_put(d->caps);
		json_object_put(d->actions);
		json_object_put(d->progress);
		json_object_put(d->versions);
		json_object_put(d->messages);
		json_object_put(d->closes);
		json_object_put(d->logs);
		free(d);
	}
	while (mg.execs != NULL) {
		struct exec *e = mg.execs;

		mg.execs = e->next;
		free(e->action_id);
		json_object_put(e->output);
		free(e);
	}
	while (mg.fsreqs != NULL) {
		struct fsreq *f = mg.fsreqs;

		mg.fsreqs = f->next;
		for (i = 0; i < f->nparts; i++)
			free(f->names[i]);
		free(f->names);
		free(f->file);
		free(f->dl_file);
		json_object_put(f->urls);
		json_object_put(f->etags);
		free(f);
	}
	while (mg.shells != NULL) {
		struct shell *s = mg.shells;

		mg.shells = s->next;
		evbuffer_free(s->output);
		free(s->path);
		free(s);
	}
	while (mg.parts != NULL) {
		struct part *p = mg.parts;

		mg.parts = p->next;
		free(p->data);
		free(p);
	}
}
