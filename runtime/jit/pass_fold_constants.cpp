// The constant folding pass (passes.h), run to a fixed point: folded operations,
// algebraic identities, add chains, dead branches (if / for with known conditions or trip
// counts); fold_constant computes one operation as the QPU would.

// ffma folds with two roundings, like the QPU; never contract a*b+c on the host.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <bit>
#include <cmath>
#include <utility>

#include "runtime/jit/pass_util.h"
#include "runtime/jit/passes.h"

namespace rplayer::runtime::jit {

using isa::Op;

namespace {

class Folder {
 public:
  explicit Folder(Kernel& k)
      : k_(k), st_(analyze(k.insts)), repl_(k.vregs.size()), def_(k.vregs.size(), -1) {}

  bool run() {
    for (int i = 0; i < int(k_.insts.size()); ++i) {
      Inst& in = k_.insts[i];
      if (in.kind == InstKind::Nop) continue;
      subst(in.a);
      subst(in.b);
      subst(in.c);
      switch (in.kind) {
        case InstKind::Alu:
          alu(in);
          break;
        case InstKind::IfBegin:
          if_begin(i);
          break;
        case InstKind::ForBegin:
          for_begin(i);
          break;
        default:
          break;
      }
      if (in.kind != InstKind::Nop && in.dst != kNoVReg && !is_var(in.dst)) def_[in.dst] = i;
    }
    return changed_;
  }

 private:
  bool is_var(uint32_t v) const { return k_.vregs[v].is_var; }
  bool is_temp_or_imm(const Operand& o) const { return o.is_imm() || (o.is_reg() && !is_var(o.v)); }

  void subst(Operand& o) {
    if (!o.is_reg() || repl_[o.v].none()) return;
    const Operand& r = repl_[o.v];
    if (k_.vregs[o.v].width == 4 && o.comp != kWhole) {
      o = Operand::reg(r.v, o.comp);
    } else {
      o = r;
    }
    changed_ = true;
  }

  // dst takes the value of x: forward it if x cannot change, else copy.
  void alias(Inst& in, const Operand& x) {
    changed_ = true;
    if (is_temp_or_imm(x)) {
      repl_[in.dst] = x;
      in.kind = InstKind::Nop;
      return;
    }
    in.op = Op::Mov;
    in.a = x;
    in.b = in.c = Operand{};
  }

  void alu(Inst& in) {
    const bool temp = !is_var(in.dst) && k_.vregs[in.dst].width == 1;
    if (in.op == Op::Mov) {
      if (temp && is_temp_or_imm(in.a) && (in.a.is_imm() || in.a.comp != kWhole)) alias(in, in.a);
      if (!is_var(in.dst) && k_.vregs[in.dst].width == 4 && in.a.is_reg() && !is_var(in.a.v) &&
          in.a.comp == kWhole) {
        repl_[in.dst] = in.a;  // copy of a whole 4-wide temporary
        in.kind = InstKind::Nop;
        changed_ = true;
      }
      return;
    }
    if (in.op == Op::Sub && is_int_type(in.type) && in.b.is_imm() && in.a.is_reg()) {
      in.op = Op::Add;  // canonical form for the add chains below
      in.b.v = 0u - in.b.v;
      changed_ = true;
    }
    if (first_operands_commute(in.op) && in.a.is_imm() && in.b.is_reg()) {
      std::swap(in.a, in.b);
      changed_ = true;
    }
    const bool all_imm = (in.a.none() || in.a.is_imm()) && (in.b.none() || in.b.is_imm()) &&
                         (in.c.none() || in.c.is_imm());
    uint32_t r;
    if (all_imm && fold_constant(in.op, in.a.v, in.b.v, in.c.v, &r)) {
      if (temp) {
        repl_[in.dst] = Operand::imm(r);
        in.kind = InstKind::Nop;
      } else {
        in.op = Op::Mov;
        in.a = Operand::imm(r);
        in.b = in.c = Operand{};
      }
      changed_ = true;
      return;
    }
    if (!temp) return;
    if (in.op == Op::Sel && in.c.is_imm()) return alias(in, in.c.v ? in.a : in.b);
    if (!in.b.is_imm()) return;
    const uint32_t c = in.b.v;
    switch (in.op) {
      case Op::Add:
      case Op::Sub:
      case Op::Or:
      case Op::Xor:
        if (c == 0) return alias(in, in.a);
        break;
      case Op::Shl:
      case Op::Shr:
      case Op::Asr:
        if ((c & 31) == 0) return alias(in, in.a);
        break;
      case Op::Mul:
        if (c == 1) return alias(in, in.a);
        if (c == 0) return alias(in, Operand::imm(0));
        break;
      case Op::And:
        if (c == 0xffffffffu) return alias(in, in.a);
        if (c == 0) return alias(in, Operand::imm(0));
        break;
      default:
        break;
    }
    // (x + c1) + c2 -> x + (c1 + c2) when x cannot change in between.
    if (in.op == Op::Add && is_int_type(in.type) && in.a.is_reg() && !is_var(in.a.v) &&
        def_[in.a.v] >= 0) {
      const Inst& d = k_.insts[def_[in.a.v]];
      if (d.kind == InstKind::Alu && d.op == Op::Add && d.b.is_imm() && is_temp_or_imm(d.a) &&
          d.a.comp != kWhole) {
        in.a = d.a;
        in.b = Operand::imm(d.b.v + c);
        changed_ = true;
        if (in.a.is_imm()) alu(in);
      }
    }
  }

  void if_begin(int i) {
    Inst& in = k_.insts[i];
    if (!in.a.is_imm()) return;
    const int mid = st_.mid[i], end = st_.end[i];
    if (in.a.v != 0) {
      if (mid >= 0) nop_range(k_.insts, mid, end);
      k_.insts[end].kind = InstKind::Nop;
    } else {
      nop_range(k_.insts, i + 1, mid >= 0 ? mid : end);
      k_.insts[end].kind = InstKind::Nop;
    }
    in.kind = InstKind::Nop;
    changed_ = true;
  }

  void for_begin(int i) {
    Inst& in = k_.insts[i];
    if (!in.a.is_imm() || !in.b.is_imm() || !in.c.is_imm()) return;
    const int64_t n = trip_count(in.type, in.a.v, in.b.v, in.c.v);
    if (n == 0) {
      nop_range(k_.insts, i, st_.end[i]);
      changed_ = true;
    } else if (n == 1) {
      k_.insts[st_.end[i]].kind = InstKind::Nop;
      in.kind = InstKind::Alu;
      in.op = Op::Mov;
      in.b = in.c = Operand{};
      in.imm = 0;
      changed_ = true;
    }
  }

  Kernel& k_;
  Structure st_;
  std::vector<Operand> repl_;
  std::vector<int> def_;
  bool changed_ = false;
};

}  // namespace

bool fold_constant(Op op, uint32_t a, uint32_t b, uint32_t c, uint32_t* out) {
  const int32_t sa = int32_t(a), sb = int32_t(b);
  const float fa = std::bit_cast<float>(a), fb = std::bit_cast<float>(b),
              fc = std::bit_cast<float>(c);
  auto f = [](float x) { return std::bit_cast<uint32_t>(x); };
  switch (op) {
    case Op::Mov:
      *out = a;
      return true;  // IR Mov keeps its source in a
    case Op::Sel:
      *out = c ? a : b;
      return true;
    case Op::Add:
      *out = a + b;
      return true;
    case Op::Sub:
      *out = a - b;
      return true;
    case Op::Mul:
      *out = a * b;
      return true;
    case Op::Mad:
      *out = a * b + c;
      return true;
    case Op::And:
      *out = a & b;
      return true;
    case Op::Or:
      *out = a | b;
      return true;
    case Op::Xor:
      *out = a ^ b;
      return true;
    case Op::Shl:
      *out = a << (b & 31);
      return true;
    case Op::Shr:
      *out = a >> (b & 31);
      return true;
    case Op::Asr:
      *out = uint32_t(sa >> (b & 31));
      return true;
    case Op::Min:
      *out = uint32_t(std::min(sa, sb));
      return true;
    case Op::Max:
      *out = uint32_t(std::max(sa, sb));
      return true;
    case Op::Minu:
      *out = std::min(a, b);
      return true;
    case Op::Maxu:
      *out = std::max(a, b);
      return true;
    case Op::Divu:
      *out = b ? a / b : 0xffffffffu;
      return true;
    case Op::Remu:
      *out = b ? a % b : a;
      return true;
    case Op::Ieq:
      *out = a == b;
      return true;
    case Op::Ine:
      *out = a != b;
      return true;
    case Op::Ilt:
      *out = sa < sb;
      return true;
    case Op::Ile:
      *out = sa <= sb;
      return true;
    case Op::Ult:
      *out = a < b;
      return true;
    case Op::Ule:
      *out = a <= b;
      return true;
    case Op::Feq:
      *out = fa == fb;
      return true;
    case Op::Fne:
      *out = fa != fb;
      return true;
    case Op::Flt:
      *out = fa < fb;
      return true;
    case Op::Fle:
      *out = fa <= fb;
      return true;
    case Op::Fneg:
      *out = a ^ 0x80000000u;
      return true;
    case Op::Fabs:
      *out = a & 0x7fffffffu;
      return true;
    case Op::Itof:
      *out = f(float(sa));
      return true;
    case Op::Utof:
      *out = f(float(a));
      return true;
    default:
      break;
  }
  // Float arithmetic: only on non-NaN inputs, whose results every IEEE host rounds alike
  // (NaN payloads are where hosts differ).
  if (std::isnan(fa) || std::isnan(fb) || std::isnan(fc)) return false;
  switch (op) {
    case Op::Fadd:
      *out = f(fa + fb);
      return true;
    case Op::Fsub:
      *out = f(fa - fb);
      return true;
    case Op::Fmul:
      *out = f(fa * fb);
      return true;
    case Op::Fdiv:
      *out = f(fa / fb);
      return true;
    case Op::Ffma: {
      const float p = fa * fb;
      *out = f(p + fc);
      return true;
    }
    case Op::Fmin:
      *out = fb < fa ? b : a;
      return true;
    case Op::Fmax:
      *out = fa < fb ? b : a;
      return true;
    case Op::Ffloor:
      *out = f(std::floor(fa));
      return true;
    case Op::Fceil:
      *out = f(std::ceil(fa));
      return true;
    case Op::Ftoi:
      if (fa < -2147483648.0f)
        *out = 0x80000000u;
      else if (fa >= 2147483648.0f)
        *out = 0x7fffffffu;
      else
        *out = uint32_t(int32_t(fa));
      return true;
    default:
      return false;
  }
}

void fold_to_fixed_point(Kernel& k) {
  for (int round = 0; round < 16; ++round) {
    if (!Folder(k).run()) break;
    compact(k);
  }
  compact(k);
}

}  // namespace rplayer::runtime::jit
