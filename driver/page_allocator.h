// Physical page allocator. Hands out pages from 64-page (256 KiB) chunks in a scrambled
// order, so buffers are physically scattered as on a long-running system (nothing may
// assume contiguity), yet map with few CPU mappings (Linux allows ~65k per process).
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <vector>

namespace rplayer::driver {

class PageAllocator {
 public:
  // Manages [base, base + pages * 4096).
  PageAllocator(uint64_t base, uint64_t pages, uint64_t seed = 0x5eed);
  // nullopt when fewer than `count` pages are free (nothing is allocated then).
  std::optional<std::vector<uint64_t>> alloc(uint32_t count);
  void free(const std::vector<uint64_t>& pages);
  uint64_t free_pages() const;

 private:
  mutable std::mutex mu_;
  std::vector<uint64_t> free_;  // physical addresses
};

}  // namespace rplayer::driver
