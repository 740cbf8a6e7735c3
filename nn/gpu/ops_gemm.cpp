// Gemm (ONNX-style: transposes, alpha, beta, C broadcast, constant A/B/C, transposed
// output): a lane owns one output element and sums over K in the CPU reference's order,
// so results are identical. Gemm is rare in the models here, so the kernel is simple.
#include "nn/gpu/common_kernels.h"
#include "nn/gpu/ops.h"
#include "nn/layer_params.h"
#include "nn/model_error.h"

namespace rplayer::nn::gpu {

using jit::KernelBuilder;
using jit::Value;
using jit::Var;
using runtime::Arg;
using runtime::Grid;

namespace {

struct GemmKey {
  int ctype = -1;  // C broadcast: -1 none, 0 scalar, 1/2 per row, 3 full, 4 per column
  bool transpose_out = false;
};

// out[i][j] = alpha * (beta * C[i][j] + sum_k A[i][k] B[k][j]), A and B read through
// strides so that transposes cost nothing. Grid: x columns (lanes), y rows.
jit::Kernel gemm_kernel(const GemmKey& k) {
  KernelBuilder kb("gemm_c" + std::to_string(k.ctype) + (k.transpose_out ? "_t" : ""));
  const Value A = kb.buffer("a"), B = kb.buffer("b"), C = kb.buffer("c"), out = kb.buffer("out");
  const Value M = kb.spec_u32("M", 1), N = kb.spec_u32("N", 1), K = kb.spec_u32("K", 1);
  const Value a_row = kb.spec_u32("a_row"), a_col = kb.spec_u32("a_col");
  const Value b_row = kb.spec_u32("b_row"), b_col = kb.spec_u32("b_col");
  const Value alpha = kb.spec_f32("alpha", 1.f), beta = kb.spec_f32("beta", 1.f);
  const Value j = kb.global_id_x(), i = kb.workgroup_id(1);
  kb.if_(j < N, [&] {
    Value init = kb.f32(0.0f);
    switch (k.ctype) {
      case 0:
        init = kb.load_uniform(C) * beta;
        break;
      case 1:
      case 2:
        init = kb.load_uniform(C + i * 4u) * beta;
        break;
      case 3:
        init = kb.load(C + (i * N + j) * 4u) * beta;
        break;
      case 4:
        init = kb.load(C + j * 4u) * beta;
        break;
      default:
        break;
    }
    Var acc = kb.var(init);
    Var ap = kb.uniform_var(A + i * a_row * 4u);
    Var bp = kb.var(B + j * b_col * 4u);
    kb.for_(
        0u, K, 1u,
        [&](Value) {
          const Value a0 = ap, b0 = bp;
          acc = fma(kb.load_uniform(a0), kb.load(b0), acc);
          ap = a0 + a_col * 4u;
          bp = b0 + b_row * 4u;
        },
        4);
    const Value v = acc * alpha;
    kb.store(out + (k.transpose_out ? j * M + i : i * N + j) * 4u, v);
  });
  return kb.finish();
}

const Tensor& weight(OpContext& ctx, const char* name, size_t expected) {
  const Tensor* t = ctx.layer().weight(name);
  if (!t) throw ModelError(std::string("weight '") + name + "' is missing");
  if (t->size() != expected)
    throw ModelError(std::string("weight '") + name + "' has " + std::to_string(t->size()) +
                     " values, needs " + std::to_string(expected));
  return *t;
}

}  // namespace

void encode_gemm(OpContext& ctx) {
  const Layer& l = ctx.layer();
  const GemmParams p = GemmParams::from(l.params);
  size_t next = 0;
  BlobRef a, b;
  int M, K, N;
  auto rows_of = [](const Shape& s) { return s.dims == 3 ? s.c : s.h; };
  if (p.constantA) {
    M = p.constantM;
    K = p.constantK;
    a = {&ctx.weights().floats(ctx.label("A"), &weight(ctx, "A", size_t(M) * K), uint32_t(M * K)),
         0, Shape::vec(M * K)};
  } else {
    a = ctx.input(next++);
    M = p.transA ? a.shape.w : rows_of(a.shape);
    K = p.transA ? rows_of(a.shape) : a.shape.w;
  }
  if (p.constantB) {
    N = p.constantN;
    b = {&ctx.weights().floats(ctx.label("B"), &weight(ctx, "B", size_t(N) * K), uint32_t(N * K)),
         0, Shape::vec(N * K)};
  } else {
    b = ctx.input(next++);
    N = p.transB ? rows_of(b.shape) : b.shape.w;
  }
  GemmKey key;
  key.transpose_out = p.output_transpose != 0;
  BlobRef c;
  if (p.constantC && p.constant_broadcast_type_C != -1) {
    key.ctype = p.constant_broadcast_type_C;
    const Tensor* ct = l.weight("C");
    if (!ct) throw ModelError("weight 'C' is missing");
    c = {&ctx.weights().floats(ctx.label("C"), ct, uint32_t(ct->size())), 0, ct->shape()};
  } else if (!p.constantC && next < ctx.num_inputs()) {
    c = ctx.input(next);
    const Shape& cs = c.shape;
    if (cs.dims == 1 && cs.w == 1) key.ctype = 0;
    if (cs.dims == 1 && cs.w == M) key.ctype = 1;
    if (cs.dims == 1 && cs.w == N) key.ctype = 4;
    if (cs.dims == 2 && cs.w == 1 && cs.h == M) key.ctype = 2;
    if (cs.dims == 2 && cs.w == N && cs.h == M) key.ctype = 3;
    if (cs.dims == 2 && cs.w == N && cs.h == 1) key.ctype = 4;
    if (key.ctype < 0) throw ModelError("Gemm C of shape " + cs.str() + " does not broadcast");
  }
  if (!c.buffer) c = a;  // unused, but every parameter needs a buffer
  if (M > 0xffff) ctx.unsupported("Gemm with " + std::to_string(M) + " rows");
  if (size_t(M) * N != ctx.output().count()) throw ModelError("Gemm output shape mismatch");
  jit::Specialization spec;
  spec.set_u32("M", uint32_t(M)).set_u32("N", uint32_t(N)).set_u32("K", uint32_t(K));
  spec.set_u32("a_row", uint32_t(p.transA ? 1 : K)).set_u32("a_col", uint32_t(p.transA ? M : 1));
  spec.set_u32("b_row", uint32_t(p.transB ? 1 : N)).set_u32("b_col", uint32_t(p.transB ? K : 1));
  spec.set_f32("alpha", p.alpha).set_f32("beta", p.beta);
  ctx.dispatch(gemm_kernel(key), Grid::invocations(uint64_t(N), uint32_t(M)),
               {a.arg(), b.arg(), c.arg(), ctx.output().arg()}, spec);
}

}  // namespace rplayer::nn::gpu
