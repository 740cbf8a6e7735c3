// Whether this test binary is the ASan + UBSan build (make test-sanitize). Under the
// sanitizers the QPU interpreter is ~30x slower, so tests that run a SqueezeNet-scale
// network end to end skip those cases there: each has an MNIST case that runs the same
// code sanitized, and the plain build (make test) runs them all.
#pragma once

namespace rplayer::test {

#ifdef RPLAYER_SANITIZED
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif

inline constexpr const char* kPlainBuildOnly =
    "SqueezeNet-scale: plain build only (the sanitizers make it ~30x slower; the MNIST "
    "cases run the same code here)";

}  // namespace rplayer::test
