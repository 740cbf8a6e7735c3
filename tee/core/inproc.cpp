#include "tee/core/inproc.h"

#include <cstring>

namespace rplayer::tee {
namespace {

teec::CallStatus to_call(const TeeCore::Status& s) { return {s.result, s.origin}; }

class InprocTransport final : public teec::Transport {
 public:
  explicit InprocTransport(TeeCore& core) : core_(core), id_(core.connect()) {}
  ~InprocTransport() override { core_.disconnect(id_); }

  // No message to fit: copies go directly into the core's operation.
  size_t max_inline_bytes() const override { return SIZE_MAX; }

  teec::CallStatus register_shm(int fd, uint32_t* shm_id) override {
    TEE_Result err = TEE_SUCCESS;
    auto region = SharedRegion::map_fd(fd, core_.limits().max_shm_bytes, &err);
    if (!region) return {err, TEE_ORIGIN_TEE};
    return to_call(core_.register_shm(id_, std::move(region), shm_id));
  }
  teec::CallStatus release_shm(uint32_t shm_id) override {
    return to_call(core_.release_shm(id_, shm_id));
  }
  teec::CallStatus open_session(const TEEC_UUID& uuid, uint32_t login, Operation& op,
                                uint32_t* session_id) override {
    TEE_UUID u;
    static_assert(sizeof(u) == sizeof(uuid));
    std::memcpy(&u, &uuid, sizeof(u));
    return to_call(core_.open_session(id_, u, login, op, session_id));
  }
  teec::CallStatus invoke(uint32_t session_id, uint32_t cmd, Operation& op) override {
    return to_call(core_.invoke(id_, session_id, cmd, op));
  }
  teec::CallStatus close_session(uint32_t session_id) override {
    return to_call(core_.close_session(id_, session_id));
  }

 private:
  TeeCore& core_;
  TeeCore::ClientId id_;
};

}  // namespace

std::unique_ptr<teec::Transport> make_inproc_transport(TeeCore& core) {
  return std::make_unique<InprocTransport>(core);
}

void register_inproc_core(TeeCore* core) {
  if (!core) {
    teec::set_inproc_factory({});
    return;
  }
  teec::set_inproc_factory([core] { return make_inproc_transport(*core); });
}

}  // namespace rplayer::tee
