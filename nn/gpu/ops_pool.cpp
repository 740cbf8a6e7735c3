// Pooling: windowed max / average (ncnn pad modes 0-3, pad_mode 0's ceil tail, average
// with or without the padding counted) and global pooling. A lane owns one output pixel
// of one channel (grid y) and walks the window unrolled; taps outside the input read
// -FLT_MAX (max) or 0 (average), as the CPU reference's bordered copy does, and the
// average divides by the count of taps the CPU counts, so results are identical.
// Global pooling: a lane owns one channel and sums it in order.
#include <cfloat>

#include "nn/gpu/common_kernels.h"
#include "nn/gpu/ops.h"
#include "nn/layer_params.h"

namespace rplayer::nn::gpu {

using jit::KernelBuilder;
using jit::Type;
using jit::Value;
using jit::Var;
using runtime::Arg;
using runtime::Grid;

namespace {

struct PoolKey {
  int kh = 1, kw = 1, sh = 1, sw = 1;
  bool is_max = true;
  bool include_pad = false;
  bool count_is_inside = true;  // the counted taps are exactly the in-input ones
  bool unpadded = false;        // every window lies inside the input: no checks
};

jit::Kernel pool_kernel(const PoolKey& k) {
  KernelBuilder kb(std::string(k.is_max ? "maxpool" : "avgpool") + "_k" + std::to_string(k.kh) +
                   "x" + std::to_string(k.kw) + "_s" + std::to_string(k.sh) + "x" +
                   std::to_string(k.sw) + (k.include_pad ? "_incpad" : "") +
                   (k.count_is_inside ? "" : "_cnt") + (k.unpadded ? "_nopad" : ""));
  const Value in = kb.buffer("in"), out = kb.buffer("out");
  const Value ih = kb.spec_i32("in_h", 1), iw = kb.spec_i32("in_w", 1);
  const Value oh = kb.spec_u32("out_h", 1), ow = kb.spec_u32("out_w", 1);
  const Value pt = kb.spec_i32("pad_top"), pl = kb.spec_i32("pad_left");
  // Counted region (average without include_pad), in input coordinates.
  const Value cy0 = kb.spec_i32("count_y0"), cy1 = kb.spec_i32("count_y1");
  const Value cx0 = kb.spec_i32("count_x0"), cx1 = kb.spec_i32("count_x1");
  const Value p = kb.global_id_x(), c = kb.workgroup_id(1);
  const Value npix = oh * ow;
  kb.if_(p < npix, [&] {
    const Value oy = (p / ow).as(Type::I32), ox = (p % ow).as(Type::I32);
    const Value iy0 = oy * k.sh - pt, ix0 = ox * k.sw - pl;
    const Value plane = in + c * (ih * iw).as(Type::U32) * 4u;
    const Value x0 = plane + (iy0 * iw + ix0).as(Type::U32) * 4u;
    std::vector<Value> row_in, col_in, row_cnt, col_cnt;
    for (int ky = 0; ky < k.kh; ++ky) {
      const Value iy = iy0 + ky;
      row_in.push_back(iy.as(Type::U32) < ih.as(Type::U32));
      if (!k.count_is_inside) row_cnt.push_back(iy >= cy0 && iy < cy1);
    }
    for (int kx = 0; kx < k.kw; ++kx) {
      const Value ix = ix0 + kx;
      col_in.push_back(ix.as(Type::U32) < iw.as(Type::U32));
      if (!k.count_is_inside) col_cnt.push_back(ix >= cx0 && ix < cx1);
    }
    Value acc = kb.f32(k.is_max ? -FLT_MAX : 0.0f);
    Value area = kb.u32(0);
    for (int ky = 0; ky < k.kh; ++ky) {
      for (int kx = 0; kx < k.kw; ++kx) {
        const Value addr = x0 + (iw * (ky * 4)).as(Type::U32) + uint32_t(kx * 4);
        const Value inside = k.unpadded ? kb.boolean(true) : row_in[ky] && col_in[kx];
        const Value v = k.unpadded ? kb.load(addr)
                                   : select(inside, kb.load(select(inside, addr, plane)),
                                            kb.f32(k.is_max ? -FLT_MAX : 0.0f));
        if (k.is_max) {
          acc = max(acc, v);
        } else if (k.include_pad || k.unpadded) {
          acc = acc + v;
        } else {
          const Value counted = k.count_is_inside ? inside : (row_cnt[ky] && col_cnt[kx]);
          acc = acc + select(counted, v, 0.0f);
          area = area + to_u32(counted);
        }
      }
    }
    if (!k.is_max) {
      // Without padding every tap counts; the CPU then divides by the window size too.
      const bool all = k.include_pad || k.unpadded;
      acc = acc / (all ? kb.f32(float(k.kh * k.kw)) : to_f32(area));
    }
    kb.store(out + (c * npix + p) * 4u, acc);
  });
  return kb.finish();
}

jit::Kernel global_pool_kernel(bool is_max) {
  KernelBuilder kb(is_max ? "global_maxpool" : "global_avgpool");
  const Value in = kb.buffer("in"), out = kb.buffer("out");
  const Value n = kb.spec_u32("n", 1), channels = kb.spec_u32("channels", 1);
  const Value c = kb.global_id_x();
  kb.if_(c < channels, [&] {
    const Value base = in + c * n * 4u;
    Var acc = kb.var(is_max ? kb.load(base) : kb.f32(0.0f));
    Var xp = kb.var(base);
    kb.for_(
        0u, n, 1u,
        [&](Value) {
          const Value x = xp;
          const Value v = kb.load(x);
          acc = is_max ? max(acc, v) : acc + v;
          xp = x + 4u;
        },
        8);
    Value r = acc;
    if (!is_max) r = r / to_f32(n);
    kb.store(out + c * 4u, r);
  });
  return kb.finish();
}

}  // namespace

void encode_pooling(OpContext& ctx) {
  const PoolParams p = PoolParams::from(ctx.layer().params);
  const BlobRef& in = ctx.input();
  const BlobRef& out = ctx.output();
  if (in.shape.dims != 3)
    ctx.unsupported("pooling of a " + std::to_string(in.shape.dims) + "-D blob");
  const int c = in.shape.c, w = in.shape.w, h = in.shape.h;
  if (p.global_pooling) {
    jit::Specialization spec;
    spec.set_u32("n", uint32_t(w * h)).set_u32("channels", uint32_t(c));
    ctx.dispatch(global_pool_kernel(p.pooling_type == 0), Grid::invocations(uint64_t(c)),
                 {in.arg(), out.arg()}, spec);
    return;
  }
  if (p.adaptive_pooling) ctx.unsupported("adaptive pooling");
  if (c > 0xffff) ctx.unsupported(std::to_string(c) + " channels");
  const PadBox pad = p.padding(w, h);
  PoolKey key{p.kernel_h, p.kernel_w,          p.stride_h,
              p.stride_w, p.pooling_type == 0, p.avgpool_count_include_pad != 0,
              true};
  // The CPU counts bordered positions in [declared pad, size - declared pad - tail).
  const int wtail = p.pad_mode == 0 ? pad.right - p.pad_right : 0;
  const int htail = p.pad_mode == 0 ? pad.bottom - p.pad_bottom : 0;
  const int bw = w + pad.left + pad.right, bh = h + pad.top + pad.bottom;
  const int cy0 = p.pad_top - pad.top, cy1 = bh - p.pad_bottom - htail - pad.top;
  const int cx0 = p.pad_left - pad.left, cx1 = bw - p.pad_right - wtail - pad.left;
  key.count_is_inside = cy0 == 0 && cy1 == h && cx0 == 0 && cx1 == w;
  key.unpadded = pad.left == 0 && pad.right == 0 && pad.top == 0 && pad.bottom == 0;
  if ((bw - p.kernel_w) / p.stride_w + 1 != out.shape.w ||
      (bh - p.kernel_h) / p.stride_h + 1 != out.shape.h)
    ctx.unsupported("pooling output " + out.shape.str() + " for input " + in.shape.str());
  jit::Specialization spec;
  spec.set_i32("in_h", h).set_i32("in_w", w);
  spec.set_u32("out_h", uint32_t(out.shape.h)).set_u32("out_w", uint32_t(out.shape.w));
  spec.set_i32("pad_top", pad.top).set_i32("pad_left", pad.left);
  spec.set_i32("count_y0", cy0).set_i32("count_y1", cy1);
  spec.set_i32("count_x0", cx0).set_i32("count_x1", cx1);
  ctx.dispatch(pool_kernel(key),
               Grid::invocations(uint64_t(out.shape.w) * out.shape.h, uint32_t(c)),
               {in.arg(), out.arg()}, spec);
}

}  // namespace rplayer::nn::gpu
