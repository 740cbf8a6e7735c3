// The JIT: kernel IR -> rpq machine code for one GPU SKU, at run time.
//
// compile() is a pure function of (kernel IR, specialization constants, target): the same
// inputs give the same words on every run and host, which record/replay relies on. Steps:
//   1. pick the workgroup size for the SKU and lay out shared memory;
//   2. substitute specialization constants and shared offsets, fold constants, delete
//      dead branches, unroll loops whose trip count is now known (passes.h);
//   3. propagate copies, share common subexpressions, coalesce moves into variables, fold
//      address arithmetic into the load/store offsets, delete dead code, and defer constant
//      pointer bumps so that an unrolled body bumps each pointer once;
//   4. select instructions (immediates into the I-bit operand), lower structured control
//      flow to exec-mask operations and uniform branches (lower.h);
//   5. linear-scan register allocation over the target's register budget, with live
//      ranges stretched over loops (regalloc.h); more live values than registers is an
//      error that reports the pressure (there is no spilling);
//   6. emit words and resolve branches.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "hw/sku.h"
#include "runtime/jit/ir.h"

namespace rplayer::runtime::jit {

// What the JIT needs to know about the GPU.
struct Target {
  std::string sku;  // "v3d-7.1"
  uint32_t num_qpus = 16;
  uint32_t qpus_per_slice = 4;
  uint32_t shared_bytes = 32 * 1024;  // per workgroup
  int register_budget = isa::kNumRegs;

  static Target from_sku(const hw::Sku& sku);
};

// Values for a kernel's specialization constants, by name (bits; f32 as its bit pattern).
// Constants not set take their declared defaults.
class Specialization {
 public:
  Specialization() = default;
  Specialization& set(const std::string& name, uint32_t bits);
  Specialization& set_u32(const std::string& name, uint32_t v) { return set(name, v); }
  Specialization& set_i32(const std::string& name, int32_t v) { return set(name, uint32_t(v)); }
  Specialization& set_f32(const std::string& name, float v);
  const std::map<std::string, uint32_t>& values() const { return values_; }
  uint64_t hash() const;
  std::string str() const;  // "C=64,K=3"

 private:
  std::map<std::string, uint32_t> values_;  // ordered: the hash must not depend on insertion
};

struct DispatchGrid {
  uint32_t x = 1, y = 1, z = 1;  // workgroups per dimension, 1..65535
};

struct CompiledKernel {
  std::string name;
  std::string sku;
  std::vector<uint64_t> code;
  // The uniform stream: one 32-bit word per entry, the value of params[entry]. Parameters
  // the kernel never reads are left out.
  std::vector<uint32_t> uniform_params;
  std::vector<ParamDecl> params;  // all declared parameters, in declaration order
  uint32_t wg_size = 0;           // invocations per workgroup
  uint32_t shared_bytes = 0;      // shared memory the kernel uses
  int registers_used = 0;
  int max_pressure = 0;  // most registers live at one point
  uint64_t ir_hash = 0;
  uint64_t spec_hash = 0;
  uint64_t hash = 0;  // of the code, the uniform layout and the workgroup size

  uint32_t batches_per_workgroup() const { return (wg_size + 15) / 16; }
  // Workgroups needed to cover `invocations` along x.
  uint32_t workgroups_for(uint64_t invocations) const;
  // CFG0..CFG6 of a dispatch as the driver takes them (CFG4 = batches - 1; the driver
  // converts it for SKUs that count batches). Throws Error for an empty or oversized grid.
  std::array<uint32_t, 7> csd_cfg(const DispatchGrid& grid, uint32_t code_va,
                                  uint32_t uniforms_va) const;
  std::string disassembly() const;
};

struct CompileOptions {
  int max_unrolled_insts = 16384;  // cap on the IR size a single loop may unroll to
  bool skip_empty_ifs = true;      // branch around masked bodies when no lane is active
};

// Throws runtime::Error with the kernel name for invalid kernels, unknown specialization
// constants, shared memory beyond the SKU, mask nesting beyond 16 and register pressure
// beyond the budget.
CompiledKernel compile(const Kernel& kernel, const Specialization& spec, const Target& target,
                       const CompileOptions& options = {});

}  // namespace rplayer::runtime::jit
