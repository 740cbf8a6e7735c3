#include "nn/gpu/gpu_executor.h"

#include <chrono>
#include <cstring>
#include <deque>
#include <optional>
#include <set>

#include "nn/gpu/activation.h"
#include "nn/gpu/common_kernels.h"
#include "nn/gpu/op_context.h"
#include "nn/gpu/op_registry.h"
#include "nn/gpu/weight_store.h"
#include "nn/layer_params.h"
#include "nn/model_error.h"
#include "runtime/command_buffer.h"
#include "runtime/device.h"
#include "runtime/error.h"
#include "runtime/jit/shader_cache.h"

namespace rplayer::nn {

using gpu::BlobRef;
using gpu::GpuActivation;
using gpu::OpContext;

namespace {

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

std::string layer_prefix(const Layer& l) { return "layer " + l.name + " (" + l.type + "): "; }

}  // namespace

struct GpuExecutor::Impl {
  enum class Kind { kNone, kInput, kConstant, kComputed };
  struct Place {
    int parent = -1;      // blob whose memory this blob lives in; -1: owns its memory
    uint64_t offset = 0;  // bytes into the parent
  };

  Impl(const Graph& g, runtime::Device& d, const GpuExecutorOptions& o)
      : graph(g), dev(d), opts(o) {}

  void plan();
  void allocate();
  void record();
  std::pair<int, uint64_t> resolve(int blob) const;
  // A whole-blob view of its root (offset 0, same size) whose root is computed here.
  bool whole_computed(int blob) const;
  const runtime::Buffer& own(runtime::Buffer b) {
    buffers.push_back(std::move(b));
    return buffers.back();
  }

  const Graph& graph;
  runtime::Device& dev;
  GpuExecutorOptions opts;

  // Layer roles.
  std::vector<bool> skip;            // fused activation layers
  std::vector<GpuActivation> fused;  // per layer: a fused activation to apply
  std::vector<int> redirect;         // per layer: blob its output 0 is written to
  // Blob places.
  std::vector<Kind> kind;
  std::vector<Place> place;
  std::vector<int> fused_into;  // blob -> layer whose activation was fused over it
  std::set<int> outputs;        // the graph's outputs
  std::vector<BlobRef> refs;
  std::map<int, const runtime::Buffer*> output_copies;

  std::deque<runtime::Buffer> buffers;  // blobs, weights, scratch: stable addresses
  // The prepare phase (weights as stored -> what the kernels read), then the inference.
  std::unique_ptr<runtime::CommandBuffer> prepare;
  std::unique_ptr<gpu::WeightStore> weights;
  std::unique_ptr<runtime::CommandBuffer> cb;
  uint64_t bytes = 0;

  mutable std::mutex mu;
  mutable GpuRunStats stats;
  // The prepare phase's outputs are in place (it ran, and nobody asked for it again).
  mutable bool prepared = false;
};

std::pair<int, uint64_t> GpuExecutor::Impl::resolve(int b) const {
  uint64_t off = 0;
  while (place[b].parent >= 0) {
    off += place[b].offset;
    b = place[b].parent;
  }
  return {b, off};
}

bool GpuExecutor::Impl::whole_computed(int b) const {
  const auto [root, off] = resolve(b);
  return off == 0 && graph.blob(root).shape.total() == graph.blob(b).shape.total() &&
         kind[root] == Kind::kComputed;
}

void GpuExecutor::Impl::plan() {
  const Graph& g = graph;
  const size_t nl = g.layers().size(), nb = g.blobs().size();
  skip.assign(nl, false);
  fused.assign(nl, {});
  redirect.assign(nl, -1);
  kind.assign(nb, Kind::kNone);
  place.assign(nb, {});
  fused_into.assign(nb, -1);
  for (int b : g.output_blobs()) outputs.insert(b);
  std::set<int> keep;
  for (const std::string& name : opts.keep_blobs) keep.insert(g.blob_index(name));
  for (const Blob& b : g.blobs())
    if (b.shape.empty())
      throw ModelError(g.source + ": blob '" + b.name + "' has no shape (infer_shapes first)");

  // Every layer must be known.
  for (const Layer& l : g.layers()) {
    if (l.type == "Input" || l.type == "MemoryData" || gpu::is_alias_layer(l)) continue;
    if (!gpu::find_gpu_op(l.type))
      throw ModelError(layer_prefix(l) + "layer type " + l.type + " is not supported on the GPU");
  }

  // Activation layers folded into the layer before them.
  if (opts.fuse_activations) {
    for (size_t li = 0; li < nl; ++li) {
      const Layer& l = g.layer(int(li));
      const std::optional<GpuActivation> act = GpuActivation::from_layer(l);
      if (!act || l.inputs.size() != 1 || l.outputs.size() != 1) continue;
      const int b = l.inputs[0];
      const int p = g.blob(b).producer;
      if (p < 0 || g.blob(b).consumers.size() != 1 || outputs.count(b) || keep.count(b)) continue;
      const Layer& pl = g.layer(p);
      const gpu::GpuOp* op = gpu::find_gpu_op(pl.type);
      if (!op || !op->fuses_activation || !fused[p].none() || pl.outputs.size() != 1) continue;
      fused[p] = *act;
      redirect[p] = l.outputs[0];
      skip[li] = true;
      fused_into[b] = int(li);
    }
  }

  // Blob places: aliases and views first, then Concat inputs placed in their output.
  for (size_t li = 0; li < nl; ++li) {
    const Layer& l = g.layer(int(li));
    if (l.type == "Input") {
      for (int b : l.outputs) kind[b] = Kind::kInput;
    } else if (l.type == "MemoryData") {
      for (int b : l.outputs) kind[b] = Kind::kConstant;
    } else if (gpu::is_alias_layer(l)) {
      for (size_t i = 0; i < l.outputs.size(); ++i) {
        const int src = l.inputs.at(std::min(i, l.inputs.size() - 1));
        const int dst = l.outputs[i];
        if (g.blob(src).shape.total() != g.blob(dst).shape.total())
          throw ModelError(layer_prefix(l) + "output size differs from the input's");
        place[dst] = {src, 0};
      }
    } else {
      for (int b : l.outputs) kind[b] = Kind::kComputed;
      if (l.type == "Slice" && opts.zero_copy_concat_slice) {
        const Shape& s = g.blob(l.inputs[0]).shape;
        int axis = l.params.get_int(1, 0);
        if (axis < 0) axis += s.dims;
        const std::vector<int> e = s.outer_dims();
        bool outer_one = true;
        uint64_t inner = 1;
        for (int i = 0; i < int(e.size()); ++i) {
          if (i < axis && e[i] != 1) outer_one = false;
          if (i > axis) inner *= uint64_t(e[i]);
        }
        if (outer_one && axis >= 0 && axis < s.dims) {
          const std::vector<int> bounds = slice_bounds(l.params, s, int(l.outputs.size()));
          for (size_t k = 0; k < l.outputs.size(); ++k)
            place[l.outputs[k]] = {l.inputs[0], uint64_t(bounds[k]) * inner * 4};
        }
      }
    }
  }
  if (opts.zero_copy_concat_slice) {
    for (size_t li = 0; li < nl; ++li) {
      const Layer& l = g.layer(int(li));
      if (l.type != "Concat" || skip[li]) continue;
      const Shape& os = g.blob(l.outputs[0]).shape;
      int axis = l.params.get_int(0, 0);
      if (axis < 0) axis += os.dims;
      const std::vector<int> e = os.outer_dims();
      bool outer_one = axis >= 0 && axis < os.dims;
      for (int i = 0; i < axis && outer_one; ++i) outer_one = e[i] == 1;
      if (!outer_one) continue;
      std::map<int, int> root_count;
      for (int b : l.inputs) root_count[resolve(b).first]++;
      uint64_t offset = 0;
      for (int b : l.inputs) {
        const int root = resolve(b).first;
        // The root must be written by a layer here, once, and be no graph output (those
        // have their own Output buffer).
        if (whole_computed(b) && root_count[root] == 1 && !outputs.count(root) &&
            root != resolve(l.outputs[0]).first)
          place[root] = {l.outputs[0], offset};
        offset += g.blob(b).shape.total() * 4;
      }
    }
  }
}

void GpuExecutor::Impl::allocate() {
  const Graph& g = graph;
  prepare = std::make_unique<runtime::CommandBuffer>(dev, opts.label + ".prepare");
  weights = std::make_unique<gpu::WeightStore>(dev, *prepare, buffers);
  const size_t nb = g.blobs().size();
  // Graph outputs get their own Output buffer when they own their memory (or are a whole
  // view of memory computed here); others are copied into one at the end.
  std::map<int, int> output_root;  // root -> output blob labelling it
  std::set<int> need_copy;
  for (int o : outputs) {
    if (fused_into[o] >= 0) continue;
    const int root = resolve(o).first;
    if (whole_computed(o) && !output_root.count(root)) {
      output_root[root] = o;
    } else {
      need_copy.insert(o);
    }
  }
  std::vector<const runtime::Buffer*> storage(nb, nullptr);
  for (size_t b = 0; b < nb; ++b) {
    if (place[b].parent >= 0 || fused_into[b] >= 0) continue;
    const Blob& blob = g.blob(int(b));
    const uint32_t size = uint32_t(std::max<size_t>(blob.shape.total(), 1) * 4);
    switch (kind[b]) {
      case Kind::kInput:
        storage[b] = &own(dev.create_buffer(size, driver::BoUsage::Input, blob.name));
        break;
      case Kind::kConstant: {
        const Layer& l = g.layer(blob.producer);
        const Tensor* data = l.weight("data");
        if (!data || data->size() != blob.shape.total())
          throw ModelError(layer_prefix(l) + "weight 'data' does not match the blob");
        storage[b] = &weights->floats(l.name + "/data", data, uint32_t(data->size()));
        break;
      }
      case Kind::kComputed: {
        auto it = output_root.find(int(b));
        storage[b] =
            it != output_root.end()
                ? &own(dev.create_buffer(size, driver::BoUsage::Output, g.blob(it->second).name))
                : &own(dev.create_buffer(size, driver::BoUsage::Scratch, blob.name));
        break;
      }
      case Kind::kNone:
        break;  // a blob no layer produces (cannot happen in a valid graph)
    }
  }
  refs.assign(nb, {});
  for (size_t b = 0; b < nb; ++b) {
    if (fused_into[b] >= 0) continue;
    const auto [root, off] = resolve(int(b));
    if (!storage[root]) continue;
    refs[b] = {storage[root], uint32_t(off), g.blob(int(b)).shape};
  }
  for (int o : need_copy) {
    const Blob& blob = g.blob(o);
    output_copies[o] = &own(dev.create_buffer(uint32_t(std::max<size_t>(blob.shape.total(), 1) * 4),
                                              driver::BoUsage::Output, blob.name));
  }
}

void GpuExecutor::Impl::record() {
  const Graph& g = graph;
  cb = std::make_unique<runtime::CommandBuffer>(dev, opts.label);
  for (size_t li = 0; li < g.layers().size(); ++li) {
    const Layer& l = g.layer(int(li));
    if (skip[li] || l.type == "Input" || l.type == "MemoryData" || gpu::is_alias_layer(l)) continue;
    std::vector<BlobRef> in, out;
    for (int b : l.inputs) in.push_back(refs[b]);
    for (size_t i = 0; i < l.outputs.size(); ++i)
      out.push_back(refs[i == 0 && redirect[li] >= 0 ? redirect[li] : l.outputs[i]]);
    gpu::OpContext ctx(dev, *cb, buffers, *weights, l, std::move(in), std::move(out), fused[li]);
    try {
      gpu::find_gpu_op(l.type)->encode(ctx);
    } catch (const ModelError& e) {
      throw ModelError(layer_prefix(l) + e.what());
    } catch (const runtime::Error& e) {
      throw ModelError(layer_prefix(l) + e.what());
    }
    if (ctx.dispatches() > 0) cb->barrier();
  }
  for (const auto& [o, buf] : output_copies) {
    Layer copy;
    copy.type = "Copy";
    copy.name = g.blob(o).name;
    const BlobRef dst{buf, 0, g.blob(o).shape};
    gpu::OpContext ctx(dev, *cb, buffers, *weights, copy, {refs[o]}, {dst}, {});
    gpu::dispatch_copy(ctx, refs[o], dst, {.X = uint32_t(dst.count())});
  }
  weights->finish();
  // The uniform buffers now, so that the first run's job stream is the same as any other's.
  prepare->seal();
  cb->seal();
  for (const runtime::Buffer& b : buffers) bytes += b.size();
}

GpuExecutor::GpuExecutor(const Graph& graph, runtime::Device& device,
                         const GpuExecutorOptions& opts)
    : impl_(std::make_unique<Impl>(graph, device, opts)) {
  impl_->plan();
  impl_->allocate();
  impl_->record();
}

GpuExecutor::~GpuExecutor() = default;

std::map<std::string, Tensor> GpuExecutor::run(const std::map<std::string, Tensor>& inputs,
                                               const std::vector<std::string>& outputs) const {
  Impl& m = *impl_;
  const Graph& g = m.graph;
  std::lock_guard<std::mutex> lock(m.mu);
  GpuRunStats st;
  st.dispatches = m.cb->dispatches().size();

  // Requested blobs first, so that a bad name fails before any GPU work.
  std::vector<int> wanted;
  if (outputs.empty()) wanted.assign(m.outputs.begin(), m.outputs.end());
  for (const std::string& name : outputs) {
    const int b = g.blob_index(name);
    if (m.fused_into[b] >= 0)
      throw ModelError(g.source + ": blob '" + name + "' was fused into layer '" +
                       g.layer(g.blob(b).producer).name +
                       "' (keep it with GpuExecutorOptions::keep_blobs)");
    wanted.push_back(b);
  }

  auto t0 = std::chrono::steady_clock::now();
  for (int b : g.input_blobs()) {
    const Blob& blob = g.blob(b);
    auto it = inputs.find(blob.name);
    if (it == inputs.end())
      throw ModelError(g.source + ": no value given for input blob '" + blob.name + "'");
    const Tensor& t = it->second;
    if (t.shape() != blob.shape)
      throw ModelError(g.source + ": input blob '" + blob.name + "' has shape " + t.shape().str() +
                       ", the executor was built for " + blob.shape.str());
    // The CPU mapping is writable; the blob's bytes lie inside the buffer by construction.
    const BlobRef& r = m.refs[b];
    std::memcpy(r.buffer->data() + r.offset, t.data(), t.size() * 4);
    st.bytes_in += t.size() * 4;
  }
  st.upload_ms = ms_since(t0);

  // The prepare phase's outputs stay in GPU memory natively, so it runs only when they are
  // not known to be there; a recording asks for it (prepare_again()) because the replayer
  // scrubs GPU-written pages after each run (docs/ARCHITECTURE.md, "Weights").
  t0 = std::chrono::steady_clock::now();
  if (!m.prepared) {
    if (!m.prepare->dispatches().empty()) {
      m.prepare->submit();
      m.prepare->wait();
    }
    m.prepared = true;
    st.prepare_dispatches = m.prepare->dispatches().size();
    st.dispatches += st.prepare_dispatches;
  }
  st.prepare_ms = ms_since(t0);
  t0 = std::chrono::steady_clock::now();
  m.cb->submit();
  m.cb->wait();
  st.submit_wait_ms = ms_since(t0);

  t0 = std::chrono::steady_clock::now();
  std::map<std::string, Tensor> result;
  for (int b : wanted) {
    const Blob& blob = g.blob(b);
    Tensor t(blob.shape, 0.f, blob.name);
    auto copy = m.output_copies.find(b);
    if (copy != m.output_copies.end()) {
      copy->second->download(t.data(), t.size() * 4);
    } else {
      const BlobRef& r = m.refs[b];
      r.buffer->download(t.data(), t.size() * 4, r.offset);
    }
    st.bytes_out += t.size() * 4;
    result.emplace(blob.name, std::move(t));
  }
  st.download_ms = ms_since(t0);
  m.stats = st;
  return result;
}

void GpuExecutor::prepare_again() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->prepared = false;
}

GpuRunStats GpuExecutor::last_run_stats() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->stats;
}

size_t GpuExecutor::num_dispatches() const {
  return impl_->prepare->dispatches().size() + impl_->cb->dispatches().size();
}

size_t GpuExecutor::num_prepare_dispatches() const { return impl_->prepare->dispatches().size(); }

uint64_t GpuExecutor::weights_bytes() const { return impl_->weights->stored_bytes(); }

const runtime::CommandBuffer& GpuExecutor::command_buffer() const { return *impl_->cb; }

const runtime::CommandBuffer& GpuExecutor::prepare_command_buffer() const {
  return *impl_->prepare;
}

std::vector<GpuExecutor::IoBinding> GpuExecutor::io_bindings() const {
  const Impl& m = *impl_;
  std::vector<IoBinding> v;
  for (int b : m.graph.input_blobs()) {
    const BlobRef& r = m.refs[b];
    v.push_back({m.graph.blob(b).name, true, r.buffer->gpu_va() + r.offset, uint32_t(r.count() * 4),
                 r.shape});
  }
  for (int b : m.outputs) {
    const Blob& blob = m.graph.blob(b);
    auto copy = m.output_copies.find(b);
    const BlobRef r =
        copy != m.output_copies.end() ? BlobRef{copy->second, 0, blob.shape} : m.refs[b];
    v.push_back(
        {blob.name, false, r.buffer->gpu_va() + r.offset, uint32_t(r.count() * 4), blob.shape});
  }
  return v;
}

uint64_t GpuExecutor::gpu_bytes() const { return impl_->bytes; }

size_t GpuExecutor::num_kernels() const {
  std::set<const runtime::CachedKernel*> k;
  for (const auto& d : impl_->prepare->dispatches()) k.insert(d.kernel);
  for (const auto& d : impl_->cb->dispatches()) k.insert(d.kernel);
  return k.size();
}

}  // namespace rplayer::nn
