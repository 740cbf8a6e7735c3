// Data movement: copies of aliases that must be materialized, Concat and Slice (copies
// for the parts the executor could not place in place), Crop, Padding, ShuffleChannel,
// Permute and Interp. All are exact: they move values, or (Interp) compute the CPU
// reference's expression from index and weight tables the host computes the same way.
#include <algorithm>
#include <cmath>
#include <cstring>

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

int normalize_axis(int axis, int dims) {
  const int a = axis < 0 ? axis + dims : axis;
  if (a < 0 || a >= dims) throw ModelError("axis " + std::to_string(axis) + " out of range");
  return a;
}

// The extents before `axis` as (Z, Y) rows, and the element count from `axis` inward.
struct Rows {
  uint32_t Z = 1, Y = 1;
  uint64_t block_of_axis1 = 1;  // elements per unit of the axis (inner)
};
Rows rows_before(const Shape& s, int axis) {
  const std::vector<int> e = s.outer_dims();
  std::vector<uint32_t> outer(e.begin(), e.begin() + axis);
  Rows r;
  if (outer.size() >= 1) r.Y = outer.back();
  if (outer.size() >= 2) r.Z = outer[outer.size() - 2];
  for (size_t i = 0; i + 2 < outer.size(); ++i) r.Z *= outer[i];
  for (size_t i = size_t(axis) + 1; i < e.size(); ++i) r.block_of_axis1 *= uint32_t(e[i]);
  return r;
}

bool same_place(const BlobRef& a, const BlobRef& b, uint64_t extra_bytes) {
  return a.buffer == b.buffer && uint64_t(a.offset) == uint64_t(b.offset) + extra_bytes;
}

}  // namespace

void encode_copy(OpContext& ctx) {
  for (size_t i = 0; i < ctx.num_outputs(); ++i) {
    const BlobRef& src = ctx.input(std::min(i, ctx.num_inputs() - 1));
    const BlobRef& dst = ctx.output(i);
    if (same_place(src, dst, 0)) continue;
    dispatch_copy(ctx, src, dst, {.X = uint32_t(dst.count())});
  }
}

void encode_concat(OpContext& ctx) {
  const BlobRef& out = ctx.output();
  const int axis = normalize_axis(ctx.layer().params.get_int(0, 0), ctx.input().shape.dims);
  const Rows orow = rows_before(out.shape, axis);
  const uint64_t out_block = uint64_t(out.shape.outer_dims()[axis]) * orow.block_of_axis1;
  uint64_t offset = 0;  // elements into a row of the output
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    const BlobRef& in = ctx.input(i);
    const Rows r = rows_before(in.shape, axis);
    const uint64_t block = uint64_t(in.shape.outer_dims()[axis]) * r.block_of_axis1;
    // Inputs the executor placed inside the output need no copy.
    if (!(r.Z * r.Y == 1 && same_place(in, out, offset * 4))) {
      Copy3d c;
      c.X = uint32_t(block);
      c.Y = r.Y;
      c.Z = r.Z;
      c.sy = uint32_t(block);
      c.sz = uint32_t(block * r.Y);
      c.dy = uint32_t(out_block);
      c.dz = uint32_t(out_block * r.Y);
      c.dst_off = uint32_t(offset);
      dispatch_copy(ctx, in, out, c);
    }
    offset += block;
  }
}

void encode_slice(OpContext& ctx) {
  const BlobRef& in = ctx.input();
  const int axis = normalize_axis(ctx.layer().params.get_int(1, 0), in.shape.dims);
  const std::vector<int> bounds =
      slice_bounds(ctx.layer().params, in.shape, int(ctx.num_outputs()));
  const Rows r = rows_before(in.shape, axis);
  const uint64_t in_block = uint64_t(in.shape.outer_dims()[axis]) * r.block_of_axis1;
  for (size_t k = 0; k < ctx.num_outputs(); ++k) {
    const BlobRef& out = ctx.output(k);
    const uint64_t start = uint64_t(bounds[k]) * r.block_of_axis1;
    const uint64_t block = uint64_t(bounds[k + 1] - bounds[k]) * r.block_of_axis1;
    if (r.Z * r.Y == 1 && same_place(out, in, start * 4)) continue;  // a view
    Copy3d c;
    c.X = uint32_t(block);
    c.Y = r.Y;
    c.Z = r.Z;
    c.sy = uint32_t(in_block);
    c.sz = uint32_t(in_block * r.Y);
    c.dy = uint32_t(block);
    c.dz = uint32_t(block * r.Y);
    c.src_off = uint32_t(start);
    dispatch_copy(ctx, in, out, c);
  }
}

void encode_crop(OpContext& ctx) {
  const BlobRef& in = ctx.input();
  const Shape& s = in.shape;
  if (s.dims > 3) ctx.unsupported("Crop of a 4-D blob");
  const CropRoi roi =
      crop_roi(ctx.layer().params, s, ctx.num_inputs() > 1 ? &ctx.input(1).shape : nullptr);
  const BlobRef& out = ctx.output();
  Copy3d c;
  c.X = uint32_t(roi.outw);
  c.Y = uint32_t(roi.outh);
  c.Z = uint32_t(roi.outc);
  c.sy = uint32_t(s.w);
  c.sz = uint32_t(s.w * s.h);
  c.dy = uint32_t(roi.outw);
  c.dz = uint32_t(roi.outw * roi.outh);
  c.src_off = uint32_t((size_t(roi.coffset) * s.h + roi.hoffset) * s.w + roi.woffset);
  if (size_t(c.X) * c.Y * c.Z != out.count()) throw ModelError("crop size mismatch");
  dispatch_copy(ctx, in, out, c);
}

void encode_padding(OpContext& ctx) {
  const Layer& l = ctx.layer();
  const ParamDict& p = l.params;
  const BlobRef& in = ctx.input();
  if (in.shape.dims == 4) ctx.unsupported("4-D padding");
  PadSpec spec;
  spec.top = p.get_int(0, 0);
  spec.left = p.get_int(2, 0);
  spec.type = p.get_int(4, 0);
  spec.value = p.get_float(5, 0.f);
  spec.front = in.shape.dims == 3 ? p.get_int(7, 0) : 0;
  if (spec.type < 0 || spec.type > 2) ctx.unsupported("Padding type " + std::to_string(spec.type));
  const runtime::Buffer* fill = nullptr;
  if (const Tensor* pv = l.weight("pad_value")) {
    const int out_c = ctx.output().shape.dims == 3 ? ctx.output().shape.c : 1;
    if (int(pv->size()) < out_c) throw ModelError("pad_value has too few values");
    fill = &ctx.weights().floats(ctx.label("pad_value"), pv, uint32_t(out_c));
  }
  dispatch_pad(ctx, in, ctx.output(), spec, fill);
}

void encode_shuffle_channel(OpContext& ctx) {
  const BlobRef& in = ctx.input();
  const int c = in.shape.c;
  int group = ctx.layer().params.get_int(0, 1);
  if (group <= 0 || c % group != 0) throw ModelError("ShuffleChannel group must divide channels");
  if (ctx.layer().params.get_int(1, 0)) group = c / group;
  const uint32_t per_group = uint32_t(c / group), n = uint32_t(in.shape.channel_size());
  // Output channel group * j + i takes input channel per_group * i + j.
  Copy3d cp;
  cp.X = n;
  cp.Y = uint32_t(group);
  cp.Z = per_group;
  cp.sy = per_group * n;
  cp.sz = n;
  cp.dy = n;
  cp.dz = uint32_t(group) * n;
  dispatch_copy(ctx, in, ctx.output(), cp);
}

void encode_permute(OpContext& ctx) {
  const BlobRef& in = ctx.input();
  const Shape& s = in.shape;
  const std::vector<int> axes = permute_axes(ctx.layer().params.get_int(0, 0), s.dims);
  const std::vector<int> e = s.outer_dims();
  std::vector<uint32_t> stride(e.size());
  uint32_t st = 1;
  for (int i = int(e.size()) - 1; i >= 0; i--) {
    stride[i] = st;
    st *= uint32_t(e[i]);
  }
  std::vector<uint32_t> oe, os;  // output extents and their input strides, outermost first
  for (int a : axes) {
    oe.push_back(uint32_t(e[a]));
    os.push_back(stride[a]);
  }
  while (oe.size() < 3) {
    oe.insert(oe.begin(), 1);
    os.insert(os.begin(), 0);
  }
  Copy3d c;
  c.Z = oe[0];
  c.Y = oe[1];
  c.X = oe[2];
  c.sz = os[0];
  c.sy = os[1];
  c.sx = os[2];
  c.dy = oe[2];
  c.dz = oe[1] * oe[2];
  dispatch_copy(ctx, in, ctx.output(), c);
}

namespace {

// Bilinear: the CPU's (1 - a) and a weights and source indices per output row and
// column, looked up per lane.
jit::Kernel interp_kernel(bool bilinear) {
  KernelBuilder kb(bilinear ? "interp_bilinear" : "interp_nearest");
  const Value x = kb.buffer("in"), y = kb.buffer("out");
  const Value xtab = kb.buffer("xtab"), ytab = kb.buffer("ytab");
  const Value w = kb.spec_u32("in_w", 1), h = kb.spec_u32("in_h", 1);
  const Value ow = kb.spec_u32("out_w", 1), oh = kb.spec_u32("out_h", 1);
  const Value i = kb.global_id_x(), q = kb.workgroup_id(1);
  const Value plane = ow * oh;
  kb.if_(i < plane, [&] {
    const Value oy = i / ow, ox = i % ow;
    const Value src = x + q * (w * h) * 4u;
    Value v;
    if (bilinear) {
      // xtab: (sx, sx1, 1 - a, a) per column; ytab the same per row.
      const Value xt = kb.load4(xtab + ox * 16u, 0, Type::U32);
      const Value yt = kb.load4(ytab + oy * 16u, 0, Type::U32);
      const Value r0 = src + yt[0] * w * 4u, r1 = src + yt[1] * w * 4u;
      const Value x0 = xt[0] * 4u, x1 = xt[1] * 4u;
      const Value xb = xt[2].as(Type::F32), xa = xt[3].as(Type::F32);
      const Value yb = yt[2].as(Type::F32), ya = yt[3].as(Type::F32);
      const Value top = fma(kb.load(r0 + x1), xa, kb.load(r0 + x0) * xb);
      const Value bot = fma(kb.load(r1 + x1), xa, kb.load(r1 + x0) * xb);
      v = fma(bot, ya, top * yb);
    } else {
      const Value sx = kb.load(xtab + ox * 4u, 0, Type::U32);
      const Value sy = kb.load(ytab + oy * 4u, 0, Type::U32);
      v = kb.load(src + (sy * w + sx) * 4u);
    }
    kb.store(y + (q * plane + i) * 4u, v);
  });
  return kb.finish();
}

}  // namespace

void encode_interp(OpContext& ctx) {
  const InterpParams p = InterpParams::from(ctx.layer().params);
  const BlobRef& in = ctx.input();
  const BlobRef& out = ctx.output();
  const Shape &s = in.shape, &os = out.shape;
  if (s.dims != 3 && s.dims != 2)
    ctx.unsupported("Interp of a " + std::to_string(s.dims) + "-D blob");
  if (p.resize_type == 3) ctx.unsupported("bicubic Interp");
  const int w = s.w, h = s.h, ow = os.w, oh = os.h, c = s.dims == 3 ? s.c : 1;
  if (c > 0xffff) ctx.unsupported(std::to_string(c) + " channels");
  std::vector<float> xtab, ytab;
  auto bits = [](uint32_t v) {
    float f;
    std::memcpy(&f, &v, 4);
    return f;
  };
  if (p.resize_type == 1) {
    const bool given = p.output_height && p.output_width;
    const float hs = given ? h / float(oh) : 1.f / p.height_scale;
    const float ws = given ? w / float(ow) : 1.f / p.width_scale;
    for (int yy = 0; yy < oh; yy++) ytab.push_back(bits(uint32_t(std::min(int(yy * hs), h - 1))));
    for (int xx = 0; xx < ow; xx++) xtab.push_back(bits(uint32_t(std::min(int(xx * ws), w - 1))));
  } else {
    // Per output index: left, right (clamped), and their weights, as the CPU computes them.
    auto coeffs = [&](int in_size, int out_size, std::vector<float>& tab) {
      std::vector<int> left;
      std::vector<float> alpha;
      interp_linear_coeffs(in_size, out_size, p.align_corner, &left, &alpha);
      for (int d = 0; d < out_size; d++) {
        tab.push_back(bits(uint32_t(left[d])));
        tab.push_back(bits(uint32_t(std::min(left[d] + 1, in_size - 1))));
        tab.push_back(1.f - alpha[d]);
        tab.push_back(alpha[d]);
      }
    };
    coeffs(w, ow, xtab);
    coeffs(h, oh, ytab);
  }
  const runtime::Buffer& xb = ctx.param_table("xtab", xtab);
  const runtime::Buffer& yb = ctx.param_table("ytab", ytab);
  jit::Specialization spec;
  spec.set_u32("in_w", uint32_t(w)).set_u32("in_h", uint32_t(h));
  spec.set_u32("out_w", uint32_t(ow)).set_u32("out_h", uint32_t(oh));
  ctx.dispatch(interp_kernel(p.resize_type == 2), Grid::invocations(uint64_t(ow) * oh, uint32_t(c)),
               {in.arg(), out.arg(), Arg::buffer(xb), Arg::buffer(yb)}, spec);
}

}  // namespace rplayer::nn::gpu
