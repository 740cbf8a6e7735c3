// Record on one modeled SoC, replay on another: new inputs, verification, fault paths.
#include <gtest/gtest.h>

#include <cstring>

#include "driver/v3d_driver.h"
#include "hw/isa/assembler.h"
#include "hw/v3d_regs.h"
#include "keyring/keys.h"
#include "record/encoder.h"
#include "record/recorder.h"
#include "replay/decoder.h"
#include "replay/replayer.h"
#include "tee/soc_platform.h"
#include "tests/common/soc_config.h"
#include "tests/replay/workload.h"

namespace rplayer::replay {
namespace {

using namespace std::chrono_literals;
using namespace rplayer::replay::test;

class ReplayTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ReplayTest, NewInputsGiveTheNativeResult) {
  const Recording r = record_workload(GetParam(), ramp(0.5f));
  for (bool secure : {false, true}) {
    ReplaySoc target(GetParam(), secure);
    for (float scale : {0.5f, -1.25f, 3.0f}) {
      std::vector<float> out;
      ReplayStats st;
      const ReplayError e = target.run(r, ramp(scale), &out, &st);
      char buf[200];
      ASSERT_TRUE(e.ok()) << e.format(buf, sizeof buf);
      EXPECT_EQ(out, expected(ramp(scale))) << "scale " << scale << " secure " << secure;
      EXPECT_EQ(st.jobs, 3u);
      EXPECT_EQ(target.platform->pages_in_use(), 0u);
      EXPECT_TRUE(target.platform->pool_is_clean()) << "every page scrubbed";
    }
  }
}

TEST_P(ReplayTest, SignedFileRoundTripReplays) {
  const Recording r = record_workload(GetParam(), ramp(1.f));
  const keyring::KeyPair key = keyring::generate_keypair();
  const std::vector<uint8_t> bytes = record::encode_recording(r, key);
  Recording decoded;
  const PublicKey trusted[] = {key.public_key};
  ASSERT_TRUE(decode_recording(bytes, trusted, &decoded).ok());
  ReplaySoc target(GetParam(), false);
  std::vector<float> out;
  ASSERT_TRUE(target.run(decoded, ramp(2.f), &out).ok());
  EXPECT_EQ(out, expected(ramp(2.f)));
}

// A session: loaded once, many runs. Each run equals a fresh replay, read-only pages are
// not reloaded, and whatever a run wrote is scrubbed before the next.
TEST_P(ReplayTest, SessionRunsEqualFreshReplays) {
  const Recording r = record_workload(GetParam(), ramp(0.5f));
  ReplaySoc target(GetParam(), true);
  Replayer session(*target.oracle);
  const SkuIdentity gpu = r.sku;
  ReplayStats ls;
  ASSERT_TRUE(session.load(r, &gpu, {}, &ls).ok());
  EXPECT_GT(ls.pages_loaded, 0u) << "read-only images loaded once, at load";
  int run = 0;
  for (float scale : {0.5f, -1.25f, 3.0f, 7.5f}) {
    std::vector<float> out(kN, -1.f);
    const std::vector<float> in = ramp(scale);
    TensorIn ti{"in", in.data(), kN * 4};
    TensorOut to{"out", out.data(), kN * 4};
    ReplayStats st;
    const ReplayError e = session.run({&ti, 1}, {&to, 1}, &st);
    char buf[200];
    ASSERT_TRUE(e.ok()) << e.format(buf, sizeof buf);
    EXPECT_EQ(out, expected(in)) << "run " << run;
    EXPECT_EQ(st.jobs, 3u);
    EXPECT_GT(st.pages_skipped, 0u) << "code, uniforms and weights stay loaded";
    EXPECT_GT(st.pages_scrubbed, 0u);
    ++run;
  }
  EXPECT_GT(target.platform->pages_in_use(), 0u);
  session.unload();
  EXPECT_EQ(target.platform->pages_in_use(), 0u);
  EXPECT_TRUE(target.platform->pool_is_clean());
  std::vector<float> out(kN);
  TensorIn ti{"in", out.data(), kN * 4};
  TensorOut to{"out", out.data(), kN * 4};
  EXPECT_EQ(session.run({&ti, 1}, {&to, 1}, nullptr).code, ReplayCode::NotLoaded);
}

// A recording without the weights' images: the caller supplies the model file at load,
// which must be the recorded one (size, digest, each bound range); anything else is
// refused before any GPU memory is touched.
TEST_P(ReplayTest, OmittedWeightsComeFromTheModelFile) {
  const Recording r = record_workload(GetParam(), ramp(0.5f), /*omit_weights=*/true);
  ASSERT_TRUE(r.weights_omitted);
  ASSERT_EQ(r.weight_bindings.size(), 1u);
  EXPECT_EQ(r.weight_bindings[0].offset, kWeightsOffset);
  EXPECT_EQ(r.weight_bindings[0].length, kN * 4);
  ReplaySoc target(GetParam(), true);
  Replayer session(*target.oracle);
  EXPECT_EQ(session.load(r, &r.sku, {}, nullptr).code, ReplayCode::MissingWeights);
  const std::vector<uint8_t> file = workload_weights_file();
  std::vector<uint8_t> modified = file, truncated = file, outside = file;
  modified[kWeightsOffset + 100] ^= 1;
  truncated.resize(file.size() - 1);
  outside[3] ^= 1;  // outside every bound range: still another file
  const std::vector<uint8_t> other = workload_weights_file(ramp(0.25f));
  const struct {
    const std::vector<uint8_t>* bytes;
    const char* what;
  } wrong[] = {
      {&modified, "digest"}, {&truncated, "size"}, {&outside, "digest"}, {&other, "digest"}};
  for (const auto& w : wrong) {
    const ReplayError e = session.load(r, &r.sku, *w.bytes, nullptr);
    char buf[200];
    EXPECT_EQ(e.code, ReplayCode::WeightsMismatch) << e.format(buf, sizeof buf);
    EXPECT_NE(std::string(e.format(buf, sizeof buf)).find(w.what), std::string::npos) << buf;
    EXPECT_EQ(target.platform->pages_in_use(), 0u) << "no GPU memory touched";
  }
  // A range whose digest differs although the file's matches: the binding is named.
  Recording tampered = r;
  tampered.weight_bindings[0].digest[0] ^= 1;
  const ReplayError e = session.load(tampered, &r.sku, file, nullptr);
  EXPECT_EQ(e.code, ReplayCode::WeightsMismatch);
  EXPECT_EQ(e.weight, 0);
  ASSERT_TRUE(session.load(r, &r.sku, file, nullptr).ok());
  for (float scale : {-1.25f, 3.f}) {
    const std::vector<float> in = ramp(scale);
    std::vector<float> out(kN, -1.f);
    TensorIn ti{"in", in.data(), kN * 4};
    TensorOut to{"out", out.data(), kN * 4};
    const ReplayError re = session.run({&ti, 1}, {&to, 1}, nullptr);
    char buf[200];
    ASSERT_TRUE(re.ok()) << re.format(buf, sizeof buf);
    EXPECT_EQ(out, expected(in));
  }
  session.unload();
  EXPECT_TRUE(target.platform->pool_is_clean());
}

TEST(Replay, SessionSurvivesAFailedRunAndAWorldSwitch) {
  Recording r = record_workload("v3d-7.1", ramp(1.f));
  for (auto& a : r.actions)
    if (a.op == ActionOp::WaitIrq) a.timeout_us = 100000;  // keep the test short
  ReplaySoc target("v3d-7.1", true);
  Replayer session(*target.oracle);
  ASSERT_TRUE(session.load(r, nullptr, {}, nullptr).ok());
  auto run = [&](float scale, std::vector<float>* out) {
    out->assign(kN, -1.f);
    const std::vector<float> in = ramp(scale);
    TensorIn ti{"in", in.data(), kN * 4};
    TensorOut to{"out", out->data(), kN * 4};
    return session.run({&ti, 1}, {&to, 1}, nullptr);
  };
  std::vector<float> out;
  target.soc.faults().drop_interrupts = 1;
  EXPECT_EQ(run(2.f, &out).code, ReplayCode::IrqTimeout);
  EXPECT_EQ(out, std::vector<float>(kN, 0.f)) << "no partial output";
  ASSERT_TRUE(run(2.f, &out).ok()) << "the session is still usable";
  EXPECT_EQ(out, expected(ramp(2.f)));
  // The GPU goes to the normal world and back (a full reset each way) between runs.
  hw::SocPort& sec = target.soc.port(hw::World::Secure);
  for (uint32_t v : {0u, 1u}) {
    sec.write32(hw::RegBlock::Tzpc, v3d::TZPC_GPU_SECURE, v);
    for (int i = 0; i < 1000 && target.soc.gpu().secure() != bool(v); ++i)
      std::this_thread::sleep_for(100us);
  }
  ASSERT_TRUE(run(-3.f, &out).ok());
  EXPECT_EQ(out, expected(ramp(-3.f)));
}

// A read-only page that is zero at the first job and loaded only later (the CPU wrote it
// between jobs): the next run of the session must find it zero again, as a fresh replay
// does. Here the bias is zero for all three jobs (out = 8 x in), and only after the last
// job does a load put the real bias there.
TEST(Replay, SessionRestoresReadOnlyPagesALaterLoadChanged) {
  Recording r = record_workload("v3d-7.1", ramp(1.f));
  uint32_t bias = ~0u, input = ~0u;
  for (uint32_t i = 0; i < r.regions.size(); ++i) {
    if (r.regions[i].label == "bias") bias = i;
    if (r.regions[i].label == "in") input = i;
  }
  ASSERT_NE(bias, ~0u);
  ASSERT_NE(input, ~0u);
  // The first load no longer touches the bias (its entry now zeroes the input page, which
  // the caller's input overwrites anyway): a fresh replay has a zero bias.
  uint32_t bias_blob = kZeroBlob;
  for (PageLoad& l : r.loads)
    if (l.region == bias) {
      bias_blob = l.blob;
      l = {input, 0, kZeroBlob};
    }
  ASSERT_NE(bias_blob, kZeroBlob);
  r.loads.push_back({bias, 0, bias_blob});
  Action a;
  a.op = ActionOp::LoadMemory;
  a.first = uint32_t(r.loads.size() - 1);
  a.count = 1;
  r.actions.push_back(a);
  ReplaySoc target("v3d-7.1", true);
  Replayer session(*target.oracle);
  ASSERT_TRUE(session.load(r, nullptr, {}, nullptr).ok());
  for (float scale : {1.f, 4.f, -2.f}) {
    std::vector<float> out(kN, -1.f);
    const std::vector<float> in = ramp(scale);
    TensorIn ti{"in", in.data(), kN * 4};
    TensorOut to{"out", out.data(), kN * 4};
    char buf[200];
    const ReplayError e = session.run({&ti, 1}, {&to, 1}, nullptr);
    ASSERT_TRUE(e.ok()) << e.format(buf, sizeof buf);
    std::vector<float> want(kN);
    for (uint32_t i = 0; i < kN; ++i) want[i] = in[i] * 8.f;
    EXPECT_EQ(out, want) << "scale " << scale;
  }
}

TEST(Replay, OtherSkuIsRejectedBeforeAnyJob) {
  const Recording r = record_workload("v3d-7.1", ramp(1.f));
  ReplaySoc target("v3d-4.2", false);
  std::vector<float> out;
  const ReplayError e = target.run(r, ramp(1.f), &out);
  EXPECT_EQ(e.code, ReplayCode::Verify);
  EXPECT_EQ(e.verify.code, VerifyCode::SkuMismatch);
  EXPECT_EQ(target.soc.gpu().stats().jobs_submitted, 0u);
  EXPECT_EQ(out, std::vector<float>(kN, 0.f)) << "no partial output";
}

TEST(Replay, LostInterruptAndHungJobEndInACleanError) {
  Recording r = record_workload("v3d-7.1", ramp(1.f));
  for (auto& a : r.actions)
    if (a.op == ActionOp::WaitIrq) a.timeout_us = 100000;  // keep the test short
  for (int fault = 0; fault < 2; ++fault) {
    ReplaySoc target("v3d-7.1", false);
    (fault == 0 ? target.soc.faults().drop_interrupts : target.soc.faults().hang_dispatches) = 1;
    std::vector<float> out;
    const ReplayError e = target.run(r, ramp(1.f), &out);
    EXPECT_EQ(e.code, ReplayCode::IrqTimeout);
    EXPECT_GE(e.action, 0);
    EXPECT_EQ(out, std::vector<float>(kN, 0.f));
    EXPECT_EQ(target.platform->pages_in_use(), 0u);
    EXPECT_TRUE(target.platform->pool_is_clean());
    EXPECT_EQ(target.soc.port(hw::World::Normal).read32(hw::RegBlock::Hub, v3d::MMU_PT_PA_BASE), 0u)
        << "the GPU was reset";
  }
}

TEST(Replay, MmuFaultEndsInACleanError) {
  Recording r = record_workload("v3d-7.1", ramp(1.f));
  // Point the first job's input at an address no region covers: a valid recording
  // structurally, but the GPU faults (and can reach nothing else).
  for (auto& l : r.loads) {
    const Region& reg = r.regions[l.region];
    if (reg.kind != RegionKind::Uniforms || l.page != 0 || l.blob == kZeroBlob) continue;
    uint32_t* w = reinterpret_cast<uint32_t*>(r.blobs[l.blob].data.data());
    if (w[0] != w[1]) w[0] = 0x7000000;  // u1: {in, out, bias}
  }
  ReplaySoc target("v3d-7.1", false);
  std::vector<float> out;
  const ReplayError e = target.run(r, ramp(1.f), &out);
  EXPECT_EQ(e.code, ReplayCode::GpuFault);
  EXPECT_EQ(e.address, 0x7000000u) << "the faulting address";
  EXPECT_STREQ(e.what, "MMU: access to an unmapped page");
  EXPECT_TRUE(target.platform->pool_is_clean());
}

INSTANTIATE_TEST_SUITE_P(Skus, ReplayTest, ::testing::Values("v3d-7.1", "v3d-4.2"));

// ---- the verifier's rules, each on a recording that is otherwise valid ---------------

class VerifierTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { base_ = new Recording(record_workload("v3d-7.1", ramp(1.f))); }
  static void TearDownTestSuite() { delete base_; }
  VerifyCode verify(const Recording& r) { return verify_recording(r, r.sku).code; }
  Action write(Block b, uint32_t off, uint32_t v) {
    Action a;
    a.op = ActionOp::Write;
    a.block = b;
    a.offset = off;
    a.value = v;
    return a;
  }
  Recording with(Action a) {
    Recording r = *base_;
    r.actions.insert(r.actions.begin() + 1, a);
    return r;
  }
  static Recording* base_;
};
Recording* VerifierTest::base_ = nullptr;

TEST_F(VerifierTest, TheRecordedWorkloadVerifies) { EXPECT_EQ(verify(*base_), VerifyCode::Ok); }

TEST_F(VerifierTest, ReplayerOwnedRegistersCannotBeWritten) {
  for (uint32_t off : {v3d::MMU_PT_PA_BASE, v3d::MMU_CTL, v3d::MMUC_CONTROL, v3d::MMU_ILLEGAL_ADDR,
                       v3d::INT_MSK_CLR, v3d::INT_SET, v3d::MMU_BYPASS_START})
    EXPECT_EQ(verify(with(write(Block::Hub, off, 0))), VerifyCode::RegisterNotAllowed) << off;
  for (uint32_t off : {v3d::INT_MSK_SET, v3d::CTL_L2TFLSTA, v3d::PCTR_0_EN, v3d::CTL_MISCCFG})
    EXPECT_EQ(verify(with(write(Block::Core0, off, 0))), VerifyCode::RegisterNotAllowed) << off;
  EXPECT_EQ(verify(with(write(Block::Sms, v3d::SMS_TEE_CS, 0))), VerifyCode::BlockNotAllowed);
  EXPECT_EQ(verify(with(write(Block::Tzpc, 0, 0))), VerifyCode::BlockNotAllowed);
  EXPECT_EQ(verify(with(write(Block::Hub, 0x4000, 0))), VerifyCode::OffsetOutOfBlock);
  EXPECT_EQ(verify(with(write(Block::Hub, 0x13, 0))), VerifyCode::OffsetOutOfBlock);
}

TEST_F(VerifierTest, JobsMustRunOurCodeWithOurUniforms) {
  Recording r = *base_;
  const uint32_t cfg5 = 0x930 + 20, cfg6 = 0x930 + 24;
  for (auto& a : r.actions)
    if (a.op == ActionOp::Write && a.offset == cfg5) a.value = 0x7000000;
  EXPECT_EQ(verify(r), VerifyCode::ShaderOutsideCode);
  r = *base_;
  for (auto& a : r.actions)
    if (a.op == ActionOp::Write && a.offset == cfg6) {
      for (const Region& reg : r.regions)
        if (reg.kind == RegionKind::Input) a.value = reg.gpu_va;  // data, not uniforms
    }
  EXPECT_EQ(verify(r), VerifyCode::UniformsOutsideUniforms);
}

TEST_F(VerifierTest, WaitsMustBeBounded) {
  Recording r = *base_;
  for (auto& a : r.actions)
    if (a.op == ActionOp::Poll) a.timeout_us = 0;
  EXPECT_EQ(verify(r), VerifyCode::UnboundedPoll);
  r = *base_;
  for (auto& a : r.actions)
    if (a.op == ActionOp::Poll) a.timeout_us = 3600u * 1000000u;
  EXPECT_EQ(verify(r), VerifyCode::UnboundedPoll);
  r = *base_;
  for (auto& a : r.actions)
    if (a.op == ActionOp::WaitIrq) a.timeout_us = 0;
  EXPECT_EQ(verify(r), VerifyCode::UnboundedIrqWait);
  r = *base_;
  for (auto& a : r.actions)
    if (a.op == ActionOp::WaitIrq) a.line = 7;
  EXPECT_EQ(verify(r), VerifyCode::BadIrqLine);
}

TEST_F(VerifierTest, RegionsMustBeSaneAndFitTheQuota) {
  Recording r = *base_;
  r.regions[1].gpu_va = r.regions[0].gpu_va + 4096 * 0;  // same start as region 0
  EXPECT_EQ(verify(r), VerifyCode::RegionOverlap);
  r = *base_;
  r.regions[0].gpu_va += 12;
  EXPECT_EQ(verify(r), VerifyCode::RegionUnaligned);
  r = *base_;
  r.regions[0].gpu_va = 0xfffff000;
  r.regions[0].size = 8192;
  EXPECT_EQ(verify(r), VerifyCode::RegionWraps);
  r = *base_;
  r.regions[0].gpu_va = 0;
  EXPECT_EQ(verify(r), VerifyCode::RegionWraps) << "page 0 stays unmapped";
  r = *base_;
  r.regions[0].size = 0;
  EXPECT_EQ(verify(r), VerifyCode::RegionEmpty);
  r = *base_;
  VerifyLimits small;
  small.max_memory_bytes = 8192;
  EXPECT_EQ(verify_recording(r, r.sku, small).code, VerifyCode::MemoryQuota);
  small = {};
  small.max_actions = 10;
  EXPECT_EQ(verify_recording(r, r.sku, small).code, VerifyCode::TooManyActions);
}

TEST_F(VerifierTest, BindingsMustStayInsideTheirRegions) {
  Recording r = *base_;
  r.bindings[0].offset = r.regions[r.bindings[0].region].size - 4;
  EXPECT_EQ(verify(r), VerifyCode::BindingOutsideRegion);
  r = *base_;
  r.bindings[0].offset = 0xfffffff0;  // offset + bytes overflows 32 bits
  EXPECT_EQ(verify(r), VerifyCode::BindingOutsideRegion);
  r = *base_;
  r.bindings[1].is_input = true;  // an "input" into the output buffer
  EXPECT_EQ(verify(r), VerifyCode::BindingKind);
  r = *base_;
  r.bindings[0].shape = {kN + 1};
  EXPECT_EQ(verify(r), VerifyCode::BindingSize);
  r = *base_;
  r.bindings[0].region = 99;
  EXPECT_EQ(verify(r), VerifyCode::BindingOutsideRegion);
}

// Weight bindings fill read-only Weights regions, one binding per region, within it.
TEST_F(VerifierTest, WeightBindingsMustFitTheirRegions) {
  ASSERT_EQ(base_->weight_bindings.size(), 1u);
  Recording r = *base_;
  const uint32_t bias = r.weight_bindings[0].region;
  r.regions[bias].gpu_writable = true;
  EXPECT_EQ(verify(r), VerifyCode::WeightBindingKind);
  r = *base_;
  for (uint32_t i = 0; i < r.regions.size(); ++i)
    if (r.regions[i].kind == RegionKind::Input) r.weight_bindings[0].region = i;
  EXPECT_EQ(verify(r), VerifyCode::WeightBindingKind);
  r = *base_;
  r.weight_bindings[0].length = r.regions[bias].size + 1;
  EXPECT_EQ(verify(r), VerifyCode::WeightBindingSize);
  r = *base_;
  r.weight_bindings.push_back(r.weight_bindings[0]);
  EXPECT_EQ(verify(r), VerifyCode::WeightBindingOverlap);
}

TEST_F(VerifierTest, LoadsAndSkuAreChecked) {
  Recording r = *base_;
  r.loads[0].page = 1000;
  EXPECT_EQ(verify(r), VerifyCode::BadLoad);
  r = *base_;
  r.sku.hub_ident1 ^= 1;
  EXPECT_EQ(verify_recording(r, base_->sku).code, VerifyCode::UnknownSku);
  r = *base_;
  SkuIdentity other = r.sku;
  other.core_ident1 ^= 0x10;
  EXPECT_EQ(verify_recording(r, other).code, VerifyCode::SkuMismatch);
  r = *base_;
  r.actions.erase(std::remove_if(r.actions.begin(), r.actions.end(),
                                 [](const Action& a) { return a.op == ActionOp::Write; }),
                  r.actions.end());
  EXPECT_EQ(verify(r), VerifyCode::NoJobs);
}

}  // namespace
}  // namespace rplayer::replay
