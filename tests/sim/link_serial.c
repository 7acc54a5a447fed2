/*
 * The board's serial link: a pseudo-terminal whose slave is symlinked at
 * --serial LINK, SMP serial framing both ways, both directions paced at
 * --baud like a real UART, and USB CDC-ACM re-enumeration on reset.
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

/* Token bucket: rate bytes per second, at most burst saved up. */
struct pacer {
	double rate;
	double burst;
	double tokens;
	struct timespec last;
};

static int master_fd = -1, slave_fd = -1;
/*
 * While a re-enumerating board is away this holds the pty number it had,
 * so the new terminal gets another one and clients can tell them apart.
 */
static int placeholder_fd = -1;
static char slave_name[128];
static struct event *rd_ev, *rd_timer, *wr_timer, *noise_ev;
static struct evbuffer *outq;
static struct smp_serial_decoder *dec;
static struct pacer in_pace, out_pace;
static unsigned int noise_count;

static void kick_output(void);

static void
pacer_init(struct pacer *p, unsigned int baud)
{
	p->rate = baud / 10.0; /* 8N1: ten bits a byte */
	p->burst = p->rate / 100;
	if (p->burst < 16)
		p->burst = 16;
	p->tokens = p->burst;
	clock_gettime(CLOCK_MONOTONIC, &p->last);
}

static size_t
pacer_take(struct pacer *p, size_t want)
{
	struct timespec now;
	double dt;
	size_t n;

	if (board.o->baud == 0)
		return want;
	clock_gettime(CLOCK_MONOTONIC, &now);
	dt = (double)(now.tv_sec - p->last.tv_sec) +
	     (double)(now.tv_nsec - p->last.tv_nsec) / 1e9;
	p->last = now;
	p->tokens += dt * p->rate;
	if (p->tokens > p->burst)
		p->tokens = p->burst;
	n = p->tokens < (double)want ? (size_t)p->tokens : want;
	p->tokens -= (double)n;
	return n;
}

/* Microseconds until a few bytes' worth of tokens are there. */
static struct timeval
pacer_wait(const struct pacer *p)
{
	double need = p->burst < 8 ? p->burst : 8;
	double us = (need - p->tokens) / p->rate * 1e6;
	struct timeval tv;

	if (us < 500)
		us = 500;
	tv.tv_sec = (time_t)(us / 1e6);
	tv.tv_usec = (suseconds_t)us % 1000000;
	return tv;
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

static void
kick_output(void)
{
	size_t avail, n;
	ssize_t w;
	struct timeval tv;

	if (master_fd == -1 || (avail = evbuffer_get_length(outq)) == 0)
		return;
	if (evtimer_pending(wr_timer, NULL))
		return;
	n = pacer_take(&out_pace, avail);
	if (n > 0) {
		w = write(master_fd, evbuffer_pullup(outq, (ssize_t)n), n);
		if (w > 0) {
			evbuffer_drain(outq, (size_t)w);
			if ((size_t)w < n) /* give back what did not go */
				out_pace.tokens += (double)(n - (size_t)w);
		} else {
			out_pace.tokens += (double)n;
			if (w < 0 && errno != EAGAIN && errno != EINTR &&
			    errno != EIO)
				log_warn("serial write failed", NULL);
		}
	}
	if (evbuffer_get_length(outq) == 0)
		return;
	if (board.o->baud != 0)
		tv = pacer_wait(&out_pace);
	else {
		tv.tv_sec = 0;
		tv.tv_usec = 2000; /* the pty is full: try again soon */
	}
	evtimer_add(wr_timer, &tv);
}

static void
wr_timer_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	(void)arg;
	kick_output();
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
rd_cb(evutil_socket_t fd, short ev, void *arg)
{
	uint8_t buf[4096];
	struct timeval tv;
	size_t want;
	ssize_t n;

	(void)ev;
	(void)arg;
	want = pacer_take(&in_pace, sizeof(buf));
	if (want == 0) {
		/* Leave the bytes in the pty: the sender sees line speed. */
		event_del(rd_ev);
		tv = pacer_wait(&in_pace);
		evtimer_add(rd_timer, &tv);
		return;
	}
	n = read(fd, buf, want);
	if (n <= 0) {
		in_pace.tokens += (double)want;
		if (n < 0 && errno != EAGAIN && errno != EINTR && errno != EIO)
			log_warn("serial read failed", NULL);
		return;
	}
	if ((size_t)n < want)
		in_pace.tokens += (double)(want - (size_t)n);
	if (board.run != BOARD_UP)
		return; /* a resetting board hears nothing */
	corrupt_input(buf, (size_t)n);
	smp_serial_decoder_feed(dec, buf, (size_t)n, packet_cb, NULL);
}

static void
rd_timer_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	(void)arg;
	if (rd_ev != NULL)
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
	pacer_init(&in_pace, board.o->baud);
	pacer_init(&out_pace, board.o->baud);
	log_info("serial link ready", "path=%s pty=%s", log_q(board.o->serial),
	         slave_name);
}

static void
pty_close(void)
{
	if (rd_ev != NULL)
		event_free(rd_ev);
	rd_ev = NULL;
	evtimer_del(rd_timer);
	evtimer_del(wr_timer);
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
	smp_serial_decoder_reset(dec);
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
};

void
serial_link_init(void)
{
	size_t max = board.o->buf_size * 2;

	/* Decode oversized packets too, so the server counts their drop. */
	dec = smp_serial_decoder_new(max < 8192 ? 8192 : max);
	outq = evbuffer_new();
	rd_timer = evtimer_new(board.base, rd_timer_cb, NULL);
	wr_timer = evtimer_new(board.base, wr_timer_cb, NULL);
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
	event_free(rd_timer);
	event_free(wr_timer);
	event_free(noise_ev);
	evbuffer_free(outq);
	smp_serial_decoder_free(dec);
}
