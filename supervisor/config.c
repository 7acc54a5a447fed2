/*
 * Loads config.json (json-c) into struct config and validates all of it
 * before anything touches a board: every error names the file, the key path
 * (devices[1].transport.baud) and what was expected.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "config.h"
#include "duration.h"
#include "log.h"
#include "mgmt_msg.h"
#include "xmalloc.h"

#define CONFIG_MAX_BYTES (1024 * 1024)
#define KP_MAX           128 /* longest key path we print */
#define MTU_MIN          32
#define MTU_MAX          65535
#define DEVICE_INDEX_MAX 255

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
	char *err;
	size_t errcap;
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
                                       "timeouts",
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

/* The rates termios can set (Linux B* constants). */
static const int std_bauds[] = {
    50,      75,      110,     134,     150,     200,    300,     600,
    1200,    1800,    2400,    4800,    9600,    19200,  38400,   57600,
    115200,  230400,  460800,  500000,  576000,  921600, 1000000, 1152000,
    1500000, 2000000, 2500000, 3000000, 3500000, 4000000};

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

/* Record the first error only: later ones are usually its consequences. */
static int
perr(struct parse *p, const char *kp, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (p->err != NULL && p->errcap > 0 && p->err[0] == '\0')
		snprintf(p->err, p->errcap, "%s: %s: %s", p->file,
		         kp[0] != '\0' ? kp : "(top level)", msg);
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

static void
warn_unknown_keys(struct parse *p, json_object *o, const char *kp,
                  const char *const *allowed)
{
	char sub[KP_MAX];
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
		log_warnx("Unknown config key ignored", "file=%s key=%s",
		          log_q(p->file), log_q(sub));
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
is_std_baud(int64_t baud)
{
	size_t i;

	for (i = 0; i < sizeof(std_bauds) / sizeof(std_bauds[0]); i++)
		if (std_bauds[i] == baud)
			return true;
	return false;
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

/*
 * "1.2.3.4:1337", "[::1]:1337" or "host:port".  0, or -1 with what was
 * wrong in why.
 */
static int
split_address(const char *s, int min_port, char **host, int *port, char *why,
              size_t cap)
{
	struct in6_addr a6;
	const char *colon, *ps, *end;
	char *h, *ep;
	long n;

	if (s[0] == '[') {
		if ((end = strchr(s, ']')) == NULL) {
			snprintf(why, cap, "\"%s\": missing ']'", s);
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
	errno = 0;
	n = strtol(ps, &ep, 10);
	if (*ps == '\0') {
		snprintf(why, cap, "\"%s\" has no port after ':'", s);
		free(h);
		return -1;
	}
	if (!isdigit((unsigned char)*ps) || *ep != '\0' || errno != 0 ||
	    n < min_port || n > 65535) {
		snprintf(why, cap,
		         "\"%s\": port \"%s\" is not a number from "
		         "%d to 65535",
		         s, ps, min_port);
		free(h);
		return -1;
	}
	*host = h;
	*port = (int)n;
	return 0;
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
parse_transport(struct parse *p, json_object *parent, const char *pkp,
                struct transport_cfg *t)
{
	char kp[KP_MAX], sub[KP_MAX], why[256];
	json_object *o;
	char *type = NULL;
	int64_t n;

	kp_key(kp, pkp, "transport");
	if (get_obj(p, parent, pkp, "transport",
	            "with \"type\": serial, udp or ble", &o) == -1)
		return -1;
	if (get_str(p, o, kp, "type", "serial, udp or ble", &type) == -1)
		return -1;
	kp_key(sub, kp, "type");
	if (strcmp(type, "serial") == 0) {
		t->type = TRANSPORT_SERIAL;
		warn_unknown_keys(p, o, kp, serial_keys);
		if (get_str(p, o, kp, "device",
		            "the serial device path, e.g. "
		            "/dev/ttyACM0",
		            &t->device) == -1)
			goto fail;
		n = 115200;
		if (get_int(p, o, kp, "baud", 1, INT_MAX, &n) == -1)
			goto fail;
		if (!is_std_baud(n)) {
			kp_key(sub, kp, "baud");
			perr(p, sub,
			     "%" PRId64 " is not a standard serial rate "
			     "(expected e.g. 9600, 57600, 115200, 230400, "
			     "460800, 921600, 1000000)",
			     n);
			goto fail;
		}
		t->baud = (int)n;
		n = 0;
		if (get_int(p, o, kp, "mtu", MTU_MIN, MTU_MAX, &n) == -1)
			goto fail;
		t->mtu = (int)n;
	} else if (strcmp(type, "udp") == 0) {
		t->type = TRANSPORT_UDP;
		warn_unknown_keys(p, o, kp, udp_keys);
		if (get_str(p, o, kp, "address", "IPv4:port or [IPv6]:port",
		            &t->address) == -1)
			goto fail;
		if (split_address(t->address, 1, &t->host, &t->port, why,
		                  sizeof(why)) == -1) {
			kp_key(sub, kp, "address");
			perr(p, sub, "%s", why);
			goto fail;
		}
	} else if (strcmp(type, "ble") == 0) {
		t->type = TRANSPORT_BLE;
		warn_unknown_keys(p, o, kp, ble_keys);
		n = 0;
		if (get_int(p, o, kp, "device_index", 0, DEVICE_INDEX_MAX,
		            &n) == -1)
			goto fail;
		t->device_index = (int)n;
		if (get_str(p, o, kp, "peer_name",
		            "the name the board "
		            "advertises",
		            &t->peer_name) == -1 ||
		    get_str(p, o, kp, "att_socket", NULL, &t->att_socket) == -1)
			goto fail;
		if (t->att_socket != NULL &&
		    (t->att_socket[0] != '@' || strlen(t->att_socket) < 2 ||
		     strlen(t->att_socket) > 107)) {
			kp_key(sub, kp, "att_socket");
			perr(p, sub,
			     "expected \"@name\" (an abstract socket "
			     "of the virtual board, up to 106 characters)");
			goto fail;
		}
	} else {
		perr(p, sub,
		     "unknown transport type \"%s\" (expected serial, "
		     "udp or ble)",
		     type);
		goto fail;
	}
	free(type);
	return claim_link(p, t, kp);
fail:
	free(type);
	return -1;
}

static int
parse_timeouts(struct parse *p, json_object *parent, const char *pkp,
               struct timeouts_cfg *t)
{
	char kp[KP_MAX];
	json_object *o;

	kp_key(kp, pkp, "timeouts");
	if (get_obj(p, parent, pkp, "timeouts", NULL, &o) == -1)
		return -1;
	if (o == NULL)
		return 0;
	warn_unknown_keys(p, o, kp, timeout_keys);
	if (get_duration(p, o, kp, "request", &t->request_ms) == -1 ||
	    get_duration(p, o, kp, "erase", &t->erase_ms) == -1 ||
	    get_duration(p, o, kp, "reboot", &t->reboot_ms) == -1 ||
	    get_duration(p, o, kp, "confirm", &t->confirm_ms) == -1 ||
	    get_duration(p, o, kp, "stall", &t->stall_ms) == -1)
		return -1;
	return 0;
}

static char *
key_path(const struct config *c, const char *key)
{
	char *s;

	xasprintf(&s, "%s/%s", c->key_dir, key);
	return s;
}

static int
parse_device(struct parse *p, struct config *c, json_object *o, const char *kp,
             struct device_cfg *d)
{
	char sub[KP_MAX];

	d->update_interval_ms = c->update_interval_ms;
	d->timeouts = c->timeouts;
	warn_unknown_keys(p, o, kp, device_keys);
	if (get_str(p, o, kp, "name", "a display name for logs", &d->name) ==
	        -1 ||
	    get_str(p, o, kp, "id", "the unique id sent to the server",
	            &d->id) == -1)
		return -1;
	/* The Go docs say device_type, its example says dev_type. */
	if (lookup(o, "dev_type") != NULL || lookup(o, "device_type") == NULL) {
		if (get_str(p, o, kp, "dev_type",
		            "the device type reported "
		            "to the server; device_type is accepted too",
		            &d->dev_type) == -1)
			return -1;
	} else if (get_str(p, o, kp, "device_type", "the device type",
	                   &d->dev_type) == -1)
		return -1;
	if (get_str(p, o, kp, "key", "the key file name inside key_dir",
	            &d->key) == -1 ||
	    get_bool(p, o, kp, "self_confirm", &d->self_confirm) == -1 ||
	    get_duration(p, o, kp, "update_interval", &d->update_interval_ms) ==
	        -1 ||
	    parse_timeouts(p, o, kp, &d->timeouts) == -1 ||
	    parse_transport(p, o, kp, &d->transport) == -1 ||
	    parse_mgmt_device(p, c, o, kp, d) == -1)
		return -1;
	d->key_path = key_path(c, d->key);
	kp_key(sub, kp, "id");
	if (claim_unique(p, &p->ids, &p->nids, d->id, sub, "id") == -1)
		return -1;
	kp_key(sub, kp, "name");
	if (claim_unique(p, &p->names, &p->nnames, d->name, sub, "name") == -1)
		return -1;
	kp_key(sub, kp, "key");
	return claim_unique(p, &p->keys, &p->nkeys, d->key_path, sub,
	                    "key file");
}

static int
parse_member(struct parse *p, json_object *o, const char *kp,
             struct member_cfg *m)
{
	warn_unknown_keys(p, o, kp, member_keys);
	if (get_str(p, o, kp, "name", "a display name for logs", &m->name) ==
	        -1 ||
	    get_str(p, o, kp, "device",
	            "the image name this member takes "
	            "from a group artifact",
	            &m->device) == -1 ||
	    get_bool(p, o, kp, "self_confirm", &m->self_confirm) == -1 ||
	    parse_transport(p, o, kp, &m->transport) == -1 ||
	    parse_board_mgmt(p, o, kp, &m->mgmt_board) == -1)
		return -1;
	return 0;
}

static int
parse_group(struct parse *p, struct config *c, json_object *o, const char *kp,
            struct group_cfg *g)
{
	char sub[KP_MAX], mkp[KP_MAX];
	struct seen_name *mnames = NULL, *mdevs = NULL;
	size_t nmnames = 0, nmdevs = 0, i, n;
	json_object *arr, *mo;
	int rc = -1;

	g->update_interval_ms = c->update_interval_ms;
	g->timeouts = c->timeouts;
	warn_unknown_keys(p, o, kp, group_keys);
	if (get_str(p, o, kp, "name", "a display name for logs", &g->name) ==
	        -1 ||
	    get_str(p, o, kp, "id", "the unique id sent to the server",
	            &g->id) == -1 ||
	    get_str(p, o, kp, "type", "the group type reported to the server",
	            &g->type) == -1 ||
	    get_str(p, o, kp, "key", "the key file name inside key_dir",
	            &g->key) == -1 ||
	    get_duration(p, o, kp, "update_interval", &g->update_interval_ms) ==
	        -1 ||
	    parse_timeouts(p, o, kp, &g->timeouts) == -1 ||
	    get_array(p, o, kp, "members", &arr) == -1)
		return -1;
	g->key_path = key_path(c, g->key);
	kp_key(sub, kp, "members");
	if (arr == NULL || (n = json_object_array_length(arr)) == 0)
		return perr(p, sub,
		            "%s: expected an array of at least one "
		            "member",
		            arr == NULL ? "missing" : "empty");
	g->members = xcalloc(n, sizeof(*g->members));
	for (i = 0; i < n; i++) {
		kp_index(mkp, kp, "members", i);
		mo = json_object_array_get_idx(arr, i);
		if (!json_object_is_type(mo, json_type_object)) {
			perr(p, mkp,
			     "expected an object (a group member), "
			     "found %s",
			     type_name(mo));
			goto out;
		}
		g->nmembers++;
		if (parse_member(p, mo, mkp, &g->members[i]) == -1)
			goto out;
		kp_key(sub, mkp, "device");
		if (claim_unique(p, &mdevs, &nmdevs, g->members[i].device, sub,
		                 "image (device) name in this group") == -1)
			goto out;
		kp_key(sub, mkp, "name");
		if (claim_unique(p, &mnames, &nmnames, g->members[i].name, sub,
		                 "member name in this group") == -1)
			goto out;
	}
	if (parse_mgmt_group(p, c, o, kp, g) == -1)
		goto out;
	kp_key(sub, kp, "id");
	if (claim_unique(p, &p->ids, &p->nids, g->id, sub, "id") == -1)
		goto out;
	kp_key(sub, kp, "name");
	if (claim_unique(p, &p->names, &p->nnames, g->name, sub, "name") == -1)
		goto out;
	kp_key(sub, kp, "key");
	rc = claim_unique(p, &p->keys, &p->nkeys, g->key_path, sub, "key file");
out:
	free(mnames);
	free(mdevs);
	return rc;
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

static int
check_readable(struct parse *p, const char *kp, const char *path)
{
	if (access(path, R_OK) == -1)
		return perr(p, kp, "cannot read \"%s\": %s", path,
		            strerror(errno));
	return 0;
}

static int
parse_top(struct parse *p, struct config *c, json_object *root,
          const struct config_overrides *ov)
{
	char kp[KP_MAX], why[256], *host = NULL;
	json_object *devs, *groups, *o;
	size_t i, n;
	int64_t v;
	int port;

	if (!json_object_is_type(root, json_type_object))
		return perr(p, "", "expected a JSON object, found %s",
		            type_name(root));
	warn_unknown_keys(p, root, "", top_keys);
	if (get_str(p, root, "", "server", NULL, &c->server) == -1 ||
	    get_str(p, root, "", "key_dir", NULL, &c->key_dir) == -1 ||
	    get_str(p, root, "", "state_dir", NULL, &c->state_dir) == -1 ||
	    get_str(p, root, "", "user", NULL, &c->user) == -1 ||
	    get_str(p, root, "", "ca_file", NULL, &c->ca_file) == -1 ||
	    get_str(p, root, "", "artifact_verify_key", NULL,
	            &c->artifact_verify_key) == -1 ||
	    get_str(p, root, "", "metrics", NULL, &c->metrics) == -1 ||
	    get_duration(p, root, "", "update_interval",
	                 &c->update_interval_ms) == -1 ||
	    parse_timeouts(p, root, "", &c->timeouts) == -1)
		return -1;
	v = 0;
	if (get_int(p, root, "", "retries", 0, INT_MAX, &v) == -1)
		return -1;
	c->retries = (int)v;
	if (get_int(p, root, "", "spool_max_bytes", 1024 * 1024, INT64_MAX,
	            &c->spool_max_bytes) == -1 ||
	    parse_mgmt_top(p, c, root) == -1)
		return -1;

	/* Flags win over the file, before anything inherits the values. */
	if (ov != NULL) {
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
	if (c->server == NULL)
		return perr(p, "server",
		            "missing: expected the RDFM server "
		            "URL, e.g. \"https://rdfm.example.com\" (or give "
		            "-s/--server)");
	if (check_url(p, "server", c->server) == -1)
		return -1;
	if (c->key_dir == NULL)
		return perr(
		    p, "key_dir",
		    "missing: expected the directory of "
		    "the device keys, e.g. \"keys\" (or give -k/--key-dir)");
	if (c->state_dir == NULL)
		c->state_dir = xstrdup(CONFIG_DEFAULT_STATE_DIR);
	/* Relative paths mean the working directory, as in the Go client. */
	make_absolute(&c->key_dir);
	make_absolute(&c->state_dir);
	make_absolute(&c->ca_file);
	make_absolute(&c->artifact_verify_key);
	if ((c->ca_file != NULL &&
	     check_readable(p, "ca_file", c->ca_file) == -1) ||
	    (c->artifact_verify_key != NULL &&
	     check_readable(p, "artifact_verify_key", c->artifact_verify_key) ==
	         -1))
		return -1;
	if (c->metrics != NULL) {
		/* Port 0: any free port (the log names it). */
		if (split_address(c->metrics, 0, &host, &port, why,
		                  sizeof(why)) == -1)
			return perr(p, "metrics", "%s", why);
		free(host);
	}

	if (get_array(p, root, "", "devices", &devs) == -1 ||
	    get_array(p, root, "", "groups", &groups) == -1)
		return -1;
	n = devs != NULL ? json_object_array_length(devs) : 0;
	c->devices = xcalloc(n > 0 ? n : 1, sizeof(*c->devices));
	for (i = 0; i < n; i++) {
		kp_index(kp, "", "devices", i);
		o = json_object_array_get_idx(devs, i);
		if (!json_object_is_type(o, json_type_object))
			return perr(p, kp,
			            "expected an object (a device), "
			            "found %s",
			            type_name(o));
		c->ndevices++;
		if (parse_device(p, c, o, kp, &c->devices[i]) == -1)
			return -1;
	}
	n = groups != NULL ? json_object_array_length(groups) : 0;
	c->groups = xcalloc(n > 0 ? n : 1, sizeof(*c->groups));
	for (i = 0; i < n; i++) {
		kp_index(kp, "", "groups", i);
		o = json_object_array_get_idx(groups, i);
		if (!json_object_is_type(o, json_type_object))
			return perr(p, kp,
			            "expected an object (a group), "
			            "found %s",
			            type_name(o));
		c->ngroups++;
		if (parse_group(p, c, o, kp, &c->groups[i]) == -1)
			return -1;
	}
	if (c->ndevices == 0 && c->ngroups == 0)
		return perr(p, "devices",
		            "no devices and no groups: expected "
		            "at least one entry in \"devices\" or \"groups\"");
	return 0;
}

/* Whole file into memory, NUL-terminated; NULL + err on failure. */
static char *
read_file(const char *path, size_t *len, char *err, size_t errcap)
{
	struct stat st;
	char *buf;
	ssize_t r;
	size_t off = 0;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(err, errcap, "%s: cannot read: %s", path,
		         strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_size > CONFIG_MAX_BYTES) {
		snprintf(err, errcap, "%s: cannot read: %s", path,
		         !S_ISREG(st.st_mode) ? "not a regular file"
		                              : "larger than 1 MiB");
		close(fd);
		return NULL;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	while (off < (size_t)st.st_size) {
		r = read(fd, buf + off, (size_t)st.st_size - off);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0) {
			snprintf(err, errcap, "%s: cannot read: %s", path,
			         r == 0 ? "file shrank while reading"
			                : strerror(errno));
			free(buf);
			close(fd);
			return NULL;
		}
		off += (size_t)r;
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

/*
 * json-c's default (non-strict) tokener accepts the trailing commas users
 * copy from the Go client's example config.
 */
static json_object *
parse_json(const char *path, const char *buf, size_t len, char *err,
           size_t errcap)
{
	struct json_tokener *tok;
	json_object *root;
	enum json_tokener_error jerr;
	size_t end;
	int line, col;

	if (len > CONFIG_MAX_BYTES) {
		snprintf(err, errcap, "%s: larger than 1 MiB", path);
		return NULL;
	}
	tok = json_tokener_new();
	root = json_tokener_parse_ex(tok, buf, (int)len);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (jerr == json_tokener_continue) {
		snprintf(err, errcap,
		         "%s: invalid JSON: unexpected end of "
		         "file",
		         path);
		return NULL;
	}
	if (jerr != json_tokener_success || root == NULL) {
		offset_to_line(buf, end, &line, &col);
		snprintf(err, errcap, "%s:%d:%d: invalid JSON: %s", path, line,
		         col, json_tokener_error_desc(jerr));
		json_object_put(root);
		return NULL;
	}
	while (end < len && isspace((unsigned char)buf[end]))
		end++;
	if (end < len) {
		offset_to_line(buf, end, &line, &col);
		snprintf(err, errcap,
		         "%s:%d:%d: invalid JSON: unexpected text "
		         "after the top-level object",
		         path, line, col);
		json_object_put(root);
		return NULL;
	}
	return root;
}

/* The first config of the search order that exists, or NULL. */
static char *
find_config(char *err, size_t errcap)
{
	const char *home = getenv("HOME");
	char *cand[3];
	char *found = NULL;
	size_t i, n = 0;

	cand[n++] = xstrdup("config.json");
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
		snprintf(
		    err, errcap,
		    "no config file found: looked for "
		    "./config.json, $HOME/.config/rdfm-mcumgr/config.json and "
		    "/etc/rdfm-mcumgr/config.json (or give -c/--config FILE)");
	return found;
}

struct config *
config_load_buffer(const char *name, const char *buf, size_t len,
                   const struct config_overrides *ov, char *err, size_t errcap)
{
	struct parse p;
	struct config *c;
	json_object *root;
	size_t i;
	int rc;

	if (errcap > 0)
		err[0] = '\0';
	if ((root = parse_json(name, buf, len, err, errcap)) == NULL)
		return NULL;

	c = xcalloc(1, sizeof(*c));
	c->path = absolute_path(name);
	c->update_interval_ms = CONFIG_DEFAULT_INTERVAL_MS;
	c->spool_max_bytes = CONFIG_DEFAULT_SPOOL_MAX;
	c->timeouts.request_ms = 5 * 1000;
	c->timeouts.erase_ms = 60 * 1000;
	c->timeouts.reboot_ms = 60 * 1000;
	c->timeouts.confirm_ms = 5 * 60 * 1000;
	c->timeouts.stall_ms = 60 * 1000;
	c->management = true;
	c->file_max_bytes = CONFIG_DEFAULT_FILE_MAX;

	memset(&p, 0, sizeof(p));
	p.file = name;
	p.err = err;
	p.errcap = errcap;
	rc = parse_top(&p, c, root, ov);
	json_object_put(root);
	for (i = 0; i < p.nlinks; i++)
		free(p.links[i].canon);
	free(p.links);
	free(p.ids);
	free(p.names);
	free(p.keys);
	if (rc == -1) {
		config_free(c);
		return NULL;
	}
	return c;
}

struct config *
config_load(const char *path, const struct config_overrides *ov, char *err,
            size_t errcap)
{
	struct config *c;
	char *found = NULL, *buf;
	size_t len;

	if (errcap > 0)
		err[0] = '\0';
	if (path == NULL && (path = found = find_config(err, errcap)) == NULL)
		return NULL;
	if ((buf = read_file(path, &len, err, errcap)) == NULL) {
		free(found);
		return NULL;
	}
	c = config_load_buffer(path, buf, len, ov, err, errcap);
	free(buf);
	free(found);
	return c;
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

bool
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
