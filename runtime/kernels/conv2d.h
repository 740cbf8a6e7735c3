// Direct 2-D convolution (NCHW fp32, batch 1) as a JIT kernel, built for few instructions
// per multiply-accumulate on the QPU:
//  - each lane owns one output pixel and `oc_block` output channels (register blocking):
//    every input value it loads feeds oc_block ffma;
//  - weights come by ldu4, 4 output channels per load, broadcast to the batch, from a
//    packed layout [oc_block group][in_c][kh][kw][oc_block] (pack_conv2d_weights);
//  - kernel taps are unrolled in C++; the input-channel loop is unrolled by the JIT
//    (shapes are specialization constants, so trip counts are known); addresses are
//    pointer bumps with the tap offsets folded into the loads' immediates;
//  - padding: lanes whose tap falls outside the image load a safe in-bounds address and
//    select 0 (only kernels with pad > 0 pay for it: a pointer and a flag per tap).
// The grid is x = output pixels (invocations), y = output-channel groups (workgroups).
// Parameters, in order: in, weights (packed), bias (packed, oc_groups * oc_block floats),
// out.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "runtime/command_buffer.h"
#include "runtime/jit/compiler.h"
#include "runtime/jit/ir.h"

namespace rplayer::runtime::kernels {

struct Conv2dShape {
  uint32_t in_c = 1, in_h = 1, in_w = 1;
  uint32_t out_c = 1;
  uint32_t kernel_h = 1, kernel_w = 1;
  uint32_t stride = 1, pad = 0;
  bool relu = false;  // fused max(x, 0)

  uint32_t out_h() const { return (in_h + 2 * pad - kernel_h) / stride + 1; }
  uint32_t out_w() const { return (in_w + 2 * pad - kernel_w) / stride + 1; }
  uint64_t macs() const { return uint64_t(out_c) * out_h() * out_w() * in_c * kernel_h * kernel_w; }
};

struct Conv2dTuning {
  uint32_t oc_block = 16;  // output channels per lane: 4, 8, 12 or 16
  int32_t ic_unroll = 4;   // JIT unroll factor of the input-channel loop
};

// Y[M][N] = W[M][K] X[K][N] + bias[M] is a 1x1 convolution of a 1 x N image with K input
// and M output channels: conv2d_kernel(matmul_shape(m, k, n)) with W packed as OIHW.
inline Conv2dShape matmul_shape(uint32_t m, uint32_t k, uint32_t n) {
  return {.in_c = k, .in_h = 1, .in_w = n, .out_c = m};
}

// The IR depends on the kernel size, stride, padding, relu and tuning; the image and
// channel sizes are specialization constants (conv2d_spec).
jit::Kernel conv2d_kernel(const Conv2dShape& s, const Conv2dTuning& t = {});
jit::Specialization conv2d_spec(const Conv2dShape& s);
Grid conv2d_grid(const Conv2dShape& s, const Conv2dTuning& t = {});

uint32_t conv2d_oc_groups(const Conv2dShape& s, const Conv2dTuning& t = {});
// OIHW weights -> the kernel's layout, zero-padded to whole oc groups.
std::vector<float> pack_conv2d_weights(const Conv2dShape& s, const Conv2dTuning& t,
                                       std::span<const float> oihw);
std::vector<float> pack_conv2d_bias(const Conv2dShape& s, const Conv2dTuning& t,
                                    std::span<const float> bias);

}  // namespace rplayer::runtime::kernels
