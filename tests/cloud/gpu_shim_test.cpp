// The device's GPUShim against hostile frames: every refusal names its cause, ends the
// session (GPU reset, pool scrubbed), and no frame, however made, lets the GPU touch a
// page outside the pool or run a job with the MMU off.
#include "tee/gpu_shim.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>

#include "hw/soc.h"
#include "hw/v3d_regs.h"
#include "tests/common/pool_oracle.h"

namespace rplayer {
namespace {

using link::ShimOp;
using link::ShimOpKind;
using link::ShimRefusal;
using tee::GpuShim;
using namespace rplayer::v3d;

constexpr uint64_t kPage = 4096;

class ShimTest : public testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    hw::SocConfig cfg;
    cfg.sku = GetParam();
    cfg.normal_bytes = 64ull << 20;
    cfg.secure_bytes = 32ull << 20;
    cfg.timing.scale = 0.5;
    soc_ = std::make_unique<hw::ModeledSoc>(cfg);
    hw::SocPort& sec = soc_->port(hw::World::Secure);
    sec.write32(hw::RegBlock::Tzpc, TZPC_GPU_SECURE, 1);
    for (int i = 0; i < 10000 && !soc_->gpu().secure(); ++i)
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    pool_ = soc_->memory().secure_base();
    pool_bytes_ = soc_->memory().secure_size();
    tee::GpuShimConfig sc;
    sc.port = &sec;
    sc.pool_pa = pool_;
    sc.pool_bytes = pool_bytes_;
    sc.max_poll_us = 100'000;
    sc.max_wait_us = 200'000;
    shim_ = std::make_unique<GpuShim>(sc);
    oracle_ = std::make_unique<test::PoolOracle>(soc_->gpu(), pool_, pool_bytes_);
    std::string why;
    ASSERT_TRUE(shim_->open(&hello_, &why)) << why;
  }
  void TearDown() override { EXPECT_EQ(oracle_->escapes(), 0u) << oracle_->what(); }

  link::ShimReply send(const std::vector<ShimOp>& ops, GpuShim::Step* step = nullptr) {
    std::vector<uint8_t> frame, reply;
    link::encode_request(seq_++, ops, &frame);
    return send_frame(frame, step);
  }
  link::ShimReply send_frame(const std::vector<uint8_t>& frame, GpuShim::Step* step = nullptr) {
    std::vector<uint8_t> reply;
    GpuShim::Step s = shim_->exchange(frame, &reply);
    while (s == GpuShim::Step::Pending) s = shim_->resume(&reply);
    if (step) *step = s;
    link::ShimReply r;
    EXPECT_EQ(link::decode_reply(reply, {}, &r), link::WireCode::Ok);
    return r;
  }
  // The session ended with `why` and left nothing behind.
  void expect_refused(const link::ShimReply& r, ShimRefusal why) {
    EXPECT_EQ(r.refusal, why) << link::shim_refusal_name(r.refusal) << ": " << r.why;
    EXPECT_FALSE(shim_->active());
    EXPECT_TRUE(shim_->pool_is_clean());
    EXPECT_EQ(send({read_op(hw::RegBlock::Hub, HUB_IDENT1)}).refusal, ShimRefusal::NotOpen);
  }
  static ShimOp write_op(hw::RegBlock b, uint32_t off, uint32_t v) {
    ShimOp op;
    op.kind = ShimOpKind::Write, op.block = uint8_t(b), op.offset = off, op.a = v;
    return op;
  }
  static ShimOp read_op(hw::RegBlock b, uint32_t off) {
    ShimOp op;
    op.kind = ShimOpKind::Read, op.block = uint8_t(b), op.offset = off;
    return op;
  }
  ShimOp page(uint64_t pa, const std::vector<uint32_t>& words) {
    std::vector<uint8_t> bytes(kPage);
    std::memcpy(bytes.data(), words.data(), std::min<size_t>(words.size() * 4, kPage));
    return link::page_op(pa, bytes.data(), true);
  }
  uint64_t table() const { return pool_ + (1u << 20); }
  uint64_t scratch() const { return table() + (4u << 20); }
  uint32_t pte(uint64_t pa) const { return uint32_t(pa / kPage) | PTE_VALID | PTE_WRITEABLE; }
  std::vector<ShimOp> mmu_setup() const {
    return {write_op(hw::RegBlock::Hub, MMU_PT_PA_BASE, uint32_t(table() / kPage)),
            write_op(hw::RegBlock::Hub, MMU_ILLEGAL_ADDR,
                     uint32_t(scratch() / kPage) | MMU_ILLEGAL_ADDR_ENABLE),
            write_op(hw::RegBlock::Hub, MMU_CTL,
                     MMU_CTL_ENABLE | MMU_CTL_PT_INVALID_ENABLE | MMU_CTL_PT_INVALID_ABORT)};
  }

  // A one-workgroup job whose shader is at VA `shader_va`: the QPU fetches from wherever
  // the page table maps it.
  std::vector<ShimOp> job(uint32_t shader_va, uint32_t uniforms_va) const {
    const hw::Sku& s = soc_->sku();
    const uint32_t c0 = s.csd_queued_cfg0;
    return {write_op(hw::RegBlock::Core0, c0 + 4, 1u << 16),
            write_op(hw::RegBlock::Core0, c0 + 8, 1u << 16),
            write_op(hw::RegBlock::Core0, c0 + 12, 16),
            write_op(hw::RegBlock::Core0, c0 + 16, s.csd_cfg4_minus_one ? 0 : 1),
            write_op(hw::RegBlock::Core0, c0 + 20, shader_va),
            write_op(hw::RegBlock::Core0, c0 + 24, uniforms_va),
            write_op(hw::RegBlock::Core0, c0, 1u << 16)};
  }

  std::unique_ptr<hw::ModeledSoc> soc_;
  std::unique_ptr<GpuShim> shim_;
  std::unique_ptr<test::PoolOracle> oracle_;
  link::ShimHello hello_;
  uint64_t pool_ = 0, pool_bytes_ = 0;
  uint32_t seq_ = 0;
};

TEST_P(ShimTest, HelloNamesTheGpuAndThePool) {
  EXPECT_EQ(hello_.pool_pa, pool_);
  EXPECT_EQ(hello_.pool_bytes, pool_bytes_);
  EXPECT_EQ(hello_.hub_ident[1],
            soc_->port(hw::World::Secure).read32(hw::RegBlock::Hub, HUB_IDENT1));
  EXPECT_EQ(hello_.irq_lines, soc_->sku().num_irq_lines);
  EXPECT_FALSE(hello_.blocks & (1u << uint8_t(hw::RegBlock::Tzpc)));
  EXPECT_FALSE(hello_.blocks & (1u << uint8_t(hw::RegBlock::Mbox)));
}

TEST_P(ShimTest, AllowedOperationsAnswerInOrder) {
  std::vector<ShimOp> ops = mmu_setup();
  ops.push_back(read_op(hw::RegBlock::Hub, MMU_PT_PA_BASE));
  ShimOp poll;
  poll.kind = ShimOpKind::Poll, poll.block = uint8_t(hw::RegBlock::Hub);
  poll.offset = MMU_CTL, poll.a = MMU_CTL_ENABLE, poll.b = MMU_CTL_ENABLE, poll.timeout_us = 1000;
  ops.push_back(poll);
  ShimOp level;
  level.kind = ShimOpKind::Wait, level.block = 0, level.timeout_us = 0;
  ops.push_back(level);
  const link::ShimReply r = send(ops);
  ASSERT_EQ(r.refusal, ShimRefusal::None) << r.why;
  ASSERT_EQ(r.results.size(), 3u);
  EXPECT_EQ(r.results[0].value, uint32_t(table() / kPage));
  EXPECT_TRUE(r.results[1].ok);
  EXPECT_FALSE(r.results[2].ok);  // nothing pending
  EXPECT_TRUE(shim_->active());
}

TEST_P(ShimTest, TrustZoneAndMailboxAreNotTheClouds) {
  expect_refused(send({write_op(hw::RegBlock::Tzpc, TZPC_GPU_SECURE, 0)}),
                 ShimRefusal::BlockNotAllowed);
}

TEST_P(ShimTest, MailboxReadRefused) {
  expect_refused(send({read_op(hw::RegBlock::Mbox, MBOX_CLAIM)}), ShimRefusal::BlockNotAllowed);
}

TEST_P(ShimTest, MmuMustStayOn) {
  std::vector<ShimOp> ops = mmu_setup();
  ops.push_back(write_op(hw::RegBlock::Hub, MMU_CTL, MMU_CTL_TLB_CLEAR));
  expect_refused(send(ops), ShimRefusal::ValueNotAllowed);
}

TEST_P(ShimTest, MmuBypassIsNotWritable) {
  expect_refused(send({write_op(hw::RegBlock::Hub, MMU_BYPASS_END, ~0u)}),
                 ShimRefusal::RegisterNotAllowed);
}

TEST_P(ShimTest, PageTableBaseOutsideThePool) {
  expect_refused(send({write_op(hw::RegBlock::Hub, MMU_PT_PA_BASE, 1u << 8)}),
                 ShimRefusal::ValueNotAllowed);
}

TEST_P(ShimTest, PageTableBaseThatRunsPastThePool) {
  const uint64_t last = pool_ + pool_bytes_ - kPage;
  expect_refused(send({write_op(hw::RegBlock::Hub, MMU_PT_PA_BASE, uint32_t(last / kPage))}),
                 ShimRefusal::ValueNotAllowed);
}

TEST_P(ShimTest, PageTableDoesNotMove) {
  std::vector<ShimOp> ops = mmu_setup();
  ops.push_back(write_op(hw::RegBlock::Hub, MMU_PT_PA_BASE, uint32_t(table() / kPage) + 1));
  expect_refused(send(ops), ShimRefusal::ValueNotAllowed);
}

TEST_P(ShimTest, IllegalAddressPageOutsideThePool) {
  expect_refused(
      send({write_op(hw::RegBlock::Hub, MMU_ILLEGAL_ADDR, 16 | MMU_ILLEGAL_ADDR_ENABLE)}),
      ShimRefusal::ValueNotAllowed);
}

TEST_P(ShimTest, PageOutsideThePool) {
  expect_refused(send({page(4096 * 300, {1, 2, 3})}), ShimRefusal::PageOutsidePool);
}

TEST_P(ShimTest, ForeignPteInAPageTablePage) {
  std::vector<ShimOp> ops = mmu_setup();
  ops.push_back(page(table() + kPage, {pte(scratch() + kPage), pte(0x100000)}));  // 2nd: DRAM
  expect_refused(send(ops), ShimRefusal::ForeignPte);
}

TEST_P(ShimTest, JobThroughAForeignMappingNeverRuns) {
  // VA pages 16 and 17 mapped to the normal world's DRAM, then a job that runs code there.
  std::vector<ShimOp> ops = mmu_setup();
  std::vector<uint32_t> ptes(18, 0);
  ptes[16] = pte(0x200000), ptes[17] = pte(0x201000);
  ops.push_back(page(table(), ptes));
  for (const ShimOp& op : job(16 * 4096, 17 * 4096)) ops.push_back(op);
  expect_refused(send(ops), ShimRefusal::ForeignPte);
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(oracle_->jobs(), 0u);
}

TEST_P(ShimTest, JobThroughPoolMappingsRuns) {
  std::vector<ShimOp> ops = mmu_setup();
  std::vector<uint32_t> ptes(18, 0);
  ptes[16] = pte(pool_ + 64 * kPage), ptes[17] = pte(pool_ + 65 * kPage);
  ops.push_back(page(table(), ptes));
  for (const ShimOp& op : job(16 * 4096, 17 * 4096)) ops.push_back(op);
  const link::ShimReply r = send(ops);
  EXPECT_EQ(r.refusal, ShimRefusal::None) << r.why;
  for (int i = 0; i < 200 && oracle_->jobs() == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(oracle_->jobs(), 1u);  // it ran (on zeros: a QPU fault, inside the pool)
}

TEST_P(ShimTest, PteMappingThePageTableItself) {
  std::vector<ShimOp> ops = mmu_setup();
  ops.push_back(page(table(), {pte(table())}));
  expect_refused(send(ops), ShimRefusal::ForeignPte);
}

TEST_P(ShimTest, SuperPagesRefused) {
  std::vector<ShimOp> ops = mmu_setup();
  ops.push_back(page(table(), {pte(scratch() + kPage) | PTE_SUPERPAGE}));
  expect_refused(send(ops), ShimRefusal::ForeignPte);
}

TEST_P(ShimTest, ForeignPtesWrittenBeforeTheBaseIsSet) {
  // Pages first, then the base that turns them into a page table.
  expect_refused(send({page(table() + 8 * kPage, {0, 0, pte(0x2000)}),
                       write_op(hw::RegBlock::Hub, MMU_PT_PA_BASE, uint32_t(table() / kPage))}),
                 ShimRefusal::ForeignPte);
}

TEST_P(ShimTest, JobStartBeforeTheMmuIsSetUp) {
  const hw::Sku& s = soc_->sku();
  expect_refused(send({write_op(hw::RegBlock::Core0, s.csd_queued_cfg0, 1)}),
                 ShimRefusal::ValueNotAllowed);
}

TEST_P(ShimTest, JobStartAfterAResetTurnedTheMmuOff) {
  const hw::Sku& s = soc_->sku();
  std::vector<ShimOp> ops = mmu_setup();
  if (soc_->port(hw::World::Secure).has_block(hw::RegBlock::Sms)) {
    ops.push_back(write_op(hw::RegBlock::Sms, SMS_REE_CS, SMS_RESET_REQUEST));
    ShimOp wait;
    wait.kind = ShimOpKind::Poll, wait.block = uint8_t(hw::RegBlock::Sms), wait.offset = SMS_REE_CS;
    wait.a = SMS_STATE_MASK, wait.b = SMS_IDLE, wait.timeout_us = 50'000;
    ops.push_back(wait);
  } else {
    ops.push_back(write_op(hw::RegBlock::Bridge, s.bridge_sw_init_reg, BRIDGE_SW_INIT_V3D));
    ops.push_back(write_op(hw::RegBlock::Bridge, s.bridge_sw_init_reg, 0));
  }
  ops.push_back(write_op(hw::RegBlock::Core0, s.csd_queued_cfg0, 1));
  expect_refused(send(ops), ShimRefusal::ValueNotAllowed);
  EXPECT_EQ(oracle_->jobs(), 0u);
}

TEST_P(ShimTest, PowerAndWorldBitsStayTheSecureWorlds) {
  if (!soc_->port(hw::World::Secure).has_block(hw::RegBlock::Sms)) GTEST_SKIP() << "no SMS";
  expect_refused(send({write_op(hw::RegBlock::Sms, SMS_TEE_CS, SMS_SVP_MODE_ENTER)}),
                 ShimRefusal::ValueNotAllowed);
}

TEST_P(ShimTest, UnboundedPollAndWait) {
  ShimOp poll;
  poll.kind = ShimOpKind::Poll, poll.block = uint8_t(hw::RegBlock::Hub), poll.offset = MMU_CTL;
  poll.a = 1, poll.b = 1, poll.timeout_us = 0;
  expect_refused(send({poll}), ShimRefusal::Unbounded);
}

TEST_P(ShimTest, WaitLongerThanTheDeviceAllows) {
  ShimOp wait;
  wait.kind = ShimOpKind::Wait, wait.block = 0, wait.timeout_us = 10'000'000;
  expect_refused(send({wait}), ShimRefusal::Unbounded);
}

TEST_P(ShimTest, MailboxLineIsNotTheClouds) {
  ShimOp wait;
  wait.kind = ShimOpKind::Wait, wait.block = uint8_t(soc_->sku().num_irq_lines),
  wait.timeout_us = 1;
  expect_refused(send({wait}), ShimRefusal::BadLine);
}

TEST_P(ShimTest, LongWaitsReturnInSlices) {
  ShimOp wait;
  wait.kind = ShimOpKind::Wait, wait.block = 0, wait.timeout_us = 150'000;
  std::vector<uint8_t> frame, reply;
  link::encode_request(0, std::vector<ShimOp>{wait}, &frame);
  int pending = 0;
  GpuShim::Step s = shim_->exchange(frame, &reply);
  for (; s == GpuShim::Step::Pending; s = shim_->resume(&reply)) ++pending;
  EXPECT_EQ(s, GpuShim::Step::Done);
  EXPECT_GE(pending, 2);  // 150 ms in 50 ms slices
  link::ShimReply r;
  ASSERT_EQ(link::decode_reply(reply, {}, &r), link::WireCode::Ok);
  ASSERT_EQ(r.results.size(), 1u);
  EXPECT_FALSE(r.results[0].ok);
  EXPECT_GE(r.results[0].count, 140'000u);
}

TEST_P(ShimTest, MalformedFrames) {
  std::vector<uint8_t> frame;
  link::encode_request(0, mmu_setup(), &frame);
  std::vector<uint8_t> truncated(frame.begin(), frame.end() - 1);
  expect_refused(send_frame(truncated), ShimRefusal::Malformed);
}

TEST_P(ShimTest, TrailingBytes) {
  std::vector<uint8_t> frame;
  link::encode_request(0, mmu_setup(), &frame);
  frame.push_back(0);
  expect_refused(send_frame(frame), ShimRefusal::Malformed);
}

TEST_P(ShimTest, OversizedFrame) {
  std::vector<uint8_t> frame;
  link::encode_request(0, mmu_setup(), &frame);
  frame.resize(65u << 20);
  expect_refused(send_frame(frame), ShimRefusal::TooLarge);
}

TEST_P(ShimTest, CompressedPageThatIsNotAPage) {
  std::vector<uint8_t> frame;
  ShimOp op = page(pool_ + 64 * kPage, {7, 7, 7});
  ASSERT_EQ(op.encoding, link::PageEncoding::Zstd);
  link::encode_request(0, std::vector<ShimOp>{op}, &frame);
  frame[frame.size() - 3] ^= 0x55;  // damage the zstd frame
  expect_refused(send_frame(frame), ShimRefusal::Malformed);
}

TEST_P(ShimTest, CloseScrubsAndResets) {
  std::vector<ShimOp> ops = mmu_setup();
  ops.push_back(page(pool_ + 100 * kPage, {0xdeadbeef}));
  ASSERT_EQ(send(ops).refusal, ShimRefusal::None);
  EXPECT_FALSE(shim_->pool_is_clean());
  shim_->close();
  EXPECT_TRUE(shim_->pool_is_clean());
  EXPECT_EQ(soc_->port(hw::World::Secure).read32(hw::RegBlock::Hub, MMU_PT_PA_BASE), 0u);
}

// Random frames from the allowlist's own registers and random page contents: whatever is
// refused or accepted, the GPU never leaves the pool.
TEST_P(ShimTest, RandomFramesNeverLeaveThePool) {
  std::mt19937 rng(1234);
  const hw::Sku& s = soc_->sku();
  const uint32_t hub_regs[] = {MMU_PT_PA_BASE, MMU_CTL,     MMU_ILLEGAL_ADDR, MMUC_CONTROL,
                               INT_CLR,        INT_MSK_SET, MMU_BYPASS_START, HUB_IDENT1};
  const uint32_t core_regs[] = {s.csd_queued_cfg0,      s.csd_queued_cfg0 + 4,
                                s.csd_queued_cfg0 + 20, s.csd_queued_cfg0 + 24,
                                CTL_L2TCACTL,           INT_CLR};
  int refused = 0, accepted = 0;
  for (int frame = 0; frame < 200; ++frame) {
    if (!shim_->active()) {
      std::string why;
      ASSERT_TRUE(shim_->open(&hello_, &why)) << why;
    }
    std::vector<ShimOp> ops = mmu_setup();
    const int n = 1 + int(rng() % 6);
    for (int i = 0; i < n; ++i) {
      const uint32_t pick = rng() % 5;
      if (pick == 0) {
        // Entries for VA pages 0..31: pool pages, the table, or anywhere in DRAM.
        std::vector<uint32_t> words(32);
        for (uint32_t& w : words) {
          const uint32_t kind = rng() % 8;
          w = kind < 5   ? pte(pool_ + (rng() % (pool_bytes_ / kPage)) * kPage)
              : kind < 7 ? pte((rng() % (pool_ / kPage)) * kPage)
                         : rng();
        }
        ops.push_back(
            page(rng() % 4 ? table() : pool_ + (rng() % (pool_bytes_ / kPage + 8)) * kPage, words));
      } else if (pick == 1) {
        ops.push_back(write_op(hw::RegBlock::Hub, hub_regs[rng() % 8], rng()));
      } else if (pick == 2) {
        ops.push_back(write_op(hw::RegBlock::Core0, core_regs[rng() % 6], rng()));
      } else {
        for (const ShimOp& op : job((rng() % 32) * 4096, (rng() % 32) * 4096)) ops.push_back(op);
      }
    }
    const link::ShimReply r = send(ops);
    (r.refusal == ShimRefusal::None ? accepted : refused)++;
    std::this_thread::sleep_for(std::chrono::microseconds(200));  // let jobs touch memory
  }
  EXPECT_GT(refused, 0);
  EXPECT_GT(accepted, 0);
}

INSTANTIATE_TEST_SUITE_P(Skus, ShimTest, testing::Values("v3d-7.1", "v3d-4.2"),
                         [](const auto& i) { return i.param == "v3d-7.1" ? "v71" : "v42"; });

}  // namespace
}  // namespace rplayer
