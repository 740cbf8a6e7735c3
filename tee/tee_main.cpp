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
#include "tee/gpu_shim_ta.h"
#include "tee/replay_ta.h"

namespace fs = std::filesystem;
using namespace rplayer;

int main(int argc, char** argv) {
  CLI::App app{"rplayer-tee: the secure world (replay TA behind a GlobalPlatform-shaped API)"};
  int bus_fd = -1;
  std::string dir, trust_path, device_key_path;
  uint32_t top_k_only = 0, claim_timeout_ms = 2000, resume_wait_ms = 0, shim_pool_mib = 0;
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
  app.add_option("--device-key", device_key_path,
                 "the device's Ed25519 secret key: its identity towards a recording cloud "
                 "(without it the GPU shim TA for cloud recording is not offered)");
  app.add_option("--shim-pool-mib", shim_pool_mib,
                 "carve-out lent to a cloud recording session (default: half of it)");
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
  // The carve-out's top part goes to cloud recording sessions (their GPU pool), the rest
  // to replays; the two never overlap, so a recording session cannot see a replay's pages.
  uint64_t shim_bytes = 0;
  if (!device_key_path.empty())
    shim_bytes = shim_pool_mib ? uint64_t(shim_pool_mib) << 20 : (carve.size / 2) & ~0xfffull;
  if (shim_bytes >= carve.size) {
    std::fprintf(stderr, "rplayer-tee: --shim-pool-mib leaves no carve-out for replays\n");
    return 1;
  }
  tee::GpuWorldSwitch gpu_switch(*port, 200000, tee::FairShare{normal_share, 250000});
  cfg.port = port.get();
  cfg.pool_pa = carve.pa_base;
  cfg.pool_bytes = carve.size - shim_bytes;
  cfg.gpu_switch = &gpu_switch;
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
  if (!device_key_path.empty()) {
    tee::GpuShimTaConfig sc;
    sc.shim.port = port.get();
    sc.shim.pool_pa = carve.pa_base + cfg.pool_bytes;
    sc.shim.pool_bytes = shim_bytes;
    sc.gpu_switch = &gpu_switch;
    sc.claim_timeout_us = cfg.claim_timeout_us;
    sc.trusted_clouds = cfg.trusted_keys;
    try {
      const keyring::KeyPair k = keyring::load_secret_key(device_key_path);
      if (!link::kx_from_signing_key(k.secret_key.data(), &sc.device_key))
        throw std::runtime_error("not an Ed25519 secret key");
    } catch (const std::exception& e) {
      std::fprintf(stderr, "rplayer-tee: device key %s: %s\n", device_key_path.c_str(), e.what());
      return 1;
    }
    core.register_ta(std::make_shared<tee::GpuShimTa>(sc));
  }
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
  std::fprintf(stderr,
               "rplayer-tee: ready %s (%zu trusted keys, carve-out %llu MiB, %llu MiB of it for "
               "cloud recording%s)\n",
               sock.c_str(), cfg.trusted_keys.size(), (unsigned long long)(carve.size >> 20),
               (unsigned long long)(shim_bytes >> 20), no_sandbox ? ", no sandbox" : ", sandboxed");
  server.run();
  return 0;
}
