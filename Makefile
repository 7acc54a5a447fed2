# rdfm-mcumgr-client: top-level build.
#
# Programs, tests and fuzzers are declared in mk/*.mk (client, workers,
# tools, tests, fuzz), each program with its one list of sources; this file
# holds the rules they share.  Targets:
#   make            every program into build/
#   make check      sanitizer build (build/san/), fuzz smoke runs, all tests
#   make fuzz       libFuzzer targets into build/fuzz/ (clang)
#   make install    PREFIX/DESTDIR aware
#   make format     clang-format every C source

PREFIX     ?= /usr/local
DESTDIR    ?=
BINDIR     ?= $(PREFIX)/bin
LIBEXECDIR ?= $(PREFIX)/libexec/rdfm-mcumgr
SYSCONFDIR ?= /etc
# systemd looks in /usr/local/lib/systemd/system too, so the unit follows
# PREFIX; so does the sysusers.d entry that creates the workers' user.
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
MANDIR     ?= $(PREFIX)/share/man
DOCDIR     ?= $(PREFIX)/share/doc/rdfm-mcumgr-client
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
BUILD      ?= build
VERSION    := 0.1.0

CC ?= cc
ifeq ($(origin CC),default)
CC := cc
endif

WARN := -Wall -Wextra -Wstrict-prototypes -Wmissing-prototypes -Wshadow \
	-Wpointer-arith -Wcast-qual -Werror

PKGS := libevent libcurl json-c openssl liblzma libcbor libprotobuf-c \
	libarchive libseccomp libcap libsystemd bluez

SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=undefined

ifeq ($(FUZZ),1)
OPT    := -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -DFUZZING
LDOPT  := -fsanitize=fuzzer,address,undefined
else ifeq ($(SANITIZE),1)
OPT    := -O1 -g $(SAN_FLAGS) -DSANITIZER_BUILD
LDOPT  := $(SAN_FLAGS)
else
OPT    := -O2 -g
LDOPT  :=
endif

# Debian 12's libwslay-dev (WebSocket framing) ships no pkg-config file,
# so it is named here instead of in PKGS; --as-needed drops it where unused.
WSLAY_LIBS := -lwslay

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   := $(shell pkg-config --libs $(PKGS)) $(WSLAY_LIBS)
CMOCKA_LIBS := $(shell pkg-config --libs cmocka)

ALL_CPPFLAGS = -I. -Icommon -I$(BUILD)/gen -D_GNU_SOURCE \
	-DVERSION='"$(VERSION)"' -DLIBEXECDIR='"$(LIBEXECDIR)"' $(CPPFLAGS)
ALL_CFLAGS   = -std=gnu11 $(OPT) $(WARN) $(PKG_CFLAGS) -MMD -MP $(CFLAGS)
ALL_LDFLAGS  = $(LDOPT) -Wl,--as-needed $(LDFLAGS)

# Filled in by the fragments.
BIN_PROGRAMS     :=
LIBEXEC_PROGRAMS :=
TOOL_PROGRAMS    :=
TESTS            :=
FUZZERS          :=

# What nearly every test and fuzzer links besides the module under test.
BASE := common/log.c common/xmalloc.c
IPC  := common/ipc.c gen/ipc.pb-c.c
# The worker engine every transport links (and test_engine tests).
ENGINE := common/engine.c common/engine_smp.c common/engine_cmd.c \
	common/engine_upload.c common/smp_tree.c common/sandbox.c \
	common/smp.c common/smp_cbor.c

# protobuf-c output is generated, never committed.
GEN_HEADERS := $(BUILD)/gen/ipc.pb-c.h
# Keep the generated files: make would delete them as intermediates and
# regenerate (and rebuild) on every run.
.SECONDARY: $(BUILD)/gen/ipc.pb-c.c $(BUILD)/gen/ipc.pb-c.h
# protoc-c's generated code casts protobuf_c_empty_string to char *.
$(BUILD)/obj/gen/ipc.pb-c.o: CFLAGS += -Wno-cast-qual

include $(sort $(wildcard mk/*.mk))

PROGRAMS := $(BIN_PROGRAMS) $(LIBEXEC_PROGRAMS) $(TOOL_PROGRAMS)

objs = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

# $(call program,NAME,OUTDIR,EXTRA_LIBS)
define program
$(2)/$(1): $$(call objs,$$($(1)_SRCS))
	@mkdir -p $$(@D)
	$$(CC) $$(ALL_LDFLAGS) -o $$@ $$^ $$($(1)_LIBS) $(3) $$(PKG_LIBS) -lm
ALL_OBJS += $$(call objs,$$($(1)_SRCS))
endef

$(foreach p,$(PROGRAMS),$(eval $(call program,$(p),$(BUILD))))
$(foreach t,$(TESTS),$(eval $(call program,$(t),$(BUILD)/tests,$(CMOCKA_LIBS))))
$(foreach f,$(FUZZERS),$(eval $(call program,$(f),$(BUILD))))

.DEFAULT_GOAL := all
.PHONY: all tests fuzz fuzzers check install uninstall format clean

all: $(addprefix $(BUILD)/,$(PROGRAMS))
tests: $(addprefix $(BUILD)/tests/,$(TESTS))
fuzzers: $(addprefix $(BUILD)/,$(FUZZERS))

$(BUILD)/obj/%.o: %.c | $(GEN_HEADERS)
	@mkdir -p $(@D)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

# Generated sources (protobuf-c) live in $(BUILD)/gen and are named gen/X.c
# in source lists.
$(BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c | $(GEN_HEADERS)
	@mkdir -p $(@D)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/gen/%.pb-c.c $(BUILD)/gen/%.pb-c.h: proto/%.proto
	@mkdir -p $(@D)
	protoc-c --proto_path=proto --c_out=$(BUILD)/gen $<

-include $(ALL_OBJS:.o=.d)

fuzz:
	$(MAKE) BUILD=build/fuzz CC=clang FUZZ=1 fuzzers

FUZZ_SECONDS ?= 10
check:
	$(MAKE) BUILD=build/san SANITIZE=1 all tests
	if command -v clang >/dev/null 2>&1; then $(MAKE) fuzz; fi
	FUZZ_SECONDS=$(FUZZ_SECONDS) tests/run $(CURDIR)/build/san $(CURDIR)/build/fuzz

# The unit names the installed paths: @BINDIR@ and @SYSCONFDIR@ in
# etc/rdfm-mcumgr-client.service are replaced here.  The client finds its
# workers from where it is installed (BINDIR/../libexec/rdfm-mcumgr), so
# `make` then `make install PREFIX=/usr` works without a rebuild; a
# LIBEXECDIR elsewhere than PREFIX/libexec/rdfm-mcumgr must be given to
# `make` as well, since it is built in.
install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBEXECDIR) \
		$(DESTDIR)$(SYSCONFDIR)/rdfm-mcumgr $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(MANDIR)/man1 \
		$(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(DOCDIR) \
		$(DESTDIR)$(BASHCOMPDIR)
	for p in $(BIN_PROGRAMS); do install -m 0755 $(BUILD)/$$p $(DESTDIR)$(BINDIR)/; done
	for p in $(LIBEXEC_PROGRAMS); do install -m 0755 $(BUILD)/$$p $(DESTDIR)$(LIBEXECDIR)/; done
	install -m 0644 etc/config.json \
		$(DESTDIR)$(SYSCONFDIR)/rdfm-mcumgr/config.json.example
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
		etc/rdfm-mcumgr-client.service \
		>$(DESTDIR)$(UNITDIR)/rdfm-mcumgr-client.service.tmp
	chmod 0644 $(DESTDIR)$(UNITDIR)/rdfm-mcumgr-client.service.tmp
	mv -f $(DESTDIR)$(UNITDIR)/rdfm-mcumgr-client.service.tmp \
		$(DESTDIR)$(UNITDIR)/rdfm-mcumgr-client.service
	install -m 0644 etc/rdfm-mcumgr.sysusers \
		$(DESTDIR)$(SYSUSERSDIR)/rdfm-mcumgr.conf
	install -m 0644 docs/rdfm-mcumgr-client.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 docs/rdfm-mcumgr-client.json.5 $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 docs/user-guide.md README.md $(DESTDIR)$(DOCDIR)/
	install -m 0644 etc/rdfm-mcumgr-client.bash \
		$(DESTDIR)$(BASHCOMPDIR)/rdfm-mcumgr-client

# Removes exactly what install placed, then the directories that are ours
# alone (a shared directory such as man1 is left even when empty).
uninstall:
	for p in $(BIN_PROGRAMS); do rm -f $(DESTDIR)$(BINDIR)/$$p; done
	for p in $(LIBEXEC_PROGRAMS); do rm -f $(DESTDIR)$(LIBEXECDIR)/$$p; done
	rm -f $(DESTDIR)$(SYSCONFDIR)/rdfm-mcumgr/config.json.example \
		$(DESTDIR)$(UNITDIR)/rdfm-mcumgr-client.service \
		$(DESTDIR)$(SYSUSERSDIR)/rdfm-mcumgr.conf \
		$(DESTDIR)$(MANDIR)/man1/rdfm-mcumgr-client.1 \
		$(DESTDIR)$(MANDIR)/man5/rdfm-mcumgr-client.json.5 \
		$(DESTDIR)$(DOCDIR)/user-guide.md $(DESTDIR)$(DOCDIR)/README.md \
		$(DESTDIR)$(BASHCOMPDIR)/rdfm-mcumgr-client
	-rmdir $(DESTDIR)$(LIBEXECDIR) $(DESTDIR)$(SYSCONFDIR)/rdfm-mcumgr \
		$(DESTDIR)$(DOCDIR) 2>/dev/null

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build
