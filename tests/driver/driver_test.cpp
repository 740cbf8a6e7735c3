// The kernel driver against the modeled SoC.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <set>
#include <thread>

#include "driver/counting_hw_io.h"
#include "driver/v3d_driver.h"
#include "hw/isa/assembler.h"
#include "hw/soc.h"
#include "hw/v3d_regs.h"
#include "tests/common/soc_config.h"
#include "tests/hw/kernels.h"

namespace rplayer::driver {
namespace {

using namespace std::chrono_literals;

class DriverTest : public ::testing::TestWithParam<std::string> {
 protected:
  DriverTest() : soc(test::test_config(GetParam())), io(soc.port(hw::World::Normal)) {}
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(reprobe()); }
  // A new driver instance with the current `opts` (tests shorten the hang timer).
  void reprobe() {
    drv.reset();
    std::string err;
    drv = V3dDriver::probe(io, opts, &err);
    ASSERT_TRUE(drv) << err;
  }
  struct Bo {
    uint32_t handle, va;
    uint8_t* cpu;
  };
  Bo bo(uint32_t size, BoUsage usage, const std::string& label = "t") {
    CreateBo c;
    c.size = size;
    c.usage = usage;
    c.label = label;
    c.gpu_writable = usage != BoUsage::Code && usage != BoUsage::Uniforms;
    EXPECT_EQ(drv->create_bo(c), 0) << drv->last_error();
    Bo b{c.handle, c.gpu_va, nullptr};
    uint32_t sz;
    EXPECT_EQ(drv->mmap_bo(c.handle, &b.cpu, &sz), 0);
    return b;
  }
  Bo shader(const char* src) {
    auto r = isa::assemble(src);
    EXPECT_TRUE(r.ok());
    Bo b = bo(uint32_t(r.words.size() * 8), BoUsage::Code, "shader");
    std::memcpy(b.cpu, r.words.data(), r.words.size() * 8);
    return b;
  }
  Bo uniforms(std::vector<uint32_t> w) {
    Bo b = bo(uint32_t(w.size() * 4), BoUsage::Uniforms, "uniforms");
    std::memcpy(b.cpu, w.data(), w.size() * 4);
    return b;
  }
  SubmitCsd job(const Bo& sh, const Bo& un, uint32_t wgs, uint32_t wg_size,
                std::vector<uint32_t> bos) {
    SubmitCsd s;
    s.cfg[0] = wgs << 16;
    s.cfg[1] = 1 << 16;
    s.cfg[2] = 1 << 16;
    s.cfg[3] = wg_size & 0xff;
    s.cfg[4] = (wg_size + 15) / 16 * wgs - 1;
    s.cfg[5] = sh.va;
    s.cfg[6] = un.va;
    s.bo_handles = std::move(bos);
    s.bo_handles.push_back(sh.handle);
    s.bo_handles.push_back(un.handle);
    return s;
  }

  hw::ModeledSoc soc;
  DirectHwIo io;
  DriverOptions opts;
  std::unique_ptr<V3dDriver> drv;
};

TEST_P(DriverTest, ProbeIdentifiesTheSku) {
  EXPECT_EQ(drv->sku().name, GetParam());
  uint64_t v = 0;
  ASSERT_EQ(drv->get_param(Param::HubIdent1, &v), 0);
  EXPECT_EQ(v, soc.sku().hub_ident1);
  ASSERT_EQ(drv->get_param(Param::NumQpus, &v), 0);
  EXPECT_EQ(v, uint64_t(soc.sku().num_qpus()));
  EXPECT_EQ(drv->get_param(Param(999), &v), -EINVAL);
}

TEST_P(DriverTest, BuffersAreScatteredZeroedAndMappedContiguously) {
  std::memset(soc.memory().data() + (32u << 20), 0xAB, 4096);  // old contents somewhere
  Bo b = bo(256 * 4096, BoUsage::Scratch);
  const BoInfo* info = drv->bo_info(b.handle);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->num_pages, 256u);
  // Scattered in 64-page (256 KiB) chunks: several physical runs, none in order.
  int breaks = 0;
  for (uint32_t i = 1; i < info->num_pages; ++i)
    breaks += info->pages[i] != info->pages[i - 1] + 4096;
  EXPECT_GE(breaks, 3) << "pages come scattered";
  for (uint32_t i = 0; i < 256 * 4096; ++i) ASSERT_EQ(b.cpu[i], 0) << i;
  // The CPU view and physical memory are the same bytes.
  b.cpu[5 * 4096 + 7] = 0x5a;
  EXPECT_EQ(soc.memory().data()[info->pages[5] + 7], 0x5a);
  EXPECT_NE(b.va, 0u);
  EXPECT_EQ(drv->free_bo(b.handle), 0);
  EXPECT_EQ(drv->free_bo(b.handle), -ENOENT);
  CreateBo c;
  c.size = 0;
  EXPECT_EQ(drv->create_bo(c), -EINVAL);
  c.size = 512u << 20;  // more than the SoC has
  EXPECT_EQ(drv->create_bo(c), -ENOMEM);
  EXPECT_NE(drv->last_error().find("out of GPU memory"), std::string::npos);
}

TEST_P(DriverTest, RunsAComputeJobEndToEnd) {
  constexpr uint32_t n = 3000;
  Bo a = bo(n * 4, BoUsage::Input), b = bo(n * 4, BoUsage::Weights), c = bo(n * 4, BoUsage::Output);
  for (uint32_t i = 0; i < n; ++i) {
    reinterpret_cast<float*>(a.cpu)[i] = float(i);
    reinterpret_cast<float*>(b.cpu)[i] = 0.25f;
  }
  Bo sh = shader(test::kVectorAdd);
  Bo un = uniforms({a.va, b.va, c.va, n});
  SubmitCsd s = job(sh, un, (n + 63) / 64, 64, {a.handle, b.handle, c.handle});
  ASSERT_EQ(drv->submit_csd(s), 0) << drv->last_error();
  ASSERT_EQ(drv->wait_seqno(s.seqno, 5s), 0) << drv->last_error();
  for (uint32_t i = 0; i < n; ++i) ASSERT_EQ(reinterpret_cast<float*>(c.cpu)[i], float(i) + 0.25f);
  EXPECT_EQ(drv->wait_bo(c.handle, 1s), 0);
  EXPECT_EQ(drv->stats().jobs_completed, 1u);
}

TEST_P(DriverTest, RejectsAWrongBatchCount) {
  Bo sh = shader("end\n");
  Bo un = uniforms({0});
  SubmitCsd s = job(sh, un, 4, 16, {});
  s.cfg[4] = 4;  // batches, not batches - 1
  EXPECT_EQ(drv->submit_csd(s), -EINVAL);
  EXPECT_NE(drv->last_error().find("CFG4"), std::string::npos);
  s.bo_handles.push_back(12345);
  s.cfg[4] = 3;
  EXPECT_EQ(drv->submit_csd(s), -ENOENT);
}

TEST_P(DriverTest, QueuedJobsFromTwoThreadsAllComplete) {
  Bo out = bo(4096, BoUsage::Output);
  Bo sh = shader(
      "unif r0\nsreg r1, wg_x\nshl r2, r1, #2\nadd r0, r0, r2\nmov r3, #1\nst [r0], r3\nend\n");
  Bo un = uniforms({out.va});
  std::vector<uint64_t> seqnos[2];
  auto submitter = [&](int t) {
    for (int i = 0; i < 10; ++i) {
      SubmitCsd s = job(sh, un, 8, 16, {out.handle});
      ASSERT_EQ(drv->submit_csd(s), 0);
      seqnos[t].push_back(s.seqno);
    }
  };
  std::thread t0(submitter, 0), t1(submitter, 1);
  t0.join();
  t1.join();
  for (auto& v : seqnos)
    for (uint64_t q : v) ASSERT_EQ(drv->wait_seqno(q, 5s), 0) << drv->last_error();
  EXPECT_EQ(drv->stats().jobs_completed, 20u);
  EXPECT_EQ(soc.gpu().stats().jobs_completed, 20u);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(reinterpret_cast<uint32_t*>(out.cpu)[i], 1u);
}

TEST_P(DriverTest, MmuFaultIsReportedWithItsAddress) {
  Bo out = bo(4096, BoUsage::Output);
  Bo sh = shader("unif r0\nunif r1\nld r2, [r0]\nst [r1], r2\nend\n");
  Bo un = uniforms({0x7654000, out.va});
  SubmitCsd s = job(sh, un, 1, 16, {out.handle});
  ASSERT_EQ(drv->submit_csd(s), 0);
  ASSERT_EQ(drv->wait_seqno(s.seqno, 5s), 0) << "aborted accesses let the job finish";
  auto f = drv->faults();
  ASSERT_FALSE(f.empty()) << "reported by the time the job is done";
  EXPECT_EQ(f[0].va, 0x7654000u);
  EXPECT_EQ(f[0].seqno, s.seqno);
}

TEST_P(DriverTest, HangIsDetectedResetAndRecovered) {
  opts.job_timeout = 50ms;
  ASSERT_NO_FATAL_FAILURE(reprobe());
  Bo out = bo(4096, BoUsage::Output);
  Bo sh = shader("unif r0\nmov r1, #7\nst [r0], r1\nend\n");
  Bo un = uniforms({out.va});
  soc.faults().hang_dispatches = 1;
  SubmitCsd hung = job(sh, un, 1, 16, {out.handle});
  ASSERT_EQ(drv->submit_csd(hung), 0);
  SubmitCsd next = job(sh, un, 1, 16, {out.handle});
  ASSERT_EQ(drv->submit_csd(next), 0);
  EXPECT_EQ(drv->wait_seqno(hung.seqno, 5s), -ETIMEDOUT);
  EXPECT_NE(drv->last_error().find("GPU hang"), std::string::npos) << drv->last_error();
  ASSERT_EQ(drv->wait_seqno(next.seqno, 5s), 0) << "the GPU works again after the reset";
  EXPECT_EQ(reinterpret_cast<uint32_t*>(out.cpu)[0], 7u);
  EXPECT_EQ(drv->stats().hangs, 1u);
  EXPECT_EQ(drv->stats().resets, 1u);
}

TEST_P(DriverTest, IllegalInstructionFailsTheJobOnly) {
  Bo out = bo(4096, BoUsage::Output);
  Bo bad = shader(".word 0x7f\nend\n");
  Bo good = shader("unif r0\nmov r1, #3\nst [r0], r1\nend\n");
  Bo un = uniforms({out.va});
  SubmitCsd s1 = job(bad, un, 1, 16, {});
  ASSERT_EQ(drv->submit_csd(s1), 0);
  SubmitCsd s2 = job(good, un, 1, 16, {out.handle});
  ASSERT_EQ(drv->submit_csd(s2), 0);
  EXPECT_EQ(drv->wait_seqno(s1.seqno, 5s), -EIO);
  EXPECT_EQ(drv->wait_seqno(s2.seqno, 5s), 0);
  EXPECT_EQ(reinterpret_cast<uint32_t*>(out.cpu)[0], 3u);
}

TEST_P(DriverTest, LostInterruptDoesNotResetAHealthyGpu) {
  opts.job_timeout = 30ms;
  ASSERT_NO_FATAL_FAILURE(reprobe());
  Bo out = bo(4096, BoUsage::Output);
  Bo sh = shader("unif r0\nmov r1, #5\nst [r0], r1\nend\n");
  Bo un = uniforms({out.va});
  soc.faults().drop_interrupts = 1;
  SubmitCsd s = job(sh, un, 1, 16, {out.handle});
  ASSERT_EQ(drv->submit_csd(s), 0);
  ASSERT_EQ(drv->wait_seqno(s.seqno, 5s), 0);
  EXPECT_EQ(reinterpret_cast<uint32_t*>(out.cpu)[0], 5u);
  EXPECT_EQ(drv->stats().lost_interrupts, 1u);
  EXPECT_EQ(drv->stats().resets, 0u);
}

// An interrupt that is late, not lost: its job is finished by the lost-interrupt path,
// and when the line finally rises it must not finish the next job (here one that hangs:
// it has to end as a hang, not as a success).
TEST_P(DriverTest, LateInterruptDoesNotFinishTheNextJob) {
  opts.job_timeout = 40ms;
  opts.max_timeout_rearms = 2;
  ASSERT_NO_FATAL_FAILURE(reprobe());
  Bo out = bo(4096, BoUsage::Output);
  Bo sh = shader("unif r0\nmov r1, #5\nst [r0], r1\nend\n");
  Bo un = uniforms({out.va});
  soc.faults().late_interrupt_us = 60'000;  // rises ~20 ms after the first job's timeout
  soc.faults().late_interrupts = 1;
  SubmitCsd first = job(sh, un, 1, 16, {out.handle});
  ASSERT_EQ(drv->submit_csd(first), 0);
  ASSERT_EQ(drv->wait_seqno(first.seqno, 5s), 0);
  EXPECT_EQ(drv->stats().lost_interrupts, 1u);
  soc.faults().hang_dispatches = 1;
  SubmitCsd second = job(sh, un, 1, 16, {out.handle});
  ASSERT_EQ(drv->submit_csd(second), 0);
  EXPECT_EQ(drv->wait_seqno(second.seqno, 5s), -ETIMEDOUT) << "finished by a stale CSDDONE";
  EXPECT_EQ(drv->stats().hangs, 1u);
  soc.faults().hang_dispatches = 0;
  SubmitCsd third = job(sh, un, 1, 16, {out.handle});
  ASSERT_EQ(drv->submit_csd(third), 0);
  EXPECT_EQ(drv->wait_seqno(third.seqno, 5s), 0);
}

TEST_P(DriverTest, FreedBufferIsUnmappedFromTheGpu) {
  Bo victim = bo(4096, BoUsage::Scratch);
  const uint32_t va = victim.va;
  ASSERT_EQ(drv->free_bo(victim.handle), 0);
  Bo sh = shader("unif r0\nmov r1, #1\nst [r0], r1\nend\n");
  Bo un = uniforms({va});
  SubmitCsd s = job(sh, un, 1, 16, {});
  ASSERT_EQ(drv->submit_csd(s), 0);
  ASSERT_EQ(drv->wait_seqno(s.seqno, 5s), 0);
  ASSERT_FALSE(drv->faults().empty());
  EXPECT_EQ(drv->faults()[0].va, va);
}

// Buffers are published to the GPU by one MMU flush before the next job, not one per
// buffer (a cloud driver pays a network round trip for each poll of a flush).
TEST_P(DriverTest, BuffersArePublishedOncePerJob) {
  const uint64_t before = drv->stats().mmu_flushes;
  Bo out = bo(4096, BoUsage::Output, "out");
  Bo sh = shader(test::kVectorAdd);
  Bo un = uniforms({out.va, out.va, out.va, 0});
  for (int i = 0; i < 5; ++i) bo(4096, BoUsage::Scratch, "more");
  EXPECT_EQ(drv->stats().mmu_flushes, before) << "no flush at creation";
  SubmitCsd s = job(sh, un, 1, 16, {out.handle});
  ASSERT_EQ(drv->submit_csd(s), 0);
  ASSERT_EQ(drv->wait_seqno(s.seqno, 5s), 0) << drv->last_error();
  EXPECT_EQ(drv->stats().mmu_flushes, before + 1);
  SubmitCsd again = job(sh, un, 1, 16, {out.handle});
  ASSERT_EQ(drv->submit_csd(again), 0);
  ASSERT_EQ(drv->wait_seqno(again.seqno, 5s), 0);
  EXPECT_EQ(drv->stats().mmu_flushes, before + 1) << "nothing changed: no flush";
}

// An MMU flush that outlasts its timeout: the job that needed it fails (the GPU is reset),
// nothing leaks, and the next job publishes the page table and runs.
TEST_P(DriverTest, AnMmuFlushTimeoutFailsTheJobThatNeededItOnly) {
  opts.poll_timeout = 20ms;
  ASSERT_NO_FATAL_FAILURE(reprobe());
  Bo out = bo(4096, BoUsage::Output, "out");
  Bo sh = shader(test::kVectorAdd);
  Bo un = uniforms({out.va, out.va, out.va, 0});
  soc.faults().mmu_flush_delay_us = 100000;
  soc.faults().slow_mmu_flushes = 1;
  SubmitCsd s = job(sh, un, 1, 16, {out.handle});
  ASSERT_EQ(drv->submit_csd(s), 0);
  EXPECT_EQ(drv->wait_seqno(s.seqno, 5s), -ETIMEDOUT);
  EXPECT_NE(drv->last_error().find("MMU flush before the job timed out"), std::string::npos)
      << drv->last_error();
  std::this_thread::sleep_for(150ms);  // the slow flush finishes
  SubmitCsd next = job(sh, un, 1, 16, {out.handle});
  ASSERT_EQ(drv->submit_csd(next), 0);
  EXPECT_EQ(drv->wait_seqno(next.seqno, 5s), 0) << drv->last_error();
  // A freed buffer's pages come back after the MMU flush the next job starts with.
  const uint64_t free_before = drv->free_gpu_pages();
  EXPECT_EQ(drv->free_bo(out.handle), 0);
  EXPECT_EQ(drv->free_gpu_pages(), free_before);
  Bo out2 = bo(4096, BoUsage::Output, "out2");
  SubmitCsd last = job(sh, un, 1, 16, {out2.handle});
  ASSERT_EQ(drv->submit_csd(last), 0);
  EXPECT_EQ(drv->wait_seqno(last.seqno, 5s), 0) << drv->last_error();
  EXPECT_EQ(drv->free_gpu_pages(), free_before);  // one page back, one taken by out2
}

INSTANTIATE_TEST_SUITE_P(Skus, DriverTest, ::testing::Values("v3d-7.1", "v3d-4.2"));

// Makes the hardware look like an unknown GPU.
class ForgedIdentIo final : public HwIo {
 public:
  explicit ForgedIdentIo(HwIo& inner) : inner_(inner) {}
  bool has_block(RegBlock b) override { return inner_.has_block(b); }
  int num_irq_lines() override { return inner_.num_irq_lines(); }
  hw::MemoryWindow memory() override { return inner_.memory(); }
  uint32_t read(RegBlock b, uint32_t off, ReadUse u) override {
    const uint32_t v = inner_.read(b, off, u);
    return b == RegBlock::Hub && off == v3d::HUB_IDENT1 ? (v & ~0xffu) | 0x35 : v;  // "5.3"
  }
  void write(RegBlock b, uint32_t off, uint32_t v) override { inner_.write(b, off, v); }
  bool poll(RegBlock b, uint32_t off, uint32_t m, uint32_t v, Micros t, uint32_t* l) override {
    return inner_.poll(b, off, m, v, t, l);
  }
  bool wait_irq(int line, Micros t) override { return inner_.wait_irq(line, t); }

 private:
  HwIo& inner_;
};

TEST(DriverProbe, RefusesAnUnknownGpu) {
  hw::ModeledSoc soc(test::test_config("v3d-7.1"));
  DirectHwIo io(soc.port(hw::World::Normal));
  ForgedIdentIo forged(io);
  std::string err;
  EXPECT_EQ(V3dDriver::probe(forged, {}, &err), nullptr);
  EXPECT_NE(err.find("unsupported GPU: V3D 5.3"), std::string::npos) << err;
}

TEST(DriverProbe, PowerUpTimeoutIsAnError) {
  hw::ModeledSoc soc(test::test_config("v3d-7.1"));
  soc.faults().power_delay_us = 300000;
  DirectHwIo io(soc.port(hw::World::Normal));
  DriverOptions o;
  o.poll_timeout = Micros(50000);
  std::string err;
  EXPECT_EQ(V3dDriver::probe(io, o, &err), nullptr);
  EXPECT_NE(err.find("power-up timed out"), std::string::npos) << err;
}

// The count is what a recording holds: GPU registers and lines, not the SoC's mailbox.
TEST(CountingHwIo, CountsGpuAccessesButNotTheMailbox) {
  hw::ModeledSoc soc(test::test_config("v3d-7.1"));
  DirectHwIo direct(soc.port(hw::World::Normal));
  CountingHwIo io(direct);
  io.read(RegBlock::Mbox, v3d::MBOX_ACK, ReadUse::Control);
  io.write(RegBlock::Mbox, v3d::MBOX_ACK, 1);
  io.poll(RegBlock::Mbox, v3d::MBOX_ACK, 1, 1, Micros(1000), nullptr);
  soc.port(hw::World::Secure).write32(RegBlock::Mbox, v3d::MBOX_CLAIM, 1);  // raises its line
  const int mbox_line = soc.sku().mbox_irq_line();
  EXPECT_TRUE(io.wait_irq(mbox_line, Micros(100000)));
  EXPECT_EQ(io.counts().total(), 0u);
  io.read(RegBlock::Hub, v3d::HUB_IDENT1, ReadUse::Control);
  io.write(RegBlock::Hub, v3d::HUB_AXICFG, 0);
  io.poll(RegBlock::Hub, v3d::HUB_IDENT1, ~0u, soc.sku().hub_ident1, Micros(1000), nullptr);
  const HwIoCounts c = io.counts();
  EXPECT_EQ(c.reads, 1u);
  EXPECT_EQ(c.writes, 1u);
  EXPECT_EQ(c.polls, 1u);
}

}  // namespace
}  // namespace rplayer::driver
