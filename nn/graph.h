// The backend-neutral network: ordered layers (ncnn layer types and param ids) joined
// by named blobs. Loaders (ncnn, ONNX) build it; executors (CPU reference, GPU) run it.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "nn/param_dict.h"
#include "nn/tensor.h"

namespace rplayer::nn {

struct Layer {
  std::string type;  // ncnn layer type: "Convolution", "Pooling", ...
  std::string name;
  std::vector<int> inputs;   // blob indices
  std::vector<int> outputs;  // blob indices
  ParamDict params;
  std::vector<Tensor> weights;  // in ncnn .bin order, named "weight", "bias", ...

  // nullptr if the layer has no weight of that name.
  const Tensor* weight(std::string_view weight_name) const;
};

struct Blob {
  std::string name;
  int producer = -1;           // layer index
  std::vector<int> consumers;  // layer indices
  Shape shape;                 // set by Graph::infer_shapes
};

class Graph {
 public:
  // Where the graph came from, for error messages.
  std::string source;

  // Appends a layer reading and writing the named blobs (created on first use) and
  // returns its index. Throws ModelError if an output blob already has a producer or
  // an input blob has none (layers must come in execution order).
  int add_layer(std::string type, std::string name, const std::vector<std::string>& inputs,
                const std::vector<std::string>& outputs, ParamDict params = {},
                std::vector<Tensor> weights = {});

  const std::vector<Layer>& layers() const { return layers_; }
  std::vector<Layer>& layers() { return layers_; }
  const std::vector<Blob>& blobs() const { return blobs_; }
  const Layer& layer(int i) const { return layers_[i]; }
  Layer& layer(int i) { return layers_[i]; }
  const Blob& blob(int i) const { return blobs_[i]; }

  int find_blob(std::string_view name) const;   // -1 if absent
  int find_layer(std::string_view name) const;  // -1 if absent
  // Throws ModelError naming the blob if absent.
  int blob_index(std::string_view name) const;
  const Shape& blob_shape(std::string_view name) const { return blobs_[blob_index(name)].shape; }

  // Blobs produced by Input layers, in order.
  std::vector<int> input_blobs() const;
  // Blobs nothing consumes (the network's results), in order.
  std::vector<int> output_blobs() const;

  // Infers every blob's shape. Input blobs take the shape given for them, else the
  // Input layer's own 0=w 1=h 2=c. Throws ModelError naming the layer on failure.
  void infer_shapes(const std::map<std::string, Shape>& input_shapes = {});

  // Total weight count over all layers.
  size_t weight_count() const;

 private:
  int get_or_add_blob(const std::string& name);

  std::vector<Layer> layers_;
  std::vector<Blob> blobs_;
  std::map<std::string, int, std::less<>> blob_by_name_;
};

}  // namespace rplayer::nn
