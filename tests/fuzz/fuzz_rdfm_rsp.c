/*
 * libFuzzer target for the RDFM server-response parsers (auth, check and
 * error bodies): whatever the server sends must give a clean error or a
 * well-formed result, never a crash or a leak.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "supervisor/rdfm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *body = (const char *)data;
	struct rdfm_offer offer;
	char err[256], out[128], *token;
	long long expires;
	size_t i;

	if (rdfm_parse_auth(body, size, &token, &expires, err, sizeof(err)) ==
	    0) {
		/* A token goes into a header: no control bytes, no space. */
		for (i = 0; token[i] != '\0'; i++)
			if (token[i] <= 0x20 || token[i] >= 0x7f)
				abort();
		if (expires <= 0)
			abort();
		free(token);
	}
	if (rdfm_parse_check(body, size, &offer, err, sizeof(err)) == 0) {
		if (strlen(offer.sha256) != 64 || offer.uri == NULL ||
		    (strncasecmp(offer.uri, "http://", 7) != 0 &&
		     strncasecmp(offer.uri, "https://", 8) != 0))
			abort();
		rdfm_offer_clear(&offer);
	}
	rdfm_parse_error(body, size, out, sizeof(out));
	if (strlen(out) >= sizeof(out))
		abort();
	return 0;
}
