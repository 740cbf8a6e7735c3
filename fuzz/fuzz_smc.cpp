// Target 3: the TEE's SMC wire (tee/smc_wire.h) as rplayer-tee serves it: framing,
// parameter decoding, the TEE core's validation (sessions, shared memory, types, sizes)
// and a TA behind it.
//
// The input is a sequence of messages, each `u8 flags, u16 length, length bytes`, sent in
// order on one SOCK_SEQPACKET connection that SmcServer::serve_fd serves (a fresh client
// per execution, so the core's per-client state starts empty). Flags:
//   bit 0: attach a sealed 8 KiB memfd (REGISTER_SHM takes one; any other op must refuse it)
//   bit 1: fix the framing (magic, version, payload_bytes), so that mutations of a
//          message's body get past the checks of its envelope
// Every message must get exactly one reply with the request's op and a sane length.
// The TA is tests/tee/toy_ta.h without its blocking and pointer-keeping commands.
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "tee/core/smc_server.h"
#include "tee/core/tee_core.h"
#include "tee/smc_wire.h"
#include "tests/tee/toy_ta.h"

using namespace rplayer;
using namespace rplayer::tee;

namespace {

class FuzzTa final : public test::ToyTa {
 public:
  TEE_Result invoke(void* ctx, uint32_t cmd, uint32_t types, TEE_Param p[4]) override {
    // Sleep blocks; Remember/Poke keep a pointer into shared memory on purpose (a test of
    // zero-copy semantics): neither is the core's behaviour under test.
    if (cmd == test::kCmdSleep || cmd == test::kCmdRemember || cmd == test::kCmdPoke)
      return TEE_ERROR_NOT_SUPPORTED;
    return ToyTa::invoke(ctx, cmd, types, p);
  }
};

struct Server {
  Server() {
    TeeCore::Limits limits;
    limits.max_memref_bytes = 1 << 20;
    limits.max_shm_bytes = 1 << 20;
    limits.max_sessions_per_client = 8;
    limits.max_shm_per_client = 8;
    core = std::make_unique<TeeCore>(limits);
    if (core->register_ta(std::make_shared<FuzzTa>()) != TEE_SUCCESS) std::abort();
    smc = std::make_unique<SmcServer>(*core);
  }
  std::unique_ptr<TeeCore> core;
  std::unique_ptr<SmcServer> smc;
};

int make_shm() {
  const int fd = memfd_create("fuzz-shm", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0 || ftruncate(fd, 8192) != 0 || fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) != 0)
    std::abort();
  return fd;
}

bool send_with_fd(int sock, const uint8_t* buf, size_t n, int fd) {
  iovec iov{const_cast<uint8_t*>(buf), n};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  if (fd >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
  }
  ssize_t sent;
  while ((sent = sendmsg(sock, &msg, MSG_NOSIGNAL)) < 0 && errno == EINTR) {
  }
  return sent == ssize_t(n);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Server server;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) std::abort();
  std::thread serving([fd = sv[1]] { server.smc->serve_fd(fd); });
  std::vector<uint8_t> reply(wire::kMaxMessageBytes + 1);
  size_t pos = 0;
  int messages = 0;
  while (size - pos >= 3 && messages++ < 32) {
    const uint8_t flags = data[pos];
    size_t len = size_t(data[pos + 1]) | size_t(data[pos + 2]) << 8;
    pos += 3;
    len = std::min(len, size - pos);
    std::vector<uint8_t> msg(data + pos, data + pos + len);
    pos += len;
    if (msg.empty()) continue;  // a zero-length SEQPACKET message reads as EOF
    if ((flags & 2) && msg.size() >= sizeof(wire::Header)) {
      wire::Header h;
      std::memcpy(&h, msg.data(), sizeof h);
      h.magic = wire::kMagic;
      h.version = wire::kVersion;
      h.payload_bytes = uint32_t(msg.size() - sizeof h);
      std::memcpy(msg.data(), &h, sizeof h);
    }
    const int shm = (flags & 1) ? make_shm() : -1;
    const bool sent = send_with_fd(sv[0], msg.data(), msg.size(), shm);
    if (shm >= 0) close(shm);
    if (!sent) break;
    pollfd p{sv[0], POLLIN, 0};
    int ready;
    // EINTR: libFuzzer's -timeout is a SIGALRM every few seconds.
    while ((ready = poll(&p, 1, 5000)) < 0 && errno == EINTR) {
    }
    if (ready != 1) {
      std::fprintf(stderr, "ORACLE: the SMC server did not answer message %d\n", messages);
      std::abort();
    }
    ssize_t n;
    while ((n = recv(sv[0], reply.data(), reply.size(), 0)) < 0 && errno == EINTR) {
    }
    if (n < ssize_t(sizeof(wire::Header))) {
      std::fprintf(stderr, "ORACLE: short or no reply (%zd bytes) to message %d\n", n, messages);
      std::abort();
    }
    wire::Header h;
    std::memcpy(&h, reply.data(), sizeof h);
    if (h.magic != wire::kMagic || h.payload_bytes != size_t(n) - sizeof h) {
      std::fprintf(stderr, "ORACLE: malformed reply to message %d\n", messages);
      std::abort();
    }
  }
  shutdown(sv[0], SHUT_RDWR);
  close(sv[0]);
  serving.join();
  return 0;
}
