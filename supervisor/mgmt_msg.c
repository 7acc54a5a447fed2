/*
 * The management channel's pure parts: message parsing and writing with
 * json-c, base64 with OpenSSL, URL parsing with libcurl's URL API, the path
 * and URL rules of item 8, the shell line editor and the backoff.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <json-c/json.h>
#include <openssl/evp.h>

#include "mgmt_msg.h"
#include "xmalloc.h"

#define WHY(...) snprintf(why, whycap, __VA_ARGS__)

bool
mgmt_printable(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return false;
	return true;
}

/* Parsing. */

static const char *
field_str(struct json_object *o, const char *key, size_t max, bool printable,
          char *why, size_t whycap)
{
	struct json_object *v;
	const char *s;
	size_t n;

	if (!json_object_object_get_ex(o, key, &v)) {
		WHY("no \"%s\"", key);
		return NULL;
	}
	if (!json_object_is_type(v, json_type_string)) {
		WHY("\"%s\" is not a string", key);
		return NULL;
	}
	s = json_object_get_string(v);
	n = (size_t)json_object_get_string_len(v);
	if ((n == 0 && strcmp(key, "file") != 0) || n > max) {
		/* An empty file is refused by the path rule, with a reply. */
		WHY("\"%s\" is empty or longer than %zu characters", key, max);
		return NULL;
	}
	if (strlen(s) != n || (printable && !mgmt_printable(s, n))) {
		WHY("\"%s\" has characters that are not allowed", key);
		return NULL;
	}
	return s;
}

static int
parse_download(struct mgmt_msg *m, char *why, size_t whycap)
{
	struct json_object *v;
	size_t i, n;
	int64_t ps;

	if ((m->id = field_str(m->root, "id", MGMT_ID_MAX, true, why,
	                       whycap)) == NULL ||
	    (m->file = field_str(m->root, "file", MGMT_FILE_MAX, false, why,
	                         whycap)) == NULL)
		return -1;
	if (!json_object_object_get_ex(m->root, "part_size", &v) ||
	    !json_object_is_type(v, json_type_int) ||
	    (ps = json_object_get_int64(v)) <= 0) {
		WHY("\"part_size\" is not a positive integer");
		return -1;
	}
	m->part_size = (uint64_t)ps;
	if (!json_object_object_get_ex(m->root, "upload_urls", &v) ||
	    !json_object_is_type(v, json_type_array)) {
		WHY("\"upload_urls\" is not an array");
		return -1;
	}
	n = json_object_array_length(v);
	if (n > MGMT_URLS_MAX) {
		WHY("\"upload_urls\" has %zu entries (at most %d)", n,
		    MGMT_URLS_MAX);
		return -1;
	}
	m->urls = xcalloc(n + 1, sizeof(*m->urls));
	m->nurls = n;
	for (i = 0; i < n; i++) {
		struct json_object *u = json_object_array_get_idx(v, i);
		const char *s;
		size_t l;

		if (!json_object_is_type(u, json_type_string)) {
			WHY("\"upload_urls\"[%zu] is not a string", i);
			return -1;
		}
		s = json_object_get_string(u);
		l = (size_t)json_object_get_string_len(u);
		if (l == 0 || l > MGMT_URL_MAX || strlen(s) != l ||
		    !mgmt_printable(s, l)) {
			WHY("\"upload_urls\"[%zu] is empty, too long or has "
			    "characters that are not allowed",
			    i);
			return -1;
		}
		m->urls[i] = s;
	}
	return 0;
}

static int
parse_fields(struct mgmt_msg *m, char *why, size_t whycap)
{
	struct json_object *v, *t;

	switch (m->method) {
	case MGMT_M_ALERT:
		/* {"alert": {"message"|"error": text}}; only logged. */
		m->alert = "";
		if (!json_object_object_get_ex(m->root, "alert", &v) ||
		    !json_object_is_type(v, json_type_object))
			return 0;
		if (json_object_object_get_ex(v, "error", &t) &&
		    json_object_is_type(t, json_type_string)) {
			m->alert = json_object_get_string(t);
			m->alert_error = true;
		} else if (json_object_object_get_ex(v, "message", &t) &&
		           json_object_is_type(t, json_type_string))
			m->alert = json_object_get_string(t);
		return 0;
	case MGMT_M_ACTION_LIST_QUERY:
	case MGMT_M_UNKNOWN:
		return 0;
	case MGMT_M_ACTION_EXEC:
		if ((m->execution_id =
		         field_str(m->root, "execution_id", MGMT_ID_MAX, true,
		                   why, whycap)) == NULL ||
		    (m->action_id = field_str(m->root, "action_id", MGMT_ID_MAX,
		                              true, why, whycap)) == NULL)
			return -1;
		return 0;
	case MGMT_M_SHELL_ATTACH:
		if ((m->mac = field_str(m->root, "mac_addr", MGMT_ID_MAX, true,
		                        why, whycap)) == NULL ||
		    (m->uuid = field_str(m->root, "uuid", MGMT_ID_MAX, true,
		                         why, whycap)) == NULL)
			return -1;
		return 0;
	case MGMT_M_FS_PROBE:
		if ((m->id = field_str(m->root, "id", MGMT_ID_MAX, true, why,
		                       whycap)) == NULL ||
		    (m->file = field_str(m->root, "file", MGMT_FILE_MAX, false,
		                         why, whycap)) == NULL)
			return -1;
		return 0;
	case MGMT_M_FS_DOWNLOAD:
		return parse_download(m, why, whycap);
	}
	return -1;
}

int
mgmt_msg_parse(const char *buf, size_t len, struct mgmt_msg *m, char *why,
               size_t whycap)
{
	static const struct {
		const char *name;
		enum mgmt_method method;
	} methods[] = {
	    {"alert", MGMT_M_ALERT},
	    {"action_list_query", MGMT_M_ACTION_LIST_QUERY},
	    {"action_exec", MGMT_M_ACTION_EXEC},
	    {"shell_attach", MGMT_M_SHELL_ATTACH},
	    {"fs_file_probe", MGMT_M_FS_PROBE},
	    {"fs_file_download", MGMT_M_FS_DOWNLOAD},
	};
	struct json_tokener *tok;
	struct json_object *v;
	const char *name;
	bool flushed = false;
	size_t i, n;

	memset(m, 0, sizeof(*m));
	if (len > INT32_MAX) {
		WHY("message too large");
		return -1;
	}
	if ((tok = json_tokener_new()) == NULL)
		return -1;
	json_tokener_set_flags(tok, JSON_TOKENER_VALIDATE_UTF8);
	m->root = json_tokener_parse_ex(tok, buf, (int)len);
	/* A bare number is whole only once something follows it. */
	if (m->root == NULL &&
	    json_tokener_get_error(tok) == json_tokener_continue) {
		m->root = json_tokener_parse_ex(tok, " ", 1);
		flushed = true;
	}
	if (m->root == NULL ||
	    json_tokener_get_error(tok) != json_tokener_success) {
		WHY("not JSON");
		json_tokener_free(tok);
		json_object_put(m->root);
		m->root = NULL;
		return -1;
	}
	for (i = json_tokener_get_parse_end(tok); !flushed && i < len; i++)
		if (!isspace((unsigned char)buf[i])) {
			WHY("data after the JSON value");
			json_tokener_free(tok);
			mgmt_msg_free(m);
			return -1;
		}
	json_tokener_free(tok);
	if (!json_object_is_type(m->root, json_type_object)) {
		WHY("not a JSON object");
		mgmt_msg_free(m);
		return -1;
	}
	if (!json_object_object_get_ex(m->root, "method", &v) ||
	    !json_object_is_type(v, json_type_string)) {
		WHY("no \"method\" string");
		mgmt_msg_free(m);
		return -1;
	}
	name = json_object_get_string(v);
	n = strlen(name);
	if (n >= sizeof(m->name))
		n = sizeof(m->name) - 1;
	for (i = 0; i < n; i++)
		m->name[i] = name[i] >= 0x20 && name[i] < 0x7f ? name[i] : '?';
	m->name[n] = '\0';
	m->method = MGMT_M_UNKNOWN;
	for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (strcmp(name, methods[i].name) == 0)
			m->method = methods[i].method;
	if (parse_fields(m, why, whycap) == -1) {
		char inner[160];

		snprintf(inner, sizeof(inner), "%s", why);
		WHY("%s: %s", m->name, inner);
		mgmt_msg_free(m);
		return -1;
	}
	return 0;
}

void
mgmt_msg_free(struct mgmt_msg *m)
{
	free(m->urls);
	json_object_put(m->root);
	memset(m, 0, sizeof(*m));
}

/* Writing. */

static char *
finish(struct json_object *o)
{
	char *s = xstrdup(json_object_to_json_string_ext(
	    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));

	json_object_put(o);
	return s;
}

static struct json_object *
start(const char *method)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "method", json_object_new_string(method));
	return o;
}

char *
mgmt_enc_capabilities(bool action, bool shell, bool filesystem)
{
	struct json_object *o = start("capability_report"),
	                   *c = json_object_new_object();

	json_object_object_add(c, "action", json_object_new_boolean(action));
	json_object_object_add(c, "shell", json_object_new_boolean(shell));
	json_object_object_add(c, "filesystem",
	                       json_object_new_boolean(filesystem));
	json_object_object_add(c, "update_progress",
	                       json_object_new_boolean(true));
	json_object_object_add(o, "capabilities", c);
	return finish(o);
}

char *
mgmt_enc_action_list(const struct mgmt_action_desc *a, size_t n)
{
	struct json_object *o = start("action_list_update"),
	                   *arr = json_object_new_array(), *e, *cmd;
	size_t i, j;

	for (i = 0; i < n; i++) {
		e = json_object_new_object();
		cmd = json_object_new_array();
		for (j = 0; j < a[i].argc; j++)
			json_object_array_add(
			    cmd, json_object_new_string(a[i].argv[j]));
		json_object_object_add(e, "action_id",
		                       json_object_new_string(a[i].id));
		json_object_object_add(e, "action_name",
		                       json_object_new_string(a[i].name));
		json_object_object_add(
		    e, "description", json_object_new_string(a[i].description));
		json_object_object_add(e, "command", cmd);
		json_object_object_add(e, "timeout",
		                       json_object_new_double(a[i].timeout_s));
		json_object_array_add(arr, e);
	}
	json_object_object_add(o, "actions", arr);
	return finish(o);
}

char *
mgmt_enc_exec_control(const char *execution_id, bool accepted)
{
	struct json_object *o = start("action_exec_control");

	json_object_object_add(o, "execution_id",
	                       json_object_new_string(execution_id));
	json_object_object_add(
	    o, "status", json_object_new_string(accepted ? "ok" : "full"));
	return finish(o);
}

char *
mgmt_enc_exec_result(const char *execution_id, int status, const void *output,
                     size_t len)
{
	struct json_object *o = start("action_exec_result");
	char *b64;

	b64 = xmalloc(4 * ((len + 2) / 3) + 1);
	EVP_EncodeBlock((unsigned char *)b64, output, (int)len);
	b64[4 * ((len + 2) / 3)] = '\0';
	json_object_object_add(o, "execution_id",
	                       json_object_new_string(execution_id));
	json_object_object_add(o, "status_code", json_object_new_int(status));
	json_object_object_add(o, "output", json_object_new_string(b64));
	free(b64);
	return finish(o);
}

char *
mgmt_enc_progress(int percent)
{
	struct json_object *o = start("update_progress");

	json_object_object_add(o, "progress", json_object_new_int(percent));
	return finish(o);
}

char *
mgmt_enc_version(const char *version)
{
	struct json_object *o = start("update_version");

	json_object_object_add(o, "version", json_object_new_string(version));
	return finish(o);
}

char *
mgmt_enc_probe_reply(const char *id, int status, uint64_t size)
{
	struct json_object *o = start("fs_file_probe_reply");

	json_object_object_add(o, "id", json_object_new_string(id));
	json_object_object_add(o, "status", json_object_new_int(status));
	json_object_object_add(o, "size", json_object_new_int64((int64_t)size));
	return finish(o);
}

char *
mgmt_enc_download_reply(const char *id, int status, char *const *etags,
                        size_t n)
{
	struct json_object *o = start("fs_file_download_reply"),
	                   *arr = json_object_new_array();
	size_t i;

	for (i = 0; i < n; i++)
		json_object_array_add(arr, json_object_new_string(etags[i]));
	json_object_object_add(o, "id", json_object_new_string(id));
	json_object_object_add(o, "status", json_object_new_int(status));
	json_object_object_add(o, "etags", arr);
	return finish(o);
}

void
mgmt_rfc822(time_t t, char out[40])
{
	static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed",
	                                "Thu", "Fri", "Sat"};
	static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr",
	                                   "May", "Jun", "Jul", "Aug",
	                                   "Sep", "Oct", "Nov", "Dec"};
	struct tm tm;

	/* Names spelled here: strftime would follow the locale. */
	gmtime_r(&t, &tm);
	snprintf(out, 40, "%s, %02d %s %04d %02d:%02d:%02d -0000",
	         days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
	         tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

char *
mgmt_enc_logs(const struct mgmt_log_entry *e, size_t n)
{
	struct json_object *o = json_object_new_object(),
	                   *arr = json_object_new_array(), *x;
	char ts[40];
	size_t i;

	for (i = 0; i < n; i++) {
		mgmt_rfc822(e[i].when, ts);
		x = json_object_new_object();
		json_object_object_add(x, "device_timestamp",
		                       json_object_new_string(ts));
		json_object_object_add(x, "name",
		                       json_object_new_string(e[i].name));
		json_object_object_add(x, "entry",
		                       json_object_new_string(e[i].entry));
		json_object_array_add(arr, x);
	}
	json_object_object_add(o, "batch", arr);
	return finish(o);
}

/* The rules. */

bool
mgmt_is_uuid(const char *s)
{
	size_t i;

	for (i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
		} else if (!isxdigit((unsigned char)s[i]))
			return false;
	}
	return s[36] == '\0';
}

bool
mgmt_path_valid(const char *path, char *why, size_t whycap)
{
	size_t n = strlen(path), i, s;

	if (n == 0) {
		WHY("the path is empty");
		return false;
	}
	if (n > MGMT_PATH_MAX) {
		WHY("the path is longer than %d characters", MGMT_PATH_MAX);
		return false;
	}
	if (!mgmt_printable(path, n)) {
		WHY("the path has characters that are not printable ASCII");
		return false;
	}
	if (path[0] != '/') {
		WHY("the path is not absolute");
		return false;
	}
	if (n == 1)
		return true;
	for (i = 1; i <= n; i = s + 1) {
		s = i;
		while (s < n && path[s] != '/')
			s++;
		if (s == i) {
			WHY("the path has an empty component");
			return false;
		}
		if ((s - i == 1 && path[i] == '.') ||
		    (s - i == 2 && path[i] == '.' && path[i + 1] == '.')) {
			WHY("the path has a \".\" or \"..\" component");
			return false;
		}
	}
	return true;
}

bool
mgmt_path_allowed(const char *path, char *const *prefixes, size_t n)
{
	size_t i, l;

	for (i = 0; i < n; i++) {
		l = strlen(prefixes[i]);
		if (strcmp(prefixes[i], "/") == 0)
			return true;
		if (strncmp(path, prefixes[i], l) == 0 &&
		    (path[l] == '\0' || path[l] == '/'))
			return true;
	}
	return false;
}

int
mgmt_url_host(const char *url, char *host, size_t cap)
{
	CURLU *u;
	char *scheme = NULL, *h = NULL, *user = NULL, *pw = NULL;
	size_t n, i;
	int rc = -1;

	if ((u = curl_url()) == NULL)
		return -1;
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK ||
	    (strcasecmp(scheme, "http") != 0 &&
	     strcasecmp(scheme, "https") != 0))
		goto out;
	/* Credentials in the URL are not ours to send anywhere. */
	if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PASSWORD, &pw, 0) == CURLUE_OK)
		goto out;
	n = strlen(h);
	if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
		memmove(h, h + 1, n - 2);
		n -= 2;
		h[n] = '\0';
	}
	if (n == 0 || n >= cap)
		goto out;
	for (i = 0; i <= n; i++)
		host[i] = (char)tolower((unsigned char)h[i]);
	rc = 0;
out:
	curl_free(scheme);
	curl_free(h);
	curl_free(user);
	curl_free(pw);
	curl_url_cleanup(u);
	return rc;
}

bool
mgmt_upload_url_ok(const char *url, const char *server_host, char *const *hosts,
                   size_t nhosts, char *why, size_t whycap)
{
	char host[256];
	size_t i;

	if (!mgmt_printable(url, strlen(url)) ||
	    mgmt_url_host(url, host, sizeof(host)) == -1) {
		WHY("not an http:// or https:// URL without credentials");
		return false;
	}
	if (strcasecmp(host, server_host) == 0)
		return true;
	for (i = 0; i < nhosts; i++)
		if (strcasecmp(host, hosts[i]) == 0)
			return true;
	WHY("host %s is neither the server's nor in upload_hosts", host);
	return false;
}

uint64_t
mgmt_parts_needed(uint64_t size, uint64_t part_size)
{
	if (part_size == 0)
		return 0;
	return size / part_size + (size % part_size != 0);
}

int
mgmt_percent(uint64_t done, uint64_t total)
{
	uint64_t p;

	if (total == 0)
		return 0;
	if (done >= total)
		return 99;
	/* done * 100 could overflow for absurd sizes: divide first then. */
	p = done <= UINT64_MAX / 100 ? done * 100 / total
	                             : done / (total / 100 + 1);
	return p > 99 ? 99 : (int)p;
}

unsigned
mgmt_backoff_ms(unsigned failures, unsigned min_ms, unsigned max_ms,
                uint64_t rnd)
{
	uint64_t d = min_ms > 0 ? min_ms : 1;
	unsigned i;

	if (max_ms < d)
		max_ms = (unsigned)d;
	for (i = 1; i < failures && d < max_ms; i++)
		d *= 2;
	if (d > max_ms)
		d = max_ms;
	return (unsigned)(d / 2 + rnd % (d - d / 2 + 1));
}

/* The shell. */

void
mgmt_line_reset(struct mgmt_line *l)
{
	l->len = 0;
	l->buf[0] = '\0';
	l->esc = 0;
}

enum mgmt_key
mgmt_line_key(struct mgmt_line *l, uint8_t c, char echo[8], size_t *echolen)
{
	*echolen = 0;
	if (l->esc == 1) {
		l->esc = c == '[' || c == 'O' ? 2 : 0;
		return MGMT_KEY_NONE;
	}
	if (l->esc == 2) {
		/* CSI parameters until a final byte 0x40-0x7e. */
		if (c >= 0x40 && c <= 0x7e)
			l->esc = 0;
		return MGMT_KEY_NONE;
	}
	switch (c) {
	case '\r':
	case '\n':
		memcpy(echo, "\r\n", 2);
		*echolen = 2;
		l->buf[l->len] = '\0';
		return MGMT_KEY_LINE;
	case 0x03:
		memcpy(echo, "^C\r\n", 4);
		*echolen = 4;
		mgmt_line_reset(l);
		return MGMT_KEY_INTERRUPT;
	case 0x04:
		return l->len == 0 ? MGMT_KEY_EOF : MGMT_KEY_NONE;
	case 0x08:
	case 0x7f:
		if (l->len > 0) {
			l->len--;
			memcpy(echo, "\b \b", 3);
			*echolen = 3;
		}
		return MGMT_KEY_NONE;
	case 0x1b:
		l->esc = 1;
		return MGMT_KEY_NONE;
	default:
		if (c < 0x20 || c > 0x7e || l->len >= MGMT_LINE_MAX)
			return MGMT_KEY_NONE; /* the terminal bell would do */
		l->buf[l->len++] = (char)c;
		echo[0] = (char)c;
		*echolen = 1;
		return MGMT_KEY_NONE;
	}
}

bool
mgmt_parse_resize(const char *s, size_t len, int *rows, int *cols)
{
	char buf[64], tail;
	int r, c;

	if (len >= sizeof(buf))
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (sscanf(buf, "resize %d %d%c", &r, &c, &tail) != 2 || r <= 0 ||
	    c <= 0 || r > 10000 || c > 10000)
		return false;
	*rows = r;
	*cols = c;
	return true;
}

int
mgmt_split_words(const char *line, char ***argv, size_t *argc)
{
	size_t n = 0, len = strlen(line), i;
	const char *p;
	char **v, *store, *q;
	bool in = false;

	for (p = line; *p != '\0'; p++) {
		if (*p != ' ' && *p != '\t' && !in)
			n++;
		in = *p != ' ' && *p != '\t';
	}
	if (n > MGMT_ARGV_MAX)
		return -1;
	/* The pointers, then the words, in one allocation. */
	v = xmalloc((n + 1) * sizeof(*v) + len + 1);
	store = (char *)(v + n + 1);
	memcpy(store, line, len + 1);
	for (i = 0, q = store; i < n; i++) {
		while (*q == ' ' || *q == '\t')
			q++;
		v[i] = q;
		while (*q != '\0' && *q != ' ' && *q != '\t')
			q++;
		if (*q != '\0')
			*q++ = '\0';
	}
	v[n] = NULL;
	*argv = v;
	*argc = n;
	return 0;
}

char *
mgmt_crlf(const void *s, size_t len, size_t *outlen)
{
	const char *in = s;
	char *out = xmalloc(2 * len + 1);
	size_t i, o = 0;

	for (i = 0; i < len; i++) {
		if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
			out[o++] = '\r';
		out[o++] = in[i];
	}
	out[o] = '\0';
	*outlen = o;
	return out;
}
