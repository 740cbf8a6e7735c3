#include "hw/mmu.h"

#include <cstring>

#include "hw/v3d_regs.h"

namespace rplayer::hw {

using namespace rplayer::v3d;

bool Mmu::bus_allows(uint64_t ppn, bool gpu_secure) const {
  const uint64_t pa = ppn << PAGE_SHIFT;
  if (!mem_.contains(pa, PAGE_SIZE)) return false;
  return gpu_secure || !mem_.is_secure(pa);
}

bool Mmu::fetch_pte(uint32_t vpn, const MmuConfig& cfg, uint32_t* pte) {
  const uint64_t pte_pa = (uint64_t(cfg.pt_base_pfn) << PAGE_SHIFT) + uint64_t(vpn) * 4;
  if (!mem_.contains(pte_pa, 4) || (!cfg.gpu_secure && mem_.is_secure(pte_pa))) return false;
  if (!cfg.mmuc_enabled) {
    dma_.on_dma(pte_pa, 4, false);
    std::memcpy(pte, mem_.data() + pte_pa, 4);
    return true;
  }
  const uint64_t line_pa = pte_pa & ~uint64_t(kPtesPerLine * 4 - 1);
  MmucLine& line = mmuc_[(line_pa >> 6) % kMmucLines];
  if (line.tag != line_pa + 1) {
    if (!mem_.contains(line_pa, kPtesPerLine * 4)) return false;
    dma_.on_dma(line_pa, kPtesPerLine * 4, false);
    std::memcpy(line.ptes.data(), mem_.data() + line_pa, kPtesPerLine * 4);
    line.tag = line_pa + 1;
  }
  *pte = line.ptes[(pte_pa - line_pa) / 4];
  return true;
}

MmuFault Mmu::translate(uint32_t vpn, bool write, const MmuConfig& cfg, uint64_t* ppn) {
  if (!cfg.enabled) {  // bypass: VA is PA
    if (!bus_allows(vpn, cfg.gpu_secure)) return MmuFault::Bus;
    *ppn = vpn;
    return MmuFault::None;
  }
  if (cfg.cap_enabled && (uint64_t(vpn) << PAGE_SHIFT) >= (uint64_t(cfg.cap_mib) << 20))
    return MmuFault::CapExceeded;
  TlbEntry& e = tlb_[vpn % kTlbEntries];
  uint32_t pte;
  if (e.tag == vpn + 1) {
    ++hits_;
    pte = e.pte;
  } else {
    ++misses_;
    if (!fetch_pte(vpn, cfg, &pte)) return MmuFault::Bus;
    if (!(pte & PTE_VALID)) return MmuFault::PtInvalid;  // invalid PTEs are not cached
    e.tag = vpn + 1;
    e.pte = pte;
  }
  if (write && !(pte & PTE_WRITEABLE)) return MmuFault::WriteViolation;
  const uint64_t p = pte & PTE_PFN_MASK;
  if (!bus_allows(p, cfg.gpu_secure)) return MmuFault::Bus;
  *ppn = p;
  return MmuFault::None;
}

void Mmu::clear_tlb() { tlb_.fill(TlbEntry{}); }

void Mmu::shoot_down(uint32_t vpn) {
  TlbEntry& e = tlb_[vpn % kTlbEntries];
  if (e.tag == vpn + 1) e = TlbEntry{};
}

void Mmu::flush_mmuc() { mmuc_.fill(MmucLine{}); }

void Mmu::reset() {
  clear_tlb();
  flush_mmuc();
  hits_ = misses_ = 0;
}

}  // namespace rplayer::hw
