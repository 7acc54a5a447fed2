/*
 * ipc-drive: a tiny supervisor stand-in for testing a transport worker as a
 * real process.  It fork+execs the worker with the IPC socket on fd 3, does
 * the handshake, runs one operation and prints every message it gets back:
 *   ipc-drive [options] WORKER (--udp ADDR | --serial PATH | --ble-att @NAME
 *       --peer NAME) COMMAND
 * COMMAND: echo TEXT | params | image-list | image-test HASH |
 *   image-confirm [HASH] | reset | image-upload FILE | none |
 *   sleep MS | wait-up (until the link is reported up again)
 * Several commands run one after the other when separated by ";".
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/evp.h>

#include "ipc.h"
#include "log.h"
#include "xmalloc.h"

struct drive {
	struct event_base *base;
	struct ipc *ipc;
	pid_t pid;
	int kind; /* Ipc__LinkConfig__Kind */
	const char *target;
	const char *peer;
	uint32_t baud;
	uint32_t window;
	uint32_t timeout_ms;
	uint32_t retries;
	int smp_v2;
	int verbose;
	double hold;
	uint64_t abort_at;
	char **cmd; /* the current command */
	int ncmd;
	char **all; /* every command, ";"-separated */
	int nall;
	int pos;
	uint64_t req; /* request id of the current command */
	int waiting_up;
	struct event *sleep_ev;
	int status; /* exit code */
	int done;
	/* upload */
	uint8_t *img;
	size_t img_len;
	uint8_t sha[32];
	uint64_t next;
	unsigned int credit;
	int aborted;
	int nrewind;
	struct event *reopen_ev;
	int reopen_tries;
};

static void
usage(void)
{
	fprintf(
	    stderr,
	    "usage: ipc-drive [-v] [--chroot DIR] [--user USER] [--window N]\n"
	    "    [--timeout-ms N] [--retries N] [--baud N] [--v2] [--hold S]\n"
	    "    [--abort-at BYTES] WORKER (--udp ADDR | --serial PATH |\n"
	    "    --ble-att @NAME --peer NAME) COMMAND [ARGS]\n");
	exit(2);
}

static void
drive_send(struct drive *d, Ipc__Envelope *env, int fd)
{
	env->board_id = 1;
	if (ipc_send(d->ipc, env, fd) == -1) {
		fprintf(stderr, "ipc-drive: send failed\n");
		exit(1);
	}
}

static int
open_tty(const char *path)
{
	return open(path, O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
}

static void
send_link_fd(struct drive *d, int fd)
{
	Ipc__Envelope env;
	Ipc__LinkFd lf;

	ipc__envelope__init(&env);
	ipc__link_fd__init(&lf);
	lf.path = (char *)(uintptr_t)d->target;
	env.body_case = IPC__ENVELOPE__BODY_LINK_FD;
	env.link_fd = &lf;
	drive_send(d, &env, fd);
	close(fd);
}

/* A re-enumerating board: its device comes back after a while. */
static void
reopen_cb(evutil_socket_t s, short what, void *arg)
{
	struct drive *d = arg;
	struct timeval tv = {0, 100000};
	int fd;

	(void)s;
	(void)what;
	if ((fd = open_tty(d->target)) == -1) {
		if (++d->reopen_tries < 100)
			evtimer_add(d->reopen_ev, &tv);
		else
			printf("reopen failed: %s\n", strerror(errno));
		return;
	}
	printf("linkfd again\n");
	send_link_fd(d, fd);
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int
parse_hash(const char *s, uint8_t out[32])
{
	size_t i;

	if (strlen(s) != 64)
		return -1;
	for (i = 0; i < 32; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		out[i] = hi << 4 | lo;
	}
	return 0;
}

static void
send_chunks(struct drive *d)
{
	Ipc__Envelope env;
	Ipc__UploadChunk ch;
	size_t len;

	while (d->credit > 0 && d->next < d->img_len && !d->aborted) {
		len = d->img_len - d->next;
		if (len > IPC_CHUNK_SIZE)
			len = IPC_CHUNK_SIZE;
		ipc__envelope__init(&env);
		ipc__upload_chunk__init(&ch);
		ch.offset = d->next;
		ch.data.data = d->img + d->next;
		ch.data.len = len;
		env.request_id = d->req;
		env.body_case = IPC__ENVELOPE__BODY_UPLOAD_CHUNK;
		env.upload_chunk = &ch;
		drive_send(d, &env, -1);
		d->next += len;
		d->credit--;
	}
}

static void
start_upload(struct drive *d, const char *path)
{
	Ipc__Envelope env;
	Ipc__UploadBegin ub;
	FILE *f;
	long n;

	if ((f = fopen(path, "rb")) == NULL || fseek(f, 0, SEEK_END) == -1 ||
	    (n = ftell(f)) <= 0 || fseek(f, 0, SEEK_SET) == -1) {
		fprintf(stderr, "ipc-drive: cannot read %s\n", path);
		exit(1);
	}
	d->img_len = n;
	d->img = xmalloc(n);
	if (fread(d->img, 1, n, f) != (size_t)n) {
		fprintf(stderr, "ipc-drive: short read of %s\n", path);
		exit(1);
	}
	fclose(f);
	EVP_Digest(d->img, d->img_len, d->sha, NULL, EVP_sha256(), NULL);
	ipc__envelope__init(&env);
	ipc__upload_begin__init(&ub);
	ub.total_len = d->img_len;
	ub.sha256.data = d->sha;
	ub.sha256.len = 32;
	ub.chunk_size = IPC_CHUNK_SIZE;
	ub.window = d->window;
	env.request_id = d->req;
	env.body_case = IPC__ENVELOPE__BODY_UPLOAD_BEGIN;
	env.upload_begin = &ub;
	drive_send(d, &env, -1);
}

static void finish(struct drive *, int);

static void
start_command(struct drive *d)
{
	Ipc__Envelope env;
	Ipc__Echo echo;
	Ipc__ImageStateRead sr;
	Ipc__ImageSetState ss;
	Ipc__Reset rs;
	Ipc__Params pa;
	const char *c = d->cmd[0];
	uint8_t hash[32];

	ipc__envelope__init(&env);
	env.request_id = d->req;
	if (strcmp(c, "echo") == 0 && d->ncmd == 2) {
		ipc__echo__init(&echo);
		echo.text = d->cmd[1];
		env.body_case = IPC__ENVELOPE__BODY_ECHO;
		env.echo = &echo;
	} else if (strcmp(c, "params") == 0) {
		ipc__params__init(&pa);
		env.body_case = IPC__ENVELOPE__BODY_PARAMS;
		env.params = &pa;
	} else if (strcmp(c, "image-list") == 0) {
		ipc__image_state_read__init(&sr);
		env.body_case = IPC__ENVELOPE__BODY_IMAGE_STATE;
		env.image_state = &sr;
	} else if ((strcmp(c, "image-test") == 0 && d->ncmd == 2) ||
	           (strcmp(c, "image-confirm") == 0 && d->ncmd <= 2)) {
		ipc__image_set_state__init(&ss);
		ss.confirm = strcmp(c, "image-confirm") == 0;
		if (d->ncmd == 2) {
			if (parse_hash(d->cmd[1], hash) == -1) {
				fprintf(stderr, "ipc-drive: bad hash\n");
				exit(2);
			}
			ss.hash.data = hash;
			ss.hash.len = 32;
		}
		env.body_case = IPC__ENVELOPE__BODY_IMAGE_SET_STATE;
		env.image_set_state = &ss;
	} else if (strcmp(c, "reset") == 0) {
		ipc__reset__init(&rs);
		env.body_case = IPC__ENVELOPE__BODY_RESET;
		env.reset = &rs;
	} else if (strcmp(c, "image-upload") == 0 && d->ncmd == 2) {
		start_upload(d, d->cmd[1]);
		return;
	} else if (strcmp(c, "none") == 0) {
		return;
	} else if (strcmp(c, "sleep") == 0 && d->ncmd == 2) {
		struct timeval tv;
		long ms = strtol(d->cmd[1], NULL, 10);

		tv.tv_sec = ms / 1000;
		tv.tv_usec = (ms % 1000) * 1000;
		evtimer_add(d->sleep_ev, &tv);
		return;
	} else if (strcmp(c, "wait-up") == 0) {
		d->waiting_up = 1;
		return;
	} else
		usage();
	drive_send(d, &env, -1);
}

/* The next ";"-separated command, or the end. */
static void
next_command(struct drive *d)
{
	int end;

	if (d->pos >= d->nall) {
		finish(d, d->status);
		return;
	}
	for (end = d->pos; end < d->nall && strcmp(d->all[end], ";") != 0;
	     end++)
		;
	d->cmd = d->all + d->pos;
	d->ncmd = end - d->pos;
	d->pos = end + 1;
	d->req++;
	free(d->img);
	d->img = NULL;
	d->next = 0;
	d->credit = 0;
	d->aborted = 0;
	if (d->ncmd == 0)
		usage();
	start_command(d);
}

static void
sleep_cb(evutil_socket_t s, short what, void *arg)
{
	(void)s;
	(void)what;
	next_command(arg);
}

static void
configure(struct drive *d)
{
	Ipc__Envelope env;
	Ipc__Configure cf;
	Ipc__LinkConfig lc;
	Ipc__AddBoard ab;
	int fd;

	ipc__envelope__init(&env);
	ipc__configure__init(&cf);
	ipc__link_config__init(&lc);
	lc.kind = d->kind;
	lc.baud = d->baud;
	lc.request_timeout_ms = d->timeout_ms;
	lc.retries = d->retries;
	lc.smp_version = d->smp_v2;
	if (d->kind == IPC__LINK_CONFIG__KIND__UDP)
		lc.address = (char *)(uintptr_t)d->target;
	if (d->kind == IPC__LINK_CONFIG__KIND__BLE)
		lc.att_socket = (char *)(uintptr_t)d->target;
	cf.link = &lc;
	cf.verbose = d->verbose;
	env.body_case = IPC__ENVELOPE__BODY_CONFIGURE;
	env.configure = &cf;
	drive_send(d, &env, -1);
	if (d->kind == IPC__LINK_CONFIG__KIND__SERIAL) {
		if ((fd = open_tty(d->target)) == -1) {
			fprintf(stderr, "ipc-drive: %s: %s\n", d->target,
			        strerror(errno));
			exit(1);
		}
		send_link_fd(d, fd);
	}
	if (d->kind == IPC__LINK_CONFIG__KIND__BLE) {
		ipc__envelope__init(&env);
		ipc__add_board__init(&ab);
		ab.peer_name = (char *)(uintptr_t)d->peer;
		env.body_case = IPC__ENVELOPE__BODY_ADD_BOARD;
		env.add_board = &ab;
		drive_send(d, &env, -1);
	}
}

static void
print_hex(const ProtobufCBinaryData *b)
{
	size_t i;

	for (i = 0; i < b->len; i++)
		printf("%02x", b->data[i]);
}

static void
finish(struct drive *d, int status)
{
	struct timeval tv;

	d->status = status;
	d->done = 1;
	fflush(stdout);
	tv.tv_sec = (long)d->hold;
	tv.tv_usec = (long)((d->hold - (long)d->hold) * 1e6);
	event_base_loopexit(d->base, &tv);
}

static void
print_reply(struct drive *d, const Ipc__Reply *r)
{
	static const char *names[] = {"OK",        "BOARD_ERROR", "TIMEOUT",
	                              "LINK_DOWN", "PROTOCOL",    "BAD_REQUEST",
	                              "ABORTED",   "BUSY"};
	size_t i;

	printf("reply status=%s", names[r->status]);
	if (r->status != IPC__REPLY__STATUS__OK)
		printf(" board_rc=%d error=\"%s\"", r->board_rc, r->error);
	switch (r->result_case) {
	case IPC__REPLY__RESULT_ECHO:
		printf(" echo=\"%s\"", r->echo);
		break;
	case IPC__REPLY__RESULT_PARAMS:
		printf(" supported=%d buf_size=%u buf_count=%u",
		       r->params->supported, r->params->buf_size,
		       r->params->buf_count);
		break;
	case IPC__REPLY__RESULT_UPLOAD:
		printf(" bytes=%llu elapsed_ms=%llu window=%u chunk=%u "
		       "retransmits=%u",
		       (unsigned long long)r->upload->bytes,
		       (unsigned long long)r->upload->elapsed_ms,
		       r->upload->window, r->upload->chunk,
		       r->upload->retransmits);
		if (r->upload->elapsed_ms > 0)
			printf(" bytes_per_s=%llu",
			       (unsigned long long)(r->upload->bytes * 1000 /
			                            r->upload->elapsed_ms));
		break;
	default:
		break;
	}
	printf("\n");
	if (r->result_case == IPC__REPLY__RESULT_IMAGES)
		for (i = 0; i < r->images->n_slots; i++) {
			const Ipc__ImageSlot *s = r->images->slots[i];

			printf("image=%u slot=%u version=%s hash=", s->image,
			       s->slot, s->version);
			print_hex(&s->hash);
			printf(" bootable=%d pending=%d confirmed=%d active=%d "
			       "permanent=%d\n",
			       s->bootable, s->pending, s->confirmed, s->active,
			       s->permanent);
		}
	fflush(stdout);
	if (r->status != IPC__REPLY__STATUS__OK)
		d->status = 1;
	next_command(d);
}

static void
on_msg(struct ipc *ipc, const Ipc__Envelope *env, int fd, void *arg)
{
	struct drive *d = arg;
	struct timeval tv = {0, 100000};
	Ipc__Envelope ab;
	Ipc__UploadAbort ua;

	(void)ipc;
	if (fd != -1)
		close(fd);
	switch (env->body_case) {
	case IPC__ENVELOPE__BODY_HELLO:
		printf("hello version=%u role=%s pid=%u\n",
		       env->hello->protocol_version, env->hello->role,
		       env->hello->pid);
		fflush(stdout);
		if (env->hello->protocol_version != IPC_PROTOCOL_VERSION) {
			fprintf(stderr, "ipc-drive: protocol mismatch\n");
			kill(d->pid, SIGKILL);
			finish(d, 1);
			return;
		}
		configure(d);
		next_command(d);
		break;
	case IPC__ENVELOPE__BODY_LINK_STATE:
		printf("linkstate up=%d reason=\"%s\"\n", env->link_state->up,
		       env->link_state->reason);
		fflush(stdout);
		if (env->link_state->up && d->waiting_up) {
			d->waiting_up = 0;
			next_command(d);
		}
		if (!env->link_state->up &&
		    d->kind == IPC__LINK_CONFIG__KIND__SERIAL) {
			d->reopen_tries = 0;
			evtimer_add(d->reopen_ev, &tv);
		}
		break;
	case IPC__ENVELOPE__BODY_UPLOAD_CREDIT:
		d->credit += env->upload_credit->chunks;
		send_chunks(d);
		break;
	case IPC__ENVELOPE__BODY_UPLOAD_REWIND:
		printf("rewind offset=%llu\n",
		       (unsigned long long)env->upload_rewind->offset);
		d->nrewind++;
		d->credit = 0;
		d->next = env->upload_rewind->offset;
		break;
	case IPC__ENVELOPE__BODY_UPLOAD_PROGRESS:
		if (d->verbose)
			printf("progress %llu/%llu\n",
			       (unsigned long long)env->upload_progress->offset,
			       (unsigned long long)env->upload_progress->total);
		if (d->abort_at > 0 && !d->aborted &&
		    env->upload_progress->offset >= d->abort_at) {
			printf(
			    "aborting at %llu\n",
			    (unsigned long long)env->upload_progress->offset);
			d->aborted = 1;
			ipc__envelope__init(&ab);
			ipc__upload_abort__init(&ua);
			ab.request_id = d->req;
			ab.body_case = IPC__ENVELOPE__BODY_UPLOAD_ABORT;
			ab.upload_abort = &ua;
			drive_send(d, &ab, -1);
		}
		break;
	case IPC__ENVELOPE__BODY_REPLY:
		if (env->request_id == d->req && !d->done)
			print_reply(d, env->reply);
		else
			printf("extra reply request=%llu\n",
			       (unsigned long long)env->request_id);
		break;
	default:
		printf("message body=%d\n", (int)env->body_case);
		break;
	}
	fflush(stdout);
}

static void
on_error(struct ipc *ipc, const char *reason, void *arg)
{
	struct drive *d = arg;

	printf("ipc closed: %s\n", reason);
	ipc_free(ipc);
	d->ipc = NULL;
	if (!d->done)
		finish(d, 1);
	event_base_loopbreak(d->base);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"udp", required_argument, NULL, 'U'},
	    {"serial", required_argument, NULL, 'S'},
	    {"ble-att", required_argument, NULL, 'B'},
	    {"peer", required_argument, NULL, 'P'},
	    {"baud", required_argument, NULL, 'b'},
	    {"window", required_argument, NULL, 'w'},
	    {"timeout-ms", required_argument, NULL, 't'},
	    {"retries", required_argument, NULL, 'r'},
	    {"chroot", required_argument, NULL, 'C'},
	    {"user", required_argument, NULL, 'u'},
	    {"hold", required_argument, NULL, 'H'},
	    {"abort-at", required_argument, NULL, 'A'},
	    {"v2", no_argument, NULL, '2'},
	    {NULL, 0, NULL, 0},
	};
	struct drive d;
	const char *chroot_dir = NULL, *user = NULL;
	char *wargv[8];
	int sv[2], ch, wst, wargc = 0;

	memset(&d, 0, sizeof(d));
	d.kind = -1;
	log_init(0, "ipc-drive");
	while ((ch = getopt_long(argc, argv, "v", longopts, NULL)) != -1) {
		switch (ch) {
		case 'v':
			d.verbose = 1;
			break;
		case 'U':
			d.kind = IPC__LINK_CONFIG__KIND__UDP;
			d.target = optarg;
			break;
		case 'S':
			d.kind = IPC__LINK_CONFIG__KIND__SERIAL;
			d.target = optarg;
			break;
		case 'B':
			d.kind = IPC__LINK_CONFIG__KIND__BLE;
			d.target = optarg;
			break;
		case 'P':
			d.peer = optarg;
			break;
		case 'b':
			d.baud = strtoul(optarg, NULL, 10);
			break;
		case 'w':
			d.window = strtoul(optarg, NULL, 10);
			break;
		case 't':
			d.timeout_ms = strtoul(optarg, NULL, 10);
			break;
		case 'r':
			d.retries = strtoul(optarg, NULL, 10);
			break;
		case 'C':
			chroot_dir = optarg;
			break;
		case 'u':
			user = optarg;
			break;
		case 'H':
			d.hold = strtod(optarg, NULL);
			break;
		case 'A':
			d.abort_at = strtoull(optarg, NULL, 10);
			break;
		case '2':
			d.smp_v2 = 1;
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 2 || d.kind == -1 ||
	    (d.kind == IPC__LINK_CONFIG__KIND__BLE && d.peer == NULL))
		usage();
	d.all = argv + 1;
	d.nall = argc - 1;
	wargv[wargc++] = argv[0];
	if (d.verbose)
		wargv[wargc++] = (char *)(uintptr_t) "-v";
	if (chroot_dir != NULL) {
		wargv[wargc++] = (char *)(uintptr_t) "-C";
		wargv[wargc++] = (char *)(uintptr_t)chroot_dir;
	}
	if (user != NULL) {
		wargv[wargc++] = (char *)(uintptr_t) "-u";
		wargv[wargc++] = (char *)(uintptr_t)user;
	}
	wargv[wargc] = NULL;

	signal(SIGPIPE, SIG_IGN);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1)
		fatal("socketpair", NULL);
	if ((d.pid = fork()) == -1)
		fatal("fork", NULL);
	if (d.pid == 0) {
		/* dup2 clears close-on-exec on fd 3 only. */
		if (sv[1] == IPC_WORKER_FD) {
			if (fcntl(sv[1], F_SETFD, 0) == -1)
				_exit(127);
		} else if (dup2(sv[1], IPC_WORKER_FD) == -1)
			_exit(127);
		execv(wargv[0], wargv);
		fprintf(stderr, "ipc-drive: exec %s: %s\n", wargv[0],
		        strerror(errno));
		_exit(127);
	}
	close(sv[1]);
	d.base = event_base_new();
	d.reopen_ev = evtimer_new(d.base, reopen_cb, &d);
	d.sleep_ev = evtimer_new(d.base, sleep_cb, &d);
	d.ipc = ipc_new(d.base, sv[0], on_msg, on_error, &d);
	if (d.ipc == NULL)
		fatalx("ipc_new", NULL);
	event_base_dispatch(d.base);
	if (d.ipc != NULL)
		ipc_free(d.ipc);
	/* Closing the socket is what tells the worker to exit. */
	if (waitpid(d.pid, &wst, 0) == d.pid) {
		if (WIFEXITED(wst))
			printf("worker exit=%d\n", WEXITSTATUS(wst));
		else if (WIFSIGNALED(wst))
			printf("worker signal=%d\n", WTERMSIG(wst));
	}
	event_free(d.reopen_ev);
	event_free(d.sleep_ev);
	event_base_free(d.base);
	free(d.img);
	return d.status;
}
