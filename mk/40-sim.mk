# The virtual board (tests/sim/), its test client, and the ATT PDU codec
# that the board's BLE link and the BLE worker share.
ATT_SRCS := common/att.c

# The codec fragments (20-smp.mk, 21-codecs.mk) define these; the defaults
# only keep this fragment readable on its own.
SMP_SRCS ?= common/smp.c
SERIAL_SRCS ?= common/smp_serial.c
BLE_SRCS ?= common/smp_ble.c
MCUBOOT_SRCS ?= common/mcuboot.c

SIM_CODEC_SRCS := $(SMP_SRCS) $(SERIAL_SRCS) $(BLE_SRCS) $(MCUBOOT_SRCS) \
	$(ATT_SRCS)

TOOL_PROGRAMS += mcumgr-board-sim
mcumgr-board-sim_SRCS := tests/sim/main.c tests/sim/flash.c \
	tests/sim/boot.c tests/sim/smp_server.c tests/sim/faults.c \
	tests/sim/status.c tests/sim/link_serial.c tests/sim/link_udp.c \
	tests/sim/link_ble.c $(SIM_CODEC_SRCS) $(COMMON_SRCS)

TOOL_PROGRAMS += sim-client
sim-client_SRCS := tests/sim/simctl.c $(SIM_CODEC_SRCS) $(COMMON_SRCS)

TESTS += test_att
test_att_SRCS := tests/unit/test_att.c $(ATT_SRCS) $(COMMON_SRCS)

FUZZERS += fuzz_att
fuzz_att_SRCS := tests/fuzz/fuzz_att.c $(ATT_SRCS) $(COMMON_SRCS)
