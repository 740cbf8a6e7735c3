// The V3D kernel driver, written after Linux drivers/gpu/drm/v3d: probe and power-up,
// the MMU and its flush sequence, buffer objects, a CSD queue with one job in flight
// run by a submission thread, interrupt threads, fences with timeouts, hang detection
// with GPU reset and recovery. All hardware access goes through HwIo.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
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
  const BoInfo* bo_info(uint32_t handle);  // valid until the BO is freed

 private:
  struct Bo {
    BoInfo info;
    std::string label;
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
  bool power_up(std::string* error);
  bool reset_sms();
  bool init_hw_state();  // MMU, caches range, interrupt masks (after probe and reset)
  bool flush_mmu();      // MMUC flush then TLB clear, each polled
  void reset_gpu();
  void invalidate_caches();
  bool clean_caches();
  void run_job(const Job& job);
  void scheduler_loop();
  void irq_loop(int line);
  void handle_core_irq();
  void handle_hub_irq();
  void handle_hub_irq_locked();
  int fail(int err, std::string msg);
  int core_line() const { return io_.num_irq_lines() > 1 ? 1 : 0; }
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
  uint64_t started_seqno_ = 0;  // the job last handed to the hardware
  uint32_t csd_completed_ = 0;  // jobs the hardware completed since reset (scheduler thread)
  std::vector<JobFault> faults_;
  DriverStats stats_;
  std::mutex hub_irq_mu_;  // one hub interrupt handler at a time (IRQ or scheduler thread)

  std::atomic<bool> stop_{false};
  std::thread scheduler_;
  std::vector<std::thread> irq_threads_;
};

}  // namespace rplayer::driver
