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
#include "keyring/key_paths.h"
#include "nn/file_bytes.h"
#include "nn/model_zoo.h"
#include "nn/preprocess.h"
#include "nn/scores.h"
#include "record/encoder.h"
#include "record/recorder.h"
#include "replay/decoder.h"
#include "tools/gpu_stack.h"

namespace rplayer::tools {

namespace fs = std::filesystem;

void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  if (!f) throw std::runtime_error("cannot write " + path);
}

bool load_recording(const std::string& path, const std::vector<std::string>& key_files,
                    const std::string& trust, replay::Recording* rec, std::string* error) {
  std::vector<uint8_t> bytes;
  std::string read_error;
  if (!nn::read_whole_file(path, &bytes, &read_error))
    return *error = "cannot read the recording: " + read_error, false;
  return decode_recording_bytes(bytes, key_files, trust, rec, error);
}

bool decode_recording_bytes(const std::vector<uint8_t>& bytes,
                            const std::vector<std::string>& key_files, const std::string& trust,
                            replay::Recording* rec, std::string* error,
                            const std::string& keys_arg) {
  std::vector<replay::PublicKey> trusted;
  try {
    for (const std::string& k : key_files) trusted.push_back(keyring::load_public_key(k));
    if (trusted.empty()) trusted = keyring::load_trust_store(trust, keys_arg).keys();
  } catch (const std::exception& e) {
    return *error = e.what(), false;
  }
  const replay::DecodeError e = replay::decode_recording(bytes, trusted, rec);
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
  active_ = platform_.get();
}

replay::ReplayError ReplayTarget::run(const replay::Recording& rec, const std::string& in_name,
                                      const nn::Tensor& input, const std::string& out_name,
                                      std::vector<float>* out, replay::ReplayStats* st,
                                      std::span<const uint8_t> model_file) {
  replay::TensorIn in{in_name.c_str(), input.data(), uint32_t(input.size() * 4)};
  replay::TensorOut o{out_name.c_str(), out->data(), uint32_t(out->size() * 4)};
  replay::Replayer r(*active_, limits());
  return r.run(rec, {&in, 1}, {&o, 1}, st, model_file);
}

replay::VerifyLimits ReplayTarget::limits() const {
  return replay::limits_for_pool(soc_->memory().secure_size());
}

replay::ReplayError ReplayTarget::load(const replay::Recording& rec, replay::ReplayStats* st,
                                       std::span<const uint8_t> model_file) {
  session_ = std::make_unique<replay::Replayer>(*active_, limits());
  const replay::SkuIdentity gpu{soc_->sku().hub_ident1, soc_->sku().hub_ident3,
                                soc_->sku().core_ident0, soc_->sku().core_ident1};
  return session_->load(rec, &gpu, model_file, st);
}

replay::ReplayError ReplayTarget::run_loaded(const std::string& in_name, const nn::Tensor& input,
                                             const std::string& out_name, std::vector<float>* out,
                                             replay::ReplayStats* st) {
  replay::TensorIn in{in_name.c_str(), input.data(), uint32_t(input.size() * 4)};
  replay::TensorOut o{out_name.c_str(), out->data(), uint32_t(out->size() * 4)};
  if (!session_) {
    replay::ReplayError e;
    e.code = replay::ReplayCode::NotLoaded;
    return e;
  }
  return session_->run({&in, 1}, {&o, 1}, st);
}

void print_top(const std::string& image, const std::string& model, const std::string& backend,
               const std::string& sku, const nn::Tensor& scores,
               const std::vector<std::string>& labels, int k, bool json,
               const nlohmann::json& timings_ms, const nlohmann::json& stats) {
  print_top_entries(image, model, backend, sku, nn::top_k(nn::as_probabilities(scores), k), labels,
                    json, timings_ms, stats);
}

void print_top_entries(const std::string& image, const std::string& model,
                       const std::string& backend, const std::string& sku,
                       const std::vector<std::pair<int, float>>& top,
                       const std::vector<std::string>& labels, bool json,
                       const nlohmann::json& timings_ms, const nlohmann::json& stats) {
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

replay::Recording finish_recording(GpuStack& stack, const nn::Model& model) {
  std::string err;
  // The executor gives each graph input and output a buffer of its own, labelled with
  // the blob's name (nn/gpu/gpu_executor.h).
  for (const auto& [blob, is_input] : {std::pair{model.info.input_blob, true},
                                       std::pair{model.info.output_blob, false}}) {
    const nn::Shape& s = model.graph.blob_shape(blob);
    std::vector<uint32_t> shape;
    for (int d : s.outer_dims()) shape.push_back(uint32_t(d));
    if (!stack.recorder().bind_buffer(blob, is_input, uint32_t(s.total() * 4), shape, &err))
      throw std::runtime_error(err);
  }
  replay::Recording rec;
  if (!stack.recorder().finish(&rec, &err)) throw std::runtime_error("recording failed: " + err);
  return rec;
}

std::vector<uint8_t> record_model(const RecordRequest& o, std::string* summary) {
  const keyring::KeyPair key = keyring::load_signing_key(o.keys);
  nn::Model model = nn::load_model(o.model);
  // The job stream does not depend on the input; a real image keeps the recording honest
  // (and its output checkable). Models without an image input get a fixed pattern.
  nn::Tensor input(model.info.input_shape);
  if (!o.image.empty()) {
    input = nn::preprocess_image(o.image, model.info.preprocess, model.info.input_shape.w,
                                 model.info.input_shape.h);
  } else {
    for (size_t i = 0; i < input.size(); ++i) input.data()[i] = float(i % 251) / 251.f;
  }
  record::RecorderOptions ropts;
  ropts.omit_weights = o.omit_weights;
  ropts.on_job = [tty = o.progress](uint64_t jobs) {
    if (tty && jobs % 8 == 0)
      std::fprintf(stderr, "\rrecording: %llu GPU jobs", (unsigned long long)jobs);
  };
  GpuStack stack(o.sku, model, ropts);
  stack.start_recording();
  stack.infer(input);
  if (o.progress) std::fprintf(stderr, "\r\033[K");
  replay::Recording rec = finish_recording(stack, model);
  rec.sku_name = o.sku;
  rec.metadata.insert(rec.metadata.begin(),  // after the recorder's own (the budget)
                      {{"model", o.model},
                       {"input_blob", model.info.input_blob},
                       {"output_blob", model.info.output_blob},
                       {"preprocess", nn::preprocess_name(model.info.preprocess)},
                       {"stack", "rplayer 0.1.0 (driver + runtime/JIT + nn GPU backend)"},
                       {"jobs", std::to_string(stack.recorder().stats().jobs)}});
  std::vector<uint8_t> bytes = record::encode_recording(rec, key);
  const auto st = stack.recorder().stats();
  char buf[300];
  std::snprintf(buf, sizeof buf,
                "%s on %s: %llu jobs, %zu actions, %zu regions, %zu page loads (%zu unique pages)",
                o.model.c_str(), o.sku.c_str(), (unsigned long long)st.jobs, rec.actions.size(),
                rec.regions.size(), rec.loads.size(), rec.blobs.size());
  if (summary) *summary = buf;
  return bytes;
}

}  // namespace rplayer::tools
