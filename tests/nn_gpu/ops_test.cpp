// Every GPU operator against the CPU reference (run_layer_cpu through CpuExecutor), on
// small graphs written as ncnn .param text with generated weights, on both SKUs.
// Tolerance 0 means bit-identical; only the operators built on exp/log approximations of
// std::pow (BinaryOp pow, LRN) and log10 get a tolerance.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "nn/model_error.h"
#include "test_util.h"

namespace rplayer::nn {
namespace {

using testing::GpuStack;
using testing::make_graph;
using testing::make_inputs;

struct OpCase {
  std::string name;
  std::vector<std::string> lines;
  double rtol = 0, atol = 0;
  float lo = -1.f, hi = 1.f;  // input range
};

std::string S(int v) { return std::to_string(v); }

// Convolution-family layer with weight_data_size filled in.
std::string conv(const std::string& type, const std::string& in, const std::string& out, int inc,
                 int outc, int kw, int kh, const std::string& extra, int group = 1) {
  const int ws = outc * (inc / group) * kw * kh;
  return type + " " + out + "_l 1 1 " + in + " " + out + " 0=" + S(outc) + " 1=" + S(kw) +
         " 11=" + S(kh) + " 6=" + S(ws) + (group > 1 ? " 7=" + S(group) : "") + " " + extra;
}

std::string input(const std::string& name, int w, int h = 0, int c = 0) {
  return "Input " + name + "_in 0 1 " + name + " 0=" + S(w) + (h ? " 1=" + S(h) : "") +
         (c ? " 2=" + S(c) : "");
}

std::vector<OpCase> cases() {
  std::vector<OpCase> v;
  const std::string x3 = input("x", 19, 17, 3), x8 = input("x", 13, 11, 8),
                    x32 = input("x", 15, 14, 32);
  // --- Convolution
  v.push_back(
      {"conv3x3_pad1_bias_relu", {x3, conv("Convolution", "x", "y", 3, 20, 3, 3, "4=1 5=1 9=1")}});
  v.push_back({"conv1x1_32to48", {x32, conv("Convolution", "x", "y", 32, 48, 1, 1, "5=1")}});
  v.push_back(
      {"conv1x1_nobias_odd_channels", {x32, conv("Convolution", "x", "y", 32, 37, 1, 1, "")}});
  v.push_back(
      {"conv5x5_s2_pad2_clip",
       {x8, conv("Convolution", "x", "y", 8, 24, 5, 5, "3=2 4=2 5=1 9=3 -23310=2,-0.5,0.5")}});
  v.push_back(
      {"conv3x3_dilation2", {x8, conv("Convolution", "x", "y", 8, 16, 3, 3, "2=2 4=2 5=1")}});
  v.push_back({"conv_asymmetric_pads_value",
               {x8, conv("Convolution", "x", "y", 8, 12, 3, 2, "4=1 15=2 14=0 16=1 18=0.5 5=1")}});
  v.push_back(
      {"conv_same_upper_s2", {x8, conv("Convolution", "x", "y", 8, 16, 3, 3, "3=2 4=-233 5=1")}});
  v.push_back(
      {"conv_same_lower_s2", {x8, conv("Convolution", "x", "y", 8, 16, 4, 4, "3=2 4=-234 5=1")}});
  v.push_back(
      {"conv_rect_strides", {x8, conv("Convolution", "x", "y", 8, 8, 3, 5, "3=1 13=2 4=1 5=1")}});
  v.push_back(
      {"conv7x7_s2_pad3", {x3, conv("Convolution", "x", "y", 3, 16, 7, 7, "3=2 4=3 5=1 9=1")}});
  v.push_back(
      {"conv_leaky", {x8, conv("Convolution", "x", "y", 8, 8, 3, 3, "4=1 5=1 9=2 -23310=1,0.1")}});
  v.push_back({"conv_sigmoid", {x8, conv("Convolution", "x", "y", 8, 8, 1, 1, "5=1 9=4")}});
  v.push_back({"conv_mish", {x8, conv("Convolution", "x", "y", 8, 8, 1, 1, "5=1 9=5")}});
  v.push_back({"conv_hardswish",
               {x8, conv("Convolution", "x", "y", 8, 8, 1, 1, "5=1 9=6 -23310=2,0.2,0.5")},
               0,
               0,
               -4.f,
               4.f});
  v.push_back({"conv_flat_input",
               {input("x", 50), conv("Convolution", "x", "y", 50, 30, 1, 1, "5=1 9=1")}});
  v.push_back(
      {"conv_grouped2", {x8, conv("ConvolutionDepthWise", "x", "y", 8, 12, 3, 3, "4=1 5=1", 2)}});
  v.push_back({"conv_grouped4_partial",
               {x8, conv("ConvolutionDepthWise", "x", "y", 8, 12, 3, 3, "5=1", 4)}});
  // Standalone activations fused into the layer before them, also as graph outputs.
  v.push_back({"conv_then_relu_output",
               {x8, conv("Convolution", "x", "c", 8, 12, 3, 3, "4=1 5=1"), "ReLU r 1 1 c y"}});
  v.push_back({"conv_relu_then_hardswish",
               {x8, conv("Convolution", "x", "c", 8, 12, 1, 1, "5=1 9=1"),
                "HardSwish h 1 1 c y"}});
  v.push_back({"dw_then_sigmoid",
               {x8, conv("ConvolutionDepthWise", "x", "c", 8, 8, 3, 3, "4=1 5=1", 8),
                "Sigmoid s 1 1 c y"}});
  v.push_back({"fc_then_tanh", {input("x", 64), "InnerProduct fc 1 1 x c 0=10 1=1 2=640",
                                "TanH t 1 1 c y"}});
  v.push_back({"conv_shared_output_not_fused",
               {x8, conv("Convolution", "x", "c", 8, 4, 1, 1, "5=1"), "Split s 1 2 c c1 c2",
                "ReLU r 1 1 c1 y", "Sigmoid g 1 1 c2 z"}});
  // --- Depthwise
  v.push_back({"dw3x3_s1_p1",
               {x32, conv("ConvolutionDepthWise", "x", "y", 32, 32, 3, 3, "4=1 5=1 9=1", 32)}});
  v.push_back({"dw3x3_s2_p1_nobias",
               {x32, conv("ConvolutionDepthWise", "x", "y", 32, 32, 3, 3, "3=2 4=1", 32)}});
  v.push_back({"dw5x5_s2_p2_relu6",
               {x32, conv("ConvolutionDepthWise", "x", "y", 32, 32, 5, 5,
                          "3=2 4=2 5=1 9=3 -23310=2,0,6", 32)}});
  v.push_back({"dw3x3_dilation2",
               {x8, conv("ConvolutionDepthWise", "x", "y", 8, 8, 3, 3, "2=2 4=2 5=1", 8)}});
  v.push_back({"dw7x7_p3", {x8, conv("ConvolutionDepthWise", "x", "y", 8, 8, 7, 7, "4=3 5=1", 8)}});
  v.push_back(
      {"dw_multiplier2", {x8, conv("ConvolutionDepthWise", "x", "y", 8, 16, 3, 3, "4=1 5=1", 8)}});
  // --- Pooling
  const std::string p16 = input("x", 16, 15, 5);
  v.push_back({"maxpool3x3_s2_ceil", {p16, "Pooling p 1 1 x y 0=0 1=3 2=2"}});
  v.push_back({"maxpool2x2_s2", {p16, "Pooling p 1 1 x y 0=0 1=2 2=2"}});
  v.push_back({"avgpool3x3_s2_ceil", {p16, "Pooling p 1 1 x y 0=1 1=3 2=2"}});
  v.push_back({"avgpool3x3_s1_p1", {p16, "Pooling p 1 1 x y 0=1 1=3 2=1 3=1"}});
  v.push_back({"avgpool3x3_s1_p1_incpad", {p16, "Pooling p 1 1 x y 0=1 1=3 2=1 3=1 6=1"}});
  v.push_back({"avgpool_valid", {p16, "Pooling p 1 1 x y 0=1 1=3 2=2 3=1 5=1"}});
  v.push_back({"maxpool_same_upper", {p16, "Pooling p 1 1 x y 0=0 1=3 2=2 5=2"}});
  v.push_back({"avgpool_same_lower", {p16, "Pooling p 1 1 x y 0=1 1=4 2=3 5=3"}});
  v.push_back(
      {"avgpool_tail_with_pads", {p16, "Pooling p 1 1 x y 0=1 1=3 2=2 3=1 14=0 13=2 15=1"}});
  v.push_back({"maxpool_exact_fit", {input("x", 17, 15, 5), "Pooling p 1 1 x y 0=0 1=3 2=2"}});
  v.push_back({"avgpool_exact_fit", {input("x", 17, 15, 5), "Pooling p 1 1 x y 0=1 1=3 2=2"}});
  v.push_back({"global_max", {p16, "Pooling p 1 1 x y 0=0 4=1"}});
  v.push_back({"global_avg", {p16, "Pooling p 1 1 x y 0=1 4=1"}});
  // --- InnerProduct, Gemm
  v.push_back({"innerproduct_3d_input",
               {x8, "InnerProduct fc 1 1 x y 0=37 1=1 2=" + S(37 * 13 * 11 * 8) + " 9=1"}});
  v.push_back({"innerproduct_vec_tail3",
               {input("x", 303), "InnerProduct fc 1 1 x y 0=20 1=1 2=6060 9=6 -23310=2,0.2,0.5"}});
  v.push_back({"innerproduct_nobias", {input("x", 64), "InnerProduct fc 1 1 x y 0=10 2=640"}});
  v.push_back({"innerproduct_rows", {input("x", 24, 5), "InnerProduct fc 1 1 x y 0=16 1=1 2=384"}});
  v.push_back({"gemm_plain", {input("a", 7, 5), input("b", 9, 7), "Gemm g 2 1 a b y"}});
  v.push_back({"gemm_trans_alpha_beta_c",
               {input("a", 5, 7), input("b", 7, 9), input("c", 9, 5),
                "Gemm g 3 1 a b c y 0=0.5 1=2.0 2=1 3=1"}});
  v.push_back(
      {"gemm_const_b_c_rowbias", {input("a", 6, 4), "Gemm g 1 1 a y 5=1 6=1 8=5 9=6 10=1 7=4"}});
  v.push_back(
      {"gemm_output_transpose", {input("a", 6, 4), input("b", 5, 6), "Gemm g 2 1 a b y 14=1"}});
  // --- Activations and unary ops
  const std::string e = input("x", 23, 7, 3);
  v.push_back({"relu", {e, "ReLU r 1 1 x y"}});
  v.push_back({"leaky_relu", {e, "ReLU r 1 1 x y 0=0.1"}});
  v.push_back({"clip", {e, "Clip r 1 1 x y 0=-0.3 1=0.6"}});
  v.push_back({"sigmoid", {e, "Sigmoid r 1 1 x y"}, 0, 0, -8, 8});
  v.push_back({"hardswish_default", {e, "HardSwish r 1 1 x y"}, 0, 0, -5, 5});
  v.push_back({"hardswish_onnx", {e, "HardSwish r 1 1 x y 0=0.1666667 1=0.5"}, 0, 0, -5, 5});
  v.push_back({"hardsigmoid", {e, "HardSigmoid r 1 1 x y"}, 0, 0, -5, 5});
  v.push_back({"swish", {e, "Swish r 1 1 x y"}, 0, 0, -8, 8});
  v.push_back({"tanh", {e, "TanH r 1 1 x y"}, 0, 0, -4, 4});
  v.push_back({"mish", {e, "Mish r 1 1 x y"}, 0, 0, -4, 4});
  v.push_back({"absval", {e, "AbsVal r 1 1 x y"}});
  v.push_back({"elu", {e, "ELU r 1 1 x y 0=0.7"}, 0, 0, -3, 3});
  v.push_back({"prelu", {e, "PReLU r 1 1 x y 0=3"}});
  v.push_back({"prelu_shared", {e, "PReLU r 1 1 x y 0=1"}});
  v.push_back({"prelu_1d", {input("x", 30), "PReLU r 1 1 x y 0=30"}});
  for (int op : {0, 1, 2, 3, 4, 5, 6, 7, 8, 15, 16, 19}) {
    const bool positive = op == 5 || op == 6 || op == 8;
    v.push_back(
        {"unary" + S(op), {e, "UnaryOp u 1 1 x y 0=" + S(op)}, 0, 0, positive ? 0.1f : -3.f, 3.f});
  }
  v.push_back({"unary17_log10", {e, "UnaryOp u 1 1 x y 0=17"}, 2e-6, 0, 0.1f, 10.f});
  v.push_back({"unary14_atan", {e, "UnaryOp u 1 1 x y 0=14"}, 2e-7, 1e-7, -20.f, 20.f});
  v.push_back({"unary18_round", {e, "UnaryOp u 1 1 x y 0=18"}, 0, 0, -10.f, 10.f});
  v.push_back({"dropout_scale", {e, "Dropout d 1 1 x y 0=0.5"}});
  // --- Per-channel affine
  v.push_back({"batchnorm", {e, "BatchNorm b 1 1 x y 0=3 1=0.001"}});
  v.push_back({"scale_bias", {e, "Scale s 1 1 x y 0=3 1=1"}});
  v.push_back({"scale", {e, "Scale s 1 1 x y 0=3"}});
  v.push_back({"scale_blob", {e, input("s", 3), "Scale s 2 1 x s y 0=-233"}});
  v.push_back({"bias", {e, "Bias b 1 1 x y 0=3"}});
  v.push_back({"batchnorm_1d", {input("x", 40), "BatchNorm b 1 1 x y 0=40"}});
  v.push_back({"scale_2d", {input("x", 9, 6), "Scale s 1 1 x y 0=6 1=1"}});
  // --- BinaryOp
  for (int op = 0; op <= 11; ++op) {
    // pow and atan2 are approximations; pow needs positive bases.
    const bool pow = op == 6 || op == 9, atan2 = op == 10 || op == 11;
    const double rt = pow || atan2 ? 2e-6 : 0, at = atan2 ? 1e-6 : 1e-30;
    const float lo = pow ? 0.2f : -2.f, hi = 2.f;
    const std::string o = "BinaryOp o 2 1 ", p = " 0=" + S(op);
    const std::string n = "binary" + S(op);
    v.push_back({n + "_same", {e, input("b", 23, 7, 3), o + "x b y" + p}, rt, at, lo, hi});
    v.push_back({n + "_scalar", {e, "BinaryOp o 1 1 x y" + p + " 1=1 2=1.5"}, rt, at, lo, hi});
    v.push_back({n + "_per_channel", {e, input("b", 3), o + "x b y" + p}, rt, at, lo, hi});
    v.push_back(
        {n + "_channel_first", {input("a", 1, 1, 3), e, o + "a x y" + p}, rt, at, lo, hi});
    v.push_back({n + "_plane", {e, input("b", 23, 7, 1), o + "x b y" + p}, rt, at, lo, hi});
  }

  v.push_back({"binary_rows", {input("x", 23, 7), input("b", 23), "BinaryOp o 2 1 x b y 0=2"}});
  v.push_back({"binary_column", {input("x", 23, 7), input("b", 1, 7), "BinaryOp o 2 1 x b y 0=1"}});
  v.push_back(
      {"binary_scalar_blob", {e, input("b", 1), "BinaryOp o 2 1 x b y 0=3"}, 0, 0, 0.5f, 2.f});
  v.push_back(
      {"binary_outer", {input("a", 1, 7, 3), input("b", 23, 1, 3), "BinaryOp o 2 1 a b y 0=0"}});
  // --- Eltwise
  v.push_back({"eltwise_sum", {e, input("b", 23, 7, 3), "Eltwise s 2 1 x b y 0=1"}});
  v.push_back({"eltwise_sum_coeffs3",
               {e, input("b", 23, 7, 3), input("c", 23, 7, 3),
                "Eltwise s 3 1 x b c y 0=1 -23301=3,0.5,-1.5,2.0"}});
  v.push_back({"eltwise_prod3",
               {e, input("b", 23, 7, 3), input("c", 23, 7, 3), "Eltwise s 3 1 x b c y 0=0"}});
  v.push_back({"eltwise_max", {e, input("b", 23, 7, 3), "Eltwise s 2 1 x b y 0=2"}});
  // Activations fused into the element-wise layer before them.
  v.push_back(
      {"eltwise_sum_relu", {e, input("b", 23, 7, 3), "Eltwise s 2 1 x b s 0=1", "ReLU r 1 1 s y"}});
  v.push_back({"eltwise_sum3_clip",
               {e, input("b", 23, 7, 3), input("c", 23, 7, 3),
                "Eltwise s 3 1 x b c s 0=1 -23301=3,0.5,-1.5,2.0", "Clip r 1 1 s y 0=-0.5 1=0.5"}});
  v.push_back(
      {"binary_channel_relu", {e, input("b", 3), "BinaryOp o 2 1 x b s 0=2", "ReLU r 1 1 s y"}});
  v.push_back({"binary_outer_sigmoid",
               {input("a", 1, 7, 3), input("b", 23, 1, 3), "BinaryOp o 2 1 a b s 0=0",
                "Sigmoid r 1 1 s y"}});
  v.push_back(
      {"binary_scalar_hswish", {e, "BinaryOp o 1 1 x s 0=2 1=1 2=3.0", "HardSwish r 1 1 s y"}});
  // --- Softmax, LRN
  v.push_back({"softmax_vec", {input("x", 1000), "Softmax s 1 1 x y"}, 0, 0, -5, 5});
  for (int axis = 0; axis < 3; ++axis)
    v.push_back(
        {"softmax_axis" + S(axis), {e, "Softmax s 1 1 x y 0=" + S(axis) + " 1=1"}, 0, 0, -5, 5});
  v.push_back({"softmax_2d_axis1", {input("x", 11, 6), "Softmax s 1 1 x y 0=1 1=1"}, 0, 0, -5, 5});
  v.push_back({"lrn_across", {x8, "LRN n 1 1 x y 2=0.0001"}, 2e-6, 0, -3, 3});
  v.push_back({"lrn_within", {x8, "LRN n 1 1 x y 0=1 1=3 2=0.01 3=0.5 4=2.0"}, 2e-6, 0, -3, 3});
  // --- Reduction
  const std::string r4 = input("x", 9, 7, 5);
  for (int op = 0; op <= 10; ++op) {
    // log-sum needs a positive sum; products of values near 1 stay representable.
    const float lo = op == 9 ? 0.1f : op == 6 ? 0.95f : -1.f, hi = op == 6 ? 1.05f : 1.f;
    v.push_back(
        {"reduce_all_op" + S(op), {r4, "Reduction r 1 1 x y 0=" + S(op) + " 2=0.5"}, 0, 0, lo, hi});
    v.push_back({"reduce_hw_op" + S(op),
                 {r4, "Reduction r 1 1 x y 0=" + S(op) + " 1=0 -23303=2,1,2 4=1"},
                 0,
                 0,
                 lo,
                 hi});
    v.push_back({"reduce_c_op" + S(op),
                 {r4, "Reduction r 1 1 x y 0=" + S(op) + " 1=0 -23303=1,0"},
                 0,
                 0,
                 lo,
                 hi});
  }
  v.push_back({"reduce_ch_2d", {input("x", 9, 7), "Reduction r 1 1 x y 0=3 1=0 -23303=1,-1"}});
  // --- Data movement
  v.push_back({"concat_channels", {e, input("b", 23, 7, 5), "Concat c 2 1 x b y"}});
  v.push_back({"concat_rows", {e, input("b", 23, 4, 3), "Concat c 2 1 x b y 0=1"}});
  v.push_back({"concat_cols", {e, input("b", 5, 7, 3), "Concat c 2 1 x b y 0=2"}});
  v.push_back({"concat_computed_in_place",
               {e, conv("Convolution", "x", "a", 3, 4, 1, 1, "5=1"),
                conv("Convolution", "x", "b", 3, 6, 3, 3, "4=1 5=1 9=1"), "Concat c 2 1 a b y"}});
  v.push_back({"concat_vec", {input("x", 10), input("b", 7), "Concat c 2 1 x b y"}});
  v.push_back({"split", {e, "Split s 1 2 x a b", "BinaryOp o 2 1 a b y 0=2"}});
  v.push_back(
      {"slice_channels",
       {input("x", 9, 4, 7), "Slice s 1 3 x a b c -23300=3,2,-233,1", "Concat c 3 1 c a b y"}});
  v.push_back({"slice_rows",
               {input("x", 9, 8, 3), "Slice s 1 2 x a b -23300=2,-233,-233 1=1",
                "BinaryOp o 2 1 a b y 0=1"}});
  v.push_back({"slice_cols_indices",
               {input("x", 9, 8, 3), "Slice s 1 2 x a y -23302=1,4 1=2", "ReLU r 1 1 a z"}});
  v.push_back({"crop", {input("x", 12, 10, 6), "Crop c 1 1 x y 0=2 1=3 2=1 3=5 4=4 5=3"}});
  v.push_back({"padding_constant", {e, "Padding p 1 1 x y 0=1 1=2 2=3 3=0 4=0 5=0.25"}});
  v.push_back({"padding_replicate", {e, "Padding p 1 1 x y 0=2 1=1 2=1 3=2 4=1"}});
  v.push_back({"padding_reflect", {e, "Padding p 1 1 x y 0=2 1=2 2=3 3=1 4=2"}});
  v.push_back({"padding_channels", {e, "Padding p 1 1 x y 0=1 1=1 2=1 3=1 7=1 8=2 5=-1.0"}});
  v.push_back({"padding_per_channel_values", {e, "Padding p 1 1 x y 0=1 1=1 2=1 3=1 6=3"}});
  v.push_back({"shuffle2", {input("x", 5, 4, 12), "ShuffleChannel s 1 1 x y 0=2"}});
  v.push_back({"shuffle3_reverse", {input("x", 5, 4, 12), "ShuffleChannel s 1 1 x y 0=3 1=1"}});
  for (int o = 0; o < 6; ++o) v.push_back({"permute" + S(o), {e, "Permute p 1 1 x y 0=" + S(o)}});
  v.push_back({"permute_2d", {input("x", 11, 6), "Permute p 1 1 x y 0=1"}});
  v.push_back({"interp_nearest_x2", {input("x", 7, 5, 3), "Interp i 1 1 x y 0=1 1=2.0 2=2.0"}});
  v.push_back({"interp_nearest_size", {input("x", 7, 5, 3), "Interp i 1 1 x y 0=1 3=9 4=11"}});
  v.push_back({"interp_bilinear", {input("x", 7, 5, 3), "Interp i 1 1 x y 0=2 1=2.0 2=3.0"}});
  v.push_back(
      {"interp_bilinear_align", {input("x", 7, 5, 3), "Interp i 1 1 x y 0=2 3=8 4=13 6=1"}});
  v.push_back({"flatten_reshape", {e, "Flatten f 1 1 x f", "Reshape r 1 1 f y 0=21 1=23"}});
  v.push_back(
      {"reshape_then_fc",
       {e, "Reshape r 1 1 x f 0=-1", "InnerProduct fc 1 1 f y 0=5 1=1 2=" + S(5 * 23 * 7 * 3)}});
  v.push_back({"noop_dropout_alias", {e, "Noop n 1 1 x a", "Dropout d 1 1 a b", "ReLU r 1 1 b y"}});
  v.push_back({"memorydata", {e, "MemoryData m 0 1 m 0=23 1=7 2=3", "BinaryOp o 2 1 x m y 0=0"}});
  v.push_back({"alias_output", {e, "Split s 1 2 x a b", "ReLU r 1 1 a y"}});
  return v;
}

void PrintTo(const OpCase& c, std::ostream* os) { *os << c.name; }

class OpsTest : public ::testing::TestWithParam<std::tuple<OpCase, std::string>> {
 protected:
  static GpuStack& stack(const std::string& sku) {
    static std::map<std::string, std::unique_ptr<GpuStack>> stacks;
    auto& s = stacks[sku];
    if (!s) s = std::make_unique<GpuStack>(sku);
    return *s;
  }
};

TEST_P(OpsTest, MatchesCpuReference) {
  const auto& [c, sku] = GetParam();
  const Graph g = make_graph(c.lines, 7);
  const auto inputs = make_inputs(g, 3, c.lo, c.hi);
  GpuStack& s = stack(sku);
  const GpuExecutor gpu(g, *s.dev);
  const auto got = gpu.run(inputs);
  const auto want = CpuExecutor(g).run(inputs);
  ASSERT_EQ(got.size(), want.size());
  for (const auto& [name, t] : want) {
    ASSERT_TRUE(got.count(name)) << name;
    EXPECT_TRUE(testing::close(got.at(name), t, c.rtol, c.atol));
    EXPECT_TRUE(std::any_of(t.values().begin(), t.values().end(), [](float f) { return f != 0; }))
        << name << " is all zeros: a weak check";
  }
}

INSTANTIATE_TEST_SUITE_P(Ops, OpsTest,
                         ::testing::Combine(::testing::ValuesIn(cases()),
                                            ::testing::Values("v3d-7.1", "v3d-4.2")),
                         [](const auto& info) {
                           std::string n =
                               std::get<0>(info.param).name + "_" + std::get<1>(info.param);
                           for (char& ch : n)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });

}  // namespace
}  // namespace rplayer::nn
