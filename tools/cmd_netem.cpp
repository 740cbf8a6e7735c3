// rplayer netem --listen HOST:PORT --connect HOST:PORT --rtt MS [--jitter MS] [--rate MBIT]
// [--seed N]: a TCP relay that emulates a link (NetemRelay) until SIGINT or SIGTERM. One line
// on stderr once it listens; errors (a target that refuses) always, connection events with -v.
#include <csignal>
#include <cstdio>
#include <string>

#include "tools/commands.h"
#include "tools/netem_relay.h"

namespace rplayer::tools {

namespace {
struct NetemArgs {
  std::string listen, connect;
  NetemParams params;
  double max_in_flight_mib = 64;
  bool verbose = false;
};

std::string fmt_ms(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", v);
  return b;
}

int netem_main(NetemArgs& a) {
  // Block the stop signals before the relay's thread exists, so that it inherits the mask and
  // only sigwait() below sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  if (!(a.max_in_flight_mib > 0)) {
    std::fprintf(stderr, "rplayer netem: --max-in-flight must be > 0\n");
    return 1;
  }
  a.params.max_in_flight = static_cast<size_t>(a.max_in_flight_mib * 1024 * 1024);
  const bool verbose = a.verbose;
  a.params.log = [verbose](bool error, const std::string& line) {
    if (error || verbose) std::fprintf(stderr, "netem: %s\n", line.c_str());
  };
  std::string err;
  std::unique_ptr<NetemRelay> relay = NetemRelay::start(a.listen, a.connect, a.params, &err);
  if (!relay) {
    std::fprintf(stderr, "rplayer netem: %s\n", err.c_str());
    return 1;
  }
  const NetemParams& p = a.params;
  const std::string rate = p.rate_mbit > 0 ? fmt_ms(p.rate_mbit) + " Mbit/s" : "unlimited";
  std::fprintf(
      stderr, "netem: listening on %s -> %s, rtt %s ms, jitter %s ms, rate %s, seed %llu\n",
      relay->listen_address().c_str(), relay->connect_address().c_str(), fmt_ms(p.rtt_ms).c_str(),
      fmt_ms(p.jitter_ms).c_str(), rate.c_str(), static_cast<unsigned long long>(p.seed));
  std::fflush(stderr);

  int sig = 0;
  while (sigwait(&stop_signals, &sig) != 0) {
  }
  relay->stop();
  const NetemRelay::Stats s = relay->stats();
  std::fprintf(stderr, "netem: stopped (%s): %llu connections, %llu bytes up, %llu bytes down\n",
               sig == SIGINT ? "SIGINT" : "SIGTERM", static_cast<unsigned long long>(s.connections),
               static_cast<unsigned long long>(s.bytes_up),
               static_cast<unsigned long long>(s.bytes_down));
  return 0;
}
}  // namespace

void add_netem_command(Cli& cli) {
  CLI::App& app = cli.app;
  auto* a = &cli.hold<NetemArgs>();
  auto* cmd = app.add_subcommand(
      "netem", "TCP relay that adds delay, jitter and a rate limit (a user-space netem)");
  cmd->add_option("--listen", a->listen, "HOST:PORT to listen on (port 0: pick a free one)")
      ->required();
  cmd->add_option("--connect", a->connect, "HOST:PORT to relay each connection to")->required();
  cmd->add_option("--rtt", a->params.rtt_ms, "Round-trip time in ms (rtt/2 each way)")
      ->required()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--jitter", a->params.jitter_ms, "+- ms per chunk, uniform (never reorders)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--rate", a->params.rate_mbit, "Mbit/s per direction (0: unlimited)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--seed", a->params.seed, "Seed of the jitter")->capture_default_str();
  cmd->add_option("--max-in-flight", a->max_in_flight_mib,
                  "MiB one direction may hold before it stops reading (backpressure)")
      ->capture_default_str();
  cmd->add_flag("-v,--verbose", a->verbose, "Log every connection's events to stderr");
  cmd->callback(cli.run("netem", [a] { return netem_main(*a); }));
}

}  // namespace rplayer::tools
