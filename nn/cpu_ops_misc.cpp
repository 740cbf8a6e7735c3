// Element-wise, normalization and data-movement CPU kernels, and the kernel table.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <map>

#include "nn/cpu_ops.h"
#include "nn/layer_params.h"
#include "nn/layer_spec.h"
#include "nn/model_error.h"

namespace rplayer::nn::cpu {
namespace {

void copy_input(const Layer&, const Inputs& in, Outputs& out) {
  for (size_t i = 0; i < out.size(); i++) out[i].values() = in[i < in.size() ? i : 0]->values();
}

void split(const Layer&, const Inputs& in, Outputs& out) {
  for (Tensor& t : out) t.values() = in[0]->values();
}

template <typename F>
void unary(const Inputs& in, Outputs& out, F f) {
  const float* x = in[0]->data();
  float* y = out[0].data();
  const size_t n = out[0].size();
  for (size_t i = 0; i < n; i++) y[i] = f(x[i]);
}

void relu(const Layer& l, const Inputs& in, Outputs& out) {
  const float slope = l.params.get_float(0, 0.f);
  unary(in, out, [slope](float v) { return v > 0.f ? v : v * slope; });
}

void clip(const Layer& l, const Inputs& in, Outputs& out) {
  const float lo = l.params.get_float(0, -FLT_MAX), hi = l.params.get_float(1, FLT_MAX);
  unary(in, out, [lo, hi](float v) { return std::min(std::max(v, lo), hi); });
}

void sigmoid(const Layer&, const Inputs& in, Outputs& out) {
  unary(in, out, [](float v) { return 1.f / (1.f + std::exp(-v)); });
}

void tanh_op(const Layer&, const Inputs& in, Outputs& out) {
  unary(in, out, [](float v) { return std::tanh(v); });
}

void swish(const Layer&, const Inputs& in, Outputs& out) {
  unary(in, out, [](float v) { return v / (1.f + std::exp(-v)); });
}

void mish(const Layer&, const Inputs& in, Outputs& out) {
  unary(in, out, [](float v) { return v * std::tanh(std::log(std::exp(v) + 1.f)); });
}

void hard_swish(const Layer& l, const Inputs& in, Outputs& out) {
  const float alpha = l.params.get_float(0, 0.2f), beta = l.params.get_float(1, 0.5f);
  const float lower = -beta / alpha, upper = 1.f / alpha + lower;
  unary(in, out, [=](float v) {
    if (v < lower) return 0.f;
    if (v > upper) return v;
    return v * (v * alpha + beta);
  });
}

void hard_sigmoid(const Layer& l, const Inputs& in, Outputs& out) {
  const float alpha = l.params.get_float(0, 0.2f), beta = l.params.get_float(1, 0.5f);
  unary(in, out, [=](float v) { return std::min(std::max(v * alpha + beta, 0.f), 1.f); });
}

void gelu(const Layer& l, const Inputs& in, Outputs& out) {
  if (l.params.get_int(0, 0)) {
    unary(in, out, [](float v) {
      return 0.5f * v * (1.f + std::tanh(0.79788452f * (v + 0.044715f * v * v * v)));
    });
  } else {
    unary(in, out, [](float v) { return 0.5f * v * std::erfc(-0.70710678f * v); });
  }
}

void elu(const Layer& l, const Inputs& in, Outputs& out) {
  const float alpha = l.params.get_float(0, 0.1f);
  unary(in, out, [alpha](float v) { return v < 0.f ? alpha * (std::exp(v) - 1.f) : v; });
}

void absval(const Layer&, const Inputs& in, Outputs& out) {
  unary(in, out, [](float v) { return std::fabs(v); });
}

void dropout(const Layer& l, const Inputs& in, Outputs& out) {
  const float scale = l.params.get_float(0, 1.f);
  unary(in, out, [scale](float v) { return v * scale; });
}

void unary_op(const Layer& l, const Inputs& in, Outputs& out) {
  const int op = l.params.get_int(0, 0);
  unary(in, out, [op](float v) -> float {
    switch (op) {
      case 0: return std::fabs(v);
      case 1: return -v;
      case 2: return std::floor(v);
      case 3: return std::ceil(v);
      case 4: return v * v;
      case 5: return std::sqrt(v);
      case 6: return 1.f / std::sqrt(v);
      case 7: return std::exp(v);
      case 8: return std::log(v);
      case 9: return std::sin(v);
      case 10: return std::cos(v);
      case 11: return std::tan(v);
      case 12: return std::asin(v);
      case 13: return std::acos(v);
      case 14: return std::atan(v);
      case 15: return 1.f / v;
      case 16: return std::tanh(v);
      case 17: return std::log10(v);
      case 18: return std::nearbyint(v);
      case 19: return std::trunc(v);
      default: throw ModelError("UnaryOp op_type " + std::to_string(op) + " is not supported");
    }
  });
}

// Per-"channel" affine y = x * a[i] + b[i]: channels are w for 1-D, rows for 2-D and
// channels for 3-D / 4-D blobs, as ncnn's BatchNorm / Scale / Bias / PReLU do.
template <typename F>
void per_channel(const Tensor& x, Tensor& y, F f) {
  const Shape& s = x.shape();
  const int n = s.dims == 1 ? s.w : s.dims == 2 ? s.h : s.c;
  const size_t inner = s.dims == 1 ? 1 : s.dims == 2 ? size_t(s.w) : s.channel_size();
  for (int q = 0; q < n; q++)
    for (size_t i = 0; i < inner; i++) y[q * inner + i] = f(q, x[q * inner + i]);
}

void batch_norm(const Layer& l, const Inputs& in, Outputs& out) {
  const float eps = l.params.get_float(1, 0.f);
  const Tensor &slope = *l.weight("slope"), &mean = *l.weight("mean"), &var = *l.weight("var"),
               &bias = *l.weight("bias");
  std::vector<float> a(slope.size()), b(slope.size());
  for (size_t i = 0; i < a.size(); i++) {
    const float sqrt_var = std::sqrt(var[i] + eps);
    a[i] = bias[i] - slope[i] * mean[i] / sqrt_var;
    b[i] = slope[i] / sqrt_var;
  }
  per_channel(*in[0], out[0], [&](int q, float v) { return b[q] * v + a[q]; });
}

void scale(const Layer& l, const Inputs& in, Outputs& out) {
  const float* s = in.size() > 1 ? in[1]->data() : l.weight("scale")->data();
  const Tensor* bias = l.weight("bias");
  per_channel(*in[0], out[0],
              [&](int q, float v) { return v * s[q] + (bias ? (*bias)[q] : 0.f); });
}

void bias(const Layer& l, const Inputs& in, Outputs& out) {
  const Tensor& b = *l.weight("bias");
  per_channel(*in[0], out[0], [&](int q, float v) { return v + b[q]; });
}

void prelu(const Layer& l, const Inputs& in, Outputs& out) {
  const Tensor& s = *l.weight("slope");
  const bool shared = s.size() == 1;
  per_channel(*in[0], out[0], [&](int q, float v) { return v < 0.f ? v * s[shared ? 0 : q] : v; });
}

float binary(int op, float a, float b) {
  switch (op) {
    case 0: return a + b;
    case 1: return a - b;
    case 2: return a * b;
    case 3: return a / b;
    case 4: return std::max(a, b);
    case 5: return std::min(a, b);
    case 6: return std::pow(a, b);
    case 7: return b - a;
    case 8: return b / a;
    case 9: return std::pow(b, a);
    case 10: return std::atan2(a, b);
    case 11: return std::atan2(b, a);
    default: throw ModelError("BinaryOp op_type " + std::to_string(op) + " is not supported");
  }
}

void binary_op(const Layer& l, const Inputs& in, Outputs& out) {
  const int op = l.params.get_int(0, 0);
  binary(op, 0.f, 1.f);  // validates op before the loop
  if (l.params.get_int(1, 0) || in.size() == 1) {
    const float b = l.params.get_float(2, 0.f);
    unary(in, out, [op, b](float v) { return binary(op, v, b); });
    return;
  }
  const Shape& os = out[0].shape();
  const Shape a = binary_expand(in[0]->shape(), in[1]->shape(), os.dims);
  const Shape b = binary_expand(in[1]->shape(), in[0]->shape(), os.dims);
  // Strides of a and b in (w, h, d, c), 0 along broadcast axes.
  auto strides = [](const Shape& s, size_t st[4]) {
    st[0] = s.w == 1 ? 0 : 1;
    st[1] = s.h == 1 ? 0 : size_t(s.w);
    st[2] = s.d == 1 ? 0 : size_t(s.w) * s.h;
    st[3] = s.c == 1 ? 0 : s.channel_size();
  };
  size_t sa[4], sb[4];
  strides(a, sa);
  strides(b, sb);
  const float* pa = in[0]->data();
  const float* pb = in[1]->data();
  float* y = out[0].data();
  for (int q = 0; q < os.c; q++)
    for (int z = 0; z < os.d; z++)
      for (int j = 0; j < os.h; j++) {
        const float* ra = pa + q * sa[3] + z * sa[2] + j * sa[1];
        const float* rb = pb + q * sb[3] + z * sb[2] + j * sb[1];
        for (int i = 0; i < os.w; i++) *y++ = binary(op, ra[i * sa[0]], rb[i * sb[0]]);
      }
}

void eltwise(const Layer& l, const Inputs& in, Outputs& out) {
  const int op = l.params.get_int(0, 0);  // 0 prod, 1 sum, 2 max
  const std::vector<float> coeffs = l.params.get_floats(1);
  if (op < 0 || op > 2) throw ModelError("Eltwise op_type must be 0..2");
  float* y = out[0].data();
  const size_t n = out[0].size();
  for (size_t i = 0; i < n; i++) {
    float acc = op == 1 && !coeffs.empty() ? (*in[0])[i] * coeffs[0] : (*in[0])[i];
    for (size_t k = 1; k < in.size(); k++) {
      const float v = (*in[k])[i];
      if (op == 0) acc *= v;
      else if (op == 1) acc += coeffs.size() > k ? v * coeffs[k] : v;
      else acc = std::max(acc, v);
    }
    y[i] = acc;
  }
}

// outer x axis x inner view of a blob around one (outermost-first) axis.
struct AxisView {
  size_t outer = 1, axis = 1, inner = 1;
  AxisView(const Shape& s, int a) {
    const std::vector<int> e = s.outer_dims();
    for (int i = 0; i < int(e.size()); i++) (i < a ? outer : i == a ? axis : inner) *= e[i];
  }
};

int normalize_axis(int axis, int dims) {
  const int a = axis < 0 ? axis + dims : axis;
  if (a < 0 || a >= dims) throw ModelError("axis " + std::to_string(axis) + " out of range");
  return a;
}

void softmax(const Layer& l, const Inputs& in, Outputs& out) {
  const AxisView v(in[0]->shape(), normalize_axis(l.params.get_int(0, 0), in[0]->shape().dims));
  const float* x = in[0]->data();
  float* y = out[0].data();
  for (size_t o = 0; o < v.outer; o++) {
    for (size_t i = 0; i < v.inner; i++) {
      const size_t base = o * v.axis * v.inner + i;
      float mx = -FLT_MAX;
      for (size_t a = 0; a < v.axis; a++) mx = std::max(mx, x[base + a * v.inner]);
      float sum = 0.f;
      for (size_t a = 0; a < v.axis; a++)
        sum += (y[base + a * v.inner] = std::exp(x[base + a * v.inner] - mx));
      for (size_t a = 0; a < v.axis; a++) y[base + a * v.inner] /= sum;
    }
  }
}

void concat(const Layer& l, const Inputs& in, Outputs& out) {
  const int axis = normalize_axis(l.params.get_int(0, 0), in[0]->shape().dims);
  const AxisView ov(out[0].shape(), axis);
  size_t offset = 0;
  for (const Tensor* t : in) {
    const AxisView v(t->shape(), axis);
    const size_t block = v.axis * v.inner;
    for (size_t o = 0; o < v.outer; o++)
      std::memcpy(out[0].data() + o * ov.axis * ov.inner + offset, t->data() + o * block,
                  block * sizeof(float));
    offset += block;
  }
}

void slice(const Layer& l, const Inputs& in, Outputs& out) {
  const int axis = normalize_axis(l.params.get_int(1, 0), in[0]->shape().dims);
  const std::vector<int> bounds = slice_bounds(l.params, in[0]->shape(), int(out.size()));
  const AxisView v(in[0]->shape(), axis);
  for (size_t k = 0; k < out.size(); k++) {
    const size_t block = size_t(bounds[k + 1] - bounds[k]) * v.inner;
    for (size_t o = 0; o < v.outer; o++)
      std::memcpy(out[k].data() + o * block,
                  in[0]->data() + o * v.axis * v.inner + bounds[k] * v.inner,
                  block * sizeof(float));
  }
}

void crop(const Layer& l, const Inputs& in, Outputs& out) {
  const Tensor& x = *in[0];
  const CropRoi r = crop_roi(l.params, x.shape(), in.size() > 1 ? &in[1]->shape() : nullptr);
  const Shape& os = out[0].shape();
  for (int q = 0; q < os.c; q++)
    for (int y = 0; y < os.h; y++)
      std::memcpy(out[0].row(y, q), x.row(y + r.hoffset, q + r.coffset) + r.woffset,
                  os.w * sizeof(float));
}

void permute(const Layer& l, const Inputs& in, Outputs& out) {
  const Shape& s = in[0]->shape();
  const std::vector<int> axes = permute_axes(l.params.get_int(0, 0), s.dims);
  const std::vector<int> e = s.outer_dims();
  std::vector<size_t> stride(e.size());
  size_t st = 1;
  for (int i = int(e.size()) - 1; i >= 0; i--) {
    stride[i] = st;
    st *= e[i];
  }
  const std::vector<int> oe = out[0].shape().outer_dims();
  std::vector<int> idx(oe.size(), 0);
  const float* x = in[0]->data();
  for (float& y : out[0].values()) {
    size_t src = 0;
    for (size_t i = 0; i < idx.size(); i++) src += idx[i] * stride[axes[i]];
    y = x[src];
    for (int i = int(idx.size()) - 1; i >= 0 && ++idx[i] == oe[i]; i--) idx[i] = 0;
  }
}

void shuffle_channel(const Layer& l, const Inputs& in, Outputs& out) {
  const int c = in[0]->shape().c;
  int group = l.params.get_int(0, 1);
  if (group <= 0 || c % group != 0) throw ModelError("ShuffleChannel group must divide channels");
  if (l.params.get_int(1, 0)) group = c / group;
  const int per_group = c / group;
  const size_t n = in[0]->shape().channel_size();
  for (int i = 0; i < group; i++)
    for (int j = 0; j < per_group; j++)
      std::memcpy(out[0].channel(group * j + i), in[0]->channel(per_group * i + j),
                  n * sizeof(float));
}

void padding(const Layer& l, const Inputs& in, Outputs& out) {
  const ParamDict& p = l.params;
  const int top = p.get_int(0, 0), left = p.get_int(2, 0), type = p.get_int(4, 0),
            front = p.get_int(7, 0);
  const float value = p.get_float(5, 0.f);
  const Tensor* per_channel_value = l.weight("pad_value");
  const Tensor& x = *in[0];
  const Shape &s = x.shape(), &os = out[0].shape();
  if (s.dims == 4) throw ModelError("4-D padding is not supported");
  const int c = s.dims == 3 ? s.c : 1;
  for (int oq = 0; oq < (s.dims == 3 ? os.c : 1); oq++) {
    const int q = oq - (s.dims == 3 ? front : 0);
    const float fill = per_channel_value ? (*per_channel_value)[oq] : value;
    for (int y = 0; y < os.h; y++) {
      for (int xx = 0; xx < os.w; xx++) {
        int sy = y - top, sx = xx - left;
        float v = fill;
        if (q >= 0 && q < c) {
          if (type == 1) {
            sy = std::clamp(sy, 0, s.h - 1);
            sx = std::clamp(sx, 0, s.w - 1);
          } else if (type == 2) {
            sy = sy < 0 ? -sy : sy >= s.h ? 2 * (s.h - 1) - sy : sy;
            sx = sx < 0 ? -sx : sx >= s.w ? 2 * (s.w - 1) - sx : sx;
          }
          if (sy >= 0 && sy < s.h && sx >= 0 && sx < s.w) v = x.at(sx, sy, q);
        }
        out[0].at(xx, y, oq) = v;
      }
    }
  }
}

void interp(const Layer& l, const Inputs& in, Outputs& out) {
  const InterpParams p = InterpParams::from(l.params);
  const Tensor& x = *in[0];
  const Shape &s = x.shape(), &os = out[0].shape();
  if (s.dims == 1) {
    for (int q = 0; q < os.c; q++) std::fill(out[0].channel(q), out[0].channel(q + 1), x[q]);
    return;
  }
  const int w = s.w, h = s.h, ow = os.w, oh = os.h, c = s.dims == 3 ? s.c : 1;
  if (p.resize_type == 1) {
    const bool given = p.output_height && p.output_width;
    const float hs = given ? h / float(oh) : 1.f / p.height_scale;
    const float ws = given ? w / float(ow) : 1.f / p.width_scale;
    for (int q = 0; q < c; q++)
      for (int y = 0; y < oh; y++) {
        const int sy = std::min(int(y * hs), h - 1);
        for (int xx = 0; xx < ow; xx++)
          out[0].at(xx, y, q) = x.at(std::min(int(xx * ws), w - 1), sy, q);
      }
    return;
  }
  if (p.resize_type != 2) throw ModelError("bicubic Interp is not supported");
  std::vector<int> xo, yo;
  std::vector<float> xa, ya;
  interp_linear_coeffs(w, ow, p.align_corner, &xo, &xa);
  interp_linear_coeffs(h, oh, p.align_corner, &yo, &ya);
  for (int q = 0; q < c; q++)
    for (int y = 0; y < oh; y++) {
      const float* r0 = x.row(yo[y], q);
      const float* r1 = x.row(std::min(yo[y] + 1, h - 1), q);
      for (int xx = 0; xx < ow; xx++) {
        const int sx = xo[xx], sx1 = std::min(sx + 1, w - 1);
        const float top = r0[sx] * (1.f - xa[xx]) + r0[sx1] * xa[xx];
        const float bot = r1[sx] * (1.f - xa[xx]) + r1[sx1] * xa[xx];
        out[0].at(xx, y, q) = top * (1.f - ya[y]) + bot * ya[y];
      }
    }
}

void reduction(const Layer& l, const Inputs& in, Outputs& out) {
  const int op = l.params.get_int(0, 0);
  const float coeff = l.params.get_float(2, 1.f);
  const Shape& s = in[0]->shape();
  const std::vector<bool> reduce = reduction_axes(l.params, s);
  const std::vector<int> e = s.outer_dims();
  // Output index of each input element: drop reduced axes (keepdims does not change the
  // flattened order).
  std::vector<size_t> ostride(e.size(), 0);
  size_t st = 1, count = 1;
  for (int i = int(e.size()) - 1; i >= 0; i--) {
    if (reduce[i]) {
      count *= e[i];
    } else {
      ostride[i] = st;
      st *= e[i];
    }
  }
  const bool is_minmax = op == 4 || op == 5;
  std::vector<float> acc(out[0].size(), op == 4   ? -FLT_MAX
                                        : op == 5 ? FLT_MAX
                                        : op == 6 ? 1.f
                                                  : 0.f);
  std::vector<int> idx(e.size(), 0);
  std::vector<float> mx;
  if (op == 10) {  // logsumexp: subtract the max for stability
    mx.assign(acc.size(), -FLT_MAX);
    for (size_t k = 0; k < in[0]->size(); k++) {
      size_t o = 0;
      for (size_t i = 0; i < idx.size(); i++) o += idx[i] * ostride[i];
      mx[o] = std::max(mx[o], (*in[0])[k]);
      for (int i = int(idx.size()) - 1; i >= 0 && ++idx[i] == e[i]; i--) idx[i] = 0;
    }
  }
  for (size_t k = 0; k < in[0]->size(); k++) {
    size_t o = 0;
    for (size_t i = 0; i < idx.size(); i++) o += idx[i] * ostride[i];
    const float v = (*in[0])[k];
    switch (op) {
      case 0: case 3: case 9: acc[o] += v; break;
      case 1: case 7: acc[o] += std::fabs(v); break;
      case 2: case 8: acc[o] += v * v; break;
      case 4: acc[o] = std::max(acc[o], v); break;
      case 5: acc[o] = std::min(acc[o], v); break;
      case 6: acc[o] *= v; break;
      case 10: acc[o] += std::exp(v - mx[o]); break;
    }
    for (int i = int(idx.size()) - 1; i >= 0 && ++idx[i] == e[i]; i--) idx[i] = 0;
  }
  for (size_t o = 0; o < acc.size(); o++) {
    float v = acc[o];
    if (op == 3) v /= float(count);
    if (op == 8) v = std::sqrt(v);
    if (op == 9) v = std::log(v);
    if (op == 10) v = std::log(v) + mx[o];
    (void)is_minmax;
    out[0][o] = v * coeff;
  }
}

void lrn(const Layer& l, const Inputs& in, Outputs& out) {
  const int region = l.params.get_int(0, 0), size = l.params.get_int(1, 5);
  const float alpha = l.params.get_float(2, 1.f), beta = l.params.get_float(3, 0.75f),
              bias = l.params.get_float(4, 1.f);
  const Tensor& x = *in[0];
  const Shape& s = x.shape();
  const size_t n = s.channel_size();
  std::vector<float> sq(x.size());
  for (size_t i = 0; i < x.size(); i++) sq[i] = x[i] * x[i];
  if (region == 0) {
    const float a = alpha / size;
    std::vector<float> sum(n);
    for (int q = 0; q < s.c; q++) {
      std::fill(sum.begin(), sum.end(), 0.f);
      for (int p = q - size / 2; p <= q + size / 2; p++) {
        if (p < 0 || p >= s.c) continue;
        for (size_t i = 0; i < n; i++) sum[i] += sq[p * n + i];
      }
      for (size_t i = 0; i < n; i++)
        out[0][q * n + i] = x[q * n + i] * std::pow(bias + a * sum[i], -beta);
    }
  } else {
    const float a = alpha / float(size * size);
    const int r = size / 2;
    for (int q = 0; q < s.c; q++)
      for (int y = 0; y < s.h; y++)
        for (int xx = 0; xx < s.w; xx++) {
          float sum = 0.f;
          for (int dy = -r; dy < size - r; dy++)
            for (int dx = -r; dx < size - r; dx++) {
              const int yy = y + dy, xi = xx + dx;
              if (yy >= 0 && yy < s.h && xi >= 0 && xi < s.w) sum += sq[q * n + yy * s.w + xi];
            }
          out[0].at(xx, y, q) = x.at(xx, y, q) * std::pow(bias + a * sum, -beta);
        }
  }
}

void layer_norm(const Layer& l, const Inputs& in, Outputs& out) {
  const int size = l.params.get_int(0, 0);
  const float eps = l.params.get_float(1, 0.001f);
  const Tensor* gamma = l.weight("gamma");
  const Tensor* beta = l.weight("beta");
  const Tensor& x = *in[0];
  if (size <= 0 || x.size() % size != 0)
    throw ModelError("LayerNorm affine_size does not divide the input");
  for (size_t g = 0; g < x.size() / size; g++) {
    const float* xr = x.data() + g * size;
    float* yr = out[0].data() + g * size;
    float mean = 0.f;
    for (int i = 0; i < size; i++) mean += xr[i];
    mean /= float(size);
    float var = 0.f;
    for (int i = 0; i < size; i++) var += (xr[i] - mean) * (xr[i] - mean);
    var /= float(size);
    const float inv = 1.f / std::sqrt(var + eps);
    for (int i = 0; i < size; i++) {
      const float v = (xr[i] - mean) * inv;
      yr[i] = gamma ? v * (*gamma)[i] + (*beta)[i] : v;
    }
  }
}

void memory_data(const Layer& l, const Inputs&, Outputs& out) {
  out[0].values() = l.weight("data")->values();
}

const std::map<std::string, OpFn, std::less<>>& table() {
  static const std::map<std::string, OpFn, std::less<>> t = {
      {"AbsVal", absval},
      {"BatchNorm", batch_norm},
      {"Bias", bias},
      {"BinaryOp", binary_op},
      {"Clip", clip},
      {"Concat", concat},
      {"Convolution", convolution},
      {"ConvolutionDepthWise", convolution_depthwise},
      {"Crop", crop},
      {"Deconvolution", deconvolution},
      {"DetectionOutput", detection_output},
      {"DeconvolutionDepthWise", deconvolution},
      {"Dropout", dropout},
      {"ELU", elu},
      {"Eltwise", eltwise},
      {"Flatten", copy_input},
      {"GELU", gelu},
      {"Gemm", gemm},
      {"HardSigmoid", hard_sigmoid},
      {"HardSwish", hard_swish},
      {"InnerProduct", inner_product},
      {"Interp", interp},
      {"LRN", lrn},
      {"LayerNorm", layer_norm},
      {"MemoryData", memory_data},
      {"Mish", mish},
      {"MultiHeadAttention", multi_head_attention},
      {"Noop", copy_input},
      {"Padding", padding},
      {"Permute", permute},
      {"Pooling", pooling},
      {"PriorBox", prior_box},
      {"PReLU", prelu},
      {"Reduction", reduction},
      {"ReLU", relu},
      {"Reshape", copy_input},
      {"Scale", scale},
      {"ShuffleChannel", shuffle_channel},
      {"Sigmoid", sigmoid},
      {"Slice", slice},
      {"Softmax", softmax},
      {"Split", split},
      {"Swish", swish},
      {"TanH", tanh_op},
      {"UnaryOp", unary_op},
      {"YoloDetectionOutput", yolo_detection_output},
      {"Yolov3DetectionOutput", yolo_detection_output},
  };
  return t;
}

}  // namespace

OpFn find_op(const std::string& type) {
  auto it = table().find(type);
  return it == table().end() ? nullptr : it->second;
}

}  // namespace rplayer::nn::cpu
