// `rplayer inspect FILE.rec [--key PUB ...] [--trust DIR] [--json] [--trace OUT.json]
// [--actions N]`: decode a signed recording (signature checked) and print what it holds.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "nn/file_bytes.h"
#include "tools/commands.h"
#include "tools/inspect.h"

namespace rplayer::tools {

namespace {

struct InspectArgs {
  std::string file;
  std::vector<std::string> keys;
  std::string trust;
  bool json = false;
  std::string trace;
  int64_t actions = -1;
};

int inspect_main(const InspectArgs& a) {
  std::vector<uint8_t> bytes;
  std::string read_error;
  if (!nn::read_whole_file(a.file, &bytes, &read_error)) {
    std::fprintf(stderr, "rplayer inspect: '%s': %s\n", a.file.c_str(), read_error.c_str());
    return 1;
  }
  keyring::TrustStore store;
  std::string err;
  if (!resolve_trust_store(a.keys, a.trust, &store, &err)) {
    std::fprintf(stderr, "rplayer inspect: %s\n", err.c_str());
    return 1;
  }
  InspectOptions opts;
  opts.json = a.json;
  opts.max_actions = a.actions;
  opts.trace_title = std::filesystem::path(a.file).filename().string();
  const InspectOutput out = run_inspect(bytes, store, opts, !a.trace.empty());
  if (out.exit_code != 0) {
    std::fprintf(stderr, "rplayer inspect: %s: %s\n", a.file.c_str(), out.error.c_str());
    return out.exit_code;
  }
  std::fwrite(out.out.data(), 1, out.out.size(), stdout);
  std::fflush(stdout);
  if (out.trace) {
    std::ofstream t(a.trace, std::ios::trunc);
    t << out.trace->dump() << "\n";
    if (!t) {
      std::fprintf(stderr, "rplayer inspect: cannot write '%s'\n", a.trace.c_str());
      return 1;
    }
    // stderr: stdout may be the JSON report.
    std::fprintf(stderr, "trace: %zu events -> %s (open in ui.perfetto.dev)\n",
                 (*out.trace)["traceEvents"].size(), a.trace.c_str());
  }
  return 0;
}

}  // namespace

void add_inspect_command(Cli& cli) {
  CLI::App& app = cli.app;
  auto* a = &cli.hold<InspectArgs>();
  auto* cmd = app.add_subcommand(
      "inspect", "Explain a signed recording: regions, statistics, register actions, shaders");
  cmd->add_option("file", a->file, "Recording (.rec)")->required();
  cmd->add_option("--key", a->keys, "Trusted public key file (repeatable)");
  cmd->add_option("--trust", a->trust,
                  "Trust store: directory of *.pub or key file (default $RPLAYER_TRUST, "
                  "$RPLAYER_KEYS/trusted or ./keys/trusted)");
  cmd->add_flag("--json", a->json, "Print the report as one JSON object");
  cmd->add_option("--trace", a->trace,
                  "Write a Chrome/Perfetto trace (modeled timeline) to this JSON file");
  cmd->add_option("--actions", a->actions, "List at most N actions (default all)")
      ->check(CLI::Validator(
          [](std::string& v) {
            return !v.empty() && v.find_first_not_of("0123456789") == std::string::npos
                       ? std::string()
                       : "expected a number of actions (0 or more), got '" + v + "'";
          },
          "N"));
  cmd->callback(cli.run("inspect", [a] { return inspect_main(*a); }));
}

}  // namespace rplayer::tools
