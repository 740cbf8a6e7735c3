// Level-triggered interrupt lines. The GPU model drives each line's level from its
// INT_STS & ~INT_MSK; a driver thread waits for a line with a timeout.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <vector>

namespace rplayer::hw {

// Where a line is delivered.
enum class IrqDelivery : uint8_t {
  Owner,   // to the world that owns the GPU (set_delivery), the default
  Normal,  // always to the normal world (the ownership mailbox)
  Secure,  // always to the secure world
};

class IrqLines {
 public:
  explicit IrqLines(int count);
  int count() const { return int(level_.size()); }
  void set_level(int line, bool asserted);
  bool level(int line);
  // Owner-delivered lines go to one world at a time (the world owning the GPU).
  void set_delivery(bool to_secure);
  // Per-line override of the above.
  void set_line_delivery(int line, IrqDelivery d);
  // Waits until `line` is asserted and delivered to the caller's world.
  bool wait(int line, bool caller_secure, std::chrono::microseconds timeout);
  uint64_t assertions(int line);  // rising edges so far (statistics)

 private:
  bool delivered(int line, bool caller_secure) const;  // mu_ held

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<bool> level_;
  std::vector<uint64_t> edges_;
  std::vector<IrqDelivery> delivery_;
  bool to_secure_ = false;
};

}  // namespace rplayer::hw
