/*
 * The update machine's insides, shared by machine.c (the update) and
 * machine_mgmt.c (what the management channel asks of the same boards).
 * Nothing outside these two files includes it.
 */
#ifndef MACHINE_INT_H
#define MACHINE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "board.h"
#include "config.h"
#include "decide.h"
#include "ipc.pb-c.h"
#include "journal.h"
#include "machine.h"
#include "metrics.h"

struct artifact;
struct artifact_image;
struct event;
struct mgmt_dev;
struct mgmt_op_args;
struct mgmt_req;
struct rdfm_dev;
struct smp_cmd_req;
struct spool_entry;
struct upload;

enum step {
	S_IDLE,
	S_READ,
	S_STARTUP_CONFIRM,
	S_CHECK,
	S_DOWNLOAD,
	S_ARTIFACT,
	S_UPLOAD,
	S_VERIFY,
	S_PENDING,
	S_RESET,
	S_WATCH,
	S_CONVERGE,
};

enum outcome { O_UP_TO_DATE, O_UPDATED, O_WAITING, O_SKIPPED, O_FAILED };

struct machine;

struct member {
	struct machine *m;
	size_t idx;
	const char *name;
	const char *image; /* its image's name in a group artifact */
	bool self_confirm;
	const struct transport_cfg *transport;
	struct board *board;

	/* Its part of the step running on every member. */
	bool active, ok;
	char *err; /* why its part failed, or NULL */

	struct board_images imgs; /* last read */
	bool has_imgs;
	char version[MCUBOOT_VERSION_MAX];
	const struct artifact_image *img;

	struct upload *up;
	bool stalled;
	uint64_t up_started_ms, up_log_ms, up_acked;
	struct event *stall_ev, *upload_done_ev;
	Ipc__Reply__Status up_status;
	char up_error[256];

	/* Finishing or undoing: steps taken, deadline, and how it ended. */
	unsigned int conv_steps;
	uint64_t conv_deadline_ms;
	bool rejected;
	struct event *retry_ev;
	bool late; /* the reset's deadline passed before it answered */
	/* The slots before the last reset while converging: a reset that
	 * changes nothing (no bootloader acting on the marks) is not tried
	 * again and again. */
	bool reset_sent;
	struct board_images before_reset;

	/* The management channel's operation on this board (machine_mgmt.c):
	 * running, or waiting for the machine's cycle to end. */
	struct smp_cmd_req *mop;
	struct mgmt_req *mreq;
	const struct mgmt_op_args *mwait;
	struct mgmt_req *mwait_req;
	struct event *mgmt_ev; /* a refusal, answered from the loop */
};

struct machine {
	const struct machine_env *env;
	bool group;
	const char *name, *id, *type;
	const char *key_path; /* its identity's file, checked every cycle */
	int64_t interval_ms;
	const struct timeouts_cfg *to;
	EVP_PKEY *key;
	struct rdfm_dev *rd;
	struct member *mb;
	size_t n;
	bool lone; /* a single board: a group of one */

	enum step step;
	bool first_cycle, stop, retire;
	struct board_stats stats;
	uint64_t cycle_bytes, cycle_upload_ms;

	/* The step running on every member. */
	size_t outstanding;
	bool failed;
	char *fail_reason; /* NULL: none (text() reads it) */
	void (*after)(struct machine *);

	char version[MCUBOOT_VERSION_MAX]; /* every member agrees on it */

	/* The journal entry, kept in step with the disk. */
	struct journal_entry j;

	/* The offer being applied, and the download kept for a retry. */
	char sha[65];
	struct spool_entry *entry, *kept;
	struct artifact *art;
	char *workdir;

	/* Finishing (forward) or undoing (back) what is in flight. */
	enum decide_dir dir;
	bool recovering;       /* from the journal, not from a failure */
	enum step failed_step; /* the step whose failure is undone */
	enum fail_kind fail_kind;
	char *rollback_reason;

	struct offer_memory offers;
	struct event *cycle_ev;

	/* The end of the cycle, once the server has heard the version. */
	enum outcome report_outcome;
	int64_t report_delay_ms;

	/* The management channel (machine_mgmt.c); NULL when it is off. */
	struct mgmt_dev *md;
	const struct device_cfg *dcfg; /* exactly one of these */
	const struct group_cfg *gcfg;
	bool mgmt_update;   /* an update was announced to the channel */
	bool rolled_back;   /* ... and it was undone */
	bool token_wanted;  /* asked while a server request ran */
	uint64_t update_t0; /* when it began, for the device's log */
	char from_version[MCUBOOT_VERSION_MAX];
	struct event *token_ev; /* a failed authentication is tried later */
};

/* machine.c */
void machine_timer_ms(struct event *ev, int64_t ms);
/* Start the next cycle now when the machine is between cycles. */
void machine_cycle_now(struct machine *m);

/* machine_mgmt.c: the channel's side of the machine. */
void mm_init(struct machine *m);
void mm_free(struct machine *m);
/* A management operation holds a board: the cycle waits. */
bool mm_busy(const struct machine *m);
/* The machine's cycle ended: run what waited for it. */
void mm_cycle_ended(struct machine *m);
/* The update steps that the channel hears of. */
void mm_update_started(struct machine *m);
void mm_progress(struct machine *m);
void mm_update_ended(struct machine *m, bool updated, const char *why);
void mm_version(struct machine *m);
void mm_offered(struct machine *m);
/* A server request of the machine ended: a token may be wanted now. */
void mm_rdfm_idle(struct machine *m);

#endif
