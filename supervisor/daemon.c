/*
 * The update daemon's event loop (daemon.h): state directory, journal,
 * spool, RDFM client and workers on one libevent base; a state machine per
 * device and group; SIGTERM/SIGINT wind everything down within
 * DAEMON_STOP_MS, SIGHUP reloads the config, SIGUSR1 logs the status.
 */
#include <sys/queue.h>
#include <sys/stat.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "artifact.h"
#include "daemon.h"
#include "journal.h"
#include "keys.h"
#include "links.h"
#include "log.h"
#include "machine.h"
#include "metrics.h"
#include "mgmt.h"
#include "notify.h"
#include "rdfm.h"
#include "spool.h"
#include "workers.h"
#include "xmalloc.h"

/* Retransmissions of one SMP request before the worker gives up on it. */
#define LINK_RETRIES 2

/*
 * A loaded config.  State machines borrow their entries from the config
 * they were made from, so an old config outlives a reload until its last
 * machine is gone.
 */
struct cfg_gen {
	struct config *c;
	size_t users;
};

/* A configured device or group and its update machine. */
struct entry {
	TAILQ_ENTRY(entry) link;
	struct cfg_gen *gen;
	const struct device_cfg *dc; /* exactly one of dc and gc */
	const struct group_cfg *gc;
	struct machine *m; /* NULL until started */
	bool retiring;     /* removed or changed by a reload */
};
TAILQ_HEAD(entry_list, entry);

struct daemon {
	struct cfg_gen *cur;
	bool once;
	bool stopping;
	bool tearing_down;
	daemon_reload_fn reload;
	struct event_base *base;
	struct rdfm_client *rdfm;
	struct spool *spool;
	struct workers *ws;
	struct links *links;
	struct metrics *metrics;
	EVP_PKEY *verify_key;
	char *chroot_dir;
	int lock_fd;            /* state_dir/lock, held while we run */
	struct mgmt *mgmt;      /* the management channel; NULL when off */
	struct mgmt **old_mgmt; /* of servers before a reload, until exit */
	size_t nold_mgmt;
	struct machine_env env;

	/* Started (some retiring), and made by a reload but not started. */
	struct entry_list entries, waiting;

	size_t once_pending;
	bool once_failed;

	struct event *sigterm, *sigint, *sighup, *sigusr1;
	struct event *stop_ev, *sweep_ev;
};

static const struct config *
cur_config(const struct daemon *d)
{
	return d->cur->c;
}

static void
on_cycle_done(void *arg, bool ok)
{
	struct daemon *d = arg;

	if (!ok)
		d->once_failed = true;
	if (d->once_pending > 0 && --d->once_pending == 0)
		event_base_loopbreak(d->base);
}

static void on_machine_idle(void *arg);

/* --- entries and their machines ----------------------------------------- */

static const char *
entry_name(const struct entry *e)
{
	return e->dc != NULL ? e->dc->name : e->gc->name;
}

static const char *
entry_kind(const struct entry *e)
{
	return e->dc != NULL ? "device" : "group";
}

static bool
entry_idle(const struct entry *e)
{
	return e->m == NULL || machine_idle(e->m);
}

static struct entry *
entry_new(struct cfg_gen *gen, const struct device_cfg *dc,
          const struct group_cfg *gc)
{
	struct entry *e = xcalloc(1, sizeof(*e));

	e->gen = gen;
	e->dc = dc;
	e->gc = gc;
	gen->users++;
	return e;
}

static void
gen_unref(struct daemon *d, struct cfg_gen *gen)
{
	if (--gen->users > 0 || gen == d->cur)
		return;
	config_free(gen->c);
	free(gen);
}

static void
entry_free(struct daemon *d, struct entry *e)
{
	machine_free(e->m);
	gen_unref(d, e->gen);
	free(e);
}

/* Make and start an entry's machine; -1 with err when it cannot. */
static int
entry_start(struct daemon *d, struct entry *e, char *err, size_t errcap)
{
	const char *key_path =
	    e->dc != NULL ? e->dc->key_path : e->gc->key_path;
	EVP_PKEY *key;
	char kerr[400];

	if ((key = keys_load(key_path, kerr, sizeof(kerr))) == NULL) {
		snprintf(err, errcap, "key: %.400s", kerr);
		return -1;
	}
	e->m = e->dc != NULL
	           ? machine_new_device(&d->env, e->dc, key, err, errcap)
	           : machine_new_group(&d->env, e->gc, key, err, errcap);
	if (e->m == NULL)
		return -1;
	machine_start(e->m);
	return 0;
}

/* The transports of an entry's boards. */
static size_t
entry_transports(const struct entry *e, const struct transport_cfg **t,
                 size_t cap)
{
	size_t i, n = 0;

	if (e->dc != NULL)
		t[n++] = &e->dc->transport;
	else
		for (i = 0; i < e->gc->nmembers && n < cap; i++)
			t[n++] = &e->gc->members[i].transport;
	return n;
}

static bool
entries_share_a_link(const struct entry *a, const struct entry *b)
{
	const struct transport_cfg *ta[JOURNAL_MAX_MEMBERS + 1],
	    *tb[JOURNAL_MAX_MEMBERS + 1];
	size_t na, nb, i, k;
	bool shared = false;
	char *ka, *kb;

	na = entry_transports(a, ta, JOURNAL_MAX_MEMBERS + 1);
	nb = entry_transports(b, tb, JOURNAL_MAX_MEMBERS + 1);
	for (i = 0; i < na && !shared; i++) {
		ka = link_key(ta[i]);
		for (k = 0; k < nb && !shared; k++) {
			kb = link_key(tb[k]);
			shared = strcmp(ka, kb) == 0;
			free(kb);
		}
		free(ka);
	}
	return shared;
}

/* An entry made by a reload waits while a retiring one holds its link. */
static bool
link_still_held(struct daemon *d, const struct entry *w)
{
	struct entry *e;

	TAILQ_FOREACH(e, &d->entries, link)
	if (e->retiring && entries_share_a_link(e, w))
		return true;
	return false;
}

/*
 * From the loop, never from inside a machine's callback: free the retiring
 * machines that went idle, then start the waiting ones whose links are
 * free now.
 */
static void
on_sweep(evutil_socket_t fd, short ev, void *arg)
{
	struct daemon *d = arg;
	struct entry *e, *next;
	char err[512];

	(void)fd;
	(void)ev;
	for (e = TAILQ_FIRST(&d->entries); e != NULL; e = next) {
		next = TAILQ_NEXT(e, link);
		if (!e->retiring || !entry_idle(e))
			continue;
		log_info("Stopped", "%s=%s", entry_kind(e),
		         log_q(entry_name(e)));
		TAILQ_REMOVE(&d->entries, e, link);
		entry_free(d, e);
	}
	if (d->stopping)
		return;
	for (e = TAILQ_FIRST(&d->waiting); e != NULL; e = next) {
		next = TAILQ_NEXT(e, link);
		if (link_still_held(d, e))
			continue;
		TAILQ_REMOVE(&d->waiting, e, link);
		if (entry_start(d, e, err, sizeof(err)) == -1) {
			log_errx("Cannot start", "%s=%s error=%s",
			         entry_kind(e), log_q(entry_name(e)),
			         log_q(err));
			entry_free(d, e);
			continue;
		}
		log_info("Started", "%s=%s", entry_kind(e),
		         log_q(entry_name(e)));
		TAILQ_INSERT_TAIL(&d->entries, e, link);
	}
}

/* A machine went idle: maybe a sweep is due, or the loop can end. */
static void
on_machine_idle(void *arg)
{
	struct daemon *d = arg;
	struct entry *e;
	bool sweep = !TAILQ_EMPTY(&d->waiting);

	TAILQ_FOREACH(e, &d->entries, link)
	if (e->retiring)
		sweep = true;
	if (sweep)
		event_active(d->sweep_ev, EV_TIMEOUT, 0);
	if (!d->stopping)
		return;
	TAILQ_FOREACH(e, &d->entries, link)
	if (!entry_idle(e))
		return;
	event_base_loopbreak(d->base);
}

/* --- status -------------------------------------------------------------- */

static void
collect(struct metrics_snapshot *s, void *arg)
{
	struct daemon *d = arg;
	struct entry *e;

	TAILQ_FOREACH(e, &d->entries, link)
	if (e->m != NULL)
		machine_report(e->m, s);
}

static void
on_sigusr1(evutil_socket_t sig, short ev, void *arg)
{
	struct metrics_snapshot s;

	(void)sig;
	(void)ev;
	memset(&s, 0, sizeof(s));
	collect(&s, arg);
	metrics_log_status(&s);
	metrics_snapshot_clear(&s);
}

/* --- reload -------------------------------------------------------------- */

/* What the fleet shares of the server; a reload changes it at once. */
static void
set_server_limits(struct rdfm_client *rc, const struct config *c)
{
	rdfm_client_set_limits(rc, (unsigned int)c->server_connections,
	                       (unsigned int)c->concurrent_authentications,
	                       (unsigned int)c->concurrent_downloads);
}

/* The entry of the same kind and name in a config, or NULL. */
static const void *
find_entry(const struct config *c, const struct entry *e)
{
	size_t i;

	if (e->dc != NULL) {
		for (i = 0; i < c->ndevices; i++)
			if (strcmp(c->devices[i].name, e->dc->name) == 0)
				return &c->devices[i];
	} else
		for (i = 0; i < c->ngroups; i++)
			if (strcmp(c->groups[i].name, e->gc->name) == 0)
				return &c->groups[i];
	return NULL;
}

/* Whether e carries on unchanged under nc; marks it kept there. */
static bool
entry_kept(const struct entry *e, const struct config *nc, bool *kept_dev,
           bool *kept_grp)
{
	const void *ne = find_entry(nc, e);

	if (ne == NULL)
		return false;
	if (e->dc != NULL && device_cfg_equal(e->dc, ne)) {
		kept_dev[(const struct device_cfg *)ne - nc->devices] = true;
		return true;
	}
	if (e->gc != NULL && group_cfg_equal(e->gc, ne)) {
		kept_grp[(const struct group_cfg *)ne - nc->groups] = true;
		return true;
	}
	return false;
}

static void
reload(struct daemon *d)
{
	struct cfg_gen *gen, *old = d->cur;
	struct config *nc;
	struct entry *e;
	bool *kept_dev, *kept_grp, server_changed;
	size_t i, nkept = 0, nretired = 0, nnew = 0;
	char err[1024];

	if (d->once || d->stopping) {
		log_warnx("Reload ignored", "reason=%s",
		          d->once ? "--once" : "stopping");
		return;
	}
	notify_reloading();
	log_info("Reloading the configuration", "file=%s", log_q(old->c->path));
	if ((nc = d->reload(old->c->path, err, sizeof(err))) == NULL) {
		log_errx("Reload refused; the running configuration stays",
		         "error=%s", log_q(err));
		notify_ready("Reload refused; running the old configuration");
		return;
	}
	config_keep_restart_only(old->c, nc);
	gen = xcalloc(1, sizeof(*gen));
	gen->c = nc;
	server_changed = strcmp(old->c->server, nc->server) != 0;
	kept_dev = xcalloc(nc->ndevices + 1, sizeof(*kept_dev));
	kept_grp = xcalloc(nc->ngroups + 1, sizeof(*kept_grp));

	/* Waiting entries of an earlier reload: this config replaces them. */
	while ((e = TAILQ_FIRST(&d->waiting)) != NULL) {
		TAILQ_REMOVE(&d->waiting, e, link);
		entry_free(d, e);
	}
	TAILQ_FOREACH(e, &d->entries, link)
	{
		if (e->retiring)
			continue;
		if (!server_changed && entry_kept(e, nc, kept_dev, kept_grp)) {
			nkept++;
			continue;
		}
		e->retiring = true;
		nretired++;
		log_info(find_entry(nc, e) != NULL
		             ? "Changed in the configuration; restarting it "
		               "once idle"
		             : "Removed from the configuration; stopping it "
		               "once idle",
		         "%s=%s", entry_kind(e), log_q(entry_name(e)));
		machine_retire(e->m);
	}
	d->cur = gen;
	set_server_limits(d->rdfm, nc);
	d->env.server = nc->server;
	d->env.retries = nc->retries;
	if (server_changed) {
		/* The channel follows the server; the old one is kept idle
		 * until exit, since retiring machines still hold its devices.
		 */
		d->old_mgmt = xreallocarray(d->old_mgmt, d->nold_mgmt + 1,
		                            sizeof(*d->old_mgmt));
		d->old_mgmt[d->nold_mgmt++] = d->mgmt;
		d->mgmt = mgmt_new(d->base, nc, NULL);
		d->env.mgmt = d->mgmt;
	}
	/* (TAILQ_INSERT_TAIL evaluates its element more than once.) */
	for (i = 0; i < nc->ndevices + nc->ngroups; i++) {
		if (i < nc->ndevices ? kept_dev[i] : kept_grp[i - nc->ndevices])
			continue;
		e = i < nc->ndevices
		        ? entry_new(gen, &nc->devices[i], NULL)
		        : entry_new(gen, NULL, &nc->groups[i - nc->ndevices]);
		TAILQ_INSERT_TAIL(&d->waiting, e, link);
		nnew++;
	}
	free(kept_dev);
	free(kept_grp);
	/* The old config goes once no machine borrows from it. */
	old->users++;
	gen_unref(d, old);
	log_info("Configuration reloaded",
	         "unchanged=%zu stopping=%zu starting=%zu", nkept, nretired,
	         nnew);
	notify_ready("Updating %zu device%s and %zu group%s", nc->ndevices,
	             nc->ndevices == 1 ? "" : "s", nc->ngroups,
	             nc->ngroups == 1 ? "" : "s");
	event_active(d->sweep_ev, EV_TIMEOUT, 0);
}

static void
on_sighup(evutil_socket_t sig, short ev, void *arg)
{
	(void)sig;
	(void)ev;
	reload(arg);
}

/* --- stopping ------------------------------------------------------------ */

static void
on_stop_deadline(evutil_socket_t fd, short ev, void *arg)
{
	struct daemon *d = arg;

	(void)fd;
	(void)ev;
	log_warnx("Not everything stopped in time; exiting anyway",
	          "limit_ms=%d", DAEMON_STOP_MS);
	event_base_loopbreak(d->base);
}

static void
on_signal(evutil_socket_t sig, short ev, void *arg)
{
	struct daemon *d = arg;
	struct timeval tv = {DAEMON_STOP_MS / 1000,
	                     (DAEMON_STOP_MS % 1000) * 1000};
	struct entry *e;

	(void)ev;
	if (d->stopping) {
		log_warnx("Second signal: exiting now", "signal=%d", (int)sig);
		event_base_loopbreak(d->base);
		return;
	}
	log_info("Stopping", "signal=%s", sig == SIGTERM ? "TERM" : "INT");
	notify_stopping();
	d->stopping = true;
	d->once_failed = true;
	evtimer_add(d->stop_ev, &tv);
	TAILQ_FOREACH(e, &d->entries, link)
	if (e->m != NULL)
		machine_stop(e->m);
	on_machine_idle(d);
}

/* --- set-up and teardown ------------------------------------------------- */

/*
 * state_dir, locked for this daemon alone, and the workers' empty chroot
 * directory.
 */
static int
make_dirs(struct daemon *d)
{
	const char *state_dir = cur_config(d)->state_dir;
	char *path, err[400];
	struct stat st;
	pid_t holder;

	if (mkdir(state_dir, 0700) == -1 && errno != EEXIST) {
		log_err("Cannot create the state directory", "path=%s",
		        log_q(state_dir));
		return -1;
	}
	xasprintf(&path, "%s/lock", state_dir);
	d->lock_fd = lock_file(path, &holder, err, sizeof(err));
	free(path);
	if (d->lock_fd == -1) {
		if (holder != 0)
			log_errx("Another daemon uses this state directory",
			         "state_dir=%s pid=%d", log_q(state_dir),
			         (int)holder);
		else
			log_errx("Cannot lock the state directory",
			         "state_dir=%s error=%s", log_q(state_dir),
			         log_q(err));
		return -1;
	}
	xasprintf(&d->chroot_dir, "%s/empty", state_dir);
	if (mkdir(d->chroot_dir, 0755) == -1 && errno != EEXIST) {
		log_err("Cannot create the workers' empty directory", "path=%s",
		        log_q(d->chroot_dir));
		return -1;
	}
	if (stat(d->chroot_dir, &st) == -1 || !S_ISDIR(st.st_mode)) {
		log_errx("Not a directory", "path=%s", log_q(d->chroot_dir));
		return -1;
	}
	return 0;
}

static int
add_signal(struct daemon *d, struct event **ev, int sig, event_callback_fn fn)
{
	if ((*ev = evsignal_new(d->base, sig, fn, d)) == NULL ||
	    evsignal_add(*ev, NULL) == -1)
		return -1;
	return 0;
}

/* Journal, spool, loop, RDFM client, verify key, timers. */
static int
setup_services(struct daemon *d)
{
	const struct config *c = cur_config(d);
	char err[512];

	if (journal_open(c->state_dir, err, sizeof(err)) == -1) {
		log_errx("Cannot open the journal", "error=%s", log_q(err));
		return -1;
	}
	if ((d->spool = spool_open(c->state_dir, (uint64_t)c->spool_max_bytes,
	                           err, sizeof(err))) == NULL) {
		log_errx("Cannot open the spool", "error=%s", log_q(err));
		return -1;
	}
	if ((d->base = event_base_new()) == NULL) {
		log_errx("Cannot create the event loop", NULL);
		return -1;
	}
	if ((d->rdfm = rdfm_client_new(d->base, c->ca_file, err,
	                               sizeof(err))) == NULL) {
		log_errx("Cannot start the RDFM client", "error=%s",
		         log_q(err));
		return -1;
	}
	rdfm_client_set_download_limits(
	    d->rdfm, (long long)c->download_min_rate, c->download_grace_ms);
	set_server_limits(d->rdfm, c);
	/* One cycle and out: no operator to wait for on the channel. */
	d->mgmt = d->once ? NULL : mgmt_new(d->base, c, NULL);
	if (c->artifact_verify_key != NULL &&
	    (d->verify_key = artifact_key_load(c->artifact_verify_key, err,
	                                       sizeof(err))) == NULL) {
		log_errx("Cannot load artifact_verify_key", "path=%s error=%s",
		         log_q(c->artifact_verify_key), log_q(err));
		return -1;
	}
	if ((d->sweep_ev = event_new(d->base, -1, 0, on_sweep, d)) == NULL ||
	    (d->stop_ev = evtimer_new(d->base, on_stop_deadline, d)) == NULL) {
		log_errx("Cannot create the daemon's timers", NULL);
		return -1;
	}
	return 0;
}

static int
setup_metrics(struct daemon *d)
{
	const struct config *c = cur_config(d);
	char err[512];

	if (c->metrics == NULL)
		return 0;
	if ((d->metrics = metrics_start(d->base, c->metrics, collect, d, err,
	                                sizeof(err))) == NULL) {
		log_errx("Cannot serve metrics", "error=%s", log_q(err));
		return -1;
	}
	log_info("Serving /metrics and /status", "listen=%s port=%d",
	         log_q(c->metrics), metrics_port(d->metrics));
	return 0;
}

/* The workers, their links, and what every machine shares. */
static void
setup_env(struct daemon *d)
{
	const struct config *c = cur_config(d);
	struct links_opts lo;

	d->ws = workers_new(d->base);
	memset(&lo, 0, sizeof(lo));
	lo.user = c->user;
	lo.chroot_dir = d->chroot_dir;
	lo.retries = LINK_RETRIES;
	lo.boards_per_worker = (unsigned int)c->boards_per_worker;
	d->links = links_new(d->ws, &lo);
	d->env.base = d->base;
	d->env.rdfm = d->rdfm;
	d->env.spool = d->spool;
	d->env.verify_key = d->verify_key;
	d->env.links = d->links;
	d->env.mgmt = d->mgmt;
	d->env.server = c->server;
	d->env.state_dir = c->state_dir;
	d->env.retries = c->retries;
	d->env.once = d->once;
	d->env.idle = on_machine_idle;
	d->env.cycle_done = on_cycle_done;
	d->env.arg = d;
}

static int
setup(struct daemon *d)
{
	const struct config *c = cur_config(d);
	struct entry *e;
	char err[512];
	size_t i;

	if (make_dirs(d) == -1 || setup_services(d) == -1 ||
	    setup_metrics(d) == -1)
		return -1;
	setup_env(d);
	/* Devices first, then groups, each with its link(s). */
	for (i = 0; i < c->ndevices + c->ngroups; i++) {
		e = i < c->ndevices
		        ? entry_new(d->cur, &c->devices[i], NULL)
		        : entry_new(d->cur, NULL, &c->groups[i - c->ndevices]);
		TAILQ_INSERT_TAIL(&d->entries, e, link);
		if (entry_start(d, e, err, sizeof(err)) == -1) {
			log_errx("Cannot start", "%s=%s error=%s",
			         entry_kind(e), log_q(entry_name(e)),
			         log_q(err));
			return -1;
		}
	}
	if (add_signal(d, &d->sigterm, SIGTERM, on_signal) == -1 ||
	    add_signal(d, &d->sigint, SIGINT, on_signal) == -1 ||
	    add_signal(d, &d->sighup, SIGHUP, on_sighup) == -1 ||
	    add_signal(d, &d->sigusr1, SIGUSR1, on_sigusr1) == -1) {
		log_errx("Cannot set up signal handling", NULL);
		return -1;
	}
	return 0;
}

static void
free_event(struct event *ev)
{
	if (ev != NULL)
		event_free(ev);
}

static void
teardown(struct daemon *d)
{
	struct entry *e;

	notify_watchdog_stop();
	while ((e = TAILQ_FIRST(&d->waiting)) != NULL) {
		TAILQ_REMOVE(&d->waiting, e, link);
		entry_free(d, e);
	}
	while ((e = TAILQ_FIRST(&d->entries)) != NULL) {
		TAILQ_REMOVE(&d->entries, e, link);
		entry_free(d, e);
	}
	if (d->metrics != NULL)
		metrics_free(d->metrics);
	mgmt_free(d->mgmt);
	while (d->nold_mgmt > 0)
		mgmt_free(d->old_mgmt[--d->nold_mgmt]);
	free(d->old_mgmt);
	links_free(d->links);
	if (d->ws != NULL)
		workers_free(d->ws);
	EVP_PKEY_free(d->verify_key);
	if (d->rdfm != NULL)
		rdfm_client_free(d->rdfm);
	if (d->spool != NULL)
		spool_close(d->spool);
	journal_close();
	free_event(d->sigterm);
	free_event(d->sigint);
	free_event(d->sighup);
	free_event(d->sigusr1);
	free_event(d->stop_ev);
	free_event(d->sweep_ev);
	if (d->base != NULL)
		event_base_free(d->base);
	free(d->chroot_dir);
	if (d->lock_fd != -1)
		close(d->lock_fd);
	config_free(d->cur->c);
	free(d->cur);
}

int
daemon_run(struct config *c, bool once, daemon_reload_fn reload_fn)
{
	struct daemon d;
	const char *what;
	int rc = 0;

	memset(&d, 0, sizeof(d));
	d.lock_fd = -1;
	d.cur = xcalloc(1, sizeof(*d.cur));
	d.cur->c = c;
	d.once = once;
	d.reload = reload_fn;
	TAILQ_INIT(&d.entries);
	TAILQ_INIT(&d.waiting);
	/* A worker or server that goes away must not kill us; a file size
	 * limit is a failed write, retried, not the end of the daemon. */
	signal(SIGPIPE, SIG_IGN);
	signal(SIGXFSZ, SIG_IGN);
	if (setup(&d) == -1) {
		teardown(&d);
		return 1;
	}
	log_info("Daemon started", "devices=%zu groups=%zu once=%s",
	         c->ndevices, c->ngroups, once ? "true" : "false");
	notify_ready("Updating %zu device%s and %zu group%s", c->ndevices,
	             c->ndevices == 1 ? "" : "s", c->ngroups,
	             c->ngroups == 1 ? "" : "s");
	notify_watchdog_start(d.base);
	d.once_pending = c->ndevices + c->ngroups;
	if (!(once && d.once_pending == 0))
		event_base_dispatch(d.base);
	if (once)
		rc = d.once_failed ? 1 : 0;
	what = d.stopping ? "signal" : once ? "--once" : "loop ended";
	log_info("Daemon stopped", "exit=%d reason=%s", rc, what);
	teardown(&d);
	return rc;
}
