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
#include "group.h"
#include "journal.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "rdfm.h"
#include "spool.h"
#include "update.h"
#include "workers.h"
#include "xmalloc.h"

/* Retransmissions of one SMP request before the worker gives up on it. */
#define LINK_RETRIES 2

struct link {
	char *key; /* "serial:/dev/ttyACM0", "udp:host:port", "ble:hci0:name" */
	struct worker *w;
	size_t users; /* boards on it; the worker stops with the last */
};

/*
 * A loaded config.  State machines borrow their entries from the config
 * they were made from, so an old config outlives a reload until its last
 * machine is gone.
 */
struct cfg_gen {
	struct config *c;
	size_t users;
};

/* One device's or group's state machine. */
struct machine {
	TAILQ_ENTRY(machine) entry;
	struct cfg_gen *gen;
	const struct device_cfg *dc; /* exactly one of dc and gc */
	const struct group_cfg *gc;
	struct update_dev *u; /* NULL until started */
	struct group *g;
	EVP_PKEY *key; /* a device's (a group loads its own) */
	bool retiring; /* removed or changed by a reload */
};
TAILQ_HEAD(machine_list, machine);

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
	struct metrics *metrics;
	EVP_PKEY *verify_key;
	char *chroot_dir;

	struct link *links;
	size_t nlinks;
	uint32_t next_board_id;

	/* Started (some retiring), and made by a reload but not started. */
	struct machine_list machines, waiting;

	size_t once_pending;
	bool once_failed;

	struct event *sigterm, *sigint, *sighup, *sigusr1;
	struct event *stop_ev, *sweep_ev;
};

struct event_base *
daemon_base(struct daemon *d)
{
	return d->base;
}

const struct config *
daemon_config(struct daemon *d)
{
	return d->cur->c;
}

struct rdfm_client *
daemon_rdfm(struct daemon *d)
{
	return d->rdfm;
}

struct spool *
daemon_spool(struct daemon *d)
{
	return d->spool;
}

EVP_PKEY *
daemon_verify_key(struct daemon *d)
{
	return d->verify_key;
}

bool
daemon_once(const struct daemon *d)
{
	return d->once;
}

bool
daemon_stopping(const struct daemon *d)
{
	return d->stopping;
}

static char *
link_key(const struct transport_cfg *t)
{
	char *k;

	switch (t->type) {
	case TRANSPORT_SERIAL:
		xasprintf(&k, "serial:%s", t->device);
		break;
	case TRANSPORT_UDP:
		xasprintf(&k, "udp:%s", t->address);
		break;
	case TRANSPORT_BLE:
	default:
		/*
		 * One worker per BLE board, not per adapter: each board needs
		 * an ATT bearer of its own anyway, and the worker engine runs
		 * one board, so a board's worker restarts alone.
		 */
		xasprintf(&k, "ble:hci%d:%s%s%s", t->device_index, t->peer_name,
		          t->att_socket != NULL ? ":" : "",
		          t->att_socket != NULL ? t->att_socket : "");
		break;
	}
	return k;
}

struct worker *
daemon_worker_for(struct daemon *d, const char *board_name,
                  const struct transport_cfg *t, const struct timeouts_cfg *to,
                  uint32_t *board_id, char *err, size_t errcap)
{
	struct worker_link l;
	struct link *lk = NULL;
	struct worker *w;
	char *key = link_key(t);
	size_t i;

	for (i = 0; i < d->nlinks; i++)
		if (strcmp(d->links[i].key, key) == 0) {
			lk = &d->links[i];
			break;
		}
	if (lk != NULL) {
		/* Two boards on one link: the config check should have said. */
		snprintf(err, errcap,
		         "board %s: link %s is already used by another board",
		         board_name, key);
		free(key);
		return NULL;
	}
	if (lk == NULL) {
		memset(&l, 0, sizeof(l));
		switch (t->type) {
		case TRANSPORT_SERIAL:
			l.kind = WORKER_SERIAL;
			l.device = t->device;
			l.baud = (uint32_t)t->baud;
			l.mtu = (uint32_t)t->mtu;
			break;
		case TRANSPORT_UDP:
			l.kind = WORKER_UDP;
			l.address = t->address;
			break;
		case TRANSPORT_BLE:
			l.kind = WORKER_BLE;
			l.device_index = (uint32_t)t->device_index;
			l.att_socket = t->att_socket;
			break;
		}
		l.request_timeout_ms = (uint32_t)to->request_ms;
		l.erase_timeout_ms = (uint32_t)to->erase_ms;
		l.retries = LINK_RETRIES;
		l.user = daemon_config(d)->user;
		l.chroot_dir = d->chroot_dir;
		if ((w = worker_spawn(d->ws, key, &l, err, errcap)) == NULL) {
			free(key);
			return NULL;
		}
		d->links =
		    xreallocarray(d->links, d->nlinks + 1, sizeof(*d->links));
		lk = &d->links[d->nlinks++];
		lk->key = key;
		lk->w = w;
		lk->users = 0;
	} else
		free(key);
	lk->users++;
	*board_id = ++d->next_board_id;
	if (t->type == TRANSPORT_BLE)
		worker_add_board(lk->w, *board_id, t->peer_name);
	return lk->w;
}

void
daemon_worker_release(struct daemon *d, struct worker *w)
{
	size_t i;

	if (w == NULL || d->tearing_down)
		return;
	for (i = 0; i < d->nlinks; i++)
		if (d->links[i].w == w)
			break;
	if (i == d->nlinks || --d->links[i].users > 0)
		return;
	log_debug("Stopping the worker of a link no board uses", "link=%s",
	          log_q(d->links[i].key));
	worker_stop(w);
	free(d->links[i].key);
	d->links[i] = d->links[--d->nlinks];
}

char *
daemon_workdir(struct daemon *d, const char *prefix, const char *id, char *err,
               size_t errcap)
{
	const char *state_dir = daemon_config(d)->state_dir;
	char safe[128], *dir, *top;
	uint32_t h = 2166136261u; /* FNV-1a of the id as written */
	bool changed = false;
	size_t i, n = 0;

	/* The id is any bytes: keep a file-name-safe spelling of it... */
	for (i = 0; id[i] != '\0'; i++) {
		char ch = id[i];
		bool ok = (ch >= 'a' && ch <= 'z') ||
		          (ch >= 'A' && ch <= 'Z') ||
		          (ch >= '0' && ch <= '9') || ch == '-' || ch == '.';

		h = (h ^ (uint8_t)ch) * 16777619u;
		if (!ok || n >= 100)
			changed = true;
		if (n < 100)
			safe[n++] = ok ? ch : '_';
	}
	safe[n] = '\0';
	/* ... and tell apart ids that spell the same ("a/b" and "a_b"). */
	if (changed || n == 0 || strcmp(safe, ".") == 0 ||
	    strcmp(safe, "..") == 0)
		snprintf(safe + n, sizeof(safe) - n, "-%08x", (unsigned int)h);
	xasprintf(&top, "%s/work", state_dir);
	if (mkdir(top, 0700) == -1 && errno != EEXIST) {
		snprintf(err, errcap, "%s: %s", top, strerror(errno));
		free(top);
		return NULL;
	}
	xasprintf(&dir, "%s/%s%s", top, prefix, safe);
	free(top);
	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		snprintf(err, errcap, "%s: %s", dir, strerror(errno));
		free(dir);
		return NULL;
	}
	return dir;
}

void
daemon_cycle_done(struct daemon *d, bool ok)
{
	if (!ok)
		d->once_failed = true;
	if (d->once_pending > 0 && --d->once_pending == 0)
		event_base_loopbreak(d->base);
}

/* --- state machines ------------------------------------------------------ */

static const char *
machine_name(const struct machine *m)
{
	return m->dc != NULL ? m->dc->name : m->gc->name;
}

static const char *
machine_kind(const struct machine *m)
{
	return m->dc != NULL ? "device" : "group";
}

static bool
machine_idle(const struct machine *m)
{
	return m->u != NULL ? update_dev_idle(m->u) : group_idle(m->g);
}

static struct machine *
machine_new(struct cfg_gen *gen, const struct device_cfg *dc,
            const struct group_cfg *gc)
{
	struct machine *m = xcalloc(1, sizeof(*m));

	m->gen = gen;
	m->dc = dc;
	m->gc = gc;
	gen->users++;
	return m;
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
machine_free(struct daemon *d, struct machine *m)
{
	update_dev_free(m->u);
	group_free(m->g);
	EVP_PKEY_free(m->key);
	gen_unref(d, m->gen);
	free(m);
}

/* Make and start a machine's state machine; -1 with err when it cannot. */
static int
machine_start(struct daemon *d, struct machine *m, char *err, size_t errcap)
{
	char kerr[400];

	if (m->gc != NULL) {
		if ((m->g = group_new(d, m->gc, err, errcap)) == NULL)
			return -1;
		group_start(m->g);
		return 0;
	}
	if ((m->key = keys_load(m->dc->key_path, kerr, sizeof(kerr))) == NULL) {
		snprintf(err, errcap, "key: %.400s", kerr);
		return -1;
	}
	if ((m->u = update_dev_new(d, m->dc, m->key, err, errcap)) == NULL)
		return -1;
	update_dev_start(m->u);
	return 0;
}

/* The links a machine's boards use, as link_key() spells them. */
static size_t
machine_links(const struct machine *m, char **keys, size_t cap)
{
	size_t i, n = 0;

	if (m->dc != NULL)
		keys[n++] = link_key(&m->dc->transport);
	else
		for (i = 0; i < m->gc->nmembers && n < cap; i++)
			keys[n++] = link_key(&m->gc->members[i].transport);
	return n;
}

static bool
machines_share_a_link(const struct machine *a, const struct machine *b)
{
	char *ka[JOURNAL_MAX_MEMBERS + 1], *kb[JOURNAL_MAX_MEMBERS + 1];
	size_t na, nb, i, k;
	bool shared = false;

	na = machine_links(a, ka, JOURNAL_MAX_MEMBERS + 1);
	nb = machine_links(b, kb, JOURNAL_MAX_MEMBERS + 1);
	for (i = 0; i < na; i++)
		for (k = 0; k < nb; k++)
			if (strcmp(ka[i], kb[k]) == 0)
				shared = true;
	for (i = 0; i < na; i++)
		free(ka[i]);
	for (k = 0; k < nb; k++)
		free(kb[k]);
	return shared;
}

/* A machine made by a reload waits while a retiring one holds its link. */
static bool
link_still_held(struct daemon *d, const struct machine *w)
{
	struct machine *m;

	TAILQ_FOREACH(m, &d->machines, entry)
	if (m->retiring && machines_share_a_link(m, w))
		return true;
	return false;
}

/*
 * From the loop, never from inside a state machine's callback: free the
 * retiring machines that went idle, then start the waiting ones whose
 * links are free now.
 */
static void
on_sweep(evutil_socket_t fd, short ev, void *arg)
{
	struct daemon *d = arg;
	struct machine *m, *next;
	char err[512];

	(void)fd;
	(void)ev;
	for (m = TAILQ_FIRST(&d->machines); m != NULL; m = next) {
		next = TAILQ_NEXT(m, entry);
		if (!m->retiring || !machine_idle(m))
			continue;
		log_info("Stopped", "%s=%s", machine_kind(m),
		         log_q(machine_name(m)));
		TAILQ_REMOVE(&d->machines, m, entry);
		machine_free(d, m);
	}
	if (d->stopping)
		return;
	for (m = TAILQ_FIRST(&d->waiting); m != NULL; m = next) {
		next = TAILQ_NEXT(m, entry);
		if (link_still_held(d, m))
			continue;
		TAILQ_REMOVE(&d->waiting, m, entry);
		if (machine_start(d, m, err, sizeof(err)) == -1) {
			log_errx("Cannot start", "%s=%s error=%s",
			         machine_kind(m), log_q(machine_name(m)),
			         log_q(err));
			machine_free(d, m);
			continue;
		}
		log_info("Started", "%s=%s", machine_kind(m),
		         log_q(machine_name(m)));
		TAILQ_INSERT_TAIL(&d->machines, m, entry);
	}
}

void
daemon_check_idle(struct daemon *d)
{
	struct machine *m;
	bool sweep = !TAILQ_EMPTY(&d->waiting);

	TAILQ_FOREACH(m, &d->machines, entry)
	if (m->retiring)
		sweep = true;
	if (sweep)
		event_active(d->sweep_ev, EV_TIMEOUT, 0);
	if (!d->stopping)
		return;
	TAILQ_FOREACH(m, &d->machines, entry)
	if (!machine_idle(m))
		return;
	event_base_loopbreak(d->base);
}

/* --- status -------------------------------------------------------------- */

static void
collect(struct metrics_snapshot *s, void *arg)
{
	struct daemon *d = arg;
	struct machine *m;

	TAILQ_FOREACH(m, &d->machines, entry)
	{
		if (m->u != NULL)
			update_dev_report(m->u, s);
		else
			group_report(m->g, s);
	}
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

/* The entry of the same kind and name in a config, or NULL. */
static const void *
find_entry(const struct config *c, const struct machine *m)
{
	size_t i;

	if (m->dc != NULL) {
		for (i = 0; i < c->ndevices; i++)
			if (strcmp(c->devices[i].name, m->dc->name) == 0)
				return &c->devices[i];
	} else
		for (i = 0; i < c->ngroups; i++)
			if (strcmp(c->groups[i].name, m->gc->name) == 0)
				return &c->groups[i];
	return NULL;
}

static void
reload(struct daemon *d)
{
	struct cfg_gen *gen, *old = d->cur;
	struct config *nc;
	struct machine *m;
	const void *e;
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

	/* Waiting machines of an earlier reload: this config replaces them. */
	while ((m = TAILQ_FIRST(&d->waiting)) != NULL) {
		TAILQ_REMOVE(&d->waiting, m, entry);
		machine_free(d, m);
	}
	TAILQ_FOREACH(m, &d->machines, entry)
	{
		if (m->retiring)
			continue;
		e = find_entry(nc, m);
		if (e != NULL && !server_changed &&
		    (m->dc != NULL ? device_cfg_equal(m->dc, e)
		                   : group_cfg_equal(m->gc, e))) {
			if (m->dc != NULL)
				kept_dev[(const struct device_cfg *)e -
				         nc->devices] = true;
			else
				kept_grp[(const struct group_cfg *)e -
				         nc->groups] = true;
			nkept++;
			continue;
		}
		m->retiring = true;
		nretired++;
		log_info(e != NULL ? "Changed in the configuration; restarting "
		                     "it once idle"
		                   : "Removed from the configuration; stopping "
		                     "it once idle",
		         "%s=%s", machine_kind(m), log_q(machine_name(m)));
		if (m->u != NULL)
			update_dev_retire(m->u);
		else
			group_retire(m->g);
	}
	d->cur = gen;
	/* (TAILQ_INSERT_TAIL evaluates its element more than once.) */
	for (i = 0; i < nc->ndevices + nc->ngroups; i++) {
		if (i < nc->ndevices ? kept_dev[i] : kept_grp[i - nc->ndevices])
			continue;
		m = i < nc->ndevices
		        ? machine_new(gen, &nc->devices[i], NULL)
		        : machine_new(gen, NULL, &nc->groups[i - nc->ndevices]);
		TAILQ_INSERT_TAIL(&d->waiting, m, entry);
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
	notify_ready("Updating %zu devices and %zu groups", nc->ndevices,
	             nc->ngroups);
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
	struct machine *m;

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
	TAILQ_FOREACH(m, &d->machines, entry)
	{
		if (m->u != NULL)
			update_dev_stop(m->u);
		else
			group_stop(m->g);
	}
	daemon_check_idle(d);
}

/* --- set-up and teardown ------------------------------------------------- */

/* state_dir and the workers' empty chroot directory. */
static int
make_dirs(struct daemon *d)
{
	const char *state_dir = daemon_config(d)->state_dir;
	struct stat st;

	if (mkdir(state_dir, 0700) == -1 && errno != EEXIST) {
		log_err("Cannot create the state directory", "path=%s",
		        log_q(state_dir));
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

static int
setup(struct daemon *d)
{
	const struct config *c = daemon_config(d);
	struct machine *m;
	char err[512];
	size_t i;

	if (make_dirs(d) == -1)
		return -1;
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
	if (c->metrics != NULL) {
		if ((d->metrics = metrics_start(d->base, c->metrics, collect, d,
		                                err, sizeof(err))) == NULL) {
			log_errx("Cannot serve metrics", "error=%s",
			         log_q(err));
			return -1;
		}
		log_info("Serving /metrics and /status", "listen=%s port=%d",
		         log_q(c->metrics), metrics_port(d->metrics));
	}
	d->ws = workers_new(d->base);
	/* Devices first, then groups (group.c), each with its worker(s). */
	for (i = 0; i < c->ndevices + c->ngroups; i++) {
		m = i < c->ndevices ? machine_new(d->cur, &c->devices[i], NULL)
		                    : machine_new(d->cur, NULL,
		                                  &c->groups[i - c->ndevices]);
		TAILQ_INSERT_TAIL(&d->machines, m, entry);
		if (machine_start(d, m, err, sizeof(err)) == -1) {
			log_errx("Cannot start", "%s=%s error=%s",
			         machine_kind(m), log_q(machine_name(m)),
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
	struct machine *m;
	size_t i;

	d->tearing_down = true;
	notify_watchdog_stop();
	while ((m = TAILQ_FIRST(&d->waiting)) != NULL) {
		TAILQ_REMOVE(&d->waiting, m, entry);
		machine_free(d, m);
	}
	while ((m = TAILQ_FIRST(&d->machines)) != NULL) {
		TAILQ_REMOVE(&d->machines, m, entry);
		machine_free(d, m);
	}
	if (d->metrics != NULL)
		metrics_free(d->metrics);
	if (d->ws != NULL)
		workers_free(d->ws);
	for (i = 0; i < d->nlinks; i++)
		free(d->links[i].key);
	free(d->links);
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
	d.cur = xcalloc(1, sizeof(*d.cur));
	d.cur->c = c;
	d.once = once;
	d.reload = reload_fn;
	TAILQ_INIT(&d.machines);
	TAILQ_INIT(&d.waiting);
	/* A worker or server that goes away must not kill us. */
	signal(SIGPIPE, SIG_IGN);
	if (setup(&d) == -1) {
		teardown(&d);
		return 1;
	}
	log_info("Daemon started", "devices=%zu groups=%zu once=%s",
	         c->ndevices, c->ngroups, once ? "true" : "false");
	notify_ready("Updating %zu devices and %zu groups", c->ndevices,
	             c->ngroups);
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
