// Output shapes per ncnn layer type, following each ncnn layer's forward().
#include <algorithm>
#include <climits>
#include <functional>
#include <map>

#include "nn/layer_params.h"
#include "nn/layer_spec.h"
#include "nn/model_error.h"

namespace rplayer::nn {
namespace {

using Rule = std::function<std::vector<Shape>(const Layer&, const std::vector<Shape>&)>;

void need_inputs(const std::vector<Shape>& in, size_t n) {
  if (in.size() < n)
    throw ModelError("needs " + std::to_string(n) + " inputs, has " + std::to_string(in.size()));
  for (const Shape& s : in)
    if (s.empty()) throw ModelError("input shape unknown");
}

void need_dims(const Shape& s, int lo, int hi) {
  if (s.dims < lo || s.dims > hi)
    throw ModelError("input " + s.str() + " must have " + std::to_string(lo) + ".." +
                     std::to_string(hi) + " dims");
}

Shape check_positive(Shape s) {
  if (s.w <= 0 || s.h <= 0 || s.d <= 0 || s.c <= 0)
    throw ModelError("output shape " + s.str() + " is empty");
  return s;
}

std::vector<Shape> same_as_first(const Layer& l, const std::vector<Shape>& in) {
  need_inputs(in, 1);
  return std::vector<Shape>(l.outputs.size(), in[0]);
}

std::vector<Shape> one(Shape s) { return {check_positive(s)}; }

std::vector<Shape> convolution(const Layer& l, const std::vector<Shape>& in) {
  need_inputs(in, 1);
  const ConvParams p = ConvParams::from(l.params);
  if (in[0].dims == 1 && p.kernel_w == 1 && p.kernel_h == 1) {
    // ncnn runs a 1x1 convolution of a flat blob as InnerProduct.
    if (in[0].w * p.num_output != p.weight_data_size)
      throw ModelError("flat input does not match weight_data_size");
    return one(Shape::vec(p.num_output));
  }
  need_dims(in[0], 3, 3);
  const int group = l.type == "ConvolutionDepthWise" ? p.group : 1;
  if (in[0].c % group != 0 || p.num_output % group != 0)
    throw ModelError("channels not divisible by group " + std::to_string(group));
  const int maxk = p.kernel_w * p.kernel_h;
  if (int64_t(in[0].c / group) * maxk * p.num_output != p.weight_data_size)
    throw ModelError("weight_data_size " + std::to_string(p.weight_data_size) +
                     " does not match " + std::to_string(in[0].c) + " input channels");
  const PadBox pad = p.padding(in[0].w, in[0].h);
  const int w = in[0].w + pad.left + pad.right, h = in[0].h + pad.top + pad.bottom;
  const int kw = p.dilation_w * (p.kernel_w - 1) + 1, kh = p.dilation_h * (p.kernel_h - 1) + 1;
  if (w < kw || h < kh) throw ModelError("input smaller than the kernel");
  return one(Shape::cube((w - kw) / p.stride_w + 1, (h - kh) / p.stride_h + 1, p.num_output));
}

std::vector<Shape> deconvolution(const Layer& l, const std::vector<Shape>& in) {
  need_inputs(in, 1);
  need_dims(in[0], 3, 3);
  const DeconvParams p = DeconvParams::from(l.params);
  const int group = l.type == "DeconvolutionDepthWise" ? p.group : 1;
  if (in[0].c % group != 0 || p.num_output % group != 0)
    throw ModelError("channels not divisible by group " + std::to_string(group));
  const int maxk = p.kernel_w * p.kernel_h;
  if (int64_t(in[0].c / group) * maxk * p.num_output != p.weight_data_size)
    throw ModelError("weight_data_size does not match the input channels");
  const DeconvGeometry g = p.geometry(in[0].w, in[0].h);
  return one(Shape::cube(g.out_w, g.out_h, p.num_output));
}

std::vector<Shape> pooling(const Layer& l, const std::vector<Shape>& in) {
  need_inputs(in, 1);
  need_dims(in[0], 3, 3);
  const PoolParams p = PoolParams::from(l.params);
  if (p.global_pooling) return one(Shape::vec(in[0].c));
  if (p.adaptive_pooling) return one(Shape::cube(p.out_w, p.out_h, in[0].c));
  const PadBox pad = p.padding(in[0].w, in[0].h);
  const int w = in[0].w + pad.left + pad.right, h = in[0].h + pad.top + pad.bottom;
  if (w < p.kernel_w || h < p.kernel_h) throw ModelError("input smaller than the kernel");
  return one(Shape::cube((w - p.kernel_w) / p.stride_w + 1, (h - p.kernel_h) / p.stride_h + 1,
                         in[0].c));
}

std::vector<Shape> inner_product(const Layer& l, const std::vector<Shape>& in) {
  need_inputs(in, 1);
  const int num_output = l.params.get_int(0, 0);
  const int size = l.params.get_int(2, 0);
  if (num_output <= 0 || size % num_output != 0) throw ModelError("bad num_output");
  const int num_input = size / num_output;
  // ncnn treats a 2-D input whose rows match num_input as a batch of rows.
  if (in[0].dims == 2 && in[0].w == num_input && in[0].h > 1)
    return one(Shape::mat(num_output, in[0].h));
  if (int64_t(in[0].total()) != num_input)
    throw ModelError("input has " + std::to_string(in[0].total()) + " elements, weights expect " +
                     std::to_string(num_input));
  return one(Shape::vec(num_output));
}

std::vector<Shape> gemm(const Layer& l, const std::vector<Shape>& in) {
  const GemmParams p = GemmParams::from(l.params);
  size_t next = 0;
  int M, K, N, Kb;
  if (p.constantA) {
    M = p.constantM;
    K = p.constantK;
  } else {
    need_inputs(in, next + 1);
    const Shape& a = in[next++];
    need_dims(a, 2, 3);
    const int rows = a.dims == 3 ? a.c : a.h;
    M = p.transA ? a.w : rows;
    K = p.transA ? rows : a.w;
  }
  if (p.constantB) {
    N = p.constantN;
    Kb = p.constantK;
  } else {
    need_inputs(in, next + 1);
    const Shape& b = in[next++];
    need_dims(b, 2, 3);
    const int rows = b.dims == 3 ? b.c : b.h;
    N = p.transB ? rows : b.w;
    Kb = p.transB ? b.w : rows;
  }
  if (K != Kb)
    throw ModelError("A has K=" + std::to_string(K) + ", B has K=" + std::to_string(Kb));
  if (p.output_N1M) return one(p.output_transpose ? Shape::cube(M, 1, N) : Shape::cube(N, 1, M));
  return one(p.output_transpose ? Shape::mat(M, N) : Shape::mat(N, M));
}

std::vector<Shape> concat(const Layer& l, const std::vector<Shape>& in) {
  need_inputs(in, 1);
  const int dims = in[0].dims;
  int axis = l.params.get_int(0, 0);
  if (axis < 0) axis += dims;
  if (axis < 0 || axis >= dims) throw ModelError("axis out of range");
  std::vector<int> out = in[0].outer_dims();
  out[axis] = 0;
  for (const Shape& s : in) {
    if (s.dims != dims) throw ModelError("inputs differ in rank");
    std::vector<int> e = s.outer_dims();
    for (int i = 0; i < dims; i++)
      if (i != axis && e[i] != out[i]) throw ModelError("inputs differ off the concat axis");
    out[axis] += e[axis];
  }
  return one(Shape::from_outer_dims(out));
}

std::vector<Shape> slice(const Layer& l, const std::vector<Shape>& in) {
  need_inputs(in, 1);
  const std::vector<int> bounds = slice_bounds(l.params, in[0], int(l.outputs.size()));
  int axis = l.params.get_int(1, 0);
  if (axis < 0) axis += in[0].dims;
  std::vector<Shape> out;
  for (size_t i = 0; i + 1 < bounds.size(); i++) {
    std::vector<int> e = in[0].outer_dims();
    e[axis] = bounds[i + 1] - bounds[i];
    out.push_back(check_positive(Shape::from_outer_dims(e)));
  }
  return out;
}

std::vector<Shape> crop(const Layer& l, const std::vector<Shape>& in) {
  need_inputs(in, 1);
  const CropRoi r = crop_roi(l.params, in[0], in.size() > 1 ? &in[1] : nullptr);
  std::vector<int> e = in[0].outer_dims();
  if (in[0].dims == 1) e = {r.outw};
  if (in[0].dims == 2) e = {r.outh, r.outw};
  if (in[0].dims == 3) e = {r.outc, r.outh, r.outw};
  if (in[0].dims == 4) throw ModelError("4-D crop is not supported");
  return one(Shape::from_outer_dims(e));
}

std::vector<Shape> binary_op(const Layer& l, const std::vector<Shape>& in) {
  need_inputs(in, 1);
  if (l.params.get_int(1, 0) || in.size() == 1) return one(in[0]);
  return one(binary_broadcast_shape(in[0], in[1]));
}

std::vector<Shape> eltwise(const Layer& l, const std::vector<Shape>& in) {
  need_inputs(in, 1);
  for (const Shape& s : in)
    if (s != in[0]) throw ModelError("inputs differ in shape");
  return one(in[0]);
}

std::vector<Shape> reshape(const Layer& l, const std::vector<Shape>& in) {
  need_inputs(in, 1);
  return one(reshape_target(l.params, in[0]));
}

std::vector<Shape> permute(const Layer& l, const std::vector<Shape>& in) {
  need_inputs(in, 1);
  return one(permute_shape(l.params.get_int(0, 0), in[0]));
}

std::vector<Shape> padding(const Layer& l, const std::vector<Shape>& in) {
  need_inputs(in, 1);
  const ParamDict& p = l.params;
  const int top = p.get_int(0, 0), bottom = p.get_int(1, 0), left = p.get_int(2, 0),
            right = p.get_int(3, 0), front = p.get_int(7, 0), behind = p.get_int(8, 0);
  Shape s = in[0];
  s.w += left + right;
  if (s.dims >= 2) s.h += top + bottom;
  if (s.dims == 3) s.c += front + behind;
  if (s.dims == 4) s.d += front + behind;
  return one(s);
}

std::vector<Shape> interp(const Layer& l, const std::vector<Shape>& in) {
  need_inputs(in, 1);
  const InterpParams p = InterpParams::from(l.params);
  if (in[0].dims == 1) {
    // ncnn: a vector becomes w channels of outw x outh constants.
    return one(Shape::cube(p.output_width, p.output_height, in[0].w));
  }
  need_dims(in[0], 2, 3);
  int oh, ow;
  if (in.size() > 1 && p.dynamic_target_size) {
    oh = in[1].h;
    ow = in[1].w;
  } else {
    p.output_size(in[0].w, in[0].h, &ow, &oh);
  }
  return one(in[0].dims == 2 ? Shape::mat(ow, oh) : Shape::cube(ow, oh, in[0].c));
}

std::vector<Shape> reduction(const Layer& l, const std::vector<Shape>& in) {
  need_inputs(in, 1);
  const std::vector<bool> reduce = reduction_axes(l.params, in[0]);
  const bool keepdims = l.params.get_int(4, 0);
  std::vector<int> e = in[0].outer_dims(), out;
  for (size_t i = 0; i < e.size(); i++) {
    if (!reduce[i]) out.push_back(e[i]);
    else if (keepdims) out.push_back(1);
  }
  if (out.empty()) out.push_back(1);
  return one(Shape::from_outer_dims(out));
}

std::vector<Shape> multi_head_attention(const Layer& l, const std::vector<Shape>& in) {
  need_inputs(in, 1);
  const int embed = l.params.get_int(0, 0);
  const int size = l.params.get_int(2, 0);
  if (embed <= 0 || size % embed != 0) throw ModelError("bad embed_dim / weight_data_size");
  const int qdim = size / embed;
  for (const Shape& s : in) need_dims(s, 2, 2);
  if (in[0].w != qdim) throw ModelError("query width must be " + std::to_string(qdim));
  if (l.params.get_int(5, 0) || l.params.get_int(7, 0))
    throw ModelError("attention masks and kv cache are not supported");
  return one(Shape::mat(qdim, in[0].h));
}

std::vector<Shape> memory_data(const Layer& l, const std::vector<Shape>&) {
  return {weight_specs(l)[0].shape};
}

std::vector<Shape> noop(const Layer& l, const std::vector<Shape>& in) {
  // ncnn's Noop passes its inputs through in place; extra outputs have no source.
  if (l.outputs.size() > in.size()) throw ModelError("more outputs than inputs");
  return std::vector<Shape>(in.begin(), in.begin() + l.outputs.size());
}

std::vector<Shape> prior_box(const Layer& l, const std::vector<Shape>& in) {
  need_inputs(in, 1);
  const ParamDict& p = l.params;
  const int mins = int(p.get_floats(0).size()), maxs = int(p.get_floats(1).size()),
            ratios = int(p.get_floats(2).size());
  if (mins == 0) throw ModelError("param 0 (min_sizes) is empty");
  if (maxs != 0 && maxs != mins) throw ModelError("params 0/1 (min/max sizes) differ in length");
  if ((p.get_int(9, 0) == -233 || p.get_int(10, 0) == -233) && in.size() < 2)
    throw ModelError("image size -233 needs the image as second input");
  const int num_prior = mins * ratios * (p.get_int(7, 1) ? 2 : 1) + mins + maxs;
  return one(Shape::mat(4 * in[0].w * in[0].h * num_prior, 2));
}

std::vector<Shape> detection_output(const Layer& l, const std::vector<Shape>& in) {
  need_inputs(in, 3);
  const int num_class = l.params.get_int(0, 0), keep = l.params.get_int(3, 100);
  if (num_class < 2) throw ModelError("param 0 (num_class) must be at least 2");
  const int num_prior = in[2].w / 4;
  int rows = num_prior * (num_class - 1);
  if (keep >= 0) rows = std::min(rows, keep);
  return {Shape::mat(6, rows)};
}

std::vector<Shape> yolo_detection_output(const Layer& l, const std::vector<Shape>& in) {
  need_inputs(in, 1);
  const int num_box = l.params.get_int(1, 5);
  if (num_box <= 0) throw ModelError("param 1 (num_box) must be positive");
  int rows = 0;
  for (const Shape& s : in) {
    need_dims(s, 3, 3);
    rows += s.w * s.h * num_box;
  }
  return {Shape::mat(6, rows)};
}

const std::map<std::string, Rule, std::less<>>& rules() {
  static const std::map<std::string, Rule, std::less<>> r = {
      {"AbsVal", same_as_first},
      {"BatchNorm", same_as_first},
      {"Bias", same_as_first},
      {"BinaryOp", binary_op},
      {"Clip", same_as_first},
      {"Concat", concat},
      {"Convolution", convolution},
      {"ConvolutionDepthWise", convolution},
      {"Crop", crop},
      {"Deconvolution", deconvolution},
      {"DeconvolutionDepthWise", deconvolution},
      {"DetectionOutput", detection_output},
      {"Dropout", same_as_first},
      {"ELU", same_as_first},
      {"Eltwise", eltwise},
      {"Flatten", [](const Layer&, const std::vector<Shape>& in) {
         need_inputs(in, 1);
         return one(Shape::vec(int(in[0].total())));
       }},
      {"GELU", same_as_first},
      {"Gemm", gemm},
      {"HardSigmoid", same_as_first},
      {"HardSwish", same_as_first},
      {"InnerProduct", inner_product},
      {"Interp", interp},
      {"LRN", same_as_first},
      {"LayerNorm", same_as_first},
      {"MemoryData", memory_data},
      {"Mish", same_as_first},
      {"MultiHeadAttention", multi_head_attention},
      {"Noop", noop},
      {"Padding", padding},
      {"Permute", permute},
      {"Pooling", pooling},
      {"PriorBox", prior_box},
      {"PReLU", same_as_first},
      {"Reduction", reduction},
      {"ReLU", same_as_first},
      {"Reshape", reshape},
      {"Scale", same_as_first},
      {"ShuffleChannel", same_as_first},
      {"Sigmoid", same_as_first},
      {"Slice", slice},
      {"Softmax", same_as_first},
      {"Split", same_as_first},
      {"Swish", same_as_first},
      {"TanH", same_as_first},
      {"UnaryOp", same_as_first},
      {"YoloDetectionOutput", yolo_detection_output},
      {"Yolov3DetectionOutput", yolo_detection_output},
  };
  return r;
}

}  // namespace

std::vector<Shape> infer_layer_shapes(const Layer& layer, const std::vector<Shape>& inputs) {
  auto it = rules().find(layer.type);
  if (it == rules().end()) throw ModelError("unsupported layer type " + layer.type);
  return it->second(layer, inputs);
}

}  // namespace rplayer::nn
