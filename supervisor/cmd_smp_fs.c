/*
 * The `smp fs` commands: files to and from a board's file system in
 * chunks sized from its buffer, with a progress bar, resumed where an
 * earlier run stopped (checked with the board's SHA-256 when it has fs
 * hash) and verified at the end the same way.  A download lands in
 * LOCAL.part and is renamed only when it is complete.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "cmd_smp.h"
#include "util.h"
#include "smp.h"
#include "xmalloc.h"

#define MIN_CHUNK   16
#define MAX_CHUNK   4096
#define MAX_RETRIES 5

/* SHA-256 of the first len bytes of fd. */
static int
sha256_prefix(int fd, uint64_t len, uint8_t out[32])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint8_t buf[65536];
	uint64_t off = 0;
	unsigned int n = 0;
	ssize_t r;
	int rc = -1;

	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
		goto out;
	while (off < len) {
		r = pread(fd, buf,
		          len - off < sizeof(buf) ? (size_t)(len - off)
		                                  : sizeof(buf),
		          (off_t)off);
		if (r <= 0)
			goto out;
		EVP_DigestUpdate(ctx, buf, (size_t)r);
		off += (uint64_t)r;
	}
	rc = EVP_DigestFinal_ex(ctx, out, &n) == 1 && n == 32 ? 0 : -1;
out:
	EVP_MD_CTX_free(ctx);
	return rc;
}

/*
 * The board's SHA-256 of [0, len) of remote: 1 with it, 0 when the board
 * has no fs hash (or no SHA-256), -1 on another failure (why).
 */
static int
board_sha256(struct smp_cli *c, const char *remote, uint64_t len,
             uint8_t out[32], char *why, size_t cap)
{
	struct smp_cmd_result res;
	struct smpg_fs_hash h;
	uint8_t buf[300];
	char w[256];
	int rc;

	if (cli_cmd(
	        c, &smpg_fs_hash, buf,
	        smpg_enc_fs_hash(buf, sizeof(buf), remote, "sha256", 0, len), 0,
	        &res) == -1) {
		snprintf(why, cap, "interrupted");
		return -1;
	}
	if (res.status == SMP_CMD_BOARD_ERROR &&
	    (smpg_not_supported(res.board_rc, res.board_v2) ||
	     (res.board_v2 && res.board_group == SMP_GROUP_FS &&
	      res.board_rc == 13))) {
		smp_tree_free(&res.tree);
		return 0;
	}
	if (res.status != SMP_CMD_OK) {
		cli_explain(c, "fs hash", &smpg_fs_hash, &res, why, cap);
		smp_tree_free(&res.tree);
		return -1;
	}
	rc = smpg_dec_fs_hash(&res.tree, &h, w, sizeof(w));
	if (rc == 0 && (!h.is_bytes || h.nbytes != 32 || h.len != len)) {
		snprintf(w, sizeof(w), "not a SHA-256 of %" PRIu64 " bytes",
		         len);
		rc = -1;
	}
	if (rc == -1) {
		snprintf(why, cap, "fs hash: unexpected reply: %s", w);
		smp_tree_free(&res.tree);
		return -1;
	}
	memcpy(out, h.bytes, 32);
	smp_tree_free(&res.tree);
	return 1;
}

/* The remote file's length: 1 with it, 0 when absent or unknowable. */
static int
remote_len(struct smp_cli *c, const char *remote, uint64_t *len)
{
	struct smp_cmd_result res;
	uint8_t buf[300];
	char w[256];
	int rc = 0;

	if (cli_cmd(c, &smpg_fs_stat, buf,
	            smpg_enc_fs_stat(buf, sizeof(buf), remote), 0, &res) == -1)
		return -1;
	if (res.status == SMP_CMD_OK &&
	    smpg_dec_fs_stat(&res.tree, len, w, sizeof(w)) == 0)
		rc = 1;
	smp_tree_free(&res.tree);
	return rc;
}

/* The largest data chunk an upload packet at off can carry. */
static size_t
upload_chunk(struct smp_cli *c, const char *remote, uint64_t total)
{
	struct smp_params p = {c->buf_size, c->buf_count};
	size_t lim, over;

	lim = smp_pkt_limit(c->have_params, &p, c->link.kind == WORKER_SERIAL,
	                    c->link.mtu);
	over = SMP_HDR_SIZE + smpg_fs_upload_overhead(remote, total, total);
	if (smpg_fs_upload_overhead(remote, 0, total) + SMP_HDR_SIZE > over)
		over = SMP_HDR_SIZE + smpg_fs_upload_overhead(remote, 0, total);
	if (lim <= over + MIN_CHUNK)
		return MIN_CHUNK;
	return lim - over > MAX_CHUNK ? MAX_CHUNK : lim - over;
}

struct xfer_stats {
	uint64_t total, start, moved;
	uint64_t t0;
	const char *verified;
};

static void
xfer_json(const struct xfer_stats *x, const char *moved_key)
{
	struct json_object *o = json_object_new_object();
	uint64_t el = now_ms() - x->t0;

	json_object_object_add(o, "bytes", json_object_new_int64(x->total));
	json_object_object_add(o, moved_key, json_object_new_int64(x->moved));
	json_object_object_add(o, "resumed_from",
	                       json_object_new_int64(x->start));
	json_object_object_add(o, "elapsed_ms", json_object_new_int64(el));
	json_object_object_add(
	    o, "bytes_per_s",
	    json_object_new_int64(el ? (int64_t)(x->moved * 1000 / el) : 0));
	json_object_object_add(o, "verified",
	                       x->verified ? json_object_new_string(x->verified)
	                                   : NULL);
	cli_print_json(o);
}

static void
xfer_line(const char *verb, const char *from, const char *to,
          const struct xfer_stats *x)
{
	uint64_t el = now_ms() - x->t0;

	printf("%s %s to %s: %" PRIu64 " bytes in %.2f s (%.1f KiB/s)", verb,
	       from, to, x->total, (double)el / 1000.0,
	       el ? (double)x->moved * 1000.0 / (double)el / 1024.0 : 0.0);
	if (x->start > 0)
		printf(", resumed at %" PRIu64, x->start);
	printf(", %s\n", x->verified
	                     ? "verified with the board's SHA-256"
	                     : "not verified (the board has no fs hash)");
}

/* Where an upload can start: after a prefix the board already has. */
static int
upload_start_at(struct smp_cli *c, int fd, const char *remote, uint64_t size,
                uint64_t *start)
{
	uint8_t mine[32], theirs[32];
	uint64_t len;
	char why[1024];
	int rc;

	*start = 0;
	if (c->no_resume || (rc = remote_len(c, remote, &len)) <= 0 ||
	    len == 0 || len > size)
		return 0;
	if ((rc = board_sha256(c, remote, len, theirs, why, sizeof(why))) == -1)
		return cli_fail(c, SMP_EX_FAIL, "fs upload: %s", why);
	if (rc == 0) {
		cli_note(c,
		         "%s has %" PRIu64 " bytes on the board, but the "
		         "board cannot hash them (no fs hash): starting over",
		         remote, len);
		return 0;
	}
	if (sha256_prefix(fd, len, mine) == -1)
		return cli_fail(c, SMP_EX_FAIL,
		                "fs upload: cannot read the "
		                "local file");
	if (memcmp(mine, theirs, 32) == 0) {
		*start = len;
		if (len < size)
			cli_note(c, "resuming at %" PRIu64 " of %" PRIu64, len,
			         size);
	}
	return 0;
}

/* One chunk at *off; 0 sent (and *off moved), 1 retry, or an exit code. */
static int
upload_one(struct smp_cli *c, int fd, const char *remote, uint64_t size,
           uint64_t *off, size_t *chunk, bool *restarted)
{
	struct smp_cmd_result res;
	uint8_t data[MAX_CHUNK], pkt[MAX_CHUNK + 512];
	const struct smp_node *l;
	size_t n = *chunk;
	uint64_t next;
	char why[1024];
	ssize_t len;

	if (n > size - *off)
		n = (size_t)(size - *off);
	if (pread(fd, data, n, (off_t)*off) != (ssize_t)n)
		return cli_fail(c, SMP_EX_FAIL,
		                "fs upload: cannot read the "
		                "local file");
	len = smpg_enc_fs_upload(pkt, sizeof(pkt), remote, *off, data, n, size);
	if (cli_cmd(c, &smpg_fs_upload, pkt, len, 0, &res) == -1)
		return SMP_EX_FAIL;
	if (res.status == SMP_CMD_OK) {
		if (smpg_dec_fs_upload(&res.tree, &next, why, sizeof(why)) ==
		        -1 ||
		    next > size || next < *off) {
			smp_tree_free(&res.tree);
			return cli_fail(c, SMP_EX_FAIL,
			                "fs upload: the board answered offset "
			                "%" PRIu64 " for %zu bytes at %" PRIu64,
			                next, n, *off);
		}
		*off = next;
		smp_tree_free(&res.tree);
		return 0;
	}
	/* A packet too large for the board: smaller ones. */
	if (res.status == SMP_CMD_BAD_REQUEST &&
	    strstr(res.error, "does not fit") != NULL && *chunk > MIN_CHUNK) {
		*chunk /= 2;
		return 1;
	}
	/* The board has another length: our last answer was lost (it has
	 * what we sent), or it lost the transfer (start over, once). */
	l = smp_tree_get(&res.tree, smp_tree_root(&res.tree), "len");
	if (res.status == SMP_CMD_BOARD_ERROR && l != NULL &&
	    l->type == SMP_V_UINT) {
		if (l->u == *off + n && l->u <= size)
			*off = l->u;
		else if (!*restarted) {
			*restarted = true;
			cli_note(c,
			         "the board lost the transfer at %" PRIu64
			         "; starting over",
			         l->u);
			*off = 0;
		} else {
			smp_tree_free(&res.tree);
			return cli_fail(
			    c, SMP_EX_FAIL,
			    "fs upload: the board's file is %" PRIu64
			    " bytes where %" PRIu64 " were sent",
			    l->u, *off);
		}
		smp_tree_free(&res.tree);
		return 1;
	}
	if (res.status == SMP_CMD_LINK_DOWN || res.status == SMP_CMD_TIMEOUT) {
		smp_tree_free(&res.tree);
		return 2;
	}
	cli_explain(c, "fs upload", &smpg_fs_upload, &res, why, sizeof(why));
	smp_tree_free(&res.tree);
	return cli_fail(c, SMP_EX_FAIL, "%s", why);
}

int
smp_run_fs_upload(struct smp_cli *c, int argc, char **argv)
{
	const char *local = argv[0], *remote = argv[1];
	struct xfer_stats x = {0};
	uint8_t mine[32], theirs[32];
	bool restarted = false;
	unsigned int tries = 0;
	uint64_t off, moved_ms;
	struct stat st;
	size_t chunk;
	char why[1024];
	int fd, rc;

	(void)argc;
	if (strlen(remote) > 255 || remote[0] == '\0')
		return cli_fail(c, SMP_EX_USAGE,
		                "fs upload: REMOTE must be 1 to 255 bytes");
	if ((fd = open(local, O_RDONLY | O_CLOEXEC)) == -1 ||
	    fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		rc =
		    cli_fail(c, SMP_EX_FAIL, "%s: %s", local,
		             fd == -1 ? strerror(errno) : "not a regular file");
		if (fd != -1)
			close(fd);
		return rc;
	}
	x.total = (uint64_t)st.st_size;
	x.t0 = now_ms();
	if ((rc = cli_start(c)) != 0 ||
	    (rc = upload_start_at(c, fd, remote, x.total, &x.start)) != 0)
		goto out;
	off = x.start;
	chunk = upload_chunk(c, remote, x.total);
	cli_bar_start(c, x.total, off);
	moved_ms = now_ms();
	/* An empty file, or one not there yet: the first packet makes it. */
	while (off < x.total ||
	       (off == 0 && x.start == 0 && tries == 0 && x.total == 0)) {
		uint64_t before = off;

		if (c->interrupted) {
			rc = cli_fail(c, SMP_EX_FAIL,
			              "fs upload: interrupted at %" PRIu64
			              " (run it again to resume)",
			              off);
			goto out;
		}
		rc = upload_one(c, fd, remote, x.total, &off, &chunk,
		                &restarted);
		if (rc != 0 && rc != 1 && rc != 2)
			goto out;
		if (off > before)
			moved_ms = now_ms();
		if (rc == 2 && (++tries > MAX_RETRIES ||
		                now_ms() - moved_ms > (uint64_t)c->stall_ms)) {
			rc = cli_fail(
			    c, SMP_EX_FAIL,
			    "fs upload: the board stopped answering at "
			    "%" PRIu64 "; %s",
			    off, cli_link_hint(c));
			goto out;
		}
		if (rc == 0)
			tries = 0;
		cli_bar(c, off, 0, false);
		if (x.total == 0)
			break;
	}
	cli_bar(c, off, 0, true);
	cli_bar_end(c);
	x.moved = x.total - x.start;
	rc = board_sha256(c, remote, x.total, theirs, why, sizeof(why));
	if (rc == -1 && x.total > 0) {
		rc = cli_fail(c, SMP_EX_FAIL, "fs upload: %s", why);
		goto out;
	}
	if (rc == 1) {
		if (sha256_prefix(fd, x.total, mine) == -1 ||
		    memcmp(mine, theirs, 32) != 0) {
			rc = cli_fail(
			    c, SMP_EX_FAIL,
			    "fs upload: %s on the board does not match "
			    "%s (SHA-256)",
			    remote, local);
			goto out;
		}
		x.verified = "sha256";
	}
	rc = 0;
	if (c->json)
		xfer_json(&x, "bytes_sent");
	else
		xfer_line("uploaded", local, remote, &x);
out:
	close(fd);
	return rc;
}

/* One download request; 0 with the chunk in res (free its tree). */
static int
download_one(struct smp_cli *c, const char *remote, uint64_t off,
             struct smp_cmd_result *res, struct smpg_fs_chunk *ch)
{
	uint8_t buf[300];
	char why[1024];

	if (cli_cmd(c, &smpg_fs_download, buf,
	            smpg_enc_fs_download(buf, sizeof(buf), remote, off), 0,
	            res) == -1)
		return SMP_EX_FAIL;
	if (res->status == SMP_CMD_LINK_DOWN || res->status == SMP_CMD_TIMEOUT)
		return 2;
	if (res->status != SMP_CMD_OK) {
		cli_explain(c, "fs download", &smpg_fs_download, res, why,
		            sizeof(why));
		smp_tree_free(&res->tree);
		return cli_fail(c, SMP_EX_FAIL, "%s", why);
	}
	if (smpg_dec_fs_download(&res->tree, ch, why, sizeof(why)) == -1 ||
	    ch->off != off) {
		smp_tree_free(&res->tree);
		return cli_fail(c, SMP_EX_FAIL,
		                "fs download: unexpected reply for offset "
		                "%" PRIu64 ": %s",
		                off, ch->off != off ? "another offset" : why);
	}
	return 0;
}

/* The first chunk, and where to go on from: after a matching .part. */
static int
download_begin(struct smp_cli *c, int fd, const char *remote,
               struct xfer_stats *x)
{
	struct smp_cmd_result res;
	struct smpg_fs_chunk ch;
	struct stat st;
	uint8_t *head;
	unsigned int tries = 0;
	int rc;

	while ((rc = download_one(c, remote, 0, &res, &ch)) == 2)
		if (++tries > MAX_RETRIES)
			return cli_fail(
			    c, SMP_EX_FAIL,
			    "fs download: the board does not answer; %s",
			    cli_link_hint(c));
	if (rc != 0)
		return rc;
	if (!ch.has_total || ch.len > ch.total) {
		smp_tree_free(&res.tree);
		return cli_fail(c, SMP_EX_FAIL,
		                "fs download: the board did not say the file's "
		                "length");
	}
	x->total = ch.total;
	head = ch.len > 0 ? xmalloc(ch.len) : NULL;
	if (!c->no_resume && fstat(fd, &st) == 0 &&
	    (uint64_t)st.st_size >= ch.len &&
	    (uint64_t)st.st_size <= x->total && st.st_size > 0 &&
	    pread(fd, head, ch.len, 0) == (ssize_t)ch.len &&
	    memcmp(head, ch.data, ch.len) == 0)
		x->start = (uint64_t)st.st_size;
	free(head);
	if (x->start == 0 &&
	    (ftruncate(fd, 0) == -1 ||
	     pwrite(fd, ch.data, ch.len, 0) != (ssize_t)ch.len)) {
		smp_tree_free(&res.tree);
		return cli_fail(c, SMP_EX_FAIL, "fs download: cannot write: %s",
		                strerror(errno));
	}
	if (x->start > 0 && x->start < x->total)
		cli_note(c, "resuming at %" PRIu64 " of %" PRIu64, x->start,
		         x->total);
	if (x->start == 0)
		x->moved = ch.len;
	smp_tree_free(&res.tree);
	return 0;
}

int
smp_run_fs_download(struct smp_cli *c, int argc, char **argv)
{
	const char *remote = argv[0], *local = argv[1];
	struct xfer_stats x = {0};
	struct smp_cmd_result res;
	struct smpg_fs_chunk ch;
	uint8_t mine[32], theirs[32];
	unsigned int tries = 0;
	char part[4096], why[1024];
	uint64_t off;
	int fd, rc;

	(void)argc;
	if (strlen(remote) > 255 || remote[0] == '\0')
		return cli_fail(c, SMP_EX_USAGE,
		                "fs download: REMOTE must be 1 to 255 bytes");
	if ((size_t)snprintf(part, sizeof(part), "%s.part", local) >=
	    sizeof(part))
		return cli_fail(c, SMP_EX_USAGE, "fs download: LOCAL too long");
	if ((fd = open(part, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) == -1)
		return cli_fail(c, SMP_EX_FAIL, "%s: %s", part,
		                strerror(errno));
	x.t0 = now_ms();
	if ((rc = cli_start(c)) != 0 ||
	    (rc = download_begin(c, fd, remote, &x)) != 0)
		goto out;
	off = x.start > 0 ? x.start : x.moved;
	cli_bar_start(c, x.total, x.start);
	while (off < x.total) {
		if (c->interrupted) {
			rc = cli_fail(c, SMP_EX_FAIL,
			              "fs download: interrupted at %" PRIu64
			              " (run it again to resume)",
			              off);
			goto out;
		}
		rc = download_one(c, remote, off, &res, &ch);
		if (rc == 2 && ++tries <= MAX_RETRIES)
			continue;
		if (rc != 0) {
			if (rc == 2)
				rc = cli_fail(c, SMP_EX_FAIL,
				              "fs download: the board stopped "
				              "answering at %" PRIu64 "; %s",
				              off, cli_link_hint(c));
			goto out;
		}
		tries = 0;
		if (ch.len == 0 || ch.len > x.total - off) {
			smp_tree_free(&res.tree);
			rc = cli_fail(c, SMP_EX_FAIL,
			              "fs download: %s changed on the board "
			              "(%zu bytes at %" PRIu64 " of %" PRIu64
			              ")",
			              remote, ch.len, off, x.total);
			goto out;
		}
		if (pwrite(fd, ch.data, ch.len, (off_t)off) !=
		    (ssize_t)ch.len) {
			smp_tree_free(&res.tree);
			rc = cli_fail(c, SMP_EX_FAIL, "%s: %s", part,
			              strerror(errno));
			goto out;
		}
		off += ch.len;
		x.moved += ch.len;
		smp_tree_free(&res.tree);
		cli_bar(c, off, 0, false);
	}
	cli_bar(c, off, 0, true);
	cli_bar_end(c);
	if (ftruncate(fd, (off_t)x.total) == -1 || fsync(fd) == -1) {
		rc = cli_fail(c, SMP_EX_FAIL, "%s: %s", part, strerror(errno));
		goto out;
	}
	rc = x.total > 0
	         ? board_sha256(c, remote, x.total, theirs, why, sizeof(why))
	         : 0;
	if (rc == -1) {
		rc = cli_fail(c, SMP_EX_FAIL, "fs download: %s", why);
		goto out;
	}
	if (rc == 1) {
		if (sha256_prefix(fd, x.total, mine) == -1 ||
		    memcmp(mine, theirs, 32) != 0) {
			/* Nothing half-right is kept. */
			unlink(part);
			rc =
			    cli_fail(c, SMP_EX_FAIL,
			             "fs download: what arrived does not match "
			             "%s on the board (SHA-256); nothing kept",
			             remote);
			goto out;
		}
		x.verified = "sha256";
	}
	if (rename(part, local) == -1) {
		rc = cli_fail(c, SMP_EX_FAIL, "%s: %s", local, strerror(errno));
		goto out;
	}
	rc = 0;
	if (c->json)
		xfer_json(&x, "bytes_received");
	else
		xfer_line("downloaded", remote, local, &x);
out:
	close(fd);
	return rc;
}

int
smp_run_fs_stat(struct smp_cli *c, int argc, char **argv)
{
	struct smp_tree t;
	uint8_t buf[300];
	uint64_t len;
	char why[256];
	int rc;

	(void)argc;
	if ((rc = cli_start(c)) != 0 ||
	    (rc = cli_cmd_ok(c, &smpg_fs_stat, buf,
	                     smpg_enc_fs_stat(buf, sizeof(buf), argv[0]),
	                     &t)) != 0)
		return rc;
	if (c->json)
		cli_print_tree(&t);
	else if (smpg_dec_fs_stat(&t, &len, why, sizeof(why)) == -1)
		rc = cli_fail(c, SMP_EX_FAIL, "fs stat: unexpected reply: %s",
		              why);
	else
		printf("%s: %" PRIu64 " bytes\n", argv[0], len);
	smp_tree_free(&t);
	return rc;
}

int
smp_run_fs_hash(struct smp_cli *c, int argc, char **argv)
{
	struct smpg_fs_hash h;
	struct smp_tree t;
	uint8_t buf[300];
	char why[256], hex[2 * 64 + 1];
	int rc;

	(void)argc;
	if (c->hash_type != NULL && strlen(c->hash_type) > 8)
		return cli_fail(c, SMP_EX_USAGE,
		                "fs hash: --type \"%s\": expected sha256 or "
		                "crc32",
		                c->hash_type);
	if ((rc = cli_start(c)) != 0 ||
	    (rc = cli_cmd_ok(c, &smpg_fs_hash, buf,
	                     smpg_enc_fs_hash(buf, sizeof(buf), argv[0],
	                                      c->hash_type, 0, 0),
	                     &t)) != 0)
		return rc;
	if (c->json)
		cli_print_tree(&t);
	else if (smpg_dec_fs_hash(&t, &h, why, sizeof(why)) == -1 ||
	         h.nbytes > 64)
		rc = cli_fail(c, SMP_EX_FAIL, "fs hash: unexpected reply: %s",
		              why);
	else if (h.is_bytes) {
		hex_encode(h.bytes, h.nbytes, hex);
		printf("%s %s  %s\n", h.type, hex, argv[0]);
	} else
		printf("%s 0x%08" PRIx64 "  %s\n", h.type, h.number, argv[0]);
	smp_tree_free(&t);
	return rc;
}
