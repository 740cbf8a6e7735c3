#include "tools/commands.h"

#include <cstdio>
#include <exception>

namespace rplayer::tools {

std::function<void()> Cli::run(std::string name, std::function<int()> body) {
  return [this, name = std::move(name), body = std::move(body)] {
    try {
      exit_code = body();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "rplayer %s: %s\n", name.c_str(), e.what());
      exit_code = 1;
    }
  };
}

}  // namespace rplayer::tools
