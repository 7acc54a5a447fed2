/*
 * rdfm-mcumgr-client: the command line (the Go client's cobra flags), the
 * sub-command table, and the daemon's start-up: config, then every key,
 * before any board or server is touched.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "artifact.h"
#include "config.h"
#include "daemon.h"
#include "duration.h"
#include "fdlimit.h"
#include "keys.h"
#include "log.h"
#include "mgmt.h"
#include "supervisor.h"
#include "workers.h"
#include "xmalloc.h"

#define PROGNAME "rdfm-mcumgr-client"

struct global_opts gopts;

static int cmd_check_config(int argc, char **argv);

/*
 * Sub-commands.  Each gets argv from its own name on (argv[0]) and parses
 * what follows itself; the global flags before the name are in gopts.
 */
static const struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
} commands[] = {
    {"check-config", cmd_check_config,
     "check everything a start would, print the plan (--json: as JSON)"},
    {"artifact", cmd_artifact, "inspect an update artifact"},
    {"smp", cmd_smp,
     "one operation on one board: upgrade, image, os, stat, shell, fs"},
};

enum flag_id {
	F_CONFIG,
	F_SERVER,
	F_KEY_DIR,
	F_RETRIES,
	F_INTERVAL,
	F_VERBOSE,
	F_HELP,
	F_VERSION,
	F_STATE_DIR,
	F_ONCE,
};

/*
 * Hand-rolled rather than getopt_long: cobra accepts flags before and after
 * the sub-command and "-c=FILE" and "--verbose=false", and a sub-command's
 * own options must pass through to it untouched.
 */
static const struct flag {
	char shortname;
	const char *longname;
	bool has_arg;
	enum flag_id id;
} flags[] = {
    {'c', "config", true, F_CONFIG},     {'s', "server", true, F_SERVER},
    {'k', "key-dir", true, F_KEY_DIR},   {'r', "retries", true, F_RETRIES},
    {'i', "interval", true, F_INTERVAL}, {'v', "verbose", false, F_VERBOSE},
    {'h', "help", false, F_HELP},        {0, "version", false, F_VERSION},
    {0, "state-dir", true, F_STATE_DIR}, {0, "once", false, F_ONCE},
};

static bool want_help, want_version;

static void
usage(FILE *f)
{
	size_t i;

	fprintf(f,
	        "usage: " PROGNAME " [flags] [command]\n"
	        "\n"
	        "Keeps Zephyr boards (MCUmgr SMP + MCUboot) up to date from an "
	        "RDFM server.\n"
	        "Without a command, runs the update daemon.\n"
	        "\n"
	        "Commands:\n");
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-14s %s\n", commands[i].name, commands[i].help);
	fprintf(
	    f,
	    "\n"
	    "Flags:\n"
	    "  -c, --config FILE        config file (default: the first of "
	    "./config.json,\n"
	    "                           "
	    "$XDG_CONFIG_HOME/rdfm-mcumgr/config.json,\n"
	    "                           $HOME/.config/rdfm-mcumgr/config.json, "
	    "/etc/rdfm-mcumgr/config.json)\n"
	    "  -s, --server URL         RDFM server URL (overrides "
	    "\"server\")\n"
	    "  -k, --key-dir DIR        device key directory (overrides "
	    "\"key_dir\")\n"
	    "  -r, --retries N          update attempts per device, 0 = "
	    "unlimited (overrides \"retries\")\n"
	    "  -i, --interval DURATION  poll interval, e.g. 10s, 15m, 1h30m "
	    "(overrides \"update_interval\")\n"
	    "      --state-dir DIR      state directory (overrides "
	    "\"state_dir\", default " CONFIG_DEFAULT_STATE_DIR ";\n"
	    "                           not root and that missing: "
	    "~/.local/state/rdfm-mcumgr)\n"
	    "      --once               one update round per device, then "
	    "exit\n"
	    "  -v, --verbose            debug logging\n"
	    "  -h, --help               this help\n"
	    "      --version            print the version\n");
}

static int usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* One line naming what was wrong; the caller exits with EX_USAGE. */
static int
usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PROGNAME ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see " PROGNAME " --help)\n");
	return -1;
}

static const char *
flag_name(const struct flag *f)
{
	static char buf[64];

	if (f->shortname != 0)
		snprintf(buf, sizeof(buf), "-%c/--%s", f->shortname,
		         f->longname);
	else
		snprintf(buf, sizeof(buf), "--%s", f->longname);
	return buf;
}

static int
parse_bool(const struct flag *f, const char *v, bool *out)
{
	if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
		*out = true;
	else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
		*out = false;
	else
		return usage_error("%s: \"%s\" is not true or false",
		                   flag_name(f), v);
	return 0;
}

static int
apply_flag(const struct flag *f, const char *v)
{
	char why[160];
	char *ep;
	long n;
	bool b = true;

	if (f->has_arg && *v == '\0')
		return usage_error("%s: empty value", flag_name(f));
	if (!f->has_arg && v != NULL && parse_bool(f, v, &b) == -1)
		return -1;
	switch (f->id) {
	case F_CONFIG:
		gopts.config_path = v;
		break;
	case F_SERVER:
		if (strncmp(v, "http://", 7) != 0 &&
		    strncmp(v, "https://", 8) != 0)
			return usage_error("%s: \"%s\" is not an http:// or "
			                   "https:// URL",
			                   flag_name(f), v);
		gopts.ov.server = v;
		break;
	case F_KEY_DIR:
		gopts.ov.key_dir = v;
		break;
	case F_STATE_DIR:
		gopts.ov.state_dir = v;
		break;
	case F_RETRIES:
		errno = 0;
		n = strtol(v, &ep, 10);
		if (*ep != '\0' || errno != 0 || n < 0 || n > 1000000)
			return usage_error("%s: \"%s\" is not a whole number "
			                   "from 0 (unlimited) to 1000000",
			                   flag_name(f), v);
		gopts.ov.retries = (int)n;
		gopts.ov.has_retries = true;
		break;
	case F_INTERVAL:
		if (duration_parse(v, &gopts.ov.interval_ms, why,
		                   sizeof(why)) == -1)
			return usage_error("%s: %s", flag_name(f), why);
		if (gopts.ov.interval_ms == 0)
			return usage_error("%s: must be longer than 0",
			                   flag_name(f));
		gopts.ov.has_interval = true;
		break;
	case F_VERBOSE:
		gopts.verbose = b ? gopts.verbose + 1 : 0;
		break;
	case F_HELP:
		want_help = b;
		break;
	case F_VERSION:
		want_version = b;
		break;
	case F_ONCE:
		gopts.once = b;
		break;
	}
	return 0;
}

static const struct flag *
find_long(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
		if (strlen(flags[i].longname) == len &&
		    strncmp(flags[i].longname, name, len) == 0)
			return &flags[i];
	return NULL;
}

static const struct flag *
find_short(char c)
{
	size_t i;

	for (i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
		if (flags[i].shortname == c)
			return &flags[i];
	return NULL;
}

/* "--name", "--name=value", "--name value"; returns args consumed. */
static int
parse_long(int argc, char **argv, int i)
{
	const char *arg = argv[i] + 2, *eq = strchr(arg, '=');
	size_t len = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
	const struct flag *f;

	if ((f = find_long(arg, len)) == NULL)
		return usage_error("unknown flag --%.*s", (int)len, arg);
	if (eq != NULL)
		return apply_flag(f, eq + 1) == -1 ? -1 : 1;
	if (!f->has_arg)
		return apply_flag(f, NULL) == -1 ? -1 : 1;
	if (i + 1 >= argc)
		return usage_error("%s needs a value", flag_name(f));
	return apply_flag(f, argv[i + 1]) == -1 ? -1 : 2;
}

/* "-v", "-vc FILE", "-cFILE", "-c=FILE", "-c FILE"; returns args consumed. */
static int
parse_short(int argc, char **argv, int i)
{
	const char *s;
	const struct flag *f;

	for (s = argv[i] + 1; *s != '\0'; s++) {
		if ((f = find_short(*s)) == NULL)
			return usage_error("unknown shorthand flag '%c' in %s",
			                   *s, argv[i]);
		if (!f->has_arg) {
			if (apply_flag(f, NULL) == -1)
				return -1;
			continue;
		}
		if (s[1] != '\0')
			return apply_flag(f, s[1] == '=' ? s + 2 : s + 1) == -1
			           ? -1
			           : 1;
		if (i + 1 >= argc)
			return usage_error("%s needs a value", flag_name(f));
		return apply_flag(f, argv[i + 1]) == -1 ? -1 : 2;
	}
	return 1;
}

/*
 * Parse global flags in argv[start..].  With stop_at_word, stop at the
 * first word (the sub-command) and return its index, or argc; without,
 * any word is a usage error.  -1 on a usage error.
 */
static int
parse_flags(int argc, char **argv, int start, bool stop_at_word)
{
	int i = start, n;

	while (i < argc) {
		if (strcmp(argv[i], "--") == 0) {
			if (!stop_at_word && i + 1 < argc)
				return usage_error("unexpected argument \"%s\"",
				                   argv[i + 1]);
			return i + 1 < argc ? i + 1 : argc;
		}
		if (argv[i][0] != '-' || argv[i][1] == '\0') {
			if (stop_at_word)
				return i;
			return usage_error("unexpected argument \"%s\"",
			                   argv[i]);
		}
		n = argv[i][1] == '-' ? parse_long(argc, argv, i)
		                      : parse_short(argc, argv, i);
		if (n == -1)
			return -1;
		i += n;
	}
	return argc;
}

/* --- loading and checking the config -------------------------------------- */

/*
 * $XDG_STATE_HOME/rdfm-mcumgr, else ~/.local/state/rdfm-mcumgr: where a
 * client that is not root keeps its state when the system directory is
 * not there.  NULL when there is no home to put it in.
 */
static char *
user_state_dir(void)
{
	const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
	struct passwd *pw;
	char *s;

	if (xdg != NULL && xdg[0] == '/') {
		xasprintf(&s, "%s/rdfm-mcumgr", xdg);
		return s;
	}
	if ((home == NULL || home[0] != '/') &&
	    (pw = getpwuid(geteuid())) != NULL)
		home = pw->pw_dir;
	if (home == NULL || home[0] != '/')
		return NULL;
	xasprintf(&s, "%s/.local/state/rdfm-mcumgr", home);
	return s;
}

/*
 * The Go client kept no state, so run by an ordinary user without
 * --state-dir it just ran: do the same with a per-user directory, but only
 * when the system default does not exist.  An existing default is never
 * replaced: it may hold a journal of an update in flight.
 */
static bool
use_user_state_dir(struct config *c)
{
	struct stat st;
	char *dir;

	if (!c->state_dir_default || geteuid() == 0 ||
	    lstat(CONFIG_DEFAULT_STATE_DIR, &st) == 0 || errno != ENOENT ||
	    (dir = user_state_dir()) == NULL)
		return false;
	free(c->state_dir);
	c->state_dir = dir;
	return true;
}

static enum worker_kind
worker_kind_of(enum transport_type t)
{
	switch (t) {
	case TRANSPORT_SERIAL:
		return WORKER_SERIAL;
	case TRANSPORT_UDP:
		return WORKER_UDP;
	case TRANSPORT_BLE:
		break;
	}
	return WORKER_BLE;
}

/* Each transport in use needs its worker executable, installed. */
static void
check_workers(const struct config *c, struct config_report *r)
{
	const struct transport_cfg *t;
	bool seen[3] = {false, false, false};
	char kp[128], err[PATH_MAX * 2 + 256], *exe;
	size_t i, j;

	for (i = 0; i < c->ndevices + c->ngroups; i++) {
		const struct group_cfg *g =
		    i < c->ndevices ? NULL : &c->groups[i - c->ndevices];
		size_t n = g != NULL ? g->nmembers : 1;

		for (j = 0; j < n; j++) {
			t = g != NULL ? &g->members[j].transport
			              : &c->devices[i].transport;
			if (seen[worker_kind_of(t->type)])
				continue;
			seen[worker_kind_of(t->type)] = true;
			if ((exe = workers_find_exe(worker_kind_of(t->type),
			                            err, sizeof(err))) !=
			    NULL) {
				free(exe);
				continue;
			}
			if (g == NULL)
				snprintf(kp, sizeof(kp),
				         "devices[%zu].transport.type", i);
			else
				snprintf(
				    kp, sizeof(kp),
				    "groups[%zu].members[%zu].transport.type",
				    i - c->ndevices, j);
			config_report_error(r, c->name, kp, "%s", err);
		}
	}
}

static void
check_artifact_key(const struct config *c, struct config_report *r)
{
	EVP_PKEY *k;
	char err[PATH_MAX + 256];

	if (c->artifact_verify_key == NULL)
		return;
	if ((k = artifact_key_load(c->artifact_verify_key, err, sizeof(err))) ==
	    NULL)
		config_report_error(r, c->name, "artifact_verify_key", "%s",
		                    err);
	EVP_PKEY_free(k);
}

/*
 * The config as the daemon and check-config see it: every check a start
 * makes, its problems in r.  NULL when the file does not parse; otherwise
 * the config, which r may still find fault with.
 */
static struct config *
load_checked(struct config_report *r, bool *per_user)
{
	struct config *c;
	bool valid;

	c = config_load_partial(gopts.config_path, &gopts.ov, r, &valid);
	if (c == NULL)
		return NULL;
	/* What does not parse is listed with what the host lacks. */
	*per_user = use_user_state_dir(c);
	config_check_host(c, r);
	check_artifact_key(c, r);
	if (!valid) {
		config_free(c);
		return NULL;
	}
	check_workers(c, r);
	/* Against what the daemon raises its soft limit to. */
	fd_need_check(c, !gopts.once, fd_limit_max(), r);
	return c;
}

/* For the daemon's log: one line per problem. */
static void
log_report(const struct config_report *r)
{
	const struct config_issue *w;
	char *line;
	size_t i;

	for (i = 0; i < r->nwarnings; i++) {
		w = &r->warnings[i];
		if (strncmp(w->msg, "unknown key", 11) == 0)
			log_warnx("Unknown config key ignored",
			          "file=%s key=%s hint=%s",
			          log_q(w->file != NULL ? w->file : ""),
			          log_q(w->keypath != NULL ? w->keypath : ""),
			          log_q(w->msg));
		else
			log_warnx("Configuration warning",
			          "file=%s key=%s warning=%s",
			          log_q(w->file != NULL ? w->file : ""),
			          log_q(w->keypath != NULL ? w->keypath : ""),
			          log_q(w->msg));
	}
	for (i = 0; i < r->nerrors; i++) {
		line = config_issue_line(&r->errors[i]);
		log_errx("Invalid configuration", "error=%s", log_q(line));
		free(line);
	}
}

struct config *
supervisor_load_config(void)
{
	struct config_report r;
	struct config *c;

	memset(&r, 0, sizeof(r));
	c = config_load_report(gopts.config_path, &gopts.ov, &r);
	if (c != NULL)
		use_user_state_dir(c);
	log_report(&r);
	config_report_free(&r);
	return c;
}

/* --- check-config ----------------------------------------------------------
 */

enum key_state { KEY_PRESENT, KEY_GENERATE, KEY_DISAPPEARED, KEY_UNUSABLE };

static const char *const key_state_names[] = {"present", "will-be-generated",
                                              "disappeared", "unusable"};

/*
 * What start-up will do with a key, without generating it; an existing
 * key must load.  Problems go into r under kp.
 */
static enum key_state
check_key(const struct config *c, const char *kp, const char *path,
          struct config_report *r, int *bits)
{
	EVP_PKEY *pkey;
	char err[PATH_MAX + 512];

	*bits = 0;
	switch (keys_presence(c->state_dir, path)) {
	case KEYS_FIRST_START:
		return KEY_GENERATE;
	case KEYS_DISAPPEARED:
		/* keys_load_for_device says it all; nothing is written. */
		keys_load_for_device(c->state_dir, c->key_dir, path,
		                     &(bool){false}, err, sizeof(err));
		config_report_error(r, c->name, kp, "%s", err);
		return KEY_DISAPPEARED;
	case KEYS_PRESENT:
		break;
	}
	if ((pkey = keys_load(path, err, sizeof(err))) == NULL) {
		config_report_error(r, c->name, kp, "%s", err);
		return KEY_UNUSABLE;
	}
	*bits = EVP_PKEY_get_bits(pkey);
	EVP_PKEY_free(pkey);
	return KEY_PRESENT;
}

static void
print_key(const char *path, enum key_state st, int bits)
{
	switch (st) {
	case KEY_PRESENT:
		printf("  key: %s (present, RSA-%d)\n", path, bits);
		break;
	case KEY_GENERATE:
		printf("  key: %s (missing: an RSA-%d key will be generated "
		       "at start)\n",
		       path, KEYS_RSA_BITS);
		break;
	case KEY_DISAPPEARED:
		printf("  key: %s (DISAPPEARED: used before, now missing)\n",
		       path);
		break;
	case KEY_UNUSABLE:
		printf("  key: %s (UNUSABLE)\n", path);
		break;
	}
}

static void
print_timeouts(const char *indent, const struct timeouts_cfg *t)
{
	char a[DURATION_BUFSZ], b[DURATION_BUFSZ], c[DURATION_BUFSZ],
	    d[DURATION_BUFSZ], e[DURATION_BUFSZ];

	printf("%stimeouts: request %s, erase %s, reboot %s, confirm %s, "
	       "stall %s\n",
	       indent, duration_format(t->request_ms, a, sizeof(a)),
	       duration_format(t->erase_ms, b, sizeof(b)),
	       duration_format(t->reboot_ms, c, sizeof(c)),
	       duration_format(t->confirm_ms, d, sizeof(d)),
	       duration_format(t->stall_ms, e, sizeof(e)));
}

static void
print_transport(const char *indent, const struct transport_cfg *t)
{
	switch (t->type) {
	case TRANSPORT_SERIAL:
		printf("%stransport: serial %s at %d baud, mtu %s%.0d\n",
		       indent, t->device, t->baud,
		       t->mtu == 0 ? "worker default" : "", t->mtu);
		break;
	case TRANSPORT_UDP:
		printf("%stransport: udp %s (host %s, port %d)\n", indent,
		       t->address, t->host, t->port);
		break;
	case TRANSPORT_BLE:
		printf("%stransport: ble hci%d, peer \"%s\"%s%s\n", indent,
		       t->device_index, t->peer_name,
		       t->att_socket != NULL ? ", simulated ATT socket " : "",
		       t->att_socket != NULL ? t->att_socket : "");
		break;
	}
}

static void
print_plan_header(const struct config *c, bool per_user)
{
	char iv[DURATION_BUFSZ], gr[DURATION_BUFSZ];
	struct fd_need need;
	struct stat st;

	printf("config: %s\n", c->path);
	printf("server: %s\n", c->server);
	printf("key_dir: %s%s\n", c->key_dir,
	       stat(c->key_dir, &st) == -1 ? " (missing: will be created, "
	                                     "mode 0700)"
	                                   : "");
	printf("state_dir: %s%s\n", c->state_dir,
	       per_user ? " (per-user: not root, and " CONFIG_DEFAULT_STATE_DIR
	                  " does not exist)"
	                : "");
	if (c->user != NULL)
		printf("user: %s%s\n", c->user,
		       getpwnam(c->user) == NULL ? " (no such user on this "
		                                   "system)"
		                                 : "");
	if (c->ca_file != NULL)
		printf("ca_file: %s\n", c->ca_file);
	if (c->artifact_verify_key != NULL)
		printf("artifact_verify_key: %s\n", c->artifact_verify_key);
	if (c->metrics != NULL)
		printf("metrics: %s\n", c->metrics);
	printf("update_interval: %s\n",
	       duration_format(c->update_interval_ms, iv, sizeof(iv)));
	if (c->retries == 0)
		printf("retries: unlimited\n");
	else
		printf("retries: %d\n", c->retries);
	printf("spool_max_bytes: %lld\n", (long long)c->spool_max_bytes);
	printf("downloads: at least %lld bytes/s after %s\n",
	       (long long)c->download_min_rate,
	       duration_format(c->download_grace_ms, gr, sizeof(gr)));
	printf("server: at most %d connection%s, %d authentication%s and %d "
	       "download%s at once\n",
	       c->server_connections, c->server_connections == 1 ? "" : "s",
	       c->concurrent_authentications,
	       c->concurrent_authentications == 1 ? "" : "s",
	       c->concurrent_downloads,
	       c->concurrent_downloads == 1 ? "" : "s");
	printf("workers: up to %d UDP board%s each\n", c->boards_per_worker,
	       c->boards_per_worker == 1 ? "" : "s");
	fd_need_count(c, true, &need);
	if (need.mgmt > 0)
		printf(
		    "descriptors: up to %zu with the management channel (%zu "
		    "without), the limit is %" PRIu64 "\n",
		    need.total, need.total - need.mgmt, fd_limit_max());
	else
		printf("descriptors: up to %zu, the limit is %" PRIu64 "\n",
		       need.total, fd_limit_max());
	print_timeouts("", &c->timeouts);
}

/* The plan in text; the key problems go into r. */
static void
print_plan(const struct config *c, bool per_user, struct config_report *r)
{
	char iv[DURATION_BUFSZ], kp[64];
	enum key_state ks;
	size_t i, j;
	int bits;

	print_plan_header(c, per_user);
	for (i = 0; i < c->ndevices; i++) {
		const struct device_cfg *d = &c->devices[i];

		printf("device %s: id %s, type %s, every %s, %s\n", d->name,
		       d->id, d->dev_type,
		       duration_format(d->update_interval_ms, iv, sizeof(iv)),
		       d->self_confirm ? "self-confirming" : "confirmed by us");
		print_transport("  ", &d->transport);
		print_timeouts("  ", &d->timeouts);
		mgmt_plan_board("  ", &d->mgmt_board);
		mgmt_plan_actions("  ", &d->mgmt);
		snprintf(kp, sizeof(kp), "devices[%zu].key", i);
		ks = check_key(c, kp, d->key_path, r, &bits);
		print_key(d->key_path, ks, bits);
	}
	for (i = 0; i < c->ngroups; i++) {
		const struct group_cfg *g = &c->groups[i];

		printf("group %s: id %s, type %s, every %s, %zu members\n",
		       g->name, g->id, g->type,
		       duration_format(g->update_interval_ms, iv, sizeof(iv)),
		       g->nmembers);
		print_timeouts("  ", &g->timeouts);
		mgmt_plan_actions("  ", &g->mgmt);
		snprintf(kp, sizeof(kp), "groups[%zu].key", i);
		ks = check_key(c, kp, g->key_path, r, &bits);
		print_key(g->key_path, ks, bits);
		for (j = 0; j < g->nmembers; j++) {
			const struct member_cfg *m = &g->members[j];

			printf("  member %s: image \"%s\", %s\n", m->name,
			       m->device,
			       m->self_confirm ? "self-confirming"
			                       : "confirmed by us");
			print_transport("    ", &m->transport);
			mgmt_plan_board("    ", &m->mgmt_board);
		}
	}
	mgmt_plan_summary(c);
}

/* --- check-config --json ---------------------------------------------------
 */

static json_object *
jstr(const char *s)
{
	return s != NULL ? json_object_new_string(s) : NULL;
}

static json_object *
json_issues(const struct config_issue *v, size_t n)
{
	json_object *a = json_object_new_array(), *o;
	char *line;
	size_t i;

	for (i = 0; i < n; i++) {
		o = json_object_new_object();
		line = config_issue_line(&v[i]);
		json_object_object_add(o, "file", jstr(v[i].file));
		json_object_object_add(o, "key", jstr(v[i].keypath));
		if (v[i].line > 0) {
			json_object_object_add(o, "line",
			                       json_object_new_int(v[i].line));
			json_object_object_add(o, "column",
			                       json_object_new_int(v[i].col));
		}
		json_object_object_add(o, "message", jstr(v[i].msg));
		json_object_object_add(o, "text", jstr(line));
		free(line);
		json_object_array_add(a, o);
	}
	return a;
}

static json_object *
json_timeouts(const struct timeouts_cfg *t)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "request_ms",
	                       json_object_new_int64(t->request_ms));
	json_object_object_add(o, "erase_ms",
	                       json_object_new_int64(t->erase_ms));
	json_object_object_add(o, "reboot_ms",
	                       json_object_new_int64(t->reboot_ms));
	json_object_object_add(o, "confirm_ms",
	                       json_object_new_int64(t->confirm_ms));
	json_object_object_add(o, "stall_ms",
	                       json_object_new_int64(t->stall_ms));
	return o;
}

static json_object *
json_transport(const struct transport_cfg *t)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "type", jstr(transport_type_name(t->type)));
	switch (t->type) {
	case TRANSPORT_SERIAL:
		json_object_object_add(o, "device", jstr(t->device));
		json_object_object_add(o, "baud", json_object_new_int(t->baud));
		if (t->mtu != 0)
			json_object_object_add(o, "mtu",
			                       json_object_new_int(t->mtu));
		break;
	case TRANSPORT_UDP:
		json_object_object_add(o, "address", jstr(t->address));
		json_object_object_add(o, "host", jstr(t->host));
		json_object_object_add(o, "port", json_object_new_int(t->port));
		break;
	case TRANSPORT_BLE:
		json_object_object_add(o, "device_index",
		                       json_object_new_int(t->device_index));
		json_object_object_add(o, "peer_name", jstr(t->peer_name));
		if (t->att_socket != NULL)
			json_object_object_add(o, "att_socket",
			                       jstr(t->att_socket));
		break;
	}
	return o;
}

static json_object *
json_key(const struct config *c, const char *kp, const char *path,
         struct config_report *r)
{
	json_object *o = json_object_new_object();
	enum key_state ks;
	int bits;

	ks = check_key(c, kp, path, r, &bits);
	json_object_object_add(o, "path", jstr(path));
	json_object_object_add(o, "state", jstr(key_state_names[ks]));
	if (ks == KEY_PRESENT)
		json_object_object_add(o, "bits", json_object_new_int(bits));
	return o;
}

static json_object *
json_device(const struct config *c, size_t i, struct config_report *r)
{
	const struct device_cfg *d = &c->devices[i];
	json_object *o = json_object_new_object();
	char kp[64];

	snprintf(kp, sizeof(kp), "devices[%zu].key", i);
	json_object_object_add(o, "name", jstr(d->name));
	json_object_object_add(o, "id", jstr(d->id));
	json_object_object_add(o, "dev_type", jstr(d->dev_type));
	json_object_object_add(o, "self_confirm",
	                       json_object_new_boolean(d->self_confirm));
	json_object_object_add(o, "update_interval_ms",
	                       json_object_new_int64(d->update_interval_ms));
	json_object_object_add(o, "timeouts", json_timeouts(&d->timeouts));
	json_object_object_add(o, "transport", json_transport(&d->transport));
	json_object_object_add(o, "key", json_key(c, kp, d->key_path, r));
	return o;
}

static json_object *
json_group(const struct config *c, size_t i, struct config_report *r)
{
	const struct group_cfg *g = &c->groups[i];
	json_object *o = json_object_new_object(),
	            *ms = json_object_new_array(), *m;
	char kp[64];
	size_t j;

	snprintf(kp, sizeof(kp), "groups[%zu].key", i);
	json_object_object_add(o, "name", jstr(g->name));
	json_object_object_add(o, "id", jstr(g->id));
	json_object_object_add(o, "type", jstr(g->type));
	json_object_object_add(o, "update_interval_ms",
	                       json_object_new_int64(g->update_interval_ms));
	json_object_object_add(o, "timeouts", json_timeouts(&g->timeouts));
	json_object_object_add(o, "key", json_key(c, kp, g->key_path, r));
	for (j = 0; j < g->nmembers; j++) {
		m = json_object_new_object();
		json_object_object_add(m, "name", jstr(g->members[j].name));
		json_object_object_add(m, "device", jstr(g->members[j].device));
		json_object_object_add(
		    m, "self_confirm",
		    json_object_new_boolean(g->members[j].self_confirm));
		json_object_object_add(
		    m, "transport", json_transport(&g->members[j].transport));
		json_object_array_add(ms, m);
	}
	json_object_object_add(o, "members", ms);
	return o;
}

/* What the fleet needs of the open-file limit, and where it goes. */
static json_object *
json_open_files(const struct config *c)
{
	json_object *o = json_object_new_object();
	struct fd_need n;

	fd_need_count(c, true, &n);
	json_object_object_add(o, "needed",
	                       json_object_new_int64((int64_t)n.total));
	json_object_object_add(o, "limit",
	                       json_object_new_int64((int64_t)fd_limit_max()));
	json_object_object_add(o, "workers",
	                       json_object_new_int64((int64_t)n.workers));
	json_object_object_add(o, "serial",
	                       json_object_new_int64((int64_t)n.serial));
	json_object_object_add(o, "server",
	                       json_object_new_int64((int64_t)n.server));
	json_object_object_add(o, "metrics",
	                       json_object_new_int64((int64_t)n.metrics));
	json_object_object_add(o, "management",
	                       json_object_new_int64((int64_t)n.mgmt));
	json_object_object_add(o, "fixed",
	                       json_object_new_int64((int64_t)n.fixed));
	return o;
}

static json_object *
json_plan(const struct config *c, bool per_user, struct config_report *r)
{
	json_object *o = json_object_new_object(),
	            *ds = json_object_new_array(),
	            *gs = json_object_new_array();
	size_t i;

	json_object_object_add(o, "server", jstr(c->server));
	json_object_object_add(o, "key_dir", jstr(c->key_dir));
	json_object_object_add(o, "state_dir", jstr(c->state_dir));
	json_object_object_add(o, "state_dir_per_user",
	                       json_object_new_boolean(per_user));
	json_object_object_add(o, "user", jstr(c->user));
	json_object_object_add(o, "ca_file", jstr(c->ca_file));
	json_object_object_add(o, "artifact_verify_key",
	                       jstr(c->artifact_verify_key));
	json_object_object_add(o, "metrics", jstr(c->metrics));
	json_object_object_add(o, "update_interval_ms",
	                       json_object_new_int64(c->update_interval_ms));
	json_object_object_add(o, "retries", json_object_new_int(c->retries));
	json_object_object_add(o, "spool_max_bytes",
	                       json_object_new_int64(c->spool_max_bytes));
	json_object_object_add(o, "download_min_rate",
	                       json_object_new_int64(c->download_min_rate));
	json_object_object_add(o, "download_grace_ms",
	                       json_object_new_int64(c->download_grace_ms));
	json_object_object_add(o, "server_connections",
	                       json_object_new_int(c->server_connections));
	json_object_object_add(
	    o, "concurrent_authentications",
	    json_object_new_int(c->concurrent_authentications));
	json_object_object_add(o, "concurrent_downloads",
	                       json_object_new_int(c->concurrent_downloads));
	json_object_object_add(o, "boards_per_worker",
	                       json_object_new_int(c->boards_per_worker));
	json_object_object_add(o, "open_files", json_open_files(c));
	json_object_object_add(o, "timeouts", json_timeouts(&c->timeouts));
	for (i = 0; i < c->ndevices; i++)
		json_object_array_add(ds, json_device(c, i, r));
	for (i = 0; i < c->ngroups; i++)
		json_object_array_add(gs, json_group(c, i, r));
	json_object_object_add(o, "devices", ds);
	json_object_object_add(o, "groups", gs);
	return o;
}

/* "--json" (or --json=true/false) among check-config's words; removed. */
static int
take_json_flag(int *argc, char **argv, bool *json)
{
	int i, k;
	bool b = true;

	for (i = 1, k = 1; i < *argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			while (i < *argc)
				argv[k++] = argv[i++];
			break;
		}
		if (strcmp(argv[i], "--json") == 0) {
			*json = true;
			continue;
		}
		if (strncmp(argv[i], "--json=", 7) == 0) {
			if (parse_bool(&(const struct flag){0, "json", false,
			                                    F_VERBOSE},
			               argv[i] + 7, &b) == -1)
				return -1;
			*json = b;
			continue;
		}
		argv[k++] = argv[i];
	}
	*argc = k;
	return 0;
}

/*
 * Every check a start makes, without generating keys or touching a board
 * or the server: the plan on stdout, then every problem, one line each
 * (file: key path: what was expected) on stderr; exit 1 when there is one.
 * --json: the same as one object on stdout.
 */
static int
cmd_check_config(int argc, char **argv)
{
	struct config_report r;
	struct config *c;
	json_object *root;
	bool json = false, per_user = false;
	char *line;
	size_t i;

	if (take_json_flag(&argc, argv, &json) == -1 ||
	    parse_flags(argc, argv, 1, false) == -1)
		return EX_USAGE;
	if (want_help) {
		usage(stdout);
		return 0;
	}
	log_setverbose(gopts.verbose);
	memset(&r, 0, sizeof(r));
	c = load_checked(&r, &per_user);
	if (json) {
		root = json_object_new_object();
		json_object_object_add(
		    root, "config",
		    jstr(c != NULL ? c->path : gopts.config_path));
		json_object_object_add(root, "plan",
		                       c != NULL ? json_plan(c, per_user, &r)
		                                 : NULL);
		json_object_object_add(root, "ok",
		                       json_object_new_boolean(r.nerrors == 0));
		json_object_object_add(root, "errors",
		                       json_issues(r.errors, r.nerrors));
		json_object_object_add(root, "warnings",
		                       json_issues(r.warnings, r.nwarnings));
		printf("%s\n", json_object_to_json_string_ext(
		                   root, JSON_C_TO_STRING_PRETTY |
		                             JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(root);
	} else {
		if (c != NULL)
			print_plan(c, per_user, &r);
		/* Warnings as the daemon logs them; errors as plain lines. */
		log_report(&(struct config_report){.nwarnings = r.nwarnings,
		                                   .warnings = r.warnings});
		for (i = 0; i < r.nerrors; i++) {
			line = config_issue_line(&r.errors[i]);
			fprintf(stderr, "%s\n", line);
			free(line);
		}
		if (r.nerrors > 0)
			printf("config %s: %zu error%s; the daemon would "
			       "refuse to start\n",
			       c != NULL                  ? c->path
			       : r.errors[0].file != NULL ? r.errors[0].file
			                                  : "not found",
			       r.nerrors, r.nerrors == 1 ? "" : "s");
		else
			printf("config OK: %zu devices, %zu groups\n",
			       c->ndevices, c->ngroups);
	}
	i = r.nerrors;
	config_report_free(&r);
	config_free(c);
	return i > 0 ? EX_CONFIG : 0;
}

/* --- the daemon ------------------------------------------------------------
 */

/*
 * Every key is loaded, or generated at a device's first start, before any
 * board or server is used; each problem is logged, and any stops the start.
 */
static int
load_all_keys(const struct config *c, const char *state_dir)
{
	EVP_PKEY *pkey;
	char err[PATH_MAX + 512];
	bool generated;
	size_t i, n = c->ndevices + c->ngroups;
	int rc = 0;

	for (i = 0; i < n; i++) {
		const char *path = i < c->ndevices
		                       ? c->devices[i].key_path
		                       : c->groups[i - c->ndevices].key_path;
		const char *name = i < c->ndevices
		                       ? c->devices[i].name
		                       : c->groups[i - c->ndevices].name;

		if ((pkey = keys_load_for_device(state_dir, c->key_dir, path,
		                                 &generated, err,
		                                 sizeof(err))) == NULL) {
			log_errx("Cannot load device key", "device=%s error=%s",
			         log_q(name), log_q(err));
			rc = -1;
			continue;
		}
		log_info(generated ? "Generated new key" : "Loaded key",
		         "device=%s path=%s", log_q(name), log_q(path));
		EVP_PKEY_free(pkey);
	}
	return rc;
}

/* mkdir -p, 0700 for what is created: a per-user state directory's parents. */
static int
make_state_dir(const char *dir)
{
	char *s = xstrdup(dir), *p;
	int rc = 0;

	for (p = s + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		if (*p == '\0') {
			if (mkdir(s, 0700) == -1 && errno != EEXIST)
				rc = -1;
			break;
		}
		*p = '\0';
		if (mkdir(s, 0700) == -1 && errno != EEXIST)
			rc = -1;
		*p = '/';
	}
	if (rc == -1)
		log_err("Cannot create the state directory", "path=%s",
		        log_q(dir));
	free(s);
	return rc;
}

/*
 * The state directory the daemon runs with: state_dir changes only at a
 * restart, so a reload records keys here, not in a new config's.
 */
static char *running_state_dir;

/* Every error on one line: what a refused reload logs. */
static void
join_errors(const struct config_report *r, char *err, size_t errcap)
{
	size_t i, off = 0;
	char *line;
	int n;

	err[0] = '\0';
	for (i = 0; i < r->nerrors && off < errcap; i++) {
		line = config_issue_line(&r->errors[i]);
		n = snprintf(err + off, errcap - off, "%s%s", i > 0 ? "; " : "",
		             line);
		free(line);
		if (n < 0)
			break;
		off += (size_t)n;
	}
}

/*
 * The config a start or a reload runs with.  At a start every problem is
 * logged on its own line; a reload's go into err, for its one refusal.
 */
static struct config *
load_for_daemon(bool starting, char *err, size_t errcap)
{
	struct config_report r;
	struct config *c;
	bool per_user = false;

	memset(&r, 0, sizeof(r));
	c = load_checked(&r, &per_user);
	if (starting)
		log_report(&r);
	else {
		log_report(&(struct config_report){.nwarnings = r.nwarnings,
		                                   .warnings = r.warnings});
		join_errors(&r, err, errcap);
	}
	if (c != NULL && r.nerrors > 0) {
		config_free(c);
		c = NULL;
	}
	config_report_free(&r);
	if (c != NULL && per_user && starting)
		log_info("Not running as root and " CONFIG_DEFAULT_STATE_DIR
		         " does not exist: using a per-user state directory",
		         "state_dir=%s", log_q(c->state_dir));
	return c;
}

/* SIGHUP: the same file, the same command-line overrides, every key. */
static struct config *
reload_config(const char *path, char *err, size_t errcap)
{
	struct config *c;
	const char *saved = gopts.config_path;

	/* The file the daemon runs with, even when it came from the search. */
	gopts.config_path = path;
	c = load_for_daemon(false, err, errcap);
	gopts.config_path = saved;
	if (c == NULL)
		return NULL;
	if (load_all_keys(c, running_state_dir) == -1) {
		snprintf(err, errcap, "a key cannot be loaded (see above)");
		config_free(c);
		return NULL;
	}
	return c;
}

static int
run_daemon(void)
{
	struct config *c;
	char err[8];
	int rc;

	fd_limit_raise();
	if ((c = load_for_daemon(true, err, sizeof(err))) == NULL)
		return EX_CONFIG;
	if (c->log_json) {
		/* From here on; workers take it from the environment. */
		setenv("RDFM_LOG_FORMAT", "json", 1);
		log_setformat(LOG_JSON);
	}
	log_info("Configuration loaded", "file=%s devices=%zu groups=%zu",
	         log_q(c->path), c->ndevices, c->ngroups);
	if (make_state_dir(c->state_dir) == -1 ||
	    load_all_keys(c, c->state_dir) == -1) {
		config_free(c);
		return EX_CONFIG;
	}
	running_state_dir = xstrdup(c->state_dir);
	rc = daemon_run(c, gopts.once, reload_config);
	free(running_state_dir);
	return rc;
}

int
main(int argc, char **argv)
{
	size_t i;
	int cmd;

	log_init(0, NULL);
	if ((cmd = parse_flags(argc, argv, 1, true)) == -1)
		return EX_USAGE;
	if (want_version) {
		printf(PROGNAME " %s\n", VERSION);
		return 0;
	}
	if (want_help && cmd == argc) {
		usage(stdout);
		return 0;
	}
	log_setverbose(gopts.verbose);
	if (cmd == argc)
		return run_daemon();
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[cmd], commands[i].name) == 0)
			return commands[i].fn(argc - cmd, argv + cmd);
	usage_error("unknown command \"%s\"", argv[cmd]);
	return EX_USAGE;
}
