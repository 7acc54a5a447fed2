/*
 * The test server's plain HTTP routes of the management channel: the
 * local-storage multipart upload (PUT .../parts/<name>, answered with the
 * ETag <name> as RDFM's local storage does) and POST /api/v1/logs with its
 * schema (MGMT-CHANNEL.md sections 8 and 9).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <json-c/json.h>

#include "log.h"
#include "mgmt_srv.h"
#include "server.h"
#include "xmalloc.h"

struct part *
part_find(const char *name)
{
	struct part *p;

	for (p = mg.parts; p != NULL; p = p->next)
		if (strcmp(p->name, name) == 0)
			return p;
	return NULL;
}

void
handle_part(struct evhttp_request *req, const char *name)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	struct part *p;
	size_t i, n = strlen(name);

	if (evhttp_request_get_command(req) != EVHTTP_REQ_PUT) {
		reply_error(req, 405, "method not allowed", NULL);
		return;
	}
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)name[i]) && name[i] != '-' &&
		    name[i] != '_' && name[i] != '.')
			break;
	if (n == 0 || n >= sizeof(p->name) || i != n) {
		reply_error(req, 400, "bad part name", NULL);
		return;
	}
	if (strncmp(name, "redirect-", 9) == 0) {
		/* For the test that uploads never follow a redirect. */
		char loc[256];

		snprintf(loc, sizeof(loc), "/local_storage_multipart/parts/%s",
		         name + 9);
		evhttp_add_header(evhttp_request_get_output_headers(req),
		                  "Location", loc);
		log_request(req, 307, NULL, 0, NULL);
		evhttp_send_reply(req, 307, "Temporary Redirect", NULL);
		return;
	}
	if ((p = part_find(name)) == NULL) {
		p = xcalloc(1, sizeof(*p));
		snprintf(p->name, sizeof(p->name), "%s", name);
		p->next = mg.parts;
		mg.parts = p;
	}
	free(p->data);
	p->len = evbuffer_get_length(in);
	p->data = xmalloc(p->len > 0 ? p->len : 1);
	evbuffer_remove(in, p->data, p->len);
	/* Local storage's ETag is the name; S3's are quoted ("q" names). */
	if (name[0] == 'q') {
		char q[80];

		snprintf(q, sizeof(q), "\"%s\"", name);
		evhttp_add_header(evhttp_request_get_output_headers(req),
		                  "ETag", q);
	} else
		evhttp_add_header(evhttp_request_get_output_headers(req),
		                  "ETag", name);
	log_request(req, 200, NULL, p->len, NULL);
	evhttp_send_reply(req, 200, "OK", NULL);
}

/* "Wed, 02 Oct 2002 15:00:00 -0000", as email.utils parses it. */
static bool
rfc822_date(const char *s)
{
	struct tm tm;
	const char *end;

	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%a, %d %b %Y %H:%M:%S %z", &tm);
	return end != NULL && *end == '\0';
}

static const char *
check_batch(struct json_object *o)
{
	struct json_object *batch, *e;
	size_t i;

	if (json_object_object_length(o) != 1 ||
	    !json_object_object_get_ex(o, "batch", &batch) ||
	    !json_object_is_type(batch, json_type_array))
		return "schema validation failed: {'batch': ['required']}";
	for (i = 0; i < json_object_array_length(batch); i++) {
		e = json_object_array_get_idx(batch, i);
		if (!json_object_is_type(e, json_type_object) ||
		    json_object_object_length(e) != 3 ||
		    str_field(e, "device_timestamp") == NULL ||
		    str_field(e, "name") == NULL ||
		    str_field(e, "entry") == NULL)
			return "schema validation failed: an entry needs "
			       "exactly device_timestamp, name and entry";
		if (!rfc822_date(str_field(e, "device_timestamp")))
			return "schema validation failed: device_timestamp "
			       "is not an RFC 822 date";
	}
	return NULL;
}

void
handle_logs(struct evhttp_request *req)
{
	struct json_object *o, *batch, *e;
	const char *dev_id, *why;
	struct mdev *d;
	char *body;
	size_t len, i;
	int status;

	if (!mg.logs_route) {
		reply_error(req, 404, "not found", NULL);
		return;
	}
	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
		reply_error(req, 405, "method not allowed", NULL);
		return;
	}
	if ((dev_id = bearer_device(req, &status, &why)) == NULL) {
		reply_error(req, status, why, NULL);
		return;
	}
	if (mg.logs_status != 0) {
		reply_error(req, mg.logs_status, "injected for the test",
		            dev_id);
		return;
	}
	if (!is_json(req)) {
		reply_error(req, 415, "unsupported media type", dev_id);
		return;
	}
	if ((body = request_body(req, MAX_API_BODY, &len)) == NULL) {
		reply_error(req, 413, "body too large", dev_id);
		return;
	}
	o = parse_object(body, len);
	free(body);
	if (o == NULL) {
		reply_error(req, 400, "schema validation failed: not JSON",
		            dev_id);
		return;
	}
	if ((why = check_batch(o)) != NULL) {
		json_object_put(o);
		reply_error(req, 400, why, dev_id);
		return;
	}
	d = mdev_get(dev_id);
	json_object_object_get_ex(o, "batch", &batch);
	for (i = 0; i < json_object_array_length(batch); i++) {
		e = json_object_array_get_idx(batch, i);
		json_object_array_add(d->logs, json_object_get(e));
	}
	json_object_put(o);
	reply_json(req, 200, json_object_new_object(), dev_id);
}
