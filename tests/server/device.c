/*
 * The test server's device API: authentication with the signature checked
 * over the raw body, devices keyed by id and exact public-key string, and
 * the update check.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/http.h>
#include <json-c/json.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "log.h"
#include "server.h"
#include "xmalloc.h"

/*
 * The public key in any form the server accepts: SPKI or PKCS#1 under
 * "PUBLIC KEY" (the Go client's mislabel), or PKCS#1 "RSA PUBLIC KEY".
 */
static EVP_PKEY *
parse_public_key(const char *pem)
{
	const unsigned char *p;
	unsigned char *data = NULL;
	char *name = NULL, *header = NULL;
	EVP_PKEY *key = NULL;
	long len = 0;
	BIO *bio;

	bio = BIO_new_mem_buf(pem, (int)strlen(pem));
	if (bio == NULL || PEM_read_bio(bio, &name, &header, &data, &len) != 1)
		goto out;
	if (strcmp(name, "PUBLIC KEY") == 0) {
		p = data;
		key = d2i_PUBKEY(NULL, &p, len);
		if (key != NULL && p != data + len) {
			EVP_PKEY_free(key);
			key = NULL;
		}
	}
	if (key == NULL && (strcmp(name, "PUBLIC KEY") == 0 ||
	                    strcmp(name, "RSA PUBLIC KEY") == 0)) {
		p = data;
		key = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, len);
		if (key != NULL && p != data + len) {
			EVP_PKEY_free(key);
			key = NULL;
		}
	}
	if (key != NULL && EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA) {
		EVP_PKEY_free(key);
		key = NULL;
	}
out:
	OPENSSL_free(name);
	OPENSSL_free(header);
	OPENSSL_free(data);
	BIO_free(bio);
	ERR_clear_error();
	return key;
}

static bool
verify_signature(EVP_PKEY *key, const char *sig_b64, const char *body,
                 size_t len)
{
	unsigned char *sig;
	size_t n = strlen(sig_b64), pad = 0;
	EVP_MD_CTX *md;
	bool ok;
	int dl;

	if (n == 0 || n % 4 != 0 || n > 4096)
		return false;
	while (pad < 2 && sig_b64[n - 1 - pad] == '=')
		pad++;
	sig = xmalloc(n);
	dl = EVP_DecodeBlock(sig, (const unsigned char *)sig_b64, (int)n);
	if (dl < 0 || (size_t)dl < pad) {
		free(sig);
		return false;
	}
	md = EVP_MD_CTX_new();
	ok = md != NULL &&
	     EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
	     EVP_DigestVerify(md, sig, (size_t)dl - pad,
	                      (const unsigned char *)body, len) == 1;
	EVP_MD_CTX_free(md);
	free(sig);
	ERR_clear_error();
	return ok;
}

/* "metadata": string (or list) values, and the three required keys. */
static const char *
check_metadata(struct json_object *md)
{
	static const char *required[] = {"rdfm.software.version",
	                                 "rdfm.hardware.devtype",
	                                 "rdfm.hardware.macaddr"};
	size_t i;

	if (!json_object_is_type(md, json_type_object))
		return "metadata must be an object";
	json_object_object_foreach(md, k, v)
	{
		(void)k;
		if (!json_object_is_type(v, json_type_string) &&
		    !json_object_is_type(v, json_type_array))
			return "metadata values must be strings";
	}
	for (i = 0; i < sizeof(required) / sizeof(required[0]); i++)
		if (str_field(md, required[i]) == NULL)
			return "missing metadata";
	return NULL;
}

static struct device *
device_find(const char *id, const char *pubkey)
{
	struct device *d;

	for (d = srv.devices; d != NULL; d = d->next)
		if (strcmp(d->id, id) == 0 && strcmp(d->pubkey, pubkey) == 0)
			return d;
	return NULL;
}

void
device_set_version(const char *id, const char *version)
{
	struct device *d;

	for (d = srv.devices; d != NULL; d = d->next)
		if (strcmp(d->id, id) == 0 && d->approved) {
			free(d->version);
			d->version = xstrdup(version);
		}
}

void
handle_auth(struct evhttp_request *req)
{
	struct json_object *o = NULL, *md, *pk, *ts, *rsp;
	struct device *d;
	struct token *t;
	EVP_PKEY *key = NULL;
	const char *sig, *id, *why = NULL;
	size_t len;
	char *body;

	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
		reply_error(req, 405, "method not allowed", NULL);
		return;
	}
	if (!is_json(req)) {
		reply_error(req, 415, "unsupported media type", NULL);
		return;
	}
	if ((body = request_body(req, MAX_API_BODY, &len)) == NULL) {
		reply_error(req, 413, "body too large", NULL);
		return;
	}
	if ((o = parse_object(body, len)) == NULL)
		why = "body is not a JSON object";
	else if (json_object_object_length(o) != 3 ||
	         !json_object_object_get_ex(o, "metadata", &md) ||
	         !json_object_object_get_ex(o, "public_key", &pk) ||
	         !json_object_object_get_ex(o, "timestamp", &ts))
		why = "body must have exactly metadata, public_key, timestamp";
	else if (!json_object_is_type(pk, json_type_string))
		why = "public_key must be a string";
	else if (!json_object_is_type(ts, json_type_int))
		why = "timestamp must be an integer";
	else
		why = check_metadata(md);
	if (why == NULL) {
		sig = evhttp_find_header(evhttp_request_get_input_headers(req),
		                         "X-RDFM-Device-Signature");
		if (sig == NULL)
			why = "missing signature";
		else if ((key = parse_public_key(json_object_get_string(pk))) ==
		         NULL)
			why = "invalid public key";
		else if (!verify_signature(key, sig, body, len))
			why = "signature verification failed";
	}
	if (why != NULL) {
		reply_error(req, 400, why, NULL);
		goto out;
	}
	id = str_field(md, "rdfm.hardware.macaddr");
	if ((d = device_find(id, json_object_get_string(pk))) == NULL) {
		d = xcalloc(1, sizeof(*d));
		d->id = xstrdup(id);
		d->pubkey = xstrdup(json_object_get_string(pk));
		d->approved = srv.auto_approve;
		d->next = srv.devices;
		srv.devices = d;
	}
	free(d->dev_type);
	free(d->version);
	d->dev_type = xstrdup(str_field(md, "rdfm.hardware.devtype"));
	d->version = xstrdup(str_field(md, "rdfm.software.version"));
	if (!d->approved) {
		reply_error(req, 401, "device unauthorized", id);
		goto out;
	}
	t = xcalloc(1, sizeof(*t));
	random_hex(t->tok, 32);
	t->dev = d;
	t->expires = time(NULL) + srv.token_expiry;
	t->next = srv.tokens;
	srv.tokens = t;
	rsp = json_object_new_object();
	json_object_object_add(rsp, "expires",
	                       json_object_new_int64(srv.token_expiry));
	json_object_object_add(rsp, "token", json_object_new_string(t->tok));
	reply_json(req, 200, rsp, id);
out:
	EVP_PKEY_free(key);
	json_object_put(o);
	free(body);
}

static struct token *
token_find(const char *tok)
{
	struct token *t;
	time_t now = time(NULL);

	for (t = srv.tokens; t != NULL; t = t->next)
		if (strcmp(t->tok, tok) == 0)
			return t->expires > now ? t : NULL;
	return NULL;
}

static char *
rfc822(time_t t)
{
	static char buf[64];
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	return buf;
}

/*
 * The offer: the most recently added package for the reported device type,
 * unless its version is the one the device reports (then 204).  The real
 * server walks a group's version path; one target per type is enough here.
 */
static struct package *
package_for(const char *dev_type, const char *version)
{
	struct package *p, *best = NULL;

	for (p = srv.packages; p != NULL; p = p->next)
		if (strcmp(p->dev_type, dev_type) == 0 &&
		    (best == NULL || p->id > best->id))
			best = p;
	if (best == NULL || strcmp(best->version, version) == 0)
		return NULL;
	return best;
}

void
handle_check(struct evhttp_request *req)
{
	struct json_object *o, *rsp;
	struct package *p;
	struct token *t;
	const char *auth, *dev_id, *why = NULL;
	char *body, sha[65];
	size_t len;

	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
		reply_error(req, 405, "method not allowed", NULL);
		return;
	}
	auth = evhttp_find_header(evhttp_request_get_input_headers(req),
	                          "Authorization");
	if (auth == NULL || strncmp(auth, "Bearer ", 7) != 0) {
		reply_error(req, 401, "missing token", NULL);
		return;
	}
	if (strncmp(auth + 7, "token=", 6) != 0) {
		/* What the real server does with "Bearer <jwt>". */
		reply_error(req, 500, "internal server error", NULL);
		return;
	}
	if ((t = token_find(auth + 13)) == NULL) {
		reply_error(req, 401, "invalid or expired token", NULL);
		return;
	}
	dev_id = t->dev->id;
	if (!is_json(req)) {
		reply_error(req, 415, "unsupported media type", dev_id);
		return;
	}
	if ((body = request_body(req, MAX_API_BODY, &len)) == NULL) {
		reply_error(req, 413, "body too large", dev_id);
		return;
	}
	if ((o = parse_object(body, len)) == NULL)
		why = "body is not a JSON object";
	else
		why = check_metadata(o);
	free(body);
	if (why != NULL) {
		json_object_put(o);
		reply_error(req, 400, why, dev_id);
		return;
	}
	p = package_for(str_field(o, "rdfm.hardware.devtype"),
	                str_field(o, "rdfm.software.version"));
	json_object_put(o);
	if (p == NULL) {
		reply_json(req, 204, NULL, dev_id);
		return;
	}
	memcpy(sha, p->sha, sizeof(sha));
	if (srv.faults.wrong_sha)
		sha[0] = sha[0] == '0' ? '1' : '0';
	rsp = json_object_new_object();
	json_object_object_add(rsp, "id", json_object_new_int64(p->id));
	json_object_object_add(rsp, "created",
	                       json_object_new_string(rfc822(p->created)));
	json_object_object_add(rsp, "sha256", json_object_new_string(sha));
	if (p->uri != NULL)
		json_object_object_add(rsp, "uri",
		                       json_object_new_string(p->uri));
	else {
		char uri[256];

		snprintf(uri, sizeof(uri), "%s/local_storage/%s", srv.base_url,
		         p->uuid);
		json_object_object_add(rsp, "uri", json_object_new_string(uri));
	}
	reply_json(req, 200, rsp, dev_id);
}
