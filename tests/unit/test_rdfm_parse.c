/*
 * Unit tests for the RDFM server-response parsers in supervisor/rdfm.c:
 * authentication, update check and error bodies, good and hostile.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "supervisor/rdfm.h"

#define SHA "9443fe15ac1ff76ff82046bab3f025e5516576856ce878f289c898aca8242db9"

static int
auth(const char *body, char **token, long long *expires, char *err)
{
	return rdfm_parse_auth(body, strlen(body), token, expires, err, 256);
}

static void
test_auth_ok(void **state)
{
	char *token, err[256];
	long long expires;

	(void)state;
	assert_int_equal(auth("{\"expires\": 300, \"token\": \"a.b.c\"}",
	                      &token, &expires, err),
	                 0);
	assert_string_equal(token, "a.b.c");
	assert_int_equal(expires, 300);
	free(token);
	/* Unknown keys and surrounding white space are fine. */
	assert_int_equal(auth(" {\"token\":\"x\",\"expires\":1,\"more\":[1]}\n",
	                      &token, &expires, err),
	                 0);
	free(token);
}

static void
test_auth_bad(void **state)
{
	static const struct {
		const char *body, *why;
	} cases[] = {
	    {"", "not JSON"},
	    {"[]", "not a JSON object"},
	    {"{\"expires\": 300}", "no \"token\""},
	    {"{\"token\": 5, \"expires\": 300}", "not a string"},
	    {"{\"token\": \"\", \"expires\": 300}", "bad length"},
	    {"{\"token\": \"a b\", \"expires\": 300}", "not allowed"},
	    {"{\"token\": \"a\\r\\nX-Evil: 1\", \"expires\": 300}",
	     "not allowed"},
	    {"{\"token\": \"a\\u0000b\", \"expires\": 300}", "not allowed"},
	    {"{\"token\": \"a\"}", "expires"},
	    {"{\"token\": \"a\", \"expires\": \"300\"}", "expires"},
	    {"{\"token\": \"a\", \"expires\": 0}", "out of range"},
	    {"{\"token\": \"a\", \"expires\": -5}", "out of range"},
	    {"{\"token\": \"a\", \"expires\": 1.5}", "expires"},
	    {"{\"token\": \"a\", \"expires\": 99999999999999999999}",
	     "expires"},
	    {"{\"token\": \"a\", \"expires\": 3} x", "after the JSON"},
	    {"{\"token\": \"a\", \"expires\": 3", "not JSON"},
	};
	char *token, err[256];
	long long expires;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = '\0';
		token = (char *)1;
		if (auth(cases[i].body, &token, &expires, err) != -1)
			fail_msg("accepted: %s", cases[i].body);
		assert_null(token);
		if (strstr(err, cases[i].why) == NULL)
			fail_msg("%s: error \"%s\" lacks \"%s\"", cases[i].body,
			         err, cases[i].why);
	}
}

static void
test_auth_sizes(void **state)
{
	char *body, *token, err[256];
	long long expires;
	size_t n = RDFM_MAX_TOKEN + 1;

	(void)state;
	body = malloc(n + 64);
	strcpy(body, "{\"expires\": 5, \"token\": \"");
	memset(body + strlen(body), 'a', n);
	strcpy(body + 25 + n, "\"}");
	assert_int_equal(rdfm_parse_auth(body, strlen(body), &token, &expires,
	                                 err, sizeof(err)),
	                 -1);
	assert_non_null(strstr(err, "bad length"));
	free(body);
	/* The length given wins over a NUL: a body cut short is refused. */
	assert_int_equal(rdfm_parse_auth("{\"token\":\"a\",\"expires\":3}", 10,
	                                 &token, &expires, err, sizeof(err)),
	                 -1);
	/* Larger than any response we accept. */
	assert_int_equal(rdfm_parse_auth("{}", RDFM_MAX_RESPONSE + 1, &token,
	                                 &expires, err, sizeof(err)),
	                 -1);
	assert_non_null(strstr(err, "too large"));
}

static int
chk(const char *body, struct rdfm_offer *o, char *err)
{
	return rdfm_parse_check(body, strlen(body), o, err, 256);
}

static void
test_check_ok(void **state)
{
	struct rdfm_offer o;
	char err[256];

	(void)state;
	assert_int_equal(chk("{\"id\": 7, \"created\": \"Wed, 25 Nov 2026 "
	                     "13:17:18 GMT\", \"sha256\": \"" SHA
	                     "\", \"uri\": \"http://127.0.0.1:1/local_storage/"
	                     "u\"}",
	                     &o, err),
	                 0);
	assert_int_equal(o.id, 7);
	assert_string_equal(o.sha256, SHA);
	assert_string_equal(o.uri, "http://127.0.0.1:1/local_storage/u");
	assert_string_equal(o.created, "Wed, 25 Nov 2026 13:17:18 GMT");
	rdfm_offer_clear(&o);
	/* Upper-case hex is accepted and normalised; created is optional. */
	assert_int_equal(chk("{\"id\": 1, \"sha256\": "
	                     "\"9443FE15AC1FF76FF82046BAB3F025E5516576856CE878F"
	                     "289C898ACA8242DB9\", \"uri\": "
	                     "\"https://s3.example/b?X-Amz-Signature=1\"}",
	                     &o, err),
	                 0);
	assert_string_equal(o.sha256, SHA);
	assert_null(o.created);
	rdfm_offer_clear(&o);
}

static void
test_check_bad(void **state)
{
	static const struct {
		const char *body, *why;
	} cases[] = {
	    {"{\"sha256\": \"" SHA "\", \"uri\": \"http://h/x\"}", "id"},
	    {"{\"id\": \"1\", \"sha256\": \"" SHA
	     "\", \"uri\": \"http://h/x\"}",
	     "id"},
	    {"{\"id\": 1, \"uri\": \"http://h/x\"}", "no \"sha256\""},
	    {"{\"id\": 1, \"sha256\": \"abc\", \"uri\": \"http://h/x\"}",
	     "64 hex"},
	    {"{\"id\": 1, \"sha256\": \"" SHA "00\", \"uri\": "
	     "\"http://h/x\"}",
	     "bad length"},
	    {"{\"id\": 1, \"sha256\": "
	     "\"g443fe15ac1ff76ff82046bab3f025e5516576856ce878f289c898aca"
	     "8242db9\", \"uri\": \"http://h/x\"}",
	     "64 hex"},
	    {"{\"id\": 1, \"sha256\": \"" SHA "\"}", "no \"uri\""},
	    {"{\"id\": 1, \"sha256\": \"" SHA "\", \"uri\": \"file:///etc/"
	     "passwd\"}",
	     "http"},
	    {"{\"id\": 1, \"sha256\": \"" SHA "\", \"uri\": \"/local\"}",
	     "http"},
	    {"{\"id\": 1, \"sha256\": \"" SHA "\", \"uri\": \"http://h/a "
	     "b\"}",
	     "not allowed"},
	    {"{\"id\": 1, \"sha256\": \"" SHA "\", \"uri\": \"http://h/x\","
	     " \"created\": 5}",
	     "created"},
	    {"null", "not"},
	    {"", "not JSON"},
	};
	struct rdfm_offer o;
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = '\0';
		if (chk(cases[i].body, &o, err) != -1)
			fail_msg("accepted: %s", cases[i].body);
		assert_null(o.uri);
		assert_null(o.created);
		if (strstr(err, cases[i].why) == NULL)
			fail_msg("%s: error \"%s\" lacks \"%s\"", cases[i].body,
			         err, cases[i].why);
	}
}

static void
test_error_body(void **state)
{
	char out[16];
	const char *b;

	(void)state;
	b = "{\"error\": \"device unauthorized\"}";
	rdfm_parse_error(b, strlen(b), out, sizeof(out));
	/* Cut to the buffer. */
	assert_string_equal(out, "device unauthor");
	b = "{\"error\": \"a\\nb\\u0001\"}";
	rdfm_parse_error(b, strlen(b), out, sizeof(out));
	assert_string_equal(out, "a?b?");
	b = "<html>502</html>";
	rdfm_parse_error(b, strlen(b), out, sizeof(out));
	assert_string_equal(out, "");
	rdfm_parse_error("", 0, out, sizeof(out));
	assert_string_equal(out, "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_auth_ok),
	    cmocka_unit_test(test_auth_bad),
	    cmocka_unit_test(test_auth_sizes),
	    cmocka_unit_test(test_check_ok),
	    cmocka_unit_test(test_check_bad),
	    cmocka_unit_test(test_error_body),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
