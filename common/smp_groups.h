/*
 * Codecs for the SMP groups beyond the update path (image erase; OS info,
 * taskstat, mpstat, datetime, bootloader; stat; shell; fs), for the
 * generic command (smp_tree.h): request payloads encoded as CBOR maps,
 * replies decoded from trees into C structs.  Pure, no I/O.  Strings in
 * decoded structs point into the tree they came from; arrays are
 * allocated and freed with the struct's own free function.  Wire facts:
 * Zephyr's mgmt groups (subsys/mgmt/mcumgr/grp), checked against the real
 * smp_svr in ../shared/zephyr-peer where it has the group.
 */
#ifndef SMP_GROUPS_H
#define SMP_GROUPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "smp.h"
#include "smp_tree.h"

#define SMP_GROUP_STAT  2
#define SMP_GROUP_FS    8
#define SMP_GROUP_SHELL 9

/* A command: its name on our command line, where it lives on the wire, and
 * what a Zephyr developer turns on when a board says "not supported". */
struct smpg_cmd {
	const char *name;
	uint8_t op; /* SMP_OP_READ or SMP_OP_WRITE */
	uint16_t group;
	uint8_t id;
	const char *kconfig;
};

extern const struct smpg_cmd smpg_image_state_read;
extern const struct smpg_cmd smpg_image_erase;
extern const struct smpg_cmd smpg_image_confirm; /* the running image */
extern const struct smpg_cmd smpg_os_echo;
extern const struct smpg_cmd smpg_os_reset;
extern const struct smpg_cmd smpg_os_taskstat;
extern const struct smpg_cmd smpg_os_mpstat;
extern const struct smpg_cmd smpg_os_datetime_get;
extern const struct smpg_cmd smpg_os_datetime_set;
extern const struct smpg_cmd smpg_os_info;
extern const struct smpg_cmd smpg_os_bootloader;
extern const struct smpg_cmd smpg_stat_show;
extern const struct smpg_cmd smpg_stat_list;
extern const struct smpg_cmd smpg_shell_exec;
extern const struct smpg_cmd smpg_fs_upload;
extern const struct smpg_cmd smpg_fs_download;
extern const struct smpg_cmd smpg_fs_stat;
extern const struct smpg_cmd smpg_fs_hash;

/* The board answered "not supported" (MGMT_ERR_ENOTSUP, v1 form in both
 * protocol versions): the group or command is not built in. */
bool smpg_not_supported(int board_rc, bool board_v2);
/*
 * One line for that case: "the board does not support os taskstat (a
 * Zephyr build enables it with CONFIG_MCUMGR_GRP_OS_TASKSTAT=y)".
 */
const char *smpg_not_supported_msg(const struct smpg_cmd *c, char *buf,
                                   size_t cap);

/*
 * Request payloads: one CBOR map into buf, the length, or -1 when it does
 * not fit cap (or an argument is out of range).
 */
ssize_t smpg_enc_empty(uint8_t *buf, size_t cap);
/* echo {"d": text}; confirming the running image {"confirm": true}. */
ssize_t smpg_enc_echo(uint8_t *buf, size_t cap, const char *text);
ssize_t smpg_enc_image_confirm(uint8_t *buf, size_t cap);
/* slot < 0: the board's default (slot 1). */
ssize_t smpg_enc_image_erase(uint8_t *buf, size_t cap, int slot);
/* format NULL: the board's default (the kernel name). */
ssize_t smpg_enc_os_info(uint8_t *buf, size_t cap, const char *format);
/* "2024-05-01T12:00:00" (optionally ".mmm"): checked here. */
ssize_t smpg_enc_datetime_set(uint8_t *buf, size_t cap, const char *datetime);
/* query NULL: which bootloader; "mode": MCUboot's mode. */
ssize_t smpg_enc_bootloader(uint8_t *buf, size_t cap, const char *query);
ssize_t smpg_enc_stat_show(uint8_t *buf, size_t cap, const char *name);
ssize_t smpg_enc_shell_exec(uint8_t *buf, size_t cap, int argc,
                            char *const argv[]);
/* One upload chunk; the first (off 0) also carries the file's total. */
ssize_t smpg_enc_fs_upload(uint8_t *buf, size_t cap, const char *name,
                           uint64_t off, const uint8_t *data, size_t len,
                           uint64_t total);
ssize_t smpg_enc_fs_download(uint8_t *buf, size_t cap, const char *name,
                             uint64_t off);
ssize_t smpg_enc_fs_stat(uint8_t *buf, size_t cap, const char *name);
/* type NULL: the board's default; len 0: to the end of the file. */
ssize_t smpg_enc_fs_hash(uint8_t *buf, size_t cap, const char *name,
                         const char *type, uint64_t off, uint64_t len);
/* Bytes an upload chunk costs besides its data (for sizing chunks). */
size_t smpg_fs_upload_overhead(const char *name, uint64_t off, uint64_t total);

/*
 * Reply decoders: 0, or -1 with the reason in why ("\"tasks\" is not a
 * map").  Unknown keys are ignored; a known key of the wrong type is an
 * error.
 */
struct smpg_task {
	const char *name;
	bool has_prio, has_tid, has_state, has_stack, has_runtime, has_cswcnt;
	int64_t prio;
	uint64_t tid, state, stksiz, stkuse, runtime, cswcnt;
};
struct smpg_taskstat {
	size_t n;
	struct smpg_task *tasks;
};
int smpg_dec_taskstat(const struct smp_tree *t, struct smpg_taskstat *out,
                      char *why, size_t whycap);
void smpg_taskstat_free(struct smpg_taskstat *s);

struct smpg_pool {
	const char *name;
	uint64_t blksiz, nblks, nfree, min;
	bool has_min;
};
struct smpg_mpstat {
	size_t n;
	struct smpg_pool *pools;
};
int smpg_dec_mpstat(const struct smp_tree *t, struct smpg_mpstat *out,
                    char *why, size_t whycap);
void smpg_mpstat_free(struct smpg_mpstat *s);

/* echo: "r"; os info: "output"; datetime get: "datetime". */
int smpg_dec_echo(const struct smp_tree *t, const char **text, char *why,
                  size_t whycap);
int smpg_dec_os_info(const struct smp_tree *t, const char **output, char *why,
                     size_t whycap);
int smpg_dec_datetime(const struct smp_tree *t, const char **datetime,
                      char *why, size_t whycap);

struct smpg_bootloader {
	const char *bootloader; /* NULL when the reply is to a query */
	bool has_mode;
	int64_t mode; /* MCUboot mode, see smpg_mcuboot_mode_name() */
	bool has_no_downgrade;
	bool no_downgrade;
};
int smpg_dec_bootloader(const struct smp_tree *t, struct smpg_bootloader *out,
                        char *why, size_t whycap);
/* image state read: the slots, as smp.h's parser gives them. */
int smpg_dec_image_state(const struct smp_tree *t, struct smp_image_list *out,
                         char *why, size_t whycap);

/* Names of the group-specific (SMP v2) error codes of the OS, stat,
 * fs and shell groups; NULL for others. */
const char *smpg_group_rc_name(uint16_t group, int rc);

/* "swap using scratch", ...; "unknown" for others. */
const char *smpg_mcuboot_mode_name(int64_t mode);

struct smpg_stat_list {
	size_t n;
	const char **names;
};
int smpg_dec_stat_list(const struct smp_tree *t, struct smpg_stat_list *out,
                       char *why, size_t whycap);
void smpg_stat_list_free(struct smpg_stat_list *s);

struct smpg_stat_field {
	const char *name;
	uint64_t value;
};
struct smpg_stat_show {
	const char *name;
	size_t n;
	struct smpg_stat_field *fields;
};
int smpg_dec_stat_show(const struct smp_tree *t, struct smpg_stat_show *out,
                       char *why, size_t whycap);
void smpg_stat_show_free(struct smpg_stat_show *s);

/*
 * shell exec: the output (may hold any bytes) and the command's return
 * code, from "ret", or from "rc" on builds with
 * CONFIG_MCUMGR_GRP_SHELL_LEGACY_RC_RETURN_CODE (where the engine reports
 * a non-zero "rc" as a board error: pass the tree anyway).
 */
struct smpg_shell {
	const uint8_t *out;
	size_t out_len;
	bool has_ret;
	bool legacy_rc;
	int64_t ret;
};
int smpg_dec_shell(const struct smp_tree *t, struct smpg_shell *out, char *why,
                   size_t whycap);

/* fs: an upload answer, a download chunk, stat, hash. */
int smpg_dec_fs_upload(const struct smp_tree *t, uint64_t *off, char *why,
                       size_t whycap);
struct smpg_fs_chunk {
	uint64_t off;
	const uint8_t *data;
	size_t len;
	bool has_total; /* only in the answer for offset 0 */
	uint64_t total;
};
int smpg_dec_fs_download(const struct smp_tree *t, struct smpg_fs_chunk *out,
                         char *why, size_t whycap);
int smpg_dec_fs_stat(const struct smp_tree *t, uint64_t *len, char *why,
                     size_t whycap);
struct smpg_fs_hash {
	const char *type;
	uint64_t off, len;
	bool is_bytes; /* a hash (bytes) or a checksum (number) */
	const uint8_t *bytes;
	size_t nbytes;
	uint64_t number;
};
int smpg_dec_fs_hash(const struct smp_tree *t, struct smpg_fs_hash *out,
                     char *why, size_t whycap);

#endif
