#include "tee/gpu_switch.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include "hw/poll_backoff.h"
#include "hw/v3d_regs.h"

namespace rplayer::tee {

using namespace rplayer::v3d;
using Clock = std::chrono::steady_clock;

namespace {

uint32_t us_since(Clock::time_point t0) {
  const auto us =
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count();
  return uint32_t(std::clamp<int64_t>(us, 0, UINT32_MAX));
}

// Polls `done` until it holds or `timeout_us` passes: sleeps 5 us doubling to 200 us,
// fine enough to measure switch latencies of tens of microseconds.
template <typename Pred>
bool bounded_poll(uint32_t timeout_us, Pred done) {
  const auto now_us = [] {
    return uint64_t(
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now().time_since_epoch())
            .count());
  };
  return hw::poll_until(now_us() + timeout_us, {5, 200}, done, now_us, [](uint32_t us) {
    std::this_thread::sleep_for(std::chrono::microseconds(us));
  });
}

}  // namespace

const char* switch_code_name(SwitchCode c) {
  switch (c) {
    case SwitchCode::Ok: return "ok";
    case SwitchCode::Unsupported: return "unsupported";
    case SwitchCode::BadState: return "bad state";
    case SwitchCode::SwitchTimedOut: return "world switch timed out";
  }
  return "?";
}

GpuWorldSwitch::GpuWorldSwitch(hw::SocPort& port, uint32_t switch_timeout_us, FairShare share)
    : port_(port), switch_timeout_us_(switch_timeout_us), share_(share) {
  share_.normal_share = std::clamp(share_.normal_share, 0.0, 0.95);
}

uint32_t GpuWorldSwitch::owed_to_normal_world_us() const {
  if (!normal_demand_ || share_.normal_share <= 0) return 0;
  const auto hold =
      std::chrono::duration_cast<std::chrono::microseconds>(released_at_ - claimed_at_);
  const double owed =
      std::min(double(hold.count()) * share_.normal_share / (1.0 - share_.normal_share),
               double(share_.max_defer_us));
  const double since = double(us_since(released_at_));
  return owed > since ? uint32_t(owed - since) : 0;
}

bool GpuWorldSwitch::wait_world(bool secure) {
  const uint32_t want = secure ? TZPC_STATUS_SECURE : 0;
  return bounded_poll(switch_timeout_us_, [&] {
    return (port_.read32(hw::RegBlock::Tzpc, TZPC_STATUS) &
            (TZPC_STATUS_SECURE | TZPC_STATUS_SWITCHING)) == want;
  });
}

bool GpuWorldSwitch::poll_mbox(uint32_t off, uint32_t value, uint32_t timeout_us) {
  return bounded_poll(timeout_us,
                      [&] { return (port_.read32(hw::RegBlock::Mbox, off) & 1) == value; });
}

ClaimResult GpuWorldSwitch::claim(uint32_t timeout_us) {
  ClaimResult r;
  if (!port_.has_block(hw::RegBlock::Tzpc) || !port_.has_block(hw::RegBlock::Mbox)) {
    r.code = SwitchCode::Unsupported;
    return r;
  }
  if (claimed_) {
    r.code = SwitchCode::BadState;
    return r;
  }
  // Bounded by max_defer_us; an untrusted normal world that always reports demand can
  // slow the secure world by that much per claim and no more.
  r.deferred_us = owed_to_normal_world_us();
  if (r.deferred_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(r.deferred_us));
  const auto t0 = Clock::now();
  claimed_ = true;  // from here on the caller must release(), whatever happens
  // A driver we released the GPU to may not have said it resumed yet: its ACK = 1 is
  // stale and must not pass for an answer to this claim. Wait for it (bounded).
  if (resume_pending_) poll_mbox(MBOX_ACK, 0, timeout_us);
  resume_pending_ = false;
  // ACK reads 1 before the claim if no normal-world driver holds the GPU: then nobody
  // will suspend now or resume after the release.
  driver_present_ = !(port_.read32(hw::RegBlock::Mbox, MBOX_ACK) & 1);
  port_.write32(hw::RegBlock::Mbox, MBOX_CLAIM, 1);
  // The normal world drains and suspends. Not waiting forever is the point: an
  // unresponsive normal world only delays the switch by the timeout.
  r.forced = !poll_mbox(MBOX_ACK, 1, timeout_us);
  r.quiesce_us = us_since(t0);

  const auto t1 = Clock::now();
  port_.write32(hw::RegBlock::Tzpc, TZPC_GPU_SECURE, 1);
  if (!wait_world(true)) r.code = SwitchCode::SwitchTimedOut;
  r.switch_us = us_since(t1);
  r.total_us = us_since(t0);
  claimed_at_ = Clock::now();
  return r;
}

ReleaseResult GpuWorldSwitch::release(uint32_t timeout_us) {
  ReleaseResult r;
  if (!port_.has_block(hw::RegBlock::Tzpc) || !port_.has_block(hw::RegBlock::Mbox)) {
    r.code = SwitchCode::Unsupported;
    return r;
  }
  if (!claimed_) {
    r.code = SwitchCode::BadState;
    return r;
  }
  const auto t0 = Clock::now();
  port_.write32(hw::RegBlock::Tzpc, TZPC_GPU_SECURE, 0);
  // The normal world hears of the release only once the GPU is back: it may touch
  // the registers as soon as it does.
  if (!wait_world(false)) {
    r.code = SwitchCode::SwitchTimedOut;  // still claimed: the caller may retry
    r.switch_us = r.total_us = us_since(t0);
    return r;
  }
  r.switch_us = us_since(t0);
  claimed_ = false;
  released_at_ = Clock::now();
  // Read before CLAIM = 0: the driver clears it when it resumes. Whether or not a driver
  // held the GPU at the claim: one that is still probing waits too (and a lie costs at
  // most the bounded deferral).
  normal_demand_ = port_.read32(hw::RegBlock::Mbox, MBOX_DEMAND) & 1;

  const bool acked = driver_present_ && (port_.read32(hw::RegBlock::Mbox, MBOX_ACK) & 1);
  const auto t1 = Clock::now();
  port_.write32(hw::RegBlock::Mbox, MBOX_CLAIM, 0);
  if (acked && timeout_us > 0) {
    r.resumed = poll_mbox(MBOX_ACK, 0, timeout_us);
    r.resume_us = us_since(t1);
  }
  resume_pending_ = acked && !r.resumed;
  r.total_us = us_since(t0);
  return r;
}

}  // namespace rplayer::tee
