// The models rplayer knows by name (--model NAME), where their files live, and how to
// feed and read them: input/output blobs, input shape, preprocessing and labels.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "nn/graph.h"
#include "nn/scores.h"
#include "nn/preprocess.h"

namespace rplayer::nn {

struct ModelInfo {
  std::string name;       // as asked for
  std::string path;       // .param or .onnx
  std::string bin_path;   // ncnn weights; empty for ONNX or generated weights
  bool generated_weights = false;
  std::string input_blob, output_blob;
  Shape input_shape;
  Preprocess preprocess = Preprocess::kNone;
  std::string labels_path;  // empty if the model has no label file
};

struct Model {
  ModelInfo info;
  Graph graph;                      // weights loaded, shapes inferred
  std::vector<std::string> labels;  // class i = labels[i]; empty if none
  std::string weights_file;         // the file the weights are stored in (.bin, .onnx, or the
                                    // generated weights' cache file)
};

// The models directory: $RPLAYER_MODELS, else ../shared/models from the current
// directory, else the build's RPLAYER_SHARED_DIR/models. Throws ModelError if none exists.
std::string models_dir();

// Names accepted besides file paths: squeezenet, mnist, mnist-onnx, bench/<graph>.
std::vector<std::string> known_model_names();

// Resolves a name or a path to a .param / .onnx file (a .param without a .bin beside it
// gets generated weights). Throws ModelError for unknown names or missing files.
ModelInfo resolve_model(const std::string& name_or_path);
// True if `name` is a model name (a zoo entry, or "bench/" and a graph name), not a path.
// Names that come from a recording's metadata must be names.
bool is_model_name(const std::string& name);
Model load_model(const std::string& name_or_path);

// One label per line; throws ModelError if unreadable.
std::vector<std::string> load_labels(const std::string& path);


}  // namespace rplayer::nn
