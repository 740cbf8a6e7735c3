// Activations as GPU kernels compute them: the epilogue of convolution / inner product
// kernels, the standalone activation layers, and standalone layers fused into the layer
// before them. Each kind evaluates exactly the expression the CPU reference uses for it
// (same operations in the same order), so results match it bit for bit.
#pragma once

#include <optional>
#include <string>

#include "nn/graph.h"
#include "nn/layer_params.h"
#include "runtime/jit/builder.h"

namespace rplayer::nn::gpu {

struct GpuActivation {
  enum class Kind {
    kNone,
    kRelu,         // v > 0 ? v : 0 (fused type 1)
    kLeakyRelu,    // v > 0 ? v : v * a (fused type 2, ReLU layer)
    kClip,         // min(max(v, a), b)
    kSigmoid,      // 1 / (1 + exp(-v))
    kMish,         // v * tanh(log(exp(v) + 1))
    kHardSwish,    // 0 below -b/a, v above 1/a - b/a, else v * (v * a + b)
    kSwish,        // v / (1 + exp(-v))
    kHardSigmoid,  // min(max(v * a + b, 0), 1)
    kTanH,
    kElu,  // v < 0 ? a * (exp(v) - 1) : v
  };
  Kind kind = Kind::kNone;
  float a = 0.f, b = 0.f;

  bool none() const { return kind == Kind::kNone; }
  // The fused activation of Convolution / InnerProduct (params 9 and 10).
  static GpuActivation from_fused(const Activation& act);
  // A standalone activation layer (ReLU, Clip, Sigmoid, ...); nullopt for other types.
  static std::optional<GpuActivation> from_layer(const Layer& layer);
  // Short text for kernel names, "" for none: "relu", "clip(0,6)", ...
  std::string tag() const;
};

// Emits act(v) for an f32 value.
runtime::jit::Value apply_activation(runtime::jit::KernelBuilder& kb, const GpuActivation& act,
                                     const runtime::jit::Value& v);

}  // namespace rplayer::nn::gpu
