# Quick start on Debian 12: `make demo` and `make test`. Both install what they need.
BUILD ?= build
BUILD_SAN ?= build-san
JOBS ?= $(shell nproc)
# Debian packages the build and tests use.
APT_PACKAGES := build-essential cmake ninja-build pkg-config libgtest-dev libgmock-dev \
  libbenchmark-dev libcli11-dev nlohmann-json3-dev libonnx-dev libprotobuf-dev \
  protobuf-compiler libstb-dev libonnx-testdata libsodium-dev libzstd-dev libxxhash-dev \
  libseccomp-dev clang-format
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

# The same tests under AddressSanitizer + UndefinedBehaviorSanitizer (with 10 instead of
# 100 replayed SqueezeNet inputs: the sanitizers make the interpreter ~5x slower).
test-sanitize: deps
	cmake -S . -B $(BUILD_SAN) -G Ninja -DCMAKE_BUILD_TYPE=Release -DRPLAYER_SANITIZE=ON
	cmake --build $(BUILD_SAN) -j $(JOBS)
	RPLAYER_REPLAY_INPUTS=10 ctest --test-dir $(BUILD_SAN) --output-on-failure -j $(JOBS)

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

bench: build
	./$(BUILD)/bench/qpu_bench --benchmark_format=json
	./$(BUILD)/bench/inference_bench --json --models squeezenet,mnist,mnist-onnx
	./$(BUILD)/bench/replay_bench --json --models squeezenet,mnist
	./$(BUILD)/bench/tee_bench --json

clean:
	rm -rf $(BUILD) $(BUILD_SAN)
