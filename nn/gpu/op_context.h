// What a GPU operator encoder works with: the layer, its input and output blobs as GPU
// buffer views, the weight store (stored weights and the prepare jobs deriving from them),
// and the means to take scratch memory and record dispatches into the graph's command
// buffer.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "nn/gpu/activation.h"
#include "nn/gpu/weight_store.h"
#include "nn/graph.h"
#include "runtime/command_buffer.h"
#include "runtime/device.h"
#include "runtime/jit/builder.h"

namespace rplayer::nn::gpu {

// A blob on the GPU: a byte range of a buffer (blobs may share a buffer: Split and
// Reshape outputs alias their input, Concat inputs may live inside Concat's output).
struct BlobRef {
  const runtime::Buffer* buffer = nullptr;
  uint32_t offset = 0;  // bytes
  Shape shape;

  size_t count() const { return shape.total(); }
  runtime::Arg arg(uint32_t extra_bytes = 0) const {
    return runtime::Arg::buffer(*buffer, offset + extra_bytes);
  }
};

class OpContext {
 public:
  OpContext(runtime::Device& dev, runtime::CommandBuffer& cb, std::deque<runtime::Buffer>& owned,
            WeightStore& weights, const Layer& layer, std::vector<BlobRef> inputs,
            std::vector<BlobRef> outputs, GpuActivation fused);

  runtime::Device& device() { return dev_; }
  const Layer& layer() const { return layer_; }
  size_t num_inputs() const { return inputs_.size(); }
  size_t num_outputs() const { return outputs_.size(); }
  const BlobRef& input(size_t i = 0) const { return inputs_.at(i); }
  const BlobRef& output(size_t i = 0) const { return outputs_.at(i); }
  // A standalone activation layer after this one that the executor folded into it: apply
  // it after the layer's own work (only offered to layers that can fuse, see
  // can_fuse_activation in op_registry.h).
  const GpuActivation& fused_activation() const { return fused_; }

  // The layer's weights on the GPU: as stored in the model file, or derived from that by
  // prepare jobs. Labels are "<layer>/<weight>" (see label()).
  WeightStore& weights() { return weights_; }
  std::string label(const std::string& name) const { return layer_.name + "/" + name; }
  // A read-only table that the encoder computes from the layer's params alone (not from
  // weights), e.g. Interp's source indices: BoUsage::Uniforms like the uniform streams,
  // which are computed the same way; labelled "<layer>/<name>".
  const runtime::Buffer& param_table(const std::string& name, const std::vector<float>& data);
  // A scratch buffer (BoUsage::Scratch) labelled "<layer>/<name>".
  BlobRef scratch(const std::string& name, const Shape& shape);
  // Records one dispatch into the graph's command buffer.
  void dispatch(const runtime::jit::Kernel& kernel, const runtime::Grid& grid,
                const std::vector<runtime::Arg>& args,
                const runtime::jit::Specialization& spec = {});
  // Compiled view of a kernel (for its workgroup size).
  const runtime::CachedKernel& compile(const runtime::jit::Kernel& kernel,
                                       const runtime::jit::Specialization& spec = {});
  size_t dispatches() const { return dispatches_; }

  // Throws ModelError "layer <name> (<type>): <why> is not supported on the GPU".
  [[noreturn]] void unsupported(const std::string& why) const;

 private:
  runtime::Device& dev_;
  runtime::CommandBuffer& cb_;
  std::deque<runtime::Buffer>& owned_;
  WeightStore& weights_;
  const Layer& layer_;
  std::vector<BlobRef> inputs_, outputs_;
  GpuActivation fused_;
  size_t dispatches_ = 0;
};

}  // namespace rplayer::nn::gpu
