// An end-to-end authenticated and encrypted channel between two parties that pin each other's
// static X25519 public key: the cloud (initiator) and the device's TA (responder). The normal
// world in between only relays the bytes: it can neither read, forge, replay, reorder nor
// drop messages undetected (docs/threat-model.md, "The cloud link").
//
// A state machine without sockets (bytes in, bytes out), so that a TA without sockets and
// the cloud over TCP (link/frame_io.h) both use it. Secure-world rules: no exceptions, no
// RTTI, no iostreams; every size is bounded by the maximum message size given at
// construction. Not thread-safe: one channel is used by one thread at a time.
//
//   initiator                           responder
//   start(&hello)        ── hello ──>   respond(hello, &reply)
//   finish(reply)        <── reply ──
//   seal / open          <── sealed ──> seal / open
//
// Wire format (docs/threat-model.md, "The cloud link"):
//   hello  = "RPLK" 01 01 | initiator's ephemeral X25519 key                     (38 bytes)
//   reply  = "RPLK" 01 02 | responder's ephemeral X25519 key | confirmation tag  (70 bytes)
//   sealed = [stream header, first message of a direction only] | secretstream message
// Keys: h = BLAKE2b(label, both static keys, hello, reply's first 38 bytes); session =
// BLAKE2b keyed by h over the X25519 results ee, es, se, ss; crypto_kdf gives one
// secretstream key per direction and the key of the tag BLAKE2b(h) that the reply carries.
//
// Every error kills the channel and wipes its secrets (all later calls return
// ChannelError::Dead), except seal()'s TooLarge, which consumes nothing. A channel whose
// constructor failed (CryptoInit, InvalidArgument) returns that error from every call.
#pragma once

#include <sodium.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace rplayer::link {

inline constexpr size_t kKeyBytes = 32;
// The largest max_message a channel accepts (the frame length prefix is 32 bits).
inline constexpr size_t kMaxMessageLimit = size_t{1} << 28;
// Handshake message sizes: magic "RPLK", version, type, then the ephemeral public key; the
// reply adds the responder's key-confirmation tag.
inline constexpr size_t kHelloBytes = 4 + 1 + 1 + kKeyBytes;
inline constexpr size_t kReplyBytes = kHelloBytes + 32;
// Per sealed message: the authentication tag and tag byte; the first message of each
// direction is also prefixed with that direction's stream header.
inline constexpr size_t kSealOverhead = crypto_secretstream_xchacha20poly1305_ABYTES;
inline constexpr size_t kStreamHeaderBytes = crypto_secretstream_xchacha20poly1305_HEADERBYTES;

// A party's static channel identity (X25519).
struct KxKeyPair {
  uint8_t pk[kKeyBytes];
  uint8_t sk[kKeyBytes];
};

// A party's Ed25519 signing key (keyring/keys.h: seed || public key) is also its channel
// identity: the X25519 key pair derived from it. False if libsodium cannot be initialized or
// the public half does not belong to the seed.
bool kx_from_signing_key(const uint8_t ed25519_sk[64], KxKeyPair* out);
// The X25519 public key to pin for a peer known by its Ed25519 public key. False for a key
// that is not a valid Ed25519 point.
bool kx_public_from_signing_public(const uint8_t ed25519_pk[32], uint8_t out[kKeyBytes]);

enum class Role : uint8_t { Initiator, Responder };  // Initiator = cloud, Responder = device

enum class ChannelError : uint8_t {
  Ok,
  CryptoInit,        // libsodium failed to initialize
  InvalidArgument,   // max_message 0 or above kMaxMessageLimit, null output pointer
  WrongState,        // a call out of order (start() on a responder, seal() before the handshake)
  BadHandshake,      // hello or reply malformed: size, magic, version or type
  WeakKey,           // a key exchange gave the all-zero result (a low-order point)
  KeyConfirmFailed,  // the reply's tag is wrong: the peer lacks the pinned key, or tampering
  TooLarge,          // above the maximum message size
  Truncated,         // shorter than the smallest valid sealed message
  AuthFailed,        // open(): forged, modified, replayed, reordered, dropped, other session
  UnexpectedTag,     // open(): a stream tag this protocol never sends
  Finished,          // that direction already ended with a final message
  Dead,              // an earlier error killed the channel
};
const char* channel_error_name(ChannelError e);

class SecureChannel {
 public:
  // peer_pk: the pinned static public key of the other party. max_message bounds every
  // plaintext, sealed and received.
  SecureChannel(Role role, const KxKeyPair& own, const uint8_t peer_pk[kKeyBytes],
                size_t max_message);
  ~SecureChannel();
  SecureChannel(const SecureChannel&) = delete;
  SecureChannel& operator=(const SecureChannel&) = delete;

  // Initiator: the hello message (kHelloBytes).
  ChannelError start(std::vector<uint8_t>* hello);
  // Responder: takes the hello, derives the session keys, returns the reply (kReplyBytes).
  // The channel is established afterwards; the initiator's identity is confirmed by its
  // first message opening (only the holder of the pinned key can seal it).
  ChannelError respond(std::span<const uint8_t> hello, std::vector<uint8_t>* reply);
  // Initiator: takes the reply and checks its key-confirmation tag: KeyConfirmFailed unless
  // the responder holds the pinned key and both saw the same hello and reply.
  ChannelError finish(std::span<const uint8_t> reply);

  // Encrypts one message (at most max_message bytes) into *out (replaced). final = true ends
  // this direction: the peer's open() reports it, later seal()s return Finished.
  ChannelError seal(std::span<const uint8_t> plain, std::vector<uint8_t>* out, bool final = false);
  // Decrypts the next message of the peer's stream into *plain (replaced). Messages must be
  // opened exactly once each, in the order they were sealed.
  ChannelError open(std::span<const uint8_t> sealed, std::vector<uint8_t>* plain,
                    bool* final = nullptr);

  bool established() const { return state_ == State::Established; }
  bool dead() const { return state_ == State::Dead; }
  // The peer sealed its final message and it has been opened.
  bool peer_finished() const { return rx_finished_; }
  size_t max_message() const { return max_message_; }

 private:
  enum class State : uint8_t { Fresh, HelloSent, Established, Dead };

  ChannelError fail(ChannelError e);
  // What a dead channel returns: the constructor's error if it failed, else Dead.
  ChannelError dead_error() const;
  // Both hello messages -> session keys (tx/rx by role) and the confirmation tag.
  ChannelError derive(std::span<const uint8_t> hello, std::span<const uint8_t> reply_prefix,
                      const uint8_t peer_eph_pk[kKeyBytes], uint8_t confirm[32]);
  void wipe();

  Role role_;
  State state_ = State::Fresh;
  ChannelError init_error_ = ChannelError::Ok;
  size_t max_message_;
  KxKeyPair own_{};
  uint8_t peer_pk_[kKeyBytes]{};
  KxKeyPair eph_{};
  uint8_t hello_[kHelloBytes]{};  // the initiator's hello, kept for the transcript
  uint8_t tx_key_[crypto_secretstream_xchacha20poly1305_KEYBYTES]{};
  uint8_t rx_key_[crypto_secretstream_xchacha20poly1305_KEYBYTES]{};
  crypto_secretstream_xchacha20poly1305_state tx_{};
  crypto_secretstream_xchacha20poly1305_state rx_{};
  bool tx_started_ = false;
  bool rx_started_ = false;
  bool tx_finished_ = false;
  bool rx_finished_ = false;
};

}  // namespace rplayer::link
