/*
 * `rdfm-mcumgr-client smp ...`: one SMP operation on one board, for
 * operators and tests.  It takes the daemon's own path: spawn the worker the
 * link needs, send it the operation, print the result.
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <json-c/json.h>
#include <openssl/crypto.h>

#include "duration.h"
#include "ipc.h"
#include "log.h"
#include "mcuboot.h"
#include "supervisor.h"
#include "upload.h"
#include "workers.h"
#include "xmalloc.h"

#define BOARD_ID 1
#define EX_FAIL  1

enum smp_command {
	C_ECHO,
	C_PARAMS,
	C_LIST,
	C_UPLOAD,
	C_TEST,
	C_CONFIRM,
	C_RESET,
};

struct smp_run {
	enum smp_command cmd;
	const char *arg; /* echo text, upload file, hash (hex) */
	uint8_t hash[32];
	bool has_hash;
	uint32_t window;
	bool json;
	bool bar; /* progress bar on the terminal */

	struct event_base *base;
	struct worker *w;
	struct upload *up;
	uint64_t started_ms;
	uint64_t bar_ms;
	int rc;
};

static void
usage(FILE *f)
{
	fprintf(f,
	        "usage: rdfm-mcumgr-client smp LINK [options] COMMAND\n"
	        "LINK:\n"
	        "  --transport serial --device PATH [--baud N] [--mtu N]\n"
	        "  --transport udp --address HOST:PORT\n"
	        "  --transport ble --device-index N --peer-name NAME "
	        "[--att-socket @NAME]\n"
	        "     (--att-socket: the virtual board's socket, simulation "
	        "only)\n"
	        "COMMAND:\n"
	        "  echo TEXT\n"
	        "  params\n"
	        "  image list\n"
	        "  image upload FILE [--window N]\n"
	        "  image test HASH\n"
	        "  image confirm [HASH]\n"
	        "  reset\n"
	        "options:\n"
	        "  --json              print one JSON object\n"
	        "  --timeout DUR       one SMP exchange (default 5s)\n"
	        "  --erase-timeout DUR the first upload packet (default 60s)\n"
	        "  --retries N         retransmissions of a request (default "
	        "5)\n"
	        "  --smp-v2            speak SMP version 2\n"
	        "  -v, --verbose       debug logs\n");
}

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
hex(const uint8_t *b, size_t n, char *out)
{
	size_t i;

	for (i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
	out[2 * n] = '\0';
}

static int
parse_hash(const char *s, uint8_t out[32])
{
	unsigned char *buf;
	long len = 0;

	if (strlen(s) != 64)
		return -1;
	if ((buf = OPENSSL_hexstr2buf(s, &len)) == NULL)
		return -1;
	if (len != 32) {
		OPENSSL_free(buf);
		return -1;
	}
	memcpy(out, buf, 32);
	OPENSSL_free(buf);
	return 0;
}

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
parse_ms(const char *opt, const char *s, uint32_t *out)
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
	*out = (uint32_t)ms;
	return 0;
}

static const char *
status_name(Ipc__Reply__Status s)
{
	switch (s) {
	case IPC__REPLY__STATUS__OK:
		return "ok";
	case IPC__REPLY__STATUS__BOARD_ERROR:
		return "board error";
	case IPC__REPLY__STATUS__TIMEOUT:
		return "timeout";
	case IPC__REPLY__STATUS__LINK_DOWN:
		return "link down";
	case IPC__REPLY__STATUS__PROTOCOL:
		return "protocol error";
	case IPC__REPLY__STATUS__BAD_REQUEST:
		return "bad request";
	case IPC__REPLY__STATUS__ABORTED:
		return "aborted";
	case IPC__REPLY__STATUS__BUSY:
		return "board busy";
	default:
		return "unknown status";
	}
}

static void
print_json(struct json_object *o)
{
	printf("%s\n",
	       json_object_to_json_string_ext(
	           o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

/* Every failure ends here: the reason on stderr, and as JSON if asked. */
static void fail(struct smp_run *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void
fail(struct smp_run *r, const char *fmt, ...)
{
	struct json_object *o;
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (r->bar)
		fputc('\n', stderr);
	fprintf(stderr, "smp: %s\n", msg);
	if (r->json) {
		o = json_object_new_object();
		json_object_object_add(o, "error", json_object_new_string(msg));
		print_json(o);
	}
	r->rc = EX_FAIL;
}

static void
fail_reply(struct smp_run *r, const char *what, const Ipc__Reply *reply)
{
	fail(r, "%s: %s%s%s", what, status_name(reply->status),
	     reply->error[0] ? ": " : "", reply->error);
}

static void
print_images(struct smp_run *r, const Ipc__ImageList *l)
{
	struct json_object *o, *a, *s;
	char h[65];
	size_t i;

	if (r->json) {
		o = json_object_new_object();
		a = json_object_new_array();
		for (i = 0; i < l->n_slots; i++) {
			const Ipc__ImageSlot *sl = l->slots[i];

			s = json_object_new_object();
			json_object_object_add(s, "slot",
			                       json_object_new_int64(sl->slot));
			json_object_object_add(
			    s, "version", json_object_new_string(sl->version));
			if (sl->hash.len == 32)
				hex(sl->hash.data, 32, h);
			else
				h[0] = '\0';
			json_object_object_add(s, "hash",
			                       json_object_new_string(h));
			json_object_object_add(
			    s, "bootable",
			    json_object_new_boolean(sl->bootable));
			json_object_object_add(
			    s, "pending", json_object_new_boolean(sl->pending));
			json_object_object_add(
			    s, "confirmed",
			    json_object_new_boolean(sl->confirmed));
			json_object_object_add(
			    s, "active", json_object_new_boolean(sl->active));
			json_object_object_add(
			    s, "permanent",
			    json_object_new_boolean(sl->permanent));
			json_object_array_add(a, s);
		}
		json_object_object_add(o, "images", a);
		print_json(o);
		return;
	}
	if (l->n_slots == 0)
		printf("no images\n");
	for (i = 0; i < l->n_slots; i++) {
		const Ipc__ImageSlot *sl = l->slots[i];

		if (sl->hash.len == 32)
			hex(sl->hash.data, 32, h);
		else
			snprintf(h, sizeof(h), "(none)");
		printf("image=%u slot=%u\n", sl->image, sl->slot);
		printf("    version: %s\n", sl->version);
		printf("    bootable: %s\n", sl->bootable ? "true" : "false");
		printf("    flags:%s%s%s%s\n", sl->pending ? " pending" : "",
		       sl->confirmed ? " confirmed" : "",
		       sl->active ? " active" : "",
		       sl->permanent ? " permanent" : "");
		printf("    hash: %s\n", h);
	}
}

static void
on_reply(const Ipc__Envelope *env, void *arg)
{
	struct smp_run *r = arg;
	const Ipc__Reply *reply;
	struct json_object *o;

	if (env->body_case != IPC__ENVELOPE__BODY_REPLY)
		return;
	reply = env->reply;
	event_base_loopbreak(r->base);
	if (reply->status != IPC__REPLY__STATUS__OK) {
		fail_reply(r, "request failed", reply);
		return;
	}
	r->rc = 0;
	switch (r->cmd) {
	case C_ECHO:
		if (reply->result_case != IPC__REPLY__RESULT_ECHO) {
			fail(r, "echo: the worker's reply has no text");
			return;
		}
		if (r->json) {
			o = json_object_new_object();
			json_object_object_add(
			    o, "echo", json_object_new_string(reply->echo));
			print_json(o);
		} else
			printf("%s\n", reply->echo);
		break;
	case C_PARAMS:
		if (reply->result_case != IPC__REPLY__RESULT_PARAMS) {
			fail(r, "params: the worker's reply has no parameters");
			return;
		}
		if (r->json) {
			o = json_object_new_object();
			json_object_object_add(
			    o, "supported",
			    json_object_new_boolean(reply->params->supported));
			json_object_object_add(
			    o, "buf_size",
			    json_object_new_int64(reply->params->buf_size));
			json_object_object_add(
			    o, "buf_count",
			    json_object_new_int64(reply->params->buf_count));
			print_json(o);
		} else if (!reply->params->supported)
			printf("the board does not report MCUmgr parameters\n");
		else
			printf("buf_size: %u\nbuf_count: %u\n",
			       reply->params->buf_size,
			       reply->params->buf_count);
		break;
	case C_LIST:
	case C_TEST:
	case C_CONFIRM:
		if (reply->result_case == IPC__REPLY__RESULT_IMAGES)
			print_images(r, reply->images);
		else if (r->cmd == C_LIST) {
			fail(r, "image list: the worker's reply has no images");
			return;
		} else if (r->json) {
			o = json_object_new_object();
			json_object_object_add(o, "ok",
			                       json_object_new_boolean(1));
			print_json(o);
		} else
			printf("ok\n");
		break;
	case C_RESET:
		if (r->json) {
			o = json_object_new_object();
			json_object_object_add(o, "reset",
			                       json_object_new_boolean(1));
			print_json(o);
		} else
			printf("reset\n");
		break;
	case C_UPLOAD:
		break;
	}
}

static void
draw_bar(struct smp_run *r, uint64_t off, uint64_t total, bool force)
{
	uint64_t now = now_ms(), el = now - r->started_ms;
	char bar[31];
	size_t i, fill;
	double pct, rate;

	if (!r->bar || (!force && now - r->bar_ms < 100))
		return;
	r->bar_ms = now;
	pct = total ? 100.0 * (double)off / (double)total : 0;
	fill = total ? (size_t)(30 * off / total) : 0;
	for (i = 0; i < 30; i++)
		bar[i] = i < fill ? '#' : ' ';
	bar[30] = '\0';
	rate = el ? (double)off * 1000.0 / (double)el : 0;
	fprintf(stderr, "\r[%s] %5.1f%% %" PRIu64 "/%" PRIu64 " B %8.0f B/s ",
	        bar, pct, off, total, rate);
	fflush(stderr);
}

static void
on_upload_progress(uint64_t off, uint64_t total, void *arg)
{
	draw_bar(arg, off, total, false);
}

static void
on_upload_done(const Ipc__Reply *reply, void *arg)
{
	struct smp_run *r = arg;
	const Ipc__UploadResult *res;
	struct json_object *o;
	uint64_t el = now_ms() - r->started_ms, total = upload_total(r->up);
	double rate = el ? (double)total * 1000.0 / (double)el : 0;
	char h[65];

	event_base_loopbreak(r->base);
	if (reply->status != IPC__REPLY__STATUS__OK) {
		fail_reply(r, "image upload", reply);
		return;
	}
	draw_bar(r, total, total, true);
	if (r->bar)
		fputc('\n', stderr);
	r->rc = 0;
	res = reply->result_case == IPC__REPLY__RESULT_UPLOAD ? reply->upload
	                                                      : NULL;
	if (r->json) {
		o = json_object_new_object();
		json_object_object_add(o, "bytes",
		                       json_object_new_int64((int64_t)total));
		json_object_object_add(o, "elapsed_ms",
		                       json_object_new_int64((int64_t)el));
		json_object_object_add(o, "bytes_per_s",
		                       json_object_new_int64((int64_t)rate));
		if (res != NULL) {
			json_object_object_add(
			    o, "window", json_object_new_int64(res->window));
			json_object_object_add(
			    o, "chunk", json_object_new_int64(res->chunk));
			json_object_object_add(
			    o, "retransmits",
			    json_object_new_int64(res->retransmits));
			json_object_object_add(
			    o, "rewinds",
			    json_object_new_int64(upload_rewinds(r->up)));
		}
		json_object_object_add(
		    o, "resumes", json_object_new_int64(upload_resumes(r->up)));
		if (r->has_hash) {
			hex(r->hash, 32, h);
			json_object_object_add(o, "hash",
			                       json_object_new_string(h));
		}
		print_json(o);
		return;
	}
	printf("uploaded %" PRIu64 " bytes in %.2f s (%.0f B/s)", total,
	       (double)el / 1000.0, rate);
	if (res != NULL)
		printf(", window %u, chunk %u, retransmits %u, rewinds %u",
		       res->window, res->chunk, res->retransmits,
		       upload_rewinds(r->up));
	if (upload_resumes(r->up) > 0)
		printf(", resumed %u times", upload_resumes(r->up));
	printf("\n");
	if (r->has_hash) {
		hex(r->hash, 32, h);
		printf("image hash: %s\n", h);
	}
}

static void
on_signal(evutil_socket_t sig, short ev, void *arg)
{
	struct smp_run *r = arg;

	(void)ev;
	if (r->up != NULL) {
		log_warnx("interrupted, aborting the upload", "signal=%d",
		          (int)sig);
		upload_abort(r->up);
		return;
	}
	fail(r, "interrupted by signal %d", (int)sig);
	event_base_loopbreak(r->base);
}

/*
 * Refuse a file that is not an MCUboot image before touching a board, and
 * learn the hash the board will report for it.
 */
static int
check_image(struct smp_run *r, const char *path)
{
	struct mcuboot_stream *s;
	struct mcuboot_image img;
	uint8_t buf[65536];
	char why[256];
	FILE *f;
	size_t n;
	int ret = -1;

	if ((f = fopen(path, "rb")) == NULL) {
		fail(r, "image upload: %s: %s", path, strerror(errno));
		return -1;
	}
	s = mcuboot_stream_new();
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
		if (mcuboot_stream_feed(s, buf, n, why, sizeof(why)) == -1)
			goto bad;
	}
	if (ferror(f)) {
		fail(r, "image upload: %s: read error", path);
		goto out;
	}
	if (mcuboot_stream_finish(s, &img, why, sizeof(why)) == -1)
		goto bad;
	memcpy(r->hash, img.hash, 32);
	r->has_hash = true;
	ret = 0;
	goto out;
bad:
	fail(r, "image upload: %s is not a valid MCUboot image: %s", path, why);
out:
	mcuboot_stream_free(s);
	fclose(f);
	return ret;
}

static void
send_request(struct smp_run *r)
{
	Ipc__Envelope env = IPC__ENVELOPE__INIT;
	Ipc__Echo echo;
	Ipc__Params params = IPC__PARAMS__INIT;
	Ipc__ImageStateRead isr = IPC__IMAGE_STATE_READ__INIT;
	Ipc__ImageSetState iss = IPC__IMAGE_SET_STATE__INIT;
	Ipc__Reset reset = IPC__RESET__INIT;

	ipc__echo__init(&echo);
	switch (r->cmd) {
	case C_ECHO:
		echo.text = (char *)(uintptr_t)r->arg;
		env.body_case = IPC__ENVELOPE__BODY_ECHO;
		env.echo = &echo;
		break;
	case C_PARAMS:
		env.body_case = IPC__ENVELOPE__BODY_PARAMS;
		env.params = &params;
		break;
	case C_LIST:
		env.body_case = IPC__ENVELOPE__BODY_IMAGE_STATE;
		env.image_state = &isr;
		break;
	case C_TEST:
	case C_CONFIRM:
		if (r->has_hash) {
			iss.hash.data = r->hash;
			iss.hash.len = 32;
		}
		iss.confirm = r->cmd == C_CONFIRM;
		env.body_case = IPC__ENVELOPE__BODY_IMAGE_SET_STATE;
		env.image_set_state = &iss;
		break;
	case C_RESET:
		env.body_case = IPC__ENVELOPE__BODY_RESET;
		env.reset = &reset;
		break;
	case C_UPLOAD:
		return;
	}
	if (worker_request(r->w, BOARD_ID, &env, on_reply, r) == 0) {
		fail(r, "cannot send the request to the worker");
		event_base_loopbreak(r->base);
	}
}

/* COMMAND words after the options; returns -1 (with a message) if wrong. */
static int
parse_command(struct smp_run *r, int argc, char **argv)
{
	const char *c = argc > 0 ? argv[0] : NULL;
	const char *sub = argc > 1 ? argv[1] : NULL;

	if (c == NULL) {
		fprintf(stderr, "smp: no command given\n");
		return -1;
	}
	if (strcmp(c, "echo") == 0 && argc == 2) {
		r->cmd = C_ECHO;
		r->arg = argv[1];
		if (strlen(r->arg) > 256) {
			fprintf(stderr, "smp: echo: text longer than 256 "
			                "bytes\n");
			return -1;
		}
		return 0;
	}
	if (strcmp(c, "params") == 0 && argc == 1) {
		r->cmd = C_PARAMS;
		return 0;
	}
	if (strcmp(c, "reset") == 0 && argc == 1) {
		r->cmd = C_RESET;
		return 0;
	}
	if (strcmp(c, "image") != 0 || sub == NULL) {
		fprintf(stderr, "smp: unknown command or wrong arguments: %s\n",
		        c);
		return -1;
	}
	if (strcmp(sub, "list") == 0 && argc == 2) {
		r->cmd = C_LIST;
		return 0;
	}
	if (strcmp(sub, "upload") == 0 && argc == 3) {
		r->cmd = C_UPLOAD;
		r->arg = argv[2];
		return 0;
	}
	if ((strcmp(sub, "test") == 0 && argc == 3) ||
	    (strcmp(sub, "confirm") == 0 && (argc == 2 || argc == 3))) {
		r->cmd = strcmp(sub, "test") == 0 ? C_TEST : C_CONFIRM;
		if (argc == 3) {
			if (parse_hash(argv[2], r->hash) == -1) {
				fprintf(stderr,
				        "smp: image %s: \"%s\" is not "
				        "a SHA-256 hash (64 hex digits)\n",
				        sub, argv[2]);
				return -1;
			}
			r->has_hash = true;
		}
		return 0;
	}
	fprintf(stderr, "smp: unknown command or wrong arguments: image %s\n",
	        sub);
	return -1;
}

enum {
	O_TRANSPORT = 256,
	O_DEVICE,
	O_BAUD,
	O_MTU,
	O_ADDRESS,
	O_DEVICE_INDEX,
	O_PEER_NAME,
	O_ATT_SOCKET,
	O_WINDOW,
	O_JSON,
	O_TIMEOUT,
	O_ERASE_TIMEOUT,
	O_RETRIES,
	O_SMP_V2,
};

static const struct option smp_opts[] = {
    {"transport", required_argument, NULL, O_TRANSPORT},
    {"device", required_argument, NULL, O_DEVICE},
    {"baud", required_argument, NULL, O_BAUD},
    {"mtu", required_argument, NULL, O_MTU},
    {"address", required_argument, NULL, O_ADDRESS},
    {"device-index", required_argument, NULL, O_DEVICE_INDEX},
    {"peer-name", required_argument, NULL, O_PEER_NAME},
    {"att-socket", required_argument, NULL, O_ATT_SOCKET},
    {"window", required_argument, NULL, O_WINDOW},
    {"json", no_argument, NULL, O_JSON},
    {"timeout", required_argument, NULL, O_TIMEOUT},
    {"erase-timeout", required_argument, NULL, O_ERASE_TIMEOUT},
    {"retries", required_argument, NULL, O_RETRIES},
    {"smp-v2", no_argument, NULL, O_SMP_V2},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Flags into the link description; -1 on a bad or missing one. */
static int
parse_link(struct worker_link *l, const char *transport, const char *peer)
{
	if (transport == NULL) {
		fprintf(stderr, "smp: --transport serial|udp|ble is "
		                "required\n");
		return -1;
	}
	if (strcmp(transport, "serial") == 0) {
		l->kind = WORKER_SERIAL;
		if (l->device == NULL) {
			fprintf(stderr, "smp: --transport serial needs "
			                "--device PATH\n");
			return -1;
		}
	} else if (strcmp(transport, "udp") == 0) {
		l->kind = WORKER_UDP;
		if (l->address == NULL) {
			fprintf(stderr, "smp: --transport udp needs --address "
			                "HOST:PORT\n");
			return -1;
		}
	} else if (strcmp(transport, "ble") == 0) {
		l->kind = WORKER_BLE;
		if (peer == NULL || peer[0] == '\0') {
			fprintf(stderr, "smp: --transport ble needs "
			                "--peer-name NAME\n");
			return -1;
		}
		if (l->att_socket != NULL && l->att_socket[0] != '@') {
			fprintf(stderr,
			        "smp: --att-socket: expected an "
			        "abstract socket name \"@NAME\", got \"%s\"\n",
			        l->att_socket);
			return -1;
		}
	} else {
		fprintf(stderr,
		        "smp: --transport: expected serial, udp or "
		        "ble, got \"%s\"\n",
		        transport);
		return -1;
	}
	return 0;
}

static int
run(struct smp_run *r, const struct worker_link *link, const char *peer)
{
	struct event *sigint, *sigterm;
	struct workers *ws;
	struct stat st;
	char err[512];

	if (link->kind == WORKER_SERIAL && stat(link->device, &st) == -1) {
		fail(r, "%s: %s", link->device, strerror(errno));
		return r->rc;
	}
	if (r->cmd == C_UPLOAD && check_image(r, r->arg) == -1)
		return r->rc;
	if ((r->base = event_base_new()) == NULL) {
		fail(r, "cannot create the event loop");
		return r->rc;
	}
	ws = workers_new(r->base);
	r->w = worker_spawn(ws,
	                    link->kind == WORKER_SERIAL ? "smp-serial"
	                    : link->kind == WORKER_UDP  ? "smp-udp"
	                                                : "smp-ble",
	                    link, err, sizeof(err));
	if (r->w == NULL) {
		fail(r, "%s", err);
		goto out;
	}
	if (link->kind == WORKER_BLE)
		worker_add_board(r->w, BOARD_ID, peer);
	sigint = evsignal_new(r->base, SIGINT, on_signal, r);
	sigterm = evsignal_new(r->base, SIGTERM, on_signal, r);
	evsignal_add(sigint, NULL);
	evsignal_add(sigterm, NULL);

	r->rc = EX_FAIL;
	r->started_ms = now_ms();
	if (r->cmd == C_UPLOAD) {
		struct upload_opts o = {.window = r->window};

		r->up = upload_start(r->base, r->w, BOARD_ID, r->arg, &o,
		                     on_upload_progress, on_upload_done, r, err,
		                     sizeof(err));
		if (r->up == NULL)
			fail(r, "image upload: %s", err);
		else
			event_base_dispatch(r->base);
	} else {
		send_request(r);
		event_base_dispatch(r->base);
	}
	upload_free(r->up);
	r->up = NULL;
	event_free(sigint);
	event_free(sigterm);
out:
	workers_free(ws);
	event_base_free(r->base);
	return r->rc;
}

int
cmd_smp(int argc, char **argv)
{
	struct smp_run r;
	struct worker_link link;
	const char *transport = NULL, *peer = NULL;
	uint32_t v;
	int ch;

	memset(&r, 0, sizeof(r));
	memset(&link, 0, sizeof(link));
	link.baud = 115200;
	link.request_timeout_ms = 5000;
	link.erase_timeout_ms = 60000;
	link.retries = 5;

	optind = 0; /* the caller may have used getopt already */
	while ((ch = getopt_long(argc, argv, "vh", smp_opts, NULL)) != -1) {
		switch (ch) {
		case O_TRANSPORT:
			transport = optarg;
			break;
		case O_DEVICE:
			link.device = optarg;
			break;
		case O_BAUD:
			if (parse_u32("--baud", optarg, 4000000, &link.baud))
				return EX_USAGE;
			break;
		case O_MTU:
			if (parse_u32("--mtu", optarg, 65535, &link.mtu))
				return EX_USAGE;
			break;
		case O_ADDRESS:
			link.address = optarg;
			break;
		case O_DEVICE_INDEX:
			if (parse_u32("--device-index", optarg, 1023, &v))
				return EX_USAGE;
			link.device_index = v;
			break;
		case O_PEER_NAME:
			peer = optarg;
			break;
		case O_ATT_SOCKET:
			link.att_socket = optarg;
			break;
		case O_WINDOW:
			if (parse_u32("--window", optarg, 64, &r.window))
				return EX_USAGE;
			break;
		case O_JSON:
			r.json = true;
			break;
		case O_TIMEOUT:
			if (parse_ms("--timeout", optarg,
			             &link.request_timeout_ms))
				return EX_USAGE;
			break;
		case O_ERASE_TIMEOUT:
			if (parse_ms("--erase-timeout", optarg,
			             &link.erase_timeout_ms))
				return EX_USAGE;
			break;
		case O_RETRIES:
			if (parse_u32("--retries", optarg, 100, &link.retries))
				return EX_USAGE;
			break;
		case O_SMP_V2:
			link.smp_version = 1;
			break;
		case 'v':
			log_setverbose(1);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EX_USAGE;
		}
	}
	if (parse_link(&link, transport, peer) == -1 ||
	    parse_command(&r, argc - optind, argv + optind) == -1) {
		usage(stderr);
		return EX_USAGE;
	}
	r.bar = r.cmd == C_UPLOAD && !r.json && isatty(STDERR_FILENO);
	signal(SIGPIPE, SIG_IGN);
	return run(&r, &link, peer);
}
