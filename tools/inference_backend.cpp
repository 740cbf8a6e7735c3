#include "tools/inference_backend.h"

#include <stdexcept>

#include "nn/cpu_reference.h"
#include "tools/gpu_stack.h"

namespace rplayer::tools {

namespace {

class CpuBackend final : public InferenceBackend {
 public:
  explicit CpuBackend(const nn::Model& m) : model_(m), exec_(m.graph) {}
  std::string describe() const override { return "cpu reference"; }
  nn::Tensor infer(const nn::Tensor& input) override {
    return exec_.run(model_.info.input_blob, input, model_.info.output_blob);
  }

 private:
  const nn::Model& model_;
  nn::CpuExecutor exec_;
};

// The full normal-world stack on the modeled SoC.
class GpuBackend final : public InferenceBackend {
 public:
  GpuBackend(const std::string& sku, const nn::Model& m, const std::string& soc_socket)
      : sku_(sku), stack_(sku, m, std::nullopt, soc_socket) {}
  std::string describe() const override {
    return stack_.remote() ? "gpu (SoC process)" : "gpu (modeled " + sku_ + ")";
  }
  nn::Tensor infer(const nn::Tensor& input) override {
    const auto io0 = stack_.io_counts();
    const auto drv0 = stack_.driver().stats();
    const hw::GpuStats gpu0 = stack_.remote() ? hw::GpuStats{} : stack_.soc().gpu().stats();
    nn::Tensor out = stack_.infer(input);
    const auto io1 = stack_.io_counts();
    const auto drv1 = stack_.driver().stats();
    const hw::GpuStats gpu1 = stack_.remote() ? hw::GpuStats{} : stack_.soc().gpu().stats();
    stats_ = {
        {"jobs", drv1.jobs_completed - drv0.jobs_completed},
        {"register_reads", io1.reads - io0.reads},
        {"register_writes", io1.writes - io0.writes},
        {"polls", io1.polls - io0.polls},
        {"irq_waits", io1.irq_waits - io0.irq_waits},
        {"device_busy_ms", double(gpu1.device_busy_ns - gpu0.device_busy_ns) / 1e6},
        {"maintenance_busy_ms", double(gpu1.maintenance_busy_ns - gpu0.maintenance_busy_ns) / 1e6},
        {"modeled_device_ms", double(gpu1.modeled_busy_ns - gpu0.modeled_busy_ns) / 1e6},
        {"qpu_instructions", gpu1.qpu_instructions - gpu0.qpu_instructions},
    };
    return out;
  }
  nlohmann::json stats() const override { return stats_; }

 private:
  std::string sku_;
  GpuStack stack_;
  nlohmann::json stats_ = nlohmann::json::object();
};

}  // namespace

std::unique_ptr<InferenceBackend> make_backend(const std::string& backend, const std::string& sku,
                                               const nn::Model& model,
                                               const std::string& soc_socket) {
  if (backend == "cpu") return std::make_unique<CpuBackend>(model);
  if (backend == "gpu") return std::make_unique<GpuBackend>(sku, model, soc_socket);
  throw std::runtime_error("unknown backend '" + backend + "' (gpu or cpu)");
}

}  // namespace rplayer::tools
