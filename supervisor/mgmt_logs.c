/*
 * Device logs of the management channel: update outcomes and action runs
 * batched to POST /api/v1/logs with the device's token, so the server
 * keeps each board's history.  A server without the route (404) is
 * remembered until restart; entries wait (bounded) while it is away.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "log.h"
#include "mgmt_int.h"
#include "rdfm.h"
#include "xmalloc.h"

#define LOGS_MAX     256 /* entries kept per device */
#define LOGS_BATCH   50
#define LOGS_RSP_MAX 4096

struct logent {
	time_t when;
	char name[16];
	char *entry;
};

struct mgmt_logq {
	struct mgmt_dev *dev;
	struct logent *q;
	size_t n;
	size_t dropped;
	struct event *timer;
	struct curlev_xfer x;
	struct curl_slist *hdrs;
	char *body;
	size_t nsent;
	bool wait_token;
	unsigned failures;
	char rsp[LOGS_RSP_MAX];
	size_t rsplen;
};

static bool told_gone;

static void flush(struct mgmt_logq *);

static void
drop_front(struct mgmt_logq *lq, size_t n)
{
	size_t i;

	for (i = 0; i < n && i < lq->n; i++)
		free(lq->q[i].entry);
	memmove(lq->q, lq->q + i, (lq->n - i) * sizeof(*lq->q));
	lq->n -= i;
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	flush(arg);
}

static void
later(struct mgmt_logq *lq, unsigned ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	evtimer_add(lq->timer, &tv);
}

static size_t
rsp_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct mgmt_logq *lq = arg;
	size_t n = size * nmemb, k = n;

	if (k > sizeof(lq->rsp) - 1 - lq->rsplen)
		k = sizeof(lq->rsp) - 1 - lq->rsplen;
	memcpy(lq->rsp + lq->rsplen, ptr, k);
	lq->rsplen += k;
	return n;
}

static void
post_done(struct curlev_xfer *x, CURLcode rc)
{
	struct mgmt_logq *lq =
	    (struct mgmt_logq *)((char *)x - offsetof(struct mgmt_logq, x));
	struct mgmt_dev *dev = lq->dev;
	char err[160];
	long code = 0;

	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(x->easy);
	x->easy = NULL;
	curl_slist_free_all(lq->hdrs);
	lq->hdrs = NULL;
	free(lq->body);
	lq->body = NULL;
	lq->rsp[lq->rsplen] = '\0';
	rdfm_parse_error(lq->rsp, lq->rsplen, err, sizeof(err));
	if (rc == CURLE_OK && code == 200) {
		drop_front(lq, lq->nsent);
		lq->failures = 0;
		if (lq->n > 0)
			later(lq, 0);
		return;
	}
	if (rc == CURLE_OK && code == 401) {
		/* A new token, then again. */
		(void)dev->ops->token(dev->ctx, true);
		lq->wait_token = true;
		return;
	}
	if (rc == CURLE_OK && code == 404) {
		dev->m->logs_gone = true;
		if (!told_gone)
			log_warnx("The server has no POST /api/v1/logs; device "
			          "logs are not sent until restart",
			          NULL);
		told_gone = true;
		drop_front(lq, lq->n);
		return;
	}
	if (rc == CURLE_OK && code >= 400 && code < 500 && code != 408 &&
	    code != 429) {
		/* Our batch is wrong for this server: no use sending it again.
		 */
		if (dev_once(dev, ONCE_LOGS_REFUSED))
			log_warnx("The server refused device logs",
			          "device=%s status=%ld error=%s",
			          log_q(dev->name), code, log_q(err));
		drop_front(lq, lq->nsent);
		if (lq->n > 0)
			later(lq, dev->m->t.log_flush_ms);
		return;
	}
	lq->failures++;
	log_debug("Device logs not sent; retrying",
	          "device=%s status=%ld "
	          "error=%s",
	          log_q(dev->name), code,
	          log_q(rc != CURLE_OK ? curl_easy_strerror(rc) : err));
	later(lq, mgmt_backoff_ms(lq->failures, 2000, 300000,
	                          (uint64_t)mgmt_now_ms()));
}

static void
flush(struct mgmt_logq *lq)
{
	struct mgmt_dev *dev = lq->dev;
	struct mgmt_log_entry e[LOGS_BATCH];
	const char *tok;
	char *url, *auth;
	size_t i, n;
	CURL *c;

	if (dev->m->logs_gone) {
		drop_front(lq, lq->n);
		return;
	}
	if (lq->x.easy != NULL || lq->n == 0)
		return;
	if ((tok = dev->ops->token(dev->ctx, false)) == NULL) {
		lq->wait_token = true;
		return;
	}
	n = lq->n < LOGS_BATCH ? lq->n : LOGS_BATCH;
	for (i = 0; i < n; i++) {
		e[i].when = lq->q[i].when;
		e[i].name = lq->q[i].name;
		e[i].entry = lq->q[i].entry;
	}
	lq->body = mgmt_enc_logs(e, n);
	lq->nsent = n;
	lq->rsplen = 0;
	if ((c = curl_easy_init()) == NULL)
		fatalx("cannot create a curl handle", NULL);
	rdfm_curl_setup(c, dev->m->ca_file);
	xasprintf(&url, "%s/api/v1/logs", dev->m->server);
	curl_easy_setopt(c, CURLOPT_URL, url);
	free(url);
	xasprintf(&auth, "Authorization: Bearer token=%s", tok);
	lq->hdrs = curl_slist_append(NULL, auth);
	explicit_bzero(auth, strlen(auth));
	free(auth);
	lq->hdrs =
	    curl_slist_append(lq->hdrs, "Content-Type: application/json");
	lq->hdrs = curl_slist_append(lq->hdrs, "Expect:");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, lq->hdrs);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, lq->body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(lq->body));
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, rsp_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, lq);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)RDFM_API_TIMEOUT_S);
	lq->x.easy = c;
	lq->x.keep = false;
	lq->x.done = post_done;
	curlev_add(dev->m->cv, &lq->x);
}

void
logs_add(struct mgmt_dev *dev, const char *name, const char *entry)
{
	struct mgmt_logq *lq = dev->logs;

	if (dev->m->logs_gone)
		return;
	if (lq == NULL) {
		lq = dev->logs = xcalloc(1, sizeof(*lq));
		lq->dev = dev;
		lq->q = xcalloc(LOGS_MAX, sizeof(*lq->q));
		if ((lq->timer = evtimer_new(dev->m->base, on_timer, lq)) ==
		    NULL)
			fatalx("cannot create a timer", NULL);
	}
	if (lq->n == LOGS_MAX) {
		/* The server is away long: the oldest make room. */
		if (lq->x.easy != NULL)
			return; /* the front is being sent */
		drop_front(lq, 1);
		lq->dropped++;
	}
	lq->q[lq->n].when = time(NULL);
	snprintf(lq->q[lq->n].name, sizeof(lq->q[lq->n].name), "%s", name);
	lq->q[lq->n].entry = xstrdup(entry);
	lq->n++;
	if (lq->x.easy == NULL && !lq->wait_token &&
	    !evtimer_pending(lq->timer, NULL))
		later(lq, dev->m->t.log_flush_ms);
}

void
logs_token_ready(struct mgmt_dev *dev)
{
	struct mgmt_logq *lq = dev->logs;

	if (lq != NULL && lq->wait_token) {
		lq->wait_token = false;
		later(lq, 0);
	}
}

void
logs_free(struct mgmt_dev *dev)
{
	struct mgmt_logq *lq = dev->logs;

	if (lq == NULL)
		return;
	if (lq->x.easy != NULL) {
		curlev_remove(dev->m->cv, &lq->x);
		curl_easy_cleanup(lq->x.easy);
	}
	curl_slist_free_all(lq->hdrs);
	free(lq->body);
	drop_front(lq, lq->n);
	event_free(lq->timer);
	free(lq->q);
	free(lq);
	dev->logs = NULL;
}
