/*
 * libcurl's multi interface driven by libevent (CURLMOPT_SOCKETFUNCTION and
 * TIMERFUNCTION): one per server client, the device API's (rdfm.c) and the
 * management channel's, whose WebSocket connections stay in the multi
 * handle after connecting (curlev.h).
 */
#include <stdlib.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "curlev.h"
#include "log.h"
#include "xmalloc.h"

struct curlev {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;
};

struct sockev {
	struct event *ev;
};

static void
check_done(struct curlev *cv)
{
	struct curlev_xfer *x;
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(cv->multi, &left)) != NULL) {
		if (m->msg != CURLMSG_DONE)
			continue;
		x = NULL;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &x);
		if (x == NULL)
			continue;
		if (!x->keep) {
			curl_multi_remove_handle(cv->multi, m->easy_handle);
			x->added = false;
		}
		x->done(x, m->data.result);
	}
}

static void
on_socket(evutil_socket_t fd, short what, void *arg)
{
	struct curlev *cv = arg;
	int running, action = 0;

	if (what & EV_READ)
		action |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		action |= CURL_CSELECT_OUT;
	curl_multi_socket_action(cv->multi, fd, action, &running);
	check_done(cv);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct curlev *cv = arg;
	int running;

	(void)fd;
	(void)what;
	curl_multi_socket_action(cv->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(cv);
}

static int
socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct curlev *cv = userp;
	struct sockev *se = socketp;
	short kind;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (se != NULL) {
			event_free(se->ev);
			free(se);
			curl_multi_assign(cv->multi, s, NULL);
		}
		return 0;
	}
	kind = EV_PERSIST;
	if (what & CURL_POLL_IN)
		kind |= EV_READ;
	if (what & CURL_POLL_OUT)
		kind |= EV_WRITE;
	if (se == NULL) {
		se = xcalloc(1, sizeof(*se));
		curl_multi_assign(cv->multi, s, se);
	} else
		event_free(se->ev);
	se->ev = event_new(cv->base, s, kind, on_socket, cv);
	if (se->ev == NULL || event_add(se->ev, NULL) == -1)
		fatalx("cannot watch a server connection", NULL);
	return 0;
}

static int
timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct curlev *cv = userp;
	struct timeval tv;

	(void)multi;
	if (timeout_ms < 0) {
		evtimer_del(cv->timer);
		return 0;
	}
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	evtimer_add(cv->timer, &tv);
	return 0;
}

struct curlev *
curlev_new(struct event_base *base)
{
	struct curlev *cv;

	cv = xcalloc(1, sizeof(*cv));
	cv->base = base;
	if ((cv->multi = curl_multi_init()) == NULL)
		fatalx("cannot create a curl multi handle", NULL);
	if ((cv->timer = evtimer_new(base, on_timer, cv)) == NULL)
		fatalx("cannot create a timer", NULL);
	curl_multi_setopt(cv->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
	curl_multi_setopt(cv->multi, CURLMOPT_SOCKETDATA, cv);
	curl_multi_setopt(cv->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(cv->multi, CURLMOPT_TIMERDATA, cv);
	return cv;
}

void
curlev_free(struct curlev *cv)
{
	if (cv == NULL)
		return;
	curl_multi_cleanup(cv->multi);
	event_free(cv->timer);
	free(cv);
}

void
curlev_set_connections(struct curlev *cv, unsigned int n)
{
	if (n == 0)
		n = 1;
	curl_multi_setopt(cv->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)n);
	curl_multi_setopt(cv->multi, CURLMOPT_MAXCONNECTS, (long)n);
}

void
curlev_add(struct curlev *cv, struct curlev_xfer *x)
{
	curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x);
	if (curl_multi_add_handle(cv->multi, x->easy) != CURLM_OK)
		fatalx("cannot start a server transfer", NULL);
	x->added = true;
}

void
curlev_remove(struct curlev *cv, struct curlev_xfer *x)
{
	if (!x->added)
		return;
	curl_multi_remove_handle(cv->multi, x->easy);
	x->added = false;
}
