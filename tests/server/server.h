/*
 * The test RDFM server's shared state and helpers: devices, tokens,
 * packages and faults, and the reply/log functions every handler uses.
 */
#ifndef RDFM_TEST_SERVER_H
#define RDFM_TEST_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <event2/event.h>
#include <event2/http.h>
#include <json-c/json.h>
#include <openssl/ssl.h>

#define MAX_API_BODY 65536
#define CHUNK        65536

struct device {
	struct device *next;
	char *id;
	char *pubkey; /* the exact string sent: identity with id */
	char *dev_type;
	char *version;
	bool approved;
};

struct token {
	struct token *next;
	char tok[65];
	struct device *dev;
	time_t expires;
};

struct package {
	struct package *next;
	long long id;
	char uuid[37];
	char *path;
	char *version;
	char *dev_type;
	char *uri; /* an outside URL offered instead of local storage */
	char sha[65];
	uint64_t size;
	time_t created;
};

struct faults {
	double error_rate;
	int error_status;
	long long slow_bps;
	long long truncate_after;
	bool wrong_sha;
};

struct server {
	struct event_base *base;
	struct evhttp *http;
	SSL_CTX *ssl;
	char *data_dir;
	long token_expiry;
	bool auto_approve;
	FILE *log;
	struct json_object *logarr;
	char base_url[128];
	uint64_t rng;
	struct device *devices;
	struct token *tokens;
	struct package *packages;
	long long next_package_id;
	struct faults faults;
	/* Downloads streaming now, and the most at once (GET /admin/stats). */
	int downloads_active, downloads_peak;
};

extern struct server srv;

/* main.c */
uint64_t rng_next(void);
void random_hex(char *out, size_t nbytes);
void log_request(struct evhttp_request *req, int status, const char *device,
                 uint64_t bytes, const char *range);
/* Sends body (consumed; NULL for none) as JSON and logs the request. */
void reply_json(struct evhttp_request *req, int status,
                struct json_object *body, const char *device);
void reply_error(struct evhttp_request *req, int status, const char *msg,
                 const char *device);
bool inject_error(struct evhttp_request *req);
char *request_body(struct evhttp_request *req, size_t max, size_t *len);
bool is_json(struct evhttp_request *req);
struct json_object *parse_object(const char *s, size_t len);
const char *str_field(struct json_object *o, const char *key);

/* device.c */
/* A device's stored version, as a management channel's update_version. */
void device_set_version(const char *id, const char *version);
void handle_auth(struct evhttp_request *req);
void handle_check(struct evhttp_request *req);

/* download.c */
void handle_download(struct evhttp_request *req, const char *uuid);

/* admin.c */
void admin_pending(struct evhttp_request *req);
void admin_devices(struct evhttp_request *req);
void admin_approve(struct evhttp_request *req);
void admin_packages(struct evhttp_request *req);
void admin_faults(struct evhttp_request *req);
void admin_revoke_tokens(struct evhttp_request *req);
void admin_log(struct evhttp_request *req);
void admin_server_stats(struct evhttp_request *req);
void tokens_clear(void);

#endif
