#include "nn/gpu/op_registry.h"

#include <algorithm>
#include <map>

#include "nn/gpu/ops.h"

namespace rplayer::nn::gpu {

namespace {

const std::map<std::string, GpuOp, std::less<>>& table() {
  static const std::map<std::string, GpuOp, std::less<>> t = {
      {"AbsVal", {encode_unary_op}},
      {"BatchNorm", {encode_affine}},
      {"Bias", {encode_affine}},
      {"BinaryOp", {encode_binary_op, true}},
      {"Clip", {encode_activation}},
      {"Concat", {encode_concat}},
      {"Convolution", {encode_convolution, true}},
      {"ConvolutionDepthWise", {encode_convolution, true}},
      {"Crop", {encode_crop}},
      {"Dropout", {encode_affine}},
      {"ELU", {encode_activation}},
      {"Eltwise", {encode_eltwise, true}},
      {"Gemm", {encode_gemm}},
      {"HardSigmoid", {encode_activation}},
      {"HardSwish", {encode_activation}},
      {"InnerProduct", {encode_inner_product, true}},
      {"Interp", {encode_interp}},
      {"LRN", {encode_lrn}},
      {"Mish", {encode_activation}},
      {"Padding", {encode_padding}},
      {"Permute", {encode_permute}},
      {"Pooling", {encode_pooling}},
      {"PReLU", {encode_prelu}},
      {"Reduction", {encode_reduction}},
      {"ReLU", {encode_activation}},
      {"Scale", {encode_affine}},
      {"ShuffleChannel", {encode_shuffle_channel}},
      {"Sigmoid", {encode_activation}},
      {"Slice", {encode_slice}},
      {"Softmax", {encode_softmax}},
      {"Swish", {encode_activation}},
      {"TanH", {encode_activation}},
      {"UnaryOp", {encode_unary_op}},
  };
  return t;
}

}  // namespace

const GpuOp* find_gpu_op(std::string_view type) {
  auto it = table().find(type);
  return it == table().end() ? nullptr : &it->second;
}

bool is_alias_layer(const Layer& l) {
  if (l.type == "Split" || l.type == "Noop" || l.type == "Flatten" || l.type == "Reshape")
    return true;
  return l.type == "Dropout" && l.params.get_float(0, 1.f) == 1.f;
}

std::vector<std::string> gpu_layer_types() {
  std::vector<std::string> v = {"Input", "MemoryData", "Split", "Noop", "Flatten", "Reshape"};
  for (const auto& [name, op] : table()) v.push_back(name);
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

}  // namespace rplayer::nn::gpu
