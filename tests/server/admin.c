/*
 * The test server's admin interface under /admin/: approvals, packages,
 * faults, token revocation and the request log, all JSON.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/http.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "log.h"
#include "server.h"
#include "xmalloc.h"

static struct json_object *
admin_body(struct evhttp_request *req)
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

void
admin_pending(struct evhttp_request *req)
{
	struct json_object *a = json_object_new_array(), *o;
	struct device *d;

	for (d = srv.devices; d != NULL; d = d->next) {
		if (d->approved)
			continue;
		o = json_object_new_object();
		json_object_object_add(o, "id", json_object_new_string(d->id));
		json_object_object_add(o, "public_key",
		                       json_object_new_string(d->pubkey));
		json_object_object_add(o, "device_type",
		                       json_object_new_string(d->dev_type));
		json_object_object_add(o, "software_version",
		                       json_object_new_string(d->version));
		json_object_array_add(a, o);
	}
	reply_json(req, 200, a, NULL);
}

/* Every device the server knows, with the version it last reported. */
void
admin_devices(struct evhttp_request *req)
{
	struct json_object *a = json_object_new_array(), *o;
	struct device *d;

	for (d = srv.devices; d != NULL; d = d->next) {
		o = json_object_new_object();
		json_object_object_add(o, "id", json_object_new_string(d->id));
		json_object_object_add(o, "approved",
		                       json_object_new_boolean(d->approved));
		json_object_object_add(o, "software_version",
		                       json_object_new_string(d->version));
		json_object_array_add(a, o);
	}
	reply_json(req, 200, a, NULL);
}

void
admin_approve(struct evhttp_request *req)
{
	struct json_object *o, *rsp;
	struct device *d;
	const char *id, *pk;
	int n = 0;

	if ((o = admin_body(req)) == NULL ||
	    (id = str_field(o, "id")) == NULL) {
		json_object_put(o);
		reply_error(req, 400, "body must be {\"id\": ...}", NULL);
		return;
	}
	pk = str_field(o, "public_key");
	for (d = srv.devices; d != NULL; d = d->next) {
		if (strcmp(d->id, id) == 0 && !d->approved &&
		    (pk == NULL || strcmp(pk, d->pubkey) == 0)) {
			d->approved = true;
			n++;
		}
	}
	json_object_put(o);
	if (n == 0) {
		reply_error(req, 404, "no pending device with that id", NULL);
		return;
	}
	rsp = json_object_new_object();
	json_object_object_add(rsp, "approved", json_object_new_int(n));
	reply_json(req, 200, rsp, NULL);
}

/* Copies src into the data directory, hashing it on the way. */
static int
copy_package(const char *src, struct package *p, char *err, size_t errcap)
{
	unsigned char buf[65536], d[32];
	EVP_MD_CTX *md;
	int in, out = -1, i, rc = -1;
	ssize_t n;

	if ((in = open(src, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(err, errcap, "cannot open %s: %s", src,
		         strerror(errno));
		return -1;
	}
	xasprintf(&p->path, "%s/%s", srv.data_dir, p->uuid);
	if ((out = open(p->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	                0644)) == -1) {
		snprintf(err, errcap, "cannot create %s: %s", p->path,
		         strerror(errno));
		close(in);
		return -1;
	}
	md = EVP_MD_CTX_new();
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	while ((n = read(in, buf, sizeof(buf))) > 0) {
		EVP_DigestUpdate(md, buf, (size_t)n);
		if (write(out, buf, (size_t)n) != n) {
			snprintf(err, errcap, "cannot write %s", p->path);
			goto out;
		}
		p->size += (uint64_t)n;
	}
	if (n == -1) {
		snprintf(err, errcap, "cannot read %s: %s", src,
		         strerror(errno));
		goto out;
	}
	EVP_DigestFinal_ex(md, d, NULL);
	for (i = 0; i < 32; i++)
		snprintf(p->sha + 2 * i, 3, "%02x", d[i]);
	rc = 0;
out:
	EVP_MD_CTX_free(md);
	close(in);
	close(out);
	return rc;
}

void
admin_packages(struct evhttp_request *req)
{
	struct json_object *o, *rsp;
	struct package *p;
	const char *file, *ver, *type, *uri;
	unsigned char u[16];
	char err[512], url[256];

	if ((o = admin_body(req)) == NULL ||
	    (file = str_field(o, "file")) == NULL ||
	    (ver = str_field(o, "version")) == NULL ||
	    (type = str_field(o, "device_type")) == NULL) {
		json_object_put(o);
		reply_error(
		    req, 400,
		    "body must be {\"file\", \"version\", \"device_type\"}",
		    NULL);
		return;
	}
	uri = str_field(o, "uri");
	p = xcalloc(1, sizeof(*p));
	if (RAND_bytes(u, sizeof(u)) != 1)
		fatalx("no random bytes", NULL);
	u[6] = (u[6] & 0x0f) | 0x40;
	u[8] = (u[8] & 0x3f) | 0x80;
	snprintf(p->uuid, sizeof(p->uuid),
	         "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
	         "%02x%02x%02x%02x%02x%02x",
	         u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9],
	         u[10], u[11], u[12], u[13], u[14], u[15]);
	if (copy_package(file, p, err, sizeof(err)) == -1) {
		json_object_put(o);
		free(p->path);
		free(p);
		reply_error(req, 400, err, NULL);
		return;
	}
	p->id = ++srv.next_package_id;
	p->version = xstrdup(ver);
	p->dev_type = xstrdup(type);
	p->uri = uri != NULL ? xstrdup(uri) : NULL;
	p->created = time(NULL);
	p->next = srv.packages;
	srv.packages = p;
	json_object_put(o);
	rsp = json_object_new_object();
	json_object_object_add(rsp, "id", json_object_new_int64(p->id));
	json_object_object_add(rsp, "sha256", json_object_new_string(p->sha));
	snprintf(url, sizeof(url), "%s/local_storage/%s", srv.base_url,
	         p->uuid);
	json_object_object_add(
	    rsp, "uri", json_object_new_string(p->uri != NULL ? p->uri : url));
	reply_json(req, 200, rsp, NULL);
}

void
admin_faults(struct evhttp_request *req)
{
	struct json_object *o, *v, *rsp;
	struct faults f;

	if ((o = admin_body(req)) == NULL) {
		reply_error(req, 400, "body must be a JSON object", NULL);
		return;
	}
	f = srv.faults;
	if (json_object_object_get_ex(o, "reset", &v) &&
	    json_object_get_boolean(v))
		memset(&f, 0, sizeof(f));
	if (json_object_object_get_ex(o, "error_rate", &v))
		f.error_rate = json_object_get_double(v);
	if (json_object_object_get_ex(o, "error_status", &v))
		f.error_status = json_object_get_int(v);
	if (json_object_object_get_ex(o, "slow_bps", &v))
		f.slow_bps = json_object_get_int64(v);
	if (json_object_object_get_ex(o, "truncate_after", &v))
		f.truncate_after = json_object_get_int64(v);
	if (json_object_object_get_ex(o, "wrong_sha", &v))
		f.wrong_sha = json_object_get_boolean(v);
	json_object_put(o);
	if (f.error_status == 0)
		f.error_status = 503;
	if (f.error_rate < 0 || f.error_rate > 1 || f.error_status < 400 ||
	    f.error_status > 599 || f.slow_bps < 0 || f.truncate_after < 0) {
		reply_error(req, 400, "fault values out of range", NULL);
		return;
	}
	srv.faults = f;
	rsp = json_object_new_object();
	json_object_object_add(rsp, "error_rate",
	                       json_object_new_double(f.error_rate));
	json_object_object_add(rsp, "error_status",
	                       json_object_new_int(f.error_status));
	json_object_object_add(rsp, "slow_bps",
	                       json_object_new_int64(f.slow_bps));
	json_object_object_add(rsp, "truncate_after",
	                       json_object_new_int64(f.truncate_after));
	json_object_object_add(rsp, "wrong_sha",
	                       json_object_new_boolean(f.wrong_sha));
	reply_json(req, 200, rsp, NULL);
}

void
tokens_clear(void)
{
	struct token *t;

	while ((t = srv.tokens) != NULL) {
		srv.tokens = t->next;
		free(t);
	}
}

void
admin_revoke_tokens(struct evhttp_request *req)
{
	tokens_clear();
	reply_json(req, 200, json_object_new_object(), NULL);
}

void
admin_log(struct evhttp_request *req)
{
	/* reply_json drops one reference; the log keeps its own. */
	reply_json(req, 200, json_object_get(srv.logarr), NULL);
}

/* What a client's fairness caps can be checked against. */
void
admin_server_stats(struct evhttp_request *req)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "downloads_active",
	                       json_object_new_int(srv.downloads_active));
	json_object_object_add(o, "downloads_peak",
	                       json_object_new_int(srv.downloads_peak));
	reply_json(req, 200, o, NULL);
}
