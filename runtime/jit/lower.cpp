#include "runtime/jit/lower.h"

#include <utility>

#include "runtime/error.h"

namespace rplayer::runtime::jit {

using isa::Op;

std::string minst_str(const MInst& m) {
  auto r = [](const MReg& x) {
    return "%" + std::to_string(x.vreg) + (x.comp ? "." + std::to_string(x.comp) : "");
  };
  switch (m.kind) {
    case MKind::Label:
      return "L" + std::to_string(m.label) + ":";
    case MKind::LoopBegin:
      return "(loop begin)";
    case MKind::LoopEnd:
      return "(loop end)";
    case MKind::Op:
      break;
  }
  const isa::OpInfo* info = isa::op_info(uint8_t(m.op));
  std::string s = info ? std::string(info->mnemonic) : "?";
  const char* sep = " ";
  for (const MReg* x : {&m.rd, &m.ra, &m.rb, &m.rc}) {
    if (!x->valid()) continue;
    s += sep + r(*x);
    sep = ", ";
  }
  if (m.imm_b || m.imm) s += std::string(sep) + "#" + std::to_string(int32_t(m.imm));
  if (m.label >= 0) s += std::string(sep) + "L" + std::to_string(m.label);
  return s;
}

namespace {

constexpr int kSkipMinInstrs = 6;  // shorter masked bodies are cheaper to run than to skip

class Lowerer {
 public:
  Lowerer(const Kernel& k, const CompileOptions& o) : k_(k), o_(o) {
    f_.widths.reserve(k.vregs.size());
    for (const VRegInfo& v : k.vregs) f_.widths.push_back(v.width);
  }

  MFunction run() {
    for (const Inst& in : k_.insts) inst(in);
    op(Op::End);
    return std::move(f_);
  }

 private:
  struct Ctx {
    InstKind kind;
    bool uniform = false;
    MReg cond;
    size_t body_start = 0;
    bool has_bar = false;
    bool in_else = false;
    int label_a = -1, label_b = -1;  // if: else/end; loops: top/exit
    // for loops
    MReg ivar;
    Type type = Type::I32;
    Operand end, step;
    bool ascending = true;
  };

  [[noreturn]] void fail(const std::string& msg) const {
    throw Error("kernel '" + k_.name + "': " + msg);
  }

  MInst& op(Op o) {
    MInst m;
    m.op = o;
    f_.code.push_back(m);
    return f_.code.back();
  }
  int new_label() { return f_.num_labels++; }
  void label(int id) {
    MInst m;
    m.kind = MKind::Label;
    m.label = id;
    f_.code.push_back(m);
  }
  void marker(MKind kind) {
    MInst m;
    m.kind = kind;
    f_.code.push_back(m);
  }
  void branch(Op o, MReg cond, int target) {
    MInst& m = op(o);
    m.rc = cond;
    m.label = target;
  }
  MReg new_temp(int width = 1) {
    f_.widths.push_back(uint8_t(width));
    return {uint32_t(f_.widths.size() - 1), 0};
  }

  // The operand in a register: immediates are materialized right here.
  MReg reg(const Operand& o) {
    if (o.is_reg()) return {o.v, o.comp == kWhole ? uint8_t(0) : o.comp};
    if (!o.is_imm()) fail("internal: unresolved operand " + operand_str(o));
    const MReg t = new_temp();
    MInst& m = op(Op::Mov);
    m.rd = t;
    m.imm_b = true;
    m.imm = o.v;
    return t;
  }
  void set_b(MInst& m, const Operand& o) {
    if (o.is_imm()) {
      m.imm_b = true;
      m.imm = o.v;
    } else {
      m.rb = reg(o);
    }
  }
  // Operands are selected before the instruction is appended: materializing an
  // immediate appends a mov, which would invalidate a reference into the code vector.
  void emit(MInst m) { f_.code.push_back(m); }
  static MReg dst(const Inst& in) {
    return {in.dst, in.dst_comp == kWhole ? uint8_t(0) : in.dst_comp};
  }

  void inst(const Inst& in) {
    switch (in.kind) {
      case InstKind::Nop:
        break;
      case InstKind::Alu:
        alu(in);
        break;
      case InstKind::Param: {
        MInst m;
        m.op = Op::Unif;
        m.rd = dst(in);
        emit(m);
        f_.uniform_params.push_back(uint32_t(in.imm));
        break;
      }
      case InstKind::Sreg: {
        MInst m;
        m.op = Op::Sreg;
        m.rd = dst(in);
        m.imm = uint32_t(in.imm);
        emit(m);
        break;
      }
      case InstKind::Load: {
        MInst m;
        m.op = in.op;
        m.rd = dst(in);
        m.ra = reg(in.a);
        m.imm = uint32_t(in.imm);
        emit(m);
        break;
      }
      case InstKind::Store: {
        MInst m;
        m.op = in.op;
        m.ra = reg(in.a);
        m.rc = reg(in.c);
        m.imm = uint32_t(in.imm);
        emit(m);
        break;
      }
      case InstKind::Barrier:
        op(Op::Bar);
        for (Ctx& c : stack_) c.has_bar = true;
        break;
      case InstKind::IfBegin:
        if_begin(in);
        break;
      case InstKind::Else:
        if_else();
        break;
      case InstKind::IfEnd:
        if_end();
        break;
      case InstKind::ForBegin:
        for_begin(in);
        break;
      case InstKind::ForEnd:
        for_end();
        break;
      case InstKind::WhileBegin:
        while_begin();
        break;
      case InstKind::WhileTest:
        while_test(in);
        break;
      case InstKind::WhileEnd:
        while_end();
        break;
    }
  }

  void alu(const Inst& in) {
    if (in.op == Op::Mov) {
      if (in.dst_comp == kWhole && f_.widths[in.dst] == 4) {
        if (!in.a.is_reg() || in.a.comp != kWhole) fail("internal: 4-wide move of a scalar");
        for (uint8_t k = 0; k < 4; ++k) {
          if (in.a.v == in.dst) continue;
          MInst m;
          m.op = Op::Mov;
          m.rd = {in.dst, k};
          m.rb = {in.a.v, k};
          emit(m);
        }
        return;
      }
      const MReg d = dst(in);
      if (in.a.is_reg() && in.a.v == d.vreg && in.a.comp == d.comp) return;
      MInst m;
      m.op = Op::Mov;
      m.rd = d;
      set_b(m, in.a);
      emit(m);
      return;
    }
    const isa::OpInfo* info = isa::op_info(uint8_t(in.op));
    if (!info) fail("internal: undefined opcode in IR");
    Operand a = in.a, b = in.b;
    if (a.is_imm() && b.is_reg() && first_operands_commute(in.op)) std::swap(a, b);
    MInst m;
    m.op = in.op;
    m.rd = dst(in);
    switch (info->format) {
      case isa::Format::DA:
        m.ra = reg(a);
        break;
      case isa::Format::DAB:
        m.ra = reg(a);
        set_b(m, b);
        break;
      case isa::Format::DABC:
        m.ra = reg(a);
        set_b(m, b);
        m.rc = reg(in.c);
        break;
      default:
        fail("internal: ALU op with format " + std::to_string(int(info->format)));
    }
    emit(m);
  }

  void push_mask(int n) {
    mask_depth_ += n;
    if (mask_depth_ > isa::kMaskStackDepth)
      fail("lane-divergent control flow nested " + std::to_string(mask_depth_) +
           " exec masks deep; the QPU mask stack holds " + std::to_string(isa::kMaskStackDepth) +
           " (a while_ takes 2)");
  }

  void if_begin(const Inst& in) {
    Ctx c;
    c.kind = InstKind::IfBegin;
    c.uniform = in.uniform;
    c.cond = reg(in.a);
    if (c.uniform) {
      c.label_a = new_label();
      branch(Op::Bnone, c.cond, c.label_a);
    } else {
      push_mask(1);
      op(Op::If).rc = c.cond;
    }
    c.body_start = f_.code.size();
    stack_.push_back(c);
  }

  // Branches over a masked body when no lane is active in it. `test` is taken exactly
  // then: after `if c` every active lane has c != 0 (bnone), after `else` every active
  // lane has c == 0 (ball).
  void maybe_skip(Ctx& c, Op test) {
    if (!o_.skip_empty_ifs || c.has_bar) return;
    int n = 0;
    for (size_t i = c.body_start; i < f_.code.size(); ++i) n += f_.code[i].kind == MKind::Op;
    if (n < kSkipMinInstrs) return;
    const int l = new_label();
    MInst m;
    m.op = test;
    m.rc = c.cond;
    m.label = l;
    f_.code.insert(f_.code.begin() + std::ptrdiff_t(c.body_start), m);
    label(l);
  }

  void if_else() {
    Ctx& c = stack_.back();
    if (c.uniform) {
      c.label_b = new_label();
      branch(Op::B, {}, c.label_b);
      label(c.label_a);
    } else {
      maybe_skip(c, Op::Bnone);
      op(Op::Else);
      c.body_start = f_.code.size();
      c.has_bar = false;
    }
    c.in_else = true;
  }

  void if_end() {
    Ctx c = stack_.back();
    stack_.pop_back();
    if (c.uniform) {
      label(c.in_else ? c.label_b : c.label_a);
      return;
    }
    maybe_skip(c, c.in_else ? Op::Ball : Op::Bnone);
    op(Op::Endif);
    mask_depth_ -= 1;
  }

  // t = (i < end), or (end < i) when counting down.
  MReg loop_test(const Ctx& c) {
    const MReg t = new_temp();
    MInst m;
    m.op = c.type == Type::U32 ? Op::Ult : Op::Ilt;
    m.rd = t;
    if (c.ascending) {
      m.ra = c.ivar;
      set_b(m, c.end);
    } else {
      m.ra = reg(c.end);
      m.rb = c.ivar;
    }
    emit(m);
    return t;
  }

  void for_begin(const Inst& in) {
    Ctx c;
    c.kind = InstKind::ForBegin;
    c.ivar = {in.dst, 0};
    c.type = in.type;
    c.end = in.b;
    c.step = in.c;
    c.ascending = in.type == Type::U32 || !in.c.is_imm() || int32_t(in.c.v) > 0;
    MInst init;
    init.op = Op::Mov;
    init.rd = c.ivar;
    set_b(init, in.a);
    emit(init);
    // Constant bounds that survived folding mean at least two trips: no entry test.
    const bool known = in.a.is_imm() && in.b.is_imm() && in.c.is_imm();
    if (!known) {
      c.label_b = new_label();
      branch(Op::Bnone, loop_test(c), c.label_b);
    }
    marker(MKind::LoopBegin);
    c.label_a = new_label();
    label(c.label_a);
    stack_.push_back(c);
  }

  void for_end() {
    const Ctx c = stack_.back();
    stack_.pop_back();
    MInst inc;
    inc.op = Op::Add;
    inc.rd = c.ivar;
    inc.ra = c.ivar;
    set_b(inc, c.step);
    emit(inc);
    branch(Op::Bany, loop_test(c), c.label_a);
    marker(MKind::LoopEnd);
    if (c.label_b >= 0) label(c.label_b);
  }

  void while_begin() {
    push_mask(2);
    Ctx c;
    c.kind = InstKind::WhileBegin;
    c.cond = new_temp();  // the lanes still looping
    MInst init;
    init.op = Op::Mov;
    init.rd = c.cond;
    init.imm_b = true;
    init.imm = 1;
    emit(init);
    marker(MKind::LoopBegin);
    c.label_a = new_label();
    label(c.label_a);
    op(Op::If).rc = c.cond;
    stack_.push_back(c);
  }

  void while_test(const Inst& in) {
    const Ctx& c = stack_.back();
    MInst m;
    m.op = Op::Mov;
    m.rd = c.cond;
    set_b(m, in.a);
    emit(m);
    op(Op::If).rc = c.cond;
  }

  void while_end() {
    const Ctx c = stack_.back();
    stack_.pop_back();
    op(Op::Endif);
    op(Op::Endif);
    branch(Op::Bany, c.cond, c.label_a);
    marker(MKind::LoopEnd);
    mask_depth_ -= 2;
  }

  const Kernel& k_;
  const CompileOptions& o_;
  MFunction f_;
  std::vector<Ctx> stack_;
  int mask_depth_ = 0;
};

}  // namespace

MFunction lower(const Kernel& k, const CompileOptions& options) {
  return Lowerer(k, options).run();
}

}  // namespace rplayer::runtime::jit
