#include "link/frame_io.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>

namespace rplayer::link {
namespace {

using Clock = std::chrono::steady_clock;

// Bytes the body buffer grows by as they arrive.
constexpr size_t kGrowBytes = size_t{1} << 20;

struct Deadline {
  bool bounded;
  Clock::time_point at;

  explicit Deadline(int timeout_ms)
      : bounded(timeout_ms >= 0), at(Clock::now() + std::chrono::milliseconds(timeout_ms)) {}

  // poll()'s timeout: -1 unbounded, else the milliseconds left (rounded up, at least 0).
  int poll_ms() const {
    if (!bounded) return -1;
    const auto left = at - Clock::now();
    if (left <= Clock::duration::zero()) return 0;
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
    return static_cast<int>(std::min<decltype(ms)>(ms, 1 << 30));
  }
};

enum class Wait { Ready, Timeout, Error };

Wait wait_for(int fd, short events, const Deadline& deadline) {
  for (;;) {
    pollfd pfd{fd, events, 0};
    const int n = poll(&pfd, 1, deadline.poll_ms());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Wait::Error;
    }
    if (n == 0) return Wait::Timeout;
    if (pfd.revents & POLLNVAL) return Wait::Error;
    // Readable, writable, hung up or in error: the read or write that follows tells which.
    return Wait::Ready;
  }
}

enum class Io { Ok, Eof, Timeout, Error };

// Reads exactly n bytes into p; *got counts those read, also on failure.
Io read_full(int fd, uint8_t* p, size_t n, const Deadline& deadline, size_t* got) {
  *got = 0;
  while (*got < n) {
    switch (wait_for(fd, POLLIN, deadline)) {
      case Wait::Ready:
        break;
      case Wait::Timeout:
        return Io::Timeout;
      case Wait::Error:
        return Io::Error;
    }
    const ssize_t r = read(fd, p + *got, n - *got);
    if (r > 0) {
      *got += static_cast<size_t>(r);
    } else if (r == 0) {
      return Io::Eof;
    } else if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
      return Io::Error;
    }
  }
  return Io::Ok;
}

void set_err(std::string* err, const char* what, int errnum) {
  if (err == nullptr) return;
  *err = what;
  if (errnum != 0) {
    *err += ": ";
    *err += std::strerror(errnum);
  }
}

// sendmsg(MSG_NOSIGNAL) on sockets so that a vanished peer is EPIPE, not SIGPIPE; writev on
// anything else.
ssize_t write_iov(int fd, iovec* iov, int count, bool* is_socket) {
  if (*is_socket) {
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<size_t>(count);
    const ssize_t r = sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (r >= 0 || errno != ENOTSOCK) return r;
    *is_socket = false;
  }
  return writev(fd, iov, count);
}

}  // namespace

bool write_frame(int fd, std::span<const uint8_t> payload, std::string* err, int timeout_ms) {
  if (fd < 0) {
    set_err(err, "write_frame: invalid descriptor", 0);
    return false;
  }
  if (payload.size() > kMaxFrameBytes) {
    set_err(err, "write_frame: payload larger than a frame can be", 0);
    return false;
  }
  const uint32_t len = static_cast<uint32_t>(payload.size());
  uint8_t prefix[kFramePrefixBytes] = {static_cast<uint8_t>(len), static_cast<uint8_t>(len >> 8),
                                       static_cast<uint8_t>(len >> 16),
                                       static_cast<uint8_t>(len >> 24)};
  iovec iov[2] = {{prefix, sizeof prefix}, {const_cast<uint8_t*>(payload.data()), payload.size()}};
  int first = 0;
  const int count = payload.empty() ? 1 : 2;
  const Deadline deadline(timeout_ms);
  bool is_socket = true;
  while (first < count) {
    const ssize_t r = write_iov(fd, iov + first, count - first, &is_socket);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        set_err(err, "write_frame", errno);
        return false;
      }
      const Wait w = wait_for(fd, POLLOUT, deadline);
      if (w == Wait::Timeout) {
        set_err(err, "write_frame: timed out", 0);
        return false;
      }
      if (w == Wait::Error) {
        set_err(err, "write_frame: poll", errno);
        return false;
      }
      continue;
    }
    // Skip what was written: whole segments, then the start of the next one.
    size_t done = static_cast<size_t>(r);
    while (first < count && done >= iov[first].iov_len) {
      done -= iov[first].iov_len;
      ++first;
    }
    if (first < count) {
      iov[first].iov_base = static_cast<uint8_t*>(iov[first].iov_base) + done;
      iov[first].iov_len -= done;
    }
  }
  return true;
}

const char* frame_result_name(FrameResult r) {
  switch (r) {
    case FrameResult::Ok:
      return "ok";
    case FrameResult::Closed:
      return "closed";
    case FrameResult::Timeout:
      return "timeout";
    case FrameResult::TooLarge:
      return "too-large";
    case FrameResult::Truncated:
      return "truncated";
    case FrameResult::IoError:
      return "io-error";
  }
  return "unknown";
}

FrameResult read_frame(int fd, size_t max_bytes, int timeout_ms, std::vector<uint8_t>* out) {
  if (out == nullptr || fd < 0) return FrameResult::IoError;
  out->clear();
  const Deadline deadline(timeout_ms);
  uint8_t prefix[kFramePrefixBytes];
  size_t got = 0;
  switch (read_full(fd, prefix, sizeof prefix, deadline, &got)) {
    case Io::Ok:
      break;
    case Io::Eof:
      return got == 0 ? FrameResult::Closed : FrameResult::Truncated;
    case Io::Timeout:
      return FrameResult::Timeout;
    case Io::Error:
      return FrameResult::IoError;
  }
  const size_t len = size_t{prefix[0]} | size_t{prefix[1]} << 8 | size_t{prefix[2]} << 16 |
                     size_t{prefix[3]} << 24;
  if (len > max_bytes) return FrameResult::TooLarge;
  size_t have = 0;
  while (have < len) {
    const size_t step = std::min(len - have, kGrowBytes);
    out->resize(have + step);
    const Io io = read_full(fd, out->data() + have, step, deadline, &got);
    have += got;
    if (io == Io::Ok) continue;
    out->resize(have);
    if (io == Io::Eof) return FrameResult::Truncated;
    return io == Io::Timeout ? FrameResult::Timeout : FrameResult::IoError;
  }
  return FrameResult::Ok;
}

}  // namespace rplayer::link
