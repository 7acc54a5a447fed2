/*
 * The update daemon: one libevent loop holding the RDFM client, the spool,
 * the journal and the link pool, running one update machine (machine.c) per
 * configured device and group.  Nothing below it calls back into it: the
 * machines get what they need from a struct machine_env.
 */
#ifndef DAEMON_H
#define DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

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

#endif
