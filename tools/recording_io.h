// What the record/replay commands share: key locations, loading and checking a signed
// recording, the replay target (a modeled SoC whose GPU the secure world owns), and the
// top-k output that `run` and `replay` print alike.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "hw/soc.h"
#include "nn/tensor.h"
#include "replay/recording.h"
#include "replay/replayer.h"
#include "tee/soc_platform.h"
#include "tools/gpu_stack.h"

namespace rplayer::tools {

void write_file(const std::string& path, const std::vector<uint8_t>& bytes);

// Records `model` on the full stack of a fresh modeled SoC and signs it with the key
// directory's signing key. *summary: "MODEL on SKU: N jobs, ...".
struct RecordRequest {
  std::string model = "squeezenet", sku = "v3d-7.1";
  std::string image;  // input to record with; empty: a fixed pattern
  std::string keys;   // key directory (keys/key_paths.h)
  bool omit_weights = false;
  bool progress = false;  // a progress line on stderr
};
std::vector<uint8_t> record_model(const RecordRequest& req, std::string* summary);
// After an inference under a started recorder: binds the model's input and output blobs
// and finishes the recording. Throws std::runtime_error.
replay::Recording finish_recording(GpuStack& stack, const nn::Model& model);

// Reads, decodes and checks the signature of a recording against the given public key
// files, or else the trust store (`trust`, else <key dir>/trusted). false with *error.
bool load_recording(const std::string& path, const std::vector<std::string>& key_files,
                    const std::string& trust, replay::Recording* rec, std::string* error);
bool decode_recording_bytes(const std::vector<uint8_t>& bytes,
                            const std::vector<std::string>& key_files, const std::string& trust,
                            replay::Recording* rec, std::string* error,
                            const std::string& keys_arg = {});
std::string metadata(const replay::Recording& rec, const std::string& key);

// A modeled SoC for replays: the GPU moved to the secure world, pages from the carve-out.
class ReplayTarget {
 public:
  explicit ReplayTarget(const std::string& sku);
  // One self-contained replay: verify, load, run, scrub everything.
  replay::ReplayError run(const replay::Recording& rec, const std::string& in_name,
                          const nn::Tensor& input, const std::string& out_name,
                          std::vector<float>* out, replay::ReplayStats* st,
                          std::span<const uint8_t> model_file = {});
  // A session: load once (`rec` must outlive it), then run_loaded() per input.
  // `model_file`: the model's weights file, for recordings that omit their weights.
  replay::ReplayError load(const replay::Recording& rec, replay::ReplayStats* st,
                           std::span<const uint8_t> model_file = {});
  replay::ReplayError run_loaded(const std::string& in_name, const nn::Tensor& input,
                                 const std::string& out_name, std::vector<float>* out,
                                 replay::ReplayStats* st);
  void unload() { session_.reset(); }  // scrubs and frees the session's pages
  hw::ModeledSoc& soc() { return *soc_; }
  // The carve-out platform, and a Platform standing between it and the replayers (tests
  // interpose an escape oracle); nullptr goes back to the carve-out platform. Set it
  // before load()/run().
  replay::Platform& carve_out() { return *platform_; }
  void interpose(replay::Platform* p) { active_ = p ? p : platform_.get(); }

 private:
  replay::VerifyLimits limits() const;
  std::unique_ptr<hw::ModeledSoc> soc_;
  std::unique_ptr<tee::SocPlatform> platform_;
  replay::Platform* active_ = nullptr;
  std::unique_ptr<replay::Replayer> session_;
};

// Prints the top-k classes of `scores` (softmax applied when they are logits) as text,
// or as one JSON line: {"image", "model", "backend", "sku", "top5", "timings_ms", "stats"}.
void print_top_entries(const std::string& image, const std::string& model,
                       const std::string& backend, const std::string& sku,
                       const std::vector<std::pair<int, float>>& top,
                       const std::vector<std::string>& labels, bool json,
                       const nlohmann::json& timings_ms, const nlohmann::json& stats);
void print_top(const std::string& image, const std::string& model, const std::string& backend,
               const std::string& sku, const nn::Tensor& scores,
               const std::vector<std::string>& labels, int k, bool json,
               const nlohmann::json& timings_ms, const nlohmann::json& stats);

}  // namespace rplayer::tools
