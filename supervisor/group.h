/*
 * The group update state machine (DESIGN.md "Update flow", Group): one
 * zephyr-group-image artifact for all members, uploaded in parallel, and a
 * two-phase commit so that the members never end on different versions.
 */
#ifndef GROUP_H
#define GROUP_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

struct daemon;
struct group;
struct metrics_snapshot;

/*
 * The group's journal transitions, each written and then offered to
 * journal_crashpoint() under this name (RDFM_CRASH_AT=<name>):
 *   group-uploading    before the first upload packet to any member
 *   group-pending      every slot 1 holds its image; before marking them
 *   group-resetting    before resetting the members
 *   group-confirming   all run the new image; before watching the
 *                      self-confirming members decide
 *   group-committed    the commit point: before the first confirm of ours
 *   group-rolling-back before the first step that undoes the update
 *   group-done         every member confirmed; before "Update successful"
 */
#define GROUP_CP_UPLOADING    "group-uploading"
#define GROUP_CP_PENDING      "group-pending"
#define GROUP_CP_RESETTING    "group-resetting"
#define GROUP_CP_CONFIRMING   "group-confirming"
#define GROUP_CP_COMMITTED    "group-committed"
#define GROUP_CP_ROLLING_BACK "group-rolling-back"
#define GROUP_CP_DONE         "group-done"

/*
 * A group's state machine: loads the group key, starts (or shares) a
 * worker per member link.  NULL with err when that fails.  Nothing
 * happens before group_start.
 */
struct group *group_new(struct daemon *d, const struct group_cfg *c, char *err,
                        size_t errcap);
/*
 * The first cycle reads the journal and every member: an update left in
 * flight is rolled back (before its commit point) or forward (after it);
 * members that disagree on their version without a journal entry
 * explaining it are refused.  Later cycles follow update_interval.
 */
void group_start(struct group *g);
/* Graceful stop, as update_dev_stop(); daemon_check_idle() when idle. */
void group_stop(struct group *g);
bool group_idle(const struct group *g);
/* A reload removed or changed the group: as update_dev_retire(). */
void group_retire(struct group *g);
/* Its entry in a status snapshot: the version all members agree on. */
void group_report(const struct group *g, struct metrics_snapshot *s);
/* Frees it and releases its members' worker links. */
void group_free(struct group *g);

#endif
