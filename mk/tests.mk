# Unit tests (cmocka), each linking the module it tests and what that
# module needs; integration tests are the scripts in tests/it/.
TESTS += test_log
test_log_SRCS := tests/unit/test_log.c $(BASE)

TESTS += test_duration
test_duration_SRCS := tests/unit/test_duration.c common/duration.c

TESTS += test_keys
test_keys_SRCS := tests/unit/test_keys.c supervisor/keys.c $(BASE)

TESTS += test_config
test_config_SRCS := tests/unit/test_config.c supervisor/config.c \
	supervisor/mgmt_msg.c common/duration.c $(BASE)

TESTS += test_config_mgmt
test_config_mgmt_SRCS := tests/unit/test_config_mgmt.c supervisor/config.c \
	supervisor/mgmt_msg.c common/duration.c $(BASE)

TESTS += test_mgmt_msg
test_mgmt_msg_SRCS := tests/unit/test_mgmt_msg.c supervisor/mgmt_msg.c \
	supervisor/ws.c supervisor/curlev.c supervisor/rdfm.c \
	supervisor/spool.c supervisor/keys.c $(BASE)

TESTS += test_smp
test_smp_SRCS := tests/unit/test_smp.c common/smp.c \
	common/smp_cbor.c common/smp_server.c $(BASE)

TESTS += test_smp_serial
test_smp_serial_SRCS := tests/unit/test_smp_serial.c common/smp_serial.c \
	$(BASE)

TESTS += test_smp_ble
test_smp_ble_SRCS := tests/unit/test_smp_ble.c common/smp_ble.c $(BASE)

TESTS += test_mcuboot
test_mcuboot_SRCS := tests/unit/test_mcuboot.c common/mcuboot.c $(BASE)

TESTS += test_journal
test_journal_SRCS := tests/unit/test_journal.c supervisor/journal.c common/util.c $(BASE)

TESTS += test_att
test_att_SRCS := tests/unit/test_att.c common/att.c $(BASE)

TESTS += test_ipc
test_ipc_SRCS := tests/unit/test_ipc.c $(IPC) $(BASE)

TESTS += test_engine
test_engine_SRCS := tests/unit/test_engine.c common/smp_server.c \
	$(ENGINE) $(IPC) $(BASE)

TESTS += test_adv
test_adv_SRCS := tests/unit/test_adv.c workers/ble/adv.c

# workers.c and upload.c against a stand-in worker (the test binary
# re-exec'd).
TESTS += test_workers
test_workers_SRCS := tests/unit/test_workers.c supervisor/workers.c \
	supervisor/upload.c common/util.c $(IPC) $(BASE)

TESTS += test_rdfm_parse
test_rdfm_parse_SRCS := tests/unit/test_rdfm_parse.c supervisor/rdfm.c \
	supervisor/curlev.c supervisor/spool.c supervisor/keys.c $(BASE)

TESTS += test_artifact
test_artifact_SRCS := tests/unit/test_artifact.c supervisor/artifact.c \
	common/mcuboot.c common/util.c $(BASE)

TESTS += test_metrics
test_metrics_SRCS := tests/unit/test_metrics.c supervisor/metrics.c \
	supervisor/config.c supervisor/mgmt_msg.c common/duration.c $(BASE)

TESTS += test_decide
test_decide_SRCS := tests/unit/test_decide.c supervisor/decide.c common/util.c \
	common/mcuboot.c $(BASE)

TESTS += test_smp_tree
test_smp_tree_SRCS := tests/unit/test_smp_tree.c common/smp_tree.c \
	common/smp_cbor.c common/smp.c $(BASE)

TESTS += test_smp_groups
test_smp_groups_SRCS := tests/unit/test_smp_groups.c common/smp_groups.c \
	common/smp_tree.c common/smp_cbor.c common/smp.c $(BASE)

TESTS += test_ihex
test_ihex_SRCS := tests/unit/test_ihex.c common/ihex.c $(BASE)

# The supervisor's side of the generic command: the IPC tree at the edge.
TESTS += test_smp_cmd
test_smp_cmd_SRCS := tests/unit/test_smp_cmd.c supervisor/smp_cmd.c common/util.c \
	supervisor/workers.c common/smp_tree.c common/smp_cbor.c common/smp.c \
	$(IPC) $(BASE)
