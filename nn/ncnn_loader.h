// Reads ncnn models: the .param text (graph) and the .bin weights, with ncnn's exact
// rules for which weights carry a 4-byte storage tag. Any malformed input raises
// ModelError naming the file, line, layer and field.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "nn/graph.h"

namespace rplayer::nn {

// Parses .param text; `source` names it in errors. Layers get no weights.
Graph parse_ncnn_param(std::string_view text, const std::string& source);
Graph load_ncnn_param(const std::string& param_path);

// Fills every layer's weights from .bin bytes, in layer order. Each weight remembers
// its stored range in the .bin (Tensor::source) unless it is codebook-quantized.
void parse_ncnn_bin(Graph& graph, std::shared_ptr<const ModelFile> bin);
void parse_ncnn_bin(Graph& graph, const std::vector<uint8_t>& bin, const std::string& source);
void load_ncnn_bin(Graph& graph, const std::string& bin_path);

Graph load_ncnn(const std::string& param_path, const std::string& bin_path);

// Reads a whole file; throws ModelError naming it if it cannot.
std::vector<uint8_t> read_file_bytes(const std::string& path);

}  // namespace rplayer::nn
