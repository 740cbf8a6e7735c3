// The channel as deployed: cloud and device (threads) exchange frames over sockets through a
// normal-world relay that may read, tamper with, replay or drop the frames it forwards.
#include <gtest/gtest.h>
#include <sodium.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "link/frame_io.h"
#include "link/secure_channel.h"

namespace rplayer::link {
namespace {

using Bytes = std::vector<uint8_t>;
constexpr size_t kMax = 1 << 16;
constexpr size_t kMaxFrame = kMax + kStreamHeaderBytes + kSealOverhead;
constexpr int kTimeoutMs = 10000;

// What the relay does with the n-th frame (0-based) of one direction: forward it, or
// something else. Returns the frames to forward in its place.
using Tamper = std::function<std::vector<Bytes>(size_t n, const Bytes& frame)>;

std::vector<Bytes> pass(size_t, const Bytes& f) { return {f}; }

// Forwards frames from -> to until from ends, then ends to's direction. Records what it saw.
void forward(int from, int to, const Tamper& tamper, std::vector<Bytes>* seen) {
  Bytes frame;
  for (size_t n = 0; read_frame(from, kMaxFrame, kTimeoutMs, &frame) == FrameResult::Ok; ++n) {
    seen->push_back(frame);
    bool ok = true;
    for (const Bytes& f : tamper(n, frame)) ok = ok && write_frame(to, f, nullptr);
    if (!ok) break;
  }
  shutdown(to, SHUT_WR);
}

struct Wire {
  int cloud, relay_cloud, relay_device, device;
  Wire() {
    int a[2], b[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
    cloud = a[0];
    relay_cloud = a[1];
    relay_device = b[0];
    device = b[1];
  }
  ~Wire() {
    for (int fd : {cloud, relay_cloud, relay_device, device}) close(fd);
  }
};

struct DeviceLog {
  ChannelError error = ChannelError::Ok;  // the first failure, if any
  std::vector<std::string> received;
  bool saw_final = false;
};

// The device's side: answer the handshake, then echo each request upper-cased.
void run_device(int fd, const KxKeyPair& id, const uint8_t cloud_pk[kKeyBytes], DeviceLog* log) {
  SecureChannel ch(Role::Responder, id, cloud_pk, kMax);
  Bytes in, out, plain;
  if (read_frame(fd, kMaxFrame, kTimeoutMs, &in) != FrameResult::Ok) return;
  if ((log->error = ch.respond(in, &out)) != ChannelError::Ok) return;
  if (!write_frame(fd, out, nullptr)) return;
  while (read_frame(fd, kMaxFrame, kTimeoutMs, &in) == FrameResult::Ok) {
    bool final = false;
    if ((log->error = ch.open(in, &plain, &final)) != ChannelError::Ok) break;
    log->received.emplace_back(plain.begin(), plain.end());
    if (final) {
      log->saw_final = true;
      break;
    }
    std::transform(plain.begin(), plain.end(), plain.begin(), ::toupper);
    if (ch.seal(plain, &out) != ChannelError::Ok || !write_frame(fd, out, nullptr)) break;
  }
  shutdown(fd, SHUT_WR);
}

struct Outcome {
  DeviceLog device;
  std::vector<std::string> replies;  // what the cloud opened
  ChannelError cloud_error = ChannelError::Ok;
  std::vector<Bytes> up_seen, down_seen;  // what the relay saw
};

// The cloud sends `count` requests and a final "bye" without waiting, ends its direction,
// then opens the device's answers until the device hangs up. The relay applies `up` to the
// cloud -> device frames (frame 0 is the hello) and `down` to the device -> cloud ones
// (frame 0: the reply).
Outcome run(int count, const Tamper& up, const Tamper& down = pass) {
  EXPECT_GE(sodium_init(), 0);
  KxKeyPair cloud_id, device_id;
  crypto_kx_keypair(cloud_id.pk, cloud_id.sk);
  crypto_kx_keypair(device_id.pk, device_id.sk);
  Wire w;
  Outcome o;
  std::thread device(run_device, w.device, std::cref(device_id), cloud_id.pk, &o.device);
  std::thread relay_up(forward, w.relay_cloud, w.relay_device, std::cref(up), &o.up_seen);
  std::thread relay_down(forward, w.relay_device, w.relay_cloud, std::cref(down), &o.down_seen);

  SecureChannel ch(Role::Initiator, cloud_id, device_id.pk, kMax);
  Bytes out, in, plain;
  [&] {
    if ((o.cloud_error = ch.start(&out)) != ChannelError::Ok) return;
    if (!write_frame(w.cloud, out, nullptr)) return;
    if (read_frame(w.cloud, kMaxFrame, kTimeoutMs, &in) != FrameResult::Ok) return;
    if ((o.cloud_error = ch.finish(in)) != ChannelError::Ok) return;
    for (int i = 0; i <= count; ++i) {
      const std::string msg = i == count ? "bye" : "secret request " + std::to_string(i);
      const Bytes m(msg.begin(), msg.end());
      if ((o.cloud_error = ch.seal(m, &out, i == count)) != ChannelError::Ok) return;
      if (!write_frame(w.cloud, out, nullptr)) return;
    }
    shutdown(w.cloud, SHUT_WR);  // all sent; the answers still come back
    while (read_frame(w.cloud, kMaxFrame, kTimeoutMs, &in) == FrameResult::Ok) {
      if ((o.cloud_error = ch.open(in, &plain)) != ChannelError::Ok) return;
      o.replies.emplace_back(plain.begin(), plain.end());
    }
  }();
  shutdown(w.cloud, SHUT_WR);
  device.join();
  relay_up.join();
  relay_down.join();
  return o;
}

bool contains(const std::vector<Bytes>& frames, const std::string& text) {
  for (const Bytes& f : frames) {
    if (std::search(f.begin(), f.end(), text.begin(), text.end()) != f.end()) return true;
  }
  return false;
}

TEST(SecureLink, EndToEndThroughARelayThatSeesOnlyCiphertext) {
  const Outcome o = run(50, pass);
  EXPECT_EQ(o.cloud_error, ChannelError::Ok);
  EXPECT_EQ(o.device.error, ChannelError::Ok);
  ASSERT_EQ(o.replies.size(), 50u);
  EXPECT_EQ(o.replies[7], "SECRET REQUEST 7");
  ASSERT_EQ(o.device.received.size(), 51u);
  EXPECT_EQ(o.device.received.back(), "bye");
  EXPECT_TRUE(o.device.saw_final);
  EXPECT_EQ(o.up_seen.size(), 52u);  // hello + 51
  EXPECT_FALSE(contains(o.up_seen, "secret"));
  EXPECT_FALSE(contains(o.down_seen, "SECRET"));
}

TEST(SecureLink, RelayFlippingABitIsDetected) {
  const Outcome o = run(10, [](size_t n, const Bytes& f) {
    Bytes g = f;
    if (n == 4) g[g.size() / 2] ^= 0x10;
    return std::vector<Bytes>{g};
  });
  EXPECT_EQ(o.device.error, ChannelError::AuthFailed);
  EXPECT_EQ(o.device.received.size(), 3u);  // requests 0..2 (frames 1..3)
  EXPECT_FALSE(o.device.saw_final);
  EXPECT_EQ(o.replies.size(), 3u);
}

TEST(SecureLink, RelayReplayingAFrameIsDetected) {
  const Outcome o = run(10, [](size_t n, const Bytes& f) {
    return n == 2 ? std::vector<Bytes>{f, f} : std::vector<Bytes>{f};
  });
  EXPECT_EQ(o.device.error, ChannelError::AuthFailed);
  EXPECT_EQ(o.device.received.size(), 2u);
}

TEST(SecureLink, RelayDroppingAFrameIsDetected) {
  const Outcome o = run(10, [](size_t n, const Bytes& f) {
    return n == 3 ? std::vector<Bytes>{} : std::vector<Bytes>{f};  // request 2 dropped
  });
  EXPECT_EQ(o.device.error, ChannelError::AuthFailed);  // at request 3
  EXPECT_EQ(o.device.received, (std::vector<std::string>{"secret request 0", "secret request 1"}));
}

TEST(SecureLink, RelayReorderingFramesIsDetected) {
  Bytes held;
  const Outcome o = run(10, pass, [&](size_t n, const Bytes& f) {
    if (n == 2) {  // hold answer 1, send it after answer 2
      held = f;
      return std::vector<Bytes>{};
    }
    return n == 3 ? std::vector<Bytes>{f, held} : std::vector<Bytes>{f};
  });
  EXPECT_EQ(o.cloud_error, ChannelError::AuthFailed);
  EXPECT_EQ(o.replies, (std::vector<std::string>{"SECRET REQUEST 0"}));
}

TEST(SecureLink, RelayEndingTheStreamEarlyIsVisible) {
  // Frames after request 4 never arrive: the device's peer_finished() stays false, so a
  // truncated session is not mistaken for a complete one.
  const Outcome o = run(10, [](size_t n, const Bytes& f) {
    return n > 5 ? std::vector<Bytes>{} : std::vector<Bytes>{f};
  });
  EXPECT_EQ(o.device.error, ChannelError::Ok);
  EXPECT_EQ(o.device.received.size(), 5u);
  EXPECT_FALSE(o.device.saw_final);
}

TEST(SecureLink, ImpostorDeviceBehindTheRelayIsRefused) {
  // The relay answers the hello itself, with a key pair of its own.
  KxKeyPair cloud_id, device_id, mallory;
  ASSERT_GE(sodium_init(), 0);
  crypto_kx_keypair(cloud_id.pk, cloud_id.sk);
  crypto_kx_keypair(device_id.pk, device_id.sk);
  crypto_kx_keypair(mallory.pk, mallory.sk);
  int s[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, s), 0);
  std::thread impostor([&] {
    SecureChannel fake(Role::Responder, mallory, cloud_id.pk, kMax);
    Bytes in, out;
    if (read_frame(s[1], kMaxFrame, kTimeoutMs, &in) != FrameResult::Ok) return;
    if (fake.respond(in, &out) == ChannelError::Ok) write_frame(s[1], out, nullptr);
  });
  SecureChannel cloud(Role::Initiator, cloud_id, device_id.pk, kMax);
  Bytes hello, reply;
  ASSERT_EQ(cloud.start(&hello), ChannelError::Ok);
  ASSERT_TRUE(write_frame(s[0], hello, nullptr));
  ASSERT_EQ(read_frame(s[0], kMaxFrame, kTimeoutMs, &reply), FrameResult::Ok);
  EXPECT_EQ(cloud.finish(reply), ChannelError::KeyConfirmFailed);
  impostor.join();
  close(s[0]);
  close(s[1]);
}

}  // namespace
}  // namespace rplayer::link
