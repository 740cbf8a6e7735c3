// Encoder of the signed recording format (docs/recording-format.md): Recording -> bytes.
//
// Untrusted side: runs where the recording is made, reports problems by exception.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <vector>

#include "keyring/keys.h"
#include "replay/recording.h"

namespace rplayer::record {

class EncodeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// zstd level of page blobs. Part of the canonical form: the same recording, level and zstd
// version give the same bytes.
inline constexpr int kZstdLevel = 3;

// Puts the blob table in the only form the format stores: one blob per distinct nonzero
// page content, in the order loads first use them, hashes recomputed; all-zero pages become
// kZeroBlob loads and unreferenced blobs are dropped. Loads are renumbered to match.
// decode_recording(encode_recording(rec)) == canonicalize(copy of rec).
void canonicalize(replay::Recording& rec);

// Encodes and signs `rec` (its blob table canonicalized on the fly, `rec` is not changed).
// Throws EncodeError when the recording cannot be represented: a limit exceeded, a
// reference out of range, an ActionOp field set that its op does not encode. The output is
// decoded again with key.public_key before it is returned, so whatever the trusted decoder
// would reject is reported here, with the decoder's message.
std::vector<uint8_t> encode_recording(const replay::Recording& rec, const keyring::KeyPair& key);

}  // namespace rplayer::record
