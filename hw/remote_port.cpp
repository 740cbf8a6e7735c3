#include "hw/remote_port.h"

#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace rplayer::hw {

namespace {

constexpr uint64_t kPageSize = 4096;

bool set_error(std::string* error, const std::string& what) {
  if (error) *error = what;
  return false;
}

bool response_matches(const wire::Response& r, wire::Op op) {
  return r.magic == wire::kMagic && r.version == wire::kVersion && r.op == uint16_t(op);
}

}  // namespace

std::unique_ptr<RemoteSocPort> RemoteSocPort::connect_path(const std::string& path,
                                                           std::string* error) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    set_error(error, "socket path is empty or too long: " + path);
    return nullptr;
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    set_error(error, std::string("socket: ") + std::strerror(errno));
    return nullptr;
  }
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    set_error(error, "connect " + path + ": " + std::strerror(errno));
    close(fd);
    return nullptr;
  }
  return connect_fd(fd, error);
}

std::unique_ptr<RemoteSocPort> RemoteSocPort::connect_fd(int fd, std::string* error) {
  if (fd < 0) {
    set_error(error, "invalid socket fd");
    return nullptr;
  }
  std::unique_ptr<RemoteSocPort> port(new RemoteSocPort);
  port->control_fd_ = fd;  // the destructor closes it on failure
  if (!port->hello(error)) return nullptr;
  return port;
}

bool RemoteSocPort::hello(std::string* error) {
  const wire::Request req = wire::make_request(wire::Op::Hello);
  wire::Response resp;
  int fds[wire::kMaxRanges];
  int nfds = 0;
  if (!wire::send_message(control_fd_, &req, sizeof req))
    return set_error(error, std::string("HELLO: send: ") + std::strerror(errno));
  switch (wire::recv_message(control_fd_, &resp, sizeof resp, fds, wire::kMaxRanges, &nfds,
                             int(kReplyTimeout.count()))) {
    case wire::RecvResult::Ok:
      break;
    case wire::RecvResult::Timeout:
      return set_error(error, "HELLO: no answer from the SoC");
    case wire::RecvResult::Closed:
      return set_error(error, "HELLO: the SoC closed the connection (protocol version?)");
    case wire::RecvResult::Malformed:
      return set_error(error, "HELLO: malformed answer");
  }
  for (int i = 0; i < nfds; ++i) range_fds_[i] = fds[i];  // owned from here on

  // Everything below comes from another process: check it before using it.
  if (!response_matches(resp, wire::Op::Hello) || resp.status != uint32_t(wire::Status::Ok) ||
      resp.reserved != 0)
    return set_error(error, "HELLO: bad answer header");
  if (resp.world > uint8_t(World::Secure) || resp.num_irq_lines > wire::kMaxIrqLines ||
      resp.block_mask >= (1u << wire::kNumBlocks))
    return set_error(error, "HELLO: bad world, irq line count or block mask");
  if (resp.num_ranges < 1 || resp.num_ranges > wire::kMaxRanges || resp.num_ranges != nfds)
    return set_error(error, "HELLO: memory ranges and passed fds do not match");
  uint64_t end = resp.ranges[0].pa_base;
  for (int i = 0; i < resp.num_ranges; ++i) {
    const wire::MemoryRange& r = resp.ranges[i];
    if (r.pa_base != end || r.size == 0 || r.size % kPageSize || r.pa_base % kPageSize ||
        r.size > UINT64_MAX - r.pa_base)
      return set_error(error, "HELLO: memory ranges are not page-aligned and back to back");
    end = r.pa_base + r.size;
    // Mapping past the end of the file would fault on access.
    struct stat st;
    if (fstat(range_fds_[i], &st) != 0 || uint64_t(st.st_size) < r.size)
      return set_error(error, "HELLO: a memory fd is smaller than its range");
  }
  for (int i = resp.num_ranges; i < wire::kMaxRanges; ++i)
    if (resp.ranges[i].pa_base || resp.ranges[i].size)
      return set_error(error, "HELLO: unused memory range not zero");

  world_ = World(resp.world);
  num_irq_lines_ = resp.num_irq_lines;
  block_mask_ = resp.block_mask;
  num_ranges_ = resp.num_ranges;
  std::copy_n(resp.ranges, wire::kMaxRanges, ranges_);
  pa_base_ = ranges_[0].pa_base;
  const uint64_t total = end - pa_base_;

  // One reserved range, the files placed in it back to back (as PhysMemory does), so the
  // window is contiguous even when it spans two memfds.
  void* p = mmap(nullptr, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return set_error(error, std::string("mmap: ") + std::strerror(errno));
  base_ = static_cast<uint8_t*>(p);
  size_ = total;
  for (int i = 0; i < num_ranges_; ++i) {
    if (mmap(base_ + (ranges_[i].pa_base - pa_base_), ranges_[i].size, PROT_READ | PROT_WRITE,
             MAP_SHARED | MAP_FIXED, range_fds_[i], 0) == MAP_FAILED)
      return set_error(error, std::string("mmap DRAM: ") + std::strerror(errno));
  }
  return true;
}

RemoteSocPort::~RemoteSocPort() {
  for (int fd : idle_) close(fd);
  if (control_fd_ >= 0) close(control_fd_);
  if (ordered_fd_ >= 0) close(ordered_fd_);
  for (int fd : range_fds_)
    if (fd >= 0) close(fd);
  if (base_) munmap(base_, size_);
}

bool RemoteSocPort::alive() const {
  if (!alive_.load()) return false;
  pollfd p{control_fd_, 0, 0};  // a hang-up is reported without being asked for
  if (poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR | POLLNVAL))) alive_.store(false);
  return alive_.load();
}

void RemoteSocPort::mark_dead() {
  alive_.store(false);
  std::vector<int> idle;
  {
    std::lock_guard lock(pool_mu_);
    idle.swap(idle_);
  }
  for (int fd : idle) close(fd);
}

size_t RemoteSocPort::idle_connections() const {
  std::lock_guard lock(pool_mu_);
  return idle_.size();
}

int RemoteSocPort::clone_connection() {
  std::lock_guard lock(control_mu_);
  if (!alive_.load()) return -1;
  const wire::Request req = wire::make_request(wire::Op::Clone);
  wire::Response resp;
  int fd = -1;
  int nfds = 0;
  if (!wire::send_message(control_fd_, &req, sizeof req) ||
      wire::recv_message(control_fd_, &resp, sizeof resp, &fd, 1, &nfds,
                         int(kReplyTimeout.count())) != wire::RecvResult::Ok ||
      !response_matches(resp, wire::Op::Clone)) {
    mark_dead();
    return -1;
  }
  if (resp.status == uint32_t(wire::Status::Ok) && nfds == 1) return fd;
  if (nfds == 1) close(fd);
  // At the SoC's connection limit this one call fails; anything else is a broken SoC.
  if (resp.status != uint32_t(wire::Status::Refused)) mark_dead();
  return -1;
}

bool RemoteSocPort::use_posted_writes() {
  std::lock_guard lock(ordered_mu_);
  if (ordered_fd_ < 0) ordered_fd_ = clone_connection();
  return ordered_fd_ >= 0;
}

int RemoteSocPort::acquire_connection() {
  {
    std::lock_guard lock(pool_mu_);
    if (!idle_.empty()) {
      const int fd = idle_.back();
      idle_.pop_back();
      return fd;
    }
  }
  return clone_connection();
}

void RemoteSocPort::release_connection(int fd) {
  {
    std::lock_guard lock(pool_mu_);
    if (alive_.load() && idle_.size() < kMaxIdleConnections) {
      idle_.push_back(fd);
      return;
    }
  }
  close(fd);
}

bool RemoteSocPort::call(const wire::Request& req, wire::Response* resp,
                         std::chrono::milliseconds timeout) {
  if (!alive_.load()) return false;
  if (ordered_fd_ >= 0) {  // posted-write mode: one connection, in order
    std::lock_guard lock(ordered_mu_);
    const bool ok = wire::send_message(ordered_fd_, &req, sizeof req) &&
                    wire::recv_message(ordered_fd_, resp, sizeof *resp, nullptr, 0, nullptr,
                                       int(timeout.count())) == wire::RecvResult::Ok &&
                    response_matches(*resp, wire::Op(req.op)) &&
                    resp->status == uint32_t(wire::Status::Ok);
    if (!ok) mark_dead();
    return ok;
  }
  const int fd = acquire_connection();
  if (fd < 0) return false;
  const bool ok = wire::send_message(fd, &req, sizeof req) &&
                  wire::recv_message(fd, resp, sizeof *resp, nullptr, 0, nullptr,
                                     int(timeout.count())) == wire::RecvResult::Ok &&
                  response_matches(*resp, wire::Op(req.op)) &&
                  resp->status == uint32_t(wire::Status::Ok);
  if (ok) {
    release_connection(fd);
    return true;
  }
  // A late answer could still arrive on this connection: never reuse it.
  close(fd);
  mark_dead();
  return false;
}

bool RemoteSocPort::has_block(RegBlock b) const {
  return unsigned(b) < unsigned(wire::kNumBlocks) && (block_mask_ >> unsigned(b)) & 1u;
}

uint32_t RemoteSocPort::read32(RegBlock b, uint32_t offset) {
  // An id outside the enum would get the connection closed by the server.
  if (unsigned(b) >= unsigned(wire::kNumBlocks)) return 0;
  wire::Request req = wire::make_request(wire::Op::Read32);
  req.block = uint32_t(b);
  req.offset = offset;
  wire::Response resp;
  return call(req, &resp, kReplyTimeout) ? resp.value : 0;
}

void RemoteSocPort::write32(RegBlock b, uint32_t offset, uint32_t value) {
  if (unsigned(b) >= unsigned(wire::kNumBlocks)) return;
  wire::Request req = wire::make_request(wire::Op::Write32);
  req.block = uint32_t(b);
  req.offset = offset;
  req.value = value;
  if (ordered_fd_ >= 0) {
    req.op = uint16_t(wire::Op::Write32Posted);
    std::lock_guard lock(ordered_mu_);
    if (alive_.load() && !wire::send_message(ordered_fd_, &req, sizeof req)) mark_dead();
    return;
  }
  wire::Response resp;
  // Acknowledged, so that a write is in effect before the caller's next access, even
  // when that one goes over another connection.
  call(req, &resp, kReplyTimeout);
}

MemoryWindow RemoteSocPort::memory() {
  if (carve_out_only_) return carve_out();
  return {base_, pa_base_, size_, num_ranges_ == 1 ? range_fds_[0] : -1};
}

bool RemoteSocPort::restrict_to_carve_out() {
  if (world_ != World::Secure || num_ranges_ < 2) return false;
  // Unmap the normal DRAM (the reservation stays, PROT_NONE) and drop its fd.
  const uint64_t normal = ranges_[1].pa_base - pa_base_;
  if (mmap(base_, normal, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1,
           0) == MAP_FAILED)
    return false;
  close(range_fds_[0]);
  range_fds_[0] = -1;
  carve_out_only_ = true;
  return true;
}

MemoryWindow RemoteSocPort::carve_out() const {
  if (world_ != World::Secure || num_ranges_ < 2) return {};
  const wire::MemoryRange& r = ranges_[1];
  return {base_ + (r.pa_base - pa_base_), r.pa_base, r.size, range_fds_[1]};
}

bool RemoteSocPort::wait_irq(int line, std::chrono::microseconds timeout) {
  if (line < 0 || line >= num_irq_lines_) return false;
  using std::chrono::microseconds;
  const auto deadline = std::chrono::steady_clock::now() + std::max(timeout, microseconds(0));
  for (;;) {
    const auto left = std::max(microseconds(0), std::chrono::duration_cast<microseconds>(
                                                    deadline - std::chrono::steady_clock::now()));
    const auto chunk = std::min(left, microseconds(wire::kMaxWaitUs));
    wire::Request req = wire::make_request(wire::Op::WaitIrq);
    req.line = uint32_t(line);
    req.timeout_us = uint64_t(chunk.count());
    wire::Response resp;
    // The answer is due when the wait ends; later than kReplyTimeout after that, the SoC
    // is taken for dead.
    const auto reply_timeout =
        std::chrono::duration_cast<std::chrono::milliseconds>(chunk) + kReplyTimeout;
    if (!call(req, &resp, reply_timeout)) return false;
    if (resp.value) return true;
    if (chunk >= left) return false;
  }
}

}  // namespace rplayer::hw
