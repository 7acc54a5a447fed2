/*
 * libFuzzer target for what a management server sends: its messages
 * (mgmt_msg_parse, then the path and URL rules the fields go through) and
 * the WebSocket upgrade reply (ws_parse_response).  Every input gives a
 * clean refusal or fields within their bounds, never a crash or a leak.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "supervisor/mgmt_msg.h"
#include "supervisor/ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_str(const char *s, size_t max)
{
	if (s != NULL && (strlen(s) == 0 || strlen(s) > max))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *prefixes[] = {"/lfs/logs"};
	struct ws_response r;
	struct mgmt_msg m;
	char why[256];
	size_t i;

	if (mgmt_msg_parse((const char *)data, size, &m, why, sizeof(why)) ==
	    0) {
		check_str(m.execution_id, MGMT_ID_MAX);
		check_str(m.action_id, MGMT_ID_MAX);
		check_str(m.id, MGMT_ID_MAX);
		if (m.file != NULL && strlen(m.file) > MGMT_FILE_MAX)
			abort(); /* may be empty: the path rule refuses it */
		if (m.file != NULL &&
		    mgmt_path_valid(m.file, why, sizeof(why)) &&
		    (strstr(m.file, "/../") != NULL || m.file[0] != '/'))
			abort();
		if (m.file != NULL)
			(void)mgmt_path_allowed(m.file, prefixes, 1);
		if (m.uuid != NULL)
			(void)mgmt_is_uuid(m.uuid);
		for (i = 0; i < m.nurls; i++) {
			check_str(m.urls[i], MGMT_URL_MAX);
			(void)mgmt_upload_url_ok(m.urls[i], "127.0.0.1", NULL,
			                         0, why, sizeof(why));
		}
		if (m.method == MGMT_M_FS_DOWNLOAD && m.part_size == 0)
			abort();
		mgmt_msg_free(&m);
	}
	if (ws_parse_response((const char *)data, size, &r, why, sizeof(why)) ==
	        1 &&
	    (r.head_len > size || r.status < 0 || r.status > 999))
		abort();
	return 0;
}
