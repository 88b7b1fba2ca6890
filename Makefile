# aether: thin wrapper over CMake + Ninja.
#   make run         install what is missing, build, start the host on config/aether.yaml
#   make test        install what is missing, build, run every test (ctest)
#   make bench       build and run the benchmarks, printing ratios for BENCHMARKS.md
#   make package     build the .deb packages aether and aether-dev in
#                    $(BUILD)/packages (docs/operations.md)
#   make check-asan  build everything with ASan + UBSan (+ LeakSanitizer) in
#                    build-asan and run every test there
#   make check-tsan  build with TSan in build-tsan and run the runtime, store,
#                    bus, outbox, hot-swap, canary and cluster tests (TSAN_TESTS)
#   make fuzz        build the libFuzzer targets (clang) in build-fuzz and run
#                    each for FUZZ_SECONDS (default 60) from its seed corpus
#   make fuzz-ci     the same, 30 s each (what .ci/run does)
BUILD ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
CONFIG ?= config/aether.yaml
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= config command_request nats_message commit_scan sqlite_records names plugin_model
# ctest labels (one per test executable) of the tests run under TSan.
TSAN_TESTS ?= runtime_test|store_test|nats_bus_test|nats_test|commit_broadcast_test|hot_swap_test|canary_test|cluster_test|cluster_canary_test|placement_test
TSAN_TARGETS = aether-host $(subst |, ,$(TSAN_TESTS))
# Sanitizer builds: no -Werror (sanitizer instrumentation makes GCC warn
# falsely), no benchmarks (not tests).
SAN_CMAKE = -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DAETHER_WERROR=OFF -DAETHER_BUILD_BENCH=OFF

# Runs ctest in build dir $(1) with arguments $(2); fails if ctest fails or
# any process (tests and the hosts they start) left a sanitizer report.
define sanitized_ctest
	rm -rf $(1)/sanitizer-logs && mkdir -p $(1)/sanitizer-logs
	cd $(1) && ctest --output-on-failure -j $(JOBS) --timeout 900 $(2); status=$$?; \
	  if [ -n "$$(ls sanitizer-logs)" ]; then \
	    echo "sanitizer reports in $(1)/sanitizer-logs:"; head -n 40 sanitizer-logs/*; exit 1; \
	  fi; exit $$status
endef

.PHONY: all deps configure build run test bench package clean check-asan check-tsan fuzz fuzz-ci

all: build

deps:
	@bash scripts/deps.sh

$(BUILD)/build.ninja: CMakeLists.txt
	@bash scripts/deps.sh
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

configure: $(BUILD)/build.ninja

build: configure
	cmake --build $(BUILD) -j $(JOBS)

run: build
	./$(BUILD)/host/aether-host --config $(CONFIG)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 900

package: build
	cmake --build $(BUILD) --target package

bench: build
	@bash scripts/deps.sh --bench || echo "bench: could not install nginx-light and wrk; the benchmarks that need them are skipped"
	bash scripts/bench.sh $(BUILD)

check-asan: deps
	cmake -S . -B $(ASAN_BUILD) $(SAN_CMAKE) -DAETHER_SANITIZE=address
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	$(call sanitized_ctest,$(ASAN_BUILD),)

check-tsan: deps
	cmake -S . -B $(TSAN_BUILD) $(SAN_CMAKE) -DAETHER_SANITIZE=thread
	cmake --build $(TSAN_BUILD) -j $(JOBS) --target $(TSAN_TARGETS)
	$(call sanitized_ctest,$(TSAN_BUILD),-L '^($(TSAN_TESTS))$$')

$(FUZZ_BUILD)/build.ninja:
	@bash scripts/deps.sh
	cmake -S . -B $(FUZZ_BUILD) $(SAN_CMAKE) -DAETHER_FUZZ=ON \
	  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++

fuzz: $(FUZZ_BUILD)/build.ninja
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target aether_fuzzers
	bash tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-ci:
	$(MAKE) fuzz FUZZ_SECONDS=30

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) $(FUZZ_BUILD)
