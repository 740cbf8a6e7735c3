// One message on a Unix socket with file descriptors passed by SCM_RIGHTS: the one place
// where rplayer's processes (the SoC process, the TEE and its clients) build and parse
// control messages. Descriptors arrive close-on-exec; any a receiver did not ask for are
// closed here, so a hostile peer cannot fill a process's descriptor table.
// No exceptions and no allocation: the TEE core and the SoC client link it.
#pragma once

#include <sys/types.h>
#include <sys/uio.h>

#include <cstddef>
#include <span>

namespace rplayer::ipc {

// Descriptors one message may carry; a message with more arrives with MSG_CTRUNC.
inline constexpr int kMaxFds = 8;

// Sends one message gathered from `parts` with `fds` attached (at most kMaxFds).
// MSG_NOSIGNAL: a vanished peer is a false return, never a SIGPIPE. EINTR is retried.
// True iff the whole message went out.
bool send_message(int sock, std::span<const iovec> parts, std::span<const int> fds = {});
bool send_message(int sock, const void* buf, size_t len, std::span<const int> fds = {});

struct Received {
  ssize_t bytes = -1;        // < 0: recvmsg failed (errno says why); 0: the peer closed
  int flags = 0;             // msg_flags: MSG_TRUNC (bigger than the buffer), MSG_CTRUNC
  int nfds = 0;              // descriptors kept, in fds[0..nfds)
  bool dropped_fds = false;  // more came than the caller takes: those were closed
};

// Receives one message into buf[0..cap). At most `max_fds` descriptors are kept (clamped
// to kMaxFds); the caller owns them. EINTR is retried; EAGAIN (a socket timeout) is
// bytes < 0 with errno kept.
Received recv_message(int sock, void* buf, size_t cap, int* fds = nullptr, int max_fds = 0);

}  // namespace rplayer::ipc
