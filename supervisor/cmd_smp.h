/*
 * The `smp` command family, shared by its files: cmd_smp.c (options, the
 * command table, running operations and waiting for them, output),
 * cmd_smp_link.c (which board: flags, mcumgr connection strings, --board),
 * cmd_smp_os.c, cmd_smp_image.c (image commands and upgrade) and
 * cmd_smp_fs.c.  Every command goes through the daemon's own path: one
 * worker for the link, operations over IPC.
 */
#ifndef CMD_SMP_H
#define CMD_SMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ipc.pb-c.h"
#include "smp_cmd.h"
#include "smp_groups.h"
#include "workers.h"

struct json_object;

#define SMP_BOARD_ID 1

/* Exit statuses: 0 done, 1 failed, 2 usage; upgrade says which phase. */
#define SMP_EX_FAIL    1
#define SMP_EX_USAGE   2
#define SMP_EX_UPLOAD  3 /* upgrade: upload */
#define SMP_EX_TEST    4 /* upgrade: marking the image for test */
#define SMP_EX_RESET   5 /* upgrade: reset */
#define SMP_EX_WAIT    6 /* upgrade: the board did not come back */
#define SMP_EX_CHECK   7 /* upgrade: it does not run the new image */
#define SMP_EX_CONFIRM 8 /* upgrade: confirm, or its self-confirm */

struct smp_cli {
	/* What the command line asked for. */
	struct worker_link link;
	const char *peer; /* BLE advertised name */
	char where[320];  /* the link, for messages */
	bool json, quiet;
	uint32_t window; /* 0: adaptive */
	int64_t connect_ms, stall_ms, reboot_ms, confirm_ms;
	bool self_confirm;
	bool no_resume;
	const char *hash_type;

	/* The run. */
	int lock_fd; /* the link's lock (links.h), -1 before the worker */
	struct event_base *base;
	struct workers *ws;
	struct worker *w;
	struct event *tick, *sigint, *sigterm;
	bool interrupted;
	struct upload *up; /* running upload, aborted on a signal */
	bool have_params;  /* the board answered the parameters command */
	uint32_t buf_size, buf_count;

	/* The progress bar (stderr on a terminal). */
	bool bar;
	bool bar_drawn;
	uint64_t bar_t0, bar_last, bar_total, bar_start;
	uint32_t bar_window;
};

struct smp_command {
	const char *w1, *w2; /* "image", "upload"; w2 NULL: one word */
	int min, max;        /* further arguments; max -1: any */
	int (*run)(struct smp_cli *c, int argc, char **argv);
	const char *args; /* "FILE" */
	const char *help; /* one line */
	const char *more; /* the command's own options and details, or NULL */
};

/* cmd_smp.c */
/* Spawn the worker and make sure the board answers (its parameters). */
int cli_start(struct smp_cli *c);
/* Run the loop until *done, a signal, or deadline_ms (0: none).
 * 0 done, -1 interrupted, -2 past the deadline. */
int cli_wait(struct smp_cli *c, const bool *done, uint64_t deadline_ms);
/*
 * One of the worker's own operations (echo, params, image state, reset),
 * waiting for it: a copy of the Reply (free it with
 * ipc__reply__free_unpacked), or NULL when interrupted or unsent.
 */
Ipc__Reply *cli_ipc(struct smp_cli *c, Ipc__Envelope *env);
/*
 * Any command, waiting for it: 0 with *res filled (free res->tree), -1
 * when interrupted or unsent (said).  timeout_ms 0: the link's.
 */
int cli_cmd(struct smp_cli *c, const struct smpg_cmd *sc,
            const uint8_t *payload, ssize_t len, uint32_t timeout_ms,
            struct smp_cmd_result *res);
/* The same, reporting any failure (SMP_EX_FAIL); 0 with the tree. */
int cli_cmd_ok(struct smp_cli *c, const struct smpg_cmd *sc,
               const uint8_t *payload, ssize_t len, struct smp_tree *tree);
/* Why a command failed, in one line: hints for "not supported" and for a
 * board that does not answer. */
const char *cli_explain(struct smp_cli *c, const char *what,
                        const struct smpg_cmd *sc,
                        const struct smp_cmd_result *res, char *buf,
                        size_t cap);
const char *cli_explain_reply(struct smp_cli *c, const char *what,
                              const Ipc__Reply *r, char *buf, size_t cap);

/* Output.  A failure: "smp: ..." on stderr (and {"error"} with --json). */
int cli_fail(struct smp_cli *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A note on stderr, unless -q or --json. */
void cli_note(struct smp_cli *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A warning on stderr, unless -q. */
void cli_warn(struct smp_cli *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void cli_print_json(struct json_object *o);
/* The board's reply as JSON on stdout. */
void cli_print_tree(const struct smp_tree *t);

/* The progress bar: on its own line, taken off for any log line. */
void cli_bar_start(struct smp_cli *c, uint64_t total, uint64_t start_off);
void cli_bar(struct smp_cli *c, uint64_t off, uint32_t window, bool force);
void cli_bar_end(struct smp_cli *c);

/* cmd_smp_link.c: the link from the flags; SMP_EX_USAGE after a message. */
struct smp_link_flags {
	const char *transport, *conntype, *connstring, *board, *config;
	const char *device, *address, *peer, *att_socket;
	const char *baud, *mtu, *device_index;
	bool timeout_set, erase_set, stall_set, reboot_set, confirm_set;
};
int cli_link_resolve(struct smp_cli *c, const struct smp_link_flags *f);
/* Before a serial worker opens the tty: fail fast on a held or absent one. */
int cli_link_precheck(struct smp_cli *c);
/* What to check when the board does not answer. */
const char *cli_link_hint(const struct smp_cli *c);

/* cmd_smp_os.c, cmd_smp_image.c, cmd_smp_fs.c: the commands. */
int smp_run_echo(struct smp_cli *c, int argc, char **argv);
int smp_run_params(struct smp_cli *c, int argc, char **argv);
int smp_run_reset(struct smp_cli *c, int argc, char **argv);
int smp_run_os_info(struct smp_cli *c, int argc, char **argv);
int smp_run_os_taskstat(struct smp_cli *c, int argc, char **argv);
int smp_run_os_mpstat(struct smp_cli *c, int argc, char **argv);
int smp_run_os_datetime(struct smp_cli *c, int argc, char **argv);
int smp_run_os_bootloader(struct smp_cli *c, int argc, char **argv);
int smp_run_stat_list(struct smp_cli *c, int argc, char **argv);
int smp_run_stat_show(struct smp_cli *c, int argc, char **argv);
int smp_run_shell_exec(struct smp_cli *c, int argc, char **argv);
int smp_run_image_list(struct smp_cli *c, int argc, char **argv);
int smp_run_image_upload(struct smp_cli *c, int argc, char **argv);
int smp_run_image_test(struct smp_cli *c, int argc, char **argv);
int smp_run_image_confirm(struct smp_cli *c, int argc, char **argv);
int smp_run_image_erase(struct smp_cli *c, int argc, char **argv);
int smp_run_upgrade(struct smp_cli *c, int argc, char **argv);
int smp_run_fs_upload(struct smp_cli *c, int argc, char **argv);
int smp_run_fs_download(struct smp_cli *c, int argc, char **argv);
int smp_run_fs_stat(struct smp_cli *c, int argc, char **argv);
int smp_run_fs_hash(struct smp_cli *c, int argc, char **argv);

#endif
