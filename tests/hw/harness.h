// A bare-metal harness for hardware tests: the least a driver must do to run a
// compute job on the modeled GPU (power on, page table, MMU flushes, CSD submit,
// interrupt wait, cache maintenance), written directly against the register map so
// that each test can also leave steps out and observe the consequence.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "hw/soc.h"
#include "hw/v3d_regs.h"
#include "tests/common/soc_config.h"

namespace rplayer::test {

struct Buffer {
  uint32_t va = 0;
  uint64_t pa = 0;  // contiguous in this harness
  uint32_t bytes = 0;
};

struct DispatchOptions {
  uint32_t wg[3] = {1, 1, 1};
  uint32_t wg_size = 16;
  bool invalidate_before = true;
  bool clean_after = true;
  int64_t cfg4_override = -1;  // raw CFG4 value, or -1 for the SKU's correct encoding
  std::chrono::milliseconds timeout{2000};
};

class Harness {
 public:
  explicit Harness(hw::SocConfig cfg = {}, hw::World world = hw::World::Normal);
  hw::ModeledSoc& soc() { return soc_; }
  hw::SocPort& port() { return *port_; }
  // Register accesses and interrupt waits through another port of the same world (e.g. a
  // RemoteSocPort of a SoC process serving this SoC); memory stays the shared DRAM.
  void use_port(hw::SocPort* p) { port_ = p; }
  const hw::Sku& sku() const { return soc_.sku(); }

  uint32_t rd(hw::RegBlock b, uint32_t off) { return port_->read32(b, off); }
  void wr(hw::RegBlock b, uint32_t off, uint32_t v) { port_->write32(b, off, v); }
  uint32_t hub(uint32_t off) { return rd(hw::RegBlock::Hub, off); }
  uint32_t core(uint32_t off) { return rd(hw::RegBlock::Core0, off); }
  void hub(uint32_t off, uint32_t v) { wr(hw::RegBlock::Hub, off, v); }
  void core(uint32_t off, uint32_t v) { wr(hw::RegBlock::Core0, off, v); }
  // Polls until (reg & mask) == value, sleeping 10 us doubling to 1 ms (as Linux's
  // wait_for). Returns the number of reads, or -1 on timeout.
  int poll(hw::RegBlock b, uint32_t off, uint32_t mask, uint32_t value,
           std::chrono::milliseconds timeout = std::chrono::milliseconds(100));

  bool power_on();  // SMS power-up on 7.1; no-op on 4.2
  bool init();      // power on, page table, MMU enable, interrupt masks
  bool flush_mmu();
  uint64_t alloc_pages(uint32_t pages);  // physical, contiguous
  void map(uint32_t va, uint64_t pa, uint32_t pages, bool writable);
  void unmap(uint32_t va, uint32_t pages);
  Buffer alloc(uint32_t bytes, bool writable = true);  // allocates, maps and flushes
  uint8_t* cpu(uint64_t pa) { return soc_.memory().data() + pa; }
  void write(const Buffer& b, const void* src, size_t n, size_t off = 0) {
    std::memcpy(cpu(b.pa) + off, src, n);
  }
  template <typename T>
  std::vector<T> read(const Buffer& b, size_t count, size_t off = 0) {
    std::vector<T> v(count);
    std::memcpy(v.data(), cpu(b.pa) + off, count * sizeof(T));
    return v;
  }
  // Assembles `source` into a fresh executable buffer. Fails the test on errors.
  Buffer load_shader(const std::string& source);
  Buffer load_uniforms(const std::vector<uint32_t>& words);

  // Submits a CSD job and waits for CSDDONE. Returns false on timeout.
  bool dispatch(const Buffer& shader, const Buffer& uniforms, const DispatchOptions& o = {});
  void submit(const Buffer& shader, const Buffer& uniforms, const DispatchOptions& o);
  bool wait_csd_done(std::chrono::milliseconds timeout);
  bool invalidate_caches();
  bool clean_caches();
  int core_irq_line() const { return soc_.sku().num_irq_lines > 1 ? 1 : 0; }
  uint32_t csd_cfg_reg(int i) const { return soc_.sku().csd_queued_cfg0 + 4 * i; }

  uint32_t core_int_seen = 0, hub_int_seen = 0;  // interrupt bits handled so far

  uint64_t pt_pa() const { return pt_pa_; }
  uint64_t scratch_pa() const { return scratch_pa_; }

 private:
  hw::ModeledSoc soc_;
  hw::SocPort* port_;
  uint64_t pt_pa_ = 0, scratch_pa_ = 0;
  uint64_t next_pa_ = 0;
  bool pt_ready_ = false;
  uint32_t next_va_ = 0x10000;
};

}  // namespace rplayer::test
