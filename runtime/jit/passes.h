// IR passes of the JIT (compiler.h describes the pipeline). Each keeps the kernel's meaning
// and works in place on a copy the compiler owns.
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/jit/compiler.h"
#include "runtime/jit/ir.h"

namespace rplayer::runtime::jit {

// Replaces specialization constants (values by declaration index) and shared regions
// (byte offsets by index) with immediates, and the workgroup-size special register with
// its value.
void specialize(Kernel& k, const std::vector<uint32_t>& spec_values,
                const std::vector<uint32_t>& shared_offsets, uint32_t wg_size);

// Constant folding, dead branches, unrolling, copy propagation, common subexpressions,
// move coalescing, address folding, dead code elimination and pointer-bump sinking.
// Leaves no Nop instructions.
void optimize(Kernel& k, const CompileOptions& options);

// Exposed for tests: folds one instruction's operation on constants, as the QPU would
// compute it; false for operations the JIT does not fold (SFU, half floats, NaN inputs).
bool fold_constant(isa::Op op, uint32_t a, uint32_t b, uint32_t c, uint32_t* out);

// The passes optimize() runs, one file each (pass_<name>.cpp). Those returning bool say
// whether they changed the kernel.

// Constant folding, algebraic identities, add chains and dead branches, repeated until
// nothing changes (at most 16 rounds); leaves no Nop instructions.
void fold_to_fixed_point(Kernel& k);
// Unrolls the first loop with an unrolling hint and a known trip count, or drops a hint
// that would unroll nothing; false if there is no such loop.
bool unroll_next_loop(Kernel& k, const CompileOptions& options);
bool propagate_copies(Kernel& k);
bool eliminate_common_subexpressions(Kernel& k);
bool coalesce_moves(Kernel& k);
bool fold_addresses(Kernel& k);
bool eliminate_dead_code(Kernel& k);
bool sink_pointer_increments(Kernel& k);

}  // namespace rplayer::runtime::jit
