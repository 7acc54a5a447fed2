# The RDFM device API client, the download spool, the test RDFM server and
# the rdfm-poll driver the integration tests use.
RDFM_SRCS := supervisor/rdfm.c supervisor/spool.c

rdfm-mcumgr-client_SRCS += $(RDFM_SRCS)

TOOL_PROGRAMS += rdfm-test-server
rdfm-test-server_SRCS := tests/server/rdfm-test-server.c $(COMMON_SRCS)
rdfm-test-server_LIBS := -levent_openssl

# supervisor/keys.c is the foundation's; H6_KEYS lets a build stand in for
# it while it is being written.
H6_KEYS ?= supervisor/keys.c

ifneq ($(wildcard $(H6_KEYS)),)
TOOL_PROGRAMS += rdfm-poll
rdfm-poll_SRCS := tests/tools/rdfm-poll.c $(RDFM_SRCS) $(H6_KEYS) \
	$(COMMON_SRCS)
endif
