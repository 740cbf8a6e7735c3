// The L2T (texture/TMU L2) cache between the QPUs and DRAM, modeled at 4 KiB page
// granularity and write-back: a page is copied from DRAM on first touch and GPU
// stores stay in the cache until a clean/flush writes them back. So a driver that
// skips the clean reads stale outputs, and one that skips the invalidate feeds the
// GPU stale inputs. Not thread-safe: calls are serialized by the GPU.
#pragma once

#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "hw/fault_injection.h"
#include "hw/mmu.h"
#include "hw/phys_memory.h"

namespace rplayer::hw {

class L2tCache {
 public:
  L2tCache(PhysMemory& mem, FaultInjection& faults, DmaSink& dma)
      : mem_(mem), faults_(faults), dma_(dma) {}

  // The cached copy of physical page `ppn`, filled from DRAM on a miss; marks it
  // dirty for writes. Valid until the next write_back/invalidate.
  uint8_t* frame(uint64_t ppn, bool write);
  // Writes dirty pages with PA in [lo, hi] back to DRAM; returns pages written.
  uint32_t write_back(uint64_t pa_lo, uint64_t pa_hi);
  // Drops pages with PA in [lo, hi], writing dirty ones back first if asked.
  uint32_t invalidate(uint64_t pa_lo, uint64_t pa_hi, bool write_back_dirty);
  uint32_t dirty_pages() const { return dirty_; }  // O(1): asked on every maintenance op
  size_t resident_pages() const { return frames_.size(); }
  uint64_t hits() const { return hits_; }
  uint64_t misses() const { return misses_; }
  uint64_t pages_written_back() const { return written_back_; }

 private:
  struct Frame {
    std::unique_ptr<uint8_t[]> data;
    bool dirty = false;
  };
  void write_frame(uint64_t ppn, Frame& f);

  PhysMemory& mem_;
  FaultInjection& faults_;
  DmaSink& dma_;
  std::unordered_map<uint64_t, Frame> frames_;
  std::vector<std::unique_ptr<uint8_t[]>> free_;
  uint32_t dirty_ = 0;
  uint64_t hits_ = 0, misses_ = 0, written_back_ = 0;
};

}  // namespace rplayer::hw
