# SMP message codecs and the upload planner (common/smp.c).
SMP_SRCS := common/smp.c
