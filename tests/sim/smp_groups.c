/*
 * The virtual board's groups beyond the update path, shaped as Zephyr's
 * mgmt groups answer (checked against the real smp_svr where it has them):
 * OS taskstat, mpstat, datetime, info and bootloader; stat; shell exec
 * with a few commands; an in-memory file system for the fs group.  Also
 * the --stuck-upload fault, which answers every image upload packet with
 * offset 0.  --without turns groups off: they answer "not supported".
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lzma.h>
#include <openssl/evp.h>

#include "log.h"
#include "sim.h"
#include "smp_cbor.h"
#include "smp_groups.h"
#include "smp_tree.h"
#include "xmalloc.h"

#define MAX_FILES     16
#define MAX_FILE_SIZE (1024 * 1024)
#define MAX_NAME      64

/* Zephyr's group error codes (SMP v2 "err" maps). */
#define OS_ERR_INVALID_FORMAT 2
#define OS_ERR_NO_ANSWER      3
#define OS_ERR_RTC_NOT_SET    4
#define FS_ERR_INVALID_NAME   2
#define FS_ERR_NOT_FOUND      3
#define FS_ERR_OFFSET         11
#define FS_ERR_OFFSET_LARGER  12
#define FS_ERR_HASH_NOT_FOUND 13
#define FS_ERR_EMPTY          16
#define SHELL_ERR_EMPTY       3

struct file {
	char name[MAX_NAME + 1];
	uint8_t *data;
	size_t len;
};

static struct file files[MAX_FILES];
/* The transfer in progress, as Zephyr keeps one. */
static struct {
	bool upload;
	char name[MAX_NAME + 1];
	uint64_t off, len;
} xfer;
static bool rtc_set;
static time_t rtc_base;        /* the time set */
static struct timespec rtc_at; /* when it was set (monotonic) */

struct rsp {
	struct enc e;
	const struct smp_hdr *h;
	const struct smp_rsp_opts *o;
	bool indef;
};

bool
sim_group_enabled(const char *name)
{
	const char *w = board.o->without;
	size_t n = strlen(name);

	while (w != NULL && *w != '\0') {
		if (strncmp(w, name, n) == 0 && (w[n] == ',' || w[n] == '\0'))
			return false;
		w = strchr(w, ',');
		if (w != NULL)
			w++;
	}
	return true;
}

static void
rsp_begin(struct rsp *r, uint8_t *out, size_t cap, const struct smp_hdr *h,
          const struct smp_rsp_opts *o, size_t pairs)
{
	r->h = h;
	r->o = o;
	r->indef = !o->definite_maps;
	enc_start(&r->e, out, cap);
	enc_map(&r->e, pairs, r->indef);
}

static ssize_t
rsp_end(struct rsp *r)
{
	enc_end(&r->e, r->indef);
	return enc_finish(&r->e, (uint8_t)(r->h->op + 1), r->o->version,
	                  r->h->group, r->h->seq, r->h->id);
}

/*
 * A group-specific refusal: {"err": {"group", "rc"}} in SMP v2 (plus
 * extra, the "len" of an offset mismatch), the v1 code otherwise.
 */
static ssize_t
group_error(uint8_t *out, size_t cap, const struct smp_hdr *h,
            const struct smp_rsp_opts *o, int v2rc, int v1rc,
            const char *extra_key, uint64_t extra)
{
	struct rsp r;

	if (o->version != SMP_V2 && extra_key == NULL)
		return smp_rspb_error(out, cap, h, o, v1rc, NULL);
	rsp_begin(&r, out, cap, h, o, extra_key != NULL ? 2 : 1);
	if (o->version == SMP_V2) {
		enc_tstr(&r.e, "err");
		enc_map(&r.e, 2, r.indef);
		enc_tstr(&r.e, "group");
		enc_uint(&r.e, h->group);
		enc_tstr(&r.e, "rc");
		enc_int(&r.e, v2rc);
		enc_end(&r.e, r.indef);
	} else {
		enc_tstr(&r.e, "rc");
		enc_int(&r.e, v1rc);
	}
	if (extra_key != NULL) {
		enc_tstr(&r.e, extra_key);
		enc_uint(&r.e, extra);
	}
	return rsp_end(&r);
}

static ssize_t
inval(uint8_t *out, size_t cap, const struct smp_hdr *h,
      const struct smp_rsp_opts *o)
{
	return smp_rspb_error(out, cap, h, o, SMP_RC_INVAL, NULL);
}

/* Request fields, from the payload's tree. */
static const char *
req_text(const struct smp_tree *t, const char *key)
{
	const struct smp_node *v = smp_tree_get(t, smp_tree_root(t), key);

	return v != NULL && v->type == SMP_V_TEXT &&
	               memchr(v->p, '\0', v->len) == NULL
	           ? (const char *)v->p
	           : NULL;
}

static bool
req_uint(const struct smp_tree *t, const char *key, uint64_t *out)
{
	const struct smp_node *v = smp_tree_get(t, smp_tree_root(t), key);

	if (v == NULL || v->type != SMP_V_UINT)
		return false;
	*out = v->u;
	return true;
}

/* OS group. */

static ssize_t
os_taskstat(uint8_t *out, size_t cap, const struct smp_hdr *h,
            const struct smp_rsp_opts *o)
{
	static const struct {
		const char *name;
		int prio;
		unsigned int state, stksiz, stkuse;
	} tasks[] = {
	    {"idle", 15, 0, 320, 64},
	    {"main", 0, 8, 1024, 412},
	    {"sysworkq", -1, 128, 2048, 700},
	    {"smp", 5, 128, 1536, 960},
	};
	struct rsp r;
	size_t i;

	rsp_begin(&r, out, cap, h, o, 1);
	enc_tstr(&r.e, "tasks");
	enc_map(&r.e, sizeof(tasks) / sizeof(tasks[0]), r.indef);
	for (i = 0; i < sizeof(tasks) / sizeof(tasks[0]); i++) {
		enc_tstr(&r.e, tasks[i].name);
		enc_map(&r.e, 5, r.indef);
		enc_tstr(&r.e, "prio");
		enc_int(&r.e, tasks[i].prio);
		enc_tstr(&r.e, "tid");
		enc_uint(&r.e, i);
		enc_tstr(&r.e, "state");
		enc_uint(&r.e, tasks[i].state);
		enc_tstr(&r.e, "stksiz");
		enc_uint(&r.e, tasks[i].stksiz);
		enc_tstr(&r.e, "stkuse");
		enc_uint(&r.e, tasks[i].stkuse);
		enc_end(&r.e, r.indef);
	}
	enc_end(&r.e, r.indef);
	return rsp_end(&r);
}

static ssize_t
os_mpstat(uint8_t *out, size_t cap, const struct smp_hdr *h,
          const struct smp_rsp_opts *o)
{
	struct rsp r;

	rsp_begin(&r, out, cap, h, o, 1);
	enc_tstr(&r.e, "mpools");
	enc_map(&r.e, 1, r.indef);
	enc_tstr(&r.e, "heap");
	enc_map(&r.e, 4, r.indef);
	enc_tstr(&r.e, "blksiz");
	enc_uint(&r.e, 1);
	enc_tstr(&r.e, "nblks");
	enc_uint(&r.e, 16384);
	enc_tstr(&r.e, "nfree");
	enc_uint(&r.e, 9000);
	enc_tstr(&r.e, "min");
	enc_uint(&r.e, 7100);
	enc_end(&r.e, r.indef);
	enc_end(&r.e, r.indef);
	return rsp_end(&r);
}

static ssize_t
os_datetime(uint8_t *out, size_t cap, const struct smp_hdr *h,
            const struct smp_rsp_opts *o, const struct smp_tree *t)
{
	struct timespec now;
	struct rsp r;
	struct tm tm;
	time_t when;
	char buf[32];
	const char *s;

	if (h->op == SMP_OP_WRITE) {
		if ((s = req_text(t, "datetime")) == NULL || strlen(s) < 19 ||
		    strlen(s) > 25)
			return inval(out, cap, h, o);
		memset(&tm, 0, sizeof(tm));
		if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year,
		           &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
		           &tm.tm_sec) != 6 ||
		    tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 ||
		    tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
		    tm.tm_sec > 59)
			return inval(out, cap, h, o);
		tm.tm_year -= 1900;
		tm.tm_mon -= 1;
		rtc_base = timegm(&tm);
		clock_gettime(CLOCK_MONOTONIC, &rtc_at);
		rtc_set = true;
		log_info("datetime set", "datetime=%s", log_q(s));
		return smp_rspb_empty(out, cap, h, o);
	}
	if (!rtc_set)
		return group_error(out, cap, h, o, OS_ERR_RTC_NOT_SET,
		                   SMP_RC_NOENT, NULL, 0);
	clock_gettime(CLOCK_MONOTONIC, &now);
	when = rtc_base + (now.tv_sec - rtc_at.tv_sec);
	gmtime_r(&when, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	rsp_begin(&r, out, cap, h, o, 1);
	enc_tstr(&r.e, "datetime");
	enc_tstr(&r.e, buf);
	return rsp_end(&r);
}

/* uname-like, as Zephyr: the parts the format letters ask for. */
static ssize_t
os_info(uint8_t *out, size_t cap, const struct smp_hdr *h,
        const struct smp_rsp_opts *o, const struct smp_tree *t)
{
	static const struct {
		char c;
		const char *text;
	} parts[] = {
	    {'s', "Zephyr"},    {'n', "sim"},    {'r', "unknown"},
	    {'v', "3.2.99"},    {'m', "posix"},  {'p', "unknown"},
	    {'i', "board_sim"}, {'o', "Zephyr"},
	};
	const char *fmt = req_text(t, "format");
	char buf[256] = "";
	struct rsp r;
	size_t i;
	bool all;

	if (fmt == NULL || *fmt == '\0')
		fmt = "s";
	for (i = 0; fmt[i] != '\0'; i++)
		if (strchr("snrvmpioa", fmt[i]) == NULL)
			return group_error(out, cap, h, o,
			                   OS_ERR_INVALID_FORMAT, SMP_RC_INVAL,
			                   NULL, 0);
	all = strchr(fmt, 'a') != NULL;
	for (i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		if (!all && strchr(fmt, parts[i].c) == NULL)
			continue;
		if (buf[0] != '\0')
			strcat(buf, " ");
		strcat(buf, parts[i].text);
	}
	rsp_begin(&r, out, cap, h, o, 1);
	enc_tstr(&r.e, "output");
	enc_tstr(&r.e, buf);
	return rsp_end(&r);
}

static ssize_t
os_bootloader(uint8_t *out, size_t cap, const struct smp_hdr *h,
              const struct smp_rsp_opts *o, const struct smp_tree *t)
{
	const char *q = req_text(t, "query");
	struct rsp r;

	if (q == NULL) {
		rsp_begin(&r, out, cap, h, o, 1);
		enc_tstr(&r.e, "bootloader");
		enc_tstr(&r.e, "MCUboot");
		return rsp_end(&r);
	}
	if (strcmp(q, "mode") != 0)
		return group_error(out, cap, h, o, OS_ERR_NO_ANSWER,
		                   SMP_RC_NOENT, NULL, 0);
	rsp_begin(&r, out, cap, h, o, 1);
	enc_tstr(&r.e, "mode");
	enc_int(&r.e, 1); /* swap using scratch: test and revert, as here */
	return rsp_end(&r);
}

/* stat group: the peer's smp_svr_stats and our link counters. */
static ssize_t
stat_cmd(uint8_t *out, size_t cap, const struct smp_hdr *h,
         const struct smp_rsp_opts *o, const struct smp_tree *t)
{
	struct rsp r;
	const char *name;

	if (h->id == 1) {
		rsp_begin(&r, out, cap, h, o, 2);
		enc_tstr(&r.e, "rc");
		enc_int(&r.e, 0);
		enc_tstr(&r.e, "stat_list");
		enc_array(&r.e, 2, r.indef);
		enc_tstr(&r.e, "smp_svr_stats");
		enc_tstr(&r.e, "sim_link");
		enc_end(&r.e, r.indef);
		return rsp_end(&r);
	}
	name = req_text(t, "name");
	if (name == NULL || *name == '\0')
		return inval(out, cap, h, o);
	/* Zephyr answers an unknown name with rc 1, in either version. */
	if (strcmp(name, "smp_svr_stats") != 0 && strcmp(name, "sim_link") != 0)
		return smp_rspb_error(out, cap, h, o, SMP_RC_UNKNOWN, NULL);
	rsp_begin(&r, out, cap, h, o, 3);
	enc_tstr(&r.e, "rc");
	enc_int(&r.e, 0);
	enc_tstr(&r.e, "name");
	enc_tstr(&r.e, name);
	enc_tstr(&r.e, "fields");
	if (strcmp(name, "smp_svr_stats") == 0) {
		enc_map(&r.e, 2, r.indef);
		enc_tstr(&r.e, "ticks");
		enc_uint(&r.e, board.c.requests);
		enc_tstr(&r.e, "s1");
		enc_uint(&r.e, 0);
	} else {
		enc_map(&r.e, 3, r.indef);
		enc_tstr(&r.e, "requests");
		enc_uint(&r.e, board.c.requests);
		enc_tstr(&r.e, "replies");
		enc_uint(&r.e, board.c.replies);
		enc_tstr(&r.e, "dropped");
		enc_uint(&r.e, board.c.dropped);
	}
	enc_end(&r.e, r.indef);
	return rsp_end(&r);
}

/*
 * shell exec: "echo ...", "kernel uptime", "fail N" (returns N); anything
 * else is unknown, as Zephyr's shell says.  "ret", or "rc" with
 * --shell-legacy-rc.
 */
static ssize_t
shell_exec(uint8_t *out, size_t cap, const struct smp_hdr *h,
           const struct smp_rsp_opts *o, const struct smp_tree *t)
{
	const struct smp_node *argv = smp_tree_get(t, smp_tree_root(t), "argv");
	const struct smp_node *a;
	char line[256] = "", text[300];
	int ret = 0;
	struct rsp r;

	if (argv == NULL || argv->type != SMP_V_ARRAY)
		return inval(out, cap, h, o);
	for (a = smp_tree_first(t, argv); a != NULL;
	     a = smp_tree_next(t, argv, a)) {
		if (a->type != SMP_V_TEXT ||
		    strlen(line) + a->len + 2 > sizeof(line))
			return inval(out, cap, h, o);
		if (line[0] != '\0')
			strcat(line, " ");
		strncat(line, (const char *)a->p, a->len);
	}
	if (line[0] == '\0')
		return group_error(out, cap, h, o, SHELL_ERR_EMPTY,
		                   SMP_RC_INVAL, NULL, 0);
	if (strncmp(line, "echo", 4) == 0 && (line[4] == ' ' || !line[4]))
		snprintf(text, sizeof(text), "%s\n",
		         line[4] != '\0' ? line + 5 : "");
	else if (strcmp(line, "kernel uptime") == 0)
		snprintf(text, sizeof(text), "Uptime: %" PRIu64 " ms\n",
		         board.c.requests * 10);
	else if (sscanf(line, "fail %d", &ret) == 1)
		snprintf(text, sizeof(text), "failing with %d\n", ret);
	else {
		snprintf(text, sizeof(text), "%s: command not found\n", line);
		ret = -8; /* -ENOEXEC */
	}
	rsp_begin(&r, out, cap, h, o, 2);
	enc_tstr(&r.e, "o");
	enc_tstr(&r.e, text);
	enc_tstr(&r.e, board.o->shell_legacy_rc ? "rc" : "ret");
	enc_int(&r.e, ret);
	return rsp_end(&r);
}

/* fs group: files in memory, kept across resets as flash keeps them. */

static struct file *
file_find(const char *name, bool create)
{
	struct file *free_slot = NULL;
	size_t i;

	for (i = 0; i < MAX_FILES; i++) {
		if (files[i].name[0] == '\0') {
			if (free_slot == NULL)
				free_slot = &files[i];
		} else if (strcmp(files[i].name, name) == 0)
			return &files[i];
	}
	if (!create || free_slot == NULL)
		return NULL;
	snprintf(free_slot->name, sizeof(free_slot->name), "%s", name);
	return free_slot;
}

/* An absolute path of a sane length: what a mounted Zephyr fs takes. */
static bool
name_ok(const char *name)
{
	return name != NULL && name[0] == '/' && strlen(name) <= MAX_NAME;
}

static ssize_t
fs_off_reply(uint8_t *out, size_t cap, const struct smp_hdr *h,
             const struct smp_rsp_opts *o, uint64_t off)
{
	struct rsp r;

	rsp_begin(&r, out, cap, h, o, 1);
	enc_tstr(&r.e, "off");
	enc_uint(&r.e, off);
	return rsp_end(&r);
}

static ssize_t
fs_upload(uint8_t *out, size_t cap, const struct smp_hdr *h,
          const struct smp_rsp_opts *o, const struct smp_tree *t)
{
	const struct smp_node *d = smp_tree_get(t, smp_tree_root(t), "data");
	const char *name = req_text(t, "name");
	uint64_t off, len = 0;
	struct file *f;

	if (!req_uint(t, "off", &off) || name == NULL ||
	    (off == 0 && !req_uint(t, "len", &len)) ||
	    (d != NULL && d->type != SMP_V_BYTES))
		return inval(out, cap, h, o);
	if (!name_ok(name))
		return group_error(out, cap, h, o, FS_ERR_INVALID_NAME,
		                   SMP_RC_INVAL, NULL, 0);
	if (off == 0 && len > MAX_FILE_SIZE)
		return smp_rspb_error(out, cap, h, o, SMP_RC_NOMEM,
		                      "file too large");
	if ((f = file_find(name, off == 0)) == NULL)
		return off == 0 ? smp_rspb_error(out, cap, h, o, SMP_RC_NOMEM,
		                                 "no room for another file")
		                : group_error(out, cap, h, o, FS_ERR_NOT_FOUND,
		                              SMP_RC_NOENT, NULL, 0);
	if (!xfer.upload || strcmp(xfer.name, name) != 0) {
		/* A new transfer: a later offset continues the file. */
		xfer.upload = true;
		snprintf(xfer.name, sizeof(xfer.name), "%s", name);
		xfer.off = f->len;
		xfer.len = 0;
	}
	if (off == 0) {
		f->len = 0;
		xfer.off = 0;
		xfer.len = len;
	} else if (off != xfer.off) {
		uint64_t have = xfer.off;

		memset(&xfer, 0, sizeof(xfer));
		return group_error(out, cap, h, o, FS_ERR_OFFSET,
		                   SMP_RC_UNKNOWN, "len", have);
	}
	if (d != NULL && d->len > 0) {
		if (f->len + d->len > MAX_FILE_SIZE)
			return smp_rspb_error(out, cap, h, o, SMP_RC_NOMEM,
			                      "file too large");
		f->data = xreallocarray(f->data, f->len + d->len, 1);
		memcpy(f->data + f->len, d->p, d->len);
		f->len += d->len;
		xfer.off += d->len;
	}
	off = xfer.off;
	if (xfer.len > 0 && xfer.off >= xfer.len) {
		log_info("file written", "name=%s len=%zu", log_q(name),
		         f->len);
		memset(&xfer, 0, sizeof(xfer));
	}
	return fs_off_reply(out, cap, h, o, off);
}

static ssize_t
fs_download(uint8_t *out, size_t cap, const struct smp_hdr *h,
            const struct smp_rsp_opts *o, const struct smp_tree *t)
{
	const char *name = req_text(t, "name");
	size_t chunk = board.o->buf_size > 128 ? board.o->buf_size - 64 : 64;
	struct file *f;
	struct rsp r;
	uint64_t off;
	size_t n;

	if (!req_uint(t, "off", &off) || name == NULL)
		return inval(out, cap, h, o);
	if (!name_ok(name))
		return group_error(out, cap, h, o, FS_ERR_INVALID_NAME,
		                   SMP_RC_INVAL, NULL, 0);
	if ((f = file_find(name, false)) == NULL)
		return group_error(out, cap, h, o, FS_ERR_NOT_FOUND,
		                   SMP_RC_NOENT, NULL, 0);
	memset(&xfer, 0, sizeof(xfer));
	n = off >= f->len ? 0 : f->len - off < chunk ? f->len - off : chunk;
	rsp_begin(&r, out, cap, h, o, off == 0 ? 3 : 2);
	enc_tstr(&r.e, "off");
	enc_uint(&r.e, off);
	enc_tstr(&r.e, "data");
	enc_bstr(&r.e, n > 0 ? f->data + off : (const uint8_t *)"", n);
	if (off == 0) {
		enc_tstr(&r.e, "len");
		enc_uint(&r.e, f->len);
	}
	return rsp_end(&r);
}

static ssize_t
fs_stat(uint8_t *out, size_t cap, const struct smp_hdr *h,
        const struct smp_rsp_opts *o, const struct smp_tree *t)
{
	const char *name = req_text(t, "name");
	struct file *f;
	struct rsp r;

	if (name == NULL)
		return inval(out, cap, h, o);
	if ((f = file_find(name, false)) == NULL)
		return group_error(out, cap, h, o, FS_ERR_NOT_FOUND,
		                   SMP_RC_NOENT, NULL, 0);
	rsp_begin(&r, out, cap, h, o, 1);
	enc_tstr(&r.e, "len");
	enc_uint(&r.e, f->len);
	return rsp_end(&r);
}

static ssize_t
fs_hash(uint8_t *out, size_t cap, const struct smp_hdr *h,
        const struct smp_rsp_opts *o, const struct smp_tree *t)
{
	const char *name = req_text(t, "name"), *type = req_text(t, "type");
	uint64_t off = 0, len = UINT64_MAX;
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	struct file *f;
	struct rsp r;
	bool sha;

	if (name == NULL)
		return inval(out, cap, h, o);
	(void)req_uint(t, "off", &off);
	if (req_uint(t, "len", &len) && len == 0)
		return inval(out, cap, h, o);
	if (type == NULL)
		type = "sha256";
	if (strcmp(type, "sha256") != 0 && strcmp(type, "crc32") != 0)
		return group_error(out, cap, h, o, FS_ERR_HASH_NOT_FOUND,
		                   SMP_RC_INVAL, NULL, 0);
	sha = strcmp(type, "sha256") == 0;
	if ((f = file_find(name, false)) == NULL)
		return group_error(out, cap, h, o, FS_ERR_NOT_FOUND,
		                   SMP_RC_NOENT, NULL, 0);
	if (f->len <= off)
		return group_error(out, cap, h, o,
		                   f->len == 0 ? FS_ERR_EMPTY
		                               : FS_ERR_OFFSET_LARGER,
		                   SMP_RC_UNKNOWN, NULL, 0);
	if (len > f->len - off)
		len = f->len - off;
	rsp_begin(&r, out, cap, h, o, off != 0 ? 4 : 3);
	enc_tstr(&r.e, "type");
	enc_tstr(&r.e, type);
	if (off != 0) {
		enc_tstr(&r.e, "off");
		enc_uint(&r.e, off);
	}
	enc_tstr(&r.e, "len");
	enc_uint(&r.e, len);
	enc_tstr(&r.e, "output");
	if (sha) {
		EVP_Digest(f->data + off, len, md, &mdlen, EVP_sha256(), NULL);
		enc_bstr(&r.e, md, mdlen);
	} else
		enc_uint(&r.e, lzma_crc32(f->data + off, len, 0));
	return rsp_end(&r);
}

static ssize_t
fs_cmd(uint8_t *out, size_t cap, const struct smp_hdr *h,
       const struct smp_rsp_opts *o, const struct smp_tree *t)
{
	bool wr = h->op == SMP_OP_WRITE;

	if (h->id == 0)
		return wr ? fs_upload(out, cap, h, o, t)
		          : fs_download(out, cap, h, o, t);
	if (h->id == 1 && !wr && sim_group_enabled("fs-stat"))
		return fs_stat(out, cap, h, o, t);
	if (h->id == 2 && !wr && sim_group_enabled("fs-hash"))
		return fs_hash(out, cap, h, o, t);
	if (h->id == 4 && wr) {
		memset(&xfer, 0, sizeof(xfer));
		return smp_rspb_empty(out, cap, h, o);
	}
	return smp_rspb_error(out, cap, h, o, SMP_RC_NOTSUP, NULL);
}

/* Whether the request is ours, and with which group switch. */
static const char *
group_name(const struct smp_hdr *h)
{
	if (h->group == SMP_GROUP_OS) {
		switch (h->id) {
		case 2:
			return "taskstat";
		case 3:
			return "mpstat";
		case 4:
			return "datetime";
		case 7:
			return "info";
		case 8:
			return "bootloader";
		}
		return NULL;
	}
	if (h->group == SMP_GROUP_STAT)
		return "stat";
	if (h->group == SMP_GROUP_SHELL)
		return "shell";
	if (h->group == SMP_GROUP_FS)
		return "fs";
	return NULL;
}

ssize_t
sim_groups_handle(uint8_t *out, size_t cap, const uint8_t *pkt, size_t len,
                  const struct smp_rsp_opts *o)
{
	struct smp_hdr h;
	struct smp_tree t;
	const char *g;
	char why[160];
	ssize_t n;
	bool wr;

	if (smp_hdr_decode(pkt, len, &h) != SMP_OK)
		return SIM_NOT_MINE;
	wr = h.op == SMP_OP_WRITE;
	if (h.group == SMP_GROUP_IMAGE && h.id == SMP_IMAGE_UPLOAD && wr &&
	    board.o->stuck_upload)
		return fs_off_reply(out, cap, &h, o, 0);
	if ((g = group_name(&h)) == NULL)
		return SIM_NOT_MINE;
	if (!sim_group_enabled(g))
		return smp_rspb_error(out, cap, &h, o, SMP_RC_NOTSUP, NULL);
	if (smp_tree_from_cbor(pkt + SMP_HDR_SIZE, h.len, &t, why,
	                       sizeof(why)) == -1) {
		log_debug("request refused", "reason=%s", log_q(why));
		return inval(out, cap, &h, o);
	}
	if (h.group == SMP_GROUP_OS && h.id == 2 && !wr)
		n = os_taskstat(out, cap, &h, o);
	else if (h.group == SMP_GROUP_OS && h.id == 3 && !wr)
		n = os_mpstat(out, cap, &h, o);
	else if (h.group == SMP_GROUP_OS && h.id == 4)
		n = os_datetime(out, cap, &h, o, &t);
	else if (h.group == SMP_GROUP_OS && h.id == 7 && !wr)
		n = os_info(out, cap, &h, o, &t);
	else if (h.group == SMP_GROUP_OS && h.id == 8 && !wr)
		n = os_bootloader(out, cap, &h, o, &t);
	else if (h.group == SMP_GROUP_STAT && h.id <= 1 && !wr)
		n = stat_cmd(out, cap, &h, o, &t);
	else if (h.group == SMP_GROUP_SHELL && h.id == 0 && wr)
		n = shell_exec(out, cap, &h, o, &t);
	else if (h.group == SMP_GROUP_FS)
		n = fs_cmd(out, cap, &h, o, &t);
	else
		n = smp_rspb_error(out, cap, &h, o, SMP_RC_NOTSUP, NULL);
	smp_tree_free(&t);
	return n;
}

void
sim_groups_free(void)
{
	size_t i;

	for (i = 0; i < MAX_FILES; i++)
		free(files[i].data);
	memset(files, 0, sizeof(files));
}
