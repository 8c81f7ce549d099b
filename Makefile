# sockserv: one Makefile of pattern rules.  `make`, `make test`, `make run`,
# `make install PREFIX=... DESTDIR=...`, `make clean`.  B= names the build
# directory (default build/), so several builds can live side by side.
B       ?= build
PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
LIBDIR  ?= $(PREFIX)/lib
INCDIR  ?= $(PREFIX)/include
HDIR    ?= $(LIBDIR)/sockserv/handlers
PCDIR   ?= $(LIBDIR)/pkgconfig
MANDIR  ?= $(PREFIX)/share/man
SYSCONFDIR ?= $(PREFIX)/etc
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
SCDOC   ?= scdoc

CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -pthread -fPIC \
           -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -MMD -MP \
           -fvisibility=hidden -Icore -Idaemon
LDFLAGS ?=
# bind every symbol at load (full RELRO): no lazy lookups in each forked
# child, and the GOT read-only
LDFLAGS += -Wl,-z,relro,-z,now
PKG_CONFIG ?= pkg-config
VERSION := $(shell sed -n 's/^\#define SOCKSERV_VERSION "\(.*\)"/\1/p' core/sockserv.h)
# the library's soname follows the handler ABI: a program or plugin built
# against ABI N finds libsockserv.so.N
SOVERSION := $(shell sed -n 's/^\#define SOCKSERV_ABI \([0-9]*\).*/\1/p' core/sockserv.h)
INIH_CFLAGS := $(shell $(PKG_CONFIG) --cflags inih 2>/dev/null)
INIH_LIBS   := $(shell $(PKG_CONFIG) --libs inih 2>/dev/null || echo -linih)
# the daemon links inih's archive when there is one: a shared library is
# five more mappings that every forked child copies and tears down
INIH_STATIC := $(wildcard $(shell $(PKG_CONFIG) --variable=libdir inih 2>/dev/null)/libinih.a)
DAEMON_INIH := $(if $(INIH_STATIC),-l:libinih.a,$(INIH_LIBS))
# chat's rooms shared through Redis (issue 19): hiredis
HIREDIS_CFLAGS := $(shell $(PKG_CONFIG) --cflags hiredis 2>/dev/null || echo -I/usr/include/hiredis)
HIREDIS_LIBS   := $(shell $(PKG_CONFIG) --libs hiredis 2>/dev/null || echo -lhiredis)
CMOCKA_CFLAGS := $(shell $(PKG_CONFIG) --cflags cmocka 2>/dev/null)
CMOCKA_LIBS   := $(shell $(PKG_CONFIG) --libs cmocka 2>/dev/null || echo -lcmocka)

# the library: servers, transports, modes, requests
LIB_SRC := core/server.c core/settings.c core/handler.c core/stream.c \
           core/dgram.c core/sendq.c core/coro.c core/mode_event.c \
           core/mode_sync.c core/mode_thread.c core/mode_fork.c \
           core/request.c core/access.c core/addr.c core/log.c core/util.c
LIB_SRC += core/proxy.c
LIB_SRC += core/stats.c
LIB_SRC += core/conn.c
LIB_SRC += core/spawn.c
# the daemon: config file, plugin loader, command line
DAEMON_SRC := daemon/config.c daemon/loader.c daemon/activation.c
DAEMON_SRC += daemon/notify.c daemon/control.c
LIB_OBJ := $(LIB_SRC:%.c=$(B)/%.o)
DAEMON_OBJ := $(DAEMON_SRC:%.c=$(B)/%.o)

# one plugin per file, but chat_redis.c: a part of chat.so (below)
HANDLER_PARTS := handlers/chat_redis.c
HANDLERS := $(patsubst handlers/%.c,$(B)/handlers/%.so,\
    $(filter-out $(HANDLER_PARTS),$(wildcard handlers/*.c)))
TESTS := $(patsubst tests/%.c,$(B)/tests/%,$(wildcard tests/test_*.c))
TEST_PLUGINS := $(patsubst tests/plugins/%.c,$(B)/tests/plugins/%.so,$(wildcard tests/plugins/*.c))
TEST_SUPPORT := $(patsubst %.c,$(B)/%.o,$(wildcard tests/support/*.c))

all: $(B)/libsockserv.so $(B)/sockserv $(HANDLERS)

# the manual: man/NAME.SECTION.scd -> build/man/NAME.SECTION (scdoc)
MANS := $(patsubst man/%.scd,$(B)/man/%,$(wildcard man/*.scd))
all: $(MANS)
$(B)/man/%: man/%.scd
	@mkdir -p $(@D)
	@command -v $(SCDOC) >/dev/null 2>&1 || { echo "make: scdoc not found: \
	the manual is written in scdoc; run scripts/install-deps (Debian \
	package scdoc)" >&2; exit 1; }
	$(SCDOC) < $< > $@

$(B)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(INIH_CFLAGS) -c -o $@ $<

$(B)/libsockserv.so.$(SOVERSION): $(LIB_OBJ)
	$(CC) $(CFLAGS) -shared -Wl,-soname,libsockserv.so.$(SOVERSION) -o $@ \
	    $^ $(LDFLAGS) -lm

$(B)/libsockserv.so: $(B)/libsockserv.so.$(SOVERSION)
	ln -sf libsockserv.so.$(SOVERSION) $@

$(B)/daemon/main.o: CFLAGS += -DSS_HANDLER_DIR='"$(HDIR)"'


# The daemon carries the core itself and exports its public functions to
# the handlers it loads: a shared libsockserv would be six more mappings
# that every forked child copies and tears down.  A handler linked against
# libsockserv.so (pkg-config --libs) still loads: DT_RPATH (not RUNPATH,
# which dlopen'd objects do not see) finds the library beside the daemon,
# and its symbols resolve to the daemon's own copy, first in the scope.
$(B)/sockserv: $(B)/daemon/main.o $(DAEMON_OBJ) $(LIB_OBJ)
	$(CC) $(CFLAGS) -o $@ $(B)/daemon/main.o $(DAEMON_OBJ) $(LIB_OBJ) \
	    $(LDFLAGS) -Wl,--disable-new-dtags \
	    -Wl,-rpath,'$$ORIGIN:$$ORIGIN/../lib' \
	    -Wl,--export-dynamic $(DAEMON_INIH) -ldl -lm $(DAEMON_LDLIBS)

# the control socket's client: alone, no core
all: $(B)/sockservctl
$(B)/sockservctl: $(B)/daemon/sockservctl.o
	$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS)

$(B)/handlers/%.so: handlers/%.c core/sockserv.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -shared -o $@ $< $(LDFLAGS)

# ---- tests ---------------------------------------------------------------
$(B)/tests/%.o: tests/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(INIH_CFLAGS) $(CMOCKA_CFLAGS) -Itests \
	    -DSS_BUILD_DIR='"$(abspath $(B))"' -DSS_SOURCE_DIR='"$(CURDIR)"' -c -o $@ $<

# unit and integration tests link the core's objects (so unit tests reach
# its internals, and -Wl,--wrap can script system calls); test_embed links
# libsockserv.so as an embedding program would.
TEST_LDLIBS = $(INIH_LIBS) $(CMOCKA_LIBS) -ldl -lm
WRAP_test_request = -Wl,--wrap=send
WRAP_test_modes = -Wl,--wrap=pthread_create -Wl,--wrap=fork \
                  -Wl,--wrap=pidfd_open
$(B)/tests/test_embed: $(B)/tests/test_embed.o $(TEST_SUPPORT) $(B)/libsockserv.so
	$(CC) $(CFLAGS) -o $@ $< $(TEST_SUPPORT) $(LDFLAGS) -L$(B) -lsockserv \
	    -Wl,-rpath,'$(abspath $(B))' $(TEST_LDLIBS)

$(B)/tests/%: $(B)/tests/%.o $(TEST_SUPPORT) $(DAEMON_OBJ) $(LIB_OBJ)
	$(CC) $(CFLAGS) -o $@ $< $(TEST_SUPPORT) $(DAEMON_OBJ) $(LIB_OBJ) \
	    $(LDFLAGS) $(WRAP_$*) -Wl,--export-dynamic $(TEST_LDLIBS)

# chat talks to Redis through hiredis, from a thread of its own: nodelete
# keeps its code mapped even if a server lingers past reload (its thread
# is joined in fini, before the generation's dlclose).  chat.so is two
# objects: the room (chat.c) and its Redis bridge (chat_redis.c, the only
# one that includes hiredis), joined by handlers/chat.h.
CHAT_OBJ := $(B)/handlers/chat.o $(B)/handlers/chat_redis.o
$(B)/handlers/chat.so: $(CHAT_OBJ)
	$(CC) $(CFLAGS) -shared -o $@ $(CHAT_OBJ) $(LDFLAGS)
$(B)/handlers/chat_redis.o: CFLAGS += $(HIREDIS_CFLAGS)
$(B)/handlers/chat.so: LDFLAGS += $(HIREDIS_LIBS) -Wl,-z,nodelete
$(B)/tests/test_chat_unit.o: CFLAGS += $(HIREDIS_CFLAGS)
$(B)/tests/test_chat_unit: TEST_LDLIBS += $(HIREDIS_LIBS)

# ftp checks passwords with crypt(3) (libxcrypt)
$(B)/handlers/ftp.so: LDFLAGS += -lcrypt
$(B)/tests/test_ftp: TEST_LDLIBS += -lcrypt

$(B)/tests/plugins/%.so: tests/plugins/%.c core/sockserv.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -shared -o $@ $< $(LDFLAGS)

tests: all $(TESTS) $(TEST_PLUGINS)

deps:
	@scripts/install-deps

test: deps
	$(MAKE) tests
	scripts/run-tests $(B) $(TESTS)

run: deps
	$(MAKE) all
	@echo "sockserv: conf/demo.ini in the foreground (Ctrl-C stops it). Connect with:"
	@echo "  nc 127.0.0.1 8080          echo (tcp)"
	@echo "  nc -u 127.0.0.1 8080       echo (udp); nc -u 127.0.0.1 8888 answers by name"
	@echo "  scripts/chat-client 127.0.0.1 25666    the chat room (or nc)"
	@echo "  nc 127.0.0.1 8000          talk: run two, they are paired"
	@echo "  python3 -u ../shared/seed_clients/ss_tcp_client_2_4_2.py   (the tutorial's clients use these ports)"
	$(B)/sockserv conf/demo.ini

bench: deps
	$(MAKE) all
	$(MAKE) -f bench/bench.mk B=$(B) bench

# ---- install -------------------------------------------------------------
install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCDIR) \
	    $(DESTDIR)$(HDIR) $(DESTDIR)$(PCDIR)
	install -m 755 $(B)/sockserv $(DESTDIR)$(BINDIR)/sockserv
	install -m 755 $(B)/sockservctl $(DESTDIR)$(BINDIR)/sockservctl
	install -m 755 $(B)/libsockserv.so.$(SOVERSION) \
	    $(DESTDIR)$(LIBDIR)/libsockserv.so.$(SOVERSION)
	ln -sf libsockserv.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libsockserv.so
	install -m 644 core/sockserv.h $(DESTDIR)$(INCDIR)/sockserv.h
	install -m 755 $(HANDLERS) $(DESTDIR)$(HDIR)/
	sed -e 's|@PREFIX@|$(PREFIX)|; s|@LIBDIR@|$(LIBDIR)|; s|@INCDIR@|$(INCDIR)|' \
	    -e 's|@HDIR@|$(HDIR)|; s|@VERSION@|$(VERSION)|' \
	    sockserv.pc.in > $(DESTDIR)$(PCDIR)/sockserv.pc
	for s in 3 5 8; do install -d $(DESTDIR)$(MANDIR)/man$$s; done
	for m in $(MANS); do install -m 644 $$m \
	    $(DESTDIR)$(MANDIR)/man$${m##*.}/; done
	install -d $(DESTDIR)$(SYSTEMDUNITDIR)
	sed -e 's|@BINDIR@|$(BINDIR)|g; s|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
	    systemd/sockserv.service.in > $(DESTDIR)$(SYSTEMDUNITDIR)/sockserv.service
	install -m 644 systemd/sockserv.socket $(DESTDIR)$(SYSTEMDUNITDIR)/

clean:
	rm -rf $(B)

-include $(wildcard $(B)/*/*.d $(B)/*/*/*.d)
.DELETE_ON_ERROR:
.PHONY: all deps test tests run bench install clean
.SECONDARY:

# sanitizer, valgrind, fuzz and stress targets (issue 6)
-include mk/hardening.mk
