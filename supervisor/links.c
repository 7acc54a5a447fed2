/*
 * The link pool and link locks (links.h).  A link is locked for as long as
 * a worker of ours uses it, so a second daemon or an `smp` command on the
 * same link stops with the holder's pid instead of interleaving SMP
 * requests with ours.  Every link's lock is a byte of one file, so the
 * daemon holds one descriptor for all of them.
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

/* A board's link, locked, and the worker that serves it. */
struct link {
	char *key;
	struct worker *w;
	uint32_t board_id;
};

/* A worker serving several UDP boards that share these timeouts. */
struct group {
	struct worker *w;
	uint32_t request_ms, erase_ms;
};

struct links {
	struct workers *ws;
	char *user;
	char *chroot_dir;
	unsigned int retries;
	unsigned int per_worker; /* UDP boards one worker serves */
	struct link *v;
	size_t n;
	struct group *g;
	size_t ng;
	unsigned int next_group;
	uint32_t next_board_id;
	int lock_fd; /* links.lock, every link's byte locked in it */
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

/*
 * Link locks are byte-range (POSIX record) locks in one file, links.lock
 * in the run directory: one byte per link, at an offset made from its key.
 * A thousand links then cost the daemon one descriptor instead of a
 * thousand, and F_GETLK names the holder's pid without a pid file.  POSIX
 * locks belong to the process: the file must be opened once per process
 * (closing any descriptor of it drops all of them), and they are not
 * inherited by the workers we fork.
 */
#define LINKS_LOCK_FILE "links.lock"

/* FNV-1a; the offset keeps clear of the sign bit of off_t. */
static off_t
link_offset(const char *key)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	const unsigned char *p;

	for (p = (const unsigned char *)key; *p != '\0'; p++) {
		h ^= *p;
		h *= 0x100000001b3ULL;
	}
	return (off_t)(h >> (64 - (sizeof(off_t) * 8 - 2)));
}

static int
open_links_lock(char *err, size_t errcap)
{
	char *dir, *path;
	int fd;

	if ((dir = link_lock_dir(err, errcap)) == NULL)
		return -1;
	xasprintf(&path, "%s/" LINKS_LOCK_FILE, dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd == -1)
		snprintf(err, errcap, "cannot open the lock %s: %s", path,
		         strerror(errno));
	free(path);
	free(dir);
	return fd;
}

/* Lock (F_WRLCK) or release (F_UNLCK) a link's byte in fd. */
static int
range_lock(int fd, const char *key, short type, pid_t *holder, char *err,
           size_t errcap)
{
	struct flock fl;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = type;
	fl.l_whence = SEEK_SET;
	fl.l_start = link_offset(key);
	fl.l_len = 1;
	*holder = 0;
	if (fcntl(fd, F_SETLK, &fl) == 0)
		return 0;
	if (errno != EACCES && errno != EAGAIN) {
		snprintf(err, errcap, "link %s: cannot lock: %s", key,
		         strerror(errno));
		return -1;
	}
	fl.l_type = F_WRLCK;
	if (fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK)
		*holder = fl.l_pid > 0 ? fl.l_pid : 0;
	if (*holder != 0)
		snprintf(err, errcap, "link %s is in use: held by pid %d", key,
		         (int)*holder);
	else
		snprintf(err, errcap,
		         "link %s is in use: held by another process", key);
	return -1;
}

int
link_lock(const char *key, pid_t *holder, char *err, size_t errcap)
{
	int fd;

	*holder = 0;
	if ((fd = open_links_lock(err, errcap)) == -1)
		return -1;
	if (range_lock(fd, key, F_WRLCK, holder, err, errcap) == -1) {
		close(fd);
		return -1;
	}
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
	lp->per_worker = o->boards_per_worker > 0 ? o->boards_per_worker : 1;
	lp->lock_fd = -1;
	return lp;
}

static void
link_drop(struct links *lp, size_t i)
{
	char err[300];
	pid_t holder;

	if (lp->lock_fd != -1 && range_lock(lp->lock_fd, lp->v[i].key, F_UNLCK,
	                                    &holder, err, sizeof(err)) == -1)
		log_warnx("Cannot release a link lock", "error=%s", log_q(err));
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
	if (lp->lock_fd != -1)
		close(lp->lock_fd);
	free(lp->v);
	free(lp->g);
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

/*
 * A worker for one more UDP board: a worker that has not started yet and
 * has room, serving boards with the same timeouts, or a new one.  Boards
 * taken in one pass of the loop (a start, a reload) share workers; a
 * worker is never given a board once it runs, since its sandbox keeps it
 * from opening links.
 */
static struct worker *
udp_worker(struct links *lp, const struct worker_link *l, char *err,
           size_t errcap)
{
	struct worker_link gl = *l;
	struct worker *w;
	char name[32];
	size_t i;

	for (i = 0; i < lp->ng; i++)
		if (lp->g[i].request_ms == l->request_timeout_ms &&
		    lp->g[i].erase_ms == l->erase_timeout_ms &&
		    worker_takes_boards(lp->g[i].w, lp->per_worker))
			return lp->g[i].w;
	gl.multi = true;
	gl.address = NULL;
	snprintf(name, sizeof(name), "udp#%u", ++lp->next_group);
	if ((w = worker_spawn(lp->ws, name, &gl, err, errcap)) == NULL)
		return NULL;
	lp->g = xreallocarray(lp->g, lp->ng + 1, sizeof(*lp->g));
	lp->g[lp->ng].w = w;
	lp->g[lp->ng].request_ms = l->request_timeout_ms;
	lp->g[lp->ng].erase_ms = l->erase_timeout_ms;
	lp->ng++;
	return w;
}

static void
group_forget(struct links *lp, const struct worker *w)
{
	size_t i;

	for (i = 0; i < lp->ng; i++)
		if (lp->g[i].w == w) {
			lp->g[i] = lp->g[--lp->ng];
			return;
		}
}

/* Whether w serves several boards (one of the pool's UDP groups). */
static bool
is_group(const struct links *lp, const struct worker *w)
{
	size_t i;

	for (i = 0; i < lp->ng; i++)
		if (lp->g[i].w == w)
			return true;
	return false;
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
	uint32_t id;

	if (find(lp, key) != -1) {
		/* Two boards on one link: the config check should have said. */
		snprintf(err, errcap,
		         "board %s: link %s is already used by another board",
		         board_name, key);
		free(key);
		return NULL;
	}
	if (lp->lock_fd == -1 &&
	    (lp->lock_fd = open_links_lock(why, sizeof(why))) == -1) {
		snprintf(err, errcap, "board %s: %s", board_name, why);
		free(key);
		return NULL;
	}
	if (range_lock(lp->lock_fd, key, F_WRLCK, &holder, why, sizeof(why)) ==
	    -1) {
		snprintf(err, errcap, "board %s: %s", board_name, why);
		free(key);
		return NULL;
	}
	fill_link(&l, t, to, lp);
	id = lp->next_board_id + 1;
	if (t->type == TRANSPORT_UDP && lp->per_worker > 1)
		w = udp_worker(lp, &l, err, errcap);
	else
		w = worker_spawn(lp->ws, key, &l, err, errcap);
	if (w != NULL && (t->type == TRANSPORT_BLE || is_group(lp, w)) &&
	    worker_add_board(w, id, t->peer_name,
	                     is_group(lp, w) ? t->address : NULL) == -1) {
		snprintf(err, errcap,
		         "board %s: its worker takes no more boards",
		         board_name);
		w = NULL;
	}
	if (w == NULL) {
		range_lock(lp->lock_fd, key, F_UNLCK, &holder, why,
		           sizeof(why));
		free(key);
		return NULL;
	}
	lp->v = xreallocarray(lp->v, lp->n + 1, sizeof(*lp->v));
	lp->v[lp->n].key = key;
	lp->v[lp->n].w = w;
	lp->v[lp->n].board_id = id;
	lp->n++;
	*board_id = lp->next_board_id = id;
	return w;
}

void
links_release(struct links *lp, struct worker *w, uint32_t board_id)
{
	size_t i;

	if (w == NULL)
		return;
	for (i = 0; i < lp->n; i++)
		if (lp->v[i].w == w && lp->v[i].board_id == board_id)
			break;
	if (i == lp->n)
		return;
	if (is_group(lp, w) && worker_remove_board(w, board_id) > 0) {
		log_debug("A board left its worker", "link=%s worker=%s",
		          log_q(lp->v[i].key), worker_name(w));
		link_drop(lp, i);
		return;
	}
	log_debug("Stopping the worker of a link no board uses", "link=%s",
	          log_q(lp->v[i].key));
	group_forget(lp, w);
	worker_stop(w);
	link_drop(lp, i);
}
