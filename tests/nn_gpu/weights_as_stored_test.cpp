// Weights enter the GPU as stored in the model file: every Weights buffer holds exactly a
// byte range of the model file (then zeros), and the prepare jobs that derive what the
// kernels read (fp16 -> fp32, packed layouts, folded BatchNorm) compute exactly what the
// CPU reference computes from the decoded values.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <set>

#include "nn/cpu_reference.h"
#include "nn/model_zoo.h"
#include "nn/ncnn_loader.h"
#include "runtime/command_buffer.h"
#include "test_util.h"
#include "tests/common/sanitized.h"

namespace rplayer::nn {
namespace {

using testing::GpuStack;
using testing::kShared;

// Every buffer a dispatch of the prepare phase or the inference touches.
std::set<uint32_t> touched_buffers(const GpuExecutor& gpu) {
  std::set<uint32_t> bos;
  for (const runtime::CommandBuffer* cb : {&gpu.prepare_command_buffer(), &gpu.command_buffer()})
    for (const auto& d : cb->dispatches()) bos.insert(d.bos.begin(), d.bos.end());
  return bos;
}

const uint8_t* cpu_view(GpuStack& s, uint32_t handle) {
  uint8_t* p = nullptr;
  uint32_t size = 0;
  EXPECT_EQ(s.drv->mmap_bo(handle, &p, &size), 0);
  return p;
}

// Checks every Weights buffer against the model file its source names; returns their
// total size (page-rounded).
uint64_t expect_weights_are_file_ranges(GpuStack& s, const GpuExecutor& gpu) {
  std::map<std::string, std::vector<uint8_t>> files;
  uint64_t total = 0;
  size_t weights = 0;
  for (uint32_t h : touched_buffers(gpu)) {
    const driver::BoInfo* info = s.drv->bo_info(h);
    if (!info || info->usage != driver::BoUsage::Weights) continue;
    ++weights;
    total += info->size;
    EXPECT_FALSE(info->gpu_writable) << info->label;
    const driver::WeightSource* src = info->weight_source;
    if (!src) {
      ADD_FAILURE() << info->label << ": a Weights buffer without a model-file source";
      continue;
    }
    const std::string model(src->model);
    if (!files.count(model)) files[model] = read_file_bytes(model);
    const std::vector<uint8_t>& file = files[model];
    if (src->offset + src->length > file.size() || src->length > info->size) {
      ADD_FAILURE() << info->label << ": source range does not fit the file or the buffer";
      continue;
    }
    const uint8_t* bytes = cpu_view(s, h);
    EXPECT_EQ(std::memcmp(bytes, file.data() + src->offset, src->length), 0)
        << info->label << ": differs from " << model << " at " << src->offset;
    for (uint32_t i = uint32_t(src->length); i < info->size; ++i)
      if (bytes[i] != 0) {
        ADD_FAILURE() << info->label << ": byte " << i << " past the stored range is not zero";
        break;
      }
  }
  EXPECT_GT(weights, 0u);
  EXPECT_EQ(total, gpu.weights_bytes());
  return total;
}

class WeightsAsStored : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { setenv("RPLAYER_MODELS", (kShared + "/models").c_str(), 1); }
};

TEST_P(WeightsAsStored, EveryWeightsBufferIsAModelFileRange) {
  const Model m = load_model(GetParam());
  GpuStack s("v3d-7.1");
  const GpuExecutor gpu(m.graph, *s.dev);
  const auto in = testing::make_inputs(m.graph, 3, 0.f, 1.f);
  const auto got = gpu.run(in);
  // After a run too: the GPU cannot have written them (read-only), and the CPU did not.
  const uint64_t bytes = expect_weights_are_file_ranges(s, gpu);
  const GpuRunStats st = gpu.last_run_stats();
  std::printf("%s: %zu prepare jobs (%.1f ms), %zu inference jobs (%.1f ms); Weights %.2f MB\n",
              GetParam().c_str(), size_t(st.prepare_dispatches), st.prepare_ms,
              size_t(st.dispatches - st.prepare_dispatches), st.submit_wait_ms, bytes / 1e6);
  EXPECT_GT(st.prepare_dispatches, 0u);
  if (GetParam() == "squeezenet") {
    // Stored once, as fp16 (2.48 MB in the .bin), not expanded to fp32.
    EXPECT_LE(bytes, 2'700'000u);
  }
  const auto want = CpuExecutor(m.graph).run(in);
  for (const auto& [name, t] : want) EXPECT_TRUE(testing::close(got.at(name), t, 0, 0)) << name;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Prints the prepare phase's GPU time and jobs beside the inference's, in the same runs
// (the median of 5, each asked to prepare again). docs/ARCHITECTURE.md ("Weights") quotes
// these numbers.
TEST_P(WeightsAsStored, PrepareCostBesideTheInference) {
  if (testing::kQuick && GetParam().rfind("bench/", 0) == 0) GTEST_SKIP() << "quick build";
  if (test::kSanitized && GetParam() == "squeezenet") {
    GTEST_SKIP() << test::kPlainBuildOnly;
  }
  const Model m = load_model(GetParam());
  GpuStack s("v3d-7.1");
  GpuExecutor gpu(m.graph, *s.dev);
  const auto in = testing::make_inputs(m.graph, 3, 0.f, 1.f);
  std::vector<double> prepare_ms, inference_ms;
  for (int i = 0; i < 5; ++i) {
    gpu.prepare_again();
    gpu.run(in);
    const GpuRunStats st = gpu.last_run_stats();
    EXPECT_EQ(st.prepare_dispatches, gpu.num_prepare_dispatches());
    prepare_ms.push_back(st.prepare_ms);
    inference_ms.push_back(st.submit_wait_ms);
  }
  std::printf("%s: prepare %zu jobs %.1f ms (median of 5; min %.1f), inference %zu jobs %.1f ms "
              "(min %.1f): prepare/inference %.1f%%\n",
              GetParam().c_str(), gpu.num_prepare_dispatches(), median(prepare_ms),
              *std::min_element(prepare_ms.begin(), prepare_ms.end()),
              gpu.num_dispatches() - gpu.num_prepare_dispatches(), median(inference_ms),
              *std::min_element(inference_ms.begin(), inference_ms.end()),
              100 * median(prepare_ms) / median(inference_ms));
}

INSTANTIATE_TEST_SUITE_P(Models, WeightsAsStored,
                         ::testing::Values("squeezenet", "mnist", "mnist-onnx",
                                           "bench/mobilenet_v2"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n)
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           return n;
                         });

TEST(PrepareKernels, HalfConversionRoundTrips) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) continue;  // NaN payloads are quietened
    EXPECT_EQ(float_to_half(half_to_float(uint16_t(h))), h) << std::hex << h;
  }
  EXPECT_EQ(float_to_half(1.f + 1.f / 4096), 0x3c00);  // a tie rounds to even
  EXPECT_EQ(float_to_half(65520.f), 0x7c00);
}

const driver::BoInfo* find_buffer(GpuStack& s, const GpuExecutor& gpu, const std::string& label) {
  for (uint32_t h : touched_buffers(gpu)) {
    const driver::BoInfo* info = s.drv->bo_info(h);
    if (info && info->label == label) return info;
  }
  return nullptr;
}

// fp16 weights through every packing (grouped, depthwise, 1x1, fully connected with a K
// tail, a partial channel block) and a BatchNorm: the GPU's results are the CPU's bits.
TEST(PrepareKernels, Fp16WeightsGiveTheCpuResults) {
  Graph g = parse_ncnn_param(
      "7767517\n8 8\n"
      "Input in 0 1 data 0=13 1=11 2=6\n"
      "Convolution c0 1 1 data a 0=20 1=3 4=1 5=1 6=1080\n"
      "ConvolutionDepthWise dw 1 1 a b 0=20 1=3 5=1 6=180 7=20\n"
      "BatchNorm bn 1 1 b c 0=20 1=0.001\n"
      "ConvolutionDepthWise g2 1 1 c d 0=10 1=1 5=1 6=100 7=2\n"
      "Convolution g2b 1 1 d e 0=10 1=1 5=0 6=100\n"
      "Pooling p 1 1 e f 0=1 4=1\n"
      "InnerProduct fc 1 1 f out 0=7 1=1 2=70\n",
      "fp16.param");
  generate_weights(g, 11);
  for (Layer& l : g.layers())
    if (l.type == "BatchNorm")
      for (float& v : l.weights[2].values()) v = std::abs(v);  // variances
  parse_ncnn_bin(g, ncnn_bin_bytes(g, StorageType::kFloat16), "fp16.bin");
  ASSERT_EQ(g.layer(g.find_layer("c0")).weight("weight")->source()->storage,
            StorageType::kFloat16);
  g.infer_shapes();
  GpuExecutorOptions opts;
  for (const Blob& b : g.blobs()) opts.keep_blobs.push_back(b.name);
  GpuStack s("v3d-7.1");
  const GpuExecutor gpu(g, *s.dev, opts);
  std::vector<std::string> all;
  for (const Blob& b : g.blobs()) all.push_back(b.name);
  const auto in = testing::make_inputs(g, 4);
  const auto got = gpu.run(in, all);
  const auto want = CpuExecutor(g).run(in, all);
  for (const auto& [name, t] : want) EXPECT_TRUE(testing::close(got.at(name), t, 0, 0)) << name;

  // The folded BatchNorm is the CPU's formula, bit for bit.
  const Layer& bn = g.layer(g.find_layer("bn"));
  const float eps = bn.params.get_float(1, 0.f);
  const driver::BoInfo* mul = find_buffer(s, gpu, "bn/scale");
  const driver::BoInfo* add = find_buffer(s, gpu, "bn/shift");
  ASSERT_TRUE(mul && add);
  const float* m = reinterpret_cast<const float*>(cpu_view(s, mul->handle));
  const float* a = reinterpret_cast<const float*>(cpu_view(s, add->handle));
  for (int i = 0; i < 20; ++i) {
    const float sv = std::sqrt((*bn.weight("var"))[i] + eps);
    const float want_add = (*bn.weight("bias"))[i] - (*bn.weight("slope"))[i] *
                                                         (*bn.weight("mean"))[i] / sv;
    const float want_mul = (*bn.weight("slope"))[i] / sv;
    EXPECT_EQ(std::memcmp(&m[i], &want_mul, 4), 0) << i;
    EXPECT_EQ(std::memcmp(&a[i], &want_add, 4), 0) << i;
  }

  // The fully connected weights: fp16 widened exactly into the fc kernel's layout (blocks
  // of 16 outputs, K/4 groups of [lane][4 k], then the K % 4 tail as [k][lane]).
  const Tensor& w = *g.layer(g.find_layer("fc")).weight("weight");
  const driver::BoInfo* packed = find_buffer(s, gpu, "fc/weight.packed");
  ASSERT_TRUE(packed);
  const float* p = reinterpret_cast<const float*>(cpu_view(s, packed->handle));
  const int M = 7, K = 10, k4 = K / 4;
  for (int lane = 0; lane < 16; ++lane)
    for (int k = 0; k < K; ++k) {
      const float want_w = lane < M ? w[size_t(lane) * K + k] : 0.f;
      const size_t at = k < 4 * k4 ? size_t(k / 4) * 64 + lane * 4 + k % 4
                                   : size_t(k4) * 64 + (k - 4 * k4) * 16 + lane;
      EXPECT_EQ(std::memcmp(&p[at], &want_w, 4), 0) << "m " << lane << " k " << k;
    }
}

}  // namespace
}  // namespace rplayer::nn
