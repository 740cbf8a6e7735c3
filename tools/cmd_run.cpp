// `rplayer run`: classify images with a model through the full stack.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "nn/cpu_reference.h"
#include "nn/model_error.h"
#include "nn/model_zoo.h"
#include "tools/commands.h"
#include "tools/inference_backend.h"

namespace rplayer::tools {

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

struct RunOpts {
  std::string model = "squeezenet";
  std::string sku = "v3d-7.1";
  std::string backend = "gpu";
  std::vector<std::string> images;
  bool json = false;
  int top = 5;
};

// Scores as probabilities: a network that ends in Softmax already gives them; raw
// logits (MNIST) go through a softmax for display.
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

int run(const RunOpts& o) {
  const auto t_load = Clock::now();
  nn::Model model = nn::load_model(o.model);
  // Decode every image first: a bad file fails the command before any output.
  const nn::Shape& in = model.info.input_shape;
  std::vector<nn::Tensor> inputs;
  std::vector<double> pre_ms;
  for (const std::string& path : o.images) {
    const auto t_pre = Clock::now();
    inputs.push_back(nn::preprocess_image(path, model.info.preprocess, in.w, in.h));
    pre_ms.push_back(ms_since(t_pre));
  }
  std::unique_ptr<InferenceBackend> backend = make_backend(o.backend, o.sku, model);
  const double load_ms = ms_since(t_load);
  std::vector<nn::Tensor> outputs;
  std::vector<double> inf_ms;
  for (const nn::Tensor& input : inputs) {
    const auto t_inf = Clock::now();
    outputs.push_back(as_probabilities(backend->infer(input)));
    inf_ms.push_back(ms_since(t_inf));
  }
  if (!o.json)
    std::printf("model %s (%s), backend %s, load %.1f ms\n", model.info.name.c_str(),
                model.info.path.c_str(), backend->describe().c_str(), load_ms);
  for (size_t i = 0; i < o.images.size(); ++i) {
    const std::string& path = o.images[i];
    const auto top = nn::top_k(outputs[i], o.top);
    auto label = [&](int c) {
      return c < int(model.labels.size()) ? model.labels[c] : std::to_string(c);
    };
    if (o.json) {
      nlohmann::json j;
      j["image"] = std::filesystem::path(path).filename().string();
      j["model"] = model.info.name;
      j["backend"] = o.backend;
      j["sku"] = o.sku;
      j["top5"] = nlohmann::json::array();
      for (auto [c, p] : top) j["top5"].push_back({{"class", c}, {"label", label(c)}, {"prob", p}});
      j["timings_ms"] = {{"load", load_ms}, {"preprocess", pre_ms[i]}, {"inference", inf_ms[i]}};
      j["stats"] = backend->stats();
      std::printf("%s\n", j.dump().c_str());
    } else {
      std::printf("%s (%.1f ms):\n", path.c_str(), inf_ms[i]);
      for (auto [c, p] : top) std::printf("  %4d  %.4f  %s\n", c, p, label(c).c_str());
    }
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace

void add_run_command(CLI::App& app, int* exit_code) {
  auto* o = new RunOpts;
  auto* cmd = app.add_subcommand("run", "Classify images on the modeled GPU through the full stack");
  cmd->add_option("--model", o->model, "Model name (squeezenet, mnist, mnist-onnx, bench/<graph>) or a .param/.onnx path")
      ->capture_default_str();
  cmd->add_option("--sku", o->sku, "Modeled GPU: v3d-7.1 or v3d-4.2")->capture_default_str();
  cmd->add_option("--backend", o->backend, "gpu (driver + runtime + JIT on the modeled SoC) or cpu (reference)")
      ->capture_default_str();
  cmd->add_option("--top", o->top, "How many classes to print")->capture_default_str();
  cmd->add_flag("--json", o->json, "One JSON object per image, one per line");
  cmd->add_option("images", o->images, "Image files")->required();
  cmd->callback([o, exit_code] {
    try {
      *exit_code = run(*o);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "rplayer run: %s\n", e.what());
      *exit_code = 1;
    }
  });
}

}  // namespace rplayer::tools
