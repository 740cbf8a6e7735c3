// The GPU shim trusted application: the device half of cloud recording as a TA. It holds
// the GPU for the length of a recording session (claimed from the normal world through
// the shared GpuWorldSwitch), opens the secure channel with a cloud the TEE trusts, and
// feeds the frames it decrypts to a GpuShim confined to its own part of the carve-out.
// Commands: gpu_shim_ta_protocol.h.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "link/secure_channel.h"
#include "replay/signature.h"
#include "tee/gpu_shim.h"
#include "tee/gpu_switch.h"
#include "tee/ta_api.h"

namespace rplayer::tee {

struct GpuShimTaConfig {
  GpuShimConfig shim;                    // the secure port and the session's pool
  GpuWorldSwitch* gpu_switch = nullptr;  // shared with the replay TA
  uint32_t claim_timeout_us = 2'000'000;
  std::vector<replay::PublicKey> trusted_clouds;  // Ed25519: the recording signers
  link::KxKeyPair device_key{};                   // the device's channel identity
  size_t max_message = 64u << 20;
};

class GpuShimTa final : public TrustedApp {
 public:
  explicit GpuShimTa(GpuShimTaConfig cfg);
  ~GpuShimTa() override;

  TEE_UUID uuid() const override;
  TEE_Result create() override { return TEE_SUCCESS; }
  TEE_Result open_session(uint32_t param_types, TEE_Param params[TEE_NUM_PARAMS],
                          void** session_ctx) override;
  void close_session(void* session_ctx) override;
  TEE_Result invoke(void* session_ctx, uint32_t cmd, uint32_t param_types,
                    TEE_Param params[TEE_NUM_PARAMS]) override;

  // For tests and the TEE's log.
  bool recording() const { return owner_ != nullptr; }
  bool pool_is_clean() const { return shim_.pool_is_clean(); }
  const GpuShimStats& stats() const { return shim_.stats(); }

 private:
  struct Session {};
  TEE_Result connect(Session* s, uint32_t types, TEE_Param* p);
  TEE_Result exchange(Session* s, uint32_t types, TEE_Param* p);
  void end();  // GPU reset, pool scrubbed, GPU released

  GpuShimTaConfig cfg_;
  GpuShim shim_;
  Session* owner_ = nullptr;  // the session holding the GPU
  std::unique_ptr<link::SecureChannel> channel_;
  std::vector<uint8_t> plain_, sealed_;
};

}  // namespace rplayer::tee
