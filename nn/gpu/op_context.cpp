#include "nn/gpu/op_context.h"

#include <algorithm>

#include "nn/model_error.h"
#include "runtime/jit/shader_cache.h"

namespace rplayer::nn::gpu {

OpContext::OpContext(runtime::Device& dev, runtime::CommandBuffer& cb,
                     std::deque<runtime::Buffer>& owned, WeightStore& weights, const Layer& layer,
                     std::vector<BlobRef> inputs, std::vector<BlobRef> outputs, GpuActivation fused)
    : dev_(dev),
      cb_(cb),
      owned_(owned),
      weights_(weights),
      layer_(layer),
      inputs_(std::move(inputs)),
      outputs_(std::move(outputs)),
      fused_(fused) {}

const runtime::Buffer& OpContext::param_table(const std::string& name,
                                              const std::vector<float>& data) {
  // An empty table still gets a valid address.
  const uint32_t bytes = uint32_t(std::max<size_t>(data.size(), 1) * sizeof(float));
  runtime::Buffer b = dev_.create_buffer(bytes, driver::BoUsage::Uniforms, label(name));
  b.upload(data);
  owned_.push_back(std::move(b));
  return owned_.back();
}

BlobRef OpContext::scratch(const std::string& name, const Shape& shape) {
  const uint32_t bytes = uint32_t(std::max<size_t>(shape.total(), 1) * sizeof(float));
  owned_.push_back(dev_.create_buffer(bytes, driver::BoUsage::Scratch, layer_.name + "/" + name));
  return {&owned_.back(), 0, shape};
}

void OpContext::dispatch(const runtime::jit::Kernel& kernel, const runtime::Grid& grid,
                         const std::vector<runtime::Arg>& args,
                         const runtime::jit::Specialization& spec) {
  cb_.dispatch(kernel, grid, args, spec);
  ++dispatches_;
}

const runtime::CachedKernel& OpContext::compile(const runtime::jit::Kernel& kernel,
                                                const runtime::jit::Specialization& spec) {
  return dev_.shaders().get(kernel, spec);
}

void OpContext::unsupported(const std::string& why) const {
  throw ModelError(why + " is not supported on the GPU");
}

}  // namespace rplayer::nn::gpu
