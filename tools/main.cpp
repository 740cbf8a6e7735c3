// rplayer: trusted GPU computation by record and replay. One executable, subcommands.
#include <cstdio>
#include <exception>

#include "tools/commands.h"

namespace {

using namespace rplayer::tools;

// Every subcommand, in the order `rplayer --help` lists them.
constexpr AddCommands kCommands[] = {
    add_devices_command, add_isa_commands,  add_run_command,      add_record_commands,
    add_inspect_command, add_diff_command,  add_classify_command, add_worlds_command,
    add_cloud_command,   add_netem_command,
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"rplayer: record and replay of GPU compute on a modeled V3D SoC"};
  app.require_subcommand(1);
  Cli cli(app);
  for (AddCommands add : kCommands) add(cli);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rplayer: error: %s\n", e.what());
    return 1;
  }
  return cli.exit_code;
}
