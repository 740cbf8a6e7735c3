// The prepare phase runs once natively, and again in every recording: a recording started
// after warm native runs still holds the prepare jobs, and every run of a replay session
// gives the native bits.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>

#include "nn/model_zoo.h"
#include "record/recorder.h"
#include "tools/gpu_stack.h"
#include "tools/recording_io.h"

namespace rplayer::tools {
namespace {

nn::Tensor input_for(const nn::Model& m, int seed) {
  nn::Tensor t(m.info.input_shape);
  for (size_t i = 0; i < t.size(); ++i)
    t.data()[i] = float((i * 7 + size_t(seed) * 13) % 251) / 251.f;
  return t;
}

TEST(PrepareOnce, NativeRunsPrepareOnceAndRecordingsPrepareAgain) {
  setenv("RPLAYER_MODELS", RPLAYER_SHARED_DIR "/models", 1);
  const nn::Model m = nn::load_model("squeezenet");
  GpuStack stack("v3d-7.1", m, record::RecorderOptions{});
  nn::GpuExecutor& gpu = stack.executor();
  const uint64_t prepare = gpu.num_prepare_dispatches();
  const uint64_t inference = gpu.num_dispatches() - prepare;
  ASSERT_GT(prepare, 0u);

  // The first run prepares; later native runs reuse the prepared Scratch buffers.
  auto jobs_of = [&](int seed) {
    const uint64_t before = stack.driver().stats().jobs_submitted;
    const nn::Tensor out = stack.infer(input_for(m, seed));
    return std::pair{stack.driver().stats().jobs_submitted - before, out};
  };
  EXPECT_EQ(jobs_of(1).first, prepare + inference);
  EXPECT_EQ(gpu.last_run_stats().prepare_dispatches, prepare);
  EXPECT_EQ(jobs_of(2).first, inference);
  EXPECT_EQ(gpu.last_run_stats().prepare_dispatches, 0u);
  EXPECT_EQ(gpu.last_run_stats().dispatches, inference);

  // A recording started now holds the prepare jobs before the inference's.
  stack.start_recording();
  const auto [recorded_jobs, native] = jobs_of(3);
  EXPECT_EQ(recorded_jobs, prepare + inference);
  EXPECT_EQ(stack.recorder().stats().jobs, prepare + inference);
  const replay::Recording rec = finish_recording(stack, m);
  // And native runs after it do not prepare again.
  EXPECT_EQ(jobs_of(4).first, inference);

  // Replays in one session: the replayer scrubs GPU-written pages after every run, so the
  // second run has the packed weights only if the recording derives them again.
  ReplayTarget target("v3d-7.1");
  replay::ReplayStats st;
  char buf[256];
  replay::ReplayError e = target.load(rec, &st);
  ASSERT_TRUE(e.ok()) << e.format(buf, sizeof buf);
  for (int seed : {3, 5}) {
    const nn::Tensor x = input_for(m, seed);
    const nn::Tensor want = seed == 3 ? native : stack.infer(x);
    std::vector<float> out(want.size());
    e = target.run_loaded(m.info.input_blob, x, m.info.output_blob, &out, &st);
    ASSERT_TRUE(e.ok()) << e.format(buf, sizeof buf);
    EXPECT_EQ(std::memcmp(out.data(), want.data(), out.size() * 4), 0)
        << "replay " << seed << " of a recording made after warm runs differs from native";
  }
}

}  // namespace
}  // namespace rplayer::tools
