#include "tools/gpu_stack.h"

#include <stdexcept>

namespace rplayer::tools {

uint64_t dram_for(const nn::Model& model) {
  uint64_t bytes = model.graph.weight_count() * 4;
  for (const nn::Blob& b : model.graph.blobs()) bytes += b.shape.total() * 4;
  bytes = bytes * 2 + (64ull << 20);  // page rounding, code, uniforms, page table
  return std::max<uint64_t>(256ull << 20, (bytes + (1u << 20) - 1) & ~uint64_t((1u << 20) - 1));
}

GpuStack::GpuStack(const std::string& sku, const nn::Model& model,
                   std::optional<record::RecorderOptions> recorder, const std::string& soc_socket)
    : model_(model) {
  if (soc_socket.empty()) {
    hw::SocConfig cfg;
    cfg.sku = sku;
    cfg.normal_bytes = dram_for(model);
    soc_ = std::make_unique<hw::ModeledSoc>(cfg);
    direct_ = std::make_unique<driver::DirectHwIo>(soc_->port(hw::World::Normal));
  } else {
    std::string err;
    remote_ = hw::RemoteSocPort::connect_path(soc_socket, &err);
    if (!remote_) throw std::runtime_error("SoC " + soc_socket + ": " + err);
    direct_ = std::make_unique<driver::DirectHwIo>(*remote_);
  }
  driver::HwIo* below = direct_.get();
  if (recorder) {
    recorder_ = std::make_unique<record::Recorder>(*direct_, *recorder);
    below = recorder_.get();
  }
  counting_ = std::make_unique<driver::CountingHwIo>(*below);
  std::string err;
  drv_ = driver::V3dDriver::probe(*counting_, {}, &err);
  if (!drv_) throw std::runtime_error("GPU driver probe failed: " + err);
  dev_ = std::make_unique<runtime::Device>(*drv_);
  exec_ = std::make_unique<nn::GpuExecutor>(model.graph, *dev_);
}

void GpuStack::start_recording() {
  if (!recorder_) throw std::logic_error("start_recording: the GPU stack has no recorder");
  recorder_->start();
  exec_->prepare_again();
}

nn::Tensor GpuStack::infer(const nn::Tensor& input) {
  return exec_->run(model_.info.input_blob, input, model_.info.output_blob);
}

}  // namespace rplayer::tools
