/*
 * The board's serial link: a pseudo-terminal whose slave is symlinked at
 * --serial LINK, SMP serial framing both ways, both directions timed at
 * --baud like a real UART (struct line), Zephyr's UART line buffers below
 * the SMP layer (struct rxlines), and USB CDC-ACM re-enumeration on reset.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <event2/buffer.h>

#include "log.h"
#include "xmalloc.h"
#include "smp_serial.h"
#include "sim.h"

#define NOISE_MS 300

/*
 * One direction of the line at --baud.  Bytes go onto the wire in chunks
 * of about a millisecond when the line is free and are handed on when
 * their last bit would have arrived, so a board answers as late as a real
 * one and idle time is never saved up for a later burst.
 */
#define LINE_CHUNK_MS  1.0
#define LINE_CHUNK_MAX 512

struct line {
	double rate;       /* bytes per second; 0: not paced */
	double busy_until; /* monotonic seconds: the last chunk's end */
	uint8_t buf[LINE_CHUNK_MAX];
	size_t n;         /* the chunk on the wire now (0: none) */
	struct event *ev; /* fires when it has arrived */
};

/*
 * Zephyr's MCUmgr UART driver keeps each received line (one frame of the
 * serial framing, or console text) in one of --line-bufs buffers of
 * --line-buf-size bytes, taken when the line's first byte arrives and
 * given back when the work queue has decoded it.  A line that starts
 * while every buffer is taken, or outgrows its buffer, is dropped whole:
 * the driver ignores bytes up to the next newline.  The work queue here
 * is the board's one worker: it decodes waiting lines only while no
 * request is being processed (server_busy()), so lines pile up during
 * flash writes as they do on a board.
 */
struct rxlines {
	uint8_t **buf;     /* line_bufs buffers */
	size_t *len;       /* bytes in each */
	unsigned int head; /* oldest complete line */
	unsigned int done; /* complete lines waiting, from head */
	bool filling;      /* the line after them is arriving */
	bool ignoring;     /* the line arriving is being dropped */
};

static int master_fd = -1, slave_fd = -1;
/*
 * While a re-enumerating board is away this holds the pty number it had,
 * so the new terminal gets another one and clients can tell them apart.
 */
static int placeholder_fd = -1;
static char slave_name[128];
static struct event *rd_ev, *noise_ev;
static struct evbuffer *outq;
static struct smp_serial_decoder *dec;
static struct line in_line, out_line;
static struct rxlines rx;
static unsigned int noise_count;

static void kick_output(void);

static double
mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
line_reset(struct line *l, unsigned int baud)
{
	l->rate = baud / 10.0; /* 8N1: ten bits a byte */
	l->busy_until = 0;
	l->n = 0;
	evtimer_del(l->ev);
}

/* Bytes in one chunk: a millisecond of the line, at least 8. */
static size_t
line_chunk(const struct line *l)
{
	size_t n = (size_t)(l->rate * LINE_CHUNK_MS / 1000.0);

	return n < 8 ? 8 : n > LINE_CHUNK_MAX ? LINE_CHUNK_MAX : n;
}

/*
 * The l->n bytes in l->buf go on the wire at start: now, or when the
 * chunk before them ended if they were already waiting then.  The timer
 * fires when they have arrived.
 */
static void
line_send(struct line *l, double start)
{
	double wait;
	struct timeval tv;

	l->busy_until = start + (double)l->n / l->rate;
	wait = l->busy_until - mono_now();
	if (wait < 0)
		wait = 0;
	tv.tv_sec = (time_t)wait;
	tv.tv_usec = (suseconds_t)((wait - (double)tv.tv_sec) * 1e6);
	evtimer_add(l->ev, &tv);
}

static size_t
serial_pkt_limit(void)
{
	/* The buffer also holds the 2-byte length and the CRC. */
	return board.o->buf_size - 4;
}

static void
serial_send(const uint8_t *pkt, size_t len, const struct peer *peer)
{
	size_t cap = smp_serial_encoded_len(len, SMP_SERIAL_LINE_MAX);
	uint8_t *buf;
	ssize_t n;

	(void)peer;
	if (master_fd == -1)
		return;
	if (cap == 0) {
		log_warnx("reply cannot be framed", "len=%zu", len);
		return;
	}
	buf = xmalloc(cap);
	if ((n = smp_serial_encode(pkt, len, SMP_SERIAL_LINE_MAX, buf, cap)) <
	    0) {
		log_warnx("cannot frame a reply", "len=%zu", len);
		free(buf);
		return;
	}
	if (n > 4 && fault_hit(board.o->corrupt_rate)) {
		size_t i = 2 + fault_rand() % ((size_t)n - 4);

		log_debug("reply corrupted (--corrupt-rate)", "at=%zu", i);
		buf[i] ^= 0x01;
	}
	evbuffer_add(outq, buf, (size_t)n);
	free(buf);
	kick_output();
}

/* Unpaced: hand the pty whatever it takes, try the rest again soon. */
static void
write_unpaced(void)
{
	struct timeval tv = {0, 2000};
	size_t avail = evbuffer_get_length(outq);
	ssize_t w;

	w = write(master_fd, evbuffer_pullup(outq, (ssize_t)avail), avail);
	if (w > 0)
		evbuffer_drain(outq, (size_t)w);
	else if (w < 0 && errno != EAGAIN && errno != EINTR && errno != EIO)
		log_warn("serial write failed", NULL);
	if (evbuffer_get_length(outq) > 0)
		evtimer_add(out_line.ev, &tv);
}

/* The next chunk of replies onto the line, starting at start. */
static void
out_next(double start)
{
	out_line.n = evbuffer_remove(outq, out_line.buf, line_chunk(&out_line));
	line_send(&out_line, start);
}

static void
kick_output(void)
{
	double now;

	if (master_fd == -1 || evbuffer_get_length(outq) == 0 ||
	    evtimer_pending(out_line.ev, NULL))
		return;
	if (out_line.rate == 0) {
		write_unpaced();
		return;
	}
	now = mono_now();
	out_next(out_line.busy_until > now ? out_line.busy_until : now);
}

/* A chunk of replies has arrived at the client's end: hand it over. */
static void
out_arrived(evutil_socket_t fd, short ev, void *arg)
{
	size_t off = 0;
	ssize_t w;

	(void)fd;
	(void)ev;
	(void)arg;
	if (master_fd == -1)
		return;
	if (out_line.rate == 0) {
		write_unpaced();
		return;
	}
	while (off < out_line.n) {
		w = write(master_fd, out_line.buf + off, out_line.n - off);
		if (w <= 0) {
			/* The pty is full (a slow reader): try again soon. */
			struct timeval tv = {0, 2000};

			if (w < 0 && errno != EAGAIN && errno != EINTR &&
			    errno != EIO)
				log_warn("serial write failed", NULL);
			memmove(out_line.buf, out_line.buf + off,
			        out_line.n - off);
			out_line.n -= off;
			evtimer_add(out_line.ev, &tv);
			return;
		}
		off += (size_t)w;
	}
	out_line.n = 0;
	/* Replies already waiting follow without a gap. */
	if (evbuffer_get_length(outq) > 0)
		out_next(out_line.busy_until);
}

static void
packet_cb(void *arg, const uint8_t *pkt, size_t len)
{
	(void)arg;
	server_receive(pkt, len, NULL);
}

/*
 * --corrupt-rate on the way in: each incoming line (a frame, or console
 * text) is hit with that probability, one byte after its marker flipped,
 * so the board's decoder sees a bad frame and drops the packet.
 */
static void
corrupt_input(uint8_t *buf, size_t n)
{
	static size_t line_pos;
	static bool hit;
	size_t i;

	if (board.o->corrupt_rate <= 0)
		return;
	for (i = 0; i < n; i++) {
		if (line_pos == 0)
			hit = fault_hit(board.o->corrupt_rate);
		if (buf[i] == '\n') {
			line_pos = 0;
			continue;
		}
		if (hit && line_pos == 2) {
			buf[i] ^= 0x01;
			log_debug("request corrupted (--corrupt-rate)", NULL);
		}
		line_pos++;
	}
}

static void
rxlines_reset(void)
{
	rx.head = rx.done = 0;
	rx.filling = rx.ignoring = false;
}

/* Decode waiting lines while the board's worker is free. */
static void
rxlines_drain(void)
{
	while (rx.done > 0 && !server_busy() && board.run == BOARD_UP) {
		unsigned int i = rx.head;

		rx.head = (rx.head + 1) % board.o->line_bufs;
		rx.done--;
		smp_serial_decoder_feed(dec, rx.buf[i], rx.len[i], packet_cb,
		                        NULL);
	}
}

static void
rxlines_drop(const char *why)
{
	board.c.lines_dropped++;
	rx.ignoring = true;
	log_debug("line dropped", "why=%s", why);
	status_update();
}

/* One byte from the wire into the line buffers. */
static void
rxlines_byte(uint8_t c)
{
	unsigned int n = board.o->line_bufs, cur;

	if (!rx.ignoring && !rx.filling) {
		/* A line starts: it needs a free buffer. */
		if (rx.done == n) {
			rxlines_drop("no free line buffer");
		} else {
			rx.filling = true;
			rx.len[(rx.head + rx.done) % n] = 0;
		}
	}
	if (rx.filling) {
		cur = (rx.head + rx.done) % n;
		if (rx.len[cur] >= board.o->line_buf_size) {
			rx.filling = false;
			rxlines_drop("line longer than its buffer");
		} else
			rx.buf[cur][rx.len[cur]++] = c;
	}
	if (c != '\n')
		return;
	if (rx.filling) {
		rx.filling = false;
		rx.done++;
	}
	rx.ignoring = false;
}

/* Requests that have arrived, to the board's decoder. */
static void
deliver(uint8_t *buf, size_t n)
{
	size_t i;

	if (board.run != BOARD_UP)
		return; /* a resetting board hears nothing */
	corrupt_input(buf, n);
	if (board.o->line_bufs == 0) {
		smp_serial_decoder_feed(dec, buf, n, packet_cb, NULL);
		return;
	}
	for (i = 0; i < n; i++) {
		rxlines_byte(buf[i]);
		/* A line just completed: decode it now if the worker is
		 * free, so what follows finds its buffer again. */
		if (buf[i] == '\n')
			rxlines_drain();
	}
}

/*
 * Take the next chunk of requests off the pty onto the line, starting at
 * start.  Returns false when the pty had nothing.  While a chunk is on the
 * wire the pty is not read: a sender sees the line's speed.
 */
static bool
in_next(double start)
{
	ssize_t n = read(master_fd, in_line.buf, line_chunk(&in_line));

	if (n <= 0) {
		if (n < 0 && errno != EAGAIN && errno != EINTR && errno != EIO)
			log_warn("serial read failed", NULL);
		return false;
	}
	in_line.n = (size_t)n;
	event_del(rd_ev);
	line_send(&in_line, start);
	return true;
}

static void
rd_cb(evutil_socket_t fd, short ev, void *arg)
{
	uint8_t buf[4096];
	double now;
	ssize_t n;

	(void)ev;
	(void)arg;
	if (in_line.rate == 0) {
		if ((n = read(fd, buf, sizeof(buf))) > 0)
			deliver(buf, (size_t)n);
		else if (n < 0 && errno != EAGAIN && errno != EINTR &&
		         errno != EIO)
			log_warn("serial read failed", NULL);
		return;
	}
	now = mono_now();
	in_next(in_line.busy_until > now ? in_line.busy_until : now);
}

/* A chunk of requests has arrived at the board. */
static void
in_arrived(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	(void)arg;
	if (master_fd == -1)
		return;
	deliver(in_line.buf, in_line.n);
	in_line.n = 0;
	/* Requests already waiting follow without a gap. */
	if (!in_next(in_line.busy_until) && rd_ev != NULL)
		event_add(rd_ev, NULL);
}

static void
noise(const char *line)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	evbuffer_add_printf(outq, "[%02ld:%02ld:%02ld.%03ld,000] %s\r\n",
	                    (long)(ts.tv_sec / 3600 % 24),
	                    (long)(ts.tv_sec / 60 % 60), (long)(ts.tv_sec % 60),
	                    ts.tv_nsec / 1000000, line);
	kick_output();
}

static void
noise_cb(evutil_socket_t fd, short ev, void *arg)
{
	char line[80];
	struct timeval tv = {0, NOISE_MS * 1000};

	(void)fd;
	(void)ev;
	(void)arg;
	if (board.run == BOARD_UP && master_fd != -1) {
		snprintf(line, sizeof(line), "<inf> smp_sample: heartbeat %u",
		         ++noise_count);
		noise(line);
	}
	evtimer_add(noise_ev, &tv);
}

static void
pty_open(void)
{
	struct termios t;
	char *tmp;

	if ((master_fd = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC)) == -1)
		fatal("cannot open a pseudo-terminal", NULL);
	if (grantpt(master_fd) == -1 || unlockpt(master_fd) == -1 ||
	    ptsname_r(master_fd, slave_name, sizeof(slave_name)) != 0)
		fatal("cannot set up the pseudo-terminal", NULL);
	if (tcgetattr(master_fd, &t) == 0) {
		cfmakeraw(&t);
		tcsetattr(master_fd, TCSANOW, &t);
	}
	/*
	 * Hold the slave open ourselves, raw: otherwise the master reads EIO
	 * while no client has it open, and a cooked slave would echo.
	 */
	if ((slave_fd = open(slave_name, O_RDWR | O_NOCTTY | O_CLOEXEC)) == -1)
		fatal("cannot open the pty slave", "path=%s",
		      log_q(slave_name));
	if (tcgetattr(slave_fd, &t) == 0) {
		cfmakeraw(&t);
		tcsetattr(slave_fd, TCSANOW, &t);
	}
	evutil_make_socket_nonblocking(master_fd);
	xasprintf(&tmp, "%s.%d.tmp", board.o->serial, (int)getpid());
	unlink(tmp);
	if (symlink(slave_name, tmp) == -1 ||
	    rename(tmp, board.o->serial) == -1)
		fatal("cannot symlink the pty at the --serial path", "path=%s",
		      log_q(board.o->serial));
	free(tmp);
	if (placeholder_fd != -1)
		close(placeholder_fd);
	placeholder_fd = -1;
	rd_ev =
	    event_new(board.base, master_fd, EV_READ | EV_PERSIST, rd_cb, NULL);
	event_add(rd_ev, NULL);
	smp_serial_decoder_reset(dec);
	rxlines_reset();
	line_reset(&in_line, board.o->baud);
	line_reset(&out_line, board.o->baud);
	log_info("serial link ready", "path=%s pty=%s", log_q(board.o->serial),
	         slave_name);
}

static void
pty_close(void)
{
	if (rd_ev != NULL)
		event_free(rd_ev);
	rd_ev = NULL;
	line_reset(&in_line, board.o->baud);
	line_reset(&out_line, board.o->baud);
	if (master_fd != -1)
		close(master_fd);
	if (slave_fd != -1)
		close(slave_fd);
	master_fd = slave_fd = -1;
	unlink(board.o->serial);
}

static void
serial_down(void)
{
	evbuffer_drain(outq, evbuffer_get_length(outq));
	/* What was on the wire either way is lost with the reset. */
	line_reset(&in_line, board.o->baud);
	line_reset(&out_line, board.o->baud);
	if (rd_ev != NULL)
		event_add(rd_ev, NULL);
	smp_serial_decoder_reset(dec);
	rxlines_reset();
	if (board.o->reenumerate) {
		log_info("usb device gone (reset)", NULL);
		pty_close();
		placeholder_fd = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	}
}

static void
serial_up(void)
{
	if (master_fd == -1)
		pty_open();
	if (board.o->console_noise)
		noise("*** Booting Zephyr OS build v3.2.0 ***");
}

static size_t
serial_pending_out(void)
{
	return evbuffer_get_length(outq);
}

static const struct link_ops serial_ops = {
    .name = "serial",
    .pkt_limit = serial_pkt_limit,
    .send = serial_send,
    .down = serial_down,
    .up = serial_up,
    .pending_out = serial_pending_out,
    .idle = rxlines_drain,
};

void
serial_link_init(void)
{
	size_t max = board.o->buf_size * 2;

	/* Decode oversized packets too, so the server counts their drop. */
	dec = smp_serial_decoder_new(max < 8192 ? 8192 : max);
	if (board.o->line_bufs > 0) {
		unsigned int i;

		rx.buf = xcalloc(board.o->line_bufs, sizeof(*rx.buf));
		rx.len = xcalloc(board.o->line_bufs, sizeof(*rx.len));
		for (i = 0; i < board.o->line_bufs; i++)
			rx.buf[i] = xmalloc(board.o->line_buf_size);
	}
	outq = evbuffer_new();
	in_line.ev = evtimer_new(board.base, in_arrived, NULL);
	out_line.ev = evtimer_new(board.base, out_arrived, NULL);
	noise_ev = evtimer_new(board.base, noise_cb, NULL);
	blink = &serial_ops;
	pty_open();
	if (board.o->console_noise) {
		noise("*** Booting Zephyr OS build v3.2.0 ***");
		noise_cb(-1, 0, NULL);
	}
	sim_ready("serial", board.o->serial);
}

void
serial_link_free(void)
{
	pty_close();
	if (placeholder_fd != -1)
		close(placeholder_fd);
	event_free(in_line.ev);
	event_free(out_line.ev);
	event_free(noise_ev);
	evbuffer_free(outq);
	smp_serial_decoder_free(dec);
	if (rx.buf != NULL) {
		unsigned int i;

		for (i = 0; i < board.o->line_bufs; i++)
			free(rx.buf[i]);
		free(rx.buf);
		free(rx.len);
	}
}
