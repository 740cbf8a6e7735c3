// The device half of cloud recording (GR-T's GPUShim): applies what the cloud's driver
// sends (link/shim_wire.h) to the real GPU and answers, for the length of one recording
// session, confined to a pool of secure carve-out pages.
//
// Every frame is hostile. The guarantee: whatever the cloud sends, the GPU can touch no
// physical page outside the pool, and the TrustZone controller, the ownership mailbox and
// the power and world controls stay the secure world's. It rests on
//  - a register allowlist (writes only to what a V3D driver programs; reads only of GPU
//    blocks), with value rules: the MMU stays enabled, the page-table base is fixed for
//    the session and lies in the pool with room for the whole table, the illegal-address
//    page lies in the pool outside the table;
//  - every page the cloud writes lies in the pool; every entry of the page table (checked
//    when its base is set, and on every page written into it) maps a pool page outside the
//    table, with no big or super pages;
//  - before each job starts, the MMU state is read back from the GPU (a reset in between
//    turns it off, and an MMU off means physical addressing).
// A refusal ends the session: GPU reset, pool scrubbed. Every poll and wait is bounded by
// the device's own limits, whatever the cloud asks for.
//
// Secure-world code: no exceptions, no unbounded waits. The caller owns the GPU (claimed
// from the normal world) for as long as a session is open.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "hw/sku.h"
#include "hw/soc_port.h"
#include "link/shim_wire.h"

namespace rplayer::tee {

struct GpuShimConfig {
  hw::SocPort* port = nullptr;           // the secure world's
  uint64_t pool_pa = 0, pool_bytes = 0;  // carve-out pages lent to the session
  uint32_t max_poll_us = 500'000;        // per poll, whatever the cloud asks
  uint32_t max_wait_us = 5'000'000;      // per interrupt wait
  uint32_t slice_us = 50'000;            // a call returns Pending after waiting this long
  link::ShimLimits limits;
};

struct GpuShimStats {
  uint64_t frames = 0, ops = 0, writes = 0, reads = 0, polls = 0, waits = 0, pages = 0;
  uint64_t wait_us = 0;  // device time spent in interrupt waits
  uint64_t busy_us = 0;  // device time spent applying frames (waits included)
};

class GpuShim {
 public:
  explicit GpuShim(GpuShimConfig cfg);
  ~GpuShim();

  // Starts a session on a GPU the caller owns: powers it up and resets it, scrubs the
  // pool. False (with why) if the platform lacks something or the GPU does not answer.
  bool open(link::ShimHello* hello, std::string* why);

  enum class Step : uint8_t {
    Done,     // *reply holds the results
    Pending,  // an interrupt wait goes on: call resume() (no new frame in between)
    Refused,  // *reply holds the refusal; the session is over (GPU reset, pool scrubbed)
  };
  Step exchange(std::span<const uint8_t> frame, std::vector<uint8_t>* reply);
  Step resume(std::vector<uint8_t>* reply);
  // Ends the session (refusal, cloud gone, done): GPU reset, pool scrubbed. Idempotent.
  void close();

  bool active() const { return active_; }
  const GpuShimStats& stats() const { return stats_; }
  // Tests: every pool byte zero.
  bool pool_is_clean() const;

 private:
  Step run(std::vector<uint8_t>* reply);
  link::ShimRefusal apply(const link::ShimOp& op, std::string* why, bool* pending);
  link::ShimRefusal check_write(uint8_t block, uint32_t off, uint32_t value, std::string* why);
  link::ShimRefusal check_page(uint64_t pa, const uint8_t* bytes, std::string* why);
  link::ShimRefusal check_job_start(std::string* why);
  bool pte_ok(uint32_t pte) const;
  bool in_pool(uint64_t pa, uint64_t len) const;
  bool in_table(uint64_t pa) const;
  uint32_t block_bytes(uint8_t block) const;
  bool reset_gpu();
  Step refuse(link::ShimRefusal r, std::string why, std::vector<uint8_t>* reply);

  GpuShimConfig cfg_;
  hw::SocPort& port_;
  hw::MemoryWindow mem_;
  const hw::Sku* sku_ = nullptr;
  bool active_ = false;
  uint64_t table_pa_ = 0;  // the page table's PA once set (0: not yet)
  GpuShimStats stats_;

  // The frame in progress (a wait may span several calls).
  uint32_t seq_ = 0;
  std::vector<link::ShimOp> ops_;
  size_t next_op_ = 0;
  link::ShimReply reply_;
  std::chrono::steady_clock::time_point wait_deadline_{};
  bool waiting_ = false;
  uint64_t waited_us_ = 0;
};

}  // namespace rplayer::tee
