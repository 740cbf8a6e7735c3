#include "tools/tee_launcher.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "keyring/key_paths.h"
#include "tools/recording_io.h"

namespace rplayer::tools {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

bool socket_accepts(const std::string& path) {
  sockaddr_un addr{};
  if (path.size() >= sizeof addr.sun_path) return false;
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}

namespace {

}  // namespace

std::string default_worlds_dir() {
  if (const char* x = std::getenv("XDG_RUNTIME_DIR"); x && *x) return std::string(x) + "/rplayer";
  return "/tmp/rplayer-" + std::to_string(getuid());
}

namespace {

// The worlds' executables sit next to this one (build/).
void stop_process(pid_t pid) {
  if (pid <= 0) return;
  kill(pid, SIGTERM);
  for (int i = 0; i < 200; ++i) {  // 2 s, then force
    if (waitpid(pid, nullptr, WNOHANG) == pid) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
}

}  // namespace

fs::path sibling(const char* name) {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path(name) : self.parent_path() / name;
}

std::unique_ptr<TeeWorlds> TeeWorlds::start_or_connect(const TeeWorldsOptions& o,
                                                       std::string* error) {
  std::unique_ptr<TeeWorlds> w(new TeeWorlds);
  w->dir_ = o.dir.empty() ? default_worlds_dir() : o.dir;
  if (socket_accepts(w->tee_socket())) return w;  // already running

  const fs::path store = keyring::trust_store_path({}, o.keys);
  if (!fs::exists(store)) {
    *error = "no trusted keys to provision into the TEE: " + store.string() +
             " does not exist (rplayer keygen)";
    return nullptr;
  }
  const fs::path soc =
      o.bin_dir.empty() ? sibling("rplayer-soc") : fs::path(o.bin_dir) / "rplayer-soc";
  const fs::path tee =
      o.bin_dir.empty() ? sibling("rplayer-tee") : fs::path(o.bin_dir) / "rplayer-tee";
  for (const fs::path& p : {soc, tee})
    if (!fs::exists(p)) {
      *error = p.string() + " not found (build it: make build)";
      return nullptr;
    }
  std::error_code ec;
  fs::remove(w->tee_socket(), ec);  // stale, since nothing accepts on it
  // clang-format off: one option and its value a line
  std::vector<std::string> args = {soc.string(),
                                   "--dir",
                                   w->dir_,
                                   "--sku",
                                   o.sku,
                                   "--tee",
                                   tee.string(),
                                   "--tee-arg=--dir",
                                   "--tee-arg=" + w->dir_,
                                   "--tee-arg=--keys",
                                   "--tee-arg=" + fs::absolute(store).string(),
                                   "--tee-arg=--claim-timeout-ms",
                                   "--tee-arg=" + std::to_string(o.claim_timeout_ms),
                                   "--tee-arg=--normal-share",
                                   "--tee-arg=" + std::to_string(o.normal_share)};
  // clang-format on
  if (o.top_k_only)
    args.insert(args.end(),
                {"--tee-arg=--top-k-only", "--tee-arg=" + std::to_string(o.top_k_only)});
  if (o.resume_wait_ms)
    args.insert(args.end(),
                {"--tee-arg=--resume-wait-ms", "--tee-arg=" + std::to_string(o.resume_wait_ms)});
  // A provisioned device key makes this TEE a cloud-recording device too (the GPU shim TA):
  // a larger carve-out, half of it lent to recording sessions.
  const fs::path device_key = keyring::key_dir(o.keys) / "device.key";
  if (fs::exists(device_key))
    args.insert(args.end(), {"--secure-mib", std::to_string(o.secure_mib), "--tee-arg=--device-key",
                             "--tee-arg=" + fs::absolute(device_key).string()});
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) {
    *error = std::string("pipe: ") + std::strerror(errno);
    return nullptr;
  }
  const pid_t pid = fork();
  if (pid < 0) {
    *error = std::string("fork: ") + std::strerror(errno);
    close(out[0]), close(out[1]);
    return nullptr;
  }
  if (pid == 0) {
    dup2(out[1], STDOUT_FILENO);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(out[1]);
  w->soc_pid_ = pid;
  // Wait for the SoC's ready line, then for the TEE's socket: both bounded.
  const auto deadline = Clock::now() + std::chrono::milliseconds(o.startup_timeout_ms);
  std::string line;
  bool ready = false;
  while (!ready && Clock::now() < deadline) {
    pollfd p{out[0], POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    char c;
    const ssize_t n = read(out[0], &c, 1);
    if (n <= 0) break;  // the SoC exited
    if (c == '\n') {
      ready = line.rfind("rplayer-soc: ready", 0) == 0;
      line.clear();
    } else {
      line += c;
    }
  }
  close(out[0]);
  while (ready && !socket_accepts(w->tee_socket())) {
    if (Clock::now() >= deadline || waitpid(pid, nullptr, WNOHANG) == pid) {
      ready = false;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (!ready) {
    *error = "the SoC and TEE processes did not start (see their messages above)";
    return nullptr;  // the destructor stops what is left
  }
  return w;
}

TeeWorlds::~TeeWorlds() { stop_process(soc_pid_); }

bool stop_worlds(const std::string& dir) {
  std::ifstream f(dir + "/soc.pid");
  long pid = 0;
  if (!(f >> pid) || pid <= 1) return false;
  if (kill(pid_t(pid), SIGTERM) != 0) return false;
  for (int i = 0; i < 300 && kill(pid_t(pid), 0) == 0; ++i)  // 3 s
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  return true;
}

}  // namespace rplayer::tools
