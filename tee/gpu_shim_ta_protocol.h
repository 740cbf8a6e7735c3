// The GPU shim TA's commands (cloud recording), shared by the TA (secure world) and its
// client application, which only relays what the TA and the cloud say to each other
// through an end-to-end secure channel (link/secure_channel.h).
//
//   CONNECT   p0 MEMREF_INPUT   the cloud's channel hello
//             p1 MEMREF_INPUT   the cloud's Ed25519 public key: must be one the TEE trusts
//                               (the key that signs its recordings)
//             p2 MEMREF_OUTPUT  the channel reply, then the sealed hello (link::ShimHello):
//                               u32 reply length (LE), reply, sealed hello
//             p3 MEMREF_OUTPUT  (optional) why it was refused, as text
//   EXCHANGE  p0 MEMREF_INPUT   a sealed request frame; empty: go on with a pending wait
//             p1 MEMREF_OUTPUT  the sealed reply (size 0 while pending)
//             p2 VALUE_OUTPUT   a = 1: a wait is pending, call again with an empty p0;
//                               b = 1: the session is over (the cloud's final message was
//                               acknowledged, or the device refused a frame: p1 holds the
//                               sealed refusal for the cloud, p3 the reason)
//             p3 MEMREF_OUTPUT  (optional) why the session ended, as text
//             Errors (channel refused the message, bad state): the session is over too.
//   CLOSE     no parameters: ends the recording session (GPU reset, pool scrubbed, GPU
//             back to the normal world)
//
// CONNECT claims the GPU from the normal world for the session; a sealed final message
// from the cloud (the recording is complete), any refusal, a channel error, CLOSE, or the
// client's session ending (the client died) release it. One recording session at a time.
#pragma once

#include <cstdint>

namespace rplayer::tee {

// {72706c61-7965-7200-6770-7573686d7461}: "rplayer\0gpushmta"
struct GpuShimTaUuid {
  static constexpr uint32_t time_low = 0x72706c61;
  static constexpr uint16_t time_mid = 0x7965;
  static constexpr uint16_t time_hi_and_version = 0x7200;
  static constexpr uint8_t clock_seq_and_node[8] = {'g', 'p', 'u', 's', 'h', 'm', 't', 'a'};
};

enum GpuShimTaCommand : uint32_t {
  kGpuShimConnect = 1,
  kGpuShimExchange = 2,
  kGpuShimClose = 3,
};

}  // namespace rplayer::tee
