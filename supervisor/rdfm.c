/*
 * The RDFM device API client: libcurl's multi interface on the libevent
 * loop (curlev.c), so every device authenticates, checks and downloads
 * concurrently in the one supervisor thread.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <json-c/json.h>
#include <openssl/evp.h>

#include "curlev.h"
#include "keys.h"
#include "log.h"
#include "rdfm.h"
#include "spool.h"
#include "xmalloc.h"

#define ERR(...) snprintf(err, errcap, __VA_ARGS__)

#define API_TIMEOUT_S     RDFM_API_TIMEOUT_S
#define CONNECT_TIMEOUT_S 30
/* A download that moves less than 1 byte/s for this long is dead. */
#define STALL_S 60

struct rdfm_client {
	struct event_base *base;
	struct curlev *cv;
	struct event *kick; /* starts what waited for a slot, from the loop */
	char *ca_file;
	long long min_rate; /* download bytes/s, on average */
	long long grace_ms; /* before min_rate starts to count */
	uint64_t rng;
	struct rdfm_dev *devs;
	struct fetch *fetches;

	/*
	 * Fairness caps (rdfm_client_set_limits): authentications and
	 * downloads beyond them wait their turn in order of arrival.
	 */
	unsigned int max_auths, max_fetches;
	unsigned int auths, running_fetches;
	struct rdfm_dev *auth_head, **auth_tail; /* waiting to authenticate */
};

/* One transfer on the multi handle: an API request or a download. */
struct xfer {
	struct curlev_xfer cx; /* first: req and fetch are cast from it */
	struct curl_slist *hdrs;
	/* libcurl's own account of a failure: the TLS reason, the refusal */
	char errbuf[CURL_ERROR_SIZE];
};

enum req_kind { REQ_AUTH, REQ_CHECK };

struct req {
	struct xfer x;
	struct rdfm_dev *dev;
	enum req_kind kind;
	char *body;
	char *rsp;
	size_t rsplen;
	bool toolarge;
};

struct waiter {
	struct waiter *next;
	struct rdfm_dev *dev;
};

/* A download shared by every device waiting for the same spool entry. */
struct fetch {
	struct xfer x;
	struct fetch *next;
	struct rdfm_client *c;
	struct spool_entry *e;
	struct waiter *waiters;
	char *uri;
	bool queued;           /* waiting for a download slot */
	uint64_t offset;       /* where this transfer started in the file */
	bool started;          /* first body byte seen, status checked */
	bool body_ok;          /* the body is the file (200/206) */
	bool local_error;      /* a spool error aborted the transfer */
	long long range_start; /* from Content-Range, -1 when absent */
	long long range_total;
	/* The deadline: start + grace + size / min_rate. */
	struct timespec t0;
	uint64_t received;      /* body bytes of this transfer */
	long long expected;     /* of this transfer; -1 unknown */
	struct event *deadline; /* when it fires, the download is too slow */
	bool too_slow;
	char err[256];
};

struct rdfm_dev {
	struct rdfm_dev *next;
	struct rdfm_client *c;
	char *server, *id, *dev_type;
	EVP_PKEY *key;
	char *token;
	struct timespec token_until;
	bool told_unapproved;
	unsigned int failures;
	unsigned int backoff_min, backoff_max;

	/* The operation in flight. */
	bool busy;
	rdfm_cb cb;
	void *arg;
	char *version;
	bool reauthed;
	bool auth_only;    /* rdfm_report_version, rdfm_auth: no check after */
	bool auth_waiting; /* queued behind max_auths */
	struct rdfm_dev *auth_next; /* in the client's auth queue */
	bool auth_counted;          /* its authentication holds a slot */
	struct req *req;
	struct fetch *fetch;
	struct spool_entry *entry;
	struct event *deferred;
	struct rdfm_result res;
	struct rdfm_offer offer;
};

static void fetch_free(struct fetch *);
static void dev_complete(struct rdfm_dev *);
static void auth_release(struct rdfm_dev *);

/* Parsers. */

static struct json_object *
parse_object(const char *body, size_t len, char *err, size_t errcap)
{
	struct json_tokener *tok;
	struct json_object *o;
	enum json_tokener_error jerr;
	size_t i;

	if (len > RDFM_MAX_RESPONSE || len > INT32_MAX) {
		ERR("response body too large (%zu bytes)", len);
		return NULL;
	}
	if ((tok = json_tokener_new()) == NULL)
		fatalx("out of memory", NULL);
	o = json_tokener_parse_ex(tok, body, (int)len);
	jerr = json_tokener_get_error(tok);
	if (o == NULL || jerr != json_tokener_success) {
		ERR("response is not JSON: %s",
		    o == NULL && jerr == json_tokener_continue
		        ? "unexpected end"
		        : json_tokener_error_desc(jerr));
		json_object_put(o);
		json_tokener_free(tok);
		return NULL;
	}
	for (i = json_tokener_get_parse_end(tok); i < len; i++) {
		if (!isspace((unsigned char)body[i])) {
			ERR("response has data after the JSON value");
			json_object_put(o);
			json_tokener_free(tok);
			return NULL;
		}
	}
	json_tokener_free(tok);
	if (!json_object_is_type(o, json_type_object)) {
		ERR("response is not a JSON object");
		json_object_put(o);
		return NULL;
	}
	return o;
}

/* A string that may go into a header or a log: printable ASCII only. */
static bool
printable(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (s[i] <= 0x20 || s[i] >= 0x7f)
			return false;
	return true;
}

static const char *
get_string(struct json_object *o, const char *key, size_t max, char *err,
           size_t errcap)
{
	struct json_object *v;
	const char *s;
	size_t n;

	if (!json_object_object_get_ex(o, key, &v)) {
		ERR("response has no \"%s\"", key);
		return NULL;
	}
	if (!json_object_is_type(v, json_type_string)) {
		ERR("response \"%s\" is not a string", key);
		return NULL;
	}
	s = json_object_get_string(v);
	n = (size_t)json_object_get_string_len(v);
	if (n == 0 || n > max) {
		ERR("response \"%s\" has a bad length (%zu)", key, n);
		return NULL;
	}
	if (strlen(s) != n || !printable(s, n)) {
		ERR("response \"%s\" has characters that are not allowed", key);
		return NULL;
	}
	return s;
}

int
rdfm_parse_auth(const char *body, size_t len, char **token, long long *expires,
                char *err, size_t errcap)
{
	struct json_object *o, *v;
	const char *t;
	int64_t e;

	*token = NULL;
	if ((o = parse_object(body, len, err, errcap)) == NULL)
		return -1;
	if ((t = get_string(o, "token", RDFM_MAX_TOKEN, err, errcap)) == NULL)
		goto fail;
	if (!json_object_object_get_ex(o, "expires", &v) ||
	    !json_object_is_type(v, json_type_int)) {
		ERR("response \"expires\" is missing or not an integer");
		goto fail;
	}
	errno = 0;
	e = json_object_get_int64(v);
	if (errno != 0 || e <= 0 || e > 10LL * 365 * 86400) {
		ERR("response \"expires\" is out of range");
		goto fail;
	}
	*token = xstrdup(t);
	*expires = e;
	json_object_put(o);
	return 0;
fail:
	json_object_put(o);
	return -1;
}

void
rdfm_offer_clear(struct rdfm_offer *offer)
{
	free(offer->uri);
	free(offer->created);
	memset(offer, 0, sizeof(*offer));
}

int
rdfm_parse_check(const char *body, size_t len, struct rdfm_offer *offer,
                 char *err, size_t errcap)
{
	struct json_object *o, *v;
	const char *s;
	size_t i;

	memset(offer, 0, sizeof(*offer));
	if ((o = parse_object(body, len, err, errcap)) == NULL)
		return -1;
	if (!json_object_object_get_ex(o, "id", &v) ||
	    !json_object_is_type(v, json_type_int)) {
		ERR("response \"id\" is missing or not an integer");
		goto fail;
	}
	offer->id = (long long)json_object_get_int64(v);
	if ((s = get_string(o, "sha256", 64, err, errcap)) == NULL)
		goto fail;
	for (i = 0; s[i] != '\0'; i++)
		if (!isxdigit((unsigned char)s[i]))
			break;
	if (i != 64 || s[i] != '\0') {
		ERR("response \"sha256\" is not 64 hex digits");
		goto fail;
	}
	for (i = 0; i < 64; i++)
		offer->sha256[i] = (char)tolower((unsigned char)s[i]);
	if ((s = get_string(o, "uri", RDFM_MAX_URI, err, errcap)) == NULL)
		goto fail;
	if (strncasecmp(s, "http://", 7) != 0 &&
	    strncasecmp(s, "https://", 8) != 0) {
		ERR("response \"uri\" is not an http or https URL");
		goto fail;
	}
	offer->uri = xstrdup(s);
	if (json_object_object_get_ex(o, "created", &v)) {
		if (!json_object_is_type(v, json_type_string) ||
		    json_object_get_string_len(v) > 128) {
			ERR("response \"created\" is not a short string");
			goto fail;
		}
		offer->created = xstrdup(json_object_get_string(v));
	}
	json_object_put(o);
	return 0;
fail:
	json_object_put(o);
	rdfm_offer_clear(offer);
	return -1;
}

void
rdfm_parse_error(const char *body, size_t len, char *out, size_t outcap)
{
	struct json_object *o, *v;
	char err[8];
	const char *s;
	size_t i, j;

	if (outcap == 0)
		return;
	out[0] = '\0';
	if (len == 0 || (o = parse_object(body, len, err, sizeof(err))) == NULL)
		return;
	if (json_object_object_get_ex(o, "error", &v) &&
	    json_object_is_type(v, json_type_string)) {
		s = json_object_get_string(v);
		for (i = j = 0; s[i] != '\0' && j + 1 < outcap; i++)
			out[j++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
		out[j] = '\0';
	}
	json_object_put(o);
}

static void auth_next(struct rdfm_client *c);
static void fetch_next(struct rdfm_client *c);

static void
on_kick(evutil_socket_t fd, short what, void *arg)
{
	struct rdfm_client *c = arg;

	(void)fd;
	(void)what;
	auth_next(c);
	fetch_next(c);
}

static void
xfer_cleanup(struct rdfm_client *c, struct xfer *x)
{
	if (x->cx.easy != NULL) {
		curlev_remove(c->cv, &x->cx);
		curl_easy_cleanup(x->cx.easy);
		x->cx.easy = NULL;
	}
	curl_slist_free_all(x->hdrs);
	x->hdrs = NULL;
}

static CURL *
xfer_easy(struct rdfm_client *c, struct xfer *x, const char *url)
{
	CURL *e;

	if ((e = curl_easy_init()) == NULL)
		fatalx("cannot create a curl handle", NULL);
	curl_easy_setopt(e, CURLOPT_URL, url);
	rdfm_curl_setup(e, c->ca_file);
	x->errbuf[0] = '\0';
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
	x->cx.easy = e;
	return e;
}

void
rdfm_curl_setup(CURL *e, const char *ca_file)
{
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, (long)CONNECT_TIMEOUT_S);
	/* Verification is never switched off; ca_file adds a private CA. */
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	if (ca_file != NULL)
		curl_easy_setopt(e, CURLOPT_CAINFO, ca_file);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "rdfm-mcumgr-client/" VERSION);
}

/*
 * What went wrong with a transfer, as precisely as libcurl knows: its
 * error buffer names the TLS cause (an unknown issuer, an expired
 * certificate, a host name that does not match), where the code alone
 * only says "SSL peer certificate or SSH remote key was not OK".
 */
static const char *
xfer_error(const struct xfer *x, CURLcode rc, char *buf, size_t cap)
{
	const char *what = curl_easy_strerror(rc);

	if (x->errbuf[0] == '\0' || strcmp(x->errbuf, what) == 0)
		snprintf(buf, cap, "%s", what);
	else
		snprintf(buf, cap, "%s: %s", what, x->errbuf);
	return buf;
}

struct rdfm_client *
rdfm_client_new(struct event_base *base, const char *ca_file, char *err,
                size_t errcap)
{
	static bool curl_ready;
	struct rdfm_client *c;

	if (!curl_ready) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
			ERR("cannot initialise libcurl");
			return NULL;
		}
		curl_ready = true;
	}
	if (ca_file != NULL && access(ca_file, R_OK) == -1) {
		ERR("cannot read ca_file %s: %s", ca_file, strerror(errno));
		return NULL;
	}
	c = xcalloc(1, sizeof(*c));
	c->base = base;
	c->ca_file = ca_file != NULL ? xstrdup(ca_file) : NULL;
	c->min_rate = RDFM_DEFAULT_MIN_RATE;
	c->grace_ms = RDFM_DEFAULT_GRACE_MS;
	c->rng = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^
	         (uint64_t)(uintptr_t)c;
	c->cv = curlev_new(base);
	if ((c->kick = event_new(base, -1, 0, on_kick, c)) == NULL)
		fatalx("cannot create a timer", NULL);
	c->auth_tail = &c->auth_head;
	rdfm_client_set_limits(c, RDFM_DEFAULT_CONNECTIONS,
	                       RDFM_DEFAULT_AUTHENTICATIONS,
	                       RDFM_DEFAULT_DOWNLOADS);
	return c;
}

/*
 * Every device shares libcurl's connection pool: at most connections are
 * open to the server, busy or idle, whatever the fleet's size; requests
 * beyond it wait inside libcurl for a connection in order of arrival.
 */
void
rdfm_client_set_limits(struct rdfm_client *c, unsigned int connections,
                       unsigned int authentications, unsigned int downloads)
{
	c->max_auths = authentications > 0 ? authentications : 1;
	c->max_fetches = downloads > 0 ? downloads : 1;
	curlev_set_connections(c->cv, connections);
}

void
rdfm_client_set_download_limits(struct rdfm_client *c, long long min_rate,
                                long long grace_ms)
{
	c->min_rate = min_rate > 0 ? min_rate : 1;
	c->grace_ms = grace_ms >= 0 ? grace_ms : 0;
}

void
rdfm_client_free(struct rdfm_client *c)
{
	if (c == NULL)
		return;
	if (c->devs != NULL)
		fatalx("rdfm client freed with devices", NULL);
	/* Transfers nobody waits for any more: keep what came for a resume. */
	while (c->fetches != NULL) {
		if (!c->fetches->queued)
			spool_abort(c->fetches->e, true);
		fetch_free(c->fetches);
	}
	curlev_free(c->cv);
	event_free(c->kick);
	free(c->ca_file);
	free(c);
}

/* Devices. */

struct rdfm_dev *
rdfm_dev_new(struct rdfm_client *c, const char *server, const char *id,
             const char *dev_type, EVP_PKEY *key)
{
	struct rdfm_dev *dev;
	size_t n;

	dev = xcalloc(1, sizeof(*dev));
	dev->c = c;
	dev->server = xstrdup(server);
	/* "https://host/" and "https://host" name the same server. */
	n = strlen(dev->server);
	while (n > 0 && dev->server[n - 1] == '/')
		dev->server[--n] = '\0';
	dev->id = xstrdup(id);
	dev->dev_type = xstrdup(dev_type);
	dev->key = key;
	dev->backoff_min = 1000;
	dev->backoff_max = 300000;
	dev->next = c->devs;
	c->devs = dev;
	return dev;
}

static void
req_free(struct rdfm_client *c, struct req *r)
{
	if (r == NULL)
		return;
	xfer_cleanup(c, &r->x);
	free(r->body);
	free(r->rsp);
	free(r);
}

static void fetch_drop_waiter(struct fetch *, struct rdfm_dev *);

static void
op_reset(struct rdfm_dev *dev)
{
	auth_release(dev);
	req_free(dev->c, dev->req);
	dev->req = NULL;
	if (dev->fetch != NULL)
		fetch_drop_waiter(dev->fetch, dev);
	dev->fetch = NULL;
	dev->entry = NULL;
	if (dev->deferred != NULL)
		event_free(dev->deferred);
	dev->deferred = NULL;
	free(dev->version);
	dev->version = NULL;
	rdfm_offer_clear(&dev->offer);
	dev->auth_only = false;
	dev->busy = false;
}

static void
token_clear(struct rdfm_dev *dev)
{
	if (dev->token != NULL) {
		explicit_bzero(dev->token, strlen(dev->token));
		free(dev->token);
	}
	dev->token = NULL;
}

void
rdfm_dev_free(struct rdfm_dev *dev)
{
	struct rdfm_dev **pp;

	if (dev == NULL)
		return;
	op_reset(dev);
	for (pp = &dev->c->devs; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == dev) {
			*pp = dev->next;
			break;
		}
	}
	token_clear(dev);
	free(dev->server);
	free(dev->id);
	free(dev->dev_type);
	free(dev);
}

void
rdfm_dev_set_backoff(struct rdfm_dev *dev, unsigned int min_ms,
                     unsigned int max_ms)
{
	dev->backoff_min = min_ms > 0 ? min_ms : 1;
	dev->backoff_max = max_ms >= dev->backoff_min ? max_ms : min_ms;
}

void
rdfm_dev_forget_token(struct rdfm_dev *dev)
{
	token_clear(dev);
}

static uint64_t
rng_next(struct rdfm_client *c)
{
	/* xorshift64*: jitter only needs to spread devices apart. */
	c->rng ^= c->rng >> 12;
	c->rng ^= c->rng << 25;
	c->rng ^= c->rng >> 27;
	return c->rng * 0x2545F4914F6CDD1DULL;
}

/* The next delay: doubling per failure, capped, with jitter in [d/2, d]. */
static unsigned int
backoff_next(struct rdfm_dev *dev)
{
	uint64_t d = dev->backoff_min;
	unsigned int i;

	dev->failures++;
	for (i = 1; i < dev->failures && d < dev->backoff_max; i++)
		d *= 2;
	if (d > dev->backoff_max)
		d = dev->backoff_max;
	return (unsigned int)(d / 2 + rng_next(dev->c) % (d / 2 + 1));
}

static void finish(struct rdfm_dev *dev, enum rdfm_status st, long http,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Ends the operation in flight with a result; the callback runs now. */
static void
finish(struct rdfm_dev *dev, enum rdfm_status st, long http, const char *fmt,
       ...)
{
	va_list ap;

	memset(&dev->res, 0, sizeof(dev->res));
	dev->res.status = st;
	dev->res.http_status = http;
	if (fmt != NULL) {
		va_start(ap, fmt);
		vsnprintf(dev->res.error, sizeof(dev->res.error), fmt, ap);
		va_end(ap);
	}
	if (st == RDFM_ERR_TRANSIENT)
		dev->res.retry_ms = backoff_next(dev);
	else
		dev->failures = 0;
	if (st == RDFM_UPDATE)
		dev->res.offer = &dev->offer;
	if (st == RDFM_DOWNLOADED)
		dev->res.entry = dev->entry;
	dev_complete(dev);
}

static void
dev_complete(struct rdfm_dev *dev)
{
	struct rdfm_result res = dev->res;
	struct rdfm_offer offer = dev->offer;
	rdfm_cb cb = dev->cb;
	void *arg = dev->arg;

	/* The device is idle before the callback, which may start again. */
	memset(&dev->offer, 0, sizeof(dev->offer));
	if (res.offer != NULL)
		res.offer = &offer;
	op_reset(dev);
	cb(dev, &res, arg);
	rdfm_offer_clear(&offer);
}

static void
on_deferred(evutil_socket_t fd, short what, void *arg)
{
	struct rdfm_dev *dev = arg;

	(void)fd;
	(void)what;
	dev_complete(dev);
}

/* Completes from the loop, not inside the caller's call. */
static void
finish_later(struct rdfm_dev *dev, enum rdfm_status st, const char *error)
{
	struct timeval tv = {0, 0};

	memset(&dev->res, 0, sizeof(dev->res));
	dev->res.status = st;
	if (error != NULL)
		snprintf(dev->res.error, sizeof(dev->res.error), "%s", error);
	if (st == RDFM_DOWNLOADED)
		dev->res.entry = dev->entry;
	if (st == RDFM_ERR_TRANSIENT)
		dev->res.retry_ms = backoff_next(dev);
	else
		dev->failures = 0;
	dev->deferred = evtimer_new(dev->c->base, on_deferred, dev);
	if (dev->deferred == NULL || evtimer_add(dev->deferred, &tv) == -1)
		fatalx("cannot schedule a callback", NULL);
}

/* Authentication and check. */

/* Server trouble worth retrying: 5xx, and the 4xx that mean "later". */
static bool
transient_status(long code)
{
	return code >= 500 || code == 408 || code == 429;
}

static size_t
req_write_cb(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct req *r = arg;
	size_t n = size * nmemb;

	if (n > RDFM_MAX_RESPONSE - r->rsplen) {
		r->toolarge = true;
		return 0;
	}
	r->rsp = xreallocarray(r->rsp, r->rsplen + n + 1, 1);
	memcpy(r->rsp + r->rsplen, ptr, n);
	r->rsplen += n;
	r->rsp[r->rsplen] = '\0';
	return n;
}

static void req_done(struct curlev_xfer *, CURLcode);

static void
req_start(struct rdfm_dev *dev, enum req_kind kind, const char *path,
          char *body, const char *extra_hdr)
{
	struct req *r;
	char *url, *auth = NULL;
	CURL *e;

	r = xcalloc(1, sizeof(*r));
	r->dev = dev;
	r->kind = kind;
	r->body = body;
	r->x.cx.done = req_done;
	xasprintf(&url, "%s%s", dev->server, path);
	e = xfer_easy(dev->c, &r->x, url);
	free(url);
	r->x.hdrs =
	    curl_slist_append(r->x.hdrs, "Content-Type: application/json");
	r->x.hdrs = curl_slist_append(r->x.hdrs, "Accept: application/json");
	r->x.hdrs = curl_slist_append(r->x.hdrs, "Expect:");
	if (extra_hdr != NULL)
		r->x.hdrs = curl_slist_append(r->x.hdrs, extra_hdr);
	if (kind == REQ_CHECK) {
		/* The literal "token=" is what the server expects. */
		xasprintf(&auth, "Authorization: Bearer token=%s", dev->token);
		r->x.hdrs = curl_slist_append(r->x.hdrs, auth);
		explicit_bzero(auth, strlen(auth));
		free(auth);
	}
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->x.hdrs);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(r->body));
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, req_write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, (long)API_TIMEOUT_S);
	dev->req = r;
	curlev_add(dev->c->cv, &r->x.cx);
}

static char *
auth_body(struct rdfm_dev *dev, char *err, size_t errcap)
{
	struct json_object *o, *md;
	char *pem, *body;

	if ((pem = keys_public_pem(dev->key)) == NULL) {
		ERR("cannot export the public key");
		return NULL;
	}
	md = json_object_new_object();
	json_object_object_add(md, "rdfm.software.version",
	                       json_object_new_string(dev->version));
	json_object_object_add(md, "rdfm.hardware.devtype",
	                       json_object_new_string(dev->dev_type));
	json_object_object_add(md, "rdfm.hardware.macaddr",
	                       json_object_new_string(dev->id));
	o = json_object_new_object();
	json_object_object_add(o, "metadata", md);
	json_object_object_add(o, "public_key", json_object_new_string(pem));
	json_object_object_add(o, "timestamp",
	                       json_object_new_int64((int64_t)time(NULL)));
	body = xstrdup(json_object_to_json_string_ext(
	    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	free(pem);
	return body;
}

static void start_auth(struct rdfm_dev *dev);

/*
 * At most max_auths authentications run at once (each is an RSA signature
 * here and a verification on the server); the others wait in order.
 */
static void
send_auth(struct rdfm_dev *dev)
{
	struct rdfm_client *c = dev->c;

	if (c->auths >= c->max_auths) {
		dev->auth_waiting = true;
		dev->auth_next = NULL;
		*c->auth_tail = dev;
		c->auth_tail = &dev->auth_next;
		return;
	}
	c->auths++;
	dev->auth_counted = true;
	start_auth(dev);
}

/* The first device waiting for an authentication slot, started. */
static void
auth_next(struct rdfm_client *c)
{
	struct rdfm_dev *dev;

	while (c->auths < c->max_auths && (dev = c->auth_head) != NULL) {
		c->auth_head = dev->auth_next;
		if (c->auth_head == NULL)
			c->auth_tail = &c->auth_head;
		dev->auth_next = NULL;
		dev->auth_waiting = false;
		c->auths++;
		dev->auth_counted = true;
		start_auth(dev);
	}
}

/* Leaves the queue, or gives the slot back: its authentication ended. */
static void
auth_release(struct rdfm_dev *dev)
{
	struct rdfm_client *c = dev->c;
	struct rdfm_dev **pp;

	if (dev->auth_waiting) {
		for (pp = &c->auth_head; *pp != NULL; pp = &(*pp)->auth_next)
			if (*pp == dev) {
				*pp = dev->auth_next;
				break;
			}
		c->auth_tail = &c->auth_head;
		while (*c->auth_tail != NULL)
			c->auth_tail = &(*c->auth_tail)->auth_next;
		dev->auth_waiting = false;
		dev->auth_next = NULL;
	}
	if (!dev->auth_counted)
		return;
	dev->auth_counted = false;
	c->auths--;
	/* From the loop: the caller may be finishing this very device. */
	if (c->auth_head != NULL)
		event_active(c->kick, EV_TIMEOUT, 0);
}

static void
start_auth(struct rdfm_dev *dev)
{
	unsigned char *sig = NULL;
	size_t siglen = 0;
	char err[256], *body, *b64, *hdr;
	int n;

	if ((body = auth_body(dev, err, sizeof(err))) == NULL) {
		finish(dev, RDFM_ERR_LOCAL, 0, "%s", err);
		return;
	}
	/* The signature covers exactly the bytes sent. */
	if (keys_sign(dev->key, body, strlen(body), &sig, &siglen) != 0) {
		free(body);
		finish(dev, RDFM_ERR_LOCAL, 0, "cannot sign the request");
		return;
	}
	b64 = xmalloc(4 * ((siglen + 2) / 3) + 1);
	n = EVP_EncodeBlock((unsigned char *)b64, sig, (int)siglen);
	b64[n] = '\0';
	free(sig);
	xasprintf(&hdr, "X-RDFM-Device-Signature: %s", b64);
	free(b64);
	req_start(dev, REQ_AUTH, "/api/v1/auth/device", body, hdr);
	free(hdr);
	log_debug("authenticating", "device=%s", log_q(dev->id));
}

static void
send_check(struct rdfm_dev *dev)
{
	struct json_object *o;
	char *body;

	o = json_object_new_object();
	json_object_object_add(o, "rdfm.software.version",
	                       json_object_new_string(dev->version));
	json_object_object_add(o, "rdfm.hardware.devtype",
	                       json_object_new_string(dev->dev_type));
	json_object_object_add(o, "rdfm.hardware.macaddr",
	                       json_object_new_string(dev->id));
	body = xstrdup(json_object_to_json_string_ext(
	    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	req_start(dev, REQ_CHECK, "/api/v1/update/check", body, NULL);
}

static bool
token_valid(struct rdfm_dev *dev)
{
	struct timespec now;

	if (dev->token == NULL)
		return false;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec < dev->token_until.tv_sec ||
	       (now.tv_sec == dev->token_until.tv_sec &&
	        now.tv_nsec < dev->token_until.tv_nsec);
}

static void
token_store(struct rdfm_dev *dev, char *token, long long expires)
{
	long long ms, margin;

	token_clear(dev);
	dev->token = token;
	/* Stop using it a little early: a fifth of its life, at most 60 s. */
	ms = expires * 1000;
	margin = ms / 5 < 60000 ? ms / 5 : 60000;
	ms -= margin;
	clock_gettime(CLOCK_MONOTONIC, &dev->token_until);
	dev->token_until.tv_sec += ms / 1000;
	dev->token_until.tv_nsec += (ms % 1000) * 1000000;
	if (dev->token_until.tv_nsec >= 1000000000) {
		dev->token_until.tv_sec++;
		dev->token_until.tv_nsec -= 1000000000;
	}
}

static void
auth_done(struct rdfm_dev *dev, long code, const char *rsp, size_t len)
{
	char err[256], *token;
	long long expires;

	if (code == 200) {
		if (rdfm_parse_auth(rsp, len, &token, &expires, err,
		                    sizeof(err)) == -1) {
			finish(dev, RDFM_ERR_TRANSIENT, code,
			       "bad authentication response: %s", err);
			return;
		}
		token_store(dev, token, expires);
		if (dev->told_unapproved)
			log_info("device approved by the server", "device=%s",
			         log_q(dev->id));
		dev->told_unapproved = false;
		if (dev->auth_only)
			finish(dev, RDFM_AUTHENTICATED, code, NULL);
		else
			send_check(dev);
		return;
	}
	rdfm_parse_error(rsp, len, err, sizeof(err));
	if (code == 401) {
		/* Waiting for an administrator: say so once, then poll. */
		if (!dev->told_unapproved)
			log_info("waiting for approval by the server "
			         "administrator",
			         "device=%s", log_q(dev->id));
		dev->told_unapproved = true;
		finish(dev, RDFM_UNAPPROVED, code, "device not approved yet");
	} else if (transient_status(code))
		finish(dev, RDFM_ERR_TRANSIENT, code,
		       "authentication failed with HTTP %ld %s", code, err);
	else {
		log_errx("server refused authentication",
		         "device=%s status=%ld "
		         "error=%s",
		         log_q(dev->id), code, log_q(err));
		finish(dev, RDFM_ERR_CLIENT, code,
		       "authentication refused with HTTP %ld: %s", code, err);
	}
}

static void
check_done(struct rdfm_dev *dev, long code, const char *rsp, size_t len)
{
	char err[256];

	if (code == 204) {
		finish(dev, RDFM_NO_UPDATE, code, NULL);
		return;
	}
	if (code == 200) {
		if (rdfm_parse_check(rsp, len, &dev->offer, err, sizeof(err)) ==
		    -1) {
			finish(dev, RDFM_ERR_TRANSIENT, code,
			       "bad update check response: %s", err);
			return;
		}
		finish(dev, RDFM_UPDATE, code, NULL);
		return;
	}
	rdfm_parse_error(rsp, len, err, sizeof(err));
	if (code == 401 && !dev->reauthed) {
		/* The token died early (server restart, clock): once more. */
		dev->reauthed = true;
		token_clear(dev);
		send_auth(dev);
	} else if (transient_status(code))
		finish(dev, RDFM_ERR_TRANSIENT, code,
		       "update check failed with HTTP %ld %s", code, err);
	else {
		log_errx("server refused the update check",
		         "device=%s "
		         "status=%ld error=%s",
		         log_q(dev->id), code, log_q(err));
		finish(dev, RDFM_ERR_CLIENT, code,
		       "update check refused with HTTP %ld: %s", code, err);
	}
}

static void
req_done(struct curlev_xfer *cx, CURLcode rc)
{
	struct req *r = (struct req *)cx;
	struct xfer *x = &r->x;
	struct rdfm_dev *dev = r->dev;
	struct rdfm_client *c = dev->c;
	enum req_kind kind = r->kind;
	long code = 0;
	char *rsp, why[CURL_ERROR_SIZE + 128];
	size_t len;

	curl_easy_getinfo(x->cx.easy, CURLINFO_RESPONSE_CODE, &code);
	/* Detach before continuing: the next request replaces dev->req. */
	dev->req = NULL;
	if (kind == REQ_AUTH)
		auth_release(dev);
	rsp = r->rsp;
	len = r->rsplen;
	r->rsp = NULL;
	if (rc != CURLE_OK) {
		if (r->toolarge)
			finish(dev, RDFM_ERR_TRANSIENT, code,
			       "server response larger than %d bytes",
			       RDFM_MAX_RESPONSE);
		else
			finish(dev, RDFM_ERR_TRANSIENT, code, "%s: %s",
			       kind == REQ_AUTH ? "authentication"
			                        : "update check",
			       xfer_error(x, rc, why, sizeof(why)));
	} else if (kind == REQ_AUTH)
		auth_done(dev, code, rsp != NULL ? rsp : "", len);
	else
		check_done(dev, code, rsp != NULL ? rsp : "", len);
	free(rsp);
	req_free(c, r);
}

int
rdfm_check(struct rdfm_dev *dev, const char *version, rdfm_cb cb, void *arg)
{
	if (dev->busy)
		return -1;
	dev->busy = true;
	dev->cb = cb;
	dev->arg = arg;
	dev->reauthed = false;
	dev->auth_only = false;
	dev->version = xstrdup(version);
	if (token_valid(dev))
		send_check(dev);
	else {
		token_clear(dev);
		send_auth(dev);
	}
	return 0;
}

/*
 * The server stores rdfm.software.version when a device authenticates, and
 * a cached token would keep the old one there for its lifetime: after an
 * update or a rollback, authenticate again at once with the version now
 * running.
 */
int
rdfm_report_version(struct rdfm_dev *dev, const char *version, rdfm_cb cb,
                    void *arg)
{
	if (dev->busy)
		return -1;
	dev->busy = true;
	dev->cb = cb;
	dev->arg = arg;
	dev->reauthed = true;
	dev->auth_only = true;
	dev->version = xstrdup(version);
	token_clear(dev);
	send_auth(dev);
	return 0;
}

/* A token for the management channel: authenticate only when needed. */
int
rdfm_auth(struct rdfm_dev *dev, const char *version, rdfm_cb cb, void *arg)
{
	if (dev->busy)
		return -1;
	dev->busy = true;
	dev->cb = cb;
	dev->arg = arg;
	dev->auth_only = true;
	dev->version = xstrdup(version);
	if (token_valid(dev))
		finish_later(dev, RDFM_AUTHENTICATED, NULL);
	else {
		token_clear(dev);
		send_auth(dev);
	}
	return 0;
}

const char *
rdfm_dev_token(struct rdfm_dev *dev)
{
	return token_valid(dev) ? dev->token : NULL;
}

/* Downloads. */

/* The URL without its query, which may carry presigned credentials. */
static const char *
uri_for_log(const char *uri)
{
	static char buf[512];
	size_t n = strcspn(uri, "?#");

	if (n >= sizeof(buf))
		n = sizeof(buf) - 1;
	memcpy(buf, uri, n);
	buf[n] = '\0';
	return log_q(buf);
}

static size_t
fetch_header_cb(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct fetch *f = arg;
	size_t n = size * nmemb;
	char line[256];
	long long a, b, t;

	if (n >= sizeof(line))
		return n;
	memcpy(line, ptr, n);
	line[n] = '\0';
	if (strncmp(line, "HTTP/", 5) == 0) {
		/* A new response (after a redirect): forget the last one. */
		f->range_start = -1;
		f->range_total = -1;
	} else if (strncasecmp(line, "Content-Range:", 14) == 0) {
		if (sscanf(line + 14, " bytes %lld-%lld/%lld", &a, &b, &t) ==
		        3 &&
		    a >= 0 && b >= a && t > b) {
			f->range_start = a;
			f->range_total = t;
		} else if (sscanf(line + 14, " bytes */%lld", &t) == 1 &&
		           t >= 0)
			f->range_total = t; /* with 416 */
	}
	return n;
}

static long long
ms_since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long long)(now.tv_sec - t0->tv_sec) * 1000 +
	       (now.tv_nsec - t0->tv_nsec) / 1000000;
}

/*
 * Arm the deadline: start + grace + bytes / min_rate.  With the size
 * known, bytes is what this transfer must bring: a server that drips the
 * file is given up on however steadily it drips.  Without it, the bytes
 * seen so far plus another grace: the average must keep up.
 */
static void
fetch_arm_deadline(struct fetch *f)
{
	long long bytes, allowed_ms, left_ms;
	struct timeval tv;

	if (f->expected >= 0) {
		bytes = f->expected;
		allowed_ms = f->c->grace_ms;
	} else {
		bytes = (long long)f->received;
		allowed_ms = 2 * f->c->grace_ms;
	}
	allowed_ms += bytes / f->c->min_rate * 1000 +
	              bytes % f->c->min_rate * 1000 / f->c->min_rate;
	left_ms = allowed_ms - ms_since(&f->t0);
	if (left_ms < 0)
		left_ms = 0;
	tv.tv_sec = (time_t)(left_ms / 1000);
	tv.tv_usec = (suseconds_t)(left_ms % 1000) * 1000;
	evtimer_add(f->deadline, &tv);
}

static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct fetch *f = arg;
	char total[32];

	(void)fd;
	(void)what;
	if (f->expected >= 0)
		snprintf(total, sizeof(total), "%lld", f->expected);
	else
		snprintf(total, sizeof(total), "an unknown number of");
	snprintf(f->err, sizeof(f->err),
	         "download too slow: %" PRIu64 " of %s bytes in %llds; a "
	         "download must average %lld bytes/s after %llds "
	         "(download_min_rate, download_grace)",
	         f->received, total, ms_since(&f->t0) / 1000, f->c->min_rate,
	         f->c->grace_ms / 1000);
	f->too_slow = true;
	/* Ends it as libcurl would: what came stays for a resume. */
	curlev_remove(f->c->cv, &f->x.cx);
	f->x.cx.done(&f->x.cx, CURLE_OPERATION_TIMEDOUT);
}

/* The first body bytes: is this the file, and where does it start? */
static int
fetch_start_body(struct fetch *f)
{
	curl_off_t cl = -1;
	long code = 0;

	f->started = true;
	curl_easy_getinfo(f->x.cx.easy, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_getinfo(f->x.cx.easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T,
	                  &cl);
	if (code == 200) {
		if (f->offset > 0) {
			/* The server ignored Range: start over. */
			log_info("server ignored the range request, "
			         "downloading from the start",
			         "uri=%s", uri_for_log(f->uri));
			if (spool_restart(f->e, f->err, sizeof(f->err)) == -1)
				return -1;
			f->offset = 0;
		}
		f->body_ok = true;
		f->expected = cl >= 0 ? (long long)cl : -1;
		fetch_arm_deadline(f);
		if (cl >= 0)
			return spool_reserve(f->e, (uint64_t)cl, f->err,
			                     sizeof(f->err));
		return 0;
	}
	if (code == 206) {
		if (f->range_start != (long long)f->offset) {
			snprintf(f->err, sizeof(f->err),
			         "server answered the range request from byte "
			         "%lld, asked for %" PRIu64,
			         f->range_start, f->offset);
			return -1;
		}
		f->body_ok = true;
		f->expected = f->range_total - f->range_start;
		fetch_arm_deadline(f);
		return spool_reserve(f->e, (uint64_t)f->range_total, f->err,
		                     sizeof(f->err));
	}
	/* An error page: not part of the file. */
	return 0;
}

static size_t
fetch_write_cb(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct fetch *f = arg;
	size_t n = size * nmemb;

	if (!f->started && fetch_start_body(f) == -1) {
		f->local_error = true;
		return 0;
	}
	if (!f->body_ok)
		return n;
	if (spool_write(f->e, ptr, n, f->err, sizeof(f->err)) == -1) {
		f->local_error = true;
		return 0;
	}
	f->received += n;
	if (f->expected < 0)
		fetch_arm_deadline(f);
	return n;
}

static void
fetch_drop_waiter(struct fetch *f, struct rdfm_dev *dev)
{
	struct waiter **pp, *w;

	for (pp = &f->waiters; *pp != NULL; pp = &(*pp)->next) {
		if ((*pp)->dev == dev) {
			w = *pp;
			*pp = w->next;
			free(w);
			return;
		}
	}
}

static void
fetch_free(struct fetch *f)
{
	struct fetch **pp;

	for (pp = &f->c->fetches; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == f) {
			*pp = f->next;
			break;
		}
	}
	xfer_cleanup(f->c, &f->x);
	if (!f->queued) {
		f->c->running_fetches--;
		/* A download slot is free: the next waits no longer. */
		event_active(f->c->kick, EV_TIMEOUT, 0);
	}
	if (f->deadline != NULL)
		event_free(f->deadline);
	if (spool_fetch(f->e) == f)
		spool_set_fetch(f->e, NULL);
	spool_unref(f->e);
	free(f->uri);
	free(f);
}

/* Tells every device waiting for f how it ended, and frees it. */
static void
fetch_end(struct fetch *f, enum rdfm_status st, long code, const char *err)
{
	struct waiter *w;
	struct rdfm_dev *dev;

	while ((w = f->waiters) != NULL) {
		f->waiters = w->next;
		dev = w->dev;
		free(w);
		dev->fetch = NULL;
		if (st == RDFM_DOWNLOADED) {
			finish(dev, st, code, NULL);
		} else
			finish(dev, st, code, "%s", err);
	}
	fetch_free(f);
}

static void
fetch_done(struct curlev_xfer *cx, CURLcode rc)
{
	struct fetch *f = (struct fetch *)cx;
	struct xfer *x = &f->x;
	enum rdfm_status st;
	long code = 0;
	char err[256], why[CURL_ERROR_SIZE + 128];
	int frc;

	evtimer_del(f->deadline);
	curl_easy_getinfo(x->cx.easy, CURLINFO_RESPONSE_CODE, &code);
	/* A waiter's callback may start a new transfer of the same entry. */
	spool_set_fetch(f->e, NULL);
	err[0] = '\0';
	if (f->local_error) {
		st = RDFM_ERR_LOCAL;
		snprintf(err, sizeof(err), "%s", f->err);
		spool_abort(f->e, false);
	} else if (f->too_slow) {
		st = RDFM_ERR_TRANSIENT;
		snprintf(err, sizeof(err), "%s", f->err);
		spool_abort(f->e, true);
	} else if (rc != CURLE_OK) {
		/* Keep what arrived: the next attempt resumes after it. */
		st = RDFM_ERR_TRANSIENT;
		snprintf(err, sizeof(err),
		         "download interrupted after %" PRIu64 " bytes: %s",
		         spool_size(f->e), xfer_error(x, rc, why, sizeof(why)));
		spool_abort(f->e, true);
	} else if (code == 416 && f->offset > 0 &&
	           f->range_total == (long long)f->offset) {
		/* The partial file was already whole (stopped before the
		 * rename): verify it as it is. */
		frc = spool_finish(f->e, err, sizeof(err));
		st = frc == 0    ? RDFM_DOWNLOADED
		     : frc == -2 ? RDFM_ERR_VERIFY
		                 : RDFM_ERR_LOCAL;
	} else if (code == 416) {
		st = RDFM_ERR_TRANSIENT;
		snprintf(err, sizeof(err),
		         "server refused to resume at byte "
		         "%" PRIu64 "; starting over",
		         f->offset);
		spool_abort(f->e, false);
	} else if (!f->body_ok) {
		st = transient_status(code) ? RDFM_ERR_TRANSIENT
		                            : RDFM_ERR_CLIENT;
		snprintf(err, sizeof(err), "download failed with HTTP %ld",
		         code);
		spool_abort(f->e, true);
	} else if ((frc = spool_finish(f->e, err, sizeof(err))) == 0) {
		st = RDFM_DOWNLOADED;
		log_info("download verified", "sha256=%s size=%" PRIu64,
		         spool_sha256(f->e), spool_size(f->e));
	} else
		st = frc == -2 ? RDFM_ERR_VERIFY : RDFM_ERR_LOCAL;
	if (st != RDFM_DOWNLOADED)
		log_warnx("download failed", "uri=%s status=%ld error=%s",
		          uri_for_log(f->uri), code, log_q(err));
	fetch_end(f, st, code, err);
}

/*
 * A transfer for a spool entry, queued: every device offered the entry
 * waits on it, and it starts when a download slot is free.
 */
static struct fetch *
fetch_new(struct rdfm_client *c, struct spool_entry *e, const char *uri)
{
	struct fetch *f, **pp;

	f = xcalloc(1, sizeof(*f));
	f->c = c;
	f->e = e;
	f->uri = xstrdup(uri);
	f->x.cx.done = fetch_done;
	f->range_start = -1;
	f->range_total = -1;
	f->expected = -1;
	f->queued = true;
	if ((f->deadline = evtimer_new(c->base, on_deadline, f)) == NULL)
		fatalx("cannot create a timer", NULL);
	spool_entry_hold(e);
	spool_set_fetch(e, f);
	/* In order of arrival: the oldest queued starts first. */
	for (pp = &c->fetches; *pp != NULL; pp = &(*pp)->next)
		;
	*pp = f;
	return f;
}

/* Start a queued transfer; -1 with err when the spool cannot take it. */
static int
fetch_begin(struct fetch *f, char *err, size_t errcap)
{
	struct rdfm_client *c = f->c;
	char range[64];
	CURL *easy;

	if (spool_begin(f->e, &f->offset, err, errcap) == -1)
		return -1;
	f->queued = false;
	c->running_fetches++;
	clock_gettime(CLOCK_MONOTONIC, &f->t0);
	easy = xfer_easy(c, &f->x, f->uri);
	curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(easy, CURLOPT_MAXREDIRS, 5L);
	curl_easy_setopt(easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(easy, CURLOPT_LOW_SPEED_TIME, (long)STALL_S);
	curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, fetch_header_cb);
	curl_easy_setopt(easy, CURLOPT_HEADERDATA, f);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, fetch_write_cb);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, f);
	if (f->offset > 0) {
		snprintf(range, sizeof(range), "%" PRIu64 "-", f->offset);
		curl_easy_setopt(easy, CURLOPT_RANGE, range);
		log_info("resuming download", "uri=%s offset=%" PRIu64,
		         uri_for_log(f->uri), f->offset);
	} else
		log_info("downloading", "uri=%s", uri_for_log(f->uri));
	curlev_add(c->cv, &f->x.cx);
	/* Until the size is known, the grace alone. */
	fetch_arm_deadline(f);
	return 0;
}

/* Queued transfers, oldest first, while download slots are free. */
static void
fetch_next(struct rdfm_client *c)
{
	struct fetch *f;
	char err[256];

	while (c->running_fetches < c->max_fetches) {
		for (f = c->fetches; f != NULL && !f->queued; f = f->next)
			;
		if (f == NULL)
			return;
		if (f->waiters == NULL) {
			/* Every device that wanted it went away meanwhile. */
			fetch_free(f);
			continue;
		}
		if (fetch_begin(f, err, sizeof(err)) == -1) {
			log_warnx("download failed", "uri=%s error=%s",
			          uri_for_log(f->uri), log_q(err));
			fetch_end(f, RDFM_ERR_LOCAL, 0, err);
		}
	}
}

int
rdfm_download(struct rdfm_dev *dev, struct spool_entry *entry, const char *uri,
              rdfm_cb cb, void *arg)
{
	struct fetch *f;
	struct waiter *w;
	char err[256];

	if (dev->busy)
		return -1;
	dev->busy = true;
	dev->cb = cb;
	dev->arg = arg;
	dev->entry = entry;
	if (spool_ready(entry)) {
		finish_later(dev, RDFM_DOWNLOADED, NULL);
		return 0;
	}
	if ((f = spool_fetch(entry)) == NULL) {
		f = fetch_new(dev->c, entry, uri);
		if (dev->c->running_fetches < dev->c->max_fetches &&
		    fetch_begin(f, err, sizeof(err)) == -1) {
			fetch_free(f);
			finish_later(dev, RDFM_ERR_LOCAL, err);
			return 0;
		}
	}
	w = xcalloc(1, sizeof(*w));
	w->dev = dev;
	w->next = f->waiters;
	f->waiters = w;
	dev->fetch = f;
	return 0;
}
