/*
 * The serial transport worker: SMP serial framing over a tty the
 * supervisor opened and passed (the worker never opens paths).  Raw
 * termios at the configured baud; on loss it asks for a fresh descriptor,
 * since a USB CDC-ACM board re-enumerates on every reset.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "engine.h"
#include "log.h"
#include "sandbox.h"
#include "smp_serial.h"
#include "xmalloc.h"

#define SERIAL_MAX_PKT    8192 /* also bounds the decoder's memory */
#define SERIAL_WRITE_WAIT 2000 /* ms a full tty may hold up one packet */

struct serial_link {
	int fd;
	uint32_t baud;
	size_t line_max;
	struct smp_serial_decoder *dec;
	struct engine *e;
	uint8_t *obuf;
	size_t ocap;
	uint8_t ibuf[4096];
};

int serial_main(int argc, char **argv);

static speed_t
serial_speed(uint32_t baud)
{
	static const struct {
		uint32_t baud;
		speed_t speed;
	} map[] = {
	    {9600, B9600},       {19200, B19200},     {38400, B38400},
	    {57600, B57600},     {115200, B115200},   {230400, B230400},
	    {460800, B460800},   {500000, B500000},   {576000, B576000},
	    {921600, B921600},   {1000000, B1000000}, {1152000, B1152000},
	    {1500000, B1500000}, {2000000, B2000000},
	};
	size_t i;

	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (map[i].baud == baud)
			return map[i].speed;
	return 0;
}

/* Take fd as the link: raw mode at the configured speed, non-blocking. */
static int
serial_setup(struct serial_link *s, int fd, char *why, size_t whycap)
{
	struct termios t;
	speed_t speed;
	int fl;

	if (fd == -1) {
		snprintf(why, whycap, "no serial device descriptor");
		return -1;
	}
	if ((speed = serial_speed(s->baud)) == 0) {
		snprintf(why, whycap, "unsupported baud rate %u", s->baud);
		close(fd);
		return -1;
	}
	if (tcgetattr(fd, &t) == -1) {
		snprintf(why, whycap, "not a terminal: %s", strerror(errno));
		close(fd);
		return -1;
	}
	cfmakeraw(&t);
	t.c_cflag |= CLOCAL | CREAD;
	t.c_cflag &= ~CRTSCTS;
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	if (cfsetispeed(&t, speed) == -1 || cfsetospeed(&t, speed) == -1 ||
	    tcsetattr(fd, TCSANOW, &t) == -1) {
		snprintf(why, whycap, "cannot set raw mode at %u baud: %s",
		         s->baud, strerror(errno));
		close(fd);
		return -1;
	}
	fl = fcntl(fd, F_GETFL);
	if (fl == -1 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1) {
		snprintf(why, whycap, "fcntl: %s", strerror(errno));
		close(fd);
		return -1;
	}
	/* Whatever the board printed before we listened is noise now. */
	tcflush(fd, TCIFLUSH);
	s->fd = fd;
	smp_serial_decoder_reset(s->dec);
	return 0;
}

static int
serial_open(void *ctx, const Ipc__LinkConfig *cfg, int fd, char *why,
            size_t whycap)
{
	struct serial_link *s = ctx;

	s->baud = cfg->baud != 0 ? cfg->baud : 115200;
	s->line_max = cfg->line_max != 0 ? cfg->line_max : SMP_SERIAL_LINE_MAX;
	if (s->line_max < 8 || s->line_max > 4096) {
		snprintf(why, whycap, "line_max %zu out of range 8-4096",
		         s->line_max);
		if (fd != -1)
			close(fd);
		return -1;
	}
	s->ocap = smp_serial_encoded_len(SERIAL_MAX_PKT, s->line_max);
	s->obuf = xmalloc(s->ocap);
	if (serial_setup(s, fd, why, whycap) == -1)
		return -1;
	log_info("serial link open", "baud=%u line_max=%zu", s->baud,
	         s->line_max);
	return 0;
}

static int
serial_reopen(void *ctx, int fd, char *why, size_t whycap)
{
	return serial_setup(ctx, fd, why, whycap);
}

static void
serial_close(void *ctx)
{
	struct serial_link *s = ctx;

	if (s->fd != -1)
		close(s->fd);
	s->fd = -1;
}

static int
serial_fd(void *ctx)
{
	return ((struct serial_link *)ctx)->fd;
}

static void
serial_packet(void *arg, const uint8_t *pkt, size_t len)
{
	struct serial_link *s = arg;

	engine_packet(s->e, pkt, len);
}

static int
serial_read(void *ctx, struct engine *e)
{
	struct serial_link *s = ctx;
	ssize_t n;
	int i;

	s->e = e;
	for (i = 0; i < 16; i++) {
		n = read(s->fd, s->ibuf, sizeof(s->ibuf));
		if (n == 0)
			return -1; /* hangup: the device went away */
		if (n == -1) {
			if (errno == EAGAIN || errno == EINTR)
				return 0;
			return -1; /* EIO: the other end is gone */
		}
		smp_serial_decoder_feed(s->dec, s->ibuf, n, serial_packet, s);
		if (s->fd == -1)
			return 0;
	}
	return 0;
}

/*
 * Writes block (bounded) while the tty is full: the worker serves this
 * one link, and a paced line drains at the board's speed anyway.
 */
static int
serial_send(void *ctx, const uint8_t *pkt, size_t len)
{
	struct serial_link *s = ctx;
	struct pollfd pfd;
	ssize_t n, enc;
	size_t done = 0;

	enc = smp_serial_encode(pkt, len, s->line_max, s->obuf, s->ocap);
	if (enc < 0) {
		log_warnx("packet too large for the serial encoder", "len=%zu",
		          len);
		return 0;
	}
	while (done < (size_t)enc) {
		n = write(s->fd, s->obuf + done, enc - done);
		if (n > 0) {
			done += n;
			continue;
		}
		if (n == -1 && errno != EAGAIN && errno != EINTR)
			return -1;
		pfd.fd = s->fd;
		pfd.events = POLLOUT;
		if (poll(&pfd, 1, SERIAL_WRITE_WAIT) <= 0) {
			log_warnx("serial line stuck, packet cut short",
			          "sent=%zu of=%zd", done, enc);
			return 0; /* the board will see a bad frame */
		}
		if (pfd.revents & (POLLERR | POLLHUP | POLLNVAL))
			return -1;
	}
	return 0;
}

static size_t
serial_max_pkt(void *ctx)
{
	(void)ctx;
	return SERIAL_MAX_PKT;
}

/* Base64 lines with their markers and newlines. */
static size_t
serial_wire_len(void *ctx, size_t len)
{
	struct serial_link *s = ctx;

	return smp_serial_encoded_len(len, s->line_max);
}

static const struct link_ops serial_ops = {
    .role = "serial",
    .needs_fd = 1,
    .serial = 1,
    .sandbox_flags = SANDBOX_ALLOW_TTY,
    .open = serial_open,
    .reopen = serial_reopen,
    .close = serial_close,
    .fd = serial_fd,
    .read = serial_read,
    .send = serial_send,
    .max_pkt = serial_max_pkt,
    .wire_len = serial_wire_len,
};

int
serial_main(int argc, char **argv)
{
	struct serial_link *s = xcalloc(1, sizeof(*s));
	int rc;

	s->fd = -1;
	s->dec = smp_serial_decoder_new(SERIAL_MAX_PKT);
	rc = engine_run(&serial_ops, s, argc, argv);
	smp_serial_decoder_free(s->dec);
	free(s->obuf);
	free(s);
	return rc;
}

int
main(int argc, char **argv)
{
	return serial_main(argc, argv);
}
