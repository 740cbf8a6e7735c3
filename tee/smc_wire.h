// The wire protocol between the client library (tee/teec) and rplayer-tee: our stand-in for
// the SMC + OP-TEE message ABI. One SOCK_SEQPACKET message per request and per reply,
// strictly alternating on a connection. Both ends run on one machine: fields are in host
// byte order, fixed width, no pointers.
//
//   request  = Header + payload (inline input bytes of memrefs with shm_id == 0)
//              [+ one fd via SCM_RIGHTS for REGISTER_SHM]
//   reply    = Header (result, origin, session/shm id, updated params) + payload (inline
//              output bytes)
//
// Parameter types on the wire are the TA-side GP types (TEE_PARAM_TYPE_*): the client
// library reduces TEMP/WHOLE/PARTIAL memrefs to INPUT/OUTPUT/INOUT plus "inline" (shm_id 0)
// or "window of registered shm" (shm_id, offset, size).
//
// Also here: tee::Operation, the decoded, transport-neutral form the core consumes, and the
// codec between it and the wire (header-only so client and server share one definition).
// The server-side decoder trusts nothing: every length, offset and type is checked.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "tee/ta_api.h"

namespace rplayer::tee {

// One parameter as the core receives it.
struct OpParam {
  uint32_t a = 0, b = 0;       // VALUE_*
  uint32_t shm_id = 0;         // MEMREF_*: 0 = inline `bytes`, else a registered shm region
  uint64_t offset = 0;         // MEMREF_* in shm: window start
  uint64_t size = 0;           // MEMREF_*: capacity on the way in, TA-reported size on return
  std::vector<uint8_t> bytes;  // inline memref: input bytes in; output bytes on return
                               // (empty when the reported size exceeds the capacity)
};

struct Operation {
  uint32_t param_types = 0;  // TEE_PARAM_TYPES(...) of TA-side types
  OpParam params[TEE_NUM_PARAMS];
};

inline bool param_type_is_value(uint32_t t) {
  return t >= TEE_PARAM_TYPE_VALUE_INPUT && t <= TEE_PARAM_TYPE_VALUE_INOUT;
}
inline bool param_type_is_memref(uint32_t t) {
  return t >= TEE_PARAM_TYPE_MEMREF_INPUT && t <= TEE_PARAM_TYPE_MEMREF_INOUT;
}
// The client -> TA direction (input or inout).
inline bool param_type_is_input(uint32_t t) {
  return t == TEE_PARAM_TYPE_VALUE_INPUT || t == TEE_PARAM_TYPE_VALUE_INOUT ||
         t == TEE_PARAM_TYPE_MEMREF_INPUT || t == TEE_PARAM_TYPE_MEMREF_INOUT;
}
inline bool param_type_is_output(uint32_t t) {
  return t == TEE_PARAM_TYPE_VALUE_OUTPUT || t == TEE_PARAM_TYPE_VALUE_INOUT ||
         t == TEE_PARAM_TYPE_MEMREF_OUTPUT || t == TEE_PARAM_TYPE_MEMREF_INOUT;
}
// Only the seven GP TA-side types, and nothing above the four nibbles.
inline bool param_types_valid(uint32_t types) {
  if (types >> 16) return false;
  for (int i = 0; i < TEE_NUM_PARAMS; ++i) {
    uint32_t t = TEE_PARAM_TYPE_GET(types, i);
    if (t != TEE_PARAM_TYPE_NONE && !param_type_is_value(t) && !param_type_is_memref(t))
      return false;
  }
  return true;
}

namespace wire {

constexpr uint32_t kMagic = 0x45545052;  // "RPTE"
constexpr uint16_t kVersion = 1;

enum class Op : uint16_t {
  kOpenSession = 1,   // uuid, cmd = login method, params      -> session
  kInvoke = 2,        // session, cmd, params                  -> params
  kCloseSession = 3,  // session
  kRegisterShm = 4,   // one memfd via SCM_RIGHTS (sealed F_SEAL_SHRINK) -> shm_id
  kReleaseShm = 5,    // shm_id
};

// Bound on the inline memref bytes of one call (sum of capacities, in and out), so that a
// request and its reply each fit one message. Larger buffers go through shared memory.
constexpr uint32_t kMaxInlineBytes = 64 * 1024;

struct Param {
  uint32_t a;  // VALUE_*
  uint32_t b;
  uint32_t shm_id;  // MEMREF_*: 0 = inline bytes in the payload
  uint32_t reserved;
  uint64_t offset;  // inline: offset in the payload; shm: offset in the region
  uint64_t size;    // capacity in the request; TA-reported size in the reply
};
static_assert(sizeof(Param) == 32);

struct Header {
  uint32_t magic;
  uint16_t version;
  uint16_t op;             // Op; echoed in the reply
  uint32_t session;        // INVOKE/CLOSE_SESSION; reply of OPEN_SESSION
  uint32_t cmd;            // INVOKE: command id; OPEN_SESSION: login method
  uint32_t param_types;    // TEE_PARAM_TYPES of TA-side types
  uint32_t shm_id;         // RELEASE_SHM; reply of REGISTER_SHM
  uint32_t result;         // reply: TEE_Result
  uint32_t origin;         // reply: TEE_ORIGIN_*
  uint8_t uuid[16];        // OPEN_SESSION: TEEC_UUID / TEE_UUID bytes
  uint32_t payload_bytes;  // bytes after the header; must equal the message length - header
  uint32_t reserved;
  Param params[TEE_NUM_PARAMS];
};
static_assert(sizeof(Header) == 184);
static_assert(sizeof(TEE_UUID) == 16);

constexpr size_t kMaxMessageBytes = sizeof(Header) + kMaxInlineBytes;

inline Header make_header(Op op) {
  Header h;
  std::memset(&h, 0, sizeof(h));
  h.magic = kMagic;
  h.version = kVersion;
  h.op = static_cast<uint16_t>(op);
  return h;
}

// Client: params of `op` into the header; inline input bytes appended to `payload`.
// The caller has checked the inline total against kMaxInlineBytes.
inline void encode_request_params(const Operation& op, Header* h, std::vector<uint8_t>* payload) {
  h->param_types = op.param_types;
  for (int i = 0; i < TEE_NUM_PARAMS; ++i) {
    uint32_t t = TEE_PARAM_TYPE_GET(op.param_types, i);
    const OpParam& p = op.params[i];
    Param& w = h->params[i];
    if (param_type_is_value(t)) {
      w.a = p.a;
      w.b = p.b;
    } else if (param_type_is_memref(t)) {
      w.shm_id = p.shm_id;
      w.size = p.size;
      w.offset = p.shm_id ? p.offset : 0;
      if (p.shm_id == 0 && param_type_is_input(t)) {
        w.offset = payload->size();
        payload->insert(payload->end(), p.bytes.begin(), p.bytes.end());
      }
    }
  }
  h->payload_bytes = static_cast<uint32_t>(payload->size());
}

// Server: validate the params of a request and decode them. Returns TEE_SUCCESS or
// TEE_ERROR_BAD_PARAMETERS (unknown type, inline bytes outside the payload, inline total
// above kMaxInlineBytes). Shm windows are checked by the core, which knows the regions.
inline TEE_Result decode_request_params(const Header& h, const uint8_t* payload, size_t n,
                                        Operation* op) {
  if (!param_types_valid(h.param_types)) return TEE_ERROR_BAD_PARAMETERS;
  op->param_types = h.param_types;
  uint64_t inline_total = 0;
  for (int i = 0; i < TEE_NUM_PARAMS; ++i) {
    uint32_t t = TEE_PARAM_TYPE_GET(h.param_types, i);
    const Param& w = h.params[i];
    OpParam& p = op->params[i];
    p = OpParam{};
    if (param_type_is_value(t)) {
      p.a = w.a;
      p.b = w.b;
    } else if (param_type_is_memref(t)) {
      p.shm_id = w.shm_id;
      p.size = w.size;
      if (w.shm_id != 0) {
        p.offset = w.offset;
        continue;
      }
      if (w.size > kMaxInlineBytes) return TEE_ERROR_BAD_PARAMETERS;
      inline_total += w.size;
      if (inline_total > kMaxInlineBytes) return TEE_ERROR_BAD_PARAMETERS;
      if (param_type_is_input(t)) {
        if (w.offset > n || w.size > n - w.offset) return TEE_ERROR_BAD_PARAMETERS;
        p.bytes.assign(payload + w.offset, payload + w.offset + w.size);
      }
    }
  }
  return TEE_SUCCESS;
}

// Server: the TA's outputs into the reply header and payload.
inline void encode_reply_params(const Operation& op, Header* h, std::vector<uint8_t>* payload) {
  h->param_types = op.param_types;
  for (int i = 0; i < TEE_NUM_PARAMS; ++i) {
    uint32_t t = TEE_PARAM_TYPE_GET(op.param_types, i);
    const OpParam& p = op.params[i];
    Param& w = h->params[i];
    if (!param_type_is_output(t)) continue;
    if (param_type_is_value(t)) {
      w.a = p.a;
      w.b = p.b;
    } else {
      w.shm_id = p.shm_id;
      w.size = p.size;
      if (p.shm_id == 0 && !p.bytes.empty()) {
        w.offset = payload->size();
        payload->insert(payload->end(), p.bytes.begin(), p.bytes.end());
      }
    }
  }
  h->payload_bytes = static_cast<uint32_t>(payload->size());
}

// Client: the reply's outputs into `op` (which still holds the request). Inline output
// bytes are expected iff the reported size fits the capacity. False: malformed reply.
inline bool decode_reply_params(const Header& h, const uint8_t* payload, size_t n, Operation* op) {
  for (int i = 0; i < TEE_NUM_PARAMS; ++i) {
    uint32_t t = TEE_PARAM_TYPE_GET(op->param_types, i);
    const Param& w = h.params[i];
    OpParam& p = op->params[i];
    if (!param_type_is_output(t)) continue;
    if (param_type_is_value(t)) {
      p.a = w.a;
      p.b = w.b;
      continue;
    }
    uint64_t cap = p.size;
    p.size = w.size;
    p.bytes.clear();
    if (p.shm_id == 0 && w.size <= cap && w.size > 0) {
      if (w.offset > n || w.size > n - w.offset) return false;
      p.bytes.assign(payload + w.offset, payload + w.offset + w.size);
    }
  }
  return true;
}

}  // namespace wire
}  // namespace rplayer::tee
