#include "nn/layer_params.h"

#include <algorithm>
#include <cmath>

#include "nn/model_error.h"

namespace rplayer::nn {

Activation Activation::from(const ParamDict& p, int type_id, int params_id) {
  Activation a;
  a.type = p.get_int(type_id, 0);
  const std::vector<float> v = p.get_floats(params_id);
  if (a.type < 0 || a.type > 6)
    throw ModelError("param " + std::to_string(type_id) + " (activation_type) " +
                     std::to_string(a.type) + " is not 0..6");
  if (a.type == 2) a.a = v.size() > 0 ? v[0] : 0.f;
  if (a.type == 3) {
    if (v.size() < 2) throw ModelError("clip activation needs 2 activation_params");
    a.a = v[0];
    a.b = v[1];
  }
  if (a.type == 6) {
    a.a = v.size() > 0 ? v[0] : 1.f / 6;
    a.b = v.size() > 1 ? v[1] : 0.5f;
    if (a.a == 0.f) throw ModelError("hardswish activation alpha is 0");
  }
  return a;
}

void ConvWindow::read(const ParamDict& p) {
  num_output = p.get_int(0, 0);
  kernel_w = p.get_int(1, 0);
  kernel_h = p.get_int(11, kernel_w);
  dilation_w = p.get_int(2, 1);
  dilation_h = p.get_int(12, dilation_w);
  stride_w = p.get_int(3, 1);
  stride_h = p.get_int(13, stride_w);
  pad_left = p.get_int(4, 0);
  pad_right = p.get_int(15, pad_left);
  pad_top = p.get_int(14, pad_left);
  pad_bottom = p.get_int(16, pad_top);
  bias_term = p.get_int(5, 0);
  weight_data_size = p.get_int(6, 0);
  group = p.get_int(7, 1);
  activation = Activation::from(p);
  if (num_output <= 0 || kernel_w <= 0 || kernel_h <= 0 || stride_w <= 0 || stride_h <= 0 ||
      dilation_w <= 0 || dilation_h <= 0 || group <= 0)
    throw ModelError("num_output, kernel, stride, dilation and group must be positive");
}

ConvParams ConvParams::from(const ParamDict& p) {
  ConvParams c;
  c.read(p);
  c.pad_value = p.get_float(18, 0.f);
  return c;
}

static PadBox same_padding(int kext_w, int kext_h, int stride_w, int stride_h, int w, int h,
                           bool lower) {
  const int wpad = std::max(0, kext_w + (w - 1) / stride_w * stride_w - w);
  const int hpad = std::max(0, kext_h + (h - 1) / stride_h * stride_h - h);
  if (lower) return {wpad - wpad / 2, wpad / 2, hpad - hpad / 2, hpad / 2};
  return {wpad / 2, wpad - wpad / 2, hpad / 2, hpad - hpad / 2};
}

PadBox ConvParams::padding(int w, int h) const {
  if (pad_left > 0 || pad_right > 0 || pad_top > 0 || pad_bottom > 0)
    return {std::max(pad_left, 0), std::max(pad_right, 0), std::max(pad_top, 0),
            std::max(pad_bottom, 0)};
  const int kw = dilation_w * (kernel_w - 1) + 1, kh = dilation_h * (kernel_h - 1) + 1;
  if (pad_left == -233 && pad_right == -233 && pad_top == -233 && pad_bottom == -233)
    return same_padding(kw, kh, stride_w, stride_h, w, h, false);
  if (pad_left == -234 && pad_right == -234 && pad_top == -234 && pad_bottom == -234)
    return same_padding(kw, kh, stride_w, stride_h, w, h, true);
  return {};
}

DeconvParams DeconvParams::from(const ParamDict& p) {
  DeconvParams c;
  c.read(p);
  c.output_pad_right = p.get_int(18, 0);
  c.output_pad_bottom = p.get_int(19, c.output_pad_right);
  c.output_w = p.get_int(20, 0);
  c.output_h = p.get_int(21, c.output_w);
  return c;
}

DeconvGeometry DeconvParams::geometry(int w, int h) const {
  DeconvGeometry g;
  const int kw = dilation_w * (kernel_w - 1) + 1, kh = dilation_h * (kernel_h - 1) + 1;
  g.full_w = (w - 1) * stride_w + kw + output_pad_right;
  g.full_h = (h - 1) * stride_h + kh + output_pad_bottom;
  g.out_w = g.full_w;
  g.out_h = g.full_h;
  if (pad_left > 0 || pad_right > 0 || pad_top > 0 || pad_bottom > 0) {
    g.cut_left = pad_left;
    g.cut_top = pad_top;
    g.out_w = g.full_w - pad_left - pad_right;
    g.out_h = g.full_h - pad_top - pad_bottom;
  } else if (output_w > 0 && output_h > 0) {
    const int wcut = g.full_w - output_w, hcut = g.full_h - output_h;
    const bool upper = pad_left == -233 || pad_right == -233 || pad_top == -233 ||
                       pad_bottom == -233;
    const bool lower = pad_left == -234 || pad_right == -234 || pad_top == -234 ||
                       pad_bottom == -234;
    if (upper || lower) {
      g.cut_left = upper ? wcut / 2 : wcut - wcut / 2;
      g.cut_top = upper ? hcut / 2 : hcut - hcut / 2;
      g.out_w = output_w;
      g.out_h = output_h;
    }
  }
  if (g.out_w <= 0 || g.out_h <= 0) throw ModelError("deconvolution output is empty");
  return g;
}

PoolParams PoolParams::from(const ParamDict& p) {
  PoolParams c;
  c.pooling_type = p.get_int(0, 0);
  c.kernel_w = p.get_int(1, 0);
  c.kernel_h = p.get_int(11, c.kernel_w);
  c.stride_w = p.get_int(2, 1);
  c.stride_h = p.get_int(12, c.stride_w);
  c.pad_left = p.get_int(3, 0);
  c.pad_right = p.get_int(14, c.pad_left);
  c.pad_top = p.get_int(13, c.pad_left);
  c.pad_bottom = p.get_int(15, c.pad_top);
  c.global_pooling = p.get_int(4, 0);
  c.pad_mode = p.get_int(5, 0);
  c.avgpool_count_include_pad = p.get_int(6, 0);
  c.adaptive_pooling = p.get_int(7, 0);
  c.out_w = p.get_int(8, 0);
  c.out_h = p.get_int(18, c.out_w);
  if (c.pooling_type != 0 && c.pooling_type != 1)
    throw ModelError("param 0 (pooling_type) must be 0 (max) or 1 (avg)");
  if (c.pad_mode < 0 || c.pad_mode > 3) throw ModelError("param 5 (pad_mode) must be 0..3");
  if (!c.global_pooling && !c.adaptive_pooling &&
      (c.kernel_w <= 0 || c.kernel_h <= 0 || c.stride_w <= 0 || c.stride_h <= 0))
    throw ModelError("kernel and stride must be positive");
  if (c.adaptive_pooling && (c.out_w <= 0 || c.out_h <= 0))
    throw ModelError("adaptive pooling needs params 8/18 (out_w/out_h)");
  return c;
}

PadBox PoolParams::padding(int w, int h) const {
  switch (pad_mode) {
    case 0: {
      // Full padding: pad the tail so the last window is not dropped (ceil mode).
      const int wtail = (w + pad_left + pad_right - kernel_w) % stride_w;
      const int htail = (h + pad_top + pad_bottom - kernel_h) % stride_h;
      return {pad_left, pad_right + (wtail > 0 ? stride_w - wtail : 0), pad_top,
              pad_bottom + (htail > 0 ? stride_h - htail : 0)};
    }
    case 1: return {pad_left, pad_right, pad_top, pad_bottom};
    case 2: return same_padding(kernel_w, kernel_h, stride_w, stride_h, w, h, false);
    default: return same_padding(kernel_w, kernel_h, stride_w, stride_h, w, h, true);
  }
}

GemmParams GemmParams::from(const ParamDict& p) {
  GemmParams g;
  g.alpha = p.get_float(0, 1.f);
  g.beta = p.get_float(1, 1.f);
  g.transA = p.get_int(2, 0);
  g.transB = p.get_int(3, 0);
  g.constantA = p.get_int(4, 0);
  g.constantB = p.get_int(5, 0);
  g.constantC = p.get_int(6, 0);
  g.constantM = p.get_int(7, 0);
  g.constantN = p.get_int(8, 0);
  g.constantK = p.get_int(9, 0);
  g.constant_broadcast_type_C = p.get_int(10, 0);
  g.output_N1M = p.get_int(11, 0);
  g.output_transpose = p.get_int(14, 0);
  return g;
}

InterpParams InterpParams::from(const ParamDict& p) {
  InterpParams c;
  c.resize_type = p.get_int(0, 0);
  c.height_scale = p.get_float(1, 1.f);
  c.width_scale = p.get_float(2, 1.f);
  c.output_height = p.get_int(3, 0);
  c.output_width = p.get_int(4, 0);
  c.dynamic_target_size = p.get_int(5, 0);
  c.align_corner = p.get_int(6, 0);
  if (c.resize_type < 1 || c.resize_type > 3)
    throw ModelError("param 0 (resize_type) must be 1 (nearest), 2 (bilinear) or 3 (bicubic)");
  return c;
}

void InterpParams::output_size(int w, int h, int* ow, int* oh) const {
  *oh = output_height;
  *ow = output_width;
  if (*ow == 0 || *oh == 0) {
    *ow = static_cast<int>(w * width_scale);
    *oh = static_cast<int>(h * height_scale);
  }
  if (*ow <= 0 || *oh <= 0) throw ModelError("interp output is empty");
}

std::vector<int> slice_bounds(const ParamDict& p, const Shape& in, int n_outputs) {
  int axis = p.get_int(1, 0);
  if (axis < 0) axis += in.dims;
  if (axis < 0 || axis >= in.dims)
    throw ModelError("param 1 (axis) out of range for " + in.str());
  const int total = in.axis_extent(axis);
  std::vector<int> bounds{0};
  const std::vector<int> indices = p.get_ints(2);
  if (!indices.empty()) {
    if (int(indices.size()) + 1 != n_outputs)
      throw ModelError("param 2 (indices) has " + std::to_string(indices.size()) +
                       " entries for " + std::to_string(n_outputs) + " outputs");
    for (int i : indices) bounds.push_back(std::clamp(i < 0 ? i + total : i, 0, total));
    bounds.push_back(total);
  } else {
    const std::vector<int> slices = p.get_ints(0);
    if (int(slices.size()) != n_outputs)
      throw ModelError("param 0 (slices) has " + std::to_string(slices.size()) +
                       " entries for " + std::to_string(n_outputs) + " outputs");
    int q = 0;
    for (int i = 0; i < n_outputs; i++) {
      int s = slices[i];
      if (s == -233) s = (total - q) / (n_outputs - i);
      q += s;
      bounds.push_back(q);
    }
  }
  for (size_t i = 1; i < bounds.size(); i++)
    if (bounds[i] <= bounds[i - 1] || bounds[i] > total)
      throw ModelError("slices do not partition extent " + std::to_string(total));
  return bounds;
}

CropRoi crop_roi(const ParamDict& p, const Shape& in, const Shape* reference) {
  const int w = in.w, h = in.h, c = in.c, dims = in.dims;
  CropRoi r{0, 0, 0, w, h, c};
  const std::vector<int> starts = p.get_ints(9), ends = p.get_ints(10), axes = p.get_ints(11);
  const int woffset = p.get_int(0, 0), hoffset = p.get_int(1, 0), coffset = p.get_int(2, 0);
  if (!starts.empty() && !ends.empty()) {
    // numpy-style slicing; axes count outermost first, without the batch.
    std::vector<int> ax = axes;
    if (ax.empty())
      for (int i = 0; i < dims; i++) ax.push_back(i);
    if (starts.size() < ax.size() || ends.size() < ax.size())
      throw ModelError("params 9/10 (starts/ends) shorter than the axes");
    for (size_t i = 0; i < ax.size(); i++) {
      int axis = ax[i] < 0 ? ax[i] + dims : ax[i];
      if (axis < 0 || axis >= dims) throw ModelError("crop axis out of range");
      const int extent = in.axis_extent(axis);
      int start = starts[i] == -233 ? 0 : starts[i];
      int end = ends[i] == -233 ? extent : ends[i];
      const int offset = start >= 0 ? start : extent + start;
      const int size = std::min(extent, end > 0 ? end : extent + end) - offset;
      const int which = dims - 1 - axis;  // 0 = w, 1 = h, 2 = c
      if (which == 0) r.woffset = offset, r.outw = size;
      if (which == 1) r.hoffset = offset, r.outh = size;
      if (which == 2) r.coffset = offset, r.outc = size;
    }
  } else if (reference) {
    if (woffset == -233) throw ModelError("dynamic crop parameters are not supported");
    r.woffset = woffset;
    r.hoffset = hoffset;
    r.coffset = coffset;
    r.outw = reference->w;
    if (dims >= 2) r.outh = reference->h;
    if (dims == 3) r.outc = reference->dims == 3 ? reference->c : c;
  } else {
    const int outw = p.get_int(3, 0), outh = p.get_int(4, 0), outc = p.get_int(5, 0);
    const int woffset2 = p.get_int(6, 0), hoffset2 = p.get_int(7, 0), coffset2 = p.get_int(8, 0);
    // 0 and -233 both mean "to the end" here (ncnn uses 0 to ask for a reference blob).
    auto limit = [](int want, int avail) {
      return want == -233 || want == 0 ? avail : std::min(want, avail);
    };
    r.woffset = woffset;
    r.outw = limit(outw, w - woffset - woffset2);
    if (dims >= 2) {
      r.hoffset = hoffset;
      r.outh = limit(outh, h - hoffset - hoffset2);
    }
    if (dims == 3) {
      r.coffset = coffset;
      r.outc = limit(outc, c - coffset - coffset2);
    }
  }
  if (r.woffset < 0 || r.hoffset < 0 || r.coffset < 0 || r.outw <= 0 || r.outh <= 0 ||
      r.outc <= 0 || r.woffset + r.outw > w || r.hoffset + r.outh > h || r.coffset + r.outc > c)
    throw ModelError("crop region outside the input " + in.str());
  return r;
}

Shape binary_expand(const Shape& a, const Shape& other, int rank) {
  if (a.dims >= rank) return a;
  if (rank == 2) return a.w == other.h ? Shape::mat(1, a.w) : Shape::mat(a.w, 1);
  if (rank == 3 && a.dims == 1)
    return a.w == other.c ? Shape::cube(1, 1, a.w) : Shape::cube(a.w, 1, 1);
  if (rank == 3 && a.dims == 2) return Shape::cube(1, a.w, a.h);
  if (rank == 4 && a.dims == 1)
    return a.w == other.c ? Shape::cube4(1, 1, 1, a.w) : Shape::cube4(a.w, 1, 1, 1);
  if (rank == 4 && a.dims == 2) return Shape::cube4(1, 1, a.w, a.h);
  return Shape::cube4(1, a.w, a.h, a.c);
}

Shape binary_broadcast_shape(const Shape& a, const Shape& b) {
  const int rank = std::max(a.dims, b.dims);
  const Shape a2 = binary_expand(a, b, rank), b2 = binary_expand(b, a, rank);
  auto merge = [&](int x, int y) {
    if (x != y && x != 1 && y != 1)
      throw ModelError("cannot broadcast " + a.str() + " with " + b.str());
    return std::max(x, y);
  };
  Shape s = a2;
  s.w = merge(a2.w, b2.w);
  s.h = merge(a2.h, b2.h);
  s.d = merge(a2.d, b2.d);
  s.c = merge(a2.c, b2.c);
  return s;
}

Shape reshape_target(const ParamDict& p, const Shape& in) {
  if (p.get_int(3, 0) != 0) throw ModelError("param 3 (permute) of Reshape is not supported");
  const int w = p.get_int(0, -233), h = p.get_int(1, -233), d = p.get_int(11, -233),
            c = p.get_int(2, -233);
  if (w == -233) throw ModelError("Reshape needs param 0 (w)");
  std::vector<int> e;  // outermost first
  if (h == -233) e = {w};
  else if (c == -233) e = {h, w};
  else if (d == -233) e = {c, h, w};
  else e = {c, d, h, w};
  // 0 copies the input's extent on the same axis (w with w, h with h, ...).
  const std::vector<int> ine = in.outer_dims();
  for (size_t i = 0; i < e.size(); i++) {
    const int from_inner = int(e.size() - 1 - i);
    if (e[i] == 0) {
      const int j = int(ine.size()) - 1 - from_inner;
      if (j < 0) throw ModelError("Reshape 0 refers to a missing input axis");
      e[i] = ine[j];
    }
  }
  const int64_t total = int64_t(in.total());
  int64_t known = 1;
  int infer = -1;
  for (size_t i = 0; i < e.size(); i++) {
    if (e[i] == -1) {
      if (infer >= 0) throw ModelError("Reshape has more than one -1");
      infer = int(i);
    } else if (e[i] <= 0) {
      throw ModelError("Reshape extent " + std::to_string(e[i]) + " is invalid");
    } else {
      known *= e[i];
    }
  }
  if (infer >= 0) {
    if (known == 0 || total % known != 0)
      throw ModelError("Reshape cannot infer -1 from " + in.str());
    e[infer] = int(total / known);
  }
  Shape s = Shape::from_outer_dims(e);
  if (int64_t(s.total()) != total)
    throw ModelError("Reshape of " + in.str() + " to " + s.str() + " changes the element count");
  return s;
}

std::vector<int> permute_axes(int order_type, int dims) {
  if (dims == 1 && order_type == 0) return {0};
  if (dims == 2 && (order_type == 0 || order_type == 1))
    return order_type == 0 ? std::vector<int>{0, 1} : std::vector<int>{1, 0};
  if (dims == 3 && order_type >= 0 && order_type <= 5) {
    // ncnn names order types by the new (w, h, c); these are outermost-first sources.
    static const int table[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2},
                                    {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
    return {table[order_type][0], table[order_type][1], table[order_type][2]};
  }
  throw ModelError("Permute order_type " + std::to_string(order_type) + " on a " +
                   std::to_string(dims) + "-D input is not supported");
}

Shape permute_shape(int order_type, const Shape& in) {
  const std::vector<int> axes = permute_axes(order_type, in.dims);
  const std::vector<int> e = in.outer_dims();
  std::vector<int> out;
  for (int a : axes) out.push_back(e[a]);
  return Shape::from_outer_dims(out);
}

std::vector<bool> reduction_axes(const ParamDict& p, const Shape& in) {
  std::vector<bool> reduce(in.dims, false);
  const int op = p.get_int(0, 0);
  if (op < 0 || op > 10) throw ModelError("param 0 (operation) must be 0..10");
  if (p.get_int(1, 1)) {
    reduce.assign(in.dims, true);
    return reduce;
  }
  for (int a : p.get_ints(3)) {
    if (a < 0) a += in.dims;
    if (a < 0 || a >= in.dims) throw ModelError("param 3 (axes) out of range for " + in.str());
    reduce[a] = true;
  }
  return reduce;
}

void interp_linear_coeffs(int in_size, int out_size, bool align_corner, std::vector<int>* left,
                          std::vector<float>* alpha) {
  left->resize(out_size);
  alpha->resize(out_size);
  double sc = double(in_size) / out_size;
  if (align_corner) sc = out_size > 1 ? double(in_size - 1) / (out_size - 1) : 0.0;
  for (int d = 0; d < out_size; d++) {
    float f = align_corner ? float(d * sc) : float((d + 0.5) * sc - 0.5);
    int sx = int(std::floor(f));
    f -= float(sx);
    if (sx < 0) sx = 0, f = 0.f;
    if (sx >= in_size - 1) sx = std::max(in_size - 2, 0), f = in_size > 1 ? 1.f : 0.f;
    (*left)[d] = sx;
    (*alpha)[d] = f;
  }
}

}  // namespace rplayer::nn
