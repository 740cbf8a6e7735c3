#include "driver/va_allocator.h"

namespace rplayer::driver {

VaAllocator::VaAllocator(uint64_t start, uint64_t end) { free_[start] = end - start; }

std::optional<uint32_t> VaAllocator::alloc(uint32_t bytes) {
  const uint64_t need = uint64_t(bytes) + 4096;  // + guard page
  for (auto it = free_.begin(); it != free_.end(); ++it) {
    if (it->second < need) continue;
    const uint64_t va = it->first, len = it->second;
    free_.erase(it);
    if (len > need) free_[va + need] = len - need;
    return uint32_t(va);
  }
  return std::nullopt;
}

void VaAllocator::free(uint32_t va, uint32_t bytes) {
  uint64_t start = va, len = uint64_t(bytes) + 4096;
  auto next = free_.lower_bound(start);
  if (next != free_.end() && start + len == next->first) {  // merge with the next range
    len += next->second;
    next = free_.erase(next);
  }
  if (next != free_.begin()) {  // and with the previous one
    auto prev = std::prev(next);
    if (prev->first + prev->second == start) {
      prev->second += len;
      return;
    }
  }
  free_[start] = len;
}

}  // namespace rplayer::driver
