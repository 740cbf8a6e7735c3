#include "link/secure_channel.h"

#include <cstring>

namespace rplayer::link {
namespace {

constexpr uint8_t kMagic[4] = {'R', 'P', 'L', 'K'};
constexpr uint8_t kVersion = 1;
constexpr uint8_t kTypeHello = 1;
constexpr uint8_t kTypeReply = 2;
constexpr size_t kPrefixBytes = sizeof kMagic + 2;  // magic, version, type
constexpr char kTranscriptLabel[] = "rplayer-link-v1 transcript";
constexpr char kKdfContext[crypto_kdf_CONTEXTBYTES + 1] = "rplink01";
constexpr uint64_t kSubkeyInitiatorToResponder = 1;
constexpr uint64_t kSubkeyResponderToInitiator = 2;
constexpr uint64_t kSubkeyConfirm = 3;

static_assert(crypto_kx_PUBLICKEYBYTES == kKeyBytes && crypto_kx_SECRETKEYBYTES == kKeyBytes);
static_assert(crypto_scalarmult_BYTES == kKeyBytes && crypto_kdf_KEYBYTES == 32);
static_assert(crypto_secretstream_xchacha20poly1305_KEYBYTES == 32);

// sodium_init() is itself safe to call from several threads; the function-local static
// makes it run once.
bool crypto_ready() {
  static const bool ok = sodium_init() >= 0;
  return ok;
}

void write_prefix(uint8_t* p, uint8_t type) {
  std::memcpy(p, kMagic, sizeof kMagic);
  p[4] = kVersion;
  p[5] = type;
}

bool prefix_ok(std::span<const uint8_t> m, uint8_t type) {
  return std::memcmp(m.data(), kMagic, sizeof kMagic) == 0 && m[4] == kVersion && m[5] == type;
}

}  // namespace

bool kx_from_signing_key(const uint8_t ed25519_sk[64], KxKeyPair* out) {
  if (out == nullptr || !crypto_ready()) return false;
  KxKeyPair kp;
  uint8_t from_public[kKeyBytes];
  bool ok = crypto_sign_ed25519_sk_to_curve25519(kp.sk, ed25519_sk) == 0 &&
            crypto_scalarmult_base(kp.pk, kp.sk) == 0 &&
            crypto_sign_ed25519_pk_to_curve25519(from_public, ed25519_sk + 32) == 0 &&
            sodium_memcmp(from_public, kp.pk, kKeyBytes) == 0;
  if (ok) *out = kp;
  sodium_memzero(&kp, sizeof kp);
  return ok;
}

bool kx_public_from_signing_public(const uint8_t ed25519_pk[32], uint8_t out[kKeyBytes]) {
  if (out == nullptr || !crypto_ready()) return false;
  return crypto_sign_ed25519_pk_to_curve25519(out, ed25519_pk) == 0;
}

const char* channel_error_name(ChannelError e) {
  switch (e) {
    case ChannelError::Ok:
      return "ok";
    case ChannelError::CryptoInit:
      return "crypto-init";
    case ChannelError::InvalidArgument:
      return "invalid-argument";
    case ChannelError::WrongState:
      return "wrong-state";
    case ChannelError::BadHandshake:
      return "bad-handshake";
    case ChannelError::WeakKey:
      return "weak-key";
    case ChannelError::KeyConfirmFailed:
      return "key-confirm-failed";
    case ChannelError::TooLarge:
      return "too-large";
    case ChannelError::Truncated:
      return "truncated";
    case ChannelError::AuthFailed:
      return "auth-failed";
    case ChannelError::UnexpectedTag:
      return "unexpected-tag";
    case ChannelError::Finished:
      return "finished";
    case ChannelError::Dead:
      return "dead";
  }
  return "unknown";
}

SecureChannel::SecureChannel(Role role, const KxKeyPair& own, const uint8_t peer_pk[kKeyBytes],
                             size_t max_message)
    : role_(role), max_message_(max_message) {
  if (!crypto_ready()) {
    init_error_ = ChannelError::CryptoInit;
  } else if (max_message == 0 || max_message > kMaxMessageLimit || peer_pk == nullptr) {
    init_error_ = ChannelError::InvalidArgument;
  }
  if (init_error_ != ChannelError::Ok) {
    state_ = State::Dead;
    return;
  }
  own_ = own;
  std::memcpy(peer_pk_, peer_pk, kKeyBytes);
}

SecureChannel::~SecureChannel() { wipe(); }

void SecureChannel::wipe() {
  sodium_memzero(&own_, sizeof own_);
  sodium_memzero(&eph_, sizeof eph_);
  sodium_memzero(hello_, sizeof hello_);
  sodium_memzero(tx_key_, sizeof tx_key_);
  sodium_memzero(rx_key_, sizeof rx_key_);
  sodium_memzero(&tx_, sizeof tx_);
  sodium_memzero(&rx_, sizeof rx_);
}

ChannelError SecureChannel::dead_error() const {
  return init_error_ != ChannelError::Ok ? init_error_ : ChannelError::Dead;
}

ChannelError SecureChannel::fail(ChannelError e) {
  state_ = State::Dead;
  wipe();
  return e;
}

// The transcript hash h binds the protocol, both static identities (initiator's first) and
// both handshake messages. The four X25519 results (ephemeral-ephemeral for fresh keys;
// ephemeral-static both ways and static-static so that only holders of the pinned static
// secrets get them) are hashed with h as the key into a session secret, from which the
// per-direction stream keys and the reply's confirmation key are derived.
ChannelError SecureChannel::derive(std::span<const uint8_t> hello,
                                   std::span<const uint8_t> reply_prefix,
                                   const uint8_t peer_eph_pk[kKeyBytes], uint8_t confirm[32]) {
  const bool initiator = role_ == Role::Initiator;
  const uint8_t* initiator_pk = initiator ? own_.pk : peer_pk_;
  const uint8_t* responder_pk = initiator ? peer_pk_ : own_.pk;

  uint8_t h[32];
  crypto_generichash_state hs;
  crypto_generichash_init(&hs, nullptr, 0, sizeof h);
  crypto_generichash_update(&hs, reinterpret_cast<const uint8_t*>(kTranscriptLabel),
                            sizeof kTranscriptLabel - 1);
  crypto_generichash_update(&hs, initiator_pk, kKeyBytes);
  crypto_generichash_update(&hs, responder_pk, kKeyBytes);
  crypto_generichash_update(&hs, hello.data(), hello.size());
  crypto_generichash_update(&hs, reply_prefix.data(), reply_prefix.size());
  crypto_generichash_final(&hs, h, sizeof h);

  // dh = ee || es || se || ss (e/s: ephemeral/static; initiator's key first).
  uint8_t dh[4 * kKeyBytes];
  int bad = 0;
  bad |= crypto_scalarmult(dh, eph_.sk, peer_eph_pk);
  if (initiator) {
    bad |= crypto_scalarmult(dh + kKeyBytes, eph_.sk, peer_pk_);
    bad |= crypto_scalarmult(dh + 2 * kKeyBytes, own_.sk, peer_eph_pk);
  } else {
    bad |= crypto_scalarmult(dh + kKeyBytes, own_.sk, peer_eph_pk);
    bad |= crypto_scalarmult(dh + 2 * kKeyBytes, eph_.sk, peer_pk_);
  }
  bad |= crypto_scalarmult(dh + 3 * kKeyBytes, own_.sk, peer_pk_);

  uint8_t session[crypto_kdf_KEYBYTES];
  uint8_t confirm_key[32];
  crypto_generichash(session, sizeof session, dh, sizeof dh, h, sizeof h);
  uint8_t* i2r = initiator ? tx_key_ : rx_key_;
  uint8_t* r2i = initiator ? rx_key_ : tx_key_;
  crypto_kdf_derive_from_key(i2r, 32, kSubkeyInitiatorToResponder, kKdfContext, session);
  crypto_kdf_derive_from_key(r2i, 32, kSubkeyResponderToInitiator, kKdfContext, session);
  crypto_kdf_derive_from_key(confirm_key, sizeof confirm_key, kSubkeyConfirm, kKdfContext, session);
  crypto_generichash(confirm, 32, h, sizeof h, confirm_key, sizeof confirm_key);

  sodium_memzero(dh, sizeof dh);
  sodium_memzero(session, sizeof session);
  sodium_memzero(confirm_key, sizeof confirm_key);
  sodium_memzero(&eph_.sk, sizeof eph_.sk);  // used up: forward secrecy
  return bad != 0 ? ChannelError::WeakKey : ChannelError::Ok;
}

ChannelError SecureChannel::start(std::vector<uint8_t>* hello) {
  if (state_ == State::Dead) return dead_error();
  if (hello == nullptr) return fail(ChannelError::InvalidArgument);
  if (role_ != Role::Initiator || state_ != State::Fresh) return fail(ChannelError::WrongState);
  crypto_kx_keypair(eph_.pk, eph_.sk);
  write_prefix(hello_, kTypeHello);
  std::memcpy(hello_ + kPrefixBytes, eph_.pk, kKeyBytes);
  hello->assign(hello_, hello_ + kHelloBytes);
  state_ = State::HelloSent;
  return ChannelError::Ok;
}

ChannelError SecureChannel::respond(std::span<const uint8_t> hello, std::vector<uint8_t>* reply) {
  if (state_ == State::Dead) return dead_error();
  if (reply == nullptr) return fail(ChannelError::InvalidArgument);
  if (role_ != Role::Responder || state_ != State::Fresh) return fail(ChannelError::WrongState);
  if (hello.size() != kHelloBytes || !prefix_ok(hello, kTypeHello)) {
    return fail(ChannelError::BadHandshake);
  }
  crypto_kx_keypair(eph_.pk, eph_.sk);
  uint8_t out[kReplyBytes];
  write_prefix(out, kTypeReply);
  std::memcpy(out + kPrefixBytes, eph_.pk, kKeyBytes);
  ChannelError e = derive(hello, std::span<const uint8_t>(out, kHelloBytes),
                          hello.data() + kPrefixBytes, out + kHelloBytes);
  if (e != ChannelError::Ok) return fail(e);
  reply->assign(out, out + kReplyBytes);
  state_ = State::Established;
  return ChannelError::Ok;
}

ChannelError SecureChannel::finish(std::span<const uint8_t> reply) {
  if (state_ == State::Dead) return dead_error();
  if (role_ != Role::Initiator || state_ != State::HelloSent) return fail(ChannelError::WrongState);
  if (reply.size() != kReplyBytes || !prefix_ok(reply, kTypeReply)) {
    return fail(ChannelError::BadHandshake);
  }
  uint8_t confirm[32];
  ChannelError e = derive(std::span<const uint8_t>(hello_, kHelloBytes), reply.first(kHelloBytes),
                          reply.data() + kPrefixBytes, confirm);
  if (e != ChannelError::Ok) return fail(e);
  if (crypto_verify_32(confirm, reply.data() + kHelloBytes) != 0) {
    return fail(ChannelError::KeyConfirmFailed);
  }
  state_ = State::Established;
  return ChannelError::Ok;
}

ChannelError SecureChannel::seal(std::span<const uint8_t> plain, std::vector<uint8_t>* out,
                                 bool final) {
  if (state_ == State::Dead) return dead_error();
  if (out == nullptr) return fail(ChannelError::InvalidArgument);
  if (state_ != State::Established) return fail(ChannelError::WrongState);
  if (tx_finished_) return fail(ChannelError::Finished);
  if (plain.size() > max_message_) return ChannelError::TooLarge;  // nothing consumed
  const size_t header = tx_started_ ? 0 : kStreamHeaderBytes;
  out->resize(header + plain.size() + kSealOverhead);
  if (!tx_started_) {
    crypto_secretstream_xchacha20poly1305_init_push(&tx_, out->data(), tx_key_);
    sodium_memzero(tx_key_, sizeof tx_key_);
    tx_started_ = true;
  }
  const uint8_t tag = final ? crypto_secretstream_xchacha20poly1305_TAG_FINAL
                            : crypto_secretstream_xchacha20poly1305_TAG_MESSAGE;
  crypto_secretstream_xchacha20poly1305_push(&tx_, out->data() + header, nullptr, plain.data(),
                                             plain.size(), nullptr, 0, tag);
  if (final) tx_finished_ = true;
  return ChannelError::Ok;
}

ChannelError SecureChannel::open(std::span<const uint8_t> sealed, std::vector<uint8_t>* plain,
                                 bool* final) {
  if (final != nullptr) *final = false;
  if (state_ == State::Dead) return dead_error();
  if (plain == nullptr) return fail(ChannelError::InvalidArgument);
  plain->clear();
  if (state_ != State::Established) return fail(ChannelError::WrongState);
  if (rx_finished_) return fail(ChannelError::Finished);
  const size_t header = rx_started_ ? 0 : kStreamHeaderBytes;
  if (sealed.size() > header + max_message_ + kSealOverhead) return fail(ChannelError::TooLarge);
  if (sealed.size() < header + kSealOverhead) return fail(ChannelError::Truncated);
  if (!rx_started_) {
    if (crypto_secretstream_xchacha20poly1305_init_pull(&rx_, sealed.data(), rx_key_) != 0) {
      return fail(ChannelError::AuthFailed);
    }
    sodium_memzero(rx_key_, sizeof rx_key_);
    rx_started_ = true;
  }
  const std::span<const uint8_t> body = sealed.subspan(header);
  plain->resize(body.size() - kSealOverhead);
  unsigned char tag = 0;
  if (crypto_secretstream_xchacha20poly1305_pull(&rx_, plain->data(), nullptr, &tag, body.data(),
                                                 body.size(), nullptr, 0) != 0) {
    plain->clear();
    return fail(ChannelError::AuthFailed);
  }
  if (tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL) {
    rx_finished_ = true;
    if (final != nullptr) *final = true;
  } else if (tag != crypto_secretstream_xchacha20poly1305_TAG_MESSAGE) {
    sodium_memzero(plain->data(), plain->size());
    plain->clear();
    return fail(ChannelError::UnexpectedTag);
  }
  return ChannelError::Ok;
}

}  // namespace rplayer::link
