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

# The shared worker engine: IPC dispatch, SMP client, pipelined upload.
ENGINE_SRCS := common/engine.c common/sandbox.c $(IPC_SRCS) $(SMP_SRCS)

LIBEXEC_PROGRAMS += rdfm-mcumgr-worker-udp
rdfm-mcumgr-worker-udp_SRCS := workers/udp/udp.c $(ENGINE_SRCS) \
	$(COMMON_SRCS)

LIBEXEC_PROGRAMS += rdfm-mcumgr-worker-serial
rdfm-mcumgr-worker-serial_SRCS := workers/serial/serial.c $(ENGINE_SRCS) \
	$(SERIAL_SRCS) $(COMMON_SRCS)

# A supervisor stand-in that runs one operation through a worker (tests).
TOOL_PROGRAMS += ipc-drive
ipc-drive_SRCS := tests/tools/ipc-drive.c $(IPC_SRCS) $(COMMON_SRCS)

TESTS += test_engine
test_engine_SRCS := tests/unit/test_engine.c $(ENGINE_SRCS) $(COMMON_SRCS)

# Advertising reports: the BLE worker finds its board by name with these.
ADV_SRCS := workers/ble/adv.c

LIBEXEC_PROGRAMS += rdfm-mcumgr-worker-ble
rdfm-mcumgr-worker-ble_SRCS := workers/ble/ble.c workers/ble/att_client.c \
	$(ADV_SRCS) \
	$(ENGINE_SRCS) $(BLE_SRCS) $(ATT_SRCS) $(COMMON_SRCS)

TESTS += test_adv
test_adv_SRCS := tests/unit/test_adv.c $(ADV_SRCS)

FUZZERS += fuzz_adv
fuzz_adv_SRCS := tests/fuzz/fuzz_adv.c $(ADV_SRCS)
