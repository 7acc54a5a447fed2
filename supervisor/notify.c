/*
 * sd_notify(3) wrappers (notify.h).  A message that cannot be sent is
 * logged once at debug level: the service manager may simply not be
 * listening, and the daemon works the same without it.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <systemd/sd-daemon.h>

#include "log.h"
#include "notify.h"

/* STATUS= is one short line; longer text is cut. */
#define STATUS_MAX 256

static struct event *watchdog_ev;

static void
send_state(const char *state)
{
	int r;

	if ((r = sd_notify(0, state)) < 0)
		log_debug("sd_notify failed", "error=%s", log_q(strerror(-r)));
}

/* "<prefix>STATUS=<text>" with newlines in text turned into spaces. */
static void
send_with_status(const char *prefix, const char *fmt, va_list ap)
{
	char status[STATUS_MAX], msg[STATUS_MAX + 64];
	char *p;

	vsnprintf(status, sizeof(status), fmt, ap);
	for (p = status; *p != '\0'; p++)
		if (*p == '\n')
			*p = ' ';
	snprintf(msg, sizeof(msg), "%sSTATUS=%s", prefix, status);
	send_state(msg);
}

void
notify_ready(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	send_with_status("READY=1\n", fmt, ap);
	va_end(ap);
}

void
notify_reloading(void)
{
	struct timespec ts;
	char msg[96];

	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(msg, sizeof(msg),
	         "RELOADING=1\nSTATUS=Reloading the configuration\n"
	         "MONOTONIC_USEC=%llu",
	         (unsigned long long)ts.tv_sec * 1000000ULL +
	             (unsigned long long)ts.tv_nsec / 1000);
	send_state(msg);
}

void
notify_stopping(void)
{
	send_state("STOPPING=1\nSTATUS=Stopping");
}

static void
on_watchdog(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	(void)arg;
	send_state("WATCHDOG=1");
}

int
notify_watchdog_start(struct event_base *base)
{
	struct timeval tv;
	uint64_t usec;

	if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
		return 0;
	usec /= 2;
	tv.tv_sec = (time_t)(usec / 1000000);
	tv.tv_usec = (suseconds_t)(usec % 1000000);
	watchdog_ev = event_new(base, -1, EV_PERSIST, on_watchdog, NULL);
	if (watchdog_ev == NULL || event_add(watchdog_ev, &tv) == -1) {
		log_warnx("Cannot start the systemd watchdog timer", NULL);
		notify_watchdog_stop();
		return -1;
	}
	log_debug("systemd watchdog on", "interval_us=%llu",
	          (unsigned long long)usec);
	send_state("WATCHDOG=1");
	return 0;
}

void
notify_watchdog_stop(void)
{
	if (watchdog_ev != NULL) {
		event_free(watchdog_ev);
		watchdog_ev = NULL;
	}
}
