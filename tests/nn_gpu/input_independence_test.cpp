// Record and replay need the GPU job stream to be a function of the graph and shapes only:
// runs with different inputs must write the same registers with the same values in the
// same order, and leave the uniform stream (and the CFG words) untouched. Checked from the
// SoC side with a bus tap. The order is compared per driver thread: the interrupt thread's
// acknowledgements interleave with the submission thread's writes as the host schedules
// them, whatever the inputs.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <mutex>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "hw/bus_tap.h"
#include "nn/model_zoo.h"
#include "nn/preprocess.h"
#include "runtime/command_buffer.h"
#include "test_util.h"

namespace rplayer::nn {
namespace {

using testing::GpuStack;
using testing::kShared;

class RegisterWrites : public hw::BusTap {
 public:
  using Write = std::tuple<hw::RegBlock, uint32_t, uint32_t>;
  using PerThread = std::map<std::thread::id, std::vector<Write>>;
  void on_bus_event(const hw::BusEvent& e) override {
    if (e.kind != hw::BusEvent::Kind::RegWrite) return;
    std::lock_guard lk(mu_);
    writes_[std::this_thread::get_id()].emplace_back(e.block, e.offset, e.value);
  }
  PerThread take() {
    std::lock_guard lk(mu_);
    return std::exchange(writes_, {});
  }

 private:
  std::mutex mu_;
  PerThread writes_;
};

size_t count(const RegisterWrites::PerThread& w) {
  size_t n = 0;
  for (const auto& [t, v] : w) n += v.size();
  return n;
}

struct Snapshot {
  RegisterWrites::PerThread writes;
  std::vector<uint8_t> uniforms;
  std::vector<std::array<uint32_t, 7>> cfg;
};

Snapshot run_and_capture(GpuExecutor& gpu, RegisterWrites& tap,
                         const std::map<std::string, Tensor>& inputs) {
  tap.take();
  // Every run as a recording sees it: with the prepare phase, which native runs after the
  // first skip.
  gpu.prepare_again();
  gpu.run(inputs);
  Snapshot snap;
  snap.writes = tap.take();
  const runtime::CommandBuffer& cb = gpu.command_buffer();
  const runtime::Buffer& u = cb.uniform_buffer();
  snap.uniforms.assign(u.data(), u.data() + u.size());
  for (const auto& d : cb.dispatches()) snap.cfg.push_back(d.cfg);
  return snap;
}

void expect_same_job_stream(const Graph& g,
                            const std::vector<std::map<std::string, Tensor>>& inputs,
                            const std::string& sku) {
  GpuStack s(sku);
  RegisterWrites tap;
  s.soc.gpu().set_tap(&tap);
  GpuExecutor gpu(g, *s.dev);
  // One run first: the driver publishes buffers created or freed since the last job with
  // one MMU flush at the next job, and the first run starts from the executor's creation
  // instead of from a previous run. Every later run starts from the same state.
  run_and_capture(gpu, tap, inputs[0]);
  std::vector<Snapshot> snaps;
  for (const auto& in : inputs) snaps.push_back(run_and_capture(gpu, tap, in));
  s.soc.gpu().set_tap(nullptr);
  ASSERT_GT(count(snaps[0].writes), gpu.num_dispatches() * 7) << "every job writes its CFG";
  for (size_t i = 1; i < snaps.size(); ++i) {
    ASSERT_EQ(snaps[i].writes.size(), snaps[0].writes.size()) << "run " << i << ": threads";
    for (const auto& [thread, want] : snaps[0].writes) {
      ASSERT_TRUE(snaps[i].writes.count(thread)) << "run " << i;
      const auto& got = snaps[i].writes.at(thread);
      ASSERT_EQ(got.size(), want.size()) << "run " << i;
      for (size_t k = 0; k < want.size(); ++k)
        ASSERT_EQ(got[k], want[k]) << "run " << i << ", register write " << k;
    }
    EXPECT_EQ(snaps[i].uniforms, snaps[0].uniforms) << "run " << i;
    EXPECT_EQ(snaps[i].cfg, snaps[0].cfg) << "run " << i;
  }
}

TEST(InputIndependence, SqueezeNetJobStreamDoesNotDependOnTheImage) {
  setenv("RPLAYER_MODELS", (kShared + "/models").c_str(), 1);
  const Model m = load_model("squeezenet");
  std::vector<std::map<std::string, Tensor>> inputs;
  std::vector<const char*> images = {"cat.ppm", "cat.jpg", "cat.ppm"};
  if (testing::kQuick) images.pop_back();
  for (const char* image : images)
    inputs.push_back(
        {{m.info.input_blob, preprocess_image(kShared + "/images/" + image, m.info.preprocess,
                                              m.info.input_shape.w, m.info.input_shape.h)}});
  expect_same_job_stream(m.graph, inputs, "v3d-7.1");
}

// Many operator kinds (broadcasts, data movement, fused activations) on the other SKU.
TEST(InputIndependence, MixedOperatorsOnV3d42) {
  const Graph g = testing::make_graph({
      "Input in 0 1 x 0=12 1=10 2=6",
      "Convolution c1 1 1 x a 0=8 1=3 4=1 5=1 6=432",
      "ReLU r1 1 1 a b",
      "Split sp 1 2 b b1 b2",
      "ConvolutionDepthWise dw 1 1 b1 c 0=8 1=3 4=1 5=1 6=72 7=8 9=3 -23310=2,0,6",
      "Pooling gp 1 1 b2 g 0=1 4=1",
      "BinaryOp mul 2 1 c g d 0=2",
      "Pooling mp 1 1 d e 0=0 1=2 2=2",
      "Slice sl 1 2 e e1 e2 -23300=2,-233,-233",
      "Concat cc 2 1 e2 e1 f",
      "Sigmoid sg 1 1 f h",
      "InnerProduct fc 1 1 h i 0=10 1=1 2=2400",
      "Softmax sm 1 1 i y",
  });
  std::vector<std::map<std::string, Tensor>> inputs;
  for (uint32_t seed : {1u, 2u, 3u}) inputs.push_back(testing::make_inputs(g, seed, -4.f, 4.f));
  expect_same_job_stream(g, inputs, "v3d-4.2");
}

}  // namespace
}  // namespace rplayer::nn
