// The runtime's one exception type: every layer of the runtime (builder, JIT, device,
// command buffers) reports misuse and GPU failures with it, with a message that says what
// went wrong and where.
#pragma once

#include <stdexcept>
#include <string>

namespace rplayer::runtime {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace rplayer::runtime
