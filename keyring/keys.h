// Ed25519 signing keys for recordings and the trust store of public keys that may sign them.
//
// Files are text: hex digits, one key per line; '#' starts a comment. A public key file may
// also be the 32 raw key bytes. Secret key files are created with mode 0600 and refused when
// group or others may read them.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "replay/signature.h"

namespace rplayer::keyring {

class KeyError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

inline constexpr size_t kSecretKeyBytes = 64;  // libsodium layout: seed || public key

struct KeyPair {
  replay::PublicKey public_key{};
  std::array<uint8_t, kSecretKeyBytes> secret_key{};
};

KeyPair generate_keypair();
// Deterministic, for tests and reproducible fixtures.
KeyPair keypair_from_seed(const std::array<uint8_t, 32>& seed);

std::string to_hex(std::span<const uint8_t> bytes);
std::string key_id_hex(const replay::PublicKey& key);

// Secret key file: one line of 128 hex digits. Loading checks that the public half matches
// the seed, which catches corrupted files.
void save_secret_key(const std::filesystem::path& path, const KeyPair& key);
KeyPair load_secret_key(const std::filesystem::path& path);

void save_public_key(const std::filesystem::path& path, const replay::PublicKey& key);
replay::PublicKey load_public_key(const std::filesystem::path& path);

struct TrustedKey {
  replay::PublicKey key{};
  replay::KeyId id{};
  std::string source;  // file it came from
};

// The public keys whose recordings a replayer accepts.
class TrustStore {
 public:
  // A directory: every "*.pub" file in it (in name order). A file: a public key file, or
  // any number of hex key lines.
  static TrustStore load(const std::filesystem::path& path);

  // Adds a key; a key already present is ignored.
  void add(const replay::PublicKey& key, std::string source = {});
  // Writes one "# key id" comment and one hex line per key.
  void save(const std::filesystem::path& path) const;

  const std::vector<TrustedKey>& entries() const { return entries_; }
  // The list decode_recording() takes.
  std::vector<replay::PublicKey> keys() const;
  const TrustedKey* find(const replay::KeyId& id) const;

 private:
  std::vector<TrustedKey> entries_;
};

}  // namespace rplayer::keyring
