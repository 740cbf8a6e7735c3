// The escape oracle for replay tests and fuzzing: it stands between the replayer and its
// Platform to learn which physical pages the replayer holds, and watches the modeled
// GPU's bus. A GPU memory access (page-table walk, cache fill, write-back) to any other
// page, or a job started with the MMU off, is an escape: the one thing a verified
// recording must never achieve, whatever else goes wrong.
#pragma once

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <unordered_set>

#include "hw/bus_tap.h"
#include "hw/v3d_gpu.h"
#include "replay/platform.h"

namespace rplayer::test {

class EscapeOracle final : public replay::Platform, public hw::BusTap {
 public:
  // Installs itself as the GPU's bus tap until destroyed. With abort_on_escape (fuzzing)
  // the first escape aborts the process.
  EscapeOracle(replay::Platform& inner, hw::V3dGpu& gpu, bool abort_on_escape = false)
      : inner_(inner), gpu_(gpu), abort_(abort_on_escape) {
    gpu_.set_tap(this);
  }
  ~EscapeOracle() override { gpu_.set_tap(nullptr); }
  EscapeOracle(const EscapeOracle&) = delete;
  EscapeOracle& operator=(const EscapeOracle&) = delete;

  uint64_t escapes() const {
    std::lock_guard lk(mu_);
    return escapes_;
  }
  std::string first_escape() const {
    std::lock_guard lk(mu_);
    return first_;
  }

  // replay::Platform: forwarded, page ownership noted.
  bool has_block(replay::Block b) override { return inner_.has_block(b); }
  uint32_t read32(replay::Block b, uint32_t off) override { return inner_.read32(b, off); }
  void write32(replay::Block b, uint32_t off, uint32_t v) override { inner_.write32(b, off, v); }
  int num_irq_lines() override { return inner_.num_irq_lines(); }
  bool wait_irq(int line, uint32_t timeout_us) override {
    return inner_.wait_irq(line, timeout_us);
  }
  uint64_t now_us() override { return inner_.now_us(); }
  void sleep_us(uint32_t us) override { inner_.sleep_us(us); }
  uint8_t* page(uint64_t pa) override { return inner_.page(pa); }
  bool alloc_pages(uint32_t count, bool contiguous, uint64_t* pas) override {
    if (!inner_.alloc_pages(count, contiguous, pas)) return false;
    std::lock_guard lk(mu_);
    for (uint32_t i = 0; i < count; ++i) held_.insert(pas[i] >> 12);
    return true;
  }
  void free_pages(const uint64_t* pas, uint32_t count) override {
    {
      std::lock_guard lk(mu_);
      for (uint32_t i = 0; i < count; ++i) held_.erase(pas[i] >> 12);
    }
    inner_.free_pages(pas, count);
  }

  // hw::BusTap
  void on_bus_event(const hw::BusEvent& e) override {
    using Kind = hw::BusEvent::Kind;
    if (e.kind == Kind::JobStart) {
      if (e.value == 0) escape("a GPU job started with the MMU off", 0);
      return;
    }
    if (e.kind != Kind::DmaRead && e.kind != Kind::DmaWrite) return;
    std::unique_lock lk(mu_);
    for (uint64_t p = e.pa >> 12; p <= (e.pa + e.bytes - 1) >> 12; ++p)
      if (!held_.count(p)) {
        lk.unlock();
        escape(e.kind == Kind::DmaWrite ? "GPU write to a page the replayer does not hold"
                                        : "GPU read of a page the replayer does not hold",
               p << 12);
        return;
      }
  }

 private:
  void escape(const char* what, uint64_t pa) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "%s (PA 0x%" PRIx64 ")", what, pa);
    if (abort_) {
      std::fprintf(stderr, "ESCAPE: %s\n", buf);
      std::abort();
    }
    std::lock_guard lk(mu_);
    if (escapes_++ == 0) first_ = buf;
  }

  replay::Platform& inner_;
  hw::V3dGpu& gpu_;
  const bool abort_;
  mutable std::mutex mu_;
  std::unordered_set<uint64_t> held_;
  uint64_t escapes_ = 0;
  std::string first_;
};

}  // namespace rplayer::test
