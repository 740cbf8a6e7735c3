// Checked arithmetic for values that come from a recording. Every sum or product of
// recording fields goes through these, so that a hostile value fails a check instead of
// wrapping past it.
#pragma once

#include <cstdint>

namespace rplayer::replay {

// a * b into *out; false (and *out unchanged) if it does not fit in 64 bits.
inline bool checked_mul(uint64_t a, uint64_t b, uint64_t* out) {
  uint64_t r;
  if (__builtin_mul_overflow(a, b, &r)) return false;
  *out = r;
  return true;
}

// a + b into *out; false (and *out unchanged) if it does not fit in 64 bits.
inline bool checked_add(uint64_t a, uint64_t b, uint64_t* out) {
  uint64_t r;
  if (__builtin_add_overflow(a, b, &r)) return false;
  *out = r;
  return true;
}

// The element count of `shape` (outermost first) if it is at most `limit`, else 0. An
// empty shape or a zero extent also gives 0.
template <typename Dims>
uint64_t element_count(const Dims& shape, uint64_t limit) {
  uint64_t n = 1;
  for (uint32_t d : shape)
    if (!checked_mul(n, d, &n) || n > limit) return 0;
  return shape.empty() ? 0 : n;
}

}  // namespace rplayer::replay
