// Machine IR: rpq instructions over virtual registers, between instruction selection
// (lower.h) and register allocation (regalloc.h). Control flow is already lowered to
// if/else/endif and branches to labels; loop markers stay so that the allocator can
// stretch live ranges over loop back edges.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hw/isa/isa.h"
#include "runtime/jit/ir.h"

namespace rplayer::runtime::jit {

// Register `comp` of vreg (0 for scalars; 0..3 inside a 4-wide vreg).
struct MReg {
  uint32_t vreg = kNoVReg;
  uint8_t comp = 0;
  bool valid() const { return vreg != kNoVReg; }
};

enum class MKind : uint8_t { Op, Label, LoopBegin, LoopEnd };

struct MInst {
  MKind kind = MKind::Op;
  isa::Op op = isa::Op::Nop;
  bool imm_b = false;
  MReg rd, ra, rb, rc;
  uint32_t imm = 0;
  int label = -1;  // Label: its id; branch: target label id
};

struct MFunction {
  std::vector<MInst> code;
  std::vector<uint8_t> widths;  // per vreg: 1 or 4 registers
  int num_labels = 0;
  std::vector<uint32_t> uniform_params;  // param index of each `unif`, in order
};

std::string minst_str(const MInst& m);

}  // namespace rplayer::runtime::jit
