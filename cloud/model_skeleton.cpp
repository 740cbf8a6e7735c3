#include "cloud/model_skeleton.h"

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "nn/model_error.h"
#include "nn/ncnn_loader.h"
#include "nn/onnx_loader.h"
#include "replay/signature.h"

namespace rplayer::cloud {

namespace {
bool is_onnx(const nn::ModelInfo& info) {
  const std::string& p = info.path;
  return p.size() >= 5 && p.compare(p.size() - 5, 5, ".onnx") == 0;
}
}  // namespace

std::vector<std::pair<uint64_t, uint64_t>> weight_ranges(const nn::Model& model) {
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const nn::Layer& l : model.graph.layers())
    for (const nn::Tensor& t : l.weights) {
      const nn::WeightSource* s = t.source();
      if (!s)
        throw nn::ModelError("layer '" + l.name + "' (" + l.type +
                             ") has a weight the stack derived on the CPU: the cloud cannot "
                             "reproduce it without the real weights");
      if (s->length) ranges.emplace_back(s->offset, s->length);
    }
  std::sort(ranges.begin(), ranges.end());
  ranges.erase(std::unique(ranges.begin(), ranges.end()), ranges.end());
  return ranges;
}

ModelSkeleton make_skeleton(const nn::Model& model) {
  ModelSkeleton s;
  s.info = model.info;
  s.weights = nn::read_file_bytes(model.weights_file);
  s.weights_name = std::filesystem::path(model.weights_file).filename().string();
  if (!is_onnx(model.info)) {
    const std::vector<uint8_t> text = nn::read_file_bytes(model.info.path);
    s.graph_text.assign(text.begin(), text.end());
  }
  auto manifest = std::make_shared<record::WeightsManifest>();
  manifest->file.name = s.weights_name;
  manifest->file.size = s.weights.size();
  manifest->file.digest = replay::content_digest(s.weights);
  for (const auto& [off, len] : weight_ranges(model)) {
    if (off > s.weights.size() || len > s.weights.size() - off)
      throw nn::ModelError(model.weights_file + ": a weight range lies outside the file");
    const std::span<const uint8_t> bytes(s.weights.data() + off, len);
    manifest->ranges[{off, len}] = replay::content_digest(bytes);
  }
  for (const auto& [range, digest] : manifest->ranges)
    std::memset(s.weights.data() + range.first, 0, range.second);
  s.manifest = std::move(manifest);
  return s;
}

nn::Model load_skeleton(const ModelSkeleton& s) {
  nn::Model m;
  m.info = s.info;
  if (s.graph_text.empty()) {
    m.graph = nn::parse_onnx(s.weights, s.weights_name);
  } else {
    m.graph = nn::parse_ncnn_param(s.graph_text, s.info.name);
    auto file = std::make_shared<nn::ModelFile>();
    file->path = s.weights_name;
    file->bytes = s.weights;
    nn::parse_ncnn_bin(m.graph, std::move(file));
  }
  m.weights_file = s.weights_name;
  if (!m.info.input_shape.empty())
    m.graph.infer_shapes({{m.info.input_blob, m.info.input_shape}});
  else
    m.graph.infer_shapes();
  return m;
}

}  // namespace rplayer::cloud
