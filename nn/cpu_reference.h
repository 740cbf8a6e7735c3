// The CPU reference backend: runs a Graph layer by layer with straightforward kernels
// that follow ncnn's semantics. It is the oracle GPU backends are checked against.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "nn/executor.h"
#include "nn/graph.h"

namespace rplayer::nn {

// Runs one layer on the CPU; output shapes come from shape inference on the inputs.
// Throws ModelError naming the layer if it has no CPU kernel or its inputs are bad.
std::vector<Tensor> run_layer_cpu(const Layer& layer, const std::vector<const Tensor*>& inputs);

// The graph must outlive the executor.
class CpuExecutor : public Executor {
 public:
  explicit CpuExecutor(const Graph& graph) : graph_(graph) {}

  // Only layers the requested blobs depend on run; intermediate blobs are freed after
  // their last use. Any blob can be requested, e.g. to compare a backend layer by layer.
  std::map<std::string, Tensor> run(const std::map<std::string, Tensor>& inputs,
                                    const std::vector<std::string>& outputs = {}) const override;
  using Executor::run;

 private:
  const Graph& graph_;
};

}  // namespace rplayer::nn
