#include "hw/irq.h"

namespace rplayer::hw {

IrqLines::IrqLines(int count)
    : level_(count, false), edges_(count, 0), delivery_(count, IrqDelivery::Owner) {}

void IrqLines::set_level(int line, bool asserted) {
  {
    std::lock_guard lk(mu_);
    if (asserted && !level_[line]) ++edges_[line];
    level_[line] = asserted;
  }
  if (asserted) cv_.notify_all();
}

bool IrqLines::level(int line) {
  std::lock_guard lk(mu_);
  return level_[line];
}

void IrqLines::set_delivery(bool to_secure) {
  {
    std::lock_guard lk(mu_);
    to_secure_ = to_secure;
  }
  cv_.notify_all();
}

void IrqLines::set_line_delivery(int line, IrqDelivery d) {
  {
    std::lock_guard lk(mu_);
    if (line < 0 || line >= int(level_.size())) return;
    delivery_[line] = d;
  }
  cv_.notify_all();
}

bool IrqLines::delivered(int line, bool caller_secure) const {
  switch (delivery_[line]) {
    case IrqDelivery::Owner: return to_secure_ == caller_secure;
    case IrqDelivery::Normal: return !caller_secure;
    case IrqDelivery::Secure: return caller_secure;
  }
  return false;
}

bool IrqLines::wait(int line, bool caller_secure, std::chrono::microseconds timeout) {
  std::unique_lock lk(mu_);
  if (line < 0 || line >= int(level_.size())) return false;
  return cv_.wait_for(lk, timeout,
                      [&] { return level_[line] && delivered(line, caller_secure); });
}

uint64_t IrqLines::assertions(int line) {
  std::lock_guard lk(mu_);
  return edges_[line];
}

}  // namespace rplayer::hw
