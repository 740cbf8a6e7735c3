// Subcommands of the rplayer CLI. Each registers itself on the app and returns the
// exit code through the callback it installs.
#pragma once

#include <CLI/CLI.hpp>

namespace rplayer::tools {

// Sets `*exit_code` when the subcommand runs.
void add_devices_command(CLI::App& app, int* exit_code);
void add_isa_commands(CLI::App& app, int* exit_code);
void add_run_command(CLI::App& app, int* exit_code);
void add_record_commands(CLI::App& app, int* exit_code);  // keygen, record, verify, replay
void add_inspect_command(CLI::App& app, int* exit_code);
void add_diff_command(CLI::App& app, int* exit_code);      // diff A.rec B.rec
void add_classify_command(CLI::App& app, int* exit_code);  // classify --tee
void add_worlds_command(CLI::App& app, int* exit_code);    // worlds start|stop
void add_cloud_command(CLI::App& app, int* exit_code);     // cloud serve
void add_netem_command(CLI::App& app, int* exit_code);     // netem: delaying TCP relay

}  // namespace rplayer::tools
