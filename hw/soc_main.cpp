// rplayer-soc: the modeled SoC as its own process. The normal world connects to
// DIR/normal.sock; the secure world is a TEE process started here (secure boot) that gets
// its bus as an inherited socket, so the secure port never appears on the filesystem.
// docs/soc-process.md describes the protocol and the boot sequence.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "hw/soc.h"
#include "hw/soc_server.h"

namespace {

using rplayer::hw::World;

void close_fds_between(unsigned lo, unsigned hi) {
  if (lo > hi) return;
  if (close_range(lo, hi, 0) == 0) return;
  // Kernels before 5.9: close the usual range one by one.
  for (unsigned fd = lo; fd <= hi && fd < 4096; ++fd) close(int(fd));
}

// Starts the TEE as `path --secure-bus-fd N args...`, keeping only stdio and the bus
// in the child. Returns its pid, or -1 with *error (an exec failure is reported here,
// through a close-on-exec pipe, rather than as a later child exit).
pid_t spawn_tee(const std::string& path, const std::vector<std::string>& args, int bus_fd,
                std::string* error) {
  // Everything the child needs is prepared before fork: the SoC already runs threads, so
  // the child may only make async-signal-safe calls.
  std::vector<std::string> argv_s = {path, "--secure-bus-fd", std::to_string(bus_fd)};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  int exec_status[2];
  if (pipe2(exec_status, O_CLOEXEC) != 0) {
    *error = std::string("pipe: ") + std::strerror(errno);
    return -1;
  }
  const pid_t soc_pid = getpid();
  sigset_t none;
  sigemptyset(&none);

  const pid_t pid = fork();
  if (pid == 0) {
    // The TEE dies with the SoC. If the SoC died before this point, give up now.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != soc_pid) _exit(1);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGPIPE, SIG_DFL);
    fcntl(bus_fd, F_SETFD, 0);  // the one fd (besides stdio) the TEE inherits
    const unsigned keep_lo = unsigned(std::min(bus_fd, exec_status[1]));
    const unsigned keep_hi = unsigned(std::max(bus_fd, exec_status[1]));
    close_fds_between(3, keep_lo - 1);
    close_fds_between(keep_lo + 1, keep_hi - 1);
    close_fds_between(keep_hi + 1, ~0u);
    execv(path.c_str(), argv.data());
    const int e = errno;
    [[maybe_unused]] ssize_t n = write(exec_status[1], &e, sizeof e);
    _exit(127);
  }
  close(exec_status[1]);
  if (pid < 0) {
    *error = std::string("fork: ") + std::strerror(errno);
    close(exec_status[0]);
    return -1;
  }
  int e = 0;
  ssize_t n;
  while ((n = read(exec_status[0], &e, sizeof e)) < 0 && errno == EINTR) {
  }
  close(exec_status[0]);
  if (n == ssize_t(sizeof e)) {
    waitpid(pid, nullptr, 0);
    *error = "cannot start TEE " + path + ": " + std::strerror(e);
    return -1;
  }
  return pid;
}

std::string describe_exit(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return std::string("was killed by signal ") + std::to_string(WTERMSIG(status)) + " (" +
           strsignal(WTERMSIG(status)) + ")";
  return "stopped";
}

void stop_tee(pid_t pid) {
  if (pid <= 0) return;
  kill(pid, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (std::chrono::steady_clock::now() < deadline) {
    if (waitpid(pid, nullptr, WNOHANG) == pid) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
}

bool write_pid_file(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (!f) return false;
  const bool ok = std::fprintf(f, "%d\n", int(getpid())) > 0;
  return std::fclose(f) == 0 && ok;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"rplayer-soc: the modeled SoC as a process, serving each world's bus port"};
  std::string dir, sku = "v3d-7.1", tee;
  uint64_t normal_mib = 512, secure_mib = 128;
  int device_threads = 2;
  std::vector<std::string> tee_args;
  bool foreground = true;
  app.add_option("--dir", dir, "run directory: DIR/normal.sock (normal world), DIR/soc.pid")
      ->required();
  app.add_option("--sku", sku, "GPU SKU")->check(CLI::IsMember({"v3d-7.1", "v3d-4.2"}));
  app.add_option("--normal-mib", normal_mib, "normal DRAM in MiB")->check(CLI::Range(1, 65536));
  app.add_option("--secure-mib", secure_mib, "secure carve-out in MiB")
      ->check(CLI::Range(0, 65536));
  app.add_option("--device-threads", device_threads, "host threads running QPU workgroups")
      ->check(CLI::Range(1, 256));
  auto* tee_opt = app.add_option("--tee", tee,
                                 "secure-world executable, started first as "
                                 "PATH --secure-bus-fd N [--tee-arg ...]")
                      ->check(CLI::ExistingFile);
  app.add_option("--tee-arg", tee_args,
                 "argument passed to the TEE (repeatable; write --tee-arg=--x for dashes)")
      ->allow_extra_args(false)
      ->needs(tee_opt);
  app.add_flag("--foreground", foreground, "stay in the foreground (the only mode)");
  CLI11_PARSE(app, argc, argv);

  // Block the signals handled below before any thread starts, so that every thread
  // inherits the mask and only sigwaitinfo() sees them.
  sigset_t handled;
  sigemptyset(&handled);
  sigaddset(&handled, SIGTERM);
  sigaddset(&handled, SIGINT);
  sigaddset(&handled, SIGCHLD);
  pthread_sigmask(SIG_BLOCK, &handled, nullptr);
  // Sockets use MSG_NOSIGNAL; this covers stdout going away under a launcher.
  signal(SIGPIPE, SIG_IGN);

  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    std::fprintf(stderr, "rplayer-soc: mkdir %s: %s\n", dir.c_str(), std::strerror(errno));
    return 1;
  }
  const std::string sock_path = dir + "/normal.sock";
  const std::string pid_path = dir + "/soc.pid";

  rplayer::hw::SocConfig cfg;
  cfg.sku = sku;
  cfg.normal_bytes = normal_mib << 20;
  cfg.secure_bytes = secure_mib << 20;
  cfg.device_threads = device_threads;
  std::unique_ptr<rplayer::hw::ModeledSoc> soc;
  try {
    soc = std::make_unique<rplayer::hw::ModeledSoc>(cfg);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rplayer-soc: %s\n", e.what());
    return 1;
  }
  auto server = std::make_unique<rplayer::hw::SocServer>(*soc);

  // Secure boot: the TEE comes up on its own bus before the normal world can connect.
  pid_t tee_pid = -1;
  if (!tee.empty()) {
    int bus[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, bus) != 0) {
      std::fprintf(stderr, "rplayer-soc: socketpair: %s\n", std::strerror(errno));
      return 1;
    }
    server->serve_connection(bus[0], World::Secure);
    std::string error;
    tee_pid = spawn_tee(tee, tee_args, bus[1], &error);
    close(bus[1]);
    if (tee_pid < 0) {
      std::fprintf(stderr, "rplayer-soc: %s\n", error.c_str());
      return 1;
    }
  }

  std::string error;
  if (!server->listen(sock_path, World::Normal, &error)) {
    std::fprintf(stderr, "rplayer-soc: %s\n", error.c_str());
    server->stop();
    stop_tee(tee_pid);
    return 1;
  }
  if (!write_pid_file(pid_path))
    std::fprintf(stderr, "rplayer-soc: cannot write %s: %s\n", pid_path.c_str(),
                 std::strerror(errno));
  std::printf("rplayer-soc: ready %s\n", dir.c_str());
  std::fflush(stdout);

  int exit_code = 0;
  for (;;) {
    siginfo_t info;
    const int sig = sigwaitinfo(&handled, &info);
    if (sig < 0) {
      if (errno == EINTR) continue;
      exit_code = 1;
      break;
    }
    if (sig == SIGCHLD) {
      int status = 0;
      if (tee_pid > 0 && waitpid(tee_pid, &status, WNOHANG) == tee_pid) {
        std::fprintf(stderr, "rplayer-soc: TEE (pid %d) %s; shutting down\n", int(tee_pid),
                     describe_exit(status).c_str());
        tee_pid = -1;
        exit_code = 1;
        break;
      }
      continue;
    }
    break;  // SIGTERM or SIGINT: a clean stop
  }

  server->stop();  // disconnects everyone and removes normal.sock
  stop_tee(tee_pid);
  server.reset();
  soc.reset();
  unlink(pid_path.c_str());
  return exit_code;
}
