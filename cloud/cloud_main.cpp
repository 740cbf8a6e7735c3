// rplayer-cloud: the recording cloud as a process. It has the whole normal-world GPU stack
// and the recorder but no GPU and no GPU model (it does not link one): every register
// access goes to a device's TA through the client that connected. One session per
// connection, each on its own thread, at most --max-sessions at once.
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <thread>

#include "cloud/cloud_server.h"
#include "keyring/key_paths.h"
#include "link/tcp.h"

using namespace rplayer;

namespace {
std::atomic<int> g_listen_fd{-1};
void on_signal(int) {
  const int fd = g_listen_fd.exchange(-1);
  if (fd >= 0) ::shutdown(fd, SHUT_RDWR);  // accept() returns; main exits
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"rplayer-cloud: records GPU workloads for devices that have the GPU (GR-T)"};
  std::string listen = "127.0.0.1:7000", keys, devices;
  int max_sessions = 4, timeout_s = 60;
  app.add_option("--listen", listen, "HOST:PORT to accept clients on (port 0: any)")
      ->capture_default_str();
  app.add_option("--keys", keys, "key directory: its signing.key signs the recordings");
  app.add_option("--devices", devices,
                 "public keys of the devices this cloud records for (a .pub file or a "
                 "directory; default: <keys>/devices)");
  app.add_option("--max-sessions", max_sessions, "sessions at once")->check(CLI::Range(1, 64));
  app.add_option("--timeout", timeout_s, "seconds a silent client may take")
      ->check(CLI::Range(1, 3600));
  CLI11_PARSE(app, argc, argv);
  std::signal(SIGPIPE, SIG_IGN);

  cloud::CloudServerConfig cfg;
  cfg.io_timeout_ms = timeout_s * 1000;
  try {
    cfg.signing = keyring::load_signing_key(keys);
    const std::string store =
        devices.empty() ? (keyring::key_dir(keys) / "devices").string() : devices;
    cfg.trusted_devices = keyring::TrustStore::load(store).keys();
    if (cfg.trusted_devices.empty()) throw std::runtime_error("no device keys in " + store);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rplayer-cloud: %s\n", e.what());
    return 1;
  }
  std::string err;
  uint16_t port = 0;
  const int fd = link::listen_tcp(listen, &port, &err);
  if (fd < 0) {
    std::fprintf(stderr, "rplayer-cloud: %s\n", err.c_str());
    return 1;
  }
  g_listen_fd = fd;
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  const std::string host = listen.substr(0, listen.rfind(':'));
  std::fprintf(stderr, "rplayer-cloud: listening on %s:%u (%zu trusted devices)\n", host.c_str(),
               unsigned(port), cfg.trusted_devices.size());
  std::atomic<int> active{0};
  for (;;) {
    const int c = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) {
      if (g_listen_fd.load() < 0) break;  // signalled
      continue;
    }
    if (active.load() >= max_sessions) {
      ::close(c);  // the client sees the connection end before any hello
      continue;
    }
    ++active;
    std::thread([c, &cfg, &active] {
      const std::string log = cloud::serve_session(c, cfg);
      ::close(c);
      std::fprintf(stderr, "rplayer-cloud: %s\n", log.c_str());
      --active;
    }).detach();
  }
  ::close(fd);
  // Sessions in progress end with the process: their clients see the connection close,
  // and each device's TA ends its session (GPU reset, pool scrubbed) when told so.
  std::fprintf(stderr, "rplayer-cloud: stopped (%d sessions cut)\n", active.load());
  std::fflush(stderr);
  ::_exit(0);
}
