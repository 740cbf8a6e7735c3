// Deterministic weights for graphs that come without them (ncnn's benchmark graphs),
// as benchncnn does: same seed, same weights, on every machine.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nn/graph.h"

namespace rplayer::nn {

// Replaces every layer's weights with values drawn per WeightSpec::init from a seeded
// PRNG (per-layer streams, so one layer's weights do not depend on the others).
void generate_weights(Graph& graph, uint64_t seed = 0x5eedULL);

// generate_weights, then the weights written once as an ncnn .bin (fp32 storage, so the
// values stay exactly those generated) into the cache directory ($XDG_CACHE_HOME/rplayer,
// else ~/.cache/rplayer), named after `graph_name` and a digest of the bytes, and loaded
// back from there: the weights then have a stored range in a file like a real model's,
// which the GPU backend uploads as is. Returns the .bin's path. Throws ModelError if the
// cache cannot be written.
std::string generate_weights_file(Graph& graph, const std::string& graph_name,
                                  uint64_t seed = 0x5eedULL);

// The graph's weights as ncnn .bin bytes, per weight in layer order: raw ones as fp32,
// tagged ones (convolution, inner product, Gemm matrices) as `tagged`: fp32 with the zero
// tag (the values exactly), or fp16 with its tag (rounded to nearest even, padded to 4
// bytes), as ncnn's converter writes them.
std::vector<uint8_t> ncnn_bin_bytes(const Graph& graph,
                                    StorageType tagged = StorageType::kFloat32);

}  // namespace rplayer::nn
