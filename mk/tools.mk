# Programs for tests, the demo and the benchmarks: the virtual board and
# its client, the test RDFM server, the image writer and small drivers.
TOOL_PROGRAMS += mcumgr-board-sim
mcumgr-board-sim_SRCS := \
	tests/sim/main.c \
	tests/sim/flash.c \
	tests/sim/boot.c \
	tests/sim/smp_server.c \
	tests/sim/smp_groups.c \
	tests/sim/faults.c \
	tests/sim/status.c \
	tests/sim/link_serial.c \
	tests/sim/link_udp.c \
	tests/sim/link_ble.c \
	common/smp.c \
	common/smp_cbor.c \
	common/smp_tree.c \
	common/smp_server.c \
	common/smp_serial.c \
	common/smp_ble.c \
	common/att.c \
	common/mcuboot.c \
	common/log.c \
	common/xmalloc.c

TOOL_PROGRAMS += sim-client
sim-client_SRCS := \
	tests/sim/simctl.c \
	common/smp.c \
	common/smp_cbor.c \
	common/smp_serial.c \
	common/smp_ble.c \
	common/att.c \
	common/mcuboot.c \
	common/log.c \
	common/xmalloc.c

TOOL_PROGRAMS += rdfm-test-server
rdfm-test-server_SRCS := \
	tests/server/main.c \
	tests/server/device.c \
	tests/server/download.c \
	tests/server/admin.c \
	tests/server/wsconn.c \
	tests/server/mgmt.c \
	tests/server/mgmt_admin.c \
	tests/server/mgmt_http.c \
	common/log.c \
	common/xmalloc.c
rdfm-test-server_LIBS := -levent_openssl

TOOL_PROGRAMS += mcuboot-mkimage
mcuboot-mkimage_SRCS := \
	tests/tools/mcuboot-mkimage.c \
	common/mcuboot.c \
	common/log.c \
	common/xmalloc.c

# A supervisor stand-in that runs one operation through a worker.
TOOL_PROGRAMS += ipc-drive
ipc-drive_SRCS := \
	tests/tools/ipc-drive.c \
	common/ipc.c \
	common/log.c \
	common/xmalloc.c \
	gen/ipc.pb-c.c

# The RDFM client alone, for the server-protocol tests.
TOOL_PROGRAMS += rdfm-poll
rdfm-poll_SRCS := \
	tests/tools/rdfm-poll.c \
	supervisor/rdfm.c \
	supervisor/curlev.c \
	supervisor/spool.c \
	supervisor/keys.c \
	common/log.c \
	common/xmalloc.c

# The management channel (supervisor/mgmt*.c) against a server, with fake
# boards and stdin standing in for the update machine.
TOOL_PROGRAMS += mgmt-drive
mgmt-drive_SRCS := \
	tests/tools/mgmt-drive.c \
	supervisor/mgmt.c \
	supervisor/mgmt_shell.c \
	supervisor/mgmt_fs.c \
	supervisor/mgmt_logs.c \
	supervisor/mgmt_msg.c \
	supervisor/ws.c \
	supervisor/curlev.c \
	supervisor/config.c \
	supervisor/rdfm.c \
	supervisor/spool.c \
	supervisor/keys.c \
	common/duration.c \
	common/log.c \
	common/xmalloc.c

# cmd_artifact() without the rest of the supervisor, for tests and the
# memory measurement.
TOOL_PROGRAMS += artifact-inspect
artifact-inspect_SRCS := \
	tests/tools/artifact_inspect.c \
	supervisor/cmd_artifact.c \
	supervisor/artifact.c \
	supervisor/config.c \
	supervisor/mgmt_msg.c \
	common/mcuboot.c \
	common/util.c \
	common/duration.c \
	common/log.c \
	common/xmalloc.c

# Holds many idle TCP connections to one port (the metrics flood test).
TOOL_PROGRAMS += conn-flood
conn-flood_SRCS := \
	tests/tools/conn-flood.c

# Stands in for systemd's notification socket in the ops tests.
TOOL_PROGRAMS += notify-listen
notify-listen_SRCS := \
	tests/tools/notify-listen.c

# The serial ceiling the benchmarks compare measurements to.
TOOL_PROGRAMS += bench-ceiling
bench-ceiling_SRCS := \
	bench/ceiling.c \
	common/smp.c \
	common/smp_cbor.c \
	common/smp_server.c \
	common/smp_serial.c \
	common/log.c \
	common/xmalloc.c

.PHONY: demo bench

demo: all
	scripts/demo.sh $(BUILD)

bench: all
	bench/run.sh $(BUILD)

# A serial line at a fixed baud rate in front of a board's pseudo-terminal
# (the real Zephyr peer in the benchmarks and its tests).
TOOL_PROGRAMS += paced-line
paced-line_SRCS := \
	tests/tools/paced-line.c

# Measures a serial line between two pseudo-terminals (paced-line's test).
TOOL_PROGRAMS += line-meter
line-meter_SRCS := \
	tests/tools/line-meter.c

# The management channel's fleet figures (bench/results.md, its own
# section); about 6 minutes.
.PHONY: bench-mgmt
bench-mgmt: all
	bench/mgmt.sh $(BUILD)
