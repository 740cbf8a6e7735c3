// The cloud's side of one recording session on a connected socket (cloud/session_wire.h):
// checks the device's key, opens the secure channel through the client (which relays it to
// the device's TA), records on the model skeleton over a DriverShim, ends the channel, and
// returns the recording signed with the cloud's key. Used by rplayer-cloud (one session per
// connection) and by tests.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "keyring/keys.h"

namespace rplayer::cloud {

struct CloudServerConfig {
  keyring::KeyPair signing;                        // signs recordings; the cloud's identity
  std::vector<replay::PublicKey> trusted_devices;  // devices whose TAs it will drive
  int io_timeout_ms = 60'000;  // a client silent this long (relay dead, TA stuck) ends it
};

// Serves the session on `fd` (not closed here). Never throws; returns one log line.
std::string serve_session(int fd, const CloudServerConfig& cfg);

}  // namespace rplayer::cloud
