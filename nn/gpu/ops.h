// The GPU encoders of the operators, one function per ncnn layer type (or family); the
// registry (op_registry.h) maps types to them. Each validates what it supports, uploads
// its weights and records its dispatches through the OpContext.
#pragma once

#include "nn/gpu/op_context.h"

namespace rplayer::nn::gpu {

// ops_conv.cpp
void encode_convolution(OpContext& ctx);  // Convolution and ConvolutionDepthWise
void encode_inner_product(OpContext& ctx);
void encode_gemm(OpContext& ctx);

// ops_pool.cpp
void encode_pooling(OpContext& ctx);

// ops_elementwise.cpp
void encode_activation(OpContext& ctx);  // ReLU, Clip, Sigmoid, HardSwish, ...
void encode_unary_op(OpContext& ctx);
void encode_binary_op(OpContext& ctx);
void encode_eltwise(OpContext& ctx);
void encode_affine(OpContext& ctx);  // BatchNorm, Scale, Bias, Dropout (scale != 1)
void encode_prelu(OpContext& ctx);

// ops_reduction.cpp
void encode_reduction(OpContext& ctx);

// ops_norm.cpp
void encode_softmax(OpContext& ctx);
void encode_lrn(OpContext& ctx);

// ops_data.cpp
void encode_copy(OpContext& ctx);  // an alias that must be materialized
void encode_concat(OpContext& ctx);
void encode_slice(OpContext& ctx);
void encode_crop(OpContext& ctx);
void encode_padding(OpContext& ctx);
void encode_shuffle_channel(OpContext& ctx);
void encode_permute(OpContext& ctx);
void encode_interp(OpContext& ctx);

}  // namespace rplayer::nn::gpu
