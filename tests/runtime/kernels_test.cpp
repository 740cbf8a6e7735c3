// End-to-end kernels on the modeled GPU against CPU results: elementwise, broadcast, a
// shared-memory reduction and matrix multiply.
#include <gtest/gtest.h>

#include <cmath>

#include "gpu_fixture.h"

namespace rplayer::runtime {
namespace {

using namespace jit;
using testing::GpuTest;
using testing::random_floats;
using testing::run;
using testing::sku_name;

class KernelsTest : public GpuTest {};

TEST_P(KernelsTest, Relu) {
  KernelBuilder kb("relu");
  const Value in = kb.buffer("in"), out = kb.buffer("out"), n = kb.scalar("n", Type::U32);
  const Value i = kb.global_id_x();
  kb.if_(i < n, [&] { kb.store(out + i * 4u, max(kb.load(in + i * 4u), 0.0f)); });
  const uint32_t count = 3001;
  const std::vector<float> x = random_floats(count, 11);
  Buffer bin = gpu.floats(x), bout = gpu.zeros(count);
  run(dev(), kb.finish(), Grid::invocations(count),
      {Arg::buffer(bin), Arg::buffer(bout), Arg::u32(count)});
  const auto y = bout.download<float>(count);
  for (uint32_t k = 0; k < count; ++k) ASSERT_EQ(y[k], std::max(x[k], 0.0f)) << k;
}

TEST_P(KernelsTest, AddWithBroadcast) {
  // out[r][c] = a[r][c] + b[c]: x runs over columns, y over rows.
  KernelBuilder kb("add_rows");
  const Value a = kb.buffer("a"), b = kb.buffer("b"), out = kb.buffer("out");
  const Value cols = kb.scalar("cols", Type::U32);
  const Value c = kb.global_id_x(), r = kb.workgroup_id(1);
  kb.if_(c < cols, [&] {
    const Value idx = (r * cols + c) * 4u;
    kb.store(out + idx, kb.load(a + idx) + kb.load(b + c * 4u));
  });
  const uint32_t rows = 7, ncols = 150;
  const std::vector<float> av = random_floats(rows * ncols, 1), bv = random_floats(ncols, 2);
  Buffer ba = gpu.floats(av), bb = gpu.floats(bv, driver::BoUsage::Weights, "bias"),
         bo = gpu.zeros(rows * ncols);
  run(dev(), kb.finish(), Grid::invocations(ncols, rows),
      {Arg::buffer(ba), Arg::buffer(bb), Arg::buffer(bo), Arg::u32(ncols)});
  const auto y = bo.download<float>(rows * ncols);
  for (uint32_t r = 0; r < rows; ++r)
    for (uint32_t c = 0; c < ncols; ++c)
      ASSERT_EQ(y[r * ncols + c], av[r * ncols + c] + bv[c]) << r << "," << c;
}

// out[wg] = sum of in[wg * wg_size .. +wg_size) (zeros past n), by a tree in shared memory.
// The halving loop is unrolled over 8 steps; with the workgroup size folded in, the steps
// beyond it fold away.
Kernel reduce_kernel() {
  KernelBuilder kb("reduce_sum");
  const Value in = kb.buffer("in"), out = kb.buffer("out"), n = kb.scalar("n", Type::U32);
  const Value tile = kb.shared(0, 4);
  const Value lid = kb.local_id(), gid = kb.global_id_x(), wg = kb.workgroup_size();
  Var v = kb.var(kb.f32(0.0f));
  kb.if_(gid < n, [&] { v = kb.load(in + gid * 4u); });
  const Value slot = tile + lid * 4u;
  kb.store_shared(slot, v);
  kb.barrier();
  kb.for_(
      0u, 8u, 1u,
      [&](Value k) {
        const Value stride = wg >> (k + 1u);
        kb.if_(stride != 0u, [&] {
          kb.if_(lid < stride, [&] {
            kb.store_shared(slot, kb.load_shared(slot) + kb.load_shared(slot + stride * 4u));
          });
          kb.barrier();
        });
      },
      kFullUnroll);
  kb.if_(lid == 0u, [&] { kb.store(out + kb.workgroup_id(0) * 4u, kb.load_shared(tile)); });
  return kb.finish();
}

TEST_P(KernelsTest, ReductionWithSharedMemoryAndBarriers) {
  const Kernel k = reduce_kernel();
  const CompiledKernel& c = dev().shaders().get(k).compiled;
  EXPECT_EQ(std::count_if(c.code.begin(), c.code.end(),
                          [](uint64_t w) { return isa::decode_fields(w).op == isa::Op::Bar; }),
            1 + std::countr_zero(c.wg_size))
      << "one barrier per halving step, none for the steps folded away";
  const uint32_t n = 10000;
  std::vector<float> x = random_floats(n, 5, 0.0f, 1.0f);
  // Passes until one value is left, each reading the previous pass's output.
  std::vector<Buffer> bufs;
  bufs.push_back(gpu.floats(x));
  CommandBuffer cb(dev(), "reduce");
  for (uint32_t len = n; len > 1;) {
    const uint32_t groups = c.workgroups_for(len);
    bufs.push_back(gpu.zeros(groups, "partial"));
    if (bufs.size() > 2) cb.barrier();
    cb.dispatch(k, Grid::invocations(len),
                {Arg::buffer(bufs[bufs.size() - 2]), Arg::buffer(bufs.back()), Arg::u32(len)});
    len = groups;
  }
  cb.submit();
  cb.wait();
  double ref = 0;
  for (float v : x) ref += v;
  EXPECT_NEAR(bufs.back().download<float>(1)[0], ref, ref * 1e-5);
  EXPECT_EQ(cb.num_barriers(), cb.dispatches().size() - 1);
}

// C[M][N] = A[M][K] B[K][N]: each invocation computes 4 adjacent columns of one row (ld4 of
// B, ldu of A, st4 of C); K is a specialization constant, the k loop unrolled by 4.
Kernel matmul_kernel() {
  KernelBuilder kb("matmul_4col");
  const Value a = kb.buffer("a"), b = kb.buffer("b"), c = kb.buffer("c");
  const Value K = kb.spec_u32("K"), N = kb.spec_u32("N");
  const Value col4 = kb.global_id_x() * 4u, row = kb.workgroup_id(1);
  kb.if_(col4 < N, [&] {
    Var acc = kb.var4(kb.f32(0.0f));
    Var ap = kb.uniform_var(a + row * K * 4u);
    Var bp = kb.var(b + col4 * 4u);
    kb.for_(
        0u, K, 1u,
        [&](Value) {
          const Value av = kb.load_uniform(ap);
          const Value bv = kb.load4(bp);
          for (int j = 0; j < 4; ++j) acc.set(j, fma(av, bv[j], acc[j]));
          ap = ap + 4u;
          bp = bp + N * 4u;
        },
        4);
    kb.store4(c + (row * N + col4) * 4u, acc);
  });
  return kb.finish();
}

TEST_P(KernelsTest, MatrixMultiply) {
  const uint32_t M = 9, K = 37, N = 44;
  const std::vector<float> av = random_floats(M * K, 3), bv = random_floats(K * N, 4);
  Buffer ba = gpu.floats(av), bb = gpu.floats(bv), bc = gpu.zeros(M * N);
  run(dev(), matmul_kernel(), Grid::invocations(N / 4, M),
      {Arg::buffer(ba), Arg::buffer(bb), Arg::buffer(bc)},
      Specialization().set_u32("K", K).set_u32("N", N));
  const auto y = bc.download<float>(M * N);
  for (uint32_t m = 0; m < M; ++m)
    for (uint32_t n = 0; n < N; ++n) {
      float acc = 0;
      for (uint32_t k = 0; k < K; ++k) {
        const float p = av[m * K + k] * bv[k * N + n];
        acc = acc + p;
      }
      ASSERT_EQ(y[m * N + n], acc) << m << "," << n;
    }
}

RPLAYER_ALL_SKUS(KernelsTest);

}  // namespace
}  // namespace rplayer::runtime
