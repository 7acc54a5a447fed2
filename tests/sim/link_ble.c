/*
 * The board's BLE link: a minimal GATT server (GAP service and the SMP
 * service of docs/design.md "SMP") speaking ATT over an abstract-namespace
 * SOCK_SEQPACKET Unix socket, one ATT PDU per datagram.  A reset drops the
 * connection and stops listening until the board is back, as a real
 * board's reset ends the link and its advertising.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "att.h"
#include "smp_ble.h"
#include "sim.h"

#define H_GAP           0x0001
#define H_GAP_NAME_DECL 0x0002
#define H_GAP_NAME      0x0003
#define H_SMP           0x0010
#define H_SMP_DECL      0x0011
#define H_SMP_VALUE     0x0012
#define H_SMP_CCCD      0x0013

struct attr {
	uint16_t handle;
	uint16_t group_end; /* services only */
	struct att_uuid type;
	uint8_t value[20];
	size_t value_len; /* 0: not readable through discovery */
};

static struct attr attrs[7];
static size_t nattrs;
static int listen_fd = -1, conn_fd = -1;
static struct event *listen_ev, *conn_ev;
static struct smp_ble_reasm *reasm;
static uint16_t conn_mtu = ATT_DEFAULT_MTU;
static bool notify_on;

static void
add_attr(uint16_t handle, uint16_t type, uint16_t end, const void *v,
         size_t vlen)
{
	struct attr *a = &attrs[nattrs++];

	a->handle = handle;
	a->group_end = end;
	att_uuid16(&a->type, type);
	if (vlen > 0)
		memcpy(a->value, v, vlen);
	a->value_len = vlen;
}

static void
build_table(void)
{
	struct att_uuid smp_svc, smp_chr;
	struct att_chr_decl d;
	uint8_t v[20];
	size_t n;
	const char *name = board.o->ble + 1;

	if (att_uuid_parse(&smp_svc, SMP_BLE_SERVICE_UUID) == -1 ||
	    att_uuid_parse(&smp_chr, SMP_BLE_CHAR_UUID) == -1)
		fatalx("bad SMP UUID constant", NULL);
	att_uuid16(&d.uuid, 0x2a00); /* Device Name */
	v[0] = 0x00;
	v[1] = 0x18;
	add_attr(H_GAP, ATT_UUID_PRIMARY_SERVICE, H_GAP_NAME, v, 2);
	d.props = ATT_PROP_READ;
	d.value_handle = H_GAP_NAME;
	n = att_chr_decl_encode(&d, v);
	add_attr(H_GAP_NAME_DECL, ATT_UUID_CHARACTERISTIC, 0, v, n);
	n = strlen(name) < sizeof(v) ? strlen(name) : sizeof(v);
	add_attr(H_GAP_NAME, 0x2a00, 0, name, n);
	add_attr(H_SMP, ATT_UUID_PRIMARY_SERVICE, H_SMP_CCCD, smp_svc.b, 16);
	d.props = ATT_PROP_WRITE_NO_RSP | ATT_PROP_NOTIFY;
	d.value_handle = H_SMP_VALUE;
	d.uuid = smp_chr;
	n = att_chr_decl_encode(&d, v);
	add_attr(H_SMP_DECL, ATT_UUID_CHARACTERISTIC, 0, v, n);
	add_attr(H_SMP_VALUE, 0, 0, NULL, 0);
	attrs[nattrs - 1].type = smp_chr;
	add_attr(H_SMP_CCCD, ATT_UUID_CCCD, 0, NULL, 0);
}

static void
att_send(const struct att_pdu *pdu)
{
	uint8_t buf[ATT_MAX_MTU];
	ssize_t n;

	if (conn_fd == -1)
		return;
	if ((n = att_encode(pdu, buf, conn_mtu)) < 0) {
		log_warnx("ble: cannot encode an ATT PDU", "op=0x%02x",
		          pdu->op);
		return;
	}
	if (send(conn_fd, buf, (size_t)n, MSG_NOSIGNAL) == -1)
		log_warn("ble: send failed", NULL);
}

static void
att_error(uint8_t req_op, uint16_t handle, uint8_t code)
{
	struct att_pdu p;

	p.op = ATT_OP_ERROR_RSP;
	p.u.error.req_op = req_op;
	p.u.error.handle = handle;
	p.u.error.code = code;
	att_send(&p);
}

static size_t
ble_pkt_limit(void)
{
	return board.o->buf_size;
}

static void
ble_send(const uint8_t *pkt, size_t len, const struct peer *peer)
{
	struct att_pdu p;
	size_t i, nfrag, off, flen;

	(void)peer;
	if (conn_fd == -1 || !notify_on) {
		log_debug("ble: reply lost, notifications are off", NULL);
		return;
	}
	nfrag = smp_ble_fragments(len, conn_mtu);
	for (i = 0; i < nfrag; i++) {
		smp_ble_fragment(len, conn_mtu, i, &off, &flen);
		p.op = ATT_OP_NOTIFY;
		p.u.write.handle = H_SMP_VALUE;
		p.u.write.value = pkt + off;
		p.u.write.len = flen;
		att_send(&p);
	}
}

static void
conn_close(void)
{
	if (conn_ev != NULL)
		event_free(conn_ev);
	conn_ev = NULL;
	if (conn_fd != -1)
		close(conn_fd);
	conn_fd = -1;
	conn_mtu = ATT_DEFAULT_MTU;
	notify_on = false;
	smp_ble_reasm_reset(reasm);
}

static void
packet_cb(void *arg, const uint8_t *pkt, size_t len)
{
	(void)arg;
	server_receive(pkt, len, NULL);
}

static void
smp_write(const uint8_t *v, size_t len)
{
	if (board.run != BOARD_UP)
		return;
	if (smp_ble_reasm_feed(reasm, v, len, packet_cb, NULL) == -1) {
		log_debug("ble: request dropped by reassembly", "len=%zu", len);
		board.c.dropped++;
		status_update();
	}
}

/* Read By Type / By Group Type / Find Information over the table. */
static void
discover(const struct att_pdu *req)
{
	struct att_pdu rsp;
	uint8_t rop = req->op + 1;
	size_t i, used = 2, elen = 0;

	if (req->u.range.start == 0 || req->u.range.start > req->u.range.end) {
		att_error(req->op, req->u.range.start, ATT_ERR_INVALID_HANDLE);
		return;
	}
	if (req->op == ATT_OP_READ_BY_GROUP_REQ) {
		struct att_uuid prim;

		att_uuid16(&prim, ATT_UUID_PRIMARY_SERVICE);
		if (!att_uuid_eq(&req->u.range.type, &prim)) {
			att_error(req->op, req->u.range.start,
			          ATT_ERR_UNSUPPORTED_GROUP);
			return;
		}
	}
	rsp.op = rop;
	rsp.u.list.n = 0;
	for (i = 0; i < nattrs; i++) {
		const struct attr *a = &attrs[i];
		struct att_entry *e;
		size_t this_len;

		if (a->handle < req->u.range.start ||
		    a->handle > req->u.range.end)
			continue;
		if (req->op != ATT_OP_FIND_INFO_REQ &&
		    (!att_uuid_eq(&a->type, &req->u.range.type) ||
		     a->value_len == 0))
			continue;
		if (req->op == ATT_OP_FIND_INFO_REQ)
			this_len = 2 + a->type.len;
		else if (req->op == ATT_OP_READ_BY_GROUP_REQ)
			this_len = 4 + a->value_len;
		else
			this_len = 2 + a->value_len;
		/* One response carries entries of one size only. */
		if (elen == 0)
			elen = this_len;
		if (this_len != elen || used + elen > conn_mtu)
			break;
		e = &rsp.u.list.e[rsp.u.list.n++];
		memset(e, 0, sizeof(*e));
		e->handle = a->handle;
		e->end = a->group_end;
		e->uuid = a->type;
		e->value = a->value;
		e->value_len = a->value_len;
		used += elen;
	}
	if (rsp.u.list.n == 0) {
		att_error(req->op, req->u.range.start, ATT_ERR_ATTR_NOT_FOUND);
		return;
	}
	att_send(&rsp);
}

static void
write_attr(const struct att_pdu *req)
{
	bool is_req = req->op == ATT_OP_WRITE_REQ;
	uint16_t h = req->u.write.handle;
	struct att_pdu rsp;

	if (h == H_SMP_CCCD) {
		if (req->u.write.len != 2) {
			if (is_req)
				att_error(req->op, h, ATT_ERR_INVALID_ATTR_LEN);
			return;
		}
		notify_on = (req->u.write.value[0] & 1) != 0;
		log_debug("ble: notifications", "on=%d", notify_on);
	} else if (h == H_SMP_VALUE) {
		smp_write(req->u.write.value, req->u.write.len);
	} else {
		if (is_req)
			att_error(req->op, h,
			          h == 0 || h > H_SMP_CCCD
			              ? ATT_ERR_INVALID_HANDLE
			              : ATT_ERR_WRITE_NOT_PERMITTED);
		return;
	}
	if (is_req) {
		rsp.op = ATT_OP_WRITE_RSP;
		att_send(&rsp);
	}
}

static void
handle_pdu(const uint8_t *buf, size_t len)
{
	static struct att_pdu req; /* large: keep it off the stack */
	struct att_pdu rsp;
	char err[96];

	if (att_decode(buf, len, &req, err, sizeof(err)) == -1) {
		log_debug("ble: bad ATT PDU", "reason=%s", log_q(err));
		/* Commands (bit 6) and responses get no error back. */
		if (len == 0 || (buf[0] & 0x40) != 0 || (buf[0] & 1) != 0)
			return;
		if (buf[0] == ATT_OP_MTU_REQ ||
		    buf[0] == ATT_OP_FIND_INFO_REQ ||
		    buf[0] == ATT_OP_READ_BY_TYPE_REQ ||
		    buf[0] == ATT_OP_READ_BY_GROUP_REQ ||
		    buf[0] == ATT_OP_WRITE_REQ)
			att_error(buf[0], 0, ATT_ERR_INVALID_PDU);
		else
			att_error(buf[0], 0, ATT_ERR_REQ_NOT_SUPPORTED);
		return;
	}
	switch (req.op) {
	case ATT_OP_MTU_REQ:
		conn_mtu =
		    req.u.mtu < ATT_DEFAULT_MTU ? ATT_DEFAULT_MTU : req.u.mtu;
		if (conn_mtu > board.o->ble_mtu)
			conn_mtu = board.o->ble_mtu;
		rsp.op = ATT_OP_MTU_RSP;
		rsp.u.mtu = board.o->ble_mtu;
		att_send(&rsp);
		log_debug("ble: mtu", "mtu=%u", conn_mtu);
		break;
	case ATT_OP_FIND_INFO_REQ:
	case ATT_OP_READ_BY_TYPE_REQ:
	case ATT_OP_READ_BY_GROUP_REQ:
		discover(&req);
		break;
	case ATT_OP_WRITE_REQ:
	case ATT_OP_WRITE_CMD:
		write_attr(&req);
		break;
	default:
		/* A response or notification from the client: not ours. */
		break;
	}
}

static void
conn_cb(evutil_socket_t fd, short ev, void *arg)
{
	uint8_t buf[ATT_MAX_MTU + 1];
	ssize_t n;

	(void)ev;
	(void)arg;
	n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		log_info("ble: central disconnected", NULL);
		conn_close();
		return;
	}
	if ((size_t)n > conn_mtu) {
		log_debug("ble: PDU larger than the MTU dropped", "len=%zd", n);
		return;
	}
	handle_pdu(buf, (size_t)n);
}

static void
accept_cb(evutil_socket_t fd, short ev, void *arg)
{
	int c;

	(void)ev;
	(void)arg;
	if ((c = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) == -1)
		return;
	if (conn_fd != -1 || board.run != BOARD_UP) {
		/* A peripheral serves one central at a time. */
		close(c);
		return;
	}
	conn_fd = c;
	conn_mtu = ATT_DEFAULT_MTU;
	notify_on = false;
	smp_ble_reasm_reset(reasm);
	conn_ev = event_new(board.base, c, EV_READ | EV_PERSIST, conn_cb, NULL);
	event_add(conn_ev, NULL);
	log_info("ble: central connected", NULL);
}

static void
ble_listen(void)
{
	struct sockaddr_un sun;
	size_t nlen = strlen(board.o->ble + 1);
	socklen_t sl;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path + 1, board.o->ble + 1, nlen);
	sl = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + nlen);
	listen_fd =
	    socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (listen_fd == -1)
		fatal("ble: cannot create socket", NULL);
	if (bind(listen_fd, (struct sockaddr *)&sun, sl) == -1)
		fatal("ble: cannot bind the abstract socket", "name=%s",
		      log_q(board.o->ble));
	if (listen(listen_fd, 4) == -1)
		fatal("ble: cannot listen", NULL);
	listen_ev = event_new(board.base, listen_fd, EV_READ | EV_PERSIST,
	                      accept_cb, NULL);
	event_add(listen_ev, NULL);
}

static void
ble_unlisten(void)
{
	if (listen_ev != NULL)
		event_free(listen_ev);
	listen_ev = NULL;
	if (listen_fd != -1)
		close(listen_fd);
	listen_fd = -1;
}

static void
ble_down(void)
{
	log_info("ble: connection dropped (reset)", NULL);
	conn_close();
	ble_unlisten();
}

static void
ble_up(void)
{
	if (listen_fd == -1)
		ble_listen();
}

static size_t
ble_pending_out(void)
{
	return 0;
}

static const struct link_ops ble_ops = {
    .name = "ble",
    .pkt_limit = ble_pkt_limit,
    .send = ble_send,
    .down = ble_down,
    .up = ble_up,
    .pending_out = ble_pending_out,
};

void
ble_link_init(void)
{
	reasm = smp_ble_reasm_new(board.o->buf_size);
	build_table();
	blink = &ble_ops;
	ble_listen();
	log_info("ble link ready", "name=%s mtu=%u", log_q(board.o->ble),
	         board.o->ble_mtu);
	sim_ready("ble", board.o->ble);
}

void
ble_link_free(void)
{
	conn_close();
	ble_unlisten();
	smp_ble_reasm_free(reasm);
}
