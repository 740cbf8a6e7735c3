// Convolution-like CPU kernels: convolution (im2col + a vectorizable GEMM loop),
// depthwise, deconvolution, pooling, fully connected, Gemm and attention.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "nn/cpu_ops.h"
#include "nn/layer_params.h"
#include "nn/model_error.h"

namespace rplayer::nn::cpu {
namespace {

// Copies `in` (c x h x w) into a bordered buffer filled with `value`.
std::vector<float> make_border(const Tensor& in, const PadBox& pad, float value, int* bw,
                               int* bh) {
  const Shape& s = in.shape();
  *bw = s.w + pad.left + pad.right;
  *bh = s.h + pad.top + pad.bottom;
  std::vector<float> out(size_t(*bw) * *bh * s.c, value);
  for (int q = 0; q < s.c; q++)
    for (int y = 0; y < s.h; y++)
      std::memcpy(&out[(size_t(q) * *bh + y + pad.top) * *bw + pad.left], in.row(y, q),
                  s.w * sizeof(float));
  return out;
}

// out[m][0..n) = bias[m] + sum_k w[m][k] * col[k][0..n), rows of `ldo` floats.
void gemm_rows(const float* w, const float* col, const float* bias, float* out, int M, int K,
               int n, int ldcol, size_t ldo) {
  for (int m = 0; m < M; m++) {
    float* o = out + m * ldo;
    const float b = bias ? bias[m] : 0.f;
    for (int i = 0; i < n; i++) o[i] = b;
    const float* wm = w + size_t(m) * K;
    for (int k = 0; k < K; k++) {
      const float wv = wm[k];
      const float* c = col + size_t(k) * ldcol;
      for (int i = 0; i < n; i++) o[i] += wv * c[i];
    }
  }
}

void apply_activation(Tensor& t, const Activation& act) {
  if (act.type == 0) return;
  for (float& v : t.values()) v = act(v);
}

// Flat blob through a 1x1 convolution: ncnn computes it as InnerProduct.
void conv_as_inner_product(const Layer& l, const ConvParams& p, const Tensor& in, Tensor& out) {
  const float* w = l.weight("weight")->data();
  const Tensor* bias = l.weight("bias");
  const int K = int(in.size());
  for (int o = 0; o < p.num_output; o++) {
    float sum = bias ? (*bias)[o] : 0.f;
    for (int k = 0; k < K; k++) sum += w[size_t(o) * K + k] * in[k];
    out[o] = p.activation(sum);
  }
}

void conv_general(const Layer& l, const Tensor& in, Tensor& out, int group) {
  const ConvParams p = ConvParams::from(l.params);
  if (in.shape().dims == 1) return conv_as_inner_product(l, p, in, out);
  const PadBox pad = p.padding(in.shape().w, in.shape().h);
  int w, h;
  const std::vector<float> src = make_border(in, pad, p.pad_value, &w, &h);
  const int outw = out.shape().w, outh = out.shape().h, N = outw * outh;
  const int inc_g = in.shape().c / group, outc_g = p.num_output / group;
  const int kw = p.kernel_w, kh = p.kernel_h, K = inc_g * kw * kh;
  const float* weight = l.weight("weight")->data();
  const Tensor* bias_t = l.weight("bias");
  const float* bias = bias_t ? bias_t->data() : nullptr;
  const bool direct = kw == 1 && kh == 1 && p.stride_w == 1 && p.stride_h == 1 &&
                      pad.left + pad.right + pad.top + pad.bottom == 0;
  // Columns are built a tile at a time so the tile stays in cache during the GEMM.
  constexpr int kTile = 256;
  std::vector<float> col(direct ? 0 : size_t(K) * kTile);
  for (int g = 0; g < group; g++) {
    const float* wg = weight + size_t(g) * outc_g * K;
    const float* bg = bias ? bias + g * outc_g : nullptr;
    float* og = out.channel(g * outc_g);
    const float* ig = src.data() + size_t(g) * inc_g * w * h;
    if (direct) {
      gemm_rows(wg, ig, bg, og, outc_g, K, N, N, size_t(N));
      continue;
    }
    for (int i0 = 0; i0 < N; i0 += kTile) {
      const int n = std::min(kTile, N - i0);
      for (int ic = 0; ic < inc_g; ic++) {
        for (int ky = 0; ky < kh; ky++) {
          for (int kx = 0; kx < kw; kx++) {
            float* c = &col[(size_t(ic * kh + ky) * kw + kx) * kTile];
            for (int i = 0; i < n; i++) {
              const int oy = (i0 + i) / outw, ox = (i0 + i) % outw;
              const int y = oy * p.stride_h + ky * p.dilation_h;
              const int x = ox * p.stride_w + kx * p.dilation_w;
              c[i] = ig[(size_t(ic) * h + y) * w + x];
            }
          }
        }
      }
      gemm_rows(wg, col.data(), bg, og + i0, outc_g, K, n, kTile, size_t(N));
    }
  }
  apply_activation(out, p.activation);
}

}  // namespace

void convolution(const Layer& l, const Inputs& in, Outputs& out) {
  conv_general(l, *in[0], out[0], 1);
}

void convolution_depthwise(const Layer& l, const Inputs& in, Outputs& out) {
  const ConvParams p = ConvParams::from(l.params);
  const int c = in[0]->shape().c;
  if (p.group != c || p.num_output != c) return conv_general(l, *in[0], out[0], p.group);
  const PadBox pad = p.padding(in[0]->shape().w, in[0]->shape().h);
  int w, h;
  const std::vector<float> src = make_border(*in[0], pad, p.pad_value, &w, &h);
  const int outw = out[0].shape().w, outh = out[0].shape().h;
  const int maxk = p.kernel_w * p.kernel_h;
  const float* weight = l.weight("weight")->data();
  const Tensor* bias = l.weight("bias");
  for (int q = 0; q < c; q++) {
    float* o = out[0].channel(q);
    const float* ic = src.data() + size_t(q) * w * h;
    std::fill(o, o + size_t(outw) * outh, bias ? (*bias)[q] : 0.f);
    for (int ky = 0; ky < p.kernel_h; ky++) {
      for (int kx = 0; kx < p.kernel_w; kx++) {
        const float wv = weight[q * maxk + ky * p.kernel_w + kx];
        for (int oy = 0; oy < outh; oy++) {
          const float* srow = ic + size_t(oy * p.stride_h + ky * p.dilation_h) * w +
                              kx * p.dilation_w;
          float* orow = o + size_t(oy) * outw;
          for (int ox = 0; ox < outw; ox++) orow[ox] += wv * srow[ox * p.stride_w];
        }
      }
    }
  }
  apply_activation(out[0], p.activation);
}

void deconvolution(const Layer& l, const Inputs& in, Outputs& out) {
  // Weight layout (ncnn): [group][outc/group][inc/group][kh][kw]; each input pixel
  // scatters its kernel-weighted value into the full (uncut) output.
  const DeconvParams p = DeconvParams::from(l.params);
  const Tensor& x = *in[0];
  const int group = l.type == "DeconvolutionDepthWise" ? p.group : 1;
  const int w = x.shape().w, h = x.shape().h, inc = x.shape().c;
  const DeconvGeometry g = p.geometry(w, h);
  const int inc_g = inc / group, outc_g = p.num_output / group, maxk = p.kernel_w * p.kernel_h;
  const float* weight = l.weight("weight")->data();
  const Tensor* bias = l.weight("bias");
  std::vector<float> full(size_t(g.full_w) * g.full_h);
  for (int oc = 0; oc < p.num_output; oc++) {
    const int gi = oc / outc_g;
    std::fill(full.begin(), full.end(), bias ? (*bias)[oc] : 0.f);
    for (int icg = 0; icg < inc_g; icg++) {
      const int ic = gi * inc_g + icg;
      const float* k = weight + (size_t(oc) * inc_g + icg) * maxk;
      for (int y = 0; y < h; y++) {
        const float* xr = x.row(y, ic);
        for (int ky = 0; ky < p.kernel_h; ky++) {
          float* fr = &full[size_t(y * p.stride_h + ky * p.dilation_h) * g.full_w];
          for (int kx = 0; kx < p.kernel_w; kx++) {
            const float wv = k[ky * p.kernel_w + kx];
            float* f = fr + kx * p.dilation_w;
            for (int xx = 0; xx < w; xx++) f[xx * p.stride_w] += wv * xr[xx];
          }
        }
      }
    }
    for (int y = 0; y < g.out_h; y++)
      for (int xx = 0; xx < g.out_w; xx++)
        out[0].at(xx, y, oc) = p.activation(full[size_t(y + g.cut_top) * g.full_w + xx +
                                                 g.cut_left]);
  }
}

void pooling(const Layer& l, const Inputs& in, Outputs& out) {
  const PoolParams p = PoolParams::from(l.params);
  const Tensor& x = *in[0];
  const int c = x.shape().c, w0 = x.shape().w, h0 = x.shape().h;
  const bool is_max = p.pooling_type == 0;
  if (p.global_pooling) {
    const size_t n = x.shape().channel_size();
    for (int q = 0; q < c; q++) {
      const float* ptr = x.channel(q);
      float acc = is_max ? ptr[0] : 0.f;
      for (size_t i = 0; i < n; i++) acc = is_max ? std::max(acc, ptr[i]) : acc + ptr[i];
      out[0][q] = is_max ? acc : acc / float(n);
    }
    return;
  }
  if (p.adaptive_pooling) {
    for (int q = 0; q < c; q++) {
      for (int i = 0; i < p.out_h; i++) {
        const int ih0 = h0 * i / p.out_h, ih1 = (h0 * (i + 1) + p.out_h - 1) / p.out_h;
        for (int j = 0; j < p.out_w; j++) {
          const int iw0 = w0 * j / p.out_w, iw1 = (w0 * (j + 1) + p.out_w - 1) / p.out_w;
          float acc = is_max ? x.at(iw0, ih0, q) : 0.f;
          for (int y = ih0; y < ih1; y++)
            for (int xx = iw0; xx < iw1; xx++)
              acc = is_max ? std::max(acc, x.at(xx, y, q)) : acc + x.at(xx, y, q);
          out[0].at(j, i, q) = is_max ? acc : acc / float(ih1 - ih0) / float(iw1 - iw0);
        }
      }
    }
    return;
  }
  const PadBox pad = p.padding(w0, h0);
  int w, h;
  const std::vector<float> src = make_border(x, pad, is_max ? -FLT_MAX : 0.f, &w, &h);
  const int outw = out[0].shape().w, outh = out[0].shape().h;
  // ncnn's average excludes only the declared pads and pad_mode 0's tail, not SAME pads.
  const int wtail = p.pad_mode == 0 ? pad.right - p.pad_right : 0;
  const int htail = p.pad_mode == 0 ? pad.bottom - p.pad_bottom : 0;
  for (int q = 0; q < c; q++) {
    const float* m = src.data() + size_t(q) * w * h;
    for (int i = 0; i < outh; i++) {
      for (int j = 0; j < outw; j++) {
        const int sy0 = i * p.stride_h, sx0 = j * p.stride_w;
        float acc = is_max ? -FLT_MAX : 0.f;
        int area = 0;
        for (int ky = 0; ky < p.kernel_h; ky++) {
          const int sy = sy0 + ky;
          for (int kx = 0; kx < p.kernel_w; kx++) {
            const int sx = sx0 + kx;
            const float v = m[size_t(sy) * w + sx];
            if (is_max) {
              acc = std::max(acc, v);
            } else if (p.avgpool_count_include_pad ||
                       (sy >= p.pad_top && sy < h - p.pad_bottom - htail && sx >= p.pad_left &&
                        sx < w - p.pad_right - wtail)) {
              acc += v;
              area++;
            }
          }
        }
        if (!is_max)
          acc = p.avgpool_count_include_pad ? acc / float(p.kernel_w * p.kernel_h)
                                            : acc / float(area);
        out[0].at(j, i, q) = acc;
      }
    }
  }
}

void inner_product(const Layer& l, const Inputs& in, Outputs& out) {
  const int num_output = l.params.get_int(0, 0);
  const Activation act = Activation::from(l.params);
  const float* w = l.weight("weight")->data();
  const Tensor* bias = l.weight("bias");
  const Tensor& x = *in[0];
  const int rows = out[0].shape().dims == 2 ? out[0].shape().h : 1;
  const int K = int(x.size()) / rows;
  for (int r = 0; r < rows; r++) {
    const float* xr = x.data() + size_t(r) * K;
    float* o = out[0].data() + size_t(r) * num_output;
    for (int m = 0; m < num_output; m++) {
      const float* wm = w + size_t(m) * K;
      float sum = 0.f;
      for (int k = 0; k < K; k++) sum += wm[k] * xr[k];
      o[m] = act(sum + (bias ? (*bias)[m] : 0.f));
    }
  }
}

void gemm(const Layer& l, const Inputs& in, Outputs& out) {
  const GemmParams p = GemmParams::from(l.params);
  size_t next = 0;
  // A as M x K and B as K x N, read through strides so transposes cost nothing.
  const float* A;
  int M, K, N, a_row, a_col, b_row, b_col;
  if (p.constantA) {
    A = l.weight("A")->data();
    M = p.constantM;
    K = p.constantK;
  } else {
    const Tensor& t = *in[next++];
    A = t.data();
    const int rows = t.shape().dims == 3 ? t.shape().c : t.shape().h;
    M = p.transA ? t.shape().w : rows;
    K = p.transA ? rows : t.shape().w;
  }
  a_row = p.transA ? 1 : K;
  a_col = p.transA ? M : 1;
  const float* B;
  if (p.constantB) {
    B = l.weight("B")->data();
    N = p.constantN;
  } else {
    const Tensor& t = *in[next++];
    B = t.data();
    const int rows = t.shape().dims == 3 ? t.shape().c : t.shape().h;
    N = p.transB ? rows : t.shape().w;
  }
  b_row = p.transB ? 1 : N;  // stride between k
  b_col = p.transB ? K : 1;  // stride between n
  // C broadcast types as ncnn: 0 scalar, 1/2 per row (M), 3 full M x N, 4 per column (N).
  const float* C = nullptr;
  int ctype = -1;
  if (p.constantC && p.constant_broadcast_type_C != -1) {
    C = l.weight("C")->data();
    ctype = p.constant_broadcast_type_C;
  } else if (!p.constantC && next < in.size()) {
    C = in[next]->data();
    const Shape& cs = in[next]->shape();
    if (cs.dims == 1 && cs.w == 1) ctype = 0;
    if (cs.dims == 1 && cs.w == M) ctype = 1;
    if (cs.dims == 1 && cs.w == N) ctype = 4;
    if (cs.dims == 2 && cs.w == 1 && cs.h == M) ctype = 2;
    if (cs.dims == 2 && cs.w == N && cs.h == M) ctype = 3;
    if (cs.dims == 2 && cs.w == N && cs.h == 1) ctype = 4;
    if (ctype < 0) throw ModelError("Gemm C of shape " + cs.str() + " does not broadcast");
  }
  auto c_at = [&](int i, int j) -> float {
    switch (ctype) {
      case 0: return C[0];
      case 1:
      case 2: return C[i];
      case 3: return C[size_t(i) * N + j];
      default: return C[j];
    }
  };
  std::vector<float> bcol(K);
  for (int j = 0; j < N; j++) {
    for (int k = 0; k < K; k++) bcol[k] = B[size_t(k) * b_row + size_t(j) * b_col];
    for (int i = 0; i < M; i++) {
      float sum = C ? c_at(i, j) * p.beta : 0.f;
      const float* a = A + size_t(i) * a_row;
      for (int k = 0; k < K; k++) sum += a[size_t(k) * a_col] * bcol[k];
      sum *= p.alpha;
      if (p.output_transpose) out[0][size_t(j) * M + i] = sum;
      else out[0][size_t(i) * N + j] = sum;
    }
  }
}

void multi_head_attention(const Layer& l, const Inputs& in, Outputs& out) {
  const int embed = l.params.get_int(0, 0), heads = l.params.get_int(1, 1);
  const int qdim = l.params.get_int(2, 0) / embed;
  const int kdim = l.params.get_int(3, embed), vdim = l.params.get_int(4, embed);
  const int per_head = embed / heads;
  const float scale = l.params.get_float(6, 1.f / std::sqrt(float(per_head)));
  const Tensor& q = *in[0];
  const Tensor& k = *in[in.size() >= 2 ? 1 : 0];
  const Tensor& v = *in[in.size() >= 3 ? 2 : (in.size() == 2 ? 1 : 0)];
  const int src = q.shape().h, dst = k.shape().h;
  // Projections as [embed][seq] (ncnn's layout), q pre-scaled.
  auto project = [&](const Tensor& x, const char* wn, const char* bn, int dim, int seq,
                     float mul) {
    std::vector<float> r(size_t(embed) * seq);
    const float* w = l.weight(wn)->data();
    const float* b = l.weight(bn)->data();
    for (int i = 0; i < seq; i++) {
      const float* xr = x.data() + size_t(i) * dim;
      for (int j = 0; j < embed; j++) {
        float sum = b[j];
        const float* wr = w + size_t(j) * dim;
        for (int t = 0; t < dim; t++) sum += xr[t] * wr[t];
        r[size_t(j) * seq + i] = sum * mul;
      }
    }
    return r;
  };
  const std::vector<float> qa = project(q, "q_weight", "q_bias", qdim, src, scale);
  const std::vector<float> ka = project(k, "k_weight", "k_bias", kdim, dst, 1.f);
  const std::vector<float> va = project(v, "v_weight", "v_bias", vdim, dst, 1.f);
  std::vector<float> qkv(size_t(embed) * src);  // [embed][src]
  std::vector<float> scores(dst);
  for (int hd = 0; hd < heads; hd++) {
    for (int i = 0; i < src; i++) {
      float mx = -FLT_MAX;
      for (int j = 0; j < dst; j++) {
        float sum = 0.f;
        for (int t = 0; t < per_head; t++) {
          const size_t row = size_t(hd * per_head + t);
          sum += qa[row * src + i] * ka[row * dst + j];
        }
        scores[j] = sum;
        mx = std::max(mx, sum);
      }
      float total = 0.f;
      for (int j = 0; j < dst; j++) total += (scores[j] = std::exp(scores[j] - mx));
      for (int j = 0; j < dst; j++) scores[j] /= total;
      for (int t = 0; t < per_head; t++) {
        const size_t row = size_t(hd * per_head + t);
        float sum = 0.f;
        for (int j = 0; j < dst; j++) sum += scores[j] * va[row * dst + j];
        qkv[row * src + i] = sum;
      }
    }
  }
  const float* ow = l.weight("out_weight")->data();
  const float* ob = l.weight("out_bias")->data();
  for (int i = 0; i < src; i++) {
    for (int j = 0; j < qdim; j++) {
      float sum = ob[j];
      const float* wr = ow + size_t(j) * embed;
      for (int t = 0; t < embed; t++) sum += qkv[size_t(t) * src + i] * wr[t];
      out[0][size_t(i) * qdim + j] = sum;
    }
  }
}

}  // namespace rplayer::nn::cpu
