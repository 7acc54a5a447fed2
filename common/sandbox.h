/*
 * The worker sandbox, entered once after the link is open: chroot into an
 * empty directory and switch to an unprivileged user (when root),
 * no_new_privs, and a seccomp allow-list.  One call, two implementations:
 * seccomp (default) and null (-DSANDBOX_NULL, for platforms without it).
 */
#ifndef SANDBOX_H
#define SANDBOX_H

#define SANDBOX_ALLOW_SOCKET                                                   \
	0x1                   /* make and connect sockets (BLE reconnect)      \
	                       */
#define SANDBOX_ALLOW_TTY 0x2 /* termios ioctls (serial) */
#define SANDBOX_ALLOW_HCI 0x8 /* HCI device ioctls (BLE scanning) */
#define SANDBOX_KEEP_NET_CAPS                                                  \
	0x4 /* keep CAP_NET_RAW and CAP_NET_ADMIN (BLE HCI) */

struct sandbox_opts {
	const char *user;       /* switched to when root */
	const char *chroot_dir; /* an empty directory, created if missing */
	unsigned int flags;     /* SANDBOX_* */
};

/*
 * 0, or -1 after logging what failed.  Without root the chroot and user
 * steps are skipped with one warning.  Afterwards a forbidden system call
 * kills the process (SIGSYS).
 */
int sandbox_enter(const struct sandbox_opts *o);

#endif
