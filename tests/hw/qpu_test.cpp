// QPU interpreter (hw/gpu/qpu.cpp) against the rpq ISA semantics: every op, exec mask,
// branches, uniforms, memory incl. faults and page crossings, shared memory + barriers,
// errors, stop, the modeled instruction cache and the cycle counters.
#include "hw/gpu/qpu.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "hw/isa/isa.h"

namespace rplayer::hw {
namespace {

using isa::Op;
using isa::Sreg;
using Row = std::array<uint32_t, 16>;

constexpr uint32_t kPage = 4096;

uint32_t fbits(float f) { return std::bit_cast<uint32_t>(f); }
float bitsf(uint32_t u) { return std::bit_cast<float>(u); }

// Identity-mapped memory of whole pages with per-page permissions and a settable generation.
class FlatMemory : public GpuMemory {
 public:
  enum Perm : uint8_t { kNone = 0, kRead = 1, kWrite = 2, kExec = 4, kUnif = 8, kAll = 15 };

  explicit FlatMemory(uint32_t pages) : data_(size_t(pages) * kPage), perm_(pages, kAll) {}

  uint8_t* page(uint32_t va_page, GpuAccess access) override {
    calls[int(access)].fetch_add(1, std::memory_order_relaxed);
    if (va_page >= perm_.size()) return nullptr;
    const uint8_t need = access == GpuAccess::Read    ? kRead
                         : access == GpuAccess::Write ? kWrite
                         : access == GpuAccess::Exec  ? kExec
                                                      : kUnif;
    if (!(perm_[va_page] & need)) return nullptr;
    const uint32_t backing = remap_.empty() ? va_page : remap_[va_page];
    return data_.data() + size_t(backing) * kPage;
  }
  uint64_t generation() const override { return gen_; }

  void bump() { ++gen_; }
  void set_perm(uint32_t va_page, uint8_t perm) { perm_[va_page] = perm; }
  // Makes VA page `va_page` show physical page `backing`.
  void remap(uint32_t va_page, uint32_t backing) {
    if (remap_.empty())
      for (uint32_t i = 0; i < perm_.size(); ++i) remap_.push_back(i);
    remap_[va_page] = backing;
  }

  uint32_t u32(uint32_t addr) const {
    uint32_t v;
    std::memcpy(&v, data_.data() + addr, 4);
    return v;
  }
  void set_u32(uint32_t addr, uint32_t v) { std::memcpy(data_.data() + addr, &v, 4); }
  void set_words(uint32_t addr, const std::vector<uint64_t>& w) {
    std::memcpy(data_.data() + addr, w.data(), w.size() * 8);
  }
  void set_row(uint32_t addr, const Row& r) {
    for (int l = 0; l < 16; ++l) set_u32(addr + 4 * l, r[l]);
  }
  Row row(uint32_t addr) const {
    Row r;
    for (int l = 0; l < 16; ++l) r[l] = u32(addr + 4 * l);
    return r;
  }
  void fill(uint32_t addr, uint32_t bytes, uint8_t v) {
    std::memset(data_.data() + addr, v, bytes);
  }

  // page() calls per GpuAccess kind (atomic: tests share the memory between threads).
  std::atomic<uint64_t> calls[4] = {};

 private:
  std::vector<uint8_t> data_;
  std::vector<uint8_t> perm_;
  std::vector<uint32_t> remap_;
  uint64_t gen_ = 1;
};

// Tiny program builder on isa::encode, with forward-branch patching.
class Prog {
 public:
  size_t pc() const { return w_.size(); }
  const std::vector<uint64_t>& words() const { return w_; }

  void emit(Op op, int rd, int ra, int rb, int rc, uint32_t imm, bool imm_b) {
    isa::Instr in;
    in.op = op;
    in.imm_b = imm_b;
    in.rd = uint8_t(rd);
    in.ra = uint8_t(ra);
    in.rb = uint8_t(rb);
    in.rc = uint8_t(rc);
    in.imm = imm;
    w_.push_back(isa::encode(in));
  }
  void raw(uint64_t word) { w_.push_back(word); }
  void op0(Op op) { emit(op, 0, 0, 0, 0, 0, false); }
  void rr(Op op, int d, int a) { emit(op, d, a, 0, 0, 0, false); }
  void rrr(Op op, int d, int a, int b) { emit(op, d, a, b, 0, 0, false); }
  void rri(Op op, int d, int a, uint32_t imm) { emit(op, d, a, 0, 0, imm, true); }
  void rrrr(Op op, int d, int a, int b, int c) { emit(op, d, a, b, c, 0, false); }
  void rrir(Op op, int d, int a, uint32_t imm, int c) { emit(op, d, a, 0, c, imm, true); }
  void mov(int d, int b) { emit(Op::Mov, d, 0, b, 0, 0, false); }
  void movi(int d, uint32_t imm) { emit(Op::Mov, d, 0, 0, 0, imm, true); }
  void movf(int d, float f) { movi(d, fbits(f)); }
  void sreg(int d, Sreg s) { emit(Op::Sreg, d, 0, 0, 0, uint32_t(s), false); }
  void unif(int d) { emit(Op::Unif, d, 0, 0, 0, 0, false); }
  void load(Op op, int d, int a, uint32_t off) { emit(op, d, a, 0, 0, off, false); }
  void store(Op op, int a, uint32_t off, int c) { emit(op, 0, a, 0, c, off, false); }
  void if_(int c) { emit(Op::If, 0, 0, 0, c, 0, false); }
  void else_() { op0(Op::Else); }
  void endif() { op0(Op::Endif); }
  void bar() { op0(Op::Bar); }
  void end() { op0(Op::End); }
  // Branch to an already known instruction index.
  void branch(Op op, int c, size_t target) {
    emit(op, 0, 0, 0, c, uint32_t(int32_t(target) - int32_t(pc())), false);
  }
  // Forward branch: returns a handle for bind().
  size_t branch_fwd(Op op, int c) {
    emit(op, 0, 0, 0, c, 0, false);
    return pc() - 1;
  }
  void bind(size_t handle) {
    isa::Instr in = isa::decode_fields(w_[handle]);
    in.imm = uint32_t(int32_t(pc()) - int32_t(handle));
    w_[handle] = isa::encode(in);
  }
  // r0 = lane * 4 (byte offset of the lane's word in a row).
  void lane_offset(int d = 0) {
    sreg(d, Sreg::Lane);
    rri(Op::Shl, d, d, 2);
  }

 private:
  std::vector<uint64_t> w_;
};

// An illegal word: opcode 0x7f is undefined.
constexpr uint64_t kIllegal = 0x7f;

constexpr uint32_t kCode = 0x1000;  // pages 1..3
constexpr uint32_t kUnif = 0x8000;  // page 8
constexpr uint32_t kA = 0x10000;    // input rows
constexpr uint32_t kB = 0x10100;
constexpr uint32_t kC = 0x10200;
constexpr uint32_t kOut = 0x20000;  // output area (pages 32..)
constexpr uint32_t kPages = 64;

class QpuTest : public ::testing::Test {
 protected:
  QpuResult run(const Prog& p, uint32_t x = 0, uint32_t y = 0, uint32_t z = 0, uint32_t qpu = 0) {
    mem.set_words(kCode, p.words());
    mem.bump();  // new code: drop decoded copies (as the driver's cache flush would)
    params.shader_va = kCode;
    params.uniforms_va = kUnif;
    return ctx.run_workgroup(params, x, y, z, qpu, mem, stop, counters);
  }
  void run_ok(const Prog& p) { ASSERT_EQ(run(p), QpuResult::Done); }

  FlatMemory mem{kPages};
  DispatchParams params;
  QpuContext ctx;
  QpuCounters counters;
  std::atomic<bool> stop{false};
};

// ---------------------------------------------------------------------------------------------
// ALU ops: one instruction on 16 lanes of operands loaded from rows A, B, C.

class AluTest : public QpuTest {
 protected:
  // Runs `op r4, r1, (r2 | #imm), r3` (fields as the op's format uses them) and returns r4.
  Row exec(Op op, const Row& a, const Row& b, const Row& c = {},
           std::optional<uint32_t> imm = std::nullopt) {
    const isa::Format f = isa::op_info(uint8_t(op))->format;
    Prog p;
    p.lane_offset();
    p.load(Op::Ld, 1, 0, kA);
    p.load(Op::Ld, 2, 0, kB);
    p.load(Op::Ld, 3, 0, kC);
    const bool uses_a = f == isa::Format::DA || f == isa::Format::DAB || f == isa::Format::DABC;
    const bool uses_c = f == isa::Format::DABC;
    const bool uses_b = f != isa::Format::DA;
    p.emit(op, 4, uses_a ? 1 : 0, uses_b && !imm ? 2 : 0, uses_c ? 3 : 0, imm.value_or(0),
           imm.has_value());
    p.store(Op::St, 0, kOut, 4);
    p.end();
    mem.set_row(kA, a);
    mem.set_row(kB, b);
    mem.set_row(kC, c);
    mem.fill(kOut, 64, 0xcc);
    EXPECT_EQ(run(p), QpuResult::Done);
    return mem.row(kOut);
  }

  // Checks op against `ref` on the given rows, in register form and in immediate form for
  // each lane's b value taken as the immediate (rows fixed to that b).
  void check(Op op, const Row& a, const Row& b, const Row& c,
             const std::function<uint32_t(uint32_t, uint32_t, uint32_t)>& ref,
             bool nan_any = false) {
    const Row got = exec(op, a, b, c);
    for (int l = 0; l < 16; ++l)
      expect_lane(op, "reg", l, a[l], b[l], got[l], ref(a[l], b[l], c[l]), nan_any);
    const isa::Format f = isa::op_info(uint8_t(op))->format;
    if (f == isa::Format::DAB || f == isa::Format::DABC || f == isa::Format::DB) {
      for (int k = 0; k < 16; k += 5) {
        const Row gi = exec(op, a, Row{}, c, b[k]);
        for (int l = 0; l < 16; ++l)
          expect_lane(op, "imm", l, a[l], b[k], gi[l], ref(a[l], b[k], c[l]), nan_any);
      }
    }
  }

  static void expect_lane(Op op, const char* form, int l, uint32_t a, uint32_t b, uint32_t got,
                          uint32_t want, bool nan_any) {
    if (nan_any && std::isnan(bitsf(got)) && std::isnan(bitsf(want))) return;
    EXPECT_EQ(got, want) << isa::op_info(uint8_t(op))->mnemonic << " (" << form << ") lane " << l
                         << " a=0x" << std::hex << a << " b=0x" << b;
  }
};

const Row kIntA = {0,  1,  2,  0xffffffffu, 0x80000000u, 0x7fffffffu, 12345,       0xdeadbeefu,
                   31, 32, 33, 64,          7,           100,         0xfffffff0u, 5};
const Row kIntB = {0,  1,  0xffffffffu, 2,           0xffffffffu, 1,  0,           31,
                   32, 33, 63,          0x80000000u, 7,           13, 0xfffffff0u, 0x10000};
const Row kIntC = {5, 6, 7, 8, 9, 10, 11, 12, 0xffffffffu, 1, 2, 3, 0x80000000u, 4, 5, 6};

int32_t s32(uint32_t v) { return int32_t(v); }

TEST_F(AluTest, IntegerArithmetic) {
  using F = std::function<uint32_t(uint32_t, uint32_t, uint32_t)>;
  const std::vector<std::pair<Op, F>> cases = {
      {Op::Add, [](uint32_t a, uint32_t b, uint32_t) { return a + b; }},
      {Op::Sub, [](uint32_t a, uint32_t b, uint32_t) { return a - b; }},
      {Op::Mul, [](uint32_t a, uint32_t b, uint32_t) { return a * b; }},
      {Op::Mad, [](uint32_t a, uint32_t b, uint32_t c) { return a * b + c; }},
      {Op::And, [](uint32_t a, uint32_t b, uint32_t) { return a & b; }},
      {Op::Or, [](uint32_t a, uint32_t b, uint32_t) { return a | b; }},
      {Op::Xor, [](uint32_t a, uint32_t b, uint32_t) { return a ^ b; }},
      {Op::Shl, [](uint32_t a, uint32_t b, uint32_t) { return a << (b & 31); }},
      {Op::Shr, [](uint32_t a, uint32_t b, uint32_t) { return a >> (b & 31); }},
      {Op::Asr, [](uint32_t a, uint32_t b, uint32_t) { return uint32_t(s32(a) >> (b & 31)); }},
      {Op::Min, [](uint32_t a, uint32_t b, uint32_t) { return s32(a) < s32(b) ? a : b; }},
      {Op::Max, [](uint32_t a, uint32_t b, uint32_t) { return s32(a) > s32(b) ? a : b; }},
      {Op::Minu, [](uint32_t a, uint32_t b, uint32_t) { return std::min(a, b); }},
      {Op::Maxu, [](uint32_t a, uint32_t b, uint32_t) { return std::max(a, b); }},
      {Op::Divu, [](uint32_t a, uint32_t b, uint32_t) { return b ? a / b : 0xffffffffu; }},
      {Op::Remu, [](uint32_t a, uint32_t b, uint32_t) { return b ? a % b : a; }},
      {Op::Mov, [](uint32_t, uint32_t b, uint32_t) { return b; }},
      {Op::Sel, [](uint32_t a, uint32_t b, uint32_t c) { return c ? a : b; }},
  };
  for (const auto& [op, ref] : cases) check(op, kIntA, kIntB, kIntC, ref);
}

TEST_F(AluTest, EdgeCasesSpelledOut) {
  // divu/remu by zero, shift counts >= 32 use only the low 5 bits.
  EXPECT_EQ(exec(Op::Divu, Row{7}, Row{0})[0], 0xffffffffu);
  EXPECT_EQ(exec(Op::Remu, Row{7}, Row{0})[0], 7u);
  EXPECT_EQ(exec(Op::Shl, Row{1}, Row{33})[0], 2u);
  EXPECT_EQ(exec(Op::Shr, Row{0x80000000u}, Row{32})[0], 0x80000000u);
  EXPECT_EQ(exec(Op::Asr, Row{0x80000000u}, Row{63})[0], 0xffffffffu);
  EXPECT_EQ(exec(Op::Shl, Row{1}, Row{}, Row{}, 36)[0], 16u);
}

TEST_F(AluTest, IntegerComparisons) {
  using F = std::function<uint32_t(uint32_t, uint32_t, uint32_t)>;
  const std::vector<std::pair<Op, F>> cases = {
      {Op::Ieq, [](uint32_t a, uint32_t b, uint32_t) { return uint32_t(a == b); }},
      {Op::Ine, [](uint32_t a, uint32_t b, uint32_t) { return uint32_t(a != b); }},
      {Op::Ilt, [](uint32_t a, uint32_t b, uint32_t) { return uint32_t(s32(a) < s32(b)); }},
      {Op::Ile, [](uint32_t a, uint32_t b, uint32_t) { return uint32_t(s32(a) <= s32(b)); }},
      {Op::Ult, [](uint32_t a, uint32_t b, uint32_t) { return uint32_t(a < b); }},
      {Op::Ule, [](uint32_t a, uint32_t b, uint32_t) { return uint32_t(a <= b); }},
  };
  Row b = kIntB;
  b[4] = kIntA[4];  // some equal pairs
  b[1] = kIntA[1];
  for (const auto& [op, ref] : cases) check(op, kIntA, b, kIntC, ref);
}

const float kInf = std::numeric_limits<float>::infinity();
const float kNaN = std::numeric_limits<float>::quiet_NaN();

Row frow(std::initializer_list<float> v) {
  Row r{};
  int i = 0;
  for (float f : v) r[i++] = fbits(f);
  return r;
}

const Row kFltA = frow({0.0f, -0.0f, 1.0f, -1.5f, 3.75f, 1e30f, -1e-30f, kInf, -kInf, kNaN, 1e-40f,
                        -2.5f, 16777217.0f, 0.1f, 2.0f, -7.0f});
const Row kFltB = frow({-0.0f, 0.0f, 3.0f, 2.0f, kNaN, 1e30f, 1e-30f, kInf, 1.0f, 1.0f, 1e-40f,
                        0.5f, 1.0f, 0.3f, -kInf, 3.0f});
const Row kFltC = frow({1.0f, -1.0f, 0.5f, 0.25f, 2.0f, -1e30f, 1.0f, -kInf, 0.0f, 1.0f, 1e-40f,
                        -0.0f, 3.0f, 0.7f, 1.0f, -1.0f});

TEST_F(AluTest, FloatArithmeticAndCompare) {
  using F = std::function<uint32_t(uint32_t, uint32_t, uint32_t)>;
  auto f2 = [](float (*fn)(float, float)) {
    return F([fn](uint32_t a, uint32_t b, uint32_t) { return fbits(fn(bitsf(a), bitsf(b))); });
  };
  auto cmp = [](bool (*fn)(float, float)) {
    return F([fn](uint32_t a, uint32_t b, uint32_t) { return uint32_t(fn(bitsf(a), bitsf(b))); });
  };
  const std::vector<std::pair<Op, F>> arith = {
      {Op::Fadd, f2([](float a, float b) { return a + b; })},
      {Op::Fsub, f2([](float a, float b) { return a - b; })},
      {Op::Fmul, f2([](float a, float b) { return a * b; })},
      {Op::Fdiv, f2([](float a, float b) { return a / b; })},
  };
  for (const auto& [op, ref] : arith) check(op, kFltA, kFltB, kFltC, ref, /*nan_any=*/true);
  const std::vector<std::pair<Op, F>> exact = {
      {Op::Feq, cmp([](float a, float b) { return a == b; })},
      {Op::Fne, cmp([](float a, float b) { return a != b; })},
      {Op::Flt, cmp([](float a, float b) { return a < b; })},
      {Op::Fle, cmp([](float a, float b) { return a <= b; })},
      // fmin/fmax are defined by a comparison, so NaN and signed-zero results are exact.
      {Op::Fmin, F([](uint32_t a, uint32_t b, uint32_t) { return bitsf(b) < bitsf(a) ? b : a; })},
      {Op::Fmax, F([](uint32_t a, uint32_t b, uint32_t) { return bitsf(a) < bitsf(b) ? b : a; })},
  };
  for (const auto& [op, ref] : exact) check(op, kFltA, kFltB, kFltC, ref);
}

TEST_F(AluTest, FminFmaxNanAndZeroRules) {
  const uint32_t nan = fbits(kNaN);
  // fmin rd = (b < ra) ? b : ra: a NaN on either side yields ra.
  EXPECT_EQ(exec(Op::Fmin, Row{nan}, frow({1.0f}))[0], nan);
  EXPECT_EQ(exec(Op::Fmin, frow({1.0f}), Row{nan})[0], fbits(1.0f));
  EXPECT_EQ(exec(Op::Fmax, Row{nan}, frow({1.0f}))[0], nan);
  EXPECT_EQ(exec(Op::Fmax, frow({1.0f}), Row{nan})[0], fbits(1.0f));
  // -0 and +0 compare equal: ra wins.
  EXPECT_EQ(exec(Op::Fmin, frow({0.0f}), frow({-0.0f}))[0], fbits(0.0f));
  EXPECT_EQ(exec(Op::Fmax, frow({-0.0f}), frow({0.0f}))[0], fbits(-0.0f));
  // feq/flt false on NaN, fne true.
  EXPECT_EQ(exec(Op::Feq, Row{nan}, Row{nan})[0], 0u);
  EXPECT_EQ(exec(Op::Fne, Row{nan}, Row{nan})[0], 1u);
  EXPECT_EQ(exec(Op::Fle, Row{nan}, frow({1.0f}))[0], 0u);
}

TEST_F(AluTest, FfmaIsNotFused) {
  // (1 + 2^-23)^2 = 1 + 2^-22 + 2^-46: the product rounds to 1 + 2^-22, so adding
  // -(1 + 2^-22) gives exactly 0 unfused but 2^-46 fused.
  const float a = 1.0f + 0x1p-23f;
  const float c = -(1.0f + 0x1p-22f);
  const Row got = exec(Op::Ffma, frow({a, 2.0f}), frow({a, 3.0f}), frow({c, 1.0f}));
  EXPECT_EQ(got[0], fbits(0.0f));
  EXPECT_EQ(bitsf(got[1]), 7.0f);
  EXPECT_NE(std::fma(a, a, c), 0.0f);  // the case does tell fused from unfused
  const Row gi = exec(Op::Ffma, frow({a}), Row{}, frow({c}), fbits(a));
  EXPECT_EQ(gi[0], fbits(0.0f));
  // Generic check against the two-rounding reference.
  check(
      Op::Ffma, kFltA, kFltB, kFltC,
      [](uint32_t x, uint32_t y, uint32_t z) {
        const float p = bitsf(x) * bitsf(y);
        volatile float pv = p;  // keep the reference itself unfused
        return fbits(pv + bitsf(z));
      },
      true);
}

TEST_F(AluTest, SignOpsFloorCeil) {
  const Row a = frow({0.0f, -0.0f, 0.5f, -0.5f, 1.5f, -1.5f, 2.0f, -2.0f, 8388607.5f, -8388607.5f,
                      8388609.0f, 1e20f, kInf, -kInf, kNaN, 1e-40f});
  Row b{};
  auto un = [](uint32_t (*fn)(uint32_t)) {
    return std::function<uint32_t(uint32_t, uint32_t, uint32_t)>(
        [fn](uint32_t x, uint32_t, uint32_t) { return fn(x); });
  };
  check(Op::Fneg, a, b, b, un([](uint32_t x) { return x ^ 0x80000000u; }));
  check(Op::Fabs, a, b, b, un([](uint32_t x) { return x & 0x7fffffffu; }));
  check(Op::Ffloor, a, b, b, un([](uint32_t x) { return fbits(std::floor(bitsf(x))); }));
  check(Op::Fceil, a, b, b, un([](uint32_t x) { return fbits(std::ceil(bitsf(x))); }));
  // Also negative subnormals and just-below-integer values.
  const Row a2 =
      frow({-1e-40f, 0.99999994f, -0.99999994f, 4194303.75f, -4194303.75f, 3.0f, -3.0f, 1e-10f,
            -1e-10f, 123.456f, -123.456f, 7.999f, -7.999f, 0.25f, -0.25f, 1048576.5f});
  check(Op::Ffloor, a2, b, b, un([](uint32_t x) { return fbits(std::floor(bitsf(x))); }));
  check(Op::Fceil, a2, b, b, un([](uint32_t x) { return fbits(std::ceil(bitsf(x))); }));
  EXPECT_EQ(exec(Op::Fceil, frow({-0.5f}), b)[0], fbits(-0.0f));
}

uint32_t ref_ftoi(uint32_t x) {
  const float f = bitsf(x);
  if (std::isnan(f)) return 0;
  if (f >= 2147483648.0f) return 0x7fffffffu;
  if (f < -2147483648.0f) return 0x80000000u;
  return uint32_t(int32_t(f));
}

TEST_F(AluTest, Conversions) {
  const Row a = frow({0.0f, -0.5f, 0.99f, -1.99f, 2147483520.0f, 2147483648.0f, -2147483648.0f,
                      -2147483904.0f, 1e30f, -1e30f, kInf, -kInf, kNaN, -kNaN, 123.75f, -7.5f});
  Row z{};
  check(Op::Ftoi, a, z, z, [](uint32_t x, uint32_t, uint32_t) { return ref_ftoi(x); });
  EXPECT_EQ(exec(Op::Ftoi, Row{fbits(kNaN)}, z)[0], 0u);
  EXPECT_EQ(exec(Op::Ftoi, frow({3e9f}), z)[0], 0x7fffffffu);
  EXPECT_EQ(exec(Op::Ftoi, frow({-3e9f}), z)[0], 0x80000000u);
  const Row ints = {0,           1,           0xffffffffu, 0x80000000u, 0x7fffffffu, 16777217,
                    16777219,    0x80000001u, 0xfffffffeu, 0x00ffffffu, 0x01000001u, 33554435,
                    0xfffffe80u, 0x7fffffc0u, 12345678,    0xc0000001u};
  check(Op::Itof, ints, z, z,
        [](uint32_t x, uint32_t, uint32_t) { return fbits(float(int32_t(x))); });
  check(Op::Utof, ints, z, z, [](uint32_t x, uint32_t, uint32_t) { return fbits(float(x)); });
  EXPECT_EQ(bitsf(exec(Op::Utof, Row{0xffffffffu}, z)[0]), 4294967296.0f);
}

// Reference half -> float by arithmetic (independent of the interpreter's bit tricks).
uint32_t ref_half_to_float(uint32_t h) {
  const bool neg = h & 0x8000;
  const uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ff;
  float v;
  if (e == 0x1f) {
    if (m == 0) {
      v = kInf;
    } else {
      return (neg ? 0x80000000u : 0) | 0x7f800000u | (m << 13);  // NaN, payload kept
    }
  } else if (e == 0) {
    v = std::ldexp(float(m), -24);
  } else {
    v = std::ldexp(float(m | 0x400), int(e) - 25);
  }
  return fbits(neg ? -v : v);
}

// Reference float -> half, round to nearest even, by double arithmetic.
uint32_t ref_float_to_half(uint32_t x) {
  const float f = bitsf(x);
  const uint32_t sign = (x >> 16) & 0x8000;
  if (std::isnan(f)) return sign | 0x7e00 | ((x >> 13) & 0x3ff);
  const double a = std::fabs(double(f));
  if (a == 0) return sign;
  if (std::isinf(a)) return sign | 0x7c00;
  int e;
  std::frexp(a, &e);  // a = f * 2^e, f in [0.5, 1)
  e -= 1;             // a in [2^e, 2^(e+1))
  if (e < -14) {
    const double q = std::nearbyint(a / std::ldexp(1.0, -24));  // subnormal step 2^-24
    return sign | uint32_t(q);  // q == 1024 becomes the smallest normal: same bits
  }
  double q = std::nearbyint(a / std::ldexp(1.0, e - 10));  // 1024..2048
  if (q == 2048) {
    q = 1024;
    ++e;
  }
  if (e > 15) return sign | 0x7c00;
  return sign | uint32_t((e + 15) << 10) | (uint32_t(q) - 1024);
}

TEST_F(AluTest, HalfConversionsSpotChecks) {
  Row z{};
  // f16lo: low half; f16hi: high half.
  const Row h = {0x0000, 0x8000, 0x0001, 0x8001, 0x03ff, 0x0400, 0x3c00, 0xbc00,
                 0x7bff, 0xfbff, 0x7c00, 0xfc00, 0x7e00, 0x7c01, 0xfe55, 0x3555};
  Row hi{};
  for (int l = 0; l < 16; ++l) hi[l] = (h[l] << 16) | 0x1234;
  check(Op::F16lo, h, z, z, [](uint32_t x, uint32_t, uint32_t) { return ref_half_to_float(x); });
  check(Op::F16hi, hi, z, z,
        [](uint32_t x, uint32_t, uint32_t) { return ref_half_to_float(x >> 16); });
  EXPECT_EQ(bitsf(exec(Op::F16lo, Row{0x0001}, z)[0]), 0x1p-24f);
  EXPECT_EQ(bitsf(exec(Op::F16lo, Row{0xffff3c00u}, z)[0]), 1.0f);  // upper bits ignored
  // ftof16: rounding to nearest even, overflow, subnormals, NaN.
  const Row f =
      frow({1.0f, 65504.0f, 65519.0f, 65520.0f, 1e10f, -kInf, kNaN, 0x1p-24f, 0x1p-25f, 0x1.8p-25f,
            0x1.8p-24f, -0x1p-26f, 1.0f + 0x1p-11f, 1.0f + 0x1.8p-11f, 0x1.ffcp-15f, -0.0f});
  check(Op::Ftof16, f, z, z, [](uint32_t x, uint32_t, uint32_t) { return ref_float_to_half(x); });
  const Row got = exec(Op::Ftof16, f, z);
  EXPECT_EQ(got[0], 0x3c00u);
  EXPECT_EQ(got[2], 0x7bffu);   // 65519 rounds down
  EXPECT_EQ(got[3], 0x7c00u);   // 65520 ties to even: inf
  EXPECT_EQ(got[8], 0x0000u);   // 2^-25 ties to even: 0
  EXPECT_EQ(got[9], 0x0001u);   // 1.5 * 2^-25 rounds up
  EXPECT_EQ(got[10], 0x0002u);  // 1.5 * 2^-24 ties to even: 2
  EXPECT_EQ(got[11], 0x8000u);  // -2^-26: -0
  EXPECT_EQ(got[12], 0x3c00u);  // 1 + 2^-11 ties to even: 1
  EXPECT_EQ(got[13], 0x3c01u);
  EXPECT_EQ(got[15], 0x8000u);
}

// Every half value through f16lo, and every f16lo result back through ftof16 (identity up to
// NaN quieting), using a 256-invocation loop over 65536 inputs.
TEST_F(QpuTest, HalfConversionsExhaustive) {
  constexpr uint32_t kIn = 0x10000, kF = 0x50000, kH = 0x90000;
  FlatMemory big(0xd0000 / kPage);
  for (uint32_t i = 0; i < 65536; ++i) big.set_u32(kIn + 4 * i, i);
  Prog p;
  p.sreg(0, Sreg::LocalId);
  p.rri(Op::Shl, 0, 0, 2);
  p.movi(5, 256);
  const size_t loop = p.pc();
  p.load(Op::Ld, 1, 0, kIn);
  p.rr(Op::F16lo, 2, 1);
  p.store(Op::St, 0, kF, 2);
  p.rr(Op::Ftof16, 3, 2);
  p.store(Op::St, 0, kH, 3);
  p.rri(Op::Add, 0, 0, 1024);
  p.rri(Op::Sub, 5, 5, 1);
  p.branch(Op::Bany, 5, loop);
  p.end();
  big.set_words(kCode, p.words());
  params.shader_va = kCode;
  params.wg_size = 256;
  ASSERT_EQ(ctx.run_workgroup(params, 0, 0, 0, 0, big, stop, counters), QpuResult::Done);
  int bad = 0;
  for (uint32_t h = 0; h < 65536 && bad < 10; ++h) {
    const uint32_t f = big.u32(kF + 4 * h), back = big.u32(kH + 4 * h);
    if (f != ref_half_to_float(h)) ++bad, ADD_FAILURE() << "f16lo " << std::hex << h << " -> " << f;
    const bool nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
    const uint32_t want = nan ? h | 0x200 : h;
    if (back != want) ++bad, ADD_FAILURE() << "ftof16(f16lo " << std::hex << h << ") = " << back;
  }
}

// ftof16 on random fp32 bit patterns and on the midpoints between adjacent halves.
TEST_F(QpuTest, FloatToHalfRandomAndMidpoints) {
  constexpr uint32_t kIn = 0x10000, kH = 0x60000;
  constexpr uint32_t kN = 65536;
  FlatMemory big(0xb0000 / kPage);
  std::mt19937 rng(7);
  std::vector<uint32_t> in(kN);
  for (uint32_t i = 0; i < kN; ++i) {
    if (i < 32768) {
      in[i] = rng();
    } else {
      // Midpoint of half h and h+1 (exactly representable in fp32), +-1 ulp.
      const uint32_t h = (i - 32768) % 0x7c00;
      const double lo = bitsf(ref_half_to_float(h)), hi = bitsf(ref_half_to_float(h + 1));
      const float mid = float((lo + hi) / 2);
      const int variant = (i - 32768) / 0x7c00 % 3;
      in[i] = fbits(mid) + (variant == 1 ? 1 : 0) - (variant == 2 && mid != 0 ? 1 : 0);
      if (i & 1) in[i] |= 0x80000000u;
    }
    big.set_u32(kIn + 4 * i, in[i]);
  }
  Prog p;
  p.sreg(0, Sreg::LocalId);
  p.rri(Op::Shl, 0, 0, 2);
  p.movi(5, kN / 256);
  const size_t loop = p.pc();
  p.load(Op::Ld, 1, 0, kIn);
  p.rr(Op::Ftof16, 3, 1);
  p.store(Op::St, 0, kH, 3);
  p.rri(Op::Add, 0, 0, 1024);
  p.rri(Op::Sub, 5, 5, 1);
  p.branch(Op::Bany, 5, loop);
  p.end();
  big.set_words(kCode, p.words());
  params.shader_va = kCode;
  params.wg_size = 256;
  ASSERT_EQ(ctx.run_workgroup(params, 0, 0, 0, 0, big, stop, counters), QpuResult::Done);
  int bad = 0;
  for (uint32_t i = 0; i < kN && bad < 10; ++i) {
    const uint32_t got = big.u32(kH + 4 * i), want = ref_float_to_half(in[i]);
    if (got != want) {
      ++bad;
      ADD_FAILURE() << "ftof16(0x" << std::hex << in[i] << ") = 0x" << got << ", want 0x" << want;
    }
  }
}

TEST_F(AluTest, SpecialFunctions) {
  const Row a = frow({0.0f, -0.0f, 1.0f, -1.0f, 0.5f, 2.0f, 10.0f, -10.0f, 100.0f, -100.0f, 1e-40f,
                      kInf, -kInf, kNaN, 0.25f, 3.14159f});
  Row z{};
  using Fn = float (*)(float);
  const std::vector<std::pair<Op, Fn>> cases = {
      {Op::Fexp, [](float x) { return std::exp(x); }},
      {Op::Flog, [](float x) { return std::log(x); }},
      {Op::Frcp, [](float x) { return 1.0f / x; }},
      {Op::Frsq, [](float x) { return 1.0f / std::sqrt(x); }},
      {Op::Fsqrt, [](float x) { return std::sqrt(x); }},
      {Op::Ftanh, [](float x) { return std::tanh(x); }},
  };
  for (const auto& [op, fn] : cases) {
    check(
        op, a, z, z, [fn](uint32_t x, uint32_t, uint32_t) { return fbits(fn(bitsf(x))); }, true);
  }
}

// ---------------------------------------------------------------------------------------------
// Special registers, uniforms.

TEST_F(QpuTest, SpecialRegisters) {
  params.wg_size = 40;  // 3 batches, the last with 8 lanes
  params.num_wg[0] = 5;
  params.num_wg[1] = 6;
  params.num_wg[2] = 7;
  const Sreg all[] = {Sreg::Lane,   Sreg::Batch,  Sreg::LocalId, Sreg::WgX,
                      Sreg::WgY,    Sreg::WgZ,    Sreg::NumWgX,  Sreg::NumWgY,
                      Sreg::NumWgZ, Sreg::WgSize, Sreg::Qpu,     Sreg::GlobalX};
  Prog p;
  p.sreg(1, Sreg::LocalId);
  p.rri(Op::Shl, 1, 1, 2);
  for (int i = 0; i < 12; ++i) {
    p.sreg(2, all[i]);
    p.store(Op::St, 1, kOut + 0x100 * i, 2);
  }
  p.end();
  mem.fill(kOut, 0x1000, 0xee);
  ASSERT_EQ(run(p, 3, 4, 5, 2), QpuResult::Done);
  for (uint32_t id = 0; id < 48; ++id) {
    const uint32_t lane = id % 16, batch = id / 16;
    const uint32_t want[12] = {lane, batch, id, 3, 4, 5, 5, 6, 7, 40, 2, 3 * 40 + id};
    for (int i = 0; i < 12; ++i) {
      const uint32_t got = mem.u32(kOut + 0x100 * i + 4 * id);
      if (id < 40) {
        EXPECT_EQ(got, want[i]) << *isa::sreg_name(uint32_t(all[i])) << " local_id " << id;
      } else {
        EXPECT_EQ(got, 0xeeeeeeeeu) << "inactive lane stored, local_id " << id;
      }
    }
  }
}

TEST_F(QpuTest, UniformStreamPerBatch) {
  params.wg_size = 32;
  for (uint32_t i = 0; i < 4; ++i) mem.set_u32(kUnif + 4 * i, 100 + i);
  Prog p;
  p.sreg(0, Sreg::LocalId);
  p.rri(Op::Shl, 0, 0, 2);
  p.unif(1);
  p.unif(2);
  p.unif(3);
  p.rrr(Op::Add, 1, 1, 2);
  p.rrr(Op::Add, 1, 1, 3);  // 100 + 101 + 102 in every batch
  p.store(Op::St, 0, kOut, 1);
  p.end();
  run_ok(p);
  for (uint32_t id = 0; id < 32; ++id) EXPECT_EQ(mem.u32(kOut + 4 * id), 303u);
}

TEST_F(QpuTest, UniformStreamCrossesPages) {
  mem.set_u32(0x8ffc, 11);
  mem.set_u32(0x9000, 22);
  Prog p;
  p.lane_offset();
  p.unif(1);
  p.unif(2);
  p.rrr(Op::Sub, 1, 2, 1);
  p.store(Op::St, 0, kOut, 1);
  p.end();
  mem.set_words(kCode, p.words());
  params.shader_va = kCode;
  params.uniforms_va = 0x8ffc;
  ASSERT_EQ(ctx.run_workgroup(params, 0, 0, 0, 0, mem, stop, counters), QpuResult::Done);
  EXPECT_EQ(mem.u32(kOut), 11u);
}

TEST_F(QpuTest, UniformFetchFault) {
  mem.set_perm(kUnif / kPage, FlatMemory::kRead);  // readable as data, not as uniforms
  Prog p;
  p.unif(1);
  p.end();
  EXPECT_EQ(run(p), QpuResult::FetchFault);
}

// ---------------------------------------------------------------------------------------------
// Exec mask and branches.

TEST_F(QpuTest, IfElseEndifNesting) {
  Prog p;
  p.sreg(1, Sreg::Lane);
  p.lane_offset();
  p.movi(5, 0);
  p.rri(Op::Ult, 2, 1, 8);
  p.if_(2);  // lanes 0..7
  p.movi(5, 1);
  p.rri(Op::And, 3, 1, 1);
  p.if_(3);  //   odd
  p.movi(5, 2);
  p.else_();  //   even
  p.movi(5, 3);
  p.endif();
  p.else_();  // lanes 8..15
  p.movi(5, 4);
  p.rri(Op::Ieq, 3, 1, 12);
  p.if_(3);
  p.rri(Op::Add, 5, 5, 10);
  p.endif();
  p.endif();
  p.rri(Op::Add, 5, 5, 100);  // all lanes again
  p.store(Op::St, 0, kOut, 5);
  p.end();
  run_ok(p);
  for (uint32_t l = 0; l < 16; ++l) {
    const uint32_t want = l < 8 ? (l & 1 ? 102 : 103) : (l == 12 ? 114 : 104);
    EXPECT_EQ(mem.u32(kOut + 4 * l), want) << "lane " << l;
  }
}

TEST_F(QpuTest, ElseInsideEmptyIfStaysEmpty) {
  // else = top & ~mask: lanes inactive before the if stay inactive in the else branch.
  Prog p;
  p.sreg(1, Sreg::Lane);
  p.lane_offset();
  p.movi(5, 0);
  p.rri(Op::Ult, 2, 1, 4);
  p.if_(2);  // lanes 0..3
  p.rri(Op::Ieq, 3, 1, 1);
  p.if_(3);  // lane 1
  p.movi(5, 7);
  p.else_();  // lanes 0, 2, 3 (not 4..15)
  p.movi(5, 9);
  p.endif();
  p.endif();
  p.store(Op::St, 0, kOut, 5);
  p.end();
  run_ok(p);
  const uint32_t want[16] = {9, 7, 9, 9};
  for (uint32_t l = 0; l < 16; ++l) EXPECT_EQ(mem.u32(kOut + 4 * l), want[l]) << "lane " << l;
}

TEST_F(QpuTest, MaskStackDepth16IsFine17Overflows) {
  for (int depth : {16, 17}) {
    Prog p;
    p.movi(1, 1);
    for (int i = 0; i < depth; ++i) p.if_(1);
    for (int i = 0; i < depth; ++i) p.endif();
    p.end();
    EXPECT_EQ(run(p), depth == 16 ? QpuResult::Done : QpuResult::MaskStack) << depth;
  }
}

TEST_F(QpuTest, MaskStackUnderflow) {
  Prog e;
  e.else_();
  e.end();
  EXPECT_EQ(run(e), QpuResult::MaskStack);
  Prog n;
  n.movi(1, 1);
  n.if_(1);
  n.endif();
  n.endif();
  n.end();
  EXPECT_EQ(run(n), QpuResult::MaskStack);
}

TEST_F(QpuTest, BranchesWithPartialMask) {
  Prog p;
  p.sreg(1, Sreg::Lane);
  p.lane_offset();
  p.movi(6, 0);
  p.rri(Op::Ult, 2, 1, 4);
  p.if_(2);                               // active: lanes 0..3
  p.rri(Op::Ieq, 3, 1, 9);                // nonzero only in inactive lane 9
  size_t f1 = p.branch_fwd(Op::Bany, 3);  // not taken
  p.rri(Op::Or, 6, 6, 1);
  p.bind(f1);
  p.rri(Op::Ilt, 4, 1, 4);                // nonzero in every active lane
  size_t f2 = p.branch_fwd(Op::Ball, 4);  // taken
  p.rri(Op::Or, 6, 6, 2);
  p.bind(f2);
  size_t f3 = p.branch_fwd(Op::Bnone, 3);  // taken
  p.rri(Op::Or, 6, 6, 4);
  p.bind(f3);
  p.rri(Op::Ieq, 7, 1, 2);                 // lane 2 only
  size_t f4 = p.branch_fwd(Op::Bnone, 7);  // not taken
  p.rri(Op::Or, 6, 6, 8);
  p.bind(f4);
  size_t f5 = p.branch_fwd(Op::Ball, 7);  // not taken
  p.rri(Op::Or, 6, 6, 16);
  p.bind(f5);
  size_t f6 = p.branch_fwd(Op::Bany, 7);  // taken
  p.rri(Op::Or, 6, 6, 32);
  p.bind(f6);
  p.endif();
  p.store(Op::St, 0, kOut, 6);
  p.end();
  run_ok(p);
  for (uint32_t l = 0; l < 16; ++l) EXPECT_EQ(mem.u32(kOut + 4 * l), l < 4 ? 25u : 0u) << l;
}

TEST_F(QpuTest, BranchesWithNoActiveLane) {
  // Taken branches jump over an illegal word; untaken ones would land on one.
  Prog p;
  p.movi(1, 1);
  p.movi(2, 0);
  p.if_(2);                               // nobody active
  size_t t1 = p.branch_fwd(Op::Ball, 1);  // taken: no active lane
  p.raw(kIllegal);
  p.bind(t1);
  size_t t2 = p.branch_fwd(Op::Bnone, 1);  // taken
  p.raw(kIllegal);
  p.bind(t2);
  size_t n1 = p.branch_fwd(Op::Bany, 1);  // not taken
  size_t skip = p.branch_fwd(Op::B, 0);
  p.bind(n1);
  p.raw(kIllegal);
  p.bind(skip);
  p.endif();
  p.end();
  EXPECT_EQ(run(p), QpuResult::Done);
}

TEST_F(QpuTest, InactiveLanesDoNotSteerBranches) {
  params.wg_size = 4;  // lanes 4..15 never active
  Prog p;
  p.sreg(1, Sreg::Lane);
  p.rri(Op::Ult, 2, 1, 4);  // rd written only in lanes 0..3 (all 1)
  size_t t = p.branch_fwd(Op::Ball, 2);
  p.raw(kIllegal);
  p.bind(t);
  p.end();
  EXPECT_EQ(run(p), QpuResult::Done);
}

TEST_F(QpuTest, UniformLoopAndPerLaneLoop) {
  Prog p;
  p.sreg(1, Sreg::Lane);
  p.lane_offset();
  // Sum 1..100 with a counted loop.
  p.movi(2, 100);
  p.movi(3, 0);
  const size_t l1 = p.pc();
  p.rrr(Op::Add, 3, 3, 2);
  p.rri(Op::Sub, 2, 2, 1);
  p.branch(Op::Bany, 2, l1);
  p.store(Op::St, 0, kOut, 3);
  // Each lane counts down from its lane index, masking lanes that are done.
  p.mov(4, 1);
  p.movi(5, 0);
  const size_t l2 = p.pc();
  p.rri(Op::Ine, 6, 4, 0);
  p.if_(6);
  p.rri(Op::Add, 5, 5, 1);
  p.rri(Op::Sub, 4, 4, 1);
  p.endif();
  p.branch(Op::Bany, 4, l2);
  p.store(Op::St, 0, kOut + 64, 5);
  p.end();
  run_ok(p);
  for (uint32_t l = 0; l < 16; ++l) {
    EXPECT_EQ(mem.u32(kOut + 4 * l), 5050u);
    EXPECT_EQ(mem.u32(kOut + 64 + 4 * l), l);
  }
}

TEST_F(QpuTest, WorkgroupNotMultipleOf16) {
  params.wg_size = 20;
  params.num_wg[0] = 2;
  Prog p;
  p.sreg(0, Sreg::GlobalX);
  p.rri(Op::Shl, 1, 0, 2);
  p.rri(Op::Add, 2, 0, 1000);
  p.store(Op::St, 1, kOut, 2);
  p.end();
  mem.fill(kOut, 256, 0xab);
  ASSERT_EQ(run(p, 1), QpuResult::Done);  // workgroup 1: global_x 20..39
  for (uint32_t g = 0; g < 64; ++g) {
    const uint32_t got = mem.u32(kOut + 4 * g);
    if (g >= 20 && g < 40) {
      EXPECT_EQ(got, 1000 + g);
    } else {
      EXPECT_EQ(got, 0xababababu) << "global_x " << g;
    }
  }
}

TEST_F(QpuTest, EndEndsBatchWhateverTheMask) {
  Prog p;
  p.lane_offset();
  p.movi(1, 0);
  p.if_(1);
  p.end();  // no lane active, still ends the batch
  p.endif();
  p.movi(2, 5);
  p.store(Op::St, 0, kOut, 2);
  p.end();
  mem.fill(kOut, 64, 0);
  run_ok(p);
  EXPECT_EQ(mem.u32(kOut), 0u);
}

// ---------------------------------------------------------------------------------------------
// Memory.

TEST_F(QpuTest, GatherScatterAndUnalignedAddresses) {
  for (uint32_t i = 0; i < (kOut - kA) / 4; ++i) mem.set_u32(kA + 4 * i, 0x1000 + i);
  Prog p;
  p.sreg(1, Sreg::Lane);
  p.lane_offset();
  // Reversed lanes, in one page.
  p.movi(2, 15);
  p.rrr(Op::Sub, 2, 2, 1);
  p.rri(Op::Shl, 2, 2, 2);
  p.load(Op::Ld, 3, 2, kA);
  p.store(Op::St, 0, kOut, 3);
  // One page per lane (slow path), with address bits 1..0 set (ignored).
  p.rri(Op::Mul, 4, 1, kPage + 4);
  p.rri(Op::And, 5, 1, 3);
  p.rrr(Op::Add, 4, 4, 5);
  p.load(Op::Ld, 6, 4, kA);
  p.store(Op::St, 0, kOut + 64, 6);
  // Scatter reversed, then contiguous with a misaligned base.
  p.store(Op::St, 2, kOut + 128, 1);
  p.store(Op::St, 0, kOut + 192 + 3, 1);
  // Scatter over pages.
  p.store(Op::St, 4, kOut + 0x1000, 1);
  p.end();
  run_ok(p);
  for (uint32_t l = 0; l < 16; ++l) {
    EXPECT_EQ(mem.u32(kOut + 4 * l), 0x1000 + 15 - l);
    EXPECT_EQ(mem.u32(kOut + 64 + 4 * l), 0x1000 + l * (kPage + 4) / 4);
    EXPECT_EQ(mem.u32(kOut + 128 + 4 * (15 - l)), l);
    EXPECT_EQ(mem.u32(kOut + 192 + 4 * l), l);
    EXPECT_EQ(mem.u32(kOut + 0x1000 + l * (kPage + 4)), l);
  }
}

TEST_F(QpuTest, SameAddressStoreHighestLaneWins) {
  Prog p;
  p.sreg(1, Sreg::Lane);
  p.movi(2, 0);
  p.store(Op::St, 2, kOut, 1);
  p.rri(Op::Ult, 3, 1, 6);
  p.if_(3);
  p.store(Op::St, 2, kOut + 4, 1);  // lanes 0..5
  p.endif();
  p.end();
  run_ok(p);
  EXPECT_EQ(mem.u32(kOut), 15u);
  EXPECT_EQ(mem.u32(kOut + 4), 5u);
}

TEST_F(QpuTest, Ld4St4IncludingPageCrossing) {
  for (uint32_t i = 0; i < 2048; ++i) mem.set_u32(kA + 4 * i, 0x5000 + i);
  // Base so that lane 5's four words straddle the boundary at kA + 4096.
  const uint32_t base = kA + kPage - 5 * 16 - 8;
  Prog p;
  p.sreg(1, Sreg::Lane);
  p.lane_offset();
  p.rri(Op::Shl, 2, 1, 4);     // lane * 16
  p.load(Op::Ld4, 10, 2, kA);  // contiguous, one page
  for (int k = 0; k < 4; ++k) p.store(Op::St, 0, kOut + 64 * k, 10 + k);
  p.load(Op::Ld4, 20, 2, base);  // crosses
  for (int k = 0; k < 4; ++k) p.store(Op::St, 0, kOut + 256 + 64 * k, 20 + k);
  // ra among the destinations: addresses are taken before the writes.
  p.mov(30, 2);
  p.load(Op::Ld4, 30, 30, kA);
  p.store(Op::St, 0, kOut + 512, 30);
  p.store(Op::St, 0, kOut + 576, 33);
  // st4 crossing pages back out, and within a page.
  p.store(Op::St4, 2, kOut + 0x1000 - 5 * 16 - 8, 20);
  p.store(Op::St4, 2, kOut + 0x2000, 10);
  p.end();
  run_ok(p);
  for (uint32_t l = 0; l < 16; ++l) {
    for (uint32_t k = 0; k < 4; ++k) {
      EXPECT_EQ(mem.u32(kOut + 64 * k + 4 * l), 0x5000 + 4 * l + k);
      const uint32_t want = 0x5000 + (base - kA) / 4 + 4 * l + k;
      EXPECT_EQ(mem.u32(kOut + 256 + 64 * k + 4 * l), want) << "lane " << l << " k " << k;
      EXPECT_EQ(mem.u32(kOut + 0x1000 - 5 * 16 - 8 + 16 * l + 4 * k), want);
      EXPECT_EQ(mem.u32(kOut + 0x2000 + 16 * l + 4 * k), 0x5000 + 4 * l + k);
    }
    EXPECT_EQ(mem.u32(kOut + 512 + 4 * l), 0x5000 + 4 * l);
    EXPECT_EQ(mem.u32(kOut + 576 + 4 * l), 0x5000 + 4 * l + 3);
  }
}

// All lanes in one page, but their 4-word groups run into the next VA page, which is backed
// by a host page elsewhere: the words past the boundary must come from the next page's
// translation, not from the bytes that follow in host memory.
TEST_F(QpuTest, Ld4St4Ldu4CrossIntoNonContiguousPage) {
  const uint32_t boundary = 21 * kPage;
  mem.remap(21, 50);
  mem.set_u32(boundary - 8, 0xa0);
  mem.set_u32(boundary - 4, 0xa1);
  mem.set_u32(50 * kPage, 0xb0);
  mem.set_u32(50 * kPage + 4, 0xb1);
  mem.set_u32(boundary, 0xdead0);  // host bytes right after the boundary: must not be read
  mem.set_u32(boundary + 4, 0xdead1);
  Prog p;
  p.lane_offset();
  p.movi(1, 0);
  p.load(Op::Ld4, 10, 1, boundary - 8);  // every lane: the same crossing address
  p.load(Op::Ldu4, 20, 1, boundary - 8);
  for (int k = 0; k < 4; ++k) {
    p.store(Op::St, 0, kOut + 64 * k, 10 + k);
    p.store(Op::St, 0, kOut + 256 + 64 * k, 20 + k);
  }
  p.sreg(2, Sreg::Lane);
  p.rri(Op::Ieq, 3, 2, 7);
  p.if_(3);                                           // lane 7 alone stores across the boundary
  p.store(Op::St4, 1, boundary + 4 * kPage - 8, 10);  // VA pages 24 | 25 (remapped to 51)
  p.endif();
  p.end();
  mem.remap(25, 51);
  run_ok(p);
  const uint32_t want[4] = {0xa0, 0xa1, 0xb0, 0xb1};
  for (uint32_t l = 0; l < 16; ++l) {
    for (int k = 0; k < 4; ++k) {
      EXPECT_EQ(mem.u32(kOut + 64 * k + 4 * l), want[k]) << "ld4 lane " << l << " word " << k;
      EXPECT_EQ(mem.u32(kOut + 256 + 64 * k + 4 * l), want[k]) << "ldu4 lane " << l;
    }
  }
  EXPECT_EQ(mem.u32(25 * kPage - 8), 0xa0u);
  EXPECT_EQ(mem.u32(25 * kPage - 4), 0xa1u);
  EXPECT_EQ(mem.u32(51 * kPage), 0xb0u);
  EXPECT_EQ(mem.u32(51 * kPage + 4), 0xb1u);
  EXPECT_EQ(mem.u32(25 * kPage), 0u);  // the host page after 24 was not written
}

TEST_F(QpuTest, Ld4St4WithPartialMaskAndScatteredLanes) {
  for (uint32_t i = 0; i < 4096; ++i) mem.set_u32(kA + 4 * i, i);
  Prog p;
  p.sreg(1, Sreg::Lane);
  p.lane_offset();
  p.rri(Op::Mul, 2, 1, 1000);  // lanes 16 bytes apart no more: 1000 bytes, several pages
  for (int k = 0; k < 4; ++k) p.movi(10 + k, 0xdead);
  p.rri(Op::And, 3, 1, 1);
  p.if_(3);  // odd lanes
  p.load(Op::Ld4, 10, 2, kA);
  p.store(Op::St4, 2, kOut, 10);
  p.endif();
  for (int k = 0; k < 4; ++k) p.store(Op::St, 0, kOut + 0x8000 + 64 * k, 10 + k);
  p.end();
  mem.fill(kOut, 0x4000, 0);
  run_ok(p);
  for (uint32_t l = 0; l < 16; ++l) {
    for (uint32_t k = 0; k < 4; ++k) {
      const uint32_t want = l & 1 ? (1000 * l) / 4 + k : 0xdead;
      EXPECT_EQ(mem.u32(kOut + 0x8000 + 64 * k + 4 * l), want) << l << " " << k;
      EXPECT_EQ(mem.u32(kOut + 1000 * l + 4 * k), l & 1 ? want : 0u);
    }
  }
}

TEST_F(QpuTest, LduUsesFirstActiveLane) {
  for (uint32_t i = 0; i < 1100; ++i) mem.set_u32(kA + 4 * i, 0x700 + i);
  Prog p;
  p.sreg(1, Sreg::Lane);
  p.lane_offset();
  p.movi(5, 0x11);
  for (int k = 0; k < 4; ++k) p.movi(10 + k, 0x22);
  p.rri(Op::Ule, 2, 1, 2);
  p.rri(Op::Xor, 2, 2, 1);  // lanes 3..15
  p.if_(2);
  p.load(Op::Ldu, 5, 0, kA);                     // lane 3's address: kA + 12
  p.load(Op::Ldu4, 10, 0, kA + kPage - 12 - 8);  // lane 3: crosses into the next page
  p.endif();
  p.store(Op::St, 0, kOut, 5);
  for (int k = 0; k < 4; ++k) p.store(Op::St, 0, kOut + 64 + 64 * k, 10 + k);
  p.end();
  run_ok(p);
  for (uint32_t l = 0; l < 16; ++l) {
    EXPECT_EQ(mem.u32(kOut + 4 * l), l < 3 ? 0x11u : 0x703u);
    for (uint32_t k = 0; k < 4; ++k) {
      EXPECT_EQ(mem.u32(kOut + 64 + 64 * k + 4 * l), l < 3 ? 0x22u : 0x700 + 1022 + k)
          << l << " " << k;
    }
  }
}

TEST_F(QpuTest, MemoryInstructionsWithNoActiveLaneDoNothing) {
  mem.set_perm(40, FlatMemory::kNone);
  const uint64_t before_reads = mem.calls[int(GpuAccess::Read)].load();
  Prog p;
  p.lane_offset();
  p.movi(1, 0);
  p.if_(1);
  p.load(Op::Ld, 2, 0, 40 * kPage);
  p.load(Op::Ldu4, 4, 0, 40 * kPage);
  p.store(Op::St, 0, kOut, 0);
  p.endif();
  p.end();
  mem.fill(kOut, 64, 0x99);
  run_ok(p);
  EXPECT_EQ(mem.u32(kOut), 0x99999999u);
  EXPECT_EQ(mem.calls[int(GpuAccess::Read)].load(), before_reads);
}

TEST_F(QpuTest, FaultingPagesReadZeroDropStoresAndContinue) {
  const uint32_t bad = 40 * kPage, ro = 41 * kPage;
  mem.set_perm(40, FlatMemory::kNone);
  mem.set_perm(41, FlatMemory::kRead);
  mem.set_u32(ro, 0x1234);
  mem.set_u32(bad - 8, 0xaaaa);
  mem.set_u32(bad - 4, 0xbbbb);
  Prog p;
  p.lane_offset();
  p.movi(2, 0x77);
  p.load(Op::Ld, 2, 0, bad);  // 0
  p.store(Op::St, 0, kOut, 2);
  p.store(Op::St, 0, bad, 2);  // dropped
  p.load(Op::Ld, 3, 0, ro);    // readable
  p.store(Op::St, 0, kOut + 64, 3);
  p.store(Op::St, 0, ro, 2);  // read-only: dropped
  p.movi(4, 0);
  p.load(Op::Ld4, 4, 4, bad - 8);  // 2 words readable, 2 fault
  for (int k = 0; k < 4; ++k) p.store(Op::St, 0, kOut + 128 + 64 * k, 4 + k);
  p.movi(9, 0);
  p.load(Op::Ldu, 9, 9, bad);
  p.store(Op::St, 0, kOut + 448, 9);
  p.movi(10, 1);
  p.store(Op::St, 0, kOut + 512, 10);  // still running
  p.end();
  run_ok(p);
  for (uint32_t l = 0; l < 16; ++l) {
    EXPECT_EQ(mem.u32(kOut + 4 * l), 0u);
    EXPECT_EQ(mem.u32(kOut + 64 + 4 * l), l == 0 ? 0x1234u : 0u);
    EXPECT_EQ(mem.u32(kOut + 128 + 4 * l), 0xaaaau);
    EXPECT_EQ(mem.u32(kOut + 192 + 4 * l), 0xbbbbu);
    EXPECT_EQ(mem.u32(kOut + 256 + 4 * l), 0u);
    EXPECT_EQ(mem.u32(kOut + 320 + 4 * l), 0u);
    EXPECT_EQ(mem.u32(kOut + 448 + 4 * l), 0u);
    EXPECT_EQ(mem.u32(kOut + 512 + 4 * l), 1u);
  }
  EXPECT_EQ(mem.u32(ro), 0x1234u);
}

TEST_F(QpuTest, StoreAfterLoadRefillsTranslationForWrite) {
  const uint64_t writes_before = mem.calls[int(GpuAccess::Write)].load();
  Prog p;
  p.lane_offset();
  p.load(Op::Ld, 1, 0, kA);  // fills the micro-TLB with a Read translation
  p.rri(Op::Add, 1, 1, 1);
  p.store(Op::St, 0, kA, 1);  // must ask for Write
  p.end();
  mem.set_row(kA, Row{5, 6});
  run_ok(p);
  EXPECT_EQ(mem.u32(kA), 6u);
  EXPECT_EQ(mem.u32(kA + 4), 7u);
  EXPECT_GT(mem.calls[int(GpuAccess::Write)].load(), writes_before);
}

// ---------------------------------------------------------------------------------------------
// Shared memory and barriers.

TEST_F(QpuTest, SharedMemoryReductionOf256WithBarriers) {
  params.wg_size = 256;
  params.shared_bytes = 1024;
  for (uint32_t i = 0; i < 256; ++i) mem.set_u32(kA + 4 * i, i * 3 + 1);
  Prog p;
  p.sreg(1, Sreg::LocalId);
  p.rri(Op::Shl, 0, 1, 2);
  p.load(Op::Ld, 2, 0, kA);
  p.store(Op::Sts, 0, 0, 2);
  p.bar();
  for (uint32_t s = 128; s > 0; s >>= 1) {
    p.rri(Op::Ult, 3, 1, s);
    p.if_(3);
    p.load(Op::Lds, 4, 0, 0);
    p.load(Op::Lds, 5, 0, 4 * s);
    p.rrr(Op::Add, 4, 4, 5);
    p.store(Op::Sts, 0, 0, 4);
    p.endif();
    p.bar();
  }
  p.movi(6, 0);
  p.load(Op::Lds, 7, 6, 0);  // every invocation reads the total
  p.store(Op::St, 0, kOut, 7);
  p.end();
  run_ok(p);
  uint32_t want = 0;
  for (uint32_t i = 0; i < 256; ++i) want += i * 3 + 1;
  for (uint32_t i = 0; i < 256; ++i) ASSERT_EQ(mem.u32(kOut + 4 * i), want) << i;
  // 16 batches x 9 barriers.
  EXPECT_GT(counters.instructions, 0u);
}

TEST_F(QpuTest, SharedMemoryZeroedWrapsAndAbsent) {
  params.wg_size = 16;
  params.shared_bytes = 64;
  Prog p;
  p.lane_offset();
  p.load(Op::Lds, 1, 0, 0);  // zero at workgroup start
  p.store(Op::St, 0, kOut, 1);
  p.sreg(2, Sreg::Lane);
  p.rri(Op::Add, 2, 2, 1);
  p.store(Op::Sts, 0, 0, 2);
  p.load(Op::Lds, 3, 0, 64 + 1);  // wraps modulo 64, bits 1..0 ignored
  p.store(Op::St, 0, kOut + 64, 3);
  p.end();
  for (int round = 0; round < 2; ++round) {
    mem.fill(kOut, 128, 0xff);
    run_ok(p);
    for (uint32_t l = 0; l < 16; ++l) {
      EXPECT_EQ(mem.u32(kOut + 4 * l), 0u) << "round " << round;
      EXPECT_EQ(mem.u32(kOut + 64 + 4 * l), l + 1);
    }
  }
  params.shared_bytes = 0;
  mem.fill(kOut, 128, 0xff);
  run_ok(p);
  for (uint32_t l = 0; l < 16; ++l) EXPECT_EQ(mem.u32(kOut + 64 + 4 * l), 0u);
}

TEST_F(QpuTest, BarrierWithEndedBatches) {
  params.wg_size = 48;
  params.shared_bytes = 256;
  Prog p;
  p.sreg(1, Sreg::Batch);
  p.sreg(2, Sreg::LocalId);
  p.rri(Op::Shl, 0, 2, 2);
  p.rri(Op::Ieq, 3, 1, 0);
  size_t skip = p.branch_fwd(Op::Bnone, 3);
  p.end();  // batch 0 leaves before the barrier
  p.bind(skip);
  p.store(Op::Sts, 0, 0, 2);
  p.bar();
  p.rri(Op::Xor, 4, 0, 48 * 4);  // local_id 16..31 <-> 32..47: the other live batch
  p.load(Op::Lds, 5, 4, 0);
  p.store(Op::St, 0, kOut, 5);
  p.bar();
  p.end();
  mem.fill(kOut, 256, 0);
  run_ok(p);
  for (uint32_t id = 16; id < 48; ++id) EXPECT_EQ(mem.u32(kOut + 4 * id), id ^ 48) << id;
  for (uint32_t id = 0; id < 16; ++id) EXPECT_EQ(mem.u32(kOut + 4 * id), 0u);
}

// ---------------------------------------------------------------------------------------------
// Errors, stop, instruction cache, code layout.

TEST_F(QpuTest, IllegalInstructionFaultsOnlyWhenExecuted) {
  Prog p;
  size_t skip = p.branch_fwd(Op::B, 0);
  p.raw(kIllegal);
  p.raw(isa::encode(isa::Instr{Op::Nop, false, 1, 0, 0, 0, 0}));  // non-canonical
  p.bind(skip);
  p.end();
  EXPECT_EQ(run(p), QpuResult::Done);
  EXPECT_EQ(counters.instructions, 2u);

  Prog q;
  q.op0(Op::Nop);
  q.raw(isa::encode(isa::Instr{Op::Nop, false, 1, 0, 0, 0, 0}));
  q.end();
  counters = {};
  EXPECT_EQ(run(q), QpuResult::IllegalInstr);
  EXPECT_EQ(counters.instructions, 1u);

  Prog r;
  r.emit(Op::Sreg, 1, 0, 0, 0, 99, false);  // undefined sreg id
  r.end();
  EXPECT_EQ(run(r), QpuResult::IllegalInstr);
}

TEST_F(QpuTest, FetchFaults) {
  Prog p;
  p.end();
  mem.set_words(kCode, p.words());
  params.shader_va = 50 * kPage;  // never executable
  mem.set_perm(50, FlatMemory::kRead | FlatMemory::kWrite);
  EXPECT_EQ(ctx.run_workgroup(params, 0, 0, 0, 0, mem, stop, counters), QpuResult::FetchFault);

  // Running off the end of a page into a non-executable one.
  Prog q;
  q.op0(Op::Nop);
  q.op0(Op::Nop);
  mem.set_words(52 * kPage - 16, q.words());
  params.shader_va = 52 * kPage - 16;
  mem.set_perm(52, FlatMemory::kRead);
  EXPECT_EQ(ctx.run_workgroup(params, 0, 0, 0, 0, mem, stop, counters), QpuResult::FetchFault);

  // A branch into a non-executable page.
  Prog r;
  r.branch(Op::B, 0, 3 * 512);  // from kCode (page 1) to page 4
  mem.set_perm(4, FlatMemory::kRead);
  EXPECT_EQ(run(r), QpuResult::FetchFault);
}

TEST_F(QpuTest, CodeSpanningPagesAndBranchingBack) {
  // The loop body starts in the last slot of page 1 and ends in page 2.
  const uint32_t start = 2 * kPage - 5 * 8;
  Prog p;
  p.lane_offset();
  p.movi(1, 0);
  p.movi(2, 10);
  const size_t loop = p.pc();
  p.rri(Op::Add, 1, 1, 3);
  p.rri(Op::Sub, 2, 2, 1);
  p.branch(Op::Bany, 2, loop);
  p.store(Op::St, 0, kOut, 1);
  p.end();
  mem.set_words(start, p.words());
  params.shader_va = start;
  ASSERT_EQ(ctx.run_workgroup(params, 0, 0, 0, 0, mem, stop, counters), QpuResult::Done);
  EXPECT_EQ(mem.u32(kOut), 30u);
}

TEST_F(QpuTest, StopEndsAnInfiniteLoop) {
  Prog p;
  const size_t loop = p.pc();
  p.op0(Op::Nop);
  p.branch(Op::B, 0, loop);
  std::thread t([this] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    stop.store(true);
  });
  EXPECT_EQ(run(p), QpuResult::Stopped);
  t.join();
  EXPECT_GT(counters.instructions, 0u);
}

TEST_F(QpuTest, StopIsPolledAtBarriers) {
  stop.store(true);
  Prog p;
  p.bar();
  p.end();
  EXPECT_EQ(run(p), QpuResult::Stopped);
}

TEST_F(QpuTest, GenerationChangeInvalidatesDecodedCode) {
  auto prog = [](uint32_t v) {
    Prog p;
    p.lane_offset();
    p.movi(1, v);
    p.store(Op::St, 0, kOut, 1);
    p.end();
    return p;
  };
  run_ok(prog(1));
  EXPECT_EQ(mem.u32(kOut), 1u);
  // Rewrite the code without a generation change: the decoded (cached) code still runs.
  mem.set_words(kCode, prog(2).words());
  ASSERT_EQ(ctx.run_workgroup(params, 0, 0, 0, 0, mem, stop, counters), QpuResult::Done);
  EXPECT_EQ(mem.u32(kOut), 1u);
  mem.bump();
  ASSERT_EQ(ctx.run_workgroup(params, 0, 0, 0, 0, mem, stop, counters), QpuResult::Done);
  EXPECT_EQ(mem.u32(kOut), 2u);
  // A fresh context decodes the current code.
  mem.set_words(kCode, prog(3).words());
  QpuContext other;
  ASSERT_EQ(other.run_workgroup(params, 0, 0, 0, 0, mem, stop, counters), QpuResult::Done);
  EXPECT_EQ(mem.u32(kOut), 3u);
}

TEST_F(QpuTest, GenerationChangeInvalidatesDataTranslations) {
  mem.set_u32(kA, 111);
  mem.set_u32(45 * kPage, 222);
  Prog p;
  p.lane_offset();
  p.load(Op::Ld, 1, 0, kA);
  p.store(Op::St, 0, kOut, 1);
  p.end();
  run_ok(p);
  EXPECT_EQ(mem.u32(kOut), 111u);
  mem.remap(kA / kPage, 45);
  mem.bump();
  run_ok(p);
  EXPECT_EQ(mem.u32(kOut), 222u);
  // Becoming unmapped: the load now faults and reads 0.
  mem.set_perm(kA / kPage, FlatMemory::kNone);
  mem.bump();
  run_ok(p);
  EXPECT_EQ(mem.u32(kOut), 0u);
}

TEST_F(QpuTest, ResultNames) {
  EXPECT_STREQ(qpu_result_name(QpuResult::Done), "Done");
  EXPECT_STREQ(qpu_result_name(QpuResult::Stopped), "Stopped");
  EXPECT_STREQ(qpu_result_name(QpuResult::IllegalInstr), "IllegalInstr");
  EXPECT_STREQ(qpu_result_name(QpuResult::MaskStack), "MaskStack");
  EXPECT_STREQ(qpu_result_name(QpuResult::FetchFault), "FetchFault");
}

// ---------------------------------------------------------------------------------------------
// Counters.

TEST_F(QpuTest, CountersFollowTheCostModel) {
  params.wg_size = 32;  // 2 batches: everything counts twice
  params.shared_bytes = 64;
  Prog p;
  p.lane_offset();           // 2 ALU
  p.op0(Op::Nop);            // 1
  p.movf(1, 2.0f);           // 1
  p.rrr(Op::Fdiv, 2, 1, 1);  // 1 + 7
  p.rrr(Op::Divu, 2, 1, 1);  // 1 + 7
  p.rri(Op::Remu, 2, 1, 3);  // 1 + 7
  for (Op op : {Op::Fexp, Op::Flog, Op::Frcp, Op::Frsq, Op::Fsqrt, Op::Ftanh})
    p.rr(op, 3, 1);              // 6 x (1 + 3), sfu
  p.load(Op::Ld, 4, 0, kA);      // 1 + 3, mem
  p.store(Op::St, 0, kOut, 4);   // 1 + 3, mem
  p.load(Op::Ld4, 4, 0, kA);     // 1 + 6, mem
  p.store(Op::St4, 0, kOut, 4);  // 1 + 6, mem
  p.load(Op::Ldu, 4, 0, kA);     // 1 + 1, mem
  p.load(Op::Ldu4, 4, 0, kA);    // 1 + 2, mem
  p.load(Op::Lds, 4, 0, 0);      // 1 + 1, mem
  p.store(Op::Sts, 0, 0, 4);     // 1 + 1, mem
  p.unif(5);                     // 1 + 1
  p.bar();                       // 1 + 2
  p.movi(6, 2);                  // 1
  const size_t loop = p.pc();
  p.rri(Op::Sub, 6, 6, 1);      // 2 x 1
  p.branch(Op::Bany, 6, loop);  // 2 x 1
  p.end();                      // 1
  run_ok(p);
  const uint64_t instr = 2 + 1 + 1 + 3 + 6 + 8 + 1 + 1 + 1 + 4 + 1;
  const uint64_t extra = 3 * 7 + 6 * 3 + 3 + 3 + 6 + 6 + 1 + 2 + 1 + 1 + 1 + 2;
  EXPECT_EQ(counters.instructions, 2 * instr);
  EXPECT_EQ(counters.cycles, 2 * (instr + extra));
  EXPECT_EQ(counters.mem_ops, 2u * 8);
  EXPECT_EQ(counters.sfu_ops, 2u * 6);
  // Counters accumulate across workgroups.
  run_ok(p);
  EXPECT_EQ(counters.instructions, 4 * instr);
}

// ---------------------------------------------------------------------------------------------
// Two host threads, two contexts, one memory.

TEST(QpuThreads, TwoContextsShareOneMemory) {
  FlatMemory mem(kPages);
  Prog p;
  p.sreg(0, Sreg::GlobalX);
  p.rri(Op::Shl, 1, 0, 2);
  p.rrr(Op::Mul, 2, 0, 0);
  p.store(Op::St, 1, kOut, 2);
  p.end();
  mem.set_words(kCode, p.words());
  DispatchParams params;
  params.shader_va = kCode;
  params.wg_size = 64;
  params.num_wg[0] = 128;
  std::atomic<bool> stop{false};
  QpuResult results[2];
  auto worker = [&](int t) {
    QpuContext ctx;
    QpuCounters c;
    results[t] = QpuResult::Done;
    for (uint32_t x = t; x < 128; x += 2) {
      const QpuResult r = ctx.run_workgroup(params, x, 0, 0, t, mem, stop, c);
      if (r != QpuResult::Done) results[t] = r;
    }
  };
  std::thread a(worker, 0), b(worker, 1);
  a.join();
  b.join();
  EXPECT_EQ(results[0], QpuResult::Done);
  EXPECT_EQ(results[1], QpuResult::Done);
  for (uint32_t g = 0; g < 128 * 64; ++g) ASSERT_EQ(mem.u32(kOut + 4 * g), g * g) << g;
}

}  // namespace
}  // namespace rplayer::hw
