#include "tools/recording_io.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <thread>

#include "hw/v3d_regs.h"
#include "nn/model_zoo.h"
#include "record/keys.h"
#include "replay/decoder.h"

namespace rplayer::tools {

namespace fs = std::filesystem;

fs::path key_dir(const std::string& arg) {
  if (!arg.empty()) return arg;
  if (const char* e = std::getenv("RPLAYER_KEYS"); e && *e) return e;
  return "keys";
}

void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  if (!f) throw std::runtime_error("cannot write " + path);
}

bool load_recording(const std::string& path, const std::vector<std::string>& key_files,
                    const std::string& trust, replay::Recording* rec, std::string* error) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return *error = "cannot open the recording", false;
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), {});
  std::vector<replay::PublicKey> keys;
  try {
    for (const std::string& k : key_files) keys.push_back(record::load_public_key(k));
    if (keys.empty()) {
      const fs::path store = trust.empty() ? key_dir("") / "trusted" : fs::path(trust);
      if (!fs::exists(store))
        return *error = "no trusted keys: " + store.string() +
                        " does not exist (rplayer keygen, or --key PUB)",
               false;
      keys = record::TrustStore::load(store).keys();
    }
  } catch (const std::exception& e) {
    return *error = e.what(), false;
  }
  const replay::DecodeError e = replay::decode_recording(bytes, keys, rec);
  if (!e.ok()) {
    char buf[256];
    return *error = e.format(buf, sizeof buf), false;
  }
  return true;
}

std::string metadata(const replay::Recording& rec, const std::string& key) {
  for (const auto& [k, v] : rec.metadata)
    if (k == key) return v;
  return {};
}

ReplayTarget::ReplayTarget(const std::string& sku) {
  hw::SocConfig cfg;
  cfg.sku = sku;
  soc_ = std::make_unique<hw::ModeledSoc>(cfg);
  hw::SocPort& sec = soc_->port(hw::World::Secure);
  sec.write32(hw::RegBlock::Tzpc, v3d::TZPC_GPU_SECURE, 1);
  for (int i = 0; i < 10000 && !soc_->gpu().secure(); ++i)
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  if (!soc_->gpu().secure()) throw std::runtime_error("the GPU did not move to the secure world");
  platform_ = std::make_unique<tee::SocPlatform>(sec, soc_->memory().secure_base(),
                                                 soc_->memory().secure_size());
}

replay::ReplayError ReplayTarget::run(const replay::Recording& rec, const std::string& in_name,
                                      const nn::Tensor& input, const std::string& out_name,
                                      std::vector<float>* out, replay::ReplayStats* st) {
  replay::TensorIn in{in_name.c_str(), input.data(), uint32_t(input.size() * 4)};
  replay::TensorOut o{out_name.c_str(), out->data(), uint32_t(out->size() * 4)};
  replay::VerifyLimits limits;
  limits.max_memory_bytes = soc_->memory().secure_size() - (8u << 20);  // PT + slack
  replay::Replayer r(*platform_, limits);
  return r.run(rec, {&in, 1}, {&o, 1}, st);
}

namespace {
// Networks ending in Softmax give probabilities; logits (MNIST) go through a softmax.
nn::Tensor as_probabilities(nn::Tensor t) {
  double sum = 0;
  bool nonneg = true;
  for (size_t i = 0; i < t.size(); ++i) {
    sum += t.data()[i];
    nonneg &= t.data()[i] >= 0;
  }
  if (nonneg && std::abs(sum - 1.0) < 1e-3) return t;
  float mx = t.data()[0];
  for (size_t i = 1; i < t.size(); ++i) mx = std::max(mx, t.data()[i]);
  double z = 0;
  for (size_t i = 0; i < t.size(); ++i) z += std::exp(double(t.data()[i] - mx));
  for (size_t i = 0; i < t.size(); ++i) t.data()[i] = float(std::exp(double(t.data()[i] - mx)) / z);
  return t;
}
}  // namespace

void print_top(const std::string& image, const std::string& model, const std::string& backend,
               const std::string& sku, const nn::Tensor& scores,
               const std::vector<std::string>& labels, int k, bool json,
               const nlohmann::json& timings_ms, const nlohmann::json& stats) {
  const auto top = nn::top_k(as_probabilities(scores), k);
  auto label = [&](int c) { return c < int(labels.size()) ? labels[c] : std::to_string(c); };
  if (json) {
    nlohmann::json j;
    j["image"] = fs::path(image).filename().string();
    j["model"] = model;
    j["backend"] = backend;
    j["sku"] = sku;
    j["top5"] = nlohmann::json::array();
    for (auto [c, p] : top) j["top5"].push_back({{"class", c}, {"label", label(c)}, {"prob", p}});
    j["timings_ms"] = timings_ms;
    j["stats"] = stats;
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("%s:\n", image.c_str());
    for (auto [c, p] : top) std::printf("  %4d  %.4f  %s\n", c, p, label(c).c_str());
  }
  std::fflush(stdout);
}

}  // namespace rplayer::tools
