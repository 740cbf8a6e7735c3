// The normal-world client application's side of the GPU shim TA (cloud recording): a thin
// wrapper over the TEE Client API that moves the channel's opaque bytes (it cannot read
// them) between the TA and whatever carries them to the cloud.
#pragma once

#include <tee_client_api.h>

#include <cstdint>
#include <string>
#include <vector>

#include "tee/gpu_shim_ta_protocol.h"
#include "tee/replay_client.h"

namespace rplayer::tee {

class GpuShimClient {
 public:
  GpuShimClient() = default;
  ~GpuShimClient() { close(); }
  GpuShimClient(const GpuShimClient&) = delete;
  GpuShimClient& operator=(const GpuShimClient&) = delete;

  // `tee`: the TEE's socket path, or "inproc".
  TeeStatus open(const std::string& tee);
  void close();  // closing the session ends a recording session in progress

  // The cloud's hello and public key in; the TA's reply (u32 length, reply, sealed hello).
  TeeStatus connect(const std::vector<uint8_t>& hello, const std::vector<uint8_t>& cloud_key,
                    std::vector<uint8_t>* out);
  // One sealed frame in, its sealed reply out; waits the TA takes in slices are resumed
  // here. *ended: the TA closed the recording session (final message acknowledged, or a
  // frame refused: the reply is the sealed refusal for the cloud).
  TeeStatus exchange(const std::vector<uint8_t>& sealed, std::vector<uint8_t>* reply, bool* ended);
  TeeStatus end_session();

 private:
  TEEC_Context ctx_{};
  TEEC_Session session_{};
  bool have_ctx_ = false, open_ = false;
  std::vector<uint8_t> buf_;
};

}  // namespace rplayer::tee
