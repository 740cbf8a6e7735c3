#include "ipc/unix_message.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace rplayer::ipc {

bool send_message(int sock, std::span<const iovec> parts, std::span<const int> fds) {
  if (fds.size() > size_t(kMaxFds)) return false;
  size_t total = 0;
  for (const iovec& p : parts) total += p.iov_len;
  msghdr msg{};
  msg.msg_iov = const_cast<iovec*>(parts.data());
  msg.msg_iovlen = parts.size();
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)];
  if (!fds.empty()) {
    std::memset(control, 0, sizeof control);
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  ssize_t n;
  while ((n = sendmsg(sock, &msg, MSG_NOSIGNAL)) < 0 && errno == EINTR) {
  }
  return n >= 0 && size_t(n) == total;
}

bool send_message(int sock, const void* buf, size_t len, std::span<const int> fds) {
  const iovec part{const_cast<void*>(buf), len};
  return send_message(sock, {&part, 1}, fds);
}

Received recv_message(int sock, void* buf, size_t cap, int* fds, int max_fds) {
  max_fds = fds ? std::clamp(max_fds, 0, kMaxFds) : 0;
  iovec iov{buf, cap};
  // Room for kMaxFds whatever the caller takes, so that extras are received and closed
  // here rather than left to the kernel's truncation.
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  Received r;
  while ((r.bytes = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {
  }
  if (r.bytes < 0) return r;
  r.flags = msg.msg_flags;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      if (r.nfds < max_fds) {
        fds[r.nfds++] = fd;
      } else {
        close(fd);
        r.dropped_fds = true;
      }
    }
  }
  return r;
}

}  // namespace rplayer::ipc
