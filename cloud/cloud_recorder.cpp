#include "cloud/cloud_recorder.h"

#include <chrono>
#include <ctime>
#include <stdexcept>

#include "driver/counting_hw_io.h"
#include "driver/v3d_driver.h"
#include "nn/gpu/gpu_executor.h"
#include "nn/preprocess.h"
#include "record/recorder.h"
#include "runtime/device.h"

namespace rplayer::cloud {

namespace {
double cpu_ms() { return double(std::clock()) * 1000.0 / CLOCKS_PER_SEC; }
}  // namespace

CloudRecordResult record_in_cloud(ShimTransport& transport, const link::ShimHello& hello,
                                  const ModelSkeleton& skeleton, const DriverShimOptions& opts) {
  const auto t0 = std::chrono::steady_clock::now();
  const double c0 = cpu_ms();
  const nn::Model model = load_skeleton(skeleton);

  DriverShim shim(transport, hello, opts);
  record::RecorderOptions ropts;
  ropts.omit_weights = true;  // the cloud has no weights: the device's model file supplies them
  ropts.weights_manifest = skeleton.manifest;
  record::Recorder recorder(shim, ropts);
  driver::CountingHwIo counting(recorder);
  std::string err;
  std::unique_ptr<driver::V3dDriver> drv = driver::V3dDriver::probe(counting, {}, &err);
  if (!drv)
    throw std::runtime_error("GPU driver probe over the link failed: " + err +
                             (shim.failed() ? " (" + shim.error() + ")" : ""));
  CloudRecordResult out;
  {
    runtime::Device dev(*drv);
    nn::GpuExecutor exec(model.graph, dev);
    // The job stream does not depend on the input: the cloud runs a fixed pattern.
    nn::Tensor input(model.info.input_shape);
    for (size_t i = 0; i < input.size(); ++i) input.data()[i] = float(i % 251) / 251.f;
    recorder.start();
    exec.prepare_again();
    try {
      exec.run(model.info.input_blob, input, model.info.output_blob);
    } catch (const std::exception& e) {
      throw std::runtime_error(std::string("inference over the link failed: ") + e.what() +
                               (shim.failed() ? " (" + shim.error() + ")" : ""));
    }
    if (shim.failed()) throw std::runtime_error("the link failed: " + shim.error());
    for (const auto& [blob, is_input] :
         {std::pair{model.info.input_blob, true}, std::pair{model.info.output_blob, false}}) {
      const nn::Shape& s = model.graph.blob_shape(blob);
      std::vector<uint32_t> shape;
      for (int d : s.outer_dims()) shape.push_back(uint32_t(d));
      if (!recorder.bind_buffer(blob, is_input, uint32_t(s.total() * 4), shape, &err))
        throw std::runtime_error(err);
    }
    if (!recorder.finish(&out.recording, &err))
      throw std::runtime_error("recording failed: " + err);
    out.jobs = recorder.stats().jobs;
  }
  drv.reset();
  if (shim.failed()) throw std::runtime_error("the link failed: " + shim.error());
  replay::Recording& rec = out.recording;
  rec.sku_name = std::string(shim.sku().name);
  rec.metadata.insert(rec.metadata.begin(),
                      {{"model", model.info.name},
                       {"input_blob", model.info.input_blob},
                       {"output_blob", model.info.output_blob},
                       {"preprocess", nn::preprocess_name(model.info.preprocess)},
                       {"stack", "rplayer 0.1.0 (driver + runtime/JIT + nn GPU backend)"},
                       {"jobs", std::to_string(out.jobs)},
                       {"recorded", "cloud"}});
  out.link = shim.counts();
  out.wall_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  out.cloud_cpu_ms = cpu_ms() - c0;
  return out;
}

}  // namespace rplayer::cloud
