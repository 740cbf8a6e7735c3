// Kernel building blocks shared by the operators: flat grids over any number of
// elements, 4-wide element loops, strided copies and bordering.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "nn/gpu/op_context.h"
#include "nn/layer_params.h"
#include "runtime/jit/builder.h"

namespace rplayer::nn::gpu {

namespace jit = runtime::jit;

// Flat invocation index over a 2-D grid of workgroups, so that more than 65535
// workgroups' worth of invocations fit: wg_y * num_wg_x * wg_size + global_x.
jit::Value flat_index(jit::KernelBuilder& kb);
// The grid for flat_index() covering `invocations` (compiles the kernel for its size).
runtime::Grid flat_grid(OpContext& ctx, const jit::Kernel& kernel, uint64_t invocations,
                        const jit::Specialization& spec = {});
runtime::Grid flat_grid(runtime::Device& dev, const jit::Kernel& kernel, uint64_t invocations,
                        const jit::Specialization& spec = {});

// Loads 1 or 4 consecutive floats; the components of a loaded value.
jit::Value load_n(jit::KernelBuilder& kb, const jit::Value& addr, int width);
std::vector<jit::Value> components(const jit::Value& v, int width);
void store_n(jit::KernelBuilder& kb, const jit::Value& addr, const std::vector<jit::Value>& v);

// Runs body(first, width) over elements [4 * unit, 4 * unit + 4) clipped to n: once with
// width 4 when all four exist, else once per existing element with width 1.
void for_each4(jit::KernelBuilder& kb, const jit::Value& unit, const jit::Value& n,
               const std::function<void(const jit::Value& first, int width)>& body);

// Row and column of the flat pixel indices first + k * step (k < count) in a plane of
// width w: one division for the first, then increments (step <= w_min guarantees at
// most one wrap per step; otherwise each divides).
struct RowCol {
  jit::Value y, x;
};
std::vector<RowCol> row_cols(const jit::Value& first, uint32_t step, int count, const jit::Value& w,
                             bool step_le_w);

// dst[dst_off + z * dz + y * dy + x] = src[src_off + z * sz + y * sy + x * sx] for
// x < X, y < Y, z < Z (strides and offsets in elements).
struct Copy3d {
  uint32_t X = 1, Y = 1, Z = 1;
  uint32_t sx = 1, sy = 0, sz = 0;
  uint32_t dy = 0, dz = 0;
  uint32_t src_off = 0, dst_off = 0;
};
void dispatch_copy(OpContext& ctx, const BlobRef& src, const BlobRef& dst, const Copy3d& c);

// Padding's element placement (ncnn Padding type 0 constant, 1 replicate, 2 reflect)
// of a c x h x w blob into a bordered one (front channels are added before).
struct PadSpec {
  int top = 0, left = 0, front = 0;
  int type = 0;
  float value = 0.f;
};
// Fills `dst` (its shape gives the bordered size); per_channel_fill (optional, one value
// per output channel) replaces `value`.
void dispatch_pad(OpContext& ctx, const BlobRef& src, const BlobRef& dst, const PadSpec& p,
                  const runtime::Buffer* per_channel_fill = nullptr);

// `in` with a constant border, in a scratch blob; `in` itself when the box is empty.
BlobRef bordered(OpContext& ctx, const BlobRef& in, const PadBox& pad, float value);

}  // namespace rplayer::nn::gpu
