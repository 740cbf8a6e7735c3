// The messages between the device's client application and the cloud, around the secure
// channel's frames (each message is one link/frame_io.h frame on the TCP connection):
//
//   client -> cloud  REQUEST    what to record: the mode, the device's public key, the model
//                               skeleton (graph, zeroed weights file, manifest)
//   cloud -> client  HELLO      the cloud's public key and the channel's hello (for the TA)
//   client -> cloud  CONNECTED  the TA's channel reply and its sealed ShimHello
//   both ways        sealed frames (link/shim_wire.h inside link/secure_channel.h), until
//                    the cloud's sealed final message and the TA's sealed acknowledgement
//   cloud -> client  RESULT     the signed recording, or why there is none, and the counts
//
// The request comes from the device's normal world, which chooses what to record anyway;
// nothing in it is secret (the weights are zeroed). The cloud decodes it as hostile input:
// every length bounded, nothing left over.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "cloud/driver_shim.h"
#include "cloud/model_skeleton.h"
#include "replay/signature.h"

namespace rplayer::cloud {

enum class RecordMode : uint8_t { Naive = 0, Deferral = 1, Full = 2 };
const char* record_mode_name(RecordMode m);
bool parse_record_mode(const std::string& s, RecordMode* m);
DriverShimOptions options_for(RecordMode m);

struct RecordRequest {
  RecordMode mode = RecordMode::Full;
  replay::PublicKey device_key{};
  ModelSkeleton model;
};

inline constexpr size_t kMaxRequestBytes = 512u << 20;

std::vector<uint8_t> encode_request(const RecordRequest& r);
// False with *why for anything malformed or over the limits.
bool decode_request(std::span<const uint8_t> bytes, RecordRequest* r, std::string* why);

struct CloudHello {
  replay::PublicKey cloud_key{};
  std::vector<uint8_t> channel_hello;
};
std::vector<uint8_t> encode_hello(const CloudHello& h);
bool decode_hello(std::span<const uint8_t> bytes, CloudHello* h);

struct RecordResult {
  bool ok = false;
  std::string error;               // !ok: why
  std::vector<uint8_t> recording;  // ok: the signed recording file
  std::string stats_json;          // the session's counts (LinkCounts, times), as JSON
};
std::vector<uint8_t> encode_result(const RecordResult& r);
bool decode_result(std::span<const uint8_t> bytes, RecordResult* r);

}  // namespace rplayer::cloud
