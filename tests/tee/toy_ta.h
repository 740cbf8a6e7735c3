// A toy trusted application for the TEE tests: small commands that exercise every parameter
// kind, strict parameter-type checks like a real TA, and counters the tests read.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>

#include "tee/ta_api.h"

namespace rplayer::tee::test {

inline constexpr TEE_UUID kToyUuid = {
    0x2a6b1c4d, 0x7e10, 0x4f3a, {0x9d, 0x21, 0x5c, 0x8e, 0x01, 0x77, 0xab, 0x3f}};

enum ToyCmd : uint32_t {
  kCmdAdd = 0,      // VALUE_INPUT (a, b), VALUE_OUTPUT -> (a + b, a * b), VALUE_INOUT a += 1
  kCmdEcho = 1,     // MEMREF_INPUT in, MEMREF_OUTPUT out: copy; SHORT_BUFFER with the needed size
  kCmdFill = 2,     // MEMREF_OUTPUT buf, VALUE_INPUT a = byte: memset the whole buffer
  kCmdSum = 3,      // MEMREF_INPUT buf, VALUE_OUTPUT a = byte sum, b = size
  kCmdSleep = 4,    // VALUE_INPUT a = max ms: blocks until release() or timeout
  kCmdInvert = 5,   // MEMREF_INOUT buf: bytes ^= 0xFF; output size = a (VALUE_INPUT) if non-zero
  kCmdRemember = 6, // MEMREF_INOUT shm window: remembers the pointer (zero-copy test only)
  kCmdPoke = 7,     // VALUE_INPUT a = byte: writes it through the remembered pointer
};

class ToyTa : public TrustedApp {
 public:
  TEE_UUID uuid() const override { return kToyUuid; }
  TEE_Result create() override {
    ++creates;
    return TEE_SUCCESS;
  }
  void destroy() override { ++destroys; }

  // Optional param 0: VALUE_INPUT a == 0xDEAD refuses; VALUE_OUTPUT gets the session number.
  TEE_Result open_session(uint32_t types, TEE_Param params[4], void** ctx) override {
    uint32_t t0 = TEE_PARAM_TYPE_GET(types, 0);
    if (t0 == TEE_PARAM_TYPE_VALUE_INPUT && params[0].value.a == 0xDEAD)
      return TEE_ERROR_ACCESS_DENIED;
    int n = ++opens;
    if (t0 == TEE_PARAM_TYPE_VALUE_OUTPUT) params[0].value.a = static_cast<uint32_t>(n);
    *ctx = new Session{n};
    return TEE_SUCCESS;
  }
  void close_session(void* ctx) override {
    delete static_cast<Session*>(ctx);
    ++closes;
  }

  TEE_Result invoke(void* ctx, uint32_t cmd, uint32_t types, TEE_Param p[4]) override {
    if (++inside > 1) overlap = true;  // entry points must be serialized
    TEE_Result r = dispatch(static_cast<Session*>(ctx), cmd, types, p);
    --inside;
    ++invokes;
    return r;
  }

  void release() {
    std::lock_guard<std::mutex> lock(mu_);
    released_ = true;
    cv_.notify_all();
  }

  std::atomic<int> creates{0}, destroys{0}, opens{0}, closes{0}, invokes{0};
  std::atomic<int> sleeping{0};  // invocations currently inside kCmdSleep
  std::atomic<int> inside{0};
  std::atomic<bool> overlap{false};

 private:
  struct Session {
    int n;
    uint8_t* remembered = nullptr;
    size_t remembered_size = 0;
  };

  TEE_Result dispatch(Session* s, uint32_t cmd, uint32_t types, TEE_Param p[4]) {
    switch (cmd) {
      case kCmdAdd:
        if (types != TEE_PARAM_TYPES(TEE_PARAM_TYPE_VALUE_INPUT, TEE_PARAM_TYPE_VALUE_OUTPUT,
                                     TEE_PARAM_TYPE_VALUE_INOUT, TEE_PARAM_TYPE_NONE))
          return TEE_ERROR_BAD_PARAMETERS;
        p[1].value.a = p[0].value.a + p[0].value.b;
        p[1].value.b = p[0].value.a * p[0].value.b;
        p[2].value.a += 1;
        return TEE_SUCCESS;
      case kCmdEcho:
        if (types != TEE_PARAM_TYPES(TEE_PARAM_TYPE_MEMREF_INPUT, TEE_PARAM_TYPE_MEMREF_OUTPUT,
                                     TEE_PARAM_TYPE_NONE, TEE_PARAM_TYPE_NONE))
          return TEE_ERROR_BAD_PARAMETERS;
        if (p[1].memref.size < p[0].memref.size) {
          p[1].memref.size = p[0].memref.size;
          return TEE_ERROR_SHORT_BUFFER;
        }
        if (p[0].memref.size) std::memcpy(p[1].memref.buffer, p[0].memref.buffer, p[0].memref.size);
        p[1].memref.size = p[0].memref.size;
        return TEE_SUCCESS;
      case kCmdFill:
        if (types != TEE_PARAM_TYPES(TEE_PARAM_TYPE_MEMREF_OUTPUT, TEE_PARAM_TYPE_VALUE_INPUT,
                                     TEE_PARAM_TYPE_NONE, TEE_PARAM_TYPE_NONE) &&
            types != TEE_PARAM_TYPES(TEE_PARAM_TYPE_MEMREF_INOUT, TEE_PARAM_TYPE_VALUE_INPUT,
                                     TEE_PARAM_TYPE_NONE, TEE_PARAM_TYPE_NONE))
          return TEE_ERROR_BAD_PARAMETERS;
        if (p[0].memref.size)
          std::memset(p[0].memref.buffer, static_cast<int>(p[1].value.a), p[0].memref.size);
        return TEE_SUCCESS;
      case kCmdSum: {
        if (TEE_PARAM_TYPE_GET(types, 1) != TEE_PARAM_TYPE_VALUE_OUTPUT ||
            (TEE_PARAM_TYPE_GET(types, 0) != TEE_PARAM_TYPE_MEMREF_INPUT &&
             TEE_PARAM_TYPE_GET(types, 0) != TEE_PARAM_TYPE_MEMREF_INOUT) ||
            (types >> 8))
          return TEE_ERROR_BAD_PARAMETERS;
        uint32_t sum = 0;
        auto* b = static_cast<const uint8_t*>(p[0].memref.buffer);
        for (size_t i = 0; i < p[0].memref.size; ++i) sum += b[i];
        p[1].value.a = sum;
        p[1].value.b = static_cast<uint32_t>(p[0].memref.size);
        return TEE_SUCCESS;
      }
      case kCmdSleep: {
        if (types != TEE_PARAM_TYPES(TEE_PARAM_TYPE_VALUE_INPUT, TEE_PARAM_TYPE_NONE,
                                     TEE_PARAM_TYPE_NONE, TEE_PARAM_TYPE_NONE))
          return TEE_ERROR_BAD_PARAMETERS;
        ++sleeping;
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait_for(lock, std::chrono::milliseconds(p[0].value.a), [&] { return released_; });
        --sleeping;
        return TEE_SUCCESS;
      }
      case kCmdInvert: {
        uint32_t t0 = TEE_PARAM_TYPE_GET(types, 0), t1 = TEE_PARAM_TYPE_GET(types, 1);
        if (t0 != TEE_PARAM_TYPE_MEMREF_INOUT ||
            (t1 != TEE_PARAM_TYPE_NONE && t1 != TEE_PARAM_TYPE_VALUE_INPUT) || (types >> 8))
          return TEE_ERROR_BAD_PARAMETERS;
        auto* b = static_cast<uint8_t*>(p[0].memref.buffer);
        for (size_t i = 0; i < p[0].memref.size; ++i) b[i] ^= 0xFF;
        if (t1 == TEE_PARAM_TYPE_VALUE_INPUT && p[1].value.a) p[0].memref.size = p[1].value.a;
        return TEE_SUCCESS;
      }
      case kCmdRemember:
        if (types != TEE_PARAM_TYPES(TEE_PARAM_TYPE_MEMREF_INOUT, TEE_PARAM_TYPE_NONE,
                                     TEE_PARAM_TYPE_NONE, TEE_PARAM_TYPE_NONE))
          return TEE_ERROR_BAD_PARAMETERS;
        s->remembered = static_cast<uint8_t*>(p[0].memref.buffer);
        s->remembered_size = p[0].memref.size;
        return TEE_SUCCESS;
      case kCmdPoke:
        if (types != TEE_PARAM_TYPES(TEE_PARAM_TYPE_VALUE_INPUT, TEE_PARAM_TYPE_NONE,
                                     TEE_PARAM_TYPE_NONE, TEE_PARAM_TYPE_NONE) ||
            !s->remembered)
          return TEE_ERROR_BAD_STATE;
        std::memset(s->remembered, static_cast<int>(p[0].value.a), s->remembered_size);
        return TEE_SUCCESS;
      default:
        return TEE_ERROR_NOT_SUPPORTED;
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  bool released_ = false;
};

}  // namespace rplayer::tee::test
