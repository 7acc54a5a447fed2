/*
 * A board's reply payload (one CBOR map) as a typed, bounded tree, so that
 * any SMP command can travel generically: the worker parses the board's
 * CBOR into a tree, the supervisor only ever sees trees.  Pure codec, no
 * I/O.  Nodes are kept flat, in pre-order, with each node's subtree end, so
 * neither building, checking nor walking a tree recurses.
 */
#ifndef SMP_TREE_H
#define SMP_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits every tree obeys, from a board or from a worker. */
#define SMP_TREE_MAX_DEPTH 16    /* containers inside containers */
#define SMP_TREE_MAX_NODES 2048  /* every item, keys included */
#define SMP_TREE_MAX_DATA  32768 /* bytes of all strings together */

enum smp_vtype {
	SMP_V_UINT,
	SMP_V_NEGINT, /* the value is -1 - u (CBOR's negative integers) */
	SMP_V_BYTES,
	SMP_V_TEXT, /* as the board sent it: UTF-8 is not checked */
	SMP_V_BOOL,
	SMP_V_NULL,
	SMP_V_ARRAY,
	SMP_V_MAP, /* children: key, value, key, value... */
};

struct smp_node {
	enum smp_vtype type;
	uint64_t u;       /* UINT, NEGINT */
	bool b;           /* BOOL */
	const uint8_t *p; /* BYTES, TEXT: len bytes, then a NUL we add */
	size_t len;
	uint32_t count; /* ARRAY: items; MAP: pairs */
	uint32_t end;   /* index of the first node after this subtree */
};

struct smp_tree {
	struct smp_node *nodes; /* nodes[0] is the root */
	size_t n;
	uint8_t *data; /* the strings' bytes, owned */
	size_t data_len;
};

/*
 * The payload of a reply (an empty payload is an empty map) into t.  The
 * payload must be exactly one map within the limits above; tags are
 * looked through; floats and other simple values are refused (SMP has
 * none).  0, or -1 with the reason in why (and t left empty).
 */
int smp_tree_from_cbor(const uint8_t *cbor, size_t len, struct smp_tree *t,
                       char *why, size_t whycap);

/*
 * A tree from nodes in pre-order whose type, u, b, p/len and count are set
 * (end is computed): the other door in, for trees that arrive over IPC.
 * Checks every count and limit and that the root is a map; copies the
 * strings.  0, or -1 with the reason in why (and t left empty).
 */
int smp_tree_import(struct smp_tree *t, const struct smp_node *in, size_t n,
                    char *why, size_t whycap);

void smp_tree_free(struct smp_tree *t);

/* Walking.  The root; NULL for an empty tree. */
const struct smp_node *smp_tree_root(const struct smp_tree *t);
/* A container's first child, and the sibling after c; NULL past the end. */
const struct smp_node *smp_tree_first(const struct smp_tree *t,
                                      const struct smp_node *parent);
const struct smp_node *smp_tree_next(const struct smp_tree *t,
                                     const struct smp_node *parent,
                                     const struct smp_node *c);
/* The value under text key in a map; NULL if absent or not a map. */
const struct smp_node *smp_tree_get(const struct smp_tree *t,
                                    const struct smp_node *map,
                                    const char *key);
/* A text node equal to s (no NUL inside). */
bool smp_node_is_text(const struct smp_node *n, const char *s);
/* An integer node's value within [min, max]: 0, or -1. */
int smp_node_int(const struct smp_node *n, int64_t min, int64_t max,
                 int64_t *out);
/* "unsigned integer", "text string", ... for messages. */
const char *smp_vtype_name(enum smp_vtype t);

#endif
