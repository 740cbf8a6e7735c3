// The GP TEE Client API over a Transport (tee/teec/transport.h). This file marshals
// TEEC_Operations (checking them first: errors here have origin API), manages memfd-backed
// shared memory and the per-context bounce buffer, and copies outputs back.
#include "tee/teec/tee_client_api.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <mutex>
#include <new>
#include <string>

#include "tee/teec/transport.h"

namespace rplayer::teec {
namespace {

std::mutex g_inproc_mu;
InprocFactory g_inproc;

// A sealed memfd mapped read/write. Sealed against shrinking so the TEE, which maps it too,
// can never fault on a page the client truncated away (the TEE checks the seal).
struct Memfd {
  int fd = -1;
  uint8_t* base = nullptr;
  size_t mapped = 0;
};

TEEC_Result make_memfd(size_t size, Memfd* out) {
  size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  if (size == 0) size = 1;  // GP allows zero-size shared memory; map one page
  if (size > SIZE_MAX - page) return TEEC_ERROR_OUT_OF_MEMORY;
  size_t mapped = (size + page - 1) / page * page;
  int fd = ::memfd_create("rplayer-teec-shm", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return TEEC_ERROR_OUT_OF_MEMORY;
  if (::ftruncate(fd, static_cast<off_t>(mapped)) != 0 ||
      ::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    ::close(fd);
    return TEEC_ERROR_OUT_OF_MEMORY;
  }
  void* p = ::mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    ::close(fd);
    return TEEC_ERROR_OUT_OF_MEMORY;
  }
  *out = {fd, static_cast<uint8_t*>(p), mapped};
  return TEEC_SUCCESS;
}

struct ContextImpl {
  std::unique_ptr<Transport> transport;
  // Bounce buffer for copies too large to travel inline; held for a whole call.
  std::mutex bounce_mu;
  uint8_t* bounce = nullptr;
  size_t bounce_size = 0;
  uint32_t bounce_id = 0;

  ~ContextImpl() {
    if (bounce) {
      transport->release_shm(bounce_id);
      ::munmap(bounce, bounce_size);
    }
  }
};

ContextImpl* impl(TEEC_Context* ctx) { return ctx ? static_cast<ContextImpl*>(ctx->imp) : nullptr; }

// A TEEC_Operation reduced to a tee::Operation, plus what is needed to copy outputs back.
struct Plan {
  tee::Operation op;
  struct Slot {
    uint32_t teec_type = TEEC_NONE;
    uint32_t tee_type = TEE_PARAM_TYPE_NONE;
    bool copied = false;     // TEMP or registered memory: copied in/out by value
    uint8_t* user = nullptr; // client memory of a copied memref
    size_t cap = 0;
    size_t bounce_off = 0;
  } slot[TEEC_CONFIG_PAYLOAD_REF_COUNT];
  bool bounced = false;
  std::unique_lock<std::mutex> bounce_lock;
};

uint32_t memref_type(bool in, bool out) {
  if (in && out) return TEE_PARAM_TYPE_MEMREF_INOUT;
  return in ? TEE_PARAM_TYPE_MEMREF_INPUT : TEE_PARAM_TYPE_MEMREF_OUTPUT;
}

CallStatus ensure_bounce(ContextImpl* c, size_t need) {
  if (c->bounce_size >= need) return {};
  if (c->bounce) {
    c->transport->release_shm(c->bounce_id);
    ::munmap(c->bounce, c->bounce_size);
    c->bounce = nullptr;
    c->bounce_size = 0;
  }
  Memfd m;
  TEEC_Result r = make_memfd(need, &m);
  if (r != TEEC_SUCCESS) return {r, TEEC_ORIGIN_API};
  uint32_t id = 0;
  CallStatus st = c->transport->register_shm(m.fd, &id);
  ::close(m.fd);
  if (!st.ok()) {
    ::munmap(m.base, m.mapped);
    return st;
  }
  c->bounce = m.base;
  c->bounce_size = m.mapped;
  c->bounce_id = id;
  return {};
}

TEEC_Result plan_operation(ContextImpl* c, TEEC_Operation* o, Plan* p, uint32_t* origin) {
  *origin = TEEC_ORIGIN_API;
  if (!o) return TEEC_SUCCESS;  // no parameters
  if (o->paramTypes >> 16) return TEEC_ERROR_BAD_PARAMETERS;
  uint32_t types = 0;
  size_t inline_total = 0;
  for (int i = 0; i < TEEC_CONFIG_PAYLOAD_REF_COUNT; ++i) {
    uint32_t t = TEEC_PARAM_TYPE_GET(o->paramTypes, i);
    TEEC_Parameter& in = o->params[i];
    Plan::Slot& s = p->slot[i];
    tee::OpParam& q = p->op.params[i];
    s.teec_type = t;
    switch (t) {
      case TEEC_NONE:
        break;
      case TEEC_VALUE_INPUT:
      case TEEC_VALUE_OUTPUT:
      case TEEC_VALUE_INOUT:
        s.tee_type = t;  // same values on both sides
        q.a = in.value.a;
        q.b = in.value.b;
        break;
      case TEEC_MEMREF_TEMP_INPUT:
      case TEEC_MEMREF_TEMP_OUTPUT:
      case TEEC_MEMREF_TEMP_INOUT:
        if (!in.tmpref.buffer && in.tmpref.size) return TEEC_ERROR_BAD_PARAMETERS;
        s.tee_type = t;  // 5/6/7 on both sides
        s.copied = true;
        s.user = static_cast<uint8_t*>(in.tmpref.buffer);
        s.cap = in.tmpref.size;
        break;
      case TEEC_MEMREF_WHOLE:
      case TEEC_MEMREF_PARTIAL_INPUT:
      case TEEC_MEMREF_PARTIAL_OUTPUT:
      case TEEC_MEMREF_PARTIAL_INOUT: {
        TEEC_SharedMemory* shm = in.memref.parent;
        if (!shm) return TEEC_ERROR_BAD_PARAMETERS;
        bool fin = shm->flags & TEEC_MEM_INPUT, fout = shm->flags & TEEC_MEM_OUTPUT;
        size_t off = 0, size = shm->size;
        if (t == TEEC_MEMREF_WHOLE) {
          if (!fin && !fout) return TEEC_ERROR_BAD_PARAMETERS;
          s.tee_type = memref_type(fin, fout);
        } else {
          bool need_in = t != TEEC_MEMREF_PARTIAL_OUTPUT, need_out = t != TEEC_MEMREF_PARTIAL_INPUT;
          if ((need_in && !fin) || (need_out && !fout)) return TEEC_ERROR_BAD_PARAMETERS;
          off = in.memref.offset;
          size = in.memref.size;
          if (off > shm->size || size > shm->size - off) return TEEC_ERROR_BAD_PARAMETERS;
          s.tee_type = memref_type(need_in, need_out);
        }
        if (shm->imp.allocated) {
          if (impl(shm->imp.ctx) != c) return TEEC_ERROR_BAD_PARAMETERS;
          q.shm_id = shm->imp.id;
          q.offset = off;
          q.size = size;
        } else {
          if (!shm->buffer && size) return TEEC_ERROR_BAD_PARAMETERS;
          s.copied = true;
          s.user = static_cast<uint8_t*>(shm->buffer) + off;
          s.cap = size;
        }
        break;
      }
      default:
        return TEEC_ERROR_BAD_PARAMETERS;
    }
    types |= s.tee_type << (4 * i);
    if (s.copied) {
      q.size = s.cap;
      if (s.cap > SIZE_MAX - inline_total) return TEEC_ERROR_BAD_PARAMETERS;
      inline_total += s.cap;
    }
  }
  p->op.param_types = types;

  if (inline_total <= c->transport->max_inline_bytes()) {
    for (int i = 0; i < TEEC_CONFIG_PAYLOAD_REF_COUNT; ++i) {
      const Plan::Slot& s = p->slot[i];
      if (s.copied && tee::param_type_is_input(s.tee_type) && s.cap)
        p->op.params[i].bytes.assign(s.user, s.user + s.cap);
    }
    return TEEC_SUCCESS;
  }
  // Too large for one message: copy through the context's bounce region instead.
  p->bounce_lock = std::unique_lock<std::mutex>(c->bounce_mu);
  size_t need = 0;
  for (auto& s : p->slot) {
    if (!s.copied) continue;
    s.bounce_off = need;
    size_t step = (s.cap + 63) / 64 * 64;
    if (step < s.cap || step > SIZE_MAX - need) return TEEC_ERROR_OUT_OF_MEMORY;
    need += step;
  }
  CallStatus st = ensure_bounce(c, need);
  if (!st.ok()) {
    *origin = st.origin;
    return st.result;
  }
  p->bounced = true;
  for (int i = 0; i < TEEC_CONFIG_PAYLOAD_REF_COUNT; ++i) {
    Plan::Slot& s = p->slot[i];
    if (!s.copied) continue;
    if (tee::param_type_is_input(s.tee_type) && s.cap)
      std::memcpy(c->bounce + s.bounce_off, s.user, s.cap);
    p->op.params[i].shm_id = c->bounce_id;
    p->op.params[i].offset = s.bounce_off;
  }
  return TEEC_SUCCESS;
}

// After the TA ran: values, reported sizes, and copied output bytes back to the client.
void finish_operation(ContextImpl* c, TEEC_Operation* o, Plan* p) {
  if (!o) return;
  for (int i = 0; i < TEEC_CONFIG_PAYLOAD_REF_COUNT; ++i) {
    Plan::Slot& s = p->slot[i];
    const tee::OpParam& q = p->op.params[i];
    if (!tee::param_type_is_output(s.tee_type)) continue;
    if (tee::param_type_is_value(s.tee_type)) {
      o->params[i].value.a = q.a;
      o->params[i].value.b = q.b;
      continue;
    }
    size_t reported = q.size > SIZE_MAX ? SIZE_MAX : static_cast<size_t>(q.size);
    if (s.teec_type >= TEEC_MEMREF_TEMP_INPUT && s.teec_type <= TEEC_MEMREF_TEMP_INOUT)
      o->params[i].tmpref.size = reported;
    else
      o->params[i].memref.size = reported;
    if (!s.copied || reported > s.cap || reported == 0) continue;
    if (p->bounced)
      std::memcpy(s.user, c->bounce + s.bounce_off, reported);
    else
      std::memcpy(s.user, q.bytes.data(), std::min(reported, q.bytes.size()));
  }
}

void set_origin(uint32_t* out, uint32_t origin) {
  if (out) *out = origin;
}

}  // namespace

void set_inproc_factory(InprocFactory factory) {
  std::lock_guard<std::mutex> lock(g_inproc_mu);
  g_inproc = std::move(factory);
}

}  // namespace rplayer::teec

using namespace rplayer::teec;

namespace {
// What OpenSession and InvokeCommand share: marshal the operation, make the call, copy
// results back when the TA ran, report the origin. `call` does the transport call.
template <class Call>
TEEC_Result run_operation(ContextImpl* c, TEEC_Operation* operation, uint32_t* returnOrigin,
                          Call call) {
  try {
    Plan p;
    uint32_t origin;
    TEEC_Result r = plan_operation(c, operation, &p, &origin);
    if (r != TEEC_SUCCESS) {
      set_origin(returnOrigin, origin);
      return r;
    }
    if (operation) operation->started = 1;
    CallStatus st = call(p.op);
    if (st.origin == TEEC_ORIGIN_TRUSTED_APP) finish_operation(c, operation, &p);
    set_origin(returnOrigin, st.origin);
    return st.result;
  } catch (const std::bad_alloc&) {
    return TEEC_ERROR_OUT_OF_MEMORY;
  }
}
}  // namespace

extern "C" {

TEEC_Result TEEC_InitializeContext(const char* name, TEEC_Context* context) {
  if (!context) return TEEC_ERROR_BAD_PARAMETERS;
  context->imp = nullptr;
  std::unique_ptr<Transport> t;
  std::string n = name ? name : "";
  InprocFactory inproc;
  {
    std::lock_guard<std::mutex> lock(g_inproc_mu);
    inproc = g_inproc;
  }
  if (!name && !inproc) {
    const char* env = std::getenv("RPLAYER_TEE_SOCKET");
    if (!env) return TEEC_ERROR_ITEM_NOT_FOUND;
    n = env;
  }
  try {
    if (!name && inproc) n = "inproc";
    if (n == "inproc") {
      if (!inproc) return TEEC_ERROR_ITEM_NOT_FOUND;
      t = inproc();
      if (!t) return TEEC_ERROR_ITEM_NOT_FOUND;
    } else if (n.rfind("fd:", 0) == 0) {
      char* end = nullptr;
      errno = 0;
      long fd = std::strtol(n.c_str() + 3, &end, 10);
      if (errno || end == n.c_str() + 3 || *end || fd < 0 || fd > INT32_MAX ||
          ::fcntl(static_cast<int>(fd), F_GETFD) < 0)
        return TEEC_ERROR_BAD_PARAMETERS;
      t = socket_transport(static_cast<int>(fd));
    } else {
      CallStatus st;
      t = connect_socket(n, &st);
      if (!t) return st.result;
    }
    auto* c = new ContextImpl;
    c->transport = std::move(t);
    context->imp = c;
  } catch (const std::bad_alloc&) {
    return TEEC_ERROR_OUT_OF_MEMORY;
  }
  return TEEC_SUCCESS;
}

void TEEC_FinalizeContext(TEEC_Context* context) {
  ContextImpl* c = impl(context);
  if (!c) return;
  delete c;  // disconnects; the TEE closes sessions still open
  context->imp = nullptr;
}

TEEC_Result TEEC_RegisterSharedMemory(TEEC_Context* context, TEEC_SharedMemory* shm) {
  if (!impl(context) || !shm) return TEEC_ERROR_BAD_PARAMETERS;
  if (!shm->flags || (shm->flags & ~(TEEC_MEM_INPUT | TEEC_MEM_OUTPUT)))
    return TEEC_ERROR_BAD_PARAMETERS;
  if (!shm->buffer && shm->size) return TEEC_ERROR_BAD_PARAMETERS;
  // Not shared with the TEE: copied per invocation (see the header).
  shm->imp.ctx = context;
  shm->imp.id = 0;
  shm->imp.mapped_size = 0;
  shm->imp.allocated = 0;
  return TEEC_SUCCESS;
}

TEEC_Result TEEC_AllocateSharedMemory(TEEC_Context* context, TEEC_SharedMemory* shm) {
  ContextImpl* c = impl(context);
  if (!c || !shm) return TEEC_ERROR_BAD_PARAMETERS;
  if (!shm->flags || (shm->flags & ~(TEEC_MEM_INPUT | TEEC_MEM_OUTPUT)))
    return TEEC_ERROR_BAD_PARAMETERS;
  Memfd m;
  TEEC_Result r = make_memfd(shm->size, &m);
  if (r != TEEC_SUCCESS) return r;
  uint32_t id = 0;
  CallStatus st = c->transport->register_shm(m.fd, &id);
  ::close(m.fd);  // both mappings outlive the descriptor
  if (!st.ok()) {
    ::munmap(m.base, m.mapped);
    return st.result;
  }
  shm->buffer = m.base;
  shm->imp.ctx = context;
  shm->imp.id = id;
  shm->imp.mapped_size = m.mapped;
  shm->imp.allocated = 1;
  return TEEC_SUCCESS;
}

void TEEC_ReleaseSharedMemory(TEEC_SharedMemory* shm) {
  if (!shm) return;
  if (shm->imp.allocated) {
    ContextImpl* c = impl(shm->imp.ctx);
    if (c) c->transport->release_shm(shm->imp.id);
    ::munmap(shm->buffer, shm->imp.mapped_size);
    shm->buffer = nullptr;
  }
  shm->imp.ctx = nullptr;
  shm->imp.id = 0;
  shm->imp.mapped_size = 0;
  shm->imp.allocated = 0;
}

TEEC_Result TEEC_OpenSession(TEEC_Context* context, TEEC_Session* session,
                             const TEEC_UUID* destination, uint32_t connectionMethod,
                             const void* connectionData, TEEC_Operation* operation,
                             uint32_t* returnOrigin) {
  set_origin(returnOrigin, TEEC_ORIGIN_API);
  ContextImpl* c = impl(context);
  if (!c || !session || !destination) return TEEC_ERROR_BAD_PARAMETERS;
  if (connectionMethod != TEEC_LOGIN_PUBLIC) return TEEC_ERROR_NOT_SUPPORTED;
  return run_operation(c, operation, returnOrigin, [&](auto& op) {
    uint32_t sid = 0;
    CallStatus st = c->transport->open_session(*destination, connectionMethod, op, &sid);
    if (st.ok()) {
      session->imp.ctx = context;
      session->imp.session_id = sid;
    }
    return st;
  });
}

void TEEC_CloseSession(TEEC_Session* session) {
  if (!session) return;
  ContextImpl* c = impl(session->imp.ctx);
  if (c) c->transport->close_session(session->imp.session_id);
  session->imp.ctx = nullptr;
  session->imp.session_id = 0;
}

TEEC_Result TEEC_InvokeCommand(TEEC_Session* session, uint32_t commandID,
                               TEEC_Operation* operation, uint32_t* returnOrigin) {
  set_origin(returnOrigin, TEEC_ORIGIN_API);
  ContextImpl* c = session ? impl(session->imp.ctx) : nullptr;
  if (!c) return TEEC_ERROR_BAD_PARAMETERS;
  return run_operation(c, operation, returnOrigin, [&](auto& op) {
    return c->transport->invoke(session->imp.session_id, commandID, op);
  });
}

void TEEC_RequestCancellation(TEEC_Operation* operation) { (void)operation; }

}  // extern "C"
