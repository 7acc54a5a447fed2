/*
 * File downloads of the management channel: fs_file_probe answers a file's
 * size, fs_file_download reads the file from the board part by part (SMP
 * fs reads, queued behind the board's other operations) and PUTs each part
 * to the upload URL the server gave, returning the ETags.  The path is
 * checked on the probe and again on the download; the URLs must be exactly
 * as many as the parts, http(s), and on the server's host or a configured
 * one; redirects are not followed.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "log.h"
#include "mgmt_int.h"
#include "rdfm.h"
#include "xmalloc.h"

#define ETAG_MAX 1024
#define STALL_S  60

struct mgmt_fsx {
	struct mgmt_dev *dev;
	bool download;
	char id[MGMT_ID_MAX + 1];
	unsigned board;
	char *path;
	uint64_t size, part_size, off;
	size_t nparts, part;
	char **urls, **etags;
	uint8_t *buf;
	size_t buflen, bufwant;
	struct job *job;
	struct curlev_xfer x;
	struct curl_slist *hdrs;
	size_t sent;
	char etag[ETAG_MAX];
	int64_t started;
};

static void read_next(struct mgmt_fsx *);

static void
fsx_free(struct mgmt_fsx *f)
{
	size_t i;

	if (f->dev->fs == f)
		f->dev->fs = NULL;
	job_cancel(f->job);
	if (f->x.easy != NULL) {
		curlev_remove(f->dev->m->cv, &f->x);
		curl_easy_cleanup(f->x.easy);
	}
	curl_slist_free_all(f->hdrs);
	for (i = 0; i < f->nparts; i++) {
		if (f->urls != NULL)
			free(f->urls[i]);
		if (f->etags != NULL)
			free(f->etags[i]);
	}
	free(f->urls);
	free(f->etags);
	free(f->buf);
	free(f->path);
	free(f);
}

static void
reply_fail(struct mgmt_dev *dev, bool download, const char *id)
{
	if (download)
		dev_send(dev, mgmt_enc_download_reply(id, 1, NULL, 0));
	else
		dev_send(dev, mgmt_enc_probe_reply(id, 1, 0));
}

static void
fsx_fail(struct mgmt_fsx *f, const char *why)
{
	log_info("File transfer failed", "device=%s path=%s error=%s",
	         log_q(f->dev->name), log_q(f->path), log_q(why));
	if (f->download)
		mgmt_log(f->dev, "file", "%s: not sent: %s", f->path, why);
	reply_fail(f->dev, f->download, f->id);
	fsx_free(f);
}

void
fs_abort(struct mgmt_dev *dev, bool reply, const char *why)
{
	struct mgmt_fsx *f = dev->fs;

	if (f == NULL)
		return;
	if (reply)
		fsx_fail(f, why);
	else {
		log_info("File transfer ended", "device=%s path=%s why=%s",
		         log_q(dev->name), log_q(f->path), log_q(why));
		fsx_free(f);
	}
}

/*
 * The board and path a request names, checked by the rules: a valid path,
 * under one of the board's file_paths.  -1 after logging why.
 */
static int
check_file(struct mgmt_dev *dev, const char *file, const char **path)
{
	char why[160];
	int b;

	if ((b = dev_board_for_path(dev, file, path)) < 0) {
		ONCE(dev, ONCE_FS_MEMBER,
		     "management channel: a file request names no member of "
		     "this group (expected member:/path); refused",
		     "device=%s file=%s", log_q(dev->name), log_q(file));
		return -1;
	}
	if (dev->boards[b].npaths == 0) {
		ONCE(dev, ONCE_FS_OFF,
		     "management channel: a file request for a board without "
		     "file_paths; refused",
		     "device=%s board=%s", log_q(dev->name),
		     log_q(dev->boards[b].name));
		return -1;
	}
	if (!mgmt_path_valid(*path, why, sizeof(why))) {
		ONCE(dev, ONCE_FS_BADPATH,
		     "management channel: a file request with a bad path; "
		     "refused",
		     "device=%s file=%s error=%s", log_q(dev->name),
		     log_q(file), log_q(why));
		return -1;
	}
	if (!mgmt_path_allowed(*path, dev->boards[b].paths,
	                       dev->boards[b].npaths)) {
		ONCE(dev, ONCE_FS_PATH,
		     "management channel: a file request outside file_paths; "
		     "refused",
		     "device=%s file=%s", log_q(dev->name), log_q(file));
		return -1;
	}
	if (dev->boards[b].no_fs) {
		log_debug("File request for a board without the fs group",
		          "device=%s", log_q(dev->name));
		return -1;
	}
	return b;
}

static struct mgmt_fsx *
fsx_new(struct mgmt_dev *dev, const struct mgmt_msg *m, bool download)
{
	struct mgmt_fsx *f;
	const char *path;
	int b;

	if (dev->fs != NULL) {
		ONCE(dev, ONCE_FS_BUSY,
		     "management channel: a file request while another runs; "
		     "refused",
		     "device=%s", log_q(dev->name));
		reply_fail(dev, download, m->id);
		return NULL;
	}
	if ((b = check_file(dev, m->file, &path)) < 0) {
		reply_fail(dev, download, m->id);
		return NULL;
	}
	if (dev_busy(dev)) {
		log_info("File request refused: busy: update in progress",
		         "device=%s", log_q(dev->name));
		reply_fail(dev, download, m->id);
		return NULL;
	}
	f = xcalloc(1, sizeof(*f));
	f->dev = dev;
	f->download = download;
	f->board = (unsigned)b;
	snprintf(f->id, sizeof(f->id), "%s", m->id);
	f->path = xstrdup(path);
	f->started = mgmt_now_ms();
	dev->fs = f;
	return f;
}

static void
submit(struct mgmt_fsx *f, enum mgmt_op op, uint64_t offset, size_t max_len,
       void (*done)(struct job *, const struct mgmt_result *))
{
	struct job *j = job_new(f->dev, f->board, op);

	j->path_own = xstrdup(f->path);
	j->op.path = j->path_own;
	j->op.offset = offset;
	j->op.max_len = max_len;
	j->done = done;
	j->owner = f;
	f->job = j;
	job_submit(j);
}

static const char *
status_text(const struct mgmt_result *res, char *buf, size_t cap)
{
	switch (res->status) {
	case MGMT_NOT_FOUND:
		return "no such file on the board";
	case MGMT_UNSUPPORTED:
		return "the board has no SMP file system group";
	case MGMT_BUSY:
		return "busy: update in progress";
	default:
		snprintf(
		    buf, cap, "%.*s",
		    (int)(res->data != NULL && res->len < 150 ? res->len : 0),
		    res->data != NULL ? (const char *)res->data : "");
		return buf[0] != '\0' ? buf : "the board could not answer";
	}
}

/*
 * The worker's answer to the transfer's job: false (the transfer failed
 * and was ended) unless the board did it.
 */
static bool
fsx_job_done(struct mgmt_fsx *f, const struct mgmt_result *res)
{
	char buf[160];

	f->job = NULL;
	if (res->status != MGMT_DONE) {
		fsx_fail(f, status_text(res, buf, sizeof(buf)));
		return false;
	}
	return true;
}

/* Probe. */

static void
probe_done(struct job *j, const struct mgmt_result *res)
{
	struct mgmt_fsx *f = j->owner;

	if (f == NULL || !fsx_job_done(f, res))
		return;
	if (res->size > (uint64_t)f->dev->file_max) {
		ONCE(f->dev, ONCE_FS_SIZE,
		     "management channel: a file larger than file_max_bytes; "
		     "refused",
		     "device=%s path=%s size=%llu limit=%lld",
		     log_q(f->dev->name), log_q(f->path),
		     (unsigned long long)res->size,
		     (long long)f->dev->file_max);
		fsx_fail(f, "larger than file_max_bytes");
		return;
	}
	dev_send(f->dev, mgmt_enc_probe_reply(f->id, 0, res->size));
	fsx_free(f);
}

void
fs_probe(struct mgmt_dev *dev, const struct mgmt_msg *m)
{
	struct mgmt_fsx *f;

	if ((f = fsx_new(dev, m, false)) != NULL)
		submit(f, MGMT_OP_FS_STAT, 0, 0, probe_done);
}

/* Download. */

static size_t
put_read(char *buf, size_t size, size_t nmemb, void *arg)
{
	struct mgmt_fsx *f = arg;
	size_t n = size * nmemb;

	if (n > f->buflen - f->sent)
		n = f->buflen - f->sent;
	memcpy(buf, f->buf + f->sent, n);
	f->sent += n;
	return n;
}

static size_t
put_header(char *line, size_t size, size_t nmemb, void *arg)
{
	struct mgmt_fsx *f = arg;
	size_t n = size * nmemb, s, e;

	if (n >= 5 && strncmp(line, "HTTP/", 5) == 0)
		f->etag[0] = '\0'; /* a new response (after 100 Continue) */
	else if (n > 5 && strncasecmp(line, "ETag:", 5) == 0) {
		for (s = 5; s < n && (line[s] == ' ' || line[s] == '\t'); s++)
			;
		for (e = n; e > s && isspace((unsigned char)line[e - 1]); e--)
			;
		/* Kept exactly as received (quotes included). */
		if (e - s < sizeof(f->etag) &&
		    mgmt_printable(line + s, e - s)) {
			memcpy(f->etag, line + s, e - s);
			f->etag[e - s] = '\0';
		}
	}
	return n;
}

static void
put_done(struct curlev_xfer *x, CURLcode rc)
{
	struct mgmt_fsx *f =
	    (struct mgmt_fsx *)((char *)x - offsetof(struct mgmt_fsx, x));
	long code = 0;
	char why[200];

	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(x->easy);
	x->easy = NULL;
	if (rc != CURLE_OK || code < 200 || code > 299 || f->etag[0] == '\0') {
		if (rc != CURLE_OK)
			snprintf(why, sizeof(why), "upload of part %zu: %s",
			         f->part, curl_easy_strerror(rc));
		else if (code < 200 || code > 299)
			snprintf(why, sizeof(why),
			         "upload of part %zu: HTTP %ld", f->part, code);
		else
			snprintf(why, sizeof(why),
			         "upload of part %zu: no ETag in the answer",
			         f->part);
		ONCE(f->dev, ONCE_FS_UPLOAD,
		     "management channel: a file part "
		     "upload failed",
		     "device=%s error=%s", log_q(f->dev->name), log_q(why));
		fsx_fail(f, why);
		return;
	}
	f->etags[f->part] = xstrdup(f->etag);
	f->part++;
	f->buflen = 0;
	if (f->part < f->nparts) {
		read_next(f);
		return;
	}
	log_info("File sent", "device=%s path=%s size=%llu parts=%zu ms=%lld",
	         log_q(f->dev->name), log_q(f->path),
	         (unsigned long long)f->size, f->nparts,
	         (long long)(mgmt_now_ms() - f->started));
	mgmt_log(f->dev, "file", "%s: sent, %llu bytes", f->path,
	         (unsigned long long)f->size);
	dev_send(f->dev,
	         mgmt_enc_download_reply(f->id, 0, f->etags, f->nparts));
	fsx_free(f);
}

static void
put_part(struct mgmt_fsx *f)
{
	CURL *e;

	if ((e = curl_easy_init()) == NULL)
		fatalx("cannot create a curl handle", NULL);
	rdfm_curl_setup(e, f->dev->m->ca_file);
	curl_easy_setopt(e, CURLOPT_URL, f->urls[f->part]);
	/* libcurl also writes file://; the URL rule said http(s), and no
	 * redirect may lead elsewhere. */
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)f->buflen);
	curl_easy_setopt(e, CURLOPT_READFUNCTION, put_read);
	curl_easy_setopt(e, CURLOPT_READDATA, f);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, put_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, f);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, (long)STALL_S);
	if (f->hdrs == NULL)
		f->hdrs = curl_slist_append(NULL, "Expect:");
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, f->hdrs);
	f->sent = 0;
	f->etag[0] = '\0';
	f->x.easy = e;
	f->x.keep = false;
	f->x.done = put_done;
	curlev_add(f->dev->m->cv, &f->x);
}

static void
read_done(struct job *j, const struct mgmt_result *res)
{
	struct mgmt_fsx *f = j->owner;
	size_t n;

	if (f == NULL || !fsx_job_done(f, res))
		return;
	if (res->len == 0 || res->data == NULL) {
		fsx_fail(f, "the file ended before its size");
		return;
	}
	n = res->len;
	if (n > f->bufwant - f->buflen)
		n = f->bufwant - f->buflen; /* it grew: send what was probed */
	memcpy(f->buf + f->buflen, res->data, n);
	f->buflen += n;
	f->off += n;
	read_next(f);
}

static void
read_next(struct mgmt_fsx *f)
{
	uint64_t start = (uint64_t)f->part * f->part_size;

	f->bufwant = (size_t)(f->size - start < f->part_size ? f->size - start
	                                                     : f->part_size);
	if (f->buflen == f->bufwant) {
		put_part(f);
		return;
	}
	submit(f, MGMT_OP_FS_READ, f->off, f->bufwant - f->buflen, read_done);
}

static void
stat_done(struct job *j, const struct mgmt_result *res)
{
	struct mgmt_fsx *f = j->owner;
	char buf[160];
	uint64_t need;

	if (f == NULL || !fsx_job_done(f, res))
		return;
	if (res->size == 0) {
		fsx_fail(f, "the file is empty");
		return;
	}
	if (res->size > (uint64_t)f->dev->file_max) {
		ONCE(f->dev, ONCE_FS_SIZE,
		     "management channel: a file larger than file_max_bytes; "
		     "refused",
		     "device=%s path=%s size=%llu limit=%lld",
		     log_q(f->dev->name), log_q(f->path),
		     (unsigned long long)res->size,
		     (long long)f->dev->file_max);
		fsx_fail(f, "larger than file_max_bytes");
		return;
	}
	need = mgmt_parts_needed(res->size, f->part_size);
	if (need != f->nparts) {
		snprintf(buf, sizeof(buf),
		         "%zu upload URLs for %llu parts of %llu bytes",
		         f->nparts, (unsigned long long)need,
		         (unsigned long long)f->part_size);
		ONCE(f->dev, ONCE_FS_URLS,
		     "management channel: the upload URLs do not fit the file; "
		     "refused",
		     "device=%s error=%s", log_q(f->dev->name), log_q(buf));
		fsx_fail(f, buf);
		return;
	}
	f->size = res->size;
	f->etags = xcalloc(f->nparts + 1, sizeof(*f->etags));
	f->buf =
	    xmalloc((size_t)(f->size < f->part_size ? f->size : f->part_size));
	read_next(f);
}

void
fs_download(struct mgmt_dev *dev, const struct mgmt_msg *m)
{
	struct mgmt *mg = dev->m;
	struct mgmt_fsx *f;
	char why[200];
	size_t i;

	for (i = 0; i < m->nurls; i++)
		if (!mgmt_upload_url_ok(m->urls[i], mg->server_host,
		                        mg->upload_hosts, mg->nupload_hosts,
		                        why, sizeof(why))) {
			ONCE(dev, ONCE_FS_URLS,
			     "management channel: an upload URL we may not "
			     "use; refused",
			     "device=%s url=%zu error=%s", log_q(dev->name), i,
			     log_q(why));
			reply_fail(dev, true, m->id);
			return;
		}
	if (m->nurls == 0) {
		ONCE(dev, ONCE_FS_URLS,
		     "management channel: a download without upload URLs; "
		     "refused",
		     "device=%s", log_q(dev->name));
		reply_fail(dev, true, m->id);
		return;
	}
	if ((f = fsx_new(dev, m, true)) == NULL)
		return;
	f->part_size = m->part_size;
	f->nparts = m->nurls;
	f->urls = xcalloc(m->nurls + 1, sizeof(*f->urls));
	for (i = 0; i < m->nurls; i++)
		f->urls[i] = xstrdup(m->urls[i]);
	/* The size again: the file may have changed since the probe. */
	submit(f, MGMT_OP_FS_STAT, 0, 0, stat_done);
}
