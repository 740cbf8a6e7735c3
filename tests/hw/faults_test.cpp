// Fault injection and the bus tap.
#include <gtest/gtest.h>

#include <mutex>

#include "hw/bus_tap.h"
#include "tests/hw/harness.h"
#include "tests/hw/kernels.h"

namespace rplayer::test {
namespace {

using namespace rplayer::v3d;
using hw::RegBlock;

class FaultsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(h.init());
    src = h.alloc(4096);
    dst = h.alloc(4096);
    shader = h.load_shader(kCopyPlusOne);
    uniforms = h.load_uniforms({src.va, dst.va, 16});
    std::vector<uint32_t> v(16, 41);
    h.write(src, v.data(), 64);
  }
  Harness h{test_config()};
  Buffer src, dst, shader, uniforms;
};

TEST_F(FaultsTest, DroppedInterruptLeavesTheJobDoneButSilent) {
  h.soc().faults().drop_interrupts = 1;
  h.submit(shader, uniforms, {});
  EXPECT_FALSE(h.wait_csd_done(std::chrono::milliseconds(100)));
  EXPECT_EQ(get_field(h.core(CSD_STATUS), 11, 4), 1u) << "the job itself completed";
  ASSERT_TRUE(h.dispatch(shader, uniforms)) << "the next interrupt arrives";
}

TEST_F(FaultsTest, HungDispatchMakesNoProgressUntilReset) {
  h.soc().faults().hang_dispatches = 1;
  DispatchOptions o;
  o.wg[0] = 2;
  h.submit(shader, uniforms, o);
  const uint32_t cfg4 = h.sku().csd_current_cfg0 + 16;
  const uint32_t remaining = h.core(cfg4);
  EXPECT_FALSE(h.wait_csd_done(std::chrono::milliseconds(100)));
  EXPECT_EQ(h.core(cfg4), remaining) << "no progress: what a hang detector looks for";
  EXPECT_TRUE(h.core(CSD_STATUS) & CSD_STATUS_HAVE_CURRENT);
  h.wr(RegBlock::Sms, SMS_REE_CS, SMS_RESET_REQUEST);
  ASSERT_GT(h.poll(RegBlock::Sms, SMS_REE_CS, SMS_STATE_MASK, SMS_IDLE), 0);
  EXPECT_EQ(h.core(CSD_STATUS), 0u);
  ASSERT_TRUE(h.init());
  ASSERT_TRUE(h.dispatch(shader, uniforms));
  EXPECT_EQ(h.read<uint32_t>(dst, 1)[0], 42u);
}

TEST_F(FaultsTest, CorruptedDmaReadChangesWhatTheGpuSees) {
  std::vector<uint32_t> v(64, 41);
  h.write(src, v.data(), v.size() * 4);
  Buffer un = h.load_uniforms({src.va, dst.va, 64});
  h.soc().faults().corrupt_dma_page = (src.pa >> PAGE_SHIFT) + 1;
  h.soc().faults().corrupt_dma_reads = 1;
  DispatchOptions o;
  o.wg[0] = 4;
  ASSERT_TRUE(h.dispatch(shader, un, o));
  const auto out = h.read<uint32_t>(dst, 64);
  EXPECT_EQ(out[0x40 / 4], (41u ^ 0x10u) + 1) << "bit 4 of byte 0x40 flipped on the way in";
  for (int i = 0; i < 64; ++i) {
    if (i == 0x40 / 4) continue;
    EXPECT_EQ(out[i], 42u) << i;
  }
  EXPECT_EQ(h.read<uint32_t>(src, 64)[0x40 / 4], 41u) << "DRAM itself is intact";
  EXPECT_EQ(h.soc().faults().corrupt_dma_reads.load(), 0);
}

TEST_F(FaultsTest, FailedResetNeverFinishes) {
  h.soc().faults().fail_resets = 1;
  h.wr(RegBlock::Sms, SMS_REE_CS, SMS_RESET_REQUEST);
  EXPECT_LT(h.poll(RegBlock::Sms, SMS_REE_CS, SMS_STATE_MASK, SMS_IDLE,
                   std::chrono::milliseconds(50)),
            0);
  EXPECT_EQ(h.rd(RegBlock::Sms, SMS_REE_CS) & SMS_STATE_MASK, SMS_RESETTING);
  EXPECT_EQ(h.hub(HUB_IDENT1), 0u) << "the GPU does not answer";
}

TEST(Faults, FailedBridgeResetLeavesTheV42Dead) {
  Harness h(test_config("v3d-4.2"));
  ASSERT_TRUE(h.init());
  h.soc().faults().fail_resets = 1;
  h.wr(RegBlock::Bridge, BRIDGE_SW_INIT_0, BRIDGE_SW_INIT_V3D);
  h.wr(RegBlock::Bridge, BRIDGE_SW_INIT_0, 0);
  EXPECT_EQ(h.hub(HUB_IDENT1), 0u);
  // A second reset succeeds.
  h.wr(RegBlock::Bridge, BRIDGE_SW_INIT_0, BRIDGE_SW_INIT_V3D);
  h.wr(RegBlock::Bridge, BRIDGE_SW_INIT_0, 0);
  EXPECT_EQ(h.hub(HUB_IDENT1), h.sku().hub_ident1);
}

TEST(Faults, DelayedPowerTransitionOutlastsADriverTimeout) {
  Harness h(test_config());
  h.soc().faults().power_delay_us = 150000;
  h.wr(RegBlock::Sms, SMS_TEE_CS, SMS_CLEAR_POWER_OFF);
  EXPECT_LT(h.poll(RegBlock::Sms, SMS_TEE_CS, SMS_STATE_MASK, SMS_IDLE,
                   std::chrono::milliseconds(100)),
            0)
      << "a 100 ms driver timeout expires";
  EXPECT_GT(h.poll(RegBlock::Sms, SMS_TEE_CS, SMS_STATE_MASK, SMS_IDLE,
                   std::chrono::milliseconds(500)),
            0)
      << "but the transition does finish";
}

class RecordingTap : public hw::BusTap {
 public:
  void on_bus_event(const hw::BusEvent& e) override {
    std::lock_guard lk(mu);
    events.push_back(e);
  }
  std::mutex mu;
  std::vector<hw::BusEvent> events;
};

TEST_F(FaultsTest, BusTapSeesRegisterAccessesAndDma) {
  RecordingTap tap;
  h.soc().gpu().set_tap(&tap);
  ASSERT_TRUE(h.dispatch(shader, uniforms));
  h.soc().gpu().set_tap(nullptr);
  const size_t n = tap.events.size();
  h.hub(HUB_IDENT1);
  EXPECT_EQ(tap.events.size(), n) << "nothing after the tap is removed";
  int reads = 0, writes = 0, dma_reads = 0, dma_writes = 0;
  bool saw_cfg0 = false;
  for (const auto& e : tap.events) {
    switch (e.kind) {
      case hw::BusEvent::Kind::RegRead: ++reads; break;
      case hw::BusEvent::Kind::RegWrite:
        ++writes;
        saw_cfg0 |= e.block == RegBlock::Core0 && e.offset == h.csd_cfg_reg(0);
        break;
      case hw::BusEvent::Kind::DmaRead: ++dma_reads; break;
      case hw::BusEvent::Kind::DmaWrite: ++dma_writes; break;
      case hw::BusEvent::Kind::JobStart: break;
    }
  }
  EXPECT_TRUE(saw_cfg0);
  EXPECT_GE(writes, 10);
  EXPECT_GE(reads, 3);
  EXPECT_GE(dma_reads, 4) << "code, uniforms, source, destination pages (and PTEs)";
  EXPECT_EQ(dma_writes, 1) << "the destination page written back by the clean";
}

}  // namespace
}  // namespace rplayer::test
