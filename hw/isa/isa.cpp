#include "hw/isa/isa.h"

#include <array>

namespace rplayer::isa {
namespace {

constexpr OpInfo kOps[] = {
#define RPLAYER_ISA_INFO(name, mnem, code, fmt) {Op::name, mnem, Format::fmt},
    RPLAYER_ISA_OPCODES(RPLAYER_ISA_INFO)
#undef RPLAYER_ISA_INFO
};

struct SregInfo {
  std::string_view name;
  uint32_t id;
};
constexpr SregInfo kSregs[] = {
#define RPLAYER_ISA_SREG_INFO(name, mnem, id) {mnem, id},
    RPLAYER_ISA_SREGS(RPLAYER_ISA_SREG_INFO)
#undef RPLAYER_ISA_SREG_INFO
};

constexpr std::array<const OpInfo*, 128> build_table() {
  std::array<const OpInfo*, 128> t{};
  for (const OpInfo& info : kOps) t[uint8_t(info.op)] = &info;
  return t;
}
constexpr std::array<const OpInfo*, 128> kByCode = build_table();

// Which fields a format uses; unused fields must be zero in a canonical word.
struct FieldUse {
  bool rd, ra, b, rc, imm;
};
constexpr FieldUse uses(Format f) {
  switch (f) {
    case Format::None: return {false, false, false, false, false};
    case Format::Branch: return {false, false, false, false, true};
    case Format::BranchC: return {false, false, false, true, true};
    case Format::C: return {false, false, false, true, false};
    case Format::D: return {true, false, false, false, false};
    case Format::DSreg: return {true, false, false, false, true};
    case Format::DB: return {true, false, true, false, false};
    case Format::DA: return {true, true, false, false, false};
    case Format::DAB: return {true, true, true, false, false};
    case Format::DABC: return {true, true, true, true, false};
    case Format::Load: return {true, true, false, false, true};
    case Format::Store: return {false, true, false, true, true};
  }
  return {};
}

}  // namespace

const OpInfo* op_info(uint8_t opcode) { return opcode < 128 ? kByCode[opcode] : nullptr; }

const OpInfo* op_info_by_mnemonic(std::string_view name) {
  for (const OpInfo& info : kOps)
    if (info.mnemonic == name) return &info;
  return nullptr;
}

std::optional<std::string_view> sreg_name(uint32_t id) {
  for (const SregInfo& s : kSregs)
    if (s.id == id) return s.name;
  return std::nullopt;
}

std::optional<uint32_t> sreg_by_name(std::string_view name) {
  for (const SregInfo& s : kSregs)
    if (s.name == name) return s.id;
  return std::nullopt;
}

std::optional<Instr> decode(uint64_t word) {
  const Instr in = decode_fields(word);
  const OpInfo* info = op_info(uint8_t(in.op));
  if (!info) return std::nullopt;
  const FieldUse u = uses(info->format);
  if (!u.rd && in.rd) return std::nullopt;
  if (!u.ra && in.ra) return std::nullopt;
  if (!u.rc && in.rc) return std::nullopt;
  if (u.b) {
    if (in.imm_b ? in.rb != 0 : in.imm != 0) return std::nullopt;
  } else {
    if (in.imm_b || in.rb) return std::nullopt;
    if (!u.imm && in.imm) return std::nullopt;
  }
  if (info->format == Format::DSreg && !sreg_name(in.imm)) return std::nullopt;
  // Four-register groups must fit in the register file.
  if ((in.op == Op::Ld4 || in.op == Op::Ldu4) && in.rd > kNumRegs - 4) return std::nullopt;
  if (in.op == Op::St4 && in.rc > kNumRegs - 4) return std::nullopt;
  return in;
}

}  // namespace rplayer::isa
