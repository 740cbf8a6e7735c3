// The cloud half of cloud recording (GR-T's DriverShim): an HwIo under the cloud's driver
// that executes every register access, poll and interrupt wait on the device's GPU through
// its GPUShim (link/shim_wire.h), and keeps the device's pool in step with what the cloud's
// CPU writes into GPU memory.
//
// The cloud has no GPU: its "physical memory" is a shadow of the device's pool (a memfd at
// the pool's physical addresses), which the driver maps and the stack writes as usual.
//
// What crosses, by mode (DriverShimOptions):
//  - naive: every register access is its own round trip, a poll is a read per iteration,
//    and at each job every changed page of every buffer is sent;
//  - deferral: writes are posted and travel in front of the next operation whose result
//    the driver needs (a read it branches on, a poll, an interrupt wait). One ordered queue
//    for all the driver's threads keeps their order, so no commit is needed at lock release;
//  - poll offload: a poll is one operation, its loop runs on the device;
//  - meta-only sync: only what the GPU reads as metadata is sent (shader code, uniforms,
//    internal buffers, buffers the stack filled from no model file, the page table). Weights
//    that are model-file ranges and inputs never leave the device, nothing comes back.
// Page-table pages go out before the MMU-cache flush that publishes them (a running job
// may hold stale lines otherwise); buffers at each job's BeforeJob sync point.
//
// Interrupt waits are semantic: while a job runs, the driver's wait on the GPU's line goes
// to the device with the job's bound; idle waits (the interrupt threads' periodic wake-up)
// stay local. IDENT registers are answered from the device's hello.
//
// Failure: a refused frame or a dead link makes every later access fail fast (reads 0,
// polls and waits false); failed() says so and why, and the recording must be discarded.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "driver/hw_io.h"
#include "hw/sku.h"
#include "link/shim_wire.h"

namespace rplayer::cloud {

// One request frame out, its reply frame back (the secure channel and the network are
// the transport's business). False: the link is gone.
class ShimTransport {
 public:
  virtual ~ShimTransport() = default;
  virtual bool exchange(std::span<const uint8_t> request, std::vector<uint8_t>* reply,
                        std::string* why) = 0;
};

enum class SyncMode : uint8_t { AllPages, MetaOnly };

struct DriverShimOptions {
  bool defer = true;
  bool poll_offload = true;
  SyncMode sync = SyncMode::MetaOnly;
  bool compress_pages = true;
  // Skip pages the device already has: never sent and all zero (its pool starts scrubbed).
  // Naive forwarding sends every page of a buffer once, whatever it holds.
  bool skip_known_pages = true;
  uint32_t job_wait_us = 4'000'000;  // the device-side bound of a wait while a job runs
  uint32_t max_poll_us = 500'000;    // what the device accepts (GpuShimConfig)

  static DriverShimOptions naive() { return {false, false, SyncMode::AllPages, false, false}; }
  static DriverShimOptions deferral() { return {true, false, SyncMode::AllPages, true}; }
  static DriverShimOptions full() { return {}; }
};

struct LinkCounts {
  uint64_t round_trips = 0;  // blocking exchanges
  // What each round trip waited for (the critical path): a register read the driver
  // branches on, a poll's outcome, an interrupt (or the level check after a job), or
  // nothing but posting (naive mode: writes and page syncs).
  uint64_t rt_reads = 0, rt_polls = 0, rt_waits = 0, rt_posts = 0;
  // Of rt_reads, the driver's informational reads (the hang timer's progress checks):
  // their number follows how long jobs took, not the workload.
  uint64_t rt_timing_reads = 0;
  uint64_t ops = 0;
  uint64_t bytes_up = 0, bytes_down = 0;  // frame bytes (before the channel's overhead)
  uint64_t pages = 0;                     // pages sent
  uint64_t page_bytes = 0;                // their bytes on the wire
  uint64_t device_wait_us = 0;            // interrupt waits, as the device measured them
  uint64_t local_waits = 0;               // idle interrupt waits answered without the device
  uint64_t prefetch_hits = 0;             // status reads answered from the interrupt's reply
};

class DriverShim final : public driver::HwIo {
 public:
  // `hello`: what the device's GPUShim said at OPEN. Throws std::runtime_error if the
  // shadow memory cannot be created or the GPU is unknown.
  DriverShim(ShimTransport& transport, const link::ShimHello& hello, DriverShimOptions opts);
  ~DriverShim() override;

  bool has_block(hw::RegBlock b) override;
  int num_irq_lines() override { return hello_.irq_lines; }
  hw::MemoryWindow memory() override { return mem_; }
  uint32_t read(hw::RegBlock b, uint32_t off, driver::ReadUse use) override;
  void write(hw::RegBlock b, uint32_t off, uint32_t value) override;
  void update(hw::RegBlock b, uint32_t off, uint32_t keep, uint32_t set) override;
  bool poll(hw::RegBlock b, uint32_t off, uint32_t mask, uint32_t value, driver::Micros timeout,
            uint32_t* last) override;
  bool wait_irq(int line, driver::Micros timeout) override;
  bool lost() override { return failed(); }
  void on_sync_point(driver::SyncPoint p, uint64_t seqno) override;
  void on_bo_mapped(const driver::BoInfo& info) override;
  void on_bo_unmapped(const driver::BoInfo& info) override;

  bool failed() const;
  std::string error() const;
  LinkCounts counts() const;
  const hw::Sku& sku() const { return *sku_; }

 private:
  struct Bo {
    driver::BoUsage usage;
    bool from_model_file;
    std::vector<uint64_t> pages;
  };
  // Appends to the queue; with a result wanted (or without deferral) sends the queue and
  // waits. Returns false if the link failed. Caller holds link_mu_.
  bool submit(link::ShimOp op, link::ShimResult* result);
  bool flush_locked(link::ShimResult* result, link::ShimResult* prefetched = nullptr);
  void queue_page_if_changed(uint64_t pa);
  void sync_table_locked();
  bool synced_usage(const Bo& bo) const;
  void fail_locked(std::string why);

  ShimTransport& transport_;
  link::ShimHello hello_;
  DriverShimOptions opts_;
  const hw::Sku* sku_ = nullptr;
  hw::MemoryWindow mem_;

  mutable std::mutex link_mu_;  // the ordered queue and the link
  std::vector<link::ShimOp> queue_;
  size_t queued_bytes_ = 0;  // page payload in queue_
  uint32_t seq_ = 0;
  std::unordered_map<uint64_t, uint64_t> sent_hash_;  // PA -> hash of what the device has
  uint64_t table_pa_ = 0;
  std::unordered_map<uint32_t, Bo> bos_;
  LinkCounts counts_;
  bool failed_ = false;
  std::string error_;
  bool status_valid_ = false;  // status_: INT_STS read right behind an interrupt
  uint32_t status_ = 0;
  hw::RegBlock status_block_ = hw::RegBlock::Core0;
  std::vector<uint8_t> frame_, reply_frame_;

  std::mutex job_mu_;  // interrupt expectations
  std::condition_variable job_cv_;
  bool job_running_ = false;
  std::atomic<uint64_t> local_waits_{0};
};

}  // namespace rplayer::cloud
