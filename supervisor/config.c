/*
 * Loads config.json (json-c) into struct config and validates all of it
 * before anything touches a board: every error names the file, the key path
 * (devices[1].transport.baud) and what was expected.
 */
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "config.h"
#include "duration.h"
#include "journal.h"
#include "log.h"
#include "mgmt_msg.h"
#include "xmalloc.h"

#define CONFIG_MAX_BYTES (1024 * 1024)
#define KP_MAX           128 /* longest key path we print */
#define CA_FILE_MAX      (8 * 1024 * 1024)

_Static_assert(CONFIG_MAX_MEMBERS <= JOURNAL_MAX_MEMBERS,
               "a group the config accepts must fit a journal record");

/* One link in use, to refuse two boards on the same one. */
struct seen_link {
	const struct transport_cfg *t;
	char *canon; /* serial: resolved path; udp: host:port; ble: idx/name */
	char kp[KP_MAX];
};

struct seen_name {
	const char *value;
	char kp[KP_MAX];
};

struct parse {
	const char *file;
	struct config_report *r;
	struct seen_link *links;
	size_t nlinks;
	struct seen_name *ids, *names, *keys;
	size_t nids, nnames, nkeys;
};

static const char *const top_keys[] = {"server",
                                       "key_dir",
                                       "update_interval",
                                       "retries",
                                       "devices",
                                       "groups",
                                       "state_dir",
                                       "user",
                                       "ca_file",
                                       "artifact_verify_key",
                                       "metrics",
                                       "spool_max_bytes",
                                       "download_min_rate",
                                       "download_grace",
                                       "server_connections",
                                       "concurrent_authentications",
                                       "concurrent_downloads",
                                       "boards_per_worker",
                                       "timeouts",
                                       "log_format",
                                       "management",
                                       "upload_hosts",
                                       "file_max_bytes",
                                       NULL};
static const char *const device_keys[] = {"name",
                                          "id",
                                          "dev_type",
                                          "device_type",
                                          "key",
                                          "self_confirm",
                                          "update_interval",
                                          "transport",
                                          "timeouts",
                                          "actions",
                                          "shell",
                                          "file_paths",
                                          "file_max_bytes",
                                          NULL};
static const char *const group_keys[] = {"name",
                                         "id",
                                         "type",
                                         "key",
                                         "update_interval",
                                         "timeouts",
                                         "members",
                                         "actions",
                                         "file_max_bytes",
                                         NULL};
static const char *const member_keys[] = {
    "name", "device", "self_confirm", "transport", "shell", "file_paths", NULL};
static const char *const timeout_keys[] = {"request", "erase", "reboot",
                                           "confirm", "stall", NULL};
static const char *const serial_keys[] = {"type", "device", "baud", "mtu",
                                          NULL};
static const char *const udp_keys[] = {"type", "address", NULL};
static const char *const ble_keys[] = {"type", "device_index", "peer_name",
                                       "att_socket", NULL};
/* A transport key of another type says so, rather than "unknown". */
static const struct {
	const char *type;
	const char *const *keys;
} transport_keys[] = {
    {"serial", serial_keys},
    {"udp", udp_keys},
    {"ble", ble_keys},
};

/* The rates termios can set (Linux B* constants). */
static const int std_bauds[] = {
    50,      75,      110,     134,     150,     200,    300,     600,
    1200,    1800,    2400,    4800,    9600,    19200,  38400,   57600,
    115200,  230400,  460800,  500000,  576000,  921600, 1000000, 1152000,
    1500000, 2000000, 2500000, 3000000, 3500000, 4000000};

/* --- the report ----------------------------------------------------------- */

static void
issue_add(struct config_issue **v, size_t *n, size_t *dropped, size_t cap,
          const char *file, const char *kp, int line, int col, const char *msg)
{
	struct config_issue *i;

	if (*n >= cap) {
		(*dropped)++;
		return;
	}
	*v = xreallocarray(*v, *n + 1, sizeof(**v));
	i = &(*v)[(*n)++];
	i->file = file != NULL ? xstrdup(file) : NULL;
	i->keypath = kp != NULL ? xstrdup(kp) : NULL;
	i->line = line;
	i->col = col;
	i->msg = xstrdup(msg);
}

static void
report_verror(struct config_report *r, const char *file, const char *kp,
              int line, int col, const char *fmt, va_list ap)
{
	char msg[768];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	issue_add(&r->errors, &r->nerrors, &r->dropped_errors,
	          CONFIG_MAX_ERRORS, file, kp, line, col, msg);
}

void
config_report_error(struct config_report *r, const char *file,
                    const char *keypath, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	report_verror(r, file, keypath, 0, 0, fmt, ap);
	va_end(ap);
}

static void config_report_warning(struct config_report *r, const char *file,
                                  const char *keypath, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
config_report_warning(struct config_report *r, const char *file,
                      const char *keypath, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	issue_add(&r->warnings, &r->nwarnings, &r->dropped_warnings,
	          CONFIG_MAX_WARNINGS, file, keypath, 0, 0, msg);
}

static void
issues_free(struct config_issue *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(v[i].file);
		free(v[i].keypath);
		free(v[i].msg);
	}
	free(v);
}

void
config_report_free(struct config_report *r)
{
	issues_free(r->errors, r->nerrors);
	issues_free(r->warnings, r->nwarnings);
	memset(r, 0, sizeof(*r));
}

char *
config_issue_line(const struct config_issue *i)
{
	char *s;

	if (i->file == NULL)
		s = xstrdup(i->msg);
	else if (i->keypath != NULL)
		xasprintf(&s, "%s: %s: %s", i->file,
		          i->keypath[0] != '\0' ? i->keypath : "(top level)",
		          i->msg);
	else if (i->line > 0)
		xasprintf(&s, "%s:%d:%d: %s", i->file, i->line, i->col, i->msg);
	else
		xasprintf(&s, "%s: %s", i->file, i->msg);
	return s;
}

static int perr(struct parse *, const char *kp, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The management channel's keys: the block at the end of this file. */
static int parse_mgmt_top(struct parse *, struct config *, json_object *);
static int parse_mgmt_device(struct parse *, const struct config *,
                             json_object *, const char *, struct device_cfg *);
static int parse_mgmt_group(struct parse *, const struct config *,
                            json_object *, const char *, struct group_cfg *);
static int parse_board_mgmt(struct parse *, json_object *, const char *,
                            struct board_mgmt_cfg *);
static void free_board_mgmt(struct board_mgmt_cfg *);
static void free_mgmt(struct mgmt_cfg *);
static bool board_mgmt_equal(const struct board_mgmt_cfg *,
                             const struct board_mgmt_cfg *);
static bool mgmt_equal(const struct mgmt_cfg *, const struct mgmt_cfg *);

/* Every error is recorded: the operator fixes them all in one pass. */
static int
perr(struct parse *p, const char *kp, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	report_verror(p->r, p->file, kp, 0, 0, fmt, ap);
	va_end(ap);
	return -1;
}

/*
 * Key paths are for messages: a path longer than KP_MAX (only possible
 * with absurd unknown keys) is cut, which still points at the place.
 */
static void
kp_cut(char *out, int n)
{
	if (n < 0 || n >= KP_MAX)
		memcpy(out + KP_MAX - 4, "...", 4);
}

static void
kp_key(char *out, const char *kp, const char *key)
{
	if (kp[0] == '\0')
		kp_cut(out, snprintf(out, KP_MAX, "%s", key));
	else
		kp_cut(out, snprintf(out, KP_MAX, "%s.%s", kp, key));
}

static void
kp_index(char *out, const char *kp, const char *key, size_t i)
{
	kp_cut(out, snprintf(out, KP_MAX, "%s%s%s[%zu]", kp,
	                     kp[0] != '\0' ? "." : "", key, i));
}

static const char *
type_name(json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_null:
		return "null";
	case json_type_boolean:
		return "a boolean";
	case json_type_double:
		return "a number with a fraction";
	case json_type_int:
		return "an integer";
	case json_type_object:
		return "an object";
	case json_type_array:
		return "an array";
	case json_type_string:
		return "a string";
	}
	return "?";
}

/*
 * Edit distance with transpositions (optimal string alignment), case
 * folded: "baudrate" is far from "baud", but "buad" and "Baud" are close.
 * Keys longer than 63 characters are never close to ours.
 */
static size_t
key_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j, d[64][64], best;

	if (la >= 64 || lb >= 64)
		return SIZE_MAX;
	for (i = 0; i <= la; i++)
		d[i][0] = i;
	for (j = 0; j <= lb; j++)
		d[0][j] = j;
	for (i = 1; i <= la; i++)
		for (j = 1; j <= lb; j++) {
			size_t cost = tolower((unsigned char)a[i - 1]) !=
			              tolower((unsigned char)b[j - 1]);

			best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (d[i - 1][j - 1] + cost < best)
				best = d[i - 1][j - 1] + cost;
			if (i > 1 && j > 1 &&
			    tolower((unsigned char)a[i - 1]) ==
			        tolower((unsigned char)b[j - 2]) &&
			    tolower((unsigned char)a[i - 2]) ==
			        tolower((unsigned char)b[j - 1]) &&
			    d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	return d[la][lb];
}

/* One key contains the other ("baudrate", "interval"), both long enough. */
static bool
key_contains(const char *a, const char *b)
{
	const char *shorter = strlen(a) < strlen(b) ? a : b;
	const char *longer = shorter == a ? b : a;

	return strlen(shorter) >= 4 && strcasestr(longer, shorter) != NULL;
}

/* The known key an unknown one was probably meant to be, or NULL. */
static const char *
nearest_key(const char *key, const char *const *allowed)
{
	const char *best = NULL;
	size_t i, d, bestd = SIZE_MAX, limit;

	for (i = 0; allowed[i] != NULL; i++) {
		d = key_distance(key, allowed[i]);
		limit = strlen(allowed[i]) <= 4 ? 1 : 2;
		if (d <= limit && d < bestd) {
			best = allowed[i];
			bestd = d;
		}
	}
	if (best != NULL)
		return best;
	for (i = 0; allowed[i] != NULL; i++)
		if (key_contains(key, allowed[i]))
			return allowed[i];
	return NULL;
}

/* For a transport: the other transport type that has this key, or NULL. */
static const char *
other_transport_with(const char *key, const char *const *allowed)
{
	size_t t, i;

	for (t = 0; t < sizeof(transport_keys) / sizeof(transport_keys[0]);
	     t++) {
		if (transport_keys[t].keys == allowed)
			continue;
		for (i = 0; transport_keys[t].keys[i] != NULL; i++)
			if (strcmp(transport_keys[t].keys[i], key) == 0)
				return transport_keys[t].type;
	}
	return NULL;
}

static bool
is_transport_keys(const char *const *allowed)
{
	return allowed == serial_keys || allowed == udp_keys ||
	       allowed == ble_keys;
}

/*
 * Unknown keys are warnings, as the Go client ignored them; a close known
 * key is named so that "baudrate" does not go unseen.
 */
static void
warn_unknown_keys(struct parse *p, json_object *o, const char *kp,
                  const char *const *allowed)
{
	char sub[KP_MAX], hint[160];
	const char *near, *other;
	size_t i;

	json_object_object_foreach(o, key, val)
	{
		(void)val;
		for (i = 0; allowed[i] != NULL; i++)
			if (strcmp(key, allowed[i]) == 0)
				break;
		if (allowed[i] != NULL)
			continue;
		kp_key(sub, kp, key);
		other = is_transport_keys(allowed)
		            ? other_transport_with(key, allowed)
		            : NULL;
		near = other == NULL ? nearest_key(key, allowed) : NULL;
		if (other != NULL)
			snprintf(hint, sizeof(hint),
			         " (\"%s\" belongs to the %s transport)", key,
			         other);
		else if (near != NULL)
			snprintf(hint, sizeof(hint), " (did you mean \"%s\"?)",
			         near);
		else
			hint[0] = '\0';
		config_report_warning(p->r, p->file, sub,
		                      "unknown key, ignored%s", hint);
	}
}

/* The value at key, or NULL when absent or null (as Go treats null). */
static json_object *
lookup(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) ||
	    json_object_get_type(v) == json_type_null)
		return NULL;
	return v;
}

static int
get_str(struct parse *p, json_object *o, const char *kp, const char *key,
        const char *what, char **out)
{
	char sub[KP_MAX];
	json_object *v;
	const char *s;

	kp_key(sub, kp, key);
	if ((v = lookup(o, key)) == NULL) {
		if (what == NULL)
			return 0;
		return perr(p, sub, "missing: expected a string (%s)", what);
	}
	if (!json_object_is_type(v, json_type_string))
		return perr(p, sub, "expected a string%s%s%s, found %s",
		            what != NULL ? " (" : "", what != NULL ? what : "",
		            what != NULL ? ")" : "", type_name(v));
	s = json_object_get_string(v);
	if ((size_t)json_object_get_string_len(v) != strlen(s))
		return perr(p, sub, "contains a NUL character");
	if (*s == '\0')
		return perr(p, sub, "must not be empty%s%s%s",
		            what != NULL ? " (expected " : "",
		            what != NULL ? what : "", what != NULL ? ")" : "");
	free(*out);
	*out = xstrdup(s);
	return 0;
}

/* Optional integer in [min, max]; *out is left alone when absent. */
static int
get_int(struct parse *p, json_object *o, const char *kp, const char *key,
        int64_t min, int64_t max, int64_t *out)
{
	char sub[KP_MAX];
	json_object *v;
	int64_t n;

	kp_key(sub, kp, key);
	if ((v = lookup(o, key)) == NULL)
		return 0;
	if (!json_object_is_type(v, json_type_int))
		return perr(p, sub, "expected an integer, found %s",
		            type_name(v));
	errno = 0;
	n = json_object_get_int64(v);
	if (errno != 0 || n < min || n > max)
		return perr(p, sub,
		            "expected an integer from %" PRId64 " to %" PRId64
		            ", found %s",
		            min, max, json_object_get_string(v));
	*out = n;
	return 0;
}

static int
get_bool(struct parse *p, json_object *o, const char *kp, const char *key,
         bool *out)
{
	char sub[KP_MAX];
	json_object *v;

	kp_key(sub, kp, key);
	if ((v = lookup(o, key)) == NULL)
		return 0;
	if (!json_object_is_type(v, json_type_boolean))
		return perr(p, sub, "expected true or false, found %s",
		            type_name(v));
	*out = json_object_get_boolean(v);
	return 0;
}

/* Optional Go duration, which must be positive. */
static int
get_duration(struct parse *p, json_object *o, const char *kp, const char *key,
             int64_t *out)
{
	char sub[KP_MAX], why[160];
	json_object *v;
	int64_t ms;

	kp_key(sub, kp, key);
	if ((v = lookup(o, key)) == NULL)
		return 0;
	if (!json_object_is_type(v, json_type_string))
		return perr(
		    p, sub,
		    "expected a duration string such as \"10s\", \"15m\" or "
		    "\"1h30m\", found %s",
		    type_name(v));
	if (duration_parse(json_object_get_string(v), &ms, why, sizeof(why)) ==
	    -1)
		return perr(p, sub, "%s", why);
	if (ms == 0)
		return perr(p, sub,
		            "must be longer than 0 (expected e.g. "
		            "\"10s\")");
	*out = ms;
	return 0;
}

/* An object-valued key; *out NULL when absent and not required. */
static int
get_obj(struct parse *p, json_object *o, const char *kp, const char *key,
        const char *what, json_object **out)
{
	char sub[KP_MAX];
	json_object *v;

	*out = NULL;
	kp_key(sub, kp, key);
	if ((v = lookup(o, key)) == NULL) {
		if (what == NULL)
			return 0;
		return perr(p, sub, "missing: expected an object (%s)", what);
	}
	if (!json_object_is_type(v, json_type_object))
		return perr(p, sub, "expected an object%s%s%s, found %s",
		            what != NULL ? " (" : "", what != NULL ? what : "",
		            what != NULL ? ")" : "", type_name(v));
	*out = v;
	return 0;
}

static int
get_array(struct parse *p, json_object *o, const char *kp, const char *key,
          json_object **out)
{
	char sub[KP_MAX];
	json_object *v;

	*out = NULL;
	kp_key(sub, kp, key);
	if ((v = lookup(o, key)) == NULL)
		return 0;
	if (!json_object_is_type(v, json_type_array))
		return perr(p, sub, "expected an array, found %s",
		            type_name(v));
	*out = v;
	return 0;
}

static char *
absolute_path(const char *path)
{
	char cwd[PATH_MAX];
	char *s;

	if (path[0] == '/' || getcwd(cwd, sizeof(cwd)) == NULL)
		return xstrdup(path);
	xasprintf(&s, "%s/%s", cwd, path);
	return s;
}

/* Replace *path with its absolute form (relative to the working dir). */
static void
make_absolute(char **path)
{
	char *abs;

	if (*path == NULL)
		return;
	abs = absolute_path(*path);
	free(*path);
	*path = abs;
}

static bool
is_std_baud(long long baud)
{
	size_t i;

	for (i = 0; i < sizeof(std_bauds) / sizeof(std_bauds[0]); i++)
		if (std_bauds[i] == baud)
			return true;
	return false;
}

int
config_check_baud(long long baud, char *why, size_t cap)
{
	if (is_std_baud(baud))
		return 0;
	snprintf(why, cap,
	         "%lld is not a standard serial rate (expected one of 9600, "
	         "19200, 38400, 57600, 115200, 230400, 460800, 500000, "
	         "576000, 921600, 1000000, 1152000, 1500000, 2000000, "
	         "2500000, 3000000, 3500000, 4000000, or a legacy rate from "
	         "50 to 4800)",
	         baud);
	return -1;
}

int
config_check_mtu(long long mtu, char *why, size_t cap)
{
	if (mtu >= CONFIG_MTU_MIN && mtu <= CONFIG_MTU_MAX)
		return 0;
	snprintf(why, cap,
	         "%lld is out of range (expected an SMP packet size from %d "
	         "to %d, no larger than the board's receive buffer)",
	         mtu, CONFIG_MTU_MIN, CONFIG_MTU_MAX);
	return -1;
}

int
config_check_key_name(const char *key, char *why, size_t cap)
{
	if (strchr(key, '/') != NULL || strcmp(key, ".") == 0 ||
	    strcmp(key, "..") == 0) {
		snprintf(why, cap,
		         "\"%s\" is not a file name (expected the name of a "
		         "file inside key_dir, without '/' or \"..\")",
		         key);
		return -1;
	}
	return 0;
}

static bool
valid_hostname(const char *h)
{
	if (*h == '\0' || strlen(h) > 253)
		return false;
	for (; *h != '\0'; h++)
		if (!isalnum((unsigned char)*h) && *h != '-' && *h != '.' &&
		    *h != '_')
			return false;
	return true;
}

/* The port after the host; 0, or -1 with why. */
static int
parse_port(const char *s, const char *ps, int min_port, int *port, char *why,
           size_t cap)
{
	char *ep;
	long n;

	if (*ps == '\0') {
		snprintf(why, cap,
		         "\"%s\" has no port after ':' (expected a number from "
		         "%d to 65535)",
		         s, min_port);
		return -1;
	}
	errno = 0;
	n = strtol(ps, &ep, 10);
	if (!isdigit((unsigned char)*ps) || *ep != '\0' || errno != 0 ||
	    n < min_port || n > 65535) {
		snprintf(why, cap,
		         "\"%s\": port \"%s\" is not a number from "
		         "%d to 65535",
		         s, ps, min_port);
		return -1;
	}
	*port = (int)n;
	return 0;
}

int
config_split_address(const char *s, int min_port, char **host, int *port,
                     char *why, size_t cap)
{
	struct in6_addr a6;
	const char *colon, *ps, *end;
	char *h;

	*host = NULL;
	if (s[0] == '[') {
		if ((end = strchr(s, ']')) == NULL) {
			snprintf(why, cap,
			         "\"%s\": missing ']' (expected [IPv6]:port, "
			         "e.g. [::1]:1337)",
			         s);
			return -1;
		}
		h = xstrndup(s + 1, (size_t)(end - s - 1));
		if (inet_pton(AF_INET6, h, &a6) != 1) {
			snprintf(why, cap,
			         "\"%s\": \"%s\" is not an IPv6 "
			         "address",
			         s, h);
			free(h);
			return -1;
		}
		if (end[1] != ':') {
			snprintf(why, cap,
			         "\"%s\" has no port (expected "
			         "[IPv6]:port, e.g. [::1]:1337)",
			         s);
			free(h);
			return -1;
		}
		ps = end + 2;
	} else {
		if ((colon = strrchr(s, ':')) == NULL) {
			snprintf(why, cap,
			         "\"%s\" has no port (expected "
			         "IPv4:port, [IPv6]:port or host:port, e.g. "
			         "192.168.1.2:1337)",
			         s);
			return -1;
		}
		if (strchr(s, ':') != colon) {
			snprintf(why, cap,
			         "\"%s\": an IPv6 address needs "
			         "brackets (expected [IPv6]:port, e.g. "
			         "[fe80::1]:1337)",
			         s);
			return -1;
		}
		h = xstrndup(s, (size_t)(colon - s));
		if (!valid_hostname(h)) {
			snprintf(why, cap,
			         "\"%s\": \"%s\" is not an IPv4 "
			         "address or host name",
			         s, h);
			free(h);
			return -1;
		}
		ps = colon + 1;
	}
	if (parse_port(s, ps, min_port, port, why, cap) == -1) {
		free(h);
		return -1;
	}
	*host = h;
	return 0;
}

static const char *
file_kind(mode_t m)
{
	if (S_ISREG(m))
		return "a regular file";
	if (S_ISDIR(m))
		return "a directory";
	if (S_ISBLK(m))
		return "a block device";
	if (S_ISFIFO(m))
		return "a FIFO";
	if (S_ISSOCK(m))
		return "a socket";
	if (S_ISCHR(m))
		return "a character device";
	return "not a file";
}

/* Unix98 pseudo-terminal slaves (/dev/pts/N) are not in sysfs. */
#define PTS_MAJOR_FIRST 136
#define PTS_MAJOR_LAST  143
#define TTY_MAJOR       4 /* virtual consoles below minor 64, ttyS above */
#define TTYAUX_MAJOR    5 /* /dev/tty, /dev/console, /dev/ptmx */

int
config_check_serial_device(const char *path, bool *absent, char *why,
                           size_t cap)
{
	char sys[64], link[PATH_MAX];
	const char *subsys;
	unsigned int maj, min;
	struct stat st;
	ssize_t n;

	*absent = false;
	if (stat(path, &st) == -1) {
		if (errno == ENOENT) {
			*absent = true;
			snprintf(why, cap,
			         "\"%s\" does not exist now (an unplugged USB "
			         "board?); the client waits for it",
			         path);
			return 0;
		}
		snprintf(why, cap, "cannot stat \"%s\": %s", path,
		         strerror(errno));
		return -1;
	}
	if (!S_ISCHR(st.st_mode)) {
		snprintf(why, cap,
		         "\"%s\" is %s, not a serial device (expected a "
		         "terminal such as /dev/ttyACM0 or "
		         "/dev/serial/by-id/...)",
		         path, file_kind(st.st_mode));
		return -1;
	}
	maj = major(st.st_rdev);
	min = minor(st.st_rdev);
	if (maj >= PTS_MAJOR_FIRST && maj <= PTS_MAJOR_LAST)
		return 0;
	if ((maj == TTYAUX_MAJOR && min <= 2) ||
	    (maj == TTY_MAJOR && min < 64)) {
		snprintf(why, cap,
		         "\"%s\" is a console or the terminal multiplexer, not "
		         "a serial line (expected e.g. /dev/ttyACM0)",
		         path);
		return -1;
	}
	/* Whether a character device is a tty is what sysfs says. */
	snprintf(sys, sizeof(sys), "/sys/dev/char/%u:%u/subsystem", maj, min);
	if ((n = readlink(sys, link, sizeof(link) - 1)) == -1) {
		if (access("/sys/dev/char", F_OK) == -1)
			return 0; /* no sysfs here: nothing to go by */
		snprintf(why, cap,
		         "\"%s\" (character device %u:%u) is not a terminal "
		         "(expected a serial tty such as /dev/ttyACM0 or a "
		         "pseudo-terminal)",
		         path, maj, min);
		return -1;
	}
	link[n] = '\0';
	subsys = strrchr(link, '/') != NULL ? strrchr(link, '/') + 1 : link;
	if (strcmp(subsys, "tty") == 0)
		return 0;
	snprintf(why, cap,
	         "\"%s\" is a %s device (%u:%u), not a terminal (expected a "
	         "serial tty such as /dev/ttyACM0 or a pseudo-terminal)",
	         path, subsys, maj, min);
	return -1;
}

/* Refuse a second board on a link that is already configured. */
static int
claim_link(struct parse *p, const struct transport_cfg *t, const char *kp)
{
	char resolved[PATH_MAX], sub[KP_MAX], *canon, *c;
	const char *what, *key;
	size_t i;

	switch (t->type) {
	case TRANSPORT_SERIAL:
		/* /dev/serial/by-id/... may name the same tty as /dev/ttyACM0.
		 */
		canon =
		    xstrdup(realpath(t->device, resolved) != NULL ? resolved
		                                                  : t->device);
		what = "serial device";
		key = "device";
		break;
	case TRANSPORT_UDP:
		xasprintf(&canon, "%s:%d", t->host, t->port);
		for (c = canon; *c != '\0'; c++)
			*c = (char)tolower((unsigned char)*c);
		what = "UDP address";
		key = "address";
		break;
	default:
		xasprintf(&canon, "%d/%s", t->device_index, t->peer_name);
		what = "BLE peer on this adapter";
		key = "peer_name";
		break;
	}
	kp_key(sub, kp, key);
	for (i = 0; i < p->nlinks; i++) {
		if (p->links[i].t->type != t->type ||
		    strcmp(p->links[i].canon, canon) != 0)
			continue;
		free(canon);
		return perr(p, sub,
		            "the same %s as %s (expected one entry per "
		            "board link)",
		            what, p->links[i].kp);
	}
	p->links = xreallocarray(p->links, p->nlinks + 1, sizeof(*p->links));
	p->links[p->nlinks].t = t;
	p->links[p->nlinks].canon = canon;
	snprintf(p->links[p->nlinks].kp, KP_MAX, "%s", kp);
	p->nlinks++;
	return 0;
}

/* Refuse a value already used by another entry (ids, names, key files). */
static int
claim_unique(struct parse *p, struct seen_name **list, size_t *n,
             const char *value, const char *kp, const char *what)
{
	size_t i;

	if (value == NULL)
		return 0; /* missing: already reported */
	for (i = 0; i < *n; i++)
		if (strcmp((*list)[i].value, value) == 0)
			return perr(p, kp,
			            "\"%s\" is already the %s of %s "
			            "(expected each to be unique)",
			            value, what, (*list)[i].kp);
	*list = xreallocarray(*list, *n + 1, sizeof(**list));
	(*list)[*n].value = value;
	snprintf((*list)[*n].kp, KP_MAX, "%s", kp);
	(*n)++;
	return 0;
}

static int
parse_serial(struct parse *p, json_object *o, const char *kp,
             struct transport_cfg *t)
{
	char sub[KP_MAX], why[512];
	int64_t n;
	bool bad = false;

	warn_unknown_keys(p, o, kp, serial_keys);
	bad |= get_str(p, o, kp, "device",
	               "the serial device path, e.g. /dev/ttyACM0",
	               &t->device) == -1;
	n = 115200;
	if (get_int(p, o, kp, "baud", 1, INT_MAX, &n) == -1)
		bad = true;
	else if (config_check_baud(n, why, sizeof(why)) == -1) {
		kp_key(sub, kp, "baud");
		bad = perr(p, sub, "%s", why) == -1;
	}
	t->baud = (int)n;
	n = 0;
	bad |=
	    get_int(p, o, kp, "mtu", CONFIG_MTU_MIN, CONFIG_MTU_MAX, &n) == -1;
	t->mtu = (int)n;
	return bad ? -1 : 0;
}

static int
parse_udp(struct parse *p, json_object *o, const char *kp,
          struct transport_cfg *t)
{
	char sub[KP_MAX], why[256];

	warn_unknown_keys(p, o, kp, udp_keys);
	if (get_str(p, o, kp, "address", "IPv4:port or [IPv6]:port",
	            &t->address) == -1)
		return -1;
	if (config_split_address(t->address, 1, &t->host, &t->port, why,
	                         sizeof(why)) == -1) {
		kp_key(sub, kp, "address");
		return perr(p, sub, "%s", why);
	}
	return 0;
}

static int
parse_ble(struct parse *p, json_object *o, const char *kp,
          struct transport_cfg *t)
{
	char sub[KP_MAX];
	int64_t n = 0;
	bool bad = false;

	warn_unknown_keys(p, o, kp, ble_keys);
	bad |= get_int(p, o, kp, "device_index", 0, CONFIG_DEVICE_INDEX_MAX,
	               &n) == -1;
	t->device_index = (int)n;
	bad |= get_str(p, o, kp, "peer_name", "the name the board advertises",
	               &t->peer_name) == -1;
	if (get_str(p, o, kp, "att_socket", NULL, &t->att_socket) == -1)
		bad = true;
	else if (t->att_socket != NULL &&
	         (t->att_socket[0] != '@' || strlen(t->att_socket) < 2 ||
	          strlen(t->att_socket) > 107)) {
		kp_key(sub, kp, "att_socket");
		bad = perr(p, sub,
		           "expected \"@name\" (an abstract socket "
		           "of the virtual board, up to 106 characters)") == -1;
	}
	return bad ? -1 : 0;
}

static int
parse_transport(struct parse *p, json_object *parent, const char *pkp,
                struct transport_cfg *t)
{
	char kp[KP_MAX], sub[KP_MAX];
	json_object *o;
	char *type = NULL;
	int rc;

	kp_key(kp, pkp, "transport");
	if (get_obj(p, parent, pkp, "transport",
	            "with \"type\": serial, udp or ble", &o) == -1)
		return -1;
	if (get_str(p, o, kp, "type", "serial, udp or ble", &type) == -1)
		return -1;
	kp_key(sub, kp, "type");
	if (strcmp(type, "serial") == 0) {
		t->type = TRANSPORT_SERIAL;
		rc = parse_serial(p, o, kp, t);
	} else if (strcmp(type, "udp") == 0) {
		t->type = TRANSPORT_UDP;
		rc = parse_udp(p, o, kp, t);
	} else if (strcmp(type, "ble") == 0) {
		t->type = TRANSPORT_BLE;
		rc = parse_ble(p, o, kp, t);
	} else
		rc = perr(p, sub,
		          "unknown transport type \"%s\" (expected serial, "
		          "udp or ble)",
		          type);
	free(type);
	if (rc == -1)
		return -1;
	return claim_link(p, t, kp);
}

static int
parse_timeouts(struct parse *p, json_object *parent, const char *pkp,
               struct timeouts_cfg *t)
{
	char kp[KP_MAX];
	json_object *o;
	bool bad = false;

	kp_key(kp, pkp, "timeouts");
	if (get_obj(p, parent, pkp, "timeouts", NULL, &o) == -1)
		return -1;
	if (o == NULL)
		return 0;
	warn_unknown_keys(p, o, kp, timeout_keys);
	bad |= get_duration(p, o, kp, "request", &t->request_ms) == -1;
	bad |= get_duration(p, o, kp, "erase", &t->erase_ms) == -1;
	bad |= get_duration(p, o, kp, "reboot", &t->reboot_ms) == -1;
	bad |= get_duration(p, o, kp, "confirm", &t->confirm_ms) == -1;
	bad |= get_duration(p, o, kp, "stall", &t->stall_ms) == -1;
	return bad ? -1 : 0;
}

/*
 * The key file inside key_dir, or NULL when the key name is unusable (a
 * key must never be read or written outside key_dir).
 */
static char *
parse_key(struct parse *p, const struct config *c, json_object *o,
          const char *kp, char **key)
{
	char sub[KP_MAX], why[256], *s;

	if (get_str(p, o, kp, "key", "the key file name inside key_dir", key) ==
	    -1)
		return NULL;
	kp_key(sub, kp, "key");
	if (config_check_key_name(*key, why, sizeof(why)) == -1) {
		perr(p, sub, "%s", why);
		return NULL;
	}
	if (c->key_dir == NULL)
		return NULL; /* reported at the top level */
	xasprintf(&s, "%s/%s", c->key_dir, *key);
	return s;
}

/* The identity checks shared by devices and groups. */
static int
claim_identity(struct parse *p, const char *kp, const char *id,
               const char *name, const char *key_path)
{
	char sub[KP_MAX];
	bool bad = false;

	kp_key(sub, kp, "id");
	bad |= claim_unique(p, &p->ids, &p->nids, id, sub, "id") == -1;
	kp_key(sub, kp, "name");
	bad |= claim_unique(p, &p->names, &p->nnames, name, sub, "name") == -1;
	kp_key(sub, kp, "key");
	bad |= claim_unique(p, &p->keys, &p->nkeys, key_path, sub,
	                    "key file") == -1;
	return bad ? -1 : 0;
}

static int
parse_device(struct parse *p, struct config *c, json_object *o, const char *kp,
             struct device_cfg *d)
{
	bool bad = false;

	d->update_interval_ms = c->update_interval_ms;
	d->timeouts = c->timeouts;
	warn_unknown_keys(p, o, kp, device_keys);
	bad |= get_str(p, o, kp, "name", "a display name for logs", &d->name) ==
	       -1;
	bad |= get_str(p, o, kp, "id", "the unique id sent to the server",
	               &d->id) == -1;
	/* The Go docs say device_type, its example says dev_type. */
	if (lookup(o, "dev_type") != NULL || lookup(o, "device_type") == NULL)
		bad |= get_str(p, o, kp, "dev_type",
		               "the device type reported "
		               "to the server; device_type is accepted too",
		               &d->dev_type) == -1;
	else
		bad |= get_str(p, o, kp, "device_type", "the device type",
		               &d->dev_type) == -1;
	if ((d->key_path = parse_key(p, c, o, kp, &d->key)) == NULL)
		bad = true;
	bad |= get_bool(p, o, kp, "self_confirm", &d->self_confirm) == -1;
	bad |= get_duration(p, o, kp, "update_interval",
	                    &d->update_interval_ms) == -1;
	bad |= parse_timeouts(p, o, kp, &d->timeouts) == -1;
	bad |= parse_transport(p, o, kp, &d->transport) == -1;
	bad |= parse_mgmt_device(p, c, o, kp, d) == -1;
	bad |= claim_identity(p, kp, d->id, d->name, d->key_path) == -1;
	return bad ? -1 : 0;
}

static int
parse_member(struct parse *p, json_object *o, const char *kp,
             struct member_cfg *m)
{
	bool bad = false;

	warn_unknown_keys(p, o, kp, member_keys);
	bad |= get_str(p, o, kp, "name", "a display name for logs", &m->name) ==
	       -1;
	bad |= get_str(p, o, kp, "device",
	               "the image name this member takes "
	               "from a group artifact",
	               &m->device) == -1;
	bad |= get_bool(p, o, kp, "self_confirm", &m->self_confirm) == -1;
	bad |= parse_transport(p, o, kp, &m->transport) == -1;
	bad |= parse_board_mgmt(p, o, kp, &m->mgmt_board) == -1;
	return bad ? -1 : 0;
}

static int
parse_members(struct parse *p, json_object *arr, const char *kp,
              struct group_cfg *g)
{
	char sub[KP_MAX], mkp[KP_MAX];
	struct seen_name *mnames = NULL, *mdevs = NULL;
	size_t nmnames = 0, nmdevs = 0, i, n;
	json_object *mo;
	bool bad = false;

	kp_key(sub, kp, "members");
	if (arr == NULL || (n = json_object_array_length(arr)) == 0)
		return perr(p, sub,
		            "%s: expected an array of at least one "
		            "member",
		            arr == NULL ? "missing" : "empty");
	if (n > CONFIG_MAX_MEMBERS)
		bad = perr(p, sub,
		           "%zu members: at most %d are supported "
		           "(expected a group of %d boards or fewer; split "
		           "larger sets into several groups)",
		           n, CONFIG_MAX_MEMBERS, CONFIG_MAX_MEMBERS) == -1;
	g->members = xcalloc(n, sizeof(*g->members));
	for (i = 0; i < n; i++) {
		kp_index(mkp, kp, "members", i);
		mo = json_object_array_get_idx(arr, i);
		g->nmembers++;
		if (!json_object_is_type(mo, json_type_object)) {
			bad = perr(p, mkp,
			           "expected an object (a group member), "
			           "found %s",
			           type_name(mo)) == -1;
			continue;
		}
		bad |= parse_member(p, mo, mkp, &g->members[i]) == -1;
		kp_key(sub, mkp, "device");
		bad |=
		    claim_unique(p, &mdevs, &nmdevs, g->members[i].device, sub,
		                 "image (device) name in this group") == -1;
		kp_key(sub, mkp, "name");
		bad |= claim_unique(p, &mnames, &nmnames, g->members[i].name,
		                    sub, "member name in this group") == -1;
	}
	free(mnames);
	free(mdevs);
	return bad ? -1 : 0;
}

static int
parse_group(struct parse *p, struct config *c, json_object *o, const char *kp,
            struct group_cfg *g)
{
	json_object *arr;
	bool bad = false;

	g->update_interval_ms = c->update_interval_ms;
	g->timeouts = c->timeouts;
	warn_unknown_keys(p, o, kp, group_keys);
	bad |= get_str(p, o, kp, "name", "a display name for logs", &g->name) ==
	       -1;
	bad |= get_str(p, o, kp, "id", "the unique id sent to the server",
	               &g->id) == -1;
	bad |= get_str(p, o, kp, "type",
	               "the group type reported to the server", &g->type) == -1;
	if ((g->key_path = parse_key(p, c, o, kp, &g->key)) == NULL)
		bad = true;
	bad |= get_duration(p, o, kp, "update_interval",
	                    &g->update_interval_ms) == -1;
	bad |= parse_timeouts(p, o, kp, &g->timeouts) == -1;
	if (get_array(p, o, kp, "members", &arr) == -1)
		bad = true;
	else
		bad |= parse_members(p, arr, kp, g) == -1;
	bad |= parse_mgmt_group(p, c, o, kp, g) == -1;
	bad |= claim_identity(p, kp, g->id, g->name, g->key_path) == -1;
	return bad ? -1 : 0;
}

static int
check_url(struct parse *p, const char *kp, const char *url)
{
	if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
		return perr(p, kp, "\"%s\" is not an http:// or https:// URL",
		            url);
	if (url[strcspn(url, ":") + 3] == '\0')
		return perr(p, kp, "\"%s\" has no host", url);
	return 0;
}

static void
apply_overrides(struct config *c, const struct config_overrides *ov)
{
	if (ov == NULL)
		return;
	if (ov->server != NULL) {
		free(c->server);
		c->server = xstrdup(ov->server);
	}
	if (ov->key_dir != NULL) {
		free(c->key_dir);
		c->key_dir = xstrdup(ov->key_dir);
	}
	if (ov->state_dir != NULL) {
		free(c->state_dir);
		c->state_dir = xstrdup(ov->state_dir);
	}
	if (ov->has_retries)
		c->retries = ov->retries;
	if (ov->has_interval)
		c->update_interval_ms = ov->interval_ms;
}

/* The scalar keys of the top level; -1 when one is wrong. */
/* "text" (key=value lines, the default) or "json" (an object per line). */
static int
parse_log_format(struct parse *p, json_object *root, struct config *c)
{
	char *f = NULL;
	int ret = 0;

	if (get_str(p, root, "", "log_format", NULL, &f) == -1)
		return -1;
	if (f == NULL || strcmp(f, "text") == 0)
		c->log_json = false;
	else if (strcmp(f, "json") == 0)
		c->log_json = true;
	else
		ret = perr(p, "log_format",
		           "\"%s\" is not a log format "
		           "(expected \"text\" or \"json\")",
		           f);
	free(f);
	return ret;
}

static int
parse_top_scalars(struct parse *p, struct config *c, json_object *root)
{
	bool bad = false;
	int64_t v = 0;

	bad |= get_str(p, root, "", "server", NULL, &c->server) == -1;
	bad |= get_str(p, root, "", "key_dir", NULL, &c->key_dir) == -1;
	bad |= get_str(p, root, "", "state_dir", NULL, &c->state_dir) == -1;
	bad |= get_str(p, root, "", "user", NULL, &c->user) == -1;
	bad |= get_str(p, root, "", "ca_file", NULL, &c->ca_file) == -1;
	bad |= get_str(p, root, "", "artifact_verify_key", NULL,
	               &c->artifact_verify_key) == -1;
	bad |= get_str(p, root, "", "metrics", NULL, &c->metrics) == -1;
	bad |= get_duration(p, root, "", "update_interval",
	                    &c->update_interval_ms) == -1;
	bad |= parse_timeouts(p, root, "", &c->timeouts) == -1;
	bad |= get_int(p, root, "", "retries", 0, INT_MAX, &v) == -1;
	c->retries = (int)v;
	bad |= get_int(p, root, "", "spool_max_bytes", 1024 * 1024, INT64_MAX,
	               &c->spool_max_bytes) == -1;
	bad |= get_int(p, root, "", "download_min_rate", 1, INT64_MAX,
	               &c->download_min_rate) == -1;
	bad |= get_duration(p, root, "", "download_grace",
	                    &c->download_grace_ms) == -1;
	v = c->server_connections;
	bad |= get_int(p, root, "", "server_connections", 1,
	               CONFIG_MAX_SERVER_CONNECTIONS, &v) == -1;
	c->server_connections = (int)v;
	v = c->concurrent_authentications;
	bad |= get_int(p, root, "", "concurrent_authentications", 1,
	               CONFIG_MAX_SERVER_CONNECTIONS, &v) == -1;
	c->concurrent_authentications = (int)v;
	v = c->concurrent_downloads;
	bad |= get_int(p, root, "", "concurrent_downloads", 1,
	               CONFIG_MAX_DOWNLOADS, &v) == -1;
	c->concurrent_downloads = (int)v;
	v = c->boards_per_worker;
	bad |= get_int(p, root, "", "boards_per_worker", 1,
	               CONFIG_MAX_BOARDS_PER_WORKER, &v) == -1;
	c->boards_per_worker = (int)v;
	bad |= parse_log_format(p, root, c) == -1;
	bad |= parse_mgmt_top(p, c, root) == -1;
	return bad ? -1 : 0;
}

static int
parse_entries(struct parse *p, struct config *c, json_object *root)
{
	char kp[KP_MAX];
	json_object *devs, *groups, *o;
	size_t i, n;
	bool bad = false, arrays_ok = true;

	if (get_array(p, root, "", "devices", &devs) == -1)
		bad = true, arrays_ok = false;
	if (get_array(p, root, "", "groups", &groups) == -1)
		bad = true, arrays_ok = false;
	n = devs != NULL ? json_object_array_length(devs) : 0;
	c->devices = xcalloc(n > 0 ? n : 1, sizeof(*c->devices));
	for (i = 0; i < n; i++) {
		kp_index(kp, "", "devices", i);
		o = json_object_array_get_idx(devs, i);
		c->ndevices++;
		if (!json_object_is_type(o, json_type_object))
			bad = perr(p, kp,
			           "expected an object (a device), "
			           "found %s",
			           type_name(o)) == -1;
		else
			bad |= parse_device(p, c, o, kp, &c->devices[i]) == -1;
	}
	n = groups != NULL ? json_object_array_length(groups) : 0;
	c->groups = xcalloc(n > 0 ? n : 1, sizeof(*c->groups));
	for (i = 0; i < n; i++) {
		kp_index(kp, "", "groups", i);
		o = json_object_array_get_idx(groups, i);
		c->ngroups++;
		if (!json_object_is_type(o, json_type_object))
			bad = perr(p, kp,
			           "expected an object (a group), "
			           "found %s",
			           type_name(o)) == -1;
		else
			bad |= parse_group(p, c, o, kp, &c->groups[i]) == -1;
	}
	if (arrays_ok && c->ndevices == 0 && c->ngroups == 0)
		bad = perr(p, "devices",
		           "no devices and no groups: expected "
		           "at least one entry in \"devices\" or \"groups\"") ==
		      -1;
	return bad ? -1 : 0;
}

/*
 * Everything is checked even after an error, so that one run lists every
 * problem; a value that is wrong is left unset and what depends on it
 * (a key path without key_dir, a link without its address) is skipped.
 */
static int
parse_top(struct parse *p, struct config *c, json_object *root,
          const struct config_overrides *ov)
{
	char why[256], *host = NULL;
	bool bad = false, had_server, had_key_dir;
	int port;

	if (!json_object_is_type(root, json_type_object))
		return perr(p, "", "expected a JSON object, found %s",
		            type_name(root));
	warn_unknown_keys(p, root, "", top_keys);
	bad |= parse_top_scalars(p, c, root) == -1;
	/* A key that was there but wrong is not "missing" as well. */
	had_server = c->server != NULL || lookup(root, "server") != NULL;
	had_key_dir = c->key_dir != NULL || lookup(root, "key_dir") != NULL;
	c->state_dir_default = c->state_dir == NULL &&
	                       lookup(root, "state_dir") == NULL &&
	                       (ov == NULL || ov->state_dir == NULL);
	/* Flags win over the file, before anything inherits the values. */
	apply_overrides(c, ov);
	if (c->server == NULL && !had_server)
		bad = perr(p, "server",
		           "missing: expected the RDFM server "
		           "URL, e.g. \"https://rdfm.example.com\" (or give "
		           "-s/--server)") == -1;
	else if (c->server != NULL)
		bad |= check_url(p, "server", c->server) == -1;
	if (c->key_dir == NULL && !had_key_dir)
		bad = perr(p, "key_dir",
		           "missing: expected the directory of "
		           "the device keys, e.g. \"keys\" (or give "
		           "-k/--key-dir)") == -1;
	if (c->state_dir == NULL)
		c->state_dir = xstrdup(CONFIG_DEFAULT_STATE_DIR);
	/* Relative paths mean the working directory, as in the Go client. */
	make_absolute(&c->key_dir);
	make_absolute(&c->state_dir);
	make_absolute(&c->ca_file);
	make_absolute(&c->artifact_verify_key);
	if (c->metrics != NULL) {
		/* Port 0: any free port (the log names it). */
		if (config_split_address(c->metrics, 0, &host, &port, why,
		                         sizeof(why)) == -1)
			bad = perr(p, "metrics", "%s", why) == -1;
		free(host);
	}
	bad |= parse_entries(p, c, root) == -1;
	return bad ? -1 : 0;
}

/* Whole file into memory, NUL-terminated; NULL with the error in r. */
static char *
read_file(const char *path, size_t *len, struct config_report *r)
{
	struct stat st;
	char *buf;
	ssize_t n;
	size_t off = 0;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) == -1) {
		config_report_error(r, path, NULL, "cannot read: %s",
		                    strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_size > CONFIG_MAX_BYTES) {
		config_report_error(r, path, NULL, "cannot read: %s",
		                    !S_ISREG(st.st_mode) ? "not a regular file"
		                                         : "larger than 1 MiB");
		close(fd);
		return NULL;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	while (off < (size_t)st.st_size) {
		n = read(fd, buf + off, (size_t)st.st_size - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			config_report_error(r, path, NULL, "cannot read: %s",
			                    n == 0 ? "file shrank while reading"
			                           : strerror(errno));
			free(buf);
			close(fd);
			return NULL;
		}
		off += (size_t)n;
	}
	close(fd);
	buf[off] = '\0';
	*len = off;
	return buf;
}

static void
offset_to_line(const char *buf, size_t off, int *line, int *col)
{
	size_t i;

	*line = 1;
	*col = 1;
	for (i = 0; i < off && buf[i] != '\0'; i++) {
		if (buf[i] == '\n') {
			(*line)++;
			*col = 1;
		} else
			(*col)++;
	}
}

static void
json_error_at(struct config_report *r, const char *path, const char *buf,
              size_t off, const char *what)
{
	int line, col;

	offset_to_line(buf, off, &line, &col);
	issue_add(&r->errors, &r->nerrors, &r->dropped_errors,
	          CONFIG_MAX_ERRORS, path, NULL, line, col, what);
}

/*
 * json-c's default (non-strict) tokener accepts the trailing commas users
 * copy from the Go client's example config.
 */
static json_object *
parse_json(const char *path, const char *buf, size_t len,
           struct config_report *r)
{
	struct json_tokener *tok;
	json_object *root;
	enum json_tokener_error jerr;
	char what[160];
	size_t end;

	if (len > CONFIG_MAX_BYTES) {
		config_report_error(r, path, NULL, "larger than 1 MiB");
		return NULL;
	}
	tok = json_tokener_new();
	root = json_tokener_parse_ex(tok, buf, (int)len);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (jerr == json_tokener_continue) {
		config_report_error(r, path, NULL,
		                    "invalid JSON: unexpected end of file");
		return NULL;
	}
	if (jerr != json_tokener_success || root == NULL) {
		snprintf(what, sizeof(what), "invalid JSON: %s",
		         json_tokener_error_desc(jerr));
		json_error_at(r, path, buf, end, what);
		json_object_put(root);
		return NULL;
	}
	while (end < len && isspace((unsigned char)buf[end]))
		end++;
	if (end < len) {
		json_error_at(r, path, buf, end,
		              "invalid JSON: unexpected text after the "
		              "top-level object");
		json_object_put(root);
		return NULL;
	}
	return root;
}

/*
 * The first config of the search order that exists, or NULL.  The Go
 * client looked in os.UserConfigDir(): $XDG_CONFIG_HOME, else ~/.config.
 */
static char *
find_config(struct config_report *r)
{
	const char *home = getenv("HOME"), *xdg = getenv("XDG_CONFIG_HOME");
	char *cand[4];
	char *found = NULL;
	size_t i, n = 0;

	cand[n++] = xstrdup("config.json");
	if (xdg != NULL && xdg[0] == '/')
		xasprintf(&cand[n++], "%s/rdfm-mcumgr/config.json", xdg);
	if (home != NULL && *home != '\0')
		xasprintf(&cand[n++], "%s/.config/rdfm-mcumgr/config.json",
		          home);
	cand[n++] = xstrdup("/etc/rdfm-mcumgr/config.json");
	for (i = 0; i < n; i++) {
		if (found == NULL && access(cand[i], F_OK) == 0)
			found = cand[i];
		else
			free(cand[i]);
	}
	if (found == NULL)
		config_report_error(
		    r, NULL, NULL,
		    "no config file found: looked for ./config.json, "
		    "$XDG_CONFIG_HOME/rdfm-mcumgr/config.json, "
		    "$HOME/.config/rdfm-mcumgr/config.json and "
		    "/etc/rdfm-mcumgr/config.json (or give -c/--config FILE)");
	return found;
}

static void
config_defaults(struct config *c)
{
	c->update_interval_ms = CONFIG_DEFAULT_INTERVAL_MS;
	c->spool_max_bytes = CONFIG_DEFAULT_SPOOL_MAX;
	c->download_min_rate = CONFIG_DEFAULT_DOWNLOAD_MIN_RATE;
	c->download_grace_ms = CONFIG_DEFAULT_DOWNLOAD_GRACE_MS;
	c->server_connections = CONFIG_DEFAULT_SERVER_CONNECTIONS;
	c->concurrent_authentications = CONFIG_DEFAULT_AUTHENTICATIONS;
	c->concurrent_downloads = CONFIG_DEFAULT_DOWNLOADS;
	c->boards_per_worker = CONFIG_DEFAULT_BOARDS_PER_WORKER;
	c->timeouts.request_ms = 5 * 1000;
	c->timeouts.erase_ms = 60 * 1000;
	c->timeouts.reboot_ms = 60 * 1000;
	c->timeouts.confirm_ms = 5 * 60 * 1000;
	c->timeouts.stall_ms = 60 * 1000;
	c->management = true;
	c->file_max_bytes = CONFIG_DEFAULT_FILE_MAX;
}

/* Errors past the cap are counted; say so as one more line. */
static void
report_dropped(struct config_report *r, const char *file)
{
	size_t dropped = r->dropped_errors;

	if (dropped == 0)
		return;
	r->dropped_errors = 0;
	r->nerrors--;
	free(r->errors[r->nerrors].file);
	free(r->errors[r->nerrors].keypath);
	free(r->errors[r->nerrors].msg);
	config_report_error(r, file, NULL,
	                    "%zu more errors not listed (fix these first)",
	                    dropped + 1);
}

/*
 * The config with what could be read; *valid false when the report got
 * errors.  NULL only when the text is not JSON.
 */
static struct config *
load_buffer(const char *name, const char *buf, size_t len,
            const struct config_overrides *ov, struct config_report *r,
            bool *valid)
{
	struct parse p;
	struct config *c;
	json_object *root;
	size_t i, before = r->nerrors + r->dropped_errors;
	int rc;

	*valid = false;
	if ((root = parse_json(name, buf, len, r)) == NULL)
		return NULL;
	c = xcalloc(1, sizeof(*c));
	c->path = absolute_path(name);
	c->name = xstrdup(name);
	config_defaults(c);
	memset(&p, 0, sizeof(p));
	p.file = name;
	p.r = r;
	rc = parse_top(&p, c, root, ov);
	json_object_put(root);
	for (i = 0; i < p.nlinks; i++)
		free(p.links[i].canon);
	free(p.links);
	free(p.ids);
	free(p.names);
	free(p.keys);
	report_dropped(r, name);
	*valid = rc == 0 && r->nerrors + r->dropped_errors == before;
	if (c->state_dir == NULL)
		c->state_dir = xstrdup(CONFIG_DEFAULT_STATE_DIR);
	return c;
}

static struct config *
config_load_buffer_report(const char *name, const char *buf, size_t len,
                          const struct config_overrides *ov,
                          struct config_report *r)
{
	struct config *c;
	bool valid;

	c = load_buffer(name, buf, len, ov, r, &valid);
	if (!valid) {
		config_free(c);
		return NULL;
	}
	return c;
}

struct config *
config_load_partial(const char *path, const struct config_overrides *ov,
                    struct config_report *r, bool *valid)
{
	struct config *c;
	char *found = NULL, *buf;
	size_t len;

	*valid = false;
	if (path == NULL && (path = found = find_config(r)) == NULL)
		return NULL;
	if ((buf = read_file(path, &len, r)) == NULL) {
		free(found);
		return NULL;
	}
	c = load_buffer(path, buf, len, ov, r, valid);
	free(buf);
	free(found);
	return c;
}

struct config *
config_load_report(const char *path, const struct config_overrides *ov,
                   struct config_report *r)
{
	struct config *c;
	bool valid;

	c = config_load_partial(path, ov, r, &valid);
	if (!valid) {
		config_free(c);
		return NULL;
	}
	return c;
}

/* The report as the old one-message interface: errors joined by lines. */
static void
report_to_err(const struct config_report *r, char *err, size_t errcap)
{
	size_t i, off = 0;
	char *line;
	int n;

	if (errcap == 0)
		return;
	err[0] = '\0';
	for (i = 0; i < r->nerrors && off < errcap; i++) {
		line = config_issue_line(&r->errors[i]);
		n = snprintf(err + off, errcap - off, "%s%s", i > 0 ? "\n" : "",
		             line);
		free(line);
		if (n < 0)
			break;
		off += (size_t)n;
	}
}

static void
log_warnings(const struct config_report *r)
{
	size_t i;

	for (i = 0; i < r->nwarnings; i++)
		log_warnx(
		    "Unknown config key ignored", "file=%s key=%s hint=%s",
		    log_q(r->warnings[i].file != NULL ? r->warnings[i].file
		                                      : ""),
		    log_q(r->warnings[i].keypath != NULL
		              ? r->warnings[i].keypath
		              : ""),
		    log_q(r->warnings[i].msg));
}

struct config *
config_load_buffer(const char *name, const char *buf, size_t len,
                   const struct config_overrides *ov, char *err, size_t errcap)
{
	struct config_report r;
	struct config *c;

	memset(&r, 0, sizeof(r));
	c = config_load_buffer_report(name, buf, len, ov, &r);
	report_to_err(&r, err, errcap);
	log_warnings(&r);
	config_report_free(&r);
	return c;
}

struct config *
config_load(const char *path, const struct config_overrides *ov, char *err,
            size_t errcap)
{
	struct config_report r;
	struct config *c;

	memset(&r, 0, sizeof(r));
	c = config_load_report(path, ov, &r);
	report_to_err(&r, err, errcap);
	log_warnings(&r);
	config_report_free(&r);
	return c;
}

/* --- what a start would find wrong on this host -----------------------------
 */

static bool
is_loopback(const struct sockaddr *sa)
{
	const struct sockaddr_in *in4 = (const struct sockaddr_in *)sa;
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

	if (sa->sa_family == AF_INET)
		return (ntohl(in4->sin_addr.s_addr) >> 24) == 127;
	if (sa->sa_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) ||
		       (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) &&
		        in6->sin6_addr.s6_addr[12] == 127);
	return false;
}

int
config_listen_address(const char *listen, char *addr, size_t acap, char *port,
                      size_t pcap, char *why, size_t cap)
{
	struct addrinfo hints, *res, *ai;
	char *host;
	int pn, r;

	if (config_split_address(listen, 0, &host, &pn, why, cap) == -1)
		return -1;
	snprintf(port, pcap, "%d", pn);
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if ((r = getaddrinfo(host, port, &hints, &res)) != 0) {
		snprintf(why, cap, "\"%s\": %s", listen, gai_strerror(r));
		free(host);
		return -1;
	}
	/* A name like "metrics.example" could expose the pages. */
	for (ai = res; ai != NULL; ai = ai->ai_next)
		if (!is_loopback(ai->ai_addr)) {
			snprintf(why, cap,
			         "\"%s\": %s is not a loopback address; "
			         "the status pages have no authentication, so "
			         "they are served on loopback only (expected "
			         "e.g. 127.0.0.1:9464)",
			         listen, host);
			freeaddrinfo(res);
			free(host);
			return -1;
		}
	free(host);
	r = getnameinfo(res->ai_addr, res->ai_addrlen, addr, (socklen_t)acap,
	                NULL, 0, NI_NUMERICHOST);
	freeaddrinfo(res);
	if (r != 0) {
		snprintf(why, cap, "\"%s\": %s", listen, gai_strerror(r));
		return -1;
	}
	return 0;
}

/*
 * The workers switch to `user` only when the client starts as root; then
 * a missing account kills every worker, so it is an error there.
 */
static void
check_user(const struct config *c, struct config_report *r)
{
	if (c->user == NULL || getpwnam(c->user) != NULL)
		return;
	if (geteuid() == 0)
		config_report_error(
		    r, c->name, "user",
		    "no user \"%s\" on this system (expected an existing "
		    "account for the workers; `systemd-sysusers` creates "
		    "rdfm-mcumgr from the installed sysusers.d entry)",
		    c->user);
	else
		config_report_warning(
		    r, c->name, "user",
		    "no user \"%s\" on this system; not used when not "
		    "started as root, but the service needs it",
		    c->user);
}

/* A readable regular file holding at least one PEM certificate. */
static void
check_ca_file(const struct config *c, struct config_report *r)
{
	struct stat st;
	X509 *x;
	BIO *bio;

	if (c->ca_file == NULL)
		return;
	if (stat(c->ca_file, &st) == -1) {
		config_report_error(r, c->name, "ca_file",
		                    "cannot read \"%s\": %s", c->ca_file,
		                    strerror(errno));
		return;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > CA_FILE_MAX) {
		config_report_error(r, c->name, "ca_file",
		                    "\"%s\" is %s (expected a PEM file of CA "
		                    "certificates)",
		                    c->ca_file,
		                    S_ISREG(st.st_mode)
		                        ? "larger than 8 MiB"
		                        : file_kind(st.st_mode));
		return;
	}
	if ((bio = BIO_new_file(c->ca_file, "r")) == NULL) {
		config_report_error(r, c->name, "ca_file",
		                    "cannot read \"%s\": %s", c->ca_file,
		                    strerror(errno));
		ERR_clear_error();
		return;
	}
	x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	ERR_clear_error();
	if (x == NULL) {
		config_report_error(r, c->name, "ca_file",
		                    "\"%s\" holds no PEM certificate (expected "
		                    "\"-----BEGIN CERTIFICATE-----\" blocks)",
		                    c->ca_file);
		return;
	}
	X509_free(x);
}

/* The closest existing ancestor of a path that does not exist. */
static char *
existing_ancestor(const char *path)
{
	char *s = xstrdup(path), *slash;
	struct stat st;

	while ((slash = strrchr(s, '/')) != NULL) {
		if (slash == s) {
			s[1] = '\0';
			break;
		}
		*slash = '\0';
		if (stat(s, &st) == 0)
			break;
	}
	return s;
}

/*
 * A directory the client writes in: usable when it exists, or when it can
 * be created under its closest existing ancestor.
 */
static void
check_dir(const struct config *c, struct config_report *r, const char *kp,
          const char *dir, const char *what)
{
	struct stat st;
	char *anc;

	if (stat(dir, &st) == 0) {
		if (!S_ISDIR(st.st_mode))
			config_report_error(
			    r, c->name, kp,
			    "\"%s\" is %s (expected a directory "
			    "for %s)",
			    dir, file_kind(st.st_mode), what);
		else if (access(dir, R_OK | W_OK | X_OK) == -1)
			config_report_error(r, c->name, kp,
			                    "cannot use \"%s\": %s (expected a "
			                    "directory this user can write)",
			                    dir, strerror(errno));
		return;
	}
	if (errno != ENOENT && errno != ENOTDIR) {
		config_report_error(r, c->name, kp, "cannot use \"%s\": %s",
		                    dir, strerror(errno));
		return;
	}
	anc = existing_ancestor(dir);
	if (stat(anc, &st) == -1 || !S_ISDIR(st.st_mode))
		config_report_error(r, c->name, kp,
		                    "cannot create \"%s\": \"%s\" is not a "
		                    "directory",
		                    dir, anc);
	else if (access(anc, W_OK | X_OK) == -1)
		config_report_error(r, c->name, kp,
		                    "cannot create \"%s\": \"%s\": %s", dir,
		                    anc, strerror(errno));
	free(anc);
}

/* The state directory, and the subdirectories the daemon makes in it. */
static void
check_state_dir(const struct config *c, struct config_report *r)
{
	static const char *const subs[] = {"journal", "spool", "empty"};
	struct stat st;
	char *sub;
	size_t i;

	check_dir(c, r, "state_dir", c->state_dir,
	          "the journal and the download spool");
	for (i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		xasprintf(&sub, "%s/%s", c->state_dir, subs[i]);
		if (stat(sub, &st) == 0 && !S_ISDIR(st.st_mode))
			config_report_error(r, c->name, "state_dir",
			                    "\"%s\" is %s (expected the "
			                    "directory the client keeps there)",
			                    sub, file_kind(st.st_mode));
		free(sub);
	}
}

static void
check_serial(const struct config *c, struct config_report *r, const char *kp,
             const struct transport_cfg *t)
{
	char sub[KP_MAX], why[PATH_MAX + 256];
	bool absent;

	if (t->type != TRANSPORT_SERIAL || t->device == NULL)
		return;
	kp_key(sub, kp, "transport.device");
	if (config_check_serial_device(t->device, &absent, why, sizeof(why)) ==
	    -1)
		config_report_error(r, c->name, sub, "%s", why);
	else if (absent)
		config_report_warning(r, c->name, sub, "%s", why);
}

/* A metrics address the parse already refused. */
static bool
metrics_malformed(const char *listen)
{
	char why[256], *host;
	int port;

	if (config_split_address(listen, 0, &host, &port, why, sizeof(why)) ==
	    -1)
		return true;
	free(host);
	return false;
}

size_t
config_check_host(const struct config *c, struct config_report *r)
{
	char kp[KP_MAX], mkp[KP_MAX], addr[INET6_ADDRSTRLEN + 8], port[16],
	    why[512];
	size_t before = r->nerrors + r->dropped_errors, i, j;

	check_user(c, r);
	check_ca_file(c, r);
	check_state_dir(c, r);
	if (c->key_dir != NULL)
		check_dir(c, r, "key_dir", c->key_dir, "the device keys");
	if (c->metrics != NULL && !metrics_malformed(c->metrics) &&
	    config_listen_address(c->metrics, addr, sizeof(addr), port,
	                          sizeof(port), why, sizeof(why)) == -1)
		config_report_error(r, c->name, "metrics", "%s", why);
	for (i = 0; i < c->ndevices; i++) {
		kp_index(kp, "", "devices", i);
		check_serial(c, r, kp, &c->devices[i].transport);
	}
	for (i = 0; i < c->ngroups; i++)
		for (j = 0; j < c->groups[i].nmembers; j++) {
			kp_index(kp, "", "groups", i);
			kp_index(mkp, kp, "members", j);
			check_serial(c, r, mkp,
			             &c->groups[i].members[j].transport);
		}
	return r->nerrors + r->dropped_errors - before;
}

static void
transport_free(struct transport_cfg *t)
{
	free(t->device);
	free(t->address);
	free(t->host);
	free(t->peer_name);
	free(t->att_socket);
}

void
config_free(struct config *c)
{
	size_t i, j;

	if (c == NULL)
		return;
	for (i = 0; i < c->ndevices; i++) {
		free(c->devices[i].name);
		free(c->devices[i].id);
		free(c->devices[i].dev_type);
		free(c->devices[i].key);
		free(c->devices[i].key_path);
		transport_free(&c->devices[i].transport);
		free_board_mgmt(&c->devices[i].mgmt_board);
		free_mgmt(&c->devices[i].mgmt);
	}
	for (i = 0; i < c->ngroups; i++) {
		for (j = 0; j < c->groups[i].nmembers; j++) {
			free(c->groups[i].members[j].name);
			free(c->groups[i].members[j].device);
			transport_free(&c->groups[i].members[j].transport);
			free_board_mgmt(&c->groups[i].members[j].mgmt_board);
		}
		free_mgmt(&c->groups[i].mgmt);
		free(c->groups[i].members);
		free(c->groups[i].name);
		free(c->groups[i].id);
		free(c->groups[i].type);
		free(c->groups[i].key);
		free(c->groups[i].key_path);
	}
	free(c->devices);
	free(c->groups);
	free(c->path);
	free(c->name);
	free(c->server);
	free(c->key_dir);
	free(c->state_dir);
	free(c->user);
	free(c->ca_file);
	free(c->artifact_verify_key);
	free(c->metrics);
	for (i = 0; i < c->nupload_hosts; i++)
		free(c->upload_hosts[i]);
	free(c->upload_hosts);
	free(c);
}

const char *
transport_type_name(enum transport_type t)
{
	switch (t) {
	case TRANSPORT_SERIAL:
		return "serial";
	case TRANSPORT_UDP:
		return "udp";
	case TRANSPORT_BLE:
		return "ble";
	}
	return "?";
}

/* Two optional strings name the same thing (NULL only equals NULL). */
static bool
str_same(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static bool
timeouts_equal(const struct timeouts_cfg *a, const struct timeouts_cfg *b)
{
	return a->request_ms == b->request_ms && a->erase_ms == b->erase_ms &&
	       a->reboot_ms == b->reboot_ms && a->confirm_ms == b->confirm_ms &&
	       a->stall_ms == b->stall_ms;
}

/*
 * Whether two entries describe the same thing, every value compared
 * (a reload keeps the state machine of an entry that did not change).
 */
static bool
transport_cfg_equal(const struct transport_cfg *a,
                    const struct transport_cfg *b)
{
	if (a->type != b->type)
		return false;
	switch (a->type) {
	case TRANSPORT_SERIAL:
		return str_same(a->device, b->device) && a->baud == b->baud &&
		       a->mtu == b->mtu;
	case TRANSPORT_UDP:
		return str_same(a->address, b->address);
	case TRANSPORT_BLE:
		return a->device_index == b->device_index &&
		       str_same(a->peer_name, b->peer_name) &&
		       str_same(a->att_socket, b->att_socket);
	}
	return false;
}

bool
device_cfg_equal(const struct device_cfg *a, const struct device_cfg *b)
{
	return str_same(a->name, b->name) && str_same(a->id, b->id) &&
	       str_same(a->dev_type, b->dev_type) &&
	       str_same(a->key_path, b->key_path) &&
	       a->self_confirm == b->self_confirm &&
	       a->update_interval_ms == b->update_interval_ms &&
	       transport_cfg_equal(&a->transport, &b->transport) &&
	       timeouts_equal(&a->timeouts, &b->timeouts) &&
	       board_mgmt_equal(&a->mgmt_board, &b->mgmt_board) &&
	       mgmt_equal(&a->mgmt, &b->mgmt);
}

bool
group_cfg_equal(const struct group_cfg *a, const struct group_cfg *b)
{
	size_t i;

	if (!str_same(a->name, b->name) || !str_same(a->id, b->id) ||
	    !str_same(a->type, b->type) ||
	    !str_same(a->key_path, b->key_path) ||
	    a->update_interval_ms != b->update_interval_ms ||
	    !timeouts_equal(&a->timeouts, &b->timeouts) ||
	    a->nmembers != b->nmembers || !mgmt_equal(&a->mgmt, &b->mgmt))
		return false;
	for (i = 0; i < a->nmembers; i++) {
		const struct member_cfg *x = &a->members[i],
		                        *y = &b->members[i];

		if (!str_same(x->name, y->name) ||
		    !str_same(x->device, y->device) ||
		    x->self_confirm != y->self_confirm ||
		    !transport_cfg_equal(&x->transport, &y->transport) ||
		    !board_mgmt_equal(&x->mgmt_board, &y->mgmt_board))
			return false;
	}
	return true;
}

void
config_keep_restart_only(struct config *run, struct config *next)
{
	struct {
		const char *name;
		char **run, **next;
	} keys[] = {
	    {"state_dir", &run->state_dir, &next->state_dir},
	    {"user", &run->user, &next->user},
	    {"ca_file", &run->ca_file, &next->ca_file},
	    {"artifact_verify_key", &run->artifact_verify_key,
	     &next->artifact_verify_key},
	    {"metrics", &run->metrics, &next->metrics},
	};
	size_t i;
	char *t;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (str_same(*keys[i].run, *keys[i].next))
			continue;
		log_warnx("This change takes effect at the next start",
		          "key=%s", keys[i].name);
		/* Swapped, so each config still frees its own strings. */
		t = *keys[i].next;
		*keys[i].next = *keys[i].run;
		*keys[i].run = t;
	}
	if (run->spool_max_bytes != next->spool_max_bytes) {
		log_warnx("This change takes effect at the next start",
		          "key=spool_max_bytes");
		next->spool_max_bytes = run->spool_max_bytes;
	}
	if (run->download_min_rate != next->download_min_rate) {
		log_warnx("This change takes effect at the next start",
		          "key=download_min_rate");
		next->download_min_rate = run->download_min_rate;
	}
	if (run->boards_per_worker != next->boards_per_worker) {
		log_warnx("This change takes effect at the next start",
		          "key=boards_per_worker");
		next->boards_per_worker = run->boards_per_worker;
	}
	if (run->download_grace_ms != next->download_grace_ms) {
		log_warnx("This change takes effect at the next start",
		          "key=download_grace");
		next->download_grace_ms = run->download_grace_ms;
	}
}

/* `smp --address`: the file's host:port check, the host not needed. */
int
config_check_address(const char *address, char *why, size_t whycap)
{
	char *host;
	int port;

	if (config_split_address(address, 1, &host, &port, why, whycap) == -1)
		return -1;
	free(host);
	return 0;
}

/*
 * The management channel's keys (issue 15), kept together here:
 *   top level   management, upload_hosts, file_max_bytes
 *   devices[]   actions, shell, file_paths, file_max_bytes
 *   groups[]    actions (each naming its member), file_max_bytes
 *   members[]   shell, file_paths
 */

#define ACTION_ID_MAX      64
#define ACTION_TIMEOUT_MAX (10 * 60 * 1000LL)
#define FILE_MAX_LIMIT     (1024LL * 1024 * 1024)

static const char *const action_keys[] = {
    "id", "name", "description", "command", "timeout", "member", NULL};

/* A string array; *out NULL-terminated, each string checked by ok(). */
static int
get_str_array(struct parse *p, json_object *o, const char *kp, const char *key,
              const char *what, bool (*ok)(const char *, char *, size_t),
              char ***out, size_t *n)
{
	char sub[KP_MAX], ekp[KP_MAX], why[160];
	json_object *arr, *v;
	size_t i, len;

	if (get_array(p, o, kp, key, &arr) == -1)
		return -1;
	if (arr == NULL)
		return 0;
	kp_key(sub, kp, key);
	len = json_object_array_length(arr);
	*out = xcalloc(len + 1, sizeof(**out));
	for (i = 0; i < len; i++) {
		kp_index(ekp, kp, key, i);
		v = json_object_array_get_idx(arr, i);
		if (!json_object_is_type(v, json_type_string) ||
		    json_object_get_string_len(v) == 0 ||
		    strlen(json_object_get_string(v)) !=
		        (size_t)json_object_get_string_len(v))
			return perr(p, ekp, "expected a non-empty string (%s)",
			            what);
		(*out)[i] = xstrdup(json_object_get_string(v));
		(*n)++;
		if (ok != NULL && !ok((*out)[i], why, sizeof(why)))
			return perr(p, ekp, "\"%s\": %s (expected %s)",
			            (*out)[i], why, what);
	}
	return 0;
}

/* A prefix follows the rule requested paths follow (mgmt_msg.c). */
static bool
fs_prefix_ok(const char *path, char *why, size_t whycap)
{
	return mgmt_path_valid(path, why, whycap);
}

static bool
upload_host_ok(const char *h, char *why, size_t whycap)
{
	struct in6_addr a6;
	char buf[64];
	size_t n = strlen(h);

	if (n >= 2 && h[0] == '[' && h[n - 1] == ']' && n - 2 < sizeof(buf)) {
		memcpy(buf, h + 1, n - 2);
		buf[n - 2] = '\0';
		if (inet_pton(AF_INET6, buf, &a6) == 1)
			return true;
	}
	if (valid_hostname(h))
		return true;
	snprintf(why, whycap, "not a host name or address");
	return false;
}

static int
parse_board_mgmt(struct parse *p, json_object *o, const char *kp,
                 struct board_mgmt_cfg *b)
{
	if (get_bool(p, o, kp, "shell", &b->shell) == -1 ||
	    get_str_array(p, o, kp, "file_paths",
	                  "an absolute path such as \"/lfs/logs\"",
	                  fs_prefix_ok, &b->file_paths, &b->nfile_paths) == -1)
		return -1;
	return 0;
}

static bool
printable_ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return false;
	return true;
}

static bool
action_id_ok(const char *id)
{
	size_t i, n = strlen(id);

	if (n > ACTION_ID_MAX)
		return false;
	for (i = 0; i < n; i++)
		if ((unsigned char)id[i] <= 0x20 || (unsigned char)id[i] > 0x7e)
			return false;
	return true;
}

static int
parse_action(struct parse *p, json_object *o, const char *kp,
             struct action_cfg *a, const struct group_cfg *g)
{
	char sub[KP_MAX];
	size_t i;

	if (!json_object_is_type(o, json_type_object))
		return perr(p, kp, "expected an object (an action), found %s",
		            type_name(o));
	warn_unknown_keys(p, o, kp, action_keys);
	a->timeout_ms = CONFIG_DEFAULT_ACTION_TIMEOUT;
	if (get_str(p, o, kp, "id", "the action's id, shown to the server",
	            &a->id) == -1 ||
	    get_str(p, o, kp, "name", NULL, &a->name) == -1 ||
	    get_str(p, o, kp, "description", NULL, &a->description) == -1 ||
	    get_duration(p, o, kp, "timeout", &a->timeout_ms) == -1 ||
	    get_str(p, o, kp, "member", NULL, &a->member) == -1)
		return -1;
	kp_key(sub, kp, "id");
	if (!action_id_ok(a->id))
		return perr(p, sub,
		            "\"%s\": expected up to %d printable characters "
		            "without spaces",
		            a->id, ACTION_ID_MAX);
	if (strncmp(a->id, "rdfm.", 5) == 0)
		return perr(p, sub,
		            "\"%s\": ids starting with \"rdfm.\" are the "
		            "built-in actions'",
		            a->id);
	kp_key(sub, kp, "timeout");
	if (a->timeout_ms > ACTION_TIMEOUT_MAX)
		return perr(p, sub, "longer than 10m");
	if (get_str_array(p, o, kp, "command",
	                  "the words of a shell command on the board", NULL,
	                  &a->command, &a->ncommand) == -1)
		return -1;
	kp_key(sub, kp, "command");
	if (a->ncommand == 0 || a->ncommand > 32)
		return perr(p, sub,
		            "%s: expected an array of 1 to 32 words, e.g. "
		            "[\"kernel\", \"uptime\"]",
		            a->command == NULL ? "missing" : "wrong length");
	for (i = 0; i < a->ncommand; i++)
		if (strlen(a->command[i]) > 255 ||
		    !printable_ascii(a->command[i]))
			return perr(p, sub,
			            "word %zu: expected up to 255 printable "
			            "characters",
			            i);
	kp_key(sub, kp, "member");
	if (g == NULL && a->member != NULL)
		return perr(p, sub, "only a group's actions name a member");
	if (g != NULL) {
		if (a->member == NULL)
			return perr(p, sub,
			            "missing: expected the name of the group "
			            "member the command runs on");
		for (i = 0; i < g->nmembers; i++)
			if (strcmp(g->members[i].name, a->member) == 0)
				break;
		if (i == g->nmembers)
			return perr(p, sub,
			            "\"%s\" is not a member of this "
			            "group",
			            a->member);
	}
	if (a->name == NULL)
		a->name = xstrdup(a->id);
	if (a->description == NULL)
		a->description = xstrdup("");
	return 0;
}

static int
parse_actions(struct parse *p, json_object *o, const char *kp,
              struct mgmt_cfg *m, const struct group_cfg *g)
{
	char akp[KP_MAX], sub[KP_MAX];
	json_object *arr;
	size_t i, j, n;

	if (get_array(p, o, kp, "actions", &arr) == -1)
		return -1;
	if (arr == NULL)
		return 0;
	n = json_object_array_length(arr);
	m->actions = xcalloc(n > 0 ? n : 1, sizeof(*m->actions));
	for (i = 0; i < n; i++) {
		kp_index(akp, kp, "actions", i);
		m->nactions++;
		if (parse_action(p, json_object_array_get_idx(arr, i), akp,
		                 &m->actions[i], g) == -1)
			return -1;
		kp_key(sub, akp, "id");
		for (j = 0; j < i; j++)
			if (strcmp(m->actions[j].id, m->actions[i].id) == 0)
				return perr(p, sub,
				            "\"%s\" is already the id of "
				            "actions[%zu] (expected each to be "
				            "unique)",
				            m->actions[i].id, j);
	}
	return 0;
}

static int
parse_mgmt_top(struct parse *p, struct config *c, json_object *root)
{
	size_t i, j;

	if (get_bool(p, root, "", "management", &c->management) == -1 ||
	    get_int(p, root, "", "file_max_bytes", 1, FILE_MAX_LIMIT,
	            &c->file_max_bytes) == -1 ||
	    get_str_array(p, root, "", "upload_hosts",
	                  "a host name or address, e.g. \"s3.example.com\"",
	                  upload_host_ok, &c->upload_hosts,
	                  &c->nupload_hosts) == -1)
		return -1;
	/* Hosts compare without regard to case; brackets are the URL's. */
	for (i = 0; i < c->nupload_hosts; i++) {
		char *h = c->upload_hosts[i];
		size_t n = strlen(h);

		if (h[0] == '[') {
			memmove(h, h + 1, n - 2);
			h[n - 2] = '\0';
		}
		for (j = 0; h[j] != '\0'; j++)
			h[j] = (char)tolower((unsigned char)h[j]);
	}
	return 0;
}

static int
parse_mgmt_device(struct parse *p, const struct config *c, json_object *o,
                  const char *kp, struct device_cfg *d)
{
	d->mgmt.file_max_bytes = c->file_max_bytes;
	if (parse_board_mgmt(p, o, kp, &d->mgmt_board) == -1 ||
	    get_int(p, o, kp, "file_max_bytes", 1, FILE_MAX_LIMIT,
	            &d->mgmt.file_max_bytes) == -1 ||
	    parse_actions(p, o, kp, &d->mgmt, NULL) == -1)
		return -1;
	return 0;
}

static int
parse_mgmt_group(struct parse *p, const struct config *c, json_object *o,
                 const char *kp, struct group_cfg *g)
{
	g->mgmt.file_max_bytes = c->file_max_bytes;
	if (get_int(p, o, kp, "file_max_bytes", 1, FILE_MAX_LIMIT,
	            &g->mgmt.file_max_bytes) == -1 ||
	    parse_actions(p, o, kp, &g->mgmt, g) == -1)
		return -1;
	return 0;
}

static void
free_strv(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void
free_board_mgmt(struct board_mgmt_cfg *b)
{
	free_strv(b->file_paths, b->nfile_paths);
}

static void
free_mgmt(struct mgmt_cfg *m)
{
	size_t i;

	for (i = 0; i < m->nactions; i++) {
		free(m->actions[i].id);
		free(m->actions[i].name);
		free(m->actions[i].description);
		free(m->actions[i].member);
		free_strv(m->actions[i].command, m->actions[i].ncommand);
	}
	free(m->actions);
}

static bool
strv_equal(char *const *a, size_t na, char *const *b, size_t nb)
{
	size_t i;

	if (na != nb)
		return false;
	for (i = 0; i < na; i++)
		if (strcmp(a[i], b[i]) != 0)
			return false;
	return true;
}

static bool
board_mgmt_equal(const struct board_mgmt_cfg *a, const struct board_mgmt_cfg *b)
{
	return a->shell == b->shell &&
	       strv_equal(a->file_paths, a->nfile_paths, b->file_paths,
	                  b->nfile_paths);
}

static bool
mgmt_equal(const struct mgmt_cfg *a, const struct mgmt_cfg *b)
{
	size_t i;

	if (a->nactions != b->nactions ||
	    a->file_max_bytes != b->file_max_bytes)
		return false;
	for (i = 0; i < a->nactions; i++) {
		const struct action_cfg *x = &a->actions[i],
		                        *y = &b->actions[i];

		if (strcmp(x->id, y->id) != 0 ||
		    strcmp(x->name, y->name) != 0 ||
		    strcmp(x->description, y->description) != 0 ||
		    !str_same(x->member, y->member) ||
		    x->timeout_ms != y->timeout_ms ||
		    !strv_equal(x->command, x->ncommand, y->command,
		                y->ncommand))
			return false;
	}
	return true;
}
