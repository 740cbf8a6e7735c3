// Command buffers: record dispatches once, submit them any number of times.
//
//   CommandBuffer cb(dev, "relu");
//   cb.dispatch(relu_kernel, Grid::invocations(n), {Arg::buffer(in), Arg::buffer(out),
//               Arg::u32(n)});
//   cb.submit();
//   cb.wait();  // throws Error on an MMU fault, hang or QPU error
//
// Record/replay needs the job stream to be a function of shapes only. So:
//  - the first submit() builds every dispatch's uniform stream into one uniform buffer
//    (labelled "<label>.uniforms") and fixes every dispatch's CFG registers; later
//    submits reuse both unchanged, and the buffer never moves;
//  - uniforms hold buffer addresses and the scalar arguments, which must be shapes or
//    constants, never data;
//  - each dispatch is one submit_csd, in recording order, naming every buffer it touches.
// The driver runs one job at a time in submission order, so barrier() needs no GPU work;
// it is kept so that callers state their dependencies.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/device.h"
#include "runtime/jit/compiler.h"
#include "runtime/jit/ir.h"
#include "runtime/jit/shader_cache.h"

namespace rplayer::runtime {

// A kernel argument: a buffer (its GPU address plus a byte offset) or a 32-bit scalar.
struct Arg {
  static Arg buffer(const Buffer& b, uint32_t offset = 0);
  static Arg u32(uint32_t v) { return {false, 0, v, jit::Type::U32}; }
  static Arg i32(int32_t v) { return {false, 0, uint32_t(v), jit::Type::I32}; }
  static Arg f32(float v);

  bool is_buffer = false;
  uint32_t handle = 0;  // buffer only
  uint32_t value = 0;   // GPU address or scalar bits
  jit::Type type = jit::Type::U32;
};

// The dispatch size. x counts workgroups, or invocations (rounded up to whole workgroups of
// the size the JIT picked); y and z always count workgroups (a workgroup is 1-D).
struct Grid {
  static Grid workgroups(uint32_t x, uint32_t y = 1, uint32_t z = 1) { return {x, y, z, false}; }
  static Grid invocations(uint64_t x, uint32_t y_workgroups = 1, uint32_t z_workgroups = 1) {
    return {x, y_workgroups, z_workgroups, true};
  }
  uint64_t x = 1;
  uint32_t y = 1, z = 1;
  bool x_in_invocations = false;
};

class CommandBuffer {
 public:
  struct Dispatch {
    const CachedKernel* kernel = nullptr;
    jit::DispatchGrid grid;
    std::vector<uint32_t> uniforms;    // the uniform stream
    std::vector<uint32_t> bos;         // buffers the dispatch touches (without code/uniforms)
    uint32_t uniforms_offset = 0;      // in the uniform buffer
    std::array<uint32_t, 7> cfg = {};  // fixed at the first submit
  };

  CommandBuffer(Device& dev, std::string label);
  ~CommandBuffer();
  CommandBuffer(const CommandBuffer&) = delete;
  CommandBuffer& operator=(const CommandBuffer&) = delete;

  // Compiles (through the device's shader cache) and records one dispatch. Arguments go
  // in the kernel's parameter order. Throws Error on a mismatch or after the first submit.
  void dispatch(const jit::Kernel& kernel, const Grid& grid, const std::vector<Arg>& args,
                const jit::Specialization& spec = {});
  void dispatch(const CachedKernel& kernel, const Grid& grid, const std::vector<Arg>& args);
  void barrier();

  // Builds the uniform buffer and fixes every dispatch's CFG words now, so that every
  // buffer exists before the first submit (which otherwise does this on first use).
  void seal();
  bool sealed() const { return sealed_; }
  // Queues every dispatch with the driver; does not wait.
  void submit();
  // Waits for everything submitted since the last wait. Throws Error naming the failed
  // dispatch and kernel with the driver's account of it (fault address, hang, QPU error).
  void wait(std::chrono::milliseconds timeout = std::chrono::seconds(120));
  // Throws like wait() if the driver has recorded a fault against a job of the last
  // submit. The driver records MMU faults from its interrupt thread, which can run after
  // the job's fence has signalled; call this to catch such late reports.
  void check_faults() const;

  const std::string& label() const { return label_; }
  const std::vector<Dispatch>& dispatches() const { return dispatches_; }
  size_t num_barriers() const { return barriers_; }
  const Buffer& uniform_buffer() const { return uniforms_; }
  uint64_t last_seqno() const { return last_seqno_; }

 private:
  void build_uniforms();

  Device& dev_;
  std::string label_;
  std::vector<Dispatch> dispatches_;
  size_t barriers_ = 0;
  Buffer uniforms_;
  bool sealed_ = false;
  std::string describe(size_t dispatch, uint64_t seqno) const;

  std::vector<std::pair<uint64_t, size_t>> pending_;  // (seqno, dispatch index)
  std::vector<std::pair<uint64_t, size_t>> last_submit_;
  uint64_t last_seqno_ = 0;
};

}  // namespace rplayer::runtime
