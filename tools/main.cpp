// rplayer: trusted GPU computation by record and replay. One executable, subcommands.
#include <cstdio>
#include <exception>

#include "tools/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"rplayer: record and replay of GPU compute on a modeled V3D SoC"};
  app.require_subcommand(1);
  int exit_code = 0;
  rplayer::tools::add_devices_command(app, &exit_code);
  rplayer::tools::add_isa_commands(app, &exit_code);
  rplayer::tools::add_run_command(app, &exit_code);
  rplayer::tools::add_record_commands(app, &exit_code);
  rplayer::tools::add_inspect_command(app, &exit_code);
  rplayer::tools::add_diff_command(app, &exit_code);
  rplayer::tools::add_classify_command(app, &exit_code);
  rplayer::tools::add_worlds_command(app, &exit_code);
  rplayer::tools::add_cloud_command(app, &exit_code);
  rplayer::tools::add_netem_command(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rplayer: error: %s\n", e.what());
    return 1;
  }
  return exit_code;
}
