# bench.mk: builds the benchmark's C programs into $(B)/bench/ and runs it.
# Called by the top Makefile's `make bench` after `make all`:
#   $(MAKE) -f bench/bench.mk B=$(B) bench
# BENCH_ARGS passes options to bench/run (e.g. BENCH_ARGS=--quick).
B          ?= build
BENCH_ARGS ?=
BCFLAGS    := -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -pthread

BENCH_BINS := $(B)/bench/loadgen $(B)/bench/epoll_echo \
              $(B)/bench/thread_echo $(B)/bench/fork_echo

bench: bench-bins
	python3 bench/run --build $(B) $(BENCH_ARGS)

bench-bins: $(BENCH_BINS)

$(B)/bench/%: bench/%.c bench/bench.mk
	@mkdir -p $(@D)
	$(CC) $(BCFLAGS) -o $@ $< -lm

.DELETE_ON_ERROR:
.PHONY: bench bench-bins
