// rplayer-tee: the secure world as a process. Booted by rplayer-soc with the secure bus
// as an inherited socket (--secure-bus-fd), it loads the provisioned public keys, hosts
// the replay TA, opens DIR/tee.sock (the emulated SMC channel for client applications),
// then drops to a seccomp filter: from then on no file, socket or process can be opened.
#include <malloc.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "hw/remote_port.h"
#include "keyring/keys.h"
#include "tee/core/sandbox.h"
#include "tee/core/smc_server.h"
#include "tee/core/tee_core.h"
#include "tee/replay_ta.h"

namespace fs = std::filesystem;
using namespace rplayer;

int main(int argc, char** argv) {
  CLI::App app{"rplayer-tee: the secure world (replay TA behind a GlobalPlatform-shaped API)"};
  int bus_fd = -1;
  std::string dir, trust_path;
  uint32_t top_k_only = 0, claim_timeout_ms = 2000, resume_wait_ms = 0;
  bool no_sandbox = false;
  double normal_share = rplayer::tee::FairShare{}.normal_share;
  app.add_option("--secure-bus-fd", bus_fd, "inherited socket to the SoC's secure port")
      ->required();
  app.add_option("--dir", dir, "run directory: DIR/tee.sock is the SMC channel")->required();
  app.add_option("--keys", trust_path, "trusted public keys: a .pub file or a directory of them")
      ->required();
  app.add_option("--top-k-only", top_k_only, "return at most K classes, never the scores");
  app.add_option("--claim-timeout-ms", claim_timeout_ms,
                 "how long the normal world may take to release the GPU");
  app.add_option("--resume-wait-ms", resume_wait_ms,
                 "wait for the normal-world driver to resume after each run (to measure it)");
  app.add_option("--normal-share", normal_share,
                 "the normal world's share of the GPU when both worlds want it (0: the "
                 "secure world always first)")
      ->check(CLI::Range(0.0, 0.9))
      ->capture_default_str();
  app.add_flag("--no-sandbox", no_sandbox, "do not enter the seccomp filter (debugging)");
  CLI11_PARSE(app, argc, argv);
#ifdef RPLAYER_SANITIZED
  no_sandbox = true;
#endif
  std::signal(SIGPIPE, SIG_IGN);
  // One malloc arena: glibc shrinks per-thread arenas after reading
  // /proc/sys/vm/overcommit_memory, a file open the sandbox kills the process for.
  mallopt(M_ARENA_MAX, 1);

  std::string error;
  std::unique_ptr<hw::RemoteSocPort> port = hw::RemoteSocPort::connect_fd(bus_fd, &error);
  if (!port || port->world() != hw::World::Secure) {
    std::fprintf(stderr, "rplayer-tee: secure bus: %s\n",
                 port ? "not the secure port" : error.c_str());
    return 1;
  }
  tee::ReplayTaConfig cfg;
  try {
    cfg.trusted_keys = keyring::TrustStore::load(trust_path).keys();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rplayer-tee: keys: %s\n", e.what());
    return 1;
  }
  if (cfg.trusted_keys.empty()) {
    std::fprintf(stderr, "rplayer-tee: no trusted keys in %s\n", trust_path.c_str());
    return 1;
  }
  // The TA drives the GPU from one thread at a time (the TEE core serializes it): writes
  // can be posted, as MMIO writes are, instead of costing a round trip each.
  if (!port->use_posted_writes()) {
    std::fprintf(stderr, "rplayer-tee: secure bus: no ordered connection\n");
    return 1;
  }
  // The secure world's process maps the carve-out and its own memory, nothing else.
  if (!port->restrict_to_carve_out()) {
    std::fprintf(stderr, "rplayer-tee: the secure bus offers no carve-out\n");
    return 1;
  }
  const hw::MemoryWindow carve = port->carve_out();
  cfg.port = port.get();
  cfg.pool_pa = carve.pa_base;
  cfg.pool_bytes = carve.size;
  cfg.max_top_k = top_k_only;
  cfg.claim_timeout_us = claim_timeout_ms * 1000;
  cfg.resume_wait_us = resume_wait_ms * 1000;
  cfg.share.normal_share = normal_share;
  auto ta = std::make_shared<tee::ReplayTa>(cfg);
  if (ta->create() != TEE_SUCCESS) {  // identify the GPU now, before the normal world runs
    std::fprintf(stderr, "rplayer-tee: cannot identify the GPU\n");
    return 1;
  }
  tee::TeeCore core;
  core.register_ta(ta);
  tee::SmcServer server(core);
  const std::string sock = dir + "/tee.sock";
  if (!server.listen(sock, &error)) {
    std::fprintf(stderr, "rplayer-tee: %s\n", error.c_str());
    return 1;
  }
  if (!no_sandbox && !tee::enter_sandbox(&error)) {
    std::fprintf(stderr, "rplayer-tee: sandbox: %s\n", error.c_str());
    return 1;
  }
  std::fprintf(stderr, "rplayer-tee: ready %s (%zu trusted keys, carve-out %llu MiB%s)\n",
               sock.c_str(), cfg.trusted_keys.size(), (unsigned long long)(carve.size >> 20),
               no_sandbox ? ", no sandbox" : ", sandboxed");
  server.run();
  return 0;
}
