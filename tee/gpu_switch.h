// Secure-world side of the GPU hand-off between the worlds (docs/hw.md, "ownership
// mailbox"): the TA asks the normal-world driver to quiesce through the mailbox, then
// switches the GPU with the TZPC; on release it switches back and tells the driver to
// resume. The normal world is untrusted: if it does not acknowledge in time the switch
// happens anyway (it is a full GPU reset, so security never depends on the normal
// world's cooperation) and the result says `forced`.
//
// Secure-world code: no exceptions, no unbounded waits; results carry a code.
#pragma once

#include <chrono>
#include <cstdint>

#include "hw/soc_port.h"

namespace rplayer::tee {

enum class SwitchCode : uint8_t {
  Ok = 0,
  Unsupported,     // the platform has no TZPC or no ownership mailbox
  BadState,        // claim() while claimed, release() while not claimed
  SwitchTimedOut,  // TZPC_STATUS did not reach the requested world in time
};
const char* switch_code_name(SwitchCode c);

// All times in microseconds of wall time.
struct ClaimResult {
  SwitchCode code = SwitchCode::Ok;
  bool forced = false;       // the normal world did not acknowledge within the timeout
  uint32_t deferred_us = 0;  // waited before claiming: the normal world's share (FairShare)
  uint32_t quiesce_us = 0;   // MBOX_CLAIM = 1 until MBOX_ACK = 1 (or the timeout)
  uint32_t switch_us = 0;    // TZPC_GPU_SECURE = 1 until SECURE and not SWITCHING
  uint32_t total_us = 0;
  bool ok() const { return code == SwitchCode::Ok; }
};

struct ReleaseResult {
  SwitchCode code = SwitchCode::Ok;
  uint32_t switch_us = 0;    // TZPC_GPU_SECURE = 0 until neither SECURE nor SWITCHING
  // MBOX_CLAIM = 0 until MBOX_ACK = 0: the normal world's re-initialization. Only
  // measured if a normal-world driver held the GPU at the claim, acknowledged it, and
  // release() was asked to wait; `resumed` says whether it answered within the timeout.
  uint32_t resume_us = 0;
  bool resumed = false;
  uint32_t total_us = 0;
  bool ok() const { return code == SwitchCode::Ok; }
};

// Sharing the GPU when both worlds want it (docs/hw.md, "sharing the GPU"). If the
// normal world had GPU work waiting while the secure world held the GPU (MBOX_DEMAND at
// release), the next claim waits until the normal world has had `normal_share` of the
// time since the last claim: hold x share / (1 - share), at most `max_defer_us`. An idle
// normal world costs nothing; share 0 gives the secure world strict priority.
struct FairShare {
  double normal_share = 0.5;
  uint32_t max_defer_us = 250000;
};

class GpuWorldSwitch {
 public:
  // `port` is the secure world's. `switch_timeout_us` bounds each hardware switch.
  explicit GpuWorldSwitch(hw::SocPort& port, uint32_t switch_timeout_us = 200000,
                          FairShare share = {});

  // Takes the GPU for the secure world: MBOX_CLAIM = 1, wait up to `timeout_us` for the
  // normal world's MBOX_ACK = 1 (on timeout go on, forced), then switch the GPU to the
  // secure world. On SwitchTimedOut the GPU's world is unknown: call release().
  ClaimResult claim(uint32_t timeout_us);
  // Gives the GPU back once the caller is done with it (results cleaned out of the
  // L2T: the switch drops caches without write-back): switch to the normal world, then
  // MBOX_CLAIM = 0, then wait up to `timeout_us` (0: do not wait) for MBOX_ACK = 0.
  ReleaseResult release(uint32_t timeout_us);

  bool claimed() const { return claimed_; }

 private:
  bool wait_world(bool secure);  // polls TZPC_STATUS, bounded by switch_timeout_us_
  bool poll_mbox(uint32_t off, uint32_t value, uint32_t timeout_us);
  uint32_t owed_to_normal_world_us() const;  // the deferral before the next claim

  hw::SocPort& port_;
  uint32_t switch_timeout_us_;
  FairShare share_;
  std::chrono::steady_clock::time_point claimed_at_{}, released_at_{};  // the last hold
  bool normal_demand_ = false;  // MBOX_DEMAND read at the last release
  bool claimed_ = false;
  bool driver_present_ = false;  // a normal-world driver held the GPU when we claimed it
  bool resume_pending_ = false;  // released to that driver, which has not yet said it resumed
};

}  // namespace rplayer::tee
