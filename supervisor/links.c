/*
 * The link pool and link locks (links.h).  A link is locked for as long as
 * a worker of ours uses it, so a second daemon or an `smp` command on the
 * same link stops with the holder's pid instead of interleaving SMP
 * requests with ours.
 */
#include <sys/file.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "links.h"
#include "log.h"
#include "util.h"
#include "workers.h"
#include "xmalloc.h"

struct link {
	char *key;
	struct worker *w;
	int lock_fd;
};

struct links {
	struct workers *ws;
	char *user;
	char *chroot_dir;
	unsigned int retries;
	struct link *v;
	size_t n;
	uint32_t next_board_id;
};

char *
link_key_worker(const struct worker_link *l, const char *peer)
{
	char *k;

	char *real;

	switch (l->kind) {
	case WORKER_SERIAL:
		/* /dev/serial/by-id/... and /dev/ttyACM0 are one link. */
		real = realpath(l->device, NULL);
		xasprintf(&k, "serial:%s", real != NULL ? real : l->device);
		free(real);
		break;
	case WORKER_UDP:
		xasprintf(&k, "udp:%s", l->address);
		break;
	case WORKER_BLE:
	default:
		/*
		 * One worker per BLE board, not per adapter: each board needs
		 * an ATT bearer of its own anyway, and a board's worker then
		 * restarts alone.
		 */
		xasprintf(&k, "ble:hci%u:%s%s%s", l->device_index,
		          peer != NULL ? peer : "",
		          l->att_socket != NULL ? ":" : "",
		          l->att_socket != NULL ? l->att_socket : "");
		break;
	}
	return k;
}

static void fill_link(struct worker_link *l, const struct transport_cfg *t,
                      const struct timeouts_cfg *to, const struct links *lp);

char *
link_key(const struct transport_cfg *t)
{
	struct worker_link l;

	fill_link(&l, t, NULL, NULL);
	return link_key_worker(&l, t->peer_name);
}

static int
make_dir(const char *path, mode_t mode, char *err, size_t errcap)
{
	struct stat st;

	if (mkdir(path, mode) == -1 && errno != EEXIST) {
		snprintf(err, errcap, "cannot create %s: %s", path,
		         strerror(errno));
		return -1;
	}
	if (stat(path, &st) == -1 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errcap, "%s is not a directory", path);
		return -1;
	}
	return 0;
}

static char *
link_lock_dir(char *err, size_t errcap)
{
	const char *env = getenv("RDFM_MCUMGR_RUN_DIR");
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	char *dir;

	if (env != NULL && env[0] != '\0')
		dir = xstrdup(env);
	else if (geteuid() == 0)
		dir = xstrdup("/run/rdfm-mcumgr");
	else if (xdg != NULL && xdg[0] == '/')
		xasprintf(&dir, "%s/rdfm-mcumgr", xdg);
	else
		xasprintf(&dir, "/tmp/rdfm-mcumgr-%u", (unsigned int)getuid());
	if (make_dir(dir, 0755, err, errcap) == -1) {
		free(dir);
		return NULL;
	}
	return dir;
}

/* The pid a lock file names, or 0. */
static pid_t
lock_holder(int fd)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	long pid;
	char *end;

	if (n <= 0)
		return 0;
	buf[n] = '\0';
	pid = strtol(buf, &end, 10);
	if (end == buf || pid <= 0 || pid > 0x7fffffff)
		return 0;
	return (pid_t)pid;
}

int
lock_file(const char *path, pid_t *holder, char *err, size_t errcap)
{
	char pid[32];
	int fd, n;

	*holder = 0;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd == -1) {
		snprintf(err, errcap, "cannot open the lock %s: %s", path,
		         strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		int e = errno, i;

		/* The holder writes its pid right after it took the lock. */
		for (i = 0; i < 20 && (*holder = lock_holder(fd)) == 0; i++)
			usleep(10000);
		close(fd);
		if (e == EWOULDBLOCK) {
			if (*holder != 0)
				snprintf(err, errcap, "held by pid %d",
				         (int)*holder);
			else
				snprintf(err, errcap,
				         "held by another process");
		} else
			snprintf(err, errcap, "cannot lock %s: %s", path,
			         strerror(e));
		return -1;
	}
	n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) == -1 || pwrite(fd, pid, (size_t)n, 0) != n)
		log_warn("Cannot write the pid into a lock file", "path=%s",
		         log_q(path));
	return fd;
}

int
link_lock(const char *key, pid_t *holder, char *err, size_t errcap)
{
	char *dir, *name, *path, why[300];
	int fd;

	*holder = 0;
	if ((dir = link_lock_dir(err, errcap)) == NULL)
		return -1;
	name = name_escape("link-", key, ".lock");
	xasprintf(&path, "%s/%s", dir, name);
	fd = lock_file(path, holder, why, sizeof(why));
	if (fd == -1)
		snprintf(err, errcap, "link %s is in use: %s", key, why);
	free(path);
	free(name);
	free(dir);
	return fd;
}

struct links *
links_new(struct workers *ws, const struct links_opts *o)
{
	struct links *lp = xcalloc(1, sizeof(*lp));

	lp->ws = ws;
	lp->user = o->user != NULL ? xstrdup(o->user) : NULL;
	lp->chroot_dir = o->chroot_dir != NULL ? xstrdup(o->chroot_dir) : NULL;
	lp->retries = o->retries;
	return lp;
}

static void
link_drop(struct links *lp, size_t i)
{
	if (lp->v[i].lock_fd != -1)
		close(lp->v[i].lock_fd);
	free(lp->v[i].key);
	lp->v[i] = lp->v[--lp->n];
}

void
links_free(struct links *lp)
{
	if (lp == NULL)
		return;
	/* The workers go with workers_free(); only the locks are ours. */
	while (lp->n > 0)
		link_drop(lp, lp->n - 1);
	free(lp->v);
	free(lp->user);
	free(lp->chroot_dir);
	free(lp);
}

static ssize_t
find(const struct links *lp, const char *key)
{
	size_t i;

	for (i = 0; i < lp->n; i++)
		if (strcmp(lp->v[i].key, key) == 0)
			return (ssize_t)i;
	return -1;
}

static void
fill_link(struct worker_link *l, const struct transport_cfg *t,
          const struct timeouts_cfg *to, const struct links *lp)
{
	memset(l, 0, sizeof(*l));
	switch (t->type) {
	case TRANSPORT_SERIAL:
		l->kind = WORKER_SERIAL;
		l->device = t->device;
		l->baud = (uint32_t)t->baud;
		l->mtu = (uint32_t)t->mtu;
		break;
	case TRANSPORT_UDP:
		l->kind = WORKER_UDP;
		l->address = t->address;
		break;
	case TRANSPORT_BLE:
		l->kind = WORKER_BLE;
		l->device_index = (uint32_t)t->device_index;
		l->att_socket = t->att_socket;
		break;
	}
	if (to != NULL) {
		l->request_timeout_ms = (uint32_t)to->request_ms;
		l->erase_timeout_ms = (uint32_t)to->erase_ms;
	}
	if (lp != NULL) {
		l->retries = lp->retries;
		l->user = lp->user;
		l->chroot_dir = lp->chroot_dir;
	}
}

struct worker *
links_take(struct links *lp, const char *board_name,
           const struct transport_cfg *t, const struct timeouts_cfg *to,
           uint32_t *board_id, char *err, size_t errcap)
{
	struct worker_link l;
	struct worker *w;
	char *key = link_key(t), why[400];
	pid_t holder;
	int fd;

	if (find(lp, key) != -1) {
		/* Two boards on one link: the config check should have said. */
		snprintf(err, errcap,
		         "board %s: link %s is already used by another board",
		         board_name, key);
		free(key);
		return NULL;
	}
	if ((fd = link_lock(key, &holder, why, sizeof(why))) == -1) {
		snprintf(err, errcap, "board %s: %s", board_name, why);
		free(key);
		return NULL;
	}
	fill_link(&l, t, to, lp);
	if ((w = worker_spawn(lp->ws, key, &l, err, errcap)) == NULL) {
		close(fd);
		free(key);
		return NULL;
	}
	lp->v = xreallocarray(lp->v, lp->n + 1, sizeof(*lp->v));
	lp->v[lp->n].key = key;
	lp->v[lp->n].w = w;
	lp->v[lp->n].lock_fd = fd;
	lp->n++;
	*board_id = ++lp->next_board_id;
	if (t->type == TRANSPORT_BLE)
		worker_add_board(w, *board_id, t->peer_name);
	return w;
}

void
links_release(struct links *lp, struct worker *w)
{
	size_t i;

	if (w == NULL)
		return;
	for (i = 0; i < lp->n; i++)
		if (lp->v[i].w == w)
			break;
	if (i == lp->n)
		return;
	log_debug("Stopping the worker of a link no board uses", "link=%s",
	          log_q(lp->v[i].key));
	worker_stop(w);
	link_drop(lp, i);
}
