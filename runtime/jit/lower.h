// Instruction selection and control-flow lowering: optimized IR -> machine IR.
//
//   divergent if   if c / [bnone c, skip] body / else / [ball c, skip] body / endif
//                  (the skip branches jump over bodies no lane runs)
//   uniform if     bnone c, else_label / body / b end_label / else_label: body / end_label:
//   for            i = begin; [entry test]; top: body; i += step; t = i < end; bany t, top
//   while          alive = 1; top: if alive; cond; alive = cond; if alive; body;
//                  endif; endif; bany alive, top
// Immediates go into the I-bit operand where the format has one (commutative operations
// swap to get there), else into a register just before their use.
#pragma once

#include "runtime/jit/compiler.h"
#include "runtime/jit/ir.h"
#include "runtime/jit/mir.h"

namespace rplayer::runtime::jit {

// `k` must be specialized and optimized. Throws Error when the exec-mask nesting exceeds the
// hardware's 16-entry stack.
MFunction lower(const Kernel& k, const CompileOptions& options);

}  // namespace rplayer::runtime::jit
