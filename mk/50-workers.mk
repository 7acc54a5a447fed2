# Transport workers and the IPC between them and the supervisor.
GEN_HEADERS += $(BUILD)/gen/ipc.pb-c.h
IPC_SRCS := common/ipc.c gen/ipc.pb-c.c

TESTS += test_ipc
test_ipc_SRCS := tests/unit/test_ipc.c $(IPC_SRCS) $(COMMON_SRCS)

FUZZERS += fuzz_ipc
fuzz_ipc_SRCS := tests/fuzz/fuzz_ipc.c $(IPC_SRCS) $(COMMON_SRCS)

# Keep the generated protobuf-c files: make would delete them as
# intermediates and regenerate (and rebuild) on every run.
.SECONDARY: $(BUILD)/gen/ipc.pb-c.c $(BUILD)/gen/ipc.pb-c.h
# protoc-c's generated code casts protobuf_c_empty_string to char *.
$(BUILD)/obj/gen/ipc.pb-c.o: CFLAGS += -Wno-cast-qual
