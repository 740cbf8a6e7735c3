// Reduction (sum, asum, sumsq, mean, max, min, prod, L1, L2, log-sum, log-sum-exp over any
// set of axes). A lane owns one output element and visits its inputs in the CPU
// reference's order (increasing flat index), so results are identical.
#include <cfloat>
#include <functional>

#include "nn/gpu/common_kernels.h"
#include "nn/gpu/ops.h"
#include "nn/layer_params.h"
#include "nn/model_error.h"

namespace rplayer::nn::gpu {

using jit::KernelBuilder;
using jit::Type;
using jit::Value;
using jit::Var;

namespace {

// kept / reduced: input axes, outermost first. Extents and strides are specialization
// constants "e<axis>" and "s<axis>".
jit::Kernel reduction_kernel(int op, float coeff, const std::vector<int>& kept,
                             const std::vector<int>& reduced) {
  std::string name = "reduce_op" + std::to_string(op) + "_k";
  for (int a : kept) name += std::to_string(a);
  name += "_r";
  for (int a : reduced) name += std::to_string(a);
  KernelBuilder kb(name);
  const Value x = kb.buffer("in"), y = kb.buffer("out");
  const Value total = kb.spec_u32("out_total", 1), count = kb.spec_u32("count", 1);
  std::vector<Value> ext(4), stride(4);
  for (int a = 0; a < 4; ++a) {
    ext[a] = kb.spec_u32("e" + std::to_string(a), 1);
    stride[a] = kb.spec_u32("s" + std::to_string(a), 0);
  }
  const Value o = flat_index(kb);
  kb.if_(o < total, [&] {
    Value rem = o, base = x;
    for (int i = int(kept.size()) - 1; i >= 0; --i) {
      const int a = kept[size_t(i)];
      base = base + (rem % ext[a]) * stride[a] * 4u;
      rem = rem / ext[a];
    }
    // Calls f(address) for every reduced element in increasing address order.
    std::function<void(size_t, const Value&, const std::function<void(const Value&)>&)> walk =
        [&](size_t i, const Value& addr, const std::function<void(const Value&)>& f) {
          if (i == reduced.size()) return f(addr);
          const int a = reduced[i];
          kb.for_(0u, ext[a], 1u, [&](Value r) { walk(i + 1, addr + r * stride[a] * 4u, f); });
        };
    Var mx;
    if (op == 10) {
      mx = kb.var(kb.f32(-FLT_MAX));
      walk(0, base, [&](const Value& p) { mx = max(mx, kb.load(p)); });
    }
    const float init = op == 4 ? -FLT_MAX : op == 5 ? FLT_MAX : op == 6 ? 1.f : 0.f;
    Var acc = kb.var(kb.f32(init));
    walk(0, base, [&](const Value& p) {
      const Value v = kb.load(p);
      switch (op) {
        case 1:
        case 7:
          acc = acc + abs(v);
          break;
        case 2:
        case 8:
          acc = acc + v * v;
          break;
        case 4:
          acc = max(acc, v);
          break;
        case 5:
          acc = min(acc, v);
          break;
        case 6:
          acc = acc * v;
          break;
        case 10:
          acc = acc + exp(v - mx);
          break;
        default:
          acc = acc + v;
          break;
      }
    });
    Value v = acc;
    if (op == 3) v = v / to_f32(count);
    if (op == 8) v = sqrt(v);
    if (op == 9) v = log(v);
    if (op == 10) v = log(v) + mx;
    kb.store(y + o * 4u, v * coeff);
  });
  return kb.finish();
}

}  // namespace

void encode_reduction(OpContext& ctx) {
  const ParamDict& p = ctx.layer().params;
  const int op = p.get_int(0, 0);
  const float coeff = p.get_float(2, 1.f);
  const BlobRef& in = ctx.input();
  const Shape& s = in.shape;
  const std::vector<bool> reduce = reduction_axes(p, s);
  const std::vector<int> e = s.outer_dims();
  std::vector<int> kept, reduced;
  uint64_t count = 1;
  jit::Specialization spec;
  uint32_t st = 1;
  for (int a = int(e.size()) - 1; a >= 0; --a) {
    spec.set_u32("e" + std::to_string(a), uint32_t(e[a]));
    spec.set_u32("s" + std::to_string(a), st);
    st *= uint32_t(e[a]);
  }
  for (int a = 0; a < int(e.size()); ++a) {
    (reduce[a] ? reduced : kept).push_back(a);
    if (reduce[a]) count *= uint64_t(e[a]);
  }
  const uint64_t out_total = ctx.output().count();
  if (out_total * count != s.total()) throw ModelError("reduction output size mismatch");
  spec.set_u32("out_total", uint32_t(out_total)).set_u32("count", uint32_t(count));
  const jit::Kernel k = reduction_kernel(op, coeff, kept, reduced);
  ctx.dispatch(k, flat_grid(ctx, k, out_total, spec), {in.arg(), ctx.output().arg()}, spec);
}

}  // namespace rplayer::nn::gpu
