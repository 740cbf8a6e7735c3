// A bus tap for the GPU shim and cloud-recording tests: GPU DMA outside one physical range
// (the pool lent to a session), or a job started with the MMU off, is an escape.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

#include "hw/bus_tap.h"
#include "hw/v3d_gpu.h"

namespace rplayer::test {

class PoolOracle final : public hw::BusTap {
 public:
  // abort_on_escape (fuzzing): the first escape aborts the process.
  PoolOracle(hw::V3dGpu& gpu, uint64_t lo, uint64_t bytes, bool abort_on_escape = false)
      : gpu_(gpu), lo_(lo), hi_(lo + bytes), abort_(abort_on_escape) {
    gpu_.set_tap(this);
  }
  ~PoolOracle() override { gpu_.set_tap(nullptr); }
  void on_bus_event(const hw::BusEvent& e) override {
    using K = hw::BusEvent::Kind;
    std::lock_guard lk(mu_);
    if (e.kind == K::JobStart && e.value == 0) ++escapes_, what_ = "job with the MMU off";
    if ((e.kind == K::DmaRead || e.kind == K::DmaWrite) && (e.pa < lo_ || e.pa + e.bytes > hi_))
      ++escapes_, what_ = "DMA at PA " + std::to_string(e.pa);
    if (e.kind == K::JobStart) ++jobs_;
    if (abort_ && escapes_) {
      std::fprintf(stderr, "ESCAPE: %s\n", what_.c_str());
      std::abort();
    }
  }
  uint64_t escapes() const {
    std::lock_guard lk(mu_);
    return escapes_;
  }
  uint64_t jobs() const {
    std::lock_guard lk(mu_);
    return jobs_;
  }
  std::string what() const {
    std::lock_guard lk(mu_);
    return what_;
  }

 private:
  hw::V3dGpu& gpu_;
  uint64_t lo_, hi_;
  bool abort_ = false;
  mutable std::mutex mu_;
  uint64_t escapes_ = 0, jobs_ = 0;
  std::string what_;
};

}  // namespace rplayer::test
