// Convolution, depthwise convolution and InnerProduct: the hot path.
//
// Every kernel accumulates in exactly the CPU reference's order (bias, then input
// channels, then kernel taps; ffma rounds like the CPU's separate multiply and add), so
// the results are bit-identical to run_layer_cpu. Padding is done by a border copy
// first, so the convolution loops have no bounds checks.
//
// Convolution (also grouped): a lane owns one or two output pixels (one in each half of
// the image, so that a load instruction still reads 16 consecutive pixels) and a block of
// 4..16 output channels; each input value it loads feeds the whole block, and each weight
// load (ldu4: 4 weights, one load for all lanes) feeds both pixels. Weights are packed as
// [group][channel block][input channel][tap][block]. Grid: x lanes, y channel blocks,
// z groups.
// Depthwise: a lane owns 1..4 output pixels of one channel (grid y), 16 pixels apart; the
// channel's taps are loaded once into registers.
// InnerProduct: a lane owns one output and reads its weights 4 at a time by ld4, laid out
// so that a batch's 16 lanes read 256 consecutive bytes (one page for many steps, which
// keeps the QPU's TLB warm), and the input 4 values per ldu4.
#include <algorithm>
#include <cstring>

#include "nn/gpu/common_kernels.h"
#include "nn/gpu/ops.h"
#include "nn/layer_params.h"
#include "nn/model_error.h"

namespace rplayer::nn::gpu {

using jit::KernelBuilder;
using jit::Type;
using jit::Value;
using jit::Var;
using runtime::Arg;
using runtime::Grid;

namespace {

std::string act_tags(const std::vector<GpuActivation>& acts) {
  std::string s;
  for (const GpuActivation& a : acts)
    if (!a.none()) s += "_" + a.tag();
  return s;
}

Value apply_all(KernelBuilder& kb, const std::vector<GpuActivation>& acts, Value v) {
  for (const GpuActivation& a : acts) v = apply_activation(kb, a, v);
  return v;
}

// The layer's own activation, then one fused from the next layer.
std::vector<GpuActivation> activations(OpContext& ctx, const Activation& own) {
  std::vector<GpuActivation> acts;
  const GpuActivation a = GpuActivation::from_fused(own);
  if (!a.none()) acts.push_back(a);
  if (!ctx.fused_activation().none()) acts.push_back(ctx.fused_activation());
  return acts;
}

// The bias (nullptr: none, the kernels then add zeros), checked against its length.
const Tensor* bias_of(const Layer& l, size_t n) {
  const Tensor* t = l.weight("bias");
  if (t && t->size() != n)
    throw ModelError("bias has " + std::to_string(t->size()) + " values, needs " +
                     std::to_string(n));
  return t;
}

// Where a prepare job reads t's values in t's own order: the stored buffer, or for a
// transposed store first a flat fp32 copy.
ElementSource in_order(OpContext& ctx, const Tensor& t, const std::string& name) {
  if (WeightStore::stored_in_order(t)) return ctx.weights().stored(t, ctx.label(name));
  return {&ctx.weights().floats(ctx.label(name), &t, uint32_t(t.size())), StorageType::kFloat32};
}

const Tensor& weight(OpContext& ctx, const char* name, size_t expected) {
  const Tensor* t = ctx.layer().weight(name);
  if (!t) throw ModelError(std::string("weight '") + name + "' is missing");
  if (t->size() != expected)
    throw ModelError(std::string("weight '") + name + "' has " + std::to_string(t->size()) +
                     " values, needs " + std::to_string(expected));
  return *t;
}

// ---- Convolution -------------------------------------------------------------------------

struct ConvKey {
  int kh = 1, kw = 1, sh = 1, sw = 1, dh = 1, dw = 1;
  uint32_t ocb = 16;
  int pixels = 1;  // output pixels per lane: p and p + lanes (the image's two halves)
  int unroll = 1;
  bool partial = false;  // the last channel block is not full
  std::vector<GpuActivation> acts;
};

jit::Kernel conv_kernel(const ConvKey& k) {
  const uint32_t ocb = k.ocb, taps = uint32_t(k.kh * k.kw);
  const int P = k.pixels;
  KernelBuilder kb("conv_k" + std::to_string(k.kh) + "x" + std::to_string(k.kw) + "_s" +
                   std::to_string(k.sh) + "x" + std::to_string(k.sw) + "_d" + std::to_string(k.dh) +
                   "x" + std::to_string(k.dw) + "_b" + std::to_string(ocb) + "_p" +
                   std::to_string(P) + act_tags(k.acts));
  const Value in = kb.buffer("in"), w = kb.buffer("weights"), bias = kb.buffer("bias"),
              out = kb.buffer("out");
  // Per group: input channels, output channels and channel blocks.
  const Value ic = kb.spec_u32("in_c", 1), ih = kb.spec_u32("in_h", 1), iw = kb.spec_u32("in_w", 1),
              oh = kb.spec_u32("out_h", 1), ow = kb.spec_u32("out_w", 1),
              oc = kb.spec_u32("out_c", 1), nblk = kb.spec_u32("blocks", 1);
  const Value lanes = kb.spec_u32("lanes", 1);  // pixels of the first half
  const Value p0 = kb.global_id_x(), blk = kb.workgroup_id(1), g = kb.workgroup_id(2);
  const Value npix = oh * ow;
  kb.if_(p0 < lanes, [&] {
    // The lane's pixels; one past the end (odd pixel counts) computes pixel 0 unstored.
    std::vector<Value> pix, real;
    for (int i = 0; i < P; ++i) {
      const Value p = p0 + lanes * uint32_t(i);
      real.push_back(p < npix);
      pix.push_back(i == 0 ? p : select(real.back(), p, 0u));
    }
    const Value plane = ih * iw * 4u;
    const Value gb = g * nblk + blk;
    // acc[pixel][block of 4 channels]
    std::vector<std::vector<Var>> acc(static_cast<size_t>(P));
    const Value bias_g = bias + gb * (ocb * 4);
    for (uint32_t j = 0; j < ocb / 4; ++j) {
      const Value b4 = kb.load_uniform4(bias_g, int32_t(16 * j));
      for (int i = 0; i < P; ++i) acc[size_t(i)].push_back(kb.var4(b4));
    }
    const uint32_t wstep = taps * ocb * 4;
    Var wp = kb.uniform_var(w + gb * (ic * wstep));
    std::vector<Var> xp;
    for (int i = 0; i < P; ++i) {
      const Value oy = pix[size_t(i)] / ow, ox = pix[size_t(i)] % ow;
      xp.push_back(kb.var(in + g * (ic * plane) + (oy * (k.sh * iw) + ox * uint32_t(k.sw)) * 4u));
    }
    kb.for_(
        0u, ic, 1u,
        [&](Value) {
          std::vector<Value> x0;
          for (const Var& v : xp) x0.push_back(v);
          const Value w0 = wp;
          for (int ky = 0; ky < k.kh; ++ky) {
            for (int kx = 0; kx < k.kw; ++kx) {
              const uint32_t tap = uint32_t(ky * k.kw + kx);
              const Value off = (iw * uint32_t(ky * k.dh) + uint32_t(kx * k.dw)) * 4u;
              std::vector<Value> x;
              for (int i = 0; i < P; ++i) x.push_back(kb.load(x0[size_t(i)] + off));
              for (uint32_t j = 0; j < ocb / 4; ++j) {
                const Value wv = kb.load_uniform4(w0, int32_t((tap * ocb + 4 * j) * 4));
                for (int i = 0; i < P; ++i)
                  for (int c = 0; c < 4; ++c)
                    acc[size_t(i)][j].set(c, fma(x[size_t(i)], wv[c], acc[size_t(i)][j][c]));
              }
            }
          }
          for (int i = 0; i < P; ++i) xp[size_t(i)] = x0[size_t(i)] + plane;
          wp = w0 + wstep;
        },
        k.unroll);
    for (int i = 0; i < P; ++i) {
      auto store_pixel = [&] {
        const Value obase = out + (pix[size_t(i)] + (g * oc + blk * ocb) * npix) * 4u;
        for (uint32_t j = 0; j < ocb / 4; ++j) {
          for (int c = 0; c < 4; ++c) {
            const uint32_t ch = 4 * j + uint32_t(c);
            const Value v = apply_all(kb, k.acts, acc[size_t(i)][j][c]);
            auto store = [&] { kb.store(obase + npix * (ch * 4u), v); };
            if (k.partial) {
              kb.if_(blk * ocb + ch < oc, store);
            } else {
              store();
            }
          }
        }
      };
      if (i == 0) {
        store_pixel();
      } else {
        kb.if_(real[size_t(i)], store_pixel);
      }
    }
  });
  return kb.finish();
}

// Output channels per lane: the block size with the fewest instructions per input value
// (one load plus ocb/4 weight loads plus ocb multiply-adds per block).
uint32_t pick_block(int out_c) {
  uint32_t best = 4;
  double best_cost = 1e300;
  for (uint32_t b : {16u, 12u, 8u, 4u}) {
    const double blocks = double((out_c + b - 1) / b);
    const double cost = blocks * (1.0 + 1.25 * b);
    if (cost < best_cost - 1e-9) {
      best_cost = cost;
      best = b;
    }
  }
  return best;
}

void encode_grouped_conv(OpContext& ctx, const ConvParams& p, const BlobRef& src, int group,
                         const std::vector<GpuActivation>& acts) {
  const Layer& l = ctx.layer();
  const BlobRef& out = ctx.output();
  const int inc_g = src.shape.c / group, outc_g = p.num_output / group;
  const int taps = p.kernel_w * p.kernel_h;
  ConvKey key;
  key.kh = p.kernel_h;
  key.kw = p.kernel_w;
  key.sh = p.stride_h;
  key.sw = p.stride_w;
  key.dh = p.dilation_h;
  key.dw = p.dilation_w;
  key.ocb = pick_block(outc_g);
  key.partial = outc_g % int(key.ocb) != 0;
  key.acts = acts;
  const uint64_t npix = uint64_t(out.shape.w) * out.shape.h;
  // Two pixels per lane share each weight load; small images keep one for parallelism.
  key.pixels = npix >= 32 && key.ocb >= 8 ? 2 : 1;
  const int body = taps * int(key.pixels + key.ocb / 4 + key.pixels * key.ocb);
  key.unroll = std::clamp(256 / body, 1, 8);
  const uint64_t lanes = (npix + key.pixels - 1) / key.pixels;
  const uint32_t nblk = (uint32_t(outc_g) + key.ocb - 1) / key.ocb;

  // Packed by a prepare job: OIHW (per group) into [group][block][in][tap][ocb], the
  // channels past the last output of a group zero.
  const Tensor& wt = weight(ctx, "weight", size_t(p.num_output) * inc_g * taps);
  const uint32_t ocb = key.ocb, ni = uint32_t(inc_g), nt = uint32_t(taps), no = uint32_t(outc_g);
  GatherBox wbox;
  wbox.size = {uint32_t(group), nblk, ni, nt, ocb};
  wbox.src_stride = {no * ni * nt, ocb * ni * nt, nt, 1, ni * nt};
  wbox.dst_stride = {nblk * ni * nt * ocb, ni * nt * ocb, nt * ocb, ocb, 1};
  wbox.valid_stride = {0, ocb, 0, 0, 1};
  wbox.valid_limit = no;
  const runtime::Buffer& wbuf =
      ctx.weights().gather(ctx.label("weight.packed"), in_order(ctx, wt, "weight"),
                           uint32_t(wbox.count()), {wbox});
  // The bias likewise as [group][block][ocb].
  const Tensor* bias = bias_of(l, size_t(p.num_output));
  GatherBox bbox;
  bbox.size = {uint32_t(group), nblk, ocb, 1, 1};
  bbox.src_stride = {no, ocb, 1, 0, 0};
  bbox.dst_stride = {nblk * ocb, ocb, 1, 0, 0};
  bbox.valid_stride = {0, ocb, 1, 0, 0};
  bbox.valid_limit = no;
  const runtime::Buffer& bbuf =
      ctx.weights().gather(ctx.label("bias.packed"),
                           bias ? in_order(ctx, *bias, "bias") : ElementSource{},
                           uint32_t(bbox.count()), {bbox});
  jit::Specialization spec;
  spec.set_u32("in_c", uint32_t(inc_g))
      .set_u32("in_h", uint32_t(src.shape.h))
      .set_u32("in_w", uint32_t(src.shape.w))
      .set_u32("out_h", uint32_t(out.shape.h))
      .set_u32("out_w", uint32_t(out.shape.w))
      .set_u32("out_c", uint32_t(outc_g))
      .set_u32("blocks", nblk)
      .set_u32("lanes", uint32_t(lanes));
  if (group > 0xffff || nblk > 0xffff) ctx.unsupported(std::to_string(group) + " groups");
  ctx.dispatch(conv_kernel(key), Grid::invocations(lanes, nblk, uint32_t(group)),
               {src.arg(), Arg::buffer(wbuf), Arg::buffer(bbuf), out.arg()}, spec);
}

// ---- Depthwise ---------------------------------------------------------------------------

struct DwKey {
  int kh = 1, kw = 1, sh = 1, sw = 1, dh = 1, dw = 1;
  int pixels = 1;     // output pixels per lane: a batch covers 16 * pixels consecutive ones
  bool wide = false;  // out_w >= 16: the lane's next pixel is at most one row further
  std::vector<GpuActivation> acts;
};

constexpr int kMaxPreloadedTaps = 28;

jit::Kernel depthwise_kernel(const DwKey& k) {
  const uint32_t taps = uint32_t(k.kh * k.kw), taps4 = (taps + 3) / 4 * 4;
  const int P = k.pixels;
  KernelBuilder kb("dwconv_k" + std::to_string(k.kh) + "x" + std::to_string(k.kw) + "_s" +
                   std::to_string(k.sh) + "x" + std::to_string(k.sw) + "_d" + std::to_string(k.dh) +
                   "x" + std::to_string(k.dw) + "_p" + std::to_string(P) + (k.wide ? "w" : "") +
                   act_tags(k.acts));
  const Value in = kb.buffer("in"), w = kb.buffer("weights"), bias = kb.buffer("bias"),
              out = kb.buffer("out");
  const Value ih = kb.spec_u32("in_h", 1), iw = kb.spec_u32("in_w", 1),
              oh = kb.spec_u32("out_h", 1), ow = kb.spec_u32("out_w", 1);
  const Value lanes = kb.spec_u32("lanes", 1);
  const Value p0 = kb.global_id_x(), c = kb.workgroup_id(1);
  const Value npix = oh * ow;
  kb.if_(p0 < lanes, [&] {
    const Value wc = w + c * (taps4 * 4);
    std::vector<Value> wv;
    if (taps <= uint32_t(kMaxPreloadedTaps)) {
      for (uint32_t t = 0; t < taps; t += 4) {
        const Value v4 = kb.load_uniform4(wc, int32_t(t * 4));
        for (uint32_t j = 0; j < 4 && t + j < taps; ++j) wv.push_back(v4[int(j)]);
      }
    }
    const Value b = kb.load_uniform(bias + c * 4u);
    // Lane l of a batch owns pixels base + l + 16 k: each load instruction reads 16
    // consecutive pixels. Pixels past the end compute garbage that is not stored.
    const Value lane = p0 & 15u;
    const Value first = (p0 - lane) * uint32_t(P) + lane;
    const std::vector<RowCol> rc = row_cols(first, 16, P, ow, k.wide);
    std::vector<Value> pix, real, x0, acc;
    for (int i = 0; i < P; ++i) {
      pix.push_back(first + uint32_t(16 * i));
      real.push_back(pix.back() < npix);
      const Value oy = min(rc[size_t(i)].y, oh - 1u), ox = rc[size_t(i)].x;
      x0.push_back(in + (c * (ih * iw) + oy * (k.sh * iw) + ox * uint32_t(k.sw)) * 4u);
      acc.push_back(b);
    }
    for (int ky = 0; ky < k.kh; ++ky)
      for (int kx = 0; kx < k.kw; ++kx) {
        const uint32_t t = uint32_t(ky * k.kw + kx);
        const Value wt = wv.empty() ? kb.load_uniform(wc, int32_t(t * 4)) : wv[t];
        const Value off = (iw * uint32_t(ky * k.dh) + uint32_t(kx * k.dw)) * 4u;
        for (int i = 0; i < P; ++i)
          acc[size_t(i)] = fma(kb.load(x0[size_t(i)] + off), wt, acc[size_t(i)]);
      }
    for (int i = 0; i < P; ++i) {
      auto store = [&] {
        kb.store(out + (c * npix + pix[size_t(i)]) * 4u, apply_all(kb, k.acts, acc[size_t(i)]));
      };
      kb.if_(real[size_t(i)], store);
    }
  });
  return kb.finish();
}

void encode_depthwise(OpContext& ctx, const ConvParams& p, const BlobRef& src,
                      const std::vector<GpuActivation>& acts) {
  const Layer& l = ctx.layer();
  const BlobRef& out = ctx.output();
  const int c = src.shape.c, taps = p.kernel_w * p.kernel_h, taps4 = (taps + 3) / 4 * 4;
  if (c > 0xffff) ctx.unsupported(std::to_string(c) + " depthwise channels");
  // Each channel's taps padded to a multiple of 4, by a prepare job.
  const Tensor& wt = weight(ctx, "weight", size_t(c) * taps);
  GatherBox box;
  box.size = {1, 1, 1, uint32_t(c), uint32_t(taps4)};
  box.src_stride = {0, 0, 0, uint32_t(taps), 1};
  box.dst_stride = {0, 0, 0, uint32_t(taps4), 1};
  box.valid_stride = {0, 0, 0, 0, 1};
  box.valid_limit = uint32_t(taps);
  const runtime::Buffer& wbuf = ctx.weights().gather(
      ctx.label("weight.packed"), in_order(ctx, wt, "weight"), uint32_t(box.count()), {box});
  const runtime::Buffer& bbuf =
      ctx.weights().floats(ctx.label("bias"), bias_of(l, size_t(c)), uint32_t(c));
  const uint64_t npix = uint64_t(out.shape.w) * out.shape.h;
  // Several pixels per lane: each batch then does more work for its fixed start-up cost,
  // and the weights are loaded once for all of them.
  const int pixels = npix >= 1024 ? 4 : npix >= 256 ? 2 : 1;
  DwKey key{p.kernel_h,   p.kernel_w, p.stride_h,        p.stride_w, p.dilation_h,
            p.dilation_w, pixels,     out.shape.w >= 16, acts};
  const uint64_t lanes = (npix + 16 * pixels - 1) / (16 * pixels) * 16;
  jit::Specialization spec;
  spec.set_u32("in_h", uint32_t(src.shape.h))
      .set_u32("in_w", uint32_t(src.shape.w))
      .set_u32("out_h", uint32_t(out.shape.h))
      .set_u32("out_w", uint32_t(out.shape.w))
      .set_u32("lanes", uint32_t(lanes));
  ctx.dispatch(depthwise_kernel(key), Grid::invocations(lanes, uint32_t(c)),
               {src.arg(), Arg::buffer(wbuf), Arg::buffer(bbuf), out.arg()}, spec);
}

// ---- Fully connected ---------------------------------------------------------------------

struct FcKey {
  bool bias_first = false;  // Convolution of a flat blob starts from the bias
  uint32_t k_tail = 0;      // K % 4
  std::vector<GpuActivation> acts;
};

jit::Kernel fc_kernel(const FcKey& k) {
  KernelBuilder kb(std::string("fc") + (k.bias_first ? "_biasfirst" : "") + "_t" +
                   std::to_string(k.k_tail) + act_tags(k.acts));
  const Value x = kb.buffer("in"), w = kb.buffer("weights"), bias = kb.buffer("bias"),
              out = kb.buffer("out");
  const Value K = kb.spec_u32("K", 4), M = kb.spec_u32("M", 1);
  const Value m = kb.global_id_x(), r = kb.workgroup_id(1);
  kb.if_(m < M, [&] {
    const Value b = kb.load(bias + m * 4u);
    Var acc = kb.var(k.bias_first ? b : kb.f32(0.0f));
    Var xp = kb.uniform_var(x + r * K * 4u);
    // This lane's weights: 4 consecutive k per ld4, 16 lanes side by side (see pack_fc).
    const Value block = w + (m / 16u) * K * 64u;
    Var wp = kb.var(block + (m % 16u) * 16u);
    kb.for_(
        0u, K / 4u, 1u,
        [&](Value) {
          const Value x0 = xp, w0 = wp;
          const Value xv = kb.load_uniform4(x0), wv = kb.load4(w0);
          for (int j = 0; j < 4; ++j) acc = fma(wv[j], xv[j], acc);
          xp = x0 + 16u;
          wp = w0 + 256u;
        },
        4);
    const Value tail = block + (K / 4u) * 256u + (m % 16u) * 4u;
    for (uint32_t j = 0; j < k.k_tail; ++j)
      acc = fma(kb.load(tail, int32_t(64 * j)), kb.load_uniform(xp.get(), int32_t(4 * j)), acc);
    Value v = k.bias_first ? Value(acc) : acc + b;
    kb.store(out + (r * M + m) * 4u, apply_all(kb, k.acts, v));
  });
  return kb.finish();
}

// W[M][K] as the fc kernel reads it: per block of 16 outputs, K/4 groups of
// [16 lanes][4 k], then the K % 4 tail as [tail k][16 lanes]; missing outputs are 0.
// Packed by prepare jobs from W as stored (row and column strides from the store).
const runtime::Buffer& pack_fc(OpContext& ctx, const Tensor& wt, int M, int K) {
  const uint32_t m = uint32_t(M), k = uint32_t(K), blocks = (m + 15) / 16, k4 = k / 4,
                 tail = k % 4;
  const auto [rs, cs] = ctx.weights().matrix_strides(wt, m, k);
  std::vector<GatherBox> boxes;
  if (k4 > 0) {
    GatherBox main;  // (block, group of 4 k, lane, j)
    main.size = {1, blocks, k4, 16, 4};
    main.src_stride = {0, 16 * rs, 4 * cs, rs, cs};
    main.dst_stride = {0, 16 * k, 64, 4, 1};
    main.valid_stride = {0, 16, 0, 1, 0};
    main.valid_limit = m;
    boxes.push_back(main);
  }
  if (tail > 0) {
    GatherBox rest;  // (block, tail k, lane)
    rest.size = {1, 1, blocks, tail, 16};
    rest.src_stride = {0, 0, 16 * rs, cs, rs};
    rest.src_base = 4 * k4 * cs;
    rest.dst_stride = {0, 0, 16 * k, 16, 1};
    rest.dst_base = k4 * 64;
    rest.valid_stride = {0, 0, 16, 0, 1};
    rest.valid_limit = m;
    boxes.push_back(rest);
  }
  return ctx.weights().gather(ctx.label("weight.packed"),
                              ctx.weights().stored(wt, ctx.label("weight")), blocks * 16 * k,
                              boxes);
}

// y[r][m] = act(sum_k W[m][k] x[r][k] + bias[m]) for r < rows.
void encode_fc(OpContext& ctx, const BlobRef& src, int M, int K, int rows, bool bias_first,
               const std::vector<GpuActivation>& acts) {
  const Layer& l = ctx.layer();
  if (rows > 0xffff) ctx.unsupported(std::to_string(rows) + " rows");
  const runtime::Buffer& wbuf = pack_fc(ctx, weight(ctx, "weight", size_t(M) * K), M, K);
  const runtime::Buffer& bbuf =
      ctx.weights().floats(ctx.label("bias"), bias_of(l, size_t(M)), uint32_t(M));
  FcKey key{bias_first, uint32_t(K % 4), acts};
  jit::Specialization spec;
  spec.set_u32("K", uint32_t(K)).set_u32("M", uint32_t(M));
  ctx.dispatch(fc_kernel(key), Grid::invocations(uint64_t(M), uint32_t(rows)),
               {src.arg(), Arg::buffer(wbuf), Arg::buffer(bbuf), ctx.output().arg()}, spec);
}

}  // namespace

void encode_convolution(OpContext& ctx) {
  const Layer& l = ctx.layer();
  const ConvParams p = ConvParams::from(l.params);
  const BlobRef& in = ctx.input();
  const std::vector<GpuActivation> acts = activations(ctx, p.activation);
  if (in.shape.dims == 1) {
    // A 1x1 convolution of a flat blob is an inner product (as ncnn runs it), bias first.
    return encode_fc(ctx, in, p.num_output, in.shape.w, 1, true, acts);
  }
  if (in.shape.dims != 3)
    ctx.unsupported("convolution of a " + std::to_string(in.shape.dims) + "-D blob");
  const int group = l.type == "ConvolutionDepthWise" ? p.group : 1;
  const PadBox pad = p.padding(in.shape.w, in.shape.h);
  const BlobRef src = bordered(ctx, in, pad, p.pad_value);
  const int kext_w = p.dilation_w * (p.kernel_w - 1) + 1,
            kext_h = p.dilation_h * (p.kernel_h - 1) + 1;
  const BlobRef& out = ctx.output();
  if ((src.shape.w - kext_w) / p.stride_w + 1 != out.shape.w ||
      (src.shape.h - kext_h) / p.stride_h + 1 != out.shape.h)
    throw ModelError("output shape " + out.shape.str() + " does not follow from " + in.shape.str());
  if (group == in.shape.c && p.num_output == in.shape.c && group > 1)
    return encode_depthwise(ctx, p, src, acts);
  encode_grouped_conv(ctx, p, src, group, acts);
}

void encode_inner_product(OpContext& ctx) {
  const Layer& l = ctx.layer();
  const int M = l.params.get_int(0, 0);
  const BlobRef& in = ctx.input();
  const BlobRef& out = ctx.output();
  const int rows = out.shape.dims == 2 ? out.shape.h : 1;
  const int K = int(in.count()) / rows;
  encode_fc(ctx, in, M, K, rows, false, activations(ctx, Activation::from(l.params)));
}

}  // namespace rplayer::nn::gpu
