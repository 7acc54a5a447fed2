/*
 * The configuration file: the Go client's config.json format (server,
 * key_dir, devices[], groups[] with members[], transports), plus our own
 * keys (state_dir, user, ca_file, timeouts).  Read-only once loaded; a
 * reload (SIGHUP) loads a new one beside it.
 */
#ifndef CONFIG_H
#define CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_DEFAULT_STATE_DIR   "/var/lib/rdfm-mcumgr"
#define CONFIG_DEFAULT_INTERVAL_MS (10 * 60 * 1000LL)
#define CONFIG_DEFAULT_SPOOL_MAX   (256LL * 1024 * 1024)
/*
 * A download must finish within grace + size / min_rate: a server that
 * drips the artifact is given up on, however steadily it drips.
 */
#define CONFIG_DEFAULT_DOWNLOAD_MIN_RATE 1024 /* bytes per second */
#define CONFIG_DEFAULT_DOWNLOAD_GRACE_MS (60 * 1000LL)
/*
 * What a fleet shares: HTTP connections to the server (busy or idle), and
 * how many authentications and downloads run at once; the rest queue.
 */
#define CONFIG_DEFAULT_SERVER_CONNECTIONS 8
#define CONFIG_DEFAULT_AUTHENTICATIONS    4
#define CONFIG_DEFAULT_DOWNLOADS          2
#define CONFIG_MAX_SERVER_CONNECTIONS     1024
#define CONFIG_MAX_DOWNLOADS              64
/*
 * UDP boards one worker process serves: a crash of one worker interrupts
 * at most this many uploads (each resumes).  1: a worker per board.
 */
#define CONFIG_DEFAULT_BOARDS_PER_WORKER 32
#define CONFIG_MAX_BOARDS_PER_WORKER     256

/* Limits the config enforces (and `smp` arguments, through the checks below).
 */
#define CONFIG_MTU_MIN          32
#define CONFIG_MTU_MAX          65535
#define CONFIG_DEVICE_INDEX_MAX 255
#define CONFIG_MAX_MEMBERS      32 /* what a journal record holds */
/* Problems listed per load; past these they are only counted. */
#define CONFIG_MAX_ERRORS   100
#define CONFIG_MAX_WARNINGS 100

enum transport_type { TRANSPORT_SERIAL, TRANSPORT_UDP, TRANSPORT_BLE };

/* All deadlines in milliseconds; defaults 5 s, 60 s, 60 s, 5 min, 60 s. */
struct timeouts_cfg {
	int64_t request_ms;
	int64_t erase_ms;
	int64_t reboot_ms;
	int64_t confirm_ms;
	int64_t stall_ms;
};

struct transport_cfg {
	enum transport_type type;
	/* serial */
	char *device;
	int baud;
	int mtu;
	/* udp: "host:port" as written; host without brackets, and port */
	char *address;
	char *host;
	int port;
	/* ble; att_socket is for simulation only: "@name" (abstract socket) */
	int device_index;
	char *peer_name;
	char *att_socket;
};

/*
 * The management channel (issue 15): per board (a device or a group
 * member) whether the operator may open a shell on it and under which
 * paths files may be fetched; per device or group the operator's actions.
 */
#define CONFIG_DEFAULT_FILE_MAX       (16LL * 1024 * 1024)
#define CONFIG_DEFAULT_ACTION_TIMEOUT (10 * 1000LL)

struct action_cfg {
	char *id;
	char *name;        /* default: id */
	char *description; /* default: "" */
	char **command;    /* argv of an SMP shell exec; NULL-terminated */
	size_t ncommand;
	int64_t timeout_ms;
	char *member; /* groups: the member it runs on; NULL for devices */
};

struct board_mgmt_cfg {
	bool shell;
	char **file_paths; /* allowed prefixes; NULL-terminated */
	size_t nfile_paths;
};

struct mgmt_cfg {
	struct action_cfg *actions;
	size_t nactions;
	int64_t file_max_bytes;
};

struct device_cfg {
	char *name;
	char *id;
	char *dev_type;
	char *key;      /* as written */
	char *key_path; /* resolved in key_dir */
	bool self_confirm;
	int64_t update_interval_ms;
	struct transport_cfg transport;
	struct timeouts_cfg timeouts;
	struct board_mgmt_cfg mgmt_board;
	struct mgmt_cfg mgmt;
};

struct member_cfg {
	char *name;
	char *device; /* target image name in a group artifact */
	bool self_confirm;
	struct transport_cfg transport;
	struct board_mgmt_cfg mgmt_board;
};

struct group_cfg {
	char *name;
	char *id;
	char *type;
	char *key;
	char *key_path;
	int64_t update_interval_ms;
	struct timeouts_cfg timeouts;
	size_t nmembers;
	struct member_cfg *members;
	struct mgmt_cfg mgmt;
};

struct config {
	char *path; /* the file that was loaded */
	char *name; /* the same as the user named it, for messages */
	char *server;
	char *key_dir; /* absolute */
	char *state_dir;
	bool state_dir_default; /* neither the file nor a flag named it */
	char *user;             /* NULL: do not switch user */
	char *ca_file;          /* NULL: system CAs */
	char *
	    artifact_verify_key; /* NULL: artifacts are not signature-checked */
	char *metrics;           /* NULL: no metrics endpoint */
	int64_t update_interval_ms;
	int retries; /* 0 = unlimited */
	int64_t spool_max_bytes;
	int64_t download_min_rate; /* bytes per second */
	int64_t download_grace_ms;
	int server_connections;
	int concurrent_authentications;
	int concurrent_downloads;
	int boards_per_worker;
	bool log_json; /* log_format "json": one JSON object per log line */
	struct timeouts_cfg timeouts;
	bool management;      /* the management channel; default on */
	char **upload_hosts;  /* file upload hosts besides the server's */
	size_t nupload_hosts; /* (lower-case, NULL-terminated) */
	int64_t file_max_bytes;
	size_t ndevices;
	struct device_cfg *devices;
	size_t ngroups;
	struct group_cfg *groups;
};

/* Command-line values that win over the file's. */
struct config_overrides {
	const char *server;
	const char *key_dir;
	const char *state_dir;
	int retries;
	bool has_retries;
	int64_t interval_ms;
	bool has_interval;
};

/*
 * One problem found in a config.  Printed as "file: keypath: message", or
 * "file:line:col: message" for JSON syntax, or "file: message" for the
 * file as a whole (keypath NULL, line 0).
 */
struct config_issue {
	char *file;    /* NULL: no file was found */
	char *keypath; /* "devices[1].transport.baud"; "" the top level */
	int line, col; /* JSON syntax errors only */
	char *msg;
};

/* Every error and warning of one load; zeroed memory is an empty report. */
struct config_report {
	size_t nerrors, nwarnings;
	struct config_issue *errors, *warnings;
	size_t dropped_errors, dropped_warnings; /* past the caps */
};

void config_report_free(struct config_report *r);
/* The issue as one line (no newline); malloc'd. */
char *config_issue_line(const struct config_issue *i);
/* Add a problem found outside config.c (keys, workers) to a report. */
void config_report_error(struct config_report *r, const char *file,
                         const char *keypath, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * Load and validate a config: syntax, types, ranges, names, links.  path
 * NULL: the first of ./config.json, $XDG_CONFIG_HOME/rdfm-mcumgr/config.json,
 * $HOME/.config/rdfm-mcumgr/config.json, /etc/rdfm-mcumgr/config.json.  ov
 * may be NULL.  Every error goes into r, and NULL is returned when there is
 * one; unknown keys are warnings (with the nearest known key when one is
 * close), and do not stop the load.
 */
struct config *config_load_report(const char *path,
                                  const struct config_overrides *ov,
                                  struct config_report *r);
/*
 * As config_load_report, but a config that parsed with errors comes back
 * too (*valid false) with what could be read, for config_check_host() to
 * list its problems in the same run; its fields may be NULL and it is for
 * that alone.  NULL only when there is no file, or it is not JSON.
 */
struct config *config_load_partial(const char *path,
                                   const struct config_overrides *ov,
                                   struct config_report *r, bool *valid);
/*
 * What a start would find wrong on this host: the user (when root), the
 * CA file, the state and key directories, the metrics address, serial
 * devices (a terminal, checked without opening it: opening can reset a
 * board).  Adds to r; returns the number of errors added.  Works on a
 * partial config (fields NULL are skipped).
 */
size_t config_check_host(const struct config *c, struct config_report *r);

/*
 * The two above as before: every error into err, one per line; warnings
 * logged.  For callers that want one message (tests, tools).
 */
struct config *config_load(const char *path, const struct config_overrides *ov,
                           char *err, size_t errcap);
struct config *config_load_buffer(const char *name, const char *buf, size_t len,
                                  const struct config_overrides *ov, char *err,
                                  size_t errcap);
void config_free(struct config *);

const char *transport_type_name(enum transport_type);

/*
 * The checks behind the config's messages, for the `smp` command's
 * arguments: 0, or -1 with what was wrong and what is valid in why.
 */
/* A rate termios can set: 9600, 115200, ... */
int config_check_baud(long long baud, char *why, size_t cap);
int config_check_mtu(long long mtu, char *why, size_t cap);
/*
 * "IPv4:port", "[IPv6]:port" or "host:port", port from min_port to 65535;
 * *host (malloc'd, without brackets) and *port on success.
 */
int config_split_address(const char *s, int min_port, char **host, int *port,
                         char *why, size_t cap);
/*
 * A serial device must be a terminal: a tty in sysfs or a pseudo-terminal.
 * Checked with stat(), never opened.  A path that does not exist is not an
 * error (a USB board may be unplugged): *absent is set and why says so.
 */
int config_check_serial_device(const char *path, bool *absent, char *why,
                               size_t cap);
/* A key file name: no path separator, not "." or "..". */
int config_check_key_name(const char *key, char *why, size_t cap);
/*
 * A listen address ("host:port") whose every resolved address is loopback;
 * the numeric address and port to bind on success.
 */
int config_listen_address(const char *listen, char *addr, size_t acap,
                          char *port, size_t pcap, char *why, size_t cap);

bool device_cfg_equal(const struct device_cfg *a, const struct device_cfg *b);
bool group_cfg_equal(const struct group_cfg *a, const struct group_cfg *b);
/*
 * A reload: keys the running daemon cannot take over (state_dir, user,
 * ca_file, artifact_verify_key, metrics, spool_max_bytes, download_min_rate,
 * download_grace) keep run's value
 * in next until the next start, each change with a warning.
 */
void config_keep_restart_only(struct config *run, struct config *next);

/* `smp --address`: config_split_address() with any port from 1. */
int config_check_address(const char *address, char *why, size_t whycap);

#endif
