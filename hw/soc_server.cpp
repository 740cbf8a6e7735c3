#include "hw/soc_server.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "hw/soc_wire.h"

namespace rplayer::hw {

namespace {

// A server thread in WAIT_IRQ re-checks for stop() and for a vanished peer this often.
constexpr uint64_t kWaitSliceUs = 50'000;

bool valid_request(const wire::Request& r, int num_irq_lines) {
  if (r.magic != wire::kMagic || r.version != wire::kVersion) return false;
  switch (wire::Op(r.op)) {
    case wire::Op::Hello:
    case wire::Op::Clone:
      return r.block == 0 && r.offset == 0 && r.value == 0 && r.line == 0 && r.timeout_us == 0;
    case wire::Op::Read32:
      return r.block < uint32_t(wire::kNumBlocks) && r.value == 0 && r.line == 0 &&
             r.timeout_us == 0;
    case wire::Op::Write32:
    case wire::Op::Write32Posted:
      return r.block < uint32_t(wire::kNumBlocks) && r.line == 0 && r.timeout_us == 0;
    case wire::Op::WaitIrq:
      return r.line < uint32_t(num_irq_lines) && r.timeout_us <= wire::kMaxWaitUs && r.block == 0 &&
             r.offset == 0 && r.value == 0;
  }
  return false;
}

bool peer_gone(int fd) {
  pollfd p{fd, 0, 0};  // POLLHUP/POLLERR are reported without being asked for
  return poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR | POLLNVAL));
}

}  // namespace

struct SocServer::Connection {
  int fd;
  World world;
  std::thread thread;
  std::atomic<bool> done{false};
};

SocServer::SocServer(ModeledSoc& soc) : soc_(soc) {}

SocServer::~SocServer() { stop(); }

size_t SocServer::active_connections() const {
  std::lock_guard lock(mu_);
  return size_t(std::count_if(connections_.begin(), connections_.end(),
                              [](const auto& c) { return !c->done.load(); }));
}

void SocServer::reap_finished_locked() {
  // A finished thread's last action is setting `done`, so joining it here is immediate.
  for (auto it = connections_.begin(); it != connections_.end();) {
    if ((*it)->done.load()) {
      (*it)->thread.join();
      close((*it)->fd);  // closed only after the join: the number cannot be reused early
      it = connections_.erase(it);
    } else {
      ++it;
    }
  }
}

bool SocServer::serve_connection(int fd, World w) {
  std::lock_guard lock(mu_);
  reap_finished_locked();
  const size_t same_world = size_t(std::count_if(connections_.begin(), connections_.end(),
                                                 [&](const auto& c) { return c->world == w; }));
  if (stopping_.load() || same_world >= kMaxConnectionsPerWorld) {
    close(fd);
    return false;
  }
  auto c = std::make_unique<Connection>();
  c->fd = fd;
  c->world = w;
  Connection& ref = *c;
  connections_.push_back(std::move(c));
  ref.thread = std::thread([this, &ref] {
    serve(ref);
    ref.done.store(true);
  });
  return true;
}

bool SocServer::wait_irq_sliced(SocPort& port, int fd, int line, uint64_t timeout_us) {
  // Lines are level-triggered, so waiting in slices observes the same thing as one wait.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(timeout_us);
  for (;;) {
    const auto now = std::chrono::steady_clock::now();
    const auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline - now);
    const auto slice = std::max(std::chrono::microseconds(0),
                                std::min(left, std::chrono::microseconds(kWaitSliceUs)));
    if (port.wait_irq(line, slice)) return true;
    if (left <= slice || stopping_.load() || peer_gone(fd)) return false;
  }
}

void SocServer::serve(Connection& c) {
  SocPort& port = soc_.port(c.world);
  const int num_irq_lines = std::min(port.num_irq_lines(), wire::kMaxIrqLines);
  for (;;) {
    wire::Request req;
    // Requests carry no fds: one that does is malformed (recv_message closes them).
    if (wire::recv_message(c.fd, &req, sizeof req) != wire::RecvResult::Ok) break;
    if (!valid_request(req, num_irq_lines)) break;  // malformed: drop this client only
    const wire::Op op = wire::Op(req.op);
    if (op == wire::Op::Write32Posted) {  // no answer
      port.write32(RegBlock(req.block), req.offset, req.value);
      continue;
    }
    wire::Response resp = wire::make_response(op);
    int pass[wire::kMaxRanges];
    int npass = 0;
    int clone_peer = -1;
    switch (op) {
      case wire::Op::Hello: {
        resp.world = uint8_t(c.world);
        resp.num_irq_lines = uint8_t(num_irq_lines);
        for (int b = 0; b < wire::kNumBlocks; ++b)
          if (port.has_block(RegBlock(b))) resp.block_mask |= uint8_t(1u << b);
        // The normal world gets the normal memfd only: the carve-out is not in it. The
        // secure world gets both, to map all of DRAM back to back.
        PhysMemory& mem = soc_.memory();
        const MemoryWindow normal = mem.window(World::Normal);
        resp.ranges[0] = {normal.pa_base, normal.size};
        pass[npass++] = normal.fd;
        if (c.world == World::Secure && mem.secure_size() > 0) {
          const MemoryWindow carve = mem.carve_out();
          resp.ranges[1] = {carve.pa_base, carve.size};
          pass[npass++] = carve.fd;
        }
        resp.num_ranges = uint8_t(npass);
        break;
      }
      case wire::Op::Read32:
        resp.value = port.read32(RegBlock(req.block), req.offset);
        break;
      case wire::Op::Write32:
      case wire::Op::Write32Posted:  // answered above
        port.write32(RegBlock(req.block), req.offset, req.value);
        break;
      case wire::Op::WaitIrq:
        resp.value = wait_irq_sliced(port, c.fd, int(req.line), req.timeout_us) ? 1 : 0;
        break;
      case wire::Op::Clone: {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
          resp.status = uint32_t(wire::Status::Refused);
          break;
        }
        if (!serve_connection(sv[0], c.world)) {  // closes sv[0] on refusal
          close(sv[1]);
          resp.status = uint32_t(wire::Status::Refused);
          break;
        }
        clone_peer = sv[1];
        pass[npass++] = clone_peer;
        break;
      }
    }
    const bool sent = wire::send_message(c.fd, &resp, sizeof resp, pass, npass);
    if (clone_peer >= 0) close(clone_peer);  // the client has its own copy now
    if (!sent) break;
  }
  shutdown(c.fd, SHUT_RDWR);
}

bool SocServer::listen(const std::string& path, World w, std::string* error) {
  auto fail = [&](const std::string& what) {
    if (error) *error = what;
    return false;
  };
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path)
    return fail("socket path is empty or too long: " + path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  {
    std::lock_guard lock(mu_);
    if (stopping_.load()) return fail("server is stopped");
    if (listen_fd_ >= 0) return fail("already listening on " + listen_path_);
  }
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail(std::string("socket: ") + std::strerror(errno));
  // Replace a stale socket file, but not a live one nor another kind of file.
  struct stat st;
  if (lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
    int probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    const bool live =
        probe >= 0 && connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    if (probe >= 0) close(probe);
    if (live) {
      close(fd);
      return fail("another server is listening on " + path);
    }
    unlink(path.c_str());
  }
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 64) != 0) {
    const int e = errno;
    close(fd);
    return fail("bind/listen " + path + ": " + std::strerror(e));
  }
  int wake = eventfd(0, EFD_CLOEXEC);
  if (wake < 0) {
    const int e = errno;
    close(fd);
    unlink(path.c_str());
    return fail(std::string("eventfd: ") + std::strerror(e));
  }
  std::lock_guard lock(mu_);
  if (stopping_.load() || listen_fd_ >= 0) {  // lost a race with stop() or another listen()
    close(fd);
    close(wake);
    unlink(path.c_str());
    return fail("server is stopped or already listening");
  }
  listen_fd_ = fd;
  wake_fd_ = wake;
  listen_path_ = path;
  accept_thread_ = std::thread([this, w, fd, wake] { accept_loop(w, fd, wake); });
  return true;
}

void SocServer::accept_loop(World w, int listen_fd, int wake_fd) {
  for (;;) {
    pollfd p[2] = {{listen_fd, POLLIN, 0}, {wake_fd, POLLIN, 0}};
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (p[1].revents || stopping_.load()) return;
    if (!(p[0].revents & POLLIN)) continue;
    int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      // EMFILE and friends: back off rather than spin; the client will see a refusal.
      if (errno != EINTR && errno != ECONNABORTED && errno != EAGAIN)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    serve_connection(fd, w);
  }
}

void SocServer::stop() {
  stopping_.store(true);
  std::thread accept_thread;
  {
    std::lock_guard lock(mu_);
    accept_thread.swap(accept_thread_);
    if (wake_fd_ >= 0) {
      const uint64_t one = 1;
      [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof one);
    }
  }
  if (accept_thread.joinable()) accept_thread.join();
  std::list<std::unique_ptr<Connection>> conns;
  {
    std::lock_guard lock(mu_);
    if (listen_fd_ >= 0) {
      close(listen_fd_);
      close(wake_fd_);
      unlink(listen_path_.c_str());
      listen_fd_ = wake_fd_ = -1;
    }
    // Wakes threads blocked in recv; a thread in WAIT_IRQ sees stopping_ within a slice.
    for (auto& c : connections_) shutdown(c->fd, SHUT_RDWR);
    conns.swap(connections_);
  }
  // No new connection can appear: serve_connection refuses once stopping_ is set. A
  // thread serving CLONE may still take mu_, so join without holding it.
  for (auto& c : conns) {
    c->thread.join();
    close(c->fd);
  }
}

}  // namespace rplayer::hw
