# rbmkit - one plain GNU make file.
#   make            build build/librbmkit.a and one executable per cmd/*.c in bin/
#   make check      build and run every test (unit, bats, fuzz corpus replay)
#   make check-asan the same under -fsanitize=address,undefined (build-asan/)
#   make demo       train a small model on examples/data and draw it
#   make bench      throughput figures against this machine's sgemm speed
#   make install    PREFIX=/usr/local: binaries and man pages
#   make deps       install missing Debian packages (root)

PREFIX  ?= /usr/local
CC      ?= cc
OPT     ?= -O2 -g
WERROR  ?= -Werror
CFLAGS  ?= $(OPT)
BUILD   ?= build
BIN     ?= bin
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -Wall -Wextra $(WERROR) -pthread \
             -Ilib -Icmd $(CFLAGS) $(SAN)
LDLIBS  = -lzstd -lpng -llapack -lblas -lm -ldl -lpthread
VERSION = 0.1.0

LIB_SRC  = $(sort $(wildcard lib/*.c))
LIB_OBJ  = $(patsubst %.c,$(BUILD)/%.o,$(LIB_SRC))
CLI_OBJ  = $(BUILD)/cmd/cli.o
# cmd/TOOL.c is one executable; a folder cmd/TOOL/ holds further parts of
# it (the subcommands of tensor).
CMD_SRC  = $(filter-out cmd/cli.c,$(sort $(wildcard cmd/*.c)))
BINS     = $(patsubst cmd/%.c,$(BIN)/%,$(CMD_SRC))
UNIT_SRC = $(sort $(wildcard tests/unit/test_*.c))
UNITS    = $(patsubst tests/unit/%.c,$(BUILD)/unit/%,$(UNIT_SRC))
HELP_SRC = $(sort $(wildcard tests/helpers/*.c))
HELPERS  = $(patsubst tests/helpers/%.c,$(BUILD)/tests/%,$(HELP_SRC))
BENCH_SRC = $(sort $(wildcard bench/*.c))
BENCHES  = $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))
FUZZ_SRC = $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_REPLAY = $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%-replay,$(FUZZ_SRC))
HDRS     = $(wildcard lib/*.h) $(wildcard cmd/*.h) $(wildcard cmd/*/*.h)

.PHONY: all check check-asan unit demo bench install deps need-deps clean fuzz
all: $(BUILD)/librbmkit.a $(BINS) $(UNITS) $(HELPERS) $(FUZZ_REPLAY) $(BENCHES)

$(BUILD)/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/librbmkit.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

.SECONDEXPANSION:
$(BIN)/%: $(BUILD)/cmd/%.o $$(addprefix $(BUILD)/,$$(subst .c,.o,$$(wildcard cmd/$$*/*.c))) $(CLI_OBJ) $(BUILD)/librbmkit.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $(filter %.o,$^) $(BUILD)/librbmkit.a $(LDLIBS)

$(BUILD)/unit/%: tests/unit/%.c $(BUILD)/librbmkit.a $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/librbmkit.a $(LDLIBS)

$(BUILD)/tests/%: tests/helpers/%.c $(BUILD)/librbmkit.a $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/librbmkit.a $(LDLIBS)

$(BUILD)/bench/%: bench/%.c $(BUILD)/librbmkit.a $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/librbmkit.a $(LDLIBS)

# Fuzz targets built with a plain main() that replays the corpus.
$(BUILD)/fuzz/%-replay: tests/fuzz/%.c tests/fuzz/replay.c $(BUILD)/librbmkit.a $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< tests/fuzz/replay.c $(BUILD)/librbmkit.a $(LDLIBS)

# libFuzzer builds (clang): make fuzz; then build-fuzz/fuzz_tz corpus/
fuzz:
	@mkdir -p build-fuzz
	for f in $(FUZZ_SRC); do \
	  clang -std=c11 -D_GNU_SOURCE -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION -g -O1 -fsanitize=fuzzer,address,undefined \
	    -Ilib -Icmd -o build-fuzz/$$(basename $$f .c) $$f $(LIB_SRC) $(LDLIBS) || exit 1; \
	done

check: need-deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) BIN=$(BIN) tests/run

check-asan:
	$(MAKE) BUILD=build-asan BIN=build-asan/bin CC=clang OPT="-O1 -g" \
	  SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" check

demo: need-deps
	@$(MAKE) --no-print-directory all
	@PATH="$(CURDIR)/bin:$$PATH" $(MAKE) --no-print-directory -C examples demo

bench: all
	@PATH="$(CURDIR)/$(BIN):$(CURDIR)/$(BUILD)/bench:$$PATH" bench/run

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
	  $(DESTDIR)$(PREFIX)/share/man/man5 $(DESTDIR)$(PREFIX)/share/man/man7
	install -m 755 $(BINS) $(DESTDIR)$(PREFIX)/bin
	install -m 644 man/man1/*.1 $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 644 man/man5/*.5 $(DESTDIR)$(PREFIX)/share/man/man5
	install -m 644 man/man7/*.7 $(DESTDIR)$(PREFIX)/share/man/man7

# Debian 12 packages; installs only what is missing (run as root).
DEPS = build-essential clang libclang-rt-14-dev libzstd-dev zstd libopenblas-dev \
       liblapack-dev libpng-dev bats python3 python3-numpy python3-sklearn time
# Before `make check` and `make demo` on a fresh Debian machine: as root,
# install what is missing; otherwise name it.  Silent when all is there or
# when there is no dpkg (not Debian: you are on your own).
need-deps:
	@command -v dpkg >/dev/null 2>&1 || exit 0; \
	missing=""; for p in $(DEPS); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	[ -z "$$missing" ] && exit 0; \
	if [ "$$(id -u)" = 0 ]; then $(MAKE) --no-print-directory deps; \
	else echo "missing Debian packages:$$missing (run: sudo make deps)"; exit 1; fi

deps:
	@missing=""; for p in $(DEPS); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; apt-get update && apt-get install -y $$missing; \
	else echo "all dependencies present"; fi

clean:
	rm -rf build bin build-asan build-fuzz
