/*
 * RDFM's device management channel (MGMT-CHANNEL.md) for every configured
 * device and group: one WebSocket each to /api/v1/devices/ws, capabilities,
 * update progress and version, actions, shell sessions, file downloads and
 * device logs.  The boards are reached only through callbacks the daemon
 * fills in (struct mgmt_board_ops): this module knows no SMP.
 *
 * Everything here is optional for updates: a server without the channel,
 * a refused handshake or a dropped connection never delays an update.
 */
#ifndef MGMT_H
#define MGMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct event_base;
struct mgmt;     /* the channel of the whole daemon */
struct mgmt_dev; /* one configured device or group */
struct mgmt_req; /* one board operation the daemon runs for us */

/* What the channel asks of a board.  Each maps to one SMP request. */
enum mgmt_op {
	MGMT_OP_ECHO,       /* OS group, echo: text; output the reply */
	MGMT_OP_RESET,      /* OS group, reset */
	MGMT_OP_IMAGE_LIST, /* image group, state read; output as text */
	MGMT_OP_CONFIRM,    /* image group, state write: confirm running */
	MGMT_OP_SHELL,      /* shell group (9), exec: argv -> output, ret */
	MGMT_OP_FS_STAT,    /* fs group (8), status: path -> size */
	MGMT_OP_FS_READ,    /* fs group (8), file read: path, offset */
};

struct mgmt_op_args {
	enum mgmt_op op;
	unsigned board;          /* 0 for a device; a group's member index */
	int64_t timeout_ms;      /* MGMT_OP_SHELL: the action's; others 0 (the
	                            board's request timeout) */
	const char *text;        /* ECHO */
	const char *const *argv; /* SHELL, NULL-terminated */
	size_t argc;
	const char *path; /* FS_*: a board path the rules allowed */
	uint64_t offset;  /* FS_READ */
	size_t max_len;   /* FS_READ: no more bytes than this wanted */
};

enum mgmt_status {
	MGMT_DONE,        /* it ran: rc and the output or bytes below */
	MGMT_FAILED,      /* it could not run (link, timeout, an SMP error):
	                     data holds a short reason for people */
	MGMT_UNSUPPORTED, /* the board answered "not supported" (SMP rc 8)
	                     for this group or command */
	MGMT_NOT_FOUND,   /* FS_*: no such file */
	MGMT_BUSY,        /* refused: an update holds the board */
};

struct mgmt_result {
	enum mgmt_status status;
	int rc;           /* SHELL: the command's "ret"; else 0 */
	const void *data; /* output text, or FS_READ's bytes (may be NULL) */
	size_t len;       /* FS_READ: 0 only at the end of the file */
	uint64_t size;    /* FS_STAT: the file's length */
};

/*
 * Filled in by the daemon, one table for all devices; ctx is the one given
 * to mgmt_dev_new_*().
 */
struct mgmt_board_ops {
	/*
	 * Runs op on a board and reports with mgmt_req_done(req), exactly
	 * once and never inside this call (even for an immediate refusal).
	 * One operation per board at a time: the channel queues the rest.
	 */
	void (*run)(void *ctx, const struct mgmt_op_args *op,
	            struct mgmt_req *req);
	/* A journal entry exists for the device or its group. */
	bool (*update_in_progress)(void *ctx);
	/* The operator asked for an update check now. */
	void (*check_now)(void *ctx);
	/*
	 * The device's token, valid now, or NULL: then start authenticating
	 * (rdfm_auth) and call mgmt_token_ready() once it is there (or
	 * failed: the channel asks again).  refused: the server answered
	 * the last token with 401; forget it.
	 */
	const char *(*token)(void *ctx, bool refused);
};

void mgmt_req_done(struct mgmt_req *req, const struct mgmt_result *res);

/* Knobs for tests and the benchmark; zeros mean the defaults. */
struct mgmt_tuning {
	unsigned backoff_min_ms;   /* 200 */
	unsigned backoff_max_ms;   /* 5000 for the first minute down */
	unsigned backoff_slow_ms;  /* 30000 after that */
	int idle_ms;               /* silent server: 80000 (3 pings + 5 s) */
	unsigned flood_per_s;      /* messages a second before pausing: 200 */
	unsigned log_flush_ms;     /* device logs batch window: 2000 */
	unsigned shell_timeout_ms; /* one shell line: 10000 */
	unsigned down_log_ms;      /* "channel down" after this long: 60000 */
};

/*
 * The channel for a config; NULL when management is off (every function
 * below accepts NULL and does nothing then).  t may be NULL.
 */
struct mgmt *mgmt_new(struct event_base *base, const struct config *cfg,
                      const struct mgmt_tuning *t);
/* Every device must have been freed first. */
void mgmt_free(struct mgmt *m);

/*
 * A device's or group's channel; it connects at once.  The config entry
 * is copied.  NULL when m is NULL.
 */
struct mgmt_dev *mgmt_dev_new_device(struct mgmt *m, const struct device_cfg *d,
                                     const struct mgmt_board_ops *ops,
                                     void *ctx);
struct mgmt_dev *mgmt_dev_new_group(struct mgmt *m, const struct group_cfg *g,
                                    const struct mgmt_board_ops *ops,
                                    void *ctx);
/*
 * Closes the connections and drops what was queued; board operations in
 * flight are orphaned (their mgmt_req_done() is still due and harmless).
 * Device logs not yet sent are lost.
 */
void mgmt_dev_free(struct mgmt_dev *dev);

/* A token is there now (or authentication failed): try again. */
void mgmt_token_ready(struct mgmt_dev *dev);

/*
 * The board answered "not supported" for the SMP group op belongs to (the
 * daemon learned it some other way than through run(), say an SMP group
 * list at start): the capability and the actions that need it go.  A
 * result MGMT_UNSUPPORTED from run() does the same by itself.
 */
void mgmt_board_unsupported(struct mgmt_dev *dev, unsigned board,
                            enum mgmt_op op);

/*
 * An update begins (its journal entry is written): file transfers end with
 * status 1; queued actions and shell lines are refused when they come up.
 */
void mgmt_update_started(struct mgmt_dev *dev);
/*
 * Image bytes the board(s) acknowledged, of total (a group: the sum over
 * its members).  A whole percent that changed goes out at once (0..99).
 */
void mgmt_progress(struct mgmt_dev *dev, uint64_t done, uint64_t total);
/* The update is over, done or given up: progress 100. */
void mgmt_update_ended(struct mgmt_dev *dev);
/*
 * The version the board (every member) runs now, after an update or a
 * rollback: sent, and sent again after reconnecting until written.
 */
void mgmt_version(struct mgmt_dev *dev, const char *version);

/* Update outcomes for the device's log on the server. */
enum mgmt_outcome {
	MGMT_OUT_OFFERED,
	MGMT_OUT_UPLOADED,
	MGMT_OUT_REJECTED,
	MGMT_OUT_ROLLED_BACK,
	MGMT_OUT_UPDATED,
	MGMT_OUT_FAILED,
};
/*
 * One entry "update" in the device's log: the outcome, the versions (either
 * may be NULL), how long it took (ms, < 0: not said) and a detail (NULL).
 */
void mgmt_log_update(struct mgmt_dev *dev, enum mgmt_outcome what,
                     const char *from, const char *to, int64_t ms,
                     const char *detail);
/* Any other entry for the device's log; batched to POST /api/v1/logs. */
void mgmt_log(struct mgmt_dev *dev, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

bool mgmt_dev_connected(const struct mgmt_dev *dev);
size_t mgmt_connected_count(const struct mgmt *m);
/*
 * Descriptors one device's channel may hold at once: its WebSocket, its
 * shell sessions, a file part upload and a log post.
 */
unsigned mgmt_fds_per_device(void);

/*
 * check-config's lines about the channel: what a device or group offers,
 * and the summary (on or off, upload hosts).  The descriptors it needs
 * are on the plan's "descriptors:" line with the rest (fdlimit.h).
 */
void mgmt_plan_board(const char *indent, const struct board_mgmt_cfg *b);
void mgmt_plan_actions(const char *indent, const struct mgmt_cfg *m);
void mgmt_plan_summary(const struct config *c);

#endif
