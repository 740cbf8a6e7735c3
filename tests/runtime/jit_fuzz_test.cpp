// Differential test of the JIT: random integer programs (scalar and 4-wide variables,
// lane-divergent if/else, uniform loops with constant and specialization-constant bounds
// under every unroll hint, lane-divergent while loops, st4/ld4 round trips through memory)
// are built with KernelBuilder, run on the modeled GPU, and compared lane by lane with a
// CPU evaluation of the same program.
#include <gtest/gtest.h>

#include <functional>
#include <random>

#include "gpu_fixture.h"

namespace rplayer::runtime {
namespace {

using namespace jit;
using testing::Gpu;
using testing::sku_name;

constexpr int kVars = 6;
constexpr int kOut = kVars + 4;  // words stored per lane: the variables, then the 4-wide one
constexpr uint32_t kSpecN = 3;   // value of the specialization constant "N"

// One lane's state on the CPU.
struct Lane {
  uint32_t gid = 0;
  uint32_t vars[kVars] = {};
  uint32_t vec[4] = {};
  std::vector<uint32_t> loop;  // enclosing loop indices, outermost first
};

using CpuExpr = std::function<uint32_t(const Lane&)>;
using CpuStmt = std::function<void(Lane&)>;

struct Expr {
  Value gpu;
  CpuExpr cpu;
};

class ProgramGen {
 public:
  ProgramGen(uint32_t seed, KernelBuilder& kb) : rng_(seed), kb_(kb) {}

  // Builds the kernel body; returns the CPU program.
  CpuStmt build() {
    const Value out = kb_.buffer("out");
    scratch_ = kb_.buffer("scratch");
    gid_ = kb_.global_id_x();
    spec_ = kb_.spec_u32("N", 1);
    std::vector<CpuStmt> init;
    for (int k = 0; k < kVars; ++k) {
      const uint32_t c = uint32_t(rng_());
      vars_.push_back(kb_.var(gid_ * (k + 1u) + c));
      init.push_back([k, c](Lane& l) { l.vars[k] = l.gid * uint32_t(k + 1) + c; });
    }
    vec_ = kb_.var4(gid_ ^ 0x55u);
    init.push_back([](Lane& l) {
      for (uint32_t& v : l.vec) v = l.gid ^ 0x55u;
    });
    CpuStmt body = block(3, 6);
    const Value base = out + gid_ * (kOut * 4u);
    for (int k = 0; k < kVars; ++k) kb_.store(base, vars_[k], 4 * k);
    kb_.store4(base, vec_, 4 * kVars);
    return [init, body](Lane& l) {
      for (const CpuStmt& s : init) s(l);
      body(l);
    };
  }

 private:
  int pick(int n) { return int(rng_() % uint32_t(n)); }

  Expr leaf() {
    switch (pick(6)) {
      case 5: {
        const int k = pick(4);
        return {vec_[k], [k](const Lane& l) { return l.vec[k]; }};
      }
      case 0: {
        const int k = pick(kVars);
        return {vars_[k], [k](const Lane& l) { return l.vars[k]; }};
      }
      case 1: {
        const uint32_t c = pick(2) ? uint32_t(pick(16)) : uint32_t(rng_());
        return {kb_.u32(c), [c](const Lane&) { return c; }};
      }
      case 2:
        return {gid_, [](const Lane& l) { return l.gid; }};
      case 3:
        return {spec_, [](const Lane&) { return kSpecN; }};
      default: {
        if (loops_.empty()) return {gid_ + 7u, [](const Lane& l) { return l.gid + 7; }};
        const size_t d = size_t(pick(int(loops_.size())));
        return {loops_[d], [d](const Lane& l) { return l.loop[d]; }};
      }
    }
  }

  Expr expr(int depth) {
    if (depth == 0 || pick(4) == 0) return leaf();
    const Expr a = expr(depth - 1), b = expr(depth - 1);
    const CpuExpr ca = a.cpu, cb = b.cpu;
    auto s = [](uint32_t x) { return int32_t(x); };
    switch (pick(14)) {
      case 0:
        return {a.gpu + b.gpu, [=](const Lane& l) { return ca(l) + cb(l); }};
      case 1:
        return {a.gpu - b.gpu, [=](const Lane& l) { return ca(l) - cb(l); }};
      case 2:
        return {a.gpu * b.gpu, [=](const Lane& l) { return ca(l) * cb(l); }};
      case 3:
        return {a.gpu ^ b.gpu, [=](const Lane& l) { return ca(l) ^ cb(l); }};
      case 4:
        return {a.gpu & b.gpu, [=](const Lane& l) { return ca(l) & cb(l); }};
      case 5:
        return {a.gpu << b.gpu, [=](const Lane& l) { return ca(l) << (cb(l) & 31); }};
      case 6:
        return {a.gpu >> b.gpu, [=](const Lane& l) { return ca(l) >> (cb(l) & 31); }};
      case 7:
        return {(a.gpu.as(Type::I32) >> b.gpu.as(Type::I32)).as(Type::U32),
                [=](const Lane& l) { return uint32_t(s(ca(l)) >> (cb(l) & 31)); }};
      case 8:
        return {min(a.gpu, b.gpu), [=](const Lane& l) { return std::min(ca(l), cb(l)); }};
      case 9:
        return {max(a.gpu.as(Type::I32), b.gpu.as(Type::I32)).as(Type::U32),
                [=](const Lane& l) { return uint32_t(std::max(s(ca(l)), s(cb(l)))); }};
      case 10:
        return {a.gpu / b.gpu, [=](const Lane& l) {
                  const uint32_t d = cb(l);
                  return d ? ca(l) / d : 0xffffffffu;
                }};
      case 11:
        return {a.gpu % b.gpu, [=](const Lane& l) {
                  const uint32_t d = cb(l);
                  return d ? ca(l) % d : ca(l);
                }};
      case 12: {
        const Expr c = cond(depth - 1);
        const CpuExpr cc = c.cpu;
        return {select(c.gpu, a.gpu, b.gpu), [=](const Lane& l) { return cc(l) ? ca(l) : cb(l); }};
      }
      default:
        return {fma(a.gpu, b.gpu, kb_.u32(5)), [=](const Lane& l) { return ca(l) * cb(l) + 5; }};
    }
  }

  Expr cond(int depth) {
    const Expr a = expr(depth), b = expr(depth);
    const CpuExpr ca = a.cpu, cb = b.cpu;
    switch (pick(4)) {
      case 0:
        return {a.gpu < b.gpu, [=](const Lane& l) { return uint32_t(ca(l) < cb(l)); }};
      case 1:
        return {a.gpu == b.gpu, [=](const Lane& l) { return uint32_t(ca(l) == cb(l)); }};
      case 2:
        return {a.gpu.as(Type::I32) <= b.gpu.as(Type::I32),
                [=](const Lane& l) { return uint32_t(int32_t(ca(l)) <= int32_t(cb(l))); }};
      default:
        return {(a.gpu & 3u) != 0u, [=](const Lane& l) { return uint32_t((ca(l) & 3) != 0); }};
    }
  }

  CpuStmt block(int depth, int n) {
    std::vector<CpuStmt> stmts;
    for (int i = 0; i < n; ++i) stmts.push_back(stmt(depth));
    return [stmts](Lane& l) {
      for (const CpuStmt& s : stmts) s(l);
    };
  }

  CpuStmt stmt(int depth) {
    const int kind = depth > 0 ? pick(8) : pick(2) * 6;
    if (kind == 6) {  // one component of the 4-wide variable
      const int k = pick(4);
      const Expr e = expr(2);
      vec_.set(k, e.gpu);
      const CpuExpr ce = e.cpu;
      return [k, ce](Lane& l) { l.vec[k] = ce(l); };
    }
    if (kind == 7) {  // st4 of fresh values, ld4 back into two variables
      Expr e[4] = {expr(1), expr(1), expr(1), expr(1)};
      const Value addr = scratch_ + gid_ * 16u;
      kb_.store4(addr, kb_.vec4(e[0].gpu, e[1].gpu, e[2].gpu, e[3].gpu));
      const Value v = kb_.load4(addr, 0, Type::U32);
      const int a = pick(kVars), b = pick(kVars);
      vars_[a] = v[0] ^ v[3];
      vars_[b] = v[1] + v[2];
      const CpuExpr c0 = e[0].cpu, c1 = e[1].cpu, c2 = e[2].cpu, c3 = e[3].cpu;
      return [=](Lane& l) {
        const uint32_t w0 = c0(l), w1 = c1(l), w2 = c2(l), w3 = c3(l);
        l.vars[a] = w0 ^ w3;
        l.vars[b] = w1 + w2;
      };
    }
    if (kind <= 2) {  // assignment
      const int k = pick(kVars);
      const Expr e = expr(3);
      vars_[k] = e.gpu;
      const CpuExpr ce = e.cpu;
      return [k, ce](Lane& l) { l.vars[k] = ce(l); };
    }
    if (kind == 3) {  // if / else on a per-lane condition
      const Expr c = cond(2);
      CpuStmt then_s, else_s;
      kb_.if_else(
          c.gpu, [&] { then_s = block(depth - 1, 1 + pick(3)); },
          [&] { else_s = block(depth - 1, pick(3)); });
      const CpuExpr cc = c.cpu;
      return [=](Lane& l) { cc(l) ? then_s(l) : else_s(l); };
    }
    if (kind == 4) {  // uniform for loop
      const bool by_spec = pick(2);
      const uint32_t begin = uint32_t(pick(3)), step = uint32_t(1 + pick(2));
      const uint32_t end = by_spec ? kSpecN + 2 : uint32_t(pick(6));
      const int32_t unroll = std::array<int32_t, 4>{kNoUnroll, kFullUnroll, 2, 3}[size_t(pick(4))];
      CpuStmt body;
      const Value end_v = by_spec ? spec_ + 2u : kb_.u32(end);
      kb_.for_(
          begin, end_v, step,
          [&](Value i) {
            loops_.push_back(i);
            body = block(depth - 1, 1 + pick(3));
            loops_.pop_back();
          },
          unroll);
      return [=](Lane& l) {
        for (uint32_t i = begin; i < end; i += step) {
          l.loop.push_back(i);
          body(l);
          l.loop.pop_back();
        }
      };
    }
    // A lane-divergent while: each lane runs gid % 4 + its own var's low bit trips.
    const int k = pick(kVars);
    Var count = kb_.var(kb_.u32(0));
    const Value limit = gid_ % 4u + (vars_[k] & 1u);
    CpuStmt body;
    kb_.while_([&] { return count < limit; },
               [&] {
                 body = block(depth - 1, 1 + pick(2));
                 count = count + 1u;
               });
    return [=](Lane& l) {
      const uint32_t lim = l.gid % 4 + (l.vars[k] & 1);
      for (uint32_t c = 0; c < lim; ++c) body(l);
    };
  }

  std::mt19937 rng_;
  KernelBuilder& kb_;
  Value gid_, spec_, scratch_;
  std::vector<Var> vars_;
  Var vec_;
  std::vector<Value> loops_;
};

class JitFuzzTest : public ::testing::TestWithParam<std::string> {};

TEST_P(JitFuzzTest, RandomProgramsMatchTheCpu) {
  Gpu gpu(GetParam());
  const uint32_t lanes = 128;  // whole workgroups: the programs have no bounds check
  Buffer out = gpu.zeros(size_t(lanes) * kOut);
  Buffer scratch = gpu.zeros(size_t(lanes) * 4, "scratch");
  for (uint32_t seed = 1; seed <= 40; ++seed) {
    KernelBuilder kb("fuzz" + std::to_string(seed));
    ProgramGen gen(seed, kb);
    const CpuStmt program = gen.build();
    Kernel k = kb.finish();
    try {
      testing::run(*gpu.dev, k, Grid::invocations(lanes), {Arg::buffer(out), Arg::buffer(scratch)},
                   Specialization().set_u32("N", kSpecN));
    } catch (const Error& e) {
      // Random programs may need more registers than there are; that must be the only
      // reason to fail.
      ASSERT_NE(std::string(e.what()).find("out of registers"), std::string::npos)
          << "seed " << seed << ": " << e.what();
      continue;
    }
    const auto y = out.download<uint32_t>(size_t(lanes) * kOut);
    for (uint32_t g = 0; g < lanes; ++g) {
      Lane l;
      l.gid = g;
      program(l);
      for (int v = 0; v < kOut; ++v)
        ASSERT_EQ(y[g * kOut + uint32_t(v)], v < kVars ? l.vars[v] : l.vec[v - kVars])
            << "seed " << seed << " lane " << g << " word " << v << "\n"
            << k.dump();
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Skus, JitFuzzTest, ::testing::Values("v3d-7.1", "v3d-4.2"), sku_name);

}  // namespace
}  // namespace rplayer::runtime
