// The CSD job queue (after Linux v3d_sched.c and v3d_fence.c): submission, fences, the
// submission thread that runs one job at a time, hang detection and GPU reset.
#include <algorithm>
#include <cerrno>

#include "driver/v3d_driver.h"
#include "hw/v3d_regs.h"

namespace rplayer::driver {

using namespace rplayer::v3d;

int V3dDriver::submit_csd(SubmitCsd& args) {
  {
    std::lock_guard lk(bo_mu_);
    for (uint32_t h : args.bo_handles)
      if (!bos_.count(h)) return fail(-ENOENT, "submit_csd: no BO " + std::to_string(h));
  }
  const uint32_t wg_size = (args.cfg[3] & 0xff) ? (args.cfg[3] & 0xff) : 256;
  const uint64_t batches = uint64_t((wg_size + 15) / 16) * (args.cfg[0] >> 16) *
                           (args.cfg[1] >> 16) * (args.cfg[2] >> 16);
  if (batches == 0 || uint64_t(args.cfg[4]) + 1 != batches)
    return fail(-EINVAL, "submit_csd: CFG4 (" + std::to_string(args.cfg[4]) +
                             ") is not the batch count minus one (" + std::to_string(batches) +
                             " batches)");
  bool tell_demand = false;
  {
    std::lock_guard lk(job_mu_);
    Job job{args, next_seqno_++};
    args.seqno = job.seqno;
    {
      std::lock_guard bk(bo_mu_);
      for (uint32_t h : args.bo_handles) bos_[h]->last_seqno = job.seqno;
    }
    queue_.push_back(std::move(job));
    ++stats_.jobs_submitted;
    job_cv_.notify_all();
    // Work waits for the secure world: say so once per hand-off, so that it can leave us
    // our share of the GPU before it claims it again (MBOX_DEMAND, docs/hw.md).
    tell_demand = suspending_ && !demand_told_;  // suspensions come from the mailbox
    if (tell_demand) demand_told_ = true;
  }
  if (tell_demand) io_.write(RegBlock::Mbox, MBOX_DEMAND, 1);
  return 0;
}

int V3dDriver::wait_seqno(uint64_t seqno, Micros timeout) {
  std::unique_lock lk(job_mu_);
  if (!done_cv_.wait_for(lk, timeout, [&] { return completed_seqno_ >= seqno; })) {
    return fail(-ETIMEDOUT, "wait: job " + std::to_string(seqno) + " not done in time");
  }
  auto it = job_errors_.find(seqno);
  if (it != job_errors_.end()) {
    return fail(it->second.err, "job " + std::to_string(seqno) + " failed: " + it->second.message);
  }
  return 0;
}

// ---- job execution (submission thread) --------------------------------------------

void V3dDriver::invalidate_caches() {
  // v3d_invalidate_caches(): the hardware stalls L2T accesses until the flush is done,
  // so there is no wait; then the slice caches (instructions, uniforms, texture).
  io_.write(RegBlock::Core0, CTL_L2TCACTL,
            L2TCACTL_L2TFLS | (L2TCACTL_FLM_FLUSH << L2TCACTL_FLM_SHIFT));
  io_.write(RegBlock::Core0, CTL_SLCACTL, 0x0f0f0f0f);
}

bool V3dDriver::clean_caches() {
  // v3d_clean_caches(): drain the TMU write combiner, then write the L2T back.
  io_.write(RegBlock::Core0, CTL_L2TCACTL, L2TCACTL_TMUWCF);
  if (!io_.poll(RegBlock::Core0, CTL_L2TCACTL, L2TCACTL_TMUWCF, 0, opts_.poll_timeout))
    return false;
  io_.write(RegBlock::Core0, CTL_L2TCACTL,
            L2TCACTL_L2TFLS | (L2TCACTL_FLM_CLEAN << L2TCACTL_FLM_SHIFT));
  return io_.poll(RegBlock::Core0, CTL_L2TCACTL, L2TCACTL_L2TFLS, 0, opts_.poll_timeout);
}

void V3dDriver::run_job(const Job& job) {
  // Buffers created or freed since the last job: publish the page table (v3d_mmu_flush_all).
  const bool lost = io_.lost();
  if (lost || !publish_page_table()) {
    if (!lost) reset_gpu();
    std::lock_guard lk(job_mu_);
    completed_seqno_ = job.seqno;
    running_seqno_ = 0;
    job_errors_[job.seqno] =
        lost ? JobError{-ENODEV, "the GPU is gone (its link failed)"}
             : JobError{-ETIMEDOUT, "MMU flush before the job timed out; GPU reset"};
    ++stats_.jobs_failed;
    done_cv_.notify_all();
    return;
  }
  // The CPU is done writing what this job reads: a recorder snapshots memory here, and
  // everything from the cache invalidation on is the job's own hardware sequence.
  io_.on_sync_point(SyncPoint::BeforeJob, job.seqno);
  invalidate_caches();
  {
    std::lock_guard lk(job_mu_);
    csd_done_ = false;
    csd_error_ = false;
    started_seqno_ = job.seqno;
  }
  uint32_t cfg[8] = {};
  std::copy(job.args.cfg, job.args.cfg + 7, cfg);
  if (!sku_->csd_cfg4_minus_one) cfg[4] += 1;  // from 7.1.6 CFG4 holds the batch count
  for (int i = 1; i < sku_->csd_num_cfg; ++i) io_.write(RegBlock::Core0, csd_reg(i), cfg[i]);
  io_.write(RegBlock::Core0, csd_reg(0), cfg[0]);  // starts the job

  // Wait for CSDDONE from the IRQ thread; on a timeout, extend while CURRENT_CFG4
  // (remaining batches) moves, otherwise declare a hang (v3d_csd_job_timedout).
  int err = 0;
  std::string why;
  uint32_t last_remaining = ~0u;
  for (int rearm = 0;; ++rearm) {
    {
      std::unique_lock lk(job_mu_);
      if (csd_cv_.wait_for(lk, opts_.job_timeout, [&] { return csd_done_ || csd_error_; })) {
        if (csd_error_) err = -EIO;
        break;
      }
    }
    if (io_.lost()) {
      err = -ENODEV;
      break;
    }
    // A completed count one past ours with nothing current: the job finished and its
    // interrupt was lost. Finish it instead of resetting a healthy GPU.
    // Progress checks depend on timing and on the GPU's history, not on the job: they are
    // informational for a recorder (a replayer keeps its own bounded waits).
    const uint32_t status = io_.read(RegBlock::Core0, CSD_STATUS, ReadUse::Informational);
    if (!(status & CSD_STATUS_HAVE_CURRENT) &&
        get_field(status, 11, 4) == ((csd_completed_ + 1) & 0xff)) {
      // The interrupt may be late rather than lost: acknowledge its CSDDONE now, so that
      // it cannot finish the next job. core_irq_mu_ lets a handler that already read the
      // status act first; the next submission then clears its csd_done_.
      std::lock_guard ck(core_irq_mu_);
      io_.write(RegBlock::Core0, INT_CLR, sku_->core_int_csd_done);
      std::lock_guard lk(job_mu_);
      ++stats_.lost_interrupts;
      break;
    }
    const uint32_t remaining =
        io_.read(RegBlock::Core0, sku_->csd_current_cfg0 + 16, ReadUse::Informational);
    if (remaining != last_remaining && rearm < opts_.max_timeout_rearms) {
      last_remaining = remaining;
      continue;
    }
    err = -ETIMEDOUT;
    break;
  }
  if (err == -ENODEV) {
    why = "the GPU is gone (its link failed)";
  } else if (err) {
    {
      std::lock_guard lk(job_mu_);
      JobFault f;
      f.seqno = job.seqno;
      f.hang = err == -ETIMEDOUT;
      f.qpu_error = err == -EIO;
      faults_.push_back(f);
      if (f.hang) ++stats_.hangs;
      why = f.hang ? "GPU hang: no progress in " + std::to_string(opts_.job_timeout.count()) +
                         " ms; GPU reset"
                   : "QPU error (illegal instruction or fetch fault); GPU reset";
      // A forced switch to the secure world resets the GPU under the job: say so.
      if (claim_seen_) why += " (the secure world claimed the GPU meanwhile)";
    }
    reset_gpu();
  } else if (!clean_caches()) {
    err = -ETIMEDOUT;
    why = "cache clean timed out; GPU reset";
    reset_gpu();
  } else {
    ++csd_completed_;
  }
  // MMU faults of this job may still sit in the hub interrupt (its own thread on 7.1):
  // take them now so they are reported before the job counts as done.
  {
    std::lock_guard hk(hub_irq_mu_);
    if (io_.wait_irq(0, Micros(0))) handle_hub_irq_locked();
  }
  io_.on_sync_point(SyncPoint::AfterJob, job.seqno);
  std::lock_guard lk(job_mu_);
  completed_seqno_ = job.seqno;
  running_seqno_ = 0;
  if (err) {
    job_errors_[job.seqno] = {err, why};
    ++stats_.jobs_failed;
  } else {
    ++stats_.jobs_completed;
  }
  done_cv_.notify_all();
}

void V3dDriver::scheduler_loop() {
  for (;;) {
    Job job;
    {
      std::unique_lock lk(job_mu_);
      job_cv_.wait(lk, [&] { return stop_ || (!queue_.empty() && !suspending_); });
      if (queue_.empty() || suspending_) return;  // stop with nothing left to run
      job = std::move(queue_.front());
      queue_.pop_front();
      running_seqno_ = job.seqno;
    }
    run_job(job);
  }
}

void V3dDriver::reset_gpu() {
  // v3d_reset(): reset the core, then bring the MMU and interrupts back.
  if (io_.has_block(RegBlock::Sms)) {
    reset_sms();
  } else if (io_.has_block(RegBlock::Bridge)) {
    io_.write(RegBlock::Bridge, sku_->bridge_sw_init_reg, BRIDGE_SW_INIT_V3D);
    io_.write(RegBlock::Bridge, sku_->bridge_sw_init_reg, 0);
  }
  init_hw_state();
  csd_completed_ = 0;  // the hardware's completed-job counter restarts
  std::lock_guard lk(job_mu_);
  ++stats_.resets;
}

}  // namespace rplayer::driver
