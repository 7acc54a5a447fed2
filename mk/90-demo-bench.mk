# The demo (`make demo`: scripts/demo.sh) and the benchmarks (`make bench`:
# bench/run.sh, not part of `make check`), with the serial-ceiling
# calculator the benchmarks compare measurements to.
TOOL_PROGRAMS += bench-ceiling
bench-ceiling_SRCS := bench/ceiling.c $(SMP_SRCS) $(SERIAL_SRCS) \
	$(COMMON_SRCS)

.PHONY: demo bench

demo: all
	scripts/demo.sh $(BUILD)

bench: all
	bench/run.sh $(BUILD)
