// GPU virtual address space allocator (first fit over a sorted free list). A guard
// page follows every allocation so an overrun faults in the MMU instead of landing in
// the next buffer. GPU page 0 is never handed out.
#pragma once

#include <cstdint>
#include <map>
#include <optional>

namespace rplayer::driver {

class VaAllocator {
 public:
  VaAllocator(uint64_t start, uint64_t end);  // [start, end), page aligned
  std::optional<uint32_t> alloc(uint32_t bytes);  // bytes: page multiple
  void free(uint32_t va, uint32_t bytes);

 private:
  std::map<uint64_t, uint64_t> free_;  // start -> length
};

}  // namespace rplayer::driver
