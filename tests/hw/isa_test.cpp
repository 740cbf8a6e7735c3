// Assembler, disassembler and canonical decoding of the rpq ISA.
#include "hw/isa/isa.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "hw/isa/assembler.h"
#include "hw/isa/disassembler.h"

namespace rplayer::isa {
namespace {

std::vector<uint64_t> asm_ok(std::string_view src) {
  AsmResult r = assemble(src);
  for (const AsmError& e : r.errors) ADD_FAILURE() << "line " << e.line << ": " << e.message;
  return r.words;
}

uint64_t asm_one(std::string_view line) {
  const std::vector<uint64_t> w = asm_ok(line);
  EXPECT_EQ(w.size(), 1u) << line;
  return w.empty() ? 0 : w[0];
}

// The single error of a failing assembly.
AsmError asm_err(std::string_view src) {
  AsmResult r = assemble(src);
  EXPECT_FALSE(r.ok()) << src;
  EXPECT_TRUE(r.words.empty());
  EXPECT_EQ(r.errors.size(), 1u) << src;
  return r.errors.empty() ? AsmError{0, ""} : r.errors[0];
}

std::vector<const OpInfo*> all_ops() {
  std::vector<const OpInfo*> ops;
  for (int c = 0; c < 128; ++c)
    if (const OpInfo* i = op_info(uint8_t(c))) ops.push_back(i);
  return ops;
}

uint32_t fbits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

constexpr std::string_view kEveryOp = R"(
; every opcode and every special register
start:
    nop
    sreg r0, lane
    sreg r1, batch
    sreg r2, local_id
    sreg r3, wg_x
    sreg r4, wg_y
    sreg r5, wg_z
    sreg r6, num_wg_x
    sreg r7, num_wg_y
    sreg r8, num_wg_z
    sreg r9, wg_size
    sreg r10, qpu
    sreg r11, global_x
    unif r12
    mov r13, #0x1f
    mov r14, r13
    sel r15, r1, #-5, r2
    add r16, r1, r2
    sub r16, r1, #7
    mul r16, r1, r2
    mad r16, r1, #3, r2
    and r16, r1, #0xff
    or r16, r1, r2
    xor r16, r1, r2
    shl r16, r1, #2
    shr r16, r1, #2
    asr r16, r1, #2
    min r16, r1, r2
    max r16, r1, r2
    minu r16, r1, r2
    maxu r16, r1, r2
    divu r16, r1, r2
    remu r16, r1, #10
    ieq r17, r1, r2
    ine r17, r1, r2
    ilt r17, r1, #-1
    ile r17, r1, r2
    ult r17, r1, r2
    ule r17, r1, r2
    feq r17, r1, #1.5
    fne r17, r1, r2
    flt r17, r1, #-2e-3
    fle r17, r1, #inf
    fadd r18, r1, #0.1
    fsub r18, r1, r2
    fmul r18, r1, #-inf
    ffma r18, r1, #2.0, r3
    fmin r18, r1, #nan
    fmax r18, r1, #0x7fc00001
    fdiv r18, r1, #1e30
    fneg r19, r1
    fabs r19, r1
    ffloor r19, r1
    fceil r19, r1
    ftoi r19, r1
    itof r19, r1
    utof r19, r1
    f16lo r19, r1
    f16hi r19, r1
    ftof16 r19, r1
    fexp r20, r1
    flog r20, r1
    frcp r20, r1
    frsq r20, r1
    fsqrt r20, r1
    ftanh r20, r1
    ld r21, [r1 + 16]
    st [r1 - 4], r21
    ld4 r60, [r1]
    st4 [r1 + 0x40], r60
    ldu r22, [r63 + 4]
    ldu4 r24, [r1 - 2147483648]
    lds r23, [r1 + 4294967295]
    sts [r1], r23
loop: if r2
    else
    endif
    bany r2, loop
    ball r2, start
    bnone r2, done
    b #1000
    bar
done:
    end
)";

TEST(IsaAsm, RoundTripEveryOpcodeAndSreg) {
  const std::vector<uint64_t> words = asm_ok(kEveryOp);
  std::set<Op> ops;
  std::set<uint32_t> sregs;
  for (uint64_t w : words) {
    const auto in = decode(w);
    ASSERT_TRUE(in) << std::hex << w;
    ops.insert(in->op);
    if (in->op == Op::Sreg) sregs.insert(in->imm);
  }
  EXPECT_EQ(ops.size(), all_ops().size());
  for (uint32_t id = 0; sreg_name(id); ++id) EXPECT_TRUE(sregs.count(id)) << id;

  const std::string text = disassemble(words);
  const std::vector<uint64_t> again = asm_ok(text);
  EXPECT_EQ(again, words) << text;
  EXPECT_EQ(disassemble(again), text);
  // Branch targets inside the program are labeled; the far one stays an offset.
  EXPECT_NE(text.find("L0:\n"), std::string::npos) << text;
  EXPECT_NE(text.find("    b #1000\n"), std::string::npos) << text;
}

// A random canonical instruction of a random defined opcode.
Instr random_instr(std::mt19937& rng) {
  static const std::vector<const OpInfo*> ops = all_ops();
  auto pick = [&](uint32_t n) { return uint32_t(rng() % n); };
  static const uint32_t kFloats[] = {
      0,           0x80000000u, fbits(1.0f), fbits(-0.1f), 0x7f800000u, 0xff800000u,  0x7fc00000u,
      0xffc00000u, 0x7f800001u, 1,           0x807fffffu,  0x7f7fffffu, fbits(1e-10f)};
  const OpInfo* info = ops[pick(uint32_t(ops.size()))];
  Instr in;
  in.op = info->op;
  auto reg = [&] { return uint8_t(pick(64)); };
  auto b = [&] {
    in.imm_b = pick(2);
    if (!in.imm_b)
      in.rb = reg();
    else
      in.imm = pick(3) ? uint32_t(rng()) : kFloats[pick(std::size(kFloats))];
  };
  switch (info->format) {
    case Format::None:
      break;
    case Format::Branch:
      in.imm = pick(2) ? uint32_t(rng()) : uint32_t(int32_t(pick(21)) - 10);
      break;
    case Format::BranchC:
      in.rc = reg();
      in.imm = uint32_t(rng());
      break;
    case Format::C:
      in.rc = reg();
      break;
    case Format::D:
      in.rd = reg();
      break;
    case Format::DSreg:
      in.rd = reg();
      in.imm = pick(12);
      break;
    case Format::DB:
      in.rd = reg();
      b();
      break;
    case Format::DA:
      in.rd = reg();
      in.ra = reg();
      break;
    case Format::DAB:
      in.rd = reg();
      in.ra = reg();
      b();
      break;
    case Format::DABC:
      in.rd = reg();
      in.ra = reg();
      b();
      in.rc = reg();
      break;
    case Format::Load:
      in.rd = reg();
      in.ra = reg();
      in.imm = uint32_t(rng());
      break;
    case Format::Store:
      in.ra = reg();
      in.rc = reg();
      in.imm = uint32_t(rng());
      break;
  }
  if (in.op == Op::Ld4 || in.op == Op::Ldu4) in.rd %= 61;
  if (in.op == Op::St4) in.rc %= 61;
  return in;
}

TEST(IsaAsm, RandomInstructionsRoundTrip) {
  std::mt19937 rng(12345);
  std::vector<uint64_t> prog;
  for (int i = 0; i < 20000; ++i) {
    const Instr in = random_instr(rng);
    const uint64_t w = encode(in);
    ASSERT_EQ(decode(w), in) << std::hex << w;
    const std::string text = disassemble_one(w, uint32_t(i));
    ASSERT_EQ(asm_one(text), w) << text;
    prog.push_back(w);
  }
  // As a program, with labels for the short branches.
  EXPECT_EQ(asm_ok(disassemble(prog)), prog);
}

TEST(IsaAsm, RandomWordsRoundTripIncludingIllegal) {
  std::mt19937_64 rng(7);
  std::vector<uint64_t> prog;
  for (int i = 0; i < 5000; ++i) {
    uint64_t w = rng();
    if (i % 2) w &= 0x000000ff000000ffull;  // often legal: few fields set
    prog.push_back(w);
  }
  const std::string text = disassemble(prog);
  EXPECT_EQ(asm_ok(text), prog);
}

TEST(IsaDecode, RejectsNonCanonicalWords) {
  auto word = [](Instr in) { return encode(in); };
  const uint64_t add = word({Op::Add, false, 1, 2, 3, 0, 0});
  ASSERT_TRUE(decode(add));
  EXPECT_FALSE(decode(add | uint64_t{5} << 26)) << "rc unused by DAB";
  EXPECT_FALSE(decode(add | uint64_t{1} << 32)) << "imm with register b";
  EXPECT_FALSE(decode(word({Op::Add, true, 1, 2, 3, 0, 7}))) << "rb with I bit";
  EXPECT_TRUE(decode(word({Op::Add, true, 1, 2, 0, 0, 7})));
  EXPECT_FALSE(decode(word({Op::Nop, false, 1, 0, 0, 0, 0}))) << "rd unused by None";
  EXPECT_FALSE(decode(word({Op::End, false, 0, 0, 0, 0, 1}))) << "imm unused by None";
  EXPECT_FALSE(decode(word({Op::Fneg, true, 1, 2, 0, 0, 0}))) << "I bit on DA";
  EXPECT_FALSE(decode(word({Op::Ld, true, 1, 2, 0, 0, 0}))) << "I bit on Load";
  EXPECT_FALSE(decode(word({Op::Ld, false, 1, 2, 3, 0, 0}))) << "rb on Load";
  EXPECT_FALSE(decode(word({Op::B, false, 0, 1, 0, 0, 4}))) << "ra on Branch";
  EXPECT_FALSE(decode(word({Op::If, false, 0, 0, 0, 1, 4}))) << "imm on C";
  EXPECT_FALSE(decode(word({Op::Sreg, false, 1, 0, 0, 0, 12}))) << "undefined sreg";
  EXPECT_TRUE(decode(word({Op::Sreg, false, 1, 0, 0, 0, 11})));
  for (uint64_t opc : {0x0eull, 0x0full, 0x2aull, 0x37ull, 0x3cull, 0x43ull, 0x58ull, 0x7full})
    EXPECT_FALSE(decode(opc)) << "undefined opcode " << opc;
  EXPECT_FALSE(decode(word({Op::Ld4, false, 61, 1, 0, 0, 0})));
  EXPECT_FALSE(decode(word({Op::Ldu4, false, 63, 1, 0, 0, 0})));
  EXPECT_TRUE(decode(word({Op::Ld4, false, 60, 1, 0, 0, 0})));
  EXPECT_FALSE(decode(word({Op::St4, false, 0, 1, 0, 61, 0})));
  EXPECT_TRUE(decode(word({Op::St4, false, 0, 1, 0, 60, 0})));
}

TEST(IsaDisasm, FormatsOperands) {
  EXPECT_EQ(disassemble_one(asm_one("add r1, r2, #-1")), "add r1, r2, #0xffffffff");
  EXPECT_EQ(disassemble_one(asm_one("fadd r1, r2, #1")), "fadd r1, r2, #1e-45");
  EXPECT_EQ(disassemble_one(asm_one("fadd r1, r2, #1.0")), "fadd r1, r2, #1.0");
  EXPECT_EQ(disassemble_one(asm_one("fmul r1, r2, #-0.0")), "fmul r1, r2, #-0.0");
  EXPECT_EQ(disassemble_one(asm_one("ffma r1, r2, #0.1, r3")), "ffma r1, r2, #0.1, r3");
  EXPECT_EQ(disassemble_one(asm_one("flt r1, r2, #-inf")), "flt r1, r2, #-inf");
  EXPECT_EQ(disassemble_one(asm_one("fmax r1, r2, #nan")), "fmax r1, r2, #nan");
  EXPECT_EQ(disassemble_one(asm_one("fmax r1, r2, #0x7fc00001")), "fmax r1, r2, #0x7fc00001");
  EXPECT_EQ(disassemble_one(asm_one("fdiv r1, r2, #3e38")), "fdiv r1, r2, #3e+38");
  EXPECT_EQ(disassemble_one(asm_one("mov r1, #1.0")), "mov r1, #0x3f800000");
  EXPECT_EQ(disassemble_one(asm_one("ld r1, [r2]")), "ld r1, [r2]");
  EXPECT_EQ(disassemble_one(asm_one("ld r1, [r2 + 0x40]")), "ld r1, [r2 + 64]");
  EXPECT_EQ(disassemble_one(asm_one("st [r2 - 4], r3")), "st [r2 - 4], r3");
  EXPECT_EQ(disassemble_one(asm_one("sreg r5, global_x")), "sreg r5, global_x");
  EXPECT_EQ(disassemble_one(asm_one("bany r3, #-2"), 10), "bany r3, #-2  ; -> 8");
  EXPECT_EQ(disassemble_one(asm_one("b #-2"), 0), "b #-2");
  EXPECT_EQ(disassemble_one(0xffffffffffffffffull), ".word 0xffffffffffffffff  ; illegal");
  EXPECT_EQ(disassemble_one(0x0eull), ".word 0x000000000000000e  ; illegal");
}

TEST(IsaAsm, Immediates) {
  auto imm = [](std::string_view text) {
    const auto in = decode(asm_one("mov r1, " + std::string(text)));
    EXPECT_TRUE(in && in->imm_b) << text;
    return in ? in->imm : 0u;
  };
  EXPECT_EQ(imm("#123"), 123u);
  EXPECT_EQ(imm("#-5"), uint32_t(-5));
  EXPECT_EQ(imm("#0x1f"), 0x1fu);
  EXPECT_EQ(imm("#0X1E"), 0x1eu);  // hex containing 'E' is still an integer
  EXPECT_EQ(imm("#-0x10"), uint32_t(-16));
  EXPECT_EQ(imm("#4294967295"), 0xffffffffu);
  EXPECT_EQ(imm("#-2147483648"), 0x80000000u);
  EXPECT_EQ(imm("#1.5"), fbits(1.5f));
  EXPECT_EQ(imm("#-2e-3"), fbits(-2e-3f));
  EXPECT_EQ(imm("#1E3"), fbits(1000.0f));
  EXPECT_EQ(imm("#.5"), fbits(0.5f));
  EXPECT_EQ(imm("#inf"), 0x7f800000u);
  EXPECT_EQ(imm("#-inf"), 0xff800000u);
  EXPECT_EQ(imm("#nan"), 0x7fc00000u);
  EXPECT_EQ(imm("#-nan"), 0xffc00000u);
  EXPECT_EQ(imm("#-0.0"), 0x80000000u);
}

TEST(IsaAsm, MemoryOperands) {
  auto mem = [](std::string_view text) {
    const auto in = decode(asm_one("ld r1, " + std::string(text)));
    EXPECT_TRUE(in) << text;
    return in ? std::pair<int, uint32_t>(in->ra, in->imm) : std::pair<int, uint32_t>();
  };
  EXPECT_EQ(mem("[r3 + 16]"), std::make_pair(3, 16u));
  EXPECT_EQ(mem("[r3 - 4]"), std::make_pair(3, uint32_t(-4)));
  EXPECT_EQ(mem("[r3]"), std::make_pair(3, 0u));
  EXPECT_EQ(mem("[ r3+0x40 ]"), std::make_pair(3, 0x40u));
  EXPECT_EQ(mem("[r63 + #8]"), std::make_pair(63, 8u));
  const auto st = decode(asm_one("st4 [r2 + 32], r60"));
  ASSERT_TRUE(st);
  EXPECT_EQ(st->ra, 2);
  EXPECT_EQ(st->rc, 60);
  EXPECT_EQ(st->imm, 32u);
}

TEST(IsaAsm, LabelsForwardAndBackward) {
  const std::vector<uint64_t> w = asm_ok(R"(
top:            ; index 0
    nop
    bany r1, fwd    ; 1 -> 4
back: mid:  nop     ; 2, two labels on one instruction
    b top           ; 3 -> 0
fwd:
    ball r2, back   ; 4 -> 2
    bnone r3, mid   ; 5 -> 2
    b end_          ; 6 -> 7 (end of program)
end_:
)");
  ASSERT_EQ(w.size(), 7u);
  auto off = [&](int i) { return int32_t(decode(w[i])->imm); };
  EXPECT_EQ(off(1), 3);
  EXPECT_EQ(off(3), -3);
  EXPECT_EQ(off(4), -2);
  EXPECT_EQ(off(5), -3);
  EXPECT_EQ(off(6), 1);
  EXPECT_EQ(decode(w[1])->rc, 1);
  // Numeric offsets are taken as they are.
  EXPECT_EQ(asm_one("b #-7"), encode({Op::B, false, 0, 0, 0, 0, uint32_t(-7)}));
  EXPECT_EQ(asm_one("b #0"), encode({Op::B, false, 0, 0, 0, 0, 0}));
  const std::string text = disassemble(w);
  EXPECT_EQ(asm_ok(text), w);
  EXPECT_NE(text.find("L7:\n"), std::string::npos) << text;
}

TEST(IsaAsm, CommentsBlankLinesAndWhitespace) {
  EXPECT_EQ(asm_ok("; only a comment\n\n   \n\tadd\tr1 ,r2,  r3 ; trailing\r\nend\n"),
            (std::vector<uint64_t>{encode({Op::Add, false, 1, 2, 3, 0, 0}), 0x01}));
  EXPECT_TRUE(asm_ok("").empty());
  EXPECT_EQ(asm_ok("end"), std::vector<uint64_t>{0x01});  // no trailing newline
}

TEST(IsaAsm, WordDirective) {
  EXPECT_EQ(asm_one(".word 0x0123456789abcdef"), 0x0123456789abcdefull);
  EXPECT_EQ(asm_one(".word 18446744073709551615"), ~uint64_t{0});
  // Illegal on purpose: decode rejects it, the assembler passes it through.
  const uint64_t w = asm_one(".word 0x3c");
  EXPECT_FALSE(decode(w));
  EXPECT_EQ(asm_one(disassemble_one(w)), w);
}

TEST(IsaAsm, ErrorsCarryLineNumbers) {
  struct Case {
    std::string_view src;
    int line;
    std::string_view needle;
  };
  const Case cases[] = {
      {"nop\nfrob r1, r2\n", 2, "unknown mnemonic 'frob'"},
      {"nop\n.frob 1\n", 2, "unknown directive"},
      {"add r1, r2\n", 1, "expects 3 operand"},
      {"nop\n\nend r1\n", 3, "expects 0 operand"},
      {"add r1, r2, r3, r4", 1, "expects 3"},
      {"add r1,, r3", 1, "empty operand"},
      {"add #1, r2, r3", 1, "expected a register"},
      {"fneg r1, #2", 1, "expected a register"},
      {"ld r1, r2", 1, "expected a memory operand"},
      {"ld r1, [r2 * 4]", 1, "expected a register"},
      {"ld r1, [r2 + x]", 1, "malformed memory offset"},
      {"st r1, [r2]", 1, "expected a memory operand"},
      {"b r1", 1, "undefined label 'r1'"},
      {"bany r1, 5", 1, "expected a label or #offset"},
      {"add r64, r1, r2", 1, "register out of range"},
      {"nop\nmov r1, r99999999999999999999", 2, "register out of range"},
      {"b nowhere", 1, "undefined label 'nowhere'"},
      {"x:\nnop\nx: nop", 3, "duplicate label 'x' (first defined on line 1)"},
      {"1x: nop", 1, "invalid label name"},
      {"mov r1, #4294967296", 1, "out of 32-bit range"},
      {"mov r1, #-2147483649", 1, "out of 32-bit range"},
      {"mov r1, #0x100000000", 1, "out of 32-bit range"},
      {"mov r1, #99999999999999999999999", 1, "out of 32-bit range"},
      {"ld r1, [r2 + 0x100000000]", 1, "out of 32-bit range"},
      {"ld r1, [r2 - 2147483649]", 1, "out of 32-bit range"},
      {"b #4294967296", 1, "out of 32-bit range"},
      {"mov r1, #1e39", 1, "out of fp32 range"},
      {"mov r1, #1.5x", 1, "malformed float"},
      {"mov r1, #12ab", 1, "malformed number"},
      {"mov r1, #", 1, "malformed number"},
      {"ld4 r61, [r1]", 1, "rd must be <= r60"},
      {"ldu4 r63, [r1]", 1, "rd must be <= r60"},
      {"st4 [r1], r61", 1, "rc must be <= r60"},
      {"sreg r1, warp", 1, "unknown special register 'warp'"},
      {".word 0x10000000000000000", 1, "out of range"},
      {".word 1, 2", 1, "expects 1 operand"},
  };
  for (const Case& c : cases) {
    const AsmError e = asm_err(c.src);
    EXPECT_EQ(e.line, c.line) << c.src;
    EXPECT_NE(e.message.find(c.needle), std::string::npos) << c.src << " -> " << e.message;
  }
}

TEST(IsaAsm, ReportsEveryErrorInLineOrder) {
  const AsmResult r = assemble("b later_missing\nfoo\nnop\nadd r1\n");
  ASSERT_EQ(r.errors.size(), 3u);
  EXPECT_EQ(r.errors[0].line, 1);
  EXPECT_EQ(r.errors[1].line, 2);
  EXPECT_EQ(r.errors[2].line, 4);
  EXPECT_TRUE(r.words.empty());
}

TEST(IsaBytes, LittleEndianRoundTrip) {
  const std::vector<uint64_t> words = {0x0807060504030201ull, 0xffull, 0};
  const std::vector<uint8_t> bytes = to_bytes(words);
  ASSERT_EQ(bytes.size(), 24u);
  EXPECT_EQ(bytes[0], 0x01);
  EXPECT_EQ(bytes[7], 0x08);
  EXPECT_EQ(bytes[8], 0xff);
  EXPECT_EQ(bytes[9], 0x00);
  EXPECT_EQ(from_bytes(bytes), words);
  EXPECT_EQ(from_bytes(std::span<const uint8_t>()), std::vector<uint64_t>{});
  EXPECT_FALSE(from_bytes(std::span<const uint8_t>(bytes.data(), 23)));
  EXPECT_FALSE(from_bytes(std::span<const uint8_t>(bytes.data(), 1)));
}

}  // namespace
}  // namespace rplayer::isa
