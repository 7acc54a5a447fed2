/*
 * Which board an `smp` command talks to: --device (serial), --address
 * (UDP), --peer-name (BLE), mcumgr's --conntype/--connstring, or --board
 * NAME from the config file; checked with the config's own words, with
 * timeouts that fit the link, a fast failure for a tty another process
 * holds, and what to check when the board stays silent.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_smp.h"
#include "config.h"
#include "supervisor.h"
#include "tty_holder.h"
#include "xmalloc.h"

#define DEFAULT_REQUEST_MS 2000
#define DEFAULT_CONNECT_MS 5000
#define BLE_CONNECT_MS     20000
#define DEFAULT_STALL_MS   60000
#define DEFAULT_REBOOT_MS  60000
#define DEFAULT_CONFIRM_MS 300000
#define MTU_MIN            32
#define MTU_MAX            65535

/* Strings the link keeps pointing to (the config is freed). */
static char *kept[4];

static const char *
keep(size_t i, const char *s)
{
	free(kept[i]);
	kept[i] = s != NULL ? xstrdup(s) : NULL;
	return kept[i];
}

static int usage_err(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static int
usage_err(const char *fmt, ...)
{
	va_list ap;

	fputs("smp: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return SMP_EX_USAGE;
}

static int
number(const char *opt, const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return usage_err("%s: expected a number from %ld to %ld, got "
		                 "\"%s\"",
		                 opt, min, max, s);
	*out = v;
	return 0;
}

static int
set_baud(struct smp_cli *c, const char *opt, const char *s)
{
	char why[256];
	long v;

	if (number(opt, s, 1, INT_MAX, &v) != 0)
		return SMP_EX_USAGE;
	if (config_check_baud(v, why, sizeof(why)) == -1)
		return usage_err("%s: %s", opt, why);
	c->link.baud = (uint32_t)v;
	return 0;
}

static int
set_mtu(struct smp_cli *c, const char *opt, const char *s)
{
	long v;

	if (number(opt, s, MTU_MIN, MTU_MAX, &v) != 0)
		return SMP_EX_USAGE;
	c->link.mtu = (uint32_t)v;
	return 0;
}

static int
set_address(struct smp_cli *c, const char *opt, const char *s)
{
	char why[256];

	if (config_check_address(s, why, sizeof(why)) == -1)
		return usage_err("%s: %s", opt, why);
	c->link.address = keep(1, s);
	return 0;
}

static int
set_att_socket(struct smp_cli *c, const char *s)
{
	if (s[0] != '@' || strlen(s) < 2 || strlen(s) > 107)
		return usage_err("--att-socket: expected an abstract socket "
		                 "name \"@NAME\", got \"%s\"",
		                 s);
	c->link.att_socket = keep(2, s);
	return 0;
}

static int
kind_of(const char *s, enum worker_kind *k, const char *opt)
{
	if (strcmp(s, "serial") == 0)
		*k = WORKER_SERIAL;
	else if (strcmp(s, "udp") == 0)
		*k = WORKER_UDP;
	else if (strcmp(s, "ble") == 0 || strcmp(s, "bt") == 0)
		*k = WORKER_BLE;
	else
		return usage_err("%s: expected serial, udp or ble, got \"%s\"",
		                 opt, s);
	return 0;
}

/* mcumgr's serial form: dev=PATH,baud=N,mtu=N (or just the path). */
static int
connstring_serial(struct smp_cli *c, const char *s)
{
	char *copy = xstrdup(s), *tok, *save = NULL, *eq;
	int rc = 0;

	for (tok = strtok_r(copy, ",", &save); tok != NULL && rc == 0;
	     tok = strtok_r(NULL, ",", &save)) {
		if ((eq = strchr(tok, '=')) == NULL) {
			if (c->link.device != NULL)
				rc = usage_err(
				    "--connstring: \"%s\" is not "
				    "KEY=VALUE (keys: dev, baud, mtu)",
				    tok);
			else
				c->link.device = keep(0, tok);
			continue;
		}
		*eq++ = '\0';
		if (strcmp(tok, "dev") == 0)
			c->link.device = keep(0, eq);
		else if (strcmp(tok, "baud") == 0)
			rc = set_baud(c, "--connstring baud", eq);
		else if (strcmp(tok, "mtu") == 0)
			rc = set_mtu(c, "--connstring mtu", eq);
		else
			rc = usage_err("--connstring: unknown key \"%s\" for a "
			               "serial link (keys: dev, baud, mtu)",
			               tok);
	}
	free(copy);
	if (rc == 0 && c->link.device == NULL)
		rc = usage_err("--connstring: no dev=PATH for the serial link");
	return rc;
}

/* mcumgr's BLE form: peer_name=NAME[,ctlr_name=hciN]. */
static int
connstring_ble(struct smp_cli *c, const char *s)
{
	char *copy = xstrdup(s), *tok, *save = NULL, *eq;
	int rc = 0;
	long v;

	for (tok = strtok_r(copy, ",", &save); tok != NULL && rc == 0;
	     tok = strtok_r(NULL, ",", &save)) {
		if ((eq = strchr(tok, '=')) == NULL) {
			rc = usage_err("--connstring: \"%s\" is not KEY=VALUE "
			               "(keys: peer_name, ctlr_name)",
			               tok);
			break;
		}
		*eq++ = '\0';
		if (strcmp(tok, "peer_name") == 0)
			c->peer = keep(3, eq);
		else if (strcmp(tok, "ctlr_name") == 0) {
			if (strncmp(eq, "hci", 3) != 0 ||
			    number("--connstring ctlr_name", eq + 3, 0, 255,
			           &v) != 0)
				rc = usage_err("--connstring: ctlr_name: "
				               "expected hciN, got \"%s\"",
				               eq);
			else
				c->link.device_index = (uint32_t)v;
		} else if (strcmp(tok, "peer_id") == 0)
			rc =
			    usage_err("--connstring: peer_id (an address) is "
			              "not supported; give peer_name=NAME, the "
			              "name the board advertises");
		else
			rc = usage_err("--connstring: unknown key \"%s\" for a "
			               "BLE link (keys: peer_name, ctlr_name)",
			               tok);
	}
	free(copy);
	if (rc == 0 && c->peer == NULL)
		rc = usage_err("--connstring: no peer_name=NAME for the BLE "
		               "link");
	return rc;
}

/* A device or group member of the config, with its timeouts. */
static int
from_config(struct smp_cli *c, const struct smp_link_flags *f)
{
	const struct transport_cfg *t = NULL;
	const struct timeouts_cfg *to = NULL;
	const char *slash = strchr(f->board, '/');
	struct config *cfg;
	char err[1024];
	size_t i, j, found = 0;
	int rc = 0;

	if ((cfg =
	         config_load(f->config != NULL ? f->config : gopts.config_path,
	                     &gopts.ov, err, sizeof(err))) == NULL) {
		fprintf(stderr, "smp: --board: %s\n", err);
		return SMP_EX_FAIL;
	}
	for (i = 0; slash == NULL && i < cfg->ndevices; i++)
		if (strcmp(cfg->devices[i].name, f->board) == 0) {
			t = &cfg->devices[i].transport;
			to = &cfg->devices[i].timeouts;
			found++;
		}
	for (i = 0; i < cfg->ngroups; i++) {
		const struct group_cfg *g = &cfg->groups[i];
		size_t glen = slash ? (size_t)(slash - f->board) : 0;

		if (slash != NULL && (strlen(g->name) != glen ||
		                      strncmp(g->name, f->board, glen) != 0))
			continue;
		for (j = 0; j < g->nmembers; j++)
			if (strcmp(g->members[j].name,
			           slash ? slash + 1 : f->board) == 0) {
				t = &g->members[j].transport;
				to = &g->timeouts;
				found++;
			}
	}
	if (found == 0) {
		fprintf(
		    stderr,
		    "smp: --board: no device or group member named \"%s\" in "
		    "%s (devices:",
		    f->board, cfg->path);
		for (i = 0; i < cfg->ndevices; i++)
			fprintf(stderr, " %s", cfg->devices[i].name);
		fprintf(stderr, "; members:");
		for (i = 0; i < cfg->ngroups; i++)
			for (j = 0; j < cfg->groups[i].nmembers; j++)
				fprintf(stderr, " %s/%s", cfg->groups[i].name,
				        cfg->groups[i].members[j].name);
		fprintf(stderr, ")\n");
		rc = SMP_EX_USAGE;
	} else if (found > 1) {
		rc = usage_err("--board: \"%s\" names %zu boards in %s; say "
		               "GROUP/MEMBER",
		               f->board, found, cfg->path);
	} else {
		switch (t->type) {
		case TRANSPORT_SERIAL:
			c->link.kind = WORKER_SERIAL;
			c->link.device = keep(0, t->device);
			c->link.baud = (uint32_t)t->baud;
			c->link.mtu = (uint32_t)t->mtu;
			break;
		case TRANSPORT_UDP:
			c->link.kind = WORKER_UDP;
			c->link.address = keep(1, t->address);
			break;
		case TRANSPORT_BLE:
			c->link.kind = WORKER_BLE;
			c->link.device_index = (uint32_t)t->device_index;
			c->peer = keep(3, t->peer_name);
			c->link.att_socket =
			    t->att_socket ? keep(2, t->att_socket) : NULL;
			break;
		}
		if (!f->timeout_set)
			c->link.request_timeout_ms = (uint32_t)to->request_ms;
		if (!f->erase_set)
			c->link.erase_timeout_ms = (uint32_t)to->erase_ms;
		if (!f->stall_set)
			c->stall_ms = to->stall_ms;
		if (!f->reboot_set)
			c->reboot_ms = to->reboot_ms;
		if (!f->confirm_set)
			c->confirm_ms = to->confirm_ms;
	}
	config_free(cfg);
	return rc;
}

/* Defaults that fit the link: slow serial lines get longer timeouts. */
static void
defaults(struct smp_cli *c)
{
	uint64_t rt;

	if (c->link.kind == WORKER_SERIAL && c->link.baud == 0)
		c->link.baud = 115200;
	if (c->link.request_timeout_ms == 0) {
		c->link.request_timeout_ms = DEFAULT_REQUEST_MS;
		if (c->link.kind == WORKER_SERIAL) {
			/* Three round trips of a large packet, base64 both
			 * ways: 10 bits a byte. */
			rt = 3ULL * 2 * 700 * 10 * 1000 / c->link.baud;
			if (rt > c->link.request_timeout_ms)
				c->link.request_timeout_ms = (uint32_t)rt;
		}
	}
	if (c->connect_ms == 0) {
		c->connect_ms = c->link.kind == WORKER_BLE ? BLE_CONNECT_MS
		                                           : DEFAULT_CONNECT_MS;
		if ((int64_t)c->link.request_timeout_ms * 5 / 2 > c->connect_ms)
			c->connect_ms =
			    (int64_t)c->link.request_timeout_ms * 5 / 2;
	}
	if (c->stall_ms == 0)
		c->stall_ms = DEFAULT_STALL_MS;
	if (c->reboot_ms == 0)
		c->reboot_ms = DEFAULT_REBOOT_MS;
	if (c->confirm_ms == 0)
		c->confirm_ms = DEFAULT_CONFIRM_MS;
	switch (c->link.kind) {
	case WORKER_SERIAL:
		snprintf(c->where, sizeof(c->where), "on %s (serial, %u baud)",
		         c->link.device, c->link.baud);
		break;
	case WORKER_UDP:
		snprintf(c->where, sizeof(c->where), "at %s (UDP)",
		         c->link.address);
		break;
	case WORKER_BLE:
		snprintf(c->where, sizeof(c->where),
		         "\"%s\" on hci%u (Bluetooth LE)", c->peer,
		         c->link.device_index);
		break;
	}
}

/* One kind from the flags that imply one. */
static int
implied_kind(const struct smp_link_flags *f, enum worker_kind *k)
{
	int n = (f->device != NULL) + (f->address != NULL) + (f->peer != NULL);

	if (n > 1)
		return usage_err("give one link: --device (serial), --address "
		                 "(UDP) or --peer-name (BLE)");
	if (f->device != NULL)
		*k = WORKER_SERIAL;
	else if (f->address != NULL)
		*k = WORKER_UDP;
	else if (f->peer != NULL)
		*k = WORKER_BLE;
	else
		return -1;
	return 0;
}

static const char *
kind_name(enum worker_kind k)
{
	return k == WORKER_SERIAL ? "serial" : k == WORKER_UDP ? "udp" : "ble";
}

static int
from_flags(struct smp_cli *c, const struct smp_link_flags *f)
{
	enum worker_kind k = WORKER_SERIAL, ik = WORKER_SERIAL;
	bool have_kind = false;
	int rc;
	long v;

	if (f->transport != NULL) {
		if ((rc = kind_of(f->transport, &k, "--transport")) != 0)
			return rc;
		have_kind = true;
	}
	if (f->conntype != NULL) {
		if ((rc = kind_of(f->conntype, &ik, "--conntype")) != 0)
			return rc;
		if (have_kind && ik != k)
			return usage_err("--transport %s and --conntype %s "
			                 "disagree",
			                 f->transport, f->conntype);
		if (f->connstring == NULL)
			return usage_err("--conntype %s needs --connstring",
			                 f->conntype);
		if (f->device != NULL || f->address != NULL || f->peer != NULL)
			return usage_err("--connstring names the link: drop "
			                 "--device, --address and --peer-name");
		k = ik;
		have_kind = true;
	} else if (f->connstring != NULL)
		return usage_err("--connstring needs --conntype serial, udp or "
		                 "ble");
	if ((rc = implied_kind(f, &ik)) == SMP_EX_USAGE)
		return rc;
	if (rc == 0) {
		if (have_kind && ik != k)
			return usage_err(
			    "--transport %s does not go with --%s (%s)",
			    kind_name(k),
			    ik == WORKER_SERIAL ? "device"
			    : ik == WORKER_UDP  ? "address"
			                        : "peer-name",
			    kind_name(ik));
		k = ik;
		have_kind = true;
	}
	if (!have_kind)
		return usage_err("no link: give --device PATH (serial), "
		                 "--address HOST:PORT (UDP), --peer-name NAME "
		                 "(BLE), --conntype with --connstring, or "
		                 "--board NAME");
	c->link.kind = k;
	if (f->baud != NULL && (rc = set_baud(c, "--baud", f->baud)) != 0)
		return rc;
	if (f->mtu != NULL && (rc = set_mtu(c, "--mtu", f->mtu)) != 0)
		return rc;
	if (f->device_index != NULL) {
		if (number("--device-index", f->device_index, 0, 255, &v) != 0)
			return SMP_EX_USAGE;
		c->link.device_index = (uint32_t)v;
	}
	if (f->att_socket != NULL &&
	    (rc = set_att_socket(c, f->att_socket)) != 0)
		return rc;
	if (f->conntype != NULL) {
		if (k == WORKER_SERIAL)
			return connstring_serial(c, f->connstring);
		if (k == WORKER_UDP)
			return set_address(c, "--connstring", f->connstring);
		return connstring_ble(c, f->connstring);
	}
	switch (k) {
	case WORKER_SERIAL:
		if (f->device == NULL)
			return usage_err("--transport serial needs --device "
			                 "PATH");
		c->link.device = keep(0, f->device);
		return 0;
	case WORKER_UDP:
		if (f->address == NULL)
			return usage_err("--transport udp needs --address "
			                 "HOST:PORT");
		return set_address(c, "--address", f->address);
	case WORKER_BLE:
		if (f->peer == NULL || f->peer[0] == '\0')
			return usage_err("--transport ble needs --peer-name "
			                 "NAME");
		c->peer = keep(3, f->peer);
		return 0;
	}
	return 0;
}

int
cli_link_resolve(struct smp_cli *c, const struct smp_link_flags *f)
{
	int rc;

	if (f->board != NULL) {
		if (f->transport || f->conntype || f->connstring || f->device ||
		    f->address || f->peer || f->att_socket || f->baud ||
		    f->mtu || f->device_index)
			return usage_err("--board takes the link from the "
			                 "config; give no other link flags");
		rc = from_config(c, f);
	} else
		rc = from_flags(c, f);
	if (rc != 0)
		return rc;
	defaults(c);
	return 0;
}

int
cli_link_precheck(struct smp_cli *c)
{
	char why[512];

	if (c->link.kind != WORKER_SERIAL)
		return 0;
	if (tty_probe(c->link.device, why, sizeof(why)) == -1)
		return cli_fail(c, SMP_EX_FAIL, "%s", why);
	return 0;
}

const char *
cli_link_hint(const struct smp_cli *c)
{
	static char buf[512];

	switch (c->link.kind) {
	case WORKER_SERIAL:
		snprintf(
		    buf, sizeof(buf),
		    "check that the board's UART runs at %u baud (--baud), "
		    "that MCUmgr's SMP server is enabled on that UART "
		    "(CONFIG_MCUMGR_TRANSPORT_UART, on a UART the console "
		    "does not use) and that its receive buffer takes our "
		    "packets (try --mtu 128; "
		    "CONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE)",
		    c->link.baud);
		break;
	case WORKER_UDP:
		snprintf(
		    buf, sizeof(buf),
		    "check the address and port (Zephyr's default port is "
		    "1337), that the board runs MCUmgr's UDP transport "
		    "(CONFIG_MCUMGR_TRANSPORT_UDP) and that nothing on the "
		    "way drops UDP");
		break;
	case WORKER_BLE:
		snprintf(
		    buf, sizeof(buf),
		    "check that the board advertises \"%s\" "
		    "(CONFIG_BT_DEVICE_NAME), runs MCUmgr's Bluetooth "
		    "transport (CONFIG_MCUMGR_TRANSPORT_BT) and is in range "
		    "of hci%u",
		    c->peer, c->link.device_index);
		break;
	}
	return buf;
}
