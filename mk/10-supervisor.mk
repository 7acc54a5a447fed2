# The supervisor program: command line, config, keys.  Later fragments add
# their sources with rdfm-mcumgr-client_SRCS += ...
DURATION_SRCS := common/duration.c
CONFIG_SRCS := supervisor/config.c $(DURATION_SRCS)
KEYS_SRCS := supervisor/keys.c

BIN_PROGRAMS += rdfm-mcumgr-client
rdfm-mcumgr-client_SRCS := supervisor/main.c supervisor/config.c \
	supervisor/keys.c common/duration.c $(COMMON_SRCS)

TESTS += test_duration
test_duration_SRCS := tests/unit/test_duration.c $(DURATION_SRCS)

TESTS += test_keys
test_keys_SRCS := tests/unit/test_keys.c $(KEYS_SRCS) $(COMMON_SRCS)

TESTS += test_config
test_config_SRCS := tests/unit/test_config.c $(CONFIG_SRCS) $(COMMON_SRCS)

FUZZERS += fuzz_config
fuzz_config_SRCS := tests/fuzz/fuzz_config.c $(CONFIG_SRCS) $(COMMON_SRCS)

FUZZERS += fuzz_duration
fuzz_duration_SRCS := tests/fuzz/fuzz_duration.c $(DURATION_SRCS)
