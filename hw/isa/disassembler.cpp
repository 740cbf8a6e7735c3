#include "hw/isa/disassembler.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <set>

#include "hw/isa/isa.h"

namespace rplayer::isa {
namespace {

std::string reg(uint8_t r) { return "r" + std::to_string(r); }

std::string hex(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%x", v);
  return buf;
}

bool is_float_op(Op op) {
  switch (op) {
    case Op::Fadd:
    case Op::Fsub:
    case Op::Fmul:
    case Op::Ffma:
    case Op::Fmin:
    case Op::Fmax:
    case Op::Fdiv:
    case Op::Feq:
    case Op::Fne:
    case Op::Flt:
    case Op::Fle:
      return true;
    default:
      return false;
  }
}

// Text for fp32 bits that the assembler parses back to the same bits. NaNs other than the
// two the assembler can spell keep their payload by printing as hex.
std::string float_text(uint32_t bits) {
  if (bits == 0x7fc00000u) return "nan";
  if (bits == 0xffc00000u) return "-nan";
  float f;
  std::memcpy(&f, &bits, 4);
  if (std::isnan(f)) return hex(bits);
  if (std::isinf(f)) return f < 0 ? "-inf" : "inf";
  char buf[32];
  const auto res = std::to_chars(buf, buf + sizeof buf, f);
  std::string s(buf, res.ptr);
  // Without '.' or an exponent the assembler would read an integer.
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

std::string imm_b(const Instr& in) {
  if (!in.imm_b) return reg(in.rb);
  return "#" + (is_float_op(in.op) ? float_text(in.imm) : hex(in.imm));
}

std::string mem(const Instr& in) {
  const int32_t off = int32_t(in.imm);
  if (off == 0) return "[" + reg(in.ra) + "]";
  const uint32_t mag = off < 0 ? uint32_t(0) - in.imm : in.imm;
  return "[" + reg(in.ra) + (off < 0 ? " - " : " + ") + std::to_string(mag) + "]";
}

// `label` is the target's text (a label or `#offset`).
std::string format(const Instr& in, const std::string& label) {
  const OpInfo* info = op_info(uint8_t(in.op));
  std::string s(info->mnemonic);
  switch (info->format) {
    case Format::None:
      return s;
    case Format::Branch:
      return s + " " + label;
    case Format::BranchC:
      return s + " " + reg(in.rc) + ", " + label;
    case Format::C:
      return s + " " + reg(in.rc);
    case Format::D:
      return s + " " + reg(in.rd);
    case Format::DSreg:
      return s + " " + reg(in.rd) + ", " + std::string(*sreg_name(in.imm));
    case Format::DB:
      return s + " " + reg(in.rd) + ", " + imm_b(in);
    case Format::DA:
      return s + " " + reg(in.rd) + ", " + reg(in.ra);
    case Format::DAB:
      return s + " " + reg(in.rd) + ", " + reg(in.ra) + ", " + imm_b(in);
    case Format::DABC:
      return s + " " + reg(in.rd) + ", " + reg(in.ra) + ", " + imm_b(in) + ", " + reg(in.rc);
    case Format::Load:
      return s + " " + reg(in.rd) + ", " + mem(in);
    case Format::Store:
      return s + " " + mem(in) + ", " + reg(in.rc);
  }
  return s;
}

std::string illegal(uint64_t w) {
  char buf[48];
  std::snprintf(buf, sizeof buf, ".word 0x%016llx  ; illegal", static_cast<unsigned long long>(w));
  return buf;
}

bool is_branch(const Instr& in) {
  const Format f = op_info(uint8_t(in.op))->format;
  return f == Format::Branch || f == Format::BranchC;
}

int64_t target(const Instr& in, int64_t pc) { return pc + int32_t(in.imm); }

}  // namespace

std::string disassemble_one(uint64_t word, uint32_t pc_index) {
  const std::optional<Instr> in = decode(word);
  if (!in) return illegal(word);
  if (!is_branch(*in)) return format(*in, "");
  std::string s = format(*in, "#" + std::to_string(int32_t(in->imm)));
  const int64_t t = target(*in, pc_index);
  if (t >= 0) s += "  ; -> " + std::to_string(t);
  return s;
}

std::string disassemble(std::span<const uint64_t> words) {
  const int64_t n = int64_t(words.size());
  // Targets in [0, n] are labeled; n is the end of the program, which a label may name.
  std::set<int64_t> targets;
  for (int64_t pc = 0; pc < n; ++pc) {
    const std::optional<Instr> in = decode(words[pc]);
    if (in && is_branch(*in) && target(*in, pc) >= 0 && target(*in, pc) <= n)
      targets.insert(target(*in, pc));
  }
  std::string out;
  for (int64_t pc = 0; pc <= n; ++pc) {
    if (targets.count(pc)) out += "L" + std::to_string(pc) + ":\n";
    if (pc == n) break;
    const std::optional<Instr> in = decode(words[pc]);
    std::string text;
    if (!in) {
      text = illegal(words[pc]);
    } else if (is_branch(*in)) {
      const int64_t t = target(*in, pc);
      text = format(
          *in, targets.count(t) ? "L" + std::to_string(t) : "#" + std::to_string(int32_t(in->imm)));
    } else {
      text = format(*in, "");
    }
    out += "    " + text + "\n";
  }
  return out;
}

}  // namespace rplayer::isa
