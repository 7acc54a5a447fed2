# The Mender artifact reader and `rdfm-mcumgr-client artifact inspect`.
ARTIFACT_SRCS := supervisor/artifact.c

rdfm-mcumgr-client_SRCS += $(ARTIFACT_SRCS) supervisor/cmd_artifact.c \
	$(MCUBOOT_SRCS)

# cmd_artifact() without the rest of the supervisor, for tests and the
# memory measurement.
TOOL_PROGRAMS += artifact-inspect
artifact-inspect_SRCS := tests/tools/artifact_inspect.c \
	supervisor/cmd_artifact.c $(ARTIFACT_SRCS) $(MCUBOOT_SRCS) \
	$(CONFIG_SRCS) $(COMMON_SRCS)

TESTS += test_artifact
test_artifact_SRCS := tests/unit/test_artifact.c $(ARTIFACT_SRCS) \
	$(MCUBOOT_SRCS) $(COMMON_SRCS)

FUZZERS += fuzz_artifact
fuzz_artifact_SRCS := tests/fuzz/fuzz_artifact.c $(ARTIFACT_SRCS) \
	$(MCUBOOT_SRCS) $(COMMON_SRCS)
