// The kernel IR: what KernelBuilder produces and the JIT compiles.
//
// A kernel is a flat list of instructions over virtual registers (vregs), with structured
// control flow written as matching markers (IfBegin/Else/IfEnd, ForBegin/ForEnd,
// WhileBegin/WhileTest/WhileEnd). Flat lists keep the passes simple: a position is an
// index, a region is an index range, cloning a loop body is copying a range.
//
// Vregs are either temporaries (defined once, immutable) or variables (Var: assigned any
// number of times, in place). A vreg is 1 or 4 registers wide; 4-wide vregs hold the
// results of ld4/ldu4 and the data of st4. Operands name a vreg (a component of it, or all
// of it), an immediate, a specialization constant or a shared-memory region; the last two
// become immediates when the kernel is compiled.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hw/isa/isa.h"

namespace rplayer::runtime::jit {

enum class Type : uint8_t { I32, U32, F32, Bool };
const char* type_name(Type t);

// The first two operands may be swapped without changing the result (add, mul, ffma's
// and mad's factors, ...): passes and lowering move immediates to the second one.
bool first_operands_commute(isa::Op op);

inline constexpr uint32_t kNoVReg = 0xffffffffu;
inline constexpr uint8_t kWhole = 0xff;  // operand or destination covers all 4 components

struct Operand {
  enum class Kind : uint8_t { None, Reg, Imm, Spec, Shared };
  Kind kind = Kind::None;
  uint8_t comp = 0;  // Reg: component 0..3, or kWhole for a whole 4-wide vreg
  uint32_t v = 0;    // vreg id, immediate bits, spec constant index or shared region index

  static Operand reg(uint32_t vreg, uint8_t comp = 0) { return {Kind::Reg, comp, vreg}; }
  static Operand imm(uint32_t bits) { return {Kind::Imm, 0, bits}; }
  bool is_reg() const { return kind == Kind::Reg; }
  bool is_imm() const { return kind == Kind::Imm; }
  bool none() const { return kind == Kind::None; }
  friend bool operator==(const Operand&, const Operand&) = default;
};

enum class InstKind : uint8_t {
  Nop,    // deleted by a pass
  Alu,    // dst = op(a, b, c); Mov copies a
  Param,  // dst = kernel parameter `imm` (one word of the uniform stream)
  Sreg,   // dst = special register `imm` (isa::Sreg)
  Load,   // dst = op(address a + imm): Ld, Ld4, Ldu, Ldu4, Lds
  Store,  // op(address a + imm) = c: St, St4, Sts
  Barrier,
  IfBegin,  // a = condition; `uniform`: all active lanes agree, so branch instead of mask
  Else,
  IfEnd,
  ForBegin,  // dst = induction variable; a = begin, b = end, c = step; imm = unroll hint
  ForEnd,
  WhileBegin,  // lane-divergent loop: [cond insts] WhileTest [body] WhileEnd
  WhileTest,   // a = condition; lanes where it is 0 leave the loop
  WhileEnd,
};
const char* inst_kind_name(InstKind k);

// Unroll hints for ForBegin.imm.
inline constexpr int32_t kNoUnroll = 0;
inline constexpr int32_t kFullUnroll = -1;

struct Inst {
  InstKind kind = InstKind::Nop;
  isa::Op op = isa::Op::Nop;
  Type type = Type::U32;  // result type (Alu, Load), data type (Store)
  bool uniform = false;   // IfBegin: branch on a uniform condition
  uint8_t dst_comp = 0;   // component written, or kWhole
  uint32_t dst = kNoVReg;
  Operand a, b, c;
  int32_t imm = 0;  // memory offset, param index, sreg id, unroll hint
};

struct VRegInfo {
  Type type = Type::U32;
  uint8_t width = 1;     // 1 or 4 registers
  bool is_var = false;   // assigned in place (Var), else defined once
  bool uniform = false;  // the same in every active lane
};

enum class ParamKind : uint8_t { Buffer, Scalar };
struct ParamDecl {
  std::string name;
  ParamKind kind = ParamKind::Scalar;
  Type type = Type::U32;
};

struct SpecDecl {
  std::string name;
  Type type = Type::U32;
  uint32_t default_bits = 0;
};

// Shared memory: regions are laid out in declaration order, 16-byte aligned; a region's
// size may grow with the workgroup size, which the compiler picks.
struct SharedDecl {
  uint32_t fixed_bytes = 0;
  uint32_t bytes_per_invocation = 0;
};

enum class WorkgroupMode : uint8_t {
  Auto,   // the compiler picks for the SKU: 16 lanes x QPUs per slice, shrunk to fit shared
  Max,    // the largest size (<= 256) whose shared memory fits the SKU
  Fixed,  // exactly `size`
};

struct Kernel {
  std::string name;
  std::vector<ParamDecl> params;
  std::vector<SpecDecl> specs;
  std::vector<SharedDecl> shared;
  WorkgroupMode wg_mode = WorkgroupMode::Auto;
  uint32_t wg_size = 0;  // Fixed only
  std::vector<VRegInfo> vregs;
  std::vector<Inst> insts;

  // Stable across runs and hosts: a function of the IR only (FNV-1a over a canonical
  // serialization).
  uint64_t hash() const;
  // Human-readable listing for tests and error messages.
  std::string dump() const;
};

std::string operand_str(const Operand& o);
std::string inst_str(const Kernel& k, const Inst& in);

}  // namespace rplayer::runtime::jit
