/*
 * mgmt-drive: runs the management channel (supervisor/mgmt*.c) for every
 * device and group of a config, as the daemon will, with tokens from the
 * real RDFM client (rdfm.c) and fake boards: files from a directory, a
 * small shell, canned SMP answers.  Every board operation is printed
 * ("BOARD ...") so tests see what reached a board.  Commands on stdin stand
 * in for the update machine (progress, version, busy, logs).
 */
#include <sys/resource.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "log.h"
#include "supervisor/config.h"
#include "supervisor/keys.h"
#include "supervisor/mgmt.h"
#include "supervisor/rdfm.h"
#include "xmalloc.h"

struct fdev {
	char *name;
	bool group;
	size_t nboards;
	char **board_names;
	struct rdfm_dev *rd;
	EVP_PKEY *key;
	struct mgmt_dev *md;
	bool busy, authing;
	struct event *retry;
};

/* One fake operation finishing after a delay. */
struct pending {
	struct pending *next, *prev;
	struct mgmt_req *req;
	struct mgmt_result res;
	char *data;
	struct event *ev;
};

static struct event_base *base;
static struct rdfm_client *rdfm;
static struct mgmt *mg;
static struct fdev *devs;
static size_t ndevs;
static const char *board_dir;
static int op_delay_ms = 10;
static long wait_connected = -1;
static bool stdin_off;
static bool auth_all;
static size_t nauthed;
static struct pending *pendings;

static void usage(void) __attribute__((noreturn));

static void
usage(void)
{
	fprintf(stderr, "usage: mgmt-drive -c CONFIG [--board-dir DIR] "
	                "[--backoff MIN:MAX[:SLOW]]\n"
	                "       [--idle-ms N] [--flood N] [--log-flush-ms N] "
	                "[--down-log-ms N]\n"
	                "       [--shell-timeout-ms N] [--op-delay-ms N] "
	                "[--wait-connected N] [--auth] [--no-stdin] [-v]\n");
	exit(2);
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

/* The fake boards. */

static void
pending_done(struct pending *p)
{
	if (p->prev != NULL)
		p->prev->next = p->next;
	else
		pendings = p->next;
	if (p->next != NULL)
		p->next->prev = p->prev;
	mgmt_req_done(p->req, &p->res);
	event_free(p->ev);
	free(p->data);
	free(p);
}

static void
on_pending(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	pending_done(arg);
}

static void
finish(struct mgmt_req *req, enum mgmt_status st, int rc, char *data,
       size_t len, uint64_t size, int delay_ms)
{
	struct pending *p = xcalloc(1, sizeof(*p));
	struct timeval tv = {delay_ms / 1000, (delay_ms % 1000) * 1000};

	p->req = req;
	p->res.status = st;
	p->res.rc = rc;
	p->res.data = data;
	p->res.len = len;
	p->res.size = size;
	p->data = data;
	if ((p->ev = evtimer_new(base, on_pending, p)) == NULL)
		fatalx("timer", NULL);
	evtimer_add(p->ev, &tv);
	p->next = pendings;
	if (pendings != NULL)
		pendings->prev = p;
	pendings = p;
}

static char *
board_file(struct fdev *d, unsigned board, const char *path)
{
	char *s;

	xasprintf(&s, "%s/%s%s", board_dir != NULL ? board_dir : "/nonexistent",
	          d->board_names[board], path);
	return s;
}

static bool
board_lacks(struct fdev *d, unsigned board, const char *what)
{
	char *s;
	bool r;

	xasprintf(&s, "%s/%s/.no%s", board_dir != NULL ? board_dir : "/x",
	          d->board_names[board], what);
	r = access(s, F_OK) == 0;
	free(s);
	return r;
}

static void
fake_shell(struct fdev *d, const struct mgmt_op_args *op, struct mgmt_req *req)
{
	const char *cmd = op->argv[0];
	char *out = NULL;
	size_t i, n;

	if (board_lacks(d, op->board, "shell")) {
		finish(req, MGMT_UNSUPPORTED, 0, NULL, 0, 0, op_delay_ms);
		return;
	}
	if (strcmp(cmd, "echo") == 0) {
		out = xstrdup("");
		for (i = 1; i < op->argc; i++) {
			char *t;

			xasprintf(&t, "%s%s%s", out, i > 1 ? " " : "",
			          op->argv[i]);
			free(out);
			out = t;
		}
		finish(req, MGMT_DONE, 0, out, strlen(out), 0, op_delay_ms);
	} else if (strcmp(cmd, "fail") == 0) {
		out = xstrdup("it failed\n");
		finish(req, MGMT_DONE, 3, out, strlen(out), 0, op_delay_ms);
	} else if (strcmp(cmd, "sleep") == 0 && op->argc == 2) {
		out = xstrdup("slept\n");
		finish(req, MGMT_DONE, 0, out, strlen(out), 0,
		       atoi(op->argv[1]));
	} else if (strcmp(cmd, "lines") == 0) {
		out = xstrdup("one\ntwo\nthree\n");
		finish(req, MGMT_DONE, 0, out, strlen(out), 0, op_delay_ms);
	} else if (strcmp(cmd, "big") == 0 && op->argc == 2) {
		n = (size_t)atol(op->argv[1]);
		out = xmalloc(n + 1);
		memset(out, 'x', n);
		finish(req, MGMT_DONE, 0, out, n, 0, op_delay_ms);
	} else {
		xasprintf(&out, "%s: command not found\n", cmd);
		finish(req, MGMT_DONE, -8, out, strlen(out), 0, op_delay_ms);
	}
}

static void
fake_fs(struct fdev *d, const struct mgmt_op_args *op, struct mgmt_req *req)
{
	char *path, *buf;
	struct stat st;
	ssize_t r;
	size_t want;
	int fd;

	if (board_lacks(d, op->board, "fs")) {
		finish(req, MGMT_UNSUPPORTED, 0, NULL, 0, 0, op_delay_ms);
		return;
	}
	path = board_file(d, op->board, op->path);
	if (stat(path, &st) == -1 || !S_ISREG(st.st_mode)) {
		free(path);
		finish(req, MGMT_NOT_FOUND, 0, NULL, 0, 0, op_delay_ms);
		return;
	}
	if (op->op == MGMT_OP_FS_STAT) {
		free(path);
		finish(req, MGMT_DONE, 0, NULL, 0, (uint64_t)st.st_size,
		       op_delay_ms);
		return;
	}
	/* SMP fs reads come in chunks of what fits a packet. */
	want = op->max_len < 512 ? op->max_len : 512;
	buf = xmalloc(want + 1);
	if ((fd = open(path, O_RDONLY)) == -1 ||
	    (r = pread(fd, buf, want, (off_t)op->offset)) < 0) {
		if (fd != -1)
			close(fd);
		free(path);
		free(buf);
		finish(req, MGMT_FAILED, 0, xstrdup("read error"), 10, 0,
		       op_delay_ms);
		return;
	}
	close(fd);
	free(path);
	finish(req, MGMT_DONE, 0, buf, (size_t)r, 0, op_delay_ms);
}

static const char *const op_names[] = {
    [MGMT_OP_ECHO] = "echo",
    [MGMT_OP_RESET] = "reset",
    [MGMT_OP_IMAGE_LIST] = "image-list",
    [MGMT_OP_CONFIRM] = "confirm",
    [MGMT_OP_SHELL] = "shell",
    [MGMT_OP_FS_STAT] = "fs-stat",
    [MGMT_OP_FS_READ] = "fs-read",
};

static void
op_run(void *ctx, const struct mgmt_op_args *op, struct mgmt_req *req)
{
	struct fdev *d = ctx;
	char line[1024], *out;
	size_t i;
	int n;

	n = snprintf(line, sizeof(line), "BOARD dev=%s board=%s op=%s", d->name,
	             d->board_names[op->board], op_names[op->op]);
	for (i = 0; op->op == MGMT_OP_SHELL && i < op->argc && n > 0 &&
	            (size_t)n < sizeof(line);
	     i++)
		n += snprintf(line + n, sizeof(line) - (size_t)n, "%s%s",
		              i == 0 ? " argv=" : ",", op->argv[i]);
	if (op->path != NULL && n > 0 && (size_t)n < sizeof(line))
		n += snprintf(line + n, sizeof(line) - (size_t)n,
		              " path=%s off=%llu", op->path,
		              (unsigned long long)op->offset);
	if (op->op == MGMT_OP_SHELL && n > 0 && (size_t)n < sizeof(line))
		snprintf(line + n, sizeof(line) - (size_t)n, " timeout_ms=%lld",
		         (long long)op->timeout_ms);
	say("%s", line);
	switch (op->op) {
	case MGMT_OP_ECHO:
		out = xstrdup(op->text != NULL ? op->text : "");
		finish(req, MGMT_DONE, 0, out, strlen(out), 0, op_delay_ms);
		break;
	case MGMT_OP_RESET:
		out = xstrdup("reset\n");
		finish(req, MGMT_DONE, 0, out, strlen(out), 0, op_delay_ms);
		break;
	case MGMT_OP_IMAGE_LIST:
		out =
		    xstrdup("image 0 slot 0: version 1.0.0 active confirmed\n");
		finish(req, MGMT_DONE, 0, out, strlen(out), 0, op_delay_ms);
		break;
	case MGMT_OP_CONFIRM:
		out = xstrdup("confirmed\n");
		finish(req, MGMT_DONE, 0, out, strlen(out), 0, op_delay_ms);
		break;
	case MGMT_OP_SHELL:
		fake_shell(d, op, req);
		break;
	case MGMT_OP_FS_STAT:
	case MGMT_OP_FS_READ:
		fake_fs(d, op, req);
		break;
	}
}

static bool
op_busy(void *ctx)
{
	return ((struct fdev *)ctx)->busy;
}

static void
op_check_now(void *ctx)
{
	say("CHECK-NOW dev=%s", ((struct fdev *)ctx)->name);
}

static void
on_retry(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	mgmt_token_ready(((struct fdev *)arg)->md);
}

static void
on_auth(struct rdfm_dev *rd, const struct rdfm_result *res, void *arg)
{
	struct fdev *d = arg;
	struct timeval tv;

	(void)rd;
	d->authing = false;
	if (res->status == RDFM_AUTHENTICATED) {
		if (auth_all && ++nauthed == ndevs)
			say("AUTHED %zu", nauthed);
		mgmt_token_ready(d->md);
		return;
	}
	/* Not approved, or the server is away: ask again later. */
	tv.tv_sec = res->retry_ms > 0 ? res->retry_ms / 1000 : 1;
	tv.tv_usec = res->retry_ms > 0 ? (res->retry_ms % 1000) * 1000 : 0;
	evtimer_add(d->retry, &tv);
}

static const char *
op_token(void *ctx, bool refused)
{
	struct fdev *d = ctx;
	const char *t;

	if (refused)
		rdfm_dev_forget_token(d->rd);
	if ((t = rdfm_dev_token(d->rd)) != NULL)
		return t;
	if (!d->authing && rdfm_auth(d->rd, "1.0.0", on_auth, d) == 0)
		d->authing = true;
	return NULL;
}

static const struct mgmt_board_ops ops = {
    .run = op_run,
    .update_in_progress = op_busy,
    .check_now = op_check_now,
    .token = op_token,
};

/* Commands on stdin. */

static struct fdev *
find_dev(const char *name)
{
	size_t i;

	for (i = 0; i < ndevs; i++)
		if (strcmp(devs[i].name, name) == 0)
			return &devs[i];
	return NULL;
}

static void
command(char *line)
{
	char *argv[8], *save = NULL, *w, *rest = NULL;
	struct fdev *d = NULL;
	int argc = 0;

	for (w = strtok_r(line, " ", &save); w != NULL && argc < 8;
	     w = strtok_r(NULL, " ", &save)) {
		argv[argc++] = w;
		if (argc == 3 && strcmp(argv[0], "log") == 0) {
			rest = save;
			break;
		}
	}
	if (argc == 0)
		return;
	if (strcmp(argv[0], "quit") == 0) {
		event_base_loopbreak(base);
		return;
	}
	if (strcmp(argv[0], "count") == 0) {
		say("CONNECTED %zu", mgmt_connected_count(mg));
		return;
	}
	if (argc < 2 || (d = find_dev(argv[1])) == NULL) {
		say("ERROR unknown device or command: %s", argv[0]);
		return;
	}
	if (strcmp(argv[0], "progress") == 0 && argc == 4)
		mgmt_progress(d->md, strtoull(argv[2], NULL, 10),
		              strtoull(argv[3], NULL, 10));
	else if (strcmp(argv[0], "ended") == 0)
		mgmt_update_ended(d->md);
	else if (strcmp(argv[0], "started") == 0)
		mgmt_update_started(d->md);
	else if (strcmp(argv[0], "version") == 0 && argc == 3)
		mgmt_version(d->md, argv[2]);
	else if (strcmp(argv[0], "busy") == 0 && argc == 3)
		d->busy = strcmp(argv[2], "on") == 0;
	else if (strcmp(argv[0], "log") == 0 && argc == 3)
		mgmt_log(d->md, argv[2], "%s", rest != NULL ? rest : "");
	else if (strcmp(argv[0], "outcome") == 0 && argc == 6)
		mgmt_log_update(d->md, (enum mgmt_outcome)atoi(argv[2]),
		                argv[3], argv[4], atoll(argv[5]), NULL);
	else if (strcmp(argv[0], "unsupported") == 0 && argc == 4)
		mgmt_board_unsupported(d->md, (unsigned)atoi(argv[2]),
		                       strcmp(argv[3], "shell") == 0
		                           ? MGMT_OP_SHELL
		                           : MGMT_OP_FS_READ);
	else if (strcmp(argv[0], "forget-token") == 0)
		rdfm_dev_forget_token(d->rd);
	else if (strcmp(argv[0], "connected") == 0)
		say("DEV %s connected=%d", d->name,
		    mgmt_dev_connected(d->md) ? 1 : 0);
	else {
		say("ERROR bad command: %s", argv[0]);
		return;
	}
	say("OK %s", argv[0]);
}

static void
on_stdin(struct bufferevent *bev, void *arg)
{
	char *line;

	(void)arg;
	while ((line = evbuffer_readln(bufferevent_get_input(bev), NULL,
	                               EVBUFFER_EOL_LF)) != NULL) {
		command(line);
		free(line);
	}
}

static void
on_stdin_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)arg;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		event_base_loopbreak(base);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	(void)arg;
	event_base_loopbreak(base);
}

static void
on_watch(evutil_socket_t fd, short what, void *arg)
{
	static bool told;

	(void)fd;
	(void)what;
	(void)arg;
	if (!told && mgmt_connected_count(mg) >= (size_t)wait_connected) {
		told = true;
		say("ALL-CONNECTED %zu", mgmt_connected_count(mg));
	}
}

static void
add_dev(const char *name, const char *id, const char *type,
        const char *key_path, const struct config *c, size_t i, bool group)
{
	struct fdev *d = &devs[ndevs++];
	char err[256];
	bool gen;
	size_t k;

	d->name = xstrdup(name);
	d->group = group;
	if ((d->key = keys_load_or_generate(key_path, &gen, err,
	                                    sizeof(err))) == NULL)
		fatalx("cannot load a key", "error=%s", log_q(err));
	d->rd = rdfm_dev_new(rdfm, c->server, id, type, d->key);
	rdfm_dev_set_backoff(d->rd, 200, 2000);
	if ((d->retry = evtimer_new(base, on_retry, d)) == NULL)
		fatalx("timer", NULL);
	if (group) {
		d->nboards = c->groups[i].nmembers;
		d->board_names = xcalloc(d->nboards, sizeof(char *));
		for (k = 0; k < d->nboards; k++)
			d->board_names[k] =
			    xstrdup(c->groups[i].members[k].name);
	} else {
		d->nboards = 1;
		d->board_names = xcalloc(1, sizeof(char *));
		d->board_names[0] = xstrdup(name);
	}
}

static unsigned
num(const char *s)
{
	char *ep;
	unsigned long v = strtoul(s, &ep, 10);

	if (*s == '\0' || *ep != '\0')
		usage();
	return (unsigned)v;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"board-dir", required_argument, NULL, 'b'},
	    {"backoff", required_argument, NULL, 'B'},
	    {"idle-ms", required_argument, NULL, 'I'},
	    {"flood", required_argument, NULL, 'F'},
	    {"log-flush-ms", required_argument, NULL, 'L'},
	    {"down-log-ms", required_argument, NULL, 'D'},
	    {"shell-timeout-ms", required_argument, NULL, 'S'},
	    {"op-delay-ms", required_argument, NULL, 'o'},
	    {"wait-connected", required_argument, NULL, 'w'},
	    {"no-stdin", no_argument, NULL, 'n'},
	    {"auth", no_argument, NULL, 'a'},
	    {"verbose", no_argument, NULL, 'v'},
	    {NULL, 0, NULL, 0},
	};
	struct mgmt_tuning t;
	struct config *c;
	struct bufferevent *in = NULL;
	struct event *sigint, *sigterm, *watch = NULL;
	struct timeval tv = {0, 100000};
	struct rlimit rl;
	const char *cfgpath = NULL;
	char err[1024], *p;
	int ch, verbose = 0;
	size_t i;

	memset(&t, 0, sizeof(t));
	while ((ch = getopt_long(argc, argv, "c:v", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			cfgpath = optarg;
			break;
		case 'b':
			board_dir = optarg;
			break;
		case 'B':
			t.backoff_min_ms = num(strtok(optarg, ":"));
			if ((p = strtok(NULL, ":")) != NULL)
				t.backoff_max_ms = num(p);
			if ((p = strtok(NULL, ":")) != NULL)
				t.backoff_slow_ms = num(p);
			break;
		case 'I':
			t.idle_ms = (int)num(optarg);
			break;
		case 'F':
			t.flood_per_s = num(optarg);
			break;
		case 'L':
			t.log_flush_ms = num(optarg);
			break;
		case 'D':
			t.down_log_ms = num(optarg);
			break;
		case 'S':
			t.shell_timeout_ms = num(optarg);
			break;
		case 'o':
			op_delay_ms = (int)num(optarg);
			break;
		case 'w':
			wait_connected = (long)num(optarg);
			break;
		case 'n':
			stdin_off = true;
			break;
		case 'a':
			auth_all = true;
			break;
		case 'v':
			verbose = 1;
			break;
		default:
			usage();
		}
	}
	if (cfgpath == NULL || optind != argc)
		usage();
	log_init(verbose, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* A thousand devices need a thousand descriptors and more. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if ((c = config_load(cfgpath, NULL, err, sizeof(err))) == NULL)
		fatalx("bad config", "error=%s", log_q(err));
	if ((base = event_base_new()) == NULL)
		fatalx("libevent", NULL);
	if ((rdfm = rdfm_client_new(base, c->ca_file, err, sizeof(err))) ==
	    NULL)
		fatalx("rdfm client", "error=%s", log_q(err));
	mg = mgmt_new(base, c, &t);
	devs = xcalloc(c->ndevices + c->ngroups + 1, sizeof(*devs));
	for (i = 0; i < c->ndevices; i++)
		add_dev(c->devices[i].name, c->devices[i].id,
		        c->devices[i].dev_type, c->devices[i].key_path, c, i,
		        false);
	for (i = 0; i < c->ngroups; i++)
		add_dev(c->groups[i].name, c->groups[i].id, c->groups[i].type,
		        c->groups[i].key_path, c, i, true);
	/* Channels once every device exists: tokens come through d->rd. */
	for (i = 0; i < c->ndevices; i++)
		devs[i].md =
		    mgmt_dev_new_device(mg, &c->devices[i], &ops, &devs[i]);
	for (i = 0; i < c->ngroups; i++)
		devs[c->ndevices + i].md = mgmt_dev_new_group(
		    mg, &c->groups[i], &ops, &devs[c->ndevices + i]);
	/* --auth: every device gets a token, channel or not (the benchmark's
	 * baseline: the daemon authenticates every device anyway). */
	for (i = 0; auth_all && i < ndevs; i++)
		if (!devs[i].authing &&
		    rdfm_auth(devs[i].rd, "1.0.0", on_auth, &devs[i]) == 0)
			devs[i].authing = true;
	if (!stdin_off) {
		in = bufferevent_socket_new(base, 0, 0);
		bufferevent_setcb(in, on_stdin, NULL, on_stdin_event, NULL);
		bufferevent_enable(in, EV_READ);
	}
	if (wait_connected >= 0) {
		watch = event_new(base, -1, EV_PERSIST, on_watch, NULL);
		event_add(watch, &tv);
	}
	sigint = evsignal_new(base, SIGINT, on_signal, NULL);
	sigterm = evsignal_new(base, SIGTERM, on_signal, NULL);
	evsignal_add(sigint, NULL);
	evsignal_add(sigterm, NULL);
	say("READY devices=%zu management=%s", ndevs,
	    mg != NULL ? "on" : "off");
	event_base_dispatch(base);

	for (i = 0; i < ndevs; i++) {
		mgmt_dev_free(devs[i].md);
		rdfm_dev_free(devs[i].rd);
		EVP_PKEY_free(devs[i].key);
		event_free(devs[i].retry);
		for (size_t k = 0; k < devs[i].nboards; k++)
			free(devs[i].board_names[k]);
		free(devs[i].board_names);
		free(devs[i].name);
	}
	free(devs);
	/* Fake operations still due answer now (their jobs are orphans). */
	while (pendings != NULL)
		pending_done(pendings);
	mgmt_free(mg);
	rdfm_client_free(rdfm);
	if (in != NULL)
		bufferevent_free(in);
	if (watch != NULL)
		event_free(watch);
	event_free(sigint);
	event_free(sigterm);
	event_base_free(base);
	config_free(c);
	say("BYE");
	return 0;
}
