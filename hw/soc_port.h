// The narrow interface between software and the SoC: register block I/O, physical
// memory and interrupt lines, as seen from one world. The modeled SoC implements it
// in-process; a port to real silicon (mmio + /dev/mem or a TEE's physical mappings)
// or a remote SoC process implements the same interface.
#pragma once

#include <chrono>
#include <cstdint>

namespace rplayer::hw {

enum class World : uint8_t { Normal, Secure };

// Mbox is the model's GPU ownership mailbox (docs/hw.md): a SoC block, not part of the
// GPU, so recordings (replay::Block) never name it.
enum class RegBlock : uint8_t { Hub, Core0, Sms, Bridge, Tzpc, Mbox };
inline constexpr int kNumRegBlocks = 6;

// A window of physical memory mapped into the caller: PA pa_base maps to base[0].
struct MemoryWindow {
  uint8_t* base = nullptr;
  uint64_t pa_base = 0;
  uint64_t size = 0;
  int fd = -1;  // file mapping this memory at offset pa - pa_base (memfd), or -1
  bool contains(uint64_t pa, uint64_t len) const {
    return pa >= pa_base && len <= size && pa - pa_base <= size - len;
  }
  uint8_t* at(uint64_t pa) const { return base + (pa - pa_base); }
};

class SocPort {
 public:
  virtual ~SocPort() = default;
  virtual bool has_block(RegBlock b) const = 0;
  virtual uint32_t read32(RegBlock b, uint32_t offset) = 0;
  virtual void write32(RegBlock b, uint32_t offset, uint32_t value) = 0;
  // The part of physical memory this world may map.
  virtual MemoryWindow memory() = 0;
  // The GPU's lines (Sku::num_irq_lines) plus the mailbox line after them.
  virtual int num_irq_lines() const = 0;
  // Blocks until interrupt `line` is asserted (level) or the timeout passes.
  // Returns whether it is asserted.
  virtual bool wait_irq(int line, std::chrono::microseconds timeout) = 0;
};

}  // namespace rplayer::hw
