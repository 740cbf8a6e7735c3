// The JIT's optimization pipeline: the order and repetition of the passes (passes.h); each
// pass is in its own pass_*.cpp.
#include "runtime/jit/passes.h"

#include "runtime/jit/pass_util.h"

namespace rplayer::runtime::jit {

void optimize(Kernel& k, const CompileOptions& options) {
  fold_to_fixed_point(k);
  for (int guard = 0; guard < 10000 && unroll_next_loop(k, options); ++guard)
    fold_to_fixed_point(k);
  for (int round = 0; round < 4; ++round) {
    bool changed = propagate_copies(k);
    changed |= eliminate_common_subexpressions(k);
    changed |= coalesce_moves(k);
    fold_to_fixed_point(k);
    changed |= fold_addresses(k);
    changed |= eliminate_dead_code(k);
    if (!changed) break;
  }
  sink_pointer_increments(k);
  compact(k);
}

}  // namespace rplayer::runtime::jit
