/*
 * The download spool: one file per artifact sha256 in state_dir/spool/,
 * "<sha>.part" while it streams in (hashed as it goes), "<sha>" once the hash
 * matched.  Entries are reference counted and share one file between boards.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "log.h"
#include "spool.h"
#include "xmalloc.h"

struct spool_entry {
	struct spool *sp;
	struct spool_entry *next;
	char sha[65];
	char *path;     /* dir/<sha> */
	char *partpath; /* dir/<sha>.part */
	int refs;
	bool ready;     /* path exists and its hash matched */
	bool unchecked; /* path found on disk at open, not yet re-hashed */
	uint64_t disk;  /* bytes on disk (partial or complete) */
	uint64_t
	    charged; /* bytes counted against the cap: max(disk, reserved) */
	int fd;      /* partial file open for writing, or -1 */
	EVP_MD_CTX *md;
	void *fetch;
};

struct spool {
	char *dir;
	uint64_t max;
	uint64_t usage;
	struct spool_entry *entries;
};

#define ERR(...) snprintf(err, errcap, __VA_ARGS__)

static bool
valid_sha(const char *s)
{
	size_t i;

	for (i = 0; i < 64; i++)
		if (!isxdigit((unsigned char)s[i]))
			return false;
	return s[64] == '\0';
}

static struct spool_entry *
entry_new(struct spool *sp, const char *sha)
{
	struct spool_entry *e;
	size_t i;

	e = xcalloc(1, sizeof(*e));
	e->sp = sp;
	for (i = 0; i < 64; i++)
		e->sha[i] = (char)tolower((unsigned char)sha[i]);
	xasprintf(&e->path, "%s/%s", sp->dir, e->sha);
	xasprintf(&e->partpath, "%s/%s.part", sp->dir, e->sha);
	e->fd = -1;
	e->next = sp->entries;
	sp->entries = e;
	return e;
}

static void
entry_free(struct spool_entry *e)
{
	struct spool_entry **pp;

	for (pp = &e->sp->entries; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == e) {
			*pp = e->next;
			break;
		}
	}
	if (e->fd != -1)
		close(e->fd);
	EVP_MD_CTX_free(e->md);
	free(e->path);
	free(e->partpath);
	free(e);
}

static struct spool_entry *
entry_find(struct spool *sp, const char *sha)
{
	struct spool_entry *e;

	for (e = sp->entries; e != NULL; e = e->next)
		if (strcasecmp(e->sha, sha) == 0)
			return e;
	return NULL;
}

/* Forgets an entry's files and gives its bytes back to the cap. */
static void
entry_remove_files(struct spool_entry *e)
{
	if (e->fd != -1) {
		close(e->fd);
		e->fd = -1;
	}
	if (unlink(e->path) == -1 && errno != ENOENT)
		log_warn("cannot remove spool file", "path=%s", log_q(e->path));
	if (unlink(e->partpath) == -1 && errno != ENOENT)
		log_warn("cannot remove spool file", "path=%s",
		         log_q(e->partpath));
	e->sp->usage -= e->charged;
	e->charged = 0;
	e->disk = 0;
	e->ready = false;
	e->unchecked = false;
}

/* Hashes len bytes of fd from its current position into md. */
static int
hash_fd(int fd, EVP_MD_CTX *md, uint64_t *len)
{
	unsigned char buf[65536];
	ssize_t n;

	*len = 0;
	for (;;) {
		n = read(fd, buf, sizeof(buf));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		if (n == 0)
			return 0;
		if (EVP_DigestUpdate(md, buf, (size_t)n) != 1)
			return -1;
		*len += (uint64_t)n;
	}
}

static void
md_hex(EVP_MD_CTX *md, char hex[65])
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int dl = 0, i;

	EVP_DigestFinal_ex(md, d, &dl);
	for (i = 0; i < dl && i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", d[i]);
	hex[64] = '\0';
}

/* Re-hashes a complete file found on disk; removes it when it is wrong. */
static int
entry_verify_disk(struct spool_entry *e, char *err, size_t errcap)
{
	EVP_MD_CTX *md;
	char hex[65];
	uint64_t len;
	int fd, rc;

	e->unchecked = false;
	if ((fd = open(e->path, O_RDONLY | O_CLOEXEC)) == -1) {
		ERR("cannot open spool file %s: %s", e->path, strerror(errno));
		entry_remove_files(e);
		return -1;
	}
	md = EVP_MD_CTX_new();
	if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		fatalx("out of memory", NULL);
	rc = hash_fd(fd, md, &len);
	close(fd);
	if (rc == -1) {
		ERR("cannot read spool file %s: %s", e->path, strerror(errno));
		EVP_MD_CTX_free(md);
		entry_remove_files(e);
		return -1;
	}
	md_hex(md, hex);
	EVP_MD_CTX_free(md);
	if (strcmp(hex, e->sha) != 0) {
		log_warnx("spool file does not match its name, removed",
		          "path=%s sha256=%s", log_q(e->path), hex);
		entry_remove_files(e);
		return 0;
	}
	e->ready = true;
	return 0;
}

static void
scan_dir(struct spool *sp)
{
	struct dirent *de;
	struct stat st;
	struct spool_entry *e;
	char sha[65];
	DIR *d;
	size_t nl;
	bool part;

	if ((d = opendir(sp->dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		nl = strlen(de->d_name);
		if (nl != 64 &&
		    !(nl == 69 && strcmp(de->d_name + 64, ".part") == 0))
			continue;
		part = nl == 69;
		memcpy(sha, de->d_name, 64);
		sha[64] = '\0';
		if (!valid_sha(sha))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) ==
		        -1 ||
		    !S_ISREG(st.st_mode))
			continue;
		if ((e = entry_find(sp, sha)) == NULL)
			e = entry_new(sp, sha);
		if (part && e->unchecked) {
			/* A complete file wins over a stale partial. */
			unlinkat(dirfd(d), de->d_name, 0);
			continue;
		}
		if (!part && e->disk > 0) {
			unlink(e->partpath);
			sp->usage -= e->charged;
			e->charged = e->disk = 0;
		}
		e->unchecked = !part;
		e->disk = e->charged = (uint64_t)st.st_size;
		sp->usage += e->charged;
	}
	closedir(d);
}

struct spool *
spool_open(const char *state_dir, uint64_t max_bytes, char *err, size_t errcap)
{
	struct spool *sp;
	struct stat st;
	char *dir;

	if (mkdir(state_dir, 0700) == -1 && errno != EEXIST) {
		ERR("cannot create state directory %s: %s", state_dir,
		    strerror(errno));
		return NULL;
	}
	xasprintf(&dir, "%s/spool", state_dir);
	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		ERR("cannot create spool directory %s: %s", dir,
		    strerror(errno));
		free(dir);
		return NULL;
	}
	if (lstat(dir, &st) == -1 || !S_ISDIR(st.st_mode)) {
		ERR("spool %s is not a directory", dir);
		free(dir);
		return NULL;
	}
	if ((st.st_mode & 077) != 0) {
		log_warnx("spool directory was open to others, now 0700",
		          "path=%s", log_q(dir));
		if (chmod(dir, 0700) == -1) {
			ERR("cannot chmod spool directory %s: %s", dir,
			    strerror(errno));
			free(dir);
			return NULL;
		}
	}
	sp = xcalloc(1, sizeof(*sp));
	sp->dir = dir;
	sp->max = max_bytes;
	scan_dir(sp);
	return sp;
}

void
spool_close(struct spool *sp)
{
	if (sp == NULL)
		return;
	while (sp->entries != NULL)
		entry_free(sp->entries);
	free(sp->dir);
	free(sp);
}

uint64_t
spool_usage(const struct spool *sp)
{
	return sp->usage;
}

struct spool_entry *
spool_ref(struct spool *sp, const char *sha256hex, char *err, size_t errcap)
{
	struct spool_entry *e;

	if (sha256hex == NULL || strlen(sha256hex) != 64 ||
	    !valid_sha(sha256hex)) {
		ERR("sha256 must be 64 hex digits");
		return NULL;
	}
	if ((e = entry_find(sp, sha256hex)) == NULL)
		e = entry_new(sp, sha256hex);
	e->refs++;
	if (e->unchecked && entry_verify_disk(e, err, errcap) == -1) {
		spool_unref(e);
		return NULL;
	}
	return e;
}

void
spool_entry_hold(struct spool_entry *e)
{
	e->refs++;
}

void
spool_unref(struct spool_entry *e)
{
	if (e == NULL)
		return;
	if (--e->refs > 0)
		return;
	entry_remove_files(e);
	entry_free(e);
}

bool
spool_ready(const struct spool_entry *e)
{
	return e->ready;
}

const char *
spool_path(const struct spool_entry *e)
{
	return e->path;
}

const char *
spool_sha256(const struct spool_entry *e)
{
	return e->sha;
}

uint64_t
spool_size(const struct spool_entry *e)
{
	return e->disk;
}

void
spool_set_fetch(struct spool_entry *e, void *fetch)
{
	e->fetch = fetch;
}

void *
spool_fetch(const struct spool_entry *e)
{
	return e->fetch;
}

/*
 * Files an earlier run left that no offer has claimed since (no reference)
 * go, one by one, until more bytes fit under the cap: a download cut by a
 * crash is resumable only while it is not in the way of one that is wanted.
 */
static void
make_room(struct spool *sp, const struct spool_entry *keep, uint64_t more)
{
	struct spool_entry *e, *next;

	for (e = sp->entries; e != NULL && sp->usage + more > sp->max;
	     e = next) {
		next = e->next;
		if (e == keep || e->refs > 0)
			continue;
		log_info("spool file nobody wants removed for room",
		         "sha256=%s bytes=%llu", e->sha,
		         (unsigned long long)e->charged);
		entry_remove_files(e);
		entry_free(e);
	}
}

/* Charges the entry up to want bytes against the cap. */
static int
charge(struct spool_entry *e, uint64_t want, char *err, size_t errcap)
{
	struct spool *sp = e->sp;
	uint64_t more;

	if (want <= e->charged)
		return 0;
	more = want - e->charged;
	if (sp->max != 0 && sp->usage + more > sp->max)
		make_room(sp, e, more);
	if (sp->max != 0 && sp->usage + more > sp->max) {
		ERR("spool full: artifact %.12s needs %llu more bytes, %llu of "
		    "%llu in use",
		    e->sha, (unsigned long long)more,
		    (unsigned long long)sp->usage, (unsigned long long)sp->max);
		return -1;
	}
	sp->usage += more;
	e->charged = want;
	return 0;
}

int
spool_begin(struct spool_entry *e, uint64_t *offset, char *err, size_t errcap)
{
	uint64_t len;

	if (e->ready) {
		ERR("artifact %.12s is already complete", e->sha);
		return -1;
	}
	if (e->fd != -1) {
		ERR("artifact %.12s is already being written", e->sha);
		return -1;
	}
	e->fd =
	    open(e->partpath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (e->fd == -1) {
		ERR("cannot open %s: %s", e->partpath, strerror(errno));
		return -1;
	}
	if (e->md == NULL && (e->md = EVP_MD_CTX_new()) == NULL)
		fatalx("out of memory", NULL);
	if (EVP_DigestInit_ex(e->md, EVP_sha256(), NULL) != 1)
		fatalx("cannot initialise SHA-256", NULL);
	/* The prefix an interrupted transfer left must be in the hash too. */
	if (hash_fd(e->fd, e->md, &len) == -1) {
		ERR("cannot read %s: %s", e->partpath, strerror(errno));
		spool_abort(e, false);
		return -1;
	}
	if (len > e->charged) {
		e->sp->usage += len - e->charged;
		e->charged = len;
	}
	e->disk = len;
	*offset = len;
	return 0;
}

int
spool_restart(struct spool_entry *e, char *err, size_t errcap)
{
	if (e->fd == -1) {
		ERR("artifact %.12s is not being written", e->sha);
		return -1;
	}
	if (ftruncate(e->fd, 0) == -1 || lseek(e->fd, 0, SEEK_SET) == -1) {
		ERR("cannot truncate %s: %s", e->partpath, strerror(errno));
		return -1;
	}
	e->disk = 0;
	if (EVP_DigestInit_ex(e->md, EVP_sha256(), NULL) != 1)
		fatalx("cannot initialise SHA-256", NULL);
	return 0;
}

int
spool_reserve(struct spool_entry *e, uint64_t total, char *err, size_t errcap)
{
	return charge(e, total, err, errcap);
}

int
spool_write(struct spool_entry *e, const void *buf, size_t len, char *err,
            size_t errcap)
{
	const unsigned char *p = buf;
	ssize_t n;

	if (e->fd == -1) {
		ERR("artifact %.12s is not being written", e->sha);
		return -1;
	}
	if (charge(e, e->disk + len, err, errcap) == -1)
		return -1;
	if (EVP_DigestUpdate(e->md, buf, len) != 1)
		fatalx("SHA-256 update failed", NULL);
	while (len > 0) {
		n = write(e->fd, p, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			ERR("cannot write %s: %s", e->partpath,
			    strerror(errno));
			return -1;
		}
		p += n;
		len -= (size_t)n;
		e->disk += (uint64_t)n;
	}
	return 0;
}

int
spool_finish(struct spool_entry *e, char *err, size_t errcap)
{
	char hex[65];

	if (e->fd == -1) {
		ERR("artifact %.12s is not being written", e->sha);
		return -1;
	}
	md_hex(e->md, hex);
	if (strcmp(hex, e->sha) != 0) {
		ERR("downloaded file has sha256 %s, the server said %s", hex,
		    e->sha);
		entry_remove_files(e);
		return -2;
	}
	if (fsync(e->fd) == -1) {
		ERR("cannot sync %s: %s", e->partpath, strerror(errno));
		spool_abort(e, true);
		return -1;
	}
	close(e->fd);
	e->fd = -1;
	if (rename(e->partpath, e->path) == -1) {
		ERR("cannot rename %s: %s", e->partpath, strerror(errno));
		entry_remove_files(e);
		return -1;
	}
	/* Give back what was reserved beyond the real size. */
	e->sp->usage -= e->charged - e->disk;
	e->charged = e->disk;
	e->ready = true;
	return 0;
}

void
spool_abort(struct spool_entry *e, bool keep)
{
	/* An empty partial file is not worth keeping. */
	if (!keep || e->disk == 0) {
		entry_remove_files(e);
		return;
	}
	if (e->fd != -1) {
		close(e->fd);
		e->fd = -1;
	}
	e->sp->usage -= e->charged - e->disk;
	e->charged = e->disk;
}
