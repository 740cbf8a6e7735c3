// rplayer diff A.rec B.rec: what differs between two signed recordings, and where. Exit 0
// when identical, 1 when they differ, 2 when either cannot be read (as diff(1) does).
#include <cstdio>
#include <string>
#include <vector>

#include "tools/commands.h"
#include "tools/recording_diff.h"
#include "tools/recording_io.h"

namespace rplayer::tools {

namespace {
struct DiffArgs {
  std::string a, b, trust;
  std::vector<std::string> keys;
  bool json = false;
  DiffOptions opts;
};

int diff_main(const DiffArgs& d) {
  replay::Recording ra, rb;
  std::string err;
  for (const auto& [path, rec] : {std::pair{&d.a, &ra}, std::pair{&d.b, &rb}})
    if (!load_recording(*path, d.keys, d.trust, rec, &err)) {
      std::fprintf(stderr, "rplayer diff: %s: %s\n", path->c_str(), err.c_str());
      return 2;
    }
  const RecordingDiff diff = diff_recordings(ra, rb, d.opts);
  if (d.json)
    std::printf("%s\n", diff.json().dump().c_str());
  else
    std::printf("%s", diff.text().c_str());
  return diff.identical() ? 0 : 1;
}
}  // namespace

void add_diff_command(Cli& cli) {
  CLI::App& app = cli.app;
  auto* d = &cli.hold<DiffArgs>();
  auto* cmd = app.add_subcommand("diff", "What differs between two recordings, and where");
  cmd->add_option("a", d->a, "First recording")->required();
  cmd->add_option("b", d->b, "Second recording")->required();
  cmd->add_option("--key", d->keys, "Trusted public key file (repeatable)");
  cmd->add_option("--trust", d->trust, "Trust store (default: see README, Keys)");
  cmd->add_flag("--json", d->json, "One JSON object: per section a count and the listed ones");
  cmd->add_flag(
      "--ignore-wait-bounds", d->opts.ignore_wait_bounds,
      "Ignore poll and interrupt-wait timeouts and the replay budget (they follow timing)");
  cmd->add_flag("--ignore-metadata", d->opts.ignore_metadata, "Ignore the metadata section");
  cmd->add_option("--max", d->opts.max_listed, "Differences listed per section")
      ->capture_default_str();
  cmd->callback(cli.run("diff", [d] { return diff_main(*d); }));
}

}  // namespace rplayer::tools
