// The cloud link's secure channel: handshake, round trips, and everything a normal world
// relaying the bytes might try (tamper, truncate, replay, reorder, drop, splice sessions,
// impersonate either end, send garbage).
#include "link/secure_channel.h"

#include <gtest/gtest.h>
#include <sodium.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "keyring/keys.h"

namespace rplayer::link {
namespace {

using Bytes = std::vector<uint8_t>;
constexpr size_t kMax = 4096;

KxKeyPair identity() {
  EXPECT_GE(sodium_init(), 0);
  KxKeyPair kp;
  crypto_kx_keypair(kp.pk, kp.sk);
  return kp;
}

Bytes bytes(const std::string& s) { return Bytes(s.begin(), s.end()); }

Bytes random_bytes(std::mt19937& rng, size_t n) {
  Bytes b(n);
  for (auto& x : b) x = static_cast<uint8_t>(rng());
  return b;
}

// A cloud and a device that pin each other, and the handshake between them.
struct Session {
  KxKeyPair cloud_id;
  KxKeyPair device_id;
  std::unique_ptr<SecureChannel> cloud;
  std::unique_ptr<SecureChannel> device;
  Bytes hello;
  Bytes reply;

  Session(const KxKeyPair& c, const KxKeyPair& d, size_t max = kMax) : cloud_id(c), device_id(d) {
    cloud = std::make_unique<SecureChannel>(Role::Initiator, c, d.pk, max);
    device = std::make_unique<SecureChannel>(Role::Responder, d, c.pk, max);
  }
  void handshake() {
    ASSERT_EQ(cloud->start(&hello), ChannelError::Ok);
    ASSERT_EQ(hello.size(), kHelloBytes);
    ASSERT_EQ(device->respond(hello, &reply), ChannelError::Ok);
    ASSERT_EQ(reply.size(), kReplyBytes);
    ASSERT_EQ(cloud->finish(reply), ChannelError::Ok);
    ASSERT_TRUE(cloud->established());
    ASSERT_TRUE(device->established());
  }
};

Bytes seal(SecureChannel& ch, const Bytes& plain, bool final = false) {
  Bytes out;
  EXPECT_EQ(ch.seal(plain, &out, final), ChannelError::Ok);
  return out;
}

// Every call on a dead channel fails with Dead.
void expect_dead(SecureChannel& ch) {
  EXPECT_TRUE(ch.dead());
  EXPECT_FALSE(ch.established());
  Bytes out;
  EXPECT_EQ(ch.seal(bytes("x"), &out), ChannelError::Dead);
  EXPECT_EQ(ch.open(Bytes(100, 0), &out), ChannelError::Dead);
  EXPECT_EQ(ch.start(&out), ChannelError::Dead);
  EXPECT_EQ(ch.respond(Bytes(kHelloBytes, 0), &out), ChannelError::Dead);
  EXPECT_EQ(ch.finish(Bytes(kReplyBytes, 0)), ChannelError::Dead);
}

class SecureChannelTest : public ::testing::Test {
 protected:
  KxKeyPair cloud_id_ = identity();
  KxKeyPair device_id_ = identity();
};

TEST(ChannelKeys, SigningKeyIsTheChannelIdentity) {
  const keyring::KeyPair cloud_sign = keyring::keypair_from_seed(std::array<uint8_t, 32>{1, 2, 3});
  const keyring::KeyPair device_sign = keyring::keypair_from_seed(std::array<uint8_t, 32>{4, 5});
  KxKeyPair cloud_kx, device_kx;
  ASSERT_TRUE(kx_from_signing_key(cloud_sign.secret_key.data(), &cloud_kx));
  ASSERT_TRUE(kx_from_signing_key(device_sign.secret_key.data(), &device_kx));
  uint8_t cloud_pin[kKeyBytes], device_pin[kKeyBytes];
  ASSERT_TRUE(kx_public_from_signing_public(cloud_sign.public_key.data(), cloud_pin));
  ASSERT_TRUE(kx_public_from_signing_public(device_sign.public_key.data(), device_pin));
  EXPECT_EQ(std::memcmp(cloud_pin, cloud_kx.pk, kKeyBytes), 0);
  EXPECT_EQ(std::memcmp(device_pin, device_kx.pk, kKeyBytes), 0);
  EXPECT_NE(std::memcmp(cloud_kx.pk, device_kx.pk, kKeyBytes), 0);

  // Each side pins the other by its Ed25519 public key only.
  SecureChannel cloud(Role::Initiator, cloud_kx, device_pin, kMax);
  SecureChannel device(Role::Responder, device_kx, cloud_pin, kMax);
  Bytes hello, reply, plain;
  ASSERT_EQ(cloud.start(&hello), ChannelError::Ok);
  ASSERT_EQ(device.respond(hello, &reply), ChannelError::Ok);
  ASSERT_EQ(cloud.finish(reply), ChannelError::Ok);
  ASSERT_EQ(device.open(seal(cloud, bytes("hi")), &plain), ChannelError::Ok);
  EXPECT_EQ(plain, bytes("hi"));
}

TEST(ChannelKeys, CorruptOrInvalidSigningKeysAreRefused) {
  keyring::KeyPair k = keyring::keypair_from_seed(std::array<uint8_t, 32>{7});
  KxKeyPair kx;
  k.secret_key[40] ^= 1;  // public half no longer matches the seed
  EXPECT_FALSE(kx_from_signing_key(k.secret_key.data(), &kx));
  uint8_t identity_point[32] = {1};  // the neutral element: small order
  uint8_t out[kKeyBytes];
  EXPECT_FALSE(kx_public_from_signing_public(identity_point, out));
}

TEST_F(SecureChannelTest, HandshakeAndRoundTripBothDirections) {
  Session s(cloud_id_, device_id_);
  ASSERT_FALSE(s.cloud->established());
  s.handshake();
  Bytes plain;
  const Bytes up = seal(*s.cloud, bytes("record this"));
  EXPECT_EQ(up.size(), kStreamHeaderBytes + 11 + kSealOverhead);  // first: with the header
  // Ciphertext: the plaintext does not appear in it.
  const std::string text = "record this";
  EXPECT_EQ(std::search(up.begin(), up.end(), text.begin(), text.end()), up.end());
  ASSERT_EQ(s.device->open(up, &plain), ChannelError::Ok);
  EXPECT_EQ(plain, bytes("record this"));

  const Bytes down = seal(*s.device, bytes("register values"));
  ASSERT_EQ(s.cloud->open(down, &plain), ChannelError::Ok);
  EXPECT_EQ(plain, bytes("register values"));

  const Bytes second = seal(*s.cloud, bytes("again"));
  EXPECT_EQ(second.size(), 5 + kSealOverhead);  // later: no header
  ASSERT_EQ(s.device->open(second, &plain), ChannelError::Ok);
  EXPECT_EQ(plain, bytes("again"));
  EXPECT_FALSE(s.device->peer_finished());
}

TEST_F(SecureChannelTest, ManyMessagesOfEverySizeInBothDirections) {
  Session s(cloud_id_, device_id_);
  s.handshake();
  std::mt19937 rng(1);
  Bytes plain;
  for (int i = 0; i < 2000; ++i) {
    const size_t n = i % 97 == 0 ? kMax : (i % 13 == 0 ? 0 : rng() % 300);
    const Bytes msg = random_bytes(rng, n);
    const bool up = (rng() & 1) != 0;
    SecureChannel& from = up ? *s.cloud : *s.device;
    SecureChannel& to = up ? *s.device : *s.cloud;
    ASSERT_EQ(to.open(seal(from, msg), &plain), ChannelError::Ok) << i;
    ASSERT_EQ(plain, msg) << i;
  }
  // Several in flight, opened in order.
  std::vector<Bytes> msgs, sealed;
  for (int i = 0; i < 50; ++i) {
    msgs.push_back(random_bytes(rng, 1 + i));
    sealed.push_back(seal(*s.device, msgs.back()));
  }
  for (int i = 0; i < 50; ++i) {
    ASSERT_EQ(s.cloud->open(sealed[i], &plain), ChannelError::Ok);
    EXPECT_EQ(plain, msgs[i]);
  }
}

TEST_F(SecureChannelTest, CloudPinningTheWrongDeviceKeyFailsAtFinish) {
  const KxKeyPair impostor = identity();
  // The cloud expects impostor's key; the real device answers.
  SecureChannel cloud(Role::Initiator, cloud_id_, impostor.pk, kMax);
  SecureChannel device(Role::Responder, device_id_, cloud_id_.pk, kMax);
  Bytes hello, reply;
  ASSERT_EQ(cloud.start(&hello), ChannelError::Ok);
  ASSERT_EQ(device.respond(hello, &reply), ChannelError::Ok);
  EXPECT_EQ(cloud.finish(reply), ChannelError::KeyConfirmFailed);
  expect_dead(cloud);
}

TEST_F(SecureChannelTest, ImpostorDeviceIsRefusedByTheCloud) {
  // A normal world answering the cloud itself: with a key of its own, or claiming the
  // device's public key without its secret.
  const KxKeyPair mallory = identity();
  KxKeyPair claims_device = mallory;
  std::memcpy(claims_device.pk, device_id_.pk, kKeyBytes);
  for (const KxKeyPair& fake_id : {mallory, claims_device}) {
    SecureChannel cloud(Role::Initiator, cloud_id_, device_id_.pk, kMax);
    SecureChannel fake(Role::Responder, fake_id, cloud_id_.pk, kMax);
    Bytes hello, reply;
    ASSERT_EQ(cloud.start(&hello), ChannelError::Ok);
    ASSERT_EQ(fake.respond(hello, &reply), ChannelError::Ok);
    EXPECT_EQ(cloud.finish(reply), ChannelError::KeyConfirmFailed);
    expect_dead(cloud);
  }
}

TEST_F(SecureChannelTest, DevicePinningTheWrongCloudKeyIsDetected) {
  const KxKeyPair other_cloud = identity();
  SecureChannel cloud(Role::Initiator, cloud_id_, device_id_.pk, kMax);
  SecureChannel device(Role::Responder, device_id_, other_cloud.pk, kMax);
  Bytes hello, reply;
  ASSERT_EQ(cloud.start(&hello), ChannelError::Ok);
  ASSERT_EQ(device.respond(hello, &reply), ChannelError::Ok);
  // The device derived keys for another cloud: its confirmation does not verify.
  EXPECT_EQ(cloud.finish(reply), ChannelError::KeyConfirmFailed);
}

TEST_F(SecureChannelTest, ImpostorCloudCannotSealForTheDevice) {
  // Mallory plays the cloud towards the device (which pins the real cloud's key): with a key
  // of its own, or claiming the cloud's public key without its secret. The device cannot
  // tell at respond(); Mallory's confirmation check fails, and the device refuses what
  // Mallory seals once it goes on regardless (a responder on Mallory's side, with the
  // device's key, gives Mallory an established channel to seal with).
  const KxKeyPair mallory = identity();
  KxKeyPair claims_cloud = mallory;
  std::memcpy(claims_cloud.pk, cloud_id_.pk, kKeyBytes);
  for (const bool claim : {false, true}) {
    const KxKeyPair& fake_id = claim ? claims_cloud : mallory;
    SecureChannel fake(Role::Initiator, fake_id, device_id_.pk, kMax);
    SecureChannel device(Role::Responder, device_id_, cloud_id_.pk, kMax);
    Bytes hello, reply, plain;
    ASSERT_EQ(fake.start(&hello), ChannelError::Ok);
    ASSERT_EQ(device.respond(hello, &reply), ChannelError::Ok);
    EXPECT_EQ(fake.finish(reply), ChannelError::KeyConfirmFailed);
    expect_dead(fake);

    SecureChannel mallory_ch(Role::Initiator, fake_id, device_id_.pk, kMax);
    SecureChannel device_real(Role::Responder, device_id_, cloud_id_.pk, kMax);
    SecureChannel device_fooled(Role::Responder, device_id_, fake_id.pk, kMax);
    Bytes hello2, reply_real, reply_fooled;
    ASSERT_EQ(mallory_ch.start(&hello2), ChannelError::Ok);
    ASSERT_EQ(device_real.respond(hello2, &reply_real), ChannelError::Ok);
    ASSERT_EQ(device_fooled.respond(hello2, &reply_fooled), ChannelError::Ok);
    // Claiming the cloud's key, Mallory cannot even finish with the fooled responder (it
    // pins that same key, so it is the real device's situation): no channel to seal with.
    const ChannelError fin = mallory_ch.finish(reply_fooled);
    if (claim) {
      EXPECT_EQ(fin, ChannelError::KeyConfirmFailed);
      continue;
    }
    ASSERT_EQ(fin, ChannelError::Ok);
    const Bytes forged = seal(mallory_ch, bytes("run this"));
    ASSERT_EQ(device_fooled.open(forged, &plain), ChannelError::Ok);
    EXPECT_EQ(device_real.open(forged, &plain), ChannelError::AuthFailed);
    EXPECT_TRUE(plain.empty());
    expect_dead(device_real);
  }
}

TEST_F(SecureChannelTest, TamperedHandshakeNeverEstablishes) {
  for (size_t i = 0; i < kHelloBytes; ++i) {
    Session s(cloud_id_, device_id_);
    ASSERT_EQ(s.cloud->start(&s.hello), ChannelError::Ok);
    s.hello[i] ^= 0x01;
    const ChannelError r = s.device->respond(s.hello, &s.reply);
    if (i < 6) {
      EXPECT_EQ(r, ChannelError::BadHandshake) << i;  // magic, version, type
      continue;
    }
    ASSERT_EQ(r, ChannelError::Ok) << i;                         // the device cannot tell yet ...
    EXPECT_NE(s.cloud->finish(s.reply), ChannelError::Ok) << i;  // ... the cloud can
  }
  for (size_t i = 0; i < kReplyBytes; ++i) {
    Session s(cloud_id_, device_id_);
    ASSERT_EQ(s.cloud->start(&s.hello), ChannelError::Ok);
    ASSERT_EQ(s.device->respond(s.hello, &s.reply), ChannelError::Ok);
    s.reply[i] ^= 0x80;
    const ChannelError r = s.cloud->finish(s.reply);
    EXPECT_EQ(r, i < 6 ? ChannelError::BadHandshake : ChannelError::KeyConfirmFailed) << i;
  }
  // Wrong sizes.
  Session s(cloud_id_, device_id_);
  ASSERT_EQ(s.cloud->start(&s.hello), ChannelError::Ok);
  s.hello.push_back(0);
  EXPECT_EQ(s.device->respond(s.hello, &s.reply), ChannelError::BadHandshake);
  expect_dead(*s.device);
  Session t(cloud_id_, device_id_);
  t.handshake();
  Session u(cloud_id_, device_id_);
  ASSERT_EQ(u.cloud->start(&u.hello), ChannelError::Ok);
  EXPECT_EQ(u.cloud->finish(Bytes(t.reply.begin(), t.reply.end() - 1)), ChannelError::BadHandshake);
}

TEST_F(SecureChannelTest, LowOrderEphemeralKeyIsRefused) {
  Session s(cloud_id_, device_id_);
  ASSERT_EQ(s.cloud->start(&s.hello), ChannelError::Ok);
  std::fill(s.hello.begin() + 6, s.hello.end(), 0);  // X25519 point 0: all-zero results
  EXPECT_EQ(s.device->respond(s.hello, &s.reply), ChannelError::WeakKey);
  expect_dead(*s.device);
}

TEST_F(SecureChannelTest, ModifiedByteIsRefusedAndKillsTheChannel) {
  for (bool first : {true, false}) {
    Session probe(cloud_id_, device_id_);
    probe.handshake();
    Bytes plain;
    if (!first) {
      ASSERT_EQ(probe.device->open(seal(*probe.cloud, bytes("warm-up")), &plain), ChannelError::Ok);
    }
    const Bytes good = seal(*probe.cloud, bytes("a message of some length"));
    for (size_t i = 0; i < good.size(); ++i) {
      Session s(cloud_id_, device_id_);
      s.handshake();
      if (!first) {
        ASSERT_EQ(s.device->open(seal(*s.cloud, bytes("warm-up")), &plain), ChannelError::Ok);
      }
      Bytes bad = seal(*s.cloud, bytes("a message of some length"));
      bad[i] ^= 0x04;
      EXPECT_EQ(s.device->open(bad, &plain), ChannelError::AuthFailed) << first << " " << i;
      EXPECT_TRUE(plain.empty());
      expect_dead(*s.device);
    }
  }
}

TEST_F(SecureChannelTest, TruncatedMessageIsRefused) {
  Session s(cloud_id_, device_id_);
  s.handshake();
  Bytes plain;
  ASSERT_EQ(s.device->open(seal(*s.cloud, bytes("first")), &plain), ChannelError::Ok);
  Bytes m = seal(*s.cloud, bytes("second message"));
  m.pop_back();
  EXPECT_EQ(s.device->open(m, &plain), ChannelError::AuthFailed);
  expect_dead(*s.device);

  Session t(cloud_id_, device_id_);
  t.handshake();
  Bytes first = seal(*t.cloud, bytes("x"));
  first.resize(kStreamHeaderBytes + kSealOverhead - 1);  // shorter than any sealed message
  EXPECT_EQ(t.device->open(first, &plain), ChannelError::Truncated);
  expect_dead(*t.device);

  Session u(cloud_id_, device_id_);
  u.handshake();
  EXPECT_EQ(u.device->open({}, &plain), ChannelError::Truncated);
}

TEST_F(SecureChannelTest, ReplayedMessageIsRefused) {
  Session s(cloud_id_, device_id_);
  s.handshake();
  Bytes plain;
  const Bytes m0 = seal(*s.cloud, bytes("m0"));
  const Bytes m1 = seal(*s.cloud, bytes("m1"));
  ASSERT_EQ(s.device->open(m0, &plain), ChannelError::Ok);
  ASSERT_EQ(s.device->open(m1, &plain), ChannelError::Ok);
  EXPECT_EQ(s.device->open(m1, &plain), ChannelError::AuthFailed);
  expect_dead(*s.device);

  // The first message (with the stream header) replayed.
  Session t(cloud_id_, device_id_);
  t.handshake();
  const Bytes f = seal(*t.device, bytes("first"));
  ASSERT_EQ(t.cloud->open(f, &plain), ChannelError::Ok);
  EXPECT_EQ(t.cloud->open(f, &plain), ChannelError::AuthFailed);
  expect_dead(*t.cloud);
}

TEST_F(SecureChannelTest, ReflectedMessageIsRefused) {
  // Each direction has its own key: a message bounced back to its sender does not open.
  Session s(cloud_id_, device_id_);
  s.handshake();
  Bytes plain;
  const Bytes up = seal(*s.cloud, bytes("to the device"));
  EXPECT_EQ(s.cloud->open(up, &plain), ChannelError::AuthFailed);
  expect_dead(*s.cloud);
  // The reply bounced to the device as a hello: the wrong type.
  Session t(cloud_id_, device_id_);
  t.handshake();
  SecureChannel device(Role::Responder, device_id_, cloud_id_.pk, kMax);
  Bytes reply;
  EXPECT_EQ(device.respond(Bytes(t.reply.begin(), t.reply.begin() + kHelloBytes), &reply),
            ChannelError::BadHandshake);
}

TEST_F(SecureChannelTest, ReorderedMessagesAreRefused) {
  // Later messages swapped.
  Session s(cloud_id_, device_id_);
  s.handshake();
  Bytes plain;
  ASSERT_EQ(s.cloud->open(seal(*s.device, bytes("m0")), &plain), ChannelError::Ok);
  const Bytes m1 = seal(*s.device, bytes("m1"));
  const Bytes m2 = seal(*s.device, bytes("m2"));
  EXPECT_EQ(s.cloud->open(m2, &plain), ChannelError::AuthFailed);
  expect_dead(*s.cloud);

  // The second message put first (it has no stream header).
  Session t(cloud_id_, device_id_);
  t.handshake();
  const Bytes a = seal(*t.cloud, bytes("a message"));
  const Bytes b = seal(*t.cloud, Bytes(40, 'b'));
  EXPECT_EQ(t.device->open(b, &plain), ChannelError::AuthFailed);
  expect_dead(*t.device);
}

TEST_F(SecureChannelTest, DroppedMessageIsDetected) {
  Session s(cloud_id_, device_id_);
  s.handshake();
  Bytes plain;
  const Bytes m0 = seal(*s.cloud, bytes("m0"));
  const Bytes m1 = seal(*s.cloud, bytes("m1"));
  const Bytes m2 = seal(*s.cloud, bytes("m2"));
  ASSERT_EQ(s.device->open(m0, &plain), ChannelError::Ok);
  EXPECT_EQ(s.device->open(m2, &plain), ChannelError::AuthFailed);  // m1 dropped
  expect_dead(*s.device);
}

TEST_F(SecureChannelTest, MessagesOfAnOldSessionAreRefusedInANewOne) {
  Session old_session(cloud_id_, device_id_);
  old_session.handshake();
  const Bytes old0 = seal(*old_session.cloud, bytes("old 0"));
  const Bytes old1 = seal(*old_session.cloud, bytes("old 1"));
  const Bytes old_down = seal(*old_session.device, bytes("old down"));
  Bytes plain;
  ASSERT_EQ(old_session.device->open(old0, &plain), ChannelError::Ok);

  // Same static keys, new session: fresh keys.
  Session s(cloud_id_, device_id_);
  s.handshake();
  EXPECT_EQ(s.device->open(old0, &plain), ChannelError::AuthFailed);
  expect_dead(*s.device);
  EXPECT_EQ(s.cloud->open(old_down, &plain), ChannelError::AuthFailed);
  expect_dead(*s.cloud);

  // A later old message after a genuine first one.
  Session t(cloud_id_, device_id_);
  t.handshake();
  ASSERT_EQ(t.device->open(seal(*t.cloud, bytes("new 0")), &plain), ChannelError::Ok);
  EXPECT_EQ(t.device->open(old1, &plain), ChannelError::AuthFailed);

  // An old reply does not confirm a new hello.
  Session u(cloud_id_, device_id_);
  ASSERT_EQ(u.cloud->start(&u.hello), ChannelError::Ok);
  EXPECT_EQ(u.cloud->finish(old_session.reply), ChannelError::KeyConfirmFailed);

  // An old hello replayed to the device gets a fresh reply; the old session's messages
  // still do not open there.
  SecureChannel device(Role::Responder, device_id_, cloud_id_.pk, kMax);
  Bytes reply;
  ASSERT_EQ(device.respond(old_session.hello, &reply), ChannelError::Ok);
  EXPECT_NE(reply, old_session.reply);
  EXPECT_EQ(device.open(old0, &plain), ChannelError::AuthFailed);
}

TEST_F(SecureChannelTest, OversizedMessagesAreRefused) {
  Session s(cloud_id_, device_id_, 64);
  s.handshake();
  Bytes out, plain;
  // Sealing too much is the caller's error: refused, nothing consumed, the channel lives on.
  EXPECT_EQ(s.cloud->seal(Bytes(65, 1), &out), ChannelError::TooLarge);
  EXPECT_TRUE(s.cloud->established());
  ASSERT_EQ(s.device->open(seal(*s.cloud, Bytes(64, 2)), &plain), ChannelError::Ok);
  EXPECT_EQ(plain, Bytes(64, 2));
  // Receiving too much: refused before any decryption, and the channel is dead.
  Session big(cloud_id_, device_id_, 65);
  big.handshake();
  ASSERT_EQ(big.cloud->open(seal(*big.device, Bytes(1, 0)), &plain), ChannelError::Ok);
  const Bytes too_big = seal(*big.device, Bytes(65, 3));  // right keys, but s allows 64
  EXPECT_EQ(s.device->open(too_big, &plain), ChannelError::TooLarge);
  expect_dead(*s.device);
  EXPECT_EQ(s.cloud->open(Bytes(kStreamHeaderBytes + 64 + kSealOverhead + 1, 0), &plain),
            ChannelError::TooLarge);
  expect_dead(*s.cloud);
}

TEST_F(SecureChannelTest, FinalTagEndsADirection) {
  Session s(cloud_id_, device_id_);
  s.handshake();
  Bytes plain, out;
  bool final = true;
  ASSERT_EQ(s.device->open(seal(*s.cloud, bytes("data")), &plain, &final), ChannelError::Ok);
  EXPECT_FALSE(final);
  EXPECT_FALSE(s.device->peer_finished());
  ASSERT_EQ(s.device->open(seal(*s.cloud, bytes("bye"), true), &plain, &final), ChannelError::Ok);
  EXPECT_TRUE(final);
  EXPECT_EQ(plain, bytes("bye"));
  EXPECT_TRUE(s.device->peer_finished());
  // The other direction is still open.
  ASSERT_EQ(s.cloud->open(seal(*s.device, bytes("still here")), &plain, &final), ChannelError::Ok);
  EXPECT_FALSE(final);
  EXPECT_EQ(s.cloud->seal(bytes("more"), &out), ChannelError::Finished);
  expect_dead(*s.cloud);
  EXPECT_EQ(s.device->open(Bytes(40, 0), &plain), ChannelError::Finished);

  // An empty final message (the end needs no payload), as the first of its direction.
  Session t(cloud_id_, device_id_);
  t.handshake();
  const Bytes fin = seal(*t.cloud, Bytes(), true);
  EXPECT_EQ(fin.size(), kStreamHeaderBytes + kSealOverhead);
  ASSERT_EQ(t.device->open(fin, &plain, &final), ChannelError::Ok);
  EXPECT_TRUE(final);
  EXPECT_TRUE(plain.empty());
}

TEST_F(SecureChannelTest, CallsOutOfOrderAreRefused) {
  Bytes out, plain;
  {
    SecureChannel device(Role::Responder, device_id_, cloud_id_.pk, kMax);
    EXPECT_EQ(device.start(&out), ChannelError::WrongState);
    expect_dead(device);
  }
  {
    SecureChannel cloud(Role::Initiator, cloud_id_, device_id_.pk, kMax);
    EXPECT_EQ(cloud.respond(Bytes(kHelloBytes, 0), &out), ChannelError::WrongState);
  }
  {
    SecureChannel cloud(Role::Initiator, cloud_id_, device_id_.pk, kMax);
    EXPECT_EQ(cloud.seal(bytes("early"), &out), ChannelError::WrongState);
  }
  {
    SecureChannel cloud(Role::Initiator, cloud_id_, device_id_.pk, kMax);
    EXPECT_EQ(cloud.finish(Bytes(kReplyBytes, 0)), ChannelError::WrongState);
  }
  {
    SecureChannel device(Role::Responder, device_id_, cloud_id_.pk, kMax);
    EXPECT_EQ(device.open(Bytes(64, 0), &plain), ChannelError::WrongState);
  }
  {
    Session s(cloud_id_, device_id_);
    s.handshake();
    EXPECT_EQ(s.device->respond(s.hello, &out), ChannelError::WrongState);
    EXPECT_EQ(s.cloud->finish(s.reply), ChannelError::WrongState);
  }
  {
    SecureChannel bad(Role::Initiator, cloud_id_, device_id_.pk, 0);
    EXPECT_TRUE(bad.dead());
    EXPECT_EQ(bad.start(&out), ChannelError::InvalidArgument);
    EXPECT_EQ(bad.seal(bytes("x"), &out), ChannelError::InvalidArgument);
    SecureChannel huge(Role::Initiator, cloud_id_, device_id_.pk, kMaxMessageLimit + 1);
    EXPECT_EQ(huge.start(&out), ChannelError::InvalidArgument);
  }
  {
    SecureChannel cloud(Role::Initiator, cloud_id_, device_id_.pk, kMax);
    EXPECT_EQ(cloud.start(nullptr), ChannelError::InvalidArgument);
  }
}

TEST(ChannelErrors, EveryErrorHasItsOwnName) {
  std::set<std::string> names;
  for (int e = 0; e <= static_cast<int>(ChannelError::Dead); ++e) {
    const std::string name = channel_error_name(static_cast<ChannelError>(e));
    EXPECT_NE(name, "unknown") << e;
    names.insert(name);
  }
  EXPECT_EQ(names.size(), static_cast<size_t>(ChannelError::Dead) + 1);
  EXPECT_STREQ(channel_error_name(ChannelError::AuthFailed), "auth-failed");
}

// Random bytes and mutations of valid messages into every entry point that takes bytes:
// never Ok where Ok would be a forgery, never a crash (run under ASan + UBSan too).
TEST_F(SecureChannelTest, GarbageNeverCrashesNorOpens) {
  std::mt19937 rng(42);
  Bytes out, plain;
  int respond_ok = 0;
  for (int i = 0; i < 3000; ++i) {
    const int kind = i % 3;
    Session s(cloud_id_, device_id_, 256);
    Bytes junk = random_bytes(rng, rng() % 400);
    if (i % 2 == 0 && junk.size() >= 6) std::memcpy(junk.data(), "RPLK\x01", 5);
    if (kind == 0) {
      // The device's respond(): the right size and prefix half the time.
      if (i % 4 == 0) {
        junk.resize(kHelloBytes);
        std::memcpy(junk.data(), "RPLK\x01\x01", 6);
      }
      const ChannelError r = s.device->respond(junk, &out);
      if (r == ChannelError::Ok) {
        ++respond_ok;  // a well-formed hello from someone: what follows must not open
        EXPECT_EQ(s.device->open(random_bytes(rng, rng() % 300), &plain) == ChannelError::Ok,
                  false);
      }
    } else if (kind == 1) {
      ASSERT_EQ(s.cloud->start(&s.hello), ChannelError::Ok);
      if (i % 4 == 1) {
        junk.resize(kReplyBytes);
        std::memcpy(junk.data(), "RPLK\x01\x02", 6);
      }
      EXPECT_NE(s.cloud->finish(junk), ChannelError::Ok);
      EXPECT_TRUE(s.cloud->dead());
    } else {
      s.handshake();
      if (i % 6 == 2) {
        ASSERT_EQ(s.device->open(seal(*s.cloud, bytes("ok")), &plain), ChannelError::Ok);
      }
      EXPECT_NE(s.device->open(junk, &plain), ChannelError::Ok);
      EXPECT_TRUE(plain.empty());
      EXPECT_TRUE(s.device->dead());
    }
  }
  EXPECT_GT(respond_ok, 0);

  // Mutations of genuine messages: 1..4 random byte changes, or a random cut / extension.
  for (int i = 0; i < 1000; ++i) {
    Session s(cloud_id_, device_id_, 256);
    s.handshake();
    if (i % 2 == 1) {
      ASSERT_EQ(s.device->open(seal(*s.cloud, bytes("warm-up")), &plain), ChannelError::Ok);
    }
    Bytes m = seal(*s.cloud, random_bytes(rng, rng() % 200));
    const Bytes orig = m;
    switch (rng() % 3) {
      case 0:
        for (int k = 0, n = 1 + rng() % 4; k < n; ++k) m[rng() % m.size()] ^= 1 + rng() % 255;
        break;
      case 1:
        m.resize(rng() % m.size());
        break;
      default: {
        const Bytes extra = random_bytes(rng, 1 + rng() % 16);
        m.insert(m.end(), extra.begin(), extra.end());
      }
    }
    if (m == orig) continue;
    EXPECT_NE(s.device->open(m, &plain), ChannelError::Ok) << i;
    EXPECT_TRUE(s.device->dead());
  }
}

}  // namespace
}  // namespace rplayer::link
