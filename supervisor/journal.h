/*
 * The journal: for each device and group, the update step in flight and the
 * hashes needed to finish or undo it, written atomically (temp file, fsync,
 * rename, fsync of the directory) before every step that changes a board.
 * On start the supervisor reads it to finish or roll back what was in
 * flight; a corrupt entry is reported, never guessed from.
 */
#ifndef JOURNAL_H
#define JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JOURNAL_HASH_LEN    32
#define JOURNAL_MAX_MEMBERS 32
#define JOURNAL_NAME_MAX    64

enum journal_phase {
	JP_IDLE = 0,     /* nothing in flight */
	JP_UPLOADING,    /* image going to slot 1 */
	JP_PENDING,      /* slot 1 marked for test boot */
	JP_RESETTING,    /* reset sent, waiting for the board */
	JP_CONFIRMING,   /* new image runs; waiting for (self-)confirm */
	JP_COMMITTED,    /* group: past the commit point, rolling forward */
	JP_ROLLING_BACK, /* group: returning every member to old_hash */
	JP_DONE,         /* finished; kept until the next update starts */
	JP__COUNT
};

struct journal_member {
	char name[JOURNAL_NAME_MAX];
	enum journal_phase phase;
	bool has_old_hash, has_new_hash;
	uint8_t old_hash[JOURNAL_HASH_LEN]; /* what it ran before */
	uint8_t new_hash[JOURNAL_HASH_LEN]; /* the image being applied */
};

struct journal_entry {
	enum journal_phase phase;
	char artifact_sha256[65]; /* hex, empty if none */
	char target_version[32];
	unsigned int attempt;
	size_t nmembers; /* a single device is one member */
	/*
	 * The members, in storage the caller provides for cap of them (at
	 * most JOURNAL_MAX_MEMBERS): a single device's machine keeps room
	 * for one, not for a group's 32.
	 */
	size_t cap;
	struct journal_member *members;
};

/* Every field cleared, the storage (members, cap) kept and zeroed. */
void journal_entry_clear(struct journal_entry *e);

const char *journal_phase_name(enum journal_phase p);
int journal_phase_parse(const char *s, enum journal_phase *p);

/* Creates state_dir/journal (0700).  Returns 0 or -1 with err. */
int journal_open(const char *state_dir, char *err, size_t errcap);
void journal_close(void);

/* kind is "device" or "group"; id is the configured id (any bytes). */
int journal_write(const char *kind, const char *id,
                  const struct journal_entry *e, char *err, size_t errcap);
/* 0: read into *e; 1: no entry; -1: unreadable or corrupt (reason in err). */
int journal_read(const char *kind, const char *id, struct journal_entry *e,
                 char *err, size_t errcap);
int journal_remove(const char *kind, const char *id, char *err, size_t errcap);

/*
 * Crash injection for tests: when RDFM_CRASH_AT names this point, the
 * process logs it and kills itself with SIGKILL right there.
 */
void journal_crashpoint(const char *point);

#endif
