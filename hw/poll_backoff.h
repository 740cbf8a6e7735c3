// How everything that polls a register waits between reads: the driver (`DirectHwIo`),
// the replayer, the secure world's GPU switch and the hardware tests. Re-read, and sleep
// an interval that starts short and doubles up to a cap, until a deadline: quick for
// operations that finish in microseconds, cheap for ones that take milliseconds.
// Header-only with no dependencies: the replayer's trusted core includes it.
#pragma once

#include <cstdint>

namespace rplayer::hw {

struct Backoff {
  uint32_t first_us = 10, max_us = 1000;  // Linux's readx_poll_timeout ranges, roughly
};

// Calls done() until it returns true (-> true) or now_us() passes deadline_us (-> false,
// after one last call). now_us: a monotonic clock in microseconds; sleep_us(n): sleeps.
template <typename Done, typename Now, typename Sleep>
bool poll_until(uint64_t deadline_us, Backoff b, Done done, Now now_us, Sleep sleep_us) {
  uint32_t sleep = b.first_us;
  for (;;) {
    if (done()) return true;
    if (now_us() >= deadline_us) return false;
    sleep_us(sleep);
    sleep = sleep < b.max_us / 2 ? sleep * 2 : b.max_us;
  }
}

}  // namespace rplayer::hw
