/*
 * sandbox_enter(): what a worker gives up once its link is open.  A
 * forbidden system call kills the worker (SECCOMP_RET_KILL_PROCESS) rather
 * than failing with EPERM: a worker that tries one is either compromised or
 * buggy, the supervisor restarts it, and the death is loud in the logs
 * instead of an error path nobody tested.
 */
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#ifndef SANDBOX_NULL
#include <bluetooth/bluetooth.h>
#include <bluetooth/hci.h>
#include <seccomp.h>
#include <sys/capability.h>
#endif

#include "log.h"
#include "sandbox.h"

/* chroot and user switch; only when root. */
static int
sandbox_drop_user(const struct sandbox_opts *o)
{
	struct passwd *pw;
	uid_t uid;
	gid_t gid;

	if (geteuid() != 0) {
		log_warnx("not started as root: chroot and user switch skipped",
		          NULL);
		return 0;
	}
	/* Look the user up while /etc/passwd is still reachable. */
	if ((pw = getpwnam(o->user)) == NULL) {
		log_errx("sandbox: unknown user", "user=%s", log_q(o->user));
		return -1;
	}
	uid = pw->pw_uid;
	gid = pw->pw_gid;
	if (mkdir(o->chroot_dir, 0755) == -1 && errno != EEXIST) {
		log_err("sandbox: cannot create the chroot directory", "dir=%s",
		        log_q(o->chroot_dir));
		return -1;
	}
	if (chroot(o->chroot_dir) == -1 || chdir("/") == -1) {
		log_err("sandbox: chroot failed", "dir=%s",
		        log_q(o->chroot_dir));
		return -1;
	}
#ifndef SANDBOX_NULL
	if ((o->flags & SANDBOX_KEEP_NET_CAPS) &&
	    prctl(PR_SET_KEEPCAPS, 1) == -1) {
		log_err("sandbox: cannot keep capabilities", NULL);
		return -1;
	}
#endif
	if (setgroups(1, &gid) == -1 || setresgid(gid, gid, gid) == -1 ||
	    setresuid(uid, uid, uid) == -1) {
		log_err("sandbox: cannot switch user", "user=%s",
		        log_q(o->user));
		return -1;
	}
	if (getuid() != uid || geteuid() != uid || getegid() != gid) {
		log_errx("sandbox: user switch did not stick", NULL);
		return -1;
	}
#ifndef SANDBOX_NULL
	if (o->flags & SANDBOX_KEEP_NET_CAPS) {
		cap_value_t keep[] = {CAP_NET_RAW, CAP_NET_ADMIN};
		cap_t caps = cap_init();

		if (caps == NULL ||
		    cap_set_flag(caps, CAP_PERMITTED, 2, keep, CAP_SET) ||
		    cap_set_flag(caps, CAP_EFFECTIVE, 2, keep, CAP_SET) ||
		    cap_set_proc(caps) == -1) {
			log_err("sandbox: cannot keep network capabilities",
			        NULL);
			cap_free(caps);
			return -1;
		}
		cap_free(caps);
	}
#endif
	return 0;
}

#ifdef SANDBOX_NULL

int
sandbox_enter(const struct sandbox_opts *o)
{
	if (sandbox_drop_user(o) == -1)
		return -1;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1) {
		log_err("sandbox: no_new_privs failed", NULL);
		return -1;
	}
	log_warnx("built without a system call filter", NULL);
	return 0;
}

#else

/* Always allowed: I/O on descriptors we hold, the loop, memory, exit. */
static const int sandbox_base[] = {
    SCMP_SYS(read),           SCMP_SYS(readv),
    SCMP_SYS(write),          SCMP_SYS(writev),
    SCMP_SYS(recvfrom),       SCMP_SYS(recvmsg),
    SCMP_SYS(sendto),         SCMP_SYS(sendmsg),
    SCMP_SYS(close),          SCMP_SYS(fcntl),
    SCMP_SYS(fstat),          SCMP_SYS(newfstatat),
    SCMP_SYS(lseek),          SCMP_SYS(epoll_wait),
    SCMP_SYS(epoll_pwait),    SCMP_SYS(epoll_ctl),
    SCMP_SYS(poll),           SCMP_SYS(ppoll),
    SCMP_SYS(select),         SCMP_SYS(pselect6),
    SCMP_SYS(clock_gettime),  SCMP_SYS(clock_nanosleep),
    SCMP_SYS(nanosleep),      SCMP_SYS(gettimeofday),
    SCMP_SYS(getpid),         SCMP_SYS(gettid),
    SCMP_SYS(getrandom),      SCMP_SYS(brk),
    SCMP_SYS(mmap),           SCMP_SYS(munmap),
    SCMP_SYS(mremap),         SCMP_SYS(madvise),
    SCMP_SYS(futex),          SCMP_SYS(rt_sigreturn),
    SCMP_SYS(rt_sigprocmask), SCMP_SYS(restart_syscall),
    SCMP_SYS(exit),           SCMP_SYS(exit_group),
};

/* BLE: reconnecting after the board resets needs a new socket. */
static const int sandbox_socket[] = {
    SCMP_SYS(socket),      SCMP_SYS(connect),    SCMP_SYS(bind),
    SCMP_SYS(setsockopt),  SCMP_SYS(getsockopt), SCMP_SYS(getsockname),
    SCMP_SYS(getpeername), SCMP_SYS(shutdown),
};

/*
 * The one place where sanitizer builds widen the list: ASan/UBSan read
 * /proc (read-only) and query the process for their reports.  The filter
 * stays on; only these are added.  LeakSanitizer's exit check cannot work
 * in here (it stops the world with a ptrace'd clone that lists
 * /proc/self/task, which the chroot hides), so it is turned off once the
 * sandbox is entered, and only then: unit tests keep their leak checks.
 */
#ifdef SANITIZER_BUILD
static int sandbox_entered;

int __lsan_is_turned_off(void);

int
__lsan_is_turned_off(void)
{
	return sandbox_entered;
}

static const int sandbox_sanitizer[] = {
    SCMP_SYS(readlink),
    SCMP_SYS(readlinkat),
    SCMP_SYS(getdents64),
    SCMP_SYS(sched_yield),
    SCMP_SYS(sched_getaffinity),
    SCMP_SYS(prctl),
    SCMP_SYS(sigaltstack),
    SCMP_SYS(rt_sigaction),
    SCMP_SYS(prlimit64),
    SCMP_SYS(getrlimit),
    SCMP_SYS(getppid),
    SCMP_SYS(kill),
    SCMP_SYS(mprotect),
    SCMP_SYS(uname),
    SCMP_SYS(pipe2),
};
#endif

static int
sandbox_allow(scmp_filter_ctx ctx, const int *list, size_t n)
{
	size_t i;
	int rc;

	for (i = 0; i < n; i++) {
		if (list[i] < 0)
			continue; /* not a system call on this architecture */
		if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, list[i], 0)) !=
		    0) {
			log_errx("sandbox: cannot add a rule",
			         "syscall=%d rc=%d", list[i], rc);
			return -1;
		}
	}
	return 0;
}

static int
sandbox_filter(unsigned int flags)
{
	static const unsigned long tty_ioctls[] = {TCGETS,  TCSETS, TCSETSW,
	                                           TCSETSF, TCFLSH, FIONREAD};
	scmp_filter_ctx ctx;
	size_t i;
	int rc = -1;

	if ((ctx = seccomp_init(SCMP_ACT_KILL_PROCESS)) == NULL) {
		log_errx("sandbox: seccomp_init failed", NULL);
		return -1;
	}
#define ALLOW(list) sandbox_allow(ctx, list, sizeof(list) / sizeof(list[0]))
	if (ALLOW(sandbox_base) == -1)
		goto out;
	/* abort() signals itself, and only itself. */
	if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
	                     SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid(), 0)) !=
	    0)
		goto out;
	/* glibc may grow the heap with mmap + mprotect; never executable. */
	if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
	                     SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0)) != 0)
		goto out;
	if ((flags & SANDBOX_ALLOW_SOCKET) && ALLOW(sandbox_socket) == -1)
		goto out;
	if (flags & SANDBOX_ALLOW_TTY) {
		for (i = 0; i < sizeof(tty_ioctls) / sizeof(tty_ioctls[0]); i++)
			if (seccomp_rule_add(
			        ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
			        SCMP_A1(SCMP_CMP_EQ, tty_ioctls[i], 0)) != 0)
				goto out;
	}
	/* hci_devinfo() and hci_devba(): what a BLE reconnect asks first. */
	if ((flags & SANDBOX_ALLOW_HCI) &&
	    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
	                     SCMP_A1(SCMP_CMP_EQ, HCIGETDEVINFO, 0)) != 0)
		goto out;
#ifdef SANITIZER_BUILD
	/* Read-only opens (of /proc) only: creating a file still kills. */
	if (ALLOW(sandbox_sanitizer) == -1 ||
	    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(openat), 1,
	                     SCMP_A2(SCMP_CMP_MASKED_EQ, O_ACCMODE | O_CREAT,
	                             O_RDONLY)) != 0)
		goto out;
#endif
#undef ALLOW
	if (seccomp_load(ctx) != 0) {
		log_errx("sandbox: cannot load the seccomp filter", NULL);
		goto out;
	}
	rc = 0;
out:
	if (rc == -1)
		log_errx("sandbox: filter not installed", NULL);
	seccomp_release(ctx);
	return rc;
}

int
sandbox_enter(const struct sandbox_opts *o)
{
	if (sandbox_drop_user(o) == -1)
		return -1;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1) {
		log_err("sandbox: no_new_privs failed", NULL);
		return -1;
	}
#ifdef SANITIZER_BUILD
	sandbox_entered = 1;
#endif
	return sandbox_filter(o->flags);
}

#endif
