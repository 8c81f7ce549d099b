# hardening.mk: sanitizer, valgrind, fuzzing and stress targets (issue 6).
# Included at the end of the Makefile.  Each target builds into its own
# directory, so they run beside the ordinary build/ and beside each other:
#
#   make asan          build-asan/: AddressSanitizer + UBSan, whole suite
#   make tsan          build-tsan/: ThreadSanitizer, whole suite
#   make valgrind      build-valgrind/: integration tests, daemon under memcheck
#   make fuzz          build-fuzz/: each libFuzzer target FUZZ_SECONDS (60)
#   make fuzz-smoke    the regression inputs, then each target 20 s (CI)
#   make stress        build-stress/: 1,000 connections per mode, bad clients
#
# Sanitizer and valgrind reports go to files under <dir>/reports/ (every
# process writes its own, forked children included); the target prints them
# and fails if there is any, even when every test passed.

SAN_CC      ?= gcc
ASAN_B      ?= build-asan
TSAN_B      ?= build-tsan
VG_B        ?= build-valgrind
FUZZ_B      ?= build-fuzz
STRESS_B    ?= build-stress
FUZZ_CC     ?= clang
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 20
STRESS_SECONDS ?= 40
HARDEN_JOBS ?= 2

ASAN_CFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all \
               -fno-omit-frame-pointer
TSAN_CFLAGS := -fsanitize=thread -fno-omit-frame-pointer

# halt on the first error; reports to files, one per process
ASAN_REP = $(abspath $(ASAN_B))/reports
ASAN_ENV = ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:log_path=$(ASAN_REP)/asan \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:log_path=$(ASAN_REP)/ubsan
# die_after_fork=0: forking mode forks a threaded daemon, as it must
TSAN_REP = $(abspath $(TSAN_B))/reports
TSAN_ENV = TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:die_after_fork=0:log_path=$(TSAN_REP)/tsan
# possible leaks are shown but are no error: a request thread of mode =
# threading (created in mode_thread.c, thread_process) still alive when the
# daemon exits leaves the TLS pthread_create gave it "possibly lost".  With
# daemon_threads = true or block_on_close = false that is by design (running
# requests are not waited for); every other worker is joined (thread_stop).
# test_daemon_bad_clients adds
# --freelist-vol=0 for its one daemon, whose RSS it bounds (test_daemon.c).
VG_CMD = valgrind --error-exitcode=99 --leak-check=full \
    --show-leak-kinds=definite,indirect,possible \
    --errors-for-leak-kinds=definite,indirect \
    --child-silent-after-fork=yes --track-fds=no \
    --log-file=$(abspath $(VG_B))/reports/vg.%p
# the tests that start the daemon
VG_TESTS = test_daemon test_chat test_talk

# Prints the reports in $(1)/reports that hold an error; fails if any.
# (valgrind writes a file per process even when clean: only those that
# count errors are shown.)
define show_reports
	@bad=$$(grep -lE 'ERROR SUMMARY: [1-9]|Sanitizer|runtime error' \
	    $(1)/reports/* 2>/dev/null); \
	if [ -n "$$bad" ]; then \
	    for f in $$bad; do echo "==== $$f"; cat "$$f"; done; \
	    echo "$(1): $$(echo $$bad | wc -w) report(s) with errors"; \
	    exit 1; \
	fi; echo "$(1): no sanitizer reports"
endef

# The sanitizers intercept crypt_r and look the real one up when the
# daemon starts: libcrypt must be loaded by then, not first by the ftp
# plugin's dlopen (its calls would jump to a null address).
SAN_DAEMON_LDLIBS := -Wl,--no-as-needed -lcrypt -Wl,--as-needed

# the suite in $(1), built by $(SAN_CC) with $(2), run with env $(3); CC
# stays in the environment so test_install's `make install` links alike
define san_suite
	rm -rf $(1)/reports && mkdir -p $(1)/reports
	$(MAKE) -j$(HARDEN_JOBS) B=$(1) CC="$(SAN_CC) $(2)" \
	    DAEMON_LDLIBS="$(SAN_DAEMON_LDLIBS)" tests
	CC="$(SAN_CC) $(2)" $(3) scripts/run-tests $(1) \
	    $(patsubst tests/%.c,$(1)/tests/%,$(wildcard tests/test_*.c)); \
	rc=$$?; [ $$rc -eq 0 ] || echo "$(1): test suite failed ($$rc)"; \
	exit $$rc
endef

asan: deps
	@$(MAKE) --no-print-directory asan-run; rc=$$?; \
	$(MAKE) --no-print-directory asan-reports || rc=1; exit $$rc
asan-run:
	$(call san_suite,$(ASAN_B),$(ASAN_CFLAGS),$(ASAN_ENV))
asan-reports:
	$(call show_reports,$(ASAN_B))

tsan: deps
	@$(MAKE) --no-print-directory tsan-run; rc=$$?; \
	$(MAKE) --no-print-directory tsan-reports || rc=1; exit $$rc
tsan-run:
	$(call san_suite,$(TSAN_B),$(TSAN_CFLAGS),$(TSAN_ENV))
tsan-reports:
	$(call show_reports,$(TSAN_B))

valgrind: deps valgrind-deps
	@$(MAKE) --no-print-directory valgrind-run; rc=$$?; \
	$(MAKE) --no-print-directory valgrind-reports || rc=1; exit $$rc
valgrind-run:
	rm -rf $(VG_B)/reports && mkdir -p $(VG_B)/reports
	$(MAKE) -j$(HARDEN_JOBS) B=$(VG_B) tests
	SSD_WRAPPER="$(VG_CMD)" scripts/run-tests $(VG_B) \
	    $(addprefix $(VG_B)/tests/,$(VG_TESTS))
valgrind-reports:
	@n=$$(grep -l "possibly lost in" $(VG_B)/reports/* 2>/dev/null | wc -l); \
	[ "$$n" -eq 0 ] || echo "$(VG_B): note: $$n daemon(s) exited with" \
	    "possibly lost blocks (request threads alive at exit, see" \
	    "VG_CMD in mk/hardening.mk): grep -l" \
	    "'possibly lost in' $(VG_B)/reports/*"
	$(call show_reports,$(VG_B))

# Debian packages, installed if the machine lacks them: $(1)
define need_pkgs
	@need=""; \
	for p in $(1); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | \
	        grep -q "ok installed" || need="$$need $$p"; \
	done; \
	[ -z "$$need" ] || { echo "$@: installing$$need"; \
	    S=; [ "$$(id -u)" -eq 0 ] || S=sudo; \
	    $$S env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    $$S env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	        --no-install-recommends $$need; }
endef
valgrind-deps:
	$(call need_pkgs,valgrind)
fuzz-deps:
	$(call need_pkgs,clang libclang-rt-14-dev)

# ---- fuzzing (clang's libFuzzer) -------------------------------------------
# Each target links the core's sources built with the fuzzer's
# instrumentation.  Corpora: tests/fuzz/corpus/T (seeds, read-only) and
# $(FUZZ_B)/corpus/T (what the fuzzer adds); crashes land in
# $(FUZZ_B)/crashes/T/ -- keep one under tests/fuzz/regress/T/.
FUZZ_TARGETS := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_CFLAGS := -g -O1 -std=c11 -D_GNU_SOURCE -pthread -fno-omit-frame-pointer \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    -Wall -Wextra -Werror -Wno-unused-function -Icore -Idaemon $(INIH_CFLAGS) \
    $(HIREDIS_CFLAGS)
FUZZ_SRC := $(LIB_SRC) $(DAEMON_SRC)
FUZZ_ENV = ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
FUZZ_BINS := $(addprefix $(FUZZ_B)/fuzz_,$(FUZZ_TARGETS))

$(FUZZ_B)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_SRC) $(wildcard core/*.h) \
                  $(wildcard handlers/*.c) $(wildcard handlers/*.h)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_SRC) $(INIH_LIBS) $(HIREDIS_LIBS) -ldl -lm

fuzz-build: fuzz-deps
	$(MAKE) --no-print-directory $(FUZZ_BINS)

# $(1): seconds per target
define fuzz_run
	@for t in $(FUZZ_TARGETS); do \
	    mkdir -p $(FUZZ_B)/corpus/$$t $(FUZZ_B)/crashes/$$t; \
	    echo "== fuzz_$$t, $(1) s"; \
	    $(FUZZ_ENV) $(FUZZ_B)/fuzz_$$t -max_total_time=$(1) -timeout=10 \
	        -rss_limit_mb=2048 -print_final_stats=1 \
	        -artifact_prefix=$(FUZZ_B)/crashes/$$t/ \
	        $(FUZZ_B)/corpus/$$t tests/fuzz/corpus/$$t \
	        >$(FUZZ_B)/fuzz_$$t.log 2>&1; rc=$$?; \
	    grep -E '^(stat::number_of_executed_runs|stat::new_units_added)|^#[0-9]+.*DONE' \
	        $(FUZZ_B)/fuzz_$$t.log; \
	    if [ $$rc -ne 0 ]; then tail -60 $(FUZZ_B)/fuzz_$$t.log; \
	        echo "fuzz_$$t: FAILED, input in $(FUZZ_B)/crashes/$$t/"; \
	        exit 1; fi; \
	done
endef

# Every saved crashing input must now run clean (libFuzzer runs files given
# as arguments once each).
fuzz-regress: fuzz-build
	@n=0; for t in $(FUZZ_TARGETS); do \
	    set -- tests/fuzz/regress/$$t/*; [ -e "$$1" ] || continue; \
	    n=$$((n + $$#)); \
	    $(FUZZ_ENV) $(FUZZ_B)/fuzz_$$t "$$@" >$(FUZZ_B)/regress_$$t.log 2>&1 || \
	        { tail -60 $(FUZZ_B)/regress_$$t.log; \
	          echo "fuzz_$$t: a regression input fails"; exit 1; }; \
	done; echo "fuzz-regress: $$n input(s) ran clean"

fuzz: fuzz-regress
	$(call fuzz_run,$(FUZZ_SECONDS))
fuzz-smoke: fuzz-regress
	$(call fuzz_run,$(FUZZ_SMOKE_SECONDS))

# ---- stress ------------------------------------------------------------------
# The daemon of a plain build in $(STRESS_B), the load generator beside it.
stress: deps
	$(MAKE) B=$(STRESS_B) all
	@mkdir -p $(STRESS_B)/tests/stress
	$(CC) -O2 -g -std=c11 -D_GNU_SOURCE -pthread -Wall -Wextra -Werror \
	    -o $(STRESS_B)/tests/stress/stress tests/stress/stress.c -lm
	$(STRESS_B)/tests/stress/stress -d $(STRESS_B) -s $(STRESS_SECONDS)

.PHONY: asan asan-run asan-reports tsan tsan-run tsan-reports valgrind \
        valgrind-run valgrind-reports valgrind-deps fuzz-deps fuzz-build fuzz-regress \
        fuzz fuzz-smoke stress
