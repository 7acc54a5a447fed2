/*
 * Journal files: one JSON document per device or group under
 * state_dir/journal/, replaced atomically so a crash leaves either the old
 * or the new record, never a torn one.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "journal.h"
#include "log.h"
#include "util.h"
#include "xmalloc.h"

#define JOURNAL_FORMAT   1
#define JOURNAL_FILE_MAX (256 * 1024)

/*
 * The directory is opened for each operation rather than held: no
 * descriptor stays open while nothing is written, and a directory that
 * was removed or replaced under a running daemon is made again.
 */
static char *journal_dir;

static const char *phase_names[JP__COUNT] = {
    [JP_IDLE] = "idle",
    [JP_UPLOADING] = "uploading",
    [JP_PENDING] = "pending",
    [JP_RESETTING] = "resetting",
    [JP_CONFIRMING] = "confirming",
    [JP_COMMITTED] = "committed",
    [JP_ROLLING_BACK] = "rolling_back",
    [JP_DONE] = "done",
};

const char *
journal_phase_name(enum journal_phase p)
{
	if ((unsigned int)p >= JP__COUNT)
		return "?";
	return phase_names[p];
}

int
journal_phase_parse(const char *s, enum journal_phase *p)
{
	int i;

	for (i = 0; i < JP__COUNT; i++) {
		if (strcmp(s, phase_names[i]) == 0) {
			*p = (enum journal_phase)i;
			return 0;
		}
	}
	return -1;
}

/* The directory, made again when it went away; -1 with err. */
static int
dir_open(char *err, size_t errcap)
{
	int fd;

	if (journal_dir == NULL) {
		snprintf(err, errcap, "journal is not open");
		return -1;
	}
	fd = open(journal_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1 && errno == ENOENT && mkdir(journal_dir, 0700) == 0)
		fd = open(journal_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1)
		snprintf(err, errcap, "cannot open %s: %s", journal_dir,
		         strerror(errno));
	return fd;
}

int
journal_open(const char *state_dir, char *err, size_t errcap)
{
	int fd;

	journal_close();
	if (mkdir(state_dir, 0700) == -1 && errno != EEXIST) {
		snprintf(err, errcap, "cannot create state directory %s: %s",
		         state_dir, strerror(errno));
		return -1;
	}
	xasprintf(&journal_dir, "%s/journal", state_dir);
	if (mkdir(journal_dir, 0700) == -1 && errno != EEXIST) {
		snprintf(err, errcap, "cannot create %s: %s", journal_dir,
		         strerror(errno));
		journal_close();
		return -1;
	}
	if ((fd = dir_open(err, errcap)) == -1) {
		journal_close();
		return -1;
	}
	close(fd);
	return 0;
}

void
journal_close(void)
{
	free(journal_dir);
	journal_dir = NULL;
}

/*
 * File name for kind/id: ids are free text (MAC addresses, names), so
 * they are escaped (name_escape); the result is injective.
 */
static char *
entry_name(const char *kind, const char *id)
{
	char *prefix, *name;

	xasprintf(&prefix, "%s-", kind);
	name = name_escape(prefix, id, ".json");
	free(prefix);
	return name;
}

static int
hex_to_hash(const char *s, uint8_t *h)
{
	int i;

	if (strlen(s) != 2 * JOURNAL_HASH_LEN)
		return -1;
	for (i = 0; i < JOURNAL_HASH_LEN; i++) {
		unsigned int v;

		if (sscanf(s + 2 * i, "%2x", &v) != 1 ||
		    strchr("0123456789abcdefABCDEF", s[2 * i]) == NULL ||
		    strchr("0123456789abcdefABCDEF", s[2 * i + 1]) == NULL)
			return -1;
		h[i] = (uint8_t)v;
	}
	return 0;
}

static json_object *
entry_to_json(const char *kind, const char *id, const struct journal_entry *e)
{
	json_object *o = json_object_new_object(), *ms, *m;
	char hex[2 * JOURNAL_HASH_LEN + 1];
	size_t i;

	json_object_object_add(o, "format",
	                       json_object_new_int(JOURNAL_FORMAT));
	json_object_object_add(o, "kind", json_object_new_string(kind));
	json_object_object_add(o, "id", json_object_new_string(id));
	json_object_object_add(
	    o, "phase", json_object_new_string(journal_phase_name(e->phase)));
	json_object_object_add(o, "artifact_sha256",
	                       json_object_new_string(e->artifact_sha256));
	json_object_object_add(o, "target_version",
	                       json_object_new_string(e->target_version));
	json_object_object_add(o, "attempt",
	                       json_object_new_int64((int64_t)e->attempt));
	ms = json_object_new_array();
	for (i = 0; i < e->nmembers; i++) {
		const struct journal_member *jm = &e->members[i];

		m = json_object_new_object();
		json_object_object_add(m, "name",
		                       json_object_new_string(jm->name));
		json_object_object_add(
		    m, "phase",
		    json_object_new_string(journal_phase_name(jm->phase)));
		if (jm->has_old_hash) {
			hex_encode(jm->old_hash, JOURNAL_HASH_LEN, hex);
			json_object_object_add(m, "old_hash",
			                       json_object_new_string(hex));
		}
		if (jm->has_new_hash) {
			hex_encode(jm->new_hash, JOURNAL_HASH_LEN, hex);
			json_object_object_add(m, "new_hash",
			                       json_object_new_string(hex));
		}
		json_object_array_add(ms, m);
	}
	json_object_object_add(o, "members", ms);
	return o;
}

int
journal_write(const char *kind, const char *id, const struct journal_entry *e,
              char *err, size_t errcap)
{
	char *name, *tmp;
	const char *text;
	json_object *o;
	size_t len, off = 0;
	int fd, dirfd, ret = -1;

	if (e->nmembers > JOURNAL_MAX_MEMBERS) {
		snprintf(err, errcap, "journal entry has too many members");
		return -1;
	}
	if ((dirfd = dir_open(err, errcap)) == -1)
		return -1;
	name = entry_name(kind, id);
	xasprintf(&tmp, ".%s.tmp", name);
	o = entry_to_json(kind, id, e);
	text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	len = strlen(text);

	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd == -1) {
		snprintf(err, errcap, "cannot create %s/%s: %s", journal_dir,
		         tmp, strerror(errno));
		goto out;
	}
	while (off < len) {
		ssize_t n = write(fd, text + off, len - off);

		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, errcap, "cannot write %s/%s: %s",
			         journal_dir, tmp, strerror(errno));
			close(fd);
			unlinkat(dirfd, tmp, 0);
			goto out;
		}
		off += (size_t)n;
	}
	if (fsync(fd) == -1 || close(fd) == -1) {
		snprintf(err, errcap, "cannot sync %s/%s: %s", journal_dir, tmp,
		         strerror(errno));
		unlinkat(dirfd, tmp, 0);
		goto out;
	}
	if (renameat(dirfd, tmp, dirfd, name) == -1) {
		snprintf(err, errcap, "cannot rename %s/%s: %s", journal_dir,
		         tmp, strerror(errno));
		unlinkat(dirfd, tmp, 0);
		goto out;
	}
	if (fsync(dirfd) == -1) {
		snprintf(err, errcap, "cannot sync %s: %s", journal_dir,
		         strerror(errno));
		goto out;
	}
	ret = 0;
out:
	close(dirfd);
	json_object_put(o);
	free(tmp);
	free(name);
	return ret;
}

/* Copy a string member of o into buf; missing is an error when required. */
static int
get_str(json_object *o, const char *key, char *buf, size_t cap, bool required)
{
	json_object *v;
	const char *s;

	if (!json_object_object_get_ex(o, key, &v)) {
		if (required)
			return -1;
		buf[0] = '\0';
		return 0;
	}
	if (!json_object_is_type(v, json_type_string))
		return -1;
	s = json_object_get_string(v);
	if (strlen(s) >= cap)
		return -1;
	strcpy(buf, s);
	return 0;
}

static int
parse_entry(json_object *o, const char *kind, const char *id,
            struct journal_entry *e, char *why, size_t whycap)
{
	json_object *v, *ms;
	char buf[128];
	size_t i, n;

	memset(e, 0, sizeof(*e));
	if (!json_object_is_type(o, json_type_object)) {
		snprintf(why, whycap, "not a JSON object");
		return -1;
	}
	if (!json_object_object_get_ex(o, "format", &v) ||
	    !json_object_is_type(v, json_type_int) ||
	    json_object_get_int(v) != JOURNAL_FORMAT) {
		snprintf(why, whycap, "missing or unsupported format");
		return -1;
	}
	if (get_str(o, "kind", buf, sizeof(buf), true) == -1 ||
	    strcmp(buf, kind) != 0) {
		snprintf(why, whycap, "kind is not %s", kind);
		return -1;
	}
	if (!json_object_object_get_ex(o, "id", &v) ||
	    !json_object_is_type(v, json_type_string) ||
	    strcmp(json_object_get_string(v), id) != 0) {
		snprintf(why, whycap, "id does not match");
		return -1;
	}
	if (get_str(o, "phase", buf, sizeof(buf), true) == -1 ||
	    journal_phase_parse(buf, &e->phase) == -1) {
		snprintf(why, whycap, "bad phase");
		return -1;
	}
	if (get_str(o, "artifact_sha256", e->artifact_sha256,
	            sizeof(e->artifact_sha256), false) == -1 ||
	    get_str(o, "target_version", e->target_version,
	            sizeof(e->target_version), false) == -1) {
		snprintf(why, whycap, "bad artifact_sha256 or target_version");
		return -1;
	}
	if (json_object_object_get_ex(o, "attempt", &v)) {
		int64_t a;

		if (!json_object_is_type(v, json_type_int) ||
		    (a = json_object_get_int64(v)) < 0 || a > 1000000) {
			snprintf(why, whycap, "bad attempt");
			return -1;
		}
		e->attempt = (unsigned int)a;
	}
	if (!json_object_object_get_ex(o, "members", &ms) ||
	    !json_object_is_type(ms, json_type_array) ||
	    (n = json_object_array_length(ms)) > JOURNAL_MAX_MEMBERS) {
		snprintf(why, whycap, "bad members");
		return -1;
	}
	e->nmembers = n;
	for (i = 0; i < n; i++) {
		json_object *m = json_object_array_get_idx(ms, i);
		struct journal_member *jm = &e->members[i];

		if (!json_object_is_type(m, json_type_object) ||
		    get_str(m, "name", jm->name, sizeof(jm->name), true) ==
		        -1 ||
		    get_str(m, "phase", buf, sizeof(buf), true) == -1 ||
		    journal_phase_parse(buf, &jm->phase) == -1) {
			snprintf(why, whycap, "bad member %zu", i);
			return -1;
		}
		if (get_str(m, "old_hash", buf, sizeof(buf), false) == -1 ||
		    (buf[0] != '\0' && hex_to_hash(buf, jm->old_hash) == -1)) {
			snprintf(why, whycap, "bad old_hash of member %zu", i);
			return -1;
		}
		jm->has_old_hash = buf[0] != '\0';
		if (get_str(m, "new_hash", buf, sizeof(buf), false) == -1 ||
		    (buf[0] != '\0' && hex_to_hash(buf, jm->new_hash) == -1)) {
			snprintf(why, whycap, "bad new_hash of member %zu", i);
			return -1;
		}
		jm->has_new_hash = buf[0] != '\0';
	}
	return 0;
}

int
journal_read(const char *kind, const char *id, struct journal_entry *e,
             char *err, size_t errcap)
{
	char *name, *text = NULL, why[128];
	json_tokener *tok = NULL;
	json_object *o = NULL;
	struct stat st;
	ssize_t n;
	size_t off = 0;
	int fd, dirfd, ret = -1;

	if ((dirfd = dir_open(err, errcap)) == -1)
		return -1;
	name = entry_name(kind, id);
	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	close(dirfd);
	if (fd == -1) {
		if (errno == ENOENT)
			ret = 1;
		else
			snprintf(err, errcap, "cannot open %s/%s: %s",
			         journal_dir, name, strerror(errno));
		free(name);
		return ret;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_size > JOURNAL_FILE_MAX) {
		snprintf(err, errcap,
		         "journal %s/%s is not a regular file "
		         "of sane size",
		         journal_dir, name);
		goto out;
	}
	text = xmalloc((size_t)st.st_size + 1);
	while (off < (size_t)st.st_size) {
		n = read(fd, text + off, (size_t)st.st_size - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	text[off] = '\0';
	tok = json_tokener_new();
	o = json_tokener_parse_ex(tok, text, (int)off);
	if (o == NULL || json_tokener_get_error(tok) != json_tokener_success ||
	    tok->char_offset != (int)off) {
		snprintf(err, errcap,
		         "journal %s/%s is corrupt: not valid "
		         "JSON",
		         journal_dir, name);
		goto out;
	}
	if (parse_entry(o, kind, id, e, why, sizeof(why)) == -1) {
		snprintf(err, errcap, "journal %s/%s is corrupt: %s",
		         journal_dir, name, why);
		goto out;
	}
	ret = 0;
out:
	if (o != NULL)
		json_object_put(o);
	if (tok != NULL)
		json_tokener_free(tok);
	free(text);
	close(fd);
	free(name);
	return ret;
}

int
journal_remove(const char *kind, const char *id, char *err, size_t errcap)
{
	char *name;
	int dirfd, ret = 0;

	if ((dirfd = dir_open(err, errcap)) == -1)
		return -1;
	name = entry_name(kind, id);
	if (unlinkat(dirfd, name, 0) == -1 && errno != ENOENT) {
		snprintf(err, errcap, "cannot remove %s/%s: %s", journal_dir,
		         name, strerror(errno));
		ret = -1;
	} else if (fsync(dirfd) == -1) {
		snprintf(err, errcap, "cannot sync %s: %s", journal_dir,
		         strerror(errno));
		ret = -1;
	}
	close(dirfd);
	free(name);
	return ret;
}

void
journal_crashpoint(const char *point)
{
	const char *at = getenv("RDFM_CRASH_AT");

	if (at == NULL || strcmp(at, point) != 0)
		return;
	log_warnx("crash injection", "point=%s", point);
	kill(getpid(), SIGKILL);
	_exit(137); /* not reached */
}
