# SMP message codecs and the upload planner (common/smp.c).
SMP_SRCS := common/smp.c

TESTS += test_smp
test_smp_SRCS := tests/unit/test_smp.c $(SMP_SRCS) $(COMMON_SRCS)

FUZZERS += fuzz_smp_rsp
fuzz_smp_rsp_SRCS := tests/fuzz/fuzz_smp_rsp.c $(SMP_SRCS)

FUZZERS += fuzz_smp_req
fuzz_smp_req_SRCS := tests/fuzz/fuzz_smp_req.c $(SMP_SRCS)
