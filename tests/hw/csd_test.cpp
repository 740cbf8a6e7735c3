// CSD compute dispatch end to end with hand-written kernels.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "tests/hw/harness.h"
#include "tests/hw/kernels.h"

namespace rplayer::test {
namespace {

using namespace rplayer::v3d;
using hw::RegBlock;

class CsdTest : public ::testing::TestWithParam<std::string> {
 protected:
  CsdTest() : h(test_config(GetParam())) {}
  void SetUp() override { ASSERT_TRUE(h.init()); }
  Harness h;
};

TEST_P(CsdTest, VectorAddAcrossManyWorkgroups) {
  constexpr uint32_t n = 10000;  // not a multiple of the workgroup size
  Buffer a = h.alloc(n * 4), b = h.alloc(n * 4), c = h.alloc(n * 4);
  std::vector<float> va(n), vb(n);
  for (uint32_t i = 0; i < n; ++i) {
    va[i] = float(i) * 0.5f;
    vb[i] = std::sin(float(i));
  }
  h.write(a, va.data(), n * 4);
  h.write(b, vb.data(), n * 4);
  Buffer sh = h.load_shader(kVectorAdd);
  Buffer un = h.load_uniforms({a.va, b.va, c.va, n});
  DispatchOptions o;
  o.wg_size = 64;
  o.wg[0] = (n + 63) / 64;
  ASSERT_TRUE(h.dispatch(sh, un, o));
  const auto vc = h.read<float>(c, n);
  for (uint32_t i = 0; i < n; ++i) ASSERT_EQ(vc[i], va[i] + vb[i]) << i;
  const hw::GpuStats s = h.soc().gpu().stats();
  EXPECT_EQ(s.jobs_completed, 1u);
  EXPECT_EQ(s.workgroups, o.wg[0]);
  EXPECT_GT(s.qpu_instructions, 0u);
}

TEST_P(CsdTest, ReductionWithSharedMemoryAndBarriers) {
  constexpr uint32_t wgs = 8;
  Buffer in = h.alloc(wgs * 256 * 4), out = h.alloc(wgs * 4);
  std::vector<int32_t> v(wgs * 256);
  for (size_t i = 0; i < v.size(); ++i) v[i] = int32_t(i * 7 % 1000) - 300;
  h.write(in, v.data(), v.size() * 4);
  Buffer sh = h.load_shader(kReduce256);
  Buffer un = h.load_uniforms({in.va, out.va});
  DispatchOptions o;
  o.wg_size = 256;
  o.wg[0] = wgs;
  ASSERT_TRUE(h.dispatch(sh, un, o));
  const auto r = h.read<int32_t>(out, wgs);
  for (uint32_t w = 0; w < wgs; ++w)
    EXPECT_EQ(r[w], std::accumulate(v.begin() + w * 256, v.begin() + (w + 1) * 256, 0)) << w;
}

TEST_P(CsdTest, RunsAsynchronouslyAndReportsStatus) {
  Buffer out = h.alloc(4096);
  Buffer sh = h.load_shader(kSpin);
  Buffer un = h.load_uniforms({5000000, out.va});  // tens of ms: robust to preemption
  EXPECT_EQ(h.core(CSD_STATUS), 0u);
  h.submit(sh, un, {});
  const uint32_t st = h.core(CSD_STATUS);
  EXPECT_TRUE(st & CSD_STATUS_HAVE_CURRENT) << "the CFG0 write returns before the job ends";
  EXPECT_EQ(get_field(st, 3, 2), 1u);
  EXPECT_TRUE(h.wait_csd_done(std::chrono::milliseconds(5000)));
  EXPECT_EQ(get_field(h.core(CSD_STATUS), 11, 4), 1u) << "completed count";
  EXPECT_FALSE(h.core(CSD_STATUS) & CSD_STATUS_HAVE_CURRENT);
}

TEST_P(CsdTest, SecondJobWaitsInTheQueue) {
  Buffer out = h.alloc(4096);
  Buffer sh = h.load_shader(kSpin);
  Buffer un = h.load_uniforms({3000000, out.va});
  h.submit(sh, un, {});
  h.submit(sh, un, {});
  const uint32_t st = h.core(CSD_STATUS);
  EXPECT_TRUE(st & CSD_STATUS_HAVE_QUEUED);
  EXPECT_EQ(get_field(st, 3, 2), 2u);
  // A third submission overflows the two-entry queue.
  h.submit(sh, un, {});
  EXPECT_TRUE(h.core(CTL_ERR_STAT) & ERR_CSD_QUEUE_OVERFLOW);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (get_field(h.core(CSD_STATUS), 11, 4) < 2 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(get_field(h.core(CSD_STATUS), 11, 4), 2u);
}

TEST_P(CsdTest, MaskedCompletionDoesNotAssertTheLine) {
  Buffer out = h.alloc(4096);
  Buffer sh = h.load_shader("end\n");
  Buffer un = h.load_uniforms({out.va});
  const uint32_t done = h.sku().core_int_csd_done;
  h.core(INT_MSK_SET, done);
  h.submit(sh, un, {});
  EXPECT_GT(h.poll(RegBlock::Core0, INT_STS, done, done, std::chrono::milliseconds(1000)), 0);
  EXPECT_FALSE(h.port().wait_irq(h.core_irq_line(), std::chrono::microseconds(2000)));
  h.core(INT_MSK_CLR, done);
  EXPECT_TRUE(h.port().wait_irq(h.core_irq_line(), std::chrono::microseconds(2000)));
  h.core(INT_CLR, done);
}

TEST_P(CsdTest, Cfg4MustMatchTheBatchCount) {
  Buffer out = h.alloc(4096);
  Buffer sh = h.load_shader("end\n");
  Buffer un = h.load_uniforms({out.va});
  DispatchOptions o;
  o.wg[0] = 4;
  // The other SKU's encoding of 4 batches: one batch too many on 4.2 (hangs), one
  // too few on 7.1 (finishes early).
  const bool minus_one = h.sku().csd_cfg4_minus_one;
  o.cfg4_override = minus_one ? 4 : 3;
  o.timeout = std::chrono::milliseconds(200);
  if (minus_one) {
    EXPECT_FALSE(h.dispatch(sh, un, o)) << "waits for a fifth batch that never comes";
    EXPECT_EQ(h.core(h.sku().csd_current_cfg0 + 16), 0u) << "one batch remains: encoded 0";
  } else {
    ASSERT_TRUE(h.dispatch(sh, un, o));
    EXPECT_EQ(h.soc().gpu().stats().workgroups, 3u) << "only three batches ran";
  }
}

TEST_P(CsdTest, IllegalInstructionRaisesAQpuInterruptAndHangsTheJob) {
  Buffer out = h.alloc(4096);
  Buffer sh = h.load_shader(".word 0x7f\nend\n");
  Buffer un = h.load_uniforms({out.va});
  h.submit(sh, un, {});
  EXPECT_FALSE(h.wait_csd_done(std::chrono::milliseconds(100)));
  EXPECT_TRUE(h.core_int_seen & (0xfffu << h.sku().core_int_qpu_shift));
  EXPECT_TRUE(h.core(CTL_ERR_STAT) & ERR_QPU_FAULT);
  EXPECT_TRUE(h.core(CSD_STATUS) & CSD_STATUS_HAVE_CURRENT) << "never completes";
}

INSTANTIATE_TEST_SUITE_P(Skus, CsdTest, ::testing::Values("v3d-7.1", "v3d-4.2"));

}  // namespace
}  // namespace rplayer::test
