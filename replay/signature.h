// Ed25519 signature check of a recording against a trust store (part of the trusted core).
// Keys are named by an 8-byte id so that a recording says which key signed it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "replay/recording.h"

namespace rplayer::replay {

inline constexpr size_t kPublicKeyBytes = 32;
inline constexpr size_t kSignatureBytes = 64;
inline constexpr size_t kKeyIdBytes = 8;
using PublicKey = std::array<uint8_t, kPublicKeyBytes>;
using KeyId = std::array<uint8_t, kKeyIdBytes>;

enum class SigResult : uint8_t { Ok, UnknownKey, BadSignature, CryptoInit };

// Initialises libsodium once (thread-safe, idempotent); false if it cannot.
bool crypto_ready();

// The first 8 bytes of BLAKE2b-256 (unkeyed) of the public key.
KeyId key_id(const PublicKey& key);

// BLAKE2b-256 of `bytes` (weight bindings, model files).
Digest content_digest(std::span<const uint8_t> bytes);

// Verifies `signature` over `message` with every trusted key whose id is `id`.
SigResult verify_signature(std::span<const uint8_t> message, const KeyId& id,
                           const uint8_t (&signature)[kSignatureBytes],
                           std::span<const PublicKey> trusted);

}  // namespace rplayer::replay
