# The transport workers, exec'd by the supervisor: each is its link code on
# top of the shared engine (IPC dispatch, SMP client, upload pipeline).
LIBEXEC_PROGRAMS += rdfm-mcumgr-worker-serial
rdfm-mcumgr-worker-serial_SRCS := \
	workers/serial/serial.c \
	common/smp_serial.c \
	$(ENGINE) $(IPC) $(BASE)

LIBEXEC_PROGRAMS += rdfm-mcumgr-worker-udp
rdfm-mcumgr-worker-udp_SRCS := \
	workers/udp/udp.c \
	$(ENGINE) $(IPC) $(BASE)

LIBEXEC_PROGRAMS += rdfm-mcumgr-worker-ble
rdfm-mcumgr-worker-ble_SRCS := \
	workers/ble/ble.c \
	workers/ble/att_client.c \
	workers/ble/adv.c \
	common/att.c \
	common/smp_ble.c \
	$(ENGINE) $(IPC) $(BASE)
