// Deterministic weights for graphs that come without them (ncnn's benchmark graphs),
// as benchncnn does: same seed, same weights, on every machine.
#pragma once

#include <cstdint>

#include "nn/graph.h"

namespace rplayer::nn {

// Replaces every layer's weights with values drawn per WeightSpec::init from a seeded
// PRNG (per-layer streams, so one layer's weights do not depend on the others).
void generate_weights(Graph& graph, uint64_t seed = 0x5eedULL);

}  // namespace rplayer::nn
