#include "tests/hw/harness.h"

#include <gtest/gtest.h>

#include <thread>

#include "hw/isa/assembler.h"
#include "hw/poll_backoff.h"

namespace rplayer::test {

using namespace rplayer::v3d;
using hw::RegBlock;

Harness::Harness(hw::SocConfig cfg, hw::World world) : soc_(cfg), port_(&soc_.port(world)) {
  // Page table (4 MiB, contiguous) at 1 MiB, scratch page after it, then buffers.
  pt_pa_ = 1u << 20;
  scratch_pa_ = pt_pa_ + (4u << 20);
  next_pa_ = scratch_pa_ + PAGE_SIZE;
  if (world == hw::World::Secure) {
    // A secure-world user keeps everything in the carve-out.
    pt_pa_ = soc_.memory().secure_base();
    scratch_pa_ = pt_pa_ + (4u << 20);
    next_pa_ = scratch_pa_ + PAGE_SIZE;
  }
}

int Harness::poll(RegBlock b, uint32_t off, uint32_t mask, uint32_t value,
                  std::chrono::milliseconds timeout) {
  using std::chrono::microseconds;
  const auto now_us = [] {
    return uint64_t(std::chrono::duration_cast<microseconds>(
                        std::chrono::steady_clock::now().time_since_epoch())
                        .count());
  };
  int reads = 0;
  const bool ok = hw::poll_until(
      now_us() + uint64_t(std::chrono::duration_cast<microseconds>(timeout).count()), {},
      [&] { return ++reads, (rd(b, off) & mask) == value; }, now_us,
      [](uint32_t us) { std::this_thread::sleep_for(microseconds(us)); });
  return ok ? reads : -1;
}

bool Harness::power_on() {
  if (!sku().has_sms) return true;
  wr(RegBlock::Sms, SMS_TEE_CS, SMS_CLEAR_POWER_OFF);
  return poll(RegBlock::Sms, SMS_TEE_CS, SMS_STATE_MASK, SMS_IDLE) > 0;
}

bool Harness::init() {
  if (!power_on()) return false;
  if (!pt_ready_) {  // a re-init after a GPU reset keeps the mappings
    std::memset(cpu(pt_pa_), 0, 4u << 20);
    pt_ready_ = true;
  }
  hub(MMU_PT_PA_BASE, uint32_t(pt_pa_ >> PAGE_SHIFT));
  hub(MMU_CTL, MMU_CTL_ENABLE | MMU_CTL_PT_INVALID_ENABLE | MMU_CTL_PT_INVALID_ABORT |
                   MMU_CTL_PT_INVALID_INT | MMU_CTL_WRITE_VIOLATION_ABORT |
                   MMU_CTL_WRITE_VIOLATION_INT | MMU_CTL_CAP_EXCEEDED_ABORT |
                   MMU_CTL_CAP_EXCEEDED_INT);
  hub(MMU_ILLEGAL_ADDR, uint32_t(scratch_pa_ >> PAGE_SHIFT) | MMU_ILLEGAL_ADDR_ENABLE);
  hub(MMUC_CONTROL, MMUC_CONTROL_ENABLE);
  core(CTL_L2TFLSTA, 0);
  core(CTL_L2TFLEND, ~0u);
  // Unmask only what the harness handles.
  const uint32_t core_bits = sku().core_int_csd_done | (0xfffu << sku().core_int_qpu_shift) |
                             sku().core_int_gmpv;
  core(INT_MSK_SET, ~core_bits);
  core(INT_MSK_CLR, core_bits);
  const uint32_t hub_bits =
      HUB_INT_MMU_PTI | HUB_INT_MMU_WRV | HUB_INT_MMU_CAP | sku().hub_int_gmpv;
  hub(INT_MSK_SET, ~hub_bits);
  hub(INT_MSK_CLR, hub_bits);
  return flush_mmu();
}

bool Harness::flush_mmu() {
  hub(MMUC_CONTROL, MMUC_CONTROL_FLUSH | MMUC_CONTROL_ENABLE);
  if (poll(RegBlock::Hub, MMUC_CONTROL, MMUC_CONTROL_FLUSHING, 0) < 0) return false;
  hub(MMU_CTL, hub(MMU_CTL) | MMU_CTL_TLB_CLEAR);
  return poll(RegBlock::Hub, MMU_CTL, MMU_CTL_TLB_CLEARING, 0) > 0;
}

uint64_t Harness::alloc_pages(uint32_t pages) {
  const uint64_t pa = next_pa_;
  next_pa_ += uint64_t(pages) * PAGE_SIZE;
  std::memset(cpu(pa), 0, size_t(pages) * PAGE_SIZE);
  return pa;
}

void Harness::map(uint32_t va, uint64_t pa, uint32_t pages, bool writable) {
  auto* pt = reinterpret_cast<uint32_t*>(cpu(pt_pa_));
  for (uint32_t i = 0; i < pages; ++i)
    pt[(va >> PAGE_SHIFT) + i] = PTE_VALID | (writable ? PTE_WRITEABLE : 0) |
                                 uint32_t((pa >> PAGE_SHIFT) + i);
}

void Harness::unmap(uint32_t va, uint32_t pages) {
  auto* pt = reinterpret_cast<uint32_t*>(cpu(pt_pa_));
  for (uint32_t i = 0; i < pages; ++i) pt[(va >> PAGE_SHIFT) + i] = 0;
}

Buffer Harness::alloc(uint32_t bytes, bool writable) {
  const uint32_t pages = (bytes + PAGE_SIZE - 1) / PAGE_SIZE;
  Buffer b{next_va_, alloc_pages(pages), bytes};
  next_va_ += (pages + 1) * PAGE_SIZE;  // a guard page between buffers
  map(b.va, b.pa, pages, writable);
  EXPECT_TRUE(flush_mmu());
  return b;
}

Buffer Harness::load_shader(const std::string& source) {
  const isa::AsmResult r = isa::assemble(source);
  for (const auto& e : r.errors) ADD_FAILURE() << "asm line " << e.line << ": " << e.message;
  Buffer b = alloc(uint32_t(std::max<size_t>(8, r.words.size() * 8)), false);
  write(b, r.words.data(), r.words.size() * 8);
  return b;
}

Buffer Harness::load_uniforms(const std::vector<uint32_t>& words) {
  Buffer b = alloc(uint32_t(std::max<size_t>(4, words.size() * 4)), false);
  write(b, words.data(), words.size() * 4);
  return b;
}

bool Harness::invalidate_caches() {
  core(CTL_L2TCACTL, L2TCACTL_L2TFLS | (L2TCACTL_FLM_FLUSH << L2TCACTL_FLM_SHIFT));
  core(CTL_SLCACTL, 0x0f0f0f0f);
  return true;  // the hardware stalls the next job until the flush is done
}

bool Harness::clean_caches() {
  core(CTL_L2TCACTL, L2TCACTL_TMUWCF);
  if (poll(RegBlock::Core0, CTL_L2TCACTL, L2TCACTL_TMUWCF, 0) < 0) return false;
  core(CTL_L2TCACTL, L2TCACTL_L2TFLS | (L2TCACTL_FLM_CLEAN << L2TCACTL_FLM_SHIFT));
  return poll(RegBlock::Core0, CTL_L2TCACTL, L2TCACTL_L2TFLS, 0) > 0;
}

void Harness::submit(const Buffer& shader, const Buffer& uniforms, const DispatchOptions& o) {
  if (o.invalidate_before) invalidate_caches();
  const uint32_t batches = (o.wg_size + 15) / 16 * o.wg[0] * o.wg[1] * o.wg[2];
  const uint32_t cfg4 = o.cfg4_override >= 0 ? uint32_t(o.cfg4_override)
                                             : batches - (sku().csd_cfg4_minus_one ? 1 : 0);
  core(csd_cfg_reg(1), o.wg[1] << 16);
  core(csd_cfg_reg(2), o.wg[2] << 16);
  core(csd_cfg_reg(3), (o.wg_size & 0xff));
  core(csd_cfg_reg(4), cfg4);
  core(csd_cfg_reg(5), shader.va);
  core(csd_cfg_reg(6), uniforms.va);
  if (sku().csd_num_cfg > 7) core(csd_cfg_reg(7), 0);
  core(csd_cfg_reg(0), o.wg[0] << 16);
}

bool Harness::wait_csd_done(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const uint32_t done = sku().core_int_csd_done;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!port_->wait_irq(core_irq_line(), std::chrono::microseconds(20000))) continue;
    const uint32_t sts = core(INT_STS);
    core(INT_CLR, sts);
    if (core_irq_line() == 0) {  // shared line (4.2): the hub's bits must go too
      const uint32_t h = hub(INT_STS);
      hub(INT_CLR, h);
      hub_int_seen |= h;
    }
    core_int_seen |= sts;
    if (sts & done) return true;
  }
  return false;
}

bool Harness::dispatch(const Buffer& shader, const Buffer& uniforms, const DispatchOptions& o) {
  submit(shader, uniforms, o);
  if (!wait_csd_done(o.timeout)) return false;
  return !o.clean_after || clean_caches();
}

}  // namespace rplayer::test
