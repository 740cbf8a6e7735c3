// The copy propagation pass (passes.h).
#include "runtime/jit/pass_util.h"
#include "runtime/jit/passes.h"

namespace rplayer::runtime::jit {

using isa::Op;

// Reads of a snapshot `t = var` become reads of var itself where var cannot change between.
bool propagate_copies(Kernel& k) {
  const Refs refs(k);
  bool changed = false;
  for (int p = 0; p < int(k.insts.size()); ++p) {
    Inst& in = k.insts[p];
    if (in.kind != InstKind::Alu || in.op != Op::Mov || !in.a.is_reg()) continue;
    if (k.vregs[in.dst].is_var || !k.vregs[in.a.v].is_var) continue;
    const uint32_t t = in.dst;
    if (!refs.stable(in.a.v, in.a.comp, p, refs.uses[t])) continue;
    for (int u : refs.uses[t]) {
      Inst& user = k.insts[u];
      for (Operand* o : {&user.a, &user.b, &user.c}) {
        if (!o->is_reg() || o->v != t) continue;
        const uint8_t comp = (k.vregs[t].width == 4 && o->comp != kWhole) ? o->comp : in.a.comp;
        *o = Operand::reg(in.a.v, comp);
      }
    }
    in.kind = InstKind::Nop;
    changed = true;
  }
  compact(k);
  return changed;
}

}  // namespace rplayer::runtime::jit
