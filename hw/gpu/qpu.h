// QPU interpreter: runs one workgroup of a compute dispatch on 16-lane threads.
//
// The interpreter knows nothing about registers, MMU or caches: it sees GPU
// memory through GpuMemory, which hands out whole 4 KiB pages. It keeps its own
// micro-TLB of those pages (dropped whenever GpuMemory::generation() changes)
// and a decoded-instruction cache per code page, so that the inner loop decodes
// each instruction once and runs its 16 lanes as straight-line loops.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

namespace rplayer::hw {

enum class GpuAccess : uint8_t { Read, Write, Exec, Uniform };

// What the interpreter needs from the memory system (MMU + L2T cache).
class GpuMemory {
 public:
  virtual ~GpuMemory() = default;
  // Host pointer to the 4 KiB page holding VA page `va_page` (va >> 12) as the
  // GPU sees it for `access`, or nullptr if the access aborts (MMU fault).
  // The pointer stays valid until generation() changes.
  virtual uint8_t* page(uint32_t va_page, GpuAccess access) = 0;
  // Changes whenever translations or cache frames may have changed.
  virtual uint64_t generation() const = 0;
};

struct DispatchParams {
  uint32_t shader_va = 0;    // CFG5 address bits
  uint32_t uniforms_va = 0;  // CFG6
  uint32_t num_wg[3] = {1, 1, 1};
  uint32_t wg_size = 16;        // invocations per workgroup, 1..256
  uint32_t shared_bytes = 0;    // per-workgroup shared memory (power of two)
};

struct QpuCounters {
  uint64_t instructions = 0;  // 16-lane instructions issued
  uint64_t mem_ops = 0;       // load/store instructions
  uint64_t sfu_ops = 0;
  uint64_t cycles = 0;        // modeled QPU cycles (cost model in docs/hw.md)
};

enum class QpuResult : uint8_t {
  Done,          // all batches reached `end`
  Stopped,       // `stop` was raised (reset, world switch)
  IllegalInstr,  // undefined opcode or non-canonical encoding
  MaskStack,     // if/else/endif nesting overflow or underflow
  FetchFault,    // instruction or uniform fetch aborted by the MMU
};

const char* qpu_result_name(QpuResult r);

// One host thread's interpreter state. Not thread-safe; each device worker
// thread owns one.
class QpuContext {
 public:
  QpuContext();
  ~QpuContext();
  QpuContext(const QpuContext&) = delete;
  QpuContext& operator=(const QpuContext&) = delete;

  // Runs workgroup (x, y, z) of `params` to completion. Data accesses that
  // fault are aborted (loads read 0, stores are dropped) and execution goes on;
  // `stop` is polled on taken branches and barriers.
  QpuResult run_workgroup(const DispatchParams& params, uint32_t x, uint32_t y, uint32_t z,
                          uint32_t qpu_index, GpuMemory& mem, const std::atomic<bool>& stop,
                          QpuCounters& counters);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rplayer::hw
