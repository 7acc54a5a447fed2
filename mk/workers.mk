# The transport workers, exec'd by the supervisor: each is its link code on
# top of the shared engine (IPC dispatch, SMP client, upload pipeline).
LIBEXEC_PROGRAMS += rdfm-mcumgr-worker-serial
rdfm-mcumgr-worker-serial_SRCS := \
	workers/serial/serial.c \
	common/smp_serial.c \
	common/engine.c \
	common/engine_cmd.c \
	common/smp_tree.c \
	common/sandbox.c \
	common/smp.c \
	common/smp_cbor.c \
	common/ipc.c \
	common/log.c \
	common/xmalloc.c \
	gen/ipc.pb-c.c

LIBEXEC_PROGRAMS += rdfm-mcumgr-worker-udp
rdfm-mcumgr-worker-udp_SRCS := \
	workers/udp/udp.c \
	common/engine.c \
	common/engine_cmd.c \
	common/smp_tree.c \
	common/sandbox.c \
	common/smp.c \
	common/smp_cbor.c \
	common/ipc.c \
	common/log.c \
	common/xmalloc.c \
	gen/ipc.pb-c.c

LIBEXEC_PROGRAMS += rdfm-mcumgr-worker-ble
rdfm-mcumgr-worker-ble_SRCS := \
	workers/ble/ble.c \
	workers/ble/att_client.c \
	workers/ble/adv.c \
	common/att.c \
	common/smp_ble.c \
	common/engine.c \
	common/engine_cmd.c \
	common/smp_tree.c \
	common/sandbox.c \
	common/smp.c \
	common/smp_cbor.c \
	common/ipc.c \
	common/log.c \
	common/xmalloc.c \
	gen/ipc.pb-c.c
