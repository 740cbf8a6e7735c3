// How a TEEC_Context reaches a TEE core: the C++ seam under the C API. The client library
// marshals a TEEC_Operation into a tee::Operation (smc_wire.h) and hands it to a Transport:
// the socket transport (emulated SMC to rplayer-tee) or the in-process one
// (tee/core/inproc.h). Tests also use transports directly to send what the C API would
// refuse to, so the core's own validation is exercised.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "tee/smc_wire.h"
#include "tee/teec/tee_client_api.h"

namespace rplayer::teec {

struct CallStatus {
  TEEC_Result result = TEEC_SUCCESS;
  uint32_t origin = TEEC_ORIGIN_API;
  bool ok() const { return result == TEEC_SUCCESS; }
};

class Transport {
 public:
  virtual ~Transport() = default;  // disconnects: the core closes what is left open

  // Largest total of inline memref bytes per call; the client bounces larger ones through
  // shared memory.
  virtual size_t max_inline_bytes() const = 0;
  // Registers a sealed memfd with the TEE, which maps it. `fd` remains the caller's.
  virtual CallStatus register_shm(int fd, uint32_t* shm_id) = 0;
  virtual CallStatus release_shm(uint32_t shm_id) = 0;
  virtual CallStatus open_session(const TEEC_UUID& uuid, uint32_t login, tee::Operation& op,
                                  uint32_t* session_id) = 0;
  virtual CallStatus invoke(uint32_t session_id, uint32_t cmd, tee::Operation& op) = 0;
  virtual CallStatus close_session(uint32_t session_id) = 0;
};

// The socket transport. connect_socket: nullptr (status set) if nothing listens at path.
std::unique_ptr<Transport> connect_socket(const std::string& path, CallStatus* status);
// Over an already connected SOCK_SEQPACKET socket; takes ownership of fd.
std::unique_ptr<Transport> socket_transport(int fd);

// The in-process core, if the process registered one (rplayer::tee::register_inproc_core).
// Each TEEC_InitializeContext("inproc") calls the factory once: one client per context.
using InprocFactory = std::function<std::unique_ptr<Transport>()>;
void set_inproc_factory(InprocFactory factory);  // empty: none

}  // namespace rplayer::teec
