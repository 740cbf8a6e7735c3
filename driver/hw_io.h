// The driver's only path to the hardware.
//
// Everything the driver does to the GPU goes through HwIo: register reads and writes,
// polls (one action, never a list of iterations), interrupt waits, and notifications of
// memory synchronization points, buffer mappings and lock releases. DirectHwIo executes
// on a SocPort; a recorder, a replay checker or a remote shim (accesses executed over a
// network, values returned later) implement the same interface. Implementations must be
// thread-safe: the submission and interrupt threads use it concurrently.
//
// The SoC's GPU ownership mailbox (RegBlock::Mbox, its interrupt line after the GPU's)
// goes through here too, from the driver's mailbox thread. It is no part of any job: a
// recording decorator must leave it out (record/recorder.cpp does).
#pragma once

#include <chrono>
#include <cstdint>
#include <string_view>

#include "hw/soc_port.h"

namespace rplayer::driver {

using hw::RegBlock;
using Micros = std::chrono::microseconds;

// What the driver does with a value it reads. Control values steer the driver (status
// bits it branches on) and must be reproduced on replay; informational values
// (counters, fault addresses for a log) need not.
enum class ReadUse : uint8_t { Control, Informational };

// Classification of buffer objects by the stack that creates them, for the recorder.
enum class BoUsage : uint8_t {
  Internal,   // driver-owned (scratch page)
  Code,       // shader code
  Uniforms,   // uniform streams
  Weights,    // model constants, uploaded once
  Input,      // written by the CPU before each run
  Output,     // read by the CPU after each run
  Scratch,    // GPU-only intermediate data
};
std::string_view bo_usage_name(BoUsage u);

// Where a Weights buffer's contents come from: its first `length` bytes are exactly the
// bytes at `offset` of the model file `model` (the rest of the buffer is zero). A recorder
// turns this into a binding that the device's own copy of the model can satisfy.
struct WeightSource {
  std::string_view model;  // the model file's path (or the name its bytes were given)
  uint64_t offset = 0;     // bytes into the file
  uint64_t length = 0;     // bytes
};

struct BoInfo {
  uint32_t handle = 0;
  uint32_t gpu_va = 0;
  uint32_t size = 0;           // bytes, page multiple
  BoUsage usage = BoUsage::Scratch;
  bool gpu_writable = true;
  std::string_view label;      // the creator's name for it (tensor, kernel)
  const uint64_t* pages = nullptr;  // physical address of each page
  uint32_t num_pages = 0;
  // Weights only: the model-file range the buffer holds; nullptr for Weights the stack
  // derived itself (e.g. codebook-quantized ncnn weights decoded on the CPU), which no
  // model file contains as is.
  const WeightSource* weight_source = nullptr;
};

enum class SyncPoint : uint8_t {
  BeforeJob,  // the CPU has written what the job reads; the job's hardware sequence
              // (cache invalidation, CSD programming) follows
  AfterJob,   // job done and caches cleaned; the CPU may read what the GPU wrote
};

class HwIo {
 public:
  virtual ~HwIo() = default;
  virtual bool has_block(RegBlock b) = 0;
  virtual int num_irq_lines() = 0;
  virtual hw::MemoryWindow memory() = 0;

  virtual uint32_t read(RegBlock b, uint32_t off, ReadUse use = ReadUse::Control) = 0;
  virtual void write(RegBlock b, uint32_t off, uint32_t value) = 0;
  // reg := (reg & keep) | set, the value read used for nothing else (a remote shim posts it
  // as one operation instead of waiting for the read).
  virtual void update(RegBlock b, uint32_t off, uint32_t keep, uint32_t set) {
    write(b, off, (read(b, off, ReadUse::Control) & keep) | set);
  }
  // Polls until (reg & mask) == value, sleeping 10 us doubling to 1 ms between reads
  // (Linux wait_for), for at most `timeout`. Returns whether it matched; *last gets
  // the last value read.
  virtual bool poll(RegBlock b, uint32_t off, uint32_t mask, uint32_t value, Micros timeout,
                    uint32_t* last = nullptr) = 0;
  virtual bool wait_irq(int line, Micros timeout) = 0;

  // True once the hardware is gone for good (a remote shim whose link died): the driver
  // fails jobs at once instead of waiting out its hang timer.
  virtual bool lost() { return false; }

  // Notifications (no effect on the hardware).
  virtual void on_sync_point(SyncPoint, uint64_t /*job seqno*/) {}
  virtual void on_bo_mapped(const BoInfo&) {}
  virtual void on_bo_unmapped(const BoInfo&) {}
  virtual void on_lock_released() {}
};

// Executes every access on a SocPort, as a kernel driver on real silicon would.
class DirectHwIo final : public HwIo {
 public:
  explicit DirectHwIo(hw::SocPort& port) : port_(port) {}
  bool has_block(RegBlock b) override { return port_.has_block(b); }
  int num_irq_lines() override { return port_.num_irq_lines(); }
  hw::MemoryWindow memory() override { return port_.memory(); }
  uint32_t read(RegBlock b, uint32_t off, ReadUse) override { return port_.read32(b, off); }
  void write(RegBlock b, uint32_t off, uint32_t v) override { port_.write32(b, off, v); }
  bool poll(RegBlock b, uint32_t off, uint32_t mask, uint32_t value, Micros timeout,
            uint32_t* last) override;
  bool wait_irq(int line, Micros timeout) override { return port_.wait_irq(line, timeout); }

 private:
  hw::SocPort& port_;
};

}  // namespace rplayer::driver
