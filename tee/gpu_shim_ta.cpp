#include "tee/gpu_shim_ta.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "tee/gpu_shim_ta_protocol.h"
#include "tee/ta_text.h"

namespace rplayer::tee {

namespace {
constexpr uint32_t kTypeNone = TEE_PARAM_TYPE_NONE;
constexpr uint32_t kIn = TEE_PARAM_TYPE_MEMREF_INPUT;
constexpr uint32_t kOut = TEE_PARAM_TYPE_MEMREF_OUTPUT;

bool optional_text(uint32_t types) {
  const uint32_t t3 = TEE_PARAM_TYPE_GET(types, 3);
  return t3 == kTypeNone || t3 == kOut;
}
}  // namespace

GpuShimTa::GpuShimTa(GpuShimTaConfig cfg) : cfg_(std::move(cfg)), shim_(cfg_.shim) {}

GpuShimTa::~GpuShimTa() { end(); }

TEE_UUID GpuShimTa::uuid() const {
  TEE_UUID u{
      GpuShimTaUuid::time_low, GpuShimTaUuid::time_mid, GpuShimTaUuid::time_hi_and_version, {}};
  std::memcpy(u.clockSeqAndNode, GpuShimTaUuid::clock_seq_and_node, 8);
  return u;
}

TEE_Result GpuShimTa::open_session(uint32_t, TEE_Param*, void** session_ctx) {
  *session_ctx = new Session;
  return TEE_SUCCESS;
}

void GpuShimTa::close_session(void* session_ctx) {
  auto* s = static_cast<Session*>(session_ctx);
  if (owner_ == s) end();  // the client closed or died mid-recording
  delete s;
}

void GpuShimTa::end() {
  if (!owner_) return;
  owner_ = nullptr;
  channel_.reset();  // wipes the session keys
  shim_.close();     // GPU reset, pool scrubbed
  if (cfg_.gpu_switch && cfg_.gpu_switch->claimed()) cfg_.gpu_switch->release(0);
  // A session that ended before its first frame has no buffer (data() may be null).
  if (!plain_.empty()) explicit_bzero(plain_.data(), plain_.size());
}

TEE_Result GpuShimTa::invoke(void* session_ctx, uint32_t cmd, uint32_t types, TEE_Param p[4]) {
  auto* s = static_cast<Session*>(session_ctx);
  switch (cmd) {
    case kGpuShimConnect:
      return connect(s, types, p);
    case kGpuShimExchange:
      return exchange(s, types, p);
    case kGpuShimClose:
      if (types != TEE_PARAM_TYPES(kTypeNone, kTypeNone, kTypeNone, kTypeNone))
        return TEE_ERROR_BAD_PARAMETERS;
      if (owner_ != s) return TEE_ERROR_BAD_STATE;
      end();
      return TEE_SUCCESS;
    default:
      return TEE_ERROR_NOT_SUPPORTED;
  }
}

TEE_Result GpuShimTa::connect(Session* s, uint32_t types, TEE_Param* p) {
  if (TEE_PARAM_TYPE_GET(types, 0) != kIn || TEE_PARAM_TYPE_GET(types, 1) != kIn ||
      TEE_PARAM_TYPE_GET(types, 2) != kOut || !optional_text(types))
    return TEE_ERROR_BAD_PARAMETERS;
  if (owner_) return say(types, p, 3, "a cloud recording session is in progress"), TEE_ERROR_BUSY;
  if (!cfg_.gpu_switch) return say(types, p, 3, "no GPU hand-off"), TEE_ERROR_NOT_SUPPORTED;
  if (cfg_.gpu_switch->claimed()) return say(types, p, 3, "the GPU is in use"), TEE_ERROR_BUSY;
  // The cloud must be one whose recordings this TEE trusts: its signing key is its identity.
  replay::PublicKey cloud{};
  if (p[1].memref.size != cloud.size())
    return say(types, p, 3, "the cloud's key is not an Ed25519 public key"),
           TEE_ERROR_BAD_PARAMETERS;
  std::memcpy(cloud.data(), p[1].memref.buffer, cloud.size());
  if (std::find(cfg_.trusted_clouds.begin(), cfg_.trusted_clouds.end(), cloud) ==
      cfg_.trusted_clouds.end())
    return say(types, p, 3, "the cloud's key is not one this TEE trusts"), TEE_ERROR_ACCESS_DENIED;
  uint8_t cloud_kx[link::kKeyBytes];
  if (!link::kx_public_from_signing_public(cloud.data(), cloud_kx))
    return say(types, p, 3, "the cloud's key is not a valid Ed25519 point"),
           TEE_ERROR_BAD_PARAMETERS;

  auto channel = std::make_unique<link::SecureChannel>(link::Role::Responder, cfg_.device_key,
                                                       cloud_kx, cfg_.max_message);
  std::vector<uint8_t> reply;
  const std::span<const uint8_t> hello(static_cast<const uint8_t*>(p[0].memref.buffer),
                                       p[0].memref.size);
  if (const link::ChannelError e = channel->respond(hello, &reply); e != link::ChannelError::Ok)
    return say(types, p, 3, link::channel_error_name(e)), TEE_ERROR_SECURITY;

  const ClaimResult c = cfg_.gpu_switch->claim(cfg_.claim_timeout_us);
  if (!c.ok()) {
    cfg_.gpu_switch->release(0);
    return say(types, p, 3, "the GPU could not be claimed from the normal world"), TEE_ERROR_BUSY;
  }
  owner_ = s;
  channel_ = std::move(channel);
  link::ShimHello h;
  std::string why;
  if (!shim_.open(&h, &why)) {
    end();
    return say(types, p, 3, why.c_str()), TEE_ERROR_GENERIC;
  }
  uint8_t hb[link::kShimHelloBytes];
  link::encode_hello(h, hb);
  std::vector<uint8_t> sealed;
  if (channel_->seal(hb, &sealed) != link::ChannelError::Ok) {
    end();
    return say(types, p, 3, "sealing the hello failed"), TEE_ERROR_GENERIC;
  }
  const size_t need = 4 + reply.size() + sealed.size();
  if (p[2].memref.size < need) {
    p[2].memref.size = need;
    end();
    return TEE_ERROR_SHORT_BUFFER;
  }
  auto* out = static_cast<uint8_t*>(p[2].memref.buffer);
  const uint32_t n = uint32_t(reply.size());
  for (int i = 0; i < 4; ++i) out[i] = uint8_t(n >> (8 * i));
  std::memcpy(out + 4, reply.data(), reply.size());
  std::memcpy(out + 4 + reply.size(), sealed.data(), sealed.size());
  p[2].memref.size = need;
  return TEE_SUCCESS;
}

TEE_Result GpuShimTa::exchange(Session* s, uint32_t types, TEE_Param* p) {
  if (TEE_PARAM_TYPE_GET(types, 0) != kIn || TEE_PARAM_TYPE_GET(types, 1) != kOut ||
      TEE_PARAM_TYPE_GET(types, 2) != TEE_PARAM_TYPE_VALUE_OUTPUT || !optional_text(types))
    return TEE_ERROR_BAD_PARAMETERS;
  if (owner_ != s) return say(types, p, 3, "no recording session"), TEE_ERROR_BAD_STATE;
  p[2].value.a = p[2].value.b = 0;
  // Any failure from here on ends the session: a cloud that sent something wrong, or a
  // normal world that tampered with it, gets no second try on this GPU state.
  auto fail = [&](TEE_Result r, const char* why) {
    end();
    p[1].memref.size = 0;
    return say(types, p, 3, why), r;
  };
  std::vector<uint8_t> reply;
  GpuShim::Step step;
  if (p[0].memref.size == 0) {
    step = shim_.resume(&reply);
  } else {
    bool final = false;
    const std::span<const uint8_t> in(static_cast<const uint8_t*>(p[0].memref.buffer),
                                      p[0].memref.size);
    if (const link::ChannelError e = channel_->open(in, &plain_, &final);
        e != link::ChannelError::Ok)
      return fail(TEE_ERROR_SECURITY, link::channel_error_name(e));
    if (final) {
      // The cloud is done (its recording complete): acknowledge with the device's own
      // account of the session (link::encode_device_stats), then let the GPU go.
      p[2].value.b = 1;
      const GpuShimStats& st = shim_.stats();
      const std::vector<uint8_t> account =
          link::encode_device_stats({st.frames, st.ops, st.pages, st.wait_us, st.busy_us});
      if (channel_->seal(account, &sealed_, true) != link::ChannelError::Ok)
        return fail(TEE_ERROR_GENERIC, "sealing the acknowledgement failed");
      if (p[1].memref.size < sealed_.size()) return fail(TEE_ERROR_SHORT_BUFFER, "reply buffer");
      std::memcpy(p[1].memref.buffer, sealed_.data(), sealed_.size());
      p[1].memref.size = sealed_.size();
      end();
      return TEE_SUCCESS;
    }
    step = shim_.exchange(plain_, &reply);
  }
  if (step == GpuShim::Step::Pending) {
    p[2].value.a = 1;
    p[1].memref.size = 0;
    return TEE_SUCCESS;
  }
  const bool refused = step == GpuShim::Step::Refused;
  // A refusal still goes back to the cloud (sealed), so it learns why; then the session ends.
  if (channel_->seal(reply, &sealed_, refused) != link::ChannelError::Ok)
    return fail(TEE_ERROR_GENERIC, "sealing the reply failed");
  if (p[1].memref.size < sealed_.size()) return fail(TEE_ERROR_SHORT_BUFFER, "reply buffer");
  std::memcpy(p[1].memref.buffer, sealed_.data(), sealed_.size());
  p[1].memref.size = sealed_.size();
  if (refused) {
    link::ShimReply r;
    link::decode_reply(reply, {}, &r);
    const std::string why = std::string(link::shim_refusal_name(r.refusal)) + ": " + r.why;
    end();
    say(types, p, 3, why.c_str());
    p[2].value.b = 1;  // the session ended: the sealed refusal still goes to the cloud
  }
  return TEE_SUCCESS;
}

}  // namespace rplayer::tee
