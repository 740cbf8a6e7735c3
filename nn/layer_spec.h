// What the framework knows about each ncnn layer type, independent of any backend:
// which types exist, which weights a layer has (and how ncnn's .bin stores them), and
// the shapes a layer produces.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "nn/graph.h"

namespace rplayer::nn {

// How generated weights are drawn (ncnn_loader's generator); real models ignore it.
enum class WeightInit {
  kFanIn,     // uniform(-a, a), a = sqrt(3 / fan_in): keeps activations near unit scale
  kSmall,     // uniform(-0.1, 0.1): biases, offsets, means
  kNearOne,   // uniform(0.5, 1.5): scales, BatchNorm slope and (positive) variance
};

struct WeightSpec {
  std::string name;  // "weight", "bias", ...
  Shape shape;
  // ncnn ModelBin type 0: a 4-byte tag precedes the data (fp32 / fp16 / int8 / a
  // quantization table). Type 1: raw fp32 with no tag.
  bool tagged = false;
  WeightInit init = WeightInit::kFanIn;
  int fan_in = 1;
};

// Every layer type the framework handles (shape inference and CPU reference).
const std::vector<std::string>& supported_layer_types();
bool is_supported_layer_type(std::string_view type);

// The weights of `layer` in ncnn .bin order, from its params. Throws ModelError for
// params the framework does not support (e.g. int8 quantized layers).
std::vector<WeightSpec> weight_specs(const Layer& layer);

// Output shapes of `layer` for the given input shapes, with ncnn semantics. Throws
// ModelError (without the layer name; Graph adds it) on inconsistent shapes.
std::vector<Shape> infer_layer_shapes(const Layer& layer, const std::vector<Shape>& inputs);

// Detection outputs: one row per detection found, so infer_layer_shapes gives an upper
// bound (mat(6, max rows)) and the executed tensor may have fewer rows, even none.
bool has_data_dependent_shape(std::string_view type);

// The shape an Input layer declares (0=w 1=h 2=c, 11=d); empty if it declares none.
Shape input_layer_shape(const Layer& layer);

}  // namespace rplayer::nn
