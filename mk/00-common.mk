# Shared basics every program links.
COMMON_SRCS := common/log.c common/xmalloc.c

TESTS += test_log
test_log_SRCS := tests/unit/test_log.c $(COMMON_SRCS)
