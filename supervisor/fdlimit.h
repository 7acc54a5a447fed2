/*
 * Open files: the soft limit raised to the hard one at start, and what a
 * configured fleet needs, so that a fleet the limit cannot hold is refused
 * whole (at a start, a reload, and by check-config) instead of failing
 * board by board in the middle of a run.
 */
#ifndef FDLIMIT_H
#define FDLIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct config_report;

/*
 * The daemon's own descriptors whatever the fleet: stdin, stdout and
 * stderr; the event loop (epoll, its signal socketpair); systemd's notify
 * socket; state_dir/lock and links.lock; one journal write (the file and
 * its directory); one artifact being read (the artifact, the extraction
 * directory, the file being written); one image being read for an upload;
 * a worker being started (the other end of its socketpair until the fork);
 * and some slack for libraries.
 */
#define FD_FIXED 24
/*
 * Per connection to the server: the socket, and while it connects a name
 * lookup's socketpair (libcurl's threaded resolver) or a second address
 * tried at once (happy eyeballs).
 */
#define FD_PER_CONNECTION 3

/* Where a fleet's descriptors go; total is what it needs at the peak. */
struct fd_need {
	size_t workers; /* one IPC socket per worker process */
	size_t serial;  /* the tty each serial link keeps open here */
	size_t server;  /* HTTP connections and running downloads' files */
	size_t metrics; /* the listener and its connections */
	size_t mgmt;    /* the management channel: per device and group */
	size_t fixed;   /* FD_FIXED */
	size_t total;
	size_t boards; /* for messages */
};

/*
 * Raises the soft RLIMIT_NOFILE to the hard limit (logged at debug).
 * Returns the limit in force afterwards.
 */
uint64_t fd_limit_raise(void);
/* The most descriptors this process may have: the hard limit. */
uint64_t fd_limit_max(void);

/*
 * What c needs (counts the config); the management channel's part only
 * with channel (a --once run opens none).
 */
void fd_need_count(const struct config *c, bool channel, struct fd_need *n);
/*
 * An error in r when c needs more descriptors than limit, naming what it
 * needs, where they go and what to change.  Returns 0 when it fits.
 */
int fd_need_check(const struct config *c, bool channel, uint64_t limit,
                  struct config_report *r);

#endif
