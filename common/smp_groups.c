/*
 * The groups beyond the update path (smp_groups.h): a table of commands
 * with the Kconfig that builds each into a Zephyr board, payload encoders
 * on the CBOR writer the SMP codecs share, and decoders that read trees.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smp.h"
#include "smp_cbor.h"
#include "smp_groups.h"
#include "xmalloc.h"

/*
 * The command table.  The Kconfig names are Zephyr 3.3 and later; the
 * names before (MCUMGR_CMD_*_MGMT, OS_MGMT_*) are given where they exist.
 */
const struct smpg_cmd smpg_image_state_read = {
    "image list", SMP_OP_READ, SMP_GROUP_IMAGE, SMP_IMAGE_STATE,
    "CONFIG_MCUMGR_GRP_IMG (before Zephyr 3.3: CONFIG_MCUMGR_CMD_IMG_MGMT)"};
const struct smpg_cmd smpg_image_confirm = {
    "image confirm", SMP_OP_WRITE, SMP_GROUP_IMAGE, SMP_IMAGE_STATE,
    "CONFIG_MCUMGR_GRP_IMG (before Zephyr 3.3: CONFIG_MCUMGR_CMD_IMG_MGMT)"};
const struct smpg_cmd smpg_os_echo = {
    "echo", SMP_OP_WRITE, SMP_GROUP_OS, SMP_OS_ECHO,
    "CONFIG_MCUMGR_GRP_OS_ECHO (before Zephyr 3.3: CONFIG_OS_MGMT_ECHO)"};
const struct smpg_cmd smpg_os_reset = {"reset", SMP_OP_WRITE, SMP_GROUP_OS,
                                       SMP_OS_RESET, "CONFIG_MCUMGR_GRP_OS"};
const struct smpg_cmd smpg_image_erase = {
    "image erase", SMP_OP_WRITE, SMP_GROUP_IMAGE, SMP_IMAGE_ERASE,
    "CONFIG_MCUMGR_GRP_IMG (before Zephyr 3.3: CONFIG_MCUMGR_CMD_IMG_MGMT)"};
const struct smpg_cmd smpg_os_taskstat = {
    "os taskstat", SMP_OP_READ, SMP_GROUP_OS, 2,
    "CONFIG_MCUMGR_GRP_OS_TASKSTAT (before Zephyr 3.3: "
    "CONFIG_OS_MGMT_TASKSTAT), with CONFIG_THREAD_MONITOR"};
const struct smpg_cmd smpg_os_mpstat = {
    "os mpstat", SMP_OP_READ, SMP_GROUP_OS, 3,
    "CONFIG_MCUMGR_GRP_OS_MPSTAT, with CONFIG_SYS_HEAP_RUNTIME_STATS"};
const struct smpg_cmd smpg_os_datetime_get = {
    "os datetime", SMP_OP_READ, SMP_GROUP_OS, 4,
    "CONFIG_MCUMGR_GRP_OS_DATETIME (needs an rtc devicetree alias)"};
const struct smpg_cmd smpg_os_datetime_set = {
    "os datetime set", SMP_OP_WRITE, SMP_GROUP_OS, 4,
    "CONFIG_MCUMGR_GRP_OS_DATETIME (needs an rtc devicetree alias)"};
const struct smpg_cmd smpg_os_info = {"os info", SMP_OP_READ, SMP_GROUP_OS, 7,
                                      "CONFIG_MCUMGR_GRP_OS_INFO"};
const struct smpg_cmd smpg_os_bootloader = {
    "os bootloader", SMP_OP_READ, SMP_GROUP_OS, 8,
    "CONFIG_MCUMGR_GRP_OS_BOOTLOADER_INFO"};
const struct smpg_cmd smpg_stat_show = {
    "stat show", SMP_OP_READ, SMP_GROUP_STAT, 0,
    "CONFIG_MCUMGR_GRP_STAT (before Zephyr 3.3: "
    "CONFIG_MCUMGR_CMD_STAT_MGMT), with CONFIG_STATS and CONFIG_STATS_NAMES"};
const struct smpg_cmd smpg_stat_list = {
    "stat list", SMP_OP_READ, SMP_GROUP_STAT, 1,
    "CONFIG_MCUMGR_GRP_STAT (before Zephyr 3.3: "
    "CONFIG_MCUMGR_CMD_STAT_MGMT), with CONFIG_STATS"};
const struct smpg_cmd smpg_shell_exec = {
    "shell exec", SMP_OP_WRITE, SMP_GROUP_SHELL, 0,
    "CONFIG_MCUMGR_GRP_SHELL (before Zephyr 3.3: "
    "CONFIG_MCUMGR_CMD_SHELL_MGMT), with CONFIG_SHELL_BACKEND_DUMMY"};
const struct smpg_cmd smpg_fs_upload = {
    "fs upload", SMP_OP_WRITE, SMP_GROUP_FS, 0,
    "CONFIG_MCUMGR_GRP_FS (before Zephyr 3.3: CONFIG_MCUMGR_CMD_FS_MGMT) "
    "and a mounted file system"};
const struct smpg_cmd smpg_fs_download = {
    "fs download", SMP_OP_READ, SMP_GROUP_FS, 0,
    "CONFIG_MCUMGR_GRP_FS (before Zephyr 3.3: CONFIG_MCUMGR_CMD_FS_MGMT) "
    "and a mounted file system"};
const struct smpg_cmd smpg_fs_stat = {"fs stat", SMP_OP_READ, SMP_GROUP_FS, 1,
                                      "CONFIG_MCUMGR_GRP_FS_FILE_STATUS"};
const struct smpg_cmd smpg_fs_hash = {"fs hash", SMP_OP_READ, SMP_GROUP_FS, 2,
                                      "CONFIG_MCUMGR_GRP_FS_CHECKSUM_HASH with "
                                      "CONFIG_MCUMGR_GRP_FS_HASH_SHA256"};

bool
smpg_not_supported(int board_rc, bool board_v2)
{
	return !board_v2 && board_rc == SMP_RC_NOTSUP;
}

const char *
smpg_not_supported_msg(const struct smpg_cmd *c, char *buf, size_t cap)
{
	snprintf(buf, cap,
	         "the board does not support %s (a Zephyr build enables it "
	         "with %s)",
	         c->name, c->kconfig);
	return buf;
}

/* Encoding: payloads only, no header. */

static void
enc_payload(struct enc *e, uint8_t *buf, size_t cap)
{
	e->buf = buf;
	e->cap = cap;
	e->pos = 0;
	e->full = false;
}

static ssize_t
enc_done(const struct enc *e)
{
	return e->full || e->pos > UINT16_MAX ? -1 : (ssize_t)e->pos;
}

static void
enc_kv_tstr(struct enc *e, const char *k, const char *v)
{
	enc_tstr(e, k);
	enc_tstr(e, v);
}

static void
enc_kv_uint(struct enc *e, const char *k, uint64_t v)
{
	enc_tstr(e, k);
	enc_uint(e, v);
}

ssize_t
smpg_enc_empty(uint8_t *buf, size_t cap)
{
	struct enc e;

	enc_payload(&e, buf, cap);
	enc_map(&e, 0, false);
	return enc_done(&e);
}

ssize_t
smpg_enc_echo(uint8_t *buf, size_t cap, const char *text)
{
	struct enc e;

	enc_payload(&e, buf, cap);
	enc_map(&e, 1, false);
	enc_kv_tstr(&e, "d", text);
	return enc_done(&e);
}

ssize_t
smpg_enc_image_confirm(uint8_t *buf, size_t cap)
{
	struct enc e;

	enc_payload(&e, buf, cap);
	enc_map(&e, 1, false);
	enc_tstr(&e, "confirm");
	enc_bool(&e, true);
	return enc_done(&e);
}

ssize_t
smpg_enc_image_erase(uint8_t *buf, size_t cap, int slot)
{
	struct enc e;

	if (slot < 0)
		return smpg_enc_empty(buf, cap);
	enc_payload(&e, buf, cap);
	enc_map(&e, 1, false);
	enc_kv_uint(&e, "slot", (uint64_t)slot);
	return enc_done(&e);
}

ssize_t
smpg_enc_os_info(uint8_t *buf, size_t cap, const char *format)
{
	struct enc e;

	if (format == NULL)
		return smpg_enc_empty(buf, cap);
	enc_payload(&e, buf, cap);
	enc_map(&e, 1, false);
	enc_kv_tstr(&e, "format", format);
	return enc_done(&e);
}

/* YYYY-MM-DDTHH:MM:SS with an optional .mmm, as Zephyr parses it. */
static bool
datetime_ok(const char *s)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd";
	size_t i, n = strlen(s);

	if (n < sizeof(shape) - 1)
		return false;
	for (i = 0; i < sizeof(shape) - 1; i++) {
		if (shape[i] == 'd' ? !isdigit((unsigned char)s[i])
		                    : s[i] != shape[i])
			return false;
	}
	if (n == i)
		return true;
	if (s[i] != '.' || n - i < 2 || n - i > 4)
		return false;
	for (i++; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return true;
}

ssize_t
smpg_enc_datetime_set(uint8_t *buf, size_t cap, const char *datetime)
{
	struct enc e;

	if (!datetime_ok(datetime))
		return -1;
	enc_payload(&e, buf, cap);
	enc_map(&e, 1, false);
	enc_kv_tstr(&e, "datetime", datetime);
	return enc_done(&e);
}

ssize_t
smpg_enc_bootloader(uint8_t *buf, size_t cap, const char *query)
{
	struct enc e;

	if (query == NULL)
		return smpg_enc_empty(buf, cap);
	enc_payload(&e, buf, cap);
	enc_map(&e, 1, false);
	enc_kv_tstr(&e, "query", query);
	return enc_done(&e);
}

/* {"name": NAME}, the whole request of stat show and fs stat. */
static ssize_t
enc_name_only(uint8_t *buf, size_t cap, const char *name)
{
	struct enc e;

	if (name[0] == '\0')
		return -1;
	enc_payload(&e, buf, cap);
	enc_map(&e, 1, false);
	enc_kv_tstr(&e, "name", name);
	return enc_done(&e);
}

ssize_t
smpg_enc_stat_show(uint8_t *buf, size_t cap, const char *name)
{
	return enc_name_only(buf, cap, name);
}

ssize_t
smpg_enc_shell_exec(uint8_t *buf, size_t cap, int argc, char *const argv[])
{
	struct enc e;
	int i;

	if (argc < 1)
		return -1;
	enc_payload(&e, buf, cap);
	enc_map(&e, 1, false);
	enc_tstr(&e, "argv");
	enc_array(&e, (size_t)argc, false);
	for (i = 0; i < argc; i++)
		enc_tstr(&e, argv[i]);
	return enc_done(&e);
}

ssize_t
smpg_enc_fs_upload(uint8_t *buf, size_t cap, const char *name, uint64_t off,
                   const uint8_t *data, size_t len, uint64_t total)
{
	struct enc e;

	if (name[0] == '\0' || off + len > total)
		return -1;
	enc_payload(&e, buf, cap);
	enc_map(&e, off == 0 ? 4 : 3, false);
	enc_kv_uint(&e, "off", off);
	enc_tstr(&e, "data");
	enc_bstr(&e, data, len);
	enc_kv_tstr(&e, "name", name);
	if (off == 0)
		enc_kv_uint(&e, "len", total);
	return enc_done(&e);
}

size_t
smpg_fs_upload_overhead(const char *name, uint64_t off, uint64_t total)
{
	struct enc e;

	/* Count only: the largest header a chunk can have. */
	enc_payload(&e, NULL, SIZE_MAX);
	enc_map(&e, off == 0 ? 4 : 3, false);
	enc_kv_uint(&e, "off", off);
	enc_tstr(&e, "data");
	enc_uint(&e, 65535); /* a bstr head as large as any chunk's */
	enc_kv_tstr(&e, "name", name);
	if (off == 0)
		enc_kv_uint(&e, "len", total);
	return e.pos;
}

ssize_t
smpg_enc_fs_download(uint8_t *buf, size_t cap, const char *name, uint64_t off)
{
	struct enc e;

	if (name[0] == '\0')
		return -1;
	enc_payload(&e, buf, cap);
	enc_map(&e, 2, false);
	enc_kv_uint(&e, "off", off);
	enc_kv_tstr(&e, "name", name);
	return enc_done(&e);
}

ssize_t
smpg_enc_fs_stat(uint8_t *buf, size_t cap, const char *name)
{
	return enc_name_only(buf, cap, name);
}

ssize_t
smpg_enc_fs_hash(uint8_t *buf, size_t cap, const char *name, const char *type,
                 uint64_t off, uint64_t len)
{
	struct enc e;

	if (name[0] == '\0')
		return -1;
	enc_payload(&e, buf, cap);
	enc_map(&e, 1 + (type != NULL) + (off != 0) + (len != 0), false);
	enc_kv_tstr(&e, "name", name);
	if (type != NULL)
		enc_kv_tstr(&e, "type", type);
	if (off != 0)
		enc_kv_uint(&e, "off", off);
	if (len != 0)
		enc_kv_uint(&e, "len", len);
	return enc_done(&e);
}

/* Decoding. */

static int dec_fail(char *why, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
dec_fail(char *why, size_t cap, const char *fmt, ...)
{
	va_list ap;

	if (why != NULL && cap > 0) {
		va_start(ap, fmt);
		vsnprintf(why, cap, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* A text without NUL inside, usable as a C string (the tree adds one). */
static bool
is_cstring(const struct smp_node *n)
{
	return n != NULL && n->type == SMP_V_TEXT &&
	       memchr(n->p, '\0', n->len) == NULL;
}

/*
 * The value under key: absent is fine (NULL) unless required, the wrong
 * type is not.
 */
static int
get_typed(const struct smp_tree *t, const struct smp_node *map, const char *key,
          enum smp_vtype want, bool required, const struct smp_node **out,
          char *why, size_t cap)
{
	const struct smp_node *v = smp_tree_get(t, map, key);

	*out = NULL;
	if (v == NULL)
		return required
		           ? dec_fail(why, cap, "no \"%s\" in the reply", key)
		           : 0;
	if (v->type != want)
		return dec_fail(why, cap, "\"%s\": expected %s, got %s", key,
		                smp_vtype_name(want), smp_vtype_name(v->type));
	if (want == SMP_V_TEXT && !is_cstring(v))
		return dec_fail(why, cap, "\"%s\" holds a NUL byte", key);
	*out = v;
	return 0;
}

static int
get_uint(const struct smp_tree *t, const struct smp_node *map, const char *key,
         bool required, bool *has, uint64_t *out, char *why, size_t cap)
{
	const struct smp_node *v;

	if (get_typed(t, map, key, SMP_V_UINT, required, &v, why, cap) == -1)
		return -1;
	if (has != NULL)
		*has = v != NULL;
	if (v != NULL)
		*out = v->u;
	return 0;
}

/* A signed integer (either CBOR major type) within int64. */
static int
get_int(const struct smp_tree *t, const struct smp_node *map, const char *key,
        bool *has, int64_t *out, char *why, size_t cap)
{
	const struct smp_node *v = smp_tree_get(t, map, key);

	*has = false;
	if (v == NULL)
		return 0;
	if (smp_node_int(v, INT64_MIN, INT64_MAX, out) == -1)
		return dec_fail(why, cap,
		                "\"%s\" is not an integer within 64 bits", key);
	*has = true;
	return 0;
}

static const char *
get_cstr(const struct smp_tree *t, const struct smp_node *map, const char *key,
         bool required, int *rc, char *why, size_t cap)
{
	const struct smp_node *v;

	*rc = get_typed(t, map, key, SMP_V_TEXT, required, &v, why, cap);
	return v != NULL ? (const char *)v->p : NULL;
}

/* A map of named entries (taskstat's tasks, mpstat's pools, stat fields). */
static int
named_map(const struct smp_tree *t, const char *key, const struct smp_node **m,
          size_t *n, char *why, size_t cap)
{
	if (get_typed(t, smp_tree_root(t), key, SMP_V_MAP, true, m, why, cap) ==
	    -1)
		return -1;
	*n = (*m)->count;
	return 0;
}

/* The next key/value pair of map after key k (NULL: the first). */
static int
next_pair(const struct smp_tree *t, const struct smp_node *map,
          const struct smp_node **k, const struct smp_node **v,
          const char *what, char *why, size_t cap)
{
	*k = *k == NULL ? smp_tree_first(t, map)
	                : smp_tree_next(t, map, smp_tree_next(t, map, *k));
	if (*k == NULL)
		return 0;
	*v = smp_tree_next(t, map, *k);
	if (!is_cstring(*k))
		return dec_fail(
		    why, cap, "a name in \"%s\": expected text string, got %s",
		    what, smp_vtype_name((*k)->type));
	return 1;
}

int
smpg_dec_taskstat(const struct smp_tree *t, struct smpg_taskstat *out,
                  char *why, size_t cap)
{
	const struct smp_node *m, *k = NULL, *v;
	size_t n, i = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	if (named_map(t, "tasks", &m, &n, why, cap) == -1)
		return -1;
	out->tasks = xcalloc(n ? n : 1, sizeof(*out->tasks));
	while ((rc = next_pair(t, m, &k, &v, "tasks", why, cap)) == 1) {
		struct smpg_task *tk = &out->tasks[i++];
		bool has_use = false;

		if (v->type != SMP_V_MAP) {
			dec_fail(why, cap, "task \"%s\": expected map, got %s",
			         (const char *)k->p, smp_vtype_name(v->type));
			goto fail;
		}
		tk->name = (const char *)k->p;
		/* Signed on most builds, unsigned with the option off. */
		if (get_int(t, v, "prio", &tk->has_prio, &tk->prio, why, cap) ==
		        -1 ||
		    get_uint(t, v, "tid", false, &tk->has_tid, &tk->tid, why,
		             cap) == -1 ||
		    get_uint(t, v, "state", false, &tk->has_state, &tk->state,
		             why, cap) == -1 ||
		    get_uint(t, v, "stksiz", false, &tk->has_stack, &tk->stksiz,
		             why, cap) == -1 ||
		    get_uint(t, v, "stkuse", false, &has_use, &tk->stkuse, why,
		             cap) == -1 ||
		    get_uint(t, v, "runtime", false, &tk->has_runtime,
		             &tk->runtime, why, cap) == -1 ||
		    get_uint(t, v, "cswcnt", false, &tk->has_cswcnt,
		             &tk->cswcnt, why, cap) == -1)
			goto fail;
		tk->has_stack = tk->has_stack && has_use;
	}
	if (rc == -1)
		goto fail;
	out->n = i;
	return 0;
fail:
	smpg_taskstat_free(out);
	return -1;
}

void
smpg_taskstat_free(struct smpg_taskstat *s)
{
	free(s->tasks);
	memset(s, 0, sizeof(*s));
}

int
smpg_dec_mpstat(const struct smp_tree *t, struct smpg_mpstat *out, char *why,
                size_t cap)
{
	const struct smp_node *m, *k = NULL, *v;
	size_t n, i = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	if (named_map(t, "mpools", &m, &n, why, cap) == -1)
		return -1;
	out->pools = xcalloc(n ? n : 1, sizeof(*out->pools));
	while ((rc = next_pair(t, m, &k, &v, "mpools", why, cap)) == 1) {
		struct smpg_pool *p = &out->pools[i++];

		if (v->type != SMP_V_MAP) {
			dec_fail(why, cap, "pool \"%s\": expected map, got %s",
			         (const char *)k->p, smp_vtype_name(v->type));
			goto fail;
		}
		p->name = (const char *)k->p;
		if (get_uint(t, v, "blksiz", true, NULL, &p->blksiz, why,
		             cap) == -1 ||
		    get_uint(t, v, "nblks", true, NULL, &p->nblks, why, cap) ==
		        -1 ||
		    get_uint(t, v, "nfree", true, NULL, &p->nfree, why, cap) ==
		        -1 ||
		    get_uint(t, v, "min", false, &p->has_min, &p->min, why,
		             cap) == -1)
			goto fail;
	}
	if (rc == -1)
		goto fail;
	out->n = i;
	return 0;
fail:
	smpg_mpstat_free(out);
	return -1;
}

void
smpg_mpstat_free(struct smpg_mpstat *s)
{
	free(s->pools);
	memset(s, 0, sizeof(*s));
}

int
smpg_dec_os_info(const struct smp_tree *t, const char **output, char *why,
                 size_t cap)
{
	int rc;

	*output = get_cstr(t, smp_tree_root(t), "output", true, &rc, why, cap);
	return rc;
}

int
smpg_dec_echo(const struct smp_tree *t, const char **text, char *why,
              size_t cap)
{
	int rc;

	*text = get_cstr(t, smp_tree_root(t), "r", true, &rc, why, cap);
	return rc;
}

int
smpg_dec_datetime(const struct smp_tree *t, const char **datetime, char *why,
                  size_t cap)
{
	int rc;

	*datetime =
	    get_cstr(t, smp_tree_root(t), "datetime", true, &rc, why, cap);
	return rc;
}

int
smpg_dec_bootloader(const struct smp_tree *t, struct smpg_bootloader *out,
                    char *why, size_t cap)
{
	const struct smp_node *root = smp_tree_root(t), *v;
	int rc;

	memset(out, 0, sizeof(*out));
	out->bootloader = get_cstr(t, root, "bootloader", false, &rc, why, cap);
	if (rc == -1 ||
	    get_int(t, root, "mode", &out->has_mode, &out->mode, why, cap) ==
	        -1 ||
	    get_typed(t, root, "no-downgrade", SMP_V_BOOL, false, &v, why,
	              cap) == -1)
		return -1;
	if (v != NULL) {
		out->has_no_downgrade = true;
		out->no_downgrade = v->b;
	}
	if (out->bootloader == NULL && !out->has_mode)
		return dec_fail(why, cap,
		                "neither \"bootloader\" nor \"mode\" in the "
		                "reply");
	return 0;
}

const char *
smpg_mcuboot_mode_name(int64_t mode)
{
	static const char *const names[] = {
	    "single application", "swap using scratch",
	    "overwrite only",     "swap using move",
	    "direct XIP",         "direct XIP with revert",
	    "RAM load",
	};

	if (mode < 0 || mode >= (int64_t)(sizeof(names) / sizeof(names[0])))
		return "unknown";
	return names[mode];
}

int
smpg_dec_stat_list(const struct smp_tree *t, struct smpg_stat_list *out,
                   char *why, size_t cap)
{
	const struct smp_node *a, *c;
	size_t i = 0;

	memset(out, 0, sizeof(*out));
	if (get_typed(t, smp_tree_root(t), "stat_list", SMP_V_ARRAY, true, &a,
	              why, cap) == -1)
		return -1;
	out->names = xcalloc(a->count ? a->count : 1, sizeof(*out->names));
	for (c = smp_tree_first(t, a); c != NULL; c = smp_tree_next(t, a, c)) {
		if (!is_cstring(c)) {
			smpg_stat_list_free(out);
			return dec_fail(why, cap,
			                "a name in \"stat_list\": expected "
			                "text string, got %s",
			                smp_vtype_name(c->type));
		}
		out->names[i++] = (const char *)c->p;
	}
	out->n = i;
	return 0;
}

void
smpg_stat_list_free(struct smpg_stat_list *s)
{
	free(s->names);
	memset(s, 0, sizeof(*s));
}

int
smpg_dec_stat_show(const struct smp_tree *t, struct smpg_stat_show *out,
                   char *why, size_t cap)
{
	const struct smp_node *m, *k = NULL, *v;
	size_t n, i = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	out->name = get_cstr(t, smp_tree_root(t), "name", false, &rc, why, cap);
	if (rc == -1 || named_map(t, "fields", &m, &n, why, cap) == -1)
		return -1;
	out->fields = xcalloc(n ? n : 1, sizeof(*out->fields));
	while ((rc = next_pair(t, m, &k, &v, "fields", why, cap)) == 1) {
		if (v->type != SMP_V_UINT) {
			dec_fail(
			    why, cap,
			    "field \"%s\": expected unsigned integer, got %s",
			    (const char *)k->p, smp_vtype_name(v->type));
			smpg_stat_show_free(out);
			return -1;
		}
		out->fields[i].name = (const char *)k->p;
		out->fields[i++].value = v->u;
	}
	if (rc == -1) {
		smpg_stat_show_free(out);
		return -1;
	}
	out->n = i;
	return 0;
}

void
smpg_stat_show_free(struct smpg_stat_show *s)
{
	free(s->fields);
	memset(s, 0, sizeof(*s));
}

int
smpg_dec_shell(const struct smp_tree *t, struct smpg_shell *out, char *why,
               size_t cap)
{
	const struct smp_node *root = smp_tree_root(t), *o;
	bool has_rc = false;
	int64_t rc = 0;

	memset(out, 0, sizeof(*out));
	/* Output may hold any bytes: its length counts, not strlen. */
	if ((o = smp_tree_get(t, root, "o")) == NULL)
		return dec_fail(why, cap, "no \"o\" (output) in the reply");
	if (o->type != SMP_V_TEXT)
		return dec_fail(why, cap, "\"o\": expected text string, got %s",
		                smp_vtype_name(o->type));
	if (get_int(t, root, "ret", &out->has_ret, &out->ret, why, cap) == -1 ||
	    get_int(t, root, "rc", &has_rc, &rc, why, cap) == -1)
		return -1;
	out->out = o->p;
	out->out_len = o->len;
	if (!out->has_ret && has_rc) {
		out->has_ret = true;
		out->legacy_rc = true;
		out->ret = rc;
	}
	return 0;
}

static int
dec_slot(const struct smp_tree *t, const struct smp_node *m,
         struct smp_image_slot *s, char *why, size_t cap)
{
	const struct smp_node *v;
	const char *flags[] = {"bootable", "pending", "confirmed", "active",
	                       "permanent"};
	bool *dst[] = {&s->bootable, &s->pending, &s->confirmed, &s->active,
	               &s->permanent};
	uint64_t n = 0;
	size_t i;
	int rc;

	memset(s, 0, sizeof(*s));
	if (m->type != SMP_V_MAP)
		return dec_fail(why, cap, "an image slot: expected map, got %s",
		                smp_vtype_name(m->type));
	if (get_uint(t, m, "image", false, NULL, &n, why, cap) == -1 ||
	    n > UINT32_MAX)
		return -1;
	s->image = (uint32_t)n;
	n = 0;
	if (get_uint(t, m, "slot", true, NULL, &n, why, cap) == -1 ||
	    n > UINT32_MAX)
		return -1;
	s->slot = (uint32_t)n;
	if (get_typed(t, m, "version", SMP_V_TEXT, false, &v, why, cap) == -1)
		return -1;
	if (v != NULL)
		snprintf(s->version, sizeof(s->version), "%s",
		         (const char *)v->p);
	if (get_typed(t, m, "hash", SMP_V_BYTES, false, &v, why, cap) == -1)
		return -1;
	if (v != NULL) {
		if (v->len != SMP_HASH_LEN)
			return dec_fail(why, cap, "\"hash\" of %zu bytes",
			                v->len);
		memcpy(s->hash, v->p, SMP_HASH_LEN);
		s->has_hash = true;
	}
	for (i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		if ((rc = get_typed(t, m, flags[i], SMP_V_BOOL, false, &v, why,
		                    cap)) == -1)
			return -1;
		*dst[i] = v != NULL && v->b;
	}
	return 0;
}

int
smpg_dec_image_state(const struct smp_tree *t, struct smp_image_list *out,
                     char *why, size_t cap)
{
	const struct smp_node *a, *c;

	memset(out, 0, sizeof(*out));
	if (get_typed(t, smp_tree_root(t), "images", SMP_V_ARRAY, true, &a, why,
	              cap) == -1)
		return -1;
	if (a->count > SMP_MAX_SLOTS)
		return dec_fail(why, cap, "%u image slots, at most %d",
		                a->count, SMP_MAX_SLOTS);
	for (c = smp_tree_first(t, a); c != NULL; c = smp_tree_next(t, a, c))
		if (dec_slot(t, c, &out->slots[out->n++], why, cap) == -1)
			return -1;
	return 0;
}

const char *
smpg_group_rc_name(uint16_t group, int rc)
{
	static const char *const os[] = {"ok",
	                                 "unknown",
	                                 "invalid format",
	                                 "query yields no answer",
	                                 "RTC not set",
	                                 "RTC command failed"};
	static const char *const fs[] = {"ok",
	                                 "unknown",
	                                 "invalid file name",
	                                 "file not found",
	                                 "is a directory",
	                                 "file open failed",
	                                 "file seek failed",
	                                 "file read failed",
	                                 "file truncate failed",
	                                 "file delete failed",
	                                 "file write failed",
	                                 "offset not valid",
	                                 "offset larger than the file",
	                                 "hash or checksum type not found",
	                                 "mount point not found",
	                                 "read-only file system",
	                                 "file empty"};
	static const char *const shell[] = {"ok", "unknown", "command too long",
	                                    "empty command"};

	if (rc < 0)
		return NULL;
	if (group == SMP_GROUP_OS && (size_t)rc < sizeof(os) / sizeof(os[0]))
		return os[rc];
	if (group == SMP_GROUP_FS && (size_t)rc < sizeof(fs) / sizeof(fs[0]))
		return fs[rc];
	if (group == SMP_GROUP_SHELL &&
	    (size_t)rc < sizeof(shell) / sizeof(shell[0]))
		return shell[rc];
	return NULL;
}

int
smpg_dec_fs_upload(const struct smp_tree *t, uint64_t *off, char *why,
                   size_t cap)
{
	return get_uint(t, smp_tree_root(t), "off", true, NULL, off, why, cap);
}

int
smpg_dec_fs_download(const struct smp_tree *t, struct smpg_fs_chunk *out,
                     char *why, size_t cap)
{
	const struct smp_node *root = smp_tree_root(t), *d;

	memset(out, 0, sizeof(*out));
	if (get_uint(t, root, "off", true, NULL, &out->off, why, cap) == -1 ||
	    get_typed(t, root, "data", SMP_V_BYTES, true, &d, why, cap) == -1 ||
	    get_uint(t, root, "len", false, &out->has_total, &out->total, why,
	             cap) == -1)
		return -1;
	out->data = d->p;
	out->len = d->len;
	return 0;
}

int
smpg_dec_fs_stat(const struct smp_tree *t, uint64_t *len, char *why, size_t cap)
{
	return get_uint(t, smp_tree_root(t), "len", true, NULL, len, why, cap);
}

int
smpg_dec_fs_hash(const struct smp_tree *t, struct smpg_fs_hash *out, char *why,
                 size_t cap)
{
	const struct smp_node *root = smp_tree_root(t), *o;
	int rc;

	memset(out, 0, sizeof(*out));
	out->type = get_cstr(t, root, "type", true, &rc, why, cap);
	if (rc == -1 ||
	    get_uint(t, root, "off", false, NULL, &out->off, why, cap) == -1 ||
	    get_uint(t, root, "len", true, NULL, &out->len, why, cap) == -1)
		return -1;
	if ((o = smp_tree_get(t, root, "output")) == NULL)
		return dec_fail(why, cap, "no \"output\" in the reply");
	if (o->type == SMP_V_BYTES) {
		out->is_bytes = true;
		out->bytes = o->p;
		out->nbytes = o->len;
	} else if (o->type == SMP_V_UINT)
		out->number = o->u;
	else
		return dec_fail(why, cap,
		                "\"output\": expected byte string or unsigned "
		                "integer, got %s",
		                smp_vtype_name(o->type));
	return 0;
}
