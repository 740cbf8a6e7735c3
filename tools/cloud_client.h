// The device's normal-world side of cloud recording (`rplayer record --cloud`): sends the
// cloud a skeleton of the model (graph, zeroed weights, manifest), relays the secure
// channel's frames between the cloud and the GPU shim TA without being able to read them,
// and checks the signed recording the cloud returns like any other.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cloud/session_wire.h"

namespace rplayer::tools {

struct CloudRecordOptions {
  std::string cloud;  // HOST:PORT of the cloud (or of a relay in front of it)
  std::string model = "squeezenet", sku = "v3d-7.1";
  std::string keys;        // key directory: device.pub (the device's identity), trusted/
  std::string worlds_dir;  // the SoC and TEE processes' run directory (tee_launcher.h)
  cloud::RecordMode mode = cloud::RecordMode::Full;
  int timeout_ms = 120'000;  // the cloud silent this long ends the session
};

struct CloudRecordOutcome {
  std::vector<uint8_t> recording;                       // signed by the cloud, verified here
  std::string stats_json;                               // the cloud's counts for the session
  uint64_t frames = 0, sealed_up = 0, sealed_down = 0;  // relayed (to the cloud, from it)
};

// Throws std::runtime_error with a specific message (cloud unreachable or refusing, TA
// refusing, channel broken, recording not verifying); the TA's session is closed first.
CloudRecordOutcome record_via_cloud(const CloudRecordOptions& o);

}  // namespace rplayer::tools
