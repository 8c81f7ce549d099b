# bench.mk: builds the benchmark's programs into $(B)/bench/ and runs it.
# Called by the top Makefile's `make bench` after `make all`:
#   $(MAKE) -f bench/bench.mk B=$(B) bench
# BENCH_ARGS passes options to bench/run (e.g. BENCH_ARGS=--quick).
# ftp_load drives issue 17's ftp cases; their peer is Debian's vsftpd,
# which bench-deps installs too.
# The peers of sockserv's event mode need Debian's golang-go (go_echo) and
# libuv1-dev (uv_echo); bench-deps installs them if missing, as
# scripts/install-deps does for the build's own packages.
B          ?= build
BENCH_ARGS ?=
BCFLAGS    := -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -pthread
GO         ?= go
PKG_CONFIG ?= pkg-config

BENCH_BINS := $(B)/bench/loadgen $(B)/bench/epoll_echo \
              $(B)/bench/thread_echo $(B)/bench/fork_echo \
              $(B)/bench/uv_echo $(B)/bench/go_echo \
              $(B)/bench/ftp_load

bench: bench-bins
	python3 bench/run --build $(B) $(BENCH_ARGS)

# issue 19: chat fan-out to 1,000 members across two daemons sharing the
# room through Redis (redis-server from scripts/install-deps), beside one
# daemon alone; prints a markdown table (recorded in bench/RESULTS.md)
bench-chat-redis: $(B)/bench/loadgen
	python3 bench/run --build $(B) --chat-redis $(BENCH_ARGS)

bench-deps:
	@scripts/install-deps bench

# the peers' packages come before any of the programs is built
bench-bins: | bench-deps
bench-bins: $(BENCH_BINS)

$(B)/bench/uv_echo: bench/uv_echo.c bench/bench.mk | bench-deps
	@mkdir -p $(@D)
	$(CC) $(BCFLAGS) $$($(PKG_CONFIG) --cflags libuv) -o $@ $< \
	    $$($(PKG_CONFIG) --libs libuv)

# stdlib only, so no module proxy is asked; the caches live in the build
# dir, so it builds as root or anyone else with no HOME assumed
$(B)/bench/go_echo: bench/go_echo.go bench/bench.mk | bench-deps
	@mkdir -p $(@D) $(B)/bench/go-cache $(B)/bench/go-path
	cd bench && env GOCACHE=$(abspath $(B))/bench/go-cache \
	    GOPATH=$(abspath $(B))/bench/go-path GOPROXY=off GOFLAGS= \
	    CGO_ENABLED=0 \
	    $(GO) build -trimpath -o $(abspath $@) go_echo.go

$(B)/bench/%: bench/%.c bench/bench.mk
	@mkdir -p $(@D)
	$(CC) $(BCFLAGS) -o $@ $< -lm

.DELETE_ON_ERROR:
.PHONY: bench bench-bins bench-deps bench-chat-redis
