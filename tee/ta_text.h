// Text out of a TA: the optional MEMREF_OUTPUT parameter where a command says why it
// refused (NUL-terminated, truncated to the buffer).
#pragma once

#include <cstring>

#include "tee/ta_api.h"

namespace rplayer::tee {

inline void say(uint32_t types, TEE_Param* p, int i, const char* text) {
  if (TEE_PARAM_TYPE_GET(types, i) != TEE_PARAM_TYPE_MEMREF_OUTPUT) return;
  const size_t n = std::strlen(text);
  if (p[i].memref.size == 0 || !p[i].memref.buffer) {
    p[i].memref.size = 0;
    return;
  }
  const size_t m = n < p[i].memref.size - 1 ? n : p[i].memref.size - 1;
  std::memcpy(p[i].memref.buffer, text, m);
  static_cast<char*>(p[i].memref.buffer)[m] = 0;
  p[i].memref.size = m + 1;
}

}  // namespace rplayer::tee
