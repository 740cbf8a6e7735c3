#include "tools/inference_backend.h"

#include <stdexcept>

#include "nn/cpu_reference.h"

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

}  // namespace

std::unique_ptr<InferenceBackend> make_backend(const std::string& backend, const std::string& sku,
                                               const nn::Model& model) {
  if (backend == "cpu") return std::make_unique<CpuBackend>(model);
  if (backend == "gpu")
    throw std::runtime_error("the GPU backend is not built yet (use --backend cpu)");
  throw std::runtime_error("unknown backend '" + backend + "' (gpu or cpu)");
}

}  // namespace rplayer::tools
