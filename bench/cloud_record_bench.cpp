// cloud_record_bench: cloud recording as deployed, at emulated network round-trip times.
// The cloud is the rplayer-cloud process; the device is rplayer-soc + rplayer-tee (the GPU
// shim TA); between them the client relays through an in-process user-space link emulator
// (tools/netem_relay.h) adding rtt/2 each way. For each (model, RTT, mode) one recording is
// made and measured: wall time at the client, blocking round trips, sealed bytes each way,
// the device's busy time (its own account), the cloud process's CPU time.
//
//   cloud_record_bench [--models a,b] [--rtts 2,20] [--modes naive,deferral,full] [--json]
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <thread>

#include "keyring/keys.h"
#include "tools/cloud_client.h"
#include "tools/netem_relay.h"
#include "tools/tee_launcher.h"

using namespace rplayer;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

// The cloud as its own process; its port from its first line on stderr.
struct CloudProcess {
  pid_t pid = -1;
  int port = 0;
  CloudProcess(const std::string& keys) {
    int err[2];
    if (pipe(err) != 0) return;
    pid = fork();
    if (pid == 0) {
      dup2(err[1], STDERR_FILENO);
      const std::string bin = std::string(RPLAYER_BIN_DIR) + "/rplayer-cloud";
      execl(bin.c_str(), bin.c_str(), "--listen", "127.0.0.1:0", "--keys", keys.c_str(),
            "--timeout", "600", nullptr);
      _exit(127);
    }
    close(err[1]);
    FILE* f = fdopen(err[0], "r");
    char line[512];
    const std::regex re("listening on [0-9.]+:([0-9]+)");
    while (f && fgets(line, sizeof line, f)) {
      std::cmatch m;
      if (std::regex_search(line, m, re)) {
        port = std::stoi(m[1]);
        break;
      }
    }
    // Keep draining its log (one line per session) so it never blocks on a full pipe.
    std::thread([f] {
      char l[4096];
      while (fgets(l, sizeof l, f)) {
      }
      fclose(f);
    }).detach();
  }
  ~CloudProcess() {
    if (pid > 0) kill(pid, SIGTERM), waitpid(pid, nullptr, 0);
  }
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"cloud_record_bench: cloud recording at emulated RTTs, by mode"};
  std::string models = "mnist,squeezenet,bench/mobilenet_v2,bench/resnet18", rtts = "2,20,50,100",
              modes = "naive,deferral,full", sku = "v3d-7.1";
  bool json = false;
  app.add_option("--models", models)->capture_default_str();
  app.add_option("--rtts", rtts, "round-trip times in ms")->capture_default_str();
  app.add_option("--modes", modes)->capture_default_str();
  app.add_option("--sku", sku)->capture_default_str();
  app.add_flag("--json", json, "one JSON object per (model, RTT, mode)");
  CLI11_PARSE(app, argc, argv);
  std::signal(SIGPIPE, SIG_IGN);

  // Keys as `rplayer keygen` makes them: the cloud signs, the device is trusted by it.
  const fs::path dir =
      fs::temp_directory_path() / ("rplayer-cloud-bench-" + std::to_string(getpid()));
  const fs::path keys = dir / "keys";
  fs::create_directories(keys / "trusted");
  fs::create_directories(keys / "devices");
  const keyring::KeyPair signer = keyring::generate_keypair(), device = keyring::generate_keypair();
  keyring::save_secret_key(keys / "signing.key", signer);
  keyring::save_public_key(keys / "trusted" / "cloud.pub", signer.public_key);
  keyring::save_secret_key(keys / "device.key", device);
  keyring::save_public_key(keys / "device.pub", device.public_key);
  keyring::save_public_key(keys / "devices" / "device.pub", device.public_key);

  tools::TeeWorldsOptions wo;
  wo.dir = (dir / "worlds").string();
  wo.sku = sku;
  wo.keys = keys.string();
  wo.bin_dir = RPLAYER_BIN_DIR;
  std::string err;
  std::unique_ptr<tools::TeeWorlds> worlds = tools::TeeWorlds::start_or_connect(wo, &err);
  if (!worlds) {
    std::fprintf(stderr, "cloud_record_bench: %s\n", err.c_str());
    return 1;
  }
  CloudProcess cloud(keys.string());
  if (cloud.port == 0) {
    std::fprintf(stderr, "cloud_record_bench: rplayer-cloud did not start\n");
    return 1;
  }
  if (!json)
    std::printf("%-20s %5s %-9s %9s %7s %11s %11s %9s %9s\n", "model", "rtt", "mode", "wall_ms",
                "rtts", "bytes_down", "bytes_up", "device_ms", "cloud_cpu");
  int failures = 0;
  for (const std::string& rtt_s : split(rtts)) {
    tools::NetemParams np;
    np.rtt_ms = std::stod(rtt_s);
    std::unique_ptr<tools::NetemRelay> relay = tools::NetemRelay::start(
        "127.0.0.1:0", "127.0.0.1:" + std::to_string(cloud.port), np, &err);
    if (!relay) {
      std::fprintf(stderr, "cloud_record_bench: relay: %s\n", err.c_str());
      return 1;
    }
    for (const std::string& model : split(models))
      for (const std::string& mode : split(modes)) {
        tools::CloudRecordOptions o;
        o.cloud = relay->listen_address();
        o.model = model;
        o.sku = sku;
        o.keys = keys.string();
        o.worlds_dir = worlds->dir();
        o.timeout_ms = 600'000;
        if (!cloud::parse_record_mode(mode, &o.mode)) {
          std::fprintf(stderr, "cloud_record_bench: unknown mode %s\n", mode.c_str());
          return 1;
        }
        const auto t0 = std::chrono::steady_clock::now();
        nlohmann::json row = {
            {"model", model}, {"rtt_ms", np.rtt_ms}, {"mode", mode}, {"sku", sku}};
        try {
          const tools::CloudRecordOutcome r = tools::record_via_cloud(o);
          const double wall =
              std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                  .count();
          const nlohmann::json st = nlohmann::json::parse(r.stats_json);
          row["wall_ms"] = wall;
          for (const char* k :
               {"round_trips", "bytes_up", "bytes_down", "device_ms", "cloud_cpu_ms", "rt_reads",
                "rt_polls", "rt_waits", "rt_posts", "pages", "jobs"})
            row[k] = st[k];
          row["recording_bytes"] = r.recording.size();
        } catch (const std::exception& e) {
          row["error"] = e.what();
          ++failures;
        }
        if (json) {
          std::printf("%s\n", row.dump().c_str());
        } else if (row.contains("error")) {
          std::printf("%-20s %5s %-9s  error: %s\n", model.c_str(), rtt_s.c_str(), mode.c_str(),
                      row["error"].get<std::string>().c_str());
        } else {
          std::printf("%-20s %5s %-9s %9.0f %7llu %11llu %11llu %9.0f %9.0f\n", model.c_str(),
                      rtt_s.c_str(), mode.c_str(), row["wall_ms"].get<double>(),
                      (unsigned long long)row["round_trips"].get<uint64_t>(),
                      (unsigned long long)row["bytes_down"].get<uint64_t>(),
                      (unsigned long long)row["bytes_up"].get<uint64_t>(),
                      row["device_ms"].get<double>(), row["cloud_cpu_ms"].get<double>());
        }
        std::fflush(stdout);
      }
  }
  worlds.reset();
  std::error_code ec;
  fs::remove_all(dir, ec);
  return failures ? 1 : 0;
}
