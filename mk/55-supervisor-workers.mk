# The supervisor side of the workers (spawn, watch, restart), the streamed
# upload and the `smp` operator command, linked into rdfm-mcumgr-client.
# filter-out: other fragments may list the same shared modules already.
WORKERS_SUP_SRCS := supervisor/workers.c supervisor/upload.c
rdfm-mcumgr-client_SRCS += $(filter-out $(rdfm-mcumgr-client_SRCS), \
	$(WORKERS_SUP_SRCS) supervisor/cmd_smp.c $(IPC_SRCS) \
	$(MCUBOOT_SRCS) $(DURATION_SRCS))
GEN_HEADERS += $(BUILD)/gen/ipc.pb-c.h

# workers.c and upload.c against a stand-in worker (the test binary
# re-exec'd).
TESTS += test_workers
test_workers_SRCS := tests/unit/test_workers.c $(WORKERS_SUP_SRCS) \
	$(IPC_SRCS) $(COMMON_SRCS)
