// A user-space link emulator: a TCP relay that delays, jitters and rate-limits what it
// forwards. For testing and benchmarking the cloud <-> device link at realistic latencies on
// machines whose kernels have no netem qdisc. `rplayer netem` runs one; tests and benchmarks
// run it in-process.
//
// Every accepted connection gets its own connection to the target, and both directions are
// relayed through a queue: what is read at time t is written at
//   release = max(tx_end + rtt/2 + jitter, previous chunk's release)
//   tx_end  = max(t, previous chunk's tx_end) + bytes * 8 / rate   (t when the rate is 0)
// with jitter uniform in [-jitter, +jitter] per chunk (the one-way delay never below 0).
// The max keeps bytes in order. Chunks are at most 64 KiB, and with a rate at most ~1 ms of
// transmission (>= 1448 bytes), so that a rate limit paces rather than bursts.
// An EOF is forwarded (shutdown(SHUT_WR)) when the data before it has been delivered, at the
// delay a chunk would have; a reset or error on either side resets both at once. A direction
// holding `max_in_flight` bytes stops reading from its source until half of it has drained.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace rplayer::tools {

struct NetemParams {
  double rtt_ms = 0;     // round-trip time: rtt/2 added in each direction
  double jitter_ms = 0;  // +- per chunk, uniform; never reorders
  double rate_mbit = 0;  // per direction, 10^6 bit/s; 0 = unlimited
  uint64_t seed = 1;     // jitter's random numbers (per connection and direction)
  size_t max_in_flight = size_t{64} << 20;  // bytes per direction before backpressure
  // Connection events (`error` false: accepted, connected, EOF, closed) and errors (failed
  // connects, resets). Called on the relay's thread; null: silent.
  std::function<void(bool error, const std::string& line)> log;
};

class NetemRelay {
 public:
  // Listens on `listen_addr` ("HOST:PORT", HOST an IPv4 address or `localhost`; port 0 picks
  // a free one) and relays every accepted connection to `connect_addr` (same form, nonzero
  // port; connected per accepted connection, so a target that is down is only reported then).
  // Null and `*err` set for a bad address or parameter or when the listen socket fails.
  static std::unique_ptr<NetemRelay> start(const std::string& listen_addr,
                                           const std::string& connect_addr,
                                           const NetemParams& params, std::string* err);
  ~NetemRelay();  // stop()
  NetemRelay(const NetemRelay&) = delete;
  NetemRelay& operator=(const NetemRelay&) = delete;

  uint16_t port() const;                // the listening port (the picked one for port 0)
  std::string listen_address() const;   // "HOST:PORT" with that port
  std::string connect_address() const;  // "HOST:PORT" of the target

  // Stops listening and closes every connection (both sides), then joins the relay's
  // thread. Idempotent. Not from `NetemParams::log` (that runs on the relay's thread).
  void stop();

  struct Stats {
    uint64_t bytes_up = 0;         // delivered client -> target
    uint64_t bytes_down = 0;       // delivered target -> client
    uint64_t connections = 0;      // accepted so far
    uint64_t active = 0;           // open now
    uint64_t failed_connects = 0;  // accepted connections whose target could not be reached
    uint64_t peak_in_flight = 0;   // most bytes one direction held at once
  };
  Stats stats() const;

  struct Impl;

 private:
  explicit NetemRelay(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Parses "HOST:PORT" (HOST IPv4 dotted quad or `localhost`) into an IPv4 address and port in
// host byte order. False and `*err` when malformed.
bool parse_ipv4_endpoint(const std::string& s, uint32_t* addr, uint16_t* port, std::string* err);

}  // namespace rplayer::tools
