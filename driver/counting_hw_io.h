// An HwIo decorator that counts what crosses the driver/hardware boundary: the figure
// of merit for record/replay (every action here is one a recording must hold). The
// ownership mailbox (its block and its line, the SoC's last) is the SoC's, never in a
// recording, and is not counted.
#pragma once

#include <atomic>
#include <cstdint>

#include "driver/hw_io.h"

namespace rplayer::driver {

struct HwIoCounts {
  uint64_t reads = 0, writes = 0, polls = 0, irq_waits = 0;
  uint64_t total() const { return reads + writes + polls + irq_waits; }
};

class CountingHwIo final : public HwIo {
 public:
  explicit CountingHwIo(HwIo& inner) : inner_(inner) {}
  HwIoCounts counts() const {
    return {reads_.load(), writes_.load(), polls_.load(), irq_waits_.load()};
  }
  bool has_block(RegBlock b) override { return inner_.has_block(b); }
  int num_irq_lines() override { return inner_.num_irq_lines(); }
  hw::MemoryWindow memory() override { return inner_.memory(); }
  uint32_t read(RegBlock b, uint32_t off, ReadUse u) override {
    if (b != RegBlock::Mbox) ++reads_;
    return inner_.read(b, off, u);
  }
  void write(RegBlock b, uint32_t off, uint32_t v) override {
    if (b != RegBlock::Mbox) ++writes_;
    inner_.write(b, off, v);
  }
  bool lost() override { return inner_.lost(); }
  void update(RegBlock b, uint32_t off, uint32_t keep, uint32_t set) override {
    if (b != RegBlock::Mbox) ++reads_, ++writes_;
    inner_.update(b, off, keep, set);
  }
  bool poll(RegBlock b, uint32_t off, uint32_t mask, uint32_t value, Micros timeout,
            uint32_t* last) override {
    if (b != RegBlock::Mbox) ++polls_;
    return inner_.poll(b, off, mask, value, timeout, last);
  }
  // Only waits that see an interrupt count: idle timeouts of the IRQ threads are not
  // part of the conversation.
  bool wait_irq(int line, Micros timeout) override {
    const bool hit = inner_.wait_irq(line, timeout);
    const bool mbox_line = inner_.has_block(RegBlock::Mbox) && line == inner_.num_irq_lines() - 1;
    if (hit && !mbox_line) ++irq_waits_;
    return hit;
  }
  void on_sync_point(SyncPoint p, uint64_t seqno) override { inner_.on_sync_point(p, seqno); }
  void on_bo_mapped(const BoInfo& b) override { inner_.on_bo_mapped(b); }
  void on_bo_unmapped(const BoInfo& b) override { inner_.on_bo_unmapped(b); }
  void on_lock_released() override { inner_.on_lock_released(); }

 private:
  HwIo& inner_;
  std::atomic<uint64_t> reads_{0}, writes_{0}, polls_{0}, irq_waits_{0};
};

}  // namespace rplayer::driver
