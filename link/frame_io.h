// Length-prefixed frames over a file descriptor (a TCP or Unix socket, a pipe): a u32
// little-endian length, then that many bytes. Waits are poll()-bounded, EINTR is retried,
// partial reads and writes are continued; no exceptions. Carries SecureChannel messages
// between the cloud and the device's normal world (link/secure_channel.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace rplayer::link {

inline constexpr size_t kFramePrefixBytes = 4;
inline constexpr size_t kMaxFrameBytes = UINT32_MAX;

// Writes one frame. timeout_ms bounds the whole frame (< 0: no bound); it matters only when
// the descriptor is non-blocking or its peer stops reading. A socket whose peer is gone gives
// false (EPIPE), not SIGPIPE. On false, *err (may be null) says why and the stream position is
// undefined: close the descriptor.
bool write_frame(int fd, std::span<const uint8_t> payload, std::string* err, int timeout_ms = -1);

enum class FrameResult : uint8_t {
  Ok,
  Closed,     // clean end of stream before the first byte of a frame
  Timeout,    // timeout_ms passed before the frame was complete
  TooLarge,   // the length prefix exceeds max_bytes (the body is not read)
  Truncated,  // end of stream inside a frame (prefix or body)
  IoError,    // read or poll error, invalid descriptor
};
const char* frame_result_name(FrameResult r);

// Reads one frame of at most max_bytes into *out (replaced). timeout_ms bounds the whole
// frame (< 0: wait forever, 0: only what is already there). After any result but Ok the
// stream position is undefined (a Timeout may have consumed part of a frame): close the
// descriptor. The buffer grows as bytes arrive, so a
// peer announcing a large frame and not sending it costs no more memory than it sent.
FrameResult read_frame(int fd, size_t max_bytes, int timeout_ms, std::vector<uint8_t>* out);

}  // namespace rplayer::link
