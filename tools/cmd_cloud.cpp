// `rplayer cloud serve`: runs the recording cloud (rplayer-cloud, which links no GPU model)
// in the foreground, in place of this process.
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "tools/commands.h"
#include "tools/tee_launcher.h"

namespace rplayer::tools {

void add_cloud_command(Cli& cli) {
  CLI::App& app = cli.app;
  auto* cloud = app.add_subcommand("cloud", "The recording cloud (GPU-less; GR-T)");
  cloud->require_subcommand(1);
  auto* serve = cloud->add_subcommand("serve", "Serve cloud recording sessions (rplayer-cloud)");
  std::string& listen = cli.hold<std::string>("127.0.0.1:7000");
  std::string& keys = cli.hold<std::string>();
  std::string& devices = cli.hold<std::string>();
  serve->add_option("--listen", listen, "HOST:PORT (port 0: any free port)")->capture_default_str();
  serve->add_option("--keys", keys, "Key directory: signing.key signs the recordings");
  serve->add_option("--devices", devices,
                    "Device public keys to record for (default <keys>/devices)");
  serve->callback(cli.run("cloud serve", [&listen, &keys, &devices] {
    const std::string bin = sibling("rplayer-cloud").string();
    std::vector<std::string> args = {bin, "--listen", listen};
    if (!keys.empty()) args.insert(args.end(), {"--keys", keys});
    if (!devices.empty()) args.insert(args.end(), {"--devices", devices});
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(bin.c_str(), argv.data());
    std::fprintf(stderr, "rplayer cloud serve: %s: %s (build it: make build)\n", bin.c_str(),
                 std::strerror(errno));
    return 1;
  }));
}

}  // namespace rplayer::tools
