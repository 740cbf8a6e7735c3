// The whole normal-world GPU stack, assembled: modeled SoC, driver (through a counting
// HwIo), runtime device, and the NN GPU backend for one model. Used by `rplayer run`
// and the benchmarks.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "driver/counting_hw_io.h"
#include "driver/v3d_driver.h"
#include "hw/remote_port.h"
#include "hw/soc.h"
#include "nn/gpu/gpu_executor.h"
#include "nn/model_zoo.h"
#include "record/recorder.h"
#include "runtime/device.h"

namespace rplayer::tools {

class GpuStack {
 public:
  // Throws std::runtime_error (unknown SKU, probe failure) or nn::ModelError. With
  // `recorder`, a Recorder sits between the driver and the hardware (idle until started).
  // `soc_socket`: run on a SoC process (rplayer-soc's DIR/normal.sock) as a normal-world
  // process; empty: on a modeled SoC of our own.
  GpuStack(const std::string& sku, const nn::Model& model,
           std::optional<record::RecorderOptions> recorder = std::nullopt,
           const std::string& soc_socket = "");
  record::Recorder& recorder() { return *recorder_; }
  // Starts the recorder (the stack must have one) and makes the next inference submit the
  // prepare phase again: the executor runs it natively only once, but a recording must
  // hold it, since the replayer has only the recorded jobs and scrubs GPU-written pages
  // after every run. Use this rather than recorder().start().
  void start_recording();
  nn::Tensor infer(const nn::Tensor& input);
  hw::ModeledSoc& soc() { return *soc_; }  // only without soc_socket
  bool remote() const { return remote_ != nullptr; }
  driver::V3dDriver& driver() { return *drv_; }
  driver::HwIoCounts io_counts() const { return counting_->counts(); }
  nn::GpuExecutor& executor() { return *exec_; }

 private:
  const nn::Model& model_;
  std::unique_ptr<hw::ModeledSoc> soc_;
  std::unique_ptr<hw::RemoteSocPort> remote_;
  std::unique_ptr<driver::DirectHwIo> direct_;
  std::unique_ptr<record::Recorder> recorder_;
  std::unique_ptr<driver::CountingHwIo> counting_;
  std::unique_ptr<driver::V3dDriver> drv_;
  std::unique_ptr<runtime::Device> dev_;
  std::unique_ptr<nn::GpuExecutor> exec_;
};

// DRAM the SoC gets for a model: enough for its weights and blobs, at least 256 MiB.
uint64_t dram_for(const nn::Model& model);

}  // namespace rplayer::tools
