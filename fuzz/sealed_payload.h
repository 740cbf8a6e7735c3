// Turns fuzzer bytes into validly signed recordings, so that the fuzzers reach past the
// signature check: the fuzzer mutates a *payload* (the header and the six content sections,
// each with a length prefix) and the harness builds the section table, the checksums and
// the signature with a fixed test key that the harness's trust store holds.
//
// Payload layout (little-endian):
//   72 bytes   the file header as is (a shorter payload is zero-padded)
//   6 x        u32 length, then that many bytes of METADATA .. BINDINGS (a length past
//              the end of the payload takes what is left; missing sections are empty)
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "replay/signature.h"

namespace rplayer::fuzz {

// The fuzzers' signing key's public half: the only key in their trust store.
const replay::PublicKey& fuzz_public_key();

// A signed recording file made from `payload` (layout above).
std::vector<uint8_t> seal_payload(std::span<const uint8_t> payload);

// The payload of a recording file (its table and signature dropped): the inverse of
// seal_payload for files whose table is consistent. Empty if the file is too short.
std::vector<uint8_t> payload_of(std::span<const uint8_t> file);

// Re-signs a whole recording file in place with the fuzz key (its last 72 bytes are the
// signature section). False if the file is too short to have one.
bool resign_with_fuzz_key(std::vector<uint8_t>& file);

}  // namespace rplayer::fuzz
