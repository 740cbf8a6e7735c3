// Handing the GPU between the normal-world driver and the secure world through the
// ownership mailbox (tee::GpuWorldSwitch, V3dDriver's mailbox thread): cooperative
// claims while normal-world jobs run, forced claims, recording across a hand-off, and
// the switch latencies both ways (printed to the test log).
#include "tee/gpu_switch.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "driver/v3d_driver.h"
#include "hw/isa/assembler.h"
#include "hw/soc.h"
#include "hw/v3d_regs.h"
#include "record/recorder.h"
#include "replay/verifier.h"
#include "tests/common/soc_config.h"
#include "tests/hw/kernels.h"

namespace rplayer::tee {
namespace {

using namespace std::chrono_literals;
using driver::BoUsage;
using hw::RegBlock;

constexpr uint32_t kN = 256;  // int32 elements per job: 4 workgroups of 64

bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

class WorldSwitchTest : public ::testing::TestWithParam<std::string> {
 protected:
  WorldSwitchTest()
      : soc(test::test_config(GetParam())),
        io(soc.port(hw::World::Normal)),
        sec(soc.port(hw::World::Secure)),
        gsw(sec) {}
  void TearDown() override {
    if (gsw.claimed()) gsw.release(0);  // never leave a test's GPU with the secure world
  }

  void probe(driver::HwIo& via) {
    std::string err;
    drv = driver::V3dDriver::probe(via, opts, &err);
    ASSERT_TRUE(drv) << err;
  }

  struct Bo {
    uint32_t handle = 0, va = 0;
    uint8_t* cpu = nullptr;
  };
  Bo bo(uint32_t size, BoUsage usage, const std::string& label) {
    driver::CreateBo c;
    c.size = size;
    c.usage = usage;
    c.label = label;
    c.gpu_writable = usage == BoUsage::Output || usage == BoUsage::Scratch;
    EXPECT_EQ(drv->create_bo(c), 0) << drv->last_error();
    Bo b{c.handle, c.gpu_va, nullptr};
    uint32_t sz;
    EXPECT_EQ(drv->mmap_bo(c.handle, &b.cpu, &sz), 0);
    return b;
  }
  Bo shader() {
    auto r = isa::assemble(test::kCopyPlusOne);
    EXPECT_TRUE(r.ok());
    Bo b = bo(uint32_t(r.words.size() * 8), BoUsage::Code, "copy_plus_one");
    std::memcpy(b.cpu, r.words.data(), r.words.size() * 8);
    return b;
  }

  // dst[i] = src[i] + 1 over kN ints, with its own buffers.
  struct CopyJob {
    Bo src, dst, un;
  };
  CopyJob copy_job(const std::string& name) {
    CopyJob j;
    j.src = bo(kN * 4, BoUsage::Input, name + ".src");
    j.dst = bo(kN * 4, BoUsage::Output, name + ".dst");
    j.un = bo(16, BoUsage::Uniforms, name + ".uniforms");
    const uint32_t u[3] = {j.src.va, j.dst.va, kN};
    std::memcpy(j.un.cpu, u, sizeof u);
    return j;
  }
  // Fills the input from `seed`, clears the output, submits. Returns the seqno (0: error).
  uint64_t submit(const CopyJob& j, const Bo& sh, uint32_t seed) {
    auto* src = reinterpret_cast<int32_t*>(j.src.cpu);
    for (uint32_t i = 0; i < kN; ++i) src[i] = int32_t(seed * 7919 + i);
    std::memset(j.dst.cpu, 0, kN * 4);
    driver::SubmitCsd s;
    s.cfg[0] = (kN / 64) << 16;
    s.cfg[1] = 1 << 16;
    s.cfg[2] = 1 << 16;
    s.cfg[3] = 64;
    s.cfg[4] = (kN / 64) * 4 - 1;
    s.cfg[5] = sh.va;
    s.cfg[6] = j.un.va;
    s.bo_handles = {j.src.handle, j.dst.handle, j.un.handle, sh.handle};
    return drv->submit_csd(s) == 0 ? s.seqno : 0;
  }
  static bool correct(const CopyJob& j, uint32_t seed) {
    const auto* dst = reinterpret_cast<const int32_t*>(j.dst.cpu);
    for (uint32_t i = 0; i < kN; ++i)
      if (dst[i] != int32_t(seed * 7919 + i) + 1) return false;
    return true;
  }
  bool run(const CopyJob& j, const Bo& sh, uint32_t seed) {
    const uint64_t seq = submit(j, sh, seed);
    return seq && drv->wait_seqno(seq, 5s) == 0 && correct(j, seed);
  }

  uint64_t violations() { return soc.gpu().stats().tz_violations; }
  uint32_t mbox(uint32_t off) { return sec.read32(RegBlock::Mbox, off); }

  static void print(const std::string& what, const ClaimResult& c, const ReleaseResult& r) {
    std::printf("[ latency  ] %s: claim quiesce %u us + switch %u us = %u us%s; "
                "release switch %u us, resume %u us%s, total %u us\n",
                what.c_str(), c.quiesce_us, c.switch_us, c.total_us, c.forced ? " (forced)" : "",
                r.switch_us, r.resume_us, r.resumed ? "" : " (not awaited)", r.total_us);
  }

  hw::ModeledSoc soc;
  driver::DirectHwIo io;
  hw::SocPort& sec;
  GpuWorldSwitch gsw;
  driver::DriverOptions opts;
  std::unique_ptr<record::Recorder> recorder;  // before drv: outlives the driver's threads
  std::unique_ptr<driver::V3dDriver> drv;
};

// A normal-world application: submit, wait, check, again, until stopped.
class JobStream {
 public:
  JobStream(WorldSwitchTest* t, std::function<bool(uint32_t)> run_one)
      : run_one_(std::move(run_one)) {}
  void start() {
    th_ = std::thread([this] {
      for (uint32_t seed = 1; !stop_; ++seed) {
        if (!run_one_(seed)) {
          std::lock_guard lk(mu_);
          errors_.push_back("job " + std::to_string(seed) + " failed or was wrong");
        }
        ++done;
      }
    });
  }
  void stop() {
    stop_ = true;
    if (th_.joinable()) th_.join();
  }
  ~JobStream() { stop(); }
  std::vector<std::string> errors() {
    std::lock_guard lk(mu_);
    return errors_;
  }
  std::atomic<int> done{0};

 private:
  std::function<bool(uint32_t)> run_one_;
  std::atomic<bool> stop_{false};
  std::thread th_;
  std::mutex mu_;
  std::vector<std::string> errors_;
};

TEST_P(WorldSwitchTest, CooperativeHandOffWhileNormalJobsRun) {
  probe(io);
  const Bo sh = shader();
  const CopyJob stream_job = copy_job("stream");
  // The stream's waits outlast any secure period here: its jobs wait, then complete.
  JobStream stream(this, [&](uint32_t seed) {
    const uint64_t seq = submit(stream_job, sh, seed);
    return seq && drv->wait_seqno(seq, 10s) == 0 && correct(stream_job, seed);
  });
  stream.start();
  ASSERT_TRUE(wait_until([&] { return stream.done >= 3; }, 10s));
  const uint64_t v0 = violations();

  constexpr int kCycles = 3;
  for (int cycle = 1; cycle <= kCycles; ++cycle) {
    const ClaimResult c = gsw.claim(2'000'000);
    ASSERT_TRUE(c.ok()) << switch_code_name(c.code);
    EXPECT_FALSE(c.forced) << "the driver answers in time";
    EXPECT_TRUE(soc.gpu().secure());
    EXPECT_EQ(mbox(v3d::MBOX_ACK), 1u);
    EXPECT_EQ(drv->stats().suspends, uint64_t(cycle));

    // The secure world owns the GPU: it reads and programs it.
    EXPECT_EQ(sec.read32(RegBlock::Hub, v3d::HUB_IDENT1), soc.sku().hub_ident1);
    sec.write32(RegBlock::Hub, v3d::MMU_PT_PA_BASE, 0x1234);
    EXPECT_EQ(sec.read32(RegBlock::Hub, v3d::MMU_PT_PA_BASE), 0x1234u);

    // Normal-world work meanwhile never touches the GPU: buffers, parameters and jobs
    // are accepted, jobs wait.
    const CopyJob side = copy_job("side" + std::to_string(cycle));
    uint64_t ident = 0;
    EXPECT_EQ(drv->get_param(driver::Param::HubIdent1, &ident), 0);
    EXPECT_EQ(ident, soc.sku().hub_ident1);
    const uint32_t seed = 1000 + cycle;
    const uint64_t seq = submit(side, sh, seed);
    ASSERT_NE(seq, 0u) << drv->last_error();
    EXPECT_EQ(drv->wait_seqno(seq, 30ms), -ETIMEDOUT) << "queued while the GPU is secure";
    const int frozen = stream.done;
    std::this_thread::sleep_for(20ms);
    EXPECT_EQ(stream.done, frozen) << "the stream makes no progress while the GPU is secure";

    const ReleaseResult r = gsw.release(2'000'000);
    ASSERT_TRUE(r.ok()) << switch_code_name(r.code);
    EXPECT_TRUE(r.resumed);
    EXPECT_FALSE(soc.gpu().secure());
    EXPECT_EQ(mbox(v3d::MBOX_ACK), 0u);
    EXPECT_EQ(drv->stats().resumes, uint64_t(cycle));
    EXPECT_EQ(drv->wait_seqno(seq, 5s), 0) << drv->last_error();
    EXPECT_TRUE(correct(side, seed));
    ASSERT_TRUE(wait_until([&] { return stream.done >= frozen + 3; }, 10s))
        << "the stream resumes";
    print(GetParam() + " cooperative #" + std::to_string(cycle), c, r);
  }
  stream.stop();
  for (const std::string& e : stream.errors()) ADD_FAILURE() << e;
  EXPECT_EQ(violations(), v0) << "no normal-world access reached the GPU while it was not ours";
  const driver::DriverStats st = drv->stats();
  EXPECT_EQ(st.suspends, uint64_t(kCycles));
  EXPECT_EQ(st.resumes, uint64_t(kCycles));
  EXPECT_EQ(st.forced_takeovers, 0u);
  EXPECT_EQ(st.jobs_failed, 0u);
  EXPECT_GT(st.suspended_us, 0u);
  std::printf("[ latency  ] %s: %d jobs, driver suspended %llu us over %d hand-offs\n",
              GetParam().c_str(), stream.done.load(), (unsigned long long)st.suspended_us,
              kCycles);
}

// Both worlds want the GPU: work the normal world submitted while the secure world held
// it (MBOX_DEMAND) makes the next claim wait for the normal world's share; an idle normal
// world is owed nothing, and share 0 gives the secure world strict priority.
TEST_P(WorldSwitchTest, FairShareLeavesTheNormalWorldItsShare) {
  probe(io);
  const Bo sh = shader();
  const CopyJob j = copy_job("fair");
  auto hold = [&](uint32_t seed, bool submit_meanwhile, uint64_t* seq) {
    const ClaimResult c = gsw.claim(2'000'000);
    EXPECT_TRUE(c.ok());
    if (submit_meanwhile) {
      *seq = submit(j, sh, seed);
      EXPECT_TRUE(wait_until([&] { return mbox(v3d::MBOX_DEMAND) == 1; }, 2s));
    }
    std::this_thread::sleep_for(40ms);
    const ReleaseResult r = gsw.release(2'000'000);
    EXPECT_TRUE(r.ok() && r.resumed);
    EXPECT_EQ(mbox(v3d::MBOX_DEMAND), 0u) << "the driver clears it when it resumes";
    return c;
  };
  uint64_t seq = 0;
  hold(1, false, &seq);
  EXPECT_EQ(hold(2, true, &seq).deferred_us, 0u) << "the normal world was idle before";
  // The normal world waited during the last hold: the next claim leaves it about as long
  // (share 0.5) and its queued job runs meanwhile.
  const ClaimResult c = gsw.claim(2'000'000);
  ASSERT_TRUE(c.ok());
  EXPECT_GE(c.deferred_us, 5'000u);
  EXPECT_LE(c.deferred_us, FairShare{}.max_defer_us);
  EXPECT_EQ(drv->wait_seqno(seq, 1ms), 0) << "ran in the normal world's window";
  EXPECT_TRUE(correct(j, 2));
  std::this_thread::sleep_for(40ms);
  ASSERT_TRUE(gsw.release(2'000'000).ok());

  GpuWorldSwitch strict(sec, 200000, FairShare{0.0, 250000});
  ASSERT_TRUE(strict.claim(2'000'000).ok());
  seq = submit(j, sh, 3);
  ASSERT_TRUE(wait_until([&] { return mbox(v3d::MBOX_DEMAND) == 1; }, 2s));
  ASSERT_TRUE(strict.release(2'000'000).ok());
  const ClaimResult first = strict.claim(2'000'000);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first.deferred_us, 0u) << "share 0: the secure world goes first";
  ASSERT_TRUE(strict.release(2'000'000).ok());
  EXPECT_EQ(drv->wait_seqno(seq, 5s), 0);
  EXPECT_TRUE(correct(j, 3));
}

// The secure world claims back to back (a sanitized SqueezeNet replay holds the GPU for
// seconds per image) while a normal-world driver probes: the probe may wait at most
// secure_wait per attempt. It says it waits (MBOX_DEMAND), so the next claim leaves it a
// window instead of following the release within microseconds.
TEST_P(WorldSwitchTest, AProbeWaitingForABusySecureWorldGetsItsTurn) {
  ASSERT_TRUE(gsw.claim(2'000'000).ok());
  std::atomic<bool> probed{false};
  std::atomic<uint32_t> deferred_us{0};
  std::thread secure([&] {
    for (int i = 0; i < 8; ++i) {
      std::this_thread::sleep_for(150ms);
      gsw.release(2'000'000);
      const ClaimResult c = gsw.claim(2'000'000);
      deferred_us = std::max(deferred_us.load(), c.deferred_us);
      if (probed) break;
    }
    std::this_thread::sleep_for(150ms);
    gsw.release(2'000'000);
  });
  opts.secure_wait = std::chrono::milliseconds(400);  // over one hold, under all eight
  std::string err;
  drv = driver::V3dDriver::probe(io, opts, &err);
  probed = drv != nullptr;
  secure.join();
  ASSERT_TRUE(drv) << err;
  EXPECT_GT(deferred_us.load(), 0u) << "a claim left the probing driver its window";
  EXPECT_EQ(mbox(v3d::MBOX_DEMAND), 0u) << "the driver clears it once it has probed";
  // And the driver works: a job runs once the secure world is done.
  const Bo sh = shader();
  const CopyJob j = copy_job("after-probe");
  EXPECT_EQ(drv->wait_seqno(submit(j, sh, 5), 5s), 0);
  EXPECT_TRUE(correct(j, 5));
}

TEST_P(WorldSwitchTest, ForcedClaimWithoutADriverStillSwitches) {
  // No driver holds the GPU (MBOX_ACK reads 1 from reset): the claim need not wait.
  const ClaimResult c0 = gsw.claim(2'000'000);
  ASSERT_TRUE(c0.ok());
  EXPECT_FALSE(c0.forced);
  EXPECT_LT(c0.quiesce_us, 1'000'000u);
  ASSERT_TRUE(gsw.release(0).ok());
  // A normal world that says the GPU is in use and then never answers the mailbox.
  soc.port(hw::World::Normal).write32(RegBlock::Mbox, v3d::MBOX_ACK, 0);
  const ClaimResult c = gsw.claim(20'000);
  ASSERT_TRUE(c.ok()) << switch_code_name(c.code);
  EXPECT_TRUE(c.forced);
  EXPECT_GE(c.quiesce_us, 20'000u);
  EXPECT_TRUE(soc.gpu().secure());
  EXPECT_TRUE(sec.read32(RegBlock::Tzpc, v3d::TZPC_STATUS) & v3d::TZPC_STATUS_SECURE);
  const ReleaseResult r = gsw.release(100'000);
  ASSERT_TRUE(r.ok()) << switch_code_name(r.code);
  EXPECT_FALSE(r.resumed) << "no acknowledgement, nothing to wait for";
  EXPECT_FALSE(soc.gpu().secure());
  print(GetParam() + " forced, no driver", c, r);

  // A driver loaded afterwards works; the hand-off it missed (a pending event) does not
  // disturb it.
  probe(io);
  const Bo sh = shader();
  const CopyJob j = copy_job("after");
  EXPECT_TRUE(run(j, sh, 1));
  ASSERT_TRUE(wait_until([&] { return mbox(v3d::MBOX_EVENT) == 0; }, 2s));
  EXPECT_EQ(drv->stats().suspends, 0u);
  EXPECT_TRUE(run(j, sh, 2));

  // And the next claim is cooperative.
  const ClaimResult c2 = gsw.claim(2'000'000);
  ASSERT_TRUE(c2.ok());
  EXPECT_FALSE(c2.forced);
  const ReleaseResult r2 = gsw.release(2'000'000);
  ASSERT_TRUE(r2.ok());
  EXPECT_TRUE(r2.resumed);
  EXPECT_TRUE(run(j, sh, 3));
  EXPECT_EQ(violations(), 0u);
}

TEST_P(WorldSwitchTest, ForcedClaimFailsTheJobInFlightAndTheDriverRecovers) {
  opts.job_timeout = 100ms;
  probe(io);
  const Bo sh = shader();
  const CopyJob stuck = copy_job("stuck"), later = copy_job("later");
  // The job in flight never finishes, so the driver cannot quiesce in time.
  soc.faults().hang_dispatches = 1;
  const uint64_t s1 = submit(stuck, sh, 1);
  ASSERT_TRUE(wait_until([&] { return soc.gpu().stats().jobs_submitted >= 1; }, 5s));
  const uint64_t v0 = violations();

  const ClaimResult c = gsw.claim(30'000);
  ASSERT_TRUE(c.ok()) << switch_code_name(c.code);
  EXPECT_TRUE(c.forced);
  EXPECT_TRUE(soc.gpu().secure());
  const uint64_t s2 = submit(later, sh, 2);
  ASSERT_NE(s2, 0u);

  // The job fails on its hang timer, like after a reset; then the driver finishes its
  // quiesce and acknowledges, late.
  EXPECT_EQ(drv->wait_seqno(s1, 5s), -ETIMEDOUT);
  EXPECT_NE(drv->last_error().find("secure world"), std::string::npos) << drv->last_error();
  ASSERT_TRUE(wait_until([&] { return mbox(v3d::MBOX_ACK) == 1; }, 5s));
  EXPECT_EQ(drv->stats().forced_takeovers, 1u);
  // The unwarned driver did touch the secure GPU: refused and counted, nothing more.
  EXPECT_GT(violations(), v0);
  EXPECT_EQ(drv->wait_seqno(s2, 10ms), -ETIMEDOUT) << "still queued";
  EXPECT_EQ(sec.read32(RegBlock::Hub, v3d::MMU_PT_PA_BASE), 0u) << "the switch reset the GPU";

  const ReleaseResult r = gsw.release(2'000'000);
  ASSERT_TRUE(r.ok()) << switch_code_name(r.code);
  EXPECT_TRUE(r.resumed);
  print(GetParam() + " forced, job in flight", c, r);
  EXPECT_EQ(drv->wait_seqno(s2, 5s), 0) << drv->last_error();
  EXPECT_TRUE(correct(later, 2));
  EXPECT_TRUE(run(stuck, sh, 3)) << "the GPU works again";
  EXPECT_EQ(drv->stats().resumes, 1u);
}

TEST_P(WorldSwitchTest, RecordingAcrossAHandOffHoldsNoMailboxTraffic) {
  recorder = std::make_unique<record::Recorder>(io);
  record::Recorder& rec = *recorder;
  probe(rec);  // the recorder sits under the driver, mailbox thread included
  const Bo sh = shader();
  const CopyJob j = copy_job("job");
  const CopyJob big = copy_job("big");
  rec.start();
  EXPECT_TRUE(run(j, sh, 1));
  // Claimed while a job runs: the mailbox thread talks to the hardware inside the
  // recorder's job window.
  const uint64_t seq = submit(big, sh, 7);
  ASSERT_NE(seq, 0u);
  const ClaimResult c = gsw.claim(2'000'000);
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c.forced);
  const ReleaseResult r = gsw.release(2'000'000);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r.resumed);
  EXPECT_EQ(drv->wait_seqno(seq, 5s), 0) << drv->last_error();
  EXPECT_TRUE(correct(big, 7));
  EXPECT_TRUE(run(j, sh, 2));
  std::string err;
  ASSERT_TRUE(rec.bind("src", true, j.src.va, kN * 4, {kN}, &err)) << err;
  ASSERT_TRUE(rec.bind("dst", false, j.dst.va, kN * 4, {kN}, &err)) << err;
  replay::Recording recording;
  ASSERT_TRUE(rec.finish(&recording, &err)) << err;
  for (const replay::Action& a : recording.actions) {
    if (a.op == replay::ActionOp::WaitIrq) {
      EXPECT_LT(int(a.line), soc.sku().num_irq_lines) << "no wait on the mailbox line";
    } else if (a.op == replay::ActionOp::Read || a.op == replay::ActionOp::Write ||
               a.op == replay::ActionOp::Poll) {
      EXPECT_LE(uint8_t(a.block), uint8_t(replay::Block::Tzpc)) << "no mailbox access";
    }
  }
  const replay::VerifyError e = replay::verify_recording(recording, recording.sku);
  EXPECT_TRUE(e.ok()) << e.message() << " at " << e.field << " " << e.index;
}

INSTANTIATE_TEST_SUITE_P(Skus, WorldSwitchTest, ::testing::Values("v3d-7.1", "v3d-4.2"),
                         [](const auto& i) {
                           std::string n = i.param;
                           std::replace_if(n.begin(), n.end(),
                                           [](char ch) { return !std::isalnum(uint8_t(ch)); }, '_');
                           return n;
                         });

}  // namespace
}  // namespace rplayer::tee
