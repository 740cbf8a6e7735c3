// Element-wise operators: activations, UnaryOp, BinaryOp (ncnn broadcasting), Eltwise,
// and the per-channel affine layers (BatchNorm, Scale, Bias) and Dropout's scaling.
//
// Most run as a "channel-wise" kernel: grid y is the channel (the outermost axis), lanes
// walk the channel's elements 4 at a time (ld4/st4), and an operand is either the full
// blob, one value per channel (loaded once per batch by ldu) or one value for all.
// Broadcasts that do not fit that pattern use a general strided kernel. Each operation is
// the CPU reference's expression, so results are identical (pow is exp(b log a), which is
// close but not exact).
#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <optional>

#include "nn/gpu/common_kernels.h"
#include "nn/gpu/ops.h"
#include "nn/layer_params.h"
#include "nn/model_error.h"

namespace rplayer::nn::gpu {

using jit::KernelBuilder;
using jit::Type;
using jit::Value;
using runtime::Arg;
using runtime::Grid;

namespace {

constexpr uint32_t kMaxGridDim = 0xffff;

using UnaryFn = std::function<Value(KernelBuilder&, const Value&)>;
using BinaryFn = std::function<Value(KernelBuilder&, const Value&, const Value&)>;

// y = post(f(x)) over n elements (post: an activation fused from the next layer).
void dispatch_unary(OpContext& ctx, const std::string& name, const UnaryFn& f, const BlobRef& in,
                    const BlobRef& out, const GpuActivation& post = {}) {
  KernelBuilder kb("unary_" + name + (post.none() ? "" : "_" + post.tag()));
  const Value x = kb.buffer("in"), y = kb.buffer("out"), n = kb.scalar("n", Type::U32);
  for_each4(kb, flat_index(kb), n, [&](const Value& first, int width) {
    const Value off = first * 4u;
    std::vector<Value> v = components(load_n(kb, x + off, width), width);
    for (Value& e : v) e = apply_activation(kb, post, f(kb, e));
    store_n(kb, y + off, v);
  });
  const jit::Kernel k = kb.finish();
  const uint64_t n_elems = out.count();
  ctx.dispatch(k, flat_grid(ctx, k, (n_elems + 3) / 4),
               {in.arg(), out.arg(), Arg::u32(uint32_t(n_elems))});
}

// How an operand of a channel-wise kernel is read.
enum class Mode { kFull, kPerChannel, kScalar };
const char* mode_name(Mode m) {
  return m == Mode::kFull ? "f" : m == Mode::kPerChannel ? "c" : "s";
}

// out[q][i] = f(a, b) for q < channels, i < inner; a and b full, per channel or scalar.
void dispatch_channelwise(OpContext& ctx, const std::string& name, const BinaryFn& f,
                          const BlobRef& a, Mode ma, const BlobRef& b, Mode mb, const BlobRef& out,
                          uint32_t channels, uint32_t inner, const GpuActivation& post = {}) {
  if (channels > kMaxGridDim) {
    if (ma != Mode::kPerChannel && mb != Mode::kPerChannel) {
      channels = 1;
      inner = uint32_t(out.count());
    } else {
      ctx.unsupported("a per-channel operation over " + std::to_string(channels) + " channels");
    }
  }
  KernelBuilder kb("cw_" + name + "_" + mode_name(ma) + mode_name(mb) +
                   (post.none() ? "" : "_" + post.tag()));
  const Value pa = kb.buffer("a"), pb = kb.buffer("b"), po = kb.buffer("out");
  const Value n = kb.scalar("inner", Type::U32);
  const Value q = kb.workgroup_id(1);
  auto base = [&](const Value& p, Mode m) {
    return m == Mode::kFull ? p + q * n * 4u : m == Mode::kPerChannel ? p + q * 4u : p;
  };
  const Value ba = base(pa, ma), bb = base(pb, mb), bo = po + q * n * 4u;
  const Value ua = ma == Mode::kFull ? Value() : kb.load_uniform(ba);
  const Value ub = mb == Mode::kFull ? Value() : kb.load_uniform(bb);
  for_each4(kb, kb.global_id_x(), n, [&](const Value& first, int width) {
    const Value off = first * 4u;
    auto read = [&](const Value& p, Mode m, const Value& u) {
      if (m == Mode::kFull) return components(load_n(kb, p + off, width), width);
      return std::vector<Value>(size_t(width), u);
    };
    const std::vector<Value> va = read(ba, ma, ua), vb = read(bb, mb, ub);
    std::vector<Value> r;
    for (int i = 0; i < width; ++i) r.push_back(apply_activation(kb, post, f(kb, va[i], vb[i])));
    store_n(kb, bo + off, r);
  });
  const jit::Kernel k = kb.finish();
  ctx.dispatch(k, Grid::invocations((uint64_t(inner) + 3) / 4, channels),
               {a.arg(), b.arg(), out.arg(), Arg::u32(inner)});
}

// pow(a, b) as exp(b * log|a|), with the sign and special cases of std::pow for the
// common inputs (negative bases with integral exponents, zero exponents).
Value pow_approx(KernelBuilder& kb, const Value& a, const Value& b) {
  const Value mag = exp(b * log(abs(a)));
  const Value b_int = floor(b) == b;
  const Value half = b * 0.5f;
  const Value odd = b_int && floor(half) != half;
  const Value neg = select(odd, -mag, mag);
  const Value nan = kb.f32(std::numeric_limits<float>::quiet_NaN());
  const Value r = select(a < 0.0f, select(b_int, neg, nan), mag);
  return select(b == 0.0f, kb.f32(1.0f), r);
}

// atan for any x, Cephes' atanf: range reduction to |x| <= tan(pi/8), then a degree-9 odd
// polynomial (about 1e-7 relative error).
Value atan_approx(KernelBuilder& kb, const Value& v) {
  const Value ax = abs(v);
  const Value big = ax > 2.414213562373095f, mid = ax > 0.4142135623730950f;
  const Value x = select(big, kb.f32(-1.0f) / ax, select(mid, (ax - 1.0f) / (ax + 1.0f), ax));
  const Value base = select(big, kb.f32(1.5707963267948966f),
                            select(mid, kb.f32(0.7853981633974483f), kb.f32(0.0f)));
  const Value z = x * x;
  const Value poly = fma(
      fma(fma(z, z.lit(8.05374449538e-2f), z.lit(-1.38776856032e-1f)), z, z.lit(1.99777106478e-1f)),
      z, z.lit(-3.33329491539e-1f));
  const Value r = base + fma(poly * z, x, x);
  return select(v < 0.0f, -r, r);
}

// atan2(y, x) with std::atan2's quadrants (signed zeros aside).
Value atan2_approx(KernelBuilder& kb, const Value& y, const Value& x) {
  const float pi = 3.14159265358979323846f;
  const Value t = atan_approx(kb, y / x);
  const Value left = select(y < 0.0f, t - pi, t + pi);
  const Value axis =
      select(y > 0.0f, kb.f32(pi / 2), select(y < 0.0f, kb.f32(-pi / 2), kb.f32(0.0f)));
  return select(x > 0.0f, t, select(x < 0.0f, left, axis));
}

BinaryFn binary_fn(int op) {
  switch (op) {
    case 0:
      return [](KernelBuilder&, const Value& a, const Value& b) { return a + b; };
    case 1:
      return [](KernelBuilder&, const Value& a, const Value& b) { return a - b; };
    case 2:
      return [](KernelBuilder&, const Value& a, const Value& b) { return a * b; };
    case 3:
      return [](KernelBuilder&, const Value& a, const Value& b) { return a / b; };
    case 4:
      return [](KernelBuilder&, const Value& a, const Value& b) { return max(a, b); };
    case 5:
      return [](KernelBuilder&, const Value& a, const Value& b) { return min(a, b); };
    case 6:
      return [](KernelBuilder& kb, const Value& a, const Value& b) { return pow_approx(kb, a, b); };
    case 7:
      return [](KernelBuilder&, const Value& a, const Value& b) { return b - a; };
    case 8:
      return [](KernelBuilder&, const Value& a, const Value& b) { return b / a; };
    case 9:
      return [](KernelBuilder& kb, const Value& a, const Value& b) { return pow_approx(kb, b, a); };
    case 10:
      return
          [](KernelBuilder& kb, const Value& a, const Value& b) { return atan2_approx(kb, a, b); };
    case 11:
      return
          [](KernelBuilder& kb, const Value& a, const Value& b) { return atan2_approx(kb, b, a); };
    default:
      return nullptr;
  }
}

// Strides (elements) of a blob aligned to the output's rank: 0 along broadcast axes.
struct Strides {
  uint32_t w = 0, h = 0, d = 0, c = 0;
};
Strides strides_of(const Shape& s) {
  return {s.w == 1 ? 0u : 1u, s.h == 1 ? 0u : uint32_t(s.w), s.d == 1 ? 0u : uint32_t(s.w * s.h),
          s.c == 1 ? 0u : uint32_t(s.channel_size())};
}

// How a channel-wise kernel can read an operand of (expanded) shape s for output o.
std::optional<Mode> channel_mode(const Shape& s, const Shape& o) {
  const bool inner_full = s.w == o.w && s.h == o.h && s.d == o.d;
  const bool inner_one = s.w == 1 && s.h == 1 && s.d == 1;
  if (inner_full && s.c == o.c) return Mode::kFull;
  if (inner_one && s.c == o.c) return o.c == 1 ? Mode::kScalar : Mode::kPerChannel;
  if (inner_one && s.c == 1) return Mode::kScalar;
  if (inner_full && s.c == 1 && o.c == 1) return Mode::kFull;
  return std::nullopt;
}

// out = op(a, b) with any ncnn broadcast, one element per lane.
void dispatch_strided_binary(OpContext& ctx, int op, const BlobRef& a, const Shape& sa,
                             const BlobRef& b, const Shape& sb, const BlobRef& out,
                             const GpuActivation& post) {
  const Shape& o = out.shape;
  KernelBuilder kb("binary_strided_" + std::to_string(op) + (post.none() ? "" : "_" + post.tag()));
  const Value pa = kb.buffer("a"), pb = kb.buffer("b"), po = kb.buffer("out");
  const Value w = kb.spec_u32("w", 1), h = kb.spec_u32("h", 1), d = kb.spec_u32("d", 1);
  const Value total = kb.spec_u32("total", 1);
  Value st[2][4];
  for (int k = 0; k < 2; ++k)
    for (int ax = 0; ax < 4; ++ax)
      st[k][ax] = kb.spec_u32(std::string(1, "ab"[k]) + "_s" + std::to_string(ax));
  const Value i = flat_index(kb);
  kb.if_(i < total, [&] {
    const Value x = i % w, r1 = i / w, y = r1 % h, r2 = r1 / h, z = r2 % d, q = r2 / d;
    auto offset = [&](int k) {
      return (x * st[k][0] + y * st[k][1] + z * st[k][2] + q * st[k][3]) * 4u;
    };
    const Value va = kb.load(pa + offset(0)), vb = kb.load(pb + offset(1));
    kb.store(po + i * 4u, apply_activation(kb, post, binary_fn(op)(kb, va, vb)));
  });
  const jit::Kernel k = kb.finish();
  jit::Specialization spec;
  spec.set_u32("w", uint32_t(o.w)).set_u32("h", uint32_t(o.h)).set_u32("d", uint32_t(o.d));
  spec.set_u32("total", uint32_t(o.total()));
  const Strides s[2] = {strides_of(sa), strides_of(sb)};
  for (int kk = 0; kk < 2; ++kk) {
    const uint32_t v[4] = {s[kk].w, s[kk].h, s[kk].d, s[kk].c};
    for (int ax = 0; ax < 4; ++ax)
      spec.set_u32(std::string(1, "ab"[kk]) + "_s" + std::to_string(ax), v[ax]);
  }
  ctx.dispatch(k, flat_grid(ctx, k, o.total(), spec), {a.arg(), b.arg(), out.arg()}, spec);
}

}  // namespace

void encode_activation(OpContext& ctx) {
  std::optional<GpuActivation> act = GpuActivation::from_layer(ctx.layer());
  if (!act) ctx.unsupported("activation " + ctx.layer().type);
  const GpuActivation a = *act;
  dispatch_unary(
      ctx, a.tag(), [a](KernelBuilder& kb, const Value& v) { return apply_activation(kb, a, v); },
      ctx.input(), ctx.output());
}

void encode_unary_op(OpContext& ctx) {
  const int op = ctx.layer().params.get_int(0, 0);
  UnaryFn f;
  switch (op) {
    case 0:
      f = [](KernelBuilder&, const Value& v) { return abs(v); };
      break;
    case 1:
      f = [](KernelBuilder&, const Value& v) { return -v; };
      break;
    case 2:
      f = [](KernelBuilder&, const Value& v) { return floor(v); };
      break;
    case 3:
      f = [](KernelBuilder&, const Value& v) { return ceil(v); };
      break;
    case 4:
      f = [](KernelBuilder&, const Value& v) { return v * v; };
      break;
    case 5:
      f = [](KernelBuilder&, const Value& v) { return sqrt(v); };
      break;
    case 6:
      f = [](KernelBuilder& kb, const Value& v) { return kb.f32(1.0f) / sqrt(v); };
      break;
    case 7:
      f = [](KernelBuilder&, const Value& v) { return exp(v); };
      break;
    case 8:
      f = [](KernelBuilder&, const Value& v) { return log(v); };
      break;
    case 15:
      f = [](KernelBuilder& kb, const Value& v) { return kb.f32(1.0f) / v; };
      break;
    case 16:
      f = [](KernelBuilder&, const Value& v) { return tanh(v); };
      break;
    case 14:
      f = [](KernelBuilder& kb, const Value& v) { return atan_approx(kb, v); };
      break;
    case 17:
      f = [](KernelBuilder&, const Value& v) { return log(v) * 0.43429448190325176f; };
      break;
    case 18:
      // Round half to even: floor(v + 0.5), one less on odd ties; integral from 2^23 on.
      f = [](KernelBuilder&, const Value& v) {
        const Value r = floor(v + 0.5f);
        const Value half = r * 0.5f;
        const Value odd_tie = (r - v == 0.5f) && floor(half) != half;
        return select(abs(v) >= 8388608.0f, v, select(odd_tie, r - 1.0f, r));
      };
      break;
    case 19:
      f = [](KernelBuilder&, const Value& v) { return select(v < 0.0f, ceil(v), floor(v)); };
      break;
    default:
      ctx.unsupported("UnaryOp op_type " + std::to_string(op));
  }
  dispatch_unary(ctx, "op" + std::to_string(op), f, ctx.input(), ctx.output());
}

void encode_binary_op(OpContext& ctx) {
  const ParamDict& p = ctx.layer().params;
  const int op = p.get_int(0, 0);
  const BinaryFn f = binary_fn(op);
  if (!f) ctx.unsupported("BinaryOp op_type " + std::to_string(op));
  const std::string name = "op" + std::to_string(op);
  const GpuActivation& post = ctx.fused_activation();
  if (p.get_int(1, 0) || ctx.num_inputs() == 1) {
    const float b = p.get_float(2, 0.f);
    dispatch_unary(
        ctx, name + "_scalar",
        [f, b](KernelBuilder& kb, const Value& v) { return f(kb, v, kb.f32(b)); }, ctx.input(),
        ctx.output(), post);
    return;
  }
  const BlobRef& out = ctx.output();
  const Shape& os = out.shape;
  const Shape sa = binary_expand(ctx.input(0).shape, ctx.input(1).shape, os.dims);
  const Shape sb = binary_expand(ctx.input(1).shape, ctx.input(0).shape, os.dims);
  const std::optional<Mode> ma = channel_mode(sa, os), mb = channel_mode(sb, os);
  if (ma && mb) {
    dispatch_channelwise(ctx, name, f, ctx.input(0), *ma, ctx.input(1), *mb, out, uint32_t(os.c),
                         uint32_t(os.channel_size()), post);
    return;
  }
  dispatch_strided_binary(ctx, op, ctx.input(0), sa, ctx.input(1), sb, out, post);
}

void encode_eltwise(OpContext& ctx) {
  const ParamDict& p = ctx.layer().params;
  const int op = p.get_int(0, 0);  // 0 prod, 1 sum, 2 max
  const std::vector<float> coeffs = p.get_floats(1);
  if (op < 0 || op > 2) throw ModelError("Eltwise op_type must be 0..2");
  const BlobRef& out = ctx.output();
  const uint32_t n = uint32_t(out.count());
  for (size_t i = 0; i < ctx.num_inputs(); ++i)
    if (ctx.input(i).count() != n) throw ModelError("Eltwise inputs differ in size");
  const GpuActivation& post = ctx.fused_activation();
  if (ctx.num_inputs() == 1) {
    const bool scale = op == 1 && !coeffs.empty();
    const float c0 = scale ? coeffs[0] : 1.f;
    if (scale || !post.none()) {
      dispatch_unary(
          ctx, "scale", [scale, c0](KernelBuilder&, const Value& v) { return scale ? v * c0 : v; },
          ctx.input(), out, post);
    } else {
      dispatch_copy(ctx, ctx.input(), out, {.X = n});
    }
    return;
  }
  // Two inputs at a time into the output, in the CPU's order: acc = in0 (times its
  // coefficient), then acc = acc op in_k.
  for (size_t k = 1; k < ctx.num_inputs(); ++k) {
    const bool first = k == 1;
    const bool scale_a = first && op == 1 && !coeffs.empty();
    const float ca = scale_a ? coeffs[0] : 1.f;
    const bool scale_b = op == 1 && coeffs.size() > k;
    const float cb = scale_b ? coeffs[k] : 1.f;
    BinaryFn f = [op, scale_a, ca, scale_b, cb](KernelBuilder&, const Value& a, const Value& b) {
      const Value acc = scale_a ? a * ca : a;
      if (op == 0) return acc * b;
      if (op == 2) return max(acc, b);
      return scale_b ? fma(b, b.lit(cb), acc) : acc + b;
    };
    std::string name = std::string(op == 0 ? "prod" : op == 1 ? "sum" : "max");
    if (scale_a || scale_b) name += "_coeff";
    const bool last = k + 1 == ctx.num_inputs();
    dispatch_channelwise(ctx, name, f, first ? ctx.input(0) : out, Mode::kFull, ctx.input(k),
                         Mode::kFull, out, 1, n, last ? post : GpuActivation{});
  }
}

void encode_prelu(OpContext& ctx) {
  const Tensor* slope = ctx.layer().weight("slope");
  if (!slope) throw ModelError("weight 'slope' is missing");
  const BlobRef& in = ctx.input();
  const Shape& s = in.shape;
  const uint32_t channels = uint32_t(s.dims == 1 ? s.w : s.dims == 2 ? s.h : s.c);
  const uint32_t inner = uint32_t(s.dims == 1 ? 1 : s.dims == 2 ? s.w : s.channel_size());
  const bool shared = slope->size() == 1;
  if (!shared && slope->size() < channels) throw ModelError("slope has too few values");
  const runtime::Buffer& b =
      ctx.weights().floats(ctx.label("slope"), slope, uint32_t(slope->size()));
  const BlobRef sref{&b, 0, slope->shape()};
  const BinaryFn f = [](KernelBuilder&, const Value& v, const Value& a) {
    return select(v < 0.0f, v * a, v);
  };
  if (shared) {
    dispatch_channelwise(ctx, "prelu", f, in, Mode::kFull, sref, Mode::kScalar, ctx.output(), 1,
                         uint32_t(in.count()));
  } else if (s.dims == 1) {
    dispatch_channelwise(ctx, "prelu", f, in, Mode::kFull, sref, Mode::kFull, ctx.output(), 1,
                         channels);
  } else {
    dispatch_channelwise(ctx, "prelu", f, in, Mode::kFull, sref, Mode::kPerChannel, ctx.output(),
                         channels, inner);
  }
}

void encode_affine(OpContext& ctx) {
  const Layer& l = ctx.layer();
  const BlobRef& in = ctx.input();
  const BlobRef& out = ctx.output();
  const Shape& s = in.shape;
  if (l.type == "Dropout") {
    const float scale = l.params.get_float(0, 1.f);
    dispatch_unary(
        ctx, "mul", [scale](KernelBuilder&, const Value& v) { return v * scale; }, in, out);
    return;
  }
  // ncnn's per-"channel" axis: w for 1-D, rows for 2-D, channels for 3-D / 4-D.
  const uint32_t channels = uint32_t(s.dims == 1 ? s.w : s.dims == 2 ? s.h : s.c);
  const uint32_t inner = uint32_t(s.dims == 1 ? 1 : s.dims == 2 ? s.w : s.channel_size());
  // A per-channel parameter as fp32 (nullptr: zeros), converted on the GPU if need be.
  auto per_channel = [&](const char* name, const Tensor* t) {
    if (t && t->size() < channels) throw ModelError(std::string(name) + " has too few values");
    return BlobRef{&ctx.weights().floats(ctx.label(name), t, channels), 0,
                   Shape::vec(int(channels))};
  };
  // A 1-D blob's channels are its elements: the parameter is then a full operand.
  const Mode pc = s.dims == 1 ? Mode::kFull : Mode::kPerChannel;
  const uint32_t ch = s.dims == 1 ? 1 : channels, len = s.dims == 1 ? channels : inner;
  if (l.type == "Bias") {
    const Tensor* b = l.weight("bias");
    if (!b) throw ModelError("weight 'bias' is missing");
    const BlobRef bias = per_channel("bias", b);
    dispatch_channelwise(
        ctx, "bias", [](KernelBuilder&, const Value& v, const Value& t) { return v + t; }, in,
        Mode::kFull, bias, pc, out, ch, len);
    return;
  }
  // BatchNorm: b * v + a with the CPU's a and b (folded by a prepare job); Scale:
  // v * s + bias (0 without bias).
  BlobRef mul_blob, add_blob;
  if (l.type == "BatchNorm") {
    const float eps = l.params.get_float(1, 0.f);
    const Tensor *slope = l.weight("slope"), *mean = l.weight("mean"), *var = l.weight("var"),
                 *bias = l.weight("bias");
    if (!slope || !mean || !var || !bias) throw ModelError("BatchNorm weights are missing");
    for (const Tensor* t : {slope, mean, var, bias})
      if (t->size() < channels) throw ModelError("scale has too few values");
    const auto [mul, add] =
        ctx.weights().fold_batchnorm(l.name, *slope, *mean, *var, *bias, eps, channels);
    mul_blob = {mul, 0, Shape::vec(int(channels))};
    add_blob = {add, 0, Shape::vec(int(channels))};
  } else {  // Scale
    if (ctx.num_inputs() > 1) {
      mul_blob = ctx.input(1);
      if (mul_blob.count() < channels) throw ModelError("scale blob has too few values");
    } else {
      const Tensor* sc = l.weight("scale");
      if (!sc) throw ModelError("weight 'scale' is missing");
      mul_blob = per_channel("scale", sc);
    }
    add_blob = per_channel("bias", l.weight("bias"));
  }
  // out = fma(v, mul, add): the CPU's v * mul + add, rounded the same way.
  KernelBuilder kb(std::string("affine_") + (pc == Mode::kFull ? "flat" : "pc"));
  const Value px = kb.buffer("in"), pm = kb.buffer("mul"), pa = kb.buffer("add"),
              po = kb.buffer("out");
  const Value n = kb.scalar("inner", Type::U32);
  const Value q = kb.workgroup_id(1);
  const Value bx = px + q * n * 4u, bo = po + q * n * 4u;
  const Value um = pc == Mode::kFull ? Value() : kb.load_uniform(pm + q * 4u);
  const Value ua = pc == Mode::kFull ? Value() : kb.load_uniform(pa + q * 4u);
  for_each4(kb, kb.global_id_x(), n, [&](const Value& first, int width) {
    const Value off = first * 4u;
    const std::vector<Value> x = components(load_n(kb, bx + off, width), width);
    std::vector<Value> m(size_t(width), um), a(size_t(width), ua);
    if (pc == Mode::kFull) {
      m = components(load_n(kb, pm + off, width), width);
      a = components(load_n(kb, pa + off, width), width);
    }
    std::vector<Value> r;
    for (int i = 0; i < width; ++i) r.push_back(fma(x[i], m[i], a[i]));
    store_n(kb, bo + off, r);
  });
  const jit::Kernel k = kb.finish();
  if (ch > kMaxGridDim) ctx.unsupported(std::to_string(ch) + " channels");
  ctx.dispatch(k, Grid::invocations((uint64_t(len) + 3) / 4, ch),
               {in.arg(), mul_blob.arg(), add_blob.arg(), out.arg(), Arg::u32(len)});
}

}  // namespace rplayer::nn::gpu
