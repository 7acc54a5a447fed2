/*
 * The test server's local-storage downloads: Range requests, and the
 * slow and truncated transfers the faults ask for, streamed in chunks.
 */
#include <ctype.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "log.h"
#include "server.h"
#include "xmalloc.h"

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
	/* Under 10 bytes/s, a drip: one byte every 1/bps seconds. */
	if (s->bps > 0 && s->bps < 10) {
		tv.tv_sec = 1 / s->bps;
		tv.tv_usec = (suseconds_t)(1000000 / s->bps % 1000000);
	}
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

void
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
