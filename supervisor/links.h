/*
 * Board links and who holds them: the daemon's pool of links (one worker
 * per serial device, UDP target or BLE peer, shared by the machines whose
 * boards use it) and the per-link lock that keeps two processes - two
 * daemons, or the daemon and an operator's `smp` command - off one link.
 */
#ifndef LINKS_H
#define LINKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"

struct workers;
struct worker;
struct worker_link;
struct links;

/*
 * The link a transport names, as one string: "serial:/dev/ttyACM0",
 * "udp:host:port", "ble:hci0:name[:@socket]".  malloc'd.
 */
char *link_key(const struct transport_cfg *t);
/* The same for a worker's link description and its BLE peer name. */
char *link_key_worker(const struct worker_link *l, const char *peer);

/*
 * Take the lock of a link: flock on a file named after its key in the run
 * directory ($RDFM_MCUMGR_RUN_DIR when set, else /run/rdfm-mcumgr as root,
 * else $XDG_RUNTIME_DIR/rdfm-mcumgr, else /tmp/rdfm-mcumgr-UID, made when
 * missing); the descriptor holds it until closed.  Returns the
 * descriptor; -1 with err, and *holder the pid that holds it (0 when that
 * is not known), when another process has it.
 */
int link_lock(const char *key, pid_t *holder, char *err, size_t errcap);

/*
 * An exclusive lock on path (a lock file created when missing, the pid
 * written into it once taken).  Returns the descriptor or -1 with err and
 * *holder as link_lock().
 */
int lock_file(const char *path, pid_t *holder, char *err, size_t errcap);

/* What every worker of the pool is started with. */
struct links_opts {
	const char *user;       /* drop to this user when root, or NULL */
	const char *chroot_dir; /* the workers' empty directory */
	unsigned int retries;   /* SMP retransmissions per request */
};

struct links *links_new(struct workers *ws, const struct links_opts *o);
/* Stops every worker and releases every lock. */
void links_free(struct links *lp);

/*
 * The worker of a board's link, started and locked for it; *board_id is a
 * pool-wide id for the board, already announced to a BLE worker.  NULL
 * with err when the link is held (by another board, or another process:
 * err names its pid) or its worker cannot start.
 */
struct worker *links_take(struct links *lp, const char *board_name,
                          const struct transport_cfg *t,
                          const struct timeouts_cfg *to, uint32_t *board_id,
                          char *err, size_t errcap);
/* A board no longer uses w: its worker stops and its lock is released. */
void links_release(struct links *lp, struct worker *w);

#endif
