// A recording as a Chrome / Perfetto trace (the legacy JSON trace-event format, which
// ui.perfetto.dev and chrome://tracing open): one track per kind of activity.
//
// A recording has no wall-clock time, only the order of the conversation, so the timeline is
// modeled, not measured (constants below): it shows the shape of a workload (how the register
// traffic, cache maintenance, waits and memory syncs of each job compare), not its speed.
//   - register access (write or read): kAccessUs each; consecutive ones form one burst
//   - poll: kPollUs (the driver's polls end after a few reads), at most its timeout
//   - interrupt wait: kIrqBaseUs + kBatchUs per round of batches the dispatches since the
//     previous wait ask for (workgroups x batches per workgroup / QPUs of the SKU), at most
//     its timeout
//   - memory sync (LoadMemory): kPageUs per page
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "tools/inspect.h"

namespace rplayer::tools {

inline constexpr uint64_t kAccessUs = 1;
inline constexpr uint64_t kPollUs = 2;
inline constexpr uint64_t kIrqBaseUs = 5;
inline constexpr uint64_t kBatchUs = 1;
inline constexpr uint64_t kPageUs = 1;

// Track ids (the trace's "tid"), in display order.
enum TraceTrack : int {
  kTrackJobs = 1,
  kTrackRegisters = 2,
  kTrackPolls = 3,
  kTrackInterrupts = 4,
  kTrackMemory = 5,
};

// {"traceEvents": [...], "displayTimeUnit": "ms", "otherData": {...}}: "X" complete events
// (category "job", "registers", "poll", "irq", "memory"), "i" instant events for each
// dispatch on the jobs track, and "M" metadata naming the process and tracks.
nlohmann::json chrome_trace(const Inspection& ins, const std::string& title = "recording");

}  // namespace rplayer::tools
