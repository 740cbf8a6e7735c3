// Shared by the nn_gpu tests: a modeled SoC with the driver and a runtime Device on it,
// graphs written as ncnn .param text, and GPU-vs-CPU comparison.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "driver/hw_io.h"
#include "driver/v3d_driver.h"
#include "hw/soc.h"
#include "nn/cpu_reference.h"
#include "nn/gpu/gpu_executor.h"
#include "nn/graph.h"
#include "nn/ncnn_loader.h"
#include "nn/weight_generator.h"
#include "runtime/device.h"

namespace rplayer::nn::testing {

inline const std::string kShared = RPLAYER_SHARED_DIR;

// Sanitizer builds interpret the QPU far slower: tests then skip their big graphs.
#ifdef RPLAYER_NN_GPU_QUICK
inline constexpr bool kQuick = true;
#else
inline constexpr bool kQuick = false;
#endif

// The full stack the GPU executor runs on: SoC model, driver, runtime device.
struct GpuStack {
  explicit GpuStack(const std::string& sku, uint64_t dram_bytes = 256ull << 20)
      : soc(config(sku, dram_bytes)), io(soc.port(hw::World::Normal)) {
    std::string err;
    drv = driver::V3dDriver::probe(io, {}, &err);
    if (!drv) throw std::runtime_error("driver probe failed: " + err);
    dev = std::make_unique<runtime::Device>(*drv);
  }
  static hw::SocConfig config(const std::string& sku, uint64_t dram_bytes) {
    hw::SocConfig c;  // default timing and device threads, as benchmarks use
    c.sku = sku;
    c.normal_bytes = dram_bytes;
    c.secure_bytes = 16ull << 20;
    return c;
  }

  hw::ModeledSoc soc;
  driver::DirectHwIo io;
  std::unique_ptr<driver::V3dDriver> drv;
  std::unique_ptr<runtime::Device> dev;
};

// A graph from ncnn .param lines (without the magic and count header), shapes inferred,
// weights generated from `seed`.
inline Graph make_graph(const std::vector<std::string>& lines, uint64_t seed = 1,
                        const std::map<std::string, Shape>& input_shapes = {}) {
  std::ostringstream text;
  text << "7767517\n" << lines.size() << " " << lines.size() * 8 + 8 << "\n";
  for (const std::string& l : lines) text << l << "\n";
  Graph g = parse_ncnn_param(text.str(), "test.param");
  generate_weights(g, seed);
  // Read back from .bin bytes, so that the weights have a stored range like a model's and
  // the GPU takes them through the prepare phase.
  parse_ncnn_bin(g, ncnn_bin_bytes(g), "test.bin");
  g.infer_shapes(input_shapes);
  return g;
}

// Deterministic inputs in [lo, hi) for every input blob of the graph.
inline std::map<std::string, Tensor> make_inputs(const Graph& g, uint32_t seed, float lo = -1.f,
                                                 float hi = 1.f) {
  std::map<std::string, Tensor> in;
  uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
  for (int b : g.input_blobs()) {
    Tensor t(g.blob(b).shape, 0.f, g.blob(b).name);
    for (float& v : t.values()) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      v = lo + (hi - lo) * float(s >> 40) / float(1 << 24);
    }
    in.emplace(g.blob(b).name, std::move(t));
  }
  return in;
}

struct Diff {
  double max_abs = 0;     // largest |gpu - cpu|
  double max_rel = 0;     // largest |gpu - cpu| / max |cpu| of the tensor
  size_t mismatches = 0;  // elements not bit-identical (NaNs compare by NaN-ness)
};

inline Diff compare(const Tensor& gpu, const Tensor& cpu) {
  Diff d;
  EXPECT_EQ(gpu.shape(), cpu.shape()) << cpu.name();
  if (gpu.size() != cpu.size()) {
    d.mismatches = std::max(gpu.size(), cpu.size());
    d.max_abs = d.max_rel = INFINITY;
    return d;
  }
  double scale = 0;
  for (float v : cpu.values()) scale = std::max(scale, double(std::fabs(v)));
  for (size_t i = 0; i < cpu.size(); ++i) {
    const float a = gpu[i], b = cpu[i];
    if (std::isnan(a) && std::isnan(b)) continue;
    if (a != b) ++d.mismatches;
    const double e = std::isnan(a) != std::isnan(b) ? INFINITY : std::fabs(double(a) - b);
    d.max_abs = std::max(d.max_abs, e);
  }
  d.max_rel = scale > 0 ? d.max_abs / scale : d.max_abs;
  return d;
}

// |gpu - cpu| <= rtol * |cpu| + atol element-wise; rtol = atol = 0 demands identity.
inline ::testing::AssertionResult close(const Tensor& gpu, const Tensor& cpu, double rtol,
                                        double atol) {
  if (gpu.size() != cpu.size() || gpu.shape() != cpu.shape())
    return ::testing::AssertionFailure()
           << cpu.name() << ": shape " << gpu.shape().str() << " vs " << cpu.shape().str();
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < cpu.size(); ++i) {
    const float a = gpu[i], b = cpu[i];
    if (std::isnan(a) && std::isnan(b)) continue;
    const bool ok =
        rtol == 0 && atol == 0 ? a == b : std::fabs(double(a) - b) <= rtol * std::fabs(b) + atol;
    if (!ok && bad++ == 0) first = i;
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << cpu.name() << ": " << bad << " of " << cpu.size() << " elements differ, first at "
         << first << ": gpu " << gpu[first] << " cpu " << cpu[first];
}

}  // namespace rplayer::nn::testing
