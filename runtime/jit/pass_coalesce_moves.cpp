// The move coalescing pass (passes.h).
#include "runtime/jit/pass_util.h"
#include "runtime/jit/passes.h"

namespace rplayer::runtime::jit {

using isa::Op;

// `var = t` where t is used only there: compute t straight into var.
bool coalesce_moves(Kernel& k) {
  const Refs refs(k);
  bool changed = false;
  for (int q = 0; q < int(k.insts.size()); ++q) {
    Inst& mv = k.insts[q];
    if (mv.kind != InstKind::Alu || mv.op != Op::Mov || !mv.a.is_reg()) continue;
    const uint32_t var = mv.dst, t = mv.a.v;
    if (!k.vregs[var].is_var || k.vregs[t].is_var) continue;
    if (refs.uses[t].size() != 1 || refs.defs[t].size() != 1) continue;
    const int d = refs.defs[t][0].first;
    Inst& def = k.insts[d];
    if (def.kind != InstKind::Alu && def.kind != InstKind::Load && def.kind != InstKind::Sreg)
      continue;
    const bool whole4 = k.vregs[t].width == 4;
    if (whole4 != (mv.dst_comp == kWhole && k.vregs[var].width == 4)) continue;
    if (!whole4 && mv.a.comp != 0) continue;
    bool clear = d < q;
    for (int i = d + 1; clear && i < q; ++i) {
      const Inst& x = k.insts[i];
      if (is_marker(x.kind) || x.dst == var) clear = false;
      for (const Operand* o : {&x.a, &x.b, &x.c})
        if (o->is_reg() && o->v == var) clear = false;
    }
    if (!clear) continue;
    def.dst = var;
    def.dst_comp = mv.dst_comp;
    mv.kind = InstKind::Nop;
    changed = true;
  }
  compact(k);
  return changed;
}

}  // namespace rplayer::runtime::jit
