/*
 * Who holds a serial device: before the `smp` command waits for a tty it
 * cannot have, it says which process has it (from the kernel's lock table
 * and the processes' open descriptors, as far as this user can see them).
 */
#ifndef TTY_HOLDER_H
#define TTY_HOLDER_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Whether path can be taken the way the supervisor takes it (open without
 * becoming its controlling process, TIOCEXCL, flock): 0, or -1 with a
 * sentence in why: absent, not a terminal, or "in use by process 1234
 * (minicom)".  The device is closed again at once.
 */
int tty_probe(const char *path, char *why, size_t whycap);

/*
 * A process other than us holding path (a lock on it first, else an open
 * descriptor): its pid, and its name in comm.  -1 when none is visible.
 */
pid_t tty_holder(const char *path, char *comm, size_t commcap);

#endif
