// The GPU MMU: single-level page table in DRAM, a PTE cache (MMUC) in front of it and
// a TLB in front of that. Both caches serve stale entries until flushed, as on the
// real part, so a driver that changes PTEs without the flush sequence sees old
// translations. Not thread-safe: the GPU serializes calls under its memory lock.
#pragma once

#include <array>
#include <cstdint>

#include "hw/phys_memory.h"

namespace rplayer::hw {

class DmaSink {
 public:
  virtual ~DmaSink() = default;
  virtual void on_dma(uint64_t pa, uint32_t bytes, bool write) = 0;
};

struct MmuConfig {
  bool enabled = false;
  bool mmuc_enabled = false;
  uint32_t pt_base_pfn = 0;
  bool cap_enabled = false;
  uint32_t cap_mib = 0;
  bool gpu_secure = false;
};

enum class MmuFault : uint8_t { None, PtInvalid, WriteViolation, CapExceeded, Bus };

class Mmu {
 public:
  Mmu(PhysMemory& mem, DmaSink& dma) : mem_(mem), dma_(dma) { reset(); }

  // Translates VA page `vpn`. On success stores the physical page number.
  MmuFault translate(uint32_t vpn, bool write, const MmuConfig& cfg, uint64_t* ppn);
  // Whether the GPU may reach physical page `ppn` (exists, and outside the secure
  // carve-out unless the GPU is secure).
  bool bus_allows(uint64_t ppn, bool gpu_secure) const;

  void clear_tlb();
  void shoot_down(uint32_t vpn);
  void flush_mmuc();
  void reset();

  uint64_t tlb_hits() const { return hits_; }
  uint64_t tlb_misses() const { return misses_; }

 private:
  static constexpr int kTlbEntries = 256;
  static constexpr int kMmucLines = 64;
  static constexpr int kPtesPerLine = 16;  // 64-byte lines
  struct TlbEntry {
    uint32_t tag = 0;  // vpn + 1; 0 = empty
    uint32_t pte = 0;
  };
  struct MmucLine {
    uint64_t tag = 0;  // line PA + 1; 0 = empty
    std::array<uint32_t, kPtesPerLine> ptes{};
  };
  bool fetch_pte(uint32_t vpn, const MmuConfig& cfg, uint32_t* pte);

  PhysMemory& mem_;
  DmaSink& dma_;
  std::array<TlbEntry, kTlbEntries> tlb_;
  std::array<MmucLine, kMmucLines> mmuc_;
  uint64_t hits_ = 0, misses_ = 0;
};

}  // namespace rplayer::hw
