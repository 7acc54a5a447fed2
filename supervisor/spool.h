/*
 * The download spool: artifacts offered by the server live in
 * state_dir/spool/ under their sha256, hashed while they stream in, resumable
 * after an interruption, and shared by every board offered the same artifact.
 */
#ifndef SPOOL_H
#define SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct spool;
struct spool_entry;

/*
 * Opens (creating it 0700 when missing) dir/spool.  max_bytes caps the total
 * size of the files in the spool (0: no cap).  Files left by an earlier run
 * count against the cap; partial downloads among them are resumed by the
 * next spool_begin() for that sha256, and those no offer has claimed are
 * removed when a download needs their room.  NULL and err filled on
 * failure.
 */
struct spool *spool_open(const char *state_dir, uint64_t max_bytes, char *err,
                         size_t errcap);
/* Every entry must have been released; the files stay on disk. */
void spool_close(struct spool *sp);
/* Bytes the spool holds or has reserved for downloads in flight. */
uint64_t spool_usage(const struct spool *sp);

/*
 * Takes a reference to the artifact with this sha256 (64 hex digits, any
 * case), creating the entry when needed.  A complete file left on disk is
 * re-hashed here before it counts as ready.  NULL and err filled on a bad
 * sha256.  When the last reference goes, the file (complete or partial) is
 * removed.
 */
struct spool_entry *spool_ref(struct spool *sp, const char *sha256hex,
                              char *err, size_t errcap);
void spool_entry_hold(struct spool_entry *e);
void spool_unref(struct spool_entry *e);

/* The verified file can be read: spool_path() names it. */
bool spool_ready(const struct spool_entry *e);
const char *spool_path(const struct spool_entry *e);
const char *spool_sha256(const struct spool_entry *e);
uint64_t spool_size(const struct spool_entry *e);

/*
 * One opaque pointer slot for whoever fetches the entry, so that two boards
 * offered the same artifact at once share one transfer (rdfm.c uses it).
 */
void spool_set_fetch(struct spool_entry *e, void *fetch);
void *spool_fetch(const struct spool_entry *e);

/*
 * Writer side, one writer at a time.  spool_begin() opens the partial file
 * and re-hashes what an interrupted transfer left, returning in *offset the
 * byte to resume from.  spool_restart() throws the partial data away (the
 * server ignored a Range request).  spool_reserve() claims room for a file
 * of total bytes and refuses when it would exceed the cap.  spool_write()
 * appends and hashes.  spool_finish() verifies the sha256 and makes the
 * file ready; a mismatch deletes it and returns -2.  spool_abort() closes
 * the partial file, keeping it for a later resume when keep is true and it
 * is not empty (or deleting it).  All return 0, or -1 with err filled.
 */
int spool_begin(struct spool_entry *e, uint64_t *offset, char *err,
                size_t errcap);
int spool_restart(struct spool_entry *e, char *err, size_t errcap);
int spool_reserve(struct spool_entry *e, uint64_t total, char *err,
                  size_t errcap);
int spool_write(struct spool_entry *e, const void *buf, size_t len, char *err,
                size_t errcap);
int spool_finish(struct spool_entry *e, char *err, size_t errcap);
void spool_abort(struct spool_entry *e, bool keep);

#endif
