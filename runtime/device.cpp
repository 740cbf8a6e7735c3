#include "runtime/device.h"

#include <cstring>
#include <utility>

#include "runtime/jit/shader_cache.h"

namespace rplayer::runtime {

// ---- Buffer -------------------------------------------------------------------------------

Buffer::~Buffer() { reset(); }

Buffer::Buffer(Buffer&& o) noexcept { *this = std::move(o); }

Buffer& Buffer::operator=(Buffer&& o) noexcept {
  if (this == &o) return *this;
  reset();
  dev_ = std::exchange(o.dev_, nullptr);
  handle_ = std::exchange(o.handle_, 0);
  va_ = std::exchange(o.va_, 0);
  size_ = std::exchange(o.size_, 0);
  cpu_ = std::exchange(o.cpu_, nullptr);
  usage_ = o.usage_;
  label_ = std::move(o.label_);
  return *this;
}

void Buffer::reset() {
  if (!dev_) return;
  // Errors here have no one to go to; the driver already logged them in last_error().
  dev_->driver().free_bo(handle_);
  dev_ = nullptr;
  handle_ = va_ = size_ = 0;
  cpu_ = nullptr;
}

void Buffer::upload(const void* src, size_t bytes, size_t offset) {
  if (!dev_) throw Error("upload to an empty Buffer");
  if (offset > size_ || bytes > size_ - offset)
    throw Error("upload of " + std::to_string(bytes) + " bytes at offset " +
                std::to_string(offset) + " overruns buffer '" + label_ + "' (" +
                std::to_string(size_) + " bytes)");
  if (bytes) std::memcpy(cpu_ + offset, src, bytes);
}

void Buffer::download(void* dst, size_t bytes, size_t offset) const {
  if (!dev_) throw Error("download from an empty Buffer");
  if (offset > size_ || bytes > size_ - offset)
    throw Error("download of " + std::to_string(bytes) + " bytes at offset " +
                std::to_string(offset) + " overruns buffer '" + label_ + "' (" +
                std::to_string(size_) + " bytes)");
  if (bytes) std::memcpy(dst, cpu_ + offset, bytes);
}

// ---- Device -------------------------------------------------------------------------------

Device::Device(driver::V3dDriver& drv) : drv_(drv) {
  const hw::Sku& sku = drv.sku();
  uint64_t v = 0;
  info_.sku = std::string(sku.name);
  info_.board = std::string(sku.board);
  if (drv.get_param(driver::Param::NumQpus, &v)) fail("get_param(NumQpus)");
  info_.num_qpus = uint32_t(v);
  if (drv.get_param(driver::Param::SharedBytes, &v)) fail("get_param(SharedBytes)");
  info_.shared_bytes = uint32_t(v);
  if (drv.get_param(driver::Param::Cfg4MinusOne, &v)) fail("get_param(Cfg4MinusOne)");
  info_.cfg4_minus_one = v != 0;
  info_.num_slices = uint32_t(sku.num_slices);
  info_.qpus_per_slice = uint32_t(sku.qpus_per_slice);

  target_.sku = info_.sku;
  target_.num_qpus = info_.num_qpus;
  target_.qpus_per_slice = info_.qpus_per_slice;
  target_.shared_bytes = info_.shared_bytes;
  target_.register_budget = isa::kNumRegs;
  shaders_ = std::make_unique<ShaderCache>(*this);
}

Device::~Device() = default;

void Device::fail(const std::string& what) const { throw Error(what + ": " + drv_.last_error()); }

Buffer Device::create_buffer(uint32_t bytes, driver::BoUsage usage, const std::string& label) {
  // What only the CPU writes is read-only for the GPU: a stray store faults instead of
  // corrupting code, uniform streams, weights or the input.
  const bool writable = usage != driver::BoUsage::Code && usage != driver::BoUsage::Uniforms &&
                        usage != driver::BoUsage::Weights && usage != driver::BoUsage::Input;
  return create_buffer(bytes, usage, label, writable);
}

Buffer Device::create_buffer(uint32_t bytes, driver::BoUsage usage, const std::string& label,
                             bool gpu_writable) {
  return create_buffer(bytes, usage, label, gpu_writable, nullptr);
}

Buffer Device::create_buffer(uint32_t bytes, const std::string& label, const WeightRange& source) {
  if (source.length > bytes)
    throw Error("weights buffer '" + label + "': source range of " +
                std::to_string(source.length) + " bytes does not fit in " +
                std::to_string(bytes) + " bytes");
  return create_buffer(bytes, driver::BoUsage::Weights, label, false, &source);
}

Buffer Device::create_buffer(uint32_t bytes, driver::BoUsage usage, const std::string& label,
                             bool gpu_writable, const WeightRange* source) {
  driver::CreateBo c;
  if (source) {
    c.has_weight_source = true;
    c.weight_model = source->model;
    c.weight_offset = source->offset;
    c.weight_length = source->length;
  }
  c.size = bytes;
  c.usage = usage;
  c.gpu_writable = gpu_writable;
  c.label = label;
  if (drv_.create_bo(c))
    fail("create_buffer '" + label + "' (" + std::to_string(bytes) + " bytes)");
  Buffer b;
  b.dev_ = this;
  b.handle_ = c.handle;
  b.va_ = c.gpu_va;
  b.size_ = bytes;
  b.usage_ = usage;
  b.label_ = label;
  uint32_t mapped = 0;
  if (drv_.mmap_bo(c.handle, &b.cpu_, &mapped)) fail("mmap of buffer '" + label + "'");
  return b;
}

}  // namespace rplayer::runtime
