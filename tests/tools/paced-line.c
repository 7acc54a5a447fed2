/*
 * paced-line: a serial line at a fixed baud rate between a board's
 * pseudo-terminal and a new one for the client, for measuring a board
 * (the real Zephyr peer) as if it sat behind a UART.
 *
 *   paced-line --board TTY --link PATH --baud N [--slack-ms N] [-v]
 *
 * Opens TTY (the board's end, raw), makes a pseudo-terminal whose slave
 * is symlinked at PATH for the client, and moves bytes both ways at N/10
 * bytes per second (8N1).  Each direction is a wire: a chunk of about a
 * millisecond is taken when the wire is free and handed on when its last
 * bit would have arrived.  A quiet wire earns no credit: after a pause
 * bytes leave at the line rate, never faster.  A timer that fires late
 * may be made up for by at most --slack-ms (default 5) when bytes were
 * already waiting, so the long-run rate holds on a busy machine without
 * bursts.  Prints "READY PATH" once both ends are open; exits when the
 * board's end hangs up (the board reset) or on SIGTERM.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#define PROG      "paced-line"
#define CHUNK_MS  1.0
#define CHUNK_MAX 1024

/* One direction: bytes read from `from`, written to `to` when due. */
struct wire {
	const char *name;
	int from, to;
	double rate;       /* bytes per second */
	double busy_until; /* monotonic seconds: the chunk on it ends */
	uint8_t buf[CHUNK_MAX];
	size_t n, sent; /* the chunk on the wire, and how much is handed on */
	struct event *rd, *due;
	unsigned long long total;
};

static struct event_base *base;
static struct wire down, up; /* towards the board, towards the client */
static double slack = 0.005;
static int verbose;
static const char *link_path;

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
	if (link_path != NULL)
		unlink(link_path);
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

static size_t
chunk_len(const struct wire *w)
{
	size_t n = (size_t)(w->rate * CHUNK_MS / 1000.0);

	return n < 1 ? 1 : n > CHUNK_MAX ? CHUNK_MAX : n;
}

static void
arm(struct event *ev, double at)
{
	double wait = at - mono();
	struct timeval tv;

	if (wait < 0)
		wait = 0;
	tv.tv_sec = (time_t)wait;
	tv.tv_usec = (suseconds_t)((wait - (double)tv.tv_sec) * 1e6);
	evtimer_add(ev, &tv);
}

static void
hangup(const struct wire *w)
{
	fprintf(stderr, PROG ": the %s's end closed (%llu bytes carried %s)\n",
	        w == &up ? "board" : "client", w->total, w->name);
	event_base_loopbreak(base);
}

/*
 * Put the next chunk waiting at w->from on the wire, starting at start.
 * False when nothing was waiting: then watch w->from again.
 */
static bool
wire_next(struct wire *w, double start)
{
	ssize_t n = read(w->from, w->buf, chunk_len(w));

	if (n <= 0) {
		if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
			/* EIO: the other end of that pty is gone. */
			hangup(w);
			return false;
		}
		event_add(w->rd, NULL);
		return false;
	}
	w->n = (size_t)n;
	w->sent = 0;
	w->busy_until = start + (double)w->n / w->rate;
	event_del(w->rd);
	arm(w->due, w->busy_until);
	return true;
}

/* Bytes are waiting and the wire is free since busy_until. */
static void
wire_rd(evutil_socket_t fd, short ev, void *arg)
{
	struct wire *w = arg;
	double now = mono();

	(void)fd;
	(void)ev;
	/* A quiet wire starts now: no credit for the pause. */
	wire_next(w, w->busy_until > now ? w->busy_until : now);
}

/* The chunk on the wire has arrived: hand it on, take the next. */
static void
wire_due(evutil_socket_t fd, short ev, void *arg)
{
	struct wire *w = arg;
	double now = mono(), start;
	ssize_t n;

	(void)fd;
	(void)ev;
	while (w->sent < w->n) {
		n = write(w->to, w->buf + w->sent, w->n - w->sent);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			struct timeval tv = {0, 1000};

			if (n < 0 && errno != EAGAIN) {
				hangup(w);
				return;
			}
			/* The reader is slow: the pty is full. */
			evtimer_add(w->due, &tv);
			return;
		}
		w->sent += (size_t)n;
		w->total += (unsigned long long)n;
	}
	w->n = 0;
	/* Bytes already waiting follow without a gap, late timers made up
	 * for by at most the slack. */
	start = w->busy_until > now - slack ? w->busy_until : now - slack;
	wire_next(w, start);
}

static void
wire_init(struct wire *w, const char *name, int from, int to, double rate)
{
	w->name = name;
	w->from = from;
	w->to = to;
	w->rate = rate;
	w->rd = event_new(base, from, EV_READ, wire_rd, w);
	w->due = evtimer_new(base, wire_due, w);
	if (w->rd == NULL || w->due == NULL)
		die("cannot create events");
	event_add(w->rd, NULL);
}

/* The client's pseudo-terminal; its slave is held open so the master
 * never reads EIO while no client has it open. */
static int
client_pty(const char *path, int *slave)
{
	char name[128], *tmp;
	int m;

	if ((m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC)) == -1 ||
	    grantpt(m) == -1 || unlockpt(m) == -1 ||
	    ptsname_r(m, name, sizeof(name)) != 0)
		die("cannot make a pseudo-terminal");
	make_raw(m);
	if ((*slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC)) == -1)
		die(name);
	make_raw(*slave);
	if (asprintf(&tmp, "%s.%d.tmp", path, (int)getpid()) == -1)
		die("asprintf");
	unlink(tmp);
	if (symlink(name, tmp) == -1 || rename(tmp, path) == -1)
		die(path);
	free(tmp);
	return m;
}

static void
on_signal(evutil_socket_t sig, short ev, void *arg)
{
	(void)sig;
	(void)ev;
	(void)arg;
	event_base_loopbreak(base);
}

static void
usage(void)
{
	fprintf(stderr,
	        "usage: " PROG " --board TTY --link PATH --baud N "
	        "[--slack-ms N] [-v]\n"
	        "Moves bytes between the board's terminal TTY and a new "
	        "pseudo-terminal,\n"
	        "symlinked at PATH, at N/10 bytes per second each way "
	        "(8N1), with no\n"
	        "credit for idle time.  Prints \"READY PATH\" when "
	        "ready.\n");
	exit(2);
}

static long
number(const char *opt, const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
		fprintf(stderr,
		        PROG ": %s: \"%s\" is not a number from %ld "
		             "to %ld\n",
		        opt, s, min, max);
		exit(2);
	}
	return v;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"board", required_argument, NULL, 'b'},
	    {"link", required_argument, NULL, 'l'},
	    {"baud", required_argument, NULL, 's'},
	    {"slack-ms", required_argument, NULL, 'k'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct event_config *cfg;
	struct event *sigterm, *sigint;
	const char *board = NULL;
	long baud = 0;
	int ch, bfd, cfd, cslave;

	while ((ch = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'b':
			board = optarg;
			break;
		case 'l':
			link_path = optarg;
			break;
		case 's':
			baud = number("--baud", optarg, 50, 100000000);
			break;
		case 'k':
			slack = number("--slack-ms", optarg, 0, 1000) / 1000.0;
			break;
		case 'v':
			verbose = 1;
			break;
		default:
			usage();
		}
	}
	if (board == NULL || link_path == NULL || baud == 0 || optind != argc)
		usage();
	signal(SIGPIPE, SIG_IGN);
	if ((bfd = open(board, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC)) ==
	    -1)
		die(board);
	make_raw(bfd);
	cfd = client_pty(link_path, &cslave);
	if (fcntl(cfd, F_SETFL, O_NONBLOCK) == -1)
		die("fcntl");
	/* Precise timers: the coarse clock is 4 ms, the chunks are 1 ms. */
	if ((cfg = event_config_new()) == NULL ||
	    event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER) == -1 ||
	    (base = event_base_new_with_config(cfg)) == NULL)
		die("cannot create the event loop");
	event_config_free(cfg);
	wire_init(&down, "down", cfd, bfd, baud / 10.0);
	wire_init(&up, "up", bfd, cfd, baud / 10.0);
	sigterm = evsignal_new(base, SIGTERM, on_signal, NULL);
	sigint = evsignal_new(base, SIGINT, on_signal, NULL);
	evsignal_add(sigterm, NULL);
	evsignal_add(sigint, NULL);
	printf("READY %s\n", link_path);
	fflush(stdout);
	event_base_dispatch(base);
	if (verbose)
		fprintf(stderr, PROG ": %llu bytes to the board, %llu back\n",
		        down.total, up.total);
	unlink(link_path);
	close(cslave);
	close(cfd);
	close(bfd);
	event_free(down.rd);
	event_free(down.due);
	event_free(up.rd);
	event_free(up.due);
	event_free(sigterm);
	event_free(sigint);
	event_base_free(base);
	return 0;
}
