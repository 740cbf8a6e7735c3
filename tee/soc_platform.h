// The replayer's Platform on the modeled SoC: register blocks and interrupts through a
// world's SocPort, and a page pool carved from that world's physical memory (the secure
// carve-out for the TEE; any range for tests).
#pragma once

#include <cstdint>
#include <vector>

#include "hw/soc_port.h"
#include "replay/platform.h"

namespace rplayer::tee {

class SocPlatform final : public replay::Platform {
 public:
  // Pages come from [pool_pa, pool_pa + pool_bytes), which must lie in port.memory().
  SocPlatform(hw::SocPort& port, uint64_t pool_pa, uint64_t pool_bytes);

  bool has_block(replay::Block b) override;
  uint32_t read32(replay::Block b, uint32_t offset) override;
  void write32(replay::Block b, uint32_t offset, uint32_t value) override;
  int num_irq_lines() override { return port_.num_irq_lines(); }
  bool wait_irq(int line, uint32_t timeout_us) override;
  uint64_t now_us() override;
  void sleep_us(uint32_t us) override;
  bool alloc_pages(uint32_t count, bool contiguous, uint64_t* pas) override;
  void free_pages(const uint64_t* pas, uint32_t count) override;
  uint8_t* page(uint64_t pa) override;

  uint32_t pages_in_use() const { return in_use_; }
  // True if every page of the pool is zero (the replayer scrubs what it used).
  bool pool_is_clean();

 private:
  hw::SocPort& port_;
  hw::MemoryWindow mem_;
  uint64_t pool_pa_;
  std::vector<bool> used_;
  uint32_t in_use_ = 0;
};

}  // namespace rplayer::tee
