#include "nn/layer_spec.h"

#include <algorithm>

#include "nn/model_error.h"

namespace rplayer::nn {

const std::vector<std::string>& supported_layer_types() {
  static const std::vector<std::string> types = {
      "AbsVal", "BatchNorm", "Bias", "BinaryOp", "Clip", "Concat", "Convolution",
      "ConvolutionDepthWise", "Crop", "Deconvolution", "DeconvolutionDepthWise",
      "DetectionOutput", "Dropout",
      "ELU", "Eltwise", "Flatten", "GELU", "Gemm", "HardSigmoid", "HardSwish", "InnerProduct",
      "Input", "Interp", "LRN", "LayerNorm", "MemoryData", "Mish", "MultiHeadAttention",
      "Noop", "Padding", "Permute", "Pooling", "PReLU", "PriorBox", "Reduction", "ReLU",
      "Reshape", "Scale", "ShuffleChannel", "Sigmoid", "Slice", "Softmax", "Split", "Swish",
      "TanH", "UnaryOp", "YoloDetectionOutput", "Yolov3DetectionOutput"};
  return types;
}

bool is_supported_layer_type(std::string_view type) {
  const auto& t = supported_layer_types();
  return std::find(t.begin(), t.end(), type) != t.end();
}

bool has_data_dependent_shape(std::string_view type) {
  return type == "DetectionOutput" || type == "YoloDetectionOutput" ||
         type == "Yolov3DetectionOutput";
}

Shape input_layer_shape(const Layer& layer) {
  const int w = layer.params.get_int(0, 0);
  const int h = layer.params.get_int(1, 0);
  const int c = layer.params.get_int(2, 0);
  const int d = layer.params.get_int(11, 0);
  if (w <= 0) return {};
  if (h <= 0) return Shape::vec(w);
  if (c <= 0) return Shape::mat(w, h);
  if (d > 0) return Shape::cube4(w, h, d, c);
  return Shape::cube(w, h, c);
}

namespace {

WeightSpec tagged(std::string name, int count, int fan_in) {
  return {std::move(name), Shape::vec(count), true, WeightInit::kFanIn, std::max(fan_in, 1)};
}

WeightSpec raw(std::string name, int count, WeightInit init = WeightInit::kSmall) {
  return {std::move(name), Shape::vec(count), false, init, 1};
}

int positive(const Layer& l, int id, const char* what) {
  const int v = l.params.get_int(id, 0);
  if (v <= 0)
    throw ModelError("param " + std::to_string(id) + " (" + what + ") must be positive, is " +
                     std::to_string(v));
  return v;
}

// A weight's element count from two params: their product must fit an int (found by
// fuzz/fuzz_ncnn: Gemm with K = 3072, N = 768160 overflowed).
int count(int a, int b, const char* what) {
  int n;
  if (__builtin_mul_overflow(a, b, &n))
    throw ModelError(std::string(what) + ": " + std::to_string(a) + " x " + std::to_string(b) +
                     " elements is too many");
  return n;
}

void no_int8(const Layer& l, int id) {
  if (l.params.get_int(id, 0) != 0)
    throw ModelError("int8 quantized layers (param " + std::to_string(id) +
                     " int8_scale_term) are not supported");
}

}  // namespace

std::vector<WeightSpec> weight_specs(const Layer& l) {
  const ParamDict& p = l.params;
  const std::string& t = l.type;
  std::vector<WeightSpec> w;
  if (t == "Convolution" || t == "ConvolutionDepthWise" || t == "Deconvolution" ||
      t == "DeconvolutionDepthWise") {
    const int num_output = positive(l, 0, "num_output");
    const int size = positive(l, 6, "weight_data_size");
    no_int8(l, 8);
    if (t == "Convolution" && p.get_int(19, 0) != 0)
      throw ModelError("dynamic weights (param 19) are not supported");
    w.push_back(tagged("weight", size, size / num_output));
    if (p.get_int(5, 0)) w.push_back(raw("bias", num_output));
  } else if (t == "InnerProduct") {
    const int num_output = positive(l, 0, "num_output");
    const int size = positive(l, 2, "weight_data_size");
    no_int8(l, 8);
    w.push_back(tagged("weight", size, size / num_output));
    if (p.get_int(1, 0)) w.push_back(raw("bias", num_output));
  } else if (t == "BatchNorm") {
    const int c = positive(l, 0, "channels");
    w.push_back(raw("slope", c, WeightInit::kNearOne));
    w.push_back(raw("mean", c));
    w.push_back(raw("var", c, WeightInit::kNearOne));
    w.push_back(raw("bias", c));
  } else if (t == "Scale") {
    const int size = p.get_int(0, 0);
    if (size != -233) {
      if (size <= 0) throw ModelError("param 0 (scale_data_size) must be positive");
      w.push_back(raw("scale", size, WeightInit::kNearOne));
      if (p.get_int(1, 0)) w.push_back(raw("bias", size));
    }
  } else if (t == "Bias") {
    w.push_back(raw("bias", positive(l, 0, "bias_data_size")));
  } else if (t == "PReLU") {
    w.push_back(raw("slope", positive(l, 0, "num_slope")));
  } else if (t == "Padding") {
    const int n = p.get_int(6, 0);
    if (n > 0) w.push_back(raw("pad_value", n));
  } else if (t == "LayerNorm") {
    const int n = positive(l, 0, "affine_size");
    if (p.get_int(2, 1)) {
      w.push_back(raw("gamma", n, WeightInit::kNearOne));
      w.push_back(raw("beta", n));
    }
  } else if (t == "MemoryData") {
    const int mw = p.get_int(0, 0), mh = p.get_int(1, 0), md = p.get_int(11, 0);
    const int mc = p.get_int(2, 0);
    Shape s = md ? Shape::cube4(mw, mh, md, mc)
              : mc ? Shape::cube(mw, mh, mc)
              : mh ? Shape::mat(mw, mh)
              : mw ? Shape::vec(mw) : Shape::vec(1);
    if (s.total() == 0 || mw < 0 || mh < 0 || mc < 0 || md < 0)
      throw ModelError("bad MemoryData shape " + s.str());
    // ncnn: load_type 21 defaults to 1 (raw fp32).
    w.push_back({"data", s, p.get_int(21, 1) == 0, WeightInit::kSmall, 1});
  } else if (t == "MultiHeadAttention") {
    const int embed = positive(l, 0, "embed_dim");
    const int size = positive(l, 2, "weight_data_size");
    no_int8(l, 18);
    const int qdim = size / embed;
    const int kdim = p.get_int(3, embed), vdim = p.get_int(4, embed);
    w.push_back(tagged("q_weight", count(embed, qdim, "q_weight"), qdim));
    w.push_back(raw("q_bias", embed));
    w.push_back(tagged("k_weight", count(embed, kdim, "k_weight"), kdim));
    w.push_back(raw("k_bias", embed));
    w.push_back(tagged("v_weight", count(embed, vdim, "v_weight"), vdim));
    w.push_back(raw("v_bias", embed));
    w.push_back(tagged("out_weight", count(qdim, embed, "out_weight"), embed));
    w.push_back(raw("out_bias", qdim));
  } else if (t == "Gemm") {
    no_int8(l, 18);
    const int transA = p.get_int(2, 0), transB = p.get_int(3, 0);
    const int M = p.get_int(7, 0), N = p.get_int(8, 0), K = p.get_int(9, 0);
    if (p.get_int(4, 0)) {
      if (M <= 0 || K <= 0) throw ModelError("constant A needs params 7 (M) and 9 (K)");
      WeightSpec a = tagged("A", count(M, K, "A"), K);
      a.shape = transA ? Shape::mat(M, K) : Shape::mat(K, M);
      w.push_back(a);
    }
    if (p.get_int(5, 0)) {
      if (N <= 0 || K <= 0) throw ModelError("constant B needs params 8 (N) and 9 (K)");
      WeightSpec b = tagged("B", count(N, K, "B"), K);
      b.shape = transB ? Shape::mat(K, N) : Shape::mat(N, K);
      w.push_back(b);
    }
    const int bc = p.get_int(10, 0);
    if (p.get_int(6, 0) && bc != -1) {
      Shape s;
      switch (bc) {
        case 0: s = Shape::vec(1); break;
        case 1: s = Shape::vec(M); break;
        case 2: s = Shape::mat(1, M); break;
        case 3: s = Shape::mat(N, M); break;
        case 4: s = Shape::mat(N, 1); break;
        default: throw ModelError("param 10 (constant_broadcast_type_C) must be -1..4");
      }
      if (s.total() == 0) throw ModelError("constant C needs params 7 (M) / 8 (N)");
      w.push_back({"C", s, true, WeightInit::kSmall, 1});
    }
  }
  return w;
}

}  // namespace rplayer::nn
