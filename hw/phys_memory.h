// DRAM of the modeled SoC: the normal range [0, normal) followed by the secure
// carve-out [normal, normal + secure). Physical addresses are offsets. Each range is its
// own memfd, mapped back to back, so that a world (a process, later) can be handed
// exactly the range it may map and nothing else.
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

  // The device's own view (all of DRAM).
  uint8_t* data() { return base_; }
  // What a world may map: the normal world sees only the normal range (with its fd);
  // the secure world sees all of DRAM (no single fd covers it).
  MemoryWindow window(World w);
  // The carve-out alone, with its own fd (offset 0 = the first secure PA).
  MemoryWindow carve_out();

 private:
  uint64_t normal_, secure_;
  int normal_fd_ = -1, secure_fd_ = -1;
  uint8_t* base_ = nullptr;
};

}  // namespace rplayer::hw
