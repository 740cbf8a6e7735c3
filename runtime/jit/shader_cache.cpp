#include "runtime/jit/shader_cache.h"

#include <utility>

namespace rplayer::runtime {

const CachedKernel& ShaderCache::get(const jit::Kernel& kernel, const jit::Specialization& spec) {
  Key key{kernel.hash(), spec.hash(), dev_.target().sku, kernel.name, spec.str()};
  std::lock_guard lk(mu_);
  auto it = entries_.find(key);
  if (it != entries_.end()) {
    ++hits_;
    return *it->second;
  }
  auto entry = std::make_unique<CachedKernel>();
  entry->compiled = jit::compile(kernel, spec, dev_.target(), options_);
  const std::vector<uint64_t>& words = entry->compiled.code;
  entry->code = dev_.create_buffer(uint32_t(words.size() * sizeof(uint64_t)), driver::BoUsage::Code,
                                   kernel.name);
  entry->code.upload(words);
  ++compilations_;
  const CachedKernel& ref = *entry;
  entries_.emplace(std::move(key), std::move(entry));
  return ref;
}

size_t ShaderCache::size() const {
  std::lock_guard lk(mu_);
  return entries_.size();
}

uint64_t ShaderCache::compilations() const {
  std::lock_guard lk(mu_);
  return compilations_;
}

uint64_t ShaderCache::hits() const {
  std::lock_guard lk(mu_);
  return hits_;
}

}  // namespace rplayer::runtime
