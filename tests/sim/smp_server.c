/*
 * The board's SMP server: a bounded queue of receive buffers processed in
 * order, and the OS and image group handlers with Zephyr's rules
 * (docs/design.md "SMP").  Codecs are common/smp.c's server side.
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xmalloc.h"
#include "sim.h"

#define RSP_MAX 2048

struct req {
	struct req *next;
	struct peer peer;
	size_t len;
	uint8_t pkt[];
};

struct delayed {
	struct event *ev;
	struct peer peer;
	size_t len;
	uint8_t pkt[];
};

static struct req *q_head, *q_tail;
static unsigned int q_len;
static struct event *proc_ev;
static bool proc_busy;

/* Replies held back by --latency-ms, so a reset can cancel them. */
#define MAX_DELAYED 256
static struct delayed *delayed[MAX_DELAYED];

static uint32_t
get32le(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void
send_now(const uint8_t *pkt, size_t len, const struct peer *peer)
{
	board.c.replies++;
	board.c.bytes_out += len;
	blink->send(pkt, len, peer);
}

static void
delayed_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct delayed *d = arg;
	size_t i;

	(void)fd;
	(void)ev;
	for (i = 0; i < MAX_DELAYED; i++)
		if (delayed[i] == d)
			delayed[i] = NULL;
	if (board.run == BOARD_UP)
		send_now(d->pkt, d->len, &d->peer);
	event_free(d->ev);
	free(d);
	status_update();
}

static void
reply(const uint8_t *pkt, ssize_t len, const struct peer *peer)
{
	struct delayed *d;
	struct timeval tv;
	size_t i;

	if (len < 0) {
		log_warnx("reply does not fit the reply buffer", NULL);
		return;
	}
	if (fault_hit(board.o->drop_reply_rate)) {
		log_debug("reply dropped (--drop-reply-rate)", NULL);
		board.c.dropped++;
		return;
	}
	if (board.o->latency_ms == 0) {
		send_now(pkt, (size_t)len, peer);
		return;
	}
	for (i = 0; i < MAX_DELAYED && delayed[i] != NULL; i++)
		;
	if (i == MAX_DELAYED) {
		board.c.dropped++;
		return;
	}
	d = xmalloc(sizeof(*d) + (size_t)len);
	d->peer = *peer;
	d->len = (size_t)len;
	memcpy(d->pkt, pkt, (size_t)len);
	d->ev = evtimer_new(board.base, delayed_cb, d);
	tv.tv_sec = board.o->latency_ms / 1000;
	tv.tv_usec = (board.o->latency_ms % 1000) * 1000;
	evtimer_add(d->ev, &tv);
	delayed[i] = d;
}

/* The image list as Zephyr's img_mgmt reports it (swap type table). */
void
server_list_images(struct smp_image_list *list)
{
	int s;

	memset(list, 0, sizeof(*list));
	for (s = 0; s < 2; s++) {
		const struct slot *sl = flash_slot_info(s);
		struct smp_image_slot *e;

		if (!sl->listed)
			continue;
		e = &list->slots[list->n++];
		e->image = 0;
		e->slot = (uint32_t)s;
		mcuboot_version_format(&sl->version, MCUBOOT_SPELL_ZEPHYR,
		                       e->version, sizeof(e->version));
		e->has_hash = true;
		memcpy(e->hash, sl->hash, SMP_HASH_LEN);
		e->bootable = true;
		if (board.pending) {
			/* swap type TEST or PERM */
			if (s == 0) {
				e->confirmed = e->active = true;
			} else {
				e->pending = true;
				e->permanent = board.permanent;
			}
		} else if (board.test) {
			/* swap type REVERT */
			if (s == 0)
				e->active = true;
			else
				e->confirmed = true;
		} else if (s == 0) {
			e->confirmed = e->active = true;
		}
	}
}

/* Slot 1 holds something MCUboot still needs (pending, or revert image). */
static bool
slot1_in_use(void)
{
	return board.pending || board.test;
}

static int
find_hash(const uint8_t *hash)
{
	int s;

	for (s = 0; s < 2; s++) {
		const struct slot *sl = flash_slot_info(s);

		if (sl->listed && memcmp(sl->hash, hash, SMP_HASH_LEN) == 0)
			return s;
	}
	return -1;
}

static ssize_t
do_state_write(uint8_t *out, const struct smp_request *r,
               const struct smp_rsp_opts *o)
{
	const struct smp_hdr *h = &r->hdr;
	struct smp_image_list list;
	int s;

	if (!r->u.state.has_hash) {
		if (!r->u.state.confirm)
			return smp_rspb_error(out, RSP_MAX, h, o, SMP_RC_INVAL,
			                      "hash required");
		s = 0;
	} else if ((s = find_hash(r->u.state.hash)) == -1)
		return smp_rspb_error(out, RSP_MAX, h, o, SMP_RC_INVAL,
		                      "hash not found");
	if (s == 0) {
		if (!r->u.state.confirm)
			return smp_rspb_error(out, RSP_MAX, h, o,
			                      SMP_RC_BADSTATE,
			                      "image already active");
		if (board.pending)
			return smp_rspb_error(out, RSP_MAX, h, o,
			                      SMP_RC_BADSTATE,
			                      "an image is pending");
		if (!flash_slot_info(0)->listed)
			return smp_rspb_error(out, RSP_MAX, h, o, SMP_RC_NOENT,
			                      "no image");
		board.test = false;
		board.confirmed = true;
		boot_confirmed();
		log_info("running image confirmed", NULL);
	} else {
		board.pending = true;
		board.permanent = r->u.state.confirm;
		log_info("slot 1 marked pending", "permanent=%d",
		         board.permanent);
	}
	flash_save();
	server_list_images(&list);
	return smp_rspb_image_state(out, RSP_MAX, h, o, &list);
}

static ssize_t
upload_reply(uint8_t *out, const struct smp_hdr *h,
             const struct smp_rsp_opts *o, uint32_t off)
{
	struct smp_upload_rsp rsp = {.off = off};

	return smp_rspb_image_upload(out, RSP_MAX, h, o, &rsp);
}

/* A first packet with the len and sha of the unfinished upload. */
static bool
is_resume(const struct smp_request *r)
{
	return r->u.upload.has_off && r->u.upload.off == 0 && board.up_active &&
	       r->u.upload.has_sha && board.up_has_sha &&
	       r->u.upload.len == board.up_len &&
	       r->u.upload.sha_len == board.up_sha_len &&
	       memcmp(r->u.upload.sha, board.up_sha, r->u.upload.sha_len) == 0;
}

static ssize_t
do_upload(uint8_t *out, const struct smp_request *r,
          const struct smp_rsp_opts *o)
{
	const struct smp_hdr *h = &r->hdr;
	const __typeof__(r->u.upload) *u = &r->u.upload;
	uint32_t off;

	if (!u->has_off || u->data == NULL)
		return smp_rspb_error(out, RSP_MAX, h, o, SMP_RC_INVAL,
		                      "off and data required");
	if (u->off == 0) {
		if (!u->has_len)
			return smp_rspb_error(out, RSP_MAX, h, o, SMP_RC_INVAL,
			                      "len required");
		if (slot1_in_use())
			return smp_rspb_error(out, RSP_MAX, h, o, SMP_RC_NOENT,
			                      "no slot");
		if (is_resume(r)) {
			log_info("upload resumed", "off=%u", board.up_off);
			return upload_reply(out, h, o, board.up_off);
		}
		if (u->data_len < MCUBOOT_HDR_LEN ||
		    get32le(u->data) != MCUBOOT_MAGIC)
			return smp_rspb_error(out, RSP_MAX, h, o, SMP_RC_INVAL,
			                      "magic mismatch");
		if (u->len > board.o->slot_size)
			return smp_rspb_error(out, RSP_MAX, h, o, SMP_RC_INVAL,
			                      "image too large");
		if (u->data_len > u->len)
			return smp_rspb_error(out, RSP_MAX, h, o, SMP_RC_INVAL,
			                      "data beyond len");
		flash_erase_slot(1);
		board.up_active = true;
		board.up_off = 0;
		board.up_len = u->len;
		board.up_has_sha = u->has_sha;
		board.up_sha_len = u->has_sha ? u->sha_len : 0;
		if (u->has_sha)
			memcpy(board.up_sha, u->sha, u->sha_len);
		log_info("upload started", "len=%u", u->len);
	} else {
		if (!board.up_active || u->off != board.up_off)
			return upload_reply(out, h, o,
			                    board.up_active ? board.up_off : 0);
		if (u->data_len > board.up_len - board.up_off)
			return smp_rspb_error(out, RSP_MAX, h, o, SMP_RC_INVAL,
			                      "data beyond len");
	}
	flash_write(1, u->off, u->data, u->data_len);
	board.up_off = u->off + (uint32_t)u->data_len;
	board.upload_written += u->data_len;
	off = board.up_off;
	if (board.up_off == board.up_len) {
		log_info("upload complete", "len=%u", board.up_len);
		board.up_active = false;
		flash_save();
	} else
		flash_save_later();
	faults_upload_written();
	if (board.run == BOARD_HUNG)
		return -2;
	return upload_reply(out, h, o, off);
}

static ssize_t
do_erase(uint8_t *out, const struct smp_request *r,
         const struct smp_rsp_opts *o)
{
	if (slot1_in_use())
		return smp_rspb_error(out, RSP_MAX, &r->hdr, o, SMP_RC_BADSTATE,
		                      "slot in use");
	flash_erase_slot(1);
	board.up_active = false;
	flash_save();
	return smp_rspb_empty(out, RSP_MAX, &r->hdr, o);
}

/* Returns the reply length, -1 when it did not fit, -2 for no reply. */
static ssize_t
handle(uint8_t *out, const struct smp_request *r, const struct smp_rsp_opts *o)
{
	const struct smp_hdr *h = &r->hdr;
	bool wr = h->op == SMP_OP_WRITE;
	struct smp_params p;
	struct smp_image_list list;
	ssize_t n;

	if (h->group == SMP_GROUP_OS && h->id == SMP_OS_ECHO)
		return smp_rspb_echo(out, RSP_MAX, h, o, r->u.echo.text);
	if (h->group == SMP_GROUP_OS && h->id == SMP_OS_RESET && wr) {
		n = smp_rspb_empty(out, RSP_MAX, h, o);
		boot_request_reset();
		return n;
	}
	if (h->group == SMP_GROUP_OS && h->id == SMP_OS_PARAMS && !wr) {
		p.buf_size = board.o->buf_size;
		p.buf_count = board.o->buf_count;
		return smp_rspb_params(out, RSP_MAX, h, o, &p);
	}
	if (h->group == SMP_GROUP_IMAGE && h->id == SMP_IMAGE_STATE) {
		if (wr)
			return do_state_write(out, r, o);
		server_list_images(&list);
		return smp_rspb_image_state(out, RSP_MAX, h, o, &list);
	}
	if (h->group == SMP_GROUP_IMAGE && h->id == SMP_IMAGE_UPLOAD && wr)
		return do_upload(out, r, o);
	if (h->group == SMP_GROUP_IMAGE && h->id == SMP_IMAGE_ERASE && wr)
		return do_erase(out, r, o);
	return smp_rspb_error(out, RSP_MAX, h, o, SMP_RC_NOTSUP, NULL);
}

static void
process(const struct req *q)
{
	struct smp_request r;
	struct smp_rsp_opts o;
	uint8_t out[RSP_MAX];
	ssize_t n;
	int rv;

	board.c.requests++;
	rv = smp_req_decode(q->pkt, q->len, &r);
	if (rv == SMP_E_SHORT || rv == SMP_E_HEADER ||
	    (rv == SMP_OK && r.hdr.op != SMP_OP_READ &&
	     r.hdr.op != SMP_OP_WRITE)) {
		/* Zephyr drops what it cannot even frame. */
		log_debug("request dropped: bad header", "status=%s",
		          smp_status_str(rv));
		board.c.dropped++;
		return;
	}
	o.version = board.o->zephyr3 ? SMP_V1 : r.hdr.version;
	o.definite_maps = board.o->definite_maps;
	if (rv != SMP_OK) {
		log_debug("request refused", "status=%s", smp_status_str(rv));
		/* The header decoded: answer in its terms. */
		smp_hdr_decode(q->pkt, q->len, &r.hdr);
		n = smp_rspb_error(out, RSP_MAX, &r.hdr, &o, SMP_RC_INVAL,
		                   NULL);
	} else if ((n = sim_groups_handle(out, RSP_MAX, q->pkt, q->len, &o)) ==
	           SIM_NOT_MINE)
		n = handle(out, &r, &o);
	if (n == -2 || board.run == BOARD_HUNG)
		return;
	reply(out, n, &q->peer);
}

/* Flash time a request costs, as a real board spends it writing. */
static unsigned int
cost_us(const struct req *q)
{
	struct smp_request r;
	uint64_t us = board.o->proc_us;

	if (smp_req_decode(q->pkt, q->len, &r) != SMP_OK ||
	    r.hdr.group != SMP_GROUP_IMAGE || r.hdr.id != SMP_IMAGE_UPLOAD)
		return us;
	us += (uint64_t)r.u.upload.data_len * board.o->flash_us_per_kb / 1024;
	/* A first packet that starts an upload erases the slot. */
	if (r.u.upload.has_off && r.u.upload.off == 0 && r.u.upload.has_len &&
	    !is_resume(&r))
		us +=
		    (uint64_t)r.u.upload.len * board.o->erase_us_per_kb / 1024;
	return us > 60000000 ? 60000000 : (unsigned int)us;
}

static void
schedule(void)
{
	struct timeval tv;
	unsigned int us;

	if (proc_busy || q_head == NULL)
		return;
	us = cost_us(q_head);
	tv.tv_sec = us / 1000000;
	tv.tv_usec = us % 1000000;
	proc_busy = true;
	evtimer_add(proc_ev, &tv);
}

static void
proc_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct req *q = q_head;

	(void)fd;
	(void)ev;
	(void)arg;
	proc_busy = false;
	if (q == NULL)
		return;
	q_head = q->next;
	if (q_head == NULL)
		q_tail = NULL;
	q_len--;
	if (board.run == BOARD_UP)
		process(q);
	free(q);
	status_update();
	schedule();
}

void
server_receive(const uint8_t *pkt, size_t len, const struct peer *peer)
{
	struct req *q;

	if (board.run != BOARD_UP)
		return;
	if (fault_hit(board.o->drop_rate)) {
		log_debug("request dropped (--drop-rate)", NULL);
		board.c.dropped++;
		status_update();
		return;
	}
	if (len > blink->pkt_limit()) {
		log_debug("request dropped: larger than the receive buffer",
		          "len=%zu limit=%zu", len, blink->pkt_limit());
		board.c.dropped++;
		status_update();
		return;
	}
	if (q_len >= board.o->buf_count) {
		log_debug("request dropped: no free receive buffer", NULL);
		board.c.dropped++;
		status_update();
		return;
	}
	board.c.bytes_in += len;
	q = xmalloc(sizeof(*q) + len);
	q->next = NULL;
	q->len = len;
	if (peer != NULL)
		q->peer = *peer;
	else
		memset(&q->peer, 0, sizeof(q->peer));
	memcpy(q->pkt, pkt, len);
	if (q_tail != NULL)
		q_tail->next = q;
	else
		q_head = q;
	q_tail = q;
	q_len++;
	schedule();
}

static void
drop_all(void)
{
	struct req *q;
	size_t i;

	while ((q = q_head) != NULL) {
		q_head = q->next;
		free(q);
	}
	q_tail = NULL;
	q_len = 0;
	proc_busy = false;
	if (proc_ev != NULL)
		evtimer_del(proc_ev);
	for (i = 0; i < MAX_DELAYED; i++) {
		if (delayed[i] == NULL)
			continue;
		event_free(delayed[i]->ev);
		free(delayed[i]);
		delayed[i] = NULL;
	}
}

/* A reset loses the RAM: queued requests, replies, the upload state. */
void
server_down(void)
{
	drop_all();
	board.up_active = false;
}

void
server_init(void)
{
	proc_ev = evtimer_new(board.base, proc_cb, NULL);
}

void
server_free(void)
{
	drop_all();
	event_free(proc_ev);
	proc_ev = NULL;
}
