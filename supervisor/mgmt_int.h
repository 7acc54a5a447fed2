/*
 * The management channel's insides, shared by mgmt.c (connection,
 * actions, progress), mgmt_shell.c, mgmt_fs.c and mgmt_logs.c.
 */
#ifndef MGMT_INT_H
#define MGMT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "curlev.h"
#include "mgmt.h"
#include "mgmt_msg.h"
#include "ws.h"

#define MGMT_MAX_MSG     (1024 * 1024) /* largest server message */
#define MGMT_MAX_QUEUE   (1024 * 1024) /* unsent output per socket */
#define MGMT_OUTPUT_MAX  (64 * 1024)   /* of an action or shell line */
#define MGMT_ACTIONS_MAX 4             /* actions waiting per board ("full") */
#define MGMT_SHELLS_MAX  4             /* shell sessions per device or group */
#define MGMT_SEEN_MAX    32            /* execution ids remembered per device */
#define MGMT_OUTBOX_MAX  64            /* results waiting for a connection */
#define MGMT_GRACE_MS    5000

/* Problems logged once per device, later ones at debug level. */
enum mgmt_once {
	ONCE_BAD_MESSAGE,
	ONCE_UNKNOWN_METHOD,
	ONCE_BINARY,
	ONCE_TOO_BIG,
	ONCE_BAD_FRAME,
	ONCE_NOT_LISTED,
	ONCE_FLOOD,
	ONCE_QUEUE_FULL,
	ONCE_OUTBOX_FULL,
	ONCE_SHELL_UUID,
	ONCE_SHELL_MAC,
	ONCE_SHELL_OFF,
	ONCE_SHELL_MANY,
	ONCE_SHELL_TOKEN,
	ONCE_FS_OFF,
	ONCE_FS_PATH,
	ONCE_FS_BADPATH,
	ONCE_FS_MEMBER,
	ONCE_FS_URLS,
	ONCE_FS_SIZE,
	ONCE_FS_BUSY,
	ONCE_FS_UPLOAD,
	ONCE_REFUSED_REQUEST,
	ONCE_NO_CHANNEL,
	ONCE_REFUSED_HANDSHAKE,
	ONCE_ALERT,
	ONCE_LOGS_REFUSED,
	ONCE_RESULT_DROPPED,
};

/* One board: a device, or one member of a group. */
struct board {
	char *name;
	bool shell;   /* configured */
	char **paths; /* file_paths */
	size_t npaths;
	bool no_shell; /* the board said the shell group is not there */
	bool no_fs;    /* ... the fs group */
	struct job *head, *tail;
	struct job *running;
	unsigned nactions; /* action jobs waiting or running */
	bool kicking;
};

/* One board operation, queued or running. */
struct job {
	struct job *next;
	struct mgmt_dev *dev; /* NULL once the device is gone */
	unsigned board;
	struct mgmt_op_args op;
	char **argv_own; /* SHELL: the words (one block) */
	char *path_own;
	bool is_action;
	void (*done)(struct job *, const struct mgmt_result *);
	void *owner;
	struct event *guard;
	int64_t started;
};

enum act_kind { ACT_CHECK, ACT_OP, ACT_SHELL };

struct action {
	const char *id, *name, *description;
	char *own_id, *own_name, *own_desc;
	enum act_kind kind;
	enum mgmt_op op;
	unsigned board;
	char **argv;
	size_t argc;
	int64_t timeout_ms;
};

enum seen_state { SEEN_RUNNING, SEEN_DONE };

struct seen {
	char id[MGMT_ID_MAX + 1];
	enum seen_state state;
	char *result;       /* the result message, kept for a re-sent exec */
	unsigned resent_on; /* connection it was last sent again on */
};

enum out_kind { OUT_RESULT, OUT_VERSION };

/* A message retried until written, across reconnections. */
struct outmsg {
	struct outmsg *next;
	enum out_kind kind;
	char id[MGMT_ID_MAX + 1];
	char *json;
	bool on_wire; /* handed to the current connection */
};

enum conn_state { C_IDLE, C_WAIT_TOKEN, C_CONNECTING, C_OPEN };

struct mgmt_shell;
struct mgmt_fsx;
struct mgmt_logq;

struct mgmt {
	struct event_base *base;
	struct curlev *cv;
	struct ws_client *wsc;
	char *server; /* base URL, no trailing '/' */
	char *ws_url;
	char server_host[256];
	char **upload_hosts;
	size_t nupload_hosts;
	char *ca_file;
	struct mgmt_tuning t;
	bool logs_gone; /* the server answered 404 to /api/v1/logs */
	uint64_t rng;
	struct mgmt_dev *devs;
};

struct mgmt_dev {
	struct mgmt_dev *next;
	struct mgmt *m;
	char *id, *name;
	bool group;
	const struct mgmt_board_ops *ops;
	void *ctx;
	struct board *boards;
	size_t nboards;
	struct action *actions;
	size_t nactions;
	int64_t file_max;

	/* The main connection. */
	struct ws *ws;
	enum conn_state cstate;
	struct event *timer; /* reconnect; resume reading after a flood */
	unsigned failures;
	int64_t up_since, down_since;
	bool ever_up, told_down, token_refused;
	bool established;  /* the server spoke, or the connection held */
	unsigned conn_gen; /* counts connections */
	char last_error[200];
	uint64_t once;
	int64_t win_start;
	unsigned win_count;
	bool sent_caps_shell, sent_caps_fs;

	/* What goes to the server. */
	struct outmsg *outbox;
	size_t noutbox;
	struct seen *seen;
	size_t nseen, seen_next;
	int last_percent;
	bool done_pending; /* progress 100 not yet written */

	struct mgmt_shell *shells;
	unsigned nshells;
	struct mgmt_fsx *fs;
	struct mgmt_logq *logs;
};

/* mgmt.c */
int64_t mgmt_now_ms(void);
bool dev_once(struct mgmt_dev *dev, enum mgmt_once what);
/* Sends json (consumed) if the connection is open; 0 when queued. */
int dev_send(struct mgmt_dev *dev, char *json);
bool dev_busy(struct mgmt_dev *dev);
void dev_caps_changed(struct mgmt_dev *dev);
struct job *job_new(struct mgmt_dev *dev, unsigned board, enum mgmt_op op);
void job_submit(struct job *j);
/* The owner goes away: a waiting job is dropped, a running one orphaned. */
void job_cancel(struct job *j);
/* The board index a group path or action names; -1 when none. */
int dev_board_for_path(struct mgmt_dev *dev, const char *file,
                       const char **path);

/* mgmt_shell.c */
void shell_attach(struct mgmt_dev *dev, const struct mgmt_msg *m);
void shells_free(struct mgmt_dev *dev);

/* mgmt_fs.c */
void fs_probe(struct mgmt_dev *dev, const struct mgmt_msg *m);
void fs_download(struct mgmt_dev *dev, const struct mgmt_msg *m);
/* Ends a transfer; reply: tell the server (status 1). */
void fs_abort(struct mgmt_dev *dev, bool reply, const char *why);

/* mgmt_logs.c */
void logs_add(struct mgmt_dev *dev, const char *name, const char *entry);
void logs_token_ready(struct mgmt_dev *dev);
void logs_free(struct mgmt_dev *dev);

/* A message logged at warning level the first time, at debug after. */
#define ONCE(dev, what, msg, ...)                                              \
	do {                                                                   \
		if (dev_once(dev, what))                                       \
			log_warnx(msg, __VA_ARGS__);                           \
		else                                                           \
			log_debug(msg, __VA_ARGS__);                           \
	} while (0)

#endif
