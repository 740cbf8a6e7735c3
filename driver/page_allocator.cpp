#include "driver/page_allocator.h"

#include <algorithm>
#include <random>

namespace rplayer::driver {

PageAllocator::PageAllocator(uint64_t base, uint64_t pages, uint64_t seed) {
  free_.reserve(pages);
  std::vector<uint64_t> chunks;
  for (uint64_t i = 0; i < pages; i += 64) chunks.push_back(i);
  std::mt19937_64 rng(seed);
  std::shuffle(chunks.begin(), chunks.end(), rng);
  for (uint64_t c : chunks)
    for (uint64_t i = c; i < std::min(pages, c + 64); ++i) free_.push_back(base + i * 4096);
}

std::optional<std::vector<uint64_t>> PageAllocator::alloc(uint32_t count) {
  std::lock_guard lk(mu_);
  if (count > free_.size()) return std::nullopt;
  std::vector<uint64_t> out(free_.end() - count, free_.end());
  free_.resize(free_.size() - count);
  return out;
}

void PageAllocator::free(const std::vector<uint64_t>& pages) {
  std::lock_guard lk(mu_);
  free_.insert(free_.end(), pages.begin(), pages.end());
}

uint64_t PageAllocator::free_pages() const {
  std::lock_guard lk(mu_);
  return free_.size();
}

}  // namespace rplayer::driver
