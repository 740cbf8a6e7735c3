// What `rplayer run` (and the benchmarks) run a model on: the CPU reference, or the
// full GPU stack (modeled SoC, driver, runtime + JIT, NN GPU backend).
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "nn/model_zoo.h"
#include "nn/tensor.h"

namespace rplayer::tools {

class InferenceBackend {
 public:
  virtual ~InferenceBackend() = default;
  virtual std::string describe() const = 0;
  // Runs one input through the model; returns the output blob.
  virtual nn::Tensor infer(const nn::Tensor& input) = 0;
  // Counters of the last inference (jobs, register accesses, ...), for --json.
  virtual nlohmann::json stats() const { return nlohmann::json::object(); }
};

// backend: "cpu" or "gpu". Throws std::runtime_error with a clear message otherwise.
// soc_socket: the GPU stack runs on that SoC process instead of a modeled SoC of its own.
std::unique_ptr<InferenceBackend> make_backend(const std::string& backend, const std::string& sku,
                                               const nn::Model& model,
                                               const std::string& soc_socket = "");

}  // namespace rplayer::tools
