// The replayer fails closed: findings 1-3 of the hardening review, each as the attack
// that worked before the fix. Every test runs under the escape oracle (workload.h).
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>

#include "hw/sku.h"
#include "hw/v3d_regs.h"
#include "replay/checked_math.h"
#include "replay/verifier.h"
#include "tests/replay/workload.h"

namespace rplayer::replay {
namespace {

using namespace rplayer::replay::test;

Action poll_action(Block b, uint32_t off, uint32_t mask, uint32_t value, uint32_t timeout_us) {
  Action a;
  a.op = ActionOp::Poll;
  a.block = b, a.offset = off, a.mask = mask, a.value = value, a.timeout_us = timeout_us;
  return a;
}

Action write_action(Block b, uint32_t off, uint32_t v) {
  Action a;
  a.op = ActionOp::Write;
  a.block = b, a.offset = off, a.value = v;
  return a;
}

void drop_job_boundaries(Recording* r) {
  std::erase_if(r->actions, [](const Action& a) { return a.op == ActionOp::JobBoundary; });
}

// The first page image of the region labelled `label`, for editing.
uint8_t* first_image(Recording* r, const std::string& label) {
  for (const PageLoad& l : r->loads)
    if (r->regions[l.region].label == label && l.page == 0 && l.blob != kZeroBlob)
      return r->blobs[l.blob].data.data();
  return nullptr;
}

uint32_t region_va(const Recording& r, const std::string& label) {
  for (const Region& g : r.regions)
    if (g.label == label) return g.gpu_va;
  return 0;
}

std::string text(const ReplayError& e) {
  char buf[256];
  return e.format(buf, sizeof buf);
}

// ---- finding 1: fail-open GPU setup ----------------------------------------------------

// The reset outlasts its poll. Before the fix the setup writes fell on a GPU still in
// reset, the flush polls passed on the unpowered GPU and the reset then completed with
// the MMU in bypass: a recording that first polls until the GPU answers again ran its
// jobs with VA = PA over the whole secure memory.
TEST(ReplayHardening, ResetThatOutlastsItsPollIsRefused) {
  Recording r = record_workload("v3d-7.1", ramp(1.f));
  r.actions.insert(r.actions.begin(),
                   poll_action(Block::Hub, v3d::HUB_IDENT1, ~0u, r.sku.hub_ident1, 1000000));
  ASSERT_EQ(verify_recording(r, r.sku).code, VerifyCode::Ok) << "the hostile recording verifies";
  ReplaySoc target("v3d-7.1", true);
  // Power-up then takes 70 ms (within its 100 ms), the reset 2 x 70 ms (beyond it).
  target.soc.faults().power_delay_us = 70000;
  std::vector<float> out;
  const ReplayError e = target.run(r, ramp(1.f), &out);
  EXPECT_EQ(e.code, ReplayCode::ResetTimeout) << text(e);
  EXPECT_EQ(target.soc.gpu().stats().jobs_submitted, 0u) << "no job ran";
  EXPECT_EQ(out, std::vector<float>(kN, 0.f));
  EXPECT_TRUE(target.platform->pool_is_clean());
  EXPECT_EQ(target.platform->pages_in_use(), 0u);
}

// A bus that loses one setup write (or a GPU that ignores it): the read-back refuses
// to run and names the register. Before the fix nothing was read back.
class DroppingPlatform final : public Platform {
 public:
  DroppingPlatform(Platform& inner, Block b, uint32_t off) : in_(inner), block_(b), off_(off) {}
  bool has_block(Block b) override { return in_.has_block(b); }
  uint32_t read32(Block b, uint32_t off) override { return in_.read32(b, off); }
  void write32(Block b, uint32_t off, uint32_t v) override {
    if (b != block_ || off != off_) in_.write32(b, off, v);
  }
  int num_irq_lines() override { return in_.num_irq_lines(); }
  bool wait_irq(int line, uint32_t us) override { return in_.wait_irq(line, us); }
  uint64_t now_us() override { return in_.now_us(); }
  void sleep_us(uint32_t us) override { in_.sleep_us(us); }
  bool alloc_pages(uint32_t n, bool c, uint64_t* pas) override {
    return in_.alloc_pages(n, c, pas);
  }
  void free_pages(const uint64_t* pas, uint32_t n) override { in_.free_pages(pas, n); }
  uint8_t* page(uint64_t pa) override { return in_.page(pa); }

 private:
  Platform& in_;
  Block block_;
  uint32_t off_;
};

TEST(ReplayHardening, SetupThatDoesNotTakeEffectIsRefused) {
  const Recording r = record_workload("v3d-7.1", ramp(1.f));
  const struct {
    uint32_t off;
    const char* name;
  } lost[] = {{v3d::MMU_CTL, "MMU_CTL"},
              {v3d::MMU_PT_PA_BASE, "MMU_PT_PA_BASE"},
              {v3d::MMU_ILLEGAL_ADDR, "MMU_ILLEGAL_ADDR"},
              {v3d::INT_MSK_CLR, "hub INT_MSK_STS"}};
  for (const auto& l : lost) {
    ReplaySoc target("v3d-7.1", true);
    DroppingPlatform bus(*target.oracle, Block::Hub, l.off);
    std::vector<float> out(kN, -1.f);
    const std::vector<float> in = ramp(1.f);
    TensorIn ti{"in", in.data(), kN * 4};
    TensorOut to{"out", out.data(), kN * 4};
    Replayer rp(bus);
    const ReplayError e = rp.run(r, {&ti, 1}, {&to, 1}, nullptr);
    EXPECT_EQ(e.code, ReplayCode::SetupMismatch) << l.name << ": " << text(e);
    EXPECT_STREQ(e.what, l.name);
    EXPECT_NE(text(e).find(l.name), std::string::npos) << text(e);
    EXPECT_EQ(target.soc.gpu().stats().jobs_submitted, 0u) << l.name;
    EXPECT_EQ(out, std::vector<float>(kN, 0.f));
    EXPECT_TRUE(target.platform->pool_is_clean());
  }
}

// ---- finding 2: faults a recording can hide --------------------------------------------

class HiddenFaultTest : public ::testing::TestWithParam<std::string> {};

// Without JobBoundary actions (which a recording may omit) the old replayer checked
// nothing: an access to an unmapped page ended in "success".
TEST_P(HiddenFaultTest, UnmappedAccessWithoutJobBoundaries) {
  Recording r = record_workload(GetParam(), ramp(1.f));
  drop_job_boundaries(&r);
  uint32_t* u1 = reinterpret_cast<uint32_t*>(first_image(&r, "u1"));
  ASSERT_NE(u1, nullptr);
  u1[0] = 0x7000000;  // the input pointer: no region there
  ReplaySoc target(GetParam(), true);
  std::vector<float> out;
  const ReplayError e = target.run(r, ramp(1.f), &out);
  EXPECT_EQ(e.code, ReplayCode::GpuFault) << text(e);
  EXPECT_EQ(e.address, 0x7000000u);
  EXPECT_NE(text(e).find("unmapped page"), std::string::npos) << text(e);
  EXPECT_NE(text(e).find("job 1"), std::string::npos) << text(e);
  EXPECT_EQ(out, std::vector<float>(kN, 0.f));
  EXPECT_TRUE(target.platform->pool_is_clean());
}

// A job that stores into the read-only weights.
TEST_P(HiddenFaultTest, WriteIntoAReadOnlyRegion) {
  Recording r = record_workload(GetParam(), ramp(1.f));
  drop_job_boundaries(&r);
  uint32_t* u1 = reinterpret_cast<uint32_t*>(first_image(&r, "u1"));
  ASSERT_NE(u1, nullptr);
  u1[1] = region_va(r, "bias");  // the output pointer
  ReplaySoc target(GetParam(), true);
  std::vector<float> out;
  const ReplayError e = target.run(r, ramp(1.f), &out);
  EXPECT_EQ(e.code, ReplayCode::GpuFault) << text(e);
  EXPECT_NE(text(e).find("read-only"), std::string::npos) << text(e);
  EXPECT_EQ(out, std::vector<float>(kN, 0.f));
}

// An illegal instruction: the QPU faults and the dispatch never completes. The
// interrupt wait returns (the fault interrupts), and the old replayer went on.
TEST_P(HiddenFaultTest, IllegalInstruction) {
  Recording r = record_workload(GetParam(), ramp(1.f));
  drop_job_boundaries(&r);
  uint8_t* code = first_image(&r, "kernel");
  ASSERT_NE(code, nullptr);
  const uint64_t trap = 0x7f;  // an undefined opcode (docs/isa.md)
  std::memcpy(code, &trap, 8);
  ReplaySoc target(GetParam(), true);
  std::vector<float> out;
  const ReplayError e = target.run(r, ramp(1.f), &out);
  EXPECT_EQ(e.code, ReplayCode::GpuFault) << text(e);
  EXPECT_NE(text(e).find("QPU fault"), std::string::npos) << text(e);
  EXPECT_EQ(out, std::vector<float>(kN, 0.f));
  EXPECT_TRUE(target.platform->pool_is_clean());
}

// A recording that ends right after starting its first job, on a GPU whose job hangs:
// the old replayer read the outputs of a job that never finished.
TEST_P(HiddenFaultTest, JobThatNeverFinishes) {
  Recording r = record_workload(GetParam(), ramp(1.f));
  const uint32_t cfg0 = hw::find_sku(GetParam())->csd_queued_cfg0;
  for (size_t i = 0; i < r.actions.size(); ++i)
    if (r.actions[i].op == ActionOp::Write && r.actions[i].block == Block::Core0 &&
        r.actions[i].offset == cfg0) {
      r.actions.resize(i + 1);
      break;
    }
  ASSERT_EQ(verify_recording(r, r.sku).code, VerifyCode::Ok);
  ReplaySoc target(GetParam(), true);
  target.soc.faults().hang_dispatches = 1;
  VerifyLimits limits;
  limits.max_poll_us = 50000;  // the end-of-stream grace, short for the test
  std::vector<float> out;
  const ReplayError e = target.run(r, ramp(1.f), &out, nullptr, limits);
  EXPECT_EQ(e.code, ReplayCode::JobUnfinished) << text(e);
  EXPECT_EQ(out, std::vector<float>(kN, 0.f));
  EXPECT_TRUE(target.platform->pool_is_clean());
}

// Jobs submitted faster than the queue takes them: the GPU drops one and says so in
// ERR_STAT only. The interrupt wait then times out, and the replayer says why.
TEST_P(HiddenFaultTest, QueueOverflow) {
  Recording r = record_workload(GetParam(), ramp(1.f));
  const uint32_t cfg0 = hw::find_sku(GetParam())->csd_queued_cfg0;
  size_t start = 0, end = 0;  // the first job's CFG writes
  for (size_t i = 0; i < r.actions.size(); ++i) {
    const Action& a = r.actions[i];
    if (a.op != ActionOp::Write || a.block != Block::Core0) continue;
    if (a.offset > cfg0 && a.offset < cfg0 + 32 && start == 0) start = i;
    if (a.offset == cfg0) {
      end = i + 1;
      break;
    }
  }
  ASSERT_LT(start, end);
  const std::vector<Action> job(r.actions.begin() + long(start), r.actions.begin() + long(end));
  for (int k = 0; k < 2; ++k)
    r.actions.insert(r.actions.begin() + long(end), job.begin(), job.end());
  for (Action& a : r.actions)
    if (a.op == ActionOp::WaitIrq) a.timeout_us = 100000;  // keep the test short
  ASSERT_EQ(verify_recording(r, r.sku).code, VerifyCode::Ok);
  ReplaySoc target(GetParam(), true);
  // The first job hangs, so the second waits in the queue and the third finds it full
  // (without the hang the first may finish before the third arrives).
  target.soc.faults().hang_dispatches = 1;
  std::vector<float> out;
  const ReplayError e = target.run(r, ramp(1.f), &out);
  EXPECT_EQ(e.code, ReplayCode::GpuFault) << text(e);
  EXPECT_NE(text(e).find("queue overflow"), std::string::npos) << text(e);
  EXPECT_EQ(out, std::vector<float>(kN, 0.f));
}

INSTANTIATE_TEST_SUITE_P(Skus, HiddenFaultTest, ::testing::Values("v3d-7.1", "v3d-4.2"));

// The recording may acknowledge job completion only: clearing a fault bit (hub INT_CLR
// at all, core INT_CLR beyond the job-done bit) fails verification.
TEST(ReplayHardening, RecordingsCannotClearFaultStatus) {
  for (const char* name : {"v3d-7.1", "v3d-4.2"}) {
    const Recording base = record_workload(name, ramp(1.f));
    const hw::Sku& s = *hw::find_sku(name);
    auto with = [&](Action a) {
      Recording r = base;
      r.actions.insert(r.actions.begin() + 1, a);
      return verify_recording(r, r.sku);
    };
    EXPECT_EQ(with(write_action(Block::Hub, v3d::INT_CLR, ~0u)).code,
              VerifyCode::RegisterNotAllowed);
    EXPECT_EQ(with(write_action(Block::Hub, v3d::INT_CLR, s.hub_fault_bits())).code,
              VerifyCode::RegisterNotAllowed);
    const VerifyError e = with(write_action(Block::Core0, v3d::INT_CLR, s.core_qpu_fault_bits()));
    EXPECT_EQ(e.code, VerifyCode::InterruptClearNotAllowed) << name;
    EXPECT_EQ(e.index, 1);
    EXPECT_EQ(with(write_action(Block::Core0, v3d::INT_CLR, ~0u)).code,
              VerifyCode::InterruptClearNotAllowed);
    EXPECT_EQ(with(write_action(Block::Core0, v3d::INT_CLR, s.core_int_csd_done)).code,
              VerifyCode::Ok)
        << "acknowledging job completion stays allowed";
  }
}

// ---- finding 3: checked arithmetic on recording fields ----------------------------------

// {1024, 993089953, 18139745} wrapped to 1024 elements under the old check
// (min(elems * d, 2^40) in 64 bits), so a 4096-byte binding passed with a shape whose
// extents reached the TA's image resize.
TEST(ReplayHardening, ShapeProductThatWrapsIsRejected) {
  Recording r = record_workload("v3d-7.1", ramp(1.f));
  r.bindings[0].shape = {1024, 993089953, 18139745};
  const VerifyError e = verify_recording(r, r.sku);
  EXPECT_EQ(e.code, VerifyCode::BindingSize);
  EXPECT_EQ(e.index, 0);
  for (const std::vector<uint32_t>& shape :
       std::vector<std::vector<uint32_t>>{{0xffffffffu, 0xffffffffu, 0xffffffffu},
                                          {1u << 16, 1u << 16, 1u << 16, 1u << 16, 1024},
                                          {0, kN},
                                          {},
                                          {kN, 1, 1, 1, 1, 1, 1, 2}}) {
    r.bindings[0].shape = shape;
    EXPECT_EQ(verify_recording(r, r.sku).code, VerifyCode::BindingSize) << shape.size();
  }
  r.bindings[0].shape = {1, 1, kN, 1};
  EXPECT_EQ(verify_recording(r, r.sku).code, VerifyCode::Ok);
}

TEST(ReplayHardening, CheckedArithmeticAtItsBoundaries) {
  uint64_t v = 7;
  EXPECT_TRUE(checked_mul(1ull << 32, (1ull << 32) - 1, &v));
  EXPECT_EQ(v, (1ull << 32) * ((1ull << 32) - 1));
  EXPECT_FALSE(checked_mul(1ull << 32, 1ull << 32, &v));
  EXPECT_EQ(v, (1ull << 32) * ((1ull << 32) - 1)) << "unchanged on overflow";
  EXPECT_TRUE(checked_add(UINT64_MAX - 1, 1, &v));
  EXPECT_EQ(v, UINT64_MAX);
  EXPECT_FALSE(checked_add(UINT64_MAX, 1, &v));
  const std::vector<uint32_t> at_limit = {4, 4}, over = {4, 5};
  EXPECT_EQ(element_count(at_limit, 16), 16u);
  EXPECT_EQ(element_count(over, 16), 0u);
  const std::vector<uint32_t> wraps = {0xffffffffu, 0xffffffffu, 0xffffffffu};
  EXPECT_EQ(element_count(wraps, UINT64_MAX), 0u);
}

// ---- finding 4: practical bounds on time and work -------------------------------------

// Every LoadMemory action used to walk its whole range: 10^5 actions sharing 10^5 loads
// took 10^10 steps. Now each load entry is checked once and each action in O(1).
TEST(ReplayHardening, VerificationIsLinearInTheFile) {
  Recording r = record_workload("v3d-7.1", ramp(1.f));
  const uint32_t n = 100000;
  const PageLoad any = r.loads.front();
  r.loads.assign(n, any);
  Action load;
  load.op = ActionOp::LoadMemory;
  load.first = 0, load.count = n;
  r.actions.insert(r.actions.begin(), n, load);
  VerifyLimits unlimited;
  unlimited.max_page_copies = UINT64_MAX;
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(verify_recording(r, r.sku, unlimited).code, VerifyCode::Ok);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(s, 2.0) << "quadratic verification (10^10 steps) takes minutes";
  // The default policy bounds what one run copies: 2^20 pages.
  const VerifyError e = verify_recording(r, r.sku);
  EXPECT_EQ(e.code, VerifyCode::TooMuchWork);
  EXPECT_EQ(e.index, 10) << "the 11th action takes the copies over 2^20";
}

// The run's time is bounded as a whole: a recording that declares 50 ms cannot hold the
// GPU for the sum of its waits (here one 1-second poll that never succeeds).
TEST(ReplayHardening, ReplayTimeBudgetBoundsTheWholeRun) {
  Recording r = record_workload("v3d-7.1", ramp(1.f));
  std::erase_if(r.metadata, [](const auto& kv) { return kv.first == kBudgetKey; });
  r.metadata.emplace_back(kBudgetKey, "50");
  r.actions.insert(r.actions.begin() + 1,
                   poll_action(Block::Hub, v3d::HUB_IDENT1, ~0u, ~r.sku.hub_ident1, 1000000));
  ReplaySoc target("v3d-7.1", true);
  std::vector<float> out;
  const auto t0 = std::chrono::steady_clock::now();
  const ReplayError e = target.run(r, ramp(1.f), &out);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(e.code, ReplayCode::BudgetExceeded) << text(e);
  EXPECT_LT(ms, 500.0) << "the 1 s poll was cut to the budget";
  EXPECT_EQ(out, std::vector<float>(kN, 0.f));
  EXPECT_TRUE(target.platform->pool_is_clean());
}

TEST(ReplayHardening, DeclaredBudgetIsCheckedAgainstThePolicy) {
  Recording r = record_workload("v3d-7.1", ramp(1.f));
  bool declared = false;
  for (const auto& [k, v] : r.metadata) declared |= k == kBudgetKey && std::stoul(v) >= 1000;
  EXPECT_TRUE(declared) << "the recorder declares a budget of at least a second";
  for (const char* bad : {"", "60001", "12a", "-5", "99999999999", "0"}) {
    std::erase_if(r.metadata, [](const auto& kv) { return kv.first == kBudgetKey; });
    r.metadata.emplace_back(kBudgetKey, bad);
    EXPECT_EQ(verify_recording(r, r.sku).code, VerifyCode::BadBudget) << "'" << bad << "'";
  }
  std::erase_if(r.metadata, [](const auto& kv) { return kv.first == kBudgetKey; });
  EXPECT_EQ(replay_budget_us(r, VerifyLimits{}), 60000000u) << "none declared: the policy's";
  EXPECT_EQ(verify_recording(r, r.sku).code, VerifyCode::Ok);
}

// ---- finding 5: one policy for verify and replay ---------------------------------------

TEST(ReplayHardening, SkuNameMustMatchTheIdentity) {
  Recording r = record_workload("v3d-7.1", ramp(1.f));
  r.sku_name = "v3d-4.2";
  EXPECT_EQ(verify_recording(r, r.sku).code, VerifyCode::SkuNameMismatch);
}

TEST(ReplayHardening, OnePolicyForEveryPoolSize) {
  const VerifyLimits l = limits_for_pool(128ull << 20);
  EXPECT_EQ(l.max_memory_bytes, 120ull << 20);
  EXPECT_EQ(limits_for_pool(4ull << 20).max_memory_bytes, 0u);
}

// ---- finding 7: errors a user can act on -----------------------------------------------

std::string text(const VerifyError& e) {
  char buf[256];
  return e.format(buf, sizeof buf);
}

TEST(ReplayHardening, VerifierErrorsNameTheRegisterValueAndOtherRegion) {
  const Recording base = record_workload("v3d-7.1", ramp(1.f));
  Recording r = base;
  r.actions.insert(r.actions.begin() + 2, write_action(Block::Hub, v3d::MMU_PT_PA_BASE, 0x1234));
  EXPECT_EQ(text(verify_recording(r, r.sku)),
            "action.offset[2]: write to a register outside the allowlist (register 0x1204, "
            "value 0x00001234)");
  r = base;
  r.regions[1].gpu_va = r.regions[0].gpu_va;
  const std::string overlap = text(verify_recording(r, r.sku));
  EXPECT_NE(overlap.find("regions overlap (with region"), std::string::npos) << overlap;
  const hw::Sku& other = *hw::find_sku("v3d-4.2");
  const SkuIdentity present{other.hub_ident1, other.hub_ident3, other.core_ident0,
                            other.core_ident1};
  EXPECT_EQ(text(verify_recording(base, present)),
            "sku: recorded on v3d-7.1, the GPU present is v3d-4.2");
}

}  // namespace
}  // namespace rplayer::replay
