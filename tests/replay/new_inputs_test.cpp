// One recording serves every input: replaying a network's recording with inputs other
// than the recorded one gives output bit-identical to native execution (full GPU stack)
// with that input. RPLAYER_REPLAY_INPUTS sets how many SqueezeNet inputs (default 100).
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <random>

#include "nn/file_bytes.h"
#include "nn/model_zoo.h"
#include "nn/preprocess.h"
#include "record/recorder.h"
#include "tests/common/escape_oracle.h"
#include "tools/gpu_stack.h"
#include "tools/recording_io.h"

namespace rplayer::test {
namespace {

struct Recorded {
  nn::Model model;
  replay::Recording rec;
  std::unique_ptr<tools::GpuStack> native;  // the recording stack, kept for native runs
  std::vector<uint8_t> model_file;          // for weight-less recordings: supplies the weights
};

// Weight-less recordings (the default here) replay with the weights taken from the model
// file, checked against the recording's digests, as a device does with a cloud recording.
std::unique_ptr<Recorded> record_model(const std::string& name, const std::string& sku,
                                       const nn::Tensor& first_input, bool omit_weights = true) {
  auto r = std::make_unique<Recorded>();
  r->model = nn::load_model(name);
  record::RecorderOptions opts;
  opts.omit_weights = omit_weights;
  if (omit_weights) r->model_file = nn::read_whole_file(r->model.weights_file);
  r->native = std::make_unique<tools::GpuStack>(sku, r->model, opts);
  r->native->start_recording();
  r->native->infer(first_input);
  std::string err;
  for (const auto& [blob, is_input] : {std::pair{r->model.info.input_blob, true},
                                       std::pair{r->model.info.output_blob, false}}) {
    const nn::Shape& s = r->model.graph.blob_shape(blob);
    std::vector<uint32_t> shape;
    for (int d : s.outer_dims()) shape.push_back(uint32_t(d));
    EXPECT_TRUE(
        r->native->recorder().bind_buffer(blob, is_input, uint32_t(s.total() * 4), shape, &err))
        << err;
  }
  EXPECT_TRUE(r->native->recorder().finish(&r->rec, &err)) << err;
  EXPECT_EQ(r->rec.weights_omitted, omit_weights);
  if (omit_weights) {
    EXPECT_FALSE(r->rec.weight_bindings.empty());
  }
  return r;
}

// A replay target with the escape oracle between the replayer and the carve-out.
struct GuardedTarget {
  explicit GuardedTarget(const std::string& sku)
      : target(sku), oracle(target.carve_out(), target.soc().gpu()) {
    target.interpose(&oracle);
  }
  ~GuardedTarget() { EXPECT_EQ(oracle.escapes(), 0u) << "escape: " << oracle.first_escape(); }
  tools::ReplayTarget target;
  EscapeOracle oracle;
};

// Replays `input` and runs it natively; both outputs must be the same bits.
void expect_identical(Recorded& r, tools::ReplayTarget& target, const nn::Tensor& input,
                      const std::string& what) {
  const nn::Tensor native = r.native->infer(input);
  std::vector<float> out(native.size());
  replay::ReplayStats st;
  const replay::ReplayError e = target.run(r.rec, r.model.info.input_blob, input,
                                           r.model.info.output_blob, &out, &st, r.model_file);
  char buf[256];
  ASSERT_TRUE(e.ok()) << what << ": " << e.format(buf, sizeof buf);
  ASSERT_EQ(std::memcmp(out.data(), native.data(), out.size() * 4), 0)
      << what << ": replay differs from native execution";
}

int num_inputs() {
  const char* e = std::getenv("RPLAYER_REPLAY_INPUTS");
  return e ? std::max(1, std::atoi(e)) : 100;
}

std::string shared(const std::string& rel) { return nn::models_dir() + "/../" + rel; }

TEST(NewInputs, SqueezeNetReplaysBitIdenticalToNative) {
  const nn::ModelInfo info = nn::resolve_model("squeezenet");
  const int w = info.input_shape.w, h = info.input_shape.h;
  const nn::Tensor cat = nn::preprocess_image(shared("images/cat.jpg"), info.preprocess, w, h);
  const nn::Tensor cat2 = nn::preprocess_image(shared("images/cat.ppm"), info.preprocess, w, h);
  auto r = record_model("squeezenet", "v3d-7.1", cat);
  GuardedTarget guarded("v3d-7.1");
  tools::ReplayTarget& target = guarded.target;
  // Inputs: the two images, then perturbations of them (noise, brightness, contrast,
  // flips, mixes), each distinct.
  std::mt19937 rng(7);
  const int n = num_inputs();
  for (int i = 0; i < n; ++i) {
    nn::Tensor x = (i % 2 ? cat2 : cat);
    std::normal_distribution<float> noise(0.f, 1.f + float(i % 13));
    const float gain = 0.6f + 0.05f * float(i % 17), bias = float(i % 23) - 11.f;
    for (size_t k = 0; k < x.size(); ++k) {
      float v = x.data()[k];
      if (i >= 2) v = v * gain + bias + noise(rng);
      if (i % 5 == 3) v = 0.5f * (v + cat2.data()[x.size() - 1 - k]);  // flipped mix
      x.data()[k] = v;
    }
    expect_identical(*r, target, x, "input " + std::to_string(i));
    if (HasFatalFailure()) return;
  }
}

TEST(NewInputs, MnistAllDigitsOnBothSkus) {
  for (const std::string model : {"mnist", "mnist-onnx"})
    for (const std::string sku : {"v3d-7.1", "v3d-4.2"}) {
      const nn::ModelInfo info = nn::resolve_model(model);
      auto digit = [&](int d) {
        return nn::preprocess_image(shared("images/digits/" + std::to_string(d) + ".pgm"),
                                    info.preprocess, info.input_shape.w, info.input_shape.h);
      };
      auto r = record_model(model, sku, digit(0));
      GuardedTarget guarded(sku);
      tools::ReplayTarget& target = guarded.target;
      for (int d = 0; d < 10; ++d) {
        expect_identical(*r, target, digit(d), model + " " + sku + " digit " + std::to_string(d));
        if (HasFatalFailure()) return;
      }
    }
}

// A weight-less recording made after warm native runs carries no derived weights: the
// GPU-written buffers' contents at the start (the prepare phase's output of the earlier
// runs) are not captured, so it has exactly the pages of one made on a fresh stack.
TEST(NewInputs, WeightlessRecordingAfterWarmRunsCarriesNoDerivedWeights) {
  const nn::ModelInfo info = nn::resolve_model("squeezenet");
  const nn::Tensor cat = nn::preprocess_image(shared("images/cat.jpg"), info.preprocess,
                                              info.input_shape.w, info.input_shape.h);
  auto fresh = record_model("squeezenet", "v3d-7.1", cat);
  const nn::Model model = nn::load_model("squeezenet");
  record::RecorderOptions opts;
  opts.omit_weights = true;
  tools::GpuStack warm("v3d-7.1", model, opts);
  for (int i = 0; i < 2; ++i) warm.infer(cat);
  warm.start_recording();
  warm.infer(cat);
  replay::Recording rec;
  std::string err;
  ASSERT_TRUE(warm.recorder().finish(&rec, &err)) << err;
  EXPECT_EQ(rec.blobs.size(), fresh->rec.blobs.size());
  EXPECT_EQ(rec.loads.size(), fresh->rec.loads.size());
  size_t blob_bytes = 0;
  for (const replay::PageBlob& b : rec.blobs) blob_bytes += b.data.size();
  EXPECT_LT(blob_bytes, 1u << 20) << "no megabytes of derived weights";
}

// A recording that carries its weights replays the same, without a model file.
TEST(NewInputs, RecordingWithWeightsNeedsNoModelFile) {
  const nn::ModelInfo info = nn::resolve_model("mnist");
  auto digit = [&](int d) {
    return nn::preprocess_image(shared("images/digits/" + std::to_string(d) + ".pgm"),
                                info.preprocess, info.input_shape.w, info.input_shape.h);
  };
  auto r = record_model("mnist", "v3d-7.1", digit(0), /*omit_weights=*/false);
  EXPECT_FALSE(r->rec.weight_bindings.empty()) << "bindings listed all the same";
  GuardedTarget guarded("v3d-7.1");
  for (int d : {3, 8}) expect_identical(*r, guarded.target, digit(d), "digit " + std::to_string(d));
}

TEST(NewInputs, BenchGraphsWithGeneratedInputs) {
#ifdef RPLAYER_SANITIZED
  GTEST_SKIP() << "whole bench graphs run in the plain build only (sanitizers: ~30x slower)";
#endif
  for (const std::string name : {"bench/mobilenet_v2", "bench/shufflenet_v2", "bench/resnet18"}) {
    const nn::ModelInfo info = nn::resolve_model(name);
    auto input = [&](uint32_t seed) {
      nn::Tensor t(info.input_shape);
      std::mt19937 g(seed);
      std::uniform_real_distribution<float> u(-1.f, 1.f);
      for (size_t k = 0; k < t.size(); ++k) t.data()[k] = u(g);
      return t;
    };
    auto r = record_model(name, "v3d-7.1", input(1), /*omit_weights=*/false);
    GuardedTarget guarded("v3d-7.1");
    tools::ReplayTarget& target = guarded.target;
    for (uint32_t s = 2; s < 5; ++s) {
      expect_identical(*r, target, input(s), name + " seed " + std::to_string(s));
      if (HasFatalFailure()) return;
    }
  }
}

}  // namespace
}  // namespace rplayer::test
