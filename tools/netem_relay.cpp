// The relay: one thread, one epoll loop. Timed releases sit in a min-heap whose earliest
// entry arms a timerfd (absolute CLOCK_MONOTONIC, i.e. steady_clock), so nothing polls.
#include "tools/netem_relay.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <queue>
#include <thread>
#include <unordered_map>
#include <vector>

namespace rplayer::tools {

namespace {
using Clock = std::chrono::steady_clock;

constexpr size_t kReadChunk = 64 * 1024;
constexpr size_t kMinRateChunk = 1448;  // one Ethernet TCP segment
constexpr int kReadsPerWake = 16;       // then let other connections run
constexpr auto kAcceptRetry = std::chrono::milliseconds(100);
// epoll tokens: connection id << 1 | side (ids start at 1); these are the others.
constexpr uint64_t kListenTok = ~uint64_t{0};
constexpr uint64_t kWakeTok = ~uint64_t{0} - 1;
constexpr uint64_t kTimerTok = ~uint64_t{0} - 2;

std::string errno_str(int e) { return std::strerror(e); }

std::string endpoint_str(uint32_t addr, uint16_t port) {
  return std::to_string(addr >> 24) + "." + std::to_string((addr >> 16) & 255) + "." +
         std::to_string((addr >> 8) & 255) + "." + std::to_string(addr & 255) + ":" +
         std::to_string(port);
}

sockaddr_in make_sockaddr(uint32_t addr, uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(addr);
  sa.sin_port = htons(port);
  return sa;
}

void set_nodelay(int fd) {
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// close() that sends a reset instead of a FIN.
void close_with_reset(int fd) {
  const linger l{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  close(fd);
}

int socket_error(int fd) {
  int e = 0;
  socklen_t len = sizeof e;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) != 0) return errno;
  return e;
}

uint64_t splitmix64(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Uniform in [-1, 1].
double uniform_pm1(uint64_t& s) {
  return static_cast<double>(splitmix64(s) >> 11) * 0x1.0p-53 * 2.0 - 1.0;
}

Clock::duration from_ms(double ms) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double, std::milli>(ms));
}

struct Segment {
  Clock::time_point release;
  std::string data;
  bool eof = false;  // the source's EOF (no data)
};

// One direction: reads from side `d`, writes to side `1 - d`.
struct Direction {
  std::deque<Segment> q;
  size_t head_off = 0;   // bytes of q.front() already written
  size_t in_flight = 0;  // read, not yet written
  Clock::time_point tx_end{}, last_release{};
  Clock::time_point scheduled = Clock::time_point::max();  // the live timer entry
  bool read_eof = false;                                   // EOF queued; reading done
  bool paused = false;                                     // backpressure: not reading
  bool want_write = false;                                 // destination full: waiting for EPOLLOUT
  bool shut = false;   // EOF delivered (shutdown(SHUT_WR) on the destination)
  uint64_t bytes = 0;  // delivered
  uint64_t rng = 0;
};

struct Conn {
  uint64_t id = 0;
  int fd[2] = {-1, -1};             // [0] the accepted client, [1] the target
  uint32_t registered[2] = {0, 0};  // events in the epoll set; 0: not in it
  bool connected = false;           // fd[1]'s connect finished
  Direction dir[2];                 // [0] up (client -> target), [1] down
};

struct Timer {
  Clock::time_point at;
  uint64_t conn;  // 0: resume accepting
  int dir;
  bool operator>(const Timer& o) const { return at > o.at; }
};
}  // namespace

bool parse_ipv4_endpoint(const std::string& s, uint32_t* addr, uint16_t* port, std::string* err) {
  const auto fail = [&](const std::string& why) {
    *err = "bad address \"" + s + "\": " + why;
    return false;
  };
  const size_t colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == s.size())
    return fail("expected HOST:PORT (HOST an IPv4 address or localhost)");
  const std::string host = s.substr(0, colon), port_str = s.substr(colon + 1);
  if (port_str.size() > 5 ||
      !std::all_of(port_str.begin(), port_str.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return fail("port \"" + port_str + "\" is not a number 0-65535");
  const unsigned long p = std::stoul(port_str);
  if (p > 65535) return fail("port " + port_str + " is out of range 0-65535");
  in_addr in{};
  if (host == "localhost")
    in.s_addr = htonl(INADDR_LOOPBACK);
  else if (inet_pton(AF_INET, host.c_str(), &in) != 1)
    return fail("host \"" + host + "\" is not an IPv4 address (a.b.c.d) or localhost");
  *addr = ntohl(in.s_addr);
  *port = static_cast<uint16_t>(p);
  return true;
}

struct NetemRelay::Impl {
  NetemParams params;
  uint32_t listen_addr = 0, target_addr = 0;
  uint16_t listen_port = 0, target_port = 0;
  int listen_fd = -1, ep = -1, wake_fd = -1, timer_fd = -1;
  bool listening = true;  // listen_fd in the epoll set
  Clock::duration one_way{}, jitter{};
  size_t rate_chunk = kReadChunk;
  std::thread thread;
  std::mutex stop_mu;
  bool stopped = false;

  // Loop thread only.
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<Timer>> timers;
  uint64_t next_id = 0;
  std::vector<char> buf = std::vector<char>(kReadChunk);

  std::atomic<uint64_t> bytes_up{0}, bytes_down{0}, connections{0}, active{0}, failed_connects{0},
      peak_in_flight{0};

  ~Impl() {
    for (int fd : {listen_fd, ep, wake_fd, timer_fd})
      if (fd >= 0) close(fd);
  }

  void log(bool error, const std::string& line) {
    if (!params.log) return;
    try {
      params.log(error, line);
    } catch (...) {
    }
  }
  std::string conn_name(const Conn& c) const { return "connection " + std::to_string(c.id); }

  void run() {
    try {
      loop();
    } catch (const std::exception& e) {
      log(true, std::string("relay stopped: ") + e.what());
    } catch (...) {
      log(true, "relay stopped: unknown exception");
    }
    close_all();
  }

  void loop() {
    epoll_event evs[64];
    for (;;) {
      const int n = epoll_wait(ep, evs, 64, -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        log(true, "epoll_wait: " + errno_str(errno));
        return;
      }
      for (int i = 0; i < n; ++i) {
        const uint64_t tok = evs[i].data.u64;
        if (tok == kWakeTok) return;  // stop()
        if (tok == kTimerTok) {
          uint64_t expirations;
          while (read(timer_fd, &expirations, sizeof expirations) > 0) {
          }
        } else if (tok == kListenTok) {
          accept_all();
        } else {
          auto it = conns.find(tok >> 1);
          if (it != conns.end()) on_event(*it->second, static_cast<int>(tok & 1), evs[i].events);
        }
      }
      run_timers();
    }
  }

  // Pops due timers, then arms the timerfd for the earliest remaining one.
  void run_timers() {
    const Clock::time_point now = Clock::now();
    while (!timers.empty() && timers.top().at <= now) {
      const Timer t = timers.top();
      timers.pop();
      if (t.conn == 0) {
        resume_accepting();
        continue;
      }
      auto it = conns.find(t.conn);
      if (it == conns.end()) continue;
      Direction& d = it->second->dir[t.dir];
      if (d.scheduled != t.at) continue;  // superseded
      d.scheduled = Clock::time_point::max();
      pump(*it->second, t.dir);
    }
    itimerspec its{};
    if (!timers.empty()) {
      const auto ns =
          std::chrono::duration_cast<std::chrono::nanoseconds>(timers.top().at.time_since_epoch())
              .count();
      its.it_value.tv_sec = ns / 1000000000;
      its.it_value.tv_nsec = ns % 1000000000;
      if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0) its.it_value.tv_nsec = 1;
    }
    timerfd_settime(timer_fd, TFD_TIMER_ABSTIME, &its, nullptr);  // zero: disarm
  }

  void schedule(Conn& c, int d, Clock::time_point at) {
    Direction& dir = c.dir[d];
    if (dir.scheduled == at) return;
    dir.scheduled = at;
    timers.push({at, c.id, d});
  }

  void accept_all() {
    for (;;) {
      const int fd = accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        const int e = errno;
        if (e == EAGAIN || e == EWOULDBLOCK) return;
        if (e == EINTR || e == ECONNABORTED) continue;
        log(true, "accept: " + errno_str(e));
        if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
          // Out of descriptors: stop accepting for a while rather than spin on the backlog.
          epoll_ctl(ep, EPOLL_CTL_DEL, listen_fd, nullptr);
          listening = false;
          timers.push({Clock::now() + kAcceptRetry, 0, 0});
        }
        return;
      }
      add_connection(fd);
    }
  }

  void resume_accepting() {
    if (listening) return;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kListenTok;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, listen_fd, &ev) == 0) listening = true;
  }

  void add_connection(int client_fd) {
    auto owned = std::make_unique<Conn>();
    Conn& c = *owned;
    c.id = ++next_id;
    c.fd[0] = client_fd;
    for (int d = 0; d < 2; ++d) {
      uint64_t s = params.seed ^ (c.id * 0x2545f4914f6cdd1dull) ^ static_cast<uint64_t>(d);
      splitmix64(s);
      c.dir[d].rng = s;
    }
    conns.emplace(c.id, std::move(owned));
    connections.fetch_add(1, std::memory_order_relaxed);
    active.fetch_add(1, std::memory_order_relaxed);
    set_nodelay(client_fd);
    const std::string target = endpoint_str(target_addr, target_port);
    c.fd[1] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c.fd[1] < 0) {
      fail_connect(c, "socket: " + errno_str(errno));
      return;
    }
    set_nodelay(c.fd[1]);
    const sockaddr_in sa = make_sockaddr(target_addr, target_port);
    log(false, conn_name(c) + ": accepted, connecting to " + target);
    if (connect(c.fd[1], reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0) {
      c.connected = true;
      log(false, conn_name(c) + ": connected to " + target);
    } else if (errno != EINPROGRESS) {
      fail_connect(c, "connect to " + target + ": " + errno_str(errno));
      return;
    }
    update_interest(c, 0);
    update_interest(c, 1);
  }

  void fail_connect(Conn& c, const std::string& why) {
    failed_connects.fetch_add(1, std::memory_order_relaxed);
    log(true, conn_name(c) + ": " + why + "; closing the client");
    close_conn(c, true, "");
  }

  void on_event(Conn& c, int side, uint32_t events) {
    if (side == 1 && !c.connected) {
      if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
      const int e = socket_error(c.fd[1]);
      const std::string target = endpoint_str(target_addr, target_port);
      if (e != 0) {
        fail_connect(c, "connect to " + target + ": " + errno_str(e));
        return;
      }
      c.connected = true;
      log(false, conn_name(c) + ": connected to " + target);
      update_interest(c, 0);
      update_interest(c, 1);
      pump(c, 0);  // what the client sent meanwhile
      return;
    }
    if (events & EPOLLERR) {
      const int e = socket_error(c.fd[side]);
      reset(c, std::string(side == 0 ? "client" : "target") + ": " + errno_str(e));
      return;
    }
    if (events & (EPOLLIN | EPOLLHUP))
      if (!on_readable(c, side)) return;
    if (events & EPOLLOUT) {
      c.dir[1 - side].want_write = false;
      pump(c, 1 - side);
    }
  }

  // Reads what side `s` sent into direction `s`. False when the connection is gone.
  bool on_readable(Conn& c, int s) {
    Direction& d = c.dir[s];
    if (d.read_eof || d.paused || (s == 1 && !c.connected)) return true;
    for (int k = 0; k < kReadsPerWake; ++k) {
      if (d.in_flight >= params.max_in_flight) break;
      const size_t room = std::min(kReadChunk, params.max_in_flight - d.in_flight);
      const ssize_t n = recv(c.fd[s], buf.data(), room, 0);
      if (n > 0) {
        enqueue(d, buf.data(), static_cast<size_t>(n), Clock::now());
        continue;
      }
      if (n == 0) {
        enqueue_eof(d, Clock::now());
        d.read_eof = true;
        log(false, conn_name(c) + ": EOF from the " + (s == 0 ? "client" : "target"));
        break;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      reset(c, std::string("reading from the ") + (s == 0 ? "client" : "target") + ": " +
                   errno_str(errno));
      return false;
    }
    if (d.in_flight >= params.max_in_flight) d.paused = true;
    update_interest(c, s);
    return pump(c, s);
  }

  Clock::duration one_way_delay(Direction& d) {
    Clock::duration delay = one_way;
    if (jitter.count() > 0)
      delay += std::chrono::duration_cast<Clock::duration>(jitter * uniform_pm1(d.rng));
    return std::max(delay, Clock::duration::zero());
  }

  void enqueue(Direction& d, const char* p, size_t n, Clock::time_point now) {
    while (n > 0) {
      const size_t len = std::min(n, rate_chunk);
      Clock::time_point tx_end = now;
      if (params.rate_mbit > 0)
        tx_end = std::max(now, d.tx_end) + from_ms(len * 8.0 / (params.rate_mbit * 1e3));
      d.tx_end = tx_end;
      const Clock::time_point release = std::max(tx_end + one_way_delay(d), d.last_release);
      d.last_release = release;
      d.q.push_back({release, std::string(p, len), false});
      d.in_flight += len;
      p += len;
      n -= len;
    }
    if (d.in_flight > peak_in_flight.load(std::memory_order_relaxed))
      peak_in_flight.store(d.in_flight, std::memory_order_relaxed);
  }

  void enqueue_eof(Direction& d, Clock::time_point now) {
    const Clock::time_point release =
        std::max(std::max(now, d.tx_end) + one_way_delay(d), d.last_release);
    d.last_release = release;
    d.q.push_back({release, {}, true});
  }

  // Writes direction `d`'s due data to side 1 - d. False when the connection is gone.
  bool pump(Conn& c, int d) {
    Direction& dir = c.dir[d];
    if (!c.connected || dir.want_write) return true;
    const int out = c.fd[1 - d];
    const Clock::time_point now = Clock::now();
    while (!dir.q.empty()) {
      Segment& seg = dir.q.front();
      if (seg.release > now) {
        schedule(c, d, seg.release);
        break;
      }
      if (seg.eof) {
        shutdown(out, SHUT_WR);
        dir.shut = true;
        dir.q.pop_front();
        log(false, conn_name(c) + ": EOF forwarded to the " + (d == 0 ? "target" : "client"));
        break;
      }
      const ssize_t n =
          send(out, seg.data.data() + dir.head_off, seg.data.size() - dir.head_off, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          dir.want_write = true;
          break;
        }
        reset(c, std::string("writing to the ") + (d == 0 ? "target" : "client") + ": " +
                     errno_str(errno));
        return false;
      }
      dir.head_off += static_cast<size_t>(n);
      dir.in_flight -= static_cast<size_t>(n);
      dir.bytes += static_cast<uint64_t>(n);
      (d == 0 ? bytes_up : bytes_down)
          .fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
      if (dir.head_off == seg.data.size()) {
        dir.q.pop_front();
        dir.head_off = 0;
      }
    }
    if (dir.paused && dir.in_flight <= params.max_in_flight / 2) dir.paused = false;
    if (c.dir[0].shut && c.dir[1].shut) {
      close_conn(c, false, "both sides finished");
      return false;
    }
    update_interest(c, 0);
    update_interest(c, 1);
    return true;
  }

  void update_interest(Conn& c, int side) {
    if (c.fd[side] < 0) return;
    uint32_t ev = 0;
    const Direction& in = c.dir[side];
    if (!in.read_eof && !in.paused && (side == 0 || c.connected)) ev |= EPOLLIN;
    if (side == 1 && !c.connected)
      ev |= EPOLLOUT;  // the connect's completion
    else if (c.dir[1 - side].want_write)
      ev |= EPOLLOUT;
    if (ev == c.registered[side]) return;
    // Not registered at all rather than with no events: epoll reports HUP and ERR regardless,
    // which would wake the loop over and over for a side nobody waits on.
    if (ev == 0) {
      epoll_ctl(ep, EPOLL_CTL_DEL, c.fd[side], nullptr);
    } else {
      epoll_event e{};
      e.events = ev;
      e.data.u64 = (c.id << 1) | static_cast<uint64_t>(side);
      epoll_ctl(ep, c.registered[side] == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, c.fd[side], &e);
    }
    c.registered[side] = ev;
  }

  void reset(Conn& c, const std::string& why) {
    log(true, conn_name(c) + ": " + why + "; resetting both sides");
    close_conn(c, true, "");
  }

  // Closes both sides (with resets if `rst`) and forgets the connection.
  void close_conn(Conn& c, bool rst, const std::string& why) {
    for (int& fd : c.fd) {
      if (fd < 0) continue;
      if (rst)
        close_with_reset(fd);
      else
        close(fd);
      fd = -1;
    }
    if (!why.empty())
      log(false, conn_name(c) + ": closed (" + why + "), " + std::to_string(c.dir[0].bytes) +
                     " bytes up, " + std::to_string(c.dir[1].bytes) + " bytes down");
    active.fetch_sub(1, std::memory_order_relaxed);
    conns.erase(c.id);
  }

  void close_all() {
    while (!conns.empty()) close_conn(*conns.begin()->second, false, "relay stopped");
    if (listen_fd >= 0) {
      close(listen_fd);
      listen_fd = -1;
    }
  }
};

std::unique_ptr<NetemRelay> NetemRelay::start(const std::string& listen_addr,
                                              const std::string& connect_addr,
                                              const NetemParams& params, std::string* err) {
  auto impl = std::make_unique<Impl>();
  Impl& m = *impl;
  m.params = params;
  const auto bad = [&](const std::string& why) {
    *err = why;
    return nullptr;
  };
  if (!std::isfinite(params.rtt_ms) || params.rtt_ms < 0)
    return bad("rtt must be a number of milliseconds >= 0");
  if (!std::isfinite(params.jitter_ms) || params.jitter_ms < 0)
    return bad("jitter must be a number of milliseconds >= 0");
  if (!std::isfinite(params.rate_mbit) || params.rate_mbit < 0)
    return bad("rate must be a number of Mbit/s >= 0 (0: unlimited)");
  if (params.max_in_flight == 0) return bad("max_in_flight must be > 0");
  std::string e;
  if (!parse_ipv4_endpoint(listen_addr, &m.listen_addr, &m.listen_port, &e))
    return bad("listen address: " + e);
  if (!parse_ipv4_endpoint(connect_addr, &m.target_addr, &m.target_port, &e))
    return bad("connect address: " + e);
  if (m.target_port == 0) return bad("connect address \"" + connect_addr + "\": port 0");
  m.one_way = from_ms(params.rtt_ms / 2);
  m.jitter = from_ms(params.jitter_ms);
  if (params.rate_mbit > 0)
    m.rate_chunk = std::clamp(static_cast<size_t>(params.rate_mbit * 125.0),  // bytes per ms
                              kMinRateChunk, kReadChunk);

  m.listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (m.listen_fd < 0) return bad("socket: " + errno_str(errno));
  const int one = 1;
  setsockopt(m.listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in sa = make_sockaddr(m.listen_addr, m.listen_port);
  if (bind(m.listen_fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
    return bad("cannot listen on " + listen_addr + ": " + errno_str(errno));
  if (listen(m.listen_fd, SOMAXCONN) != 0)
    return bad("cannot listen on " + listen_addr + ": " + errno_str(errno));
  socklen_t len = sizeof sa;
  getsockname(m.listen_fd, reinterpret_cast<sockaddr*>(&sa), &len);
  m.listen_port = ntohs(sa.sin_port);

  m.ep = epoll_create1(EPOLL_CLOEXEC);
  m.wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  m.timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (m.ep < 0 || m.wake_fd < 0 || m.timer_fd < 0)
    return bad("epoll/eventfd/timerfd: " + errno_str(errno));
  for (const auto& [fd, tok] : {std::pair{m.listen_fd, kListenTok}, std::pair{m.wake_fd, kWakeTok},
                                std::pair{m.timer_fd, kTimerTok}}) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = tok;
    if (epoll_ctl(m.ep, EPOLL_CTL_ADD, fd, &ev) != 0) return bad("epoll_ctl: " + errno_str(errno));
  }
  try {
    m.thread = std::thread([&m] { m.run(); });
  } catch (const std::exception& ex) {
    return bad(std::string("cannot start the relay thread: ") + ex.what());
  }
  return std::unique_ptr<NetemRelay>(new NetemRelay(std::move(impl)));
}

NetemRelay::NetemRelay(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

NetemRelay::~NetemRelay() { stop(); }

uint16_t NetemRelay::port() const { return impl_->listen_port; }

std::string NetemRelay::listen_address() const {
  return endpoint_str(impl_->listen_addr, impl_->listen_port);
}

std::string NetemRelay::connect_address() const {
  return endpoint_str(impl_->target_addr, impl_->target_port);
}

void NetemRelay::stop() {
  std::lock_guard<std::mutex> lock(impl_->stop_mu);
  if (impl_->stopped) return;
  impl_->stopped = true;
  const uint64_t one = 1;
  if (write(impl_->wake_fd, &one, sizeof one) < 0) {
    // An eventfd write fails only if the counter would overflow: it is nonzero then anyway.
  }
  if (impl_->thread.joinable()) impl_->thread.join();
}

NetemRelay::Stats NetemRelay::stats() const {
  const Impl& m = *impl_;
  Stats s;
  s.bytes_up = m.bytes_up.load(std::memory_order_relaxed);
  s.bytes_down = m.bytes_down.load(std::memory_order_relaxed);
  s.connections = m.connections.load(std::memory_order_relaxed);
  s.active = m.active.load(std::memory_order_relaxed);
  s.failed_connects = m.failed_connects.load(std::memory_order_relaxed);
  s.peak_in_flight = m.peak_in_flight.load(std::memory_order_relaxed);
  return s;
}

}  // namespace rplayer::tools
