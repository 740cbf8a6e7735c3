// The runtime's view of one GPU: device facts, buffers, and the shader cache.
//
//   driver::DirectHwIo io(soc.port(hw::World::Normal));
//   auto drv = driver::V3dDriver::probe(io);
//   runtime::Device dev(*drv);
//   runtime::Buffer x = dev.create_buffer(4096, driver::BoUsage::Input, "x");
//   x.upload(host_data.data(), 4096);
//
// Buffers are RAII handles over the driver's buffer objects: created with a usage class
// and a label (which the recorder keeps), mapped for the CPU, freed on destruction (the
// driver waits for the buffer's last job first). CPU access is not synchronized with the
// GPU: wait for the command buffer that writes a buffer before reading it.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "driver/v3d_driver.h"
#include "runtime/error.h"
#include "runtime/jit/compiler.h"

namespace rplayer::runtime {

class Device;
class ShaderCache;

struct DeviceInfo {
  std::string sku;    // "v3d-7.1"
  std::string board;  // "Raspberry Pi 5 ..."
  uint32_t num_qpus = 0;
  uint32_t num_slices = 0;
  uint32_t qpus_per_slice = 0;
  uint32_t shared_bytes = 0;    // per workgroup
  bool cfg4_minus_one = false;  // informational: the driver converts CFG4
};

// The model-file byte range a Weights buffer is filled with; reported to the driver's
// HwIo as driver::BoInfo::weight_source, for recorders to bind the buffer to the model.
struct WeightRange {
  std::string model;  // the model file's path (or the name its bytes were given)
  uint64_t offset = 0;
  uint64_t length = 0;
};

class Buffer {
 public:
  Buffer() = default;
  ~Buffer();
  Buffer(Buffer&& o) noexcept;
  Buffer& operator=(Buffer&& o) noexcept;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  bool valid() const { return dev_ != nullptr; }
  uint32_t handle() const { return handle_; }
  uint32_t gpu_va() const { return va_; }
  uint32_t size() const { return size_; }  // bytes requested
  driver::BoUsage usage() const { return usage_; }
  const std::string& label() const { return label_; }
  uint8_t* data() const { return cpu_; }
  template <class T>
  std::span<T> as() const {
    return {reinterpret_cast<T*>(cpu_), size_ / sizeof(T)};
  }

  // Bounds-checked copies between host memory and the buffer.
  void upload(const void* src, size_t bytes, size_t offset = 0);
  void download(void* dst, size_t bytes, size_t offset = 0) const;
  template <class T>
  void upload(std::span<const T> v, size_t offset = 0) {
    upload(v.data(), v.size_bytes(), offset);
  }
  template <class T>
  void upload(const std::vector<T>& v, size_t offset = 0) {
    upload(v.data(), v.size() * sizeof(T), offset);
  }
  template <class T>
  std::vector<T> download(size_t count, size_t offset = 0) const {
    std::vector<T> v(count);
    download(v.data(), count * sizeof(T), offset);
    return v;
  }

  void reset();  // frees now

 private:
  friend class Device;
  Device* dev_ = nullptr;
  uint32_t handle_ = 0, va_ = 0, size_ = 0;
  uint8_t* cpu_ = nullptr;
  driver::BoUsage usage_ = driver::BoUsage::Scratch;
  std::string label_;
};

class Device {
 public:
  // Does not own the driver, which must outlive the device.
  explicit Device(driver::V3dDriver& drv);
  ~Device();
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  const DeviceInfo& info() const { return info_; }
  // The JIT's target: this device's SKU facts.
  const jit::Target& target() const { return target_; }
  driver::V3dDriver& driver() { return drv_; }
  ShaderCache& shaders() { return *shaders_; }

  // Code and uniform buffers are read-only for the GPU; everything else is writable.
  Buffer create_buffer(uint32_t bytes, driver::BoUsage usage, const std::string& label);
  Buffer create_buffer(uint32_t bytes, driver::BoUsage usage, const std::string& label,
                       bool gpu_writable);
  // A read-only Weights buffer of `bytes` bytes that the caller fills with the model-file
  // range `source` (at offset 0; source.length <= bytes, the rest stays zero).
  Buffer create_buffer(uint32_t bytes, const std::string& label, const WeightRange& source);
  template <class T>
  Buffer upload_buffer(const std::vector<T>& data, driver::BoUsage usage,
                       const std::string& label) {
    Buffer b = create_buffer(uint32_t(data.size() * sizeof(T)), usage, label);
    b.upload(data);
    return b;
  }

  // Throws Error("<what>: <driver's last_error()>").
  [[noreturn]] void fail(const std::string& what) const;

 private:
  Buffer create_buffer(uint32_t bytes, driver::BoUsage usage, const std::string& label,
                       bool gpu_writable, const WeightRange* source);

  driver::V3dDriver& drv_;
  DeviceInfo info_;
  jit::Target target_;
  std::unique_ptr<ShaderCache> shaders_;
};

}  // namespace rplayer::runtime
