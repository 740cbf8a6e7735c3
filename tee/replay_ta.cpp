#include "tee/replay_ta.h"

#include <strings.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <thread>

#include "hw/v3d_regs.h"
#include "nn/image.h"
#include "nn/preprocess.h"
#include "nn/scores.h"
#include "replay/decoder.h"
#include "tee/replay_ta_protocol.h"
#include "tee/ta_text.h"

namespace rplayer::tee {

using namespace rplayer::v3d;

// A verified recording with its replay session (pages in the carve-out).
struct ReplayTa::Loaded {
  replay::Recording rec;
  std::unique_ptr<replay::Replayer> replayer;
  const replay::Binding* input = nullptr;
  const replay::Binding* output = nullptr;
  nn::Preprocess preprocess = nn::Preprocess::kNone;
  Session* owner = nullptr;
};

namespace {

constexpr uint32_t kTypeNone = TEE_PARAM_TYPE_NONE;
constexpr uint32_t kMaxTopK = 1000;
constexpr uint32_t kMaxImageSide = 4096;  // the largest model input image the TA resizes to

uint64_t now_us() {
  return uint64_t(std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::steady_clock::now().time_since_epoch())
                      .count());
}

uint32_t since(uint64_t t0) { return uint32_t(now_us() - t0); }

std::string meta(const replay::Recording& rec, const char* key) {
  for (const auto& [k, v] : rec.metadata)
    if (k == key) return v;
  return {};
}

TEE_Result decode_result(replay::DecodeCode c) {
  switch (c) {
    case replay::DecodeCode::UnknownKey:
    case replay::DecodeCode::BadSignature:
    case replay::DecodeCode::BadSignatureSection: return TEE_ERROR_SIGNATURE_INVALID;
    case replay::DecodeCode::ChecksumMismatch: return TEE_ERROR_MAC_INVALID;
    case replay::DecodeCode::LimitExceeded: return TEE_ERROR_EXCESS_DATA;
    case replay::DecodeCode::LibraryFailure: return TEE_ERROR_GENERIC;
    default: return TEE_ERROR_BAD_FORMAT;
  }
}

TEE_Result replay_result(const replay::ReplayError& e) {
  switch (e.code) {
    case replay::ReplayCode::Ok: return TEE_SUCCESS;
    case replay::ReplayCode::Verify:
      return e.verify.code == replay::VerifyCode::SkuMismatch ? TEE_ERROR_NOT_SUPPORTED
                                                              : TEE_ERROR_SECURITY;
    case replay::ReplayCode::NoMemory: return TEE_ERROR_OUT_OF_MEMORY;
    case replay::ReplayCode::MissingInput:
    case replay::ReplayCode::MissingWeights:
    case replay::ReplayCode::MissingOutput: return TEE_ERROR_BAD_PARAMETERS;
    case replay::ReplayCode::WeightsMismatch:
      return TEE_ERROR_SECURITY;
    case replay::ReplayCode::NotLoaded: return TEE_ERROR_BAD_STATE;
    default: return TEE_ERROR_GENERIC;  // GPU timeouts, faults, mismatched reads
  }
}

}  // namespace

ReplayTa::ReplayTa(ReplayTaConfig cfg)
    : cfg_(std::move(cfg)),
      platform_(std::make_unique<SocPlatform>(*cfg_.port, cfg_.pool_pa, cfg_.pool_bytes)),
      own_switch_(cfg_.gpu_switch
                      ? nullptr
                      : std::make_unique<GpuWorldSwitch>(*cfg_.port, 200000, cfg_.share)),
      switch_(cfg_.gpu_switch ? cfg_.gpu_switch : own_switch_.get()) {}

ReplayTa::~ReplayTa() {
  loaded_.clear();  // each Replayer scrubs and frees its pages
  if (switch_->claimed()) switch_->release(0);
}

TEE_UUID ReplayTa::uuid() const {
  TEE_UUID u{ReplayTaUuid::time_low, ReplayTaUuid::time_mid, ReplayTaUuid::time_hi_and_version, {}};
  std::memcpy(u.clockSeqAndNode, ReplayTaUuid::clock_seq_and_node, 8);
  return u;
}

// The GPU this TEE drives, read once: recordings for another GPU are refused at load.
bool ReplayTa::identify_gpu() {
  hw::SocPort& port = *cfg_.port;
  auto read_ident = [&] {
    gpu_ = {port.read32(hw::RegBlock::Hub, HUB_IDENT1), port.read32(hw::RegBlock::Hub, HUB_IDENT3),
            port.read32(hw::RegBlock::Core0, CTL_IDENT0),
            port.read32(hw::RegBlock::Core0, CTL_IDENT1)};
    return gpu_.hub_ident1 != 0;
  };
  if (read_ident()) return true;
  if (!port.has_block(hw::RegBlock::Sms)) return false;
  // Powered off (before the normal world's driver ran): power it up to read IDENT.
  port.write32(hw::RegBlock::Sms, SMS_TEE_CS, SMS_CLEAR_POWER_OFF);
  for (int i = 0; i < 1000; ++i) {  // bounded: 100 ms
    if ((port.read32(hw::RegBlock::Sms, SMS_TEE_CS) & SMS_STATE_MASK) == SMS_IDLE) break;
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  return read_ident();
}

TEE_Result ReplayTa::create() {
  if (!cfg_.port) return TEE_ERROR_BAD_STATE;
  return identify_gpu() ? TEE_SUCCESS : TEE_ERROR_NOT_SUPPORTED;
}

TEE_Result ReplayTa::open_session(uint32_t, TEE_Param*, void** session_ctx) {
  *session_ctx = new Session;
  return TEE_SUCCESS;
}

void ReplayTa::close_session(void* session_ctx) {
  auto* s = static_cast<Session*>(session_ctx);
  for (uint32_t h : s->handles) loaded_.erase(h);  // scrubs and frees its pages
  delete s;
}

TEE_Result ReplayTa::invoke(void* session_ctx, uint32_t cmd, uint32_t types, TEE_Param p[4]) {
  auto* s = static_cast<Session*>(session_ctx);
  switch (cmd) {
    case kReplayTaLoadRecording: return load(s, types, p);
    case kReplayTaRun: return run(s, types, p);
    case kReplayTaUnload: return unload(s, types, p);
    default: return TEE_ERROR_NOT_SUPPORTED;
  }
}

TEE_Result ReplayTa::load(Session* s, uint32_t types, TEE_Param* p) {
  const uint32_t t2 = TEE_PARAM_TYPE_GET(types, 2), t3 = TEE_PARAM_TYPE_GET(types, 3);
  if (TEE_PARAM_TYPE_GET(types, 0) != TEE_PARAM_TYPE_MEMREF_INPUT ||
      TEE_PARAM_TYPE_GET(types, 1) != TEE_PARAM_TYPE_VALUE_OUTPUT ||
      (t2 != kTypeNone && t2 != TEE_PARAM_TYPE_MEMREF_OUTPUT) ||
      (t3 != kTypeNone && t3 != TEE_PARAM_TYPE_MEMREF_INPUT))
    return TEE_ERROR_BAD_PARAMETERS;
  if (p[0].memref.size > cfg_.max_recording_bytes)
    return say(types, p, 2, "recording too large"), TEE_ERROR_EXCESS_DATA;
  if (t3 != kTypeNone && p[3].memref.size > cfg_.max_model_bytes)
    return say(types, p, 2, "model file too large"), TEE_ERROR_EXCESS_DATA;
  if (loaded_.size() >= cfg_.max_loaded)
    return say(types, p, 2, "too many recordings loaded"), TEE_ERROR_BUSY;
  // Copy before checking: the client can still write its shared memory.
  const std::vector<uint8_t> bytes(
      static_cast<const uint8_t*>(p[0].memref.buffer),
      static_cast<const uint8_t*>(p[0].memref.buffer) + p[0].memref.size);
  auto l = std::make_unique<Loaded>();
  char why[256];
  // Decoded, a recording takes at most what its pages need in the pool: budget that much.
  const replay::DecodeError de =
      replay::decode_recording(bytes, cfg_.trusted_keys, &l->rec, cfg_.pool_bytes);
  if (!de.ok()) return say(types, p, 2, de.format(why, sizeof why)), decode_result(de.code);
  for (const replay::Binding& b : l->rec.bindings) {
    if (b.is_input && !l->input) l->input = &b;
    if (!b.is_input && !l->output) l->output = &b;
  }
  if (!l->input || !l->output || l->rec.bindings.size() != 2)
    return say(types, p, 2, "the TA replays recordings with one input and one output"),
           TEE_ERROR_NOT_SUPPORTED;
  if (l->rec.weights_omitted && t3 == kTypeNone)
    return say(types, p, 2, "the recording omits its weights: send the model file"),
           TEE_ERROR_BAD_PARAMETERS;
  // The model file, copied before use (the client can still write its shared memory): the
  // replayer checks it against the recording's digests and copies the weights into the
  // session's pages, where they stay until unload; this copy is dropped after the load.
  std::vector<uint8_t> model;
  if (l->rec.weights_omitted)
    model.assign(static_cast<const uint8_t*>(p[3].memref.buffer),
                 static_cast<const uint8_t*>(p[3].memref.buffer) + p[3].memref.size);
  if (!nn::parse_preprocess(meta(l->rec, "preprocess"), &l->preprocess))
    l->preprocess = nn::Preprocess::kNone;  // tensor inputs only
  // The input shape sizes the image decode and resize in TA memory: only image shapes
  // (the verifier has checked that the extents' product is the binding's size).
  const std::vector<uint32_t>& shape = l->input->shape;
  if (l->preprocess != nn::Preprocess::kNone &&
      (shape.size() != 3 || (shape[0] != 1 && shape[0] != 3) || shape[1] == 0 ||
       shape[1] > kMaxImageSide || shape[2] == 0 || shape[2] > kMaxImageSide))
    return say(types, p, 2, "the image input's shape is not [1 or 3, H, W] with H, W <= 4096"),
           TEE_ERROR_NOT_SUPPORTED;
  l->replayer =
      std::make_unique<replay::Replayer>(*platform_, replay::limits_for_pool(cfg_.pool_bytes));
  const replay::ReplayError e = l->replayer->load(l->rec, &gpu_, model, nullptr);
  if (!e.ok()) return say(types, p, 2, e.format(why, sizeof why)), replay_result(e);
  l->owner = s;
  const uint32_t h = next_handle_++;
  p[1].value.a = h;
  p[1].value.b = l->output->bytes / 4;
  loaded_[h] = std::move(l);
  s->handles.push_back(h);
  if (t2 != kTypeNone) p[2].memref.size = 0;
  return TEE_SUCCESS;
}

TEE_Result ReplayTa::run(Session* s, uint32_t types, TEE_Param* p) {
  const uint64_t t0 = now_us();
  const uint32_t t3 = TEE_PARAM_TYPE_GET(types, 3);
  if (TEE_PARAM_TYPE_GET(types, 0) != TEE_PARAM_TYPE_VALUE_INPUT ||
      TEE_PARAM_TYPE_GET(types, 1) != TEE_PARAM_TYPE_MEMREF_INPUT ||
      TEE_PARAM_TYPE_GET(types, 2) != TEE_PARAM_TYPE_MEMREF_OUTPUT ||
      (t3 != kTypeNone && t3 != TEE_PARAM_TYPE_MEMREF_OUTPUT))
    return TEE_ERROR_BAD_PARAMETERS;
  auto it = loaded_.find(p[0].value.a);
  if (it == loaded_.end() || it->second->owner != s) return TEE_ERROR_ITEM_NOT_FOUND;
  Loaded& l = *it->second;
  const uint32_t k = p[0].value.b & 0xffff, kind = p[0].value.b >> 16;
  const uint32_t classes = l.output->bytes / 4;
  if (k > kMaxTopK || kind > kReplayInputTensor) return TEE_ERROR_BAD_PARAMETERS;
  if (k == 0 && cfg_.max_top_k > 0) return TEE_ERROR_ACCESS_DENIED;  // scores stay inside
  if (cfg_.max_top_k > 0 && k > cfg_.max_top_k) return TEE_ERROR_ACCESS_DENIED;
  const size_t out_bytes = k == 0 ? classes * 4 : std::min(k, classes) * sizeof(TopEntry);
  if (p[2].memref.size < out_bytes) {
    p[2].memref.size = out_bytes;
    return TEE_ERROR_SHORT_BUFFER;
  }
  if (t3 != kTypeNone && p[3].memref.size < sizeof(RunStats)) {
    p[3].memref.size = sizeof(RunStats);
    return TEE_ERROR_SHORT_BUFFER;
  }

  // The plaintext input exists only here, in TA memory, and is wiped after the run.
  RunStats st;
  // A refused run says why in p3 (when given): what failed and where, never data.
  auto refuse = [&](TEE_Result r, const char* why) {
    if (t3 != kTypeNone) {
      std::snprintf(st.error, sizeof st.error, "%s", why);
      std::memcpy(p[3].memref.buffer, &st, sizeof st);
      p[3].memref.size = sizeof st;
    }
    return r;
  };
  char why[sizeof st.error];
  const replay::Binding& in = *l.input;
  std::vector<float> input(in.bytes / 4);
  const uint8_t* src = static_cast<const uint8_t*>(p[1].memref.buffer);
  if (kind == kReplayInputTensor) {
    if (p[1].memref.size != in.bytes) {
      std::snprintf(why, sizeof why,
                    "the input tensor has %zu bytes, the recording's '%s' takes %u",
                    size_t(p[1].memref.size), in.name.c_str(), in.bytes);
      return refuse(TEE_ERROR_BAD_PARAMETERS, why);
    }
    std::memcpy(input.data(), src, in.bytes);
  } else {
    if (l.preprocess == nn::Preprocess::kNone || in.shape.size() != 3)
      return refuse(TEE_ERROR_NOT_SUPPORTED,
                    "the recording names no image preprocessing: send a tensor instead");
    try {
      const nn::Image img =
          nn::decode_image(std::vector<uint8_t>(src, src + p[1].memref.size), "input");
      nn::Tensor t = nn::preprocess_image(img, l.preprocess, int(in.shape[2]), int(in.shape[1]));
      if (t.size() * 4 != in.bytes) {
        std::snprintf(why, sizeof why, "the image gives %zu values, the recording's '%s' takes %u",
                      t.size(), in.name.c_str(), in.bytes / 4);
        return refuse(TEE_ERROR_BAD_PARAMETERS, why);
      }
      std::memcpy(input.data(), t.data(), in.bytes);
      explicit_bzero(t.data(), t.size() * 4);
    } catch (const std::exception& ex) {
      return refuse(TEE_ERROR_BAD_FORMAT, ex.what());  // not an image we can decode
    }
  }
  st.preprocess_us = since(t0);

  std::vector<float> scores(classes);
  if (switch_->claimed()) {  // held for a whole cloud recording session (GpuShimTa)
    explicit_bzero(input.data(), input.size() * 4);
    return refuse(TEE_ERROR_BUSY, "the GPU is lent to a cloud recording session");
  }
  if (cfg_.switch_worlds) {
    const ClaimResult c = switch_->claim(cfg_.claim_timeout_us);
    st.quiesce_us = c.quiesce_us, st.switch_in_us = c.switch_us, st.forced = c.forced;
    st.deferred_us = c.deferred_us;
    if (!c.ok()) {
      switch_->release(0);
      explicit_bzero(input.data(), input.size() * 4);
      return refuse(TEE_ERROR_BUSY, "the GPU could not be claimed from the normal world");
    }
  }
  const uint64_t t1 = now_us();
  const replay::TensorIn ti{in.name.c_str(), input.data(), in.bytes};
  const replay::TensorOut to{l.output->name.c_str(), scores.data(), l.output->bytes};
  replay::ReplayStats rs;
  const replay::ReplayError e = l.replayer->run({&ti, 1}, {&to, 1}, &rs);
  st.replay_us = since(t1);
  if (cfg_.switch_worlds) {
    const ReleaseResult r = switch_->release(cfg_.resume_wait_us);
    st.switch_out_us = r.switch_us, st.resume_us = r.resume_us;
  }
  explicit_bzero(input.data(), input.size() * 4);
  ++runs_;
  if (!e.ok()) return refuse(replay_result(e), e.format(why, sizeof why));

  if (k == 0) {
    std::memcpy(p[2].memref.buffer, scores.data(), out_bytes);
  } else {
    const auto top =
        nn::top_k(nn::as_probabilities(nn::Tensor(nn::Shape::vec(int(classes)), scores)), int(k));
    auto* out = static_cast<TopEntry*>(p[2].memref.buffer);
    for (size_t i = 0; i < top.size(); ++i) out[i] = {uint32_t(top[i].first), top[i].second};
  }
  explicit_bzero(scores.data(), scores.size() * 4);
  p[2].memref.size = out_bytes;
  st.jobs = rs.jobs, st.pages_loaded = rs.pages_loaded, st.pages_skipped = rs.pages_skipped;
  st.pages_scrubbed = rs.pages_scrubbed;
  st.total_us = since(t0);
  if (t3 != kTypeNone) {
    std::memcpy(p[3].memref.buffer, &st, sizeof st);
    p[3].memref.size = sizeof st;
  }
  return TEE_SUCCESS;
}

TEE_Result ReplayTa::unload(Session* s, uint32_t types, TEE_Param* p) {
  if (types != TEE_PARAM_TYPES(TEE_PARAM_TYPE_VALUE_INPUT, kTypeNone, kTypeNone, kTypeNone))
    return TEE_ERROR_BAD_PARAMETERS;
  auto it = loaded_.find(p[0].value.a);
  if (it == loaded_.end() || it->second->owner != s) return TEE_ERROR_ITEM_NOT_FOUND;
  loaded_.erase(it);
  std::erase(s->handles, p[0].value.a);
  return TEE_SUCCESS;
}

}  // namespace rplayer::tee
