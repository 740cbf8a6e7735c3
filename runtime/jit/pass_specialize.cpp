// The specialization pass (passes.h): specialization constants, shared-memory offsets and
// the workgroup size become immediates.
#include "runtime/jit/pass_util.h"
#include "runtime/jit/passes.h"

namespace rplayer::runtime::jit {

using isa::Op;

using Kind = Operand::Kind;

void specialize(Kernel& k, const std::vector<uint32_t>& spec_values,
                const std::vector<uint32_t>& shared_offsets, uint32_t wg_size) {
  for (Inst& in : k.insts) {
    for (Operand* o : {&in.a, &in.b, &in.c}) {
      if (o->kind == Kind::Spec) *o = Operand::imm(spec_values.at(o->v));
      if (o->kind == Kind::Shared) *o = Operand::imm(shared_offsets.at(o->v));
    }
    if (in.kind == InstKind::Sreg && in.imm == int32_t(isa::Sreg::WgSize)) {
      in.kind = InstKind::Alu;
      in.op = Op::Mov;
      in.a = Operand::imm(wg_size);
      in.imm = 0;
    }
  }
}

}  // namespace rplayer::runtime::jit
