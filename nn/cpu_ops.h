// CPU reference kernels, one per ncnn layer type. Each reads its inputs and fills
// outputs that the executor has already sized from shape inference.
#pragma once

#include <vector>

#include "nn/graph.h"

namespace rplayer::nn::cpu {

using Inputs = std::vector<const Tensor*>;
using Outputs = std::vector<Tensor>;
using OpFn = void (*)(const Layer&, const Inputs&, Outputs&);

// nullptr if the type has no CPU kernel.
OpFn find_op(const std::string& type);

// Kernels in cpu_ops_conv.cpp.
void convolution(const Layer&, const Inputs&, Outputs&);
void convolution_depthwise(const Layer&, const Inputs&, Outputs&);
void deconvolution(const Layer&, const Inputs&, Outputs&);
void pooling(const Layer&, const Inputs&, Outputs&);
void inner_product(const Layer&, const Inputs&, Outputs&);
void gemm(const Layer&, const Inputs&, Outputs&);
void multi_head_attention(const Layer&, const Inputs&, Outputs&);

// Kernels in cpu_ops_detection.cpp; their outputs are resized to the detections found.
void prior_box(const Layer&, const Inputs&, Outputs&);
void detection_output(const Layer&, const Inputs&, Outputs&);
void yolo_detection_output(const Layer&, const Inputs&, Outputs&);

}  // namespace rplayer::nn::cpu
