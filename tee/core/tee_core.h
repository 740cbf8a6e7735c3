// The TEE core: hosts trusted applications (tee/ta_api.h) for any number of clients.
//
// Transports (the SMC socket server, the in-process transport) turn client requests into
// calls on TeeCore with a decoded tee::Operation (tee/smc_wire.h). The core owns the
// rules: it validates every parameter before a TA sees it, keeps per-client session and
// shared-memory tables, serializes all TA entry points with one mutex (one GPU), and closes
// a client's sessions when it goes away.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "tee/smc_wire.h"
#include "tee/ta_api.h"

namespace rplayer::tee {

// A shared-memory region mapped into the TEE. Held by shared_ptr so an invocation in
// progress keeps it mapped even if the client releases it meanwhile.
class SharedRegion {
 public:
  ~SharedRegion();
  SharedRegion(const SharedRegion&) = delete;
  SharedRegion& operator=(const SharedRegion&) = delete;

  // Maps a client's memfd read/write (MAP_SHARED: zero copy). Checked first: a regular
  // file of 1..max_bytes bytes, sealed with F_SEAL_SHRINK (otherwise the client could
  // truncate it and fault the TEE on access). nullptr + *error if not acceptable.
  static std::shared_ptr<SharedRegion> map_fd(int fd, uint64_t max_bytes, TEE_Result* error);
  // Memory the caller keeps alive and mapped for the region's lifetime (tests).
  static std::shared_ptr<SharedRegion> wrap(void* base, uint64_t size);

  uint8_t* base() const { return base_; }
  uint64_t size() const { return size_; }

 private:
  SharedRegion(uint8_t* base, uint64_t size, bool owned)
      : base_(base), size_(size), owned_(owned) {}
  uint8_t* base_;
  uint64_t size_;
  bool owned_;
};

class TeeCore {
 public:
  struct Limits {
    uint64_t max_memref_bytes = 64ull << 20;  // per memref
    uint64_t max_shm_bytes = 1ull << 30;      // per registered region
    uint32_t max_sessions_per_client = 64;
    uint32_t max_shm_per_client = 256;
  };
  struct TaOptions {
    // GP TA_FLAG_INSTANCE_KEEP_ALIVE: keep the instance (no destroy()) when its last session
    // closes. Default on: the replayer TA keeps its GPU state between clients.
    bool keep_alive = true;
  };
  struct Status {
    TEE_Result result = TEE_SUCCESS;
    uint32_t origin = TEE_ORIGIN_TEE;
    bool ok() const { return result == TEE_SUCCESS; }
  };
  using ClientId = uint64_t;

  TeeCore() : TeeCore(Limits{}) {}
  explicit TeeCore(Limits limits);
  // Closes the sessions of clients still connected and destroys live TA instances. No call
  // may be in progress.
  ~TeeCore();
  TeeCore(const TeeCore&) = delete;
  TeeCore& operator=(const TeeCore&) = delete;

  // TEE_ERROR_ACCESS_CONFLICT if a TA with that UUID is already registered.
  TEE_Result register_ta(std::shared_ptr<TrustedApp> ta, TaOptions options);
  TEE_Result register_ta(std::shared_ptr<TrustedApp> ta) {
    return register_ta(std::move(ta), TaOptions{});
  }

  // A client is one connection (one TEEC_Context).
  ClientId connect();
  // Waits for the client's calls in progress to return, then closes its sessions (TA
  // close_session) and releases its shared memory. Unknown ids are ignored.
  void disconnect(ClientId client);

  Status register_shm(ClientId client, std::shared_ptr<SharedRegion> region, uint32_t* shm_id);
  Status release_shm(ClientId client, uint32_t shm_id);

  // op: decoded parameters; on return (origin TRUSTED_APP) the TA's outputs: values, reported
  // memref sizes, and inline output bytes (only when the reported size fits the capacity).
  Status open_session(ClientId client, const TEE_UUID& uuid, uint32_t login, Operation& op,
                      uint32_t* session_id);
  Status invoke(ClientId client, uint32_t session_id, uint32_t cmd, Operation& op);
  Status close_session(ClientId client, uint32_t session_id);

  const Limits& limits() const { return limits_; }
  size_t session_count() const;
  size_t client_count() const;

 private:
  struct TaEntry {
    std::shared_ptr<TrustedApp> ta;
    TaOptions options;
    // Guarded by ta_mu_.
    bool alive = false;
    uint32_t sessions = 0;
  };
  struct Session {
    ClientId client;
    TaEntry* ta;
    void* ctx;
    uint32_t in_flight = 0;
    bool closing = false;
  };
  struct Client {
    std::map<uint32_t, std::shared_ptr<SharedRegion>> shm;
    uint32_t next_shm = 1;
    uint32_t sessions = 0;
    uint32_t in_flight = 0;  // calls in progress (blocks disconnect)
    bool closing = false;
  };
  // Params checked and turned into what the TA sees; regions pinned for the call.
  struct Prepared {
    TEE_Param params[TEE_NUM_PARAMS];
    std::shared_ptr<SharedRegion> regions[TEE_NUM_PARAMS];
  };

  Client* find_client_locked(ClientId client);
  Status check_params_locked(Client& c, Operation& op, Prepared* prep);
  Status bind_params(Operation& op, Prepared* prep);
  void finish_params(Operation& op, Prepared& prep);
  void end_call(ClientId client, Session* session);
  // Under ta_mu_: the TA's close_session, and destroy() if that was the last session.
  void close_in_ta(TaEntry* ta, void* ctx);

  const Limits limits_;
  mutable std::mutex mu_;  // tables below
  std::condition_variable cv_;
  std::mutex ta_mu_;  // every TA entry point
  std::map<std::vector<uint8_t>, TaEntry> tas_;
  std::unordered_map<ClientId, Client> clients_;
  std::unordered_map<uint32_t, Session> sessions_;
  ClientId next_client_ = 1;
  uint32_t next_session_ = 1;
};

}  // namespace rplayer::tee
