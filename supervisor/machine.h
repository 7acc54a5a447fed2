/*
 * The update machine: one per configured device or group.  A single device
 * is a group of one, so both run the same steps - read every board, check
 * with the server, download, read the artifact, upload to every member in
 * parallel, test-boot them together, confirm (or watch self-confirming
 * boards decide) - with the journal written before every step that changes
 * a board, and the same retry policy.  Its decisions are decide.c's.
 */
#ifndef MACHINE_H
#define MACHINE_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>

#include "config.h"

struct event_base;
struct links;
struct mgmt;
struct machine;
struct metrics_snapshot;
struct rdfm_client;
struct spool;

/*
 * Journal transitions, each written and then offered to
 * journal_crashpoint() under this name, so RDFM_CRASH_AT=<name> kills the
 * daemon right after the record is on disk and before the step it
 * announces.  A group's points carry a "group-" prefix
 * (group-uploading ...), a single board's do not:
 *   uploading     before the first upload packet to any board
 *   pending       every slot 1 holds its image; before marking them
 *   resetting     before the reset
 *   confirming    every board runs the new image; a single board commits
 *                 here, before it is confirmed or watched confirming
 *   committed     a group's commit point: every member runs the new image
 *                 and every self-confirming one confirmed it; before the
 *                 first confirm of ours
 *   rolling-back  before the first step that undoes the update
 *   done          finished; before "Update successful"
 */

/* What every machine shares, owned by the daemon. */
struct machine_env {
	struct event_base *base;
	struct rdfm_client *rdfm;
	struct spool *spool;
	EVP_PKEY *verify_key; /* NULL: artifacts are not signature-checked */
	struct links *links;
	struct mgmt *mgmt;     /* the management channel; NULL when off */
	const char *server;    /* the RDFM server's URL */
	const char *state_dir; /* work directories go under it */
	int retries;           /* attempts per offer; 0 = unlimited */
	bool once;             /* one cycle per machine */
	/* The owner hears of a machine that went idle while stopping or
	 * retiring, and (once) of the end of each machine's cycle. */
	void (*idle)(void *arg);
	void (*cycle_done)(void *arg, bool ok);
	void *arg;
};

/*
 * A machine for a device or a group: starts (or takes) the worker of each
 * board's link.  key is the device's or group's identity, owned by the
 * machine from here on.  The entry is borrowed and must outlive the
 * machine.  NULL with err when a link cannot be taken.  Nothing happens
 * before machine_start().
 */
struct machine *machine_new_device(const struct machine_env *env,
                                   const struct device_cfg *c, EVP_PKEY *key,
                                   char *err, size_t errcap);
struct machine *machine_new_group(const struct machine_env *env,
                                  const struct group_cfg *c, EVP_PKEY *key,
                                  char *err, size_t errcap);

/*
 * The first cycle reads the journal and every board: an update left in
 * flight is finished or undone as decide_recovery() says; an unconfirmed
 * image no update of ours explains is confirmed.  Later cycles follow the
 * update interval.
 */
void machine_start(struct machine *m);
/*
 * Graceful stop: no new step starts, an upload stops at a packet boundary,
 * an SMP exchange in flight finishes; env->idle() once idle.  A stop is not
 * a failure: nothing is counted against the offer.
 */
void machine_stop(struct machine *m);
/* A reload removed or changed it: no new cycle, the running one ends. */
void machine_retire(struct machine *m);
bool machine_idle(const struct machine *m);
/* Its entry in a status snapshot (strings borrowed from the machine). */
void machine_report(const struct machine *m, struct metrics_snapshot *s);
/* Frees it and releases its links. */
void machine_free(struct machine *m);

#endif
