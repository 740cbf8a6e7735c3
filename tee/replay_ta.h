// The replay trusted application: loads signed recordings (signature against the keys
// provisioned into the TEE, then the verifier), replays them on the GPU with inputs that
// never leave the secure world in plaintext (images are decoded and normalized here), and
// returns the scores or only the top-k classes. Around every run it claims the GPU from
// the normal world and gives it back (tee/gpu_switch.h). Commands: replay_ta_protocol.h.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "hw/soc_port.h"
#include "replay/recording.h"
#include "replay/replayer.h"
#include "replay/signature.h"
#include "tee/gpu_switch.h"
#include "tee/soc_platform.h"
#include "tee/ta_api.h"

namespace rplayer::tee {

struct ReplayTaConfig {
  hw::SocPort* port = nullptr;  // the secure world's
  uint64_t pool_pa = 0, pool_bytes = 0;  // replay pages: the secure carve-out
  std::vector<replay::PublicKey> trusted_keys;
  // Hand the GPU over around each run; false when the secure world owns it for good.
  bool switch_worlds = true;
  uint32_t claim_timeout_us = 2000000;  // the normal world's quiesce, then forced
  uint32_t resume_wait_us = 0;          // >0: wait for the normal driver to resume (measure it)
  FairShare share;                      // the normal world's share when both want the GPU
  GpuWorldSwitch* gpu_switch = nullptr;  // shared with other TAs (the GPU shim); none: own
  uint32_t max_top_k = 0;               // >0: RUN gives at most this many classes, never all scores
  uint32_t max_loaded = 4;              // recordings loaded at once, all sessions together
  uint64_t max_recording_bytes = 256ull << 20;
  uint64_t max_model_bytes = 256ull << 20;  // model files for weight-less recordings
};

class ReplayTa final : public TrustedApp {
 public:
  explicit ReplayTa(ReplayTaConfig cfg);
  ~ReplayTa() override;

  TEE_UUID uuid() const override;
  TEE_Result create() override;
  TEE_Result open_session(uint32_t param_types, TEE_Param params[TEE_NUM_PARAMS],
                          void** session_ctx) override;
  void close_session(void* session_ctx) override;
  TEE_Result invoke(void* session_ctx, uint32_t cmd, uint32_t param_types,
                    TEE_Param params[TEE_NUM_PARAMS]) override;

  // For tests and the TEE's log.
  uint32_t loaded() const { return uint32_t(loaded_.size()); }
  uint32_t runs() const { return runs_; }
  bool pool_is_clean() { return platform_->pages_in_use() == 0 && platform_->pool_is_clean(); }
  const replay::SkuIdentity& gpu() const { return gpu_; }

 private:
  struct Loaded;
  struct Session {
    std::vector<uint32_t> handles;
  };
  TEE_Result load(Session* s, uint32_t types, TEE_Param* p);
  TEE_Result run(Session* s, uint32_t types, TEE_Param* p);
  TEE_Result unload(Session* s, uint32_t types, TEE_Param* p);
  bool identify_gpu();

  ReplayTaConfig cfg_;
  std::unique_ptr<SocPlatform> platform_;
  std::unique_ptr<GpuWorldSwitch> own_switch_;
  GpuWorldSwitch* switch_;
  replay::SkuIdentity gpu_;
  std::map<uint32_t, std::unique_ptr<Loaded>> loaded_;
  uint32_t next_handle_ = 1;
  uint32_t runs_ = 0;
};

}  // namespace rplayer::tee
