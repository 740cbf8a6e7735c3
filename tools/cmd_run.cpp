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
#include "tools/recording_io.h"

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
  std::string soc;  // a SoC process's normal-world socket
  std::vector<std::string> images;
  bool json = false;
  int top = 5;
};

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
  std::unique_ptr<InferenceBackend> backend = make_backend(o.backend, o.sku, model, o.soc);
  const double load_ms = ms_since(t_load);
  for (size_t i = 0; i < inputs.size(); ++i) {
    const auto t_inf = Clock::now();
    const nn::Tensor scores = backend->infer(inputs[i]);
    const double inf_ms = ms_since(t_inf);
    if (i == 0 && !o.json)
      std::printf("model %s (%s), backend %s, load %.1f ms\n", model.info.name.c_str(),
                  model.info.path.c_str(), backend->describe().c_str(), load_ms);
    print_top(o.images[i], model.info.name, o.backend, o.sku, scores, model.labels, o.top, o.json,
              {{"load", load_ms}, {"preprocess", pre_ms[i]}, {"inference", inf_ms}},
              backend->stats());
    if (!o.json) std::printf("  (%.1f ms)\n", inf_ms);
  }
  return 0;
}

}  // namespace

void add_run_command(Cli& cli) {
  CLI::App& app = cli.app;
  auto* o = &cli.hold<RunOpts>();
  auto* cmd =
      app.add_subcommand("run", "Classify images on the modeled GPU through the full stack");
  cmd->add_option(
         "--model", o->model,
         "Model name (squeezenet, mnist, mnist-onnx, bench/<graph>) or a .param/.onnx path")
      ->capture_default_str();
  cmd->add_option("--sku", o->sku, "Modeled GPU: v3d-7.1 or v3d-4.2")->capture_default_str();
  cmd->add_option("--backend", o->backend,
                  "gpu (driver + runtime + JIT on the modeled SoC) or cpu (reference)")
      ->capture_default_str();
  cmd->add_option(
      "--soc", o->soc,
      "Run as a normal-world process on a SoC process (DIR/normal.sock of rplayer-soc)");
  cmd->add_option("--top", o->top, "How many classes to print")->capture_default_str();
  cmd->add_flag("--json", o->json, "One JSON object per image, one per line");
  cmd->add_option("images", o->images, "Image files")->required();
  cmd->callback(cli.run("run", [o] { return run(*o); }));
}

}  // namespace rplayer::tools
