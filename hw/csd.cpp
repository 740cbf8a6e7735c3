#include "hw/csd.h"

namespace rplayer::hw {

CsdEngine::CsdEngine(int threads, GpuMemory& mem, std::shared_mutex& exec_mu, Callbacks cb)
    : mem_(mem), exec_mu_(exec_mu), cb_(std::move(cb)) {
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this, i] { worker(i); });
}

CsdEngine::~CsdEngine() {
  {
    std::lock_guard lk(mu_);
    shutdown_ = true;
    if (job_) job_->stop = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void CsdEngine::start(std::shared_ptr<CsdJob> job) {
  job->started = std::chrono::steady_clock::now();
  if (!job->hung && job->runnable_wgs == 0 && job->completes) {
    cb_.done(job);  // nothing to run (CFG4 = 0 batches)
    return;
  }
  {
    std::lock_guard lk(mu_);
    job_ = std::move(job);
    ++job_seq_;
  }
  cv_.notify_all();
}

void CsdEngine::abort() {
  std::unique_lock lk(mu_);
  if (job_) job_->stop = true;
  job_.reset();
  idle_cv_.wait(lk, [&] { return busy_workers_ == 0; });
}

void CsdEngine::finish_wg(const std::shared_ptr<CsdJob>& job) {
  const uint32_t done = job->wgs_done.fetch_add(1) + 1;
  if (done == job->runnable_wgs) {
    job->busy_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                       std::chrono::steady_clock::now() - job->started)
                       .count();
    if (job->completes && !job->stop) cb_.done(job);
  }
}

void CsdEngine::worker(int index) {
  QpuContext ctx;
  uint64_t seen = 0;
  for (;;) {
    std::shared_ptr<CsdJob> job;
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return shutdown_ || (job_ && job_seq_ != seen); });
      if (shutdown_) return;
      seen = job_seq_;
      job = job_;
      ++busy_workers_;
    }
    if (!job->hung) {
      QpuCounters counters;
      for (;;) {
        if (job->stop.load(std::memory_order_relaxed)) break;
        const uint32_t wg = job->next_wg.fetch_add(1);
        if (wg >= job->runnable_wgs) break;
        const uint32_t nx = job->params.num_wg[0], ny = job->params.num_wg[1];
        const uint32_t x = wg % nx, y = (wg / nx) % ny, z = wg / (nx * ny);
        const uint32_t qpu = wg % job->num_qpus;
        QpuResult r;
        {
          std::shared_lock ex(exec_mu_);
          r = ctx.run_workgroup(job->params, x + job->wg_offset[0], y + job->wg_offset[1],
                                z + job->wg_offset[2], qpu, mem_, job->stop, counters);
        }
        job->instructions += counters.instructions;
        job->cycles += counters.cycles;
        job->mem_ops += counters.mem_ops;
        counters = QpuCounters{};
        if (r == QpuResult::Stopped) break;
        if (r != QpuResult::Done) {
          job->stop = true;
          cb_.fault(job, qpu, r);
          break;
        }
        finish_wg(job);
      }
    }
    {
      std::lock_guard lk(mu_);
      --busy_workers_;
    }
    idle_cv_.notify_all();
  }
}

}  // namespace rplayer::hw
