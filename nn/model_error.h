// The one error type of model loading, conversion and shape inference: malformed or
// unsupported models are reported, never crashed on.
#pragma once

#include <stdexcept>
#include <string>

namespace rplayer::nn {

class ModelError : public std::runtime_error {
 public:
  explicit ModelError(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace rplayer::nn
