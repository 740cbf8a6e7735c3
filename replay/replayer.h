// The replayer: verifies a decoded recording, builds the GPU's page table in pages it
// allocated, loads the recorded memory images, writes the caller's inputs into their
// bindings, executes the action stream with bounded waits and checked reads, reads the
// outputs, then scrubs every page it used and resets the GPU. Any failure: reset, scrub,
// zeroed outputs and a structured error; never partial output.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "replay/platform.h"
#include "replay/recording.h"
#include "replay/verifier.h"

namespace rplayer::replay {

struct TensorIn {
  const char* name;   // a binding name (or, for recordings without weights, a region label)
  const void* data;
  uint32_t bytes;
};
struct TensorOut {
  const char* name;
  void* data;
  uint32_t bytes;
};

enum class ReplayCode : uint8_t {
  Ok,
  Verify,          // see ReplayError::verify
  NoMemory,
  PowerTimeout,    // the GPU did not power up or leave reset in time
  MmuTimeout,      // an MMU flush did not finish in time
  ReadMismatch,    // a register read the recording checks came back different
  PollTimeout,
  IrqTimeout,      // a lost interrupt or a hung job
  MissingInput,    // an input binding with no (or a wrongly sized) tensor from the caller
  MissingOutput,
  GpuFault,        // the GPU reported an MMU or QPU fault during the replay
};

struct ReplayError {
  ReplayCode code = ReplayCode::Ok;
  int32_t action = -1;  // index of the failing action
  uint32_t expected = 0, got = 0;
  VerifyError verify;
  bool ok() const { return code == ReplayCode::Ok; }
  const char* message() const;
  const char* format(char* buf, size_t size) const;
};

struct ReplayStats {
  uint32_t jobs = 0;
  uint32_t actions = 0;
  uint32_t checked_reads = 0;
  uint32_t polls = 0;
  uint32_t irq_waits = 0;
  uint32_t pages = 0;          // pages allocated (regions + page table + scratch)
  uint32_t pages_loaded = 0;
  uint64_t verify_us = 0, setup_us = 0, execute_us = 0, teardown_us = 0;
};

class Replayer {
 public:
  explicit Replayer(Platform& p, const VerifyLimits& limits = {}) : p_(p), limits_(limits) {}
  // Replays `rec`; `stats` may be null.
  ReplayError run(const Recording& rec, std::span<const TensorIn> inputs,
                  std::span<const TensorOut> outputs, ReplayStats* stats);

 private:
  struct RegionPages;
  bool power_up();
  void reset_gpu();
  bool flush_mmu();
  bool poll(Block b, uint32_t off, uint32_t mask, uint32_t value, uint32_t timeout_us);
  SkuIdentity identify();
  void copy_in(RegionPages* rp, uint32_t region, uint32_t offset, const uint8_t* src,
               uint32_t bytes);
  void copy_out(RegionPages* rp, uint32_t region, uint32_t offset, uint8_t* dst, uint32_t bytes);

  Platform& p_;
  VerifyLimits limits_;
  const hw::Sku* sku_ = nullptr;  // the verified recording's GPU, during run()
};

}  // namespace rplayer::replay
