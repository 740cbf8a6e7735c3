// A world's SocPort on a SoC running in another process (hw/soc_server.*, the
// rplayer-soc executable), over the protocol in hw/soc_wire.h. Needs none of the SoC
// model, so that a world's process (the TEE included) links only this.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "hw/soc_port.h"
#include "hw/soc_wire.h"

namespace rplayer::hw {

class RemoteSocPort final : public SocPort {
 public:
  // Register accesses, HELLO and CLONE wait this long for their answer; a longer
  // silence counts as a dead SoC.
  static constexpr std::chrono::milliseconds kReplyTimeout{5000};
  // Idle connections kept for reuse; more concurrent callers still get their own.
  static constexpr size_t kMaxIdleConnections = 16;

  // Takes ownership of `fd` (a connected SOCK_SEQPACKET socket), closed on failure too.
  // Does HELLO and maps the world's memory. nullptr and *error on failure.
  static std::unique_ptr<RemoteSocPort> connect_fd(int fd, std::string* error = nullptr);
  // Connects to a SoC's Unix socket (e.g. DIR/normal.sock of rplayer-soc).
  static std::unique_ptr<RemoteSocPort> connect_path(const std::string& path,
                                                     std::string* error = nullptr);
  ~RemoteSocPort() override;
  RemoteSocPort(const RemoteSocPort&) = delete;
  RemoteSocPort& operator=(const RemoteSocPort&) = delete;

  // SocPort. Thread-safe: each call uses a connection of its own, so one thread may
  // block in wait_irq while others access registers. Once the SoC is gone (or stops
  // answering) every call fails fast: reads return 0, writes are dropped, wait_irq
  // returns false at once.
  bool has_block(RegBlock b) const override;
  uint32_t read32(RegBlock b, uint32_t offset) override;
  void write32(RegBlock b, uint32_t offset, uint32_t value) override;
  // Stays mapped (and valid) after the SoC dies. fd: the normal memfd for the normal
  // world; -1 for the secure world, which has no single fd (see carve_out()), as in
  // PhysMemory::window().
  MemoryWindow memory() override;
  int num_irq_lines() const override { return num_irq_lines_; }
  // Waits longer than wire::kMaxWaitUs are split into several requests.
  bool wait_irq(int line, std::chrono::microseconds timeout) override;

  World world() const { return world_; }
  // False once a call found the SoC gone, or the first connection reports a hang-up.
  bool alive() const;
  // Secure world: keep only the carve-out mapped (memory() becomes carve_out()); the
  // normal DRAM is unmapped and its fd closed. False for the normal world.
  bool restrict_to_carve_out();
  // Secure world: the carve-out alone with its own memfd; an empty window otherwise.
  MemoryWindow carve_out() const;
  // For a single-threaded user (the TEE's replayer): every call goes over one connection,
  // in order, and writes are posted (not answered), as MMIO writes are. A write is then in
  // effect before this port's next access, but not necessarily before another port's.
  // Saves one round trip per register write. Not for multi-threaded users (a driver).
  bool use_posted_writes();

  // Connections open for calls (idle ones), not counting the first (HELLO/CLONE) one.
  size_t idle_connections() const;

 private:
  RemoteSocPort() = default;
  bool hello(std::string* error);
  // One request/response on a pooled connection. False if the SoC is gone.
  bool call(const wire::Request& req, wire::Response* resp, std::chrono::milliseconds timeout);
  int acquire_connection();
  void release_connection(int fd);
  int clone_connection();
  void mark_dead();

  int control_fd_ = -1;  // HELLO and CLONE only, so a CLONE never waits behind a wait_irq
  int ordered_fd_ = -1;  // with posted writes: the one connection every call uses
  std::mutex ordered_mu_;
  std::mutex control_mu_;
  mutable std::mutex pool_mu_;
  std::vector<int> idle_;
  mutable std::atomic<bool> alive_{true};

  bool carve_out_only_ = false;
  World world_ = World::Normal;
  int num_irq_lines_ = 0;
  uint8_t block_mask_ = 0;
  uint8_t* base_ = nullptr;
  uint64_t pa_base_ = 0, size_ = 0;
  int num_ranges_ = 0;
  wire::MemoryRange ranges_[wire::kMaxRanges]{};
  int range_fds_[wire::kMaxRanges] = {-1, -1};
};

}  // namespace rplayer::hw
