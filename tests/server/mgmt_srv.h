/*
 * The test server's management state, shared by mgmt.c (the device
 * sockets), mgmt_admin.c (the admin side) and mgmt_http.c (uploads, logs).
 */
#ifndef RDFM_TEST_MGMT_SRV_H
#define RDFM_TEST_MGMT_SRV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <json-c/json.h>

#include "mgmt.h"

/* A device as the channel knows it (by the id its token names). */
struct mdev {
	struct mdev *next;
	char *id;
	struct wsconn *conn;
	int connections, duplicates, disconnects;
	bool asked_list, sent_queued;
	struct json_object *caps;     /* last capability_report */
	struct json_object *actions;  /* last action_list_update */
	struct json_object *progress; /* every update_progress value */
	char *version;
	struct json_object *versions; /* every update_version */
	struct json_object *messages; /* everything the device sent */
	struct json_object *closes;   /* close codes we sent it */
	struct json_object *logs;     /* POST /api/v1/logs entries */
};

/* An action execution requested through the admin side. */
struct exec {
	struct exec *next;
	struct mdev *dev;
	char id[64];
	char *action_id;
	bool offline; /* queued while offline: sent at every connection */
	bool error;   /* not in the device's list at connect */
	int sent, controls, results;
	char control[32];
	bool has_result;
	int status_code;
	struct json_object *output; /* decoded */
};

/* A file fetch: probe, then download in parts, then assembly. */
struct fsreq {
	struct fsreq *next;
	struct mdev *dev;
	char probe_id[37], dl_id[37];
	char *file, *dl_file;
	const char *state; /* probing, downloading, done, failed */
	long long probe_status, size, dl_status;
	long long part_size;
	int nurls_delta;          /* hostile: more or fewer URLs */
	bool quoted;              /* S3-like quoted ETags */
	struct json_object *urls; /* hostile: these URLs instead */
	size_t nparts;
	char **names;
	struct json_object *etags;
	char sha256[65];
	size_t assembled;
	bool etags_match;
};

struct shell {
	struct shell *next;
	struct mdev *dev;
	char uuid[37];
	double created;
	struct wsconn *conn;
	bool attached, ended;
	char *path;
	struct evbuffer *output;
	int text_frames;
};

struct part {
	struct part *next;
	char name[64];
	uint8_t *data;
	size_t len;
};

struct mgmt_state {
	int ping_s;
	int refuse_ws; /* answer the upgrade with this status */
	bool logs_route;
	int logs_status; /* answer POST /api/v1/logs with this status */
	int shell_attaches;
	struct mdev *devs;
	struct exec *execs;
	struct fsreq *fsreqs;
	struct shell *shells;
	struct part *parts;
};

extern struct mgmt_state mg;

/* mgmt.c */
void uuid4(char out[37]);
double now_s(void);
struct mdev *mdev_get(const char *id);
struct mdev *mdev_find(const char *id);
struct exec *exec_find(const char *id);
struct shell *shell_find(const char *uuid);
bool action_listed(struct mdev *d, const char *action_id);
const char *bearer_device(struct evhttp_request *req, int *status,
                          const char **why);
void send_json(struct wsconn *c, struct json_object *o);
void dev_close(struct mdev *d, unsigned code, const char *reason);
bool wsconn_is_upgrade(struct evhttp_request *req);

/* mgmt_admin.c */
void mgmt_admin(struct evhttp_request *req, const char *what);
void mgmt_free_all(void);
struct fsreq *fs_find(const char *id, bool download);
void fs_probe_reply(struct fsreq *f, struct json_object *o);
void fs_download_reply(struct fsreq *f, struct json_object *o);

/* mgmt_http.c */
void handle_part(struct evhttp_request *req, const char *name);
void handle_logs(struct evhttp_request *req);
struct part *part_find(const char *name);

#endif
