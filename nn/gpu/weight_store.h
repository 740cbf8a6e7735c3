// The weights on the GPU, and the prepare phase that derives what the kernels read.
//
// Every weight enters GPU memory as an unchanged byte range of its model file: one
// read-only Weights buffer per stored range (fp16 or fp32, as stored), reported to the
// driver with its source (driver::BoInfo::weight_source). Everything the kernels need in
// another form (fp16 -> fp32, packed convolution / fully-connected layouts, folded
// BatchNorm, zero biases) is computed by GPU jobs that read those buffers and write
// Scratch buffers. These jobs form the prepare phase: a command buffer of its own that
// GpuExecutor submits before the inference jobs of its first run, and again only when
// asked (GpuExecutor::prepare_again(), e.g. when a recording starts; docs/ARCHITECTURE.md,
// "Weights").
//
// The requests (gather, floats, fold_batchnorm) become sections of a few big jobs, made
// by finish(): each section is a kernel fragment specialized to its sizes, over a range of
// the job's workgroups, and jobs run in dependency order (a section reading another's
// output runs in a later job).
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "nn/tensor.h"
#include "runtime/command_buffer.h"
#include "runtime/device.h"

namespace rplayer::nn::gpu {

// Where a prepare job reads elements: a buffer and how its elements are encoded.
struct ElementSource {
  const runtime::Buffer* buffer = nullptr;  // nullptr: no source, every element is 0
  StorageType storage = StorageType::kFloat32;
};

// One box of a gather job: indices (i0..i4) over `size` (outermost first) map to
// dst[dst_base + sum ik * dst_stride[k]] = valid ? src[src_base + sum ik * src_stride[k]]
// : 0, with valid = sum ik * valid_stride[k] < valid_limit. Strides and bases count
// elements (of the source's storage type, resp. fp32 floats in the destination).
struct GatherBox {
  std::array<uint32_t, 5> size{1, 1, 1, 1, 1};
  std::array<uint32_t, 5> src_stride{}, dst_stride{}, valid_stride{};
  uint32_t src_base = 0, dst_base = 0;
  uint32_t valid_limit = UINT32_MAX;
  uint64_t count() const;
};

class WeightStore {
 public:
  // `owned` keeps the buffers (stable addresses); prepare jobs go into `prepare`.
  WeightStore(runtime::Device& dev, runtime::CommandBuffer& prepare,
              std::deque<runtime::Buffer>& owned);
  ~WeightStore();
  WeightStore(const WeightStore&) = delete;
  WeightStore& operator=(const WeightStore&) = delete;

  // The Weights buffer holding t's stored bytes, exactly as in the model file, padded
  // with zeros (one buffer per stored range, whoever asks). A tensor without a source
  // (its stored form cannot be decoded on the GPU, or it was computed) gets its decoded
  // floats, in a Weights buffer without a weight source: derived by the CPU.
  ElementSource stored(const Tensor& t, const std::string& label);
  // Strides, in stored elements, of t's rows and columns when t is a [rows][cols] matrix
  // (a transposed store swaps them).
  std::array<uint32_t, 2> matrix_strides(const Tensor& t, uint32_t rows, uint32_t cols) const;
  // True if t's value i is stored element i (no transposition); a tensor without a
  // source is stored as its decoded floats, so this holds too.
  static bool stored_in_order(const Tensor& t);

  // A Scratch buffer of `floats` fp32 values that the prepare phase fills from `src`, box
  // by box. The boxes must cover the buffer (every element is written by every prepare).
  // When the boxes copy fp32 values in order, the result is the stored buffer itself.
  const runtime::Buffer& gather(const std::string& label, const ElementSource& src,
                                uint32_t floats, const std::vector<GatherBox>& boxes);
  // t's first `count` values as fp32 in t's order: the stored buffer itself when it is
  // fp32 in order, else a prepare job's Scratch buffer. nullptr t gives zeros.
  const runtime::Buffer& floats(const std::string& label, const Tensor* t, uint32_t count);
  // BatchNorm's per-channel multiplier and addend, as the CPU reference computes them:
  // mul = slope / sqrt(var + eps), add = bias - slope * mean / sqrt(var + eps).
  std::pair<const runtime::Buffer*, const runtime::Buffer*> fold_batchnorm(
      const std::string& label, const Tensor& slope, const Tensor& mean, const Tensor& var,
      const Tensor& bias, float eps, uint32_t channels);

  // Records the prepare jobs for every request so far into the prepare command buffer.
  void finish();

  size_t prepare_jobs() const { return jobs_; }
  // Bytes of the Weights buffers (page-rounded, as allocated).
  uint64_t stored_bytes() const { return stored_bytes_; }

 private:
  struct Section;  // work of the prepare phase (weight_store.cpp)
  struct Part;     // a range of a section's lanes in one job
  const runtime::Buffer& own(runtime::Buffer b);
  void add_section(Section s);
  void dispatch_job(const std::vector<Part>& job);

  runtime::Device& dev_;
  runtime::CommandBuffer& prepare_;
  std::deque<runtime::Buffer>& owned_;
  // (file, offset, length) -> its Weights buffer
  std::map<std::tuple<const void*, uint64_t, uint64_t>, const runtime::Buffer*> by_range_;
  std::map<const Tensor*, const runtime::Buffer*> derived_by_tensor_;
  std::vector<Section> pending_;  // requests not yet in a job
  // Buffers pending sections write -> the dependency level of the section writing them.
  std::map<const runtime::Buffer*, int> level_of_;
  size_t jobs_ = 0;
  uint64_t stored_bytes_ = 0;
};

}  // namespace rplayer::nn::gpu
