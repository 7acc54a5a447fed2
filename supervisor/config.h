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
	char *server;
	char *key_dir; /* absolute */
	char *state_dir;
	char *user;    /* NULL: do not switch user */
	char *ca_file; /* NULL: system CAs */
	char *
	    artifact_verify_key; /* NULL: artifacts are not signature-checked */
	char *metrics;           /* NULL: no metrics endpoint */
	int64_t update_interval_ms;
	int retries; /* 0 = unlimited */
	int64_t spool_max_bytes;
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
 * Load and validate a config.  path NULL: the first of ./config.json,
 * $HOME/.config/rdfm-mcumgr/config.json, /etc/rdfm-mcumgr/config.json.
 * ov may be NULL.  Returns NULL and writes one message into err naming the
 * file, the key path and what was expected.  Unknown keys are logged as
 * warnings, not errors.
 */
struct config *config_load(const char *path, const struct config_overrides *ov,
                           char *err, size_t errcap);
/* The same from memory; name stands for the file in messages. */
struct config *config_load_buffer(const char *name, const char *buf, size_t len,
                                  const struct config_overrides *ov, char *err,
                                  size_t errcap);
void config_free(struct config *);

const char *transport_type_name(enum transport_type);

/*
 * Whether two entries describe the same thing, every value compared
 * (a reload keeps the state machine of an entry that did not change).
 */
bool transport_cfg_equal(const struct transport_cfg *a,
                         const struct transport_cfg *b);
bool device_cfg_equal(const struct device_cfg *a, const struct device_cfg *b);
bool group_cfg_equal(const struct group_cfg *a, const struct group_cfg *b);
/*
 * A reload: keys the running daemon cannot take over (state_dir, user,
 * ca_file, artifact_verify_key, metrics, spool_max_bytes) keep run's value
 * in next until the next start, each change with a warning.
 */
void config_keep_restart_only(struct config *run, struct config *next);

#endif
