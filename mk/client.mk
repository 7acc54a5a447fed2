# The supervisor: rdfm-mcumgr-client (daemon, check-config, smp, artifact).
BIN_PROGRAMS += rdfm-mcumgr-client
rdfm-mcumgr-client_SRCS := \
	supervisor/main.c \
	supervisor/config.c \
	supervisor/keys.c \
	supervisor/daemon.c \
	supervisor/fdlimit.c \
	supervisor/machine.c \
	supervisor/machine_mgmt.c \
	supervisor/decide.c \
	supervisor/board.c \
	supervisor/links.c \
	supervisor/journal.c \
	supervisor/rdfm.c \
	supervisor/spool.c \
	supervisor/artifact.c \
	supervisor/workers.c \
	supervisor/upload.c \
	supervisor/notify.c \
	supervisor/metrics.c \
	supervisor/cmd_smp.c \
	supervisor/cmd_smp_link.c \
	supervisor/cmd_smp_os.c \
	supervisor/cmd_smp_image.c \
	supervisor/cmd_smp_fs.c \
	supervisor/smp_cmd.c \
	supervisor/tty_holder.c \
	supervisor/cmd_artifact.c \
	supervisor/curlev.c \
	supervisor/ws.c \
	supervisor/mgmt_msg.c \
	supervisor/mgmt.c \
	supervisor/mgmt_shell.c \
	supervisor/mgmt_fs.c \
	supervisor/mgmt_logs.c \
	common/mcuboot.c \
	common/ihex.c \
	common/smp.c \
	common/smp_cbor.c \
	common/smp_tree.c \
	common/smp_groups.c \
	common/duration.c \
	common/util.c \
	common/ipc.c \
	common/log.c \
	common/xmalloc.c \
	gen/ipc.pb-c.c
