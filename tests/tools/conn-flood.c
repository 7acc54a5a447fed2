/*
 * conn-flood: opens many idle TCP connections to one address and holds
 * them, as a hostile local process would, then reports how many the peer
 * accepted, how many it closed, and how many never completed.
 *   conn-flood --port P [--host 127.0.0.1] --count N --hold SECONDS
 */
#include <sys/resource.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void
usage(void)
{
	fprintf(stderr, "usage: conn-flood --port P [--host ADDR] --count N "
	                "--hold SECONDS\n");
	exit(2);
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"host", required_argument, NULL, 'h'},
	    {"port", required_argument, NULL, 'p'},
	    {"count", required_argument, NULL, 'n'},
	    {"hold", required_argument, NULL, 't'},
	    {NULL, 0, NULL, 0},
	};
	const char *host = "127.0.0.1";
	struct sockaddr_in sa;
	struct pollfd *pfd;
	struct rlimit rl;
	int ch, port = 0, count = 0, i, up = 0, closed = 0, failed = 0;
	double hold = 0, end;
	char c;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'h':
			host = optarg;
			break;
		case 'p':
			port = atoi(optarg);
			break;
		case 'n':
			count = atoi(optarg);
			break;
		case 't':
			hold = atof(optarg);
			break;
		default:
			usage();
		}
	}
	if (port <= 0 || port > 65535 || count <= 0 || count > 60000 ||
	    optind != argc)
		usage();
	/* Our own descriptors must not be what runs out. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    rl.rlim_cur < (rlim_t)count + 16) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		usage();
	pfd = calloc((size_t)count, sizeof(*pfd));
	if (pfd == NULL)
		return 1;
	for (i = 0; i < count; i++) {
		pfd[i].fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		if (pfd[i].fd == -1) {
			fprintf(stderr, "conn-flood: socket: %s\n",
			        strerror(errno));
			return 1;
		}
		if (connect(pfd[i].fd, (struct sockaddr *)&sa, sizeof(sa)) ==
		        -1 &&
		    errno != EINPROGRESS)
			failed++;
		pfd[i].events = POLLOUT;
	}
	printf("opened=%d\n", count);
	fflush(stdout);
	/* Hold them, idle; note which the peer closes. */
	end = now_s() + hold;
	while (now_s() < end) {
		poll(pfd, (nfds_t)count, 200);
		for (i = 0; i < count; i++) {
			if (pfd[i].revents & POLLOUT)
				pfd[i].events = POLLIN;
			pfd[i].revents = 0;
		}
	}
	for (i = 0; i < count; i++) {
		socklen_t l = sizeof(int);
		int soerr = 0;

		getsockopt(pfd[i].fd, SOL_SOCKET, SO_ERROR, &soerr, &l);
		if (pfd[i].events == POLLIN && soerr == 0) {
			up++;
			if (recv(pfd[i].fd, &c, 1, MSG_DONTWAIT) == 0)
				closed++;
		}
		close(pfd[i].fd);
	}
	printf("connected=%d closed_by_peer=%d pending=%d failed=%d\n", up,
	       closed, count - up - failed, failed);
	free(pfd);
	return 0;
}
