// Wire protocol between the SoC process (hw/soc_server.*) and a world's client
// (hw/remote_port.*): one SOCK_SEQPACKET Unix socket per connection, one fixed-size
// request answered by one fixed-size response, file descriptors passed with SCM_RIGHTS
// (ipc/unix_message.h).
// docs/soc-process.md describes the protocol and the process model.
//
// Both ends run on the same host, so the structs go on the wire as they are in memory;
// the format is defined as little-endian and the static_assert below keeps a big-endian
// build from silently speaking another format.
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "hw/soc_port.h"
#include "ipc/unix_message.h"

namespace rplayer::hw::wire {

static_assert(std::endian::native == std::endian::little, "the SoC wire format is little-endian");

inline constexpr uint32_t kMagic = 0x434f5352;  // "RSOC" as little-endian bytes
inline constexpr uint16_t kVersion = 1;

enum class Op : uint16_t {
  Hello = 1,    // -> world, irq lines, blocks, memory ranges (+ one memfd per range)
  Read32 = 2,   // block, offset -> value
  Write32 = 3,  // block, offset, value -> (ack)
  WaitIrq = 4,  // line, timeout_us -> value = 1 if asserted
  Clone = 5,    // -> a new connection of the same world (+ its fd)
  // block, offset, value -> no answer. Executed in order with the connection's other
  // requests, so a later request on the same connection sees it (a posted MMIO write).
  Write32Posted = 6,
};

enum class Status : uint32_t {
  Ok = 0,
  Refused = 1,  // CLONE only: the world's connection limit is reached
};

// Longest wait one WAIT_IRQ may ask for; clients split longer waits. Bounding it keeps
// a dead peer from pinning a server thread and lets the client use a bounded receive
// timeout.
inline constexpr uint64_t kMaxWaitUs = 10'000'000;
inline constexpr int kMaxIrqLines = 32;
// Memory is passed as up to two back-to-back ranges: the normal DRAM memfd and, for the
// secure world only, the carve-out memfd.
inline constexpr int kMaxRanges = 2;
// Valid RegBlock ids are 0..kNumBlocks-1; the HELLO block mask has a bit for each.
inline constexpr int kNumBlocks = kNumRegBlocks;
static_assert(kNumBlocks <= 8, "the HELLO block mask is 8 bits wide");

// Fields an op does not use must be zero; the server closes the connection otherwise.
struct Request {
  uint32_t magic;       // kMagic
  uint16_t version;     // kVersion
  uint16_t op;          // Op
  uint32_t block;       // READ32, WRITE32: RegBlock id, < kNumBlocks
  uint32_t offset;      // READ32, WRITE32: byte offset in the block (the model checks it)
  uint32_t value;       // WRITE32
  uint32_t line;        // WAIT_IRQ: < the HELLO's num_irq_lines
  uint64_t timeout_us;  // WAIT_IRQ: <= kMaxWaitUs
};
static_assert(sizeof(Request) == 32);

struct MemoryRange {
  uint64_t pa_base;
  uint64_t size;
};

struct Response {
  uint32_t magic;    // kMagic
  uint16_t version;  // kVersion
  uint16_t op;       // the request's op
  uint32_t status;   // Status
  uint32_t value;    // READ32: the register; WAIT_IRQ: 1 if asserted, else 0
  // HELLO only (zero otherwise).
  uint8_t world;                   // World
  uint8_t num_irq_lines;           // <= kMaxIrqLines
  uint8_t block_mask;              // bit b set: has_block(RegBlock(b))
  uint8_t num_ranges;              // 1..kMaxRanges; one fd per range, in order
  uint32_t reserved;               // 0
  MemoryRange ranges[kMaxRanges];  // back to back; the fd maps the range at offset 0
};
static_assert(sizeof(Response) == 56);

inline Request make_request(Op op) {
  Request r{};
  r.magic = kMagic;
  r.version = kVersion;
  r.op = uint16_t(op);
  return r;
}

inline Response make_response(Op op) {
  Response r{};
  r.magic = kMagic;
  r.version = kVersion;
  r.op = uint16_t(op);
  return r;
}

// ---- message transport (shared by both ends) ----------------------------------------

static_assert(kMaxRanges <= ipc::kMaxFds);

// Sends one message with optional fds (ipc::send_message: no SIGPIPE, EINTR retried).
inline bool send_message(int sock, const void* buf, size_t len, const int* fds = nullptr,
                         int nfds = 0) {
  if (nfds < 0 || nfds > kMaxRanges) return false;
  return ipc::send_message(sock, buf, len, {fds, size_t(nfds)});
}

enum class RecvResult { Ok, Closed, Timeout, Malformed };

// Receives one message of exactly `len` bytes with at most `max_fds` fds (received
// close-on-exec into fds[0..*nfds)). timeout_ms < 0 waits forever. Anything else (wrong
// size, too many fds, truncated control data) is Malformed, and any fds that came with
// it are closed. A zero-length message reads as Closed: it is indistinguishable from EOF.
inline RecvResult recv_message(int sock, void* buf, size_t len, int* fds = nullptr, int max_fds = 0,
                               int* nfds = nullptr, int timeout_ms = -1) {
  if (nfds) *nfds = 0;
  if (timeout_ms >= 0) {
    pollfd p{sock, POLLIN, 0};
    int r;
    while ((r = poll(&p, 1, timeout_ms)) < 0 && errno == EINTR) {
    }
    if (r == 0) return RecvResult::Timeout;
    if (r < 0) return RecvResult::Closed;
  }
  // One byte more than expected, so that an oversized message shows as such.
  alignas(8) char data[sizeof(Response) + 1];
  if (len >= sizeof data) return RecvResult::Malformed;
  int got[kMaxRanges];
  const ipc::Received r =
      ipc::recv_message(sock, data, len + 1, got, std::min(max_fds, kMaxRanges));
  if (r.bytes < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return RecvResult::Timeout;
  auto fail = [&](RecvResult result) {
    for (int i = 0; i < r.nfds; ++i) close(got[i]);
    return result;
  };
  if (r.bytes <= 0) return fail(RecvResult::Closed);
  if (r.dropped_fds || (r.flags & (MSG_TRUNC | MSG_CTRUNC)) || size_t(r.bytes) != len)
    return fail(RecvResult::Malformed);
  std::memcpy(buf, data, len);
  if (fds) std::copy(got, got + r.nfds, fds);
  if (nfds) *nfds = r.nfds;
  return RecvResult::Ok;
}

}  // namespace rplayer::hw::wire
