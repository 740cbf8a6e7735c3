// The QPU instruction set of the modeled GPU ("rpq", rplayer QPU ISA).
//
// A QPU thread executes 16 lanes in lock step. Every instruction is one 64-bit
// little-endian word:
//
//   bits  0..6   opcode
//   bit   7      I: operand b is the 32-bit immediate instead of register rb
//   bits  8..13  rd   destination register
//   bits 14..19  ra   first source register
//   bits 20..25  rb   second source register (unused when I is set)
//   bits 26..31  rc   third source register (store data, fma addend, condition)
//   bits 32..63  imm  immediate: operand b (I set), memory offset, branch offset
//                     (in instructions, relative to the branch itself), special
//                     register id
//
// Field layout and semantics are specified in docs/isa.md; this header is the
// single source of truth for the encoding, shared by the assembler, the
// disassembler and the interpreter.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace rplayer::isa {

inline constexpr int kLanes = 16;
inline constexpr int kNumRegs = 64;
inline constexpr int kMaskStackDepth = 16;
inline constexpr int kInstrBytes = 8;

// Operand formats, which the assembler and disassembler follow.
enum class Format : uint8_t {
  None,      // op
  Branch,    // op label            (imm = offset)
  BranchC,   // op rc, label
  C,         // op rc
  D,         // op rd
  DSreg,     // op rd, sreg-name    (imm = Sreg)
  DB,        // op rd, b            (b = rb or #imm)
  DA,        // op rd, ra
  DAB,       // op rd, ra, b
  DABC,      // op rd, ra, b, rc
  Load,      // op rd, [ra + imm]
  Store,     // op [ra + imm], rc
};

// X(name, mnemonic, opcode, format)
#define RPLAYER_ISA_OPCODES(X)                      \
  /* control */                                     \
  X(Nop, "nop", 0x00, None)                         \
  X(End, "end", 0x01, None)                         \
  X(Bar, "bar", 0x02, None)                         \
  X(B, "b", 0x03, Branch)                           \
  X(Bany, "bany", 0x04, BranchC)                    \
  X(Ball, "ball", 0x05, BranchC)                    \
  X(Bnone, "bnone", 0x06, BranchC)                  \
  X(If, "if", 0x07, C)                              \
  X(Else, "else", 0x08, None)                       \
  X(Endif, "endif", 0x09, None)                     \
  X(Unif, "unif", 0x0a, D)                          \
  X(Sreg, "sreg", 0x0b, DSreg)                      \
  X(Mov, "mov", 0x0c, DB)                           \
  X(Sel, "sel", 0x0d, DABC)                         \
  /* integer */                                     \
  X(Add, "add", 0x10, DAB)                          \
  X(Sub, "sub", 0x11, DAB)                          \
  X(Mul, "mul", 0x12, DAB)                          \
  X(Mad, "mad", 0x13, DABC)                         \
  X(And, "and", 0x14, DAB)                          \
  X(Or, "or", 0x15, DAB)                            \
  X(Xor, "xor", 0x16, DAB)                          \
  X(Shl, "shl", 0x17, DAB)                          \
  X(Shr, "shr", 0x18, DAB)                          \
  X(Asr, "asr", 0x19, DAB)                          \
  X(Min, "min", 0x1a, DAB)                          \
  X(Max, "max", 0x1b, DAB)                          \
  X(Minu, "minu", 0x1c, DAB)                        \
  X(Maxu, "maxu", 0x1d, DAB)                        \
  X(Divu, "divu", 0x1e, DAB)                        \
  X(Remu, "remu", 0x1f, DAB)                        \
  /* comparisons: 1 if true, else 0 */              \
  X(Ieq, "ieq", 0x20, DAB)                          \
  X(Ine, "ine", 0x21, DAB)                          \
  X(Ilt, "ilt", 0x22, DAB)                          \
  X(Ile, "ile", 0x23, DAB)                          \
  X(Ult, "ult", 0x24, DAB)                          \
  X(Ule, "ule", 0x25, DAB)                          \
  X(Feq, "feq", 0x26, DAB)                          \
  X(Fne, "fne", 0x27, DAB)                          \
  X(Flt, "flt", 0x28, DAB)                          \
  X(Fle, "fle", 0x29, DAB)                          \
  /* float */                                       \
  X(Fadd, "fadd", 0x30, DAB)                        \
  X(Fsub, "fsub", 0x31, DAB)                        \
  X(Fmul, "fmul", 0x32, DAB)                        \
  X(Ffma, "ffma", 0x33, DABC)                       \
  X(Fmin, "fmin", 0x34, DAB)                        \
  X(Fmax, "fmax", 0x35, DAB)                        \
  X(Fdiv, "fdiv", 0x36, DAB)                        \
  X(Fneg, "fneg", 0x38, DA)                         \
  X(Fabs, "fabs", 0x39, DA)                         \
  X(Ffloor, "ffloor", 0x3a, DA)                     \
  X(Fceil, "fceil", 0x3b, DA)                       \
  X(Ftoi, "ftoi", 0x3d, DA)                         \
  X(Itof, "itof", 0x3e, DA)                         \
  X(Utof, "utof", 0x3f, DA)                         \
  X(F16lo, "f16lo", 0x40, DA)                       \
  X(F16hi, "f16hi", 0x41, DA)                       \
  X(Ftof16, "ftof16", 0x42, DA)                     \
  /* special function unit */                       \
  X(Fexp, "fexp", 0x48, DA)                         \
  X(Flog, "flog", 0x49, DA)                         \
  X(Frcp, "frcp", 0x4a, DA)                         \
  X(Frsq, "frsq", 0x4b, DA)                         \
  X(Fsqrt, "fsqrt", 0x4c, DA)                       \
  X(Ftanh, "ftanh", 0x4d, DA)                       \
  /* memory (addresses are GPU virtual, bytes) */   \
  X(Ld, "ld", 0x50, Load)                           \
  X(St, "st", 0x51, Store)                          \
  X(Ld4, "ld4", 0x52, Load)                         \
  X(St4, "st4", 0x53, Store)                        \
  X(Ldu, "ldu", 0x54, Load)                         \
  X(Ldu4, "ldu4", 0x55, Load)                       \
  X(Lds, "lds", 0x56, Load)                         \
  X(Sts, "sts", 0x57, Store)

enum class Op : uint8_t {
#define RPLAYER_ISA_ENUM(name, mnem, code, fmt) name = code,
  RPLAYER_ISA_OPCODES(RPLAYER_ISA_ENUM)
#undef RPLAYER_ISA_ENUM
};

// Special registers readable with `sreg rd, NAME` (imm = id).
// X(name, mnemonic, id)
#define RPLAYER_ISA_SREGS(X)   \
  X(Lane, "lane", 0)           \
  X(Batch, "batch", 1)         \
  X(LocalId, "local_id", 2)    \
  X(WgX, "wg_x", 3)            \
  X(WgY, "wg_y", 4)            \
  X(WgZ, "wg_z", 5)            \
  X(NumWgX, "num_wg_x", 6)     \
  X(NumWgY, "num_wg_y", 7)     \
  X(NumWgZ, "num_wg_z", 8)     \
  X(WgSize, "wg_size", 9)      \
  X(Qpu, "qpu", 10)            \
  X(GlobalX, "global_x", 11)

enum class Sreg : uint32_t {
#define RPLAYER_ISA_SREG_ENUM(name, mnem, id) name = id,
  RPLAYER_ISA_SREGS(RPLAYER_ISA_SREG_ENUM)
#undef RPLAYER_ISA_SREG_ENUM
};

struct OpInfo {
  Op op;
  std::string_view mnemonic;
  Format format;
};

// Lookup tables generated from RPLAYER_ISA_OPCODES.
const OpInfo* op_info(uint8_t opcode);                    // nullptr if undefined
const OpInfo* op_info_by_mnemonic(std::string_view name);  // nullptr if unknown
std::optional<std::string_view> sreg_name(uint32_t id);
std::optional<uint32_t> sreg_by_name(std::string_view name);

struct Instr {
  Op op = Op::Nop;
  bool imm_b = false;  // I bit
  uint8_t rd = 0, ra = 0, rb = 0, rc = 0;
  uint32_t imm = 0;

  friend bool operator==(const Instr&, const Instr&) = default;
};

constexpr uint64_t encode(const Instr& in) {
  return uint64_t(uint8_t(in.op) & 0x7f) | (uint64_t(in.imm_b) << 7) |
         (uint64_t(in.rd & 63) << 8) | (uint64_t(in.ra & 63) << 14) |
         (uint64_t(in.rb & 63) << 20) | (uint64_t(in.rc & 63) << 26) |
         (uint64_t(in.imm) << 32);
}

// Raw field extraction; validity of the opcode is checked with op_info().
constexpr Instr decode_fields(uint64_t w) {
  Instr in;
  in.op = Op(w & 0x7f);
  in.imm_b = (w >> 7) & 1;
  in.rd = (w >> 8) & 63;
  in.ra = (w >> 14) & 63;
  in.rb = (w >> 20) & 63;
  in.rc = (w >> 26) & 63;
  in.imm = uint32_t(w >> 32);
  return in;
}

// Decodes and validates (defined opcode). nullopt for an illegal word.
std::optional<Instr> decode(uint64_t word);

}  // namespace rplayer::isa
