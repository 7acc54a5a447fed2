# Operations: systemd notifications, the metrics/status endpoint and
# reload, linked into rdfm-mcumgr-client; the notification listener the
# ops tests use in place of systemd.
OPS_SRCS := supervisor/notify.c supervisor/metrics.c

rdfm-mcumgr-client_SRCS += $(filter-out $(rdfm-mcumgr-client_SRCS), \
	$(OPS_SRCS))

TOOL_PROGRAMS += notify-listen
notify-listen_SRCS := tests/tools/notify-listen.c

TESTS += test_metrics
test_metrics_SRCS := tests/unit/test_metrics.c supervisor/metrics.c \
	$(COMMON_SRCS)
