/*
 * Finding the holder of a tty (tty_holder.h): /proc/locks names the pid of
 * every flock, whoever owns it; /proc/PID/fd shows open descriptors of the
 * processes this user may inspect (all of them for root).
 */
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <ctype.h>
#include <signal.h>
#include <stdbool.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "tty_holder.h"

static void
proc_comm(pid_t pid, char *comm, size_t cap)
{
	char path[64];
	FILE *f;
	size_t n;

	snprintf(comm, cap, "?");
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return;
	if (fgets(comm, (int)cap, f) != NULL) {
		n = strlen(comm);
		if (n > 0 && comm[n - 1] == '\n')
			comm[n - 1] = '\0';
	}
	fclose(f);
}

/* A flock on the device's inode, from the kernel's table. */
static pid_t
lock_holder(const struct stat *st)
{
	char line[256];
	unsigned int maj, min;
	unsigned long long ino;
	pid_t pid = -1;
	int lpid;
	FILE *f;

	if ((f = fopen("/proc/locks", "r")) == NULL)
		return -1;
	/* "1: FLOCK  ADVISORY  WRITE 1234 00:05:678 0 EOF" */
	while (pid == -1 && fgets(line, sizeof(line), f) != NULL) {
		char kind[16];

		if (sscanf(line, "%*[^:]: %15s %*s %*s %d %x:%x:%llu", kind,
		           &lpid, &maj, &min, &ino) != 5)
			continue;
		if (strcmp(kind, "FLOCK") == 0 && lpid > 0 &&
		    lpid != getpid() && ino == (unsigned long long)st->st_ino &&
		    makedev(maj, min) == st->st_dev)
			pid = lpid;
	}
	fclose(f);
	return pid;
}

/* Does the descriptor hold a lock (its fdinfo lists one)? */
static bool
fd_locked(const char *pid, const char *fd)
{
	char path[600], line[256];
	bool locked = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%s/fdinfo/%s", pid, fd);
	if ((f = fopen(path, "r")) == NULL)
		return false;
	while (!locked && fgets(line, sizeof(line), f) != NULL)
		locked = strncmp(line, "lock:", 5) == 0;
	fclose(f);
	return locked;
}

/*
 * Another process with the device open: one whose descriptor holds a lock
 * first (a lock outlives the process that took it, in its children),
 * else the first one found.
 */
static pid_t
fd_holder(const struct stat *st)
{
	char dir[300], fdpath[600];
	struct dirent *p, *d;
	struct stat fst;
	DIR *proc, *fds;
	pid_t locked = -1, any = -1;

	if ((proc = opendir("/proc")) == NULL)
		return -1;
	while (locked == -1 && (p = readdir(proc)) != NULL) {
		if (!isdigit((unsigned char)p->d_name[0]) ||
		    atoi(p->d_name) == getpid())
			continue;
		snprintf(dir, sizeof(dir), "/proc/%s/fd", p->d_name);
		if ((fds = opendir(dir)) == NULL)
			continue;
		while ((d = readdir(fds)) != NULL) {
			snprintf(fdpath, sizeof(fdpath), "%s/%s", dir,
			         d->d_name);
			if (d->d_name[0] == '.' || stat(fdpath, &fst) != 0 ||
			    !S_ISCHR(fst.st_mode) || fst.st_rdev != st->st_rdev)
				continue;
			if (any == -1)
				any = atoi(p->d_name);
			if (fd_locked(p->d_name, d->d_name)) {
				locked = atoi(p->d_name);
				break;
			}
		}
		closedir(fds);
	}
	closedir(proc);
	return locked != -1 ? locked : any;
}

pid_t
tty_holder(const char *path, char *comm, size_t commcap)
{
	struct stat st;
	pid_t pid;

	if (stat(path, &st) == -1)
		return -1;
	/* The lock's owner, unless it has gone and left it to a child. */
	pid = lock_holder(&st);
	if (pid != -1 && kill(pid, 0) == -1 && errno == ESRCH)
		pid = -1;
	if (pid == -1 && S_ISCHR(st.st_mode))
		pid = fd_holder(&st);
	if (pid != -1)
		proc_comm(pid, comm, commcap);
	return pid;
}

static void
busy(const char *path, char *why, size_t whycap)
{
	char comm[64];
	pid_t pid;

	if ((pid = tty_holder(path, comm, sizeof(comm))) != -1)
		snprintf(why, whycap, "%s is in use by process %d (%s)", path,
		         (int)pid, comm);
	else
		snprintf(why, whycap,
		         "%s is in use by another process (not one this user "
		         "can see)",
		         path);
}

int
tty_probe(const char *path, char *why, size_t whycap)
{
	int fd, saved;

	fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd == -1) {
		saved = errno;
		if (saved == EBUSY) /* another process set TIOCEXCL */
			busy(path, why, whycap);
		else
			snprintf(why, whycap, "%s: %s", path, strerror(saved));
		return -1;
	}
	if (!isatty(fd)) {
		snprintf(why, whycap, "%s is not a terminal (a serial device)",
		         path);
		close(fd);
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		close(fd);
		busy(path, why, whycap);
		return -1;
	}
	close(fd); /* the lock goes with it */
	return 0;
}
