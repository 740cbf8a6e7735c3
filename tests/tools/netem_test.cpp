// NetemRelay (tools/netem_relay.h) in-process, in front of an echo server on loopback, and
// `rplayer netem` as a process. Timing bounds are generous below (the machine is shared) and
// strict above where the model guarantees them: a round trip through --rtt R never takes
// less than R.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "tests/common/run_command.h"
#include "tools/netem_relay.h"

extern char** environ;

namespace rplayer::tools {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

int listen_loopback(uint16_t* port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || listen(fd, 16) != 0)
    return -1;
  socklen_t len = sizeof sa;
  getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  *port = ntohs(sa.sin_port);
  return fd;
}

int connect_to(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = htons(port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    close(fd);
    return -1;
  }
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

bool send_all(int fd, const void* p, size_t n) {
  const char* c = static_cast<const char*>(p);
  while (n > 0) {
    const ssize_t k = send(fd, c, n, MSG_NOSIGNAL);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return false;
    c += k;
    n -= static_cast<size_t>(k);
  }
  return true;
}

// Up to `n` bytes: fewer at EOF, on an error or after `timeout_ms` without data.
size_t recv_exact(int fd, void* p, size_t n, int timeout_ms = 5000) {
  char* c = static_cast<char*>(p);
  size_t got = 0;
  while (got < n) {
    pollfd pfd{fd, POLLIN, 0};
    if (poll(&pfd, 1, timeout_ms) <= 0) break;
    const ssize_t k = recv(fd, c + got, n - got, 0);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) break;
    got += static_cast<size_t>(k);
  }
  return got;
}

// What the next read says: "eof", "reset", "data" or "timeout".
std::string wait_closed(int fd, int timeout_ms) {
  pollfd pfd{fd, POLLIN, 0};
  if (poll(&pfd, 1, timeout_ms) <= 0) return "timeout";
  char c;
  const ssize_t k = recv(fd, &c, 1, 0);
  if (k == 0) return "eof";
  if (k < 0) return "reset";
  return "data";
}

// Echoes every connection on its own thread, shutting its write side on EOF.
class EchoServer {
 public:
  EchoServer() {
    fd_ = listen_loopback(&port_);
    accept_thread_ = std::thread([this] {
      for (;;) {
        const int c = accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        std::lock_guard<std::mutex> lock(mu_);
        conns_.push_back(c);
        accepted_++;
        threads_.emplace_back([this, c] { serve(c); });
      }
    });
  }
  ~EchoServer() {
    shutdown(fd_, SHUT_RDWR);
    accept_thread_.join();
    close(fd_);
    std::lock_guard<std::mutex> lock(mu_);
    for (int c : conns_) shutdown(c, SHUT_RDWR);
    for (auto& t : threads_) t.join();
    for (int c : conns_) close(c);
  }
  uint16_t port() const { return port_; }
  int accepted() const { return accepted_; }
  int finished() const { return finished_; }

 private:
  void serve(int c) {
    std::vector<char> buf(64 * 1024);
    for (;;) {
      const ssize_t n = recv(c, buf.data(), buf.size(), 0);
      if (n <= 0) {
        if (n == 0) shutdown(c, SHUT_WR);
        break;
      }
      if (!send_all(c, buf.data(), static_cast<size_t>(n))) break;
    }
    finished_++;
  }

  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread accept_thread_;
  std::mutex mu_;
  std::vector<int> conns_;
  std::vector<std::thread> threads_;
  std::atomic<int> accepted_{0}, finished_{0};
};

std::unique_ptr<NetemRelay> relay_to(uint16_t port, NetemParams p) {
  std::string err;
  auto r = NetemRelay::start("127.0.0.1:0", "127.0.0.1:" + std::to_string(port), p, &err);
  EXPECT_TRUE(r) << err;
  if (r) {
    EXPECT_NE(r->port(), 0);
  }
  return r;
}

template <typename F>
bool eventually(F pred, int timeout_ms = 2000) {
  const auto end = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (Clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return pred();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Median of `n` one-byte ping-pongs on a connection through `relay`.
std::vector<double> ping_pong(uint16_t port, int n) {
  std::vector<double> rtts;
  const int fd = connect_to(port);
  EXPECT_GE(fd, 0);
  for (int i = 0; i < n && fd >= 0; ++i) {
    const char c = static_cast<char>('a' + i);
    char r = 0;
    const auto t0 = Clock::now();
    EXPECT_TRUE(send_all(fd, &c, 1));
    EXPECT_EQ(recv_exact(fd, &r, 1), 1u);
    rtts.push_back(ms_since(t0));
    EXPECT_EQ(r, c);
  }
  if (fd >= 0) close(fd);
  return rtts;
}

TEST(Netem, PingPongRoundTripIsTheRtt) {
  EchoServer echo;
  for (const double rtt : {0.0, 20.0}) {
    NetemParams p;
    p.rtt_ms = rtt;
    auto relay = relay_to(echo.port(), p);
    ASSERT_TRUE(relay);
    const std::vector<double> rtts = ping_pong(relay->port(), 9);
    ASSERT_EQ(rtts.size(), 9u);
    const double med = median(rtts);
    std::printf("--rtt %g: round trip median %.2f ms, min %.2f, max %.2f\n", rtt, med,
                *std::min_element(rtts.begin(), rtts.end()),
                *std::max_element(rtts.begin(), rtts.end()));
    EXPECT_GE(*std::min_element(rtts.begin(), rtts.end()), rtt) << "never faster than the rtt";
    EXPECT_LT(med, rtt + 15.0);
    EXPECT_EQ(relay->stats().bytes_up, 9u);
    // Counted after send() returns, which may be after the client has the byte.
    EXPECT_TRUE(eventually([&] { return relay->stats().bytes_down == 9; }));
  }
}

TEST(Netem, JitterSpreadsRoundTripsWithinItsBounds) {
  EchoServer echo;
  NetemParams p;
  p.rtt_ms = 20;
  p.jitter_ms = 4;  // each way 10 +- 4 ms: a round trip in [12, 28]
  auto relay = relay_to(echo.port(), p);
  ASSERT_TRUE(relay);
  const std::vector<double> rtts = ping_pong(relay->port(), 15);
  ASSERT_EQ(rtts.size(), 15u);
  const double lo = *std::min_element(rtts.begin(), rtts.end());
  const double hi = *std::max_element(rtts.begin(), rtts.end());
  std::printf("--rtt 20 --jitter 4: round trips %.2f .. %.2f ms, median %.2f\n", lo, hi,
              median(rtts));
  EXPECT_GE(lo, 12.0);
  EXPECT_LT(median(rtts), 20.0 + 15.0);
  EXPECT_GT(hi - lo, 1.0) << "jitter varies the delay";
}

TEST(Netem, LargeStreamKeepsItsBytesInOrderUnderJitter) {
  EchoServer echo;
  NetemParams p;
  p.rtt_ms = 10;
  p.jitter_ms = 5;
  p.seed = 7;
  auto relay = relay_to(echo.port(), p);
  ASSERT_TRUE(relay);
  std::vector<char> data(6 << 20);
  std::mt19937_64 rng(42);
  for (char& c : data) c = static_cast<char>(rng());
  const int fd = connect_to(relay->port());
  ASSERT_GE(fd, 0);
  const auto t0 = Clock::now();
  std::thread writer([&] {
    // Odd-sized writes, so that chunks straddle read boundaries.
    for (size_t off = 0; off < data.size(); off += 12345)
      if (!send_all(fd, data.data() + off, std::min<size_t>(12345, data.size() - off))) return;
    shutdown(fd, SHUT_WR);
  });
  std::vector<char> back(data.size());
  const size_t got = recv_exact(fd, back.data(), back.size());
  writer.join();
  std::printf("6 MiB echoed at rtt 10 +- 5 ms in %.0f ms\n", ms_since(t0));
  EXPECT_EQ(got, data.size());
  EXPECT_TRUE(back == data) << "bytes reordered or corrupted";
  EXPECT_EQ(wait_closed(fd, 2000), "eof");
  close(fd);
  EXPECT_EQ(relay->stats().bytes_up, data.size());
}

TEST(Netem, RateLimitSerializes) {
  EchoServer echo;
  NetemParams p;
  p.rate_mbit = 16;  // 2 MB = 16 Mbit: 1 s each way, pipelined through the echo
  auto relay = relay_to(echo.port(), p);
  ASSERT_TRUE(relay);
  const std::vector<char> data(2'000'000, 'r');
  const int fd = connect_to(relay->port());
  ASSERT_GE(fd, 0);
  const auto t0 = Clock::now();
  std::thread writer([&] { send_all(fd, data.data(), data.size()); });
  std::vector<char> back(data.size());
  const size_t got = recv_exact(fd, back.data(), back.size());
  const double ms = ms_since(t0);
  writer.join();
  close(fd);
  std::printf("2 MB at 16 Mbit/s echoed in %.0f ms\n", ms);
  EXPECT_EQ(got, data.size());
  EXPECT_GE(ms, 1000.0);
  EXPECT_LT(ms, 1500.0);
}

TEST(Netem, EofIsForwardedAfterTheData) {
  EchoServer echo;
  NetemParams p;
  p.rtt_ms = 20;
  auto relay = relay_to(echo.port(), p);
  ASSERT_TRUE(relay);
  const int fd = connect_to(relay->port());
  ASSERT_GE(fd, 0);
  const auto t0 = Clock::now();
  ASSERT_TRUE(send_all(fd, "hello", 5));
  shutdown(fd, SHUT_WR);
  char buf[5] = {};
  ASSERT_EQ(recv_exact(fd, buf, 5), 5u);
  EXPECT_EQ(std::string(buf, 5), "hello");
  EXPECT_EQ(wait_closed(fd, 2000), "eof");
  const double ms = ms_since(t0);
  EXPECT_GE(ms, 20.0);
  EXPECT_LT(ms, 20.0 + 200.0);
  close(fd);
  EXPECT_TRUE(eventually([&] { return relay->stats().active == 0; }))
      << "both EOFs delivered: the relay closes the connection";
  EXPECT_EQ(echo.finished(), 1);
}

TEST(Netem, ResetClosesBothSidesAtOnce) {
  EchoServer echo;
  NetemParams p;
  p.rtt_ms = 1000;  // an EOF would take 500 ms; a reset is forwarded at once
  auto relay = relay_to(echo.port(), p);
  ASSERT_TRUE(relay);
  const int fd = connect_to(relay->port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(eventually([&] { return echo.accepted() == 1; }));
  const linger l{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  const auto t0 = Clock::now();
  close(fd);
  EXPECT_TRUE(eventually([&] { return echo.finished() == 1; }, 400))
      << "the target's side is closed within 400 ms of the client's reset";
  std::printf("reset reached the target after %.1f ms (rtt 1000)\n", ms_since(t0));
  EXPECT_TRUE(eventually([&] { return relay->stats().active == 0; }));
}

TEST(Netem, StoppingTheRelayClosesItsConnections) {
  EchoServer echo;
  NetemParams p;
  p.rtt_ms = 5;
  auto relay = relay_to(echo.port(), p);
  ASSERT_TRUE(relay);
  const int fd = connect_to(relay->port());
  ASSERT_GE(fd, 0);
  char c = 'x';
  ASSERT_TRUE(send_all(fd, &c, 1));
  ASSERT_EQ(recv_exact(fd, &c, 1), 1u);
  EXPECT_EQ(relay->stats().active, 1u);
  relay->stop();
  const std::string how = wait_closed(fd, 2000);
  EXPECT_TRUE(how == "eof" || how == "reset") << how;
  EXPECT_TRUE(eventually([&] { return echo.finished() == 1; })) << "the target's side too";
  EXPECT_EQ(relay->stats().active, 0u);
  EXPECT_LT(connect_to(relay->port()), 0) << "no longer listening";
  close(fd);
  relay->stop();  // idempotent
}

TEST(Netem, BadAddressesAreErrors) {
  NetemParams p;
  std::string err;
  for (const char* bad : {"nonsense", "127.0.0.1", "1.2.3:80", "127.0.0.1:99999", "127.0.0.1:x",
                          ":80", "example.com:80", "127.0.0.1:"}) {
    err.clear();
    EXPECT_FALSE(NetemRelay::start(bad, "127.0.0.1:1", p, &err)) << bad;
    EXPECT_NE(err.find("listen address: bad address"), std::string::npos) << err;
    err.clear();
    EXPECT_FALSE(NetemRelay::start("127.0.0.1:0", bad, p, &err)) << bad;
    EXPECT_NE(err.find("connect address: bad address"), std::string::npos) << err;
  }
  EXPECT_FALSE(NetemRelay::start("127.0.0.1:0", "127.0.0.1:0", p, &err));
  EXPECT_NE(err.find("port 0"), std::string::npos) << err;
  // A port that is taken.
  auto first = NetemRelay::start("localhost:0", "localhost:1", p, &err);
  ASSERT_TRUE(first) << err;
  EXPECT_EQ(first->listen_address(), "127.0.0.1:" + std::to_string(first->port()));
  EXPECT_FALSE(
      NetemRelay::start("127.0.0.1:" + std::to_string(first->port()), "127.0.0.1:1", p, &err));
  EXPECT_NE(err.find("Address already in use"), std::string::npos) << err;
  p.rtt_ms = -1;
  EXPECT_FALSE(NetemRelay::start("127.0.0.1:0", "127.0.0.1:1", p, &err));
  EXPECT_NE(err.find("rtt"), std::string::npos) << err;
}

TEST(Netem, RefusedConnectClosesTheClient) {
  uint16_t dead_port = 0;
  const int l = listen_loopback(&dead_port);
  close(l);  // nobody listens there now
  std::mutex mu;
  std::vector<std::string> errors;
  NetemParams p;
  p.log = [&](bool error, const std::string& line) {
    std::lock_guard<std::mutex> lock(mu);
    if (error) errors.push_back(line);
  };
  auto relay = relay_to(dead_port, p);
  ASSERT_TRUE(relay);
  const int fd = connect_to(relay->port());
  ASSERT_GE(fd, 0);
  const std::string how = wait_closed(fd, 2000);
  EXPECT_TRUE(how == "eof" || how == "reset") << how;
  close(fd);
  EXPECT_EQ(relay->stats().failed_connects, 1u);
  relay->stop();
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("Connection refused"), std::string::npos) << errors[0];
}

TEST(Netem, TwoConnectionsAtOnce) {
  EchoServer echo;
  NetemParams p;
  p.rtt_ms = 40;
  auto relay = relay_to(echo.port(), p);
  ASSERT_TRUE(relay);
  const int a = connect_to(relay->port()), b = connect_to(relay->port());
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  for (int round = 0; round < 3; ++round) {
    const auto t0 = Clock::now();
    ASSERT_TRUE(send_all(a, "A", 1));
    ASSERT_TRUE(send_all(b, "BB", 2));
    char ra = 0, rb[2] = {};
    ASSERT_EQ(recv_exact(a, &ra, 1), 1u);
    ASSERT_EQ(recv_exact(b, rb, 2), 2u);
    const double ms = ms_since(t0);
    EXPECT_EQ(ra, 'A');
    EXPECT_EQ(std::string(rb, 2), "BB");
    EXPECT_GE(ms, 40.0);
    EXPECT_LT(ms, 80.0) << "relayed side by side, not one after the other";
  }
  const NetemRelay::Stats s = relay->stats();
  EXPECT_EQ(s.connections, 2u);
  EXPECT_EQ(s.active, 2u);
  EXPECT_EQ(s.bytes_up, 9u);
  close(a);
  close(b);
  EXPECT_TRUE(eventually([&] { return relay->stats().active == 0; }, 3000));
}

TEST(Netem, BackpressureBoundsWhatADirectionHolds) {
  // A target that accepts but does not read until told to.
  uint16_t port = 0;
  const int l = listen_loopback(&port);
  ASSERT_GE(l, 0);
  NetemParams p;
  p.max_in_flight = 1 << 20;
  auto relay = relay_to(port, p);
  ASSERT_TRUE(relay);
  const int fd = connect_to(relay->port());
  ASSERT_GE(fd, 0);
  const int sink = accept(l, nullptr, nullptr);
  ASSERT_GE(sink, 0);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  std::vector<char> chunk(64 * 1024);
  uint64_t written = 0;
  const uint64_t cap = uint64_t{96} << 20;
  while (written < cap) {
    for (size_t i = 0; i < chunk.size(); ++i) chunk[i] = static_cast<char>((written + i) % 251);
    const ssize_t n = send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL);
    if (n > 0) {
      written += static_cast<uint64_t>(n);  // the next chunk continues the pattern from here
      continue;
    }
    ASSERT_TRUE(errno == EAGAIN || errno == EWOULDBLOCK) << std::strerror(errno);
    pollfd pfd{fd, POLLOUT, 0};
    if (poll(&pfd, 1, 300) == 0) break;  // stuck: the relay stopped reading
  }
  std::printf("blocked after %.1f MiB with max_in_flight 1 MiB (peak held %.2f MiB)\n",
              written / 1048576.0, relay->stats().peak_in_flight / 1048576.0);
  EXPECT_LT(written, cap) << "the relay kept reading";
  EXPECT_LE(relay->stats().peak_in_flight, p.max_in_flight);
  // Now drain: everything arrives, in order.
  shutdown(fd, SHUT_WR);
  std::vector<char> buf(256 * 1024);
  uint64_t got = 0;
  bool in_order = true;
  for (;;) {
    const size_t n = recv_exact(sink, buf.data(), buf.size(), 2000);
    for (size_t i = 0; i < n && in_order; ++i)
      in_order = buf[i] == static_cast<char>((got + i) % 251);
    got += n;
    if (n < buf.size()) break;
  }
  EXPECT_EQ(got, written);
  EXPECT_TRUE(in_order);
  close(sink);
  close(l);
  close(fd);
}

// --- the CLI ---

struct Child {
  pid_t pid = -1;
  int err_fd = -1;  // its stderr
};

Child spawn_netem(const std::vector<std::string>& args) {
  std::vector<std::string> argv_s = {RPLAYER_BIN, "netem"};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : argv_s) argv.push_back(s.data());
  argv.push_back(nullptr);
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) return {};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
  Child c;
  if (posix_spawn(&c.pid, argv[0], &fa, nullptr, argv.data(), environ) != 0) c.pid = -1;
  posix_spawn_file_actions_destroy(&fa);
  close(pipefd[1]);
  c.err_fd = pipefd[0];
  return c;
}

// One line of the child's stderr ("" on EOF or after `timeout_ms`).
std::string read_line(int fd, int timeout_ms = 5000) {
  std::string line;
  for (;;) {
    pollfd pfd{fd, POLLIN, 0};
    char c;
    if (poll(&pfd, 1, timeout_ms) <= 0 || read(fd, &c, 1) != 1 || c == '\n') return line;
    line += c;
  }
}

std::string run_status(const std::string& cmd, int* status) {
  return test::run_command(cmd, status);
}

TEST(NetemCli, StartsPrintsItsPortAndStopsOnSigterm) {
  Child c = spawn_netem({"--listen", "127.0.0.1:0", "--connect", "127.0.0.1:1", "--rtt", "5"});
  ASSERT_GT(c.pid, 0);
  const std::string line = read_line(c.err_fd);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(
      line, m,
      std::regex(R"(^netem: listening on 127\.0\.0\.1:(\d+) -> 127\.0\.0\.1:1, rtt 5 ms, )")))
      << line;
  const int port = std::stoi(m[1]);
  EXPECT_GT(port, 0);
  // Nobody listens on port 1: the client is closed and the refusal reported.
  const int fd = connect_to(static_cast<uint16_t>(port));
  ASSERT_GE(fd, 0);
  const std::string how = wait_closed(fd, 2000);
  EXPECT_TRUE(how == "eof" || how == "reset") << how;
  close(fd);
  const std::string refused = read_line(c.err_fd);
  EXPECT_NE(refused.find("connect to 127.0.0.1:1: Connection refused"), std::string::npos)
      << refused;
  kill(c.pid, SIGTERM);
  int st = 0;
  ASSERT_EQ(waitpid(c.pid, &st, 0), c.pid);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
  EXPECT_NE(read_line(c.err_fd).find("netem: stopped (SIGTERM): 1 connections"), std::string::npos);
  close(c.err_fd);
}

TEST(NetemCli, BadArgumentsExitNonZero) {
  const std::string bin = std::string("timeout 10 ") + RPLAYER_BIN + " netem ";
  for (const char* args : {
           "--listen nonsense --connect 127.0.0.1:1 --rtt 5",
           "--listen 127.0.0.1:70000 --connect 127.0.0.1:1 --rtt 5",
           "--listen 127.0.0.1:0 --connect 127.0.0.1:0 --rtt 5",
           "--listen 127.0.0.1:0 --connect 127.0.0.1:1",
           "--listen 127.0.0.1:0 --connect 127.0.0.1:1 --rtt -3",
           "--listen 127.0.0.1:0 --connect 127.0.0.1:1 --rtt 5 --rate fast",
           "--connect 127.0.0.1:1 --rtt 5",
       }) {
    int status = -1;
    const std::string out = run_status(bin + args + " 2>&1", &status);
    EXPECT_NE(status, 0) << args << "\n" << out;
    EXPECT_NE(status, 124) << args << ": still running after 10 s";
    EXPECT_FALSE(out.empty()) << args;
  }
  int status = -1;
  const std::string out =
      run_status(bin + "--listen 1.2.3:5 --connect 127.0.0.1:1 --rtt 5 2>&1", &status);
  EXPECT_EQ(status, 1);
  EXPECT_NE(out.find("rplayer netem: listen address: bad address \"1.2.3:5\""), std::string::npos)
      << out;
}

}  // namespace
}  // namespace rplayer::tools
