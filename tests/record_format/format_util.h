// Helpers for the recording format tests: sample and random recordings, a little-endian
// byte builder, and resealing (checksums + signature) of hand-edited files.
#pragma once

#include <array>
#include <cstdint>
#include <ostream>
#include <string_view>
#include <vector>

#include "keyring/keys.h"
#include "record/encoder.h"
#include "replay/decoder.h"

namespace rplayer::replay {
// Readable gtest output for the error codes.
void PrintTo(DecodeCode code, std::ostream* os);
void PrintTo(SectionType type, std::ostream* os);
}  // namespace rplayer::replay

namespace rplayer::test {

using Bytes = std::vector<uint8_t>;

// Deterministic keys: `trusted_key()` is in the test trust store, `other_key()` is not.
const keyring::KeyPair& trusted_key();
const keyring::KeyPair& other_key();
std::vector<replay::PublicKey> trust_store();

// A small recording using every section, op and enum kind once.
replay::Recording small_recording();

// Random recording; already canonical unless `raw_blobs` (then blobs contain duplicates,
// zero pages and unreferenced pages for the encoder to canonicalize).
replay::Recording random_recording(uint32_t seed, bool raw_blobs);

// Little-endian builder.
struct B {
  Bytes v;
  B& u8(uint8_t x);
  B& u16(uint16_t x);
  B& u32(uint32_t x);
  B& u64(uint64_t x);
  B& str(std::string_view s);  // u16 length + bytes
  B& raw(const Bytes& b);
  operator Bytes() const { return v; }
};

// A file cut into header and section payloads (signature section dropped).
struct Parts {
  Bytes header;               // kHeaderBytes
  std::array<Bytes, 6> body;  // METADATA .. BINDINGS
  Bytes& section(replay::SectionType t) { return body[static_cast<size_t>(t) - 1]; }
};
Parts split(const Bytes& file);
// Rebuilds a consistent table (checksums) and signs with `key`.
Bytes seal(const Parts& parts, const keyring::KeyPair& key = trusted_key());
// Re-signs in place: the last 72 bytes are the signature section, over everything before.
void resign(Bytes& file, const keyring::KeyPair& key = trusted_key());
// Byte offset of field `field_offset` of table entry `entry`.
size_t table_field(uint32_t entry, size_t field_offset);
void put_u64(Bytes& file, size_t at, uint64_t v);
void put_u32(Bytes& file, size_t at, uint32_t v);

replay::DecodeError decode(const Bytes& file, replay::Recording* out = nullptr);

}  // namespace rplayer::test
