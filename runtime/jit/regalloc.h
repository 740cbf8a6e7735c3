// Linear-scan register allocation over the machine IR.
//
// Live ranges are [first reference, last reference] in program order. Masked execution
// keeps this simple: both sides of a divergent if run one after the other, so program
// order is execution order everywhere except at loop back edges. A value referenced
// both inside and outside a loop therefore lives across the whole loop (its next
// iteration, or the code after it, still needs it).
//
// 4-wide values (ld4/ldu4/st4 groups) take 4 consecutive registers at a multiple of 4,
// allocated from r0 upwards; scalars come from the top down, so that they fragment the
// groups as little as possible. There is no spilling: running out is an error that
// reports the register pressure.
#pragma once

#include <string>
#include <vector>

#include "runtime/jit/mir.h"

namespace rplayer::runtime::jit {

struct RegAllocation {
  std::vector<int> phys;  // per vreg: first physical register, -1 if unused
  int max_pressure = 0;   // most registers live at one point
  int registers_used = 0;
};

// Throws Error naming `kernel` when the values live at some point do not fit in `budget`.
RegAllocation allocate_registers(const MFunction& f, int budget, const std::string& kernel);

}  // namespace rplayer::runtime::jit
