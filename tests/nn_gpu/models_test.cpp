// Whole networks on the GPU against the CPU reference: SqueezeNet v1.1 and MNIST with
// their real weights (classification results), and ncnn's benchmark graphs with
// generated weights.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "nn/model_zoo.h"
#include "nn/preprocess.h"
#include "test_util.h"

namespace rplayer::nn {
namespace {

using testing::GpuStack;
using testing::kShared;

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

class ModelsTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { setenv("RPLAYER_MODELS", (kShared + "/models").c_str(), 1); }
};

TEST_P(ModelsTest, SqueezeNetClassifiesTheCat) {
  if (testing::kQuick && GetParam() != "v3d-7.1") GTEST_SKIP() << "sanitizer build";
  const Model m = load_model("squeezenet");
  GpuStack s(GetParam());
  auto t0 = std::chrono::steady_clock::now();
  const GpuExecutor gpu(m.graph, *s.dev);
  const double construct_ms = ms_since(t0);
  const Tensor in = preprocess_image(kShared + "/images/cat.ppm", m.info.preprocess,
                                     m.info.input_shape.w, m.info.input_shape.h);
  t0 = std::chrono::steady_clock::now();
  const Tensor prob = gpu.run(m.info.input_blob, in, m.info.output_blob);
  const double first_ms = ms_since(t0);
  t0 = std::chrono::steady_clock::now();
  const int warm_runs = testing::kQuick ? 1 : 3;
  for (int i = 0; i < warm_runs; ++i) gpu.run(m.info.input_blob, in, m.info.output_blob);
  const double warm_ms = ms_since(t0) / warm_runs;
  const hw::GpuStats st0 = s.soc.gpu().stats();
  gpu.run(m.info.input_blob, in, m.info.output_blob);
  const hw::GpuStats st1 = s.soc.gpu().stats();
  // Timings for the record (the suite runs on a shared machine: not asserted).
  std::printf(
      "SqueezeNet v1.1 on %s: construct %.1f ms + first run %.1f ms, warm %.1f ms; "
      "%zu dispatches, %zu kernels, %.1f M QPU instructions per run\n",
      GetParam().c_str(), construct_ms, first_ms, warm_ms, gpu.num_dispatches(), gpu.num_kernels(),
      double(st1.qpu_instructions - st0.qpu_instructions) / 1e6);
  RecordProperty("cold_ms", std::to_string(construct_ms + first_ms));
  RecordProperty("warm_ms", std::to_string(warm_ms));
  const auto top = top_k(prob, 3);
  EXPECT_EQ(top[0].first, 281);
  EXPECT_EQ(top[1].first, 285);
  EXPECT_EQ(top[2].first, 282);
  const Tensor cpu = CpuExecutor(m.graph).run(m.info.input_blob, in, m.info.output_blob);
  EXPECT_TRUE(testing::close(prob, cpu, 0, 0));
}

TEST_P(ModelsTest, SqueezeNetCatJpgIsACat) {
  if (testing::kQuick) GTEST_SKIP() << "sanitizer build";
  const Model m = load_model("squeezenet");
  GpuStack s(GetParam());
  const GpuExecutor gpu(m.graph, *s.dev);
  const Tensor in = preprocess_image(kShared + "/images/cat.jpg", m.info.preprocess,
                                     m.info.input_shape.w, m.info.input_shape.h);
  const Tensor prob = gpu.run(m.info.input_blob, in, m.info.output_blob);
  const int top = top_k(prob, 1)[0].first;
  EXPECT_GE(top, 281) << m.labels[top];
  EXPECT_LE(top, 285) << m.labels[top];
  EXPECT_TRUE(testing::close(
      prob, CpuExecutor(m.graph).run(m.info.input_blob, in, m.info.output_blob), 0, 0));
}

void expect_digits(const std::string& model, const std::string& sku) {
  const Model m = load_model(model);
  GpuStack s(sku);
  const GpuExecutor gpu(m.graph, *s.dev);
  for (int digit = 0; digit < 10; digit++) {
    const Tensor in =
        preprocess_image(kShared + "/images/digits/" + std::to_string(digit) + ".pgm",
                         m.info.preprocess, m.info.input_shape.w, m.info.input_shape.h);
    const Tensor scores = gpu.run(m.info.input_blob, in, m.info.output_blob);
    EXPECT_EQ(top_k(scores, 1)[0].first, digit) << model << " on digit " << digit;
    EXPECT_TRUE(testing::close(
        scores, CpuExecutor(m.graph).run(m.info.input_blob, in, m.info.output_blob), 0, 0));
  }
}

TEST_P(ModelsTest, MnistNcnnClassifiesAllDigits) { expect_digits("mnist", GetParam()); }
TEST_P(ModelsTest, MnistOnnxClassifiesAllDigits) { expect_digits("mnist-onnx", GetParam()); }

INSTANTIATE_TEST_SUITE_P(Skus, ModelsTest, ::testing::Values("v3d-7.1", "v3d-4.2"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n)
                             if (c == '-' || c == '.') c = '_';
                           return n;
                         });

}  // namespace
}  // namespace rplayer::nn
