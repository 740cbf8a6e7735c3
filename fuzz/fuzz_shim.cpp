// Target 7: the device's GPUShim (cloud recording) on the modeled SoC, under the pool oracle.
//
// The input is a sequence of request frames, each behind a u16 little-endian length; they
// are applied in order to one session (a refusal ends it; the rest are then refused as
// "no session"). Oracles: the GPU touches no physical page outside the session's pool and
// starts no job with the MMU off (test::PoolOracle aborts), and after the session is
// closed the pool is all zero. The SoC is reused across executions: every session starts
// with a GPU reset and a scrubbed pool.
//
// Executions stay short: a 6 MiB pool, 20 ms polls and interrupt waits in 5 ms slices.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>
#include <vector>

#include "hw/soc.h"
#include "hw/v3d_regs.h"
#include "tee/gpu_shim.h"
#include "tests/common/pool_oracle.h"

using namespace rplayer;

namespace {

constexpr uint64_t kPoolBytes = 6ull << 20;

struct Target {
  explicit Target(const char* sku) : soc(config(sku)) {
    hw::SocPort& port = soc.port(hw::World::Secure);
    port.write32(hw::RegBlock::Tzpc, v3d::TZPC_GPU_SECURE, 1);
    for (int i = 0; i < 1000 && !soc.gpu().secure(); ++i)
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    if (!soc.gpu().secure()) std::abort();
    tee::GpuShimConfig c;
    c.port = &port;
    c.pool_pa = soc.memory().secure_base();
    c.pool_bytes = kPoolBytes;
    c.max_poll_us = 20'000;
    c.max_wait_us = 20'000;
    c.slice_us = 5'000;
    c.limits.max_frame_bytes = 1u << 16;
    c.limits.max_ops = 4096;
    shim = std::make_unique<tee::GpuShim>(c);
    oracle = std::make_unique<test::PoolOracle>(soc.gpu(), c.pool_pa, kPoolBytes, true);
  }
  static hw::SocConfig config(const char* sku) {
    hw::SocConfig c;
    c.sku = sku;
    c.normal_bytes = 16ull << 20;
    c.secure_bytes = 8ull << 20;
    c.timing.scale = 0.25;
    return c;
  }
  hw::ModeledSoc soc;
  std::unique_ptr<tee::GpuShim> shim;
  std::unique_ptr<test::PoolOracle> oracle;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Target targets[2] = {Target("v3d-7.1"), Target("v3d-4.2")};
  if (size < 1) return 0;
  Target& t = targets[data[0] & 1];
  ++data, --size;
  link::ShimHello hello;
  std::string why;
  if (!t.shim->open(&hello, &why)) std::abort();  // the device itself must always open
  std::vector<uint8_t> reply;
  while (size >= 2) {
    const size_t n = size_t(data[0]) | size_t(data[1]) << 8;
    data += 2, size -= 2;
    const size_t take = n < size ? n : size;
    tee::GpuShim::Step s = t.shim->exchange({data, take}, &reply);
    for (int i = 0; s == tee::GpuShim::Step::Pending && i < 64; ++i) s = t.shim->resume(&reply);
    if (s == tee::GpuShim::Step::Pending) std::abort();  // waits are bounded: never stuck
    data += take, size -= take;
    if (s == tee::GpuShim::Step::Refused) break;
  }
  t.shim->close();
  if (!t.shim->pool_is_clean()) {
    std::fprintf(stderr, "pool not scrubbed after the session\n");
    std::abort();
  }
  return 0;
}
