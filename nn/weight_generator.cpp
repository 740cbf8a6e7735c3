#include "nn/weight_generator.h"

#include <cmath>

#include "nn/layer_spec.h"

namespace rplayer::nn {
namespace {

// splitmix64: tiny, fast, and identical everywhere (std:: distributions are not).
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [lo, hi).
  float uniform(float lo, float hi) {
    return lo + (hi - lo) * float(next() >> 40) * (1.f / float(1 << 24));
  }

 private:
  uint64_t state_;
};

}  // namespace

void generate_weights(Graph& graph, uint64_t seed) {
  for (size_t i = 0; i < graph.layers().size(); i++) {
    Layer& l = graph.layer(int(i));
    Rng rng(seed ^ (0x100000001b3ULL * (i + 1)));
    l.weights.clear();
    for (const WeightSpec& spec : weight_specs(l)) {
      std::vector<float> v(spec.shape.total());
      float lo = -0.1f, hi = 0.1f;
      if (spec.init == WeightInit::kFanIn) {
        hi = std::sqrt(3.f / float(spec.fan_in));
        lo = -hi;
      } else if (spec.init == WeightInit::kNearOne) {
        lo = 0.5f;
        hi = 1.5f;
      }
      for (float& x : v) x = rng.uniform(lo, hi);
      l.weights.emplace_back(spec.shape, std::move(v), spec.name);
    }
  }
}

}  // namespace rplayer::nn
