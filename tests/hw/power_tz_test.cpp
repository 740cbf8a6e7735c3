// Power and reset state machines, and TrustZone partitioning of the GPU.
#include <gtest/gtest.h>

#include "tests/hw/harness.h"
#include "tests/hw/kernels.h"

namespace rplayer::test {
namespace {

using namespace rplayer::v3d;
using hw::RegBlock;
using hw::World;

TEST(Power, V71StartsPoweredOffAndPowersUpThroughSms) {
  hw::SocConfig cfg = test_config("v3d-7.1");
  cfg.timing.scale = 100;  // transitions observable even on a loaded machine
  Harness h(cfg);
  EXPECT_EQ(h.rd(RegBlock::Sms, SMS_TEE_CS) & SMS_STATE_MASK, SMS_POWER_OFF_STATE);
  EXPECT_EQ(h.hub(HUB_IDENT1), 0u) << "an unpowered block reads 0";
  EXPECT_GT(h.soc().gpu().stats().unpowered_accesses, 0u);
  h.wr(RegBlock::Sms, SMS_TEE_CS, SMS_CLEAR_POWER_OFF);
  const int polls = h.poll(RegBlock::Sms, SMS_TEE_CS, SMS_STATE_MASK, SMS_IDLE);
  EXPECT_GT(polls, 1) << "power-up takes modeled time";
  EXPECT_EQ(h.hub(HUB_IDENT1), h.sku().hub_ident1);
  h.wr(RegBlock::Sms, SMS_TEE_CS, SMS_POWER_OFF);
  EXPECT_EQ(h.rd(RegBlock::Sms, SMS_TEE_CS) & SMS_STATE_MASK, SMS_ISOLATING_FOR_POWER_OFF);
  EXPECT_GT(h.poll(RegBlock::Sms, SMS_TEE_CS, SMS_STATE_MASK, SMS_POWER_OFF_STATE), 0);
  EXPECT_EQ(h.hub(HUB_IDENT1), 0u);
}

TEST(Power, SmsResetWalksItsStatesAndRestoresResetValues) {
  hw::SocConfig cfg = test_config("v3d-7.1");
  cfg.timing.scale = 100;  // milliseconds per step: observable even on a loaded machine
  Harness h(cfg);
  ASSERT_TRUE(h.init());
  EXPECT_NE(h.hub(MMU_PT_PA_BASE), 0u);
  h.wr(RegBlock::Sms, SMS_REE_CS, SMS_RESET_REQUEST);
  EXPECT_EQ(h.rd(RegBlock::Sms, SMS_REE_CS) & SMS_STATE_MASK, SMS_ISOLATING_FOR_RESET);
  EXPECT_GT(h.poll(RegBlock::Sms, SMS_REE_CS, SMS_STATE_MASK, SMS_IDLE), 1);
  EXPECT_EQ(h.hub(MMU_PT_PA_BASE), 0u);
  EXPECT_EQ(h.hub(MMU_CTL), 0u);
  EXPECT_EQ(h.core(INT_MSK_STS), ~0u);
  EXPECT_EQ(h.soc().gpu().stats().resets, 2u) << "power-up and this reset";
  ASSERT_TRUE(h.init());  // and the GPU works again
  Buffer out = h.alloc(4096);
  Buffer sh = h.load_shader("unif r0\nmov r1, #9\nst [r0], r1\nend\n");
  Buffer un = h.load_uniforms({out.va});
  ASSERT_TRUE(h.dispatch(sh, un));
  EXPECT_EQ(h.read<uint32_t>(out, 1)[0], 9u);
}

TEST(Power, V42ResetsThroughTheBridge) {
  Harness h(test_config("v3d-4.2"));
  EXPECT_FALSE(h.port().has_block(RegBlock::Sms));
  ASSERT_TRUE(h.init());
  EXPECT_EQ(h.rd(RegBlock::Bridge, BRIDGE_REVISION), h.sku().bridge_revision);
  h.wr(RegBlock::Bridge, BRIDGE_SW_INIT_0, BRIDGE_SW_INIT_V3D);
  EXPECT_EQ(h.hub(HUB_IDENT1), 0u) << "held in reset";
  h.wr(RegBlock::Bridge, BRIDGE_SW_INIT_0, 0);
  EXPECT_EQ(h.hub(HUB_IDENT1), h.sku().hub_ident1);
  EXPECT_EQ(h.hub(MMU_PT_PA_BASE), 0u);
}

TEST(TrustZone, NormalWorldCannotReachTheCarveOutOrTheTzpc) {
  Harness h(test_config());
  hw::MemoryWindow nw = h.soc().port(World::Normal).memory();
  hw::MemoryWindow sw = h.soc().port(World::Secure).memory();
  EXPECT_EQ(nw.size, h.soc().memory().normal_size());
  EXPECT_FALSE(nw.contains(h.soc().memory().secure_base(), 4));
  EXPECT_TRUE(sw.contains(h.soc().memory().secure_base(), 4));
  EXPECT_EQ(h.rd(RegBlock::Tzpc, TZPC_STATUS), 0u);
  h.wr(RegBlock::Tzpc, TZPC_GPU_SECURE, 1);
  EXPECT_EQ(h.soc().gpu().stats().tz_violations, 2u);
  EXPECT_FALSE(h.soc().gpu().secure());
}

// Moves the GPU to the secure world through the given control and back.
class WorldSwitch : public ::testing::TestWithParam<bool> {};

TEST_P(WorldSwitch, SecureGpuIsInvisibleToTheNormalWorld) {
  const bool use_sms = GetParam();
  Harness normal(test_config("v3d-7.1"));
  ASSERT_TRUE(normal.init());
  hw::SocPort& sec = normal.soc().port(World::Secure);
  auto switch_to = [&](bool secure) {
    if (use_sms)
      sec.write32(RegBlock::Sms, SMS_TEE_CS, secure ? SMS_SVP_MODE_ENTER : SMS_SVP_MODE_EXIT);
    else
      sec.write32(RegBlock::Tzpc, TZPC_GPU_SECURE, secure);
    for (int i = 0; i < 1000 && (sec.read32(RegBlock::Tzpc, TZPC_STATUS) & TZPC_STATUS_SWITCHING);
         ++i)
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    return bool(sec.read32(RegBlock::Tzpc, TZPC_STATUS) & TZPC_STATUS_SECURE) == secure;
  };
  // The normal world cannot do it itself.
  normal.wr(RegBlock::Sms, SMS_TEE_CS, SMS_SVP_MODE_ENTER);
  std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_FALSE(normal.soc().gpu().secure());
  const uint64_t v0 = normal.soc().gpu().stats().tz_violations;
  EXPECT_EQ(v0, 1u);

  ASSERT_TRUE(switch_to(true));
  EXPECT_EQ(sec.read32(RegBlock::Hub, HUB_IDENT1), normal.sku().hub_ident1);
  EXPECT_EQ(normal.hub(HUB_IDENT1), 0u) << "normal-world reads return 0";
  normal.hub(MMU_PT_PA_BASE, 0x1234);  // dropped
  normal.wr(RegBlock::Sms, SMS_REE_CS, SMS_RESET_REQUEST);  // dropped
  EXPECT_EQ(sec.read32(RegBlock::Hub, MMU_PT_PA_BASE), 0u) << "the switch reset the GPU";
  EXPECT_EQ(normal.soc().gpu().stats().tz_violations, v0 + 3);
  EXPECT_EQ(sec.read32(RegBlock::Tzpc, TZPC_VIOLATIONS), v0 + 3);
  // Interrupts go to the secure world only.
  sec.write32(RegBlock::Core0, INT_MSK_CLR, bit(3));
  sec.write32(RegBlock::Core0, INT_SET, bit(3));
  EXPECT_TRUE(sec.wait_irq(1, std::chrono::microseconds(1000)));
  EXPECT_FALSE(normal.port().wait_irq(1, std::chrono::microseconds(1000)));

  ASSERT_TRUE(switch_to(false));
  EXPECT_EQ(normal.hub(HUB_IDENT1), normal.sku().hub_ident1);
  EXPECT_EQ(normal.core(INT_STS), 0u) << "no secure-world state survives the switch";
  EXPECT_EQ(normal.soc().gpu().stats().world_switches, 2u);
}

INSTANTIATE_TEST_SUITE_P(Controls, WorldSwitch, ::testing::Values(false, true),
                         [](const auto& i) { return i.param ? "Sms" : "Tzpc"; });

TEST(TrustZone, NonSecureGpuDmaIntoTheCarveOutFaults) {
  Harness h(test_config());
  ASSERT_TRUE(h.init());
  const uint64_t secret_pa = h.soc().memory().secure_base() + 0x10000;
  *reinterpret_cast<uint32_t*>(h.cpu(secret_pa)) = 0xC0FFEE;
  h.map(0x5000000, secret_pa, 1, true);  // a hostile PTE
  ASSERT_TRUE(h.flush_mmu());
  Buffer out = h.alloc(4096);
  Buffer sh =
      h.load_shader("unif r0\nunif r1\nld r2, [r0]\nst [r1], r2\nmov r3, #1\nst [r0], r3\nend\n");
  Buffer un = h.load_uniforms({0x5000000, out.va});
  ASSERT_TRUE(h.dispatch(sh, un));
  EXPECT_EQ(h.read<uint32_t>(out, 1)[0], 0u) << "the secret did not leak";
  EXPECT_EQ(*reinterpret_cast<uint32_t*>(h.cpu(secret_pa)), 0xC0FFEEu) << "nor was it written";
  EXPECT_EQ(h.soc().gpu().stats().gmp_violations, 2u);
  EXPECT_TRUE(h.hub(INT_STS) & h.sku().hub_int_gmpv);
  EXPECT_EQ(h.hub(MMU_VIO_ADDR), 0x5000000u);
}

TEST(TrustZone, SecureGpuComputesInTheCarveOut) {
  Harness h(test_config(), World::Secure);
  ASSERT_TRUE(h.power_on());
  h.wr(RegBlock::Tzpc, TZPC_GPU_SECURE, 1);
  ASSERT_GT(h.poll(RegBlock::Tzpc, TZPC_STATUS, TZPC_STATUS_SECURE | TZPC_STATUS_SWITCHING,
                   TZPC_STATUS_SECURE),
            0);
  ASSERT_TRUE(h.init());
  Buffer a = h.alloc(64 * 4), b = h.alloc(64 * 4), c = h.alloc(64 * 4);
  EXPECT_TRUE(h.soc().memory().is_secure(c.pa));
  std::vector<float> v(64, 1.5f);
  h.write(a, v.data(), 256);
  h.write(b, v.data(), 256);
  Buffer sh = h.load_shader(kVectorAdd);
  Buffer un = h.load_uniforms({a.va, b.va, c.va, 64});
  DispatchOptions o;
  o.wg[0] = 4;
  ASSERT_TRUE(h.dispatch(sh, un, o));
  EXPECT_EQ(h.read<float>(c, 64)[63], 3.0f);
}

// ---- GPU ownership mailbox ------------------------------------------------------------

TEST(Mailbox, IrqLineDeliveryCanBeFixedPerLine) {
  hw::IrqLines lines(3);
  lines.set_line_delivery(1, hw::IrqDelivery::Normal);
  lines.set_line_delivery(2, hw::IrqDelivery::Secure);
  for (int l = 0; l < 3; ++l) lines.set_level(l, true);
  const auto t = std::chrono::microseconds(500);
  EXPECT_TRUE(lines.wait(0, false, t));
  EXPECT_FALSE(lines.wait(0, true, t)) << "owner-delivered: the GPU is normal";
  EXPECT_TRUE(lines.wait(1, false, t));
  EXPECT_FALSE(lines.wait(1, true, t));
  EXPECT_FALSE(lines.wait(2, false, t));
  EXPECT_TRUE(lines.wait(2, true, t));
  lines.set_delivery(true);  // the GPU goes secure: only owner-delivered lines follow
  EXPECT_TRUE(lines.wait(0, true, t));
  EXPECT_FALSE(lines.wait(0, false, t));
  EXPECT_TRUE(lines.wait(1, false, t));
  EXPECT_FALSE(lines.wait(1, true, t));
  EXPECT_TRUE(lines.wait(2, true, t));
}

class MailboxTest : public ::testing::TestWithParam<std::string> {};

TEST_P(MailboxTest, RegistersEventAndLine) {
  Harness h(test_config(GetParam()));
  hw::SocPort& nw = h.port();
  hw::SocPort& sec = h.soc().port(World::Secure);
  const int line = h.sku().mbox_irq_line();
  const auto t = std::chrono::microseconds(1000);
  EXPECT_EQ(nw.num_irq_lines(), h.sku().num_irq_lines + 1) << "the mailbox line comes last";
  EXPECT_TRUE(nw.has_block(RegBlock::Mbox));
  EXPECT_TRUE(sec.has_block(RegBlock::Mbox));
  for (uint32_t off : {MBOX_CLAIM, MBOX_EVENT}) {
    EXPECT_EQ(nw.read32(RegBlock::Mbox, off), 0u);
    EXPECT_EQ(sec.read32(RegBlock::Mbox, off), 0u);
  }
  EXPECT_EQ(sec.read32(RegBlock::Mbox, MBOX_ACK), 1u) << "free: no driver holds the GPU";
  nw.write32(RegBlock::Mbox, MBOX_ACK, 0);  // as a driver does when it probes
  EXPECT_FALSE(nw.wait_irq(line, t));

  sec.write32(RegBlock::Mbox, MBOX_CLAIM, 1);
  EXPECT_EQ(nw.read32(RegBlock::Mbox, MBOX_CLAIM), 1u);
  EXPECT_EQ(nw.read32(RegBlock::Mbox, MBOX_EVENT), MBOX_EVENT_CLAIM_CHANGED);
  EXPECT_TRUE(nw.wait_irq(line, t));
  EXPECT_FALSE(sec.wait_irq(line, t)) << "the mailbox line only goes to the normal world";
  EXPECT_FALSE(nw.wait_irq(h.core_irq_line(), t)) << "no GPU line moved";

  // W1C by the normal world drops the line; the secure world cannot clear it.
  sec.write32(RegBlock::Mbox, MBOX_EVENT, ~0u);
  EXPECT_EQ(sec.read32(RegBlock::Mbox, MBOX_EVENT), MBOX_EVENT_CLAIM_CHANGED);
  nw.write32(RegBlock::Mbox, MBOX_EVENT, MBOX_EVENT_CLAIM_CHANGED);
  EXPECT_EQ(sec.read32(RegBlock::Mbox, MBOX_EVENT), 0u);
  EXPECT_FALSE(nw.wait_irq(line, t));

  // Writing the same CLAIM is no change and no event; each register has one writer.
  sec.write32(RegBlock::Mbox, MBOX_CLAIM, 1);
  EXPECT_EQ(nw.read32(RegBlock::Mbox, MBOX_EVENT), 0u);
  nw.write32(RegBlock::Mbox, MBOX_CLAIM, 0);
  EXPECT_EQ(sec.read32(RegBlock::Mbox, MBOX_CLAIM), 1u) << "the normal world cannot release";
  sec.write32(RegBlock::Mbox, MBOX_ACK, 1);
  EXPECT_EQ(nw.read32(RegBlock::Mbox, MBOX_ACK), 0u) << "the secure world cannot acknowledge";
  nw.write32(RegBlock::Mbox, MBOX_ACK, 3);
  EXPECT_EQ(sec.read32(RegBlock::Mbox, MBOX_ACK), 1u) << "bit 0 only";
  sec.write32(RegBlock::Mbox, MBOX_CLAIM, 0);
  EXPECT_EQ(nw.read32(RegBlock::Mbox, MBOX_EVENT), MBOX_EVENT_CLAIM_CHANGED) << "every change";
  EXPECT_TRUE(nw.wait_irq(line, t));
  EXPECT_EQ(h.soc().gpu().stats().tz_violations, 0u);
}

TEST_P(MailboxTest, ReachableInEveryGpuStateAndKeptAcrossSwitchesAndResets) {
  hw::SocConfig cfg = test_config(GetParam());
  cfg.timing.scale = 200;  // a world switch of milliseconds: long enough to act inside it
  Harness h(cfg);
  ASSERT_TRUE(h.init());
  hw::SocPort& nw = h.port();
  hw::SocPort& sec = h.soc().port(World::Secure);
  const int line = h.sku().mbox_irq_line();
  const auto t = std::chrono::microseconds(2000);

  // The hand-off as the secure world does it: claim, the normal world answers, switch.
  sec.write32(RegBlock::Mbox, MBOX_CLAIM, 1);
  ASSERT_TRUE(nw.wait_irq(line, t));
  nw.write32(RegBlock::Mbox, MBOX_EVENT, MBOX_EVENT_CLAIM_CHANGED);
  nw.write32(RegBlock::Mbox, MBOX_ACK, 1);
  const uint64_t v0 = h.soc().gpu().stats().tz_violations;
  sec.write32(RegBlock::Tzpc, TZPC_GPU_SECURE, 1);
  // While switching and while secure the normal world still has the mailbox, and its
  // accesses are not violations.
  ASSERT_TRUE(sec.read32(RegBlock::Tzpc, TZPC_STATUS) & TZPC_STATUS_SWITCHING);
  EXPECT_EQ(nw.read32(RegBlock::Mbox, MBOX_CLAIM), 1u);
  nw.write32(RegBlock::Mbox, MBOX_ACK, 1);
  EXPECT_TRUE(sec.read32(RegBlock::Tzpc, TZPC_STATUS) & TZPC_STATUS_SWITCHING);
  EXPECT_EQ(h.soc().gpu().stats().tz_violations, v0);
  for (int i = 0; i < 1000 && !h.soc().gpu().secure(); ++i)
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  ASSERT_TRUE(h.soc().gpu().secure());
  EXPECT_EQ(nw.read32(RegBlock::Mbox, MBOX_ACK), 1u) << "the switch's reset keeps the mailbox";
  EXPECT_EQ(nw.read32(RegBlock::Mbox, MBOX_CLAIM), 1u);
  nw.write32(RegBlock::Mbox, MBOX_ACK, 1);
  EXPECT_EQ(h.soc().gpu().stats().tz_violations, v0);

  // GPU lines now go to the secure world, the mailbox line still to the normal one.
  sec.write32(RegBlock::Core0, INT_MSK_CLR, bit(3));
  sec.write32(RegBlock::Core0, INT_SET, bit(3));
  EXPECT_FALSE(nw.wait_irq(h.core_irq_line(), t));
  sec.write32(RegBlock::Mbox, MBOX_CLAIM, 0);
  EXPECT_TRUE(nw.wait_irq(line, t)) << "delivered to the normal world while the GPU is secure";
  EXPECT_FALSE(sec.wait_irq(line, t));

  // A GPU reset in the secure world and the switch back keep the pending event.
  if (h.sku().has_sms) {
    sec.write32(RegBlock::Sms, SMS_REE_CS, SMS_RESET_REQUEST);
  } else {
    sec.write32(RegBlock::Bridge, BRIDGE_SW_INIT_0, BRIDGE_SW_INIT_V3D);
    sec.write32(RegBlock::Bridge, BRIDGE_SW_INIT_0, 0);
  }
  sec.write32(RegBlock::Tzpc, TZPC_GPU_SECURE, 0);
  for (int i = 0; i < 1000 && (sec.read32(RegBlock::Tzpc, TZPC_STATUS) & TZPC_STATUS_SWITCHING);
       ++i)
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  ASSERT_FALSE(h.soc().gpu().secure());
  EXPECT_EQ(nw.read32(RegBlock::Mbox, MBOX_EVENT), MBOX_EVENT_CLAIM_CHANGED);
  EXPECT_EQ(nw.read32(RegBlock::Mbox, MBOX_ACK), 1u);
  EXPECT_TRUE(nw.wait_irq(line, t));
  nw.write32(RegBlock::Mbox, MBOX_EVENT, MBOX_EVENT_CLAIM_CHANGED);
  nw.write32(RegBlock::Mbox, MBOX_ACK, 0);
  EXPECT_FALSE(nw.wait_irq(line, t));
  EXPECT_EQ(h.soc().gpu().stats().tz_violations, v0);
  EXPECT_GE(h.soc().gpu().stats().world_switches, 2u);
}

INSTANTIATE_TEST_SUITE_P(Skus, MailboxTest, ::testing::Values("v3d-7.1", "v3d-4.2"));

}  // namespace
}  // namespace rplayer::test
