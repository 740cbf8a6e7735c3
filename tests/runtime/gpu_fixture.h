// A modeled SoC with the driver and a runtime Device on it, for one SKU.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "driver/v3d_driver.h"
#include "hw/soc.h"
#include "runtime/command_buffer.h"
#include "runtime/device.h"
#include "runtime/jit/builder.h"
#include "runtime/jit/compiler.h"

namespace rplayer::runtime::testing {

inline hw::SocConfig small_soc(const std::string& sku) {
  hw::SocConfig c;
  c.sku = sku;
  c.normal_bytes = 96ull << 20;
  c.secure_bytes = 16ull << 20;
  c.timing.scale = 0.5;
  return c;
}

struct Gpu {
  explicit Gpu(const std::string& sku, const driver::DriverOptions& opts = {})
      : soc(small_soc(sku)), io(soc.port(hw::World::Normal)) {
    std::string err;
    drv = driver::V3dDriver::probe(io, opts, &err);
    if (!drv) throw std::runtime_error("probe failed: " + err);
    dev = std::make_unique<Device>(*drv);
  }
  Buffer floats(const std::vector<float>& v, driver::BoUsage usage = driver::BoUsage::Input,
                const std::string& label = "data") {
    return dev->upload_buffer(v, usage, label);
  }
  Buffer zeros(size_t n, const std::string& label = "out") {
    return dev->create_buffer(uint32_t(n * 4), driver::BoUsage::Output, label);
  }

  hw::ModeledSoc soc;
  driver::DirectHwIo io;
  std::unique_ptr<driver::V3dDriver> drv;
  std::unique_ptr<Device> dev;
};

inline std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.0f,
                                        float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// Runs one dispatch and waits.
inline void run(Device& dev, const jit::Kernel& k, const Grid& grid, const std::vector<Arg>& args,
                const jit::Specialization& spec = {}) {
  CommandBuffer cb(dev, k.name);
  cb.dispatch(k, grid, args, spec);
  cb.submit();
  cb.wait();
}

class GpuTest : public ::testing::TestWithParam<std::string> {
 protected:
  GpuTest() : gpu(GetParam()) {}
  Device& dev() { return *gpu.dev; }
  Gpu gpu;
};

inline std::string sku_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string s = info.param;
  for (char& c : s)
    if (c == '-' || c == '.') c = '_';
  return s;
}

#define RPLAYER_ALL_SKUS(Suite) \
  INSTANTIATE_TEST_SUITE_P(Skus, Suite, ::testing::Values("v3d-7.1", "v3d-4.2"), sku_name)

}  // namespace rplayer::runtime::testing
