/*
 * Unit tests for supervisor/smp_cmd.c at the edge: a reply tree as it
 * arrives over IPC rebuilt into a C tree (and refused when a worker sends
 * a malformed one), and trees printed as JSON (bytes as hex, text made
 * valid UTF-8, every integer exact).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "ipc.h"
#include "supervisor/smp_cmd.h"

#define MAXN 16

struct ptree {
	Ipc__SmpTree t;
	Ipc__SmpNode n[MAXN];
	Ipc__SmpNode *p[MAXN];
};

static void
pnode(struct ptree *pt, Ipc__SmpNode__Kind k, uint64_t u, const char *data,
      uint32_t count)
{
	Ipc__SmpNode *n = &pt->n[pt->t.n_nodes];

	ipc__smp_node__init(n);
	n->kind = k;
	n->uint = u;
	n->count = count;
	if (data != NULL) {
		n->data.data = (uint8_t *)(uintptr_t)data;
		n->data.len = strlen(data);
	}
	pt->p[pt->t.n_nodes++] = n;
}

static void
pinit(struct ptree *pt)
{
	memset(pt, 0, sizeof(*pt));
	ipc__smp_tree__init(&pt->t);
	pt->t.nodes = pt->p;
}

static void
test_from_ipc(void **state)
{
	struct ptree pt;
	struct smp_tree t;
	char why[160];

	(void)state;
	pinit(&pt);
	/* {"o": "up", "ret": -8} */
	pnode(&pt, IPC__SMP_NODE__KIND__MAP, 0, NULL, 2);
	pnode(&pt, IPC__SMP_NODE__KIND__TEXT, 0, "o", 0);
	pnode(&pt, IPC__SMP_NODE__KIND__TEXT, 0, "up", 0);
	pnode(&pt, IPC__SMP_NODE__KIND__TEXT, 0, "ret", 0);
	pnode(&pt, IPC__SMP_NODE__KIND__NEGINT, 7, NULL, 0);
	assert_int_equal(smp_cmd_tree_from_ipc(&pt.t, &t, why, sizeof(why)), 0);
	assert_true(
	    smp_node_is_text(smp_tree_get(&t, smp_tree_root(&t), "o"), "up"));
	assert_int_equal(smp_tree_get(&t, smp_tree_root(&t), "ret")->type,
	                 SMP_V_NEGINT);
	smp_tree_free(&t);
}

static void
expect_refused(struct ptree *pt, const char *needle)
{
	struct smp_tree t;
	char why[160] = "";

	assert_int_equal(smp_cmd_tree_from_ipc(&pt->t, &t, why, sizeof(why)),
	                 -1);
	assert_null(t.nodes);
	if (strstr(why, needle) == NULL)
		fail_msg("\"%s\" does not mention \"%s\"", why, needle);
}

static void
test_from_ipc_refuses(void **state)
{
	struct ptree pt;

	(void)state;
	pinit(&pt);
	pnode(&pt, IPC__SMP_NODE__KIND__MAP, 0, NULL, 1);
	pnode(&pt, IPC__SMP_NODE__KIND__TEXT, 0, "k", 0);
	pnode(&pt, (Ipc__SmpNode__Kind)9, 0, NULL, 0);
	expect_refused(&pt, "unknown kind 9");
	pinit(&pt);
	pnode(&pt, IPC__SMP_NODE__KIND__MAP, 0, NULL, 1);
	pnode(&pt, IPC__SMP_NODE__KIND__TEXT, 0, "k", 0);
	pnode(&pt, IPC__SMP_NODE__KIND__UINT, 1, "data", 0);
	expect_refused(&pt, "with data");
	pinit(&pt);
	pnode(&pt, IPC__SMP_NODE__KIND__MAP, 0, NULL, 3);
	pnode(&pt, IPC__SMP_NODE__KIND__TEXT, 0, "k", 0);
	expect_refused(&pt, "cut short");
	pinit(&pt);
	pnode(&pt, IPC__SMP_NODE__KIND__ARRAY, 0, NULL, 0);
	expect_refused(&pt, "not a map");
	pinit(&pt);
	pt.t.n_nodes = SMP_TREE_MAX_NODES + 1;
	expect_refused(&pt, "a tree of 2049 items");
}

static const char *
as_json(const char *hex)
{
	static char out[512];
	uint8_t buf[256];
	struct smp_tree t;
	struct json_object *o;
	size_t n = 0;
	unsigned int v;
	char why[160];

	while (*hex != '\0') {
		if (*hex == ' ') {
			hex++;
			continue;
		}
		assert_int_equal(sscanf(hex, "%2x", &v), 1);
		buf[n++] = (uint8_t)v;
		hex += 2;
	}
	assert_int_equal(smp_tree_from_cbor(buf, n, &t, why, sizeof(why)), 0);
	o = smp_tree_json(&t, smp_tree_root(&t));
	snprintf(out, sizeof(out), "%s",
	         json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	smp_tree_free(&t);
	return out;
}

static void
test_json(void **state)
{
	(void)state;
	/* {"h": h'00ff', "n": -5, "b": true, "z": null, "a": [1]} */
	assert_string_equal(as_json("a5 6168 4200ff 616e 24 6162 f5 617a f6 "
	                            "6161 8101"),
	                    "{\"h\":\"00ff\",\"n\":-5,\"b\":true,\"z\":null,"
	                    "\"a\":[1]}");
	/* The largest integers either way, exactly. */
	assert_string_equal(as_json("a2 6175 1bffffffffffffffff "
	                            "616e 3bffffffffffffffff"),
	                    "{\"u\":18446744073709551615,"
	                    "\"n\":\"-18446744073709551616\"}");
	/* Bad UTF-8 becomes U+FFFD; good multi-byte text stays. */
	assert_string_equal(as_json("a1 6174 64 c3a9ff41"),
	                    "{\"t\":\"\xc3\xa9\xef\xbf\xbd"
	                    "A\"}");
	/* A map key that is a number. */
	assert_string_equal(as_json("a1 05 6178"), "{\"5\":\"x\"}");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_from_ipc),
	    cmocka_unit_test(test_from_ipc_refuses),
	    cmocka_unit_test(test_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
