#include "nn/gpu/weight_store.h"

#include <algorithm>
#include <bit>
#include <functional>
#include <map>
#include <tuple>

#include "nn/gpu/common_kernels.h"
#include "nn/model_error.h"
#include "runtime/error.h"
#include "runtime/jit/builder.h"
#include "runtime/jit/shader_cache.h"

namespace rplayer::nn::gpu {

using jit::KernelBuilder;
using jit::Type;
using jit::Value;
using runtime::Arg;

namespace {

constexpr uint32_t kPage = 4096;

// A GatherBox reduced to what varies: dimensions of size 1 dropped, dimensions that are
// contiguous in the source, the destination and the validity index merged. The last axis
// is the row: each lane handles a run of consecutive indices of it (and, for short rows,
// a tile of several indices of the axis before it), so that the index arithmetic is done
// once per lane, not once per element.
struct GatherAxis {
  uint32_t size = 1, src = 0, dst = 0, valid = 0;
};

struct GatherShape {
  std::vector<GatherAxis> axes;  // outermost first; never empty
  uint32_t src_base = 0, dst_base = 0;
  bool bounded = false;  // some elements are zeros (valid index >= valid_limit)
  uint32_t valid_limit = UINT32_MAX;
  uint32_t run = 1;   // row elements per lane
  uint32_t runs = 1;  // lanes per row: ceil(row size / run)
  // Indices of the axis before the row that a lane does (its size there is divided by
  // `tile`), with that axis's strides before the division.
  uint32_t tile = 1;
  GatherAxis tile_step;

  const GatherAxis& row() const { return axes.back(); }
  uint64_t lanes() const {
    uint64_t n = runs;
    for (size_t k = 0; k + 1 < axes.size(); ++k) n *= axes[k].size;
    return n;
  }
  uint64_t max_valid() const {
    uint64_t v = uint64_t(tile - 1) * tile_step.valid;
    for (const GatherAxis& a : axes) v += uint64_t(a.size - 1) * a.valid;
    return v;
  }
};

// Longest run a lane handles, and most elements of a lane's tile: enough that its index
// arithmetic is small beside the loads and stores, few enough to keep the unrolled code
// and the registers small.
constexpr uint32_t kMaxRun = 32;
constexpr uint32_t kMaxTileElements = 64;

GatherShape gather_shape(const GatherBox& b, const ElementSource& src) {
  const bool zeros = src.buffer == nullptr;
  GatherShape s;
  s.src_base = zeros ? 0 : b.src_base;
  s.dst_base = b.dst_base;
  uint64_t max_valid = 0;
  for (int k = 0; k < 5; ++k) max_valid += uint64_t(b.size[k] - 1) * b.valid_stride[k];
  s.bounded = !zeros && b.valid_limit != UINT32_MAX && max_valid >= b.valid_limit;
  s.valid_limit = s.bounded ? b.valid_limit : UINT32_MAX;
  for (int k = 0; k < 5; ++k) {
    if (b.size[k] == 1) continue;
    GatherAxis a{b.size[k], zeros ? 0 : b.src_stride[k], b.dst_stride[k],
                 s.bounded ? b.valid_stride[k] : 0};
    if (!s.axes.empty()) {
      const GatherAxis& o = s.axes.back();
      // The outer axis continues where the inner one ends: one longer axis.
      if (o.src == a.src * a.size && o.dst == a.dst * a.size && o.valid == a.valid * a.size) {
        a.size *= o.size;
        s.axes.pop_back();
      }
    }
    s.axes.push_back(a);
  }
  if (s.axes.empty()) s.axes.push_back({1, 1, 1, 0});

  const uint32_t len = s.row().size;
  if (len <= kMaxRun) {
    s.run = len;
  } else {
    // A run that divides the row needs no tail; else the last run of a row is shorter.
    s.run = kMaxRun;
    for (uint32_t r = kMaxRun; r >= kMaxRun / 2; --r)
      if (len % r == 0) {
        s.run = r;
        break;
      }
  }
  s.runs = (len + s.run - 1) / s.run;

  // A short row: the lane takes several rows. When they lie side by side in the source
  // (stride 1 across rows), it goes through the rows for each row index, and holds 4
  // values of each row before a st4: at most 4 rows then.
  const size_t n = s.axes.size();
  if (n >= 2 && s.runs == 1 && len < kMaxTileElements) {
    GatherAxis& t = s.axes[n - 2];
    const bool interleaved = t.src == 1 && !zeros;
    const uint32_t most = std::min(kMaxTileElements / len, interleaved ? 4u : 16u);
    for (uint32_t k = std::min(most, t.size); k > 1; --k)
      if (t.size % k == 0) {
        s.tile = k;
        break;
      }
    if (s.tile > 1) {
      s.tile_step = t;
      t.size /= s.tile;
      t.src *= s.tile;
      t.dst *= s.tile;
      t.valid *= s.tile;
    }
  }
  return s;
}

// Splits off the leading indices of the outermost axis whose elements are all valid: the
// partial blocks of a packing are few, and a box without a bound needs no per-element
// check.
std::vector<GatherShape> peel_valid(const GatherShape& s) {
  if (!s.bounded || s.axes.size() < 2 || s.axes[0].valid == 0) return {s};
  const GatherAxis& a = s.axes[0];
  GatherShape rest = s;
  rest.axes[0].size = 1;
  const uint64_t inner_max = rest.max_valid();  // over everything but axis 0
  if (inner_max >= s.valid_limit) return {s};
  const uint64_t full = std::min<uint64_t>(a.size, (s.valid_limit - inner_max - 1) / a.valid + 1);
  if (full == 0 || full == a.size) return {s};
  GatherShape head = s;
  head.axes[0].size = uint32_t(full);
  head.bounded = false;
  head.valid_limit = UINT32_MAX;
  GatherShape tail = s;
  tail.axes[0].size = a.size - uint32_t(full);
  tail.src_base += uint32_t(full) * a.src;
  tail.dst_base += uint32_t(full) * a.dst;
  // The tail's indices count from 0 again (a limit it starts past leaves only zeros).
  const uint64_t skipped = full * a.valid;
  tail.valid_limit = skipped < s.valid_limit ? uint32_t(s.valid_limit - skipped) : 0;
  return {head, tail};
}

// i / d and i % d for a constant d (shifts when d is a power of two).
std::pair<Value, Value> div_rem(const Value& i, uint32_t d) {
  if (d == 1) return {i, i.lit(0u)};
  if (std::has_single_bit(d)) {
    const uint32_t sh = uint32_t(std::countr_zero(d));
    return {i >> sh, i & (d - 1)};
  }
  return {i / d, i % d};
}

// The gather for lane `lane` (< s.lanes() does work): one run of s.run consecutive row
// elements (the last run of a row may be shorter) of s.tile rows. Every size, stride and
// base is a constant of the kernel, so the per-element work is a load at a constant
// offset from the lane's start, the conversion and the store. fp16 is read as the 32-bit
// word holding it (the QPU ignores an address's low two bits, so byte address 2 * index
// names that word; elements in one word share its load) and widened by f16lo / f16hi,
// which convert exactly as nn::half_to_float does. Runs of consecutive halves starting at
// an even one load 8 at a time (ld4), fp32 runs 4; stores go 4 at a time where the row is
// contiguous in the destination.
void gather_lane(KernelBuilder& kb, const Value& lane, const Value& in, const Value& out,
                 StorageType storage, const GatherShape& s) {
  const bool zeros = !in.valid();
  const bool half = !zeros && storage == StorageType::kFloat16;
  const GatherAxis& row = s.row();
  const GatherAxis& ts = s.tile_step;
  const uint32_t es = half ? 2 : 4;  // source bytes per element
  // Whether every lane starts at a half of src_base's parity (then which half of its word
  // each element is, is known when compiling).
  bool parity_known = s.runs == 1 || (uint64_t(s.run) * row.src) % 2 == 0;
  for (size_t k = 0; k + 1 < s.axes.size(); ++k) parity_known &= s.axes[k].src % 2 == 0;
  const uint32_t base_parity = s.src_base % 2;

  kb.if_(lane < uint32_t(s.lanes()), [&] {
    // The lane's coordinates: its run in the row, then the outer axes, innermost first.
    auto [rest, r] = div_rem(lane, s.runs);
    const Value first = r * s.run;  // first row index of the run
    Value si = first * row.src + s.src_base, di = first * row.dst + s.dst_base,
          vi = first * row.valid;
    for (size_t k = s.axes.size() - 1; k-- > 0;) {
      const GatherAxis& a = s.axes[k];
      Value idx = rest;
      if (k > 0) std::tie(rest, idx) = div_rem(rest, a.size);
      si = si + idx * a.src;
      di = di + idx * a.dst;
      vi = vi + idx * a.valid;
    }
    const Value src_at = zeros ? Value() : in + si * es, dst_at = out + di * 4u;
    // Lanes whose parity is not known shift the word right by 16 for an odd half.
    const Value shift = half && !parity_known ? (si & 1u) << 4u : Value();
    // Validity that neither the row nor the tile moves is the lane's: see checked_body.
    const bool per_element = s.bounded && (row.valid != 0 || (s.tile > 1 && ts.valid != 0));

    // Element (q, j) of the lane's first n row elements of each of its rows.
    auto body = [&](uint32_t n) {
      std::vector<std::vector<Value>> pending(s.tile);
      std::vector<uint32_t> first_j(s.tile, 0);
      auto flush = [&](uint32_t q) {
        std::vector<Value>& v = pending[q];
        const uint32_t base = q * ts.dst + first_j[q] * row.dst;
        if (v.size() == 4 && row.dst == 1) {
          kb.store4(dst_at, kb.vec4(v[0], v[1], v[2], v[3]), int32_t(base * 4));
        } else {
          for (size_t i = 0; i < v.size(); ++i)
            kb.store(dst_at, v[i], int32_t((base + i * row.dst) * 4));
        }
        v.clear();
      };
      auto push = [&](uint32_t q, uint32_t j, const Value& v) {
        if (pending[q].empty()) first_j[q] = j;
        pending[q].push_back(v);
        if (pending[q].size() == 4 || row.dst != 1) flush(q);
      };
      // fp16 words loaded, by word index from the lane's start and (with per-element
      // validity) the validity they were loaded under; validity by valid-index offset.
      std::map<std::pair<int64_t, uint64_t>, Value> words;
      std::map<uint64_t, Value> oks;
      auto element = [&](uint32_t q, uint32_t j) -> Value {
        if (zeros) return kb.f32(0.0f);
        const uint64_t voff = uint64_t(q) * ts.valid + uint64_t(j) * row.valid;
        if (per_element && voff >= s.valid_limit) return kb.f32(0.0f);
        const uint32_t o = q * ts.src + j * row.src;  // elements from the lane's start
        Value ok;
        if (per_element) {
          auto it = oks.find(voff);
          if (it == oks.end()) it = oks.emplace(voff, vi < uint32_t(s.valid_limit - voff)).first;
          ok = it->second;
        }
        // An invalid element reads the buffer's first word (its own address may lie
        // outside the buffer) and gives 0.
        auto load = [&](Type t) {
          return per_element ? kb.load(select(ok, src_at + int32_t(o * es), in), 0, t)
                             : kb.load(src_at, int32_t(o * es), t);
        };
        Value v;
        if (!half) {
          v = load(Type::F32);
        } else if (parity_known) {
          const std::pair<int64_t, uint64_t> w{(int64_t(base_parity) + o) / 2,
                                               per_element ? voff : 0};
          auto it = words.find(w);
          if (it == words.end()) it = words.emplace(w, load(Type::U32)).first;
          v = (base_parity + o) % 2 ? half_hi(it->second) : half_lo(it->second);
        } else {
          v = half_lo(load(Type::U32) >> (o % 2 ? shift ^ 16u : shift));
        }
        return per_element ? select(ok, v, 0.0f) : v;
      };
      const bool wide_half = half && parity_known && row.src == 1 && base_parity == 0 &&
                             ts.src % 2 == 0 && !per_element;
      const bool wide_f32 = !zeros && !half && row.src == 1 && !per_element;
      // Rows side by side in the source (stride 1 across rows) go through the rows for
      // each row index: fp16 rows share words, fp32 rows load 4 at a time (ld4).
      if (!zeros && s.tile > 1 && ts.src == 1) {
        const bool wide = !half && !per_element && s.tile % 4 == 0;
        for (uint32_t j = 0; j < n; ++j)
          for (uint32_t q = 0; q < s.tile; q += wide ? 4 : 1) {
            if (!wide) {
              push(q, j, element(q, j));
              continue;
            }
            const Value v4 = kb.load4(src_at, int32_t((q + j * row.src) * 4));
            for (uint32_t k = 0; k < 4; ++k) push(q + k, j, v4[int(k)]);
          }
      } else {
        for (uint32_t q = 0; q < s.tile; ++q) {
          for (uint32_t j = 0; j < n;) {
            const int32_t at = int32_t((q * ts.src + j) * es);
            if (wide_half && j % 8 == 0 && j + 8 <= n) {
              const Value w4 = kb.load4(src_at, at, Type::U32);
              for (uint32_t k = 0; k < 8; ++k)
                push(q, j + k, k % 2 ? half_hi(w4[int(k / 2)]) : half_lo(w4[int(k / 2)]));
              j += 8;
            } else if (wide_f32 && j % 4 == 0 && j + 4 <= n) {
              const Value v4 = kb.load4(src_at, at);
              for (uint32_t k = 0; k < 4; ++k) push(q, j + k, v4[int(k)]);
              j += 4;
            } else {
              push(q, j, element(q, j));
              ++j;
            }
          }
          // This row's last values now: a tile of rows would keep them all live.
          if (!pending[q].empty()) flush(q);
          words.clear();
        }
      }
      for (uint32_t q = 0; q < s.tile; ++q)
        if (!pending[q].empty()) flush(q);
    };
    // Validity of the whole lane: its elements, or zeros.
    auto checked_body = [&](uint32_t n) {
      if (!s.bounded || per_element) return body(n);
      kb.if_else(vi < s.valid_limit, [&] { body(n); }, [&] {
        for (uint32_t q = 0; q < s.tile; ++q)
          for (uint32_t j = 0; j < n; ++j)
            kb.store(dst_at, kb.f32(0.0f), int32_t((q * ts.dst + j * row.dst) * 4));
      });
    };
    const uint32_t tail = row.size - (s.runs - 1) * s.run;
    if (tail == s.run) {
      checked_body(s.run);
    } else {
      kb.if_else(r == s.runs - 1, [&] { checked_body(tail); }, [&] { checked_body(s.run); });
    }
  });
}

// The CPU reference's BatchNorm coefficients (ops_elementwise used to compute them on the
// CPU), in the same fp32 operations and order; fsqrt and fdiv round like sqrtf and '/'.
void batchnorm_fold_lane(KernelBuilder& kb, const Value& i, const std::vector<Value>& b,
                         float eps, uint32_t channels) {
  const Value &slope = b[0], &mean = b[1], &var = b[2], &bias = b[3], &mul = b[4], &add = b[5];
  kb.if_(i < channels, [&] {
    const Value off = i * 4u;
    const Value s = kb.load(slope + off), m = kb.load(mean + off), v = kb.load(var + off),
                bb = kb.load(bias + off);
    const Value sqrt_var = sqrt(v + kb.f32(eps));
    kb.store(add + off, bb - s * m / sqrt_var);
    kb.store(mul + off, s / sqrt_var);
  });
}

// Workgroup size of the prepare jobs: sections start at workgroup boundaries, so the
// section a workgroup runs is chosen by uniform branches.
constexpr uint32_t kJobWorkgroup = 64;
// Buffers one prepare job may name: kernel parameters are read into registers at its
// start, and the sections' work needs the rest of the 64.
constexpr size_t kMaxJobBuffers = 24;
// Elements one prepare job may write: a job is bounded in time (the driver's hang timer)
// and in the dirty cache lines its end cleans, so big weights are spread over jobs.
constexpr uint64_t kMaxJobElements = uint64_t(1) << 20;
constexpr uint32_t kMaxGridDim = 0xffff;

}  // namespace

// A part of a prepare job: `lanes` lanes running `body`, which gets the lane's index and
// the addresses of `reads` then `writes`.
struct WeightStore::Section {
  std::string tag;  // for the job kernel's name
  uint64_t lanes = 0;
  uint32_t lane_elements = 1;  // elements a lane writes (at most)
  std::vector<const runtime::Buffer*> reads, writes;
  std::function<void(KernelBuilder&, const Value& lane, const std::vector<Value>& buffers)> body;
  int level = 0;  // 1 + the level of the sections writing what it reads
};

uint64_t GatherBox::count() const {
  uint64_t n = 1;
  for (uint32_t s : size) n *= s;
  return n;
}

WeightStore::WeightStore(runtime::Device& dev, runtime::CommandBuffer& prepare,
                         std::deque<runtime::Buffer>& owned)
    : dev_(dev), prepare_(prepare), owned_(owned) {}

WeightStore::~WeightStore() = default;

const runtime::Buffer& WeightStore::own(runtime::Buffer b) {
  owned_.push_back(std::move(b));
  return owned_.back();
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
  std::vector<GatherShape> shapes;
  for (const GatherBox& b : boxes)
    if (b.count() > 0)
      for (const GatherShape& sh : peel_valid(gather_shape(b, src))) shapes.push_back(sh);
  // fp32 elements copied in order from the start: the stored buffer already is the result
  // (e.g. a bias whose packed blocks are exactly its values).
  if (src.buffer && src.storage == StorageType::kFloat32 && shapes.size() == 1 &&
      shapes[0].axes.size() == 1 && !shapes[0].bounded && shapes[0].src_base == 0 &&
      shapes[0].dst_base == 0 && shapes[0].row().src == 1 && shapes[0].row().dst == 1 &&
      shapes[0].row().size == floats)
    return *src.buffer;
  const runtime::Buffer& out = own(dev_.create_buffer(
      uint32_t(std::max<uint32_t>(floats, 1) * sizeof(float)), driver::BoUsage::Scratch, label));
  for (const GatherShape& s : shapes) {
    Section sec;
    sec.tag = src.buffer ? std::string("gather_") + storage_type_name(src.storage) : "zero";
    sec.lanes = s.lanes();
    sec.lane_elements = s.run * s.tile;
    if (src.buffer) sec.reads = {src.buffer};
    sec.writes = {&out};
    const StorageType storage = src.storage;
    sec.body = [s, storage](KernelBuilder& kb, const Value& lane, const std::vector<Value>& b) {
      gather_lane(kb, lane, b.size() == 2 ? b[0] : Value(), b.back(), storage, s);
    };
    add_section(std::move(sec));
  }
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
  Section sec;
  sec.tag = "batchnorm_fold";
  sec.lanes = channels;
  sec.reads = {&s, &m, &v, &b};
  sec.writes = {&mul, &add};
  sec.body = [eps, channels](KernelBuilder& kb, const Value& lane, const std::vector<Value>& bufs) {
    batchnorm_fold_lane(kb, lane, bufs, eps, channels);
  };
  add_section(std::move(sec));
  return {&mul, &add};
}

void WeightStore::add_section(Section s) {
  // It runs in a job after the sections that write what it reads.
  for (const runtime::Buffer* b : s.reads) {
    auto it = level_of_.find(b);
    if (it != level_of_.end()) s.level = std::max(s.level, it->second + 1);
  }
  for (const runtime::Buffer* b : s.writes) level_of_[b] = s.level;
  pending_.push_back(std::move(s));
}

// A range of a section's lanes in one job.
struct WeightStore::Part {
  const Section* section = nullptr;
  uint64_t first_lane = 0, lanes = 0;
};

void WeightStore::finish() {
  int levels = 0;
  for (const Section& s : pending_) levels = std::max(levels, s.level + 1);
  for (int level = 0; level < levels; ++level) {
    std::vector<Part> job;
    std::vector<const runtime::Buffer*> buffers;
    uint64_t elements = 0;
    auto flush = [&] {
      if (!job.empty()) dispatch_job(job);
      job.clear();
      buffers.clear();
      elements = 0;
    };
    for (const Section& s : pending_) {
      if (s.level != level) continue;
      for (uint64_t lane = 0; lane < s.lanes;) {
        std::vector<const runtime::Buffer*> with = buffers;
        for (const auto* list : {&s.reads, &s.writes})
          for (const runtime::Buffer* b : *list)
            if (std::find(with.begin(), with.end(), b) == with.end()) with.push_back(b);
        if (!job.empty() && (with.size() > kMaxJobBuffers ||
                             elements + kJobWorkgroup * s.lane_elements > kMaxJobElements)) {
          flush();
          continue;
        }
        // Whole workgroups, unless the section ends: a part's spare lanes are past its end.
        uint64_t take = std::max<uint64_t>(
            (kMaxJobElements - elements) / s.lane_elements / kJobWorkgroup * kJobWorkgroup,
            kJobWorkgroup);
        take = std::min(take, s.lanes - lane);
        job.push_back({&s, lane, take});
        buffers = std::move(with);
        elements += take * s.lane_elements;
        lane += take;
      }
    }
    flush();
    prepare_.barrier();
  }
  pending_.clear();
  level_of_.clear();
}

// One kernel for the job: each part owns a range of whole workgroups, found by a binary
// search of uniform branches on the workgroup index (a few instructions per batch), and
// its code is specialized to its section's sizes; all its constants are in the code. A
// kernel that does not compile (its parameters and the sections' values need more than
// the 64 registers) is split in two jobs.
void WeightStore::dispatch_job(const std::vector<Part>& job) {
  std::vector<const runtime::Buffer*> buffers;
  for (const Part& p : job)
    for (const auto* list : {&p.section->reads, &p.section->writes})
      for (const runtime::Buffer* b : *list)
        if (std::find(buffers.begin(), buffers.end(), b) == buffers.end()) buffers.push_back(b);
  std::string name = "prepare";
  for (const Part& p : job)
    if (name.find("_" + p.section->tag) == std::string::npos) name += "_" + p.section->tag;
  KernelBuilder kb(name);
  kb.set_workgroup_size(kJobWorkgroup);
  std::vector<Value> params;
  for (size_t i = 0; i < buffers.size(); ++i) params.push_back(kb.buffer("b" + std::to_string(i)));
  auto param = [&](const runtime::Buffer* b) {
    return params[size_t(std::find(buffers.begin(), buffers.end(), b) - buffers.begin())];
  };
  std::vector<uint64_t> start{0};
  for (const Part& p : job)
    start.push_back(start.back() +
                    std::max<uint64_t>((p.lanes + kJobWorkgroup - 1) / kJobWorkgroup, 1));
  const uint64_t workgroups = start.back();
  const uint64_t rows = (workgroups + kMaxGridDim - 1) / kMaxGridDim;
  if (rows > kMaxGridDim)
    throw ModelError("a prepare job of " + std::to_string(workgroups) +
                     " workgroups is not supported on the GPU");
  const Value wg = kb.workgroup_id(1) * kb.num_workgroups(0) + kb.workgroup_id(0);
  std::function<void(size_t, size_t)> pick = [&](size_t lo, size_t hi) {
    if (hi - lo == 1) {
      const Part& p = job[lo];
      const Section& s = *p.section;
      auto run = [&] {
        const Value lane = (wg - uint32_t(start[lo])) * kJobWorkgroup + kb.local_id() +
                           uint32_t(p.first_lane);
        std::vector<Value> bufs;
        for (const auto* list : {&s.reads, &s.writes})
          for (const runtime::Buffer* b : *list) bufs.push_back(param(b));
        s.body(kb, lane, bufs);
      };
      // The grid's spare workgroups come after the last part; they must not redo the
      // next part's lanes.
      if (lo + 1 == job.size() && p.first_lane + p.lanes < s.lanes) {
        kb.if_(wg < uint32_t(start[hi]), run);
      } else {
        run();
      }
      return;
    }
    const size_t mid = (lo + hi) / 2;
    kb.if_else(wg < uint32_t(start[mid]), [&] { pick(lo, mid); }, [&] { pick(mid, hi); });
  };
  pick(0, job.size());
  const jit::Kernel kernel = kb.finish();
  try {
    dev_.shaders().get(kernel);
  } catch (const runtime::Error&) {
    if (job.size() == 1) throw;
    const auto mid = job.begin() + std::ptrdiff_t(job.size() / 2);
    dispatch_job({job.begin(), mid});
    dispatch_job({mid, job.end()});
    return;
  }
  std::vector<Arg> args;
  for (const runtime::Buffer* b : buffers) args.push_back(Arg::buffer(*b));
  prepare_.dispatch(kernel,
                    runtime::Grid::workgroups(uint32_t((workgroups + rows - 1) / rows),
                                              uint32_t(rows)),
                    args);
  ++jobs_;
}

}  // namespace rplayer::nn::gpu
