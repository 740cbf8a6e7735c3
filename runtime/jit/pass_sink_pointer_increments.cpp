// The pointer-bump sinking pass (passes.h).
#include "runtime/jit/pass_util.h"
#include "runtime/jit/passes.h"

namespace rplayer::runtime::jit {

using isa::Op;

// Within straight-line code, `p = p + c` (p a scalar variable, c constant) is deferred:
// loads and stores through p take the pending offset in their immediate, and one add per
// variable is emitted where the code ends or p is needed whole. An unrolled loop body then
// bumps each pointer once instead of once per copy.
bool sink_pointer_increments(Kernel& k) {
  std::vector<Inst> out;
  out.reserve(k.insts.size());
  std::vector<uint32_t> pending(k.vregs.size(), 0);
  std::vector<uint32_t> dirty;  // vars with a pending offset, in the order they got one
  bool changed = false;
  auto flush = [&](uint32_t v) {
    if (pending[v] == 0) return;
    Inst add;
    add.kind = InstKind::Alu;
    add.op = Op::Add;
    add.type = k.vregs[v].type;
    add.dst = v;
    add.a = Operand::reg(v);
    add.b = Operand::imm(pending[v]);
    out.push_back(add);
    pending[v] = 0;
  };
  auto flush_all = [&] {
    for (uint32_t v : dirty) flush(v);
    dirty.clear();
  };
  auto is_bump = [&](const Inst& in) {
    return in.kind == InstKind::Alu && in.op == Op::Add && is_int_type(in.type) &&
           in.dst != kNoVReg && k.vregs[in.dst].is_var && k.vregs[in.dst].width == 1 &&
           in.a.is_reg() && in.a.v == in.dst && in.b.is_imm();
  };
  for (const Inst& src : k.insts) {
    Inst in = src;
    if (is_marker(in.kind)) {
      flush_all();
      out.push_back(in);
      continue;
    }
    if (is_bump(in)) {
      if (pending[in.dst] == 0) dirty.push_back(in.dst);
      pending[in.dst] += in.b.v;
      changed = true;
      continue;
    }
    // A memory access through p absorbs the offset; any other read of p, or a write to
    // it, needs p up to date first.
    if (in.dst != kNoVReg) flush(in.dst);
    const bool mem = in.kind == InstKind::Load || in.kind == InstKind::Store;
    if (mem && in.a.is_reg() && pending[in.a.v] != 0 && in.c != in.a) {
      in.imm = int32_t(uint32_t(in.imm) + pending[in.a.v]);
    } else if (in.a.is_reg()) {
      flush(in.a.v);
    }
    for (const Operand* o : {&in.b, &in.c})
      if (o->is_reg()) flush(o->v);
    out.push_back(in);
  }
  flush_all();
  k.insts = std::move(out);
  return changed;
}

}  // namespace rplayer::runtime::jit
