# SMP serial framing, BLE reassembly, the MCUboot image reader and the
# image writer for tests (issue 3, items 3-6).
SERIAL_SRCS  := common/smp_serial.c
BLE_SRCS     := common/smp_ble.c
MCUBOOT_SRCS := common/mcuboot.c

TESTS += test_smp_serial
test_smp_serial_SRCS := tests/unit/test_smp_serial.c $(SERIAL_SRCS) \
	$(COMMON_SRCS)

TESTS += test_smp_ble
test_smp_ble_SRCS := tests/unit/test_smp_ble.c $(BLE_SRCS) $(COMMON_SRCS)

TESTS += test_mcuboot
test_mcuboot_SRCS := tests/unit/test_mcuboot.c $(MCUBOOT_SRCS) $(COMMON_SRCS)

TOOL_PROGRAMS += mcuboot-mkimage
mcuboot-mkimage_SRCS := tests/tools/mcuboot-mkimage.c $(MCUBOOT_SRCS) \
	$(COMMON_SRCS)

FUZZERS += fuzz_serial
fuzz_serial_SRCS := tests/fuzz/fuzz_serial.c $(SERIAL_SRCS) $(COMMON_SRCS)

FUZZERS += fuzz_ble
fuzz_ble_SRCS := tests/fuzz/fuzz_ble.c $(BLE_SRCS) $(COMMON_SRCS)

FUZZERS += fuzz_mcuboot
fuzz_mcuboot_SRCS := tests/fuzz/fuzz_mcuboot.c $(MCUBOOT_SRCS) $(COMMON_SRCS)
