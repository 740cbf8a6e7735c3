// Normalizations: Softmax along any axis and LRN (across or within channels).
// Softmax: a lane owns one (outer, inner) position and runs the CPU reference's three
// passes over the axis (max, exp and sum, divide), so results are identical.
// LRN: a lane owns one pixel of one channel; the window sum of squares is in the CPU's
// order; the power is exp(-beta * log(base)), close to but not exactly std::pow.
#include <cfloat>

#include "nn/gpu/common_kernels.h"
#include "nn/gpu/ops.h"
#include "nn/model_error.h"

namespace rplayer::nn::gpu {

using jit::KernelBuilder;
using jit::Type;
using jit::Value;
using jit::Var;
using runtime::Arg;
using runtime::Grid;

namespace {

jit::Kernel softmax_kernel() {
  KernelBuilder kb("softmax");
  const Value x = kb.buffer("in"), y = kb.buffer("out");
  const Value outer = kb.spec_u32("outer", 1), axis = kb.spec_u32("axis", 1),
              inner = kb.spec_u32("inner", 1);
  const Value idx = flat_index(kb);
  kb.if_(idx < outer * inner, [&] {
    const Value o = idx / inner, i = idx % inner;
    const Value off = (o * axis * inner + i) * 4u;
    const Value xb = x + off, yb = y + off;
    const Value step = inner * 4u;
    Var mx = kb.var(kb.f32(-FLT_MAX));
    Var xp = kb.var(xb);
    kb.for_(
        0u, axis, 1u,
        [&](Value) {
          const Value p = xp;
          mx = max(mx, kb.load(p));
          xp = p + step;
        },
        4);
    Var sum = kb.var(kb.f32(0.0f));
    Var xq = kb.var(xb), yq = kb.var(yb);
    kb.for_(
        0u, axis, 1u,
        [&](Value) {
          const Value p = xq, q = yq;
          const Value e = exp(kb.load(p) - mx);
          kb.store(q, e);
          sum = sum + e;
          xq = p + step;
          yq = q + step;
        },
        4);
    Var yr = kb.var(yb);
    kb.for_(
        0u, axis, 1u,
        [&](Value) {
          const Value q = yr;
          kb.store(q, kb.load(q) / sum);
          yr = q + step;
        },
        4);
  });
  return kb.finish();
}

// region 0: sum over channels [q - size/2, q + size/2]; 1: over a size x size window.
jit::Kernel lrn_kernel(int region, int size, float alpha_n, float beta, float bias) {
  KernelBuilder kb("lrn_r" + std::to_string(region) + "_n" + std::to_string(size));
  const Value x = kb.buffer("in"), y = kb.buffer("out");
  const Value w = kb.spec_u32("w", 1), h = kb.spec_u32("h", 1), c = kb.spec_i32("c", 1);
  const Value i = kb.global_id_x(), q = kb.workgroup_id(1);
  const Value plane = w * h;
  kb.if_(i < plane, [&] {
    const Value xv = kb.load(x + (q * plane + i) * 4u);
    Var sum = kb.var(kb.f32(0.0f));
    if (region == 0) {
      const Value qi = q.as(Type::I32);
      const Value lo = max(qi - size / 2, 0), hi = min(qi + size / 2 + 1, c);
      Var p = kb.var(x + (lo.as(Type::U32) * plane + i) * 4u);
      kb.for_(lo, hi, 1, [&](Value) {
        const Value pp = p;
        const Value v = kb.load(pp);
        sum = sum + v * v;
        p = pp + plane * 4u;
      });
    } else {
      const Value yy = (i / w).as(Type::I32), xx = (i % w).as(Type::I32);
      const int r = size / 2;
      const Value base = x + q * plane * 4u;
      for (int dy = -r; dy < size - r; ++dy)
        for (int dx = -r; dx < size - r; ++dx) {
          const Value sy = yy + dy, sx = xx + dx;
          const Value ok = sy.as(Type::U32) < h && sx.as(Type::U32) < w;
          const Value addr = base + select(ok, (sy * w.as(Type::I32) + sx).as(Type::U32) * 4u, 0u);
          const Value v = kb.load(addr);
          sum = sum + select(ok, v * v, 0.0f);
        }
    }
    const Value base = fma(Value(sum), kb.f32(alpha_n), kb.f32(bias));
    const Value scale = exp(log(base) * -beta);
    kb.store(y + (q * plane + i) * 4u, xv * scale);
  });
  return kb.finish();
}

}  // namespace

void encode_softmax(OpContext& ctx) {
  const BlobRef& in = ctx.input();
  const Shape& s = in.shape;
  int axis = ctx.layer().params.get_int(0, 0);
  if (axis < 0) axis += s.dims;
  if (axis < 0 || axis >= s.dims) throw ModelError("axis out of range");
  const std::vector<int> e = s.outer_dims();
  uint32_t outer = 1, len = 1, inner = 1;
  for (int i = 0; i < int(e.size()); i++)
    (i < axis ? outer : i == axis ? len : inner) *= uint32_t(e[i]);
  jit::Specialization spec;
  spec.set_u32("outer", outer).set_u32("axis", len).set_u32("inner", inner);
  const jit::Kernel k = softmax_kernel();
  ctx.dispatch(k, flat_grid(ctx, k, uint64_t(outer) * inner, spec), {in.arg(), ctx.output().arg()},
               spec);
}

void encode_lrn(OpContext& ctx) {
  const ParamDict& p = ctx.layer().params;
  const int region = p.get_int(0, 0), size = p.get_int(1, 5);
  const float alpha = p.get_float(2, 1.f), beta = p.get_float(3, 0.75f), bias = p.get_float(4, 1.f);
  const BlobRef& in = ctx.input();
  const Shape& s = in.shape;
  if (s.dims != 3) ctx.unsupported("LRN of a " + std::to_string(s.dims) + "-D blob");
  if (size <= 0 || size > 15) ctx.unsupported("LRN local_size " + std::to_string(size));
  const float alpha_n = region == 0 ? alpha / size : alpha / float(size * size);
  jit::Specialization spec;
  spec.set_u32("w", uint32_t(s.w)).set_u32("h", uint32_t(s.h)).set_i32("c", s.c);
  ctx.dispatch(lrn_kernel(region, size, alpha_n, beta, bias),
               Grid::invocations(uint64_t(s.w) * s.h, uint32_t(s.c)),
               {in.arg(), ctx.output().arg()}, spec);
}

}  // namespace rplayer::nn::gpu
