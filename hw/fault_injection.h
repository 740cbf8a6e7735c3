// Fault injection for tests: each counter arms the next N occurrences of a fault.
#pragma once

#include <atomic>
#include <cstdint>

namespace rplayer::hw {

struct FaultInjection {
  std::atomic<int> drop_interrupts{0};     // next N interrupt events never reach INT_STS
  std::atomic<int> late_interrupts{0};     // next N interrupt events set INT_STS at once but
  std::atomic<uint32_t> late_interrupt_us{0};  // raise the line only this much later
  std::atomic<int> hang_dispatches{0};     // next N CSD dispatches never complete
  std::atomic<int> corrupt_dma_reads{0};   // next N DRAM page reads by the GPU get bit 4 of
                                           // byte 0x40 flipped
  std::atomic<uint64_t> corrupt_dma_page{0};  // restrict that to physical page N-1 (0: any)
  std::atomic<int> fail_resets{0};         // next N resets never finish
  std::atomic<uint32_t> power_delay_us{0};  // added to every power/reset transition
  std::atomic<int> slow_mmu_flushes{0};     // next N MMU cache flushes take
  std::atomic<uint32_t> mmu_flush_delay_us{0};  // this long (beyond a driver's timeout)

  // Consumes one armed occurrence; true if the fault fires now.
  static bool take(std::atomic<int>& armed) {
    int n = armed.load(std::memory_order_relaxed);
    while (n > 0)
      if (armed.compare_exchange_weak(n, n - 1)) return true;
    return false;
  }
};

}  // namespace rplayer::hw
