#include "replay/signature.h"

#include <sodium.h>

namespace rplayer::replay {

bool crypto_ready() { return sodium_init() >= 0; }

KeyId key_id(const PublicKey& key) {
  uint8_t digest[32];
  crypto_generichash(digest, sizeof digest, key.data(), key.size(), nullptr, 0);
  KeyId id;
  for (size_t i = 0; i < id.size(); ++i) id[i] = digest[i];
  return id;
}

Digest content_digest(std::span<const uint8_t> bytes) {
  Digest d;
  crypto_generichash(d.data(), d.size(), bytes.data(), bytes.size(), nullptr, 0);
  return d;
}

SigResult verify_signature(std::span<const uint8_t> message, const KeyId& id,
                           const uint8_t (&signature)[kSignatureBytes],
                           std::span<const PublicKey> trusted) {
  if (!crypto_ready()) return SigResult::CryptoInit;
  // Ids are 64 bits, so two trusted keys may share one: try each, accept if any verifies.
  SigResult result = SigResult::UnknownKey;
  for (const PublicKey& key : trusted) {
    if (key_id(key) != id) continue;
    // libsodium rejects non-canonical S and small-order keys/points: no malleable variants.
    if (crypto_sign_verify_detached(signature, message.data(), message.size(), key.data()) == 0) {
      return SigResult::Ok;
    }
    result = SigResult::BadSignature;
  }
  return result;
}

}  // namespace rplayer::replay
