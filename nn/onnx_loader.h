// Converts ONNX models into the ncnn-style Graph: ONNX NCHW tensors with batch 1 become
// ncnn blobs without the batch (rank r -> r-1 dims), constant weights become layer
// weights or MemoryData layers. Handles opset 1 (CNTK: Constant nodes, attribute
// shapes, broadcast/axis Add) through current opsets.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nn/graph.h"

namespace rplayer::nn {

// Throws ModelError naming the file, node and attribute on anything it cannot convert.
Graph load_onnx(const std::string& path);
Graph parse_onnx(const std::vector<uint8_t>& bytes, const std::string& source);

}  // namespace rplayer::nn
