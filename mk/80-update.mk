# The update daemon: event loop, per-device state machine and the board
# helpers the group state machine shares, linked into rdfm-mcumgr-client.
UPDATE_SRCS := supervisor/daemon.c supervisor/update.c supervisor/board.c

rdfm-mcumgr-client_SRCS += $(filter-out $(rdfm-mcumgr-client_SRCS), \
	$(UPDATE_SRCS) supervisor/journal.c)
