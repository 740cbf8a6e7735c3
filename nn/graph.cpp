#include "nn/graph.h"

#include "nn/layer_spec.h"
#include "nn/model_error.h"

namespace rplayer::nn {

const Tensor* Layer::weight(std::string_view weight_name) const {
  for (const Tensor& t : weights)
    if (t.name() == weight_name) return &t;
  return nullptr;
}

int Graph::get_or_add_blob(const std::string& name) {
  auto it = blob_by_name_.find(name);
  if (it != blob_by_name_.end()) return it->second;
  const int index = int(blobs_.size());
  blobs_.push_back(Blob{name, -1, {}, {}});
  blob_by_name_.emplace(name, index);
  return index;
}

int Graph::add_layer(std::string type, std::string name, const std::vector<std::string>& inputs,
                     const std::vector<std::string>& outputs, ParamDict params,
                     std::vector<Tensor> weights) {
  const int index = int(layers_.size());
  Layer layer;
  layer.type = std::move(type);
  layer.name = std::move(name);
  layer.params = std::move(params);
  layer.weights = std::move(weights);
  for (const std::string& in : inputs) {
    const int b = find_blob(in);
    if (b < 0 || blobs_[b].producer < 0)
      throw ModelError(source + ": layer " + layer.name + " (" + layer.type + ") reads blob '" +
                       in + "' that no earlier layer produces");
    blobs_[b].consumers.push_back(index);
    layer.inputs.push_back(b);
  }
  for (const std::string& out : outputs) {
    const int b = get_or_add_blob(out);
    // The producer may be this layer itself (the blob listed twice), which is not in
    // layers_ yet: naming it must not index past the end (found by fuzz/fuzz_ncnn).
    if (blobs_[b].producer >= 0)
      throw ModelError(source + ": layer " + layer.name + " (" + layer.type + ") writes blob '" +
                       out + "' already produced by " +
                       (blobs_[b].producer == index ? std::string("this layer")
                                                    : "layer " + layers_[blobs_[b].producer].name));
    blobs_[b].producer = index;
    layer.outputs.push_back(b);
  }
  layers_.push_back(std::move(layer));
  return index;
}

int Graph::find_blob(std::string_view name) const {
  auto it = blob_by_name_.find(name);
  return it == blob_by_name_.end() ? -1 : it->second;
}

int Graph::find_layer(std::string_view name) const {
  for (size_t i = 0; i < layers_.size(); i++)
    if (layers_[i].name == name) return int(i);
  return -1;
}

int Graph::blob_index(std::string_view name) const {
  const int b = find_blob(name);
  if (b < 0) throw ModelError(source + ": no blob named '" + std::string(name) + "'");
  return b;
}

std::vector<int> Graph::input_blobs() const {
  std::vector<int> out;
  for (const Layer& l : layers_)
    if (l.type == "Input") out.insert(out.end(), l.outputs.begin(), l.outputs.end());
  return out;
}

std::vector<int> Graph::output_blobs() const {
  std::vector<int> out;
  for (size_t b = 0; b < blobs_.size(); b++)
    if (blobs_[b].consumers.empty()) out.push_back(int(b));
  return out;
}

void Graph::infer_shapes(const std::map<std::string, Shape>& input_shapes) {
  for (Blob& b : blobs_) b.shape = Shape{};
  for (const Layer& l : layers_) {
    std::vector<Shape> in;
    for (int b : l.inputs) in.push_back(blobs_[b].shape);
    std::vector<Shape> out;
    if (l.type == "Input") {
      for (int b : l.outputs) {
        auto it = input_shapes.find(blobs_[b].name);
        out.push_back(it != input_shapes.end() ? it->second : input_layer_shape(l));
        if (out.back().empty())
          throw ModelError(source + ": layer " + l.name + " (Input): no shape for input blob '" +
                           blobs_[b].name + "' (give one, or set 0=w 1=h 2=c)");
      }
    } else {
      try {
        out = infer_layer_shapes(l, in);
      } catch (const ModelError& e) {
        std::string ins;
        for (const Shape& s : in) ins += (ins.empty() ? "" : " ") + s.str();
        throw ModelError(source + ": layer " + l.name + " (" + l.type + "), inputs " + ins + ": " +
                         e.what());
      }
    }
    if (out.size() != l.outputs.size())
      throw ModelError(source + ": layer " + l.name + " (" + l.type + ") yields " +
                       std::to_string(out.size()) + " shapes for " +
                       std::to_string(l.outputs.size()) + " outputs");
    for (size_t i = 0; i < out.size(); i++) blobs_[l.outputs[i]].shape = out[i];
  }
}

size_t Graph::weight_count() const {
  size_t n = 0;
  for (const Layer& l : layers_)
    for (const Tensor& t : l.weights) n += t.size();
  return n;
}

}  // namespace rplayer::nn
