/*
 * The update daemon: one libevent loop holding the RDFM client, the spool,
 * the journal and one worker per link, running every device's update state
 * machine (update.c) and, later, every group's (group.c).
 */
#ifndef DAEMON_H
#define DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "config.h"

struct event_base;
struct daemon;
struct rdfm_client;
struct spool;
struct worker;

/*
 * Journal transitions, each written (journal_write) and then offered to
 * journal_crashpoint() under this name, so RDFM_CRASH_AT=<name> kills the
 * daemon right after the record is on disk and before the step it
 * announces:
 *   uploading   before the first upload packet goes to slot 1
 *   pending     before slot 1 is marked for a test boot
 *   resetting   before the reset
 *   confirming  the board runs the new image; before confirming it (or
 *               watching it confirm itself)
 *   done        the update is finished; before "Update successful"
 */
#define DAEMON_CP_UPLOADING  "uploading"
#define DAEMON_CP_PENDING    "pending"
#define DAEMON_CP_RESETTING  "resetting"
#define DAEMON_CP_CONFIRMING "confirming"
#define DAEMON_CP_DONE       "done"

/* Graceful stop: everything wound down within this, or the loop ends. */
#define DAEMON_STOP_MS 9000

/*
 * SIGHUP: load and validate the config at path again, with the command
 * line's overrides, and load or generate every key it names.  NULL with
 * err when it is refused (the running config stays).
 */
typedef struct config *(*daemon_reload_fn)(const char *path, char *err,
                                           size_t errcap);

/*
 * Run the daemon on a loaded config (keys already exist); the daemon owns
 * c from here on.  once: one update cycle for every device and group, then
 * return 0 when each is up to date or was updated, 1 otherwise.  Without
 * once, runs until SIGTERM or SIGINT and returns 0; SIGHUP reloads the
 * config through reload: entries that did not change keep running, removed
 * ones stop once idle, changed ones restart once idle, and an update in
 * flight is never interrupted.  SIGUSR1 writes the status to the log.
 */
int daemon_run(struct config *c, bool once, daemon_reload_fn reload);

/* For the state machines (update.c, group.c). */
struct event_base *daemon_base(struct daemon *d);
const struct config *daemon_config(struct daemon *d);
struct rdfm_client *daemon_rdfm(struct daemon *d);
struct spool *daemon_spool(struct daemon *d);
/* artifact_verify_key, loaded once; NULL when not configured. */
EVP_PKEY *daemon_verify_key(struct daemon *d);
bool daemon_once(const struct daemon *d);
bool daemon_stopping(const struct daemon *d);
/*
 * The worker of a board's link (a serial device, a UDP target, a BLE peer
 * on an adapter), spawned for it; *board_id gets a daemon-wide board id,
 * already added to a BLE worker.  NULL with err when the worker cannot
 * start or another board holds the link.
 */
struct worker *daemon_worker_for(struct daemon *d, const char *board_name,
                                 const struct transport_cfg *t,
                                 const struct timeouts_cfg *to,
                                 uint32_t *board_id, char *err, size_t errcap);
/*
 * The work directory of a device or group under state_dir/work (made when
 * missing), named prefix + a file-name-safe spelling of its id.  malloc'd;
 * NULL with err when it cannot be made.
 */
char *daemon_workdir(struct daemon *d, const char *prefix, const char *id,
                     char *err, size_t errcap);
/* A board no longer uses w; the last board's release stops the worker. */
void daemon_worker_release(struct daemon *d, struct worker *w);
/* --once: a device or group finished its cycle; ok = up to date/updated. */
void daemon_cycle_done(struct daemon *d, bool ok);
/* A state machine went idle while stopping: maybe the loop can end. */
void daemon_check_idle(struct daemon *d);

#endif
