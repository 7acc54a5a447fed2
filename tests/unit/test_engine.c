/*
 * The worker engine against a stub transport and a stub board (the SMP
 * server codecs), with the test playing the supervisor over a real
 * socketpair: request/reply matching by sequence number, timeout and
 * retransmit, the pipelined upload under its window, rewinds, resume via
 * the first packet, abort, and BUSY.
 */
#include <sys/socket.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "engine.h"
#include "ipc.h"
#include "log.h"
#include "smp.h"
#include "smp_server.h"

#define MAXPKT 64
#define MAXMSG 4096
#define IMG    20000

/* The stub transport: packets sent are queued for the stub board. */
struct stub {
	uint8_t *pkt[MAXPKT];
	size_t len[MAXPKT];
	size_t n;
	size_t nsent;   /* all packets ever sent */
	bool fail_send; /* the link is lost on the next send */
	int nreopen;
	uint8_t seqs[1024];
};

/* The stub board. */
struct board {
	bool silent;   /* answers nothing */
	int drop_next; /* requests to swallow */
	uint32_t off;  /* upload offset */
	uint32_t len;  /* upload length */
	uint8_t img[IMG + 64];
	uint32_t reboot_at; /* forget the upload once off passes this */
	bool rebooted;
	unsigned int max_inflight;
	bool params_notsup;
	/* Generic commands (groups the stub does not know): this payload,
	 * answered with op wrong_op when set. */
	const uint8_t *canned;
	size_t canned_len;
	uint8_t wrong_op;
	uint8_t last_cmd[64]; /* the last such request, whole */
	size_t last_cmd_len;
};

struct fx {
	struct event_base *base;
	struct engine *e;
	struct ipc *sup;
	struct stub stub;
	struct board board;
	Ipc__Envelope *msgs[MAXMSG];
	size_t nmsgs;
	/* supervisor side of an upload */
	uint8_t image[IMG];
	uint64_t next;
	unsigned int credit;
	int nrewind;
	uint64_t first_rewind;
};

static struct fx *cur;

static int
stub_open(void *ctx, const Ipc__LinkConfig *cfg, int fd, char *why,
          size_t whycap)
{
	(void)ctx;
	(void)cfg;
	(void)fd;
	(void)why;
	(void)whycap;
	return 0;
}

static int
stub_reopen(void *ctx, int fd, char *why, size_t whycap)
{
	((struct stub *)ctx)->nreopen++;
	(void)fd;
	(void)why;
	(void)whycap;
	return 0;
}

static void
stub_close(void *ctx)
{
	(void)ctx;
}

static int
stub_fd(void *ctx)
{
	(void)ctx;
	return -1;
}

static int
stub_read(void *ctx, struct engine *e)
{
	(void)ctx;
	(void)e;
	return 0;
}

static int
stub_send(void *ctx, const uint8_t *pkt, size_t len)
{
	struct stub *s = ctx;

	if (s->fail_send) {
		s->fail_send = false;
		return -1;
	}
	assert_true(s->n < MAXPKT);
	s->pkt[s->n] = malloc(len);
	memcpy(s->pkt[s->n], pkt, len);
	s->len[s->n++] = len;
	if (s->nsent < sizeof(s->seqs))
		s->seqs[s->nsent] = pkt[6];
	s->nsent++;
	return 0;
}

static size_t
stub_max_pkt(void *ctx)
{
	(void)ctx;
	return 65535;
}

static const struct link_ops stub_ops = {
    .role = "stub",
    .open = stub_open,
    .reopen = stub_reopen,
    .close = stub_close,
    .fd = stub_fd,
    .read = stub_read,
    .send = stub_send,
    .max_pkt = stub_max_pkt,
};

/* Supervisor side: keep a copy of every message. */
static void
sup_msg(struct ipc *ipc, const Ipc__Envelope *env, int fd, void *arg)
{
	struct fx *f = arg;
	uint8_t buf[IPC_MAX_MSG];
	size_t n;

	(void)ipc;
	assert_int_equal(fd, -1);
	assert_true(f->nmsgs < MAXMSG);
	n = ipc__envelope__pack(env, buf);
	f->msgs[f->nmsgs++] = ipc__envelope__unpack(NULL, n, buf);
	if (env->body_case == IPC__ENVELOPE__BODY_UPLOAD_CREDIT)
		f->credit += env->upload_credit->chunks;
	if (env->body_case == IPC__ENVELOPE__BODY_UPLOAD_REWIND) {
		if (f->nrewind++ == 0)
			f->first_rewind = env->upload_rewind->offset;
		f->credit = 0;
		f->next = env->upload_rewind->offset;
	}
}

static void
sup_err(struct ipc *ipc, const char *reason, void *arg)
{
	(void)ipc;
	(void)arg;
	fail_msg("supervisor side ipc error: %s", reason);
}

static void
sup_send(struct fx *f, Ipc__Envelope *env, uint64_t id)
{
	env->request_id = id;
	env->board_id = 1;
	assert_int_equal(ipc_send(f->sup, env, -1), 0);
}

static void
sup_configure(struct fx *f, uint32_t timeout_ms, uint32_t retries)
{
	Ipc__Envelope env;
	Ipc__Configure cf;
	Ipc__LinkConfig lc;

	ipc__envelope__init(&env);
	ipc__configure__init(&cf);
	ipc__link_config__init(&lc);
	lc.kind = IPC__LINK_CONFIG__KIND__UDP;
	lc.request_timeout_ms = timeout_ms;
	lc.erase_timeout_ms = timeout_ms;
	lc.retries = retries;
	cf.link = &lc;
	env.body_case = IPC__ENVELOPE__BODY_CONFIGURE;
	env.configure = &cf;
	sup_send(f, &env, 0);
}

static void
sup_echo(struct fx *f, uint64_t id, const char *text)
{
	Ipc__Envelope env;
	Ipc__Echo echo;

	ipc__envelope__init(&env);
	ipc__echo__init(&echo);
	echo.text = (char *)(uintptr_t)text;
	env.body_case = IPC__ENVELOPE__BODY_ECHO;
	env.echo = &echo;
	sup_send(f, &env, id);
}

static void
sup_upload(struct fx *f, uint64_t id, uint32_t window)
{
	Ipc__Envelope env;
	Ipc__UploadBegin ub;
	uint8_t sha[32] = {1, 2, 3};

	ipc__envelope__init(&env);
	ipc__upload_begin__init(&ub);
	ub.total_len = IMG;
	ub.sha256.data = sha;
	ub.sha256.len = 32;
	ub.chunk_size = IPC_CHUNK_SIZE;
	ub.window = window;
	env.body_case = IPC__ENVELOPE__BODY_UPLOAD_BEGIN;
	env.upload_begin = &ub;
	sup_send(f, &env, id);
}

static void
sup_cmd(struct fx *f, uint64_t id, uint32_t op, uint32_t group, uint32_t cid,
        const uint8_t *payload, size_t len, uint32_t timeout_ms)
{
	Ipc__Envelope env;
	Ipc__SmpCommand c;

	ipc__envelope__init(&env);
	ipc__smp_command__init(&c);
	c.op = op;
	c.group = group;
	c.id = cid;
	c.payload.data = (uint8_t *)(uintptr_t)payload;
	c.payload.len = len;
	c.timeout_ms = timeout_ms;
	env.body_case = IPC__ENVELOPE__BODY_SMP_COMMAND;
	env.smp_command = &c;
	sup_send(f, &env, id);
}

static void
sup_abort(struct fx *f, uint64_t id)
{
	Ipc__Envelope env;
	Ipc__UploadAbort ua;

	ipc__envelope__init(&env);
	ipc__upload_abort__init(&ua);
	env.body_case = IPC__ENVELOPE__BODY_UPLOAD_ABORT;
	env.upload_abort = &ua;
	sup_send(f, &env, id);
}

/* Send chunks while there is credit, as the supervisor does. */
static void
sup_feed(struct fx *f, uint64_t id)
{
	Ipc__Envelope env;
	Ipc__UploadChunk ch;
	size_t len;

	while (f->credit > 0 && f->next < IMG) {
		len = IMG - f->next;
		if (len > IPC_CHUNK_SIZE)
			len = IPC_CHUNK_SIZE;
		ipc__envelope__init(&env);
		ipc__upload_chunk__init(&ch);
		ch.offset = f->next;
		ch.data.data = f->image + f->next;
		ch.data.len = len;
		env.body_case = IPC__ENVELOPE__BODY_UPLOAD_CHUNK;
		env.upload_chunk = &ch;
		sup_send(f, &env, id);
		f->next += len;
		f->credit--;
	}
}

/* The stub board answers one request. */
static void
board_answer(struct fx *f, const uint8_t *pkt, size_t len)
{
	struct board *b = &f->board;
	struct smp_rsp_opts o = {.version = SMP_V1};
	struct smp_request req;
	struct smp_params p = {.buf_size = 384, .buf_count = 4};
	struct smp_upload_rsp ur = {0};
	uint8_t out[512];
	ssize_t n = -1;

	assert_int_equal(smp_req_decode(pkt, len, &req), SMP_OK);
	if (b->canned != NULL && req.hdr.group != SMP_GROUP_IMAGE &&
	    (req.hdr.group != SMP_GROUP_OS || req.hdr.id != SMP_OS_PARAMS)) {
		struct smp_hdr h = req.hdr;

		if (len <= sizeof(b->last_cmd)) {
			memcpy(b->last_cmd, pkt, len);
			b->last_cmd_len = len;
		}
		h.op = b->wrong_op ? b->wrong_op : h.op + 1;
		h.len = (uint16_t)b->canned_len;
		smp_hdr_encode(&h, out);
		memcpy(out + SMP_HDR_SIZE, b->canned, b->canned_len);
		engine_packet(f->e, out, SMP_HDR_SIZE + b->canned_len);
		return;
	}
	if (req.hdr.group == SMP_GROUP_OS && req.hdr.id == SMP_OS_ECHO)
		n = smp_rspb_echo(out, sizeof(out), &req.hdr, &o,
		                  req.u.echo.text);
	else if (req.hdr.group == SMP_GROUP_OS && req.hdr.id == SMP_OS_PARAMS)
		n = b->params_notsup
		        ? smp_rspb_error(out, sizeof(out), &req.hdr, &o,
		                         SMP_RC_NOTSUP, NULL)
		        : smp_rspb_params(out, sizeof(out), &req.hdr, &o, &p);
	else if (req.hdr.group == SMP_GROUP_IMAGE &&
	         req.hdr.id == SMP_IMAGE_UPLOAD) {
		if (req.u.upload.off == 0 && req.u.upload.has_len) {
			/* First packet: resume if the same upload runs. */
			if (b->len != req.u.upload.len || b->off == 0 ||
			    b->off >= b->len) {
				b->len = req.u.upload.len;
				b->off = 0;
			}
			if (b->off == 0) {
				memcpy(b->img, req.u.upload.data,
				       req.u.upload.data_len);
				b->off = req.u.upload.data_len;
			}
		} else if (req.u.upload.off == b->off && b->len > 0) {
			assert_true(b->off + req.u.upload.data_len <= IMG);
			memcpy(b->img + b->off, req.u.upload.data,
			       req.u.upload.data_len);
			b->off += req.u.upload.data_len;
		}
		if (b->reboot_at > 0 && !b->rebooted &&
		    b->off >= b->reboot_at) {
			/* Lost its upload state: wants everything again. */
			b->rebooted = true;
			b->off = 0;
			b->len = 0;
		}
		ur.off = b->off;
		n = smp_rspb_image_upload(out, sizeof(out), &req.hdr, &o, &ur);
	}
	assert_true(n > 0);
	engine_packet(f->e, out, n);
}

/* Count upload packets sent but not answered: the pipeline depth. */
static void
board_run(struct fx *f)
{
	struct stub *s = &f->stub;
	uint8_t *pkt[MAXPKT];
	size_t len[MAXPKT], i, n = s->n;

	if (n > f->board.max_inflight)
		f->board.max_inflight = n;
	/* Answers make the engine send more: take this batch out first. */
	memcpy(pkt, s->pkt, n * sizeof(pkt[0]));
	memcpy(len, s->len, n * sizeof(len[0]));
	s->n = 0;
	for (i = 0; i < n; i++) {
		if (!f->board.silent) {
			if (f->board.drop_next > 0)
				f->board.drop_next--;
			else
				board_answer(f, pkt[i], len[i]);
		}
		free(pkt[i]);
	}
}

static const Ipc__Reply *
find_reply(struct fx *f, uint64_t id)
{
	size_t i;

	for (i = 0; i < f->nmsgs; i++)
		if (f->msgs[i]->body_case == IPC__ENVELOPE__BODY_REPLY &&
		    f->msgs[i]->request_id == id)
			return f->msgs[i]->reply;
	return NULL;
}

/* Run loop and board until the reply for id came (or 5 s passed). */
static const Ipc__Reply *
run_until_reply(struct fx *f, uint64_t id, bool feed)
{
	const Ipc__Reply *r;
	time_t end = time(NULL) + 5;

	while ((r = find_reply(f, id)) == NULL && time(NULL) < end) {
		event_base_loop(f->base, EVLOOP_NONBLOCK);
		if (feed)
			sup_feed(f, id);
		board_run(f);
		if (f->stub.n == 0 && f->board.silent &&
		    find_reply(f, id) == NULL)
			event_base_loop(f->base, EVLOOP_ONCE);
	}
	return r;
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	int sv[2];
	size_t i;

	assert_non_null(f);
	log_init(0, "test");
	f->base = event_base_new();
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	f->sup = ipc_new(f->base, sv[0], sup_msg, sup_err, f);
	f->e = engine_new(f->base, &stub_ops, &f->stub, 1);
	assert_int_equal(engine_connect(f->e, sv[1]), 0);
	for (i = 0; i < IMG; i++)
		f->image[i] = (uint8_t)(i * 7 + i / 251);
	cur = f;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	size_t i;

	for (i = 0; i < f->stub.n; i++)
		free(f->stub.pkt[i]);
	for (i = 0; i < f->nmsgs; i++)
		ipc__envelope__free_unpacked(f->msgs[i], NULL);
	engine_free(f->e);
	ipc_free(f->sup);
	event_base_free(f->base);
	free(f);
	return 0;
}

static void
test_hello_then_echo(void **state)
{
	struct fx *f = *state;
	const Ipc__Reply *r;

	sup_configure(f, 1000, 3);
	sup_echo(f, 11, "ping");
	r = run_until_reply(f, 11, false);
	assert_non_null(r);
	assert_int_equal(f->msgs[0]->body_case, IPC__ENVELOPE__BODY_HELLO);
	assert_int_equal(f->msgs[0]->hello->protocol_version,
	                 IPC_PROTOCOL_VERSION);
	assert_string_equal(f->msgs[0]->hello->role, "stub");
	assert_int_equal(r->status, IPC__REPLY__STATUS__OK);
	assert_string_equal(r->echo, "ping");
	/* The parameters probe went first, once. */
	assert_int_equal(f->stub.nsent, 2);
	sup_echo(f, 12, "again");
	r = run_until_reply(f, 12, false);
	assert_non_null(r);
	assert_int_equal(f->stub.nsent, 3);
}

static void
test_reply_matched_by_seq(void **state)
{
	struct fx *f = *state;
	struct smp_rsp_opts o = {.version = SMP_V1};
	struct smp_request req;
	uint8_t out[128];
	ssize_t n;

	sup_configure(f, 1000, 3);
	sup_echo(f, 1, "abc");
	/* Let the params probe through, keep the echo. */
	while (f->stub.nsent < 1)
		event_base_loop(f->base, EVLOOP_ONCE);
	board_run(f);
	while (f->stub.n < 1)
		event_base_loop(f->base, EVLOOP_NONBLOCK);
	assert_int_equal(smp_req_decode(f->stub.pkt[0], f->stub.len[0], &req),
	                 SMP_OK);
	/* An answer with another sequence number is not ours. */
	req.hdr.seq++;
	n = smp_rspb_echo(out, sizeof(out), &req.hdr, &o, "wrong");
	engine_packet(f->e, out, n);
	event_base_loop(f->base, EVLOOP_NONBLOCK);
	assert_null(find_reply(f, 1));
	req.hdr.seq--;
	n = smp_rspb_echo(out, sizeof(out), &req.hdr, &o, "abc");
	engine_packet(f->e, out, n);
	event_base_loop(f->base, EVLOOP_NONBLOCK);
	assert_non_null(find_reply(f, 1));
	assert_string_equal(find_reply(f, 1)->echo, "abc");
}

static void
test_timeout_retransmits_same_seq(void **state)
{
	struct fx *f = *state;
	const Ipc__Reply *r;

	sup_configure(f, 20, 3);
	f->board.drop_next = 3; /* the probe and its first two retries */
	sup_echo(f, 5, "late");
	r = run_until_reply(f, 5, false);
	assert_non_null(r);
	assert_int_equal(r->status, IPC__REPLY__STATUS__OK);
	assert_int_equal(f->stub.seqs[0], f->stub.seqs[1]);
	assert_int_equal(f->stub.seqs[1], f->stub.seqs[2]);
	assert_int_equal(f->stub.seqs[2], f->stub.seqs[3]);
}

static void
test_timeout_gives_up(void **state)
{
	struct fx *f = *state;
	const Ipc__Reply *r;

	sup_configure(f, 10, 2);
	f->board.silent = true;
	sup_echo(f, 6, "nobody");
	r = run_until_reply(f, 6, false);
	assert_non_null(r);
	assert_int_equal(r->status, IPC__REPLY__STATUS__TIMEOUT);
	assert_int_equal(f->stub.nsent, 3); /* one try and two retries */
}

static void
test_busy(void **state)
{
	struct fx *f = *state;
	const Ipc__Reply *r;

	sup_configure(f, 10000, 3);
	f->board.silent = true;
	sup_echo(f, 1, "first");
	sup_echo(f, 2, "second");
	while (find_reply(f, 2) == NULL)
		event_base_loop(f->base, EVLOOP_ONCE);
	r = find_reply(f, 2);
	assert_int_equal(r->status, IPC__REPLY__STATUS__BUSY);
	assert_null(find_reply(f, 1));
}

/* {_ "rc": 0, "stat_list": [_ "a", "bc"]} as Zephyr encodes it */
static const uint8_t stat_list_rsp[] = {
    0xbf, 0x62, 'r', 'c',  0x00, 0x69, 's',  't', 'a', 't',  '_', 'l',
    'i',  's',  't', 0x9f, 0x61, 'a',  0x62, 'b', 'c', 0xff, 0xff};

static void
test_cmd_reply_as_tree(void **state)
{
	struct fx *f = *state;
	const Ipc__Reply *r;
	const Ipc__SmpTree *t;

	sup_configure(f, 1000, 3);
	f->board.canned = stat_list_rsp;
	f->board.canned_len = sizeof(stat_list_rsp);
	sup_cmd(f, 21, 0, 2, 1, NULL, 0, 0);
	r = run_until_reply(f, 21, false);
	assert_non_null(r);
	assert_int_equal(r->status, IPC__REPLY__STATUS__OK);
	assert_int_equal(r->result_case, IPC__REPLY__RESULT_TREE);
	t = r->tree;
	/* map, "rc", 0, "stat_list", array, "a", "bc" */
	assert_int_equal(t->n_nodes, 7);
	assert_int_equal(t->nodes[0]->kind, IPC__SMP_NODE__KIND__MAP);
	assert_int_equal(t->nodes[0]->count, 2);
	assert_int_equal(t->nodes[1]->kind, IPC__SMP_NODE__KIND__TEXT);
	assert_memory_equal(t->nodes[1]->data.data, "rc", 2);
	assert_int_equal(t->nodes[2]->kind, IPC__SMP_NODE__KIND__UINT);
	assert_int_equal(t->nodes[4]->kind, IPC__SMP_NODE__KIND__ARRAY);
	assert_int_equal(t->nodes[4]->count, 2);
	assert_int_equal(t->nodes[6]->data.len, 2);
	/* The request: a read of group 2, command 1, payload {} */
	assert_int_equal(f->board.last_cmd_len, SMP_HDR_SIZE + 1);
	assert_int_equal(f->board.last_cmd[0] & 7, 0);
	assert_int_equal(f->board.last_cmd[5], 2);
	assert_int_equal(f->board.last_cmd[7], 1);
	assert_int_equal(f->board.last_cmd[8], 0xa0);
}

static void
test_cmd_group_above_255_and_payload(void **state)
{
	static const uint8_t payload[] = {0xa1, 0x61, 'x', 0x01};
	struct fx *f = *state;
	const Ipc__Reply *r;

	sup_configure(f, 1000, 3);
	f->board.canned = stat_list_rsp;
	f->board.canned_len = sizeof(stat_list_rsp);
	sup_cmd(f, 22, 2, 300, 7, payload, sizeof(payload), 0);
	r = run_until_reply(f, 22, false);
	assert_non_null(r);
	assert_int_equal(r->status, IPC__REPLY__STATUS__OK);
	assert_int_equal(f->board.last_cmd[0] & 7, 2);
	assert_int_equal(f->board.last_cmd[4] << 8 | f->board.last_cmd[5], 300);
	assert_memory_equal(f->board.last_cmd + SMP_HDR_SIZE, payload,
	                    sizeof(payload));
}

/* A legacy shell: "rc" is its command's status, and the tree comes too. */
static void
test_cmd_board_error_keeps_tree(void **state)
{
	static const uint8_t rsp[] = {0xa2, 0x61, 'o', 0x62, 'n',
	                              'o',  0x62, 'r', 'c',  0x03};
	struct fx *f = *state;
	const Ipc__Reply *r;

	sup_configure(f, 1000, 3);
	f->board.canned = rsp;
	f->board.canned_len = sizeof(rsp);
	sup_cmd(f, 23, 2, 9, 0, NULL, 0, 0);
	r = run_until_reply(f, 23, false);
	assert_non_null(r);
	assert_int_equal(r->status, IPC__REPLY__STATUS__BOARD_ERROR);
	assert_int_equal(r->board_rc, 3);
	assert_int_equal(r->result_case, IPC__REPLY__RESULT_TREE);
	assert_int_equal(r->tree->n_nodes, 5);
}

static void
test_cmd_refused(void **state)
{
	static const uint8_t not_map[] = {0x01};
	static const uint8_t deep_rsp[] = {0xa1, 0x61, 'a', 0xfb, 0x3f, 0xf0,
	                                   0,    0,    0,   0,    0,    0};
	struct fx *f = *state;
	const Ipc__Reply *r;

	sup_configure(f, 1000, 3);
	sup_cmd(f, 24, 1, 0, 0, NULL, 0, 0);
	r = run_until_reply(f, 24, false);
	assert_int_equal(r->status, IPC__REPLY__STATUS__BAD_REQUEST);
	assert_non_null(strstr(r->error, "op 1"));
	sup_cmd(f, 25, 0, 70000, 0, NULL, 0, 0);
	r = run_until_reply(f, 25, false);
	assert_int_equal(r->status, IPC__REPLY__STATUS__BAD_REQUEST);
	sup_cmd(f, 26, 0, 0, 0, not_map, sizeof(not_map), 0);
	r = run_until_reply(f, 26, false);
	assert_int_equal(r->status, IPC__REPLY__STATUS__BAD_REQUEST);
	assert_non_null(strstr(r->error, "not one CBOR map"));
	/* Nothing of these reached the board. */
	assert_int_equal(f->stub.nsent, 0);

	/* A write answer to a read, and a float: malformed. */
	f->board.canned = stat_list_rsp;
	f->board.canned_len = sizeof(stat_list_rsp);
	f->board.wrong_op = SMP_OP_WRITE_RSP;
	sup_cmd(f, 27, 0, 2, 1, NULL, 0, 0);
	r = run_until_reply(f, 27, false);
	assert_int_equal(r->status, IPC__REPLY__STATUS__PROTOCOL);
	assert_non_null(strstr(r->error, "op 3 answers"));
	f->board.wrong_op = 0;
	f->board.canned = deep_rsp;
	f->board.canned_len = sizeof(deep_rsp);
	sup_cmd(f, 28, 0, 2, 1, NULL, 0, 0);
	r = run_until_reply(f, 28, false);
	assert_int_equal(r->status, IPC__REPLY__STATUS__PROTOCOL);
	assert_non_null(strstr(r->error, "floating-point"));
}

/* The command's own timeout wins over the link's. */
static void
test_cmd_own_timeout(void **state)
{
	struct fx *f = *state;
	const Ipc__Reply *r;
	time_t t0;

	sup_configure(f, 60000, 1);
	f->board.params_notsup = true;
	sup_echo(f, 30, "probe first"); /* the parameters probe, answered */
	assert_non_null(run_until_reply(f, 30, false));
	f->board.silent = true;
	t0 = time(NULL);
	sup_cmd(f, 31, 0, 2, 1, NULL, 0, 20);
	r = run_until_reply(f, 31, false);
	assert_non_null(r);
	assert_int_equal(r->status, IPC__REPLY__STATUS__TIMEOUT);
	assert_true(time(NULL) - t0 < 5);
}

static void
test_upload_pipelined(void **state)
{
	struct fx *f = *state;
	const Ipc__Reply *r;

	sup_configure(f, 1000, 3);
	sup_upload(f, 9, 0);
	r = run_until_reply(f, 9, true);
	assert_non_null(r);
	assert_int_equal(r->status, IPC__REPLY__STATUS__OK);
	assert_int_equal(r->result_case, IPC__REPLY__RESULT_UPLOAD);
	assert_int_equal(r->upload->bytes, IMG);
	/* buf_count 4: three packets in flight, never more. */
	assert_int_equal(r->upload->window, 3);
	assert_int_equal(f->board.max_inflight, 3);
	assert_int_equal(f->board.off, IMG);
	assert_memory_equal(f->board.img, f->image, IMG);
	assert_int_equal(f->nrewind, 0);
}

static void
test_upload_window_override_and_no_params(void **state)
{
	struct fx *f = *state;
	const Ipc__Reply *r;

	f->board.params_notsup = true;
	sup_configure(f, 1000, 3);
	sup_upload(f, 9, 2);
	r = run_until_reply(f, 9, true);
	assert_non_null(r);
	assert_int_equal(r->status, IPC__REPLY__STATUS__OK);
	assert_int_equal(r->upload->window, 2);
	assert_int_equal(f->board.max_inflight, 2);
	/* Without parameters the planner's default packet size holds. */
	assert_true(r->upload->chunk < SMP_DEFAULT_PKT_LIMIT);
	assert_memory_equal(f->board.img, f->image, IMG);
}

static void
test_upload_rewind_after_board_reboot(void **state)
{
	struct fx *f = *state;
	const Ipc__Reply *r;

	f->board.reboot_at = 15000;
	sup_configure(f, 1000, 3);
	sup_upload(f, 9, 0);
	r = run_until_reply(f, 9, true);
	assert_non_null(r);
	assert_int_equal(r->status, IPC__REPLY__STATUS__OK);
	assert_true(f->board.rebooted);
	/* The data at 0 was long gone: the supervisor had to resend. */
	assert_true(f->nrewind >= 1);
	assert_int_equal(f->first_rewind, 0);
	assert_memory_equal(f->board.img, f->image, IMG);
}

static void
test_upload_lost_packet_rewinds_in_buffer(void **state)
{
	struct fx *f = *state;
	const Ipc__Reply *r;

	sup_configure(f, 50, 5);
	/* The probe and the first packet pass, the second is lost. */
	f->board.drop_next = 0;
	sup_upload(f, 9, 0);
	while (f->stub.nsent < 3) {
		event_base_loop(f->base, EVLOOP_NONBLOCK);
		sup_feed(f, 9);
		if (f->stub.nsent == 2)
			f->board.drop_next = 1;
		board_run(f);
	}
	r = run_until_reply(f, 9, true);
	assert_non_null(r);
	assert_int_equal(r->status, IPC__REPLY__STATUS__OK);
	assert_memory_equal(f->board.img, f->image, IMG);
}

static void
test_upload_resume_via_first_packet(void **state)
{
	struct fx *f = *state;
	const Ipc__Reply *r;

	/* The board already holds the first 18000 bytes of this image, beyond
	 * what the first credits cover: the supervisor must skip ahead. */
	memcpy(f->board.img, f->image, 18000);
	f->board.off = 18000;
	f->board.len = IMG;
	sup_configure(f, 1000, 3);
	sup_upload(f, 9, 0);
	r = run_until_reply(f, 9, true);
	assert_non_null(r);
	assert_int_equal(r->status, IPC__REPLY__STATUS__OK);
	assert_int_equal(r->upload->bytes, IMG - 18000);
	assert_int_equal(f->first_rewind, 18000);
	assert_memory_equal(f->board.img, f->image, IMG);
}

static void
test_upload_abort(void **state)
{
	struct fx *f = *state;
	const Ipc__Reply *r;
	size_t sent;

	sup_configure(f, 1000, 3);
	sup_upload(f, 9, 0);
	while (f->board.off < 5000) {
		event_base_loop(f->base, EVLOOP_NONBLOCK);
		sup_feed(f, 9);
		board_run(f);
	}
	sup_abort(f, 9);
	r = run_until_reply(f, 9, true);
	assert_non_null(r);
	assert_int_equal(r->status, IPC__REPLY__STATUS__ABORTED);
	sent = f->stub.nsent;
	event_base_loop(f->base, EVLOOP_NONBLOCK);
	sup_feed(f, 9);
	event_base_loop(f->base, EVLOOP_NONBLOCK);
	assert_int_equal(f->stub.nsent, sent);
	assert_true(f->board.off < IMG);
}

static int
count_link_state(struct fx *f, bool up)
{
	size_t i;
	int n = 0;

	for (i = 0; i < f->nmsgs; i++)
		if (f->msgs[i]->body_case == IPC__ENVELOPE__BODY_LINK_STATE &&
		    f->msgs[i]->link_state->up == up)
			n++;
	return n;
}

static void
test_link_loss_fails_op_and_reconnects(void **state)
{
	struct fx *f = *state;
	const Ipc__Reply *r;
	time_t end;

	sup_configure(f, 1000, 3);
	f->stub.fail_send = true;
	sup_echo(f, 3, "lost");
	r = run_until_reply(f, 3, false);
	assert_non_null(r);
	assert_int_equal(r->status, IPC__REPLY__STATUS__LINK_DOWN);
	/* Reported down, then reopened by the engine's retry timer. */
	end = time(NULL) + 5;
	while (count_link_state(f, true) < 2 && time(NULL) < end)
		event_base_loop(f->base, EVLOOP_ONCE);
	assert_int_equal(count_link_state(f, false), 1);
	assert_int_equal(count_link_state(f, true), 2);
	assert_int_equal(f->stub.nreopen, 1);
	sup_echo(f, 4, "back");
	r = run_until_reply(f, 4, false);
	assert_non_null(r);
	assert_int_equal(r->status, IPC__REPLY__STATUS__OK);
	assert_string_equal(r->echo, "back");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_hello_then_echo, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_reply_matched_by_seq, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_timeout_retransmits_same_seq,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_timeout_gives_up, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_busy, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cmd_reply_as_tree, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(
	        test_cmd_group_above_255_and_payload, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cmd_board_error_keeps_tree,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cmd_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cmd_own_timeout, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_upload_pipelined, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(
	        test_upload_window_override_and_no_params, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_upload_rewind_after_board_reboot, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_upload_lost_packet_rewinds_in_buffer, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_upload_resume_via_first_packet,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_upload_abort, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_link_loss_fails_op_and_reconnects, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
