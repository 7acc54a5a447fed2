/*
 * libcurl's multi interface on a libevent loop, for every server transfer:
 * the device API's requests and downloads (rdfm.c) and the management
 * channel's WebSocket connections (CURLOPT_CONNECT_ONLY, whose handle must
 * stay in the multi handle for as long as the connection lives), file
 * part uploads and device logs.
 */
#ifndef CURLEV_H
#define CURLEV_H

#include <stdbool.h>

#include <curl/curl.h>

struct event_base;
struct curlev;

/*
 * One transfer, usually inside the caller's own struct.  done runs from
 * the loop once, when the transfer ends; an ordinary transfer has then
 * left the multi handle and the caller may clean up easy at once.  keep:
 * a CONNECT_ONLY transfer stays in the multi handle after done (removing
 * it would close its connection) until curlev_remove().
 */
struct curlev_xfer {
	CURL *easy;
	bool keep;
	void (*done)(struct curlev_xfer *x, CURLcode rc);
	/* curlev's own */
	bool added;
};

struct curlev *curlev_new(struct event_base *base);
/* Every transfer must have been removed first. */
void curlev_free(struct curlev *cv);

/*
 * At most n connections to the server, busy or idle: transfers beyond
 * them wait inside libcurl in order of arrival.
 */
void curlev_set_connections(struct curlev *cv, unsigned int n);

/* Starts x->easy (CURLOPT_PRIVATE is curlev's). */
void curlev_add(struct curlev *cv, struct curlev_xfer *x);
/*
 * Takes x->easy out of the multi handle: a transfer in flight stops
 * without its done callback; a kept connection closes.  The caller then
 * cleans up the handle.  Harmless when x was never added.
 */
void curlev_remove(struct curlev *cv, struct curlev_xfer *x);

#endif
