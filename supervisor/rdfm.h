/*
 * The RDFM device API (docs/design.md "RDFM device API"): authentication with a
 * signed body, update check and artifact download, for many devices at once on
 * the supervisor's libevent loop through libcurl's multi interface.
 */
#ifndef RDFM_H
#define RDFM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <openssl/evp.h>

#include "spool.h"

/* Largest API response body accepted (auth, check, error bodies). */
#define RDFM_MAX_RESPONSE 65536
/* Longest token, uri and created string accepted from the server. */
#define RDFM_MAX_TOKEN 8192
#define RDFM_MAX_URI   4096
/* Deadline of one API request (the WebSocket handshake uses it too). */
#define RDFM_API_TIMEOUT_S 60
/*
 * A download must end within grace + size / min_rate (the config's
 * download_grace and download_min_rate; these are their defaults).
 */
#define RDFM_DEFAULT_MIN_RATE 1024 /* bytes per second */
#define RDFM_DEFAULT_GRACE_MS 60000
/* rdfm_client_set_limits(): what a fleet shares. */
#define RDFM_DEFAULT_CONNECTIONS     8
#define RDFM_DEFAULT_AUTHENTICATIONS 4
#define RDFM_DEFAULT_DOWNLOADS       2

struct rdfm_client;
struct rdfm_dev;

enum rdfm_status {
	RDFM_NO_UPDATE,     /* check: 204, nothing newer */
	RDFM_UPDATE,        /* check: 200, result.offer is filled */
	RDFM_DOWNLOADED,    /* download: the spool entry is ready */
	RDFM_UNAPPROVED,    /* auth 401: waiting for an administrator */
	RDFM_ERR_CLIENT,    /* 4xx: our request was wrong; do not hammer */
	RDFM_ERR_TRANSIENT, /* 5xx, reset, timeout: retry after retry_ms */
	RDFM_ERR_VERIFY,    /* the download did not match its sha256 */
	RDFM_ERR_LOCAL,     /* spool full, disk error */
	RDFM_AUTHENTICATED, /* rdfm_report_version: the server has it */
};

struct rdfm_offer {
	long long id;
	char sha256[65]; /* lower-case hex */
	char *uri;
	char *created; /* may be NULL */
};

struct rdfm_result {
	enum rdfm_status status;
	long http_status;               /* 0 when no response came */
	unsigned int retry_ms;          /* RDFM_ERR_TRANSIENT: backoff delay */
	char error[256];                /* what went wrong, safe to log */
	const struct rdfm_offer *offer; /* RDFM_UPDATE, valid during the call */
	struct spool_entry *entry;      /* RDFM_DOWNLOADED */
};

typedef void (*rdfm_cb)(struct rdfm_dev *dev, const struct rdfm_result *res,
                        void *arg);

/*
 * One client per process.  ca_file (may be NULL: the system store) names
 * the CA bundle that verifies the server; verification is always on.
 */
struct rdfm_client *rdfm_client_new(struct event_base *base,
                                    const char *ca_file, char *err,
                                    size_t errcap);
/*
 * The download deadline: a transfer fails (RDFM_ERR_TRANSIENT, what came
 * kept for a resume) unless it ends within grace_ms + size / min_rate,
 * size being what that transfer must bring.  Without a size from the
 * server, the average since the start must stay above min_rate after
 * twice the grace.  Defaults: RDFM_DEFAULT_*.  Applies to transfers that
 * start afterwards.
 */
void rdfm_client_set_download_limits(struct rdfm_client *c, long long min_rate,
                                     long long grace_ms);
/*
 * Fairness for a fleet: at most connections HTTP connections to the server
 * (busy or idle; libcurl's pool, shared by every device), authentications
 * in flight and downloads running at once; what is over a cap waits its
 * turn in order of arrival.  Defaults RDFM_DEFAULT_*; 0 counts as 1.
 */
void rdfm_client_set_limits(struct rdfm_client *c, unsigned int connections,
                            unsigned int authentications,
                            unsigned int downloads);
/*
 * Devices must be freed first.  Downloads still running are stopped; what
 * they received stays in the spool for a resume.
 */
void rdfm_client_free(struct rdfm_client *c);

/*
 * One device (board or group) identity.  server is the base URL
 * ("https://rdfm.example.com"); key is borrowed and must outlive the device.
 */
struct rdfm_dev *rdfm_dev_new(struct rdfm_client *c, const char *server,
                              const char *id, const char *dev_type,
                              EVP_PKEY *key);
/* Cancels what is in flight; its callback is not called. */
void rdfm_dev_free(struct rdfm_dev *dev);
/* Exponential backoff bounds for transient errors (default 1 s .. 5 min). */
void rdfm_dev_set_backoff(struct rdfm_dev *dev, unsigned int min_ms,
                          unsigned int max_ms);
/* Forget the cached token (tests; the next call authenticates). */
void rdfm_dev_forget_token(struct rdfm_dev *dev);

/*
 * Asks whether an update is offered for a device running version (RDFM
 * spelling).  Authenticates first when no token is cached or it is about to
 * expire; a 401 from the check triggers one re-authentication and retry.
 * One operation per device at a time: -1 when one is in flight.  The
 * callback always runs later from the loop, never inside this call.
 */
int rdfm_check(struct rdfm_dev *dev, const char *version, rdfm_cb cb,
               void *arg);

/*
 * Authenticates again at once, reporting version (RDFM spelling): the
 * server keeps the version a device reported at authentication, so after
 * an update or a rollback this makes its metadata current without waiting
 * for the cached token to expire.  RDFM_AUTHENTICATED on success (the new
 * token is kept for the next check); RDFM_UNAPPROVED, RDFM_ERR_* as for a
 * check.  -1 when an operation is in flight.
 */
int rdfm_report_version(struct rdfm_dev *dev, const char *version, rdfm_cb cb,
                        void *arg);

/*
 * Downloads uri into the spool entry (the caller holds a reference; on
 * RDFM_DOWNLOADED the entry is verified and ready).  A partial file left by
 * an interrupted transfer is resumed with a Range request.  Devices offered
 * the same entry at once share one transfer.
 */
int rdfm_download(struct rdfm_dev *dev, struct spool_entry *entry,
                  const char *uri, rdfm_cb cb, void *arg);

/*
 * Authenticates unless a valid token is cached; the callback gets
 * RDFM_AUTHENTICATED or an error as rdfm_check's would.  For the management
 * channel, which needs a token of its own accord.  -1 when an operation is
 * in flight (its end leaves a fresh token too).
 */
int rdfm_auth(struct rdfm_dev *dev, const char *version, rdfm_cb cb, void *arg);
/* The cached token while it is valid, else NULL (borrowed). */
const char *rdfm_dev_token(struct rdfm_dev *dev);

/*
 * The settings every request to the server shares (TLS verification,
 * ca_file, protocols, connect timeout, user agent), for other modules'
 * handles: the WebSocket and file uploads of the management channel.
 */
void rdfm_curl_setup(CURL *e, const char *ca_file);

/*
 * Response parsers, pure (unit tests and fuzzing).  0 on success; -1 with
 * err filled.  The caller frees *token and rdfm_offer_clear()s the offer.
 */
int rdfm_parse_auth(const char *body, size_t len, char **token,
                    long long *expires, char *err, size_t errcap);
int rdfm_parse_check(const char *body, size_t len, struct rdfm_offer *offer,
                     char *err, size_t errcap);
/* The "error" string of an error body, made safe to log, or "". */
void rdfm_parse_error(const char *body, size_t len, char *out, size_t outcap);
void rdfm_offer_clear(struct rdfm_offer *offer);

#endif
