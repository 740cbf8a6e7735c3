// The GPU shim TA between a cloud (the secure channel's initiator, here the test) and a
// normal world that relays: a session holds the GPU until the cloud's final message; a
// replayed, reordered or forged frame, an untrusted cloud, or the client going away ends it
// with the GPU reset, the pool scrubbed and the GPU back with the normal world.
#include "tee/gpu_shim_ta.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "hw/soc.h"
#include "hw/v3d_regs.h"
#include "keyring/keys.h"
#include "link/shim_wire.h"
#include "tee/gpu_shim_ta_protocol.h"
#include "tests/common/pool_oracle.h"

namespace rplayer {
namespace {

using namespace rplayer::v3d;

struct Fixture {
  Fixture() : soc(config()), sw(soc.port(hw::World::Secure)) {
    cloud = keyring::keypair_from_seed({7});
    device = keyring::keypair_from_seed({8});
    tee::GpuShimTaConfig c;
    c.shim.port = &soc.port(hw::World::Secure);
    c.shim.pool_pa = soc.memory().secure_base();
    c.shim.pool_bytes = soc.memory().secure_size();
    c.gpu_switch = &sw;
    c.claim_timeout_us = 100'000;
    c.trusted_clouds = {cloud.public_key};
    EXPECT_TRUE(link::kx_from_signing_key(device.secret_key.data(), &c.device_key));
    ta = std::make_unique<tee::GpuShimTa>(c);
    oracle = std::make_unique<test::PoolOracle>(soc.gpu(), c.shim.pool_pa, c.shim.pool_bytes);
  }
  static hw::SocConfig config() {
    hw::SocConfig c;
    c.normal_bytes = 32ull << 20;
    c.secure_bytes = 16ull << 20;
    c.timing.scale = 0.5;
    return c;
  }
  // CONNECT as a client would, with the cloud's channel on the other end.
  TEE_Result connect(void* s, const keyring::KeyPair& as_cloud) {
    link::KxKeyPair own;
    uint8_t device_kx[link::kKeyBytes];
    EXPECT_TRUE(link::kx_from_signing_key(as_cloud.secret_key.data(), &own));
    EXPECT_TRUE(link::kx_public_from_signing_public(device.public_key.data(), device_kx));
    channel = std::make_unique<link::SecureChannel>(link::Role::Initiator, own, device_kx, 1 << 20);
    std::vector<uint8_t> hello, out(64 * 1024);
    EXPECT_EQ(channel->start(&hello), link::ChannelError::Ok);
    TEE_Param p[4] = {};
    p[0].memref = {hello.data(), hello.size()};
    p[1].memref = {const_cast<uint8_t*>(as_cloud.public_key.data()), as_cloud.public_key.size()};
    p[2].memref = {out.data(), out.size()};
    const TEE_Result r =
        ta->invoke(s, tee::kGpuShimConnect,
                   TEE_PARAM_TYPES(TEE_PARAM_TYPE_MEMREF_INPUT, TEE_PARAM_TYPE_MEMREF_INPUT,
                                   TEE_PARAM_TYPE_MEMREF_OUTPUT, TEE_PARAM_TYPE_NONE),
                   p);
    if (r != TEE_SUCCESS) return r;
    const uint32_t n = out[0] | out[1] << 8 | out[2] << 16 | uint32_t(out[3]) << 24;
    EXPECT_EQ(channel->finish({out.data() + 4, n}), link::ChannelError::Ok);
    std::vector<uint8_t> hb;
    EXPECT_EQ(channel->open({out.data() + 4 + n, p[2].memref.size - 4 - n}, &hb),
              link::ChannelError::Ok);
    EXPECT_TRUE(link::decode_hello(hb, &hello_));
    return r;
  }
  // One sealed frame through EXCHANGE (resuming slices); *ended as the TA says.
  TEE_Result exchange(void* s, const std::vector<uint8_t>& sealed, std::vector<uint8_t>* reply,
                      bool* ended) {
    std::vector<uint8_t> out(1 << 20);
    TEE_Param p[4] = {};
    p[0].memref = {const_cast<uint8_t*>(sealed.data()), sealed.size()};
    for (;;) {
      p[1].memref = {out.data(), out.size()};
      const TEE_Result r =
          ta->invoke(s, tee::kGpuShimExchange,
                     TEE_PARAM_TYPES(TEE_PARAM_TYPE_MEMREF_INPUT, TEE_PARAM_TYPE_MEMREF_OUTPUT,
                                     TEE_PARAM_TYPE_VALUE_OUTPUT, TEE_PARAM_TYPE_NONE),
                     p);
      if (r != TEE_SUCCESS) return *ended = true, r;
      if (p[2].value.a == 1) {
        p[0].memref = {nullptr, 0};
        continue;
      }
      *ended = p[2].value.b == 1;
      reply->assign(out.begin(), out.begin() + p[1].memref.size);
      return r;
    }
  }
  std::vector<uint8_t> sealed_read(uint32_t seq) {
    link::ShimOp op;
    op.kind = link::ShimOpKind::Read, op.block = uint8_t(hw::RegBlock::Hub), op.offset = HUB_IDENT1;
    std::vector<uint8_t> frame, sealed;
    link::encode_request(seq, std::vector<link::ShimOp>{op}, &frame);
    EXPECT_EQ(channel->seal(frame, &sealed), link::ChannelError::Ok);
    return sealed;
  }
  void expect_released() {
    EXPECT_FALSE(ta->recording());
    EXPECT_FALSE(sw.claimed());
    EXPECT_TRUE(ta->pool_is_clean());
    EXPECT_FALSE(soc.gpu().secure()) << "the GPU went back to the normal world";
    EXPECT_EQ(oracle->escapes(), 0u) << oracle->what();
  }

  hw::ModeledSoc soc;
  tee::GpuWorldSwitch sw;
  keyring::KeyPair cloud, device;
  std::unique_ptr<tee::GpuShimTa> ta;
  std::unique_ptr<test::PoolOracle> oracle;
  std::unique_ptr<link::SecureChannel> channel;
  link::ShimHello hello_;
};

void* open(Fixture& f) {
  void* s = nullptr;
  EXPECT_EQ(f.ta->open_session(0, nullptr, &s), TEE_SUCCESS);
  return s;
}

TEST(GpuShimTa, ASessionHoldsTheGpuUntilTheCloudsFinalMessage) {
  Fixture f;
  void* s = open(f);
  ASSERT_EQ(f.connect(s, f.cloud), TEE_SUCCESS);
  EXPECT_TRUE(f.ta->recording());
  EXPECT_TRUE(f.soc.gpu().secure());
  EXPECT_EQ(f.hello_.pool_pa, f.soc.memory().secure_base());
  std::vector<uint8_t> reply, plain;
  bool ended = false;
  ASSERT_EQ(f.exchange(s, f.sealed_read(0), &reply, &ended), TEE_SUCCESS);
  EXPECT_FALSE(ended);
  ASSERT_EQ(f.channel->open(reply, &plain), link::ChannelError::Ok);
  link::ShimReply r;
  ASSERT_EQ(link::decode_reply(plain, {}, &r), link::WireCode::Ok);
  ASSERT_EQ(r.results.size(), 1u);
  EXPECT_EQ(r.results[0].value, f.hello_.hub_ident[1]);
  // The end: the TA acknowledges with its account, and lets the GPU go.
  std::vector<uint8_t> fin;
  ASSERT_EQ(f.channel->seal({}, &fin, true), link::ChannelError::Ok);
  ASSERT_EQ(f.exchange(s, fin, &reply, &ended), TEE_SUCCESS);
  EXPECT_TRUE(ended);
  bool final = false;
  ASSERT_EQ(f.channel->open(reply, &plain, &final), link::ChannelError::Ok);
  EXPECT_TRUE(final);
  link::DeviceStats ds;
  EXPECT_TRUE(link::decode_device_stats(plain, &ds));
  EXPECT_EQ(ds.frames, 1u);
  f.expect_released();
  f.ta->close_session(s);
}

TEST(GpuShimTa, AReplayedFrameEndsTheSession) {
  Fixture f;
  void* s = open(f);
  ASSERT_EQ(f.connect(s, f.cloud), TEE_SUCCESS);
  const std::vector<uint8_t> frame = f.sealed_read(0);
  std::vector<uint8_t> reply;
  bool ended = false;
  ASSERT_EQ(f.exchange(s, frame, &reply, &ended), TEE_SUCCESS);
  EXPECT_EQ(f.exchange(s, frame, &reply, &ended), TEE_ERROR_SECURITY);  // the same again
  EXPECT_TRUE(ended);
  f.expect_released();
  f.ta->close_session(s);
}

TEST(GpuShimTa, ReorderedAndForgedFramesEndTheSession) {
  for (const bool forge : {false, true}) {
    Fixture f;
    void* s = open(f);
    ASSERT_EQ(f.connect(s, f.cloud), TEE_SUCCESS);
    std::vector<uint8_t> first = f.sealed_read(0), second = f.sealed_read(1), reply;
    bool ended = false;
    if (forge) first[first.size() / 2] ^= 1;
    EXPECT_EQ(f.exchange(s, forge ? first : second, &reply, &ended), TEE_ERROR_SECURITY);
    f.expect_released();
    f.ta->close_session(s);
  }
}

TEST(GpuShimTa, AnUntrustedCloudIsRefusedAndTheGpuNeverClaimed) {
  Fixture f;
  void* s = open(f);
  const keyring::KeyPair stranger = keyring::keypair_from_seed({9});
  EXPECT_EQ(f.connect(s, stranger), TEE_ERROR_ACCESS_DENIED);
  f.expect_released();
  f.ta->close_session(s);
}

TEST(GpuShimTa, TheClientGoingAwayEndsTheSession) {
  Fixture f;
  void* s = open(f);
  ASSERT_EQ(f.connect(s, f.cloud), TEE_SUCCESS);
  std::vector<uint8_t> reply;
  bool ended = false;
  ASSERT_EQ(f.exchange(s, f.sealed_read(0), &reply, &ended), TEE_SUCCESS);
  const auto t0 = std::chrono::steady_clock::now();
  f.ta->close_session(s);  // what the TEE core does when the client dies
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  f.expect_released();
  EXPECT_LT(ms, 500.0) << "the GPU is back within the stated bound";
  std::printf("released in %.1f ms\n", ms);
}

}  // namespace
}  // namespace rplayer
