/*
 * The UDP transport worker: one connected datagram socket per board
 * (IPv4 or IPv6), one SMP packet per datagram; a worker may serve several
 * boards, each with a socket of its own.  Everything else is the shared
 * engine (common/engine.c).
 */
#include <sys/socket.h>
#include <sys/types.h>

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "log.h"
#include "xmalloc.h"

#define UDP_DEFAULT_PORT "1337"
#define UDP_MAX_PKT      65507 /* largest IPv4 UDP payload */

struct udp_link {
	int fd;
	char *address;
};

/* Datagrams are read and handed on at once: one buffer for every board. */
static uint8_t rbuf[UDP_MAX_PKT + 1];

int udp_main(int argc, char **argv);

/* "host:port", "[v6]:port", "host" or "[v6]" into host and port. */
static int
udp_split(const char *addr, char *host, size_t hostcap, char *port,
          size_t portcap)
{
	const char *end, *colon;
	size_t hl;

	if (addr[0] == '[') {
		if ((end = strchr(addr, ']')) == NULL)
			return -1;
		hl = end - addr - 1;
		if (hl == 0 || hl >= hostcap)
			return -1;
		memcpy(host, addr + 1, hl);
		host[hl] = '\0';
		if (end[1] == '\0')
			return snprintf(port, portcap, "%s", UDP_DEFAULT_PORT) >
			               0
			           ? 0
			           : -1;
		if (end[1] != ':' || end[2] == '\0')
			return -1;
		return snprintf(port, portcap, "%s", end + 2) < (int)portcap
		           ? 0
		           : -1;
	}
	colon = strrchr(addr, ':');
	if (colon != NULL && strchr(addr, ':') != colon)
		return -1; /* a bare IPv6 address needs brackets */
	hl = colon != NULL ? (size_t)(colon - addr) : strlen(addr);
	if (hl == 0 || hl >= hostcap)
		return -1;
	memcpy(host, addr, hl);
	host[hl] = '\0';
	if (colon == NULL)
		return snprintf(port, portcap, "%s", UDP_DEFAULT_PORT) > 0 ? 0
		                                                           : -1;
	if (colon[1] == '\0')
		return -1;
	return snprintf(port, portcap, "%s", colon + 1) < (int)portcap ? 0 : -1;
}

static int
udp_connect(struct udp_link *u, char *why, size_t whycap)
{
	struct addrinfo hints, *res, *ai;
	char host[256], port[32];
	int rc, fd = -1;

	if (udp_split(u->address, host, sizeof(host), port, sizeof(port)) ==
	    -1) {
		snprintf(why, whycap,
		         "bad UDP address \"%s\" (want host:port or [v6]:port)",
		         u->address);
		return -1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_DGRAM;
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
		snprintf(why, whycap, "cannot resolve \"%s\": %s", u->address,
		         gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family,
		            ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		            ai->ai_protocol);
		if (fd == -1)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd == -1) {
		snprintf(why, whycap,
		         "cannot connect a UDP socket to \"%s\": %s",
		         u->address, strerror(errno));
		return -1;
	}
	u->fd = fd;
	log_info("udp link open", "address=%s", log_q(u->address));
	return 0;
}

static int
udp_open(void *ctx, const Ipc__LinkConfig *cfg, int fd, char *why,
         size_t whycap)
{
	struct udp_link *u = ctx;

	if (fd != -1)
		close(fd);
	free(u->address);
	u->address = xstrdup(cfg->address);
	return udp_connect(u, why, whycap);
}

/*
 * A UDP link is never lost, so this only runs after the first open
 * failed (a bad or unresolvable address): inside the sandbox, where
 * resolving or making sockets is not allowed.  The reason stands.
 */
static int
udp_reopen(void *ctx, int fd, char *why, size_t whycap)
{
	struct udp_link *u = ctx;

	if (fd != -1)
		close(fd);
	snprintf(why, whycap, "cannot open the UDP link to \"%s\"",
	         u->address != NULL ? u->address : "");
	return -1;
}

static void
udp_close(void *ctx)
{
	struct udp_link *u = ctx;

	if (u->fd != -1)
		close(u->fd);
	u->fd = -1;
}

static int
udp_fd(void *ctx)
{
	return ((struct udp_link *)ctx)->fd;
}

static int
udp_read(void *ctx, struct engine *e)
{
	struct udp_link *u = ctx;
	ssize_t n;
	int i;

	for (i = 0; i < 64; i++) {
		n = recv(u->fd, rbuf, sizeof(rbuf), 0);
		if (n == -1) {
			/* Nobody listening (yet): the board may be rebooting;
			 * the request timeouts deal with it. */
			if (errno == ECONNREFUSED || errno == EINTR)
				continue;
			return 0;
		}
		if ((size_t)n > UDP_MAX_PKT) {
			log_debug("oversized datagram dropped", "len=%zd", n);
			continue;
		}
		engine_packet(e, rbuf, (size_t)n);
	}
	return 0;
}

static int
udp_send(void *ctx, const uint8_t *pkt, size_t len)
{
	struct udp_link *u = ctx;

	if (send(u->fd, pkt, len, 0) == -1)
		/* A datagram not sent is a datagram lost: retransmitted. */
		log_debug("udp send failed", "error=%s",
		          log_q(strerror(errno)));
	return 0;
}

static size_t
udp_max_pkt(void *ctx)
{
	(void)ctx;
	return UDP_MAX_PKT;
}

static void *
udp_ctx_new(void)
{
	struct udp_link *u = xcalloc(1, sizeof(*u));

	u->fd = -1;
	return u;
}

static void
udp_ctx_free(void *ctx)
{
	struct udp_link *u = ctx;

	udp_close(u);
	free(u->address);
	free(u);
}

static const struct link_ops udp_ops = {
    .role = "udp",
    .open = udp_open,
    .reopen = udp_reopen,
    .close = udp_close,
    .fd = udp_fd,
    .read = udp_read,
    .send = udp_send,
    .max_pkt = udp_max_pkt,
    .ctx_new = udp_ctx_new,
    .ctx_free = udp_ctx_free,
};

int
udp_main(int argc, char **argv)
{
	struct udp_link *u = udp_ctx_new();
	int rc;

	rc = engine_run(&udp_ops, u, argc, argv);
	udp_ctx_free(u);
	return rc;
}

int
main(int argc, char **argv)
{
	return udp_main(argc, argv);
}
