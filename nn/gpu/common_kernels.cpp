#include "nn/gpu/common_kernels.h"

#include <algorithm>

#include "nn/model_error.h"
#include "runtime/jit/shader_cache.h"

namespace rplayer::nn::gpu {

using jit::KernelBuilder;
using jit::Type;
using jit::Value;
using runtime::Arg;
using runtime::Grid;

namespace {
constexpr uint32_t kMaxGridDim = 0xffff;
}  // namespace

Value flat_index(KernelBuilder& kb) {
  return kb.workgroup_id(1) * kb.num_workgroups(0) * kb.workgroup_size() + kb.global_id_x();
}

Grid flat_grid(runtime::Device& dev, const jit::Kernel& kernel, uint64_t invocations,
               const jit::Specialization& spec) {
  const uint32_t wg = dev.shaders().get(kernel, spec).compiled.wg_size;
  const uint64_t groups = std::max<uint64_t>((invocations + wg - 1) / wg, 1);
  if (groups <= kMaxGridDim) return Grid::workgroups(uint32_t(groups));
  const uint64_t rows = (groups + kMaxGridDim - 1) / kMaxGridDim;
  if (rows > kMaxGridDim)
    throw ModelError("a blob of " + std::to_string(invocations) +
                     " elements is not supported on the GPU");
  return Grid::workgroups(uint32_t((groups + rows - 1) / rows), uint32_t(rows));
}

Grid flat_grid(OpContext& ctx, const jit::Kernel& kernel, uint64_t invocations,
               const jit::Specialization& spec) {
  return flat_grid(ctx.device(), kernel, invocations, spec);
}

Value load_n(KernelBuilder& kb, const Value& addr, int width) {
  return width == 4 ? kb.load4(addr) : kb.load(addr);
}

std::vector<Value> components(const Value& v, int width) {
  if (width == 1) return {v};
  return {v[0], v[1], v[2], v[3]};
}

void store_n(KernelBuilder& kb, const Value& addr, const std::vector<Value>& v) {
  if (v.size() == 4) {
    kb.store4(addr, kb.vec4(v[0], v[1], v[2], v[3]));
  } else {
    kb.store(addr, v[0]);
  }
}

void for_each4(KernelBuilder& kb, const Value& unit, const Value& n,
               const std::function<void(const Value& first, int width)>& body) {
  const Value first = unit * 4u;
  kb.if_(first < n, [&] {
    kb.if_else(
        first + 4u <= n, [&] { body(first, 4); },
        [&] {
          // The tail of the last unit: up to three single elements.
          for (uint32_t k = 0; k < 3; ++k) {
            const Value i = first + k;
            kb.if_(i < n, [&] { body(i, 1); });
          }
        });
  });
}

std::vector<RowCol> row_cols(const Value& first, uint32_t step, int count, const Value& w,
                             bool step_le_w) {
  std::vector<RowCol> rc;
  rc.push_back({first / w, first % w});
  for (int k = 1; k < count; ++k) {
    if (!step_le_w) {
      const Value p = first + step * uint32_t(k);
      rc.push_back({p / w, p % w});
      continue;
    }
    // Integer division is dear on the QPU model: step from the previous pixel instead.
    const Value x = rc.back().x + step;
    const Value wrap = x >= w;
    rc.push_back({rc.back().y + to_u32(wrap), x - select(wrap, w, 0u)});
  }
  return rc;
}

namespace {

jit::Kernel copy_kernel(bool unit_stride) {
  KernelBuilder kb(unit_stride ? "copy3d" : "gather3d");
  const Value src = kb.buffer("src"), dst = kb.buffer("dst");
  const Value X = kb.scalar("X", Type::U32);
  const Value sx = unit_stride ? kb.u32(1) : kb.scalar("sx", Type::U32);
  const Value sy = kb.scalar("sy", Type::U32), sz = kb.scalar("sz", Type::U32);
  const Value dy = kb.scalar("dy", Type::U32), dz = kb.scalar("dz", Type::U32);
  const Value y = kb.workgroup_id(1), z = kb.workgroup_id(2);
  const Value srow = src + (z * sz + y * sy) * 4u;
  const Value drow = dst + (z * dz + y * dy) * 4u;
  if (unit_stride) {
    for_each4(kb, kb.global_id_x(), X, [&](const Value& first, int width) {
      const Value off = first * 4u;
      store_n(kb, drow + off, components(load_n(kb, srow + off, width), width));
    });
  } else {
    const Value x = kb.global_id_x();
    kb.if_(x < X, [&] { kb.store(drow + x * 4u, kb.load(srow + x * sx * 4u)); });
  }
  return kb.finish();
}

}  // namespace

void dispatch_copy(OpContext& ctx, const BlobRef& src, const BlobRef& dst, const Copy3d& c) {
  if (c.X == 0 || c.Y == 0 || c.Z == 0) return;
  if (c.Y > kMaxGridDim || c.Z > kMaxGridDim)
    ctx.unsupported("a copy of " + std::to_string(c.Z) + " x " + std::to_string(c.Y) + " rows");
  const bool unit = c.sx == 1;
  std::vector<Arg> args = {src.arg(c.src_off * 4), dst.arg(c.dst_off * 4), Arg::u32(c.X)};
  if (!unit) args.push_back(Arg::u32(c.sx));
  for (uint32_t v : {c.sy, c.sz, c.dy, c.dz}) args.push_back(Arg::u32(v));
  const uint64_t lanes = unit ? (uint64_t(c.X) + 3) / 4 : c.X;
  ctx.dispatch(copy_kernel(unit), Grid::invocations(lanes, c.Y, c.Z), args);
}

namespace {

// Four consecutive output elements of one channel per lane (fewer batches; st4 when the
// four are in the plane).
jit::Kernel pad_kernel(int type, bool per_channel_fill) {
  KernelBuilder kb("pad_t" + std::to_string(type) + (per_channel_fill ? "_pcfill" : ""));
  const Value in = kb.buffer("in"), out = kb.buffer("out");
  const Value fill_buf = per_channel_fill ? kb.buffer("fill") : Value();
  const Value iw = kb.spec_i32("in_w", 1), ih = kb.spec_i32("in_h", 1), ic = kb.spec_i32("in_c", 1);
  const Value ow = kb.spec_u32("out_w", 1), oh = kb.spec_u32("out_h", 1);
  const Value top = kb.spec_i32("top"), left = kb.spec_i32("left"), front = kb.spec_i32("front");
  const Value value = kb.spec_f32("value");
  const Value q = kb.workgroup_id(1);
  const Value plane = oh * ow;
  const Value sq = q.as(Type::I32) - front;
  const Value fill = per_channel_fill ? kb.load_uniform(fill_buf + q * 4u) : value;
  const Value chan_ok = sq.as(Type::U32) < ic.as(Type::U32);
  const Value src = in + (sq * ih * iw).as(Type::U32) * 4u;
  auto element = [&](const RowCol& rc) {
    const Value y = rc.y.as(Type::I32), x = rc.x.as(Type::I32);
    Value sy = y - top, sx = x - left;
    if (type == 1) {
      sy = min(max(sy, 0), ih - 1);
      sx = min(max(sx, 0), iw - 1);
    } else if (type == 2) {
      sy = select(sy < 0, -sy, select(sy >= ih, (ih - 1) * 2 - sy, sy));
      sx = select(sx < 0, -sx, select(sx >= iw, (iw - 1) * 2 - sx, sx));
    }
    const Value ok =
        chan_ok && sy.as(Type::U32) < ih.as(Type::U32) && sx.as(Type::U32) < iw.as(Type::U32);
    const Value off = (sy * iw + sx).as(Type::U32) * 4u;
    return select(ok, kb.load(select(ok, src + off, in)), fill);
  };
  const Value orow = out + q * plane * 4u;
  for_each4(kb, kb.global_id_x(), plane, [&](const Value& first, int width) {
    std::vector<Value> v;
    for (const RowCol& rc : row_cols(first, 1, width, ow, true)) v.push_back(element(rc));
    store_n(kb, orow + first * 4u, v);
  });
  return kb.finish();
}

}  // namespace

void dispatch_pad(OpContext& ctx, const BlobRef& src, const BlobRef& dst, const PadSpec& p,
                  const runtime::Buffer* per_channel_fill) {
  const Shape& s = src.shape;
  const Shape& o = dst.shape;
  const int in_c = s.dims >= 3 ? s.c : 1, out_c = o.dims >= 3 ? o.c : 1;
  if (out_c > int(kMaxGridDim))
    ctx.unsupported("padding of " + std::to_string(out_c) + " channels");
  jit::Specialization spec;
  spec.set_i32("in_w", s.w).set_i32("in_h", s.h).set_i32("in_c", in_c);
  spec.set_u32("out_w", uint32_t(o.w)).set_u32("out_h", uint32_t(o.h));
  spec.set_i32("top", p.top).set_i32("left", p.left).set_i32("front", p.front);
  spec.set_f32("value", p.value);
  std::vector<Arg> args = {src.arg(), dst.arg()};
  if (per_channel_fill) args.push_back(Arg::buffer(*per_channel_fill));
  ctx.dispatch(pad_kernel(p.type, per_channel_fill != nullptr),
               Grid::invocations((uint64_t(o.w) * o.h + 3) / 4, uint32_t(out_c)), args, spec);
}

BlobRef bordered(OpContext& ctx, const BlobRef& in, const PadBox& pad, float value) {
  if (pad.left == 0 && pad.right == 0 && pad.top == 0 && pad.bottom == 0) return in;
  const Shape& s = in.shape;
  const Shape b = Shape::cube(s.w + pad.left + pad.right, s.h + pad.top + pad.bottom, s.c);
  BlobRef out = ctx.scratch("border", b);
  dispatch_pad(ctx, in, out, {pad.top, pad.left, 0, 0, value});
  return out;
}

}  // namespace rplayer::nn::gpu
