/*
 * Running any SMP command on a board, for policy code (the operator's
 * `smp` commands, the management channel): the worker sends it and parses
 * the board's answer inside its sandbox; the answer arrives here as a tree
 * in IPC form and is rebuilt, checked against smp_tree.h's limits, into a
 * C tree, so that no IPC type reaches the caller.  Payloads are built and
 * answers read with smp_groups.h.
 */
#ifndef SMP_CMD_H
#define SMP_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "smp_tree.h"

struct worker;
struct json_object;
typedef struct Ipc__SmpTree Ipc__SmpTree;

struct smp_cmd {
	uint8_t op; /* SMP_OP_READ or SMP_OP_WRITE */
	uint16_t group;
	uint8_t id;
	const uint8_t *payload; /* one CBOR map; NULL (len 0) sends {} */
	size_t len;
	uint32_t timeout_ms; /* per try; 0: the link's request timeout */
};

enum smp_cmd_status {
	SMP_CMD_OK,
	SMP_CMD_BOARD_ERROR, /* board_rc (and board_group when v2) */
	SMP_CMD_TIMEOUT,     /* no answer after every retransmission */
	SMP_CMD_LINK_DOWN,   /* no link, or the worker is gone */
	SMP_CMD_PROTOCOL,    /* a malformed answer (from the board or the
	                        worker) */
	SMP_CMD_BAD_REQUEST, /* the command itself is wrong, or too large */
	SMP_CMD_ABORTED,
	SMP_CMD_BUSY, /* another operation holds the board */
};

struct smp_cmd_result {
	enum smp_cmd_status status;
	const char *error; /* readable reason unless OK */
	int board_rc;
	uint16_t board_group;
	bool board_v2;
	/*
	 * The answer's payload: with OK, and with BOARD_ERROR when the
	 * payload parsed (a legacy shell's "rc" is its command's code);
	 * empty (n == 0) otherwise.  The callback may take it (copy the
	 * struct and zero it); what is left is freed after the callback.
	 */
	struct smp_tree tree;
};

typedef void (*smp_cmd_cb)(struct smp_cmd_result *res, void *arg);

struct smp_cmd_req;

/*
 * Run c on board board_id through worker w; cb is called once with the
 * result (never from inside this call).  NULL when the request cannot be
 * sent at all (the worker is stopped, or c does not fit one IPC message):
 * cb is not called then.
 */
struct smp_cmd_req *smp_cmd_run(struct worker *w, uint32_t board_id,
                                const struct smp_cmd *c, smp_cmd_cb cb,
                                void *arg);
/* Forget a request that has not answered yet: cb will not be called. */
void smp_cmd_cancel(struct smp_cmd_req *r);

/* "ok", "board error", "timeout", ... */
const char *smp_cmd_status_name(enum smp_cmd_status s);

/* The edge: a tree as it came over IPC into t.  0, or -1 with why. */
int smp_cmd_tree_from_ipc(const Ipc__SmpTree *pt, struct smp_tree *t, char *why,
                          size_t whycap);

/*
 * A node as JSON for output: maps with text keys as objects (other keys
 * as their text), byte strings as hex, text made valid UTF-8.
 */
struct json_object *smp_tree_json(const struct smp_tree *t,
                                  const struct smp_node *n);

#endif
