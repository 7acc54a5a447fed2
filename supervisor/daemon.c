/*
 * The update daemon's event loop (daemon.h): state directory, journal,
 * spool, RDFM client and workers on one libevent base; a state machine per
 * device; SIGTERM/SIGINT wind everything down within DAEMON_STOP_MS.
 */
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
#include "rdfm.h"
#include "spool.h"
#include "update.h"
#include "workers.h"
#include "xmalloc.h"

/* Retransmissions of one SMP request before the worker gives up on it. */
#define LINK_RETRIES 2

struct link {
	char *key; /* "serial:/dev/ttyACM0", "udp:host:port", "ble:0:@sock" */
	struct worker *w;
};

struct daemon {
	struct config *cfg;
	bool once;
	bool stopping;
	struct event_base *base;
	struct rdfm_client *rdfm;
	struct spool *spool;
	struct workers *ws;
	EVP_PKEY *verify_key;
	char *chroot_dir;

	struct link *links;
	size_t nlinks;
	uint32_t next_board_id;

	size_t ndevs;
	struct update_dev **devs;
	EVP_PKEY **keys;

	size_t ngroups;
	struct group **groups;

	size_t once_pending;
	bool once_failed;

	struct event *sigterm, *sigint, *stop_ev;
};

struct event_base *
daemon_base(struct daemon *d)
{
	return d->base;
}

const struct config *
daemon_config(struct daemon *d)
{
	return d->cfg;
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
		xasprintf(&k, "ble:hci%d%s%s", t->device_index,
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
	struct worker *w = NULL;
	char *key = link_key(t);
	size_t i;

	for (i = 0; i < d->nlinks; i++)
		if (strcmp(d->links[i].key, key) == 0) {
			w = d->links[i].w;
			break;
		}
	if (w != NULL && t->type != TRANSPORT_BLE) {
		/* Two boards on one serial line or UDP target: a config bug. */
		snprintf(err, errcap,
		         "board %s: link %s is already used by another board",
		         board_name, key);
		free(key);
		return NULL;
	}
	if (w == NULL) {
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
		l.user = d->cfg->user;
		l.chroot_dir = d->chroot_dir;
		if ((w = worker_spawn(d->ws, key, &l, err, errcap)) == NULL) {
			free(key);
			return NULL;
		}
		d->links =
		    xreallocarray(d->links, d->nlinks + 1, sizeof(*d->links));
		d->links[d->nlinks].key = key;
		d->links[d->nlinks].w = w;
		d->nlinks++;
	} else
		free(key);
	*board_id = ++d->next_board_id;
	if (t->type == TRANSPORT_BLE)
		worker_add_board(w, *board_id, t->peer_name);
	return w;
}

void
daemon_cycle_done(struct daemon *d, bool ok)
{
	if (!ok)
		d->once_failed = true;
	if (d->once_pending > 0 && --d->once_pending == 0)
		event_base_loopbreak(d->base);
}

void
daemon_check_idle(struct daemon *d)
{
	size_t i;

	if (!d->stopping)
		return;
	for (i = 0; i < d->ndevs; i++)
		if (!update_dev_idle(d->devs[i]))
			return;
	for (i = 0; i < d->ngroups; i++)
		if (!group_idle(d->groups[i]))
			return;
	event_base_loopbreak(d->base);
}

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
	size_t i;

	(void)ev;
	if (d->stopping) {
		log_warnx("Second signal: exiting now", "signal=%d", (int)sig);
		event_base_loopbreak(d->base);
		return;
	}
	log_info("Stopping", "signal=%s", sig == SIGTERM ? "TERM" : "INT");
	d->stopping = true;
	d->once_failed = true;
	evtimer_add(d->stop_ev, &tv);
	for (i = 0; i < d->ndevs; i++)
		update_dev_stop(d->devs[i]);
	for (i = 0; i < d->ngroups; i++)
		group_stop(d->groups[i]);
	daemon_check_idle(d);
}

/* state_dir and the workers' empty chroot directory. */
static int
make_dirs(struct daemon *d)
{
	struct stat st;

	if (mkdir(d->cfg->state_dir, 0700) == -1 && errno != EEXIST) {
		log_err("Cannot create the state directory", "path=%s",
		        log_q(d->cfg->state_dir));
		return -1;
	}
	xasprintf(&d->chroot_dir, "%s/empty", d->cfg->state_dir);
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
setup(struct daemon *d)
{
	char err[512];
	size_t i;

	if (make_dirs(d) == -1)
		return -1;
	if (journal_open(d->cfg->state_dir, err, sizeof(err)) == -1) {
		log_errx("Cannot open the journal", "error=%s", log_q(err));
		return -1;
	}
	if ((d->spool = spool_open(d->cfg->state_dir,
	                           (uint64_t)d->cfg->spool_max_bytes, err,
	                           sizeof(err))) == NULL) {
		log_errx("Cannot open the spool", "error=%s", log_q(err));
		return -1;
	}
	if ((d->base = event_base_new()) == NULL) {
		log_errx("Cannot create the event loop", NULL);
		return -1;
	}
	if ((d->rdfm = rdfm_client_new(d->base, d->cfg->ca_file, err,
	                               sizeof(err))) == NULL) {
		log_errx("Cannot start the RDFM client", "error=%s",
		         log_q(err));
		return -1;
	}
	if (d->cfg->artifact_verify_key != NULL &&
	    (d->verify_key = artifact_key_load(d->cfg->artifact_verify_key, err,
	                                       sizeof(err))) == NULL) {
		log_errx("Cannot load artifact_verify_key", "path=%s error=%s",
		         log_q(d->cfg->artifact_verify_key), log_q(err));
		return -1;
	}
	d->ws = workers_new(d->base);
	d->devs = xcalloc(d->cfg->ndevices + 1, sizeof(*d->devs));
	d->keys = xcalloc(d->cfg->ndevices + 1, sizeof(*d->keys));
	for (i = 0; i < d->cfg->ndevices; i++) {
		const struct device_cfg *dc = &d->cfg->devices[i];

		if ((d->keys[i] = keys_load(dc->key_path, err, sizeof(err))) ==
		    NULL) {
			log_errx("Cannot load device key", "device=%s error=%s",
			         log_q(dc->name), log_q(err));
			return -1;
		}
		if ((d->devs[i] = update_dev_new(d, dc, d->keys[i], err,
		                                 sizeof(err))) == NULL) {
			log_errx("Cannot start the device's worker",
			         "device=%s error=%s", log_q(dc->name),
			         log_q(err));
			return -1;
		}
		d->ndevs++;
	}
	/* One state machine per group (group.c), like devices. */
	d->groups = xcalloc(d->cfg->ngroups + 1, sizeof(*d->groups));
	for (i = 0; i < d->cfg->ngroups; i++) {
		if ((d->groups[i] = group_new(d, &d->cfg->groups[i], err,
		                              sizeof(err))) == NULL) {
			log_errx("Cannot start the group", "group=%s error=%s",
			         log_q(d->cfg->groups[i].name), log_q(err));
			return -1;
		}
		d->ngroups++;
	}
	d->sigterm = evsignal_new(d->base, SIGTERM, on_signal, d);
	d->sigint = evsignal_new(d->base, SIGINT, on_signal, d);
	d->stop_ev = evtimer_new(d->base, on_stop_deadline, d);
	if (d->sigterm == NULL || d->sigint == NULL || d->stop_ev == NULL ||
	    evsignal_add(d->sigterm, NULL) == -1 ||
	    evsignal_add(d->sigint, NULL) == -1) {
		log_errx("Cannot set up signal handling", NULL);
		return -1;
	}
	return 0;
}

static void
teardown(struct daemon *d)
{
	size_t i;

	for (i = 0; i < d->ndevs; i++)
		update_dev_free(d->devs[i]);
	for (i = 0; i < d->ngroups; i++)
		group_free(d->groups[i]);
	free(d->groups);
	if (d->ws != NULL)
		workers_free(d->ws);
	for (i = 0; i < d->nlinks; i++)
		free(d->links[i].key);
	free(d->links);
	if (d->keys != NULL)
		for (i = 0; i < d->cfg->ndevices; i++)
			EVP_PKEY_free(d->keys[i]);
	free(d->keys);
	free(d->devs);
	EVP_PKEY_free(d->verify_key);
	if (d->rdfm != NULL)
		rdfm_client_free(d->rdfm);
	if (d->spool != NULL)
		spool_close(d->spool);
	journal_close();
	if (d->sigterm != NULL)
		event_free(d->sigterm);
	if (d->sigint != NULL)
		event_free(d->sigint);
	if (d->stop_ev != NULL)
		event_free(d->stop_ev);
	if (d->base != NULL)
		event_base_free(d->base);
	free(d->chroot_dir);
}

int
daemon_run(struct config *c, bool once)
{
	struct daemon d;
	size_t i;
	int rc = 0;

	memset(&d, 0, sizeof(d));
	d.cfg = c;
	d.once = once;
	/* A worker or server that goes away must not kill us. */
	signal(SIGPIPE, SIG_IGN);
	if (setup(&d) == -1) {
		teardown(&d);
		return 1;
	}
	log_info("Daemon started", "devices=%zu groups=%zu once=%s", d.ndevs,
	         c->ngroups, once ? "true" : "false");
	d.once_pending = d.ndevs + d.ngroups;
	for (i = 0; i < d.ndevs; i++)
		update_dev_start(d.devs[i]);
	for (i = 0; i < d.ngroups; i++)
		group_start(d.groups[i]);
	if (!(once && d.once_pending == 0))
		event_base_dispatch(d.base);
	if (once)
		rc = d.once_failed ? 1 : 0;
	log_info("Daemon stopped", "exit=%d", rc);
	teardown(&d);
	return rc;
}
