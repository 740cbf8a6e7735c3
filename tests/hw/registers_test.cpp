// Register interface: identification, reset values, side effects, SKU differences.
#include <gtest/gtest.h>

#include "hw/sku.h"
#include "tests/hw/harness.h"

namespace rplayer::test {
namespace {

using namespace rplayer::v3d;
using hw::RegBlock;

class RegistersTest : public ::testing::TestWithParam<std::string> {};

TEST_P(RegistersTest, IdentRegistersIdentifyTheSku) {
  Harness h(test_config(GetParam()));
  ASSERT_TRUE(h.power_on());
  const hw::Sku& s = h.sku();
  EXPECT_EQ(h.hub(HUB_IDENT1), s.hub_ident1);
  EXPECT_EQ(h.hub(HUB_IDENT2), s.hub_ident2);
  EXPECT_EQ(h.hub(HUB_IDENT3), s.hub_ident3);
  EXPECT_EQ(h.core(CTL_IDENT0), s.core_ident0);
  EXPECT_EQ(h.core(CTL_IDENT1), s.core_ident1);
  EXPECT_EQ(h.hub(MMU_DEBUG_INFO), s.mmu_debug_info);
  const uint32_t id1 = h.hub(HUB_IDENT1);
  EXPECT_EQ(get_field(id1, 3, 0) * 10 + get_field(id1, 7, 4), s.version());
  EXPECT_EQ(get_field(h.core(CTL_IDENT1), 11, 8) * get_field(h.core(CTL_IDENT1), 7, 4),
            uint32_t(s.num_qpus()));
  EXPECT_EQ(hw::identify_sku(h.hub(HUB_IDENT1), h.hub(HUB_IDENT3), h.core(CTL_IDENT0),
                             h.core(CTL_IDENT1)),
            &s);
}

TEST_P(RegistersTest, UnknownOffsetsReadZeroAndWritesAreCounted) {
  Harness h(test_config(GetParam()));
  ASSERT_TRUE(h.power_on());
  EXPECT_EQ(h.hub(0x3ffc), 0u);
  EXPECT_EQ(h.core(0x0ff0), 0u);
  const uint64_t before = h.soc().gpu().stats().unknown_writes;
  h.hub(0x3ffc, 0x1234);
  h.core(0x0ff0, 0x1);
  h.hub(HUB_IDENT1, 0);  // read-only
  h.hub(0x10000, 1);     // outside the block
  EXPECT_EQ(h.soc().gpu().stats().unknown_writes, before + 4);
  EXPECT_EQ(h.hub(HUB_IDENT1), h.sku().hub_ident1);
}

TEST_P(RegistersTest, InterruptRegistersSetClearAndMask) {
  Harness h(test_config(GetParam()));
  ASSERT_TRUE(h.power_on());
  EXPECT_EQ(h.core(INT_MSK_STS), ~0u) << "all interrupts masked out of reset";
  EXPECT_EQ(h.core(INT_STS), 0u);
  const int line = h.core_irq_line();
  h.core(INT_SET, bit(3));
  EXPECT_EQ(h.core(INT_STS), bit(3));
  EXPECT_FALSE(h.soc().irq().level(line)) << "masked";
  h.core(INT_MSK_CLR, bit(3));
  EXPECT_EQ(h.core(INT_MSK_STS), ~bit(3));
  EXPECT_TRUE(h.soc().irq().level(line));
  EXPECT_TRUE(h.port().wait_irq(line, std::chrono::microseconds(1000)));
  h.core(INT_CLR, bit(3));  // write 1 to clear
  EXPECT_EQ(h.core(INT_STS), 0u);
  EXPECT_FALSE(h.soc().irq().level(line));
  EXPECT_FALSE(h.port().wait_irq(line, std::chrono::microseconds(1000)));
  h.core(INT_SET, bit(3));
  h.core(INT_MSK_SET, bit(3));
  EXPECT_FALSE(h.soc().irq().level(line));
}

TEST_P(RegistersTest, HubAndCoreLinesFollowTheSku) {
  Harness h(test_config(GetParam()));
  ASSERT_TRUE(h.power_on());
  h.hub(INT_MSK_CLR, HUB_INT_MMU_PTI);
  h.hub(INT_SET, HUB_INT_MMU_PTI);
  if (h.sku().num_irq_lines == 2) {
    EXPECT_TRUE(h.soc().irq().level(0));
    EXPECT_FALSE(h.soc().irq().level(1));
  } else {
    EXPECT_TRUE(h.soc().irq().level(0)) << "4.2: hub and core share one line";
  }
}

TEST_P(RegistersTest, MmuCtlStatusBitsAreWriteOneToClear) {
  Harness h(test_config(GetParam()));
  ASSERT_TRUE(h.init());
  const uint32_t cfg = h.hub(MMU_CTL);
  EXPECT_TRUE(cfg & MMU_CTL_ENABLE);
  EXPECT_FALSE(cfg & MMU_CTL_PT_INVALID);
  // Fault once: access an unmapped page.
  Buffer out = h.alloc(4096);
  Buffer sh = h.load_shader("unif r0\nunif r1\nld r2, [r0]\nst [r1], r2\nend\n");
  Buffer un = h.load_uniforms({0x7000000, out.va});
  ASSERT_TRUE(h.dispatch(sh, un));
  const uint32_t after = h.hub(MMU_CTL);
  EXPECT_TRUE(after & MMU_CTL_PT_INVALID);
  h.hub(MMU_CTL, after);  // Linux's handler writes the value back to clear it
  EXPECT_FALSE(h.hub(MMU_CTL) & MMU_CTL_PT_INVALID);
  EXPECT_EQ(h.hub(MMU_CTL) & ~MMU_CTL_TLB_CLEARING, cfg);
}

TEST_P(RegistersTest, BusyBitsTakeTimeAndClearThemselves) {
  hw::SocConfig cfg = test_config(GetParam());
  cfg.timing.scale = 100;  // hundreds of microseconds: observable right after the write
  Harness h(cfg);
  ASSERT_TRUE(h.init());
  h.hub(MMUC_CONTROL, MMUC_CONTROL_FLUSH | MMUC_CONTROL_ENABLE);
  EXPECT_TRUE(h.hub(MMUC_CONTROL) & MMUC_CONTROL_FLUSHING) << "busy right after the write";
  EXPECT_GT(h.poll(RegBlock::Hub, MMUC_CONTROL, MMUC_CONTROL_FLUSHING, 0), 1);
  h.hub(MMU_CTL, h.hub(MMU_CTL) | MMU_CTL_TLB_CLEAR);
  EXPECT_TRUE(h.hub(MMU_CTL) & MMU_CTL_TLB_CLEARING);
  EXPECT_GT(h.poll(RegBlock::Hub, MMU_CTL, MMU_CTL_TLB_CLEARING, 0), 1);
  h.core(CTL_L2TCACTL, L2TCACTL_TMUWCF);
  EXPECT_TRUE(h.core(CTL_L2TCACTL) & L2TCACTL_TMUWCF);
  EXPECT_GT(h.poll(RegBlock::Core0, CTL_L2TCACTL, L2TCACTL_TMUWCF, 0), 1);
  h.core(CTL_L2TCACTL, L2TCACTL_L2TFLS | (L2TCACTL_FLM_CLEAN << L2TCACTL_FLM_SHIFT));
  EXPECT_EQ(h.core(CTL_L2TCACTL) & (L2TCACTL_L2TFLS | L2TCACTL_FLM_MASK),
            L2TCACTL_L2TFLS | (L2TCACTL_FLM_CLEAN << L2TCACTL_FLM_SHIFT));
  EXPECT_GT(h.poll(RegBlock::Core0, CTL_L2TCACTL, L2TCACTL_L2TFLS, 0), 1);
  h.core(CTL_SLCACTL, 0x0f0f0f0f);
  EXPECT_EQ(h.core(CTL_SLCACTL), 0u) << "self-clearing";
}

TEST_P(RegistersTest, PerfCountersCountInstructionsAndClear) {
  Harness h(test_config(GetParam()));
  ASSERT_TRUE(h.init());
  h.core(PCTR_0_SRC_0_3, 1 | (2 << 8));  // counter 0: QPU instructions, 1: CSD jobs
  h.core(PCTR_0_EN, 0x3);
  h.core(PCTR_0_CLR, 0x3);
  EXPECT_EQ(h.core(PCTR_0_PCTR0), 0u);
  Buffer out = h.alloc(4096);
  Buffer sh = h.load_shader("mov r0, #1\nmov r1, #2\nend\n");
  Buffer un = h.load_uniforms({out.va});
  DispatchOptions o;
  o.wg[0] = 4;
  ASSERT_TRUE(h.dispatch(sh, un, o));
  EXPECT_EQ(h.core(PCTR_0_PCTR0), 12u) << "3 instructions x 4 workgroups of one batch";
  EXPECT_EQ(h.core(PCTR_0_PCTR0 + 4), 1u);
  h.core(PCTR_0_EN, 0);
  ASSERT_TRUE(h.dispatch(sh, un, o));
  EXPECT_EQ(h.core(PCTR_0_PCTR0), 12u) << "frozen while disabled";
  h.core(PCTR_0_CLR, 0x1);
  EXPECT_EQ(h.core(PCTR_0_PCTR0), 0u);
}

INSTANTIATE_TEST_SUITE_P(Skus, RegistersTest, ::testing::Values("v3d-7.1", "v3d-4.2"));

TEST(SkuDifferences, CsdLayoutInterruptBitsAndCachesDiffer) {
  const hw::Sku* a = hw::find_sku("v3d-7.1");
  const hw::Sku* b = hw::find_sku("v3d-4.2");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->csd_queued_cfg0, 0x930u);
  EXPECT_EQ(b->csd_queued_cfg0, 0x904u);
  EXPECT_EQ(a->csd_num_cfg, 8);
  EXPECT_EQ(b->csd_num_cfg, 7);
  EXPECT_EQ(a->core_int_csd_done, bit(6));
  EXPECT_EQ(b->core_int_csd_done, bit(7));
  EXPECT_EQ(a->mmuc_clear_bit, bit(11));
  EXPECT_EQ(b->mmuc_clear_bit, bit(3));
  EXPECT_FALSE(a->csd_cfg4_minus_one);
  EXPECT_TRUE(b->csd_cfg4_minus_one);
  EXPECT_NE(a->num_qpus(), b->num_qpus());
  EXPECT_NE(a->l2t_bytes, b->l2t_bytes);
  EXPECT_NE(a->hub_ident1, b->hub_ident1);
  EXPECT_EQ(hw::find_sku("v3d-9.9"), nullptr);
  EXPECT_THROW(hw::ModeledSoc(test_config("v3d-9.9")), std::invalid_argument);
}

TEST(SkuDifferences, A71ProgramOnA42LandsOnOtherRegisters) {
  // The 7.1 CSD CFG0 offset is not a CSD register on 4.2: the job never starts.
  Harness h(test_config("v3d-4.2"));
  ASSERT_TRUE(h.init());
  const uint64_t before = h.soc().gpu().stats().unknown_writes;
  h.core(0x930, 1u << 16);
  EXPECT_EQ(h.soc().gpu().stats().unknown_writes, before + 1);
  EXPECT_EQ(h.core(CSD_STATUS), 0u);
  EXPECT_EQ(h.soc().gpu().stats().jobs_submitted, 0u);
}

}  // namespace
}  // namespace rplayer::test
