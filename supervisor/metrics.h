/*
 * Status and metrics: the counters each device and group keeps
 * (struct board_stats, updated by update.c and group.c), and the optional
 * loopback HTTP endpoint serving them as /metrics (Prometheus text format)
 * and /status (JSON), also written to the log on SIGUSR1.
 */
#ifndef METRICS_H
#define METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

struct event_base;

enum stats_check {
	STATS_CHECK_NONE, /* never checked */
	STATS_CHECK_UP_TO_DATE,
	STATS_CHECK_OFFERED,
	STATS_CHECK_UNAPPROVED,
	STATS_CHECK_ERROR,
};

/* Distinct phases counted; the state machines have about a dozen. */
#define STATS_MAX_PHASES  16
#define STATS_VERSION_MAX 64

struct stats_phase_count {
	char phase[24];
	uint64_t n;
};

/* Kept by a state machine; zeroed memory is a valid start. */
struct board_stats {
	char offered_version[STATS_VERSION_MAX]; /* "" when none in flight */
	int64_t last_check;                      /* Unix seconds; 0: never */
	enum stats_check last_check_result;
	uint64_t attempts, successes;
	struct stats_phase_count failures[STATS_MAX_PHASES];
	uint64_t bytes_uploaded;
	double last_upload_bps;     /* of the last finished upload */
	unsigned int upload_window; /* where the last upload's window settled */
	uint64_t upload_rewinds;    /* times boards asked for earlier data */
	uint64_t local_failures; /* this host's: journal, disk, descriptors */
	char last_error[200]; /* why the last cycle failed; "" after success */
};

/* The answer of an update check. */
static inline void
stats_checked(struct board_stats *s, enum stats_check r)
{
	s->last_check = (int64_t)time(NULL);
	s->last_check_result = r;
}

/* An update begins: its version, when known (NULL: not yet). */
static inline void
stats_attempt(struct board_stats *s, const char *version)
{
	s->attempts++;
	snprintf(s->offered_version, sizeof(s->offered_version), "%s",
	         version != NULL ? version : "");
}

static inline void
stats_offered(struct board_stats *s, const char *version)
{
	snprintf(s->offered_version, sizeof(s->offered_version), "%s", version);
}

static inline void
stats_succeeded(struct board_stats *s)
{
	s->successes++;
	s->offered_version[0] = '\0';
	s->last_error[0] = '\0';
}

/* Why a cycle failed; local: this host's trouble, not the update's. */
static inline void
stats_error(struct board_stats *s, bool local, const char *reason)
{
	size_t n = strlen(reason);

	if (local)
		s->local_failures++;
	if (n >= sizeof(s->last_error))
		n = sizeof(s->last_error) -
		    1; /* cut: /status shows the start */
	memcpy(s->last_error, reason, n);
	s->last_error[n] = '\0';
}

/* A failure in phase; phases past STATS_MAX_PHASES count as "other". */
static inline void
stats_failed(struct board_stats *s, const char *phase)
{
	size_t i;

	for (i = 0; i < STATS_MAX_PHASES; i++) {
		if (s->failures[i].phase[0] == '\0')
			snprintf(s->failures[i].phase,
			         sizeof(s->failures[i].phase), "%s",
			         i == STATS_MAX_PHASES - 1 ? "other" : phase);
		if (strcmp(s->failures[i].phase, phase) == 0 ||
		    i == STATS_MAX_PHASES - 1) {
			s->failures[i].n++;
			return;
		}
	}
}

/*
 * A finished upload of bytes in ms milliseconds; its window settled at
 * window packets in flight (0: not known) after rewinds rewinds.  Without
 * bytes and ms only the window and rewinds count (a group's member: the
 * group's bytes come once every member finished).
 */
static inline void
stats_uploaded(struct board_stats *s, uint64_t bytes, uint64_t ms,
               unsigned int window, unsigned int rewinds)
{
	if (window != 0)
		s->upload_window = window;
	s->upload_rewinds += rewinds;
	if (bytes == 0 && ms == 0)
		return;
	s->bytes_uploaded += bytes;
	s->last_upload_bps =
	    ms != 0 ? (double)bytes * 1000.0 / (double)ms : (double)bytes;
}

/* One device or group as reported; strings borrowed for the call. */
struct metrics_entry {
	const char *kind; /* "device" or "group" */
	const char *name;
	const char *state;           /* the step it is in: "idle", "upload" */
	const char *running_version; /* "" when not read yet */
	unsigned int worker_restarts;
	const struct board_stats *stats;
};

struct metrics_snapshot {
	size_t n, cap;
	struct metrics_entry *v;
};

void metrics_snapshot_add(struct metrics_snapshot *s,
                          const struct metrics_entry *e);
void metrics_snapshot_clear(struct metrics_snapshot *s);

/* Fills a snapshot of every device and group (the daemon provides it). */
typedef void (*metrics_collect_fn)(struct metrics_snapshot *s, void *arg);

/* The text of /metrics and /status; malloc'd. */
char *metrics_render_prometheus(const struct metrics_snapshot *s);
char *metrics_render_json(const struct metrics_snapshot *s);
/* SIGUSR1: one INFO line per entry. */
void metrics_log_status(const struct metrics_snapshot *s);

struct metrics;

/*
 * Bounds on the endpoint's connections, so that a flood of idle ones costs
 * the daemon neither descriptors nor its loop: at most METRICS_MAX_CONNS at
 * once (more wait in the kernel's queue), closed after METRICS_IDLE_S
 * without a byte, and after METRICS_CONN_LIFETIME_S in any case.
 */
#define METRICS_MAX_CONNS       16
#define METRICS_IDLE_S          5
#define METRICS_CONN_LIFETIME_S 30

/*
 * Serve /metrics and /status on listen ("host:port", as in the config).
 * Every address the host resolves to must be loopback: the pages carry no
 * authentication.  NULL with err when refused or the bind fails.
 */
struct metrics *metrics_start(struct event_base *base, const char *listen,
                              metrics_collect_fn fn, void *arg, char *err,
                              size_t errcap);
/* The port bound (useful when listen asked for port 0). */
int metrics_port(const struct metrics *m);
/* Other bounds than the defaults above (tests). */
void metrics_set_limits(struct metrics *m, unsigned int max_conns, int idle_s,
                        int lifetime_s);
/* Connections open now. */
unsigned int metrics_connections(const struct metrics *m);
void metrics_free(struct metrics *m);

#endif
