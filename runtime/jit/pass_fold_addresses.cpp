// The address folding pass (passes.h): constant offsets into load and store immediates.
#include "runtime/jit/pass_util.h"
#include "runtime/jit/passes.h"

namespace rplayer::runtime::jit {

using isa::Op;

// load/store [t] with t = x + c -> [x + c] when x still holds its value.
bool fold_addresses(Kernel& k) {
  const Refs refs(k);
  std::vector<int> def(k.vregs.size(), -1);
  bool changed = false;
  for (int u = 0; u < int(k.insts.size()); ++u) {
    Inst& in = k.insts[u];
    if (in.dst != kNoVReg && !k.vregs[in.dst].is_var) def[in.dst] = u;
    if (in.kind != InstKind::Load && in.kind != InstKind::Store) continue;
    for (;;) {
      if (!in.a.is_reg() || k.vregs[in.a.v].is_var || def[in.a.v] < 0) break;
      const int d = def[in.a.v];
      const Inst& add = k.insts[d];
      if (add.kind != InstKind::Alu || add.op != Op::Add || !add.b.is_imm() || !add.a.is_reg() ||
          !is_int_type(add.type))
        break;
      if (k.vregs[add.a.v].is_var && !refs.stable(add.a.v, add.a.comp, d, {u})) break;
      in.a = add.a;
      in.imm = int32_t(uint32_t(in.imm) + add.b.v);
      changed = true;
    }
  }
  return changed;
}

}  // namespace rplayer::runtime::jit
