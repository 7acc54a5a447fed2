/*
 * The BLE transport worker: SMP over GATT through att_client.c, on a
 * BlueZ L2CAP LE socket on the ATT channel of the board found by its
 * advertised name on hci<device_index>, or (simulation only) on the
 * virtual board's abstract Unix socket named by att_socket.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bluetooth/bluetooth.h>
#include <bluetooth/hci.h>
#include <bluetooth/hci_lib.h>
#include <bluetooth/l2cap.h>

#include "adv.h"
#include "att_client.h"
#include "engine.h"
#include "log.h"
#include "sandbox.h"
#include "xmalloc.h"

#define BLE_MAX_PKT      65535
#define BLE_STEP_TIMEOUT 3000  /* ms per discovery step */
#define BLE_SCAN_MS      10000 /* looking for the advertised name */
#define BLE_CONNECT_MS   10000

struct ble_link {
	struct att_client *att;
	char *att_socket;
	unsigned int dev_index;
	char *peer_name;
	struct engine *e;
};

int ble_main(int argc, char **argv);

/* Simulation: the virtual board's ATT server on an abstract socket. */
static int
ble_connect_sim(struct ble_link *b, char *why, size_t whycap)
{
	struct sockaddr_un sun;
	size_t n = strlen(b->att_socket + 1);
	int fd;

	if (b->att_socket[0] != '@' || n == 0 || n >= sizeof(sun.sun_path)) {
		snprintf(why, whycap,
		         "att_socket \"%s\" must be @NAME (an abstract socket)",
		         b->att_socket);
		return -1;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path + 1, b->att_socket + 1, n);
	if ((fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) == -1) {
		snprintf(why, whycap, "socket: %s", strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sun,
	            offsetof(struct sockaddr_un, sun_path) + 1 + n) == -1) {
		snprintf(why, whycap, "cannot connect to %s: %s", b->att_socket,
		         strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Scan on the adapter until a board advertises our peer name.  Active
 * scanning, so names carried in scan responses are seen too.
 */
static int
ble_scan(struct ble_link *b, struct adv_addr *found, char *why, size_t whycap)
{
	struct hci_filter nf;
	struct pollfd pfd;
	uint8_t buf[HCI_MAX_EVENT_SIZE + 1];
	struct timespec t0, t;
	ssize_t n;
	int dd, rc = -1, elapsed;

	if ((dd = hci_open_dev(b->dev_index)) == -1) {
		snprintf(why, whycap, "cannot open hci%u: %s", b->dev_index,
		         strerror(errno));
		return -1;
	}
	hci_filter_clear(&nf);
	hci_filter_set_ptype(HCI_EVENT_PKT, &nf);
	hci_filter_set_event(EVT_LE_META_EVENT, &nf);
	if (hci_le_set_scan_parameters(dd, 0x01, htobs(0x0010), htobs(0x0010),
	                               0x00, 0x00, 1000) == -1 ||
	    setsockopt(dd, SOL_HCI, HCI_FILTER, &nf, sizeof(nf)) == -1 ||
	    hci_le_set_scan_enable(dd, 0x01, 0x00, 1000) == -1) {
		snprintf(why, whycap, "cannot start an LE scan on hci%u: %s",
		         b->dev_index, strerror(errno));
		hci_close_dev(dd);
		return -1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	snprintf(why, whycap, "no board advertising \"%s\" on hci%u",
	         b->peer_name, b->dev_index);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		elapsed = (t.tv_sec - t0.tv_sec) * 1000 +
		          (t.tv_nsec - t0.tv_nsec) / 1000000;
		if (elapsed >= BLE_SCAN_MS)
			break;
		pfd.fd = dd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, BLE_SCAN_MS - elapsed) <= 0)
			break;
		if ((n = read(dd, buf, sizeof(buf))) <= 0)
			break;
		if (adv_find_name(buf, n, b->peer_name, found) == 1) {
			rc = 0;
			break;
		}
	}
	hci_le_set_scan_enable(dd, 0x00, 0x00, 1000);
	hci_close_dev(dd);
	return rc;
}

/* An L2CAP LE socket on the ATT channel (CID 4) to the board. */
static int
ble_connect_l2cap(struct ble_link *b, const struct adv_addr *a, char *why,
                  size_t whycap)
{
	struct sockaddr_l2 src, dst;
	struct pollfd pfd;
	socklen_t sl = sizeof(int);
	int fd, err = 0;

	memset(&src, 0, sizeof(src));
	src.l2_family = AF_BLUETOOTH;
	src.l2_cid = htobs(4);
	src.l2_bdaddr_type = BDADDR_LE_PUBLIC;
	if (hci_devba(b->dev_index, &src.l2_bdaddr) == -1)
		bacpy(&src.l2_bdaddr, BDADDR_ANY);
	memset(&dst, 0, sizeof(dst));
	dst.l2_family = AF_BLUETOOTH;
	dst.l2_cid = htobs(4);
	dst.l2_bdaddr_type = a->type == 0 ? BDADDR_LE_PUBLIC : BDADDR_LE_RANDOM;
	memcpy(&dst.l2_bdaddr, a->b, 6);
	fd = socket(AF_BLUETOOTH, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK,
	            BTPROTO_L2CAP);
	if (fd == -1 || bind(fd, (struct sockaddr *)&src, sizeof(src)) == -1) {
		snprintf(why, whycap, "L2CAP socket: %s", strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&dst, sizeof(dst)) == -1 &&
	    errno != EINPROGRESS) {
		err = errno;
	} else {
		pfd.fd = fd;
		pfd.events = POLLOUT;
		if (poll(&pfd, 1, BLE_CONNECT_MS) <= 0)
			err = ETIMEDOUT;
		else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) == -1)
			err = errno;
	}
	if (err != 0) {
		snprintf(why, whycap, "cannot connect to \"%s\": %s",
		         b->peer_name, strerror(err));
		close(fd);
		return -1;
	}
	/* Discovery and the data path expect blocking sends. */
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) == -1) {
		snprintf(why, whycap, "fcntl: %s", strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * A real adapter.  Without one (these machines have none) this is the one
 * clear error the worker reports for every request.
 */
static int
ble_connect_hci(struct ble_link *b, char *why, size_t whycap)
{
	struct hci_dev_info di;
	struct adv_addr a;

	if (hci_devinfo(b->dev_index, &di) == -1) {
		snprintf(why, whycap,
		         "no Bluetooth controller hci%u (%s): BLE needs a "
		         "controller, or att_socket for the simulator",
		         b->dev_index, strerror(errno));
		return -1;
	}
	if (!hci_test_bit(HCI_UP, &di.flags)) {
		snprintf(why, whycap, "Bluetooth controller hci%u is down",
		         b->dev_index);
		return -1;
	}
	if (ble_scan(b, &a, why, whycap) == -1)
		return -1;
	log_info("ble: board found",
	         "peer=%s addr=%02x:%02x:%02x:%02x:%02x:%02x",
	         log_q(b->peer_name), a.b[5], a.b[4], a.b[3], a.b[2], a.b[1],
	         a.b[0]);
	return ble_connect_l2cap(b, &a, why, whycap);
}

static int
ble_connect(struct ble_link *b, char *why, size_t whycap)
{
	int fd;

	fd = b->att_socket != NULL && b->att_socket[0] != '\0'
	         ? ble_connect_sim(b, why, whycap)
	         : ble_connect_hci(b, why, whycap);
	if (fd == -1)
		return -1;
	if (att_client_start(b->att, fd, BLE_STEP_TIMEOUT, why, whycap) == -1)
		return -1;
	log_info("ble link open", "peer=%s", log_q(b->peer_name));
	return 0;
}

static int
ble_open(void *ctx, const Ipc__LinkConfig *cfg, int fd, char *why,
         size_t whycap)
{
	struct ble_link *b = ctx;

	if (fd != -1)
		close(fd);
	free(b->att_socket);
	b->att_socket = xstrdup(cfg->att_socket);
	b->dev_index = cfg->device_index;
	return ble_connect(b, why, whycap);
}

static int
ble_reopen(void *ctx, int fd, char *why, size_t whycap)
{
	if (fd != -1)
		close(fd);
	return ble_connect(ctx, why, whycap);
}

static void
ble_close(void *ctx)
{
	att_client_close(((struct ble_link *)ctx)->att);
}

static int
ble_fd(void *ctx)
{
	return att_client_fd(((struct ble_link *)ctx)->att);
}

static void
ble_packet(void *arg, const uint8_t *pkt, size_t len)
{
	struct ble_link *b = arg;

	engine_packet(b->e, pkt, len);
}

static int
ble_read(void *ctx, struct engine *e)
{
	struct ble_link *b = ctx;

	b->e = e;
	return att_client_read(b->att, ble_packet, b);
}

static int
ble_send(void *ctx, const uint8_t *pkt, size_t len)
{
	return att_client_send(((struct ble_link *)ctx)->att, pkt, len);
}

static size_t
ble_max_pkt(void *ctx)
{
	(void)ctx;
	return BLE_MAX_PKT;
}

/* One board per worker for now: a second, different name is refused. */
static int
ble_add_board(void *ctx, const char *peer_name)
{
	struct ble_link *b = ctx;

	if (b->peer_name != NULL)
		return strcmp(b->peer_name, peer_name) == 0 ? 0 : -1;
	b->peer_name = xstrdup(peer_name);
	return 0;
}

static const struct link_ops ble_ops = {
    .role = "ble",
    .needs_board = 1,
    .sandbox_flags =
        SANDBOX_ALLOW_SOCKET | SANDBOX_ALLOW_HCI | SANDBOX_KEEP_NET_CAPS,
    .open = ble_open,
    .reopen = ble_reopen,
    .close = ble_close,
    .fd = ble_fd,
    .read = ble_read,
    .send = ble_send,
    .max_pkt = ble_max_pkt,
    .add_board = ble_add_board,
};

int
ble_main(int argc, char **argv)
{
	struct ble_link *b = xcalloc(1, sizeof(*b));
	int rc;

	b->att = att_client_new(BLE_MAX_PKT);
	rc = engine_run(&ble_ops, b, argc, argv);
	att_client_free(b->att);
	free(b->att_socket);
	free(b->peer_name);
	free(b);
	return rc;
}

int
main(int argc, char **argv)
{
	return ble_main(argc, argv);
}
