// Native inference through the full stack (modeled SoC, driver, runtime + JIT, NN GPU
// backend): cold start (SoC + driver probe + weight upload + JIT + first inference) and
// warm latency, register accesses, jobs and device time per inference, per model.
//
//   build/bench/inference_bench [--models squeezenet,bench/mobilenet] [--iterations 5]
//                               [--sku v3d-7.1] [--json]
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "bench/bench_util.h"
#include "nn/model_zoo.h"
#include "nn/preprocess.h"
#include "tools/gpu_stack.h"

namespace {

using rplayer::bench::Clock;
using rplayer::bench::ms;
using rplayer::bench::split;

// A deterministic input of the model's shape (the job stream does not depend on it).
rplayer::nn::Tensor make_input(const rplayer::nn::Model& m, const std::string& shared) {
  if (m.info.preprocess == rplayer::nn::Preprocess::kSqueezeNet)
    return rplayer::nn::preprocess_image(shared + "/images/cat.jpg", m.info.preprocess,
                                         m.info.input_shape.w, m.info.input_shape.h);
  rplayer::nn::Tensor t(m.info.input_shape);
  for (size_t i = 0; i < t.size(); ++i) t.data()[i] = float((i * 2654435761u) % 1000) / 1000.f;
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"rplayer native inference benchmark"};
  std::string models = "squeezenet", sku = "v3d-7.1";
  int iterations = 5;
  bool json = false;
  app.add_option("--models", models, "Comma-separated model names")->capture_default_str();
  app.add_option("--sku", sku)->capture_default_str();
  app.add_option("--iterations", iterations, "Warm inferences per model")->capture_default_str();
  app.add_flag("--json", json);
  CLI11_PARSE(app, argc, argv);

  const std::string shared = rplayer::nn::models_dir() + "/..";
  nlohmann::json results = nlohmann::json::array();
  for (const std::string& name : split(models)) {
    try {
      const auto t0 = Clock::now();
      rplayer::nn::Model model = rplayer::nn::load_model(name);
      const rplayer::nn::Tensor input = make_input(model, shared);
      rplayer::tools::GpuStack stack(sku, model);
      stack.infer(input);
      const double cold_ms = ms(Clock::now() - t0);

      const auto io0 = stack.io_counts();
      const auto drv0 = stack.driver().stats();
      const auto gpu0 = stack.soc().gpu().stats();
      const auto t1 = Clock::now();
      for (int i = 0; i < iterations; ++i) stack.infer(input);
      const double warm_ms = ms(Clock::now() - t1) / iterations;
      const auto io1 = stack.io_counts();
      const auto drv1 = stack.driver().stats();
      const auto gpu1 = stack.soc().gpu().stats();
      const double n = iterations;
      nlohmann::json r = {
          {"model", name},
          {"sku", sku},
          {"cold_ms", cold_ms},
          {"warm_ms", warm_ms},
          {"jobs_per_inference", double(drv1.jobs_completed - drv0.jobs_completed) / n},
          {"register_accesses_per_inference", double((io1.total() - io0.total())) / n},
          {"register_reads_per_inference", double(io1.reads - io0.reads) / n},
          {"register_writes_per_inference", double(io1.writes - io0.writes) / n},
          {"polls_per_inference", double(io1.polls - io0.polls) / n},
          {"device_busy_ms_per_inference",
           double(gpu1.device_busy_ns - gpu0.device_busy_ns) / 1e6 / n},
          {"maintenance_busy_ms_per_inference",
           double(gpu1.maintenance_busy_ns - gpu0.maintenance_busy_ns) / 1e6 / n},
          {"modeled_device_ms_per_inference",
           double(gpu1.modeled_busy_ns - gpu0.modeled_busy_ns) / 1e6 / n},
          {"qpu_instructions_per_inference",
           double(gpu1.qpu_instructions - gpu0.qpu_instructions) / n},
      };
      results.push_back(r);
      if (!json)
        std::printf("%-24s cold %8.1f ms  warm %8.1f ms  jobs %6.0f  reg accesses %7.0f  "
                    "device busy %7.1f ms\n",
                    name.c_str(), cold_ms, warm_ms, r["jobs_per_inference"].get<double>(),
                    r["register_accesses_per_inference"].get<double>(),
                    r["device_busy_ms_per_inference"].get<double>());
    } catch (const std::exception& e) {
      results.push_back({{"model", name}, {"sku", sku}, {"error", e.what()}});
      if (!json) std::printf("%-24s error: %s\n", name.c_str(), e.what());
    }
  }
  if (json) std::printf("%s\n", results.dump(2).c_str());
  return 0;
}
