// `rplayer inspect`: explain a signed recording (tools/inspect.h does the work).
#pragma once

#include <CLI/CLI.hpp>

namespace rplayer::tools {

// Sets `*exit_code` when the subcommand runs.
void add_inspect_command(CLI::App& app, int* exit_code);

}  // namespace rplayer::tools
