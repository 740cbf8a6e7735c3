#include "hw/l2t_cache.h"

#include <cstring>

#include "hw/v3d_regs.h"

namespace rplayer::hw {

using v3d::PAGE_SHIFT;
using v3d::PAGE_SIZE;

uint8_t* L2tCache::frame(uint64_t ppn, bool write) {
  auto it = frames_.find(ppn);
  if (it == frames_.end()) {
    ++misses_;
    Frame f;
    if (!free_.empty()) {
      f.data = std::move(free_.back());
      free_.pop_back();
    } else {
      f.data = std::make_unique<uint8_t[]>(PAGE_SIZE);
    }
    const uint64_t pa = ppn << PAGE_SHIFT;
    dma_.on_dma(pa, PAGE_SIZE, false);
    std::memcpy(f.data.get(), mem_.data() + pa, PAGE_SIZE);
    const uint64_t only = faults_.corrupt_dma_page.load(std::memory_order_relaxed);
    if ((only == 0 || only == ppn + 1) && FaultInjection::take(faults_.corrupt_dma_reads))
      f.data[0x40] ^= 0x10;
    it = frames_.emplace(ppn, std::move(f)).first;
  } else {
    ++hits_;
  }
  if (write && !it->second.dirty) {
    it->second.dirty = true;
    ++dirty_;
  }
  return it->second.data.get();
}

void L2tCache::write_frame(uint64_t ppn, Frame& f) {
  const uint64_t pa = ppn << PAGE_SHIFT;
  dma_.on_dma(pa, PAGE_SIZE, true);
  std::memcpy(mem_.data() + pa, f.data.get(), PAGE_SIZE);
  f.dirty = false;
  --dirty_;
  ++written_back_;
}

uint32_t L2tCache::write_back(uint64_t pa_lo, uint64_t pa_hi) {
  uint32_t n = 0;
  for (auto& [ppn, f] : frames_) {
    const uint64_t pa = ppn << PAGE_SHIFT;
    if (f.dirty && pa >= (pa_lo & ~uint64_t(PAGE_SIZE - 1)) && pa <= pa_hi) {
      write_frame(ppn, f);
      ++n;
    }
  }
  return n;
}

uint32_t L2tCache::invalidate(uint64_t pa_lo, uint64_t pa_hi, bool write_back_dirty) {
  uint32_t n = 0;
  for (auto it = frames_.begin(); it != frames_.end();) {
    const uint64_t pa = it->first << PAGE_SHIFT;
    if (pa >= (pa_lo & ~uint64_t(PAGE_SIZE - 1)) && pa <= pa_hi) {
      if (write_back_dirty && it->second.dirty) {
        write_frame(it->first, it->second);
        ++n;
      } else if (it->second.dirty) {
        --dirty_;  // CLEAR: dirty data discarded
      }
      free_.push_back(std::move(it->second.data));
      it = frames_.erase(it);
    } else {
      ++it;
    }
  }
  return n;
}

}  // namespace rplayer::hw
