/*
 * notify-listen: stands in for systemd's notification socket in tests.
 * Binds a datagram socket at PATH (or "@name" in the abstract namespace)
 * and prints every line of every message as "<sender pid> <line>".
 *   usage: notify-listen PATH
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* sd_notify messages are short; anything longer is a bug worth seeing. */
#define MSG_MAX 4096

static volatile sig_atomic_t quit;

static void
on_signal(int sig)
{
	(void)sig;
	quit = 1;
}

static int
bind_socket(const char *path)
{
	struct sockaddr_un sun;
	socklen_t len;
	size_t n = strlen(path);
	int fd, one = 1;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (n == 0 || n >= sizeof(sun.sun_path)) {
		fprintf(stderr,
		        "notify-listen: socket path \"%s\" is empty "
		        "or longer than %zu bytes\n",
		        path, sizeof(sun.sun_path) - 1);
		return -1;
	}
	memcpy(sun.sun_path, path, n);
	if (path[0] == '@')
		sun.sun_path[0] = '\0';
	else
		unlink(path);
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
	                  (path[0] == '@' ? 0 : 1));
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) == -1 ||
	    bind(fd, (struct sockaddr *)&sun, len) == -1) {
		fprintf(stderr, "notify-listen: %s: %s\n", path,
		        strerror(errno));
		return -1;
	}
	return fd;
}

/* The sender's pid from SCM_CREDENTIALS, or 0 when none came. */
static pid_t
sender_pid(struct msghdr *mh)
{
	struct cmsghdr *c;
	struct ucred uc;

	for (c = CMSG_FIRSTHDR(mh); c != NULL; c = CMSG_NXTHDR(mh, c))
		if (c->cmsg_level == SOL_SOCKET &&
		    c->cmsg_type == SCM_CREDENTIALS &&
		    c->cmsg_len == CMSG_LEN(sizeof(uc))) {
			memcpy(&uc, CMSG_DATA(c), sizeof(uc));
			return uc.pid;
		}
	return 0;
}

int
main(int argc, char **argv)
{
	char buf[MSG_MAX + 1], *line, *save;
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(struct ucred))];
	} cbuf;
	struct sigaction sa;
	struct iovec iov;
	struct msghdr mh;
	ssize_t n;
	pid_t pid;
	int fd;

	if (argc != 2) {
		fprintf(stderr, "usage: notify-listen PATH\n");
		return 2;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	if ((fd = bind_socket(argv[1])) == -1)
		return 1;
	while (!quit) {
		memset(&mh, 0, sizeof(mh));
		iov.iov_base = buf;
		iov.iov_len = MSG_MAX;
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = cbuf.buf;
		mh.msg_controllen = sizeof(cbuf.buf);
		if ((n = recvmsg(fd, &mh, 0)) == -1) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "notify-listen: recvmsg: %s\n",
			        strerror(errno));
			return 1;
		}
		if (mh.msg_flags & MSG_TRUNC)
			fprintf(stderr,
			        "notify-listen: message longer than "
			        "%d bytes cut\n",
			        MSG_MAX);
		buf[n] = '\0';
		pid = sender_pid(&mh);
		for (line = strtok_r(buf, "\n", &save); line != NULL;
		     line = strtok_r(NULL, "\n", &save))
			printf("%ld %s\n", (long)pid, line);
		fflush(stdout);
	}
	if (argv[1][0] != '@')
		unlink(argv[1]);
	return 0;
}
