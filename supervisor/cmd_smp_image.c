/*
 * The `smp` image commands and `smp upgrade`: images as people have them
 * (.bin or Intel HEX, refused with a hint before any board is touched when
 * they are not signed MCUboot images), the upload with its progress bar,
 * window and stall limit, and the whole upgrade, one line per phase, its
 * exit status naming the phase that failed.
 */
#include <sys/mman.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <json-c/json.h>
#include <openssl/crypto.h>

#include "cmd_smp.h"
#include "util.h"
#include "ihex.h"
#include "ipc.h"
#include "log.h"
#include "mcuboot.h"
#include "upload.h"
#include "xmalloc.h"

#define HEX_FILE_MAX  (64 * 1024 * 1024)
#define POLL_TRY_MS   1000 /* one try of a poll while the board reboots */
#define POLL_EVERY_MS 500
#define RESET_SETTLE  1000 /* Zephyr resets 250 ms after its answer */

/* An image file, checked, ready for upload_start(). */
struct cli_image {
	const char *file;
	char path[PATH_MAX]; /* the file, or its flat copy in memory */
	int memfd;           /* the copy of an Intel HEX file, or -1 */
	uint64_t size;
	struct mcuboot_image img;
	char version[MCUBOOT_VERSION_MAX]; /* RDFM spelling */
	char zversion[MCUBOOT_VERSION_MAX];
	char hash[65];
};

static uint32_t
le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/*
 * Why a file is not an MCUboot image, with what it most likely is: an ELF
 * file, or an unsigned build (a Cortex-M vector table: the initial stack
 * in RAM at 0x2000_0000, an odd Thumb reset address).
 */
static int
not_mcuboot(struct smp_cli *c, const char *file, const uint8_t *head, size_t n,
            bool hex, const char *why)
{
	if (n >= 4 && memcmp(head,
	                     "\x7f"
	                     "ELF",
	                     4) == 0)
		return cli_fail(
		    c, SMP_EX_FAIL,
		    "%s is an ELF file, not an MCUboot image: upload "
		    "the signed image a Zephyr build with "
		    "CONFIG_BOOTLOADER_MCUBOOT=y writes, "
		    "zephyr.signed.bin or zephyr.signed.hex",
		    file);
	if (n >= 8 && le32(head) != MCUBOOT_MAGIC &&
	    (le32(head) & 0xfff00000u) == 0x20000000u && (le32(head + 4) & 1))
		return cli_fail(
		    c, SMP_EX_FAIL,
		    "%s is not an MCUboot image (no magic 0x96f3b83d): it "
		    "looks "
		    "like an unsigned Zephyr %s (a Cortex-M vector table); "
		    "sign "
		    "it (west sign -t imgtool, or imgtool sign) or upload "
		    "zephyr.signed.%s from a build with "
		    "CONFIG_BOOTLOADER_MCUBOOT=y",
		    file, hex ? "zephyr.hex" : "binary", hex ? "hex" : "bin");
	return cli_fail(c, SMP_EX_FAIL, "%s is not a valid MCUboot image: %s",
	                file, why);
}

/* The whole file, for Intel HEX (a text a few times the image). */
static char *
slurp(const char *path, size_t *len, char *why, size_t cap)
{
	struct stat st;
	char *buf;
	ssize_t r;
	size_t n = 0;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1 ||
	    fstat(fd, &st) == -1) {
		snprintf(why, cap, "%s: %s", path, strerror(errno));
		if (fd != -1)
			close(fd);
		return NULL;
	}
	if (st.st_size > HEX_FILE_MAX) {
		snprintf(why, cap, "%s: an Intel HEX file over %d MiB", path,
		         HEX_FILE_MAX / (1024 * 1024));
		close(fd);
		return NULL;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	while (n < (size_t)st.st_size &&
	       (r = read(fd, buf + n, (size_t)st.st_size - n)) > 0)
		n += (size_t)r;
	close(fd);
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* Intel HEX into a memory file that upload_start() can open by path. */
static int
load_hex(struct smp_cli *c, struct cli_image *im, const uint8_t **data,
         size_t *len, struct ihex_image *hx)
{
	char why[256], *text;
	size_t tlen;

	if ((text = slurp(im->file, &tlen, why, sizeof(why))) == NULL)
		return cli_fail(c, SMP_EX_FAIL, "%s", why);
	if (ihex_parse(text, tlen, hx, why, sizeof(why)) == -1) {
		free(text);
		return cli_fail(c, SMP_EX_FAIL,
		                "%s: not a valid Intel HEX file: %s", im->file,
		                why);
	}
	free(text);
	if ((im->memfd = memfd_create("image", MFD_CLOEXEC)) == -1 ||
	    write(im->memfd, hx->data, hx->len) != (ssize_t)hx->len)
		return cli_fail(c, SMP_EX_FAIL, "%s: cannot hold the image: %s",
		                im->file, strerror(errno));
	snprintf(im->path, sizeof(im->path), "/proc/self/fd/%d", im->memfd);
	*data = hx->data;
	*len = hx->len;
	return 0;
}

static int
load_image(struct smp_cli *c, const char *file, struct cli_image *im)
{
	struct ihex_image hx = {0};
	const uint8_t *data = NULL;
	uint8_t head[64];
	size_t len = 0, hn = 0;
	void *map = MAP_FAILED;
	struct stat st;
	char why[256];
	bool hex;
	int fd, rc = 0;

	memset(im, 0, sizeof(*im));
	im->file = file;
	im->memfd = -1;
	snprintf(im->path, sizeof(im->path), "%s", file);
	if ((fd = open(file, O_RDONLY | O_CLOEXEC)) == -1 ||
	    fstat(fd, &st) == -1) {
		rc = cli_fail(c, SMP_EX_FAIL, "%s: %s", file, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_size == 0) {
		rc = cli_fail(c, SMP_EX_FAIL,
		              "%s: not a regular, non-empty file", file);
		goto out;
	}
	hn = (size_t)pread(fd, head, sizeof(head), 0);
	hex = hn <= sizeof(head) && ihex_looks_like(head, hn);
	if (hex) {
		if ((rc = load_hex(c, im, &data, &len, &hx)) != 0)
			goto out;
	} else {
		map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd,
		           0);
		if (map == MAP_FAILED) {
			rc = cli_fail(c, SMP_EX_FAIL, "%s: %s", file,
			              strerror(errno));
			goto out;
		}
		data = map;
		len = (size_t)st.st_size;
	}
	if (mcuboot_parse(data, len, &im->img, why, sizeof(why)) == -1) {
		rc = not_mcuboot(c, file, data, len < 64 ? len : 64, hex, why);
		goto out;
	}
	im->size = len;
	mcuboot_version_format(&im->img.version, MCUBOOT_SPELL_RDFM,
	                       im->version, sizeof(im->version));
	mcuboot_version_format(&im->img.version, MCUBOOT_SPELL_ZEPHYR,
	                       im->zversion, sizeof(im->zversion));
	hex_encode(im->img.hash, MCUBOOT_HASH_LEN, im->hash);
out:
	if (map != MAP_FAILED)
		munmap(map, (size_t)st.st_size);
	ihex_free(&hx);
	if (fd != -1)
		close(fd);
	if (rc != 0 && im->memfd != -1) {
		close(im->memfd);
		im->memfd = -1;
	}
	return rc;
}

static void
image_free(struct cli_image *im)
{
	if (im->memfd != -1)
		close(im->memfd);
	im->memfd = -1;
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

/* Slots: printing. */

static void
print_slots(struct smp_cli *c, const Ipc__ImageList *l)
{
	struct json_object *o, *a, *s;
	char h[65];
	size_t i;

	if (c->json) {
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
				hex_encode(sl->hash.data, 32, h);
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
		cli_print_json(o);
		return;
	}
	if (l->n_slots == 0)
		printf("no images\n");
	for (i = 0; i < l->n_slots; i++) {
		const Ipc__ImageSlot *sl = l->slots[i];

		if (sl->hash.len == 32)
			hex_encode(sl->hash.data, 32, h);
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

/* An image state read or write through the worker's own operation. */
static int
state_op(struct smp_cli *c, const char *what, bool write, const uint8_t *hash,
         bool confirm, Ipc__Reply **out)
{
	Ipc__Envelope env = IPC__ENVELOPE__INIT;
	Ipc__ImageStateRead isr = IPC__IMAGE_STATE_READ__INIT;
	Ipc__ImageSetState iss = IPC__IMAGE_SET_STATE__INIT;
	Ipc__Reply *r;
	char msg[1024];

	if (write) {
		if (hash != NULL) {
			iss.hash.data = (uint8_t *)(uintptr_t)hash;
			iss.hash.len = 32;
		}
		iss.confirm = confirm;
		env.body_case = IPC__ENVELOPE__BODY_IMAGE_SET_STATE;
		env.image_set_state = &iss;
	} else {
		env.body_case = IPC__ENVELOPE__BODY_IMAGE_STATE;
		env.image_state = &isr;
	}
	if ((r = cli_ipc(c, &env)) == NULL)
		return SMP_EX_FAIL;
	if (r->status != IPC__REPLY__STATUS__OK) {
		cli_explain_reply(c, what, r, msg, sizeof(msg));
		ipc__reply__free_unpacked(r, NULL);
		return cli_fail(c, SMP_EX_FAIL, "%s", msg);
	}
	*out = r;
	return 0;
}

int
smp_run_image_list(struct smp_cli *c, int argc, char **argv)
{
	Ipc__Reply *r;
	int rc;

	(void)argc;
	(void)argv;
	if ((rc = cli_start(c)) != 0 ||
	    (rc = state_op(c, "image list", false, NULL, false, &r)) != 0)
		return rc;
	if (r->result_case != IPC__REPLY__RESULT_IMAGES)
		rc = cli_fail(c, SMP_EX_FAIL,
		              "image list: the worker's reply has no images");
	else
		print_slots(c, r->images);
	ipc__reply__free_unpacked(r, NULL);
	return rc;
}

static int
test_or_confirm(struct smp_cli *c, int argc, char **argv, bool confirm)
{
	const char *what = confirm ? "image confirm" : "image test";
	struct json_object *o;
	uint8_t hash[32];
	Ipc__Reply *r;
	int rc;

	if (argc == 1 && parse_hash(argv[0], hash) == -1)
		return cli_fail(c, SMP_EX_USAGE,
		                "%s: \"%s\" is not a SHA-256 hash (64 hex "
		                "digits)",
		                what, argv[0]);
	if ((rc = cli_start(c)) != 0 ||
	    (rc = state_op(c, what, true, argc == 1 ? hash : NULL, confirm,
	                   &r)) != 0)
		return rc;
	if (r->result_case == IPC__REPLY__RESULT_IMAGES)
		print_slots(c, r->images);
	else if (c->json) {
		o = json_object_new_object();
		json_object_object_add(o, "ok", json_object_new_boolean(1));
		cli_print_json(o);
	} else
		printf("ok\n");
	ipc__reply__free_unpacked(r, NULL);
	return 0;
}

int
smp_run_image_test(struct smp_cli *c, int argc, char **argv)
{
	return test_or_confirm(c, argc, argv, false);
}

int
smp_run_image_confirm(struct smp_cli *c, int argc, char **argv)
{
	return test_or_confirm(c, argc, argv, true);
}

int
smp_run_image_erase(struct smp_cli *c, int argc, char **argv)
{
	struct json_object *o;
	struct smp_tree t;
	uint8_t buf[16];
	int rc;

	(void)argc;
	(void)argv;
	if ((rc = cli_start(c)) != 0 ||
	    (rc = cli_cmd_ok(c, &smpg_image_erase, buf,
	                     smpg_enc_image_erase(buf, sizeof(buf), -1), &t)) !=
	        0)
		return rc;
	smp_tree_free(&t);
	if (c->json) {
		o = json_object_new_object();
		json_object_object_add(o, "erased", json_object_new_boolean(1));
		cli_print_json(o);
	} else
		printf("slot 1 erased\n");
	return 0;
}

/* The upload. */

struct up_run {
	struct smp_cli *c;
	bool done;
	Ipc__Reply *reply; /* a copy */
	uint64_t best, moved_ms;
	bool stalled;
};

struct up_stats {
	uint64_t total, resumed_from, sent, elapsed_ms;
	double rate;
	uint32_t window, chunk, retransmits;
	unsigned int resumes;
};

static void
on_up_progress(uint64_t off, uint64_t total, void *arg)
{
	struct up_run *u = arg;

	(void)total;
	if (off > u->best) {
		u->best = off;
		u->moved_ms = now_ms();
	}
	cli_bar(u->c, off, upload_window(u->c->up), false);
}

static void
on_up_done(const Ipc__Reply *reply, void *arg)
{
	struct up_run *u = arg;
	size_t n = ipc__reply__get_packed_size(reply);
	uint8_t *buf = xmalloc(n + 1);

	ipc__reply__pack(reply, buf);
	u->reply = ipc__reply__unpack(NULL, n, buf);
	free(buf);
	if (u->reply == NULL)
		fatalx("cannot copy a reply", NULL);
	u->done = true;
}

/* The window asked for, capped at what the board allows. */
static uint32_t
window_for(struct smp_cli *c)
{
	uint32_t max;

	if (c->window == 0 || !c->have_params || c->buf_count == 0)
		return c->window;
	max = c->buf_count > 1 ? c->buf_count - 1 : 1;
	if (c->window <= max)
		return c->window;
	cli_warn(c,
	         "--window %u is more than the board allows (buf_count %u: %u "
	         "packet%s in flight); using %u",
	         c->window, c->buf_count, max, max == 1 ? "" : "s", max);
	return max;
}

/* Upload im to slot 1; 0 with the numbers, or SMP_EX_FAIL (said). */
static int
do_upload(struct smp_cli *c, const struct cli_image *im, struct up_stats *st)
{
	struct upload_opts o = {.window = window_for(c)};
	struct up_run u = {.c = c};
	char err[512], msg[1024];
	uint64_t t0 = now_ms();
	int rc = 0;

	memset(st, 0, sizeof(*st));
	u.moved_ms = t0;
	cli_bar_start(c, im->size, 0);
	c->up = upload_start(c->base, c->w, SMP_BOARD_ID, im->path, &o,
	                     on_up_progress, on_up_done, &u, err, sizeof(err));
	if (c->up == NULL)
		return cli_fail(c, SMP_EX_FAIL, "image upload: %s", err);
	while (!u.done) {
		if (event_base_loop(c->base, EVLOOP_ONCE) == -1)
			break;
		if (!u.stalled && !c->interrupted &&
		    now_ms() - u.moved_ms > (uint64_t)c->stall_ms) {
			u.stalled = true;
			upload_abort(c->up);
		}
	}
	st->total = im->size;
	st->resumed_from = upload_resumed_from(c->up);
	st->resumes = upload_resumes(c->up) + (st->resumed_from > 0 ? 1 : 0);
	st->elapsed_ms = now_ms() - t0;
	if (u.reply != NULL && u.reply->status == IPC__REPLY__STATUS__OK) {
		cli_bar(c, im->size, upload_window(c->up), true);
		cli_bar_end(c);
		st->sent = st->total - st->resumed_from;
		st->rate = st->elapsed_ms ? (double)st->sent * 1000.0 /
		                                (double)st->elapsed_ms
		                          : 0;
		if (u.reply->result_case == IPC__REPLY__RESULT_UPLOAD) {
			st->window = u.reply->upload->window;
			st->chunk = u.reply->upload->chunk;
			st->retransmits = u.reply->upload->retransmits;
		}
	} else {
		cli_bar_end(c);
		if (u.stalled) {
			char d[32];

			snprintf(d, sizeof(d), "%.1f s",
			         (double)c->stall_ms / 1000.0);
			rc =
			    cli_fail(c, SMP_EX_FAIL,
			             "image upload: no progress for %s (the "
			             "board stays at offset %" PRIu64
			             " of %" PRIu64 "; --stall sets the limit)",
			             d, u.best, im->size);
		} else if (c->interrupted)
			rc = cli_fail(c, SMP_EX_FAIL,
			              "image upload: interrupted at offset "
			              "%" PRIu64 " (run it again to resume)",
			              u.best);
		else if (u.reply != NULL) {
			cli_explain_reply(c, "image upload", u.reply, msg,
			                  sizeof(msg));
			rc = cli_fail(c, SMP_EX_FAIL, "%s", msg);
		} else
			rc = cli_fail(c, SMP_EX_FAIL, "image upload: failed");
	}
	if (u.reply != NULL)
		ipc__reply__free_unpacked(u.reply, NULL);
	upload_free(c->up);
	c->up = NULL;
	return rc;
}

static void
upload_json(struct json_object *o, const struct up_stats *st,
            const struct cli_image *im)
{
	json_object_object_add(o, "bytes", json_object_new_int64(st->total));
	json_object_object_add(o, "bytes_sent",
	                       json_object_new_int64(st->sent));
	json_object_object_add(o, "resumed_from",
	                       json_object_new_int64(st->resumed_from));
	json_object_object_add(o, "elapsed_ms",
	                       json_object_new_int64(st->elapsed_ms));
	json_object_object_add(o, "bytes_per_s",
	                       json_object_new_int64((int64_t)st->rate));
	json_object_object_add(o, "window", json_object_new_int64(st->window));
	json_object_object_add(o, "chunk", json_object_new_int64(st->chunk));
	json_object_object_add(o, "retransmits",
	                       json_object_new_int64(st->retransmits));
	json_object_object_add(o, "resumes",
	                       json_object_new_int64(st->resumes));
	json_object_object_add(o, "hash", json_object_new_string(im->hash));
}

static void
upload_line(char *buf, size_t cap, const struct up_stats *st)
{
	int n;

	n = snprintf(buf, cap,
	             "%" PRIu64 " bytes in %.2f s (%.1f KiB/s), window %u, "
	             "chunk %u, retransmits %u",
	             st->total, (double)st->elapsed_ms / 1000.0,
	             st->rate / 1024.0, st->window, st->chunk, st->retransmits);
	if (st->resumes > 0 && n > 0 && (size_t)n < cap)
		n += snprintf(buf + n, cap - (size_t)n, ", resumed %u time%s",
		              st->resumes, st->resumes == 1 ? "" : "s");
	if (st->resumed_from > 0 && n > 0 && (size_t)n < cap)
		snprintf(buf + n, cap - (size_t)n,
		         ", from offset %" PRIu64 " (%" PRIu64 " bytes sent)",
		         st->resumed_from, st->sent);
}

int
smp_run_image_upload(struct smp_cli *c, int argc, char **argv)
{
	struct cli_image im;
	struct up_stats st;
	struct json_object *o;
	char line[300];
	int rc;

	(void)argc;
	if ((rc = load_image(c, argv[0], &im)) != 0)
		return rc;
	if ((rc = cli_start(c)) != 0 || (rc = do_upload(c, &im, &st)) != 0) {
		image_free(&im);
		return rc;
	}
	if (c->json) {
		o = json_object_new_object();
		upload_json(o, &st, &im);
		cli_print_json(o);
	} else {
		upload_line(line, sizeof(line), &st);
		printf("uploaded %s\n", line);
		if (!c->quiet)
			printf("image hash: %s\n", im.hash);
	}
	image_free(&im);
	return 0;
}

/* upgrade */

struct upgrade {
	struct smp_cli *c;
	struct cli_image im;
	struct json_object *phases; /* --json */
	uint64_t t0;
};

/* One phase done: a line, or an entry in the JSON. */
static void phase(struct upgrade *u, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
phase(struct upgrade *u, const char *name, const char *fmt, ...)
{
	struct json_object *o;
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (u->c->json) {
		o = json_object_new_object();
		json_object_object_add(o, "phase",
		                       json_object_new_string(name));
		json_object_object_add(o, "result",
		                       json_object_new_string(msg));
		json_object_array_add(u->phases, o);
	} else if (!u->c->quiet) {
		printf("%s: %s\n", name, msg);
		fflush(stdout);
	}
}

/* A phase failed: the reason, and the status that names the phase. */
static int phase_fail(struct upgrade *u, const char *name, int code,
                      const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
phase_fail(struct upgrade *u, const char *name, int code, const char *fmt, ...)
{
	struct json_object *o;
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "smp: upgrade failed at %s: %s\n", name, msg);
	if (u->c->json) {
		o = json_object_new_object();
		json_object_object_add(o, "phases", json_object_get(u->phases));
		json_object_object_add(o, "failed_phase",
		                       json_object_new_string(name));
		json_object_object_add(o, "error", json_object_new_string(msg));
		json_object_object_add(o, "exit", json_object_new_int(code));
		cli_print_json(o);
	}
	return code;
}

/*
 * The slots through the generic command with a short timeout per try, for
 * polls while the board reboots.  0, or -1 (res says why).
 */
static int
read_slots(struct smp_cli *c, uint32_t try_ms, struct smp_image_list *out,
           char *why, size_t cap)
{
	struct smp_cmd_result res;
	uint8_t buf[8];
	char w[256];

	if (cli_cmd(c, &smpg_image_state_read, buf,
	            smpg_enc_empty(buf, sizeof(buf)), try_ms, &res) == -1) {
		snprintf(why, cap, "interrupted");
		return -2;
	}
	if (res.status != SMP_CMD_OK) {
		cli_explain(c, "image list", &smpg_image_state_read, &res, why,
		            cap);
		smp_tree_free(&res.tree);
		return -1;
	}
	if (smpg_dec_image_state(&res.tree, out, w, sizeof(w)) == -1) {
		snprintf(why, cap, "image list: unexpected reply: %s", w);
		smp_tree_free(&res.tree);
		return -1;
	}
	smp_tree_free(&res.tree);
	return 0;
}

static const struct smp_image_slot *
slot_of(const struct smp_image_list *l, uint32_t slot)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (l->slots[i].image == 0 && l->slots[i].slot == slot)
			return &l->slots[i];
	return NULL;
}

static const struct smp_image_slot *
active_of(const struct smp_image_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (l->slots[i].image == 0 && l->slots[i].active)
			return &l->slots[i];
	return slot_of(l, 0);
}

static bool
holds(const struct smp_image_slot *s, const struct cli_image *im)
{
	return s != NULL && s->has_hash &&
	       memcmp(s->hash, im->img.hash, MCUBOOT_HASH_LEN) == 0;
}

static void
sleep_loop(struct smp_cli *c, unsigned int ms)
{
	bool never = false;

	cli_wait(c, &never, now_ms() + ms);
}

/* Upload unless slot 1 holds the image, then check slot 1. */
static int
phase_upload(struct upgrade *u, const struct smp_image_list *l)
{
	struct smp_cli *c = u->c;
	struct smp_image_list after;
	struct up_stats st;
	char line[300], why[1024];

	if (holds(slot_of(l, 1), &u->im)) {
		phase(u, "upload", "skipped, slot 1 already holds %s",
		      u->im.version);
		return 0;
	}
	if (do_upload(c, &u->im, &st) != 0)
		return phase_fail(u, "upload", SMP_EX_UPLOAD,
		                  "the image did not reach slot 1");
	if (read_slots(c, 0, &after, why, sizeof(why)) != 0)
		return phase_fail(u, "upload", SMP_EX_UPLOAD, "%s", why);
	if (!holds(slot_of(&after, 1), &u->im))
		return phase_fail(u, "upload", SMP_EX_UPLOAD,
		                  "slot 1 does not hold the image after the "
		                  "upload");
	upload_line(line, sizeof(line), &st);
	phase(u, "upload", "%s", line);
	return 0;
}

static int
phase_test_reset(struct upgrade *u)
{
	struct smp_cli *c = u->c;
	Ipc__Envelope env = IPC__ENVELOPE__INIT;
	Ipc__Reset reset = IPC__RESET__INIT;
	Ipc__Reply *r;
	char msg[1024];

	if (state_op(c, "image test", true, u->im.img.hash, false, &r) != 0)
		return phase_fail(u, "test", SMP_EX_TEST,
		                  "the board did not mark the image for test");
	ipc__reply__free_unpacked(r, NULL);
	phase(u, "test", "slot 1 will boot once at the next reset");
	env.body_case = IPC__ENVELOPE__BODY_RESET;
	env.reset = &reset;
	if ((r = cli_ipc(c, &env)) == NULL)
		return phase_fail(u, "reset", SMP_EX_RESET, "interrupted");
	if (r->status == IPC__REPLY__STATUS__OK)
		phase(u, "reset", "the board resets");
	else if (r->status == IPC__REPLY__STATUS__TIMEOUT ||
	         r->status == IPC__REPLY__STATUS__LINK_DOWN)
		/* Its answer may be lost with the reset itself. */
		phase(u, "reset", "no answer (it may already be resetting)");
	else {
		cli_explain_reply(c, "reset", r, msg, sizeof(msg));
		ipc__reply__free_unpacked(r, NULL);
		return phase_fail(u, "reset", SMP_EX_RESET, "%s", msg);
	}
	ipc__reply__free_unpacked(r, NULL);
	return 0;
}

/*
 * Until the board answers after the reset.  Slot 1 still pending with the
 * board never silent means the reset has not happened yet; after a
 * silence the board has rebooted, whatever its slots say.
 */
static int
phase_wait(struct upgrade *u, struct smp_image_list *l)
{
	struct smp_cli *c = u->c;
	uint64_t t0 = now_ms(), end = t0 + (uint64_t)c->reboot_ms;
	const struct smp_image_slot *s1;
	char why[1024] = "no answer";
	bool silent = false;
	int rc;

	sleep_loop(c, RESET_SETTLE);
	for (;;) {
		if (c->interrupted)
			return phase_fail(u, "wait", SMP_EX_WAIT,
			                  "interrupted");
		if (now_ms() >= end)
			return phase_fail(
			    u, "wait", SMP_EX_WAIT,
			    "the board did not answer within %.0f s "
			    "after the reset (--reboot-timeout): %s",
			    (double)c->reboot_ms / 1000.0, why);
		rc = read_slots(c, POLL_TRY_MS, l, why, sizeof(why));
		if (rc == -2)
			return phase_fail(u, "wait", SMP_EX_WAIT,
			                  "interrupted");
		if (rc != 0)
			silent = true;
		else {
			s1 = slot_of(l, 1);
			if (silent ||
			    !(s1 != NULL && s1->pending && holds(s1, &u->im) &&
			      !holds(active_of(l), &u->im)))
				break;
			snprintf(why, sizeof(why),
			         "the board answers, with slot 1 still "
			         "pending: it did not reset");
		}
		sleep_loop(c, POLL_EVERY_MS);
	}
	phase(u, "wait", "the board answers again after %.1f s",
	      (double)(now_ms() - t0) / 1000.0);
	return 0;
}

static int
phase_check(struct upgrade *u, const struct smp_image_list *l)
{
	const struct smp_image_slot *a = active_of(l);
	char h[65];

	if (!holds(a, &u->im)) {
		if (a != NULL && a->has_hash)
			hex_encode(a->hash, 32, h);
		return phase_fail(
		    u, "check", SMP_EX_CHECK,
		    "the board runs %s (hash %.16s...), not %s: MCUboot "
		    "refused the new image or reverted it",
		    a != NULL && a->version[0] ? a->version : "nothing",
		    a != NULL && a->has_hash ? h : "none", u->im.version);
	}
	phase(u, "check", "the board runs %s", u->im.version);
	return 0;
}

/* Until the firmware confirms itself, reverts, or the deadline passes. */
static int
phase_self_confirm(struct upgrade *u)
{
	struct smp_cli *c = u->c;
	uint64_t t0 = now_ms(), end = t0 + (uint64_t)c->confirm_ms;
	const struct smp_image_slot *a;
	struct smp_image_list l;
	char why[1024];
	int rc;

	while (now_ms() < end) {
		rc = read_slots(c, POLL_TRY_MS, &l, why, sizeof(why));
		if (rc == -2)
			break;
		if (rc == 0) {
			a = active_of(&l);
			if (a != NULL && !holds(a, &u->im))
				return phase_fail(u, "confirm", SMP_EX_CONFIRM,
				                  "the board went back to %s "
				                  "without confirming %s",
				                  a->version, u->im.version);
			if (a != NULL && (a->confirmed || a->permanent)) {
				phase(u, "confirm",
				      "the board confirmed it itself after "
				      "%.1f s",
				      (double)(now_ms() - t0) / 1000.0);
				return 0;
			}
		}
		sleep_loop(c, POLL_EVERY_MS);
		if (c->interrupted)
			break;
	}
	if (c->interrupted)
		return phase_fail(u, "confirm", SMP_EX_CONFIRM,
		                  "interrupted while waiting for the board");
	return phase_fail(u, "confirm", SMP_EX_CONFIRM,
	                  "the board did not confirm the image within %.0f s "
	                  "(--confirm-timeout)",
	                  (double)c->confirm_ms / 1000.0);
}

static int
phase_confirm(struct upgrade *u, const struct smp_image_list *l)
{
	const struct smp_image_slot *a = active_of(l);
	Ipc__Reply *r;
	size_t i;
	bool ok = false;

	if (a != NULL && (a->confirmed || a->permanent)) {
		phase(u, "confirm", "already confirmed");
		return 0;
	}
	if (u->c->self_confirm)
		return phase_self_confirm(u);
	if (state_op(u->c, "image confirm", true, u->im.img.hash, true, &r) !=
	    0)
		return phase_fail(u, "confirm", SMP_EX_CONFIRM,
		                  "the board did not confirm the image");
	if (r->result_case == IPC__REPLY__RESULT_IMAGES)
		for (i = 0; i < r->images->n_slots; i++) {
			const Ipc__ImageSlot *s = r->images->slots[i];

			if (s->active && s->hash.len == 32 &&
			    memcmp(s->hash.data, u->im.img.hash, 32) == 0)
				ok = s->confirmed || s->permanent;
		}
	ipc__reply__free_unpacked(r, NULL);
	if (!ok)
		return phase_fail(u, "confirm", SMP_EX_CONFIRM,
		                  "the board answered, but does not list the "
		                  "image as confirmed");
	phase(u, "confirm", "%s is permanent", u->im.version);
	return 0;
}

static int
upgrade_done(struct upgrade *u, const char *result)
{
	struct json_object *o;

	if (u->c->json) {
		o = json_object_new_object();
		json_object_object_add(o, "result",
		                       json_object_new_string(result));
		json_object_object_add(o, "version",
		                       json_object_new_string(u->im.version));
		json_object_object_add(o, "hash",
		                       json_object_new_string(u->im.hash));
		json_object_object_add(
		    o, "elapsed_ms",
		    json_object_new_int64((int64_t)(now_ms() - u->t0)));
		json_object_object_add(o, "phases", json_object_get(u->phases));
		cli_print_json(o);
	} else
		printf("%s %s\n", result, u->im.version);
	return 0;
}

static int
upgrade(struct upgrade *u)
{
	struct smp_cli *c = u->c;
	struct smp_image_list l;
	const struct smp_image_slot *a;
	char why[1024];
	int rc;

	if ((rc = cli_start(c)) != 0)
		return rc;
	if (read_slots(c, 0, &l, why, sizeof(why)) != 0)
		return cli_fail(c, SMP_EX_FAIL, "%s", why);
	a = active_of(&l);
	if (holds(a, &u->im) && (a->confirmed || a->permanent)) {
		phase(u, "check", "the board already runs %s", u->im.version);
		return upgrade_done(u, "already running");
	}
	if (!holds(a, &u->im)) {
		if ((rc = phase_upload(u, &l)) != 0 ||
		    (rc = phase_test_reset(u)) != 0 ||
		    (rc = phase_wait(u, &l)) != 0 ||
		    (rc = phase_check(u, &l)) != 0)
			return rc;
	} else
		phase(u, "check",
		      "the board runs %s already, not yet confirmed",
		      u->im.version);
	if ((rc = phase_confirm(u, &l)) != 0)
		return rc;
	return upgrade_done(u, "upgraded to");
}

int
smp_run_upgrade(struct smp_cli *c, int argc, char **argv)
{
	struct upgrade u = {.c = c};
	int rc;

	(void)argc;
	u.t0 = now_ms();
	if ((rc = load_image(c, argv[0], &u.im)) != 0)
		return rc;
	u.phases = json_object_new_array();
	rc = upgrade(&u);
	json_object_put(u.phases);
	image_free(&u.im);
	return rc;
}
