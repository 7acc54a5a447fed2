# libFuzzer targets, one per decoder of outside input (make fuzz; make
# check runs each for FUZZ_SECONDS).  Seeds in tests/fuzz/corpus/NAME.
FUZZERS += fuzz_config
fuzz_config_SRCS := tests/fuzz/fuzz_config.c supervisor/config.c \
	supervisor/mgmt_msg.c common/duration.c $(BASE)

FUZZERS += fuzz_duration
fuzz_duration_SRCS := tests/fuzz/fuzz_duration.c common/duration.c

FUZZERS += fuzz_smp_rsp
fuzz_smp_rsp_SRCS := tests/fuzz/fuzz_smp_rsp.c common/smp.c \
	common/smp_cbor.c common/smp_server.c

FUZZERS += fuzz_smp_req
fuzz_smp_req_SRCS := tests/fuzz/fuzz_smp_req.c common/smp.c \
	common/smp_cbor.c common/smp_server.c

FUZZERS += fuzz_serial
fuzz_serial_SRCS := tests/fuzz/fuzz_serial.c common/smp_serial.c $(BASE)

FUZZERS += fuzz_ble
fuzz_ble_SRCS := tests/fuzz/fuzz_ble.c common/smp_ble.c $(BASE)

FUZZERS += fuzz_mcuboot
fuzz_mcuboot_SRCS := tests/fuzz/fuzz_mcuboot.c common/mcuboot.c $(BASE)

FUZZERS += fuzz_att
fuzz_att_SRCS := tests/fuzz/fuzz_att.c common/att.c $(BASE)

FUZZERS += fuzz_ipc
fuzz_ipc_SRCS := tests/fuzz/fuzz_ipc.c $(IPC) $(BASE)

FUZZERS += fuzz_adv
fuzz_adv_SRCS := tests/fuzz/fuzz_adv.c workers/ble/adv.c

FUZZERS += fuzz_rdfm_rsp
fuzz_rdfm_rsp_SRCS := tests/fuzz/fuzz_rdfm_rsp.c supervisor/rdfm.c \
	supervisor/curlev.c supervisor/spool.c supervisor/keys.c $(BASE)

FUZZERS += fuzz_artifact
fuzz_artifact_SRCS := tests/fuzz/fuzz_artifact.c supervisor/artifact.c \
	common/mcuboot.c common/util.c $(BASE)

FUZZERS += fuzz_smp_tree
fuzz_smp_tree_SRCS := tests/fuzz/fuzz_smp_tree.c common/smp_tree.c \
	common/smp_cbor.c common/smp.c $(BASE)

FUZZERS += fuzz_ihex
fuzz_ihex_SRCS := tests/fuzz/fuzz_ihex.c common/ihex.c $(BASE)

FUZZERS += fuzz_smp_groups
fuzz_smp_groups_SRCS := tests/fuzz/fuzz_smp_groups.c common/smp_groups.c \
	common/smp_tree.c common/smp_cbor.c common/smp.c $(BASE)

FUZZERS += fuzz_mgmt_msg
fuzz_mgmt_msg_SRCS := tests/fuzz/fuzz_mgmt_msg.c supervisor/mgmt_msg.c \
	supervisor/ws.c supervisor/curlev.c supervisor/rdfm.c \
	supervisor/spool.c supervisor/keys.c $(BASE)
