/*
 * The per-device update state machine (DESIGN.md "Update flow", single
 * board): read the board, check, download, read the artifact, upload,
 * test, reset, confirm, every step non-blocking and under a deadline, with
 * the journal written before each step that changes the board.
 */
#ifndef UPDATE_H
#define UPDATE_H

#include <stdbool.h>

#include <openssl/evp.h>

#include "config.h"

struct daemon;
struct metrics_snapshot;
struct update_dev;

/*
 * A device's state machine; key is borrowed (the daemon holds it).  NULL
 * with err when its worker cannot start.  Nothing happens before start.
 */
struct update_dev *update_dev_new(struct daemon *d, const struct device_cfg *c,
                                  EVP_PKEY *key, char *err, size_t errcap);
/*
 * The first cycle: reads the journal and the board, finishes or abandons
 * an update left in flight, confirms an unconfirmed image that is not
 * ours, then checks the server.  Later cycles follow update_interval.
 */
void update_dev_start(struct update_dev *u);
/*
 * Graceful stop: no new step starts, an upload stops at a packet
 * boundary, an SMP exchange in flight finishes.  daemon_check_idle() is
 * called once the device is idle.
 */
void update_dev_stop(struct update_dev *u);
bool update_dev_idle(const struct update_dev *u);
/*
 * A reload removed or changed the device: no new cycle starts, and the one
 * running is never interrupted; daemon_check_idle() is called when it
 * ends (update_dev_idle() tells whether it has).
 */
void update_dev_retire(struct update_dev *u);
/* Its entry in a status snapshot (strings borrowed from the device). */
void update_dev_report(const struct update_dev *u, struct metrics_snapshot *s);
/* Frees it and releases its worker link. */
void update_dev_free(struct update_dev *u);

#endif
