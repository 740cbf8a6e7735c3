// Per-device cache of compiled kernels: each (kernel IR, specialization, SKU) is compiled
// once and its code uploaded once, to a read-only BoUsage::Code buffer labelled with the
// kernel's name. Entries live as long as the device, so references stay valid.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>

#include "runtime/device.h"
#include "runtime/jit/compiler.h"
#include "runtime/jit/ir.h"

namespace rplayer::runtime {

struct CachedKernel {
  jit::CompiledKernel compiled;
  Buffer code;
};

class ShaderCache {
 public:
  explicit ShaderCache(Device& dev) : dev_(dev) {}

  // Thread-safe. Throws Error when compilation or the upload fails.
  const CachedKernel& get(const jit::Kernel& kernel, const jit::Specialization& spec = {});

  void set_options(const jit::CompileOptions& o) { options_ = o; }
  size_t size() const;
  uint64_t compilations() const;
  uint64_t hits() const;

 private:
  // The IR hash stands for the IR; the name and specialization text make a collision
  // also need equal names and constants.
  using Key = std::tuple<uint64_t, uint64_t, std::string, std::string, std::string>;

  Device& dev_;
  jit::CompileOptions options_;
  mutable std::mutex mu_;
  std::map<Key, std::unique_ptr<CachedKernel>> entries_;
  uint64_t compilations_ = 0, hits_ = 0;
};

}  // namespace rplayer::runtime
