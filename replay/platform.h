// The only things the replayer needs from the system it runs in: the GPU's register
// blocks, physical pages it owns, an interrupt wait with a timeout and a clock. A TEE
// implements this over its secure mappings; tests and the CLI over the modeled SoC.
#pragma once

#include <cstdint>

#include "replay/recording.h"

namespace rplayer::replay {

class Platform {
 public:
  virtual ~Platform() = default;
  virtual bool has_block(Block b) = 0;
  virtual uint32_t read32(Block b, uint32_t offset) = 0;
  virtual void write32(Block b, uint32_t offset, uint32_t value) = 0;
  virtual int num_irq_lines() = 0;
  // True if `line` is asserted within `timeout_us`.
  virtual bool wait_irq(int line, uint32_t timeout_us) = 0;
  virtual uint64_t now_us() = 0;
  virtual void sleep_us(uint32_t us) = 0;

  // Physical pages for the replay. alloc_pages gives `count` pages, physically
  // contiguous if asked (the page table), or fails. page() maps a page it gave out.
  virtual bool alloc_pages(uint32_t count, bool contiguous, uint64_t* pas) = 0;
  virtual void free_pages(const uint64_t* pas, uint32_t count) = 0;
  virtual uint8_t* page(uint64_t pa) = 0;
};

}  // namespace rplayer::replay
