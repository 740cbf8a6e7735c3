#include "driver/hw_io.h"

#include <algorithm>
#include <thread>

#include "hw/poll_backoff.h"

namespace rplayer::driver {

std::string_view bo_usage_name(BoUsage u) {
  switch (u) {
    case BoUsage::Internal: return "internal";
    case BoUsage::Code: return "code";
    case BoUsage::Uniforms: return "uniforms";
    case BoUsage::Weights: return "weights";
    case BoUsage::Input: return "input";
    case BoUsage::Output: return "output";
    case BoUsage::Scratch: return "scratch";
  }
  return "?";
}

bool DirectHwIo::poll(RegBlock b, uint32_t off, uint32_t mask, uint32_t value, Micros timeout,
                      uint32_t* last) {
  const auto now_us = [] {
    return uint64_t(
        std::chrono::duration_cast<Micros>(std::chrono::steady_clock::now().time_since_epoch())
            .count());
  };
  return hw::poll_until(
      now_us() + uint64_t(std::max<int64_t>(timeout.count(), 0)), {},
      [&] {
        const uint32_t v = port_.read32(b, off);
        if (last) *last = v;
        return (v & mask) == value;
      },
      now_us, [](uint32_t us) { std::this_thread::sleep_for(Micros(us)); });
}

}  // namespace rplayer::driver
