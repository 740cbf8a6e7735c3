// The V3D kernel driver, written after Linux drivers/gpu/drm/v3d: probe and power-up,
// the MMU and its flush sequence, buffer objects, a CSD queue with one job in flight
// run by a submission thread, interrupt threads, fences with timeouts, hang detection
// with GPU reset and recovery. All hardware access goes through HwIo.
//
// GPU hand-off to the secure world (docs/hw.md, ownership mailbox): when the secure
// world claims the GPU, the mailbox thread stops dispatching, lets the job in flight
// finish, masks interrupts and answers MBOX_ACK = 1; from then on until the release no
// thread touches a GPU register (submissions queue, waits block with their timeouts).
// On the release it re-initializes the GPU as after probe, answers MBOX_ACK = 0 and
// dispatches again. If the secure world did not wait (a forced switch), the job in
// flight fails as after a reset and the driver recovers at the release.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "driver/hw_io.h"
#include "driver/page_allocator.h"
#include "driver/uapi.h"
#include "driver/va_allocator.h"
#include "hw/sku.h"

namespace rplayer::driver {

struct DriverOptions {
  Micros poll_timeout{100000};                     // MMU flush, caches, SMS (Linux: 100 ms)
  std::chrono::milliseconds job_timeout{500};      // hang timer (Linux: 500 ms)
  int max_timeout_rearms = 20;                     // progress-based extensions per job
  std::chrono::milliseconds irq_poll{20};          // interrupt threads wake to check for stop
  Micros resume_timeout{100000};                   // GPU back in the normal world after a release
  // At probe: the secure world's current run to end. The replay policy lets one run hold
  // the GPU up to 60 s (replay::VerifyLimits::max_replay_ms); a sanitized SqueezeNet run
  // holds it ~10 s.
  Micros secure_wait{60000000};
};

struct DriverStats {
  uint64_t jobs_submitted = 0;
  uint64_t jobs_completed = 0;
  uint64_t jobs_failed = 0;
  uint64_t hangs = 0;
  uint64_t resets = 0;
  uint64_t mmu_faults = 0;
  uint64_t mmu_flushes = 0;
  uint64_t lost_interrupts = 0;  // jobs found complete after their timer expired
  uint64_t bos_live = 0;
  // Hand-offs to the secure world.
  uint64_t suspends = 0;
  uint64_t resumes = 0;
  uint64_t forced_takeovers = 0;  // the GPU was already gone when the driver had quiesced
  uint64_t suspended_us = 0;      // dispatch stopped for a claim until resumed (completed ones)
};

class V3dDriver {
 public:
  // Powers the GPU up, identifies it from its IDENT registers, sets up the MMU and
  // interrupts and starts the driver threads. nullptr with *error set on failure
  // (unknown SKU, power-up or MMU flush timeout, no memory).
  static std::unique_ptr<V3dDriver> probe(HwIo& io, const DriverOptions& opts = {},
                                          std::string* error = nullptr);
  ~V3dDriver();
  V3dDriver(const V3dDriver&) = delete;
  V3dDriver& operator=(const V3dDriver&) = delete;

  const hw::Sku& sku() const { return *sku_; }

  // ioctls
  int get_param(Param p, uint64_t* value);
  int create_bo(CreateBo& args);
  // CPU view of a BO: its scattered pages mapped contiguously.
  int mmap_bo(uint32_t handle, uint8_t** ptr, uint32_t* size);
  int free_bo(uint32_t handle);
  int submit_csd(SubmitCsd& args);
  int wait_seqno(uint64_t seqno, Micros timeout);
  int wait_bo(uint32_t handle, Micros timeout);

  // The error of the calling thread's last failed call, in words (like errno).
  std::string last_error() const;
  std::vector<JobFault> faults() const;
  DriverStats stats() const;
  uint64_t free_gpu_pages() const { return pages_->free_pages(); }  // diagnostics, tests
  const BoInfo* bo_info(uint32_t handle);  // valid until the BO is freed

 private:
  struct Bo {
    BoInfo info;
    std::string label;
    std::string weight_model;  // backs weight_source.model
    WeightSource weight_source;
    std::vector<uint64_t> pages;
    uint8_t* cpu = nullptr;
    uint64_t last_seqno = 0;
  };
  struct Job {
    SubmitCsd args;
    uint64_t seqno = 0;
  };

  V3dDriver(HwIo& io, const DriverOptions& opts);
  bool init(std::string* error);
  bool announce(std::string* error);  // mailbox: tell the secure world a driver holds the GPU
  bool power_up(std::string* error);
  bool reset_sms();
  bool init_hw_state();  // MMU, caches range, interrupt masks (after probe, reset, resume)
  bool flush_mmu();      // for BO changes: flush_mmu_hw, skipped while the GPU is away
  bool publish_page_table();  // before a job: flush if entries changed, release freed pages
  void release_freed_pages(std::vector<uint64_t>* pages);
  bool flush_mmu_hw();   // MMUC flush then TLB clear, each polled
  void reset_gpu();
  void invalidate_caches();
  bool clean_caches();
  void run_job(const Job& job);
  void scheduler_loop();
  void irq_loop(int line);
  void handle_core_irq();
  void handle_hub_irq();
  void handle_hub_irq_locked();
  // Ownership mailbox (mailbox thread).
  void mbox_loop();
  bool handle_mailbox();  // acts on MBOX_CLAIM; false if a resume must be retried
  void suspend();
  bool resume();
  bool gpu_is_back();     // the GPU answers in the normal world again
  bool gpu_away() {
    std::shared_lock g(gate_mu_);
    return gpu_away_;
  }
  int fail(int err, std::string msg);
  // The GPU's own lines; the port has one more, the mailbox's.
  int core_line() const { return sku_->num_irq_lines > 1 ? 1 : 0; }
  uint32_t csd_reg(int i) const { return sku_->csd_queued_cfg0 + 4 * i; }

  HwIo& io_;
  DriverOptions opts_;
  const hw::Sku* sku_ = nullptr;
  hw::MemoryWindow mem_;

  // Memory management (bo_mu_).
  mutable std::mutex bo_mu_;
  std::unique_ptr<PageAllocator> pages_;
  std::unique_ptr<VaAllocator> vas_;
  uint64_t pt_pa_ = 0, scratch_pa_ = 0;
  uint32_t* pt_ = nullptr;
  std::map<uint32_t, std::unique_ptr<Bo>> bos_;
  uint32_t next_handle_ = 1;
  std::mutex mmu_mu_;  // one flush sequence at a time

  // Job queue and fences (job_mu_).
  mutable std::mutex job_mu_;
  std::condition_variable job_cv_;   // new job, or stop
  std::condition_variable done_cv_;  // a seqno completed
  std::condition_variable csd_cv_;   // the IRQ thread saw CSDDONE / an error
  std::deque<Job> queue_;
  uint64_t next_seqno_ = 1;
  uint64_t completed_seqno_ = 0;
  struct JobError {
    int err;
    std::string message;
  };
  std::map<uint64_t, JobError> job_errors_;
  bool csd_done_ = false;
  bool csd_error_ = false;
  uint64_t running_seqno_ = 0;
  // Page-table entries changed since the last MMU flush (bo_mu_): the next job flushes
  // first; pages of buffers freed since then are released after that flush.
  bool pt_dirty_ = false;
  std::vector<uint64_t> freed_pages_;
  uint64_t started_seqno_ = 0;  // the job last handed to the hardware
  uint32_t csd_completed_ = 0;  // jobs the hardware completed since reset (scheduler thread)
  std::vector<JobFault> faults_;
  DriverStats stats_;
  std::mutex hub_irq_mu_;  // one hub interrupt handler at a time (IRQ or scheduler thread)
  std::mutex core_irq_mu_;  // a core handler's read-ack-act vs the lost-interrupt path

  // GPU ownership. suspending_ (job_mu_) stops dispatch from the start of a suspend to
  // the end of the resume. gpu_away_ (written with gate_mu_ exclusive, by the mailbox
  // thread only) means the GPU's registers are not ours: interrupt handlers and MMU
  // flushes hold gate_mu_ shared and skip the hardware while it is set. Lock order:
  // gate_mu_ -> hub_irq_mu_ / core_irq_mu_ / mmu_mu_ -> job_mu_.
  std::shared_mutex gate_mu_;
  bool gpu_away_ = false;
  bool suspending_ = false;
  bool demand_told_ = false;  // (job_mu_) MBOX_DEMAND = 1 written during this suspension
  std::chrono::steady_clock::time_point suspend_start_;
  std::atomic<bool> claim_seen_{false};  // a claim is being or was handled, not yet resumed

  std::atomic<bool> stop_{false};
  std::atomic<bool> mbox_stop_{false};
  std::thread scheduler_;
  std::vector<std::thread> irq_threads_;
  std::thread mbox_thread_;
  bool mbox_thread_started_ = false;  // the driver announced itself in MBOX_ACK
};

}  // namespace rplayer::driver
