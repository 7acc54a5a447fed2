/*
 * A test RDFM server: the device API of PROTOCOLS.md section 1 (signed
 * authentication, approvals, update check, local-storage downloads with
 * Range), an /admin/ interface for tests, fault injection and a JSON log.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <json-c/json.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "log.h"
#include "xmalloc.h"

#define MAX_API_BODY 65536
#define CHUNK        65536

struct device {
	struct device *next;
	char *id;
	char *pubkey; /* the exact string sent: identity with id */
	char *dev_type;
	char *version;
	bool approved;
};

struct token {
	struct token *next;
	char tok[65];
	struct device *dev;
	time_t expires;
};

struct package {
	struct package *next;
	long long id;
	char uuid[37];
	char *path;
	char *version;
	char *dev_type;
	char *uri; /* an outside URL offered instead of local storage */
	char sha[65];
	uint64_t size;
	time_t created;
};

struct faults {
	double error_rate;
	int error_status;
	long long slow_bps;
	long long truncate_after;
	bool wrong_sha;
};

/* One download streaming out (slowly, truncated, or just in chunks). */
struct sender {
	struct evhttp_request *req;
	struct evhttp_connection *evcon;
	struct event *timer;
	int fd;
	uint64_t off, left;
	long long bps;
	bool truncate; /* close the connection instead of finishing */
};

static struct {
	struct event_base *base;
	struct evhttp *http;
	SSL_CTX *ssl;
	char *data_dir;
	long token_expiry;
	bool auto_approve;
	FILE *log;
	struct json_object *logarr;
	char base_url[128];
	uint64_t rng;
	struct device *devices;
	struct token *tokens;
	struct package *packages;
	long long next_package_id;
	struct faults faults;
} srv;

static void usage(void) __attribute__((noreturn));

static void
usage(void)
{
	fprintf(
	    stderr,
	    "usage: rdfm-test-server --listen 127.0.0.1:PORT --data-dir DIR\n"
	    "       [--token-expiry S] [--cert FILE --key FILE] "
	    "[--auto-approve]\n"
	    "       [--log FILE] [--seed N]\n");
	exit(2);
}

static uint64_t
rng_next(void)
{
	srv.rng ^= srv.rng >> 12;
	srv.rng ^= srv.rng << 25;
	srv.rng ^= srv.rng >> 27;
	return srv.rng * 0x2545F4914F6CDD1DULL;
}

static void
random_hex(char *out, size_t nbytes)
{
	unsigned char b[64];
	size_t i;

	if (nbytes > sizeof(b) || RAND_bytes(b, (int)nbytes) != 1)
		fatalx("no random bytes", NULL);
	for (i = 0; i < nbytes; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/* The log: one JSON object per request, in the file and in memory. */
static void
log_request(struct evhttp_request *req, int status, const char *device,
            uint64_t bytes, const char *range)
{
	struct json_object *o;
	const char *method;
	struct timespec ts;

	switch (evhttp_request_get_command(req)) {
	case EVHTTP_REQ_GET:
		method = "GET";
		break;
	case EVHTTP_REQ_POST:
		method = "POST";
		break;
	case EVHTTP_REQ_HEAD:
		method = "HEAD";
		break;
	default:
		method = "OTHER";
		break;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	o = json_object_new_object();
	json_object_object_add(
	    o, "time",
	    json_object_new_double((double)ts.tv_sec + ts.tv_nsec / 1e9));
	json_object_object_add(o, "method", json_object_new_string(method));
	json_object_object_add(
	    o, "path", json_object_new_string(evhttp_request_get_uri(req)));
	json_object_object_add(o, "status", json_object_new_int(status));
	json_object_object_add(o, "device",
	                       device != NULL ? json_object_new_string(device)
	                                      : NULL);
	json_object_object_add(o, "bytes",
	                       json_object_new_int64((int64_t)bytes));
	json_object_object_add(
	    o, "range", range != NULL ? json_object_new_string(range) : NULL);
	if (srv.log != NULL) {
		fprintf(srv.log, "%s\n",
		        json_object_to_json_string_ext(
		            o, JSON_C_TO_STRING_PLAIN |
		                   JSON_C_TO_STRING_NOSLASHESCAPE));
		fflush(srv.log);
	}
	json_object_array_add(srv.logarr, o);
}

static void
reply_json(struct evhttp_request *req, int status, struct json_object *body,
           const char *device)
{
	struct evbuffer *b = evbuffer_new();
	const char *s = "";

	if (body != NULL)
		s = json_object_to_json_string_ext(
		    body,
		    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	if (status != 204) {
		evbuffer_add(b, s, strlen(s));
		evhttp_add_header(evhttp_request_get_output_headers(req),
		                  "Content-Type", "application/json");
	}
	log_request(req, status, device, evbuffer_get_length(b), NULL);
	evhttp_send_reply(req, status, NULL, b);
	evbuffer_free(b);
	json_object_put(body);
}

static void
reply_error(struct evhttp_request *req, int status, const char *msg,
            const char *device)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "error", json_object_new_string(msg));
	reply_json(req, status, o, device);
}

/* An injected 5xx, drawn from the seeded generator. */
static bool
inject_error(struct evhttp_request *req)
{
	double r;

	if (srv.faults.error_rate <= 0)
		return false;
	r = (double)(rng_next() >> 11) / (double)(1ULL << 53);
	if (r >= srv.faults.error_rate)
		return false;
	reply_error(req, srv.faults.error_status, "injected fault", NULL);
	return true;
}

/* The body as a NUL-terminated string, or NULL when too large. */
static char *
request_body(struct evhttp_request *req, size_t max, size_t *len)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	char *s;

	*len = evbuffer_get_length(in);
	if (*len > max)
		return NULL;
	s = xmalloc(*len + 1);
	evbuffer_copyout(in, s, *len);
	s[*len] = '\0';
	return s;
}

static bool
is_json(struct evhttp_request *req)
{
	const char *ct = evhttp_find_header(
	    evhttp_request_get_input_headers(req), "Content-Type");
	size_t n = strlen("application/json");

	return ct != NULL && strncasecmp(ct, "application/json", n) == 0 &&
	       (ct[n] == '\0' || ct[n] == ';');
}

/* Parses exactly len bytes as one JSON object. */
static struct json_object *
parse_object(const char *s, size_t len)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o;
	size_t i;

	o = json_tokener_parse_ex(tok, s, (int)len);
	if (o == NULL || json_tokener_get_error(tok) != json_tokener_success)
		goto bad;
	for (i = json_tokener_get_parse_end(tok); i < len; i++)
		if (!isspace((unsigned char)s[i]))
			goto bad;
	json_tokener_free(tok);
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return NULL;
	}
	return o;
bad:
	json_object_put(o);
	json_tokener_free(tok);
	return NULL;
}

static const char *
str_field(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* Device API. */

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

static void
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

static void
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

/* Downloads. */

static void sender_step(struct sender *);

static void
sender_free(struct sender *s)
{
	if (s->evcon != NULL)
		evhttp_connection_set_closecb(s->evcon, NULL, NULL);
	if (s->timer != NULL)
		event_free(s->timer);
	close(s->fd);
	free(s);
}

static void
sender_closed(struct evhttp_connection *evcon, void *arg)
{
	struct sender *s = arg;

	(void)evcon;
	/*
	 * The peer went away mid-transfer.  libevent has detached the
	 * unfinished request from the connection and leaves it to us:
	 * ending the reply of a detached request frees it.
	 */
	s->evcon = NULL;
	evhttp_send_reply_end(s->req);
	sender_free(s);
}

static void
sender_written(struct evhttp_connection *evcon, void *arg)
{
	struct sender *s = arg;
	struct timeval tv = {0, 100000};

	(void)evcon;
	if (s->bps > 0 && s->left > 0)
		evtimer_add(s->timer, &tv);
	else
		sender_step(s);
}

static void
sender_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	sender_step(arg);
}

static void
sender_step(struct sender *s)
{
	struct evhttp_connection *evcon;
	struct evbuffer *b;
	unsigned char buf[CHUNK];
	uint64_t n;
	ssize_t r;

	if (s->left == 0) {
		if (s->truncate) {
			/*
			 * Cut the connection short of Content-Length.  We run
			 * from the connection's write callback or a timer, so
			 * freeing it here is safe.
			 */
			evcon = s->evcon;
			sender_free(s);
			evhttp_connection_free(evcon);
			return;
		}
		evhttp_send_reply_end(s->req);
		sender_free(s);
		return;
	}
	n = s->left < CHUNK ? s->left : CHUNK;
	if (s->bps > 0) {
		/* Ten ticks a second. */
		uint64_t per = (uint64_t)(s->bps / 10 > 0 ? s->bps / 10 : 1);

		if (n > per)
			n = per;
	}
	r = pread(s->fd, buf, (size_t)n, (off_t)s->off);
	if (r <= 0) {
		/* The package shrank under us: drop the connection. */
		log_warn("cannot read package", NULL);
		evcon = s->evcon;
		sender_free(s);
		evhttp_connection_free(evcon);
		return;
	}
	b = evbuffer_new();
	evbuffer_add(b, buf, (size_t)r);
	s->off += (uint64_t)r;
	s->left -= (uint64_t)r;
	evhttp_send_reply_chunk_with_cb(s->req, b, sender_written, s);
	evbuffer_free(b);
}

/* Parses "bytes=A-B", "bytes=A-" or "bytes=-N"; 0 ok, -1 unsatisfiable. */
static int
parse_range(const char *h, uint64_t size, uint64_t *start, uint64_t *end)
{
	unsigned long long a, b;
	char *ep;

	if (strncmp(h, "bytes=", 6) != 0)
		return -1;
	h += 6;
	if (*h == '-') {
		b = strtoull(h + 1, &ep, 10);
		if (*ep != '\0' || b == 0 || size == 0)
			return -1;
		*start = b >= size ? 0 : size - b;
		*end = size - 1;
		return 0;
	}
	if (!isdigit((unsigned char)*h))
		return -1;
	a = strtoull(h, &ep, 10);
	if (*ep != '-' || a >= size)
		return -1;
	h = ep + 1;
	if (*h == '\0')
		b = size - 1;
	else {
		if (!isdigit((unsigned char)*h))
			return -1;
		b = strtoull(h, &ep, 10);
		if (*ep != '\0' || b < a)
			return -1;
		if (b >= size)
			b = size - 1;
	}
	*start = a;
	*end = b;
	return 0;
}

static void
handle_download(struct evhttp_request *req, const char *uuid)
{
	struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
	struct package *p;
	struct sender *s;
	const char *range;
	uint64_t start = 0, end, stop;
	char buf[128];
	int status = 200, fd;

	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
		reply_error(req, 405, "method not allowed", NULL);
		return;
	}
	for (p = srv.packages; p != NULL; p = p->next)
		if (strcmp(p->uuid, uuid) == 0)
			break;
	if (p == NULL) {
		reply_error(req, 404, "no such package", NULL);
		return;
	}
	end = p->size - 1;
	range =
	    evhttp_find_header(evhttp_request_get_input_headers(req), "Range");
	if (range != NULL) {
		if (parse_range(range, p->size, &start, &end) == -1) {
			snprintf(buf, sizeof(buf), "bytes */%" PRIu64, p->size);
			evhttp_add_header(oh, "Content-Range", buf);
			log_request(req, 416, NULL, 0, range);
			evhttp_send_reply(req, 416, NULL, NULL);
			return;
		}
		status = 206;
		snprintf(buf, sizeof(buf),
		         "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, start, end,
		         p->size);
		evhttp_add_header(oh, "Content-Range", buf);
	}
	if ((fd = open(p->path, O_RDONLY | O_CLOEXEC)) == -1) {
		reply_error(req, 500, "cannot open package", NULL);
		return;
	}
	s = xcalloc(1, sizeof(*s));
	s->req = req;
	s->evcon = evhttp_request_get_connection(req);
	s->fd = fd;
	s->off = start;
	s->left = p->size == 0 ? 0 : end - start + 1;
	s->bps = srv.faults.slow_bps;
	s->timer = evtimer_new(srv.base, sender_tick, s);
	/* Truncation cuts the file at a fixed offset, so a resume gets past. */
	stop = (uint64_t)srv.faults.truncate_after;
	if (srv.faults.truncate_after > 0 && start < stop &&
	    start + s->left > stop) {
		s->truncate = true;
		s->left = stop - start;
	}
	snprintf(buf, sizeof(buf), "%" PRIu64,
	         p->size == 0 ? 0 : end - start + 1);
	evhttp_add_header(oh, "Content-Length", buf);
	evhttp_add_header(oh, "Content-Type", "application/octet-stream");
	evhttp_add_header(oh, "Accept-Ranges", "bytes");
	log_request(req, status, NULL, s->left, range);
	evhttp_connection_set_closecb(s->evcon, sender_closed, s);
	evhttp_send_reply_start(req, status,
	                        status == 200 ? "OK" : "Partial Content");
	sender_step(s);
}

/* Admin interface. */

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

static void
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

static void
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

static void
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

static void
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

static void
tokens_clear(void)
{
	struct token *t;

	while ((t = srv.tokens) != NULL) {
		srv.tokens = t->next;
		free(t);
	}
}

static void
admin_revoke_tokens(struct evhttp_request *req)
{
	tokens_clear();
	reply_json(req, 200, json_object_new_object(), NULL);
}

static void
admin_log(struct evhttp_request *req)
{
	/* reply_json drops one reference; the log keeps its own. */
	reply_json(req, 200, json_object_get(srv.logarr), NULL);
}

static void
handle_request(struct evhttp_request *req, void *arg)
{
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	const char *path;

	(void)arg;
	path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	if (path == NULL)
		path = "";
	if (strncmp(path, "/admin/", 7) == 0) {
		if (cmd == EVHTTP_REQ_GET &&
		    strcmp(path, "/admin/pending") == 0)
			admin_pending(req);
		else if (cmd == EVHTTP_REQ_GET &&
		         strcmp(path, "/admin/log") == 0)
			admin_log(req);
		else if (cmd == EVHTTP_REQ_POST &&
		         strcmp(path, "/admin/approve") == 0)
			admin_approve(req);
		else if (cmd == EVHTTP_REQ_POST &&
		         strcmp(path, "/admin/packages") == 0)
			admin_packages(req);
		else if (cmd == EVHTTP_REQ_POST &&
		         strcmp(path, "/admin/faults") == 0)
			admin_faults(req);
		else if (cmd == EVHTTP_REQ_POST &&
		         strcmp(path, "/admin/revoke_tokens") == 0)
			admin_revoke_tokens(req);
		else
			reply_error(req, 404, "no such admin endpoint", NULL);
		return;
	}
	if (strcmp(path, "/api/v1/auth/device") == 0) {
		if (!inject_error(req))
			handle_auth(req);
	} else if (strcmp(path, "/api/v1/update/check") == 0) {
		if (!inject_error(req))
			handle_check(req);
	} else if (strncmp(path, "/local_storage/", 15) == 0) {
		if (!inject_error(req))
			handle_download(req, path + 15);
	} else
		reply_error(req, 404, "not found", NULL);
}

/* Start-up. */

static struct bufferevent *
tls_bevcb(struct event_base *base, void *arg)
{
	SSL_CTX *ctx = arg;
	struct bufferevent *bev;
	SSL *ssl;

	if ((ssl = SSL_new(ctx)) == NULL)
		return NULL;
	bev = bufferevent_openssl_socket_new(
	    base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev != NULL)
		bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

static SSL_CTX *
tls_setup(const char *cert, const char *key)
{
	SSL_CTX *ctx;

	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL ||
	    SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1)
		fatalx("cannot load the TLS certificate and key",
		       "cert=%s key=%s", log_q(cert), log_q(key));
	return ctx;
}

/* Loopback only: 127.0.0.0/8 or [::1]. */
static void
parse_listen(const char *arg, char *host, size_t hostcap, int *port)
{
	struct in_addr a4;
	struct in6_addr a6;
	const char *colon = strrchr(arg, ':');
	char *ep;
	size_t n;
	long p;

	if (colon == NULL)
		fatalx("--listen must be HOST:PORT", "listen=%s", log_q(arg));
	n = (size_t)(colon - arg);
	if (n >= 2 && arg[0] == '[' && arg[n - 1] == ']') {
		arg++;
		n -= 2;
	}
	if (n == 0 || n >= hostcap)
		fatalx("--listen has a bad host", "listen=%s", log_q(arg));
	memcpy(host, arg, n);
	host[n] = '\0';
	p = strtol(colon + 1, &ep, 10);
	if (*ep != '\0' || colon[1] == '\0' || p < 0 || p > 65535)
		fatalx("--listen has a bad port", "listen=%s", log_q(arg));
	*port = (int)p;
	if (inet_pton(AF_INET, host, &a4) == 1 &&
	    (ntohl(a4.s_addr) >> 24) == 127)
		return;
	if (inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6))
		return;
	fatalx("refusing to listen on a non-loopback address", "host=%s",
	       log_q(host));
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	(void)arg;
	event_base_loopbreak(srv.base);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"listen", required_argument, NULL, 'l'},
	    {"data-dir", required_argument, NULL, 'd'},
	    {"token-expiry", required_argument, NULL, 't'},
	    {"cert", required_argument, NULL, 'c'},
	    {"key", required_argument, NULL, 'k'},
	    {"auto-approve", no_argument, NULL, 'a'},
	    {"log", required_argument, NULL, 'L'},
	    {"seed", required_argument, NULL, 's'},
	    {NULL, 0, NULL, 0},
	};
	struct evhttp_bound_socket *bound;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct event *sigint, *sigterm;
	const char *listen = NULL, *cert = NULL, *key = NULL, *logpath = NULL;
	char host[64];
	int ch, port, bport;
	char *ep;

	log_init(0, "rdfm-test-server");
	srv.token_expiry = 300;
	srv.rng = 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'l':
			listen = optarg;
			break;
		case 'd':
			srv.data_dir = optarg;
			break;
		case 't':
			srv.token_expiry = strtol(optarg, &ep, 10);
			if (*ep != '\0' || srv.token_expiry <= 0)
				fatalx("--token-expiry must be a positive "
				       "number of seconds",
				       NULL);
			break;
		case 'c':
			cert = optarg;
			break;
		case 'k':
			key = optarg;
			break;
		case 'a':
			srv.auto_approve = true;
			break;
		case 'L':
			logpath = optarg;
			break;
		case 's':
			srv.rng = strtoull(optarg, &ep, 10);
			if (*ep != '\0')
				fatalx("--seed must be a number", NULL);
			/* xorshift must not start at 0. */
			srv.rng = srv.rng * 0x9E3779B97F4A7C15ULL + 1;
			break;
		default:
			usage();
		}
	}
	if (listen == NULL || srv.data_dir == NULL || optind != argc ||
	    (cert == NULL) != (key == NULL))
		usage();
	parse_listen(listen, host, sizeof(host), &port);
	if (mkdir(srv.data_dir, 0700) == -1 && errno != EEXIST)
		fatal("cannot create the data directory", "dir=%s",
		      log_q(srv.data_dir));
	if (logpath != NULL && (srv.log = fopen(logpath, "a")) == NULL)
		fatal("cannot open the log", "path=%s", log_q(logpath));
	srv.logarr = json_object_new_array();
	signal(SIGPIPE, SIG_IGN);

	if ((srv.base = event_base_new()) == NULL ||
	    (srv.http = evhttp_new(srv.base)) == NULL)
		fatalx("cannot set up libevent", NULL);
	evhttp_set_allowed_methods(srv.http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
	                                         EVHTTP_REQ_HEAD);
	evhttp_set_max_body_size(srv.http, 1 << 20);
	evhttp_set_gencb(srv.http, handle_request, NULL);
	if (cert != NULL) {
		srv.ssl = tls_setup(cert, key);
		evhttp_set_bevcb(srv.http, tls_bevcb, srv.ssl);
	}
	if ((bound = evhttp_bind_socket_with_handle(srv.http, host,
	                                            (ev_uint16_t)port)) == NULL)
		fatal("cannot listen", "listen=%s", log_q(listen));
	if (getsockname(evhttp_bound_socket_get_fd(bound),
	                (struct sockaddr *)&ss, &sl) == -1)
		fatal("getsockname", NULL);
	bport = ntohs(ss.ss_family == AF_INET6
	                  ? ((struct sockaddr_in6 *)&ss)->sin6_port
	                  : ((struct sockaddr_in *)&ss)->sin_port);
	snprintf(srv.base_url, sizeof(srv.base_url),
	         strchr(host, ':') != NULL ? "%s://[%s]:%d" : "%s://%s:%d",
	         cert != NULL ? "https" : "http", host, bport);
	sigint = evsignal_new(srv.base, SIGINT, on_signal, NULL);
	sigterm = evsignal_new(srv.base, SIGTERM, on_signal, NULL);
	evsignal_add(sigint, NULL);
	evsignal_add(sigterm, NULL);
	printf("READY %s\n", srv.base_url);
	fflush(stdout);
	event_base_dispatch(srv.base);

	event_free(sigint);
	event_free(sigterm);
	evhttp_free(srv.http);
	event_base_free(srv.base);
	SSL_CTX_free(srv.ssl);
	while (srv.devices != NULL) {
		struct device *d = srv.devices;

		srv.devices = d->next;
		free(d->id);
		free(d->pubkey);
		free(d->dev_type);
		free(d->version);
		free(d);
	}
	tokens_clear();
	while (srv.packages != NULL) {
		struct package *p = srv.packages;

		srv.packages = p->next;
		free(p->path);
		free(p->version);
		free(p->dev_type);
		free(p->uri);
		free(p);
	}
	json_object_put(srv.logarr);
	if (srv.log != NULL)
		fclose(srv.log);
	return 0;
}
