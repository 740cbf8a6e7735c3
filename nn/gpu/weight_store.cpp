#include "nn/gpu/weight_store.h"

#include <algorithm>

#include "nn/gpu/common_kernels.h"
#include "nn/model_error.h"
#include "runtime/jit/builder.h"
#include "runtime/jit/shader_cache.h"

namespace rplayer::nn::gpu {

using jit::KernelBuilder;
using jit::Type;
using jit::Value;
using runtime::Arg;

namespace {

constexpr uint32_t kPage = 4096;

// One lane per destination element of a GatherBox. fp16 elements are read as the
// 32-bit word holding them and widened by f16lo / f16hi, which convert exactly (as
// nn::half_to_float does), so the result is bit for bit the CPU's decoded value.
jit::Kernel gather_kernel(const ElementSource& src) {
  const bool zeros = src.buffer == nullptr;
  const bool half = src.storage == StorageType::kFloat16;
  KernelBuilder kb(std::string("prepare_gather_") +
                   (zeros ? "zero" : storage_type_name(src.storage)));
  const Value in = kb.buffer("src"), out = kb.buffer("dst");
  const Value total = kb.scalar("count", Type::U32);
  std::array<Value, 5> size, sst, dst, vst;
  for (int k = 1; k < 5; ++k) size[k] = kb.scalar("size" + std::to_string(k), Type::U32);
  for (int k = 0; k < 5; ++k) sst[k] = kb.scalar("src_stride" + std::to_string(k), Type::U32);
  for (int k = 0; k < 5; ++k) dst[k] = kb.scalar("dst_stride" + std::to_string(k), Type::U32);
  for (int k = 0; k < 5; ++k) vst[k] = kb.scalar("valid_stride" + std::to_string(k), Type::U32);
  const Value src_base = kb.scalar("src_base", Type::U32),
              dst_base = kb.scalar("dst_base", Type::U32),
              limit = kb.scalar("valid_limit", Type::U32);
  const Value i = flat_index(kb);
  kb.if_(i < total, [&] {
    // Innermost index first.
    std::array<Value, 5> idx;
    Value rest = i;
    for (int k = 4; k >= 1; --k) {
      idx[k] = rest % size[k];
      rest = rest / size[k];
    }
    idx[0] = rest;
    Value s = src_base, d = dst_base, v = kb.u32(0);
    for (int k = 0; k < 5; ++k) {
      s = s + idx[k] * sst[k];
      d = d + idx[k] * dst[k];
      v = v + idx[k] * vst[k];
    }
    const Value at = out + d * 4u;
    if (zeros) {
      kb.store(at, kb.f32(0.0f));
      return;
    }
    kb.if_else(
        v < limit,
        [&] {
          if (half) {
            const Value word = kb.load(in + (s >> 1u) * 4u, 0, Type::U32);
            kb.store(at, select((s & 1u) == 1u, half_hi(word), half_lo(word)));
          } else {
            kb.store(at, kb.load(in + s * 4u));
          }
        },
        [&] { kb.store(at, kb.f32(0.0f)); });
  });
  return kb.finish();
}

// The CPU reference's BatchNorm coefficients (ops_elementwise used to compute them on the
// CPU), in the same fp32 operations and order; fsqrt and fdiv round like sqrtf and '/'.
jit::Kernel batchnorm_fold_kernel() {
  KernelBuilder kb("prepare_batchnorm_fold");
  const Value slope = kb.buffer("slope"), mean = kb.buffer("mean"), var = kb.buffer("var"),
              bias = kb.buffer("bias"), mul = kb.buffer("mul"), add = kb.buffer("add");
  const Value eps = kb.scalar("eps", Type::F32);
  const Value n = kb.scalar("channels", Type::U32);
  const Value i = flat_index(kb);
  kb.if_(i < n, [&] {
    const Value off = i * 4u;
    const Value s = kb.load(slope + off), m = kb.load(mean + off), v = kb.load(var + off),
                b = kb.load(bias + off);
    const Value sqrt_var = sqrt(v + eps);
    kb.store(add + off, b - s * m / sqrt_var);
    kb.store(mul + off, s / sqrt_var);
  });
  return kb.finish();
}

}  // namespace

uint64_t GatherBox::count() const {
  uint64_t n = 1;
  for (uint32_t s : size) n *= s;
  return n;
}

WeightStore::WeightStore(runtime::Device& dev, runtime::CommandBuffer& prepare,
                         std::deque<runtime::Buffer>& owned)
    : dev_(dev), prepare_(prepare), owned_(owned) {}

const runtime::Buffer& WeightStore::own(runtime::Buffer b) {
  owned_.push_back(std::move(b));
  return owned_.back();
}

runtime::Grid WeightStore::grid(const jit::Kernel& k, uint64_t invocations) {
  return flat_grid(dev_, k, invocations);
}

bool WeightStore::stored_in_order(const Tensor& t) {
  return !t.source() || t.source()->transposed_rows == 0;
}

ElementSource WeightStore::stored(const Tensor& t, const std::string& label) {
  const WeightSource* src = t.source();
  if (!src) {
    // No model-file range holds these values: upload the decoded floats, without a
    // weight source, so that recorders see them as derived.
    auto it = derived_by_tensor_.find(&t);
    if (it == derived_by_tensor_.end()) {
      const uint32_t bytes = uint32_t(std::max<size_t>(t.size(), 1) * sizeof(float));
      runtime::Buffer b = dev_.create_buffer(bytes, driver::BoUsage::Weights, label);
      b.upload(t.values());
      stored_bytes_ += (bytes + kPage - 1) / kPage * kPage;
      it = derived_by_tensor_.emplace(&t, &own(std::move(b))).first;
    }
    return {it->second, StorageType::kFloat32};
  }
  if (src->length != src->count * storage_element_size(src->storage) ||
      src->offset + src->length > src->file->bytes.size() || src->count != t.size())
    throw ModelError("weight '" + t.name() + "': stored range [" + std::to_string(src->offset) +
                     ", +" + std::to_string(src->length) + ") does not fit " + src->file->path);
  const auto key = std::make_tuple(static_cast<const void*>(src->file.get()), src->offset,
                                   src->length);
  auto it = by_range_.find(key);
  if (it == by_range_.end()) {
    // An empty weight still gets a valid address.
    const uint32_t bytes = uint32_t(std::max<uint64_t>(src->length, 4));
    runtime::Buffer b =
        dev_.create_buffer(bytes, label, runtime::WeightRange{src->file->path, src->offset,
                                                              src->length});
    b.upload(src->bytes().data(), src->length);
    stored_bytes_ += (bytes + kPage - 1) / kPage * kPage;
    it = by_range_.emplace(key, &own(std::move(b))).first;
  }
  return {it->second, src->storage};
}

std::array<uint32_t, 2> WeightStore::matrix_strides(const Tensor& t, uint32_t rows,
                                                    uint32_t cols) const {
  const WeightSource* src = t.source();
  if (!src || src->transposed_rows == 0) return {cols, 1};
  if (src->transposed_rows != rows)
    throw ModelError("weight '" + t.name() + "' is stored as the transpose of a " +
                     std::to_string(src->transposed_rows) + "-row matrix, used as " +
                     std::to_string(rows) + " rows");
  return {1, rows};
}

const runtime::Buffer& WeightStore::gather(const std::string& label, const ElementSource& src,
                                           uint32_t floats, const std::vector<GatherBox>& boxes) {
  const runtime::Buffer& out = own(dev_.create_buffer(
      uint32_t(std::max<uint32_t>(floats, 1) * sizeof(float)), driver::BoUsage::Scratch, label));
  const jit::Kernel k = gather_kernel(src);
  for (const GatherBox& b : boxes) {
    std::vector<Arg> args{Arg::buffer(src.buffer ? *src.buffer : out), Arg::buffer(out),
                          Arg::u32(uint32_t(b.count()))};
    for (int i = 1; i < 5; ++i) args.push_back(Arg::u32(b.size[i]));
    for (uint32_t s : b.src_stride) args.push_back(Arg::u32(s));
    for (uint32_t s : b.dst_stride) args.push_back(Arg::u32(s));
    for (uint32_t s : b.valid_stride) args.push_back(Arg::u32(s));
    args.push_back(Arg::u32(b.src_base));
    args.push_back(Arg::u32(b.dst_base));
    args.push_back(Arg::u32(b.valid_limit));
    prepare_.dispatch(k, grid(k, b.count()), args);
    ++jobs_;
  }
  prepare_.barrier();
  return out;
}

const runtime::Buffer& WeightStore::floats(const std::string& label, const Tensor* t,
                                           uint32_t count) {
  if (!t) {
    GatherBox zero;
    zero.size[4] = count;
    zero.dst_stride[4] = 1;
    return gather(label, {}, count, {zero});
  }
  if (t->size() < count)
    throw ModelError("weight '" + t->name() + "' has " + std::to_string(t->size()) +
                     " values, needs " + std::to_string(count));
  const ElementSource src = stored(*t, label);
  if (src.storage == StorageType::kFloat32 && stored_in_order(*t)) return *src.buffer;
  GatherBox box;
  if (stored_in_order(*t)) {
    box.size[4] = count;
    box.src_stride[4] = box.dst_stride[4] = 1;
  } else {
    // The stored transpose: value (r, c) of the [R][C] tensor is stored at c * R + r.
    const uint32_t rows = t->source()->transposed_rows, cols = uint32_t(t->size()) / rows;
    const auto st = matrix_strides(*t, rows, cols);
    box.size[3] = rows;
    box.size[4] = cols;
    box.src_stride[3] = st[0];
    box.src_stride[4] = st[1];
    box.dst_stride[3] = cols;
    box.dst_stride[4] = 1;
    // Only the first `count` values are wanted; the rest of the rows are skipped.
    box.valid_stride[3] = cols;
    box.valid_stride[4] = 1;
    box.valid_limit = count;
    return gather(label + ".f32", src, uint32_t(t->size()), {box});
  }
  return gather(label + ".f32", src, count, {box});
}

std::pair<const runtime::Buffer*, const runtime::Buffer*> WeightStore::fold_batchnorm(
    const std::string& label, const Tensor& slope, const Tensor& mean, const Tensor& var,
    const Tensor& bias, float eps, uint32_t channels) {
  const runtime::Buffer& s = floats(label + "/slope", &slope, channels);
  const runtime::Buffer& m = floats(label + "/mean", &mean, channels);
  const runtime::Buffer& v = floats(label + "/var", &var, channels);
  const runtime::Buffer& b = floats(label + "/bias", &bias, channels);
  const uint32_t bytes = std::max<uint32_t>(channels, 1) * 4;
  const runtime::Buffer& mul =
      own(dev_.create_buffer(bytes, driver::BoUsage::Scratch, label + "/scale"));
  const runtime::Buffer& add =
      own(dev_.create_buffer(bytes, driver::BoUsage::Scratch, label + "/shift"));
  const jit::Kernel k = batchnorm_fold_kernel();
  prepare_.barrier();
  prepare_.dispatch(k, grid(k, channels),
                    {Arg::buffer(s), Arg::buffer(m), Arg::buffer(v), Arg::buffer(b),
                     Arg::buffer(mul), Arg::buffer(add), Arg::f32(eps), Arg::u32(channels)});
  ++jobs_;
  prepare_.barrier();
  return {&mul, &add};
}

}  // namespace rplayer::nn::gpu
