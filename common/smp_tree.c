/*
 * CBOR payload -> flat, typed tree (smp_tree.h).  The CBOR is read one
 * item head at a time with the SMP codecs' reader (smp_cbor.h), open
 * containers on a bounded stack; one shared check then links the nodes
 * (each node's subtree end) for trees from a board and from IPC alike.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smp_cbor.h"
#include "smp_tree.h"
#include "xmalloc.h"

#define MAX_TAGS 8 /* tags in front of one item */

static int tree_fail(char *why, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
tree_fail(char *why, size_t cap, const char *fmt, ...)
{
	va_list ap;

	if (why != NULL && cap > 0) {
		va_start(ap, fmt);
		vsnprintf(why, cap, fmt, ap);
		va_end(ap);
	}
	return -1;
}

const char *
smp_vtype_name(enum smp_vtype t)
{
	switch (t) {
	case SMP_V_UINT:
		return "unsigned integer";
	case SMP_V_NEGINT:
		return "negative integer";
	case SMP_V_BYTES:
		return "byte string";
	case SMP_V_TEXT:
		return "text string";
	case SMP_V_BOOL:
		return "boolean";
	case SMP_V_NULL:
		return "null";
	case SMP_V_ARRAY:
		return "array";
	case SMP_V_MAP:
		return "map";
	}
	return "unknown type";
}

static bool
is_container(enum smp_vtype t)
{
	return t == SMP_V_ARRAY || t == SMP_V_MAP;
}

static uint64_t
children(const struct smp_node *n)
{
	return n->type == SMP_V_MAP ? 2 * (uint64_t)n->count : n->count;
}

/*
 * Check the shape of nodes in pre-order and set every end: each
 * container's children follow it, the root is one map and nothing follows
 * it, nesting and size stay within the limits.
 */
static int
tree_link(struct smp_node *nodes, size_t n, char *why, size_t cap)
{
	struct {
		size_t idx;
		uint64_t left;
	} st[SMP_TREE_MAX_DEPTH];
	int sp = 0;
	size_t i;
	uint64_t kids;

	if (n == 0)
		return tree_fail(why, cap, "empty tree");
	if (n > SMP_TREE_MAX_NODES)
		return tree_fail(why, cap, "more than %d items",
		                 SMP_TREE_MAX_NODES);
	if (nodes[0].type != SMP_V_MAP)
		return tree_fail(why, cap, "the payload is a %s, not a map",
		                 smp_vtype_name(nodes[0].type));
	for (i = 0; i < n; i++) {
		if (i > 0 && sp == 0)
			return tree_fail(why, cap,
			                 "%zu items after the end of the map",
			                 n - i);
		if (sp > 0)
			st[sp - 1].left--;
		kids = is_container(nodes[i].type) ? children(&nodes[i]) : 0;
		if (kids > n - i - 1)
			return tree_fail(
			    why, cap, "a %s of %" PRIu64 " items is cut short",
			    smp_vtype_name(nodes[i].type), kids);
		if (kids > 0) {
			if (sp == SMP_TREE_MAX_DEPTH)
				return tree_fail(why, cap,
				                 "nested deeper than %d levels",
				                 SMP_TREE_MAX_DEPTH);
			st[sp].idx = i;
			st[sp].left = kids;
			sp++;
			continue;
		}
		nodes[i].end = (uint32_t)(i + 1);
		while (sp > 0 && st[sp - 1].left == 0) {
			nodes[st[sp - 1].idx].end = (uint32_t)(i + 1);
			sp--;
		}
	}
	if (sp != 0)
		return tree_fail(why, cap, "the tree ends inside a %s",
		                 smp_vtype_name(nodes[st[sp - 1].idx].type));
	return 0;
}

/* Growing arrays while a tree is built. */
struct builder {
	struct smp_node *nodes;
	size_t n, ncap;
	uint8_t *data;
	size_t dlen, dcap;
};

static struct smp_node *
add_node(struct builder *b, char *why, size_t cap)
{
	if (b->n >= SMP_TREE_MAX_NODES) {
		tree_fail(why, cap, "more than %d items", SMP_TREE_MAX_NODES);
		return NULL;
	}
	if (b->n == b->ncap) {
		b->ncap = b->ncap ? 2 * b->ncap : 16;
		b->nodes = xreallocarray(b->nodes, b->ncap, sizeof(*b->nodes));
	}
	memset(&b->nodes[b->n], 0, sizeof(b->nodes[0]));
	return &b->nodes[b->n++];
}

/* Room for len string bytes and their NUL; the offset, or -1. */
static int64_t
add_data(struct builder *b, size_t len, char *why, size_t cap)
{
	size_t off = b->dlen;

	if (len > SMP_TREE_MAX_DATA || b->dlen + len > SMP_TREE_MAX_DATA)
		return tree_fail(why, cap, "strings longer than %d bytes",
		                 SMP_TREE_MAX_DATA);
	if (b->dlen + len + 1 > b->dcap) {
		b->dcap = b->dlen + len + 1 > 2 * b->dcap ? b->dlen + len + 1
		                                          : 2 * b->dcap;
		b->data = xreallocarray(b->data, b->dcap, 1);
	}
	b->data[off + len] = '\0';
	b->dlen += len + 1;
	return (int64_t)off;
}

/* Strings were stored as offsets while data moved: make them pointers. */
static void
builder_done(struct builder *b, struct smp_tree *t)
{
	size_t i;

	for (i = 0; i < b->n; i++)
		if (b->nodes[i].type == SMP_V_BYTES ||
		    b->nodes[i].type == SMP_V_TEXT)
			b->nodes[i].p = b->data + (uintptr_t)b->nodes[i].p;
	t->nodes = b->nodes;
	t->n = b->n;
	t->data = b->data;
	t->data_len = b->dlen;
}

static void
builder_free(struct builder *b)
{
	free(b->nodes);
	free(b->data);
	memset(b, 0, sizeof(*b));
}

/* One open container while parsing. */
struct frame {
	size_t idx;
	bool indef, map;
	uint64_t left; /* definite: children still to come */
	uint64_t seen; /* indefinite: children so far */
};

/* A text or byte string (definite or in chunks) into the builder. */
static int
read_string(struct builder *b, struct cb_rd *r, const struct cb_item *it,
            struct smp_node *nd, char *why, size_t cap)
{
	enum cb_type want =
	    it->t == CB_TSTR || it->t == CB_TSTR_INDEF ? CB_TSTR : CB_BSTR;
	size_t n, start = r->pos;
	int64_t off;

	nd->type = want == CB_TSTR ? SMP_V_TEXT : SMP_V_BYTES;
	/* Chunks: count first, then copy from the same place. */
	if (cb_collect(r, it, want, NULL, 0, &n) != SMP_OK)
		return tree_fail(why, cap, "%s", smp_error_detail());
	if ((off = add_data(b, n, why, cap)) < 0)
		return -1;
	r->pos = start;
	if (cb_collect(r, it, want, b->data + off, n, &n) != SMP_OK)
		return tree_fail(why, cap, "%s", smp_error_detail());
	nd->p = (const uint8_t *)(uintptr_t)off;
	nd->len = n;
	return 0;
}

/*
 * Read one item head (looking through tags) and add its node; opens a
 * frame for a container with children.  Returns 1 when the item is
 * complete (a scalar, an empty container), 0 when a frame was opened, 2
 * for a break, -1 on error.
 */
static int
read_item(struct builder *b, struct cb_rd *r, struct frame *st, int *sp,
          char *why, size_t cap)
{
	struct smp_node *nd;
	struct cb_item it;
	int tags = 0;

	do {
		if (cb_next(r, &it) != SMP_OK)
			return tree_fail(why, cap, "%s", smp_error_detail());
	} while (it.t == CB_TAG && ++tags <= MAX_TAGS);
	if (it.t == CB_TAG)
		return tree_fail(why, cap, "more than %d tags on one item",
		                 MAX_TAGS);
	if (it.t == CB_BREAK)
		return tags == 0 ? 2
		                 : tree_fail(why, cap, "a tag on a CBOR break");
	if ((nd = add_node(b, why, cap)) == NULL)
		return -1;
	switch (it.t) {
	case CB_UINT:
		nd->type = SMP_V_UINT;
		nd->u = it.v;
		return 1;
	case CB_NEGINT:
		nd->type = SMP_V_NEGINT;
		nd->u = it.v;
		return 1;
	case CB_BOOL:
		nd->type = SMP_V_BOOL;
		nd->b = it.b;
		return 1;
	case CB_NULL:
		nd->type = SMP_V_NULL;
		return 1;
	case CB_BSTR:
	case CB_TSTR:
	case CB_BSTR_INDEF:
	case CB_TSTR_INDEF:
		return read_string(b, r, &it, nd, why, cap) == 0 ? 1 : -1;
	case CB_ARRAY:
	case CB_MAP:
	case CB_ARRAY_INDEF:
	case CB_MAP_INDEF:
		break;
	default:
		return tree_fail(why, cap,
		                 "a floating-point or simple value at payload "
		                 "byte %zu (SMP uses none)",
		                 r->pos - 1);
	}
	nd->type =
	    it.t == CB_MAP || it.t == CB_MAP_INDEF ? SMP_V_MAP : SMP_V_ARRAY;
	if (it.t == CB_ARRAY || it.t == CB_MAP) {
		/* More than could ever fit: refuse before counting. */
		if (it.v > SMP_TREE_MAX_NODES)
			return tree_fail(why, cap, "a %s of %" PRIu64 " items",
			                 smp_vtype_name(nd->type), it.v);
		nd->count = (uint32_t)it.v;
		if (it.v == 0)
			return 1;
	}
	if (*sp == SMP_TREE_MAX_DEPTH)
		return tree_fail(why, cap, "nested deeper than %d levels",
		                 SMP_TREE_MAX_DEPTH);
	st[*sp].idx = b->n - 1;
	st[*sp].map = nd->type == SMP_V_MAP;
	st[*sp].indef = it.t == CB_ARRAY_INDEF || it.t == CB_MAP_INDEF;
	st[*sp].left = children(nd);
	st[*sp].seen = 0;
	(*sp)++;
	return 0;
}

/* An item is complete: count it in its container, closing full ones. */
static void
item_done(struct frame *st, int *sp)
{
	while (*sp > 0) {
		struct frame *f = &st[*sp - 1];

		if (f->indef) {
			f->seen++;
			return;
		}
		if (--f->left > 0)
			return;
		(*sp)--; /* the container is complete in its turn */
	}
}

/* A break closes the innermost indefinite container. */
static int
close_indef(struct builder *b, struct frame *st, int *sp, char *why, size_t cap)
{
	struct frame *f;

	if (*sp == 0 || !st[*sp - 1].indef)
		return tree_fail(why, cap,
		                 "a CBOR break outside an indefinite-length "
		                 "container");
	f = &st[*sp - 1];
	if (f->map && f->seen % 2 != 0)
		return tree_fail(why, cap, "a map key without a value");
	b->nodes[f->idx].count = (uint32_t)(f->map ? f->seen / 2 : f->seen);
	(*sp)--;
	item_done(st, sp);
	return 0;
}

int
smp_tree_from_cbor(const uint8_t *cbor, size_t len, struct smp_tree *t,
                   char *why, size_t whycap)
{
	struct frame st[SMP_TREE_MAX_DEPTH];
	struct builder b = {0};
	struct cb_rd r = {.p = cbor, .len = len, .pos = 0};
	struct smp_node *nd;
	int sp = 0, rv;

	memset(t, 0, sizeof(*t));
	if (len == 0) {
		/* An empty payload reads as an empty map, as everywhere. */
		if ((nd = add_node(&b, why, whycap)) == NULL)
			return -1;
		nd->type = SMP_V_MAP;
	} else {
		do {
			rv = read_item(&b, &r, st, &sp, why, whycap);
			if (rv == 2)
				rv = close_indef(&b, st, &sp, why, whycap);
			else if (rv == 1)
				item_done(st, &sp);
			if (rv < 0)
				goto fail;
		} while (sp > 0);
		if (r.pos != len) {
			tree_fail(why, whycap,
			          "%zu bytes after the payload's map",
			          len - r.pos);
			goto fail;
		}
	}
	if (tree_link(b.nodes, b.n, why, whycap) == -1)
		goto fail;
	builder_done(&b, t);
	return 0;
fail:
	builder_free(&b);
	return -1;
}

int
smp_tree_import(struct smp_tree *t, const struct smp_node *in, size_t n,
                char *why, size_t whycap)
{
	struct builder b = {0};
	struct smp_node *nd;
	int64_t off;
	size_t i;

	memset(t, 0, sizeof(*t));
	for (i = 0; i < n; i++) {
		if ((nd = add_node(&b, why, whycap)) == NULL)
			goto fail;
		*nd = in[i];
		nd->end = 0;
		switch (nd->type) {
		case SMP_V_UINT:
		case SMP_V_NEGINT:
		case SMP_V_BOOL:
		case SMP_V_NULL:
		case SMP_V_ARRAY:
		case SMP_V_MAP:
			nd->p = NULL;
			nd->len = 0;
			break;
		case SMP_V_BYTES:
		case SMP_V_TEXT:
			if (nd->len > 0 && in[i].p == NULL) {
				tree_fail(why, whycap, "item %zu: no data", i);
				goto fail;
			}
			if ((off = add_data(&b, nd->len, why, whycap)) < 0)
				goto fail;
			if (nd->len > 0)
				memcpy(b.data + off, in[i].p, nd->len);
			nd->p = (const uint8_t *)(uintptr_t)off;
			break;
		default:
			tree_fail(why, whycap, "item %zu: unknown type %d", i,
			          (int)nd->type);
			goto fail;
		}
		if (!is_container(nd->type) && nd->count != 0) {
			tree_fail(why, whycap, "item %zu: a %s with items", i,
			          smp_vtype_name(nd->type));
			goto fail;
		}
	}
	if (tree_link(b.nodes, b.n, why, whycap) == -1)
		goto fail;
	builder_done(&b, t);
	return 0;
fail:
	builder_free(&b);
	return -1;
}

void
smp_tree_free(struct smp_tree *t)
{
	if (t == NULL)
		return;
	free(t->nodes);
	free(t->data);
	memset(t, 0, sizeof(*t));
}

const struct smp_node *
smp_tree_root(const struct smp_tree *t)
{
	return t != NULL && t->n > 0 ? &t->nodes[0] : NULL;
}

const struct smp_node *
smp_tree_first(const struct smp_tree *t, const struct smp_node *parent)
{
	size_t i;

	if (parent == NULL || !is_container(parent->type) || parent->count == 0)
		return NULL;
	i = (size_t)(parent - t->nodes) + 1;
	return i < t->n ? &t->nodes[i] : NULL;
}

const struct smp_node *
smp_tree_next(const struct smp_tree *t, const struct smp_node *parent,
              const struct smp_node *c)
{
	if (c == NULL || parent == NULL || c->end >= parent->end ||
	    c->end >= t->n)
		return NULL;
	return &t->nodes[c->end];
}

bool
smp_node_is_text(const struct smp_node *n, const char *s)
{
	size_t len = strlen(s);

	return n != NULL && n->type == SMP_V_TEXT && n->len == len &&
	       memcmp(n->p, s, len) == 0;
}

const struct smp_node *
smp_tree_get(const struct smp_tree *t, const struct smp_node *map,
             const char *key)
{
	const struct smp_node *k, *v;

	if (map == NULL || map->type != SMP_V_MAP)
		return NULL;
	for (k = smp_tree_first(t, map); k != NULL;
	     k = smp_tree_next(t, map, v)) {
		if ((v = smp_tree_next(t, map, k)) == NULL)
			return NULL;
		if (smp_node_is_text(k, key))
			return v;
	}
	return NULL;
}

int
smp_node_int(const struct smp_node *n, int64_t min, int64_t max, int64_t *out)
{
	int64_t v;

	if (n == NULL || n->u > (uint64_t)INT64_MAX)
		return -1;
	if (n->type == SMP_V_UINT)
		v = (int64_t)n->u;
	else if (n->type == SMP_V_NEGINT)
		v = -1 - (int64_t)n->u;
	else
		return -1;
	if (v < min || v > max)
		return -1;
	*out = v;
	return 0;
}
