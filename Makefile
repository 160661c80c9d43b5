# The two commands a newcomer runs (see README.md):
#   make run    install what is missing, build, boot the default guest
#   make check  install what is missing, build, run every test
# `make` alone builds into build/.

BUILD      ?= build
BUILD_SAN  ?= build-asan
BUILD_FUZZ ?= build-fuzz
# Inputs per fuzz target; empty: each target's own count (20000, fewer
# for the slow ones: tests/fuzz/meson.build).
FUZZ_RUNS  ?=
GUEST_DIR  ?= .cache/guest

.PHONY: all deps build run check unit unit-sanitized fuzz guest-test clean

all: build

deps:
	@scripts/install-deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD)

build: $(BUILD)/build.ninja
	ninja -C $(BUILD)

unit: build
	meson test -C $(BUILD) --suite unit --print-errorlogs

$(BUILD_SAN)/build.ninja:
	meson setup $(BUILD_SAN) -Db_sanitize=address,undefined -Db_lundef=false

unit-sanitized: $(BUILD_SAN)/build.ninja
	ninja -C $(BUILD_SAN)
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	ASAN_OPTIONS=detect_leaks=1 \
	meson test -C $(BUILD_SAN) --suite unit --print-errorlogs

$(BUILD_FUZZ)/build.ninja:
	CC=clang meson setup $(BUILD_FUZZ) -Dfuzz=true -Db_lundef=false \
	    -Db_sanitize=address,undefined -Dc_args=-fsanitize=fuzzer-no-link

# Each fuzz target runs a bounded number of inputs from its seed corpus.
fuzz: $(BUILD_FUZZ)/build.ninja
	ninja -C $(BUILD_FUZZ)
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 FUZZ_RUNS=$(FUZZ_RUNS) \
	    meson test -C $(BUILD_FUZZ) --suite fuzz --print-errorlogs

# Boots the stock Debian kernel under vmdev-run and checks every device from
# inside the guest (tests/guest/run.sh; nested in QEMU where /dev/kvm can't).
guest-test: build
	tests/guest/run.sh --build $(BUILD) --cache $(GUEST_DIR)

run: deps build
	tests/guest/boot-default.sh --build $(BUILD) --cache $(GUEST_DIR)

check: deps
	$(MAKE) unit
	$(MAKE) unit-sanitized
	$(MAKE) fuzz
	$(MAKE) guest-test

clean:
	rm -rf $(BUILD) $(BUILD_SAN) $(BUILD_FUZZ)
