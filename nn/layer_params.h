// Decoded ncnn layer params and the geometry derived from them (padding, output sizes,
// broadcasting, slicing), shared by shape inference, the CPU reference and GPU backends
// so that every backend agrees with ncnn on the same rules.
#pragma once

#include <cmath>
#include <vector>

#include "nn/param_dict.h"
#include "nn/tensor.h"

namespace rplayer::nn {

struct PadBox {
  int left = 0, right = 0, top = 0, bottom = 0;
};

// ncnn fused activation (param 9 activation_type, 10 activation_params) of Convolution,
// ConvolutionDepthWise, Deconvolution*, InnerProduct.
struct Activation {
  int type = 0;  // 0 none, 1 relu, 2 leakyrelu, 3 clip, 4 sigmoid, 5 mish, 6 hardswish
  float a = 0.f, b = 0.f;
  static Activation from(const ParamDict& p, int type_id = 9, int params_id = 10);
  float operator()(float v) const {
    switch (type) {
      case 1: return v > 0.f ? v : 0.f;
      case 2: return v > 0.f ? v : v * a;
      case 3: return v < a ? a : (v > b ? b : v);
      case 4: return 1.f / (1.f + std::exp(-v));
      case 5: return v * std::tanh(std::log(std::exp(v) + 1.f));
      case 6: {
        const float lower = -b / a, upper = 1.f / a + lower;
        if (v < lower) return 0.f;
        if (v > upper) return v;
        return v * (v * a + b);
      }
      default: return v;
    }
  }
};

// What Convolution and Deconvolution (and their depthwise forms) share: ncnn numbers these
// params alike (0 num_output, 1/11 kernel, 2/12 dilation, 3/13 stride, 4/15/14/16 pad,
// 5 bias_term, 6 weight_data_size, 7 group, 9/10 activation).
struct ConvWindow {
  int num_output = 0, kernel_w = 0, kernel_h = 0, dilation_w = 1, dilation_h = 1;
  int stride_w = 1, stride_h = 1;
  int pad_left = 0, pad_right = 0, pad_top = 0, pad_bottom = 0;  // -233/-234: SAME
  int bias_term = 0, weight_data_size = 0, group = 1;
  Activation activation;
  // Reads the shared params; throws ModelError unless sizes, strides and group are positive.
  void read(const ParamDict& p);
};

struct ConvParams : ConvWindow {
  float pad_value = 0.f;
  static ConvParams from(const ParamDict& p);
  // Border added to a w x h input (SAME_UPPER/LOWER resolved).
  PadBox padding(int w, int h) const;
};

struct DeconvGeometry {
  int full_w = 0, full_h = 0;  // before cutting the padding
  int cut_left = 0, cut_top = 0;
  int out_w = 0, out_h = 0;
};

struct DeconvParams : ConvWindow {
  int output_pad_right = 0, output_pad_bottom = 0, output_w = 0, output_h = 0;
  static DeconvParams from(const ParamDict& p);
  DeconvGeometry geometry(int w, int h) const;
};

struct PoolParams {
  int pooling_type = 0;  // 0 max, 1 avg
  int kernel_w = 0, kernel_h = 0, stride_w = 1, stride_h = 1;
  int pad_left = 0, pad_right = 0, pad_top = 0, pad_bottom = 0;
  int global_pooling = 0;
  int pad_mode = 0;  // 0 full (ceil), 1 valid, 2 SAME_UPPER, 3 SAME_LOWER
  int avgpool_count_include_pad = 0;
  int adaptive_pooling = 0, out_w = 0, out_h = 0;
  static PoolParams from(const ParamDict& p);
  // Border added to a w x h input, including pad_mode 0's tail padding.
  PadBox padding(int w, int h) const;
};

struct GemmParams {
  float alpha = 1.f, beta = 1.f;
  int transA = 0, transB = 0, constantA = 0, constantB = 0, constantC = 0;
  int constantM = 0, constantN = 0, constantK = 0, constant_broadcast_type_C = 0;
  int output_N1M = 0, output_transpose = 0;
  static GemmParams from(const ParamDict& p);
};

struct InterpParams {
  int resize_type = 1;  // 1 nearest, 2 bilinear, 3 bicubic
  float height_scale = 1.f, width_scale = 1.f;
  int output_height = 0, output_width = 0, dynamic_target_size = 0, align_corner = 0;
  static InterpParams from(const ParamDict& p);
  void output_size(int w, int h, int* ow, int* oh) const;
};

// Slice: boundaries (n_outputs + 1 offsets) along the slice axis (param 1).
std::vector<int> slice_bounds(const ParamDict& p, const Shape& in, int n_outputs);

struct CropRoi {
  int woffset = 0, hoffset = 0, coffset = 0;
  int outw = 0, outh = 0, outc = 0;
};
// Crop's region; `reference` is the optional second input.
CropRoi crop_roi(const ParamDict& p, const Shape& in, const Shape* reference);

// BinaryOp: `a` aligned to `rank` dims as ncnn aligns it against `other` (ncnn expands
// the inner axes, except that a vector matching other's channels becomes per-channel).
Shape binary_expand(const Shape& a, const Shape& other, int rank);
// The broadcast result of BinaryOp on a and b; throws ModelError if incompatible.
Shape binary_broadcast_shape(const Shape& a, const Shape& b);

// Reshape's output (0=w 1=h 11=d 2=c; 0 keeps the input extent, -1 infers).
Shape reshape_target(const ParamDict& p, const Shape& in);

// Permute: output shape, and for each output axis (outermost first) the input axis it
// takes. Supports 2-D (order 0..1) and 3-D (order 0..5) inputs.
Shape permute_shape(int order_type, const Shape& in);
std::vector<int> permute_axes(int order_type, int dims);

// Reduction: which outer axes are reduced.
std::vector<bool> reduction_axes(const ParamDict& p, const Shape& in);

// ncnn's linear_coeffs for bilinear Interp: for each output index, the left source index
// (the right one is the next, clamped) and the right neighbour's weight. Half-pixel
// centers unless align_corner; clamped at the edges. Both backends use it so they agree.
void interp_linear_coeffs(int in_size, int out_size, bool align_corner, std::vector<int>* left,
                          std::vector<float>* alpha);

}  // namespace rplayer::nn
