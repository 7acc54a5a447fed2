/*
 * The update machine's side of RDFM's management channel (mgmt.h): what
 * the channel asks of a board runs as a generic SMP command (smp_cmd.h)
 * between the machine's cycles, never while an update holds the board;
 * and what the machine does - an update starting, its progress, its end,
 * the version the boards run - goes to the channel.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "artifact.h"
#include "board.h"
#include "log.h"
#include "machine_int.h"
#include "mgmt.h"
#include "rdfm.h"
#include "smp_cmd.h"
#include "smp_groups.h"
#include "util.h"
#include "workers.h"
#include "xmalloc.h"

/* A failed authentication for the channel's token is tried again after. */
#define TOKEN_RETRY_MS 5000
/* The SMP fs group's v2 code for a file that does not exist. */
#define FS_ERR_NOT_FOUND 3
/* SMP v1's "no such entry", which older fs groups answer instead. */
#define RC_NOENT 5

struct mm_run {
	struct member *mb;
	enum mgmt_op op;
	size_t max_len;
};

static void run_op(struct member *mb, const struct mgmt_op_args *op,
                   struct mgmt_req *req);

/* --- answers ------------------------------------------------------------ */

static void
answer(struct mgmt_req *req, enum mgmt_status st, int rc, const void *data,
       size_t len)
{
	struct mgmt_result res;

	memset(&res, 0, sizeof(res));
	res.status = st;
	res.rc = rc;
	res.data = data;
	res.len = len;
	mgmt_req_done(req, &res);
}

static void
answer_text(struct mgmt_req *req, enum mgmt_status st, const char *text)
{
	answer(req, st, 0, text, strlen(text));
}

/* A refusal waits for the loop: never answered inside the channel's call. */
static void
on_refuse(evutil_socket_t fd, short ev, void *arg)
{
	struct member *mb = arg;
	struct mgmt_req *req = mb->mwait_req;

	(void)fd;
	(void)ev;
	mb->mwait_req = NULL;
	mb->mwait = NULL;
	if (req != NULL)
		answer_text(req, MGMT_BUSY, "busy: update in progress");
}

static bool
update_in_progress(const struct machine *m)
{
	return decide_in_flight(m->j.phase) || m->step >= S_UPLOAD;
}

/* The board answered; the command's outcome for the channel. */
static enum mgmt_status
status_of(const struct smp_cmd_result *res, const struct mm_run *r, char *why,
          size_t cap)
{
	switch (res->status) {
	case SMP_CMD_OK:
		return MGMT_DONE;
	case SMP_CMD_BOARD_ERROR:
		if (smpg_not_supported(res->board_rc, res->board_v2))
			return MGMT_UNSUPPORTED;
		if ((r->op == MGMT_OP_FS_STAT || r->op == MGMT_OP_FS_READ) &&
		    ((res->board_v2 && res->board_group == SMP_GROUP_FS &&
		      res->board_rc == FS_ERR_NOT_FOUND) ||
		     (!res->board_v2 && res->board_rc == RC_NOENT)))
			return MGMT_NOT_FOUND;
		/* A legacy shell reports its command's code as "rc". */
		if (r->op == MGMT_OP_SHELL && res->tree.n > 0)
			return MGMT_DONE;
		snprintf(why, cap, "the board refused: %s",
		         res->error != NULL ? res->error : "error");
		return MGMT_FAILED;
	default:
		snprintf(why, cap, "%s: %s", smp_cmd_status_name(res->status),
		         res->error != NULL ? res->error : "");
		return MGMT_FAILED;
	}
}

/* The image list as lines of text, one per slot. */
static char *
list_text(const struct smp_tree *t, char *why, size_t cap)
{
	struct smp_image_list l;
	char *out = NULL, h[65];
	size_t i, n = 0;

	if (smpg_dec_image_state(t, &l, why, cap) == -1)
		return NULL;
	out = xmalloc(l.n * 200 + 32);
	out[0] = '\0';
	for (i = 0; i < l.n; i++) {
		const struct smp_image_slot *s = &l.slots[i];

		if (s->has_hash)
			hex_encode(s->hash, SMP_HASH_LEN, h);
		else
			snprintf(h, sizeof(h), "-");
		n += (size_t)sprintf(
		    out + n, "image %u slot %u version %s%s%s%s%s hash %s\n",
		    s->image, s->slot, s->version, s->active ? " active" : "",
		    s->confirmed ? " confirmed" : "",
		    s->pending ? " pending" : "",
		    s->permanent ? " permanent" : "", h);
	}
	if (l.n == 0)
		snprintf(out, 32, "no images\n");
	return out;
}

/* What a successful answer means for each operation. */
static void
answer_done(struct mgmt_req *req, const struct mm_run *r,
            const struct smp_tree *t)
{
	struct mgmt_result res;
	struct smpg_fs_chunk ch;
	struct smpg_shell sh;
	const char *text;
	char why[256], *list;

	memset(&res, 0, sizeof(res));
	res.status = MGMT_DONE;
	switch (r->op) {
	case MGMT_OP_ECHO:
		if (smpg_dec_echo(t, &text, why, sizeof(why)) == -1)
			goto bad;
		answer_text(req, MGMT_DONE, text);
		return;
	case MGMT_OP_IMAGE_LIST:
		if ((list = list_text(t, why, sizeof(why))) == NULL)
			goto bad;
		answer_text(req, MGMT_DONE, list);
		free(list);
		return;
	case MGMT_OP_SHELL:
		if (smpg_dec_shell(t, &sh, why, sizeof(why)) == -1)
			goto bad;
		answer(req, MGMT_DONE, sh.has_ret ? (int)sh.ret : 0, sh.out,
		       sh.out_len);
		return;
	case MGMT_OP_FS_STAT:
		if (smpg_dec_fs_stat(t, &res.size, why, sizeof(why)) == -1)
			goto bad;
		mgmt_req_done(req, &res);
		return;
	case MGMT_OP_FS_READ:
		if (smpg_dec_fs_download(t, &ch, why, sizeof(why)) == -1)
			goto bad;
		res.data = ch.data;
		res.len = ch.len < r->max_len ? ch.len : r->max_len;
		mgmt_req_done(req, &res);
		return;
	case MGMT_OP_RESET:
	case MGMT_OP_CONFIRM:
		answer_text(req, MGMT_DONE, "");
		return;
	}
	snprintf(why, sizeof(why), "unknown operation");
bad:
	answer_text(req, MGMT_FAILED, why);
}

static void
on_answer(struct smp_cmd_result *res, void *arg)
{
	struct mm_run *r = arg;
	struct member *mb = r->mb;
	struct mgmt_req *req = mb->mreq;
	char why[400];
	enum mgmt_status st;

	mb->mop = NULL;
	mb->mreq = NULL;
	st = status_of(res, r, why, sizeof(why));
	if (st == MGMT_DONE)
		answer_done(req, r, &res->tree);
	else if (st == MGMT_UNSUPPORTED || st == MGMT_NOT_FOUND)
		answer_text(req, st, res->error != NULL ? res->error : "");
	else
		answer_text(req, st, why);
	free(r);
}

/* --- running an operation ---------------------------------------------- */

/* The payload of an operation; its command in *sc.  -1 when it is wrong. */
static ssize_t
encode(const struct mgmt_op_args *op, const struct smpg_cmd **sc, uint8_t *buf,
       size_t cap)
{
	switch (op->op) {
	case MGMT_OP_ECHO:
		*sc = &smpg_os_echo;
		return smpg_enc_echo(buf, cap,
		                     op->text != NULL ? op->text : "");
	case MGMT_OP_RESET:
		*sc = &smpg_os_reset;
		return smpg_enc_empty(buf, cap);
	case MGMT_OP_IMAGE_LIST:
		*sc = &smpg_image_state_read;
		return smpg_enc_empty(buf, cap);
	case MGMT_OP_CONFIRM:
		*sc = &smpg_image_confirm;
		return smpg_enc_image_confirm(buf, cap);
	case MGMT_OP_SHELL:
		*sc = &smpg_shell_exec;
		return smpg_enc_shell_exec(buf, cap, (int)op->argc,
		                           (char *const *)(uintptr_t)op->argv);
	case MGMT_OP_FS_STAT:
		*sc = &smpg_fs_stat;
		return smpg_enc_fs_stat(buf, cap, op->path);
	case MGMT_OP_FS_READ:
		*sc = &smpg_fs_download;
		return smpg_enc_fs_download(buf, cap, op->path, op->offset);
	}
	return -1;
}

static void
run_op(struct member *mb, const struct mgmt_op_args *op, struct mgmt_req *req)
{
	const struct smpg_cmd *sc = NULL;
	struct smp_cmd c;
	struct mm_run *r;
	uint8_t buf[4096];
	ssize_t n;

	if ((n = encode(op, &sc, buf, sizeof(buf))) < 0) {
		answer_text(req, MGMT_FAILED,
		            "the request does not fit an SMP packet");
		return;
	}
	memset(&c, 0, sizeof(c));
	c.op = sc->op;
	c.group = sc->group;
	c.id = sc->id;
	c.payload = buf;
	c.len = (size_t)n;
	c.timeout_ms = op->timeout_ms > 0 ? (uint32_t)op->timeout_ms : 0;
	r = xcalloc(1, sizeof(*r));
	r->mb = mb;
	r->op = op->op;
	r->max_len = op->max_len;
	mb->mreq = req;
	mb->mop = smp_cmd_run(board_worker(mb->board), board_id(mb->board), &c,
	                      on_answer, r);
	if (mb->mop == NULL) {
		mb->mreq = NULL;
		free(r);
		answer_text(req, MGMT_FAILED, "the board's worker is stopped");
	}
}

/* The channel asks: run now between cycles, later during one, never
 * during an update. */
static void
ops_run(void *ctx, const struct mgmt_op_args *op, struct mgmt_req *req)
{
	struct machine *m = ctx;
	struct member *mb;

	if (op->board >= m->n) {
		/* The channel only names boards of this machine. */
		mb = &m->mb[0];
	} else
		mb = &m->mb[op->board];
	if (update_in_progress(m) || mb->mreq != NULL || mb->mwait != NULL) {
		mb->mwait_req = req;
		mb->mwait = NULL;
		event_active(mb->mgmt_ev, EV_TIMEOUT, 0);
		return;
	}
	if (m->step != S_IDLE) {
		/* The cycle reads the boards now: after it. */
		mb->mwait = op;
		mb->mwait_req = req;
		return;
	}
	run_op(mb, op, req);
}

static bool
ops_update_in_progress(void *ctx)
{
	return decide_in_flight(((struct machine *)ctx)->j.phase);
}

static void
ops_check_now(void *ctx)
{
	machine_cycle_now(ctx);
}

static void
on_token(struct rdfm_dev *rd, const struct rdfm_result *res, void *arg)
{
	struct machine *m = arg;

	(void)rd;
	if (res->status == RDFM_AUTHENTICATED)
		mgmt_token_ready(m->md);
	else
		machine_timer_ms(m->token_ev, TOKEN_RETRY_MS);
}

static void
start_auth(struct machine *m)
{
	if (rdfm_auth(m->rd, m->version, on_token, m) == -1)
		m->token_wanted = true; /* after the machine's own request */
}

static const char *
ops_token(void *ctx, bool refused)
{
	struct machine *m = ctx;
	const char *t;

	if (refused)
		rdfm_dev_forget_token(m->rd);
	if ((t = rdfm_dev_token(m->rd)) != NULL)
		return t;
	start_auth(m);
	return NULL;
}

static void
on_token_timer(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	mgmt_token_ready(((struct machine *)arg)->md);
}

static const struct mgmt_board_ops machine_ops = {
    .run = ops_run,
    .update_in_progress = ops_update_in_progress,
    .check_now = ops_check_now,
    .token = ops_token,
};

/* --- the machine's side ------------------------------------------------- */

void
mm_init(struct machine *m)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		if ((m->mb[i].mgmt_ev = event_new(
		         m->env->base, -1, 0, on_refuse, &m->mb[i])) == NULL)
			fatalx("cannot create an event", NULL);
	if ((m->token_ev = evtimer_new(m->env->base, on_token_timer, m)) ==
	    NULL)
		fatalx("cannot create a timer", NULL);
	if (m->gcfg != NULL)
		m->md =
		    mgmt_dev_new_group(m->env->mgmt, m->gcfg, &machine_ops, m);
	else
		m->md =
		    mgmt_dev_new_device(m->env->mgmt, m->dcfg, &machine_ops, m);
}

void
mm_free(struct machine *m)
{
	size_t i;

	/* The channel first: answers owed to it become harmless. */
	mgmt_dev_free(m->md);
	m->md = NULL;
	for (i = 0; i < m->n; i++) {
		struct member *mb = &m->mb[i];

		if (mb->mop != NULL) {
			smp_cmd_cancel(mb->mop);
			mb->mop = NULL;
		}
		if (mb->mreq != NULL)
			answer_text(mb->mreq, MGMT_FAILED, "stopped");
		if (mb->mwait_req != NULL)
			answer_text(mb->mwait_req, MGMT_FAILED, "stopped");
		mb->mreq = mb->mwait_req = NULL;
		if (mb->mgmt_ev != NULL)
			event_free(mb->mgmt_ev);
	}
	if (m->token_ev != NULL)
		event_free(m->token_ev);
}

bool
mm_busy(const struct machine *m)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		if (m->mb[i].mreq != NULL)
			return true;
	return false;
}

void
mm_cycle_ended(struct machine *m)
{
	size_t i;

	for (i = 0; i < m->n; i++) {
		struct member *mb = &m->mb[i];
		const struct mgmt_op_args *op = mb->mwait;
		struct mgmt_req *req = mb->mwait_req;

		if (op == NULL || req == NULL)
			continue;
		mb->mwait = NULL;
		mb->mwait_req = NULL;
		if (update_in_progress(m))
			answer_text(req, MGMT_BUSY, "busy: update in progress");
		else
			run_op(mb, op, req);
	}
	if (!decide_in_flight(m->j.phase) && m->mgmt_update) {
		m->mgmt_update = false;
		mgmt_update_ended(m->md);
	}
}

void
mm_rdfm_idle(struct machine *m)
{
	if (m->token_wanted) {
		m->token_wanted = false;
		start_auth(m);
		return;
	}
	/* The machine's own request brought a token (an approval, say): a
	 * channel that waits for one need not wait for its next try. */
	if (rdfm_dev_token(m->rd) != NULL)
		mgmt_token_ready(m->md);
}

void
mm_update_started(struct machine *m)
{
	if (m->mgmt_update)
		return;
	m->mgmt_update = true;
	m->rolled_back = false;
	m->update_t0 = now_ms();
	snprintf(m->from_version, sizeof(m->from_version), "%s", m->version);
	mgmt_update_started(m->md);
}

void
mm_progress(struct machine *m)
{
	uint64_t done = 0, total = 0;
	size_t i;

	for (i = 0; i < m->n; i++) {
		const struct member *mb = &m->mb[i];

		if (mb->img == NULL)
			continue;
		total += mb->img->size;
		/* Slot 1 held it already: nothing to send. */
		done += mb->up != NULL ? mb->up_acked : mb->img->size;
	}
	mgmt_progress(m->md, done, total);
}

void
mm_offered(struct machine *m)
{
	mgmt_log_update(m->md, MGMT_OUT_OFFERED, m->version,
	                m->j.target_version, -1, m->sha);
}

void
mm_update_ended(struct machine *m, bool updated, const char *why)
{
	int64_t ms = m->mgmt_update ? (int64_t)(now_ms() - m->update_t0) : -1;

	if (updated)
		mgmt_log_update(m->md, MGMT_OUT_UPDATED, m->from_version,
		                m->version, ms, NULL);
	else
		mgmt_log_update(m->md,
		                m->rolled_back ? MGMT_OUT_ROLLED_BACK
		                : strncmp(why, "rejected", 8) == 0
		                    ? MGMT_OUT_REJECTED
		                    : MGMT_OUT_FAILED,
		                m->from_version, m->j.target_version, ms, why);
}

void
mm_version(struct machine *m)
{
	mgmt_version(m->md, m->version);
}
