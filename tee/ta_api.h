// The interface a trusted application (TA) implements to be hosted by TeeCore.
//
// Shaped like the GlobalPlatform TEE Internal Core API so that porting a TA to OP-TEE is
// mechanical: the types, constants and result codes below carry the GP names and values,
// and TrustedApp's methods are the four TA entry points:
//
//   TrustedApp::create()         <-> TA_CreateEntryPoint()
//   TrustedApp::destroy()        <-> TA_DestroyEntryPoint()
//   TrustedApp::open_session()   <-> TA_OpenSessionEntryPoint(paramTypes, params, sessionContext)
//   TrustedApp::close_session()  <-> TA_CloseSessionEntryPoint(sessionContext)
//   TrustedApp::invoke()         <-> TA_InvokeCommandEntryPoint(sessionContext, commandID,
//                                                               paramTypes, params)
//
// What the core guarantees to a TA (docs/tee-api.md):
//  - Entry points are never called concurrently: one mutex serializes every TA entry point
//    of every TA in a core (there is one GPU).
//  - param_types only contains the seven GP types below; params[i] of type NONE is zeroed.
//  - A memref's buffer points at `size` bytes of mapped memory (a copy the core owns, or a
//    window of shared memory the core mapped and bounds-checked), and size is at most the
//    core's memref limit. A zero-size memref may have a null buffer.
//  - Shared memory stays writable by the client during the call (as in GP): copy what you
//    validate before using it (no double fetch).
//  - For MEMREF_OUTPUT/INOUT, the TA may change memref.size: a smaller value reports how
//    much it wrote; a larger value together with TEE_ERROR_SHORT_BUFFER reports the size it
//    needs (the client sees it). Changes to memref.buffer are ignored.
//  - session_ctx is opaque to the core and handed back unchanged. close_session is called
//    exactly once per successful open_session: when the client closes the session, or when
//    it disconnects or dies (after any invocation in progress returned).
//  - A C++ exception escaping an entry point is reported to the client as
//    TEE_ERROR_TARGET_DEAD (GP's "TA panicked"); do not rely on it.
#pragma once

#include <cstddef>
#include <cstdint>

// ---- GP TEE Internal Core API types and constants -------------------------------------

typedef uint32_t TEE_Result;

typedef struct {
  uint32_t timeLow;
  uint16_t timeMid;
  uint16_t timeHiAndVersion;
  uint8_t clockSeqAndNode[8];
} TEE_UUID;

typedef union {
  struct {
    void* buffer;
    size_t size;
  } memref;
  struct {
    uint32_t a;
    uint32_t b;
  } value;
} TEE_Param;

#define TEE_SUCCESS 0x00000000u
#define TEE_ERROR_GENERIC 0xFFFF0000u
#define TEE_ERROR_ACCESS_DENIED 0xFFFF0001u
#define TEE_ERROR_CANCEL 0xFFFF0002u
#define TEE_ERROR_ACCESS_CONFLICT 0xFFFF0003u
#define TEE_ERROR_EXCESS_DATA 0xFFFF0004u
#define TEE_ERROR_BAD_FORMAT 0xFFFF0005u
#define TEE_ERROR_BAD_PARAMETERS 0xFFFF0006u
#define TEE_ERROR_BAD_STATE 0xFFFF0007u
#define TEE_ERROR_ITEM_NOT_FOUND 0xFFFF0008u
#define TEE_ERROR_NOT_IMPLEMENTED 0xFFFF0009u
#define TEE_ERROR_NOT_SUPPORTED 0xFFFF000Au
#define TEE_ERROR_NO_DATA 0xFFFF000Bu
#define TEE_ERROR_OUT_OF_MEMORY 0xFFFF000Cu
#define TEE_ERROR_BUSY 0xFFFF000Du
#define TEE_ERROR_COMMUNICATION 0xFFFF000Eu
#define TEE_ERROR_SECURITY 0xFFFF000Fu
#define TEE_ERROR_SHORT_BUFFER 0xFFFF0010u
#define TEE_ERROR_EXTERNAL_CANCEL 0xFFFF0011u
#define TEE_ERROR_OVERFLOW 0xFFFF300Fu
#define TEE_ERROR_TARGET_DEAD 0xFFFF3024u
#define TEE_ERROR_STORAGE_NO_SPACE 0xFFFF3041u
#define TEE_ERROR_MAC_INVALID 0xFFFF3071u
#define TEE_ERROR_SIGNATURE_INVALID 0xFFFF3072u
#define TEE_ERROR_TIME_NOT_SET 0xFFFF5000u
#define TEE_ERROR_TIME_NEEDS_RESET 0xFFFF5001u

// Where an error came from (reported to the client as returnOrigin).
#define TEE_ORIGIN_API 0x00000001u
#define TEE_ORIGIN_COMMS 0x00000002u
#define TEE_ORIGIN_TEE 0x00000003u
#define TEE_ORIGIN_TRUSTED_APP 0x00000004u

#define TEE_PARAM_TYPE_NONE 0u
#define TEE_PARAM_TYPE_VALUE_INPUT 1u
#define TEE_PARAM_TYPE_VALUE_OUTPUT 2u
#define TEE_PARAM_TYPE_VALUE_INOUT 3u
#define TEE_PARAM_TYPE_MEMREF_INPUT 5u
#define TEE_PARAM_TYPE_MEMREF_OUTPUT 6u
#define TEE_PARAM_TYPE_MEMREF_INOUT 7u

#define TEE_NUM_PARAMS 4

#define TEE_PARAM_TYPES(t0, t1, t2, t3) \
  ((uint32_t)(t0) | ((uint32_t)(t1) << 4) | ((uint32_t)(t2) << 8) | ((uint32_t)(t3) << 12))
#define TEE_PARAM_TYPE_GET(t, i) ((((uint32_t)(t)) >> ((i)*4)) & 0xFu)

// Login methods (GP TEE_LOGIN_*); the core accepts PUBLIC only.
#define TEE_LOGIN_PUBLIC 0x00000000u

namespace rplayer::tee {

// One TA. The core holds at most one instance per UUID (GP "single instance"), shared by
// all sessions of all clients ("multi session").
class TrustedApp {
 public:
  virtual ~TrustedApp() = default;

  virtual TEE_UUID uuid() const = 0;
  // Called before the first session is opened (instance creation). An error fails that
  // open_session with origin TRUSTED_APP.
  virtual TEE_Result create() { return TEE_SUCCESS; }
  // Called when the instance goes away: when its last session closes unless it is
  // registered keep_alive (GP TA_FLAG_INSTANCE_KEEP_ALIVE), else when the core is destroyed.
  virtual void destroy() {}
  // params[i] as described above; store per-session state in *session_ctx.
  virtual TEE_Result open_session(uint32_t param_types, TEE_Param params[TEE_NUM_PARAMS],
                                  void** session_ctx) = 0;
  virtual void close_session(void* session_ctx) = 0;
  virtual TEE_Result invoke(void* session_ctx, uint32_t cmd, uint32_t param_types,
                            TEE_Param params[TEE_NUM_PARAMS]) = 0;
};

}  // namespace rplayer::tee
