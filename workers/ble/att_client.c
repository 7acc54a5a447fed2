/*
 * GATT client for SMP: MTU exchange, discovery of the SMP service and
 * characteristic, notifications on; then requests as Write Commands and
 * replies from notifications, reassembled by the SMP header's length.
 * Discovery is a short blocking exchange (bounded by a timeout per step);
 * it runs at connect time only, when nothing else is in flight.
 */
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "att.h"
#include "att_client.h"
#include "log.h"
#include "smp_ble.h"
#include "xmalloc.h"

#define ATT_CLIENT_MTU 517

struct att_client {
	int fd;
	uint16_t mtu;
	uint16_t value_handle;
	uint16_t cccd_handle;
	struct smp_ble_reasm *reasm;
	uint8_t buf[ATT_MAX_MTU + 1];
};

struct att_client *
att_client_new(size_t max_pkt)
{
	struct att_client *c = xcalloc(1, sizeof(*c));

	c->fd = -1;
	c->reasm = smp_ble_reasm_new(max_pkt);
	return c;
}

void
att_client_free(struct att_client *c)
{
	if (c == NULL)
		return;
	att_client_close(c);
	smp_ble_reasm_free(c->reasm);
	free(c);
}

int
att_client_fd(const struct att_client *c)
{
	return c->fd;
}

void
att_client_close(struct att_client *c)
{
	if (c->fd != -1)
		close(c->fd);
	c->fd = -1;
}

static int
att_send_pdu(struct att_client *c, const struct att_pdu *p)
{
	uint8_t out[ATT_MAX_MTU];
	ssize_t n;

	if ((n = att_encode(p, out, c->mtu)) < 0)
		return -2;
	if (send(c->fd, out, n, MSG_NOSIGNAL) != n)
		return -1;
	return 0;
}

/*
 * Send a request and wait for its response (or an Error Response to it).
 * Notifications arriving meanwhile are dropped: nothing is in flight
 * during discovery.  0, or -1 with why.
 */
static int
att_transact(struct att_client *c, const struct att_pdu *req, uint8_t rsp_op,
             struct att_pdu *rsp, int timeout_ms, char *why, size_t whycap)
{
	struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
	char err[128];
	ssize_t n;
	int rc;

	if ((rc = att_send_pdu(c, req)) != 0) {
		snprintf(why, whycap,
		         rc == -2 ? "cannot encode ATT op 0x%02x"
		                  : "ATT send failed (op 0x%02x)",
		         req->op);
		return -1;
	}
	for (;;) {
		if ((rc = poll(&pfd, 1, timeout_ms)) <= 0) {
			snprintf(why, whycap, "no ATT response to op 0x%02x",
			         req->op);
			return -1;
		}
		n = recv(c->fd, c->buf, sizeof(c->buf), 0);
		if (n <= 0) {
			snprintf(why, whycap, "ATT bearer closed");
			return -1;
		}
		if (att_decode(c->buf, n, rsp, err, sizeof(err)) == -1) {
			snprintf(why, whycap, "bad ATT PDU: %s", err);
			return -1;
		}
		if (rsp->op == rsp_op)
			return 0;
		if (rsp->op == ATT_OP_ERROR_RSP &&
		    rsp->u.error.req_op == req->op)
			return 1; /* caller looks at rsp->u.error */
	}
}

/* The SMP service's handle range, by Read By Group Type. */
static int
att_find_service(struct att_client *c, const struct att_uuid *svc,
                 uint16_t *start, uint16_t *end, int tmo, char *why,
                 size_t whycap)
{
	struct att_pdu req, rsp;
	struct att_uuid u;
	uint32_t from = 1;
	size_t i;
	int rc;

	while (from <= 0xffff) {
		memset(&req, 0, sizeof(req));
		req.op = ATT_OP_READ_BY_GROUP_REQ;
		req.u.range.start = from;
		req.u.range.end = 0xffff;
		att_uuid16(&req.u.range.type, ATT_UUID_PRIMARY_SERVICE);
		rc = att_transact(c, &req, ATT_OP_READ_BY_GROUP_RSP, &rsp, tmo,
		                  why, whycap);
		if (rc == -1)
			return -1;
		if (rc == 1 || rsp.u.list.n == 0)
			break; /* Attribute Not Found: the end of the list */
		for (i = 0; i < rsp.u.list.n; i++) {
			const struct att_entry *e = &rsp.u.list.e[i];

			if (e->value_len == 16 || e->value_len == 2) {
				u.len = e->value_len;
				memcpy(u.b, e->value, e->value_len);
				if (att_uuid_eq(&u, svc)) {
					*start = e->handle;
					*end = e->end;
					return 0;
				}
			}
			if (e->end < from) /* no progress: a broken server */
				goto notfound;
			from = (uint32_t)e->end + 1;
		}
	}
notfound:
	snprintf(why, whycap, "the board offers no SMP service");
	return -1;
}

/* The SMP characteristic's value handle, by Read By Type. */
static int
att_find_chr(struct att_client *c, const struct att_uuid *chr, uint16_t start,
             uint16_t end, uint16_t *value, int tmo, char *why, size_t whycap)
{
	struct att_pdu req, rsp;
	struct att_chr_decl d;
	uint32_t from = start;
	size_t i;
	int rc;

	while (from <= end) {
		memset(&req, 0, sizeof(req));
		req.op = ATT_OP_READ_BY_TYPE_REQ;
		req.u.range.start = from;
		req.u.range.end = end;
		att_uuid16(&req.u.range.type, ATT_UUID_CHARACTERISTIC);
		rc = att_transact(c, &req, ATT_OP_READ_BY_TYPE_RSP, &rsp, tmo,
		                  why, whycap);
		if (rc == -1)
			return -1;
		if (rc == 1 || rsp.u.list.n == 0)
			break;
		for (i = 0; i < rsp.u.list.n; i++) {
			const struct att_entry *e = &rsp.u.list.e[i];

			if (att_chr_decl_parse(e->value, e->value_len, &d) ==
			        0 &&
			    att_uuid_eq(&d.uuid, chr)) {
				if (!(d.props & ATT_PROP_WRITE_NO_RSP) ||
				    !(d.props & ATT_PROP_NOTIFY)) {
					snprintf(
					    why, whycap,
					    "SMP characteristic lacks "
					    "write-without-response or notify");
					return -1;
				}
				*value = d.value_handle;
				return 0;
			}
			if (e->handle < from)
				goto notfound;
			from = (uint32_t)e->handle + 1;
		}
	}
notfound:
	snprintf(why, whycap, "the SMP service has no SMP characteristic");
	return -1;
}

/* The CCCD after the value handle, by Find Information. */
static int
att_find_cccd(struct att_client *c, uint16_t value, uint16_t end,
              uint16_t *cccd, int tmo, char *why, size_t whycap)
{
	struct att_pdu req, rsp;
	struct att_uuid u;
	size_t i;

	att_uuid16(&u, ATT_UUID_CCCD);
	memset(&req, 0, sizeof(req));
	req.op = ATT_OP_FIND_INFO_REQ;
	req.u.range.start = value + 1;
	req.u.range.end = end;
	if (value < end && att_transact(c, &req, ATT_OP_FIND_INFO_RSP, &rsp,
	                                tmo, why, whycap) == 0)
		for (i = 0; i < rsp.u.list.n; i++)
			if (att_uuid_eq(&rsp.u.list.e[i].uuid, &u)) {
				*cccd = rsp.u.list.e[i].handle;
				return 0;
			}
	snprintf(why, whycap, "the SMP characteristic has no CCCD");
	return -1;
}

int
att_client_start(struct att_client *c, int fd, int tmo, char *why,
                 size_t whycap)
{
	struct att_uuid svc, chr;
	struct att_pdu req, rsp;
	uint16_t start = 0, end = 0;
	uint8_t on[2] = {0x01, 0x00};

	c->fd = fd;
	c->mtu = ATT_DEFAULT_MTU;
	why[0] = '\0';
	if (att_uuid_parse(&svc, SMP_BLE_SERVICE_UUID) == -1 ||
	    att_uuid_parse(&chr, SMP_BLE_CHAR_UUID) == -1) {
		snprintf(why, whycap, "bad SMP UUID constants");
		goto fail;
	}
	memset(&req, 0, sizeof(req));
	req.op = ATT_OP_MTU_REQ;
	req.u.mtu = ATT_CLIENT_MTU;
	switch (att_transact(c, &req, ATT_OP_MTU_RSP, &rsp, tmo, why, whycap)) {
	case 0:
		if (rsp.u.mtu >= ATT_DEFAULT_MTU)
			c->mtu = rsp.u.mtu < ATT_CLIENT_MTU ? rsp.u.mtu
			                                    : ATT_CLIENT_MTU;
		break;
	case 1:
		break; /* no MTU exchange: the default 23 */
	default:
		goto fail;
	}
	if (att_find_service(c, &svc, &start, &end, tmo, why, whycap) == -1 ||
	    att_find_chr(c, &chr, start, end, &c->value_handle, tmo, why,
	                 whycap) == -1 ||
	    att_find_cccd(c, c->value_handle, end, &c->cccd_handle, tmo, why,
	                  whycap) == -1)
		goto fail;
	memset(&req, 0, sizeof(req));
	req.op = ATT_OP_WRITE_REQ;
	req.u.write.handle = c->cccd_handle;
	req.u.write.value = on;
	req.u.write.len = sizeof(on);
	if (att_transact(c, &req, ATT_OP_WRITE_RSP, &rsp, tmo, why, whycap) !=
	    0) {
		if (why[0] == '\0')
			snprintf(why, whycap, "notifications refused");
		goto fail;
	}
	smp_ble_reasm_reset(c->reasm);
	log_info("ble: SMP characteristic ready", "mtu=%u handle=%u", c->mtu,
	         c->value_handle);
	return 0;
fail:
	att_client_close(c);
	return -1;
}

int
att_client_send(struct att_client *c, const uint8_t *pkt, size_t len)
{
	struct att_pdu p;
	size_t i, n, off, flen;
	int rc;

	if (c->fd == -1)
		return -1;
	n = smp_ble_fragments(len, c->mtu);
	for (i = 0; i < n; i++) {
		smp_ble_fragment(len, c->mtu, i, &off, &flen);
		memset(&p, 0, sizeof(p));
		p.op = ATT_OP_WRITE_CMD;
		p.u.write.handle = c->value_handle;
		p.u.write.value = pkt + off;
		p.u.write.len = flen;
		if ((rc = att_send_pdu(c, &p)) == -1) {
			if (errno == EAGAIN || errno == ENOBUFS)
				return 0; /* lost: retransmitted later */
			return -1;
		}
		if (rc == -2)
			return 0;
	}
	return 0;
}

int
att_client_read(struct att_client *c, smp_ble_packet_cb cb, void *arg)
{
	struct att_pdu p;
	char err[128];
	ssize_t n;
	int i;

	for (i = 0; i < 32 && c->fd != -1; i++) {
		n = recv(c->fd, c->buf, sizeof(c->buf), MSG_DONTWAIT);
		if (n == 0)
			return -1;
		if (n == -1)
			return errno == EAGAIN || errno == EINTR ? 0 : -1;
		if (att_decode(c->buf, n, &p, err, sizeof(err)) == -1) {
			log_debug("ble: bad ATT PDU dropped", "reason=%s",
			          log_q(err));
			continue;
		}
		if (p.op != ATT_OP_NOTIFY ||
		    p.u.write.handle != c->value_handle)
			continue;
		if (smp_ble_reasm_feed(c->reasm, p.u.write.value, p.u.write.len,
		                       cb, arg) == -1)
			log_debug("ble: notification dropped by reassembly",
			          "len=%zu", p.u.write.len);
	}
	return 0;
}
