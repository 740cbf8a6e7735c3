// Cloud recording end to end in one process: the cloud's stack and recorder over a
// DriverShim, frames applied by the device's GPUShim on a modeled SoC's secure world.
// The recording replays with the device's real weights exactly as a local recording does.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <thread>

#include "cloud/cloud_recorder.h"
#include "hw/soc.h"
#include "hw/v3d_regs.h"
#include "nn/model_zoo.h"
#include "nn/ncnn_loader.h"
#include "nn/preprocess.h"
#include "tee/gpu_shim.h"
#include "tests/common/pool_oracle.h"
#include "tests/common/sanitized.h"
#include "tools/gpu_stack.h"
#include "tools/recording_diff.h"
#include "tools/recording_io.h"

namespace rplayer {
namespace {

using cloud::DriverShimOptions;

// The GPUShim in this process: a frame in, its reply out, resuming slices of long waits
// as the normal world's relay does with the TA.
class InProcessTransport final : public cloud::ShimTransport {
 public:
  explicit InProcessTransport(tee::GpuShim& shim) : shim_(shim) {}
  bool exchange(std::span<const uint8_t> request, std::vector<uint8_t>* reply,
                std::string* why) override {
    up_.insert(up_.end(), request.begin(), request.end());
    tee::GpuShim::Step s = shim_.exchange(request, reply);
    for (int i = 0; s == tee::GpuShim::Step::Pending && i < 10000; ++i) s = shim_.resume(reply);
    if (s == tee::GpuShim::Step::Pending) {
      *why = "the device never finished";
      return false;
    }
    down_.insert(down_.end(), reply->begin(), reply->end());
    return true;
  }
  std::vector<uint8_t> up_, down_;  // every byte each way (the tap)

 private:
  tee::GpuShim& shim_;
};

// The link dies after `after` exchanges (the cloud or the relay killed), or one request is
// altered on the way (a network that the secure channel would have caught).
class FailingTransport final : public cloud::ShimTransport {
 public:
  FailingTransport(cloud::ShimTransport& inner, int after, bool tamper)
      : inner_(inner), after_(after), tamper_(tamper) {}
  bool exchange(std::span<const uint8_t> request, std::vector<uint8_t>* reply,
                std::string* why) override {
    if (n_++ < after_) return inner_.exchange(request, reply, why);
    if (!tamper_) {
      *why = "connection reset";
      return false;
    }
    std::vector<uint8_t> bad(request.begin(), request.end());
    bad[bad.size() / 2] ^= 0xff;
    return inner_.exchange(bad, reply, why);
  }

 private:
  cloud::ShimTransport& inner_;
  int after_, n_ = 0;
  bool tamper_;
};

// A device: a modeled SoC whose GPU the secure world holds, its carve-out lent to a shim.
struct Device {
  explicit Device(const std::string& sku) {
    hw::SocConfig cfg;
    cfg.sku = sku;
    cfg.normal_bytes = 64ull << 20;
    cfg.secure_bytes = 96ull << 20;
    soc = std::make_unique<hw::ModeledSoc>(cfg);
    hw::SocPort& sec = soc->port(hw::World::Secure);
    sec.write32(hw::RegBlock::Tzpc, v3d::TZPC_GPU_SECURE, 1);
    for (int i = 0; i < 10000 && !soc->gpu().secure(); ++i)
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    tee::GpuShimConfig sc;
    sc.port = &sec;
    sc.pool_pa = soc->memory().secure_base();
    sc.pool_bytes = soc->memory().secure_size();
    shim = std::make_unique<tee::GpuShim>(sc);
    oracle = std::make_unique<test::PoolOracle>(soc->gpu(), sc.pool_pa, sc.pool_bytes);
  }
  std::unique_ptr<hw::ModeledSoc> soc;
  std::unique_ptr<tee::GpuShim> shim;
  std::unique_ptr<test::PoolOracle> oracle;
};

replay::Recording record_locally(const std::string& sku, const nn::Model& model) {
  record::RecorderOptions ropts;
  ropts.omit_weights = true;
  tools::GpuStack stack(sku, model, ropts);
  stack.start_recording();
  nn::Tensor input(model.info.input_shape);
  for (size_t i = 0; i < input.size(); ++i) input.data()[i] = float(i % 251) / 251.f;
  stack.infer(input);
  replay::Recording rec = tools::finish_recording(stack, model);
  rec.sku_name = sku;
  return rec;
}

bool contains_window(const std::vector<uint8_t>& hay, const uint8_t* needle, size_t n) {
  return std::search(hay.begin(), hay.end(), needle, needle + n) != hay.end();
}

struct Case {
  std::string model, sku;
};

class CloudRecord : public testing::TestWithParam<Case> {};

TEST_P(CloudRecord, ReplaysLikeALocalRecordingAndNoWeightCrossesTheLink) {
  const Case& c = GetParam();
  if (test::kSanitized && c.model == "squeezenet") {
    GTEST_SKIP() << test::kPlainBuildOnly;
  }
  const nn::Model model = nn::load_model(c.model);
  const cloud::ModelSkeleton skeleton = cloud::make_skeleton(model);

  Device dev(c.sku);
  link::ShimHello hello;
  std::string why;
  ASSERT_TRUE(dev.shim->open(&hello, &why)) << why;
  InProcessTransport link(*dev.shim);
  const cloud::CloudRecordResult res =
      cloud::record_in_cloud(link, hello, skeleton, DriverShimOptions::full());
  dev.shim->close();
  EXPECT_TRUE(dev.shim->pool_is_clean());
  EXPECT_EQ(dev.oracle->escapes(), 0u) << dev.oracle->what();
  EXPECT_EQ(dev.oracle->jobs(), res.jobs);

  const replay::Recording local = record_locally(c.sku, model);
  tools::DiffOptions dopt;
  dopt.ignore_wait_bounds = true;
  dopt.ignore_metadata = true;
  const tools::RecordingDiff d = tools::diff_recordings(local, res.recording, dopt);
  EXPECT_TRUE(d.identical()) << d.text();
  EXPECT_EQ(res.recording.weights_file, local.weights_file);
  EXPECT_EQ(res.recording.weight_bindings, local.weight_bindings);

  // The same outputs on new inputs, with the device's real weights: SqueezeNet on the
  // replay tests' input count (RPLAYER_REPLAY_INPUTS, default 100), mnist on a few.
  const char* env = std::getenv("RPLAYER_REPLAY_INPUTS");
  const int n = c.model == "squeezenet" ? (env ? std::max(1, std::atoi(env)) : 100) : 4;
  const std::vector<uint8_t> file = nn::read_file_bytes(model.weights_file);
  tools::ReplayTarget cloud_target(c.sku), local_target(c.sku);
  replay::ReplayStats st;
  ASSERT_TRUE(cloud_target.load(res.recording, &st, file).ok());
  ASSERT_TRUE(local_target.load(local, &st, file).ok());
  const size_t outputs = model.graph.blob_shape(model.info.output_blob).total();
  for (int k = 0; k < n; ++k) {
    nn::Tensor input(model.info.input_shape);
    for (size_t i = 0; i < input.size(); ++i)
      input.data()[i] = float((i * 7 + size_t(k) * 13) % 97) / 97.f;
    std::vector<float> a(outputs), b(outputs);
    ASSERT_TRUE(
        cloud_target.run_loaded(model.info.input_blob, input, model.info.output_blob, &a, &st)
            .ok());
    ASSERT_TRUE(
        local_target.run_loaded(model.info.input_blob, input, model.info.output_blob, &b, &st)
            .ok());
    ASSERT_EQ(a, b) << "input " << k;
  }

  // Secrecy: no 64-byte window of any weight tensor crossed either way (the input is the
  // cloud's own pattern: the device's never leaves it).
  size_t windows = 0;
  for (const auto& [off, len] : cloud::weight_ranges(model))
    for (uint64_t p = off; p + 64 <= off + len; p += 64 * 16, ++windows) {
      if (std::all_of(file.begin() + p, file.begin() + p + 64, [](uint8_t b) { return !b; }))
        continue;
      ASSERT_FALSE(contains_window(link.up_, file.data() + p, 64)) << "weights at " << p;
      ASSERT_FALSE(contains_window(link.down_, file.data() + p, 64)) << "weights at " << p;
    }
  EXPECT_GT(windows, 10u);
  // Nor of the image the device classifies, or its input tensor: recording never needs them
  // (the cloud runs a pattern of its own), and nothing the device sends carries them.
  const std::string image_path =
      std::string(RPLAYER_SHARED_DIR) +
      (c.model == "squeezenet" ? "/images/cat.jpg" : "/images/digits/7.pgm");
  const std::vector<uint8_t> image = nn::read_file_bytes(image_path);
  const nn::Tensor in = nn::preprocess_image(image_path, model.info.preprocess,
                                             model.info.input_shape.w, model.info.input_shape.h);
  const auto* in_bytes = reinterpret_cast<const uint8_t*>(in.data());
  for (size_t p = 0; p + 64 <= image.size(); p += 256) {
    EXPECT_FALSE(contains_window(link.up_, image.data() + p, 64));
    EXPECT_FALSE(contains_window(link.down_, image.data() + p, 64));
  }
  for (size_t p = 0; p + 64 <= in.size() * 4; p += 1024) {
    EXPECT_FALSE(contains_window(link.up_, in_bytes + p, 64));
    EXPECT_FALSE(contains_window(link.down_, in_bytes + p, 64));
  }
}

INSTANTIATE_TEST_SUITE_P(Models, CloudRecord,
                         testing::Values(Case{"mnist", "v3d-7.1"}, Case{"mnist", "v3d-4.2"},
                                         Case{"squeezenet", "v3d-7.1"},
                                         Case{"squeezenet", "v3d-4.2"}),
                         [](const auto& i) {
                           std::string n = i.param.model + "_" + i.param.sku;
                           std::replace_if(
                               n.begin(), n.end(), [](char ch) { return !isalnum(ch); }, '_');
                           return n;
                         });

TEST(CloudRecordFailures, ALinkThatDiesMidRecordingLeavesNothing) {
  const nn::Model model = nn::load_model("mnist");
  const cloud::ModelSkeleton skeleton = cloud::make_skeleton(model);
  for (const bool tamper : {false, true}) {
    for (const int after : {3, 15, 30}) {  // of the ~39 exchanges mnist takes
      Device dev("v3d-7.1");
      link::ShimHello hello;
      std::string why;
      ASSERT_TRUE(dev.shim->open(&hello, &why)) << why;
      InProcessTransport inner(*dev.shim);
      FailingTransport link(inner, after, tamper);
      EXPECT_THROW(cloud::record_in_cloud(link, hello, skeleton, DriverShimOptions::full()),
                   std::runtime_error)
          << "after " << after << (tamper ? " tampered" : " dropped");
      // What the TA does when its client or the cloud goes away: close the session.
      dev.shim->close();
      EXPECT_FALSE(dev.shim->active());
      EXPECT_TRUE(dev.shim->pool_is_clean());
      EXPECT_EQ(dev.oracle->escapes(), 0u) << dev.oracle->what();
    }
  }
}

// Round trips and bytes by mode: the counts (not times) the design promises.
class CloudRecordModes : public testing::TestWithParam<std::string> {};

TEST_P(CloudRecordModes, DeferralPollOffloadAndMetaOnlyCutRoundTripsAndBytes) {
  // Sanitized, a SqueezeNet job outlasts the device's interrupt-wait bound: the driver's
  // extra waits and reads then follow timing, not the workload.
  if (test::kSanitized && GetParam() == "squeezenet") {
    GTEST_SKIP() << test::kPlainBuildOnly;
  }
  const nn::Model model = nn::load_model(GetParam());
  const cloud::ModelSkeleton skeleton = cloud::make_skeleton(model);
  cloud::LinkCounts counts[3];
  const DriverShimOptions modes[3] = {DriverShimOptions::naive(), DriverShimOptions::deferral(),
                                      DriverShimOptions::full()};
  replay::Recording recs[3];
  for (int m = 0; m < 3; ++m) {
    Device dev("v3d-7.1");
    link::ShimHello hello;
    std::string why;
    ASSERT_TRUE(dev.shim->open(&hello, &why)) << why;
    InProcessTransport link(*dev.shim);
    const cloud::CloudRecordResult res = cloud::record_in_cloud(link, hello, skeleton, modes[m]);
    counts[m] = res.link;
    recs[m] = res.recording;
    const cloud::LinkCounts& l = res.link;
    std::printf(
        "%s mode %d: %llu round trips (%llu reads, %llu polls, %llu waits, %llu posts), "
        "%llu ops, %llu B up, %llu B down, %llu pages, %llu jobs\n",
        GetParam().c_str(), m, (unsigned long long)l.round_trips, (unsigned long long)l.rt_reads,
        (unsigned long long)l.rt_polls, (unsigned long long)l.rt_waits,
        (unsigned long long)l.rt_posts, (unsigned long long)l.ops, (unsigned long long)l.bytes_up,
        (unsigned long long)l.bytes_down, (unsigned long long)l.pages,
        (unsigned long long)res.jobs);
  }
  tools::DiffOptions dopt;
  dopt.ignore_wait_bounds = true;
  for (int m = 1; m < 3; ++m) {
    const tools::RecordingDiff d = tools::diff_recordings(recs[0], recs[m], dopt);
    EXPECT_TRUE(d.identical()) << d.text();
  }
  EXPECT_GE(counts[0].round_trips, 3 * counts[2].round_trips);
  EXPECT_LT(counts[1].round_trips, counts[0].round_trips);
  EXPECT_GE(counts[0].bytes_up, 20 * counts[2].bytes_up);
  // Full mode is deterministic: per job an interrupt wait (its status with it), the two
  // cache-clean polls and the fault check; per batch of new buffers one flush (two polls).
  // Measured 2026-12-07: mnist 39 round trips, 7,260 bytes to the device; squeezenet 179,
  // 55,101. A change to the driver or the runtime that adds any shows here.
  // The hang timer's progress reads are not counted: a job that outlasts its 500 ms timer
  // (a sanitized build, a loaded machine) adds them, the workload does not.
  const bool mnist = GetParam() == "mnist";
  const uint64_t timing = counts[2].rt_timing_reads;
  EXPECT_LE(counts[2].round_trips - timing, mnist ? 39u : 179u);
  EXPECT_LE(counts[2].bytes_up, (mnist ? 8'000u : 60'000u) + 64 * timing);
  EXPECT_EQ(counts[2].rt_reads - timing, 0u) << "every status read rides on its interrupt";
}

INSTANTIATE_TEST_SUITE_P(Models, CloudRecordModes, testing::Values("mnist", "squeezenet"));

}  // namespace
}  // namespace rplayer
