// DRAM of the modeled SoC: one memfd holding the normal range [0, normal) followed by
// the secure carve-out [normal, normal + secure). Physical addresses are offsets into
// it. The fd lets another process (a world, later) map exactly the range it may see.
#pragma once

#include <cstdint>
#include <string>

#include "hw/soc_port.h"

namespace rplayer::hw {

class PhysMemory {
 public:
  // Sizes must be multiples of 4 KiB. Throws std::runtime_error if the memfd or the
  // mapping cannot be created.
  PhysMemory(uint64_t normal_bytes, uint64_t secure_bytes);
  ~PhysMemory();
  PhysMemory(const PhysMemory&) = delete;
  PhysMemory& operator=(const PhysMemory&) = delete;

  uint64_t size() const { return normal_ + secure_; }
  uint64_t normal_size() const { return normal_; }
  uint64_t secure_base() const { return normal_; }
  uint64_t secure_size() const { return secure_; }
  bool is_secure(uint64_t pa) const { return pa >= normal_ && pa < normal_ + secure_; }
  bool contains(uint64_t pa, uint64_t len) const {
    return len <= size() && pa <= size() - len;
  }
  int fd() const { return fd_; }

  // The device's own view (all of DRAM).
  uint8_t* data() { return base_; }
  // What a world may map: the normal world sees only the normal range.
  MemoryWindow window(World w);

 private:
  uint64_t normal_, secure_;
  int fd_ = -1;
  uint8_t* base_ = nullptr;
};

}  // namespace rplayer::hw
