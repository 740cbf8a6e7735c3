// Serves a TeeCore on a Unix socket: the emulated SMC channel between normal-world clients
// (tee/teec) and rplayer-tee. SOCK_SEQPACKET (message boundaries, connection state), one
// thread per client, strict request/reply per connection (tee/smc_wire.h).
//
// Nothing from the wire is trusted: framing (size, magic, version, payload length) is
// checked here and answered with TEE_ERROR_BAD_FORMAT/origin COMMS; parameters are decoded
// with bounds checks and then validated by the core. A malformed message gets an error
// reply and the connection keeps being served; descriptors are accepted only with
// REGISTER_SHM (one memfd) and closed in every case. Replies use MSG_NOSIGNAL: a dead
// client never raises SIGPIPE.
#pragma once

#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "tee/core/tee_core.h"

namespace rplayer::tee {

class SmcServer {
 public:
  struct Options {
    uint32_t max_clients = 64;  // further connections are closed at once
  };

  // Creates the stop pipe: construct before enter_sandbox().
  explicit SmcServer(TeeCore& core) : SmcServer(core, Options{}) {}
  SmcServer(TeeCore& core, Options options);
  // stop(), then waits for the client threads run() started. A thread inside run() or
  // serve_fd() must have returned first.
  ~SmcServer();
  SmcServer(const SmcServer&) = delete;
  SmcServer& operator=(const SmcServer&) = delete;

  // Binds and listens on path (a stale socket file there is replaced; the file is not
  // removed on stop: unlink is not allowed in the sandbox). Call before enter_sandbox().
  bool listen(const std::string& path, std::string* error);
  // Accepts clients, one thread each, until stop(). Blocking.
  void run();
  // Serves one connected SOCK_SEQPACKET socket until the peer goes away or stop(); takes
  // ownership of fd. Blocking. On return the client's sessions are closed.
  void serve_fd(int fd);
  // Wakes run() and shuts down every served socket; a TA call in progress completes first.
  // Any thread, idempotent.
  void stop();

 private:
  struct Worker {
    std::thread thread;
    std::atomic<bool> done{false};
  };
  struct Reply;
  void handle(TeeCore::ClientId client, const uint8_t* msg, size_t n, int msg_flags,
              const std::vector<int>& fds, Reply* reply);
  void reap_workers(bool all);

  TeeCore& core_;
  Options options_;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  std::mutex mu_;
  bool stopping_ = false;
  std::set<int> active_fds_;  // guarded by mu_
  std::list<std::unique_ptr<Worker>> workers_;  // run()'s thread only
};

}  // namespace rplayer::tee
