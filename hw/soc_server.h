// Serves a ModeledSoc's per-world ports over Unix sockets (protocol: hw/soc_wire.h,
// docs/soc-process.md), so that each world's software can run in its own process and
// reach the SoC only through the world it was given.
#pragma once

#include <atomic>
#include <cstddef>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "hw/soc.h"

namespace rplayer::hw {

class SocServer {
 public:
  // Per world, so that a runaway normal-world client cannot starve the secure world.
  static constexpr size_t kMaxConnectionsPerWorld = 256;

  // `soc` must outlive the server (or its stop()).
  explicit SocServer(ModeledSoc& soc);
  ~SocServer();  // stop()
  SocServer(const SocServer&) = delete;
  SocServer& operator=(const SocServer&) = delete;

  // Serves a connected SOCK_SEQPACKET socket as world `w` on a new thread until the peer
  // disconnects, sends a malformed request, or stop(). Takes ownership of `fd` (closed
  // on refusal too). False if stopping or at the world's connection limit.
  bool serve_connection(int fd, World w);

  // Creates a Unix socket at `path` and serves every accepted connection as `w` (an
  // accept thread). A stale socket file at `path` is replaced. One listener per server.
  bool listen(const std::string& path, World w, std::string* error = nullptr);

  // Stops accepting, removes the listening socket file, disconnects every client and
  // joins all threads (a thread in WAIT_IRQ notices within one wait slice). Idempotent.
  void stop();

  // Connections being served (finished ones are not counted).
  size_t active_connections() const;

 private:
  struct Connection;
  void serve(Connection& c);
  bool wait_irq_sliced(SocPort& port, int fd, int line, uint64_t timeout_us);
  void accept_loop(World w, int listen_fd, int wake_fd);  // fds closed by stop() after the join
  void reap_finished_locked();

  ModeledSoc& soc_;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mu_;
  std::list<std::unique_ptr<Connection>> connections_;
  int listen_fd_ = -1;
  int wake_fd_ = -1;  // eventfd that ends the accept loop
  std::string listen_path_;
  std::thread accept_thread_;
};

}  // namespace rplayer::hw
