// Observation of everything that crosses the SoC bus: register accesses from either
// world and GPU DMA to DRAM. Costs one relaxed atomic load per access when no tap is
// installed.
#pragma once

#include <cstdint>

#include "hw/soc_port.h"

namespace rplayer::hw {

struct BusEvent {
  enum class Kind : uint8_t {
    RegRead,
    RegWrite,
    DmaRead,   // GPU reads DRAM (cache fill, page-table walk)
    DmaWrite,  // GPU writes DRAM (cache write-back)
    JobStart,  // the CSD starts a dispatch; value: 1 if the MMU translates, 0 if bypassed
  };
  Kind kind;
  World world;       // issuing world for register accesses; GPU's world for DMA
  RegBlock block;    // register accesses only
  uint32_t offset;   // register offset
  uint32_t value;    // register value read or written (JobStart: MMU enabled)
  uint64_t pa;       // DMA physical address
  uint32_t bytes;    // DMA length
  bool dropped;      // access refused (TrustZone, powered off, unknown register)
};

class BusTap {
 public:
  virtual ~BusTap() = default;
  // Called synchronously on the accessing thread; must be thread-safe.
  virtual void on_bus_event(const BusEvent& e) = 0;
};

}  // namespace rplayer::hw
