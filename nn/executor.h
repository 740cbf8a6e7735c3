// The interface every backend implements: run a Graph on named inputs. The CPU
// reference is one; a GPU backend is another, and is checked against the CPU one.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "nn/tensor.h"

namespace rplayer::nn {

class Executor {
 public:
  virtual ~Executor() = default;
  // Feeds the named input blobs and returns the requested blobs (default: the graph's
  // outputs), keyed by blob name. Throws ModelError naming the layer on failure.
  virtual std::map<std::string, Tensor> run(const std::map<std::string, Tensor>& inputs,
                                            const std::vector<std::string>& outputs = {}) const = 0;

  // Single input, single output.
  Tensor run(const std::string& input_blob, const Tensor& input,
             const std::string& output_blob) const {
    auto out = run({{input_blob, input}}, {output_blob});
    return std::move(out.begin()->second);
  }
};

}  // namespace rplayer::nn
