# vmd — build, test, demo, bench, fuzz.  `make` builds build/vmd and build/vmctl.
CC      ?= gcc
BUILD   ?= build
CFLAGS  := -std=c17 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
           -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fPIE -Isrc
LDFLAGS := -pie -Wl,-z,relro,-z,now
LIBS    := -levent -lseccomp -lz -llz4 -llzma -lzstd -lbsd -lpthread -lutil
SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

# Every .c below src/ except the two main files is library code: the binaries,
# the unit tests and the fuzz targets all link the same objects.
YACC_SRC := $(wildcard src/*/*.y)
YACC_C   := $(patsubst src/%.y,$(BUILD)/gen/%.c,$(YACC_SRC))
ASL_SRC  := $(wildcard src/*/*.asl)
ASL_C    := $(patsubst src/%.asl,$(BUILD)/gen/%.c,$(ASL_SRC))
MAINS    := src/vmd/main.c src/vmctl/main.c
LIB_SRC  := $(filter-out $(MAINS),$(wildcard src/*/*.c))
GEN_C    := $(YACC_C) $(ASL_C)
LIB_OBJ  := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRC) $(GEN_C))
SAN_OBJ  := $(patsubst %.c,$(BUILD)/san/%.o,$(LIB_SRC) $(GEN_C))
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILD)/unit/%,$(UNIT_SRC))
FUZZ_SRC := $(wildcard fuzz/fuzz_*.c)
FUZZ_BIN := $(patsubst fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRC))

.PHONY: all check unit demo bench fuzz fuzz-replay clean install setup
.SECONDARY:

all: $(BUILD)/vmd $(BUILD)/vmctl

$(BUILD)/vmd: $(BUILD)/obj/src/vmd/main.o $(BUILD)/libvmd.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)
$(BUILD)/vmctl: $(BUILD)/obj/src/vmctl/main.o $(BUILD)/libvmd.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)
$(BUILD)/libvmd.a: $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $^
$(BUILD)/libvmd-san.a: $(SAN_OBJ)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/obj/%.o: %.c $(GEN_C)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -I$(BUILD)/gen -Isrc/$(word 2,$(subst /, ,$<)) -c -o $@ $<
$(BUILD)/san/%.o: %.c $(GEN_C)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -O1 $(SAN) -MMD -MP -I$(BUILD)/gen -Isrc/$(word 2,$(subst /, ,$<)) -c -o $@ $<
$(BUILD)/gen/%.c: src/%.y
	@mkdir -p $(dir $@)
	bison -Wall -Werror -d -o $@ $<
# ACPI source language (the DSDT) compiled to AML by iasl, wrapped as a C array.
$(BUILD)/gen/%.c: src/%.asl
	@mkdir -p $(dir $@)
	iasl -p $(BUILD)/gen/$* -tc $< >/dev/null
	sed -e 's/unsigned char [A-Za-z_]*\[\]/const unsigned char $(notdir $*)_aml[]/' \
	    $(BUILD)/gen/$*.hex > $@
	echo 'const unsigned long $(notdir $*)_aml_len = sizeof($(notdir $*)_aml);' >> $@

# Unit tests: pure logic, natively, under AddressSanitizer and UBSan.
$(BUILD)/unit/%: tests/unit/%.c $(BUILD)/libvmd-san.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -O1 $(SAN) -I$(BUILD)/gen -Itests -o $@ $^ $(LIBS)
unit: $(UNIT_BIN)

# libFuzzer targets, built with clang against the same sources (compiled once).
FUZZ_CFLAGS := -std=c17 -D_GNU_SOURCE -g -O1 -Isrc -I$(BUILD)/gen -fsanitize=address,undefined
FUZZ_OBJ    := $(patsubst %.c,$(BUILD)/fuzzobj/%.o,$(LIB_SRC) $(GEN_C))
$(BUILD)/fuzzobj/%.o: %.c $(GEN_C)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<
$(BUILD)/libvmd-fuzz.a: $(FUZZ_OBJ)
	rm -f $@ && ar rcs $@ $^
$(BUILD)/fuzz/%: fuzz/%.c $(BUILD)/libvmd-fuzz.a
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $^ $(LIBS)
fuzz: setup $(FUZZ_BIN)
	scripts/fuzz $(FUZZ_BIN)
# Every target once over its seed corpus (-runs=0): a crash found once stays fixed.
# `make check` runs the same as its fuzz suite (tests/fuzz/run).
fuzz-replay: $(FUZZ_BIN)
	tests/fuzz/run

setup:
	scripts/setup

check: setup
	$(MAKE) -j$$(nproc) all unit $(FUZZ_BIN)
	tests/check

demo: setup
	$(MAKE) all
	scripts/demo

bench: setup
	$(MAKE) all
	bench/run

install: all
	install -D -m 0755 $(BUILD)/vmd $(DESTDIR)/usr/sbin/vmd
	install -D -m 0755 $(BUILD)/vmctl $(DESTDIR)/usr/sbin/vmctl
	install -D -m 0644 man/vmd.8 $(DESTDIR)/usr/share/man/man8/vmd.8
	install -D -m 0644 man/vmctl.8 $(DESTDIR)/usr/share/man/man8/vmctl.8
	install -D -m 0644 man/vm.conf.5 $(DESTDIR)/usr/share/man/man5/vm.conf.5
	install -D -m 0644 etc/vmd.service $(DESTDIR)/lib/systemd/system/vmd.service
	[ -n "$(DESTDIR)" ] || getent passwd _vmd >/dev/null || \
	    useradd --system --no-create-home --home-dir /var/lib/vmd/empty --shell /usr/sbin/nologin _vmd

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
