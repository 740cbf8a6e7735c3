// End-to-end classification with real weights on the CPU reference: SqueezeNet v1.1
// (ImageNet) and the ncnn / ONNX MNIST models, through the model registry.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>

#include "nn/cpu_reference.h"
#include "nn/model_error.h"
#include "nn/model_zoo.h"
#include "nn/preprocess.h"

namespace rplayer::nn {
namespace {

const std::string kShared = RPLAYER_SHARED_DIR;

class ModelsTest : public ::testing::Test {
 protected:
  void SetUp() override { setenv("RPLAYER_MODELS", (kShared + "/models").c_str(), 1); }
};

Tensor classify(const Model& m, const std::string& image) {
  const Tensor in = preprocess_image(image, m.info.preprocess, m.info.input_shape.w,
                                     m.info.input_shape.h);
  return CpuExecutor(m.graph).run(m.info.input_blob, in, m.info.output_blob);
}

TEST_F(ModelsTest, SqueezeNetCatPpmTop3) {
  const Model m = load_model("squeezenet");
  ASSERT_EQ(m.labels.size(), 1000u);
  EXPECT_EQ(m.graph.blob_shape("prob"), Shape::vec(1000));
  const auto t0 = std::chrono::steady_clock::now();
  const Tensor prob = classify(m, kShared + "/images/cat.ppm");
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  RecordProperty("squeezenet_cpu_ms", std::to_string(ms));
  std::printf("SqueezeNet v1.1 on the CPU reference: %.1f ms\n", ms);
  ASSERT_EQ(prob.size(), 1000u);
  const auto top = top_k(prob, 3);
  EXPECT_EQ(top[0].first, 281) << m.labels[top[0].first];
  EXPECT_EQ(top[1].first, 285) << m.labels[top[1].first];
  EXPECT_EQ(top[2].first, 282) << m.labels[top[2].first];
  EXPECT_NE(m.labels[281].find("tabby"), std::string::npos);
  float sum = 0.f;
  for (float v : prob.values()) sum += v;
  EXPECT_NEAR(sum, 1.f, 1e-3f);
}

TEST_F(ModelsTest, SqueezeNetCatJpgIsACat) {
  const Model m = load_model("squeezenet");
  const auto top = top_k(classify(m, kShared + "/images/cat.jpg"), 1);
  EXPECT_GE(top[0].first, 281) << m.labels[top[0].first];
  EXPECT_LE(top[0].first, 285) << m.labels[top[0].first];
}

void expect_digits(const Model& m) {
  for (int digit = 0; digit < 10; digit++) {
    const Tensor scores =
        classify(m, kShared + "/images/digits/" + std::to_string(digit) + ".pgm");
    ASSERT_EQ(scores.size(), 10u);
    EXPECT_EQ(top_k(scores, 1)[0].first, digit) << m.info.name << " on digit " << digit;
  }
}

TEST_F(ModelsTest, MnistNcnnClassifiesAllDigits) {
  const Model m = load_model("mnist");
  EXPECT_EQ(m.graph.blob_shape("fc"), Shape::vec(10));
  expect_digits(m);
}

TEST_F(ModelsTest, MnistOnnxClassifiesAllDigits) {
  const Model m = load_model("mnist-onnx");
  EXPECT_EQ(m.graph.blob_shape("Plus214_Output_0"), Shape::vec(10));
  expect_digits(m);
}

TEST_F(ModelsTest, RegistryResolvesNamesAndPaths) {
  const ModelInfo bench = resolve_model("bench/resnet18");
  EXPECT_TRUE(bench.generated_weights);
  EXPECT_EQ(bench.input_blob, "data");
  EXPECT_EQ(bench.input_shape, Shape::cube(224, 224, 3));
  EXPECT_EQ(bench.output_blob, "output");

  const ModelInfo by_path = resolve_model(kShared + "/models/mnist/mnist.param");
  EXPECT_FALSE(by_path.generated_weights);
  EXPECT_EQ(by_path.bin_path, kShared + "/models/mnist/mnist.bin");
  EXPECT_EQ(by_path.input_blob, "data");
  EXPECT_EQ(by_path.output_blob, "fc");

  const ModelInfo onnx = resolve_model(kShared + "/models/mnist/model.onnx");
  EXPECT_EQ(onnx.input_blob, "Input3");
  EXPECT_EQ(onnx.output_blob, "Plus214_Output_0");

  const auto names = known_model_names();
  EXPECT_NE(std::find(names.begin(), names.end(), "bench/squeezenet"), names.end());
}

TEST_F(ModelsTest, UnknownModelNamesTheKnownOnes) {
  try {
    resolve_model("alexnet-v9");
    FAIL() << "expected ModelError";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("unknown model 'alexnet-v9'"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("squeezenet"), std::string::npos);
  }
  EXPECT_THROW(resolve_model("/nonexistent/net.param"), ModelError);
}

// Names are names: a name never walks out of the models directory.
TEST_F(ModelsTest, ModelNamesAreNotPaths) {
  for (const char* good : {"squeezenet", "mnist-onnx", "bench/resnet18", "bench/mobilenet_v2"})
    EXPECT_TRUE(is_model_name(good)) << good;
  for (const char* bad : {"", "bench/", "bench/../mnist/mnist", "../mnist", "/etc/passwd",
                          "bench/x.param", "a/b", "mnist/../squeezenet", "bench/a/b", "x y"})
    EXPECT_FALSE(is_model_name(bad)) << bad;
  EXPECT_THROW(resolve_model("bench/../mnist/mnist"), ModelError);
}

TEST_F(ModelsTest, ModelsDirFromEnvironmentMustExist) {
  setenv("RPLAYER_MODELS", "/nonexistent-models", 1);
  EXPECT_THROW(models_dir(), ModelError);
  unsetenv("RPLAYER_MODELS");
  EXPECT_NO_THROW(models_dir());  // ../shared/models or the build's RPLAYER_SHARED_DIR
}

}  // namespace
}  // namespace rplayer::nn
