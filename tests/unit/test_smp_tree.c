/*
 * Unit tests for common/smp_tree.c: hand-written CBOR payloads (definite
 * and Zephyr's indefinite forms) into trees, every type kept apart, walking
 * and lookups, every limit and malformation refused with a reason, and
 * trees rebuilt from flat nodes as they arrive over IPC.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smp_tree.h"

/* Hex (spaces allowed) into buf; the length. */
static size_t
unhex(const char *s, uint8_t *buf, size_t cap)
{
	size_t n = 0;
	unsigned int v;

	while (*s != '\0') {
		if (*s == ' ') {
			s++;
			continue;
		}
		assert_int_equal(sscanf(s, "%2x", &v), 1);
		assert_true(n < cap);
		buf[n++] = (uint8_t)v;
		s += 2;
	}
	return n;
}

static int
parse_hex(const char *hex, struct smp_tree *t, char *why, size_t cap)
{
	uint8_t buf[8192];
	size_t n = unhex(hex, buf, sizeof(buf));

	return smp_tree_from_cbor(buf, n, t, why, cap);
}

static void
expect_error(const char *hex, const char *needle)
{
	struct smp_tree t;
	char why[256] = "";

	assert_int_equal(parse_hex(hex, &t, why, sizeof(why)), -1);
	assert_null(t.nodes);
	if (strstr(why, needle) == NULL)
		fail_msg("error \"%s\" does not mention \"%s\"", why, needle);
}

static void
test_empty_payload_is_empty_map(void **state)
{
	struct smp_tree t;
	char why[128];

	(void)state;
	assert_int_equal(smp_tree_from_cbor(NULL, 0, &t, why, sizeof(why)), 0);
	assert_int_equal(t.n, 1);
	assert_int_equal(smp_tree_root(&t)->type, SMP_V_MAP);
	assert_int_equal(smp_tree_root(&t)->count, 0);
	assert_null(smp_tree_first(&t, smp_tree_root(&t)));
	assert_null(smp_tree_get(&t, smp_tree_root(&t), "x"));
	smp_tree_free(&t);
}

/*
 * {"u": 1000, "n": -5, "b": h'0102', "t": "hi", "y": true, "z": null,
 *  "a": [1, [2]], "m": {"k": "v"}}, definite lengths.
 */
#define ALL_TYPES                                                              \
	"a8"                                                                   \
	"6175 1903e8"                                                          \
	"616e 24"                                                              \
	"6162 420102"                                                          \
	"6174 626869"                                                          \
	"6179 f5"                                                              \
	"617a f6"                                                              \
	"6161 82 01 8102"                                                      \
	"616d a1 616b 6176"

static void
test_every_type_kept_apart(void **state)
{
	const struct smp_node *root, *v, *c;
	struct smp_tree t;
	char why[128];
	int64_t i;

	(void)state;
	assert_int_equal(parse_hex(ALL_TYPES, &t, why, sizeof(why)), 0);
	root = smp_tree_root(&t);
	assert_int_equal(root->count, 8);
	assert_int_equal(root->end, t.n);

	v = smp_tree_get(&t, root, "u");
	assert_int_equal(v->type, SMP_V_UINT);
	assert_int_equal(v->u, 1000);
	v = smp_tree_get(&t, root, "n");
	assert_int_equal(v->type, SMP_V_NEGINT);
	assert_int_equal(smp_node_int(v, -10, 0, &i), 0);
	assert_int_equal(i, -5);
	assert_int_equal(smp_node_int(v, 0, 10, &i), -1);
	v = smp_tree_get(&t, root, "b");
	assert_int_equal(v->type, SMP_V_BYTES);
	assert_int_equal(v->len, 2);
	assert_memory_equal(v->p, "\x01\x02", 2);
	assert_false(smp_node_is_text(v, "\x01\x02"));
	v = smp_tree_get(&t, root, "t");
	assert_int_equal(v->type, SMP_V_TEXT);
	assert_true(smp_node_is_text(v, "hi"));
	assert_string_equal((const char *)v->p, "hi"); /* NUL added */
	v = smp_tree_get(&t, root, "y");
	assert_int_equal(v->type, SMP_V_BOOL);
	assert_true(v->b);
	assert_int_equal(smp_tree_get(&t, root, "z")->type, SMP_V_NULL);

	v = smp_tree_get(&t, root, "a");
	assert_int_equal(v->type, SMP_V_ARRAY);
	assert_int_equal(v->count, 2);
	c = smp_tree_first(&t, v);
	assert_int_equal(c->u, 1);
	c = smp_tree_next(&t, v, c);
	assert_int_equal(c->type, SMP_V_ARRAY);
	assert_int_equal(smp_tree_first(&t, c)->u, 2);
	assert_null(smp_tree_next(&t, v, c));

	v = smp_tree_get(&t, root, "m");
	assert_true(smp_node_is_text(smp_tree_get(&t, v, "k"), "v"));
	/* Keys of inner maps are not keys of the outer one. */
	assert_null(smp_tree_get(&t, root, "k"));
	assert_null(smp_tree_get(&t, root, "missing"));
	/* A lookup in something that is not a map. */
	assert_null(smp_tree_get(&t, smp_tree_get(&t, root, "a"), "u"));
	smp_tree_free(&t);
}

/* Zephyr's shape: indefinite maps and arrays, and a chunked string. */
static void
test_indefinite_forms(void **state)
{
	const struct smp_node *root, *v;
	struct smp_tree t;
	char why[128];

	(void)state;
	/* {_ "tasks": {_ "3": {_ "prio": -1 } }, "o": (_ "ab", "c"),
	 *  "l": [_ 1, 2 ] } */
	assert_int_equal(parse_hex("bf 657461736b73 bf 6133 bf 647072696f 20 ff"
	                           " ff 616f 7f 626162 6163 ff"
	                           " 616c 9f 01 02 ff ff",
	                           &t, why, sizeof(why)),
	                 0);
	root = smp_tree_root(&t);
	assert_int_equal(root->count, 3);
	v = smp_tree_get(&t, smp_tree_get(&t, root, "tasks"), "3");
	assert_int_equal(smp_tree_get(&t, v, "prio")->type, SMP_V_NEGINT);
	assert_true(smp_node_is_text(smp_tree_get(&t, root, "o"), "abc"));
	v = smp_tree_get(&t, root, "l");
	assert_int_equal(v->count, 2);
	assert_int_equal(smp_tree_next(&t, v, smp_tree_first(&t, v))->u, 2);
	smp_tree_free(&t);
}

static void
test_tags_looked_through(void **state)
{
	struct smp_tree t;
	char why[128];

	(void)state;
	/* {"d": 1(1234)} */
	assert_int_equal(parse_hex("a1 6164 c1 1904d2", &t, why, sizeof(why)),
	                 0);
	assert_int_equal(smp_tree_get(&t, smp_tree_root(&t), "d")->u, 1234);
	smp_tree_free(&t);
}

static void
test_malformed_refused(void **state)
{
	(void)state;
	expect_error("a1 6166 fb3ff0000000000000", "floating-point");
	expect_error("a1 6166 f7", "simple value"); /* undefined */
	expect_error("a0 00", "after the payload");
	expect_error("82 01 02", "not a map");
	expect_error("63 616263", "not a map");
	expect_error("a2 6161 01", "ends early");
	expect_error("a1 6161 63 6162", "past the end");
	expect_error("bf 6161 ff", "key without a value");
	expect_error("a1 6161 ff", "break");
	expect_error("bf 6161 01", "ends early");
	/* A chunk of the wrong kind inside a chunked text string. */
	expect_error("a1 6161 7f 4161 ff", "chunk");
	expect_error("a1 6161 c1c1c1c1c1c1c1c1c1 01", "tags");
}

static void
test_limits(void **state)
{
	char hex[20000], *p;
	int i;

	(void)state;
	/* 16 levels of containers are fine, 17 are not. */
	p = hex;
	p += sprintf(p, "a1 6161");
	for (i = 0; i < 14; i++)
		p += sprintf(p, "81");
	sprintf(p, "01");
	{
		struct smp_tree t;
		char why[128];

		assert_int_equal(parse_hex(hex, &t, why, sizeof(why)), 0);
		smp_tree_free(&t);
	}
	p = hex;
	p += sprintf(p, "a1 6161");
	for (i = 0; i < 16; i++)
		p += sprintf(p, "81");
	sprintf(p, "01");
	expect_error(hex, "deeper than 16");

	/* An array claiming more items than any payload could hold. */
	expect_error("a1 6161 9a00010000", "items");
	/* 2048 nodes in all is the most. */
	p = hex;
	p += sprintf(p, "a1 6161 9907fd");
	for (i = 0; i < 2045; i++)
		p += sprintf(p, "00");
	{
		struct smp_tree t;
		char why[128];

		assert_int_equal(parse_hex(hex, &t, why, sizeof(why)), 0);
		assert_int_equal(t.n, 2048);
		smp_tree_free(&t);
	}
	p = hex;
	p += sprintf(p, "a1 6161 9f");
	for (i = 0; i < 2046; i++)
		p += sprintf(p, "00");
	sprintf(p, "ff");
	expect_error(hex, "more than 2048");
}

static void
test_data_limit(void **state)
{
	struct smp_tree t;
	uint8_t *buf;
	char why[128];
	size_t n = 0;

	(void)state;
	/* {"a": h'00' * 32768} is too much, one byte less is not. */
	buf = calloc(1, 40000);
	buf[n++] = 0xa1;
	buf[n++] = 0x61;
	buf[n++] = 'a';
	buf[n++] = 0x59;
	buf[n++] = 0x80;
	buf[n++] = 0x00;
	assert_int_equal(
	    smp_tree_from_cbor(buf, n + 32768, &t, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "strings longer"));
	/* "a" and its NUL take 2 bytes, so 32766 data bytes fit. */
	buf[4] = 0x7f;
	buf[5] = 0xfc;
	assert_int_equal(
	    smp_tree_from_cbor(buf, n + 32764, &t, why, sizeof(why)), 0);
	smp_tree_free(&t);
	free(buf);
}

/* Trees over IPC: flat nodes back into a tree, and bad shapes refused. */
static void
test_import_round_trip(void **state)
{
	struct smp_tree a, b;
	char why[128];
	size_t i;

	(void)state;
	assert_int_equal(parse_hex(ALL_TYPES, &a, why, sizeof(why)), 0);
	assert_int_equal(smp_tree_import(&b, a.nodes, a.n, why, sizeof(why)),
	                 0);
	assert_int_equal(a.n, b.n);
	for (i = 0; i < a.n; i++) {
		assert_int_equal(a.nodes[i].type, b.nodes[i].type);
		assert_int_equal(a.nodes[i].end, b.nodes[i].end);
		assert_int_equal(a.nodes[i].count, b.nodes[i].count);
		assert_int_equal(a.nodes[i].u, b.nodes[i].u);
		assert_int_equal(a.nodes[i].len, b.nodes[i].len);
		if (a.nodes[i].len > 0)
			assert_memory_equal(a.nodes[i].p, b.nodes[i].p,
			                    a.nodes[i].len);
	}
	/* b owns its strings. */
	assert_true(b.data != a.data);
	smp_tree_free(&a);
	assert_true(
	    smp_node_is_text(smp_tree_get(&b, smp_tree_root(&b), "t"), "hi"));
	smp_tree_free(&b);
}

static void
expect_import_error(const struct smp_node *in, size_t n, const char *needle)
{
	struct smp_tree t;
	char why[128] = "";

	assert_int_equal(smp_tree_import(&t, in, n, why, sizeof(why)), -1);
	assert_null(t.nodes);
	if (strstr(why, needle) == NULL)
		fail_msg("error \"%s\" does not mention \"%s\"", why, needle);
}

static void
test_import_refuses_bad_shapes(void **state)
{
	struct smp_node in[4];

	(void)state;
	memset(in, 0, sizeof(in));
	expect_import_error(in, 0, "empty");
	in[0].type = SMP_V_ARRAY;
	expect_import_error(in, 1, "not a map");
	/* A map of one pair with only its key. */
	in[0].type = SMP_V_MAP;
	in[0].count = 1;
	in[1].type = SMP_V_TEXT;
	in[1].p = (const uint8_t *)"k";
	in[1].len = 1;
	expect_import_error(in, 2, "cut short");
	/* Nodes after the root. */
	in[0].count = 0;
	expect_import_error(in, 2, "after the end");
	/* A scalar with children, an unknown type, data missing. */
	in[0].count = 1;
	in[2].type = SMP_V_UINT;
	in[2].count = 3;
	expect_import_error(in, 3, "with items");
	in[2].count = 0;
	in[2].type = (enum smp_vtype)42;
	expect_import_error(in, 3, "unknown type");
	in[2].type = SMP_V_BYTES;
	in[2].len = 5;
	in[2].p = NULL;
	expect_import_error(in, 3, "no data");
	/* And the same nodes, put right, import. */
	in[2].p = (const uint8_t *)"12345";
	{
		struct smp_tree t;
		char why[128];

		assert_int_equal(smp_tree_import(&t, in, 3, why, sizeof(why)),
		                 0);
		assert_int_equal(smp_tree_get(&t, smp_tree_root(&t), "k")->len,
		                 5);
		smp_tree_free(&t);
	}
}

static void
test_import_depth(void **state)
{
	struct smp_node in[40];
	size_t i;

	(void)state;
	memset(in, 0, sizeof(in));
	in[0].type = SMP_V_MAP;
	in[0].count = 1;
	in[1].type = SMP_V_TEXT;
	for (i = 2; i < 19; i++) {
		in[i].type = SMP_V_ARRAY;
		in[i].count = 1;
	}
	in[19].type = SMP_V_NULL;
	expect_import_error(in, 20, "deeper than 16");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_empty_payload_is_empty_map),
	    cmocka_unit_test(test_every_type_kept_apart),
	    cmocka_unit_test(test_indefinite_forms),
	    cmocka_unit_test(test_tags_looked_through),
	    cmocka_unit_test(test_malformed_refused),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_data_limit),
	    cmocka_unit_test(test_import_round_trip),
	    cmocka_unit_test(test_import_refuses_bad_shapes),
	    cmocka_unit_test(test_import_depth),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
