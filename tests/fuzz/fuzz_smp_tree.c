/*
 * libFuzzer target for smp_tree_from_cbor(): whatever payload a board
 * sends is refused with a reason or becomes a tree within the limits,
 * which walks without leaving it and imports again (the IPC door) as the
 * same tree.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "smp_tree.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                               \
	do {                                                                   \
		if (!(c))                                                      \
			__builtin_trap();                                      \
	} while (0)

/* Every child is inside its parent, and every node is reached once. */
static size_t
walk(const struct smp_tree *t, const struct smp_node *n, int depth)
{
	const struct smp_node *c;
	size_t seen = 1;

	/* Containers nest up to the limit; a scalar may sit one deeper. */
	CHECK(depth <= SMP_TREE_MAX_DEPTH + 1);
	CHECK(n >= t->nodes && n < t->nodes + t->n);
	CHECK(n->end > (size_t)(n - t->nodes) && n->end <= t->n);
	if (n->type == SMP_V_TEXT || n->type == SMP_V_BYTES) {
		CHECK(n->p >= t->data && n->p + n->len < t->data + t->data_len);
		CHECK(n->p[n->len] == '\0');
	}
	for (c = smp_tree_first(t, n); c != NULL; c = smp_tree_next(t, n, c))
		seen += walk(t, c, depth + 1);
	return seen;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smp_tree t, u;
	char why[160];
	size_t i;

	why[0] = '\0';
	if (smp_tree_from_cbor(data, size, &t, why, sizeof(why)) == -1) {
		CHECK(why[0] != '\0' && memchr(why, '\0', sizeof(why)) != NULL);
		CHECK(t.nodes == NULL && t.n == 0);
		return 0;
	}
	CHECK(t.n >= 1 && t.n <= SMP_TREE_MAX_NODES);
	CHECK(smp_tree_root(&t)->type == SMP_V_MAP);
	CHECK(walk(&t, smp_tree_root(&t), 1) == t.n);
	(void)smp_tree_get(&t, smp_tree_root(&t), "rc");
	CHECK(smp_tree_import(&u, t.nodes, t.n, why, sizeof(why)) == 0);
	CHECK(u.n == t.n);
	for (i = 0; i < t.n; i++) {
		CHECK(u.nodes[i].type == t.nodes[i].type);
		CHECK(u.nodes[i].end == t.nodes[i].end);
		CHECK(u.nodes[i].len == t.nodes[i].len);
		CHECK(u.nodes[i].len == 0 ||
		      memcmp(u.nodes[i].p, t.nodes[i].p, t.nodes[i].len) == 0);
	}
	smp_tree_free(&u);
	smp_tree_free(&t);
	return 0;
}
