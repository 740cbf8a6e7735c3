#include "nn/weight_generator.h"

#include <sodium.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "nn/file_bytes.h"
#include "nn/layer_spec.h"
#include "nn/model_error.h"
#include "nn/ncnn_loader.h"

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

namespace {

std::filesystem::path cache_dir() {
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg)
    return std::filesystem::path(xdg) / "rplayer";
  const char* home = std::getenv("HOME");
  if (!home || !*home)
    throw ModelError("no cache directory: neither XDG_CACHE_HOME nor HOME is set");
  return std::filesystem::path(home) / ".cache" / "rplayer";
}

std::string hex_digest(const std::vector<uint8_t>& bytes) {
  if (sodium_init() < 0) throw ModelError("libsodium failed to initialize");
  uint8_t d[16];
  crypto_generichash(d, sizeof d, bytes.data(), bytes.size(), nullptr, 0);
  static const char kHex[] = "0123456789abcdef";
  std::string s;
  for (uint8_t b : d) s += {kHex[b >> 4], kHex[b & 15]};
  return s;
}

}  // namespace

std::vector<uint8_t> ncnn_bin_bytes(const Graph& graph, StorageType tagged) {
  std::vector<uint8_t> out;
  auto append = [&out](const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    out.insert(out.end(), b, b + n);
  };
  for (const Layer& l : graph.layers()) {
    const std::vector<WeightSpec> specs = weight_specs(l);
    if (specs.size() != l.weights.size())
      throw ModelError(graph.source + ": layer " + l.name + " has " +
                       std::to_string(l.weights.size()) + " weights, its type stores " +
                       std::to_string(specs.size()));
    for (size_t i = 0; i < specs.size(); ++i) {
      const Tensor& t = l.weights[i];
      if (specs[i].tagged && tagged == StorageType::kFloat16) {
        const uint32_t fp16_tag = 0x01306B47;
        append(&fp16_tag, 4);
        std::vector<uint16_t> half;
        for (float v : t.values()) half.push_back(float_to_half(v));
        half.resize((half.size() + 1) / 2 * 2);
        append(half.data(), half.size() * 2);
        continue;
      }
      const uint32_t raw_fp32_tag = 0;
      if (specs[i].tagged) append(&raw_fp32_tag, 4);
      append(t.data(), t.size() * sizeof(float));
    }
  }
  return out;
}

std::string generate_weights_file(Graph& graph, const std::string& graph_name, uint64_t seed) {
  generate_weights(graph, seed);
  const std::vector<uint8_t> bin = ncnn_bin_bytes(graph);
  std::string stem = graph_name;
  for (char& c : stem)
    if (c == '/' || c == '\\') c = '_';
  const std::filesystem::path dir = cache_dir();
  const std::filesystem::path path = dir / (stem + "-" + hex_digest(bin) + ".bin");
  std::error_code ec;
  // The name carries the digest of the contents: an existing file of the right size is
  // the same weights (written by an earlier run), anything else is rewritten.
  if (std::filesystem::file_size(path, ec) != bin.size() || ec) {
    std::filesystem::create_directories(dir, ec);
    // Written under a unique name, then renamed: concurrent writers (parallel tests)
    // never expose a half-written file.
    const std::filesystem::path tmp =
        path.string() + ".tmp" + std::to_string(::getpid()) + "-" + std::to_string(seed);
    {
      std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
      f.write(reinterpret_cast<const char*>(bin.data()), std::streamsize(bin.size()));
      if (!f) throw ModelError(tmp.string() + ": cannot write the generated weights");
    }
    std::filesystem::rename(tmp, path, ec);
    if (ec)
      throw ModelError(path.string() + ": cannot write the generated weights: " + ec.message());
  }
  load_ncnn_bin(graph, path.string());
  return path.string();
}

}  // namespace rplayer::nn
