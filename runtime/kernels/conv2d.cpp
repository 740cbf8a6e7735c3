#include "runtime/kernels/conv2d.h"

#include "runtime/error.h"
#include "runtime/jit/builder.h"

namespace rplayer::runtime::kernels {

using jit::KernelBuilder;
using jit::Type;
using jit::Value;
using jit::Var;

namespace {

void validate(const Conv2dShape& s, const Conv2dTuning& t) {
  if (t.oc_block == 0 || t.oc_block % 4 != 0 || t.oc_block > 16)
    throw Error("conv2d: oc_block must be 4, 8, 12 or 16 (got " + std::to_string(t.oc_block) + ")");
  if (s.kernel_h == 0 || s.kernel_w == 0 || s.stride == 0)
    throw Error("conv2d: kernel size and stride must be positive");
  if (s.in_h + 2 * s.pad < s.kernel_h || s.in_w + 2 * s.pad < s.kernel_w)
    throw Error("conv2d: kernel larger than the padded input");
}

}  // namespace

uint32_t conv2d_oc_groups(const Conv2dShape& s, const Conv2dTuning& t) {
  return (s.out_c + t.oc_block - 1) / t.oc_block;
}

jit::Kernel conv2d_kernel(const Conv2dShape& s, const Conv2dTuning& t) {
  validate(s, t);
  const uint32_t kh = s.kernel_h, kw = s.kernel_w, stride = s.stride, pad = s.pad;
  const uint32_t ocb = t.oc_block, taps = kh * kw;
  std::string name = "conv2d_" + std::to_string(kh) + "x" + std::to_string(kw) + "_s" +
                     std::to_string(stride) + "_p" + std::to_string(pad) + "_b" +
                     std::to_string(ocb) + (s.relu ? "_relu" : "");
  KernelBuilder kb(name);
  const Value in = kb.buffer("in"), w = kb.buffer("weights"), bias = kb.buffer("bias"),
              out = kb.buffer("out");
  const Value ic = kb.spec_u32("in_c", 1), ih = kb.spec_u32("in_h", 1), iw = kb.spec_u32("in_w", 1),
              oh = kb.spec_u32("out_h", 1), ow = kb.spec_u32("out_w", 1),
              oc = kb.spec_u32("out_c", 1);
  const Value p = kb.global_id_x();
  const Value g = kb.workgroup_id(1);
  const Value npix = oh * ow;

  kb.if_(p < npix, [&] {
    const Value oy = p / ow, ox = p % ow;
    const Value plane = ih * iw * 4u;  // bytes per input channel

    // Accumulators start at the bias: 4 output channels per ldu4.
    std::vector<Var> acc;
    const Value bias_g = bias + g * (ocb * 4);
    for (uint32_t j = 0; j < ocb / 4; ++j)
      acc.push_back(kb.var4(kb.load_uniform4(bias_g, int32_t(16 * j))));
    auto accumulate = [&](const Value& x, const Value& wp, uint32_t tap) {
      for (uint32_t j = 0; j < ocb / 4; ++j) {
        const Value wv = kb.load_uniform4(wp, int32_t((tap * ocb + 4 * j) * 4));
        for (int k = 0; k < 4; ++k) acc[j].set(k, fma(x, wv[k], acc[j][k]));
      }
    };
    Var wp = kb.uniform_var(w + g * (ic * (taps * ocb * 4)));
    const uint32_t wstep = taps * ocb * 4;

    if (pad == 0) {
      // Every tap is in bounds: one pointer, tap offsets as immediates.
      Var xp = kb.var(in + (oy * stride * iw + ox * stride) * 4u);
      kb.for_(
          0u, ic, 1u,
          [&](Value) {
            const Value x0 = xp, w0 = wp;
            for (uint32_t ky = 0; ky < kh; ++ky)
              for (uint32_t kx = 0; kx < kw; ++kx)
                accumulate(kb.load(x0 + (ky * iw + kx) * 4u), w0, ky * kw + kx);
            xp = x0 + plane;
            wp = w0 + wstep;
          },
          t.ic_unroll);
    } else {
      // Per tap: the lane's pointer (in bounds: the channel's first pixel when the tap
      // falls in the padding) and whether the tap is real.
      const Value iy0 = (oy * stride).as(Type::I32) - int32_t(pad);
      const Value ix0 = (ox * stride).as(Type::I32) - int32_t(pad);
      std::vector<Var> xp;
      std::vector<Value> valid;
      for (uint32_t ky = 0; ky < kh; ++ky) {
        for (uint32_t kx = 0; kx < kw; ++kx) {
          const Value iy = (iy0 + int32_t(ky)).as(Type::U32);
          const Value ix = (ix0 + int32_t(kx)).as(Type::U32);
          const Value ok = iy < ih && ix < iw;
          valid.push_back(ok);
          xp.push_back(kb.var(in + select(ok, (iy * iw + ix) * 4u, 0u)));
        }
      }
      kb.for_(
          0u, ic, 1u,
          [&](Value) {
            const Value w0 = wp;
            for (uint32_t tap = 0; tap < taps; ++tap) {
              const Value x0 = xp[tap];
              accumulate(select(valid[tap], kb.load(x0), 0.0f), w0, tap);
              xp[tap] = x0 + plane;
            }
            wp = w0 + wstep;
          },
          t.ic_unroll);
    }

    // out[g * ocb + c][p], for the channels that exist.
    const Value obase = out + p * 4u + g * (ocb * 4) * npix;
    for (uint32_t j = 0; j < ocb / 4; ++j) {
      for (int k = 0; k < 4; ++k) {
        const uint32_t c = 4 * j + uint32_t(k);
        Value v = acc[j][k];
        if (s.relu) v = max(v, 0.0f);
        kb.if_(g * ocb + c < oc, [&] { kb.store(obase + c * 4u * npix, v); });
      }
    }
  });
  return kb.finish();
}

jit::Specialization conv2d_spec(const Conv2dShape& s) {
  jit::Specialization spec;
  spec.set_u32("in_c", s.in_c)
      .set_u32("in_h", s.in_h)
      .set_u32("in_w", s.in_w)
      .set_u32("out_h", s.out_h())
      .set_u32("out_w", s.out_w())
      .set_u32("out_c", s.out_c);
  return spec;
}

Grid conv2d_grid(const Conv2dShape& s, const Conv2dTuning& t) {
  return Grid::invocations(uint64_t(s.out_h()) * s.out_w(), conv2d_oc_groups(s, t));
}

std::vector<float> pack_conv2d_weights(const Conv2dShape& s, const Conv2dTuning& t,
                                       std::span<const float> oihw) {
  validate(s, t);
  const size_t taps = size_t(s.kernel_h) * s.kernel_w;
  if (oihw.size() != size_t(s.out_c) * s.in_c * taps)
    throw Error("pack_conv2d_weights: " + std::to_string(oihw.size()) + " weights for a " +
                std::to_string(s.out_c) + "x" + std::to_string(s.in_c) + "x" +
                std::to_string(s.kernel_h) + "x" + std::to_string(s.kernel_w) + " kernel");
  const uint32_t groups = conv2d_oc_groups(s, t), ocb = t.oc_block;
  std::vector<float> out(size_t(groups) * s.in_c * taps * ocb, 0.0f);
  for (uint32_t o = 0; o < s.out_c; ++o) {
    const uint32_t g = o / ocb, c = o % ocb;
    for (uint32_t i = 0; i < s.in_c; ++i)
      for (size_t tap = 0; tap < taps; ++tap)
        out[((size_t(g) * s.in_c + i) * taps + tap) * ocb + c] =
            oihw[(size_t(o) * s.in_c + i) * taps + tap];
  }
  return out;
}

std::vector<float> pack_conv2d_bias(const Conv2dShape& s, const Conv2dTuning& t,
                                    std::span<const float> bias) {
  if (bias.size() != s.out_c)
    throw Error("pack_conv2d_bias: " + std::to_string(bias.size()) + " values for " +
                std::to_string(s.out_c) + " channels");
  std::vector<float> out(size_t(conv2d_oc_groups(s, t)) * t.oc_block, 0.0f);
  std::copy(bias.begin(), bias.end(), out.begin());
  return out;
}

}  // namespace rplayer::runtime::kernels
