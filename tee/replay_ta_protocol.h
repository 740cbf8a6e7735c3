// The replay TA's commands, shared by the TA (secure world) and its client application.
//
//   LOAD_RECORDING  p0 MEMREF_INPUT   the signed recording file
//                   p1 VALUE_OUTPUT   a = handle, b = number of output scores
//                   p2 MEMREF_OUTPUT  (optional) why a load was refused, as text
//   RUN             p0 VALUE_INPUT    a = handle, b = k | input kind << 16
//                   p1 MEMREF_INPUT   an image file (JPEG, PNG, PGM...: decoded and
//                                     normalized inside the TA) or a float32 tensor
//                   p2 MEMREF_OUTPUT  k x TopEntry, best first; k = 0: all scores as
//                                     float32 (refused when the TA restricts to top-k)
//                   p3 MEMREF_OUTPUT  (optional) RunStats
//   UNLOAD          p0 VALUE_INPUT    a = handle
//
// Loaded recordings belong to the session that loaded them; closing the session (or
// the client dying) unloads them.
#pragma once

#include <cstdint>

namespace rplayer::tee {

// {72706c61-7965-7200-7265-706c61797461}: "rplayer\0replayta"
struct ReplayTaUuid {
  static constexpr uint32_t time_low = 0x72706c61;
  static constexpr uint16_t time_mid = 0x7965;
  static constexpr uint16_t time_hi_and_version = 0x7200;
  static constexpr uint8_t clock_seq_and_node[8] = {'r', 'e', 'p', 'l', 'a', 'y', 't', 'a'};
};

enum ReplayTaCommand : uint32_t {
  kReplayTaLoadRecording = 1,
  kReplayTaRun = 2,
  kReplayTaUnload = 3,
};

enum ReplayTaInput : uint32_t {
  kReplayInputImage = 0,   // an encoded image file
  kReplayInputTensor = 1,  // float32 in the recording's input layout
};

struct TopEntry {
  uint32_t cls;
  float prob;
};

// Microseconds of wall time inside the TA for one RUN.
struct RunStats {
  uint32_t preprocess_us = 0;  // image decode + resize + normalize
  uint32_t quiesce_us = 0;     // the normal-world driver draining and suspending
  uint32_t switch_in_us = 0;   // the hardware world switch to secure
  uint32_t replay_us = 0;      // Replayer::run (GPU setup, jobs, outputs, scrub)
  uint32_t switch_out_us = 0;  // the hardware world switch back
  uint32_t resume_us = 0;      // the normal-world driver re-initializing (if awaited)
  uint32_t total_us = 0;
  uint32_t jobs = 0;
  uint32_t forced = 0;  // the normal world did not acknowledge the claim in time
  uint32_t pages_loaded = 0;
  uint32_t pages_skipped = 0;
  uint32_t pages_scrubbed = 0;
  uint32_t deferred_us = 0;  // the claim waited: the normal world's share of the GPU
  char error[160] = {};      // on failure: what went wrong, where (NUL-terminated text)
};

}  // namespace rplayer::tee
