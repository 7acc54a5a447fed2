/*
 * rdfm-poll: drives rdfm.c and spool.c the way the supervisor will, for
 * tests: each --device authenticates, checks and downloads on one libevent
 * loop, retrying as the client says, and prints one line per result.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "supervisor/keys.h"
#include "log.h"
#include "supervisor/rdfm.h"
#include "supervisor/spool.h"
#include "xmalloc.h"

struct pdev {
	struct rdfm_dev *dev;
	EVP_PKEY *key;
	char *id;
	char *version;
	struct event *timer;
	struct spool_entry *entry;
	char *uri;
	bool downloading;
	bool done, ok;
	bool said_unapproved;
	bool reported;
	int attempts;
	int checks_left;
};

static struct event_base *base;
static struct spool *spool;
static struct pdev *devs;
static int ndevs;
static int max_attempts = 20;
static int interval_ms = 200;
static int checks = 1;
static bool no_download;
static const char *report_version; /* --report-version: after success */

static void usage(void) __attribute__((noreturn));

static void
usage(void)
{
	fprintf(
	    stderr,
	    "usage: rdfm-poll --server URL --state-dir DIR "
	    "--device ID:TYPE:KEY[:VERSION]...\n"
	    "       [--ca FILE] [--spool-max BYTES] [--backoff MIN:MAX] "
	    "[--interval-ms N]\n"
	    "       [--attempts N] [--checks N] [--no-download] [--release] "
	    "[--timeout S]\n"
	    "       [--min-rate BYTES_PER_S] [--grace-ms N] "
	    "[--report-version V]\n");
	exit(2);
}

static void out(struct pdev *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
out(struct pdev *p, const char *fmt, ...)
{
	va_list ap;

	printf("device=%s ", p->id);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static void
maybe_exit(void)
{
	int i;

	for (i = 0; i < ndevs; i++)
		if (!devs[i].done)
			return;
	event_base_loopbreak(base);
}

static void
on_report(struct rdfm_dev *dev, const struct rdfm_result *res, void *arg)
{
	struct pdev *p = arg;

	(void)dev;
	if (res->status == RDFM_AUTHENTICATED)
		out(p, "result=reported version=%s", report_version);
	else
		out(p, "result=error phase=report status=%ld error=%s",
		    res->http_status, log_q(res->error));
	p->done = true;
	p->ok = res->status == RDFM_AUTHENTICATED;
	maybe_exit();
}

static void
finish(struct pdev *p, bool ok)
{
	/* As the daemon does after an update: the server learns at once. */
	if (ok && report_version != NULL && !p->reported) {
		p->reported = true;
		if (rdfm_report_version(p->dev, report_version, on_report, p) ==
		    -1)
			fatalx("device busy", NULL);
		return;
	}
	p->done = true;
	p->ok = ok;
	maybe_exit();
}

static void
later(struct pdev *p, unsigned int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	evtimer_add(p->timer, &tv);
}

static bool
retry(struct pdev *p, unsigned int ms)
{
	if (++p->attempts > max_attempts) {
		out(p, "result=gave-up attempts=%d", p->attempts - 1);
		finish(p, false);
		return false;
	}
	later(p, ms);
	return true;
}

static void on_download(struct rdfm_dev *, const struct rdfm_result *, void *);

static void
start_download(struct pdev *p)
{
	if (rdfm_download(p->dev, p->entry, p->uri, on_download, p) == -1)
		fatalx("device busy", NULL);
}

static void
on_download(struct rdfm_dev *dev, const struct rdfm_result *res, void *arg)
{
	struct pdev *p = arg;

	(void)dev;
	switch (res->status) {
	case RDFM_DOWNLOADED:
		out(p, "result=downloaded sha256=%s size=%" PRIu64 " path=%s",
		    spool_sha256(res->entry), spool_size(res->entry),
		    spool_path(res->entry));
		finish(p, true);
		break;
	case RDFM_ERR_TRANSIENT:
		out(p,
		    "result=retry phase=download status=%ld retry_ms=%u "
		    "error=%s",
		    res->http_status, res->retry_ms, log_q(res->error));
		retry(p, res->retry_ms);
		break;
	case RDFM_ERR_VERIFY:
		out(p, "result=verify-failed error=%s", log_q(res->error));
		finish(p, false);
		break;
	default:
		out(p, "result=error phase=download status=%ld error=%s",
		    res->http_status, log_q(res->error));
		finish(p, false);
		break;
	}
}

static void
on_check(struct rdfm_dev *dev, const struct rdfm_result *res, void *arg)
{
	struct pdev *p = arg;
	char err[256];

	(void)dev;
	switch (res->status) {
	case RDFM_NO_UPDATE:
		out(p, "result=no-update");
		if (--p->checks_left > 0)
			later(p, (unsigned int)interval_ms);
		else
			finish(p, true);
		break;
	case RDFM_UPDATE:
		out(p, "result=offer id=%lld sha256=%s", res->offer->id,
		    res->offer->sha256);
		if (--p->checks_left > 0) {
			later(p, (unsigned int)interval_ms);
			break;
		}
		if (no_download) {
			finish(p, true);
			break;
		}
		if ((p->entry = spool_ref(spool, res->offer->sha256, err,
		                          sizeof(err))) == NULL) {
			out(p, "result=error phase=spool error=%s", log_q(err));
			finish(p, false);
			break;
		}
		p->uri = xstrdup(res->offer->uri);
		p->downloading = true;
		start_download(p);
		break;
	case RDFM_UNAPPROVED:
		if (!p->said_unapproved)
			out(p, "result=unapproved");
		p->said_unapproved = true;
		retry(p, (unsigned int)interval_ms);
		break;
	case RDFM_ERR_TRANSIENT:
		out(p,
		    "result=retry phase=check status=%ld retry_ms=%u "
		    "error=%s",
		    res->http_status, res->retry_ms, log_q(res->error));
		retry(p, res->retry_ms);
		break;
	default:
		out(p, "result=error phase=check status=%ld error=%s",
		    res->http_status, log_q(res->error));
		finish(p, false);
		break;
	}
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct pdev *p = arg;

	(void)fd;
	(void)what;
	if (p->downloading)
		start_download(p);
	else if (rdfm_check(p->dev, p->version, on_check, p) == -1)
		fatalx("device busy", NULL);
}

static void
on_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	printf("timeout\n");
	fflush(stdout);
	event_base_loopbreak(base);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"server", required_argument, NULL, 's'},
	    {"ca", required_argument, NULL, 'c'},
	    {"state-dir", required_argument, NULL, 'S'},
	    {"spool-max", required_argument, NULL, 'm'},
	    {"device", required_argument, NULL, 'd'},
	    {"backoff", required_argument, NULL, 'b'},
	    {"interval-ms", required_argument, NULL, 'i'},
	    {"attempts", required_argument, NULL, 'a'},
	    {"checks", required_argument, NULL, 'n'},
	    {"no-download", no_argument, NULL, 'N'},
	    {"release", no_argument, NULL, 'r'},
	    {"timeout", required_argument, NULL, 't'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"min-rate", required_argument, NULL, 'R'},
	    {"grace-ms", required_argument, NULL, 'G'},
	    {"report-version", required_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	const char *server = NULL, *ca = NULL, *state = NULL;
	unsigned int bmin = 100, bmax = 2000;
	unsigned long long spool_max = 0;
	struct rdfm_client *client;
	struct event *tmo;
	struct timeval tv;
	char **specs = NULL, err[512];
	long long min_rate = 0, grace_ms = -1;
	int ch, i, timeout_s = 120, verbose = 0, rc = 0;
	bool release = false;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 's':
			server = optarg;
			break;
		case 'c':
			ca = optarg;
			break;
		case 'S':
			state = optarg;
			break;
		case 'm':
			spool_max = strtoull(optarg, NULL, 10);
			break;
		case 'd':
			specs = xreallocarray(specs, (size_t)ndevs + 1,
			                      sizeof(*specs));
			specs[ndevs++] = optarg;
			break;
		case 'b':
			if (sscanf(optarg, "%u:%u", &bmin, &bmax) != 2)
				usage();
			break;
		case 'i':
			interval_ms = atoi(optarg);
			break;
		case 'a':
			max_attempts = atoi(optarg);
			break;
		case 'n':
			checks = atoi(optarg);
			break;
		case 'N':
			no_download = true;
			break;
		case 'r':
			release = true;
			break;
		case 't':
			timeout_s = atoi(optarg);
			break;
		case 'v':
			verbose = 1;
			break;
		case 'R':
			min_rate = atoll(optarg);
			break;
		case 'G':
			grace_ms = atoll(optarg);
			break;
		case 'V':
			report_version = optarg;
			break;
		default:
			usage();
		}
	}
	if (server == NULL || state == NULL || ndevs == 0 || optind != argc)
		usage();
	log_init(verbose, NULL);
	if ((base = event_base_new()) == NULL)
		fatalx("cannot create the event loop", NULL);
	if ((spool = spool_open(state, spool_max, err, sizeof(err))) == NULL)
		fatalx("cannot open the spool", "error=%s", log_q(err));
	if ((client = rdfm_client_new(base, ca, err, sizeof(err))) == NULL)
		fatalx("cannot create the client", "error=%s", log_q(err));
	if (min_rate > 0 || grace_ms >= 0)
		rdfm_client_set_download_limits(
		    client, min_rate > 0 ? min_rate : RDFM_DEFAULT_MIN_RATE,
		    grace_ms >= 0 ? grace_ms : RDFM_DEFAULT_GRACE_MS);
	devs = xcalloc((size_t)ndevs, sizeof(*devs));
	for (i = 0; i < ndevs; i++) {
		struct pdev *p = &devs[i];
		char *spec = xstrdup(specs[i]), *type, *keyp, *ver;
		bool gen;

		/* ID:TYPE:KEY[:VERSION] */
		if ((type = strchr(spec, ':')) == NULL ||
		    (keyp = strchr(type + 1, ':')) == NULL)
			usage();
		*type++ = '\0';
		*keyp++ = '\0';
		if ((ver = strchr(keyp, ':')) != NULL)
			*ver++ = '\0';
		p->id = spec;
		p->version = xstrdup(ver != NULL ? ver : "1.0.0");
		p->key = keys_load_or_generate(keyp, &gen, err, sizeof(err));
		if (p->key == NULL)
			fatalx("cannot load the key", "path=%s error=%s",
			       log_q(keyp), log_q(err));
		p->dev = rdfm_dev_new(client, server, p->id, type, p->key);
		rdfm_dev_set_backoff(p->dev, bmin, bmax);
		p->timer = evtimer_new(base, on_timer, p);
		p->checks_left = checks;
		later(p, 0);
	}
	tv.tv_sec = timeout_s;
	tv.tv_usec = 0;
	tmo = evtimer_new(base, on_timeout, NULL);
	evtimer_add(tmo, &tv);
	event_base_dispatch(base);

	for (i = 0; i < ndevs; i++) {
		struct pdev *p = &devs[i];

		if (!p->ok)
			rc = 1;
		rdfm_dev_free(p->dev);
		if (release)
			spool_unref(p->entry);
		event_free(p->timer);
		EVP_PKEY_free(p->key);
		free(p->id);
		free(p->version);
		free(p->uri);
	}
	printf("spool_usage=%" PRIu64 "\n", spool_usage(spool));
	rdfm_client_free(client);
	spool_close(spool);
	event_free(tmo);
	event_base_free(base);
	free(devs);
	free(specs);
	return rc;
}
