#include "runtime/jit/ir.h"

#include <cstdio>

#include "hw/isa/isa.h"

namespace rplayer::runtime::jit {

const char* type_name(Type t) {
  switch (t) {
    case Type::I32:
      return "i32";
    case Type::U32:
      return "u32";
    case Type::F32:
      return "f32";
    case Type::Bool:
      return "bool";
  }
  return "?";
}

bool first_operands_commute(isa::Op op) {
  using isa::Op;
  switch (op) {
    case Op::Add:
    case Op::Mul:
    case Op::And:
    case Op::Or:
    case Op::Xor:
    case Op::Min:
    case Op::Max:
    case Op::Minu:
    case Op::Maxu:
    case Op::Ieq:
    case Op::Ine:
    case Op::Fadd:
    case Op::Fmul:
    case Op::Feq:
    case Op::Fne:
    case Op::Ffma:  // a * b + c
    case Op::Mad:
      return true;
    default:
      return false;
  }
}

const char* inst_kind_name(InstKind k) {
  switch (k) {
    case InstKind::Nop:
      return "nop";
    case InstKind::Alu:
      return "alu";
    case InstKind::Param:
      return "param";
    case InstKind::Sreg:
      return "sreg";
    case InstKind::Load:
      return "load";
    case InstKind::Store:
      return "store";
    case InstKind::Barrier:
      return "barrier";
    case InstKind::IfBegin:
      return "if";
    case InstKind::Else:
      return "else";
    case InstKind::IfEnd:
      return "endif";
    case InstKind::ForBegin:
      return "for";
    case InstKind::ForEnd:
      return "endfor";
    case InstKind::WhileBegin:
      return "while";
    case InstKind::WhileTest:
      return "while_test";
    case InstKind::WhileEnd:
      return "endwhile";
  }
  return "?";
}

namespace {

// FNV-1a, 64 bit.
struct Hasher {
  uint64_t h = 1469598103934665603ull;
  void bytes(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    for (size_t i = 0; i < n; ++i) {
      h ^= b[i];
      h *= 1099511628211ull;
    }
  }
  void u32(uint32_t v) { bytes(&v, 4); }  // little-endian hosts only (the model asserts it)
  void str(const std::string& s) {
    u32(uint32_t(s.size()));
    bytes(s.data(), s.size());
  }
  void operand(const Operand& o) {
    u32(uint32_t(o.kind) | uint32_t(o.comp) << 8);
    u32(o.v);
  }
};

}  // namespace

uint64_t Kernel::hash() const {
  Hasher h;
  h.str(name);
  h.u32(uint32_t(params.size()));
  for (const ParamDecl& p : params) {
    h.str(p.name);
    h.u32(uint32_t(p.kind) | uint32_t(p.type) << 8);
  }
  h.u32(uint32_t(specs.size()));
  for (const SpecDecl& s : specs) {
    h.str(s.name);
    h.u32(uint32_t(s.type));
    h.u32(s.default_bits);
  }
  h.u32(uint32_t(shared.size()));
  for (const SharedDecl& s : shared) {
    h.u32(s.fixed_bytes);
    h.u32(s.bytes_per_invocation);
  }
  h.u32(uint32_t(wg_mode));
  h.u32(wg_size);
  h.u32(uint32_t(vregs.size()));
  for (const VRegInfo& v : vregs)
    h.u32(uint32_t(v.type) | uint32_t(v.width) << 8 | uint32_t(v.is_var) << 16 |
          uint32_t(v.uniform) << 17);
  h.u32(uint32_t(insts.size()));
  for (const Inst& in : insts) {
    h.u32(uint32_t(in.kind) | uint32_t(in.op) << 8 | uint32_t(in.type) << 16 |
          uint32_t(in.uniform) << 24);
    h.u32(in.dst);
    h.u32(in.dst_comp);
    h.operand(in.a);
    h.operand(in.b);
    h.operand(in.c);
    h.u32(uint32_t(in.imm));
  }
  return h.h;
}

std::string operand_str(const Operand& o) {
  char buf[48];
  switch (o.kind) {
    case Operand::Kind::None:
      return "_";
    case Operand::Kind::Reg:
      if (o.comp == kWhole) {
        std::snprintf(buf, sizeof buf, "%%%u", o.v);
      } else {
        std::snprintf(buf, sizeof buf, "%%%u.%u", o.v, unsigned(o.comp));
      }
      return buf;
    case Operand::Kind::Imm:
      std::snprintf(buf, sizeof buf, "#0x%x", o.v);
      return buf;
    case Operand::Kind::Spec:
      std::snprintf(buf, sizeof buf, "spec%u", o.v);
      return buf;
    case Operand::Kind::Shared:
      std::snprintf(buf, sizeof buf, "shared%u", o.v);
      return buf;
  }
  return "?";
}

std::string inst_str(const Kernel& k, const Inst& in) {
  std::string s;
  if (in.dst != kNoVReg) {
    s += operand_str(Operand::reg(in.dst, in.dst_comp));
    if (in.dst < k.vregs.size() && k.vregs[in.dst].is_var) s += "(var)";
    s += " = ";
  }
  if (in.kind == InstKind::Alu || in.kind == InstKind::Load || in.kind == InstKind::Store) {
    const isa::OpInfo* info = isa::op_info(uint8_t(in.op));
    s += info ? std::string(info->mnemonic) : "op?";
  } else {
    s += inst_kind_name(in.kind);
  }
  s += ".";
  s += type_name(in.type);
  if (in.uniform) s += ".uniform";
  for (const Operand* o : {&in.a, &in.b, &in.c})
    if (!o->none()) s += " " + operand_str(*o);
  if (in.imm) s += " imm=" + std::to_string(in.imm);
  return s;
}

std::string Kernel::dump() const {
  std::string out = "kernel " + name + "\n";
  int depth = 1;
  for (size_t i = 0; i < insts.size(); ++i) {
    const Inst& in = insts[i];
    if (in.kind == InstKind::Nop) continue;
    const bool closes = in.kind == InstKind::Else || in.kind == InstKind::IfEnd ||
                        in.kind == InstKind::ForEnd || in.kind == InstKind::WhileEnd ||
                        in.kind == InstKind::WhileTest;
    if (closes) --depth;
    char pos[24];
    std::snprintf(pos, sizeof pos, "%4zu ", i);
    out += pos + std::string(size_t(2 * depth), ' ') + inst_str(*this, in) + "\n";
    const bool opens = in.kind == InstKind::IfBegin || in.kind == InstKind::Else ||
                       in.kind == InstKind::ForBegin || in.kind == InstKind::WhileBegin ||
                       in.kind == InstKind::WhileTest;
    if (opens) ++depth;
  }
  return out;
}

}  // namespace rplayer::runtime::jit
