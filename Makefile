# aether: thin wrapper over CMake + Ninja.
#   make run    install what is missing, build, start the host on config/aether.yaml
#   make test   install what is missing, build, run every test (ctest)
#   make bench  build and run the benchmarks, printing ratios for BENCHMARKS.md
BUILD ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
CONFIG ?= config/aether.yaml

.PHONY: all deps configure build run test bench clean

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

bench: build
	bash scripts/bench.sh $(BUILD)

clean:
	rm -rf $(BUILD)
