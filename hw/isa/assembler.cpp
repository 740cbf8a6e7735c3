#include "hw/isa/assembler.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>
#include <map>

#include "hw/isa/isa.h"

namespace rplayer::isa {
namespace {

std::string_view trim(std::string_view s) {
  const char* ws = " \t\r\v\f";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

bool is_ident(std::string_view s) {
  if (s.empty() || !(std::isalpha(uint8_t(s[0])) || s[0] == '_')) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return std::isalnum(uint8_t(c)) || c == '_' || c == '.'; });
}

std::string quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

// Unsigned decimal or 0x hex, whole string. Returns an error message or "" on success.
std::string parse_magnitude(std::string_view s, uint64_t* out) {
  int base = 10;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    base = 16;
    s.remove_prefix(2);
  }
  // The caller has consumed any sign; a second one is malformed.
  if (s.empty() || !std::isxdigit(uint8_t(s[0]))) return "malformed number";
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out, base);
  if (ec == std::errc::result_out_of_range) return "out of range";
  if (ec != std::errc() || ptr != s.data() + s.size()) return "malformed number";
  return "";
}

// Signed integer that must fit in 32 bits either as int32 or uint32; returns its bits.
std::string parse_int32(std::string_view s, uint32_t* out) {
  bool neg = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    neg = s[0] == '-';
    s.remove_prefix(1);
  }
  uint64_t mag = 0;
  const std::string err = parse_magnitude(s, &mag);
  if (err == "out of range") return "immediate out of 32-bit range";
  if (!err.empty()) return err;
  if (neg ? mag > (uint64_t{1} << 31) : mag > UINT32_MAX) return "immediate out of 32-bit range";
  *out = neg ? uint32_t(-int64_t(mag)) : uint32_t(mag);
  return "";
}

uint32_t float_bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

// The text after '#': integer, or float literal (fp32 bits).
std::string parse_imm_body(std::string_view s, uint32_t* out) {
  std::string_view mag = s;
  bool neg = false;
  if (!mag.empty() && (mag[0] == '-' || mag[0] == '+')) {
    neg = mag[0] == '-';
    mag.remove_prefix(1);
  }
  if (mag == "inf" || mag == "nan") {
    *out = (mag == "inf" ? 0x7f800000u : 0x7fc00000u) | (neg ? 0x80000000u : 0);
    return "";
  }
  const bool hex = mag.size() > 1 && mag[0] == '0' && (mag[1] == 'x' || mag[1] == 'X');
  if (hex || mag.find_first_of(".eE") == std::string_view::npos) return parse_int32(s, out);
  float f = 0;
  // Require a digit so from_chars cannot take a second sign or spellings like "infinity".
  if (mag.empty() || !(std::isdigit(uint8_t(mag[0])) || mag[0] == '.')) return "malformed float";
  const auto [ptr, ec] = std::from_chars(mag.data(), mag.data() + mag.size(), f);
  if (ec == std::errc::result_out_of_range) return "float immediate out of fp32 range";
  if (ec != std::errc() || ptr != mag.data() + mag.size()) return "malformed float";
  *out = float_bits(neg ? -f : f);
  return "";
}

// One instruction awaiting label resolution.
struct Pending {
  int line;
  bool raw;  // `.word`
  uint64_t word;
  Instr in;
  std::string label;  // branch target, if given by name
};

std::string_view operand_list(Format f) {
  switch (f) {
    case Format::None:
      return "no operands";
    case Format::Branch:
      return "label";
    case Format::BranchC:
      return "rc, label";
    case Format::C:
      return "rc";
    case Format::D:
      return "rd";
    case Format::DSreg:
      return "rd, sreg";
    case Format::DB:
      return "rd, b";
    case Format::DA:
      return "rd, ra";
    case Format::DAB:
      return "rd, ra, b";
    case Format::DABC:
      return "rd, ra, b, rc";
    case Format::Load:
      return "rd, [ra + imm]";
    case Format::Store:
      return "[ra + imm], rc";
  }
  return "";
}

size_t operand_count(Format f) {
  switch (f) {
    case Format::None:
      return 0;
    case Format::Branch:
    case Format::C:
    case Format::D:
      return 1;
    case Format::BranchC:
    case Format::DSreg:
    case Format::DB:
    case Format::DA:
    case Format::Load:
    case Format::Store:
      return 2;
    case Format::DAB:
      return 3;
    case Format::DABC:
      return 4;
  }
  return 0;
}

// Parses the operands of one instruction; the first problem becomes `err`.
class LineParser {
 public:
  std::string err;

  uint8_t reg(std::string_view t) {
    if (!err.empty()) return 0;
    if (t.size() < 2 || t[0] != 'r' ||
        !std::all_of(t.begin() + 1, t.end(), [](char c) { return std::isdigit(uint8_t(c)); })) {
      err = "expected a register r0..r63, got " + quoted(t);
      return 0;
    }
    unsigned n = 0;
    const auto [ptr, ec] = std::from_chars(t.data() + 1, t.data() + t.size(), n);
    if (ec != std::errc() || n >= unsigned(kNumRegs)) {
      err = "register out of range: " + quoted(t) + " (r0..r63)";
      return 0;
    }
    return uint8_t(n);
  }

  // Operand b: a register or `#imm`.
  void operand_b(std::string_view t, Instr* in) {
    if (!err.empty()) return;
    if (!t.empty() && t[0] == '#') {
      in->imm_b = true;
      imm(t, &in->imm);
    } else {
      in->rb = reg(t);
    }
  }

  void imm(std::string_view t, uint32_t* out) {
    if (!err.empty()) return;
    if (t.empty() || t[0] != '#') {
      err = "expected an immediate #value, got " + quoted(t);
      return;
    }
    const std::string e = parse_imm_body(t.substr(1), out);
    if (!e.empty()) err = e + ": " + quoted(t);
  }

  // `[ra]`, `[ra + off]`, `[ra - off]`.
  void mem(std::string_view t, Instr* in) {
    if (!err.empty()) return;
    if (t.size() < 2 || t.front() != '[' || t.back() != ']') {
      err = "expected a memory operand [ra + offset], got " + quoted(t);
      return;
    }
    std::string_view body = trim(t.substr(1, t.size() - 2));
    const size_t op = body.find_first_of("+-");
    in->ra = reg(trim(body.substr(0, op)));
    if (op == std::string_view::npos || !err.empty()) return;
    std::string_view off = trim(body.substr(op + 1));
    if (!off.empty() && off[0] == '#') off.remove_prefix(1);
    uint64_t mag = 0;
    const std::string e = parse_magnitude(off, &mag);
    const bool neg = body[op] == '-';
    if (e == "out of range" ||
        (e.empty() && (neg ? mag > (uint64_t{1} << 31) : mag > UINT32_MAX))) {
      err = "memory offset out of 32-bit range: " + quoted(t);
    } else if (!e.empty()) {
      err = "malformed memory offset: " + quoted(t);
    } else {
      in->imm = neg ? uint32_t(-int64_t(mag)) : uint32_t(mag);
    }
  }

  // A label name, or `#offset` (stored directly).
  void target(std::string_view t, Pending* p) {
    if (!err.empty()) return;
    if (!t.empty() && t[0] == '#') {
      const std::string e = parse_int32(t.substr(1), &p->in.imm);
      if (!e.empty()) err = e + ": " + quoted(t);
    } else if (is_ident(t)) {
      p->label = std::string(t);
    } else {
      err = "expected a label or #offset, got " + quoted(t);
    }
  }
};

}  // namespace

AsmResult assemble(std::string_view source) {
  AsmResult res;
  std::vector<Pending> prog;
  struct LabelDef {
    uint32_t index;
    int line;
  };
  std::map<std::string, LabelDef, std::less<>> labels;
  auto error = [&](int line, std::string msg) { res.errors.push_back({line, std::move(msg)}); };

  int line_no = 0;
  while (!source.empty()) {
    ++line_no;
    const size_t nl = source.find('\n');
    std::string_view line = source.substr(0, nl);
    source = nl == std::string_view::npos ? std::string_view() : source.substr(nl + 1);
    line = trim(line.substr(0, line.find(';')));

    // Leading `name:` definitions; ':' appears nowhere else in the syntax.
    bool bad_label = false;
    for (size_t colon; (colon = line.find(':')) != std::string_view::npos;) {
      const std::string_view name = trim(line.substr(0, colon));
      line = trim(line.substr(colon + 1));
      if (!is_ident(name)) {
        error(line_no, "invalid label name " + quoted(name));
        bad_label = true;
        break;
      }
      const auto [it, inserted] =
          labels.try_emplace(std::string(name), LabelDef{uint32_t(prog.size()), line_no});
      if (!inserted) {
        error(line_no, "duplicate label " + quoted(name) + " (first defined on line " +
                           std::to_string(it->second.line) + ")");
      }
    }
    if (bad_label || line.empty()) continue;

    const size_t sp = line.find_first_of(" \t");
    const std::string_view mnem = line.substr(0, sp);
    const std::string_view rest = sp == std::string_view::npos ? "" : trim(line.substr(sp));
    std::vector<std::string_view> ops;
    for (size_t pos = 0; !rest.empty();) {
      const size_t comma = rest.find(',', pos);
      ops.push_back(trim(rest.substr(pos, comma - pos)));
      if (comma == std::string_view::npos) break;
      pos = comma + 1;
    }
    if (std::find(ops.begin(), ops.end(), std::string_view()) != ops.end()) {
      error(line_no, "empty operand in " + quoted(line));
      continue;
    }

    Pending p{line_no, false, 0, {}, {}};
    if (mnem == ".word") {
      if (ops.size() != 1) {
        error(line_no, "'.word' expects 1 operand, got " + std::to_string(ops.size()));
        continue;
      }
      const std::string e = parse_magnitude(ops[0], &p.word);
      if (!e.empty()) {
        error(line_no, "'.word' value " + e + " (64-bit unsigned): " + quoted(ops[0]));
        continue;
      }
      p.raw = true;
      prog.push_back(std::move(p));
      continue;
    }
    if (!mnem.empty() && mnem[0] == '.') {
      error(line_no, "unknown directive " + quoted(mnem));
      continue;
    }
    const OpInfo* info = op_info_by_mnemonic(mnem);
    if (!info) {
      error(line_no, "unknown mnemonic " + quoted(mnem));
      continue;
    }
    const Format f = info->format;
    if (ops.size() != operand_count(f)) {
      error(line_no, quoted(mnem) + " expects " + std::to_string(operand_count(f)) +
                         " operand(s) (" + std::string(operand_list(f)) + "), got " +
                         std::to_string(ops.size()));
      continue;
    }

    Instr& in = p.in;
    in.op = info->op;
    LineParser lp;
    switch (f) {
      case Format::None:
        break;
      case Format::Branch:
        lp.target(ops[0], &p);
        break;
      case Format::BranchC:
        in.rc = lp.reg(ops[0]);
        lp.target(ops[1], &p);
        break;
      case Format::C:
        in.rc = lp.reg(ops[0]);
        break;
      case Format::D:
        in.rd = lp.reg(ops[0]);
        break;
      case Format::DSreg:
        in.rd = lp.reg(ops[0]);
        if (auto id = sreg_by_name(ops[1])) {
          in.imm = *id;
        } else if (lp.err.empty()) {
          lp.err = "unknown special register " + quoted(ops[1]);
        }
        break;
      case Format::DB:
        in.rd = lp.reg(ops[0]);
        lp.operand_b(ops[1], &in);
        break;
      case Format::DA:
        in.rd = lp.reg(ops[0]);
        in.ra = lp.reg(ops[1]);
        break;
      case Format::DAB:
      case Format::DABC:
        in.rd = lp.reg(ops[0]);
        in.ra = lp.reg(ops[1]);
        lp.operand_b(ops[2], &in);
        if (f == Format::DABC) in.rc = lp.reg(ops[3]);
        break;
      case Format::Load:
        in.rd = lp.reg(ops[0]);
        lp.mem(ops[1], &in);
        break;
      case Format::Store:
        lp.mem(ops[0], &in);
        in.rc = lp.reg(ops[1]);
        break;
    }
    if (lp.err.empty() && (in.op == Op::Ld4 || in.op == Op::Ldu4) && in.rd > kNumRegs - 4) {
      lp.err = quoted(mnem) + " writes rd..rd+3, so rd must be <= r60";
    }
    if (lp.err.empty() && in.op == Op::St4 && in.rc > kNumRegs - 4) {
      lp.err = quoted(mnem) + " reads rc..rc+3, so rc must be <= r60";
    }
    if (!lp.err.empty()) {
      error(line_no, lp.err);
      continue;
    }
    prog.push_back(std::move(p));
  }

  for (uint32_t i = 0; i < prog.size(); ++i) {
    Pending& p = prog[i];
    if (p.raw) {
      res.words.push_back(p.word);
      continue;
    }
    if (!p.label.empty()) {
      const auto it = labels.find(p.label);
      if (it == labels.end()) {
        error(p.line, "undefined label " + quoted(p.label));
        continue;
      }
      p.in.imm = uint32_t(int64_t(it->second.index) - int64_t(i));
    }
    const uint64_t w = encode(p.in);
    // The parser only fills fields the format uses; this guards that invariant.
    if (decode(w) != p.in) error(p.line, "internal error: non-canonical encoding");
    res.words.push_back(w);
  }

  if (!res.errors.empty()) {
    res.words.clear();
    std::stable_sort(res.errors.begin(), res.errors.end(),
                     [](const AsmError& a, const AsmError& b) { return a.line < b.line; });
  }
  return res;
}

std::vector<uint8_t> to_bytes(std::span<const uint64_t> words) {
  std::vector<uint8_t> out;
  out.reserve(words.size() * kInstrBytes);
  for (uint64_t w : words)
    for (int b = 0; b < kInstrBytes; ++b) out.push_back(uint8_t(w >> (8 * b)));
  return out;
}

std::optional<std::vector<uint64_t>> from_bytes(std::span<const uint8_t> bytes) {
  if (bytes.size() % kInstrBytes != 0) return std::nullopt;
  std::vector<uint64_t> out(bytes.size() / kInstrBytes);
  for (size_t i = 0; i < bytes.size(); ++i) out[i / 8] |= uint64_t(bytes[i]) << (8 * (i % 8));
  return out;
}

}  // namespace rplayer::isa
