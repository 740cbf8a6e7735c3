// The CSD (compute shader dispatch) engine: runs the workgroups of the current job on
// a pool of device threads, asynchronously to the CPU. Register-level queueing,
// completion interrupts and status live in V3dGpu; this file only executes.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <vector>

#include "hw/gpu/qpu.h"

namespace rplayer::hw {

struct CsdJob {
  uint32_t cfg[8] = {};
  DispatchParams params;
  uint32_t wg_offset[3] = {};
  uint32_t total_wgs = 0;
  uint32_t batches_per_wg = 1;
  uint32_t batch_budget = 0;  // batches the job was programmed with (CFG4)
  uint32_t runnable_wgs = 0;  // workgroups that run before the budget is spent
  bool completes = true;      // false: CFG4 asks for more batches than exist
  bool hung = false;          // fault injection: never runs
  bool started_flag = false;  // handed to the engine (V3dGpu's reg lock)
  uint32_t num_qpus = 1;
  uint64_t id = 0;

  std::atomic<uint32_t> next_wg{0};
  std::atomic<uint32_t> wgs_done{0};
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> instructions{0}, cycles{0}, mem_ops{0};
  std::chrono::steady_clock::time_point started;
  std::atomic<int64_t> busy_ns{0};

  uint32_t batches_remaining() const {
    const uint64_t done = uint64_t(wgs_done.load()) * batches_per_wg;
    return done >= batch_budget ? 0 : uint32_t(batch_budget - done);
  }
};

class CsdEngine {
 public:
  struct Callbacks {
    std::function<void(const std::shared_ptr<CsdJob>&)> done;  // all runnable wgs finished
    std::function<void(const std::shared_ptr<CsdJob>&, uint32_t qpu, QpuResult)> fault;
  };
  CsdEngine(int threads, GpuMemory& mem, std::shared_mutex& exec_mu, Callbacks cb);
  ~CsdEngine();

  // Starts executing `job` (the hardware's current dispatch).
  void start(std::shared_ptr<CsdJob> job);
  // Stops the current job and waits until no worker is inside a workgroup.
  void abort();

 private:
  void worker(int index);
  void finish_wg(const std::shared_ptr<CsdJob>& job);

  GpuMemory& mem_;
  std::shared_mutex& exec_mu_;
  Callbacks cb_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable idle_cv_;
  std::shared_ptr<CsdJob> job_;
  uint64_t job_seq_ = 0;
  int busy_workers_ = 0;
  bool shutdown_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace rplayer::hw
