/*
 * line-meter: measures a serial line between two pseudo-terminals (the
 * paced-line tool's test).  It plays the board: makes a pseudo-terminal,
 * prints "PTY <slave>" for the line to open, waits until the line's
 * client end LINK exists, then sends BYTES bytes both ways at once and
 * fits the rate each way from the arrival times; after a quiet second it
 * sends a burst and reports how long it took to cross.
 *
 *   line-meter --link LINK [--bytes N] [--burst N] [--limit SECONDS]
 * Gives up (exit 1, naming what arrived) when a phase takes longer than
 * --limit seconds (default 60), rather than waiting on a lost byte.
 *   prints: "PTY /dev/pts/N", then
 *           "down <B/s> up <B/s> burst <bytes> <seconds>"
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define PROG       "line-meter"
#define MAX_POINTS 200000

/* One direction: what is written at one end and read at the other. */
struct flow {
	int wfd, rfd;
	size_t total, written, got;
	/* Arrivals: seconds since the start, bytes so far. */
	double *t;
	double *b;
	size_t n;
};

static double
mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
die(const char *what)
{
	fprintf(stderr, PROG ": %s: %s\n", what, strerror(errno));
	exit(1);
}

static void
make_raw(int fd)
{
	struct termios t;

	if (tcgetattr(fd, &t) == 0) {
		cfmakeraw(&t);
		tcsetattr(fd, TCSANOW, &t);
	}
}

static void
flow_init(struct flow *f, int wfd, int rfd, size_t total)
{
	memset(f, 0, sizeof(*f));
	f->wfd = wfd;
	f->rfd = rfd;
	f->total = total;
	f->t = calloc(MAX_POINTS, sizeof(double));
	f->b = calloc(MAX_POINTS, sizeof(double));
	if (f->t == NULL || f->b == NULL)
		die("calloc");
}

static void
flow_free(struct flow *f)
{
	free(f->t);
	free(f->b);
	f->t = f->b = NULL;
}

static void
flow_write(struct flow *f)
{
	static const char pattern[] = "0123456789abcdefghijklmnopqrstuv";
	char buf[4096];
	size_t i, want = f->total - f->written;
	ssize_t n;

	if (want > sizeof(buf))
		want = sizeof(buf);
	for (i = 0; i < want; i++)
		buf[i] = pattern[(f->written + i) % 32];
	n = write(f->wfd, buf, want);
	if (n < 0 && errno != EAGAIN && errno != EINTR)
		die("write");
	if (n > 0)
		f->written += (size_t)n;
}

static void
flow_read(struct flow *f, double t0)
{
	char buf[4096];
	ssize_t n = read(f->rfd, buf, sizeof(buf));

	if (n < 0 && errno != EAGAIN && errno != EINTR)
		die("read");
	if (n <= 0)
		return;
	f->got += (size_t)n;
	if (f->n < MAX_POINTS) {
		f->t[f->n] = mono() - t0;
		f->b[f->n] = (double)f->got;
		f->n++;
	}
}

/* Bytes per second: the least-squares slope of bytes over time. */
static double
flow_rate(const struct flow *f)
{
	double st = 0, sb = 0, stt = 0, stb = 0, n = (double)f->n;
	size_t i;

	if (f->n < 2)
		return 0;
	for (i = 0; i < f->n; i++) {
		st += f->t[i];
		sb += f->b[i];
		stt += f->t[i] * f->t[i];
		stb += f->t[i] * f->b[i];
	}
	return (n * stb - st * sb) / (n * stt - st * st);
}

/* Move both flows to the end (or give up after limit seconds). */
static void
run(struct flow *a, struct flow *b, double t0, double limit)
{
	struct pollfd p[4];

	while ((a->got < a->total || b->got < b->total) &&
	       mono() - t0 < limit) {
		p[0] = (struct pollfd){a->wfd,
		                       a->written < a->total ? POLLOUT : 0, 0};
		p[1] = (struct pollfd){b->wfd,
		                       b->written < b->total ? POLLOUT : 0, 0};
		p[2] = (struct pollfd){a->rfd, POLLIN, 0};
		p[3] = (struct pollfd){b->rfd, POLLIN, 0};
		if (poll(p, 4, 100) < 0 && errno != EINTR)
			die("poll");
		if (p[0].revents & POLLOUT)
			flow_write(a);
		if (p[1].revents & POLLOUT)
			flow_write(b);
		if (p[2].revents & POLLIN)
			flow_read(a, t0);
		if (p[3].revents & POLLIN)
			flow_read(b, t0);
	}
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"link", required_argument, NULL, 'l'},
	    {"bytes", required_argument, NULL, 'n'},
	    {"burst", required_argument, NULL, 'b'},
	    {"limit", required_argument, NULL, 't'},
	    {NULL, 0, NULL, 0},
	};
	const char *link = NULL;
	size_t bytes = 65536, burst = 2304;
	struct flow down, up, bst, none;
	char name[128];
	double t0, span, limit = 60;
	int ch, m, c, i;

	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'l':
			link = optarg;
			break;
		case 'n':
			bytes = strtoul(optarg, NULL, 10);
			break;
		case 'b':
			burst = strtoul(optarg, NULL, 10);
			break;
		case 't':
			limit = strtod(optarg, NULL);
			break;
		default:
			fprintf(stderr,
			        "usage: " PROG " --link LINK [--bytes N] "
			        "[--burst N] [--limit SECONDS]\n");
			return 2;
		}
	}
	if (link == NULL || bytes < 1024 || burst < 64 || !(limit > 0)) {
		fprintf(stderr, PROG ": --link is required; --bytes >= 1024, "
		                     "--burst >= 64, --limit > 0\n");
		return 2;
	}
	if ((m = posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK)) == -1 ||
	    grantpt(m) == -1 || unlockpt(m) == -1 ||
	    ptsname_r(m, name, sizeof(name)) != 0)
		die("pseudo-terminal");
	make_raw(m);
	printf("PTY %s\n", name);
	fflush(stdout);
	for (i = 0; i < 200 && access(link, F_OK) != 0; i++)
		usleep(50000);
	if ((c = open(link, O_RDWR | O_NOCTTY | O_NONBLOCK)) == -1)
		die(link);
	make_raw(c);
	usleep(200000);
	/* Towards the board: written at the client end, read here. */
	flow_init(&down, c, m, bytes);
	flow_init(&up, m, c, bytes);
	t0 = mono();
	run(&down, &up, t0, limit);
	if (down.got != bytes || up.got != bytes) {
		fprintf(stderr, PROG ": only %zu and %zu of %zu bytes came\n",
		        down.got, up.got, bytes);
		flow_free(&down);
		flow_free(&up);
		return 1;
	}
	/* A quiet second, then a burst: it must not cross faster than
	 * the line rate, whatever the line saved up while quiet. */
	usleep(1000000);
	flow_init(&bst, c, m, burst);
	flow_init(&none, m, c, 0);
	t0 = mono();
	run(&bst, &none, t0, limit);
	if (bst.got != burst) {
		fprintf(stderr,
		        PROG ": only %zu of the burst's %zu bytes came\n",
		        bst.got, burst);
		flow_free(&down);
		flow_free(&up);
		flow_free(&bst);
		flow_free(&none);
		return 1;
	}
	span = bst.n > 0 ? bst.t[bst.n - 1] : 0;
	printf("down %.1f up %.1f burst %zu %.6f\n", flow_rate(&down),
	       flow_rate(&up), bst.got, span);
	flow_free(&down);
	flow_free(&up);
	flow_free(&bst);
	flow_free(&none);
	close(c);
	close(m);
	return 0;
}
