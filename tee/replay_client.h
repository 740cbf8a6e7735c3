// The normal-world client application's side of the replay TA: a small C++ wrapper over
// the TEE Client API (tee_client_api.h). It only moves opaque bytes: the recording file,
// the encoded image, and back the top-k classes; the plaintext input tensor exists only
// inside the TA.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <tee_client_api.h>

#include "tee/replay_ta_protocol.h"

namespace rplayer::tee {

struct TeeStatus {
  TEEC_Result result = TEEC_SUCCESS;
  uint32_t origin = 0;
  std::string detail;  // the TA's reason for a refused load, if any
  bool ok() const { return result == TEEC_SUCCESS; }
  std::string message() const;  // "TEEC_ERROR_SIGNATURE_INVALID from the trusted app: ..."
};

const char* teec_result_name(TEEC_Result r);

// A session with the TA `uuid` on `tee` (the TEE's socket path, or "inproc"); *have_ctx and
// *open say what close_ta_session has to close. Shared by the TAs' client wrappers.
TeeStatus open_ta_session(const std::string& tee, const TEEC_UUID& uuid, TEEC_Context* ctx,
                          TEEC_Session* session, bool* have_ctx, bool* open);
void close_ta_session(TEEC_Context* ctx, TEEC_Session* session, bool* have_ctx, bool* open);

class ReplayClient {
 public:
  ReplayClient() = default;
  ~ReplayClient() { close(); }
  ReplayClient(const ReplayClient&) = delete;
  ReplayClient& operator=(const ReplayClient&) = delete;

  // `tee`: the TEE's socket path, or "inproc".
  TeeStatus open(const std::string& tee);
  void close();

  // `model_file`: the whole model file, for a recording that omits its weights (empty:
  // none sent).
  TeeStatus load(const std::vector<uint8_t>& recording, uint32_t* handle, uint32_t* classes,
                 const std::vector<uint8_t>& model_file = {});
  // Classifies an encoded image (or, with kReplayInputTensor, a float32 tensor).
  TeeStatus classify(uint32_t handle, const std::vector<uint8_t>& input, uint32_t k,
                     std::vector<TopEntry>* top, RunStats* stats,
                     ReplayTaInput kind = kReplayInputImage);
  // All scores (refused by a TA restricted to top-k).
  TeeStatus scores(uint32_t handle, const std::vector<uint8_t>& input, ReplayTaInput kind,
                   std::vector<float>* out, RunStats* stats);
  TeeStatus unload(uint32_t handle);

  // Raw access for tests that send what the wrapper would not.
  TEEC_Session* session() { return open_ ? &session_ : nullptr; }

 private:
  TeeStatus run(uint32_t handle, const std::vector<uint8_t>& input, uint32_t k, ReplayTaInput kind,
                void* out, size_t out_bytes, RunStats* stats, size_t* written);
  TEEC_Context ctx_{};
  TEEC_Session session_{};
  bool have_ctx_ = false, open_ = false;
};

}  // namespace rplayer::tee
