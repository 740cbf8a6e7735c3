#include "nn/model_zoo.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string_view>

#include "nn/layer_spec.h"
#include "nn/model_error.h"
#include "nn/ncnn_loader.h"
#include "nn/onnx_loader.h"
#include "nn/weight_generator.h"

namespace rplayer::nn {
namespace fs = std::filesystem;

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Input and output blobs of a graph without zoo metadata: the first Input and the last
// blob nothing consumes.
void fill_io_from_graph(ModelInfo& info) {
  Graph g = ends_with(info.path, ".onnx") ? load_onnx(info.path) : load_ncnn_param(info.path);
  const std::vector<int> ins = g.input_blobs(), outs = g.output_blobs();
  if (ins.empty()) throw ModelError(info.path + ": graph has no Input layer");
  if (outs.empty()) throw ModelError(info.path + ": graph has no output blob");
  info.input_blob = g.blob(ins[0]).name;
  info.output_blob = g.blob(outs.back()).name;
  info.input_shape = input_layer_shape(g.layer(g.blob(ins[0]).producer));
}

}  // namespace

std::string models_dir() {
  std::vector<std::string> tried;
  if (const char* env = std::getenv("RPLAYER_MODELS"); env && *env) {
    if (fs::is_directory(env)) return env;
    throw ModelError(std::string("RPLAYER_MODELS=") + env + " is not a directory");
  }
  tried.push_back("../shared/models");
  if (fs::is_directory(tried.back())) return tried.back();
#ifdef RPLAYER_SHARED_DIR
  tried.push_back(std::string(RPLAYER_SHARED_DIR) + "/models");
  if (fs::is_directory(tried.back())) return tried.back();
#endif
  std::string msg = "no models directory (set RPLAYER_MODELS); tried";
  for (const std::string& t : tried) msg += " " + t;
  throw ModelError(msg);
}

std::vector<std::string> known_model_names() {
  std::vector<std::string> names = {"squeezenet", "mnist", "mnist-onnx"};
  std::vector<std::string> bench;
  try {
    for (const auto& e : fs::directory_iterator(models_dir() + "/bench"))
      if (e.path().extension() == ".param") bench.push_back("bench/" + e.path().stem().string());
  } catch (const std::exception&) {
    // No models directory: only the built-in names.
  }
  std::sort(bench.begin(), bench.end());
  names.insert(names.end(), bench.begin(), bench.end());
  return names;
}

bool is_model_name(const std::string& name) {
  // One segment of letters, digits, '_' and '-', or "bench/" and such a segment: never
  // a path (no '.', no other '/'), so a name cannot walk out of the models directory.
  auto segment = [](std::string_view s) {
    if (s.empty() || s.size() > 64) return false;
    for (char c : s)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') return false;
    return true;
  };
  const std::string_view n = name;
  return n.rfind("bench/", 0) == 0 ? segment(n.substr(6)) : segment(n);
}

ModelInfo resolve_model(const std::string& name) {
  ModelInfo info;
  info.name = name;
  auto require = [](const std::string& path) {
    if (!fs::is_regular_file(path)) throw ModelError(path + ": model file not found");
    return path;
  };
  if (name == "squeezenet") {
    const std::string dir = models_dir() + "/squeezenet_v1.1/";
    info.path = require(dir + "squeezenet_v1.1.param");
    info.bin_path = require(dir + "squeezenet_v1.1.bin");
    info.labels_path = require(dir + "synset_words.txt");
    info.input_blob = "data";
    info.output_blob = "prob";
    info.input_shape = Shape::cube(227, 227, 3);
    info.preprocess = Preprocess::kSqueezeNet;
  } else if (name == "mnist") {
    const std::string dir = models_dir() + "/mnist/";
    info.path = require(dir + "mnist.param");
    info.bin_path = require(dir + "mnist.bin");
    info.input_blob = "data";
    info.output_blob = "fc";
    info.input_shape = Shape::cube(28, 28, 1);
    info.preprocess = Preprocess::kMnistUnit;
  } else if (name == "mnist-onnx") {
    info.path = require(models_dir() + "/mnist/model.onnx");
    info.input_blob = "Input3";
    info.output_blob = "Plus214_Output_0";
    info.input_shape = Shape::cube(28, 28, 1);
    info.preprocess = Preprocess::kMnistRaw;
  } else if (name.rfind("bench/", 0) == 0 && is_model_name(name)) {
    info.path = require(models_dir() + "/" + name + ".param");
    info.generated_weights = true;
    fill_io_from_graph(info);
  } else if (ends_with(name, ".param") || ends_with(name, ".onnx")) {
    info.path = require(name);
    if (ends_with(name, ".param")) {
      const std::string bin = name.substr(0, name.size() - 6) + ".bin";
      if (fs::is_regular_file(bin)) info.bin_path = bin;
      else info.generated_weights = true;
    }
    fill_io_from_graph(info);
  } else {
    std::string msg = "unknown model '" + name + "'; known:";
    for (const std::string& n : known_model_names()) msg += " " + n;
    throw ModelError(msg + " (or a path to a .param / .onnx file)");
  }
  return info;
}

Model load_model(const std::string& name) {
  Model m;
  m.info = resolve_model(name);
  if (ends_with(m.info.path, ".onnx")) {
    m.graph = load_onnx(m.info.path);
    m.weights_file = m.info.path;
  } else {
    m.graph = load_ncnn_param(m.info.path);
    if (m.info.generated_weights) {
      m.weights_file = generate_weights_file(m.graph, name);
    } else {
      load_ncnn_bin(m.graph, m.info.bin_path);
      m.weights_file = m.info.bin_path;
    }
  }
  if (!m.info.input_shape.empty()) m.graph.infer_shapes({{m.info.input_blob, m.info.input_shape}});
  else m.graph.infer_shapes();
  if (!m.info.labels_path.empty()) m.labels = load_labels(m.info.labels_path);
  return m;
}

std::vector<std::string> load_labels(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ModelError(path + ": cannot open label file");
  std::vector<std::string> labels;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    labels.push_back(line);
  }
  return labels;
}

}  // namespace rplayer::nn
