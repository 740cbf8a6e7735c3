#include "driver/hw_io.h"

#include <algorithm>
#include <thread>

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
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  Micros sleep(10);
  for (;;) {
    const uint32_t v = port_.read32(b, off);
    if (last) *last = v;
    if ((v & mask) == value) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(sleep);
    sleep = std::min(sleep * 2, Micros(1000));
  }
}

}  // namespace rplayer::driver
