// Subcommands of the rplayer CLI. main.cpp lists them in one table; each entry registers
// its subcommands on the app through a Cli, which keeps their options alive as long as
// the app and turns a body's result or exception into the exit code.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace rplayer::tools {

class Cli {
 public:
  explicit Cli(CLI::App& app) : app(app) {}
  CLI::App& app;
  int exit_code = 0;

  // Storage for a subcommand's options (CLI11 binds them by reference), owned here.
  template <typename T>
  T& hold(T init = T()) {
    auto p = std::make_shared<T>(std::move(init));
    held_.push_back(p);
    return *p;
  }
  // A subcommand's callback: `body` returns the exit code; an exception it throws prints
  // "rplayer NAME: what" and exits 1.
  std::function<void()> run(std::string name, std::function<int()> body);

 private:
  std::vector<std::shared_ptr<void>> held_;
};

using AddCommands = void (*)(Cli&);
void add_devices_command(Cli& cli);
void add_isa_commands(Cli& cli);  // asm, disasm
void add_run_command(Cli& cli);
void add_record_commands(Cli& cli);  // keygen, record, verify, replay
void add_inspect_command(Cli& cli);
void add_diff_command(Cli& cli);      // diff A.rec B.rec
void add_classify_command(Cli& cli);  // classify --tee
void add_worlds_command(Cli& cli);    // worlds start|stop
void add_cloud_command(Cli& cli);     // cloud serve
void add_netem_command(Cli& cli);     // netem: delaying TCP relay

}  // namespace rplayer::tools
