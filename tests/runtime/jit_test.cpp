// The kernel builder and the JIT: diagnostics, instruction selection, specialization,
// unrolling, register allocation, determinism, SKU-dependent layout, and control flow run
// on the modeled GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cstring>

#include "gpu_fixture.h"
#include "hw/isa/isa.h"
#include "runtime/jit/builder.h"
#include "runtime/jit/compiler.h"
#include "runtime/jit/passes.h"

namespace rplayer::runtime {
namespace {

using namespace jit;
using testing::Gpu;
using testing::GpuTest;
using testing::run;
using testing::sku_name;

Target target(const char* sku) { return Target::from_sku(*hw::find_sku(sku)); }

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

int count_op(const CompiledKernel& k, isa::Op op) {
  int n = 0;
  for (uint64_t w : k.code) n += isa::decode_fields(w).op == op;
  return n;
}

// out[i] = in[i] * 2 + 1 for i < n.
Kernel scale_kernel() {
  KernelBuilder kb("scale");
  const Value in = kb.buffer("in"), out = kb.buffer("out"), n = kb.scalar("n", Type::U32);
  const Value i = kb.global_id_x();
  kb.if_(i < n, [&] {
    const Value off = i * 4u;
    kb.store(out + off, kb.load(in + off) * 2.0f + 1.0f);
  });
  return kb.finish();
}

Kernel control_flow_kernel_for_dump() {
  KernelBuilder kb("cf");
  const Value out = kb.buffer("out"), i = kb.global_id_x();
  Var x = kb.var(i);
  kb.while_([&] { return x < 10u; },
            [&] {
              kb.if_else(
                  x == 3u, [&] { x = x + 2u; }, [&] { x = x + 1u; });
              kb.for_(0u, 2u, 1u, [&](Value j) { x = x + j; });
            });
  kb.store(out + i * 4u, x);
  return kb.finish();
}

// ---- Builder diagnostics -------------------------------------------------------------------

TEST(Builder, TypeMismatchIsAClearError) {
  KernelBuilder kb("mix");
  const Value a = kb.f32(1.0f), b = kb.u32(2);
  EXPECT_NE(error_of([&] { (void)(a + b); }).find("kernel 'mix': operator + on f32 and u32"),
            std::string::npos);
  EXPECT_NE(error_of([&] { (void)(b + 1.5); }).find("fractional literal"), std::string::npos);
  EXPECT_NE(error_of([&] { (void)(a % a); }).find("% is not defined for f32"), std::string::npos);
}

TEST(Builder, ValueComputedInABodyCannotEscapeIt) {
  KernelBuilder kb("escape");
  const Value i = kb.global_id_x();
  Value inner;
  kb.if_(i < 4u, [&] { inner = i + 1u; });
  EXPECT_NE(error_of([&] { (void)(inner + 1u); }).find("outside the if/loop body"),
            std::string::npos);
  // A Var declared outside carries values out.
  Var v = kb.var(kb.u32(0));
  kb.if_(i < 4u, [&] { v = i + 1u; });
  EXPECT_NO_THROW((void)(v + 1u));
}

TEST(Builder, BarrierOnlyUnderUniformControlFlow) {
  KernelBuilder kb("bar");
  const Value n = kb.scalar("n", Type::U32);
  const Value i = kb.local_id();
  EXPECT_NE(error_of([&] { kb.if_(i < 3u, [&] { kb.barrier(); }); }).find("lane-divergent"),
            std::string::npos);
  KernelBuilder kb2("bar2");
  const Value n2 = kb2.scalar("n", Type::U32);
  EXPECT_NO_THROW(kb2.if_(n2 > 3u, [&] { kb2.barrier(); }));
  EXPECT_NO_THROW(kb2.for_(0u, n2, 1u, [&](Value) { kb2.barrier(); }));
  (void)n;
}

TEST(Builder, UniformRulesAreChecked) {
  KernelBuilder kb("uni");
  const Value buf = kb.buffer("b");
  const Value i = kb.global_id_x();
  EXPECT_NE(error_of([&] { kb.load_uniform(buf + i * 4u); }).find("same in all lanes"),
            std::string::npos);
  EXPECT_NE(error_of([&] { kb.uniform_var(i); }).find("differs between lanes"), std::string::npos);
  Var u = kb.uniform_var(kb.u32(0));
  EXPECT_NE(error_of([&] { kb.if_(i < 2u, [&] { u = kb.u32(1); }); }).find("lane-divergent"),
            std::string::npos);
  EXPECT_NE(error_of([&] { kb.for_(0u, i, 1u, [](Value) {}); }).find("while_"), std::string::npos);
}

// ---- Instruction selection and folding -----------------------------------------------------

TEST(Compiler, ImmediatesGoIntoOperandB) {
  const CompiledKernel k = compile(scale_kernel(), {}, target("v3d-7.1"));
  // No constant needs a register: 2.0, 1.0, the shift and the bound check are all
  // I-bit operands, and the address arithmetic is one add per buffer.
  EXPECT_EQ(count_op(k, isa::Op::Mov), 0) << k.disassembly();
  EXPECT_NE(k.disassembly().find("fmul"), std::string::npos);
  EXPECT_NE(k.disassembly().find("#2.0"), std::string::npos) << k.disassembly();
  EXPECT_EQ(k.uniform_params, (std::vector<uint32_t>{0, 1, 2}));
  EXPECT_LE(k.code.size(), 16u) << k.disassembly();
}

TEST(Compiler, AddressArithmeticFoldsIntoLoadOffsets) {
  KernelBuilder kb("offsets");
  const Value in = kb.buffer("in"), out = kb.buffer("out");
  const Value base = in + kb.global_id_x() * 16u;
  Value sum = kb.load(base);
  for (int k = 1; k < 4; ++k) sum = sum + kb.load(base + k * 4);
  kb.store(out + kb.global_id_x() * 4u, sum);
  const CompiledKernel c = compile(kb.finish(), {}, target("v3d-7.1"));
  const std::string text = c.disassembly();
  EXPECT_NE(text.find("+ 4]"), std::string::npos) << text;
  EXPECT_NE(text.find("+ 12]"), std::string::npos) << text;
  EXPECT_EQ(count_op(c, isa::Op::Add), 2) << text;  // one per buffer
}

TEST(Compiler, ConstantFolderMatchesTheIsa) {
  uint32_t r = 0;
  ASSERT_TRUE(fold_constant(isa::Op::Divu, 7, 0, 0, &r));
  EXPECT_EQ(r, 0xffffffffu);
  ASSERT_TRUE(fold_constant(isa::Op::Remu, 7, 0, 0, &r));
  EXPECT_EQ(r, 7u);
  ASSERT_TRUE(fold_constant(isa::Op::Asr, 0x80000000u, 33, 0, &r));
  EXPECT_EQ(r, 0xc0000000u);
  ASSERT_TRUE(fold_constant(isa::Op::Ftoi, std::bit_cast<uint32_t>(3e10f), 0, 0, &r));
  EXPECT_EQ(r, 0x7fffffffu);
  EXPECT_FALSE(fold_constant(isa::Op::Fexp, 0, 0, 0, &r)) << "SFU results are the host's";
}

// sum(in[0..N)) with N a specialization constant and the loop fully unrolled.
Kernel unrolled_sum(int32_t unroll) {
  KernelBuilder kb("sum_n");
  const Value in = kb.buffer("in"), out = kb.buffer("out");
  const Value n = kb.spec_u32("N", 4);
  Var acc = kb.var(kb.f32(0.0f));
  kb.for_(
      0u, n, 1u, [&](Value i) { acc = acc + kb.load_uniform(in + i * 4u); }, unroll);
  kb.if_(kb.global_id_x() == 0u, [&] { kb.store(out, acc); });
  return kb.finish();
}

TEST(Compiler, SpecializationConstantsFoldAndUnroll) {
  const Kernel k = unrolled_sum(kFullUnroll);
  const CompiledKernel four = compile(k, Specialization().set_u32("N", 4), target("v3d-7.1"));
  EXPECT_EQ(count_op(four, isa::Op::Bany), 0) << four.disassembly();
  EXPECT_EQ(count_op(four, isa::Op::Ldu), 4);
  EXPECT_EQ(count_op(four, isa::Op::Fadd), 4);
  // The unrolled loads use one address register and immediate offsets.
  EXPECT_NE(four.disassembly().find("+ 12]"), std::string::npos) << four.disassembly();
  const CompiledKernel none = compile(k, Specialization().set_u32("N", 0), target("v3d-7.1"));
  EXPECT_EQ(count_op(none, isa::Op::Ldu), 0);
  const CompiledKernel rolled = compile(unrolled_sum(kNoUnroll), {}, target("v3d-7.1"));
  EXPECT_EQ(count_op(rolled, isa::Op::Bany), 1);
  EXPECT_NE(error_of([&] {
              compile(k, Specialization().set_u32("M", 1), target("v3d-7.1"));
            }).find("no specialization constant named 'M'"),
            std::string::npos);
}

TEST(Compiler, IrDumpAndHashFollowTheIr) {
  const Kernel k = control_flow_kernel_for_dump();
  const std::string text = k.dump();
  EXPECT_NE(text.find("kernel cf"), std::string::npos);
  EXPECT_NE(text.find("while"), std::string::npos) << text;
  EXPECT_NE(text.find("for"), std::string::npos) << text;
  EXPECT_NE(text.find("else"), std::string::npos) << text;
  KernelBuilder kb("scale");
  const Value in = kb.buffer("in"), out = kb.buffer("out"), n = kb.scalar("n", Type::U32);
  const Value i = kb.global_id_x();
  kb.if_(i < n, [&] { kb.store(out + i * 4u, kb.load(in + i * 4u) * 3.0f + 1.0f); });
  EXPECT_NE(kb.finish().hash(), scale_kernel().hash()) << "one constant differs";
}

TEST(Compiler, SameIrAndSkuGiveIdenticalWords) {
  const Kernel a = scale_kernel(), b = scale_kernel();
  EXPECT_EQ(a.hash(), b.hash());
  for (const char* sku : {"v3d-7.1", "v3d-4.2"}) {
    const CompiledKernel x = compile(a, {}, target(sku)), y = compile(b, {}, target(sku));
    EXPECT_EQ(x.code, y.code);
    EXPECT_EQ(x.hash, y.hash);
  }
  // Different specialization values: different hash.
  EXPECT_NE(Specialization().set_u32("N", 3).hash(), Specialization().set_u32("N", 4).hash());
}

// A kernel that stages 64 floats per invocation in shared memory wants as many
// invocations as the SKU's shared memory holds.
Kernel staging_kernel() {
  KernelBuilder kb("staging");
  kb.set_workgroup_mode(WorkgroupMode::Max);
  const Value in = kb.buffer("in"), out = kb.buffer("out");
  const Value tile = kb.shared(0, 64 * 4);
  const Value lid = kb.local_id(), gid = kb.global_id_x();
  const Value slot = tile + lid * 256u;
  kb.store_shared(slot, kb.load(in + gid * 4u));
  kb.barrier();
  const Value other = (lid + 1u) % kb.workgroup_size();
  kb.store(out + gid * 4u, kb.load_shared(tile + other * 256u));
  return kb.finish();
}

TEST(Compiler, SkuChangesWorkgroupSizeAndCode) {
  const Kernel k = staging_kernel();
  const CompiledKernel pi5 = compile(k, {}, target("v3d-7.1"));
  const CompiledKernel pi4 = compile(k, {}, target("v3d-4.2"));
  EXPECT_EQ(pi5.wg_size, 128u);  // 32 KiB / 256 B
  EXPECT_EQ(pi4.wg_size, 64u);   // 16 KiB / 256 B
  EXPECT_NE(pi5.code, pi4.code) << "the folded workgroup size differs";
  EXPECT_NE(pi5.hash, pi4.hash);
  // Auto prefers 16 lanes per QPU of a slice.
  EXPECT_EQ(compile(scale_kernel(), {}, target("v3d-4.2")).wg_size, 64u);
  KernelBuilder kb("too_big");
  kb.shared(20000);
  kb.store(kb.buffer("o"), kb.f32(0));
  const Kernel big = kb.finish();
  EXPECT_NO_THROW(compile(big, {}, target("v3d-7.1")));
  EXPECT_NE(error_of([&] { compile(big, {}, target("v3d-4.2")); }).find("v3d-4.2 has 16384"),
            std::string::npos);
}

TEST(Compiler, CsdConfigCountsBatchesMinusOne) {
  CompiledKernel k;
  k.name = "k";
  k.wg_size = 64;
  auto cfg = k.csd_cfg({10, 2, 1}, 0x10000, 0x20000);
  EXPECT_EQ(cfg[0], 10u << 16);
  EXPECT_EQ(cfg[1], 2u << 16);
  EXPECT_EQ(cfg[2], 1u << 16);
  EXPECT_EQ(cfg[3], 64u);
  EXPECT_EQ(cfg[4], 4u * 20 - 1);
  EXPECT_EQ(cfg[5], 0x10000u);
  EXPECT_EQ(cfg[6], 0x20000u);
  k.wg_size = 256;
  EXPECT_EQ(k.csd_cfg({1, 1, 1}, 0, 0)[3], 0u) << "256 is encoded as 0";
  EXPECT_THROW(k.csd_cfg({0, 1, 1}, 0, 0), Error);
  EXPECT_THROW(k.csd_cfg({70000, 1, 1}, 0, 0), Error);
  EXPECT_EQ(k.workgroups_for(257), 2u);
}

// `live` values loaded at once, then summed: all are live at the first add.
Kernel pressure_kernel(int live) {
  KernelBuilder kb("pressure" + std::to_string(live));
  const Value in = kb.buffer("in"), out = kb.buffer("out");
  const Value gid = kb.global_id_x();
  std::vector<Value> v;
  for (int k = 0; k < live; ++k) v.push_back(kb.load_uniform(in, 4 * k) * to_f32(gid + 1u));
  Value sum = v[0];
  for (int k = 1; k < live; ++k) sum = sum + v[k];
  kb.store(out + gid * 4u, sum);
  return kb.finish();
}

TEST(Compiler, TooManyLiveValuesReportThePressure) {
  const std::string err = error_of([] { compile(pressure_kernel(70), {}, target("v3d-7.1")); });
  EXPECT_NE(err.find("kernel 'pressure70': out of registers"), std::string::npos) << err;
  EXPECT_NE(err.find("budget 64"), std::string::npos) << err;
  EXPECT_NE(err.find("no spilling"), std::string::npos) << err;
  const CompiledKernel ok = compile(pressure_kernel(56), {}, target("v3d-7.1"));
  EXPECT_GE(ok.max_pressure, 56);
  EXPECT_LE(ok.registers_used, 64);
  Target small = target("v3d-7.1");
  small.register_budget = 32;
  EXPECT_THROW(compile(pressure_kernel(40), {}, small), Error);
}

TEST(Compiler, MaskStackDepthIsChecked) {
  auto nest = [](int depth) {
    KernelBuilder kb("nest" + std::to_string(depth));
    const Value out = kb.buffer("out"), i = kb.global_id_x();
    std::function<void(int)> level = [&](int d) {
      if (d == 0) {
        kb.store(out + i * 4u, i);
        return;
      }
      kb.if_(i != uint32_t(d), [&] { level(d - 1); });
    };
    level(depth);
    return kb.finish();
  };
  EXPECT_NO_THROW(compile(nest(16), {}, target("v3d-7.1")));
  EXPECT_NE(error_of([&] { compile(nest(17), {}, target("v3d-7.1")); }).find("mask stack"),
            std::string::npos);
}

// Instructions of the innermost loop: from the last bany's target up to the bany.
std::vector<isa::Instr> inner_loop(const CompiledKernel& k) {
  for (size_t pc = k.code.size(); pc-- > 0;) {
    const isa::Instr in = isa::decode_fields(k.code[pc]);
    if (in.op != isa::Op::Bany) continue;
    std::vector<isa::Instr> body;
    for (size_t q = pc + int32_t(in.imm); q <= pc; ++q)
      body.push_back(isa::decode_fields(k.code[q]));
    return body;
  }
  return {};
}

int count(const std::vector<isa::Instr>& v, isa::Op op) {
  return int(std::count_if(v.begin(), v.end(), [&](const isa::Instr& i) { return i.op == op; }));
}

// A direct 2-D convolution (NCHW fp32) as the compiler sees a hot loop: each lane owns one
// output pixel and oc_block output channels; weights come by ldu4 from a packed layout
// [oc_block group][in_c][kh][kw][oc_block]; the input-channel loop is unrolled by the JIT;
// taps in the padding load a safe address and select 0. Only compiled, never run: the
// operators nn/gpu runs are tested bit-exact against the CPU in tests/nn_gpu.
struct ConvShape {
  uint32_t in_c = 1, in_h = 1, in_w = 1;
  uint32_t out_c = 1;
  uint32_t kernel_h = 1, kernel_w = 1;
  uint32_t stride = 1, pad = 0;

  uint32_t out_h() const { return (in_h + 2 * pad - kernel_h) / stride + 1; }
  uint32_t out_w() const { return (in_w + 2 * pad - kernel_w) / stride + 1; }
};

Kernel conv_kernel(const ConvShape& s, uint32_t oc_block, int32_t ic_unroll) {
  const uint32_t kh = s.kernel_h, kw = s.kernel_w, stride = s.stride, pad = s.pad;
  const uint32_t ocb = oc_block, taps = kh * kw;
  KernelBuilder kb("conv_" + std::to_string(kh) + "x" + std::to_string(kw) + "_s" +
                   std::to_string(stride) + "_p" + std::to_string(pad) + "_b" +
                   std::to_string(ocb));
  const Value in = kb.buffer("in"), w = kb.buffer("weights"), bias = kb.buffer("bias"),
              out = kb.buffer("out");
  const Value ic = kb.spec_u32("in_c", 1), ih = kb.spec_u32("in_h", 1), iw = kb.spec_u32("in_w", 1),
              oh = kb.spec_u32("out_h", 1), ow = kb.spec_u32("out_w", 1),
              oc = kb.spec_u32("out_c", 1);
  const Value p = kb.global_id_x();
  const Value g = kb.workgroup_id(1);
  const Value npix = oh * ow;

  kb.if_(p < npix, [&] {
    const Value oy = p / ow, ox = p % ow;
    const Value plane = ih * iw * 4u;  // bytes per input channel

    // Accumulators start at the bias: 4 output channels per ldu4.
    std::vector<Var> acc;
    const Value bias_g = bias + g * (ocb * 4);
    for (uint32_t j = 0; j < ocb / 4; ++j)
      acc.push_back(kb.var4(kb.load_uniform4(bias_g, int32_t(16 * j))));
    auto accumulate = [&](const Value& x, const Value& wp, uint32_t tap) {
      for (uint32_t j = 0; j < ocb / 4; ++j) {
        const Value wv = kb.load_uniform4(wp, int32_t((tap * ocb + 4 * j) * 4));
        for (int k = 0; k < 4; ++k) acc[j].set(k, fma(x, wv[k], acc[j][k]));
      }
    };
    Var wp = kb.uniform_var(w + g * (ic * (taps * ocb * 4)));
    const uint32_t wstep = taps * ocb * 4;

    if (pad == 0) {
      // Every tap is in bounds: one pointer, tap offsets as immediates.
      Var xp = kb.var(in + (oy * stride * iw + ox * stride) * 4u);
      kb.for_(
          0u, ic, 1u,
          [&](Value) {
            const Value x0 = xp, w0 = wp;
            for (uint32_t ky = 0; ky < kh; ++ky)
              for (uint32_t kx = 0; kx < kw; ++kx)
                accumulate(kb.load(x0 + (ky * iw + kx) * 4u), w0, ky * kw + kx);
            xp = x0 + plane;
            wp = w0 + wstep;
          },
          ic_unroll);
    } else {
      // Per tap: the lane's pointer (in bounds: the channel's first pixel when the tap
      // falls in the padding) and whether the tap is real.
      const Value iy0 = (oy * stride).as(Type::I32) - int32_t(pad);
      const Value ix0 = (ox * stride).as(Type::I32) - int32_t(pad);
      std::vector<Var> xp;
      std::vector<Value> valid;
      for (uint32_t ky = 0; ky < kh; ++ky) {
        for (uint32_t kx = 0; kx < kw; ++kx) {
          const Value iy = (iy0 + int32_t(ky)).as(Type::U32);
          const Value ix = (ix0 + int32_t(kx)).as(Type::U32);
          const Value ok = iy < ih && ix < iw;
          valid.push_back(ok);
          xp.push_back(kb.var(in + select(ok, (iy * iw + ix) * 4u, 0u)));
        }
      }
      kb.for_(
          0u, ic, 1u,
          [&](Value) {
            const Value w0 = wp;
            for (uint32_t tap = 0; tap < taps; ++tap) {
              const Value x0 = xp[tap];
              accumulate(select(valid[tap], kb.load(x0), 0.0f), w0, tap);
              xp[tap] = x0 + plane;
            }
            wp = w0 + wstep;
          },
          ic_unroll);
    }

    // out[g * ocb + c][p], for the channels that exist.
    const Value obase = out + p * 4u + g * (ocb * 4) * npix;
    for (uint32_t j = 0; j < ocb / 4; ++j) {
      for (int k = 0; k < 4; ++k) {
        const uint32_t c = 4 * j + uint32_t(k);
        const Value v = acc[j][k];
        kb.if_(g * ocb + c < oc, [&] { kb.store(obase + c * 4u * npix, v); });
      }
    }
  });
  return kb.finish();
}

Specialization conv_spec(const ConvShape& s) {
  Specialization spec;
  spec.set_u32("in_c", s.in_c)
      .set_u32("in_h", s.in_h)
      .set_u32("in_w", s.in_w)
      .set_u32("out_h", s.out_h())
      .set_u32("out_w", s.out_w())
      .set_u32("out_c", s.out_c);
  return spec;
}

TEST(Compiler, ConvInnerLoopsSpendTheirInstructionsOnFfma) {
  // 1x1, 16 output channels per lane: per input channel 1 ld, 4 ldu4, 16 ffma, and the
  // pointer bumps and loop test.
  ConvShape s{.in_c = 64, .in_h = 20, .in_w = 20, .out_c = 64};
  const CompiledKernel one =
      compile(conv_kernel(s, /*oc_block=*/16, /*ic_unroll=*/4), conv_spec(s), target("v3d-7.1"));
  const auto loop1 = inner_loop(one);
  EXPECT_EQ(count(loop1, isa::Op::Ffma), 64);
  EXPECT_EQ(count(loop1, isa::Op::Ldu4), 16);
  EXPECT_EQ(count(loop1, isa::Op::Ld), 4);
  EXPECT_LE(loop1.size(), 4u * 21 + 5) << one.disassembly();
  // 3x3 with padding: per tap also the pointer bump and the padding select.
  s.kernel_h = s.kernel_w = 3;
  s.pad = 1;
  const CompiledKernel three =
      compile(conv_kernel(s, /*oc_block=*/16, /*ic_unroll=*/1), conv_spec(s), target("v3d-7.1"));
  const auto loop3 = inner_loop(three);
  EXPECT_EQ(count(loop3, isa::Op::Ffma), 9 * 16);
  EXPECT_EQ(count(loop3, isa::Op::Ldu4), 9 * 4);
  EXPECT_LE(loop3.size(), 9u * 23 + 4) << three.disassembly();
  EXPECT_LE(three.max_pressure, 48);
}

// ---- On the GPU -----------------------------------------------------------------------------

class JitGpuTest : public GpuTest {};

TEST_P(JitGpuTest, ScaleKernelRuns) {
  const uint32_t n = 1000;
  const std::vector<float> x = testing::random_floats(n, 1);
  Buffer in = gpu.floats(x), out = gpu.zeros(n);
  run(dev(), scale_kernel(), Grid::invocations(n),
      {Arg::buffer(in), Arg::buffer(out), Arg::u32(n)});
  const auto y = out.download<float>(n);
  for (uint32_t i = 0; i < n; ++i) ASSERT_EQ(y[i], x[i] * 2.0f + 1.0f) << i;
}

TEST_P(JitGpuTest, RegistersUnderPressureHoldTheirValues) {
  const int live = 56;
  std::vector<float> w(live);
  for (int k = 0; k < live; ++k) w[size_t(k)] = float(k + 1);
  Buffer in = gpu.floats(w), out = gpu.zeros(64);
  run(dev(), pressure_kernel(live), Grid::invocations(64), {Arg::buffer(in), Arg::buffer(out)});
  const auto y = out.download<float>(64);
  for (uint32_t g = 0; g < 64; ++g) {
    float sum = w[0] * float(g + 1);
    for (int k = 1; k < live; ++k) sum = sum + w[size_t(k)] * float(g + 1);
    ASSERT_EQ(y[g], sum) << g;
  }
}

TEST_P(JitGpuTest, PartialUnrollRunsTheRemainder) {
  std::vector<float> x(10);
  for (int i = 0; i < 10; ++i) x[size_t(i)] = float(1 << i);
  Buffer in = gpu.floats(x), out = gpu.zeros(1);
  run(dev(), unrolled_sum(4), Grid::workgroups(1), {Arg::buffer(in), Arg::buffer(out)},
      Specialization().set_u32("N", 10));
  EXPECT_EQ(out.download<float>(1)[0], 1023.0f);
}

// Per lane: a divergent while loop (Collatz steps, capped) containing a uniform for loop
// with an if/else, inside an if on the lane index.
Kernel control_flow_kernel() {
  KernelBuilder kb("control_flow");
  const Value out = kb.buffer("out");
  const Value i = kb.global_id_x();
  Var steps = kb.var(kb.u32(0));
  Var extra = kb.var(kb.u32(0));
  kb.if_else(
      i % 3u != 0u,
      [&] {
        Var x = kb.var(i + 1u);
        kb.while_([&] { return x != 1u && steps < 200u; },
                  [&] {
                    kb.if_else((x & 1u) == 0u, [&] { x = x >> 1u; }, [&] { x = x * 3u + 1u; });
                    steps = steps + 1u;
                    kb.for_(0u, 3u, 1u, [&](Value j) {
                      kb.if_((x + j) % 4u == 0u, [&] { extra = extra + j; });
                    });
                  });
      },
      [&] { steps = kb.u32(1000) + i; });
  kb.store(out + i * 8u, steps);
  kb.store(out + i * 8u, extra, 4);
  return kb.finish();
}

void control_flow_cpu(uint32_t i, uint32_t* steps, uint32_t* extra) {
  *steps = 0;
  *extra = 0;
  if (i % 3 == 0) {
    *steps = 1000 + i;
    return;
  }
  uint32_t x = i + 1;
  while (x != 1 && *steps < 200) {
    x = (x & 1) == 0 ? x >> 1 : x * 3 + 1;
    ++*steps;
    for (uint32_t j = 0; j < 3; ++j)
      if ((x + j) % 4 == 0) *extra += j;
  }
}

TEST_P(JitGpuTest, NestedControlFlowMatchesTheCpu) {
  const uint32_t n = 200;
  Buffer out = gpu.zeros(2 * n);
  run(dev(), control_flow_kernel(), Grid::invocations(n), {Arg::buffer(out)});
  const auto y = out.download<uint32_t>(2 * n);
  for (uint32_t i = 0; i < n; ++i) {
    uint32_t steps, extra;
    control_flow_cpu(i, &steps, &extra);
    ASSERT_EQ(y[2 * i], steps) << i;
    ASSERT_EQ(y[2 * i + 1], extra) << i;
  }
}

TEST_P(JitGpuTest, FourWideLoadsAndStores) {
  // Each lane reverses one group of 4 floats and scales it by its own index.
  KernelBuilder kb("rev4");
  const Value in = kb.buffer("in"), out = kb.buffer("out"), n = kb.scalar("n", Type::U32);
  const Value i = kb.global_id_x();
  kb.if_(i < n, [&] {
    const Value v = kb.load4(in + i * 16u);
    const Value s = to_f32(i);
    kb.store4(out + i * 16u, kb.vec4(v[3] * s, v[2] * s, v[1] * s, v[0] * s));
  });
  const uint32_t count = 100;
  const std::vector<float> x = testing::random_floats(4 * count, 7);
  Buffer bin = gpu.floats(x), bout = gpu.zeros(4 * count);
  run(dev(), kb.finish(), Grid::invocations(count),
      {Arg::buffer(bin), Arg::buffer(bout), Arg::u32(count)});
  const auto y = bout.download<float>(4 * count);
  for (uint32_t g = 0; g < count; ++g)
    for (int k = 0; k < 4; ++k) ASSERT_EQ(y[4 * g + k], x[4 * g + 3 - k] * float(g)) << g;
}

TEST_P(JitGpuTest, WorkgroupSizeFollowsTheSkuAndSharedMemoryWorks) {
  const Kernel k = staging_kernel();
  const CompiledKernel& c = dev().shaders().get(k).compiled;
  EXPECT_EQ(c.wg_size, GetParam() == "v3d-7.1" ? 128u : 64u);
  const uint32_t n = 4 * c.wg_size;
  std::vector<float> x(n);
  for (uint32_t i = 0; i < n; ++i) x[i] = float(i);
  Buffer in = gpu.floats(x), out = gpu.zeros(n);
  run(dev(), k, Grid::invocations(n), {Arg::buffer(in), Arg::buffer(out)});
  const auto y = out.download<float>(n);
  for (uint32_t i = 0; i < n; ++i) {
    const uint32_t wg = i / c.wg_size, lid = i % c.wg_size;
    ASSERT_EQ(y[i], float(wg * c.wg_size + (lid + 1) % c.wg_size)) << i;
  }
}

RPLAYER_ALL_SKUS(JitGpuTest);

}  // namespace
}  // namespace rplayer::runtime
