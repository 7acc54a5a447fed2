# The group update state machine (two-phase commit over the members),
# linked into rdfm-mcumgr-client next to the single-board one.
rdfm-mcumgr-client_SRCS += $(filter-out $(rdfm-mcumgr-client_SRCS), \
	supervisor/group.c)
