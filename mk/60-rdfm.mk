# The RDFM device API client, the download spool, the test RDFM server and
# the rdfm-poll driver the integration tests use.
RDFM_SRCS := supervisor/rdfm.c supervisor/spool.c

rdfm-mcumgr-client_SRCS += $(RDFM_SRCS)

TOOL_PROGRAMS += rdfm-test-server
rdfm-test-server_SRCS := tests/server/rdfm-test-server.c $(COMMON_SRCS)
rdfm-test-server_LIBS := -levent_openssl
