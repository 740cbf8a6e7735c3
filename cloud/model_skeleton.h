// What the cloud gets of a model: its graph and a skeleton of its weights file (every
// weight range zeroed, everything else as stored, so that every range keeps its offset),
// with a manifest of the real file's identity and each range's digest. The device makes
// it from its own copy; the cloud builds the same stack on it, records with dummy weights,
// and binds the recording's weights to the real file through the manifest.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nn/model_zoo.h"
#include "record/recorder.h"

namespace rplayer::cloud {

struct ModelSkeleton {
  nn::ModelInfo info;            // name, blobs, input shape, preprocessing
  std::string graph_text;        // ncnn .param; empty for ONNX (the graph is in `weights`)
  std::string weights_name;      // the weights file's name
  std::vector<uint8_t> weights;  // the weights file, every weight range zeroed
  std::shared_ptr<record::WeightsManifest> manifest;
};

// Device side. Throws nn::ModelError if a weight tensor is not a range of the file as
// stored (the cloud could not reproduce it).
ModelSkeleton make_skeleton(const nn::Model& model);
// Cloud side: the model the cloud's stack runs (real graph, zero weights).
nn::Model load_skeleton(const ModelSkeleton& s);

// Every byte range of the weights file that holds weights, sorted (what make_skeleton
// zeroes; tests check that none of it crosses the network).
std::vector<std::pair<uint64_t, uint64_t>> weight_ranges(const nn::Model& model);

}  // namespace rplayer::cloud
