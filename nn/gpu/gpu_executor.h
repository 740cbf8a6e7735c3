// The GPU backend of the NN framework: runs a Graph on a runtime::Device (the modeled
// V3D GPU through the driver) with kernels from the JIT.
//
//   runtime::Device dev(*driver);
//   GpuExecutor gpu(model.graph, dev);  // uploads weights, compiles, records
//   Tensor prob = gpu.run("data", image, "prob");
//
// Construction does all the work that does not depend on input values: it uploads every
// weight once, as the bytes stored in the model file (BoUsage::Weights, labelled
// "<layer>/<weight>", with driver::BoInfo::weight_source naming the file range), records
// the prepare phase (GPU jobs deriving what the kernels read: fp16 -> fp32, packed
// layouts, folded BatchNorm; Scratch buffers "<layer>/<weight>.packed" ...), gives every blob a
// fixed place (inputs BoUsage::Input and outputs BoUsage::Output, labelled with the blob name;
// intermediates BoUsage::Scratch, labelled with the blob that owns the memory), compiles
// every kernel and records one CommandBuffer for the whole graph. run() only copies the
// inputs into their buffers, submits that command buffer and reads the outputs, so the GPU
// job stream (registers, uniforms, code) is the same for every input, which record and
// replay rely on. The prepare phase is submitted before it in the first run() and again
// only after prepare_again(): its Scratch outputs persist between native runs, but a
// recording must contain it (the replayer wipes GPU-written pages after every run), so
// whoever starts a recording calls prepare_again() (tools::GpuStack::start_recording()).
//
// Results agree with CpuExecutor bit for bit for every operator except those built on
// exp/log approximations of std::pow (BinaryOp pow, LRN) and UnaryOp log10.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "nn/executor.h"
#include "nn/graph.h"

namespace rplayer::runtime {
class CommandBuffer;
class Device;
}  // namespace rplayer::runtime

namespace rplayer::nn {

struct GpuExecutorOptions {
  // Run a standalone activation layer (ReLU, Clip, HardSwish, ...) inside the
  // Convolution / InnerProduct before it when nothing else reads that layer's output.
  // The fused-away blob can then not be read by run().
  bool fuse_activations = true;
  // Let Concat inputs be written directly into Concat's output and Slice outputs be views
  // of the input, when the blobs are contiguous parts of it.
  bool zero_copy_concat_slice = true;
  // Blobs that must stay readable by run() (they are not fused away).
  std::vector<std::string> keep_blobs;
  // The command buffer's label (its uniform buffer is "<label>.uniforms").
  std::string label = "graph";
};

struct GpuRunStats {
  uint64_t dispatches = 0;          // all jobs of the run, the prepare phase's included
  uint64_t prepare_dispatches = 0;  // the prepare phase's jobs (0 when it did not run)
  uint64_t bytes_in = 0, bytes_out = 0;
  double upload_ms = 0, prepare_ms = 0, submit_wait_ms = 0, download_ms = 0;
};

class GpuExecutor : public Executor {
 public:
  // Where a graph input or output lives on the GPU, for recorders: run() writes inputs to
  // and reads outputs from exactly these bytes, and they never move.
  struct IoBinding {
    std::string blob;
    bool is_input = false;
    uint32_t gpu_va = 0;  // of the blob's first element
    uint32_t bytes = 0;
    Shape shape;
  };

  // The graph (shapes inferred) and the device must outlive the executor. Throws
  // ModelError naming the layer for anything unsupported, runtime::Error for GPU
  // failures (e.g. out of GPU memory).
  GpuExecutor(const Graph& graph, runtime::Device& device, const GpuExecutorOptions& opts = {});
  ~GpuExecutor() override;
  GpuExecutor(const GpuExecutor&) = delete;
  GpuExecutor& operator=(const GpuExecutor&) = delete;

  // Copies the inputs (shapes as the graph's) into their buffers, submits the recorded
  // command buffer, waits and returns the requested blobs (default: the graph's outputs).
  // Any blob can be requested except those fused away. Calls are serialized.
  std::map<std::string, Tensor> run(const std::map<std::string, Tensor>& inputs,
                                    const std::vector<std::string>& outputs = {}) const override;
  using Executor::run;

  // Makes the next run() submit the prepare phase again (the first one always does).
  // Needed when the derived Scratch buffers may have been lost, and before a run that a
  // recorder captures: a replay has only what its recording holds.
  void prepare_again();

  GpuRunStats last_run_stats() const;
  // Jobs of a run that prepares: the prepare phase's and the inference's.
  size_t num_dispatches() const;
  size_t num_prepare_dispatches() const;
  // Bytes of the Weights buffers (the model's stored weights, page-rounded).
  uint64_t weights_bytes() const;
  // Bytes of GPU memory the executor holds (blobs, weights, scratch; not code/uniforms).
  uint64_t gpu_bytes() const;
  // Kernels compiled for this executor (distinct (kernel, specialization) pairs).
  size_t num_kernels() const;
  // The recorded command buffer (its dispatches, CFG words and, after the first run, its
  // uniform buffer), for recorders and tests.
  const runtime::CommandBuffer& command_buffer() const;
  // The prepare phase's command buffer, submitted before command_buffer() in the first
  // run and after prepare_again().
  const runtime::CommandBuffer& prepare_command_buffer() const;
  // The graph's inputs, then its outputs, in blob order.
  std::vector<IoBinding> io_bindings() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rplayer::nn
