/*
 * `rdfm-mcumgr-client smp ...`: one operation on one board, for operators
 * and tests, through the daemon's own path (one worker for the link,
 * operations over IPC).  This file: the options, the command table, and
 * the machinery every command uses to run an operation and wait for it,
 * explain a failure, and print results and progress.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <json-c/json.h>

#include "cmd_smp.h"
#include "duration.h"
#include "ipc.h"
#include "log.h"
#include "supervisor.h"
#include "upload.h"
#include "links.h"
#include "util.h"
#include "xmalloc.h"

#define TICK_MS 50

static const struct smp_command commands[] = {
    {"echo", NULL, 1, 1, smp_run_echo, "TEXT", "the board answers TEXT", NULL},
    {"params", NULL, 0, 0, smp_run_params, "",
     "the board's MCUmgr buffer size and count", NULL},
    {"reset", NULL, 0, 0, smp_run_reset, "", "reset the board", NULL},
    {"upgrade", NULL, 1, 1, smp_run_upgrade, "FILE",
     "upload, test, reset, check and confirm an image in one go",
     "FILE is an MCUboot image, .bin or Intel HEX.  Phases, one line "
     "each:\n"
     "upload (skipped when slot 1 already holds the image), test, reset,\n"
     "wait (until the board answers again), check (it runs the new "
     "image),\n"
     "confirm (or, with --self-confirm, wait for the board's own "
     "decision).\n"
     "  --self-confirm        the firmware confirms itself: wait for it\n"
     "  --reboot-timeout DUR  for the board to answer after the reset "
     "(1m)\n"
     "  --confirm-timeout DUR for a self-confirming board to decide (5m)\n"
     "  --window N, --stall DUR  as for image upload\n"
     "Exit status: 0 done (or the board already ran it), 1 before any "
     "phase,\n"
     "3 upload, 4 test, 5 reset, 6 the board did not answer again, 7 it "
     "does\n"
     "not run the new image (MCUboot rejected it or reverted), 8 "
     "confirm.\n"},
    {"image", "list", 0, 0, smp_run_image_list, "",
     "the slots: version, hash, flags", NULL},
    {"image", "upload", 1, 1, smp_run_image_upload, "FILE",
     "upload an MCUboot image (.bin or Intel HEX) to slot 1",
     "A progress bar (elapsed, ETA, KiB/s, packets in flight) on a "
     "terminal.\n"
     "An interrupted upload resumes where the board is when run again.\n"
     "  --window N   packets in flight, at most what the board allows\n"
     "               (buf_count - 1); absent or 0: adaptive\n"
     "  --stall DUR  give up when the board's offset does not move for "
     "DUR (1m)\n"},
    {"image", "test", 1, 1, smp_run_image_test, "HASH",
     "boot the image with HASH once at the next reset", NULL},
    {"image", "confirm", 0, 1, smp_run_image_confirm, "[HASH]",
     "make the running image (or HASH) permanent", NULL},
    {"image", "erase", 0, 0, smp_run_image_erase, "",
     "erase slot 1 (refused while it is pending)", NULL},
    {"os", "echo", 1, 1, smp_run_echo, "TEXT", "as echo", NULL},
    {"os", "reset", 0, 0, smp_run_reset, "", "as reset", NULL},
    {"os", "params", 0, 0, smp_run_params, "", "as params", NULL},
    {"os", "info", 0, 1, smp_run_os_info, "[FORMAT]",
     "uname-like system information",
     "FORMAT letters as uname's: s kernel, n node, r release, v version,\n"
     "m machine, p processor, i platform (board), o OS, a all; default "
     "s.\n"},
    {"os", "taskstat", 0, 0, smp_run_os_taskstat, "",
     "the board's threads: priority, state, stack", NULL},
    {"os", "mpstat", 0, 0, smp_run_os_mpstat, "", "the board's memory pools",
     NULL},
    {"os", "datetime", 0, 2, smp_run_os_datetime, "[set TIME|now]",
     "read or set the board's clock",
     "TIME: 2024-05-01T12:00:00 (UTC, as the board keeps it), or now.\n"},
    {"os", "bootloader", 0, 1, smp_run_os_bootloader, "[QUERY]",
     "the bootloader, or a query such as mode", NULL},
    {"stat", "list", 0, 0, smp_run_stat_list, "",
     "the board's statistics groups", NULL},
    {"stat", "show", 1, 1, smp_run_stat_show, "NAME",
     "the counters of one statistics group", NULL},
    {"shell", "exec", 1, -1, smp_run_shell_exec, "CMD [ARG...]",
     "run a shell command on the board: its output and return code",
     "Everything after \"shell exec\" is the command; give options "
     "before.\n"
     "The exit status is 0 only when the command returned 0.\n"},
    {"fs", "upload", 2, 2, smp_run_fs_upload, "LOCAL REMOTE",
     "write a file to the board's file system",
     "Resumes an earlier, interrupted upload of the same file (checked "
     "with\n"
     "the board's SHA-256 when it offers fs hash).  --no-resume starts "
     "over.\n"},
    {"fs", "download", 2, 2, smp_run_fs_download, "REMOTE LOCAL",
     "read a file from the board's file system",
     "Written to LOCAL.part and renamed when complete and verified; an\n"
     "interrupted download resumes from LOCAL.part.  --no-resume starts "
     "over.\n"},
    {"fs", "stat", 1, 1, smp_run_fs_stat, "REMOTE", "a file's size", NULL},
    {"fs", "hash", 1, 1, smp_run_fs_hash, "REMOTE",
     "a file's hash or checksum (--type sha256|crc32)", NULL},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const char link_help[] =
    "LINK, one of:\n"
    "  --device PATH [--baud N] [--mtu N]   serial (--device implies it)\n"
    "  --address HOST:PORT                  UDP (--address implies it)\n"
    "  --peer-name NAME [--device-index N]  Bluetooth LE (implied)\n"
    "  --conntype serial|udp|ble --connstring STRING\n"
    "                                       mcumgr's form, e.g. "
    "dev=/dev/ttyACM0,baud=115200,mtu=128,\n"
    "                                       192.168.1.2:1337, "
    "peer_name=NAME\n"
    "  --board NAME [-c FILE]               a device or group member of the "
    "config\n"
    "                                       (GROUP/MEMBER when names "
    "repeat)\n"
    "  --transport serial|udp|ble           the kind, when you want to say "
    "it\n"
    "  --att-socket @NAME                   BLE through the virtual board's "
    "socket\n"
    "                                       (simulation only)\n";

static const char opt_help[] =
    "Options:\n"
    "  --json                one JSON object on stdout (the board's reply "
    "for\n"
    "                        the os, stat, shell and fs commands)\n"
    "  -q, --quiet           nothing but errors and the result\n"
    "  -v, --verbose         debug logs, the workers' too\n"
    "  --timeout DUR         one exchange (default 2s, longer for slow "
    "baud rates)\n"
    "  --retries N           retransmissions of a request (default 5)\n"
    "  --connect-timeout DUR the board's first answer (default 5s, BLE "
    "20s)\n"
    "  --erase-timeout DUR   the first upload packet (default 1m)\n"
    "  --smp-v2              speak SMP version 2\n"
    "Durations as in the config: 300ms, 5s, 1m.  With --board the config's "
    "timeouts\n"
    "are the defaults.\n"
    "Exit status: 0 done, 1 failed, 2 usage error; upgrade: 3-8 (see "
    "\"smp upgrade --help\").\n";

static void
usage(FILE *f)
{
	char left[64];
	size_t i;

	fprintf(f, "usage: rdfm-mcumgr-client smp LINK [options] COMMAND "
	           "[ARGS]\n"
	           "One operation on one board, through the worker the daemon "
	           "uses.\n\n");
	fputs(link_help, f);
	fprintf(f, "\nCOMMAND:\n");
	for (i = 0; i < NCOMMANDS; i++) {
		snprintf(left, sizeof(left), "%s%s%s%s%s", commands[i].w1,
		         commands[i].w2 ? " " : "",
		         commands[i].w2 ? commands[i].w2 : "",
		         commands[i].args[0] ? " " : "", commands[i].args);
		fprintf(f, "  %-26s %s\n", left, commands[i].help);
	}
	fputc('\n', f);
	fputs(opt_help, f);
	fprintf(f, "\"smp COMMAND --help\" tells more about one command.\n");
}

static void
command_usage(FILE *f, const struct smp_command *cmd)
{
	fprintf(f, "usage: rdfm-mcumgr-client smp LINK [options] %s%s%s%s%s\n",
	        cmd->w1, cmd->w2 ? " " : "", cmd->w2 ? cmd->w2 : "",
	        cmd->args[0] ? " " : "", cmd->args);
	fprintf(f, "%c%s.\n", cmd->help[0] - 32 * (cmd->help[0] >= 'a'),
	        cmd->help + 1);
	if (cmd->more != NULL)
		fprintf(f, "%s", cmd->more);
	fputc('\n', f);
	fputs(link_help, f);
	fputc('\n', f);
	fputs(opt_help, f);
}

/* Output. */

void
cli_print_json(struct json_object *o)
{
	printf("%s\n",
	       json_object_to_json_string_ext(
	           o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	fflush(stdout);
	json_object_put(o);
}

void
cli_print_tree(const struct smp_tree *t)
{
	cli_print_json(smp_tree_json(t, smp_tree_root(t)));
}

/* The bar's line, taken off before anything else is written there. */
static struct smp_cli *bar_owner;

static void
bar_clear(void)
{
	if (bar_owner != NULL && bar_owner->bar_drawn) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
		bar_owner->bar_drawn = false;
	}
}

int
cli_fail(struct smp_cli *c, int code, const char *fmt, ...)
{
	struct json_object *o;
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	bar_clear();
	fprintf(stderr, "smp: %s\n", msg);
	if (c->json) {
		o = json_object_new_object();
		json_object_object_add(o, "error", json_object_new_string(msg));
		if (code != SMP_EX_FAIL)
			json_object_object_add(o, "exit",
			                       json_object_new_int(code));
		cli_print_json(o);
	}
	return code;
}

void
cli_note(struct smp_cli *c, const char *fmt, ...)
{
	va_list ap;

	if (c->quiet || c->json)
		return;
	bar_clear();
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void
cli_warn(struct smp_cli *c, const char *fmt, ...)
{
	va_list ap;

	if (c->quiet)
		return;
	bar_clear();
	fputs("smp: warning: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* m:ss, or h:mm:ss from an hour on. */
static void
clock_str(uint64_t ms, char *buf, size_t cap)
{
	uint64_t s = ms / 1000;

	if (s >= 3600)
		snprintf(buf, cap, "%" PRIu64 ":%02u:%02u", s / 3600,
		         (unsigned)(s / 60 % 60), (unsigned)(s % 60));
	else
		snprintf(buf, cap, "%u:%02u", (unsigned)(s / 60),
		         (unsigned)(s % 60));
}

void
cli_bar_start(struct smp_cli *c, uint64_t total, uint64_t start_off)
{
	c->bar_t0 = now_ms();
	c->bar_last = 0;
	c->bar_total = total;
	c->bar_start = start_off;
	c->bar_window = 0;
	bar_owner = c;
}

/*
 * [########--------]  50.0%  200/400 KiB  85.3 KiB/s  0:02 ETA 0:02 win 3
 * The rate counts what this run sent (a resumed upload started late).
 */
void
cli_bar(struct smp_cli *c, uint64_t off, uint32_t window, bool force)
{
	uint64_t now = now_ms(), el = now - c->bar_t0;
	char bar[17], e[32], eta[32];
	double rate, pct;
	size_t i, fill;

	if (window != 0)
		c->bar_window = window;
	if (!c->bar || (!force && now - c->bar_last < 100))
		return;
	c->bar_last = now;
	if (off < c->bar_start)
		c->bar_start = off; /* the board went back */
	pct = c->bar_total ? 100.0 * (double)off / (double)c->bar_total : 0;
	fill = c->bar_total ? (size_t)(16 * off / c->bar_total) : 0;
	for (i = 0; i < 16; i++)
		bar[i] = i < fill ? '#' : '-';
	bar[16] = '\0';
	rate = el > 0 ? (double)(off - c->bar_start) * 1000.0 / (double)el : 0;
	clock_str(el, e, sizeof(e));
	if (rate > 0 && off < c->bar_total)
		clock_str(
		    (uint64_t)((double)(c->bar_total - off) / rate * 1000), eta,
		    sizeof(eta));
	else
		snprintf(eta, sizeof(eta), "-:--");
	fprintf(stderr, "\r[%s] %5.1f%% %6.1f/%.1f KiB %6.1f KiB/s %s ETA %s",
	        bar, pct, (double)off / 1024, (double)c->bar_total / 1024,
	        rate / 1024, e, eta);
	if (c->bar_window != 0)
		fprintf(stderr, " win %u", c->bar_window);
	fputs("\033[K", stderr);
	fflush(stderr);
	c->bar_drawn = true;
}

void
cli_bar_end(struct smp_cli *c)
{
	if (c->bar_drawn) {
		fputc('\n', stderr);
		c->bar_drawn = false;
	}
	bar_owner = NULL;
}

static void
log_prewrite(void)
{
	bar_clear();
}

/* Waiting. */

static void
tick_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	(void)arg;
}

static void
signal_cb(evutil_socket_t sig, short ev, void *arg)
{
	struct smp_cli *c = arg;

	(void)sig;
	(void)ev;
	c->interrupted = true;
	/* An upload stops at a packet boundary; its end is then awaited. */
	if (c->up != NULL)
		upload_abort(c->up);
}

int
cli_wait(struct smp_cli *c, const bool *done, uint64_t deadline_ms)
{
	while (!*done) {
		if (c->interrupted && c->up == NULL)
			return -1;
		if (deadline_ms != 0 && now_ms() >= deadline_ms)
			return -2;
		if (event_base_loop(c->base, EVLOOP_ONCE) == -1)
			return -1;
	}
	return 0;
}

struct ipc_wait {
	bool done;
	Ipc__Reply *copy;
};

static void
on_ipc_reply(const Ipc__Envelope *env, void *arg)
{
	struct ipc_wait *iw = arg;
	size_t n;
	uint8_t *buf;

	if (env->body_case != IPC__ENVELOPE__BODY_REPLY)
		return;
	n = ipc__reply__get_packed_size(env->reply);
	buf = xmalloc(n + 1);
	ipc__reply__pack(env->reply, buf);
	iw->copy = ipc__reply__unpack(NULL, n, buf);
	free(buf);
	if (iw->copy == NULL)
		fatalx("cannot copy a reply", NULL);
	iw->done = true;
}

Ipc__Reply *
cli_ipc(struct smp_cli *c, Ipc__Envelope *env)
{
	struct ipc_wait iw = {0};
	uint64_t id;

	if ((id = worker_request(c->w, SMP_BOARD_ID, env, on_ipc_reply, &iw)) ==
	    0) {
		cli_fail(c, SMP_EX_FAIL,
		         "cannot send the request to the worker");
		return NULL;
	}
	if (cli_wait(c, &iw.done, 0) != 0) {
		worker_forget(c->w, id);
		cli_fail(c, SMP_EX_FAIL, "interrupted");
		return NULL;
	}
	return iw.copy;
}

struct cmd_wait {
	bool done;
	struct smp_cmd_result *res;
	char error[512];
};

static void
on_cmd_result(struct smp_cmd_result *r, void *arg)
{
	struct cmd_wait *cw = arg;

	*cw->res = *r;
	snprintf(cw->error, sizeof(cw->error), "%s", r->error);
	memset(&r->tree, 0, sizeof(r->tree)); /* ours now */
	cw->done = true;
}

/* The error text outlives the callback in here. */
static char cmd_error[512];

int
cli_cmd(struct smp_cli *c, const struct smpg_cmd *sc, const uint8_t *payload,
        ssize_t len, uint32_t timeout_ms, struct smp_cmd_result *res)
{
	struct smp_cmd cmd = {
	    .op = sc->op,
	    .group = sc->group,
	    .id = sc->id,
	    .payload = payload,
	    .len = len > 0 ? (size_t)len : 0,
	    .timeout_ms = timeout_ms,
	};
	struct cmd_wait cw = {.res = res};
	struct smp_cmd_req *r;

	memset(res, 0, sizeof(*res));
	if (len < 0) {
		cli_fail(c, SMP_EX_FAIL, "%s: the request does not fit",
		         sc->name);
		return -1;
	}
	if ((r = smp_cmd_run(c->w, SMP_BOARD_ID, &cmd, on_cmd_result, &cw)) ==
	    NULL) {
		cli_fail(c, SMP_EX_FAIL, "%s: cannot send the request",
		         sc->name);
		return -1;
	}
	if (cli_wait(c, &cw.done, 0) != 0) {
		smp_cmd_cancel(r);
		cli_fail(c, SMP_EX_FAIL, "%s: interrupted", sc->name);
		return -1;
	}
	snprintf(cmd_error, sizeof(cmd_error), "%s", cw.error);
	res->error = cmd_error;
	return 0;
}

const char *
cli_explain(struct smp_cli *c, const char *what, const struct smpg_cmd *sc,
            const struct smp_cmd_result *res, char *buf, size_t cap)
{
	const char *name;
	char ns[400];

	switch (res->status) {
	case SMP_CMD_BOARD_ERROR:
		if (sc != NULL &&
		    smpg_not_supported(res->board_rc, res->board_v2)) {
			snprintf(buf, cap, "%s",
			         smpg_not_supported_msg(sc, ns, sizeof(ns)));
			return buf;
		}
		name = res->board_v2
		           ? smpg_group_rc_name(res->board_group, res->board_rc)
		           : NULL;
		snprintf(buf, cap, "%s: the board refused: %s%s%s%s", what,
		         res->error, name ? " (" : "", name ? name : "",
		         name ? ")" : "");
		return buf;
	case SMP_CMD_TIMEOUT:
		snprintf(buf, cap, "%s: timeout: %s; %s", what, res->error,
		         cli_link_hint(c));
		return buf;
	default:
		snprintf(buf, cap, "%s: %s%s%s", what,
		         smp_cmd_status_name(res->status),
		         res->error[0] ? ": " : "", res->error);
		return buf;
	}
}

const char *
cli_explain_reply(struct smp_cli *c, const char *what, const Ipc__Reply *r,
                  char *buf, size_t cap)
{
	struct smp_cmd_result res;

	memset(&res, 0, sizeof(res));
	switch (r->status) {
	case IPC__REPLY__STATUS__OK:
		res.status = SMP_CMD_OK;
		break;
	case IPC__REPLY__STATUS__BOARD_ERROR:
		res.status = SMP_CMD_BOARD_ERROR;
		break;
	case IPC__REPLY__STATUS__TIMEOUT:
		res.status = SMP_CMD_TIMEOUT;
		break;
	case IPC__REPLY__STATUS__LINK_DOWN:
		res.status = SMP_CMD_LINK_DOWN;
		break;
	case IPC__REPLY__STATUS__BAD_REQUEST:
		res.status = SMP_CMD_BAD_REQUEST;
		break;
	case IPC__REPLY__STATUS__ABORTED:
		res.status = SMP_CMD_ABORTED;
		break;
	case IPC__REPLY__STATUS__BUSY:
		res.status = SMP_CMD_BUSY;
		break;
	default:
		res.status = SMP_CMD_PROTOCOL;
		break;
	}
	res.error = r->error != NULL ? r->error : "";
	res.board_rc = r->board_rc;
	res.board_group = (uint16_t)r->board_group;
	res.board_v2 = r->board_v2;
	return cli_explain(c, what, NULL, &res, buf, cap);
}

int
cli_cmd_ok(struct smp_cli *c, const struct smpg_cmd *sc, const uint8_t *payload,
           ssize_t len, struct smp_tree *tree)
{
	struct smp_cmd_result res;
	char msg[1024];

	if (cli_cmd(c, sc, payload, len, 0, &res) == -1)
		return SMP_EX_FAIL;
	if (res.status != SMP_CMD_OK) {
		cli_explain(c, sc->name, sc, &res, msg, sizeof(msg));
		smp_tree_free(&res.tree);
		return cli_fail(c, SMP_EX_FAIL, "%s", msg);
	}
	*tree = res.tree;
	return 0;
}

/* The board's first answer: its parameters, within connect_ms. */
static int
connect_board(struct smp_cli *c)
{
	Ipc__Envelope env = IPC__ENVELOPE__INIT;
	Ipc__Params params = IPC__PARAMS__INIT;
	struct ipc_wait iw = {0};
	uint64_t id;
	char msg[1024];
	int rc;

	env.body_case = IPC__ENVELOPE__BODY_PARAMS;
	env.params = &params;
	if ((id = worker_request(c->w, SMP_BOARD_ID, &env, on_ipc_reply,
	                         &iw)) == 0)
		return cli_fail(c, SMP_EX_FAIL,
		                "cannot send the request to the worker");
	rc = cli_wait(c, &iw.done, now_ms() + (uint64_t)c->connect_ms);
	if (rc != 0) {
		char d[DURATION_BUFSZ];

		worker_forget(c->w, id);
		if (rc == -1)
			return cli_fail(c, SMP_EX_FAIL, "interrupted");
		/* A device that went away says so. */
		if (c->link.kind == WORKER_SERIAL &&
		    access(c->link.device, F_OK) == -1)
			return cli_fail(c, SMP_EX_FAIL, "%s: %s",
			                c->link.device, strerror(errno));
		return cli_fail(
		    c, SMP_EX_FAIL, "no answer from the board %s within %s; %s",
		    c->where, duration_format(c->connect_ms, d, sizeof(d)),
		    cli_link_hint(c));
	}
	if (iw.copy->status != IPC__REPLY__STATUS__OK) {
		char what[400];

		snprintf(what, sizeof(what), "no answer from the board %s",
		         c->where);
		cli_explain_reply(c, what, iw.copy, msg, sizeof(msg));
		ipc__reply__free_unpacked(iw.copy, NULL);
		return cli_fail(c, SMP_EX_FAIL, "%s", msg);
	}
	if (iw.copy->result_case == IPC__REPLY__RESULT_PARAMS &&
	    iw.copy->params->supported) {
		c->have_params = true;
		c->buf_size = iw.copy->params->buf_size;
		c->buf_count = iw.copy->params->buf_count;
	}
	ipc__reply__free_unpacked(iw.copy, NULL);
	return 0;
}

/* Never beside the daemon (or another smp) on the same link. */
static int
cli_link_lock(struct smp_cli *c)
{
	char err[512], *key;
	pid_t holder;

	key = link_key_worker(&c->link, c->peer);
	c->lock_fd = link_lock(key, &holder, err, sizeof(err));
	free(key);
	if (c->lock_fd == -1)
		return cli_fail(c, SMP_EX_FAIL, "%s", err);
	return 0;
}

int
cli_start(struct smp_cli *c)
{
	char err[512];

	if (c->w != NULL)
		return 0;
	/* Our lock first: a holder of ours is named the same way always. */
	if (cli_link_lock(c) != 0 || cli_link_precheck(c) != 0)
		return SMP_EX_FAIL;
	c->w = worker_spawn(c->ws,
	                    c->link.kind == WORKER_SERIAL ? "smp-serial"
	                    : c->link.kind == WORKER_UDP  ? "smp-udp"
	                                                  : "smp-ble",
	                    &c->link, err, sizeof(err));
	if (c->w == NULL)
		return cli_fail(c, SMP_EX_FAIL, "%s", err);
	if (c->link.kind == WORKER_BLE)
		worker_add_board(c->w, SMP_BOARD_ID, c->peer, NULL);
	return connect_board(c);
}

/* Options. */

enum {
	O_TRANSPORT = 256,
	O_CONNTYPE,
	O_CONNSTRING,
	O_DEVICE,
	O_BAUD,
	O_MTU,
	O_ADDRESS,
	O_DEVICE_INDEX,
	O_PEER_NAME,
	O_ATT_SOCKET,
	O_BOARD,
	O_WINDOW,
	O_JSON,
	O_TIMEOUT,
	O_ERASE_TIMEOUT,
	O_CONNECT_TIMEOUT,
	O_RETRIES,
	O_SMP_V2,
	O_STALL,
	O_REBOOT_TIMEOUT,
	O_CONFIRM_TIMEOUT,
	O_SELF_CONFIRM,
	O_NO_RESUME,
	O_TYPE,
};

static const struct option smp_opts[] = {
    {"transport", required_argument, NULL, O_TRANSPORT},
    {"conntype", required_argument, NULL, O_CONNTYPE},
    {"connstring", required_argument, NULL, O_CONNSTRING},
    {"device", required_argument, NULL, O_DEVICE},
    {"baud", required_argument, NULL, O_BAUD},
    {"mtu", required_argument, NULL, O_MTU},
    {"address", required_argument, NULL, O_ADDRESS},
    {"device-index", required_argument, NULL, O_DEVICE_INDEX},
    {"peer-name", required_argument, NULL, O_PEER_NAME},
    {"att-socket", required_argument, NULL, O_ATT_SOCKET},
    {"board", required_argument, NULL, O_BOARD},
    {"config", required_argument, NULL, 'c'},
    {"window", required_argument, NULL, O_WINDOW},
    {"json", no_argument, NULL, O_JSON},
    {"quiet", no_argument, NULL, 'q'},
    {"timeout", required_argument, NULL, O_TIMEOUT},
    {"erase-timeout", required_argument, NULL, O_ERASE_TIMEOUT},
    {"connect-timeout", required_argument, NULL, O_CONNECT_TIMEOUT},
    {"retries", required_argument, NULL, O_RETRIES},
    {"smp-v2", no_argument, NULL, O_SMP_V2},
    {"stall", required_argument, NULL, O_STALL},
    {"reboot-timeout", required_argument, NULL, O_REBOOT_TIMEOUT},
    {"confirm-timeout", required_argument, NULL, O_CONFIRM_TIMEOUT},
    {"self-confirm", no_argument, NULL, O_SELF_CONFIRM},
    {"no-resume", no_argument, NULL, O_NO_RESUME},
    {"type", required_argument, NULL, O_TYPE},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int
parse_u32(const char *opt, const char *s, uint32_t max, uint32_t *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v > max) {
		fprintf(stderr,
		        "smp: %s: expected a number from 0 to %u, got "
		        "\"%s\"\n",
		        opt, max, s);
		return -1;
	}
	*out = (uint32_t)v;
	return 0;
}

static int
parse_ms(const char *opt, const char *s, int64_t *out)
{
	char why[128];
	int64_t ms;

	if (duration_parse(s, &ms, why, sizeof(why)) == -1 || ms <= 0 ||
	    ms > UINT32_MAX) {
		fprintf(stderr,
		        "smp: %s: expected a positive duration like "
		        "\"5s\" or \"300ms\", got \"%s\"\n",
		        opt, s);
		return -1;
	}
	*out = ms;
	return 0;
}

static const struct smp_command *
find_command(int argc, char **argv, int *used)
{
	size_t i;

	for (i = 0; i < NCOMMANDS && argc > 0; i++) {
		if (strcmp(commands[i].w1, argv[0]) != 0)
			continue;
		if (commands[i].w2 == NULL) {
			*used = 1;
			return &commands[i];
		}
		if (argc > 1 && strcmp(commands[i].w2, argv[1]) == 0) {
			*used = 2;
			return &commands[i];
		}
	}
	return NULL;
}

/* Everything after "shell exec" is the board's command line. */
static int
shell_cut(int argc, char **argv)
{
	int i;

	for (i = 1; i + 1 < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			return argc;
		if (strcmp(argv[i], "shell") == 0 &&
		    strcmp(argv[i + 1], "exec") == 0)
			return i + 2;
	}
	return argc;
}

struct parsed {
	struct smp_link_flags lf;
	bool help;
	int64_t timeout_ms, erase_ms;
	uint32_t retries;
	bool retries_set;
};

static int
parse_options(struct smp_cli *c, struct parsed *p, int argc, char **argv)
{
	int ch;
	int64_t ms;

	optind = 0; /* the caller may have used getopt already */
	while ((ch = getopt_long(argc, argv, "c:qvh", smp_opts, NULL)) != -1) {
		switch (ch) {
		case O_TRANSPORT:
			p->lf.transport = optarg;
			break;
		case O_CONNTYPE:
			p->lf.conntype = optarg;
			break;
		case O_CONNSTRING:
			p->lf.connstring = optarg;
			break;
		case O_DEVICE:
			p->lf.device = optarg;
			break;
		case O_BAUD:
			p->lf.baud = optarg;
			break;
		case O_MTU:
			p->lf.mtu = optarg;
			break;
		case O_ADDRESS:
			p->lf.address = optarg;
			break;
		case O_DEVICE_INDEX:
			p->lf.device_index = optarg;
			break;
		case O_PEER_NAME:
			p->lf.peer = optarg;
			break;
		case O_ATT_SOCKET:
			p->lf.att_socket = optarg;
			break;
		case O_BOARD:
			p->lf.board = optarg;
			break;
		case 'c':
			p->lf.config = optarg;
			break;
		case O_WINDOW:
			if (parse_u32("--window", optarg, 64, &c->window))
				return -1;
			break;
		case O_JSON:
			c->json = true;
			break;
		case 'q':
			c->quiet = true;
			break;
		case O_TIMEOUT:
			if (parse_ms("--timeout", optarg, &p->timeout_ms))
				return -1;
			p->lf.timeout_set = true;
			break;
		case O_ERASE_TIMEOUT:
			if (parse_ms("--erase-timeout", optarg, &p->erase_ms))
				return -1;
			p->lf.erase_set = true;
			break;
		case O_CONNECT_TIMEOUT:
			if (parse_ms("--connect-timeout", optarg,
			             &c->connect_ms))
				return -1;
			break;
		case O_RETRIES:
			if (parse_u32("--retries", optarg, 100, &p->retries))
				return -1;
			p->retries_set = true;
			break;
		case O_SMP_V2:
			c->link.smp_version = 1;
			break;
		case O_STALL:
			if (parse_ms("--stall", optarg, &c->stall_ms))
				return -1;
			p->lf.stall_set = true;
			break;
		case O_REBOOT_TIMEOUT:
			if (parse_ms("--reboot-timeout", optarg, &ms))
				return -1;
			c->reboot_ms = ms;
			p->lf.reboot_set = true;
			break;
		case O_CONFIRM_TIMEOUT:
			if (parse_ms("--confirm-timeout", optarg, &ms))
				return -1;
			c->confirm_ms = ms;
			p->lf.confirm_set = true;
			break;
		case O_SELF_CONFIRM:
			c->self_confirm = true;
			break;
		case O_NO_RESUME:
			c->no_resume = true;
			break;
		case O_TYPE:
			c->hash_type = optarg;
			break;
		case 'v':
			log_setverbose(1);
			break;
		case 'h':
			p->help = true;
			break;
		default:
			return -1;
		}
	}
	return 0;
}

/*
 * Options anywhere among the words (GNU getopt moves the words to the
 * end), except after "shell exec": that is the board's command line.
 */
static int
collect(struct smp_cli *c, struct parsed *p, int argc, char **argv,
        char ***words, int *nwords)
{
	int cut = shell_cut(argc, argv), i, n = 0;
	char **w;

	if (parse_options(c, p, cut, argv) == -1)
		return -1;
	w = xcalloc((size_t)argc + 1, sizeof(*w));
	for (i = optind; i < cut; i++)
		w[n++] = argv[i];
	for (i = cut; i < argc; i++)
		w[n++] = argv[i];
	*words = w;
	*nwords = n;
	return 0;
}

static int
run(struct smp_cli *c, const struct smp_command *cmd, int argc, char **argv)
{
	struct timeval tv = {0, TICK_MS * 1000};
	int rc;

	if ((c->base = event_base_new()) == NULL)
		return cli_fail(c, SMP_EX_FAIL, "cannot create the event loop");
	c->ws = workers_new(c->base);
	c->tick = event_new(c->base, -1, EV_PERSIST, tick_cb, c);
	c->sigint = evsignal_new(c->base, SIGINT, signal_cb, c);
	c->sigterm = evsignal_new(c->base, SIGTERM, signal_cb, c);
	event_add(c->tick, &tv);
	evsignal_add(c->sigint, NULL);
	evsignal_add(c->sigterm, NULL);
	log_set_prewrite(log_prewrite);

	rc = cmd->run(c, argc, argv);

	log_set_prewrite(NULL);
	cli_bar_end(c);
	event_free(c->tick);
	event_free(c->sigint);
	event_free(c->sigterm);
	workers_free(c->ws);
	event_base_free(c->base);
	if (c->lock_fd != -1)
		close(c->lock_fd);
	return rc;
}

int
cmd_smp(int argc, char **argv)
{
	const struct smp_command *cmd;
	struct smp_cli c;
	struct parsed p;
	char **words = NULL;
	int nwords = 0, used = 0, rc;

	memset(&c, 0, sizeof(c));
	c.lock_fd = -1;
	memset(&p, 0, sizeof(p));
	c.window = 0;
	if (collect(&c, &p, argc, argv, &words, &nwords) == -1) {
		fprintf(stderr, "smp: see \"rdfm-mcumgr-client smp --help\"\n");
		return SMP_EX_USAGE;
	}
	cmd = find_command(nwords, words, &used);
	/* "shell exec --help" alone asks us, not the board's shell. */
	if (cmd != NULL && cmd->max < 0 && nwords - used == 1 &&
	    (strcmp(words[used], "--help") == 0 ||
	     strcmp(words[used], "-h") == 0))
		p.help = true;
	if (p.help) {
		if (cmd != NULL)
			command_usage(stdout, cmd);
		else
			usage(stdout);
		free(words);
		return 0;
	}
	if (cmd == NULL) {
		if (nwords == 0)
			fprintf(stderr, "smp: no command given\n");
		else
			fprintf(stderr, "smp: unknown command \"%s%s%s\"\n",
			        words[0], nwords > 1 ? " " : "",
			        nwords > 1 ? words[1] : "");
		fprintf(stderr, "smp: see \"rdfm-mcumgr-client smp --help\"\n");
		free(words);
		return SMP_EX_USAGE;
	}
	if (nwords - used < cmd->min ||
	    (cmd->max >= 0 && nwords - used > cmd->max)) {
		fprintf(stderr, "smp: %s%s%s takes %s\n", cmd->w1,
		        cmd->w2 ? " " : "", cmd->w2 ? cmd->w2 : "",
		        cmd->args[0] ? cmd->args : "no arguments");
		free(words);
		return SMP_EX_USAGE;
	}
	/* Timeouts the flags set, before the link fills in its defaults. */
	c.link.request_timeout_ms = (uint32_t)p.timeout_ms;
	c.link.erase_timeout_ms = (uint32_t)p.erase_ms;
	c.link.retries = p.retries_set ? p.retries : 5;
	if ((rc = cli_link_resolve(&c, &p.lf)) != 0) {
		free(words);
		return rc;
	}
	/*
	 * Logs: the supervisor's warnings (a worker restarted, an upload
	 * resumed), errors only with -q, the workers' only with -v.
	 */
	if (!log_getverbose())
		log_setlevel(c.quiet ? LOG_LEVEL_ERROR : LOG_LEVEL_WARN);
	c.bar = !c.json && !c.quiet && isatty(STDERR_FILENO);
	signal(SIGPIPE, SIG_IGN);
	rc = run(&c, cmd, nwords - used, words + used);
	free(words);
	return rc;
}
