/*
 * rdfm-mcumgr-client: the command line (the Go client's cobra flags), the
 * sub-command table, and the daemon's start-up: config, then every key,
 * before any board or server is touched.
 */
#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "config.h"
#include "daemon.h"
#include "duration.h"
#include "keys.h"
#include "log.h"
#include "mgmt.h"
#include "supervisor.h"

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
    {"check-config", cmd_check_config, "validate the config, print the plan"},
    {"artifact", cmd_artifact, "inspect an update artifact"},
    {"smp", cmd_smp, "run one SMP operation on one board"},
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
	    "  -c, --config FILE        config file (default: ./config.json, "
	    "$HOME/.config/rdfm-mcumgr/config.json,\n"
	    "                           /etc/rdfm-mcumgr/config.json)\n"
	    "  -s, --server URL         RDFM server URL (overrides "
	    "\"server\")\n"
	    "  -k, --key-dir DIR        device key directory (overrides "
	    "\"key_dir\")\n"
	    "  -r, --retries N          update attempts per device, 0 = "
	    "unlimited (overrides \"retries\")\n"
	    "  -i, --interval DURATION  poll interval, e.g. 10s, 15m, 1h30m "
	    "(overrides \"update_interval\")\n"
	    "      --state-dir DIR      state directory (overrides "
	    "\"state_dir\", default " CONFIG_DEFAULT_STATE_DIR ")\n"
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

struct config *
supervisor_load_config(void)
{
	struct config *c;
	char err[1024];

	if ((c = config_load(gopts.config_path, &gopts.ov, err, sizeof(err))) ==
	    NULL)
		log_errx("Invalid configuration", "error=%s", log_q(err));
	return c;
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

/*
 * Report what start-up will do with a key without generating it; an
 * existing key must load.  0 when fine.
 */
static int
check_key(const char *path)
{
	struct stat st;
	EVP_PKEY *pkey;
	char err[512];

	if (lstat(path, &st) == -1 && errno == ENOENT) {
		printf("  key: %s (missing: an RSA-%d key will be generated "
		       "at start)\n",
		       path, KEYS_RSA_BITS);
		return 0;
	}
	if ((pkey = keys_load(path, err, sizeof(err))) == NULL) {
		printf("  key: %s (UNUSABLE)\n", path);
		log_errx("Unusable device key", "error=%s", log_q(err));
		return -1;
	}
	printf("  key: %s (present, RSA-%d)\n", path, EVP_PKEY_get_bits(pkey));
	EVP_PKEY_free(pkey);
	return 0;
}

static void
print_plan_header(const struct config *c)
{
	char iv[DURATION_BUFSZ];
	struct stat st;

	printf("config: %s\n", c->path);
	printf("server: %s\n", c->server);
	printf("key_dir: %s%s\n", c->key_dir,
	       stat(c->key_dir, &st) == -1 ? " (missing: will be created, "
	                                     "mode 0700)"
	                                   : "");
	printf("state_dir: %s\n", c->state_dir);
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
	print_timeouts("", &c->timeouts);
}

static int
cmd_check_config(int argc, char **argv)
{
	struct config *c;
	char iv[DURATION_BUFSZ], err[1024];
	size_t i, j;
	int bad = 0;

	if (parse_flags(argc, argv, 1, false) == -1)
		return EX_USAGE;
	if (want_help) {
		usage(stdout);
		return 0;
	}
	log_setverbose(gopts.verbose);
	/* A plain line for a person at a terminal, not a log line. */
	if ((c = config_load(gopts.config_path, &gopts.ov, err, sizeof(err))) ==
	    NULL) {
		fprintf(stderr, PROGNAME ": %s\n", err);
		return EX_CONFIG;
	}
	print_plan_header(c);
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
		bad |= check_key(d->key_path);
	}
	for (i = 0; i < c->ngroups; i++) {
		const struct group_cfg *g = &c->groups[i];

		printf("group %s: id %s, type %s, every %s, %zu members\n",
		       g->name, g->id, g->type,
		       duration_format(g->update_interval_ms, iv, sizeof(iv)),
		       g->nmembers);
		print_timeouts("  ", &g->timeouts);
		mgmt_plan_actions("  ", &g->mgmt);
		bad |= check_key(g->key_path);
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
	if (bad) {
		printf("config %s has unusable keys\n", c->path);
		config_free(c);
		return EX_CONFIG;
	}
	mgmt_plan_summary(c);
	printf("config OK: %zu devices, %zu groups\n", c->ndevices, c->ngroups);
	config_free(c);
	return 0;
}

/* Every key is loaded, or generated, before any board or server is used. */
static int
load_all_keys(const struct config *c)
{
	EVP_PKEY *pkey;
	char err[512];
	bool generated;
	size_t i, n = c->ndevices + c->ngroups;

	for (i = 0; i < n; i++) {
		const char *path = i < c->ndevices
		                       ? c->devices[i].key_path
		                       : c->groups[i - c->ndevices].key_path;
		const char *name = i < c->ndevices
		                       ? c->devices[i].name
		                       : c->groups[i - c->ndevices].name;

		if ((pkey = keys_load_or_generate(path, &generated, err,
		                                  sizeof(err))) == NULL) {
			log_errx("Cannot load device key", "device=%s error=%s",
			         log_q(name), log_q(err));
			return -1;
		}
		log_info(generated ? "Generated new key" : "Loaded key",
		         "device=%s path=%s", log_q(name), log_q(path));
		EVP_PKEY_free(pkey);
	}
	return 0;
}

/* SIGHUP: the same file, the same command-line overrides, every key. */
static struct config *
reload_config(const char *path, char *err, size_t errcap)
{
	struct config *c;

	if ((c = config_load(path, &gopts.ov, err, errcap)) == NULL)
		return NULL;
	if (load_all_keys(c) == -1) {
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

	if ((c = supervisor_load_config()) == NULL)
		return EX_CONFIG;
	log_info("Configuration loaded", "file=%s devices=%zu groups=%zu",
	         log_q(c->path), c->ndevices, c->ngroups);
	if (load_all_keys(c) == -1) {
		config_free(c);
		return EX_CONFIG;
	}
	return daemon_run(c, gopts.once, reload_config);
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
