# Quick start on Debian 12: `make demo` and `make test`. Both install what they need.
BUILD ?= build
BUILD_SAN ?= build-san
BUILD_FUZZ ?= build-fuzz
FUZZ_SECONDS ?= 60
JOBS ?= $(shell nproc)
# Debian packages the build and tests use.
APT_PACKAGES := build-essential cmake ninja-build pkg-config libgtest-dev libgmock-dev \
  libbenchmark-dev libcli11-dev nlohmann-json3-dev libonnx-dev libprotobuf-dev \
  protobuf-compiler libstb-dev libonnx-testdata libsodium-dev libzstd-dev libxxhash-dev \
  libseccomp-dev clang-format
# The fuzzers' compiler and libFuzzer (make fuzz only).
FUZZ_APT_PACKAGES := clang-14 libclang-rt-14-dev
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps fuzz-deps configure build test test-sanitize fuzz-build fuzz fuzz-smoke demo demo-cloud bench clean

all: build

# $(call install_missing,PACKAGES): apt-get install those not installed yet.
define install_missing
	@missing=$$(for p in $(1); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "install ok installed" || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:" $$missing; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef

deps:
	$(call install_missing,$(APT_PACKAGES))

fuzz-deps: deps
	$(call install_missing,$(FUZZ_APT_PACKAGES))

$(BUILD)/build.ninja: | deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

test: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

# The same tests under AddressSanitizer + UndefinedBehaviorSanitizer, where the interpreter
# is ~30x slower: 4 instead of 100 replayed SqueezeNet inputs, and the SqueezeNet cases of
# the cloud and weight-cost tests skip themselves (tests/common/sanitized.h; their MNIST
# cases run). The benchmarks are not built.
test-sanitize: deps
	cmake -S . -B $(BUILD_SAN) -G Ninja -DCMAKE_BUILD_TYPE=Release -DRPLAYER_SANITIZE=ON -DRPLAYER_BENCH=OFF
	cmake --build $(BUILD_SAN) -j $(JOBS)
	RPLAYER_REPLAY_INPUTS=4 ctest --test-dir $(BUILD_SAN) --output-on-failure -j $(JOBS)

# libFuzzer targets (fuzz/, docs/threat-model.md "Fuzzing"): a clang build of only the
# libraries they need, under ASan + UBSan, in $(BUILD_FUZZ). `make fuzz` runs every target
# for FUZZ_SECONDS each with seeds made at fuzz time (recordings from $(BUILD)/rplayer and
# the modeled SoC, models and images from ../shared) and prints executions, coverage and
# crashes per target, then "N passed, N failed". `make fuzz-smoke`: a few seconds each (CI).
fuzz-build: fuzz-deps
	@test -f $(BUILD_FUZZ)/build.ninja || CC=clang-14 CXX=clang++-14 cmake -S . -B $(BUILD_FUZZ) \
	  -G Ninja -DCMAKE_BUILD_TYPE=Release -DRPLAYER_FUZZ=ON
	cmake --build $(BUILD_FUZZ) -j $(JOBS)

fuzz: build fuzz-build
	FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_BUILD=$(BUILD_FUZZ) RPLAYER=$(BUILD)/rplayer fuzz/run.sh

fuzz-smoke:
	$(MAKE) fuzz FUZZ_SECONDS=8

# The main job: record SqueezeNet on the full GPU stack (modeled V3D 7.1), sign the
# recording, verify it, then classify ../shared/images/cat.jpg in the TEE: the SoC and
# the sandboxed TEE run as processes, the replay TA loads the signed recording, decodes
# the image inside the secure world and returns the top-5 classes.
DEMO_IMAGE ?= ../shared/images/cat.jpg
export RPLAYER_KEYS ?= $(BUILD)/keys
demo: build
	@test -f $(RPLAYER_KEYS)/signing.key || ./$(BUILD)/rplayer keygen
	./$(BUILD)/rplayer record --model squeezenet -o $(BUILD)/squeezenet.rec
	./$(BUILD)/rplayer verify $(BUILD)/squeezenet.rec
	./$(BUILD)/rplayer classify --tee --recording $(BUILD)/squeezenet.rec --tee-dir $(BUILD)/tee-run $(DEMO_IMAGE)

# Cloud recording on one machine (scripts/demo_cloud.sh): rplayer-cloud serves, a relay adds
# 20 ms of round-trip time, the device records SqueezeNet through it with its TEE driving
# its GPU, then classifies cat.jpg in the TEE with that recording and its own weights.
demo-cloud: build
	@test -f $(RPLAYER_KEYS)/signing.key -a -f $(RPLAYER_KEYS)/device.key || ./$(BUILD)/rplayer keygen
	BUILD=$(BUILD) DEMO_IMAGE=$(DEMO_IMAGE) scripts/demo_cloud.sh

bench: build
	./$(BUILD)/bench/qpu_bench --benchmark_format=json
	./$(BUILD)/bench/inference_bench --json --models squeezenet,mnist,mnist-onnx
	./$(BUILD)/bench/replay_bench --json --models squeezenet,mnist
	./$(BUILD)/bench/tee_bench --json

clean:
	rm -rf $(BUILD) $(BUILD_SAN) $(BUILD_FUZZ)
