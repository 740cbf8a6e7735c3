# Quick start on Debian 12: `make demo` and `make test`. Both install what they need.
BUILD ?= build
BUILD_SAN ?= build-san
JOBS ?= $(shell nproc)
# Debian packages the build and tests use.
APT_PACKAGES := build-essential cmake ninja-build pkg-config libgtest-dev libgmock-dev \
  libbenchmark-dev libcli11-dev nlohmann-json3-dev libonnx-dev libprotobuf-dev \
  protobuf-compiler libstb-dev libonnx-testdata
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps configure build test test-sanitize demo bench clean

all: build

deps:
	@missing=$$(for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "install ok installed" || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:" $$missing; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(BUILD)/build.ninja: | deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

test: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

# The same tests under AddressSanitizer + UndefinedBehaviorSanitizer.
test-sanitize: deps
	cmake -S . -B $(BUILD_SAN) -G Ninja -DCMAKE_BUILD_TYPE=Release -DRPLAYER_SANITIZE=ON
	cmake --build $(BUILD_SAN) -j $(JOBS)
	ctest --test-dir $(BUILD_SAN) --output-on-failure -j $(JOBS)

# Until the driver and NN stack land (issue: normal-world GPU stack), the demo shows
# the modeled SoC: its SKUs and the QPU toolchain on an example kernel.
demo: build
	./$(BUILD)/rplayer devices
	./$(BUILD)/rplayer asm docs/examples/vector_add.s -o $(BUILD)/vector_add.bin
	./$(BUILD)/rplayer disasm $(BUILD)/vector_add.bin

bench: build
	./$(BUILD)/bench/qpu_bench --benchmark_format=json

clean:
	rm -rf $(BUILD) $(BUILD_SAN)
