// Target 4: the SoC bus protocol (hw/soc_wire.h) as the SoC process serves it: request
// validation, the register accesses, interrupt waits, HELLO's memory ranges and CLONE.
//
// Input: byte 0 picks the world (bit 0 set: secure, else normal, the hostile one), byte 1
// the SKU; then requests of 33 bytes each: `u8 flags, 32-byte wire::Request`, sent in
// order on one connection that a SocServer over a fresh hw::ModeledSoc serves (state does
// not leak between executions). Flag bit 0 fixes magic and version, so that mutations
// reach the ops. A WAIT_IRQ's timeout is cut to under 2 ms when it is valid (a valid
// request may wait up to 10 s: bounded by design, but too long for a fuzzer).
//
// Oracles besides the sanitizers: every answered request gets a well-formed response for
// its op; a normal-world HELLO never hands out the secure carve-out; fds that arrive are
// closed (no leak across millions of executions shows as EMFILE).
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "hw/soc.h"
#include "hw/soc_server.h"
#include "hw/soc_wire.h"

using namespace rplayer;
using namespace rplayer::hw;

namespace {

[[noreturn]] void fail(const char* what, int i) {
  std::fprintf(stderr, "ORACLE: %s (request %d)\n", what, i);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const World world = (data[0] & 1) ? World::Secure : World::Normal;
  SocConfig cfg;
  cfg.sku = (data[1] & 1) ? "v3d-4.2" : "v3d-7.1";
  cfg.normal_bytes = 4ull << 20;
  cfg.secure_bytes = 1ull << 20;
  cfg.device_threads = 1;
  cfg.timing.scale = 0.1;
  ModeledSoc soc(cfg);
  const uint64_t carve_base = soc.memory().secure_base();
  SocServer server(soc);
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) std::abort();
  if (!server.serve_connection(sv[1], world)) std::abort();
  const int sock = sv[0];
  size_t pos = 2;
  for (int i = 0; size - pos >= 1 + sizeof(wire::Request) && i < 64; ++i) {
    const uint8_t flags = data[pos];
    wire::Request req;
    std::memcpy(&req, data + pos + 1, sizeof req);
    pos += 1 + sizeof req;
    if (flags & 1) {
      req.magic = wire::kMagic;
      req.version = wire::kVersion;
    }
    if (wire::Op(req.op) == wire::Op::WaitIrq && req.timeout_us <= wire::kMaxWaitUs)
      req.timeout_us %= 2000;
    if (!wire::send_message(sock, &req, sizeof req)) break;  // the server dropped us
    if (wire::Op(req.op) == wire::Op::Write32Posted) continue;  // no answer by design
    wire::Response resp;
    int fds[wire::kMaxRanges] = {-1, -1};
    int nfds = 0;
    const wire::RecvResult r =
        wire::recv_message(sock, &resp, sizeof resp, fds, wire::kMaxRanges, &nfds, 5000);
    for (int f = 0; f < nfds; ++f) close(fds[f]);
    if (r == wire::RecvResult::Closed) break;  // a malformed request drops the client
    if (r != wire::RecvResult::Ok) fail("no well-formed response", i);
    if (resp.magic != wire::kMagic || resp.version != wire::kVersion || resp.op != req.op)
      fail("response does not match its request", i);
    if (wire::Op(req.op) == wire::Op::Hello) {
      if (resp.num_ranges != nfds || resp.num_ranges < 1 || resp.num_ranges > wire::kMaxRanges)
        fail("HELLO's ranges do not match its fds", i);
      if (world == World::Normal) {
        if (resp.num_ranges != 1) fail("HELLO gave the normal world a second range", i);
        const wire::MemoryRange& m = resp.ranges[0];
        if (m.pa_base + m.size > carve_base) fail("normal-world range reaches the carve-out", i);
      }
    }
  }
  close(sock);
  server.stop();
  return 0;
}
