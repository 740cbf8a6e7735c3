#include "tee/soc_platform.h"

#include <sys/prctl.h>

#include <chrono>
#include <stdexcept>
#include <thread>

namespace rplayer::tee {

SocPlatform::SocPlatform(hw::SocPort& port, uint64_t pool_pa, uint64_t pool_bytes)
    : port_(port), mem_(port.memory()), pool_pa_(pool_pa), used_(pool_bytes / 4096, false) {
  if (pool_pa % 4096 || !mem_.contains(pool_pa, pool_bytes))
    throw std::invalid_argument("replay page pool outside the world's memory");
}

bool SocPlatform::has_block(replay::Block b) { return port_.has_block(hw::RegBlock(uint8_t(b))); }

uint32_t SocPlatform::read32(replay::Block b, uint32_t off) {
  return port_.read32(hw::RegBlock(uint8_t(b)), off);
}

void SocPlatform::write32(replay::Block b, uint32_t off, uint32_t v) {
  port_.write32(hw::RegBlock(uint8_t(b)), off, v);
}

bool SocPlatform::wait_irq(int line, uint32_t timeout_us) {
  // Short jobs finish within tens of microseconds: look at the line for up to 50 us
  // before blocking (a blocked thread takes ~50-100 us to be woken). Bounded by time: on
  // a remote bus each look is a round trip.
  const auto spin_end = std::chrono::steady_clock::now() + std::chrono::microseconds(50);
  for (int i = 0; i < 32 && std::chrono::steady_clock::now() < spin_end; ++i) {
    if (port_.wait_irq(line, std::chrono::microseconds(0))) return true;
    std::this_thread::yield();
  }
  return port_.wait_irq(line, std::chrono::microseconds(timeout_us));
}

uint64_t SocPlatform::now_us() {
  return uint64_t(std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::steady_clock::now().time_since_epoch())
                      .count());
}

void SocPlatform::sleep_us(uint32_t us) {
  // Polls sleep 10-1000 us; the default 50 us timer slack would add most of that again.
  thread_local const bool precise = prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0) == 0;
  (void)precise;
  std::this_thread::sleep_for(std::chrono::microseconds(us));
}

bool SocPlatform::alloc_pages(uint32_t count, bool contiguous, uint64_t* pas) {
  if (count == 0 || count > used_.size() - in_use_) return false;
  if (contiguous) {
    for (size_t start = 0; start + count <= used_.size(); ++start) {
      size_t run = 0;
      while (run < count && !used_[start + run]) ++run;
      if (run < count) {
        start += run;
        continue;
      }
      for (uint32_t i = 0; i < count; ++i) {
        used_[start + i] = true;
        pas[i] = pool_pa_ + (start + i) * 4096;
      }
      in_use_ += count;
      return true;
    }
    return false;
  }
  uint32_t got = 0;
  for (size_t i = 0; i < used_.size() && got < count; ++i)
    if (!used_[i]) {
      used_[i] = true;
      pas[got++] = pool_pa_ + i * 4096;
    }
  in_use_ += got;
  return true;
}

void SocPlatform::free_pages(const uint64_t* pas, uint32_t count) {
  for (uint32_t i = 0; i < count; ++i) {
    const uint64_t idx = (pas[i] - pool_pa_) / 4096;
    if (idx < used_.size() && used_[idx]) {
      used_[idx] = false;
      --in_use_;
    }
  }
}

uint8_t* SocPlatform::page(uint64_t pa) { return mem_.at(pa); }

bool SocPlatform::pool_is_clean() {
  const uint8_t* p = mem_.at(pool_pa_);
  for (size_t i = 0; i < used_.size() * 4096; ++i)
    if (p[i]) return false;
  return true;
}

}  // namespace rplayer::tee
