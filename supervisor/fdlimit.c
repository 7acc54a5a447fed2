/*
 * Open files (fdlimit.h): raise the soft limit to the hard one, and count
 * what a configured fleet needs against it.
 */
#include <sys/resource.h>

#include <inttypes.h>
#include <stdio.h>

#include "config.h"
#include "fdlimit.h"
#include "log.h"
#include "metrics.h"
#include "mgmt.h"

/* The kernel's ceiling for a limit of "unlimited". */
static uint64_t
nr_open(void)
{
	unsigned long long v = 0;
	FILE *f;

	if ((f = fopen("/proc/sys/fs/nr_open", "re")) != NULL) {
		if (fscanf(f, "%llu", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v > 0 ? (uint64_t)v : 1024 * 1024;
}

uint64_t
fd_limit_max(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return 1024;
	if (rl.rlim_max == RLIM_INFINITY)
		return nr_open();
	return (uint64_t)rl.rlim_max;
}

uint64_t
fd_limit_raise(void)
{
	struct rlimit rl;
	rlim_t soft;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1) {
		log_warn("Cannot read the open-file limit", NULL);
		return 1024;
	}
	if (rl.rlim_cur == rl.rlim_max)
		return (uint64_t)rl.rlim_cur;
	soft = rl.rlim_cur;
	rl.rlim_cur = rl.rlim_max;
	if (rl.rlim_max == RLIM_INFINITY)
		rl.rlim_cur = (rlim_t)nr_open();
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1) {
		log_warn("Cannot raise the open-file limit", "soft=%" PRIu64,
		         (uint64_t)soft);
		return (uint64_t)soft;
	}
	log_debug("Raised the open-file limit to the hard limit",
	          "from=%" PRIu64 " to=%" PRIu64, (uint64_t)soft,
	          (uint64_t)rl.rlim_cur);
	return (uint64_t)rl.rlim_cur;
}

/*
 * One board's link: serial links keep their tty open here; UDP boards
 * share workers (counted after).
 */
static void
count_transport(const struct transport_cfg *t, struct fd_need *n, size_t *udp)
{
	n->boards++;
	if (t->type == TRANSPORT_UDP) {
		(*udp)++;
		return;
	}
	n->workers++;
	if (t->type == TRANSPORT_SERIAL)
		n->serial++;
}

void
fd_need_count(const struct config *c, bool channel, struct fd_need *n)
{
	size_t i, j, udp = 0, per;

	*n = (struct fd_need){0};
	for (i = 0; i < c->ndevices; i++)
		count_transport(&c->devices[i].transport, n, &udp);
	for (i = 0; i < c->ngroups; i++)
		for (j = 0; j < c->groups[i].nmembers; j++)
			count_transport(&c->groups[i].members[j].transport, n,
			                &udp);
	/* Full workers, as a start fills them. */
	per = c->boards_per_worker > 0 ? (size_t)c->boards_per_worker : 1;
	n->workers += (udp + per - 1) / per;
	n->server = (size_t)c->server_connections * FD_PER_CONNECTION +
	            (size_t)c->concurrent_downloads;
	n->metrics = c->metrics != NULL ? METRICS_MAX_CONNS + 1 : 0;
	/* A WebSocket per device and group, its shells and file transfers. */
	n->mgmt = channel && c->management ? (size_t)mgmt_fds_per_device() *
	                                         (c->ndevices + c->ngroups)
	                                   : 0;
	n->fixed = FD_FIXED;
	n->total = n->workers + n->serial + n->server + n->metrics + n->mgmt +
	           n->fixed;
}

int
fd_need_check(const struct config *c, bool channel, uint64_t limit,
              struct config_report *r)
{
	struct fd_need n;

	fd_need_count(c, channel, &n);
	if (n.total <= limit)
		return 0;
	config_report_error(
	    r, c->name, NULL,
	    "%zu board%s %zu open files, more than the limit of %" PRIu64
	    " (%zu for worker sockets, %zu for serial devices, %zu for the "
	    "server's connections and downloads, %zu for metrics, %zu for the "
	    "management channel, %zu for the daemon itself): raise "
	    "LimitNOFILE= in the service unit or ulimit -n%s",
	    n.boards, n.boards == 1 ? " needs" : "s need", n.total, limit,
	    n.workers, n.serial, n.server, n.metrics, n.mgmt, n.fixed,
	    n.mgmt > 0 ? ", or set management to false" : "");
	return -1;
}
