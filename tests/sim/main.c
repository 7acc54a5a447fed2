/*
 * mcumgr-board-sim: command line, start-up and the event loop of the
 * virtual board.  See usage() for the options; tests and benchmarks rely
 * on their names and on the READY line.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "sim.h"

struct board board;
const struct link_ops *blink;

static struct sim_opts opts = {
    .slot_size = 512 * 1024,
    .buf_size = 384,
    .buf_count = 4,
    .reboot_ms = 300,
    .confirm_ms = 1000,
    .ble_mtu = 498,
};
static struct event *sigterm_ev, *sigint_ev;

static void
usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: mcumgr-board-sim (--serial LINK | --udp HOST:PORT | --ble "
	    "@NAME)\n"
	    "                        [options]\n"
	    "A virtual Zephyr smp_svr board booting through MCUboot.  Prints "
	    "one line\n"
	    "\"READY serial <path>\", \"READY udp <host:port>\" or \"READY ble "
	    "@<name>\"\n"
	    "on stdout when it answers.\n"
	    "\n"
	    "Links (exactly one):\n"
	    "  --serial LINK         pseudo-terminal, its slave symlinked at "
	    "LINK\n"
	    "  --reenumerate         a reset closes the terminal and makes a "
	    "new one at\n"
	    "                        LINK after the reboot delay (USB "
	    "CDC-ACM)\n"
	    "  --baud N              pace both directions at N baud, 8N1 (0: "
	    "unpaced,\n"
	    "                        the default)\n"
	    "  --console-noise       mix console log lines into the serial "
	    "output\n"
	    "  --udp HOST:PORT       UDP socket (port 0 picks a free one)\n"
	    "  --ble @NAME           ATT server on the abstract Unix "
	    "SOCK_SEQPACKET\n"
	    "                        socket NAME, one ATT PDU per datagram\n"
	    "  --ble-mtu N           the board's ATT MTU (default 498)\n"
	    "\n"
	    "Flash and MCUboot:\n"
	    "  --slot-size N         bytes per slot (default 524288)\n"
	    "  --image FILE          MCUboot image for slot 0, confirmed, when "
	    "the state\n"
	    "                        is new (without it slot 0 is blank)\n"
	    "  --state FILE          keep both slots and the MCUboot flags in "
	    "FILE\n"
	    "  --reboot-ms N         silence after a reset (default 300)\n"
	    "  --reject-new          MCUboot finds every new image invalid\n"
	    "  --no-boot             never answer again after a reset\n"
	    "\n"
	    "Firmware of a new (test) image:\n"
	    "  --self-confirm        confirm itself --confirm-ms after boot\n"
	    "  --self-reject         fail the self test --confirm-ms after "
	    "boot, reset\n"
	    "  --confirm-ms N        (default 1000)\n"
	    "\n"
	    "SMP server:\n"
	    "  --buf-size N          receive buffer size reported and enforced "
	    "(384)\n"
	    "  --buf-count N         receive buffers: requests that may wait "
	    "(4)\n"
	    "  --definite-maps       definite-length CBOR maps in replies\n"
	    "  --zephyr-3            answer every request in SMP v1\n"
	    "  --latency-ms N        delay each reply by N ms (pipelined, in "
	    "order)\n"
	    "  --flash-us-per-kb N   processing time per KiB written to flash "
	    "(0)\n"
	    "  --erase-us-per-kb N   time a new upload's erase takes per KiB "
	    "of its\n"
	    "                        len, spent on the first packet (0)\n"
	    "  --proc-us N           processing time of every request (0)\n"
	    "\n"
	    "Faults (reproducible with --seed N):\n"
	    "  --drop-rate P         requests lost before the board sees them\n"
	    "  --drop-reply-rate P   requests applied, replies lost\n"
	    "  --corrupt-rate P      serial lines (both ways) with one byte "
	    "corrupted\n"
	    "  --hang-after BYTES    stop answering once BYTES were uploaded\n"
	    "  --die-after BYTES     exit once BYTES were uploaded (flash "
	    "kept)\n"
	    "  --stuck-upload        answer every upload packet with offset 0\n"
	    "\n"
	    "Other groups (taskstat, mpstat, datetime, info, bootloader, "
	    "stat,\n"
	    "shell, fs, fs-stat, fs-hash; files are kept in memory):\n"
	    "  --without LIST        comma-separated groups that answer \"not\n"
	    "                        supported\", e.g. --without shell,fs\n"
	    "  --shell-legacy-rc     shell exec returns \"rc\" instead of "
	    "\"ret\"\n"
	    "\n"
	    "Other:\n"
	    "  --status FILE         JSON state, rewritten after every change\n"
	    "  -v, --verbose         debug log lines on stderr\n"
	    "  -h, --help            this text\n");
}

enum {
	O_SERIAL = 256,
	O_REENUM,
	O_BAUD,
	O_NOISE,
	O_UDP,
	O_BLE,
	O_BLE_MTU,
	O_SLOT_SIZE,
	O_IMAGE,
	O_STATE,
	O_REBOOT_MS,
	O_REJECT,
	O_NO_BOOT,
	O_SELF_CONFIRM,
	O_SELF_REJECT,
	O_CONFIRM_MS,
	O_BUF_SIZE,
	O_BUF_COUNT,
	O_DEFINITE,
	O_ZEPHYR3,
	O_LATENCY,
	O_FLASH_US,
	O_PROC_US,
	O_SEED,
	O_DROP,
	O_DROP_REPLY,
	O_CORRUPT,
	O_HANG,
	O_DIE,
	O_STUCK_UPLOAD,
	O_WITHOUT,
	O_SHELL_LEGACY,
	O_STATUS,
	O_ERASE_US,
};

static const struct option longopts[] = {
    {"serial", required_argument, NULL, O_SERIAL},
    {"reenumerate", no_argument, NULL, O_REENUM},
    {"baud", required_argument, NULL, O_BAUD},
    {"console-noise", no_argument, NULL, O_NOISE},
    {"udp", required_argument, NULL, O_UDP},
    {"ble", required_argument, NULL, O_BLE},
    {"ble-mtu", required_argument, NULL, O_BLE_MTU},
    {"slot-size", required_argument, NULL, O_SLOT_SIZE},
    {"image", required_argument, NULL, O_IMAGE},
    {"state", required_argument, NULL, O_STATE},
    {"reboot-ms", required_argument, NULL, O_REBOOT_MS},
    {"reject-new", no_argument, NULL, O_REJECT},
    {"no-boot", no_argument, NULL, O_NO_BOOT},
    {"self-confirm", no_argument, NULL, O_SELF_CONFIRM},
    {"self-reject", no_argument, NULL, O_SELF_REJECT},
    {"confirm-ms", required_argument, NULL, O_CONFIRM_MS},
    {"buf-size", required_argument, NULL, O_BUF_SIZE},
    {"buf-count", required_argument, NULL, O_BUF_COUNT},
    {"definite-maps", no_argument, NULL, O_DEFINITE},
    {"zephyr-3", no_argument, NULL, O_ZEPHYR3},
    {"latency-ms", required_argument, NULL, O_LATENCY},
    {"flash-us-per-kb", required_argument, NULL, O_FLASH_US},
    {"proc-us", required_argument, NULL, O_PROC_US},
    {"seed", required_argument, NULL, O_SEED},
    {"drop-rate", required_argument, NULL, O_DROP},
    {"drop-reply-rate", required_argument, NULL, O_DROP_REPLY},
    {"corrupt-rate", required_argument, NULL, O_CORRUPT},
    {"hang-after", required_argument, NULL, O_HANG},
    {"die-after", required_argument, NULL, O_DIE},
    {"stuck-upload", no_argument, NULL, O_STUCK_UPLOAD},
    {"without", required_argument, NULL, O_WITHOUT},
    {"shell-legacy-rc", no_argument, NULL, O_SHELL_LEGACY},
    {"status", required_argument, NULL, O_STATUS},
    {"erase-us-per-kb", required_argument, NULL, O_ERASE_US},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static uint64_t
num(const char *opt, const char *s, uint64_t min, uint64_t max)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (*s == '\0' || *s == '-' || *end != '\0' || errno != 0 || v < min ||
	    v > max)
		fatalx("bad option value",
		       "option=--%s value=%s expected="
		       "\"integer %" PRIu64 "..%" PRIu64 "\"",
		       opt, log_q(s), min, max);
	return v;
}

static double
rate(const char *opt, const char *s)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (*s == '\0' || *end != '\0' || errno != 0 || !(v >= 0 && v <= 1))
		fatalx("bad option value",
		       "option=--%s value=%s expected="
		       "\"probability 0..1\"",
		       opt, log_q(s));
	return v;
}

static void
parse_args(int argc, char **argv)
{
	int ch, nlinks, idx = 0;

	while ((ch = getopt_long(argc, argv, "vh", longopts, &idx)) != -1) {
		/* For error messages: idx is only set for long options. */
		const char *name = ch >= 256 ? longopts[idx].name : "";

		switch (ch) {
		case O_SERIAL:
			opts.serial = optarg;
			break;
		case O_REENUM:
			opts.reenumerate = true;
			break;
		case O_BAUD:
			opts.baud = num(name, optarg, 0, 100000000);
			break;
		case O_NOISE:
			opts.console_noise = true;
			break;
		case O_UDP:
			opts.udp = optarg;
			break;
		case O_BLE:
			opts.ble = optarg;
			break;
		case O_BLE_MTU:
			opts.ble_mtu = num(name, optarg, 23, 517);
			break;
		case O_SLOT_SIZE:
			opts.slot_size = num(name, optarg, 1024, 1U << 30);
			break;
		case O_IMAGE:
			opts.image = optarg;
			break;
		case O_STATE:
			opts.state = optarg;
			break;
		case O_REBOOT_MS:
			opts.reboot_ms = num(name, optarg, 0, 3600000);
			break;
		case O_REJECT:
			opts.reject_new = true;
			break;
		case O_NO_BOOT:
			opts.no_boot = true;
			break;
		case O_SELF_CONFIRM:
			opts.self_confirm = true;
			break;
		case O_SELF_REJECT:
			opts.self_reject = true;
			break;
		case O_CONFIRM_MS:
			opts.confirm_ms = num(name, optarg, 0, 3600000);
			break;
		case O_BUF_SIZE:
			opts.buf_size = num(name, optarg, 16, 65535);
			break;
		case O_BUF_COUNT:
			opts.buf_count = num(name, optarg, 1, 64);
			break;
		case O_DEFINITE:
			opts.definite_maps = true;
			break;
		case O_ZEPHYR3:
			opts.zephyr3 = true;
			break;
		case O_LATENCY:
			opts.latency_ms = num(name, optarg, 0, 60000);
			break;
		case O_FLASH_US:
			opts.flash_us_per_kb = num(name, optarg, 0, 10000000);
			break;
		case O_ERASE_US:
			opts.erase_us_per_kb = num(name, optarg, 0, 10000000);
			break;
		case O_PROC_US:
			opts.proc_us = num(name, optarg, 0, 10000000);
			break;
		case O_SEED:
			opts.seed = num(name, optarg, 0, UINT64_MAX);
			break;
		case O_DROP:
			opts.drop_rate = rate(name, optarg);
			break;
		case O_DROP_REPLY:
			opts.drop_reply_rate = rate(name, optarg);
			break;
		case O_CORRUPT:
			opts.corrupt_rate = rate(name, optarg);
			break;
		case O_HANG:
			opts.hang_after = num(name, optarg, 1, UINT64_MAX);
			break;
		case O_DIE:
			opts.die_after = num(name, optarg, 1, UINT64_MAX);
			break;
		case O_STATUS:
			opts.status = optarg;
			break;
		case O_STUCK_UPLOAD:
			opts.stuck_upload = true;
			break;
		case O_WITHOUT:
			opts.without = optarg;
			break;
		case O_SHELL_LEGACY:
			opts.shell_legacy_rc = true;
			break;
		case 'v':
			opts.verbose = 1;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (optind != argc)
		fatalx("unexpected argument", "arg=%s", log_q(argv[optind]));
	nlinks =
	    (opts.serial != NULL) + (opts.udp != NULL) + (opts.ble != NULL);
	if (nlinks != 1)
		fatalx("give exactly one of --serial, --udp, --ble", NULL);
	if (opts.self_confirm && opts.self_reject)
		fatalx("--self-confirm and --self-reject exclude each other",
		       NULL);
	if ((opts.reenumerate || opts.baud || opts.console_noise ||
	     opts.corrupt_rate > 0) &&
	    opts.serial == NULL)
		fatalx("--reenumerate, --baud, --console-noise and "
		       "--corrupt-rate need --serial",
		       NULL);
	if (opts.ble != NULL && (opts.ble[0] != '@' || opts.ble[1] == '\0' ||
	                         strlen(opts.ble) > 100))
		fatalx("--ble wants @NAME (abstract socket name, at most 99 "
		       "characters)",
		       "value=%s", log_q(opts.ble));
}

void
sim_ready(const char *kind, const char *where)
{
	static bool said;

	if (said)
		return;
	said = true;
	printf("READY %s %s\n", kind, where);
	fflush(stdout);
}

void
sim_exit(int status)
{
	flash_flush();
	status_update();
	fflush(stdout);
	exit(status);
}

static void
signal_cb(evutil_socket_t sig, short ev, void *arg)
{
	(void)ev;
	(void)arg;
	log_info("exiting on signal", "signal=%d", (int)sig);
	event_base_loopbreak(board.base);
}

int
main(int argc, char **argv)
{
	struct event_config *cfg;

	log_init(0, "board-sim");
	parse_args(argc, argv);
	log_setverbose(opts.verbose);
	signal(SIGPIPE, SIG_IGN);

	board.o = &opts;
	/*
	 * Precise timers: libevent otherwise reads the coarse monotonic clock
	 * (a jiffy, 4 ms here), and a serial line timed in 1 ms chunks would
	 * answer milliseconds late.
	 */
	if ((cfg = event_config_new()) == NULL ||
	    event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER) == -1 ||
	    (board.base = event_base_new_with_config(cfg)) == NULL)
		fatalx("cannot create the event loop", NULL);
	event_config_free(cfg);
	faults_init(opts.seed);
	flash_init();
	server_init();
	boot_init();
	sigterm_ev = evsignal_new(board.base, SIGTERM, signal_cb, NULL);
	sigint_ev = evsignal_new(board.base, SIGINT, signal_cb, NULL);
	evsignal_add(sigterm_ev, NULL);
	evsignal_add(sigint_ev, NULL);

	/* The status file exists before READY is printed. */
	status_update();
	if (opts.serial != NULL)
		serial_link_init();
	else if (opts.udp != NULL)
		udp_link_init();
	else
		ble_link_init();

	event_base_dispatch(board.base);

	flash_flush();
	status_update();
	if (opts.serial != NULL)
		serial_link_free();
	else if (opts.udp != NULL)
		udp_link_free();
	else
		ble_link_free();
	server_free();
	sim_groups_free();
	boot_free();
	flash_free();
	event_free(sigterm_ev);
	event_free(sigint_ev);
	event_base_free(board.base);
	return 0;
}
