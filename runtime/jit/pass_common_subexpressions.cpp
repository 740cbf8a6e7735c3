// The common subexpression elimination pass (passes.h).
#include <map>
#include <tuple>

#include "runtime/jit/pass_util.h"
#include "runtime/jit/passes.h"

namespace rplayer::runtime::jit {

using isa::Op;

// Identical pure computations on immutable operands share one result. Only within
// loop-free stretches: reusing a value across a loop would keep it live through the loop.
bool eliminate_common_subexpressions(Kernel& k) {
  using Key =
      std::tuple<uint32_t, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t>;
  std::vector<std::map<Key, Operand>> scopes(1);
  std::vector<Operand> repl(k.vregs.size());
  bool changed = false;
  auto subst = [&](Operand& o) {
    if (o.is_reg() && !repl[o.v].none()) o = repl[o.v];
  };
  auto immutable = [&](const Operand& o) {
    return o.none() || o.is_imm() || (o.is_reg() && !k.vregs[o.v].is_var && o.comp != kWhole);
  };
  auto pack = [](const Operand& o) { return uint32_t(o.kind) | uint32_t(o.comp) << 8; };
  for (Inst& in : k.insts) {
    subst(in.a);
    subst(in.b);
    subst(in.c);
    switch (in.kind) {
      case InstKind::IfBegin:
        scopes.emplace_back();
        continue;
      case InstKind::Else:
        scopes.back().clear();
        continue;
      case InstKind::IfEnd:
        scopes.pop_back();
        continue;
      case InstKind::ForBegin:
      case InstKind::ForEnd:
      case InstKind::WhileBegin:
      case InstKind::WhileTest:
      case InstKind::WhileEnd:
        for (auto& s : scopes) s.clear();
        continue;
      default:
        break;
    }
    const bool candidate =
        (in.kind == InstKind::Alu && in.op != Op::Mov) || in.kind == InstKind::Sreg;
    if (!candidate || in.dst == kNoVReg || k.vregs[in.dst].is_var || k.vregs[in.dst].width != 1)
      continue;
    if (!immutable(in.a) || !immutable(in.b) || !immutable(in.c)) continue;
    const Key key{uint32_t(in.kind) | uint32_t(in.op) << 8 | uint32_t(in.type) << 16,
                  uint32_t(in.imm),
                  pack(in.a),
                  in.a.v,
                  pack(in.b),
                  in.b.v,
                  pack(in.c),
                  in.c.v};
    Operand found;
    for (const auto& s : scopes) {
      auto it = s.find(key);
      if (it != s.end()) found = it->second;
    }
    if (found.none()) {
      scopes.back()[key] = Operand::reg(in.dst);
    } else {
      repl[in.dst] = found;
      in.kind = InstKind::Nop;
      changed = true;
    }
  }
  compact(k);
  return changed;
}

}  // namespace rplayer::runtime::jit
