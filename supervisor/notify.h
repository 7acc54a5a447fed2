/*
 * Service manager notifications (systemd's sd_notify protocol): readiness
 * once config and keys are loaded, a one-line status, reload and stop.
 * Every call is a no-op when NOTIFY_SOCKET is not set.
 */
#ifndef NOTIFY_H
#define NOTIFY_H

struct event_base;

/* READY=1 with STATUS=<fmt...>. */
void notify_ready(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* RELOADING=1 (with MONOTONIC_USEC, as newer systemd wants); end the
 * reload with notify_ready(). */
void notify_reloading(void);
/* STOPPING=1. */
void notify_stopping(void);
/*
 * When the unit sets WatchdogSec=, send WATCHDOG=1 from the loop at half
 * the interval, so a loop that hangs gets the service restarted.  Returns
 * 0, or -1 when the timer cannot be set up.
 */
int notify_watchdog_start(struct event_base *base);
void notify_watchdog_stop(void);

#endif
