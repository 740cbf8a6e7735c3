// The dead code elimination pass (passes.h): unread results of pure instructions, and every
// assignment to a variable nobody reads.
#include "runtime/jit/pass_util.h"
#include "runtime/jit/passes.h"

namespace rplayer::runtime::jit {

namespace {

bool pure(const Inst& in) {
  return in.kind == InstKind::Alu || in.kind == InstKind::Load || in.kind == InstKind::Sreg ||
         in.kind == InstKind::Param;
}

}  // namespace

bool eliminate_dead_code(Kernel& k) {
  bool any = false;
  for (bool changed = true; changed;) {
    changed = false;
    const Refs refs(k);
    std::vector<int> reads(k.vregs.size());
    for (size_t v = 0; v < reads.size(); ++v) reads[v] = int(refs.uses[v].size());
    auto drop = [&](Inst& in) {
      for (const Operand* o : {&in.a, &in.b, &in.c})
        if (o->is_reg()) --reads[o->v];
      in.kind = InstKind::Nop;
      changed = any = true;
    };
    for (int i = int(k.insts.size()) - 1; i >= 0; --i) {
      Inst& in = k.insts[i];
      if (!pure(in) || in.dst == kNoVReg || reads[in.dst] > 0) continue;
      if (!k.vregs[in.dst].is_var) {
        drop(in);
      }
    }
    // Variables nobody reads: all their assignments are dead.
    for (int i = int(k.insts.size()) - 1; i >= 0; --i) {
      Inst& in = k.insts[i];
      if (in.kind == InstKind::Nop || !pure(in) || in.dst == kNoVReg) continue;
      if (k.vregs[in.dst].is_var && reads[in.dst] == 0) drop(in);
    }
    compact(k);
  }
  return any;
}

}  // namespace rplayer::runtime::jit
