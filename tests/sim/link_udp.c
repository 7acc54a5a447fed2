/*
 * The board's UDP link: one socket, one SMP packet per datagram, every
 * reply to the address its request came from.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "xmalloc.h"
#include "sim.h"

static size_t
udp_pkt_limit(void)
{
	return board.o->buf_size;
}

static void
udp_send(const uint8_t *pkt, size_t len, const struct peer *peer)
{
	if (sendto(board.udp_fd, pkt, len, 0,
	           (const struct sockaddr *)&peer->ss, peer->len) == -1)
		log_warn("udp send failed", NULL);
}

static void
udp_down(void)
{
}

static void
udp_up(void)
{
}

static size_t
udp_pending_out(void)
{
	return 0;
}

static const struct link_ops udp_ops = {
    .name = "udp",
    .pkt_limit = udp_pkt_limit,
    .send = udp_send,
    .down = udp_down,
    .up = udp_up,
    .pending_out = udp_pending_out,
};

static void
udp_read_cb(evutil_socket_t fd, short ev, void *arg)
{
	uint8_t buf[65536];
	struct peer peer;
	ssize_t n;

	(void)ev;
	sim_board = arg;
	/* Drain the socket so a burst lands in the receive buffers at once. */
	for (;;) {
		peer.len = sizeof(peer.ss);
		n = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT,
		             (struct sockaddr *)&peer.ss, &peer.len);
		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				log_warn("udp receive failed", NULL);
			return;
		}
		server_receive(buf, (size_t)n, &peer);
	}
}

void
udp_link_init(void)
{
	struct addrinfo hints, *res;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char *host, *port, hbuf[NI_MAXHOST], pbuf[NI_MAXSERV],
	    where[NI_MAXHOST + NI_MAXSERV + 4];
	int rv;

	host = xstrdup(board.o->udp);
	if ((port = strrchr(host, ':')) == NULL || port == host ||
	    port[1] == '\0')
		fatalx("--udp wants HOST:PORT", "value=%s",
		       log_q(board.o->udp));
	*port++ = '\0';
	if (host[0] == '[' && port[-2] == ']') {
		port[-2] = '\0';
		memmove(host, host + 1, strlen(host));
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_DGRAM;
	hints.ai_flags = AI_NUMERICSERV;
	if ((rv = getaddrinfo(host, port, &hints, &res)) != 0)
		fatalx("cannot resolve --udp address", "value=%s error=%s",
		       log_q(board.o->udp), log_q(gai_strerror(rv)));
	board.udp_fd = socket(res->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (board.udp_fd == -1)
		fatal("cannot create udp socket", NULL);
	if (bind(board.udp_fd, res->ai_addr, res->ai_addrlen) == -1)
		fatal("cannot bind udp socket", "value=%s",
		      log_q(board.o->udp));
	freeaddrinfo(res);
	free(host);
	if (getsockname(board.udp_fd, (struct sockaddr *)&ss, &sl) == -1 ||
	    getnameinfo((struct sockaddr *)&ss, sl, hbuf, sizeof(hbuf), pbuf,
	                sizeof(pbuf), NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		fatal("cannot read the udp socket's address", NULL);
	evutil_make_socket_nonblocking(board.udp_fd);
	board.udp_ev = event_new(board.base, board.udp_fd, EV_READ | EV_PERSIST,
	                         udp_read_cb, sim_board);
	event_add(board.udp_ev, NULL);
	blink = &udp_ops;
	if (strchr(hbuf, ':') != NULL)
		snprintf(where, sizeof(where), "[%s]:%s", hbuf, pbuf);
	else
		snprintf(where, sizeof(where), "%s:%s", hbuf, pbuf);
	log_info("udp link ready", "address=%s", where);
	sim_ready("udp", where);
}

void
udp_link_free(void)
{
	if (board.udp_ev != NULL)
		event_free(board.udp_ev);
	if (board.udp_fd != -1)
		close(board.udp_fd);
}
