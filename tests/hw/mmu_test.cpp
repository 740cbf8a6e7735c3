// MMU: translation, stale TLB and PTE-cache entries until flushed, faults.
#include <gtest/gtest.h>

#include "tests/hw/harness.h"
#include "tests/hw/kernels.h"

namespace rplayer::test {
namespace {

using namespace rplayer::v3d;
using hw::RegBlock;

class MmuTest : public ::testing::TestWithParam<std::string> {
 protected:
  MmuTest() : h(test_config(GetParam())) {}
  void SetUp() override {
    ASSERT_TRUE(h.init());
    out = h.alloc(4096);
    shader = h.load_shader(kCopyPlusOne);
    page_a = h.alloc_pages(1);
    page_b = h.alloc_pages(1);
    for (int i = 0; i < 16; ++i) {
      reinterpret_cast<uint32_t*>(h.cpu(page_a))[i] = 100 + i;
      reinterpret_cast<uint32_t*>(h.cpu(page_b))[i] = 200 + i;
    }
    h.map(kSrcVa, page_a, 1, false);
    ASSERT_TRUE(h.flush_mmu());
    uniforms = h.load_uniforms({kSrcVa, out.va, 16});
  }
  uint32_t run_first() {
    EXPECT_TRUE(h.dispatch(shader, uniforms));
    return h.read<uint32_t>(out, 1)[0];
  }
  static constexpr uint32_t kSrcVa = 0x4000000;
  Harness h;
  Buffer out, shader, uniforms;
  uint64_t page_a = 0, page_b = 0;
};

TEST_P(MmuTest, TranslatesThroughThePageTable) {
  EXPECT_EQ(run_first(), 101u);
  h.map(kSrcVa, page_b, 1, false);
  ASSERT_TRUE(h.flush_mmu());
  EXPECT_EQ(run_first(), 201u);
}

TEST_P(MmuTest, TlbServesStaleEntriesUntilCleared) {
  EXPECT_EQ(run_first(), 101u);
  h.map(kSrcVa, page_b, 1, false);  // PTE changed, no flush
  EXPECT_EQ(run_first(), 101u) << "stale TLB entry";
  // A TLB clear alone refills from the PTE cache, which still holds the old line.
  h.hub(MMU_CTL, h.hub(MMU_CTL) | MMU_CTL_TLB_CLEAR);
  ASSERT_GT(h.poll(RegBlock::Hub, MMU_CTL, MMU_CTL_TLB_CLEARING, 0), 0);
  EXPECT_EQ(run_first(), 101u) << "stale MMUC line";
  h.hub(MMUC_CONTROL, MMUC_CONTROL_FLUSH | MMUC_CONTROL_ENABLE);
  ASSERT_GT(h.poll(RegBlock::Hub, MMUC_CONTROL, MMUC_CONTROL_FLUSHING, 0), 0);
  EXPECT_EQ(run_first(), 101u) << "TLB still holds the translation it refilled";
  h.hub(MMU_CTL, h.hub(MMU_CTL) | MMU_CTL_TLB_CLEAR);
  ASSERT_GT(h.poll(RegBlock::Hub, MMU_CTL, MMU_CTL_TLB_CLEARING, 0), 0);
  EXPECT_EQ(run_first(), 201u);
}

TEST_P(MmuTest, ShootDownDropsOneEntry) {
  EXPECT_EQ(run_first(), 101u);
  h.map(kSrcVa, page_b, 1, false);
  h.hub(MMUC_CONTROL, MMUC_CONTROL_FLUSH | MMUC_CONTROL_ENABLE);
  ASSERT_GT(h.poll(RegBlock::Hub, MMUC_CONTROL, MMUC_CONTROL_FLUSHING, 0), 0);
  h.hub(MMU_SHOOT_DOWN, MMU_SHOOT_DOWN_SHOOT | (kSrcVa >> PAGE_SHIFT));
  EXPECT_EQ(run_first(), 201u);
}

TEST_P(MmuTest, InvalidPteFaultsAndLatchesTheAddress) {
  h.unmap(kSrcVa, 1);
  ASSERT_TRUE(h.flush_mmu());
  EXPECT_EQ(run_first(), 1u) << "aborted loads read 0";
  EXPECT_EQ(h.hub(MMU_VIO_ADDR), kSrcVa);
  EXPECT_TRUE(h.hub(MMU_CTL) & MMU_CTL_PT_INVALID);
  EXPECT_TRUE((h.hub(INT_STS) | h.hub_int_seen) & HUB_INT_MMU_PTI);
  EXPECT_GT(h.soc().gpu().stats().mmu_faults, 0u);
}

TEST_P(MmuTest, WriteToReadOnlyPageIsAViolation) {
  Buffer sh = h.load_shader("unif r0\nmov r1, #7\nst [r0], r1\nend\n");
  Buffer un = h.load_uniforms({kSrcVa});
  ASSERT_TRUE(h.dispatch(sh, un));
  EXPECT_EQ(reinterpret_cast<uint32_t*>(h.cpu(page_a))[0], 100u) << "store aborted";
  EXPECT_TRUE(h.hub(MMU_CTL) & MMU_CTL_WRITE_VIOLATION);
  EXPECT_TRUE((h.hub(INT_STS) | h.hub_int_seen) & HUB_INT_MMU_WRV);
  EXPECT_EQ(h.hub(MMU_VIO_ADDR), kSrcVa);
}

TEST_P(MmuTest, WithoutAbortFaultingAccessesGoToTheIllegalAddressPage) {
  h.hub(MMU_CTL, h.hub(MMU_CTL) & ~(MMU_CTL_PT_INVALID_ABORT | MMU_CTL_WRITE_VIOLATION_ABORT));
  Buffer sh = h.load_shader("unif r0\nmov r1, #0x5a5a\nst [r0 + 8], r1\nend\n");
  Buffer un = h.load_uniforms({0x7000000});  // unmapped
  ASSERT_TRUE(h.dispatch(sh, un));
  EXPECT_EQ(reinterpret_cast<uint32_t*>(h.cpu(h.scratch_pa()))[2], 0x5a5au);
  EXPECT_TRUE(h.hub(MMU_CTL) & MMU_CTL_PT_INVALID);
}

TEST_P(MmuTest, PageTableOutsideDramIsABusError) {
  h.hub(MMU_PT_PA_BASE, 0x0fffffff);
  ASSERT_TRUE(h.flush_mmu());
  EXPECT_EQ(h.soc().gpu().stats().gmp_violations, 0u);
  h.submit(shader, uniforms, {});
  // The shader fetch itself faults: the job hangs, a QPU fault is raised.
  EXPECT_FALSE(h.wait_csd_done(std::chrono::milliseconds(100)));
  EXPECT_GT(h.soc().gpu().stats().gmp_violations, 0u);
}

INSTANTIATE_TEST_SUITE_P(Skus, MmuTest, ::testing::Values("v3d-7.1", "v3d-4.2"));

}  // namespace
}  // namespace rplayer::test
