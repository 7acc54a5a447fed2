# The RDFM device API client, the download spool, the test RDFM server and
# the rdfm-poll driver the integration tests use.
RDFM_SRCS := supervisor/rdfm.c supervisor/spool.c

rdfm-mcumgr-client_SRCS += $(RDFM_SRCS)

TOOL_PROGRAMS += rdfm-test-server
rdfm-test-server_SRCS := tests/server/main.c tests/server/device.c \
	tests/server/download.c tests/server/admin.c $(COMMON_SRCS)
rdfm-test-server_LIBS := -levent_openssl

TOOL_PROGRAMS += rdfm-poll
rdfm-poll_SRCS := tests/tools/rdfm-poll.c $(RDFM_SRCS) supervisor/keys.c \
	$(COMMON_SRCS)

TESTS += test_rdfm_parse
test_rdfm_parse_SRCS := tests/unit/test_rdfm_parse.c $(RDFM_SRCS) \
	supervisor/keys.c $(COMMON_SRCS)

FUZZERS += fuzz_rdfm_rsp
fuzz_rdfm_rsp_SRCS := tests/fuzz/fuzz_rdfm_rsp.c $(RDFM_SRCS) \
	supervisor/keys.c $(COMMON_SRCS)
