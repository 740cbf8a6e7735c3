#include "tee/core/tee_core.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <new>

namespace rplayer::tee {
namespace {

std::vector<uint8_t> uuid_key(const TEE_UUID& u) {
  std::vector<uint8_t> k(sizeof(TEE_UUID));
  std::memcpy(k.data(), &u, sizeof(TEE_UUID));
  return k;
}

TeeCore::Status tee_error(TEE_Result r) { return {r, TEE_ORIGIN_TEE}; }

}  // namespace

// ---- SharedRegion ---------------------------------------------------------------------

SharedRegion::~SharedRegion() {
  if (owned_ && base_) ::munmap(base_, size_);
}

std::shared_ptr<SharedRegion> SharedRegion::map_fd(int fd, uint64_t max_bytes, TEE_Result* error) {
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
      static_cast<uint64_t>(st.st_size) > max_bytes) {
    *error = TEE_ERROR_BAD_PARAMETERS;
    return nullptr;
  }
  // Only memfds (shmem) can carry seals; F_SEAL_SHRINK pins the size we map.
  int seals = ::fcntl(fd, F_GET_SEALS);
  if (seals < 0 || !(seals & F_SEAL_SHRINK)) {
    *error = TEE_ERROR_BAD_PARAMETERS;
    return nullptr;
  }
  size_t size = static_cast<size_t>(st.st_size);
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    *error = errno == ENOMEM ? TEE_ERROR_OUT_OF_MEMORY : TEE_ERROR_BAD_PARAMETERS;
    return nullptr;
  }
  return std::shared_ptr<SharedRegion>(new SharedRegion(static_cast<uint8_t*>(p), size, true));
}

std::shared_ptr<SharedRegion> SharedRegion::wrap(void* base, uint64_t size) {
  return std::shared_ptr<SharedRegion>(new SharedRegion(static_cast<uint8_t*>(base), size, false));
}

// ---- TeeCore --------------------------------------------------------------------------

TeeCore::TeeCore(Limits limits) : limits_(limits) {}

TeeCore::~TeeCore() {
  std::vector<ClientId> ids;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, c] : clients_) ids.push_back(id);
  }
  for (ClientId id : ids) disconnect(id);
  std::lock_guard<std::mutex> g(ta_mu_);
  for (auto& [key, e] : tas_) {
    if (!e.alive) continue;
    try {
      e.ta->destroy();
    } catch (...) {
    }
    e.alive = false;
  }
}

TEE_Result TeeCore::register_ta(std::shared_ptr<TrustedApp> ta, TaOptions options) {
  if (!ta) return TEE_ERROR_BAD_PARAMETERS;
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, inserted] = tas_.try_emplace(uuid_key(ta->uuid()));
  if (!inserted) return TEE_ERROR_ACCESS_CONFLICT;
  it->second.ta = std::move(ta);
  it->second.options = options;
  return TEE_SUCCESS;
}

TeeCore::ClientId TeeCore::connect() {
  std::lock_guard<std::mutex> lock(mu_);
  ClientId id = next_client_++;
  clients_[id];
  return id;
}

void TeeCore::disconnect(ClientId client) {
  std::vector<std::pair<TaEntry*, void*>> to_close;
  {
    std::unique_lock<std::mutex> lock(mu_);
    auto it = clients_.find(client);
    if (it == clients_.end() || it->second.closing) return;
    Client& c = it->second;
    c.closing = true;  // new calls now fail; the ones in progress finish first
    cv_.wait(lock, [&] { return c.in_flight == 0; });
    for (auto s = sessions_.begin(); s != sessions_.end();) {
      if (s->second.client == client) {
        to_close.emplace_back(s->second.ta, s->second.ctx);
        s = sessions_.erase(s);
      } else {
        ++s;
      }
    }
    clients_.erase(client);  // drops its regions (unmapped once no call pins them)
  }
  std::lock_guard<std::mutex> g(ta_mu_);
  for (auto& [ta, ctx] : to_close) close_in_ta(ta, ctx);
}

TeeCore::Client* TeeCore::find_client_locked(ClientId client) {
  auto it = clients_.find(client);
  if (it == clients_.end() || it->second.closing) return nullptr;
  return &it->second;
}

TeeCore::Status TeeCore::register_shm(ClientId client, std::shared_ptr<SharedRegion> region,
                                      uint32_t* shm_id) {
  if (!region || region->size() > limits_.max_shm_bytes) return tee_error(TEE_ERROR_BAD_PARAMETERS);
  std::lock_guard<std::mutex> lock(mu_);
  Client* c = find_client_locked(client);
  if (!c) return tee_error(TEE_ERROR_BAD_STATE);
  if (c->shm.size() >= limits_.max_shm_per_client) return tee_error(TEE_ERROR_OUT_OF_MEMORY);
  uint32_t id;
  do {
    id = c->next_shm++;
  } while (id == 0 || c->shm.count(id));
  c->shm.emplace(id, std::move(region));
  *shm_id = id;
  return {};
}

TeeCore::Status TeeCore::release_shm(ClientId client, uint32_t shm_id) {
  std::lock_guard<std::mutex> lock(mu_);
  Client* c = find_client_locked(client);
  if (!c) return tee_error(TEE_ERROR_BAD_STATE);
  if (c->shm.erase(shm_id) == 0) return tee_error(TEE_ERROR_ITEM_NOT_FOUND);
  return {};
}

// Everything a client controls is checked here, before any TA code runs.
TeeCore::Status TeeCore::check_params_locked(Client& c, Operation& op, Prepared* prep) {
  if (!param_types_valid(op.param_types)) return tee_error(TEE_ERROR_BAD_PARAMETERS);
  for (int i = 0; i < TEE_NUM_PARAMS; ++i) {
    uint32_t t = TEE_PARAM_TYPE_GET(op.param_types, i);
    OpParam& p = op.params[i];
    TEE_Param& tp = prep->params[i];
    std::memset(&tp, 0, sizeof(tp));
    if (param_type_is_value(t)) {
      if (param_type_is_input(t)) tp.value = {p.a, p.b};
    } else if (param_type_is_memref(t)) {
      if (p.size > limits_.max_memref_bytes) return tee_error(TEE_ERROR_BAD_PARAMETERS);
      if (p.shm_id != 0) {
        auto it = c.shm.find(p.shm_id);
        if (it == c.shm.end()) return tee_error(TEE_ERROR_BAD_PARAMETERS);
        const SharedRegion& r = *it->second;
        if (p.offset > r.size() || p.size > r.size() - p.offset)
          return tee_error(TEE_ERROR_BAD_PARAMETERS);
        prep->regions[i] = it->second;
        tp.memref.buffer = r.base() + p.offset;
        tp.memref.size = static_cast<size_t>(p.size);
      } else if (param_type_is_input(t) && p.bytes.size() != p.size) {
        return tee_error(TEE_ERROR_BAD_PARAMETERS);
      }
    }
  }
  return {};
}

// Inline memrefs: the TA works directly in op's byte vectors (output-only ones are
// allocated here, zeroed, outside the table lock).
TeeCore::Status TeeCore::bind_params(Operation& op, Prepared* prep) {
  try {
    for (int i = 0; i < TEE_NUM_PARAMS; ++i) {
      uint32_t t = TEE_PARAM_TYPE_GET(op.param_types, i);
      OpParam& p = op.params[i];
      if (!param_type_is_memref(t) || p.shm_id != 0) continue;
      if (!param_type_is_input(t)) p.bytes.assign(static_cast<size_t>(p.size), 0);
      prep->params[i].memref.buffer = p.size ? p.bytes.data() : nullptr;
      prep->params[i].memref.size = static_cast<size_t>(p.size);
    }
  } catch (const std::bad_alloc&) {
    return tee_error(TEE_ERROR_OUT_OF_MEMORY);
  }
  return {};
}

void TeeCore::finish_params(Operation& op, Prepared& prep) {
  for (int i = 0; i < TEE_NUM_PARAMS; ++i) {
    uint32_t t = TEE_PARAM_TYPE_GET(op.param_types, i);
    OpParam& p = op.params[i];
    const TEE_Param& tp = prep.params[i];
    if (param_type_is_value(t)) {
      if (param_type_is_output(t)) {
        p.a = tp.value.a;
        p.b = tp.value.b;
      }
    } else if (param_type_is_memref(t)) {
      if (!param_type_is_output(t)) {
        p.bytes.clear();  // nothing to send back
        continue;
      }
      uint64_t reported = tp.memref.size;
      if (p.shm_id == 0) {
        if (reported <= p.size)
          p.bytes.resize(static_cast<size_t>(reported));
        else
          p.bytes.clear();  // SHORT_BUFFER: only the needed size goes back
      }
      p.size = reported;
    }
  }
}

void TeeCore::end_call(ClientId client, Session* session) {
  std::lock_guard<std::mutex> lock(mu_);
  if (session) --session->in_flight;
  --clients_.at(client).in_flight;
  cv_.notify_all();
}

void TeeCore::close_in_ta(TaEntry* ta, void* ctx) {
  try {
    ta->ta->close_session(ctx);
  } catch (...) {
  }
  if (--ta->sessions == 0 && !ta->options.keep_alive) {
    try {
      ta->ta->destroy();
    } catch (...) {
    }
    ta->alive = false;
  }
}

TeeCore::Status TeeCore::open_session(ClientId client, const TEE_UUID& uuid, uint32_t login,
                                      Operation& op, uint32_t* session_id) {
  if (login != TEE_LOGIN_PUBLIC) return tee_error(TEE_ERROR_NOT_SUPPORTED);
  Prepared prep;
  TaEntry* ta;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Client* c = find_client_locked(client);
    if (!c) return tee_error(TEE_ERROR_BAD_STATE);
    auto it = tas_.find(uuid_key(uuid));
    if (it == tas_.end()) return tee_error(TEE_ERROR_ITEM_NOT_FOUND);
    ta = &it->second;
    if (c->sessions >= limits_.max_sessions_per_client) return tee_error(TEE_ERROR_OUT_OF_MEMORY);
    Status st = check_params_locked(*c, op, &prep);
    if (!st.ok()) return st;
    ++c->sessions;  // reserved, so concurrent opens respect the limit
    ++c->in_flight;
  }
  Status st = bind_params(op, &prep);
  void* ctx = nullptr;
  if (st.ok()) {
    std::lock_guard<std::mutex> g(ta_mu_);
    try {
      st = {TEE_SUCCESS, TEE_ORIGIN_TRUSTED_APP};
      if (!ta->alive) {
        st.result = ta->ta->create();
        ta->alive = st.ok();
      }
      if (st.ok()) {
        st.result = ta->ta->open_session(op.param_types, prep.params, &ctx);
        if (st.ok()) {
          ++ta->sessions;
        } else if (ta->sessions == 0 && !ta->options.keep_alive) {
          ta->ta->destroy();
          ta->alive = false;
        }
      }
      finish_params(op, prep);
    } catch (...) {
      st = tee_error(TEE_ERROR_TARGET_DEAD);
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  Client& c = clients_.at(client);  // kept by in_flight
  if (st.ok()) {
    uint32_t id;
    do {
      id = next_session_++;
    } while (id == 0 || sessions_.count(id));
    sessions_.emplace(id, Session{client, ta, ctx});
    *session_id = id;
  } else {
    --c.sessions;
  }
  --c.in_flight;
  cv_.notify_all();
  return st;
}

TeeCore::Status TeeCore::invoke(ClientId client, uint32_t session_id, uint32_t cmd, Operation& op) {
  Prepared prep;
  Session* s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Client* c = find_client_locked(client);
    if (!c) return tee_error(TEE_ERROR_BAD_STATE);
    auto it = sessions_.find(session_id);
    if (it == sessions_.end() || it->second.closing) return tee_error(TEE_ERROR_ITEM_NOT_FOUND);
    if (it->second.client != client) return tee_error(TEE_ERROR_ACCESS_DENIED);
    Status st = check_params_locked(*c, op, &prep);
    if (!st.ok()) return st;
    s = &it->second;  // stable: close/disconnect wait for in_flight == 0
    ++s->in_flight;
    ++c->in_flight;
  }
  Status st = bind_params(op, &prep);
  if (st.ok()) {
    std::lock_guard<std::mutex> g(ta_mu_);
    try {
      st = {s->ta->ta->invoke(s->ctx, cmd, op.param_types, prep.params), TEE_ORIGIN_TRUSTED_APP};
      finish_params(op, prep);
    } catch (...) {
      st = tee_error(TEE_ERROR_TARGET_DEAD);
    }
  }
  end_call(client, s);
  return st;
}

TeeCore::Status TeeCore::close_session(ClientId client, uint32_t session_id) {
  TaEntry* ta;
  void* ctx;
  {
    std::unique_lock<std::mutex> lock(mu_);
    Client* c = find_client_locked(client);
    if (!c) return tee_error(TEE_ERROR_BAD_STATE);
    auto it = sessions_.find(session_id);
    if (it == sessions_.end() || it->second.closing) return tee_error(TEE_ERROR_ITEM_NOT_FOUND);
    if (it->second.client != client) return tee_error(TEE_ERROR_ACCESS_DENIED);
    Session* s = &it->second;
    s->closing = true;  // no new invocations; wait for the ones in progress
    ++c->in_flight;
    cv_.wait(lock, [&] { return s->in_flight == 0; });
    ta = s->ta;
    ctx = s->ctx;
    sessions_.erase(session_id);
    --c->sessions;
  }
  {
    std::lock_guard<std::mutex> g(ta_mu_);
    close_in_ta(ta, ctx);
  }
  end_call(client, nullptr);
  return {};
}

size_t TeeCore::session_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sessions_.size();
}

size_t TeeCore::client_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return clients_.size();
}

}  // namespace rplayer::tee
