// Which layer types the GPU backend runs and how: compute layers have an encoder,
// aliases (Split, Noop, Flatten, Reshape, Dropout without scaling) share their input's
// memory, Input and MemoryData provide data.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "nn/gpu/op_context.h"

namespace rplayer::nn::gpu {

using EncodeFn = void (*)(OpContext&);

struct GpuOp {
  EncodeFn encode = nullptr;
  // Can apply a standalone activation layer that follows it (OpContext::fused_activation).
  bool fuses_activation = false;
};

// nullptr if the type has no GPU encoder.
const GpuOp* find_gpu_op(std::string_view type);

// Layers whose outputs are their inputs' memory under another shape.
bool is_alias_layer(const Layer& layer);

// Every type the backend accepts (encoders, aliases, Input, MemoryData), sorted.
std::vector<std::string> gpu_layer_types();

}  // namespace rplayer::nn::gpu
