// What differs between two decoded recordings, and where: header, metadata, regions,
// tensor and weight bindings, the action stream, and the memory images each region gets.
// For comparing a cloud recording with a local one, or two recordings of one's own model.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "replay/recording.h"

namespace rplayer::tools {

struct DiffOptions {
  bool ignore_wait_bounds = false;  // poll and interrupt-wait timeouts (they follow timing)
  bool ignore_metadata = false;
  size_t max_listed = 20;  // differences listed per section (all are counted)
};

struct DiffSection {
  std::string name;               // "header", "metadata", "regions", ...
  size_t count = 0;               // differences found
  std::vector<std::string> what;  // the first max_listed, each "where: a vs b"
};

struct RecordingDiff {
  std::vector<DiffSection> sections;  // every section, in format order
  bool identical() const;
  std::string text() const;  // one line per difference, a summary line per section
  nlohmann::json json() const;
};

RecordingDiff diff_recordings(const replay::Recording& a, const replay::Recording& b,
                              const DiffOptions& opts = {});

}  // namespace rplayer::tools
