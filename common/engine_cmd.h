/*
 * The engine's generic SMP command (IPC SmpCommand): the request checked
 * and built into a packet, and the board's answer turned into a Reply
 * carrying its payload as a tree (smp_tree.h) with the board's rc or v2
 * error.  The engine (engine.c) sends and matches the packet like any
 * other request; this file holds everything particular to the operation.
 */
#ifndef ENGINE_CMD_H
#define ENGINE_CMD_H

#include <stddef.h>
#include <stdint.h>

#include "ipc.h"
#include "smp_tree.h"

struct engine_cmd;

/* A copy of a command, checked; NULL with the reason in why. */
struct engine_cmd *engine_cmd_new(const Ipc__SmpCommand *c, char *why,
                                  size_t whycap);
void engine_cmd_free(struct engine_cmd *c);

/*
 * The request packet (sequence number 0, patched by the engine) for SMP
 * version ver; xmalloc'd, its length in *len.
 */
uint8_t *engine_cmd_packet(const struct engine_cmd *c, int ver, size_t *len);
/* Per-try timeout: the command's own, else dflt_ms. */
int engine_cmd_timeout(const struct engine_cmd *c, int dflt_ms);

/* A Reply and what its pointers point to. */
struct engine_cmd_result {
	Ipc__Reply reply;
	Ipc__SmpTree ptree;
	Ipc__SmpNode *pnodes;
	Ipc__SmpNode **pnode_ptrs;
	struct smp_tree tree;
	char error[320];
};

/*
 * The board's answer pkt (its header already matched by sequence number,
 * group and id) into res->reply: OK with the tree; BOARD_ERROR with the
 * board's code and, when the payload parsed, the tree too; PROTOCOL when
 * the answer is malformed, exceeds the tree limits or would not fit one
 * IPC message.  Free with engine_cmd_result_free().
 */
void engine_cmd_result(const struct engine_cmd *c, const uint8_t *pkt,
                       size_t len, struct engine_cmd_result *res);
void engine_cmd_result_free(struct engine_cmd_result *res);

#endif
